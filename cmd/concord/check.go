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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/concord-db/concord/internal/check"
	"github.com/concord-db/concord/internal/faults"
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

// nemesisEvent is one fault of the schedule.
type nemesisEvent struct {
	// At is when the fault starts, from the start of the workload.
	At   time.Duration
	Kind string
	// Target is a member name, "leader" (resolved when the fault starts)
	// or "random".
	Target string
	// For is how long the fault lasts.
	For time.Duration
	// Offset is the clock fault's skew.
	Offset time.Duration
}

func (e nemesisEvent) String() string {
	s := fmt.Sprintf("%v %s %s %v", e.At, e.Kind, e.Target, e.For)
	if e.Kind == "clock" {
		s += " " + signedDuration(e.Offset)
	}
	return s
}

// signedDuration writes d with its sign, as a clock offset: +2s, -1.5s.
func signedDuration(d time.Duration) string {
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// drawSchedule draws one fault at a time over d from seed: each of kinds
// once first (in a random order), then random ones; a kill's target is the
// leader, another fault's is the leader half of the time, else a random
// member; every fault ends at least 3 s before d so the run ends healed.
func drawSchedule(seed int64, kinds []string, d time.Duration) []nemesisEvent {
	if len(kinds) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65))
	order := slices.Clone(kinds)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	var out []nemesisEvent
	at := 3 * time.Second
	for i := 0; ; i++ {
		length := 2*time.Second + time.Duration(rng.IntN(3000))*time.Millisecond
		if at+length > d-3*time.Second {
			return out
		}
		kind := kinds[rng.IntN(len(kinds))]
		if i < len(order) {
			kind = order[i]
		}
		// Kills always take the leader (the costly failover); the other
		// faults take it half of the time.
		target := "random"
		if kind == "kill" || rng.IntN(2) == 0 {
			target = "leader"
		}
		e := nemesisEvent{At: at, Kind: kind, Target: target, For: length}
		if kind == "clock" {
			e.Offset = time.Duration(1+rng.IntN(3)) * time.Second
			if rng.IntN(2) == 0 {
				e.Offset = -e.Offset
			}
		}
		out = append(out, e)
		at += length + time.Second + time.Duration(rng.IntN(2000))*time.Millisecond
	}
}

// parseSchedule reads a schedule file: one fault per line, "AT KIND TARGET
// FOR [OFFSET]" (durations in Go syntax, OFFSET only for clock), blank lines
// and # comments ignored. Events are returned sorted by AT.
func parseSchedule(r io.Reader, kinds []string) ([]nemesisEvent, error) {
	var out []nemesisEvent
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if len(fs) < 4 || len(fs) > 5 {
			return nil, usagef("schedule line %d: want AT KIND TARGET FOR [OFFSET], got %q", n, line)
		}
		at, err1 := time.ParseDuration(fs[0])
		length, err2 := time.ParseDuration(fs[3])
		if err := errors.Join(err1, err2); err != nil || at < 0 || length <= 0 {
			return nil, usagef("schedule line %d: bad AT or FOR in %q", n, line)
		}
		e := nemesisEvent{At: at, Kind: fs[1], Target: fs[2], For: length}
		if !slices.Contains(kinds, e.Kind) {
			return nil, usagef("schedule line %d: kind %q is not one of --nemesis (%s)", n, e.Kind, strings.Join(kinds, ","))
		}
		if len(fs) == 5 {
			if e.Kind != "clock" {
				return nil, usagef("schedule line %d: only clock takes an OFFSET", n)
			}
			off, err := time.ParseDuration(strings.TrimPrefix(fs[4], "+"))
			if err != nil {
				return nil, usagef("schedule line %d: bad OFFSET %q", n, fs[4])
			}
			e.Offset = off
		} else if e.Kind == "clock" {
			return nil, usagef("schedule line %d: clock needs an OFFSET, e.g. +2s", n)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b nemesisEvent) int { return int(a.At - b.At) })
	return out, nil
}

// checkMember is one member: its name, client address and, with --start,
// its process. mu guards the process fields.
type checkMember struct {
	name       string
	clientAddr string
	args       []string
	logPath    string

	mu     sync.Mutex
	proc   *exec.Cmd
	exited chan struct{}
	paused bool
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

// serverHasFlag reports whether this binary's server verb has flag name.
func serverHasFlag(name string) bool {
	c, _, err := newRootCmd().Find([]string{"server"})
	return err == nil && c.Flags().Lookup(name) != nil
}

func newCheckClient(ep string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            []string{ep},
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
	})
}

// findMembers lists a running cluster's members (names and first client
// URLs) for --endpoints.
func (r *checkRun) findMembers(ctx context.Context) error {
	eps := strings.Split(r.f.endpoints, ",")
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer cli.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.MemberList(cctx)
	if err != nil {
		return fmt.Errorf("check: listing members: %w", err)
	}
	targets, _, err := faultTargets(resp.Members, false)
	if err != nil {
		return err
	}
	for _, t := range targets {
		addr := strings.TrimPrefix(strings.TrimPrefix(t.base, "http://"), "https://")
		r.members = append(r.members, &checkMember{name: t.name, clientAddr: addr})
	}
	return nil
}

// freeLocalPorts returns n distinct free ports on 127.0.0.1 (held open
// until all are chosen; another process may still take one).
func freeLocalPorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (r *checkRun) startCluster() error {
	n := r.f.start
	ports, err := freeLocalPorts(2 * n)
	if err != nil {
		return fmt.Errorf("check: ports: %w", err)
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("n%d=http://127.0.0.1:%d", i+1, ports[2*i+1]))
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		m := &checkMember{name: name, clientAddr: fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			logPath: filepath.Join(r.dir, "data", name+".log")}
		m.args = []string{"server", "--name", name,
			"--data-dir", filepath.Join(r.dir, "data", name),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--listen-client", m.clientAddr,
			"--listen-peer", fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			"--fault-injection"}
		if r.f.unsafeLocalReads {
			m.args = append(m.args, "--unsafe-local-reads")
		}
		r.members = append(r.members, m)
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "data"), 0o755); err != nil {
		return err
	}
	for _, m := range r.members {
		if err := r.launch(m); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.errw, "check: started %d members: %s\n", n, r.describeMembers())
	return nil
}

func (r *checkRun) describeMembers() string {
	var s []string
	for _, m := range r.members {
		s = append(s, m.name+"="+m.clientAddr)
	}
	return strings.Join(s, " ")
}

// launch starts m's process, its log appended to m.logPath.
func (r *checkRun) launch(m *checkMember) error {
	lf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	c := exec.Command(r.self, m.args...)
	c.Stdout, c.Stderr = lf, lf
	if err := c.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("check: start member %s: %w", m.name, err)
	}
	exited := make(chan struct{})
	go func() {
		c.Wait()
		lf.Close()
		close(exited)
	}()
	m.mu.Lock()
	m.proc, m.exited, m.paused = c, exited, false
	m.mu.Unlock()
	return nil
}

// kill stops m's process with SIGKILL and waits for it.
func (m *checkMember) kill() {
	m.mu.Lock()
	p, exited := m.proc, m.exited
	m.mu.Unlock()
	if p == nil {
		return
	}
	p.Process.Signal(syscall.SIGKILL)
	<-exited
}

// signal sends sig to m's process if it runs.
func (m *checkMember) signal(sig syscall.Signal) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
	}
	m.paused = sig == syscall.SIGSTOP
	return m.proc.Process.Signal(sig) == nil
}

func (m *checkMember) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// stopCluster stops every process check started: SIGCONT, SIGTERM, and
// SIGKILL after 10 s.
func (r *checkRun) stopCluster() {
	for _, m := range r.members {
		m.signal(syscall.SIGCONT)
		m.signal(syscall.SIGTERM)
	}
	for _, m := range r.members {
		m.mu.Lock()
		exited := m.exited
		m.mu.Unlock()
		if exited == nil {
			continue
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			m.kill()
		}
	}
}

// memberStatus asks m for its status; leader is 0 when it knows none.
func memberStatus(ctx context.Context, cli *clientv3.Client, ep string) (id, leader, term uint64, err error) {
	sctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	defer cancel()
	st, err := cli.Status(sctx, ep)
	if err != nil {
		return 0, 0, 0, err
	}
	return st.Header.MemberId, st.Leader, st.RaftTerm, nil
}

// waitHealthy waits until every member answers and they agree on a
// leader, and a linearizable read through each succeeds.
func (r *checkRun) waitHealthy(ctx context.Context, clis []*clientv3.Client, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		leaders := map[uint64]bool{}
		ok := true
		for i, m := range r.members {
			_, l, _, err := memberStatus(ctx, clis[i], m.clientAddr)
			if err != nil || l == 0 {
				ok = false
				break
			}
			leaders[l] = true
			gctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = clis[i].Get(gctx, r.guard)
			cancel()
			if err != nil {
				ok = false
				break
			}
		}
		if ok && len(leaders) == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("check: cluster not healthy after %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
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

// kvClient runs one key-value client: linearizable gets, puts and
// compare-and-sets on keys, values unique ("c<client>-<n>").
func (r *checkRun) kvClient(ctx context.Context, id int, cli *clientv3.Client, member string, keys []string) {
	rng := rand.New(rand.NewPCG(uint64(r.f.seed), uint64(id)+1))
	last := map[string]string{}
	for n := 0; ctx.Err() == nil; n++ {
		key := keys[rng.IntN(len(keys))]
		op := check.Op{Client: id, Key: key, Member: member}
		switch p := rng.IntN(10); {
		case p < 4:
			op.Kind = check.Get
		case p < 7:
			op.Kind, op.Value = check.Put, fmt.Sprintf("c%d-%d", id, n)
		default:
			op.Kind, op.Value = check.CAS, fmt.Sprintf("c%d-%d", id, n)
			if v, ok := last[key]; ok {
				op.Expect = v
			} else {
				op.ExpectAbsent = true
			}
		}
		h := r.rec.Call(op, r.now())
		octx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
		out, err := doKV(octx, cli, op)
		cancel()
		if err != nil {
			// A write with no answer may still take effect; a read with
			// none is ignored either way.
			r.rec.Fail(h, op.Kind == check.Get, r.now())
			r.ambOps.Add(1)
			if ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		r.rec.Return(h, out, r.now())
		r.okOps.Add(1)
		switch {
		case op.Kind == check.Get && out.Found:
			last[key] = out.Got
		case op.Kind == check.Get:
			delete(last, key)
		case op.Kind == check.Put || out.Succeeded:
			last[key] = op.Value
		}
	}
}

// doKV performs op and returns its outputs.
func doKV(ctx context.Context, cli *clientv3.Client, op check.Op) (check.Op, error) {
	var out check.Op
	switch op.Kind {
	case check.Get:
		resp, err := cli.Get(ctx, op.Key)
		if err != nil {
			return out, err
		}
		out.Rev = resp.Header.Revision
		if len(resp.Kvs) > 0 {
			out.Found, out.Got = true, string(resp.Kvs[0].Value)
		}
	case check.Put:
		resp, err := cli.Put(ctx, op.Key, op.Value)
		if err != nil {
			return out, err
		}
		out.Rev = resp.Header.Revision
	case check.CAS:
		cmp := clientv3.Compare(clientv3.Value(op.Key), "=", op.Expect)
		if op.ExpectAbsent {
			cmp = clientv3.Compare(clientv3.CreateRevision(op.Key), "=", 0)
		}
		resp, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(op.Key, op.Value)).Commit()
		if err != nil {
			return out, err
		}
		out.Rev, out.Succeeded = resp.Header.Revision, resp.Succeeded
	default:
		return out, fmt.Errorf("check: kind %v not in the workload", op.Kind)
	}
	return out, nil
}

// lockClient takes a concurrency.Mutex over and over; while it holds it,
// it writes its fencing token (the lock key's create revision) to the
// guarded key three times with a txn that refuses a lower token. Every
// fifth hold it stalls like a holder in a long GC pause: it stops renewing
// its session's 2 s lease and waits past its expiry before writing, so
// another client takes the lock meanwhile and the guard must refuse the
// stale holder's writes. Faults make leases expire under holders too.
func (r *checkRun) lockClient(ctx context.Context, id int, cli *clientv3.Client) {
	var (
		sess     *concurrency.Session
		stopKeep context.CancelFunc = func() {}
	)
	defer func() {
		stopKeep()
		if sess != nil {
			sess.Orphan()
		}
	}()
	seq := 0
	for hold := 0; ctx.Err() == nil; {
		if sess != nil {
			select {
			case <-sess.Done():
				sess = nil
			default:
			}
		}
		if sess == nil {
			stopKeep()
			gctx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
			lease, err := cli.Grant(gctx, 2)
			cancel()
			var kctx context.Context
			kctx, stopKeep = keepAliveContext(ctx)
			if err == nil {
				sess, err = concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithContext(kctx))
			}
			if err != nil {
				sess = nil
				pause(ctx, 100*time.Millisecond)
				continue
			}
		}
		m := concurrency.NewMutex(sess, r.lockPre)
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := m.Lock(lctx)
		cancel()
		if err != nil {
			pause(ctx, 50*time.Millisecond)
			continue
		}
		r.locks.Add(1)
		hold++
		gctx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
		g, err := cli.Get(gctx, m.Key())
		cancel()
		if err == nil && len(g.Kvs) == 1 {
			tok := g.Kvs[0].CreateRevision
			if hold%5 == 0 {
				// The stall: the session dies with its lease.
				stopKeep()
				pause(ctx, 4*time.Second)
			}
			for range 3 {
				r.fencedWrite(ctx, cli, id, tok, seq)
				seq++
				pause(ctx, 30*time.Millisecond)
			}
		}
		uctx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
		m.Unlock(uctx)
		cancel()
	}
}

// keepAliveContext is the context of one session's keep-alives: canceling
// it stops renewing the lease without revoking it.
func keepAliveContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (r *checkRun) fencedWrite(ctx context.Context, cli *clientv3.Client, id int, tok int64, seq int) {
	fw := check.FencedWrite{Client: id, Token: tok, Value: check.FenceValue(tok, id, seq), Call: r.now()}
	wctx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
	resp, err := cli.Txn(wctx).
		If(clientv3.Compare(clientv3.Value(r.guard), "<", check.FenceBound(tok))).
		Then(clientv3.OpPut(r.guard, fw.Value)).Commit()
	cancel()
	fw.Return = r.now()
	if err != nil {
		fw.Status = check.Ambiguous
	} else {
		fw.Status, fw.Accepted, fw.Rev = check.OK, resp.Succeeded, resp.Header.Revision
	}
	r.mu.Lock()
	r.fenced = append(r.fenced, fw)
	r.mu.Unlock()
}

// checkWatcher watches the key-value prefix, reconnecting from the
// revision after the last event it got.
type checkWatcher struct {
	mu     sync.Mutex
	stream check.WatchStream
	next   int64
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

// waitFor waits up to limit for the watcher to pass rev.
func (cw *checkWatcher) waitFor(rev int64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		cw.mu.Lock()
		done := cw.next > rev
		cw.mu.Unlock()
		if done {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (cw *checkWatcher) snapshot() check.WatchStream {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	s := cw.stream
	s.Events = slices.Clone(s.Events)
	return s
}

// monitorLeader polls every member's status and records leader terms as
// annotations.
func (r *checkRun) monitorLeader(ctx context.Context, clis []*clientv3.Client) {
	names := map[uint64]string{}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		var leader, term uint64
		for i, m := range r.members {
			id, l, tm, err := memberStatus(ctx, clis[i], m.clientAddr)
			if err != nil {
				continue
			}
			names[id] = m.name
			if l != 0 && tm >= term {
				leader, term = l, tm
			}
		}
		if leader != 0 {
			name := names[leader]
			if name == "" {
				name = hexID(leader)
			}
			r.setLeader(name, term)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *checkRun) setLeader(name string, term uint64) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == r.leader && term == r.term {
		return
	}
	if r.leader != "" {
		r.anns = append(r.anns, check.Annotation{Tag: "leader", Start: r.leaderAt, End: now,
			Description: fmt.Sprintf("leader %s (term %d)", r.leader, r.term), Color: "#d6eaff"})
		r.changes++
	}
	r.leader, r.term, r.leaderAt = name, term, now
}

func (r *checkRun) closeLeader() {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leader != "" {
		r.anns = append(r.anns, check.Annotation{Tag: "leader", Start: r.leaderAt, End: now,
			Description: fmt.Sprintf("leader %s (term %d)", r.leader, r.term), Color: "#d6eaff"})
	}
}

func (r *checkRun) currentLeader() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leader
}

// progress prints one line a second on stderr.
func (r *checkRun) progress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		leader, fault := r.leader, ""
		if n := len(r.faultLog); n > 0 {
			fault = r.faultLog[n-1]
		}
		r.mu.Unlock()
		fmt.Fprintf(r.errw, "check: %5.1fs/%v  ops %d ok, %d unanswered  locks %d  leader %s  last fault: %s\n",
			time.Since(r.begin).Seconds(), r.f.duration, r.okOps.Load(), r.ambOps.Load(), r.locks.Load(), leader, fault)
	}
}

// nemesis carries out the schedule, one fault at a time.
func (r *checkRun) nemesis(ctx context.Context, sched []nemesisEvent) {
	rng := rand.New(rand.NewPCG(uint64(r.f.seed), 0x7a))
	for i, e := range sched {
		if d := e.At - time.Since(r.begin); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			return
		}
		target := e.Target
		if target == "leader" {
			target = r.currentLeader()
		}
		m := r.member(target)
		isLeader := m != nil && e.Target == "leader"
		if m == nil {
			m = r.members[rng.IntN(len(r.members))]
		}
		r.inject(ctx, i, e, m, isLeader)
	}
}

func (r *checkRun) member(name string) *checkMember {
	for _, m := range r.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

// inject carries out one fault on m and undoes it after e.For. Fault-plane
// rules also carry a duration, so a rule outlives no crashed check.
func (r *checkRun) inject(ctx context.Context, i int, e nemesisEvent, m *checkMember, isLeader bool) {
	id := fmt.Sprintf("check%d", i)
	start := r.now()
	var desc string
	var undo func()
	switch e.Kind {
	case "partition":
		desc = fmt.Sprintf("partition %s from the rest", m.name)
		spec := faults.Spec{ID: id, Kind: faults.KindPartition, Groups: [][]string{{m.name}},
			Duration: faults.Duration(e.For + 2*time.Second), Description: "concord check: " + desc}
		if err := runFaultInstall(ctx, r.fs, spec, io.Discard, io.Discard); err != nil {
			r.note("%s: %v", desc, err)
		}
		undo = func() { runFaultHeal(context.Background(), r.fs, []string{id}, io.Discard, io.Discard) }
	case "kill":
		desc = fmt.Sprintf("kill -9 %s", m.name)
		m.kill()
		undo = func() {
			if err := r.launch(m); err != nil {
				r.note("restart %s: %v", m.name, err)
			}
		}
	case "pause":
		desc = fmt.Sprintf("pause %s", m.name)
		if r.f.start > 0 {
			desc += " (SIGSTOP)"
			m.signal(syscall.SIGSTOP)
			undo = func() { m.signal(syscall.SIGCONT) }
		} else {
			if err := r.memberFault(ctx, map[string]any{"id": id, "kind": "pause", "member": m.name,
				"duration": e.For.String()}); err != nil {
				r.note("%s: %v", desc, err)
				return
			}
			undo = func() { runFaultHeal(context.Background(), r.fs, []string{id}, io.Discard, io.Discard) }
		}
	case "clock":
		desc = fmt.Sprintf("clock %s %s", m.name, signedDuration(e.Offset))
		if err := r.memberFault(ctx, map[string]any{"id": id, "kind": "clock", "member": m.name,
			"offset": e.Offset.String(), "duration": (e.For + 2*time.Second).String()}); err != nil {
			r.note("%s: not injected: %v", desc, err)
			return
		}
		undo = func() { runFaultHeal(context.Background(), r.fs, []string{id}, io.Discard, io.Discard) }
	}
	if isLeader {
		desc += " (the leader)"
	}
	r.mu.Lock()
	r.faultLog = append(r.faultLog, fmt.Sprintf("+%.1fs %s, for %v", time.Duration(start).Seconds(), desc, e.For.Round(time.Millisecond)))
	r.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-time.After(e.For):
	}
	undo()
	r.mu.Lock()
	r.anns = append(r.anns, check.Annotation{Tag: "nemesis", Start: start, End: r.now(), Description: desc, Color: "#ffe0a0"})
	r.mu.Unlock()
}

// memberFault installs a member fault (pause, clock) through the fault
// API of the members that take it. A fault plane without the kind refuses
// it (4xx), which is reported, not fatal.
func (r *checkRun) memberFault(ctx context.Context, spec map[string]any) error {
	var errs []error
	ok := 0
	for _, t := range r.fs.targets {
		if err := r.fs.call(ctx, t, http.MethodPost, "/v1/faults", spec, nil); err != nil {
			if definite(err) {
				return err
			}
			errs = append(errs, fmt.Errorf("%s: %w", t.name, err))
			continue
		}
		ok++
	}
	if ok == 0 {
		return errors.Join(errs...)
	}
	return nil
}

// healAll removes every fault rule, resumes paused members and restarts
// killed ones.
func (r *checkRun) healAll(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, m := range r.members {
		if r.f.start == 0 {
			continue
		}
		m.signal(syscall.SIGCONT)
		if !m.running() {
			if err := r.launch(m); err != nil {
				r.note("restart %s: %v", m.name, err)
			}
		}
	}
	if err := runFaultHeal(hctx, r.fs, nil, io.Discard, io.Discard); err != nil {
		r.note("heal: %v", err)
	}
}

// finalReads reads every key through every member (a linearizable get each,
// recorded in the history) and returns the highest revision seen.
func (r *checkRun) finalReads(ctx context.Context, clis []*clientv3.Client, keys []string, rev int64) int64 {
	for i, m := range r.members {
		client := r.f.clients + 2 + i
		for _, k := range keys {
			op := check.Op{Client: client, Kind: check.Get, Key: k, Member: m.name}
			h := r.rec.Call(op, r.now())
			gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			out, err := doKV(gctx, clis[i], op)
			cancel()
			if err != nil {
				r.rec.Fail(h, true, r.now())
				r.note("final read of %s on %s: %v", k, m.name, err)
				continue
			}
			r.rec.Return(h, out, r.now())
			rev = max(rev, out.Rev)
		}
	}
	return rev
}

// readCommitted reads the run's committed history back: every change under
// the run's prefix from firstRev to the store's current revision, through a
// watch from firstRev on the first member that answers.
func (r *checkRun) readCommitted(ctx context.Context, clis []*clientv3.Client, firstRev, minRev int64) (*check.Committed, error) {
	var lastErr error
	for i := range clis {
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := clis[i].Get(gctx, r.guard)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		end := max(resp.Header.Revision, minRev)
		c := &check.Committed{Rev: end, CompactRev: firstRev}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		reached := firstRev - 1
		for wr := range clis[i].Watch(wctx, r.prefix, clientv3.WithPrefix(), clientv3.WithRev(firstRev), clientv3.WithProgressNotify()) {
			if err := wr.Err(); err != nil {
				lastErr = err
				break
			}
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				if ev.Kv.ModRevision <= end && (strings.HasPrefix(k, r.kvPre) || k == r.guard) {
					c.Changes = append(c.Changes, check.Change{Rev: ev.Kv.ModRevision, Key: k,
						Value: string(ev.Kv.Value), Delete: ev.Type == clientv3.EventTypeDelete})
				}
				reached = max(reached, ev.Kv.ModRevision)
			}
			if wr.IsProgressNotify() || len(wr.Events) == 0 {
				reached = max(reached, wr.Header.Revision)
			}
			if reached >= end {
				break
			}
			if len(wr.Events) > 0 && reached < end {
				// Ask for progress so a tail of changes outside the prefix
				// does not leave us waiting for an event that never comes.
				clis[i].RequestProgress(wctx)
			}
		}
		cancel()
		if reached >= end {
			return c, nil
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("watch stopped at revision %d of %d", reached, end)
		}
	}
	return nil, fmt.Errorf("check: reading the committed history back: %w", lastErr)
}

// checkResult holds every checker's report.
type checkResult struct {
	lin     check.Linearization
	reports []check.Report
	verdict check.Verdict
	took    time.Duration
	judged  []check.Op
	// stale are the reads StaleReads names, in call order.
	stale []check.Op
}

// judge runs every checker over rec.
func judge(rec *check.Recording, timeout time.Duration) checkResult {
	start := time.Now()
	var res checkResult
	c := rec.Committed
	res.judged = check.ResolveAmbiguous(rec.Ops, c)
	res.lin = check.Linearizable(res.judged, timeout)
	staleReport, stale := check.StaleReads(res.judged, c)
	res.stale = stale
	res.reports = []check.Report{
		res.lin.Report,
		staleReport,
		check.Reads(res.judged, c),
		check.Durability(res.judged, c),
		check.Revisions(res.judged),
		check.AppliedOnce(c),
		check.Watch(rec.Watches, c),
		check.Fencing(rec.Fenced, c, rec.GuardKey),
	}
	var vs []check.Verdict
	for _, rp := range res.reports {
		vs = append(vs, rp.Verdict)
	}
	res.verdict = check.Worst(vs...)
	res.took = time.Since(start)
	return res
}

func exitCode(v check.Verdict) int {
	switch v {
	case check.Valid:
		return checkExitValid
	case check.Invalid:
		return checkExitInvalid
	}
	return checkExitUnknown
}

// writeReport writes history.json, report.html and summary.txt and prints
// the summary.
func (r *checkRun) writeReport(rec *check.Recording, res checkResult, w io.Writer) (int, error) {
	hf, err := os.Create(filepath.Join(r.dir, "history.json"))
	if err != nil {
		return 0, err
	}
	err = rec.WriteJSON(hf)
	if cerr := hf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("check: history.json: %w", err)
	}
	htmlStart := time.Now()
	html, err := os.Create(filepath.Join(r.dir, "report.html"))
	if err != nil {
		return 0, err
	}
	anns := slices.Clone(rec.Annotations)
	for i, o := range res.stale {
		if i == maxStaleAnnotations {
			break
		}
		anns = append(anns, check.Annotation{Client: o.Client, Start: o.Call, End: o.Return,
			Description: check.DescribeAnomaly(o), Details: fmt.Sprintf("on %s; see summary.txt", o.Member), Color: "#ff9a9a"})
	}
	err = res.lin.VisualizeAnnotated(html, anns, check.DescribeAnomaly)
	if cerr := html.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("check: report.html: %w", err)
	}
	r.mu.Lock()
	info := summaryInfo{
		Seed: r.f.seed, Duration: r.f.duration, Cluster: r.describeMembers(), Started: r.f.start > 0,
		UnsafeLocalReads: r.f.unsafeLocalReads, Nemesis: r.f.nemesis, Faults: slices.Clone(r.faultLog),
		LeaderChanges: r.changes, Locks: r.locks.Load(), Notes: slices.Clone(r.notes),
		HTMLTook: time.Since(htmlStart),
	}
	r.mu.Unlock()
	var b strings.Builder
	writeSummary(&b, info, rec, res)
	if err := os.WriteFile(filepath.Join(r.dir, "summary.txt"), []byte(b.String()), 0o644); err != nil {
		return 0, fmt.Errorf("check: summary.txt: %w", err)
	}
	fmt.Fprint(w, b.String())
	return exitCode(res.verdict), nil
}

// maxStaleAnnotations bounds the stale reads drawn into report.html.
const maxStaleAnnotations = 200

// summaryProblems bounds the problems listed per checker in the summary;
// history.json has the whole history to dig further.
const summaryProblems = 3

// summaryInfo is what the summary says about the run besides the history.
type summaryInfo struct {
	Seed             int64
	Duration         time.Duration
	Cluster          string
	Started          bool
	UnsafeLocalReads bool
	Nemesis          []string
	Faults           []string
	LeaderChanges    int
	Locks            int64
	Notes            []string
	HTMLTook         time.Duration
}

// writeSummary writes summary.txt: the verdict, operations by kind and
// status, faults, leader changes, each checker's verdict, and the first
// anomaly in words.
func writeSummary(w io.Writer, info summaryInfo, rec *check.Recording, res checkResult) {
	fmt.Fprintf(w, "concord check: %s\n", strings.ToUpper(res.verdict.String()))
	how := "targeted"
	if info.Started {
		how = "started"
	}
	fmt.Fprintf(w, "cluster (%s): %s\n", how, info.Cluster)
	nem := strings.Join(info.Nemesis, ",")
	if nem == "" {
		nem = "none"
	}
	fmt.Fprintf(w, "seed %d, duration %v, nemesis %s, unsafe-local-reads %t\n", info.Seed, info.Duration, nem, info.UnsafeLocalReads)
	counts := map[string]int{}
	for i := range rec.Ops {
		o := &rec.Ops[i]
		counts[o.Kind.String()+" "+o.Status.String()]++
	}
	total := len(rec.Ops) + len(rec.Fenced)
	fmt.Fprintf(w, "operations: %d (%.0f/s): %d key-value, %d fenced writes, %d lock acquisitions\n",
		total, float64(total)/max(info.Duration.Seconds(), 1), len(rec.Ops), len(rec.Fenced), info.Locks)
	for _, k := range []check.Kind{check.Get, check.Put, check.CAS, check.Delete} {
		var parts []string
		for _, s := range []check.Status{check.OK, check.Failed, check.Ambiguous, check.Pending} {
			if n := counts[k.String()+" "+s.String()]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, n))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "  %-6s %s\n", k, strings.Join(parts, ", "))
		}
	}
	var acc, ref, amb int
	for _, f := range rec.Fenced {
		switch {
		case f.Status != check.OK:
			amb++
		case f.Accepted:
			acc++
		default:
			ref++
		}
	}
	fmt.Fprintf(w, "  fenced accepted %d, refused %d, ambiguous %d\n", acc, ref, amb)
	resolved := 0
	for i := range rec.Ops {
		if rec.Ops[i].Status != res.judged[i].Status {
			resolved++
		}
	}
	fmt.Fprintf(w, "  %d unanswered writes never took effect (their values are not in the committed history)\n", resolved)
	events := 0
	for _, s := range rec.Watches {
		events += len(s.Events)
	}
	fmt.Fprintf(w, "watch: %d streams, %d events\n", len(rec.Watches), events)
	if rec.Committed != nil {
		fmt.Fprintf(w, "committed history: %d changes, revisions %d..%d\n", len(rec.Committed.Changes), rec.Committed.CompactRev, rec.Committed.Rev)
	}
	fmt.Fprintf(w, "faults: %d\n", len(info.Faults))
	for _, f := range info.Faults {
		fmt.Fprintf(w, "  %s\n", f)
	}
	fmt.Fprintf(w, "leader changes: %d\n", info.LeaderChanges)
	judged := 0
	for _, k := range res.lin.Keys {
		judged += k.Ops
	}
	rate := float64(judged) / max(res.took.Seconds(), 1e-3)
	fmt.Fprintf(w, "checkers (%v, linearizability over %d operations in %d keys, %.0f ops/s; visualization %v):\n",
		res.took.Round(time.Millisecond), judged, len(res.lin.Keys), rate, info.HTMLTook.Round(time.Millisecond))
	for _, rp := range res.reports {
		fmt.Fprintf(w, "  %s: %s", rp.Checker, rp.Verdict)
		if rp.Count > 0 {
			fmt.Fprintf(w, " (%d violations)", rp.Count)
		}
		fmt.Fprintln(w)
		for i, p := range rp.Problems {
			if i == summaryProblems {
				fmt.Fprintf(w, "    ... %d more\n", max(rp.Count, len(rp.Problems))-i)
				break
			}
			fmt.Fprintf(w, "    %s\n", p)
		}
	}
	if len(res.stale) > 0 {
		o := res.stale[0]
		fmt.Fprintf(w, "first anomaly: %s (client %d on %s, called at +%.3fs); %d stale reads in all, drawn in report.html\n",
			check.DescribeAnomaly(o), o.Client, o.Member, time.Duration(o.Call).Seconds(), len(res.stale))
	} else if len(res.lin.Anomalies) > 0 {
		o := res.lin.Anomalies[0]
		fmt.Fprintf(w, "first anomaly: %s (client %d on %s, called at +%.3fs); see report.html\n",
			check.DescribeAnomaly(o), o.Client, o.Member, time.Duration(o.Call).Seconds())
	} else {
		for _, rp := range res.reports {
			if rp.Verdict == check.Invalid && len(rp.Problems) > 0 {
				fmt.Fprintf(w, "first anomaly: %s: %s\n", rp.Checker, rp.Problems[0])
				break
			}
		}
	}
	for _, n := range info.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "exit status: %d (0 valid, 1 invalid, 2 unknown)\n", exitCode(res.verdict))
}
