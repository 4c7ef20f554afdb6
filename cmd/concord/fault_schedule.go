package main

// concord fault schedule: fire fault verbs from a YAML file at offsets
// from the schedule's start, heal each firing's rule when its duration
// ends, and heal everything the schedule installed when it ends or is
// interrupted.
//
// Layers: parseFaultSchedule (file → entries, every fault read by the verbs'
// own parser, nothing dialed), planTimeline and timelineEvents (pure:
// entries → sorted firings and events), runSchedule (events → installs and
// heals through the verbs' run functions, waiting through an injected
// wait so tests need no clock).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v2"

	"github.com/concord-db/concord/internal/faults"
)

// maxFirings bounds a schedule, so a small every under a long --for cannot
// make an unbounded plan.
const maxFirings = 10000

// scheduleEntry is one list item of a schedule file, as written.
type scheduleEntry struct {
	At       schedDuration `yaml:"at"`
	Every    schedDuration `yaml:"every"`
	Times    *int          `yaml:"times"`
	Duration schedDuration `yaml:"duration"`
	Fault    string        `yaml:"fault"`
}

// schedDuration is a Go duration written as a string ("2s"). yaml's own
// time.Duration decoding takes a bare 5 as 5ns, which is never meant.
type schedDuration time.Duration

func (d *schedDuration) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("duration %v has no unit: want a Go duration such as 2s or 500ms", v)
	}
	p, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q: want a Go duration such as 2s or 500ms", s)
	}
	*d = schedDuration(p)
	return nil
}

var yamlLine = regexp.MustCompile(`line [0-9]+: `)

var scheduleFields = []string{"at", "every", "times", "duration", "fault"}

// entryTiming is what the timeline needs of an entry.
type entryTiming struct {
	at    time.Duration
	every time.Duration // 0: no repeat
	times int           // 0: not given (1 without every; until the bound with it)
	dur   time.Duration // how long each firing's rule stays; 0: until the end
}

// scheduleItem is a validated entry.
type scheduleItem struct {
	timing entryTiming
	words  []string
	spec   faults.Spec
}

// parseFaultSchedule reads a schedule file. Every entry's fault is parsed by
// the verbs' own parser, so a bad entry is refused before anything is sent.
func parseFaultSchedule(data []byte) ([]scheduleItem, error) {
	var raw []any
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		return nil, usagef("schedule: want a YAML list of entries: %v", err)
	}
	if len(raw) == 0 {
		return nil, usagef("schedule: no entries")
	}
	items := make([]scheduleItem, 0, len(raw))
	for i, r := range raw {
		it, err := parseFaultScheduleEntry(r)
		if err != nil {
			return nil, usagef("schedule: entry %d: %v", i+1, err)
		}
		items = append(items, it)
	}
	return items, nil
}

func parseFaultScheduleEntry(r any) (scheduleItem, error) {
	m, ok := r.(map[any]any)
	if !ok {
		return scheduleItem{}, fmt.Errorf("want a mapping with %s, got %v", strings.Join(scheduleFields, ", "), r)
	}
	var unknown []string
	for k := range m {
		if ks, ok := k.(string); !ok || !slices.Contains(scheduleFields, ks) {
			unknown = append(unknown, fmt.Sprint(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return scheduleItem{}, fmt.Errorf("unknown field %q (want %s)", unknown[0], strings.Join(scheduleFields, ", "))
	}
	// Decoding the entry on its own keeps its type errors attached to its
	// number.
	b, err := yaml.Marshal(m)
	if err != nil {
		return scheduleItem{}, err
	}
	var e scheduleEntry
	if err := yaml.UnmarshalStrict(b, &e); err != nil {
		// Line numbers would count in the re-encoded entry, not the file.
		msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
		return scheduleItem{}, errors.New(yamlLine.ReplaceAllString(msg, ""))
	}
	t := entryTiming{at: time.Duration(e.At), every: time.Duration(e.Every), dur: time.Duration(e.Duration)}
	switch {
	case t.at < 0:
		return scheduleItem{}, fmt.Errorf("at %v is negative", t.at)
	case t.every < 0:
		return scheduleItem{}, fmt.Errorf("every %v is negative", t.every)
	case t.dur < 0:
		return scheduleItem{}, fmt.Errorf("duration %v is negative", t.dur)
	case e.Times != nil && *e.Times < 1:
		return scheduleItem{}, fmt.Errorf("times %d: want at least 1", *e.Times)
	case e.Times != nil && *e.Times > 1 && e.Every == 0:
		return scheduleItem{}, fmt.Errorf("times %d needs every", *e.Times)
	}
	if e.Times != nil {
		t.times = *e.Times
	}
	words, err := splitFaultWords(e.Fault)
	if err != nil {
		return scheduleItem{}, err
	}
	if len(words) == 0 {
		return scheduleItem{}, errors.New("fault is missing: want the words of a fault verb, e.g. \"partition n1 n2,n3\"")
	}
	spec, err := parseFaultWords(words)
	if err != nil {
		return scheduleItem{}, fmt.Errorf("fault %q: %w", e.Fault, err)
	}
	switch {
	case spec.ID != "":
		return scheduleItem{}, fmt.Errorf("fault %q: --id is not for schedules: each firing gets its own id", e.Fault)
	case spec.Kind == faults.KindKill && e.Duration > 0:
		return scheduleItem{}, fmt.Errorf("fault %q: a kill is one-shot and takes no duration", e.Fault)
	case spec.Duration > 0 && e.Duration > 0:
		return scheduleItem{}, fmt.Errorf("fault %q already has a duration; give it once", e.Fault)
	case e.Duration > 0:
		// The member expires the rule too, so it ends even if this
		// process dies before healing it.
		spec.Duration = faults.Duration(e.Duration)
	}
	t.dur = time.Duration(spec.Duration)
	if t.every > 0 && t.dur > t.every {
		return scheduleItem{}, fmt.Errorf("fault %q lasts %v, longer than every %v: firings would overlap", e.Fault, t.dur, t.every)
	}
	return scheduleItem{timing: t, words: words, spec: spec}, nil
}

// splitFaultWords splits a fault line at blanks; '...' and "..." keep
// blanks and drop the quotes, as a shell would (no escapes).
func splitFaultWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("fault %q: unterminated %c quote", s, quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseFaultWords reads the words of a fault verb ("drop --type MsgVote
// 1.0") with the verbs' own cobra commands and returns the spec the verb
// would install, validated. Nothing is dialed; heal and list are refused.
func parseFaultWords(words []string) (faults.Spec, error) {
	var got *faults.Spec
	f := faultFlags{capture: func(s faults.Spec) error { got = &s; return nil }}
	cmd := newFaultVerbsCmd(&f)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.SetArgs(words)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		return faults.Spec{}, err
	}
	if got == nil {
		return faults.Spec{}, usagef("installs no rule")
	}
	return *got, nil
}

// schedFiring is one installation of an entry's rule.
type schedFiring struct {
	at    time.Duration
	entry int           // 1-based entry number
	seq   int           // 1-based repeat number
	heal  time.Duration // when the schedule heals it; 0: at the end
}

// schedTimeline is a schedule's firings in order and when it ends.
type schedTimeline struct {
	firings []schedFiring
	end     time.Duration
}

// planTimeline computes every firing of entries, sorted by time (ties in
// entry order). bound is --for (0: none): firings at or after it are
// dropped and it is the end; without it the end is the last firing plus
// its duration.
func planTimeline(entries []entryTiming, bound time.Duration) (schedTimeline, error) {
	if bound < 0 {
		return schedTimeline{}, usagef("schedule: --for %v is negative", bound)
	}
	var tl schedTimeline
	for i, e := range entries {
		n := e.times
		switch {
		case n == 0 && e.every == 0:
			n = 1
		case n == 0 && bound == 0:
			return schedTimeline{}, usagef("schedule: entry %d: every without times repeats until --for ends; give --for or times", i+1)
		case n == 0:
			n = -1 // until the bound
		}
		for k := 0; n < 0 || k < n; k++ {
			at := e.at + time.Duration(k)*e.every
			if bound > 0 && at >= bound {
				break
			}
			if len(tl.firings) == maxFirings {
				return schedTimeline{}, usagef("schedule: more than %d firings; lengthen every or shorten --for", maxFirings)
			}
			f := schedFiring{at: at, entry: i + 1, seq: k + 1}
			if e.dur > 0 {
				f.heal = at + e.dur
			}
			tl.firings = append(tl.firings, f)
			if bound == 0 {
				tl.end = max(tl.end, at+e.dur)
			}
		}
	}
	if len(tl.firings) == 0 {
		return schedTimeline{}, usagef("schedule: nothing fires before --for %v", bound)
	}
	if bound > 0 {
		tl.end = bound
	}
	slices.SortStableFunc(tl.firings, func(a, b schedFiring) int { return int(min(max(a.at-b.at, -1), 1)) })
	return tl, nil
}

type schedEventKind int

// The order of the kinds breaks ties: a rule healed at t is gone before
// one fired at t, and the end comes last.
const (
	schedHeal schedEventKind = iota
	schedFire
	schedEnd
)

// schedEvent is one step of a run; firing indexes schedTimeline.firings (not end).
type schedEvent struct {
	at     time.Duration
	kind   schedEventKind
	firing int
}

// timelineEvents turns a timeline into the steps of a run: each firing,
// each heal that comes before the end, and the end.
func timelineEvents(tl schedTimeline) []schedEvent {
	var evs []schedEvent
	for i, f := range tl.firings {
		evs = append(evs, schedEvent{at: f.at, kind: schedFire, firing: i})
		if f.heal > 0 && f.heal < tl.end {
			evs = append(evs, schedEvent{at: f.heal, kind: schedHeal, firing: i})
		}
	}
	evs = append(evs, schedEvent{at: tl.end, kind: schedEnd, firing: -1})
	slices.SortStableFunc(evs, func(a, b schedEvent) int {
		if a.at != b.at {
			return int(min(max(a.at-b.at, -1), 1))
		}
		return int(a.kind) - int(b.kind)
	})
	return evs
}

func fmtOffset(d time.Duration) string { return "+" + d.String() }

// describeEvent is the line printed for ev, in a dry run and as it runs.
func describeEvent(ev schedEvent, tl schedTimeline, items []scheduleItem) string {
	if ev.kind == schedEnd {
		return fmtOffset(ev.at) + " end: heal every rule the schedule installed"
	}
	f := tl.firings[ev.firing]
	what := fmt.Sprintf("entry %d #%d", f.entry, f.seq)
	if ev.kind == schedHeal {
		return fmtOffset(ev.at) + " heal " + what
	}
	return fmtOffset(ev.at) + " fire " + what + ": " + strings.Join(items[f.entry-1].words, " ")
}

// runSchedule runs the events. wait blocks until the offset given (from
// the schedule's start) or ctx ends. Each rule installed is healed by its
// heal event or, at the end or when ctx ends, with all the others still
// installed; the final heal outlives ctx.
func runSchedule(ctx context.Context, s *faultSession, items []scheduleItem, tl schedTimeline, evs []schedEvent,
	wait func(context.Context, time.Duration) error, w, errw io.Writer) error {
	ids := make([]string, len(tl.firings)) // the rule each firing installed
	var live []string                      // installed, not yet healed, in install order
	failed := 0
	var errs []error
loop:
	for _, ev := range evs {
		if err := wait(ctx, ev.at); err != nil {
			errs = append(errs, fmt.Errorf("fault: schedule interrupted: %w", err))
			break
		}
		switch ev.kind {
		case schedEnd:
			break loop
		case schedFire:
			fmt.Fprintln(w, describeEvent(ev, tl, items))
			f := tl.firings[ev.firing]
			spec := items[f.entry-1].spec
			if spec.Kind == faults.KindKill {
				if err := runFaultKill(ctx, s, spec, w, errw); err != nil {
					fmt.Fprintf(errw, "concord: %v\n", err)
					failed++
				}
				continue
			}
			id, err := installRule(ctx, s, spec, w, errw)
			if err != nil {
				fmt.Fprintf(errw, "concord: %v\n", err)
				failed++
			}
			if id != "" {
				ids[ev.firing] = id
				live = append(live, id)
			}
		case schedHeal:
			id := ids[ev.firing]
			if id == "" {
				continue // its install failed: nothing to heal
			}
			fmt.Fprintf(w, "%s (%s)\n", describeEvent(ev, tl, items), id)
			if err := runFaultHeal(ctx, s, []string{id}, w, errw); err != nil {
				fmt.Fprintf(errw, "concord: %v\n", err)
				failed++
				continue // the final heal tries again
			}
			live = slices.DeleteFunc(live, func(l string) bool { return l == id })
		}
	}
	if len(live) > 0 {
		fmt.Fprintf(w, "end: healing %s\n", strings.Join(live, ","))
		// An interrupt must not leave the cluster faulty: heal past it.
		if err := runFaultHeal(context.WithoutCancel(ctx), s, live, w, errw); err != nil {
			errs = append(errs, fmt.Errorf("%w (heal with: concord fault heal %s)", err, strings.Join(live, " ")))
		}
	}
	if failed > 0 {
		errs = append(errs, fmt.Errorf("fault: schedule: %d action(s) failed (see above)", failed))
	}
	return errors.Join(errs...)
}

// scheduleWait returns a wait that sleeps until start plus the offset.
func scheduleWait(start time.Time) func(context.Context, time.Duration) error {
	return func(ctx context.Context, at time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := time.NewTimer(time.Until(start.Add(at)))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}

func newFaultScheduleCmd(f *faultFlags) *cobra.Command {
	var bound time.Duration
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "schedule FILE",
		Short: "Fire fault verbs at set times from a YAML schedule",
		Long: `Run the fault schedule in FILE: a YAML list of entries, each firing a fault
verb at an offset from the start, optionally repeated, each firing's rule
healed after its duration:

  - at: 2s            # first firing, from the schedule's start
    every: 10s        # optional repeat period
    times: 3          # optional repeat count (default 1; with every and
                      # no times: until --for ends)
    duration: 3s      # optional: how long each firing's rule stays; not for kill
    fault: partition n1 n2,n3   # the words of a fault verb, flags allowed
  - at: 5s
    fault: kill leader

Every entry is checked before anything is sent. "leader" is resolved when
each firing fires. --for bounds the run (default: the last firing plus its
duration); at the end, and on Ctrl-C or SIGTERM, every rule the schedule
installed is healed. --dry-run prints the timeline and sends nothing.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usagef("schedule: %v", err)
			}
			items, err := parseFaultSchedule(data)
			if err != nil {
				return err
			}
			timings := make([]entryTiming, len(items))
			for i, it := range items {
				timings[i] = it.timing
			}
			tl, err := planTimeline(timings, bound)
			if err != nil {
				return err
			}
			evs := timelineEvents(tl)
			if dryRun {
				for _, ev := range evs {
					fmt.Fprintln(cmd.OutOrStdout(), describeEvent(ev, tl, items))
				}
				return nil
			}
			sess, err := f.session(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSchedule(ctx, sess, items, tl, evs, scheduleWait(time.Now()), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().DurationVar(&bound, "for", 0, "end the schedule after this long (default: the last firing plus its duration)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the timeline and exit without sending anything")
	return cmd
}
