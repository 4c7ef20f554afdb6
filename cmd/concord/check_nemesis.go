package main

// concord check: the nemesis — its schedule, the faults it injects, leader tracking.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concord-db/concord/internal/check"
	"github.com/concord-db/concord/internal/faults"
)

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
