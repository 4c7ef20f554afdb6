package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concord-db/concord/internal/faults"
)

func TestSplitFaultWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"partition n1 n2,n3", []string{"partition", "n1", "n2,n3"}, true},
		{"  drop\t--type MsgVote * 1.0 ", []string{"drop", "--type", "MsgVote", "*", "1.0"}, true},
		{`drop 'n1->n2' "0.5"`, []string{"drop", "n1->n2", "0.5"}, true},
		{`partition 'n1 , n2' n3`, []string{"partition", "n1 , n2", "n3"}, true},
		{`clock n3 -- -500ms`, []string{"clock", "n3", "--", "-500ms"}, true},
		{`x ''`, []string{"x", ""}, true},
		{"", nil, true},
		{`drop 'n1->n2`, nil, false},
	}
	for _, tt := range tests {
		got, err := splitFaultWords(tt.in)
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("splitFaultWords(%q) = %q, %v; want %q, ok %t", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseFaultScheduleGood(t *testing.T) {
	file := `
- at: 2s
  every: 10s
  times: 3
  duration: 3s
  fault: partition n1 n2,n3
- at: 5s
  fault: kill leader
- at: 1s
  every: 500ms
  fault: drop --type MsgVote '*->*' 1.0
- fault: pause n1 2s
- at: 0s
  duration: 1m
  fault: "delay 'n1->n2' 50ms±10ms --type MsgApp"
`
	items, err := parseFaultSchedule([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	p := 1.0
	want := []scheduleItem{
		{timing: entryTiming{at: 2 * time.Second, every: 10 * time.Second, times: 3, dur: 3 * time.Second},
			spec: faults.Spec{Kind: faults.KindPartition, Groups: [][]string{{"n1"}, {"n2", "n3"}}, Duration: faults.Duration(3 * time.Second)}},
		{timing: entryTiming{at: 5 * time.Second},
			spec: faults.Spec{Kind: faults.KindKill, Member: "leader"}},
		{timing: entryTiming{at: time.Second, every: 500 * time.Millisecond},
			spec: faults.Spec{Kind: faults.KindDrop, Link: "*->*", Probability: &p, Types: []string{"MsgVote"}}},
		{timing: entryTiming{dur: 2 * time.Second},
			spec: faults.Spec{Kind: faults.KindPause, Member: "n1", Duration: faults.Duration(2 * time.Second)}},
		{timing: entryTiming{dur: time.Minute},
			spec: faults.Spec{Kind: faults.KindDelay, Link: "n1->n2", Types: []string{"MsgApp"},
				Delay: faults.Duration(50 * time.Millisecond), Jitter: faults.Duration(10 * time.Millisecond), Duration: faults.Duration(time.Minute)}},
	}
	if len(items) != len(want) {
		t.Fatalf("parsed %d entries, want %d", len(items), len(want))
	}
	for i, it := range items {
		if it.timing != want[i].timing {
			t.Errorf("entry %d timing = %+v, want %+v", i+1, it.timing, want[i].timing)
		}
		if got, w := fmt.Sprintf("%+v", specString(it.spec)), fmt.Sprintf("%+v", specString(want[i].spec)); got != w {
			t.Errorf("entry %d spec = %s, want %s", i+1, got, w)
		}
	}
	if got := strings.Join(items[4].words, "|"); got != "delay|n1->n2|50ms±10ms|--type|MsgApp" {
		t.Errorf("entry 5 words = %q", got)
	}
}

// specString shows a spec with its pointers followed.
func specString(s faults.Spec) string {
	p, d := "nil", "nil"
	if s.Probability != nil {
		p = fmt.Sprint(*s.Probability)
	}
	if s.Drift != nil {
		d = fmt.Sprint(*s.Drift)
	}
	s.Probability, s.Drift = nil, nil
	return fmt.Sprintf("%+v p=%s drift=%s", s, p, d)
}

func TestParseFaultScheduleBad(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{``, "no entries"},
		{`[]`, "no entries"},
		{`at: 2s`, "want a YAML list"},
		{"- at: 1s\n  fault: drop\n- at: 2s\n  fault: drop\n  bogus: 1\n", `entry 2: unknown field "bogus"`},
		{"- at: 1s\n  at: 2s\n  fault: drop\n", "already set"},
		{"- partition n1 n2\n", "entry 1: want a mapping"},
		{"- at: soon\n  fault: drop\n", `entry 1: bad duration "soon"`},
		{"- at: 5\n  fault: drop\n", "entry 1: duration 5 has no unit"},
		{"- every: [1s]\n  fault: drop\n", "entry 1: duration [1s] has no unit"},
		{"- times: two\n  fault: drop\n", "entry 1: cannot unmarshal"},
		{"- fault: [drop]\n", "entry 1: cannot unmarshal"},
		{"- fault: drop --type MsgVote * 1.0\n", `link "*"`},
		{"- at: -1s\n  fault: drop\n", "entry 1: at -1s is negative"},
		{"- every: -1s\n  fault: drop\n", "every -1s is negative"},
		{"- duration: -1s\n  fault: drop\n", "duration -1s is negative"},
		{"- times: 0\n  fault: drop\n", "times 0"},
		{"- times: 3\n  fault: drop\n", "times 3 needs every"},
		{"- at: 1s\n", "entry 1: fault is missing"},
		{"- fault: drop\n- fault: explode n1\n", `entry 2: fault "explode n1": fault: unknown subcommand "explode"`},
		{"- fault: drop 'n1->n2\n", "unterminated"},
		{"- fault: drop n1->n2 2\n", "probability 2"},
		{"- fault: drop --nope\n", "unknown flag: --nope"},
		{"- fault: heal\n", "heal installs no rule"},
		{"- fault: list\n", "list installs no rule"},
		{"- fault: schedule x.yaml\n", `unknown subcommand "schedule"`},
		{"- fault: help\n", "installs no rule"},
		{"- fault: drop --help\n", "installs no rule"},
		{"- fault: drop --id x\n", "--id is not for schedules"},
		{"- fault: kill n1\n  duration: 1s\n", "kill is one-shot"},
		{"- fault: pause n1 2s\n  duration: 1s\n", "give it once"},
		{"- fault: drop --duration 2s\n  duration: 1s\n", "give it once"},
		{"- fault: drop\n  every: 1s\n  duration: 2s\n", "longer than every"},
		{"- fault: pause n1 5s\n  every: 1s\n", "longer than every"},
	}
	for _, tt := range tests {
		_, err := parseFaultSchedule([]byte(tt.file))
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFaultSchedule(%q) = %v, want a usage error containing %q", tt.file, err, tt.want)
		}
	}
}

// showTimeline writes firings as AT:ENTRY#SEQ[-HEAL] and the end.
func showTimeline(tl schedTimeline) string {
	var b strings.Builder
	for _, f := range tl.firings {
		fmt.Fprintf(&b, "%v:%d#%d", f.at, f.entry, f.seq)
		if f.heal > 0 {
			fmt.Fprintf(&b, "-%v", f.heal)
		}
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "end %v", tl.end)
	return b.String()
}

func TestPlanTimeline(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		entries []entryTiming
		bound   time.Duration
		want    string // or the error's text
		ok      bool
	}{
		{"one", []entryTiming{{at: 2 * s}}, 0, "2s:1#1 end 2s", true},
		{"duration sets the end", []entryTiming{{at: 2 * s, dur: 3 * s}}, 0, "2s:1#1-5s end 5s", true},
		{"repeat", []entryTiming{{at: 2 * s, every: 10 * s, times: 3, dur: 3 * s}}, 0,
			"2s:1#1-5s 12s:1#2-15s 22s:1#3-25s end 25s", true},
		{"merged in time order, ties in entry order",
			[]entryTiming{{at: 2 * s, every: 10 * s, times: 2, dur: 3 * s}, {at: 5 * s}, {at: 2 * s}}, 0,
			"2s:1#1-5s 2s:3#1 5s:2#1 12s:1#2-15s end 15s", true},
		{"end is the latest firing plus duration, not the last",
			[]entryTiming{{at: 1 * s, dur: 20 * s}, {at: 5 * s}}, 0, "1s:1#1-21s 5s:2#1 end 21s", true},
		{"every without times runs until --for",
			[]entryTiming{{at: 1 * s, every: 2 * s, dur: s}}, 6 * s, "1s:1#1-2s 3s:1#2-4s 5s:1#3-6s end 6s", true},
		{"--for cuts times", []entryTiming{{at: 0, every: s, times: 10}}, 2500 * time.Millisecond,
			"0s:1#1 1s:1#2 2s:1#3 end 2.5s", true},
		{"--for drops a firing at the bound", []entryTiming{{at: 0}, {at: 3 * s}}, 3 * s, "0s:1#1 end 3s", true},
		{"--for longer than the firings", []entryTiming{{at: s, dur: s}}, 10 * s, "1s:1#1-2s end 10s", true},
		{"every without times needs --for", []entryTiming{{at: 0}, {every: s}}, 0, "entry 2: every without times", false},
		{"nothing before --for", []entryTiming{{at: 5 * s}}, 5 * s, "nothing fires", false},
		{"negative --for", []entryTiming{{at: 0}}, -s, "negative", false},
		{"too many firings", []entryTiming{{every: time.Millisecond}}, time.Hour, "more than 10000 firings", false},
	}
	for _, tt := range tests {
		tl, err := planTimeline(tt.entries, tt.bound)
		if !tt.ok {
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: planTimeline = %v, want a usage error containing %q", tt.name, err, tt.want)
			}
			continue
		}
		if err != nil || showTimeline(tl) != tt.want {
			t.Errorf("%s: planTimeline = %q, %v; want %q", tt.name, showTimeline(tl), err, tt.want)
		}
	}
}

func TestTimelineEvents(t *testing.T) {
	s := time.Second
	tests := []struct {
		tl   schedTimeline
		want string
	}{
		// A heal at the time of the next firing comes first; a heal at or
		// after the end is left to the end.
		{schedTimeline{firings: []schedFiring{
			{at: 0, entry: 1, seq: 1, heal: 2 * s},
			{at: 2 * s, entry: 1, seq: 2, heal: 4 * s},
			{at: 3 * s, entry: 2, seq: 1},
		}, end: 4 * s}, "0s fire 0, 2s heal 0, 2s fire 1, 3s fire 2, 4s end -1"},
		{schedTimeline{firings: []schedFiring{{at: s, entry: 1, seq: 1, heal: 9 * s}}, end: 5 * s},
			"1s fire 0, 5s end -1"},
	}
	kinds := map[schedEventKind]string{schedHeal: "heal", schedFire: "fire", schedEnd: "end"}
	for _, tt := range tests {
		var got []string
		for _, ev := range timelineEvents(tt.tl) {
			got = append(got, fmt.Sprintf("%v %s %d", ev.at, kinds[ev.kind], ev.firing))
		}
		if g := strings.Join(got, ", "); g != tt.want {
			t.Errorf("timelineEvents(%s) = %s, want %s", showTimeline(tt.tl), g, tt.want)
		}
	}
}

// scheduleFor parses file and plans it: what the command does before it
// dials.
func scheduleFor(t *testing.T, file string, bound time.Duration) ([]scheduleItem, schedTimeline, []schedEvent) {
	t.Helper()
	items, err := parseFaultSchedule([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	var timings []entryTiming
	for _, it := range items {
		timings = append(timings, it.timing)
	}
	tl, err := planTimeline(timings, bound)
	if err != nil {
		t.Fatal(err)
	}
	return items, tl, timelineEvents(tl)
}

// TestRunSchedule runs a schedule against three real fault APIs with a
// virtual clock: wait returns at once and records which rules each step
// found installed.
func TestRunSchedule(t *testing.T) {
	c := newAPICluster(t)
	items, tl, evs := scheduleFor(t, `
- at: 1s
  every: 4s
  times: 2
  duration: 2s
  fault: partition leader n2,n3
- at: 2s
  fault: drop 'n1->n2' 0.5
`, 0)
	var seen []string
	var last time.Duration
	wait := func(_ context.Context, at time.Duration) error {
		if at < last {
			t.Errorf("wait(%v) after wait(%v): time went back", at, last)
		}
		last = at
		var ids []string
		for _, r := range c.planes[1].List() {
			ids = append(ids, r.ID)
		}
		seen = append(seen, fmt.Sprintf("%v%q", at, ids))
		return nil
	}
	var out, errw bytes.Buffer
	if err := runSchedule(t.Context(), c.sess, items, tl, evs, wait, &out, &errw); err != nil {
		t.Fatalf("runSchedule: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errw.String())
	}
	// Before each step: f1 (first partition) lives 1s..3s, f2 (drop) from
	// 2s on, f3 (second partition) 5s..7s; f3's heal falls on the end
	// (7s), which heals both.
	want := `1s[] 2s["f1"] 3s["f1" "f2"] 5s["f2"] 7s["f2" "f3"]`
	if got := strings.Join(seen, " "); got != want {
		t.Errorf("rules before each step: %s\nwant %s", got, want)
	}
	for i, p := range c.planes {
		if l := p.List(); len(l) != 0 {
			t.Errorf("n%d holds %+v after the schedule, want nothing", i+1, l)
		}
	}
	for _, line := range []string{
		"+1s fire entry 1 #1: partition leader n2,n3\nf1 installed on n1,n2,n3: partition n1 | n2,n3, expires after 2s\n",
		"+2s fire entry 2 #1: drop n1->n2 0.5\nf2 installed on n1,n2,n3:",
		"+3s heal entry 1 #1 (f1)\nn1: removed f1\n",
		"+5s fire entry 1 #2: partition leader n2,n3\nf3 installed",
		"end: healing f2,f3\nn1: removed f2,f3\nn2: removed f2,f3\nn3: removed f2,f3\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

// TestRunScheduleInterrupted stops the run mid-way, as Ctrl-C does: every
// rule installed so far is healed, and the run reports the interruption.
func TestRunScheduleInterrupted(t *testing.T) {
	c := newAPICluster(t)
	items, tl, evs := scheduleFor(t, `
- at: 0s
  fault: isolate-leader
- at: 1s
  duration: 10s
  fault: delay 'n1<->n2' 50ms
- at: 2s
  fault: drop
`, 0)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	steps := 0
	wait := func(ctx context.Context, at time.Duration) error {
		if steps++; steps == 3 {
			cancel()
		}
		return ctx.Err()
	}
	var out, errw bytes.Buffer
	err := runSchedule(ctx, c.sess, items, tl, evs, wait, &out, &errw)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("runSchedule = %v, want an interruption", err)
	}
	if strings.Contains(out.String(), "entry 3") {
		t.Errorf("entry 3 fired after the interrupt:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "end: healing f1,f2\n") {
		t.Errorf("output lacks the final heal of f1,f2:\n%s", out.String())
	}
	for i, p := range c.planes {
		if l := p.List(); len(l) != 0 {
			t.Errorf("n%d holds %+v after an interrupted schedule, want nothing", i+1, l)
		}
	}
}

// TestRunScheduleInstallFailure keeps going past a refused rule and
// reports it at the end.
func TestRunScheduleInstallFailure(t *testing.T) {
	c := newAPICluster(t)
	items, tl, evs := scheduleFor(t, "- fault: drop 'n1->n9'\n- at: 1s\n  fault: drop\n", 0)
	var out, errw bytes.Buffer
	err := runSchedule(t.Context(), c.sess, items, tl, evs, func(context.Context, time.Duration) error { return nil }, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "1 action(s) failed") || !strings.Contains(errw.String(), `unknown member "n9"`) {
		t.Errorf("runSchedule = %v; stderr %q", err, errw.String())
	}
	if !strings.Contains(out.String(), "f1 installed") || !strings.Contains(out.String(), "end: healing f1\n") {
		t.Errorf("output:\n%s", out.String())
	}
	if l := c.planes[0].List(); len(l) != 0 {
		t.Errorf("n1 holds %+v, want nothing", l)
	}
}

func TestFaultScheduleCommand(t *testing.T) {
	t.Setenv(endpointsEnv, "")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(`
- at: 2s
  every: 10s
  times: 2
  duration: 3s
  fault: partition n1 n2,n3
- at: 5s
  fault: kill leader
`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("- at: 1s\n  fault: partition\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The endpoint does not exist: a dry run and a bad file never dial.
	dead := []string{"--endpoints", "127.0.0.1:1", "--dial-timeout", "100ms"}
	out, err := executeFault(t, append([]string{"fault", "schedule", good, "--dry-run"}, dead...)...)
	want := `+2s fire entry 1 #1: partition n1 n2,n3
+5s heal entry 1 #1
+5s fire entry 2 #1: kill leader
+12s fire entry 1 #2: partition n1 n2,n3
+15s end: heal every rule the schedule installed
`
	if err != nil || out != want {
		t.Errorf("dry run = %q, %v; want\n%s", out, err, want)
	}
	out, err = executeFault(t, append([]string{"fault", "schedule", good, "--dry-run", "--for", "6s"}, dead...)...)
	if err != nil || !strings.HasSuffix(out, "+5s fire entry 2 #1: kill leader\n+6s end: heal every rule the schedule installed\n") {
		t.Errorf("dry run --for 6s = %q, %v", out, err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"fault", "schedule", bad}, "entry 1: fault \"partition\""},
		{[]string{"fault", "schedule", filepath.Join(dir, "none.yaml")}, "no such file"},
		{[]string{"fault", "schedule"}, "wrong number of arguments"},
		{[]string{"fault", "schedule", good, "--for", "-1s"}, "negative"},
	} {
		_, err := executeFault(t, append(tt.args, dead...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("concord %q: %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
}
