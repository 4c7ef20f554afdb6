package main

// concord check: run a workload against a live cluster while a nemesis
// injects faults, record the history, and judge it with internal/check.
//
// Layers: cobra plumbing and flag validation (usage errors, exit 2); the
// pure parts — the nemesis schedule (drawn from a seed or read from a
// file), the summary — as functions of values, tested alone; and the run,
// which owns the member processes (with --start), the clients, the
// nemesis, the leader monitor and the progress line, and stops every one of
// them before it returns.
//
// Exit status: 0 every checker found the history valid; 1 a checker found
// it invalid (or the run itself failed); 2 a checker could not decide in
// its time budget (never reported as valid) — or, as for every verb, bad
// flags or arguments.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concord-db/concord/internal/check"
)

func init() { subcommands = append(subcommands, newCheckCmd) }

// Exit statuses of concord check. checkExitUnknown is also the status of a
// usage error, as for every verb: both mean "no verdict".
const (
	checkExitValid   = 0
	checkExitInvalid = 1
	checkExitUnknown = 2
)

// nemesisKinds are the faults the nemesis knows.
var nemesisKinds = []string{"partition", "kill", "pause", "clock"}

type checkFlags struct {
	start            int
	endpoints        string
	duration         time.Duration
	unsafeLocalReads bool
	nemesis          []string
	schedule         string
	report           string
	seed             int64
	clients          int
	keys             int
	opTimeout        time.Duration
	checkerTimeout   time.Duration
}

func newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Run a workload against a live cluster under faults and check the history",
		Long: `Run clients against a cluster for --duration while a nemesis partitions,
kills (kill -9 of the leader, restarted after the fault's length), pauses
(SIGSTOP, or the fault plane's pause with --endpoints) and skews the lease
clock of members, one fault at a time; then heal, read everything
back and check the recorded history: linearizability (porcupine, per key;
stale reads named), reads, durability, revisions, applied-once, watch
guarantees and lock safety by fencing tokens.

With --start N it starts N members itself (127.0.0.1, free ports,
--fault-injection, data and logs under the report directory) and stops them
at the end; with --endpoints it targets a running cluster whose members run
with --fault-injection (no process kills or signal pauses then).

The report directory holds history.json, report.html (porcupine's
visualization with the faults and leader terms drawn in) and summary.txt.

Exit status: 0 valid; 1 invalid (or the run failed); 2 unknown — a checker
ran out of --checker-timeout — or a usage error.

  concord check --start 3 --duration 60s
  concord check --start 3 --duration 60s --unsafe-local-reads --report /tmp/r
  concord check --endpoints 127.0.0.1:2379 --nemesis partition,clock`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			code, err := runCheck(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if code != checkExitValid {
				// The verdict is the exit status; summary.txt says why.
				os.Exit(code)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.start, "start", 0, "start a local cluster of N members (exclusive with --endpoints)")
	fl.StringVar(&f.endpoints, "endpoints", "", "comma-separated client endpoints of a running cluster (members need --fault-injection)")
	fl.DurationVar(&f.duration, "duration", 60*time.Second, "how long the workload runs")
	fl.BoolVar(&f.unsafeLocalReads, "unsafe-local-reads", false, "start the members with --unsafe-local-reads (to see the checker fail)")
	fl.StringSliceVar(&f.nemesis, "nemesis", nemesisKinds, "faults to inject: partition, kill, pause, clock, or none")
	fl.StringVar(&f.schedule, "schedule", "", "file with the nemesis schedule (lines: AT KIND TARGET FOR [OFFSET]) instead of drawing one")
	fl.StringVar(&f.report, "report", "", "report directory (default ./concord-check/<time>)")
	fl.Int64Var(&f.seed, "seed", 0, "seed of the workload and nemesis (default: from the clock; printed)")
	fl.IntVar(&f.clients, "clients", 6, "key-value clients (spread over the members)")
	fl.IntVar(&f.keys, "keys", 5, "keys the clients share")
	fl.DurationVar(&f.opTimeout, "op-timeout", time.Second, "timeout of one client operation (then it is ambiguous)")
	fl.DurationVar(&f.checkerTimeout, "checker-timeout", 2*time.Minute, "time budget of the linearizability checker (exhausted: unknown, exit 2)")
	return cmd
}

func (f *checkFlags) validate() error {
	switch {
	case f.start == 0 && f.endpoints == "":
		return usagef("check needs --start N or --endpoints")
	case f.start != 0 && f.endpoints != "":
		return usagef("--start and --endpoints exclude each other")
	case f.start < 0 || f.start > 7:
		return usagef("--start %d: want 1 to 7 members", f.start)
	case f.duration <= 0:
		return usagef("--duration must be positive, got %v", f.duration)
	case f.clients < 1 || f.clients > 256:
		return usagef("--clients %d: want 1 to 256", f.clients)
	case f.keys < 1 || f.keys > 1000:
		return usagef("--keys %d: want 1 to 1000", f.keys)
	case f.opTimeout <= 0 || f.checkerTimeout <= 0:
		return usagef("--op-timeout and --checker-timeout must be positive")
	case f.unsafeLocalReads && f.start == 0:
		return usagef("--unsafe-local-reads needs --start: it is a flag of the members check starts")
	}
	var kinds []string
	for _, k := range f.nemesis {
		k = strings.TrimSpace(k)
		switch {
		case k == "" || k == "none":
		case slices.Contains(nemesisKinds, k):
			if k == "kill" && f.start == 0 {
				return usagef("--nemesis kill needs --start: check kills only processes it started")
			}
			kinds = append(kinds, k)
		default:
			return usagef("--nemesis %q: want %s or none", k, strings.Join(nemesisKinds, ", "))
		}
	}
	f.nemesis = kinds
	if f.seed == 0 {
		f.seed = time.Now().UnixNano()
	}
	return nil
}

// checkRun is one run of concord check.
type checkRun struct {
	f       checkFlags
	errw    io.Writer
	self    string
	dir     string
	prefix  string // every key of the run starts with it
	kvPre   string
	guard   string
	lockPre string
	members []*checkMember
	fs      *faultSession
	begin   time.Time

	rec     check.Recorder
	okOps   atomic.Int64
	ambOps  atomic.Int64
	locks   atomic.Int64
	nextCID atomic.Int64

	mu       sync.Mutex // guards the fields below
	fenced   []check.FencedWrite
	anns     []check.Annotation
	faultLog []string
	leader   string
	leaderAt int64
	term     uint64
	changes  int
	notes    []string
}

func (r *checkRun) now() int64 { return int64(time.Since(r.begin)) }

func (r *checkRun) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.notes = append(r.notes, msg)
	r.mu.Unlock()
	fmt.Fprintf(r.errw, "check: %s\n", msg)
}

// runCheck runs the whole check and returns the exit status of its
// verdict; an error means the run itself failed.
func runCheck(ctx context.Context, f checkFlags, w, errw io.Writer) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	var sched []nemesisEvent
	if f.schedule != "" {
		fh, err := os.Open(f.schedule)
		if err != nil {
			return 0, usagef("--schedule: %v", err)
		}
		sched, err = parseSchedule(fh, f.nemesis)
		fh.Close()
		if err != nil {
			return 0, err
		}
	} else {
		sched = drawSchedule(f.seed, f.nemesis, f.duration)
	}
	dir := f.report
	if dir == "" {
		dir = filepath.Join("concord-check", time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("check: report directory: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	run := &checkRun{f: f, errw: errw, self: self, dir: dir,
		// Keys of its own, so that a history starts from empty keys even
		// on a cluster an earlier check ran against.
		prefix: fmt.Sprintf("/concord-check/%x-%x/", uint64(f.seed), uint64(time.Now().UnixNano()))}
	run.kvPre, run.guard, run.lockPre = run.prefix+"kv/", run.prefix+"guard", run.prefix+"lock"
	fmt.Fprintf(errw, "check: seed %d, report in %s\n", f.seed, dir)

	if f.start > 0 {
		if f.unsafeLocalReads && !serverHasFlag("unsafe-local-reads") {
			return 0, errors.New("check: this build's server has no --unsafe-local-reads flag")
		}
		defer run.stopCluster()
		if err := run.startCluster(); err != nil {
			return 0, err
		}
	} else if err := run.findMembers(ctx); err != nil {
		return 0, err
	}
	var targets []faultTarget
	for _, m := range run.members {
		targets = append(targets, faultTarget{name: m.name, base: "http://" + m.clientAddr})
	}
	run.fs = &faultSession{targets: targets, hc: faultHTTPClient(nil), timeout: 2 * time.Second}
	return run.run(ctx, sched, w)
}

// run is the run proper: setup, workload with nemesis, heal, read back,
// check, report.
func (r *checkRun) run(ctx context.Context, sched []nemesisEvent, w io.Writer) (int, error) {
	var clis []*clientv3.Client
	defer func() {
		for _, c := range clis {
			c.Close()
		}
	}()
	for _, m := range r.members {
		c, err := newCheckClient(m.clientAddr)
		if err != nil {
			return 0, fmt.Errorf("check: client for %s: %w", m.name, err)
		}
		clis = append(clis, c)
	}
	// The guard must exist before the first fenced write: an etcd compare
	// on the value of an absent key is false.
	setupDeadline := time.Now().Add(30 * time.Second)
	var firstRev int64
	for {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := clis[0].Put(sctx, r.guard, fmt.Sprintf("%020d/init", 0))
		cancel()
		if err == nil {
			firstRev = resp.Header.Revision
			break
		}
		if time.Now().After(setupDeadline) {
			return 0, fmt.Errorf("check: cluster not ready after 30s: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := r.waitHealthy(ctx, clis, 30*time.Second); err != nil {
		return 0, err
	}
	fmt.Fprintf(r.errw, "check: cluster ready; workload for %v, %d faults scheduled\n", r.f.duration, len(sched))

	r.begin = time.Now()
	monCtx, stopMon := context.WithCancel(ctx)
	var monWG sync.WaitGroup
	monWG.Add(2)
	go func() { defer monWG.Done(); r.monitorLeader(monCtx, clis) }()
	go func() { defer monWG.Done(); r.progress(monCtx) }()

	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchWG sync.WaitGroup
	watchers := make([]*checkWatcher, 0, 2)
	for i := range 2 {
		cw := &checkWatcher{stream: check.WatchStream{
			Name: fmt.Sprintf("w%d@%s", i, r.members[i%len(r.members)].name), Key: r.kvPre, Prefix: true, StartRev: firstRev + 1}}
		watchers = append(watchers, cw)
		watchWG.Add(1)
		go func() { defer watchWG.Done(); cw.run(watchCtx, clis[i%len(clis)], r.kvPre) }()
	}

	loadCtx, stopLoad := context.WithTimeout(ctx, r.f.duration)
	var loadWG sync.WaitGroup
	keys := make([]string, r.f.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%sk%d", r.kvPre, i)
	}
	for i := range r.f.clients {
		loadWG.Add(1)
		m := r.members[i%len(r.members)]
		go func() {
			defer loadWG.Done()
			r.kvClient(loadCtx, i, clis[i%len(clis)], m.name, keys)
		}()
	}
	for i := range 2 {
		loadWG.Add(1)
		j := (i + 1) % len(clis)
		go func() {
			defer loadWG.Done()
			r.lockClient(loadCtx, r.f.clients+i, clis[j])
		}()
	}
	nemWG := sync.WaitGroup{}
	nemWG.Add(1)
	go func() { defer nemWG.Done(); r.nemesis(loadCtx, sched) }()
	loadWG.Wait()
	nemWG.Wait()
	stopLoad()

	// Heal everything, then let the cluster settle before reading back.
	r.healAll(ctx)
	if err := r.waitHealthy(ctx, clis, 30*time.Second); err != nil {
		r.note("%v; reading back anyway", err)
	}
	finalRev := r.finalReads(ctx, clis, keys, firstRev)
	committed, err := r.readCommitted(ctx, clis, firstRev, finalRev)
	if err != nil {
		stopMon()
		stopWatch()
		return 0, err
	}
	// Give watchers a moment to deliver up to the end, then stop them.
	lastKV := firstRev
	for _, ch := range committed.Changes {
		if strings.HasPrefix(ch.Key, r.kvPre) {
			lastKV = max(lastKV, ch.Rev)
		}
	}
	for _, cw := range watchers {
		cw.waitFor(lastKV, 5*time.Second)
	}
	stopWatch()
	watchWG.Wait()
	stopMon()
	monWG.Wait()
	r.closeLeader()

	var streams []check.WatchStream
	for _, cw := range watchers {
		streams = append(streams, cw.snapshot())
	}
	r.mu.Lock()
	rec := &check.Recording{Ops: r.rec.Ops(), Fenced: slices.Clone(r.fenced), GuardKey: r.guard,
		Watches: streams, Committed: committed, Annotations: slices.Clone(r.anns)}
	r.mu.Unlock()
	res := judge(rec, r.f.checkerTimeout)
	return r.writeReport(rec, res, w)
}

func (cw *checkWatcher) run(ctx context.Context, cli *clientv3.Client, prefix string) {
	cw.mu.Lock()
	cw.next = cw.stream.StartRev
	cw.mu.Unlock()
	for ctx.Err() == nil {
		cw.mu.Lock()
		from := cw.next
		cw.mu.Unlock()
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from)) {
			if resp.Err() != nil || resp.Canceled {
				break
			}
			cw.mu.Lock()
			for _, ev := range resp.Events {
				cw.stream.Events = append(cw.stream.Events, check.Change{Rev: ev.Kv.ModRevision, Key: string(ev.Kv.Key),
					Value: string(ev.Kv.Value), Delete: ev.Type == clientv3.EventTypeDelete})
				cw.next = ev.Kv.ModRevision + 1
			}
			cw.mu.Unlock()
		}
		cancel()
		pause(ctx, 100*time.Millisecond)
	}
}

// maxStaleAnnotations bounds the stale reads drawn into report.html.
const maxStaleAnnotations = 200

// summaryProblems bounds the problems listed per checker in the summary;
// history.json has the whole history to dig further.
const summaryProblems = 3
