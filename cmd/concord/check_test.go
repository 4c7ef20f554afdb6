package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-db/concord/internal/check"
)

func TestCheckUsageErrors(t *testing.T) {
	// Every case must be a usage error (exit status 2) before anything
	// starts or is dialed.
	for _, args := range [][]string{
		{"check"},
		{"check", "--start", "3", "--endpoints", "127.0.0.1:1"},
		{"check", "--start", "9"},
		{"check", "--start", "3", "--duration", "0s"},
		{"check", "--start", "3", "--nemesis", "meteor"},
		{"check", "--endpoints", "127.0.0.1:1", "--nemesis", "kill"},
		{"check", "--endpoints", "127.0.0.1:1", "--unsafe-local-reads"},
		{"check", "--start", "3", "--clients", "0"},
		{"check", "--start", "3", "extra"},
	} {
		_, err := executeFault(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("concord %s = %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

func TestDrawSchedule(t *testing.T) {
	const d = 60 * time.Second
	a := drawSchedule(42, nemesisKinds, d)
	b := drawSchedule(42, nemesisKinds, d)
	if len(a) < 6 {
		t.Fatalf("drawSchedule(42, 60s) drew %d faults, want at least 6: %v", len(a), a)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("drawSchedule(42) differs between draws at %d: %v vs %v", i, a[i], b[i])
		}
	}
	seen := map[string]bool{}
	for i, e := range a {
		if i < len(nemesisKinds) {
			seen[e.Kind] = true
		}
		if e.At+e.For > d-3*time.Second {
			t.Errorf("fault %v ends after %v: the run would not end healed", e, d-3*time.Second)
		}
		if i > 0 && e.At < a[i-1].At+a[i-1].For {
			t.Errorf("fault %v overlaps %v", e, a[i-1])
		}
		if e.Kind == "clock" && e.Offset == 0 {
			t.Errorf("clock fault %v without an offset", e)
		}
		if e.Kind == "kill" && e.Target != "leader" {
			t.Errorf("kill %v does not take the leader", e)
		}
		if e.Target != "leader" && e.Target != "random" {
			t.Errorf("fault %v: target %q", e, e.Target)
		}
	}
	if len(seen) != len(nemesisKinds) {
		t.Errorf("the first %d faults cover %v, want every kind", len(nemesisKinds), seen)
	}
	if c := drawSchedule(43, nemesisKinds, d); len(c) == len(a) && c[0] == a[0] && c[1] == a[1] {
		t.Errorf("seeds 42 and 43 drew the same schedule start %v", c[:2])
	}
	if got := drawSchedule(1, []string{"partition"}, d); len(got) == 0 || got[0].Kind != "partition" {
		t.Errorf("drawSchedule(partition only) = %v", got)
	}
	if got := drawSchedule(1, nil, d); got != nil {
		t.Errorf("drawSchedule(no kinds) = %v, want none", got)
	}
	if got := drawSchedule(1, nemesisKinds, 5*time.Second); got != nil {
		t.Errorf("drawSchedule(5s) = %v, want none: no fault fits", got)
	}
}

func TestParseSchedule(t *testing.T) {
	good := `# a schedule
10s kill leader 3s
2s partition n2 4s   # first
20s clock n3 5s +2s
30s clock n1 5s -1500ms
`
	got, err := parseSchedule(strings.NewReader(good), nemesisKinds)
	if err != nil {
		t.Fatal(err)
	}
	want := []nemesisEvent{
		{At: 2 * time.Second, Kind: "partition", Target: "n2", For: 4 * time.Second},
		{At: 10 * time.Second, Kind: "kill", Target: "leader", For: 3 * time.Second},
		{At: 20 * time.Second, Kind: "clock", Target: "n3", For: 5 * time.Second, Offset: 2 * time.Second},
		{At: 30 * time.Second, Kind: "clock", Target: "n1", For: 5 * time.Second, Offset: -1500 * time.Millisecond},
	}
	if len(got) != len(want) {
		t.Fatalf("parseSchedule = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("parseSchedule[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{
		"10s kill leader",
		"x kill leader 3s",
		"10s kill leader 0s",
		"10s meteor n1 3s",
		"10s partition n1 3s 2s",
		"10s clock n1 3s",
		"10s clock n1 3s soon",
	} {
		if _, err := parseSchedule(strings.NewReader(bad), nemesisKinds); err == nil {
			t.Errorf("parseSchedule(%q) = nil error, want one", bad)
		}
	}
	if _, err := parseSchedule(strings.NewReader("10s kill n1 3s"), []string{"partition"}); err == nil {
		t.Errorf("parseSchedule accepted kill although --nemesis excludes it")
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		v    check.Verdict
		want int
	}{{check.Valid, 0}, {check.Invalid, 1}, {check.Unknown, 2}, {0, 2}} {
		if got := exitCode(tc.v); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

func TestWriteSummary(t *testing.T) {
	op := func(c int, k check.Kind, v, got string, call, ret, rev int64) check.Op {
		return check.Op{Client: c, Kind: k, Key: "k", Value: v, Found: got != "", Got: got,
			Call: call, Return: ret, Rev: rev, Status: check.OK, Member: "n1"}
	}
	committed := &check.Committed{Rev: 3, CompactRev: 1, Changes: []check.Change{
		{Rev: 2, Key: "k", Value: "a"}, {Rev: 3, Key: "k", Value: "b"}}}
	lost := check.Op{Client: 2, Kind: check.Put, Key: "k", Value: "never", Call: 1, Status: check.Ambiguous}
	info := summaryInfo{Seed: 5, Duration: 2 * time.Second, Cluster: "n1=127.0.0.1:1", Started: true,
		Nemesis: []string{"partition"}, Faults: []string{"+1.0s partition n2 from the rest for 2s"}, LeaderChanges: 1, Locks: 3}
	for _, tc := range []struct {
		name    string
		ops     []check.Op
		timeout time.Duration
		want    []string
	}{
		{"valid", []check.Op{op(0, check.Put, "a", "", 1, 2, 2), op(0, check.Put, "b", "", 3, 4, 3), op(1, check.Get, "", "b", 5, 6, 3), lost}, time.Minute,
			[]string{"concord check: VALID", "operations: 4 (2/s)", "put    ok 2, ambiguous 1", "1 unanswered writes never took effect",
				"partition n2 from the rest", "leader changes: 1", "linearizable: valid", "exit status: 0"}},
		{"stale read", []check.Op{op(0, check.Put, "a", "", 1, 2, 2), op(0, check.Put, "b", "", 3, 4, 3), op(1, check.Get, "", "a", 5, 6, 2)}, time.Minute,
			[]string{"concord check: INVALID", "linearizable: invalid", `first anomaly: stale read: get("k") -> "a" @2 (client 1 on n1`, "exit status: 1"}},
		// A checker out of budget is unknown, exit 2, never valid.
		{"checker budget exhausted", []check.Op{op(0, check.Put, "a", "", 1, 2, 2)}, time.Nanosecond,
			[]string{"concord check: UNKNOWN", "linearizable: unknown", "exit status: 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &check.Recording{Ops: tc.ops, Committed: committed, GuardKey: "g"}
			res := judge(rec, tc.timeout)
			var b strings.Builder
			writeSummary(&b, info, rec, res)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("summary lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	r := &checkRun{f: checkFlags{start: 3, duration: time.Second, seed: 9}, dir: dir}
	rec := &check.Recording{
		Ops: []check.Op{
			{Client: 0, Kind: check.Put, Key: "k", Value: "a", Call: 1, Return: 2, Rev: 2, Status: check.OK},
			{Client: 0, Kind: check.Put, Key: "k", Value: "b", Call: 3, Return: 4, Rev: 3, Status: check.OK},
			{Client: 1, Kind: check.Get, Key: "k", Found: true, Got: "a", Call: 5, Return: 6, Rev: 2, Status: check.OK, Member: "n3"},
		},
		Committed: &check.Committed{Rev: 3, CompactRev: 1, Changes: []check.Change{
			{Rev: 2, Key: "k", Value: "a"}, {Rev: 3, Key: "k", Value: "b"}}},
		Annotations: []check.Annotation{
			{Tag: "nemesis", Start: 2, End: 6, Description: "partition n3 from the rest"},
			{Tag: "leader", Start: 0, End: 6, Description: "leader n1 (term 2)"},
		},
	}
	var out strings.Builder
	code, err := r.writeReport(rec, judge(rec, time.Minute), &out)
	if err != nil || code != checkExitInvalid {
		t.Fatalf("writeReport = %d, %v; want %d (invalid)", code, err, checkExitInvalid)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if s := read("summary.txt"); s != out.String() || !strings.Contains(s, "first anomaly: stale read") {
		t.Errorf("summary.txt differs from what was printed or lacks the anomaly:\n%s", s)
	}
	html := read("report.html")
	for _, want := range []string{"partition n3 from the rest", "leader n1 (term 2)", "stale read: get("} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	back, err := check.ReadRecording(strings.NewReader(read("history.json")))
	if err != nil || len(back.Ops) != 3 || len(back.Annotations) != 2 {
		t.Errorf("history.json read back = %+v, %v", back, err)
	}
}
