package main

// Issue 5's targets at scale, on 3 members of every system: ranges with
// --limit 100 and --count-only over 100,000 keys (range-big), memory per key
// and restart to ready with 1,000,000 keys (mem-1m), and the write gap after
// kill -9 of the leader (failover). Each is a section of its own on the page
// with its own run line, so that `--only <id>` measures just that and
// rewrites just its section and its rows of the targets table. Each takes a
// fresh cluster per system, alone on the machine, after the side-by-side
// clusters.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

const (
	rangeBigID = "range-big"
	mem1mID    = "mem-1m"
	failoverID = "failover"
)

// scaleIDs are the sections at scale, in page order.
var scaleIDs = []string{rangeBigID, mem1mID, failoverID}

// The loads: 8-byte keys (a 2-byte prefix and a 6-byte big-endian number,
// so they sort in load order and the prefix bounds them with printable
// arguments) and 256-byte values, as in the side-by-side put workloads.
const (
	bigKeySize  = 8
	bigValSize  = 256
	rangePrefix = "r/"
	rangeEnd    = "r0" // the first key after every "r/…"
	memPrefix   = "m/"
	memEnd      = "m0"
)

// scaleSizes are a run's sizes: issue 5's, or a smoke run's tiny ones.
type scaleSizes struct {
	RangeKeys, MemKeys, Trials int
}

func sizesFor(smoke bool) scaleSizes {
	if smoke {
		return scaleSizes{RangeKeys: 2000, MemKeys: 2000, Trials: 1}
	}
	return scaleSizes{RangeKeys: 100_000, MemKeys: 1_000_000, Trials: 5}
}

// loadArgs is the `concord bench` command line that loads n keys under
// prefix through the leader, 1,000 clients on 50 connections, each key
// written once. A load is not a measured workload: its shape only has to be
// the same for every system and fast. Ten times the tables' 100 clients in
// flight gives every system bigger raft batches: the 1,000,000 keys took
// 98 / 111 / 93 s (Concord / etcd 3.6 / etcd 3.4) against 118 / 194 / 183 s
// with 100 clients on 10 connections, in two full runs of 2026-12-07 on one
// machine, which keeps the full run within its 30 minutes. Every key is
// still its own put, so each system's log and index hold what single puts
// leave behind; etcd's memory after the load does depend on its shape
// (bench/STEPS.md, "What bounds the rest").
func loadArgs(endpoints string, n int, prefix string) []string {
	return []string{"bench", "--format", "json", "--endpoints", endpoints, "--target-leader", "--conns", "50", "--clients", "1000",
		"put", "--key-size", strconv.Itoa(bigKeySize), "--val-size", strconv.Itoa(bigValSize),
		"--sequential-keys", "--key-space-size", strconv.Itoa(n), "--key-prefix", prefix, "--total", strconv.Itoa(n)}
}

// loadTemplate is loadArgs as the page shows it.
func loadTemplate(n int, prefix string) string {
	return "concord " + strings.Join(loadArgs("<endpoints>", n, prefix), " ")
}

// rangeBigWorkloads are the range workloads over the loaded keys, spelled
// the same for both tools (etcd's tools/benchmark has --limit and
// --count-only too).
func rangeBigWorkloads() []workload {
	c100 := []string{"--conns", "10", "--clients", "100"}
	c1 := []string{"--conns", "1", "--clients", "1"}
	rng := func(extra ...string) []string {
		return append([]string{"range", rangePrefix, rangeEnd, "--consistency", "l"}, extra...)
	}
	limit, count := rng("--limit", "100"), rng("--count-only")
	return []workload{
		{ID: "range-limit-100", Name: "range --limit 100, 100 clients/10 conns", Global: c100, Concord: limit, Etcd: limit,
			TotalFlag: "--total", Smoke: 200},
		{ID: "range-count-100", Name: "range --count-only, 100 clients/10 conns", Global: c100, Concord: count, Etcd: count,
			TotalFlag: "--total", Smoke: 200},
		{ID: "range-limit-1", Name: "range --limit 100, 1 client", Global: c1, Concord: limit, Etcd: limit,
			TotalFlag: "--total", Smoke: 50},
		{ID: "range-count-1", Name: "range --count-only, 1 client", Global: c1, Concord: count, Etcd: count,
			TotalFlag: "--total", Smoke: 50},
	}
}

func bigCellKey(sys, wl string, t toolKind) string { return sys + "|" + wl + "|" + string(t) }

// loadResult is one load of keys and the check that they all landed.
type loadResult struct {
	Keys    int     `json:"keys"`
	Load    sample  `json:"load"`
	Counted []int64 `json:"counted_per_member"`
}

// procMem is a member's memory, from /proc/<pid>/status, in KiB.
type procMem struct {
	RSS  int64 `json:"vm_rss_kib"`
	HWM  int64 `json:"vm_hwm_kib"`
	Anon int64 `json:"rss_anon_kib"`
	File int64 `json:"rss_file_kib"`
}

// parseProcStatus reads VmRSS, VmHWM, RssAnon and RssFile (kB) from the
// text of /proc/<pid>/status.
func parseProcStatus(s string) (procMem, error) {
	var m procMem
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var dst *int64
		switch f[0] {
		case "VmRSS:":
			dst = &m.RSS
		case "VmHWM:":
			dst = &m.HWM
		case "RssAnon:":
			dst = &m.Anon
		case "RssFile:":
			dst = &m.File
		default:
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("bench: /proc status %q: %w", line, err)
		}
		*dst = v
	}
	if m.RSS == 0 {
		return m, errors.New("bench: /proc status has no VmRSS")
	}
	return m, nil
}

// perKeyBytes is issue 5's memory figure: the resident set less the raw
// bytes of the keys and values, per key.
func perKeyBytes(rssKiB int64, keys, rawPerKey int) float64 {
	if keys <= 0 {
		return 0
	}
	return (float64(rssKiB)*1024 - float64(keys)*float64(rawPerKey)) / float64(keys)
}

// memResult is mem-1m for one system.
type memResult struct {
	loadResult
	Mem []procMem `json:"mem_after_load"`
	// Stop is SIGTERM to every member until all had exited; Killed counts
	// members that needed SIGKILL after the grace period.
	StopSecs float64 `json:"stop_s"`
	Killed   int     `json:"killed"`
	// Ready is from starting the members again to every member serving.
	ReadySecs    float64   `json:"restart_to_ready_s"`
	CountedAfter []int64   `json:"counted_after_restart"`
	MemAfter     []procMem `json:"mem_after_restart"`
	Err          string    `json:"error,omitempty"`
}

// perKey is each member's bytes per key after the load.
func (m *memResult) perKey() []float64 {
	out := make([]float64, len(m.Mem))
	for i, x := range m.Mem {
		out[i] = perKeyBytes(x.RSS, m.Keys, bigKeySize+bigValSize)
	}
	return out
}

// failTrial is one kill -9 of the leader.
type failTrial struct {
	Killed string  `json:"killed"`
	GapMS  float64 `json:"gap_ms"`
	// RejoinMS is from restarting the killed member to its serving again.
	RejoinMS float64 `json:"rejoin_ms"`
}

// failoverResult is failover for one system.
type failoverResult struct {
	Trials   []failTrial    `json:"trials"`
	Acked    int            `json:"puts_acked"`
	Failed   int            `json:"puts_failed"`
	FailedBy map[string]int `json:"puts_failed_by"`
	// Unanswered counts puts still waiting when the load stopped.
	Unanswered int    `json:"puts_unanswered_at_stop"`
	Err        string `json:"error,omitempty"`
}

func (f *failoverResult) gaps() spread {
	xs := make([]float64, len(f.Trials))
	for i, t := range f.Trials {
		xs[i] = t.GapMS
	}
	return spreadOf(xs)
}

// scaleSteps is the sections' share of the progress accounting.
func (e *env) scaleSteps(perCell float64) (int, float64) {
	steps, units := 0, 0.0
	n := float64(len(e.systems))
	sz := sizesFor(e.opts.Smoke)
	if e.scale[rangeBigID] {
		c := len(rangeBigWorkloads()) * len(tools)
		steps += len(e.systems) * (1 + c)
		units += n * (15 + float64(c)*perCell)
	}
	if e.scale[mem1mID] {
		steps += 2 * len(e.systems)
		units += n * (5 + float64(sz.MemKeys)/12000 + 15)
	}
	if e.scale[failoverID] {
		steps += len(e.systems) * (1 + sz.Trials)
		units += n * (5 + 5*float64(sz.Trials))
	}
	return steps, units
}

// measureScale runs the selected sections at scale, each system in turn.
func (e *env) measureScale(ctx context.Context, p *progress, work string, perCell float64, runTimeout time.Duration) error {
	for _, id := range scaleIDs {
		if !e.scale[id] {
			continue
		}
		t0 := time.Now()
		for _, sys := range e.systems {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			dir := filepath.Join(work, id+"-"+sys.Key)
			var err error
			switch id {
			case rangeBigID:
				err = e.measureRangeBig(ctx, p, sys, dir, perCell, runTimeout)
			case mem1mID:
				err = e.measureMem(ctx, p, sys, dir)
			case failoverID:
				err = e.measureFailover(ctx, p, sys, dir)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				p.note("  %s ×3 | %s | FAILED: %s", sys.Name, id, firstOf(err.Error()))
			}
		}
		e.phases = append(e.phases, phase{id, time.Since(t0)})
	}
	return nil
}

// startScaleCluster starts a fresh 3-member cluster of sys, waits until it
// is ready and dials each member.
func (e *env) startScaleCluster(ctx context.Context, sys system, dir string) (*cluster, []*rpcMember, func(), error) {
	cl, err := startCluster(sys, 3, dir, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cl.waitReady(e.concord.Bin, 60*time.Second); err != nil {
		cl.stop()
		return nil, nil, nil, err
	}
	ms, closeAll, err := dialMembers(cl.Endpoints)
	if err != nil {
		cl.stop()
		return nil, nil, nil, err
	}
	return cl, ms, func() { closeAll(); cl.stop() }, nil
}

// load writes n keys under prefix with `concord bench put`, then counts
// them through every member: each must see exactly n.
func (e *env) load(ctx context.Context, cl *cluster, ms []*rpcMember, n int, prefix, end string) (loadResult, error) {
	r := loadResult{Keys: n}
	lctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	args := loadArgs(strings.Join(cl.Endpoints, ","), n, prefix)
	out, errOut, err := runCmd(lctx, e.concord.Bin, args, "")
	if err != nil {
		return r, fmt.Errorf("bench: load: concord %s: %w\n%s", strings.Join(args, " "), err, tail(errOut))
	}
	if r.Load, err = parseConcord(out); err != nil {
		return r, fmt.Errorf("bench: load: %w", err)
	}
	r.Counted, err = countAll(ctx, ms, prefix, end)
	if err != nil {
		return r, err
	}
	for _, c := range r.Counted {
		if c != int64(n) {
			return r, fmt.Errorf("bench: load: counted %v keys under %q, want %d each (the load had %d failed puts)",
				r.Counted, prefix, n, r.Load.Failed)
		}
	}
	return r, nil
}

// countAll counts [prefix, end) through every member, linearizably.
func countAll(ctx context.Context, ms []*rpcMember, prefix, end string) ([]int64, error) {
	var out []int64
	for _, m := range ms {
		c, err := m.count(ctx, []byte(prefix), []byte(end), time.Minute)
		if err != nil {
			return out, fmt.Errorf("bench: count through %s: %w", m.ep, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (e *env) measureRangeBig(ctx context.Context, p *progress, sys system, dir string, perCell float64, runTimeout time.Duration) error {
	wls := rangeBigWorkloads()
	fail := func(err error) error {
		for _, w := range wls {
			for _, t := range tools {
				if e.bigCells[bigCellKey(sys.Key, w.ID, t)] == nil {
					e.bigCells[bigCellKey(sys.Key, w.ID, t)] = &cell{Err: "setup: " + err.Error(), Command: e.template(t, w)}
				}
			}
		}
		return err
	}
	n := sizesFor(e.opts.Smoke).RangeKeys
	p.step(15, "%s × 3: starting, loading %d keys", sys.Name, n)
	cl, ms, stop, err := e.startScaleCluster(ctx, sys, dir)
	if err != nil {
		return fail(err)
	}
	defer stop()
	lr, err := e.load(ctx, cl, ms, n, rangePrefix, rangeEnd)
	e.rangeLoads[sys.Key] = &lr
	if err != nil {
		return fail(err)
	}
	p.note("  %s ×3 | loaded %d keys in %.1f s", sys.Name, n, lr.Load.Elapsed)
	for _, w := range wls {
		for _, t := range tools {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.bigCells[bigCellKey(sys.Key, w.ID, t)] = e.measureNoted(ctx, p, perCell, sys.Name+" ×3", t, w, cl, runTimeout)
		}
	}
	return nil
}

// readMem reads every running member's memory.
func (cl *cluster) readMem() ([]procMem, error) {
	var out []procMem
	for i, p := range cl.procs {
		if p == nil {
			return out, fmt.Errorf("bench: member m%d is not running", i)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Process.Pid))
		if err != nil {
			return out, err
		}
		m, err := parseProcStatus(string(b))
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// settle is how long the members rest after the load before their memory
// is read, so that what the load left in flight (snapshots, compactions of
// the log, the Go runtime's background work) has a moment to finish, the
// same for every system.
const settle = 3 * time.Second

func (e *env) measureMem(ctx context.Context, p *progress, sys system, dir string) error {
	n := sizesFor(e.opts.Smoke).MemKeys
	r := &memResult{}
	e.mem[sys.Key] = r
	err := func() error {
		p.step(5+float64(n)/12000, "%s × 3: starting, loading %d keys", sys.Name, n)
		cl, ms, stop, err := e.startScaleCluster(ctx, sys, dir)
		if err != nil {
			return err
		}
		defer stop()
		lr, err := e.load(ctx, cl, ms, n, memPrefix, memEnd)
		r.loadResult = lr
		if err != nil {
			return err
		}
		time.Sleep(settle)
		if r.Mem, err = cl.readMem(); err != nil {
			return err
		}
		pk := r.perKey()
		p.note("  %s ×3 | loaded %d keys in %.1f s | VmRSS %s MiB | %s B/key", sys.Name, n, lr.Load.Elapsed,
			joinF(mibs(r.Mem, func(m procMem) int64 { return m.RSS }), "%.0f"), joinF(pk, "%.0f"))

		p.step(15, "%s × 3: restart with %d keys", sys.Name, n)
		took, killed := cl.terminate(60 * time.Second)
		r.StopSecs, r.Killed = took.Seconds(), killed
		t0 := time.Now()
		for i := range cl.procs {
			if err := cl.startMember(i); err != nil {
				return err
			}
		}
		at, err := waitAllServe(ctx, ms, 5*time.Minute)
		if err != nil {
			return fmt.Errorf("bench: restart: %w (logs in %s)", err, dir)
		}
		r.ReadySecs = at.Sub(t0).Seconds()
		if r.CountedAfter, err = countAll(ctx, ms, memPrefix, memEnd); err != nil {
			return err
		}
		if r.MemAfter, err = cl.readMem(); err != nil {
			return err
		}
		p.note("  %s ×3 | stop %.2f s (%d killed) | restart to ready %.2f s | counted %v", sys.Name, r.StopSecs, killed, r.ReadySecs, r.CountedAfter)
		return nil
	}()
	if err != nil {
		r.Err = err.Error()
	}
	return err
}

func mibs(ms []procMem, f func(procMem) int64) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = float64(f(m)) / 1024
	}
	return out
}

func joinF(xs []float64, format string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, ", ")
}

// ack is one acknowledged put of the failover load.
type ack struct{ issued, acked time.Time }

// ackLog collects the failover load's acknowledgements, in the order they
// arrived.
type ackLog struct {
	mu         sync.Mutex
	acks       []ack
	failed     int
	failedBy   map[string]int // by errorClass
	unanswered int            // still waiting when the load stopped
}

// record notes one put's outcome; stopped says the load had been stopped
// when it ended, so an error is the stop's, not the system's.
func (l *ackLog) record(issued, acked time.Time, err error, stopped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil && stopped {
		l.unanswered++
		return
	}
	if err != nil {
		l.failed++
		if l.failedBy == nil {
			l.failedBy = map[string]int{}
		}
		l.failedBy[errorClass(err)]++
		return
	}
	l.acks = append(l.acks, ack{issued, acked})
}

// errorClass names a failed put for the page: its gRPC code and message,
// without the details that differ between puts (addresses, ports).
func errorClass(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return firstOf(err.Error())
	}
	msg := st.Message()
	const dial = "dial tcp "
	if i := strings.Index(msg, dial); i >= 0 {
		if j := strings.Index(msg[i+len(dial):], ": "); j >= 0 {
			msg = msg[:i] + "dial tcp" + msg[i+len(dial)+j:]
		}
	}
	if len(msg) > 120 {
		msg = msg[:120] + "…"
	}
	return st.Code().String() + ": " + strings.TrimSpace(msg)
}

func (l *ackLog) snapshot() ([]ack, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acks), l.failed
}

// firstAckAfter is the earliest acknowledgement of a put sent at or after
// t: puts in flight before t do not count, whatever became of them.
func firstAckAfter(acks []ack, t time.Time) (time.Time, bool) {
	var first time.Time
	for _, a := range acks {
		if !a.issued.Before(t) && (first.IsZero() || a.acked.Before(first)) {
			first = a.acked
		}
	}
	return first, !first.IsZero()
}

// The failover load: every putEvery, a put through each member's own client
// URL, each on its own goroutine with a deadline of putTimeout, whether or
// not the previous ones have been answered (so a put stuck on a dead or
// leaderless member does not hold back the next).
const (
	putEvery   = 5 * time.Millisecond
	putTimeout = 5 * time.Second
	// steadyBeforeKill is how long the load runs before each kill.
	steadyBeforeKill = time.Second
)

// startPutters runs the failover load until stop is called; stop waits for
// every put in flight.
func startPutters(ctx context.Context, ms []*rpcMember, log *ackLog) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	val := bytes.Repeat([]byte("v"), bigValSize)
	for i, m := range ms {
		key := []byte(fmt.Sprintf("f/%06d", i)) // 8 bytes
		wg.Go(func() {
			tick := time.NewTicker(putEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				wg.Go(func() {
					issued := time.Now()
					err := m.put(ctx, key, val, putTimeout)
					log.record(issued, time.Now(), err, ctx.Err() != nil)
				})
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

func (e *env) measureFailover(ctx context.Context, p *progress, sys system, dir string) error {
	trials := sizesFor(e.opts.Smoke).Trials
	r := &failoverResult{}
	e.failover[sys.Key] = r
	err := func() error {
		p.step(5, "%s × 3: starting, steady put load", sys.Name)
		cl, ms, stop, err := e.startScaleCluster(ctx, sys, dir)
		if err != nil {
			return err
		}
		defer stop()
		var log ackLog
		stopPuts := startPutters(ctx, ms, &log)
		defer func() {
			stopPuts()
			acks, failed := log.snapshot()
			r.Acked, r.Failed = len(acks), failed
			log.mu.Lock()
			r.FailedBy, r.Unanswered = maps.Clone(log.failedBy), log.unanswered
			log.mu.Unlock()
		}()
		for k := range trials {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.step(5, "%s × 3: kill -9 of the leader, trial %d of %d", sys.Name, k+1, trials)
			li, err := findLeader(ctx, ms, 30*time.Second)
			if err != nil {
				return err
			}
			time.Sleep(steadyBeforeKill)
			if acks, _ := log.snapshot(); len(acks) == 0 {
				return errors.New("bench: the put load has no acknowledgement before the kill")
			}
			t0 := time.Now()
			cl.kill9(li) // returns once the process has been reaped
			gone := time.Now()
			var at time.Time
			for {
				acks, _ := log.snapshot()
				var ok bool
				if at, ok = firstAckAfter(acks, gone); ok {
					break
				}
				if time.Since(t0) > 60*time.Second {
					return fmt.Errorf("bench: no put acknowledged within 60 s of kill -9 of m%d (logs in %s)", li, dir)
				}
				time.Sleep(putEvery)
			}
			tr := failTrial{Killed: fmt.Sprintf("m%d", li), GapMS: float64(at.Sub(t0)) / float64(time.Millisecond)}
			t1 := time.Now()
			if err := cl.startMember(li); err != nil {
				return err
			}
			back, err := ms[li].waitServes(ctx, 2*time.Minute)
			if err != nil {
				return err
			}
			tr.RejoinMS = float64(back.Sub(t1)) / float64(time.Millisecond)
			r.Trials = append(r.Trials, tr)
			p.note("  %s ×3 | kill -9 of the leader (%s) | write gap %.0f ms | restarted member serving after %.0f ms",
				sys.Name, tr.Killed, tr.GapMS, tr.RejoinMS)
		}
		return nil
	}()
	if err != nil {
		r.Err = err.Error()
	}
	return err
}
