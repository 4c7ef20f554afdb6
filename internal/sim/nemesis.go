package sim

import (
	"fmt"
	"strings"

	"go.etcd.io/raft/v3"
)

type faultKind uint8

const (
	faultPartition faultKind = iota + 1 // two random groups cut off from each other
	faultIsolateLeader
	faultOneWay // one member's outgoing (or incoming) links cut
	faultDrop   // random loss on every link
	faultDelay  // slow links from one member, or everywhere (reorders)
	faultDup    // duplicated messages
	faultCrash  // one member killed, restarted later
	faultCrashLeader
	faultPowerLoss // every member killed at once, restarted later
	faultPause     // one member frozen (GC pause, SIGSTOP)
	faultPauseLeader
	faultSkew     // one member's clock runs fast or slow
	faultTransfer // leadership transfer to a random member
	faultReplace  // remove a member; add a brand-new one when it ends
	faultDiskFail // one member's disk fails (EIO on sync, or ENOSPC)
	faultSlowDisk // one member's fsyncs take long
)

var faultWeights = []struct {
	kind   faultKind
	weight int
}{
	{faultPartition, 14},
	{faultIsolateLeader, 10},
	{faultOneWay, 8},
	{faultDrop, 7},
	{faultDelay, 7},
	{faultDup, 4},
	{faultCrash, 10},
	{faultCrashLeader, 8},
	{faultPowerLoss, 4},
	{faultPause, 5},
	{faultPauseLeader, 5},
	{faultSkew, 6},
	{faultTransfer, 6},
	{faultReplace, 5},
	{faultDiskFail, 5},
	{faultSlowDisk, 5},
}

// fault is one scheduled nemesis action. Parameters are drawn when the
// schedule is planned; "the leader" is resolved when the fault starts.
type fault struct {
	n      int
	kind   faultKind
	at     int64
	dur    int64
	target int    // member index, or -1
	group  uint32 // faultPartition: one side
	in     bool   // faultOneWay: cut incoming instead of outgoing
	p      float64
	delay  int64
	jitter int64
	factor float64

	rules   []*rule
	victims []int
	done    bool
}

// planFaults draws the whole fault schedule from the seed before the run
// starts, and writes it at the top of the trace.
func (s *simulation) planFaults() {
	r := s.nemRng
	n := len(s.members)
	all := uint32(1)<<n - 1
	end := int64(s.cfg.Duration)
	total := 0
	for _, w := range faultWeights {
		total += w.weight
	}
	replacements := 0
	t := int64(1e9) + r.Int64N(int64(1e9))
	for t < end-int64(5e8) {
		f := &fault{n: len(s.faults) + 1, at: t, target: -1}
		pick := r.IntN(total)
		for _, w := range faultWeights {
			if pick < w.weight {
				f.kind = w.kind
				break
			}
			pick -= w.weight
		}
		// Durations from a blip to several election timeouts.
		f.dur = int64(2e8) + r.Int64N(int64(4e9))
		switch f.kind {
		case faultPartition:
			for f.group == 0 || f.group == all {
				f.group = uint32(r.IntN(int(all)))
			}
		case faultOneWay:
			f.target = r.IntN(n)
			f.in = r.IntN(2) == 0
		case faultDrop:
			f.p = 0.05 + 0.45*r.Float64()
		case faultDelay:
			if r.IntN(2) == 0 {
				f.target = r.IntN(n)
			}
			f.delay = int64(r.IntN(200)) * 1e6
			f.jitter = int64(1+r.IntN(300)) * 1e6
		case faultDup:
			f.p = 0.1 + 0.4*r.Float64()
		case faultCrash, faultPause:
			f.target = r.IntN(n)
		case faultDiskFail:
			f.target = r.IntN(n)
			f.in = r.IntN(2) == 0 // ENOSPC rather than EIO
		case faultSlowDisk:
			f.target = r.IntN(n)
			f.delay = int64(5+r.IntN(200)) * 1e6
		case faultPowerLoss:
			f.dur = int64(1e8) + r.Int64N(int64(2e9))
		case faultSkew:
			f.target = r.IntN(n)
			f.factor = clockSkewMinFactor + 1.5*r.Float64()
		case faultTransfer:
			f.target = r.IntN(n)
			f.dur = 0
		case faultReplace:
			if replacements++; replacements > maxReplacements {
				f.kind, f.target, f.dur = faultTransfer, r.IntN(n), 0
			}
		}
		s.faults = append(s.faults, f)
		s.tracef("plan #%d at %s for %s: %s", f.n, fmtTime(f.at), fmtDur(f.dur), s.describeFault(f))
		s.at(f.at, &event{kind: evFault, fault: f})
		t += int64(2e8) + r.Int64N(int64(15e8))
	}
}

func (s *simulation) describeFault(f *fault) string {
	tgt := "the leader"
	if f.target >= 0 {
		tgt = fmt.Sprintf("n%d", f.target+1)
	}
	switch f.kind {
	case faultPartition:
		return "partition " + s.groups(f.group)
	case faultIsolateLeader:
		return "isolate the leader"
	case faultOneWay:
		if f.in {
			return "cut links into " + tgt
		}
		return "cut links out of " + tgt
	case faultDrop:
		return fmt.Sprintf("drop %.0f%% of messages", 100*f.p)
	case faultDelay:
		where := "on every link"
		if f.target >= 0 {
			where = "from " + tgt
		}
		return fmt.Sprintf("delay %s ±%s %s", fmtMillis(f.delay), fmtMillis(f.jitter), where)
	case faultDup:
		return fmt.Sprintf("duplicate %.0f%% of messages", 100*f.p)
	case faultCrash, faultCrashLeader:
		return "crash " + tgt
	case faultPowerLoss:
		return "power loss: crash every member"
	case faultPause, faultPauseLeader:
		return "pause " + tgt
	case faultSkew:
		return fmt.Sprintf("clock of %s at %.2fx", tgt, 1/f.factor)
	case faultTransfer:
		return "transfer leadership to " + tgt
	case faultReplace:
		return "remove a member, add a new one when it ends"
	case faultDiskFail:
		if f.in {
			return "disk of " + tgt + " full (ENOSPC)"
		}
		return "disk of " + tgt + " fails fsync (EIO)"
	case faultSlowDisk:
		return fmt.Sprintf("disk of %s slow: %s per fsync", tgt, fmtMillis(f.delay))
	}
	return "?"
}

// groups renders a partition as "n1,n3 | n2".
func (s *simulation) groups(side uint32) string {
	var a, b []string
	for i := range s.members {
		if side&(1<<i) != 0 {
			a = append(a, s.members[i].name)
		} else {
			b = append(b, s.members[i].name)
		}
	}
	return strings.Join(a, ",") + " | " + strings.Join(b, ",")
}

// leader returns the live member leading the highest term, if any.
func (s *simulation) leader() *member {
	var best *member
	var bestTerm uint64
	for _, m := range s.members {
		if !m.up || m.paused || m.removed || m.role != raft.StateLeader {
			continue
		}
		if t := m.core.BasicStatus().GetTerm(); best == nil || t > bestTerm {
			best, bestTerm = m, t
		}
	}
	return best
}

func (s *simulation) addRule(f *fault, r *rule) {
	f.rules = append(f.rules, r)
	s.rules = append(s.rules, r)
}

func (s *simulation) startFault(f *fault) {
	if s.phase != phaseRun {
		return
	}
	n := len(s.members)
	all := uint32(1)<<n - 1
	target := f.target
	switch f.kind {
	case faultIsolateLeader, faultCrashLeader, faultPauseLeader:
		l := s.leader()
		if l == nil {
			s.tracef("fault #%d: %s: no leader, skipped", f.n, s.describeFault(f))
			f.done = true
			return
		}
		target = l.idx
	case faultReplace:
		s.startRemove(f)
		return
	case faultTransfer:
		l := s.leader()
		if l == nil || l.idx == target {
			s.tracef("fault #%d: %s: no leader or already leads, skipped", f.n, s.describeFault(f))
			f.done = true
			return
		}
		s.tracef("fault #%d: %s asks %s to transfer leadership to n%d", f.n, l.name, l.name, target+1)
		if s.guard(l, "TransferLeadership", func() { l.core.TransferLeadership(uint64(target + 1)) }) {
			s.drive(l)
		}
		f.done = true
		return
	}
	desc := s.describeFault(f)
	if target >= 0 && f.target < 0 {
		desc += fmt.Sprintf(" (n%d)", target+1)
	}
	s.tracef("FAULT #%d start: %s for %s", f.n, desc, fmtDur(f.dur))
	var bit uint32
	if target >= 0 {
		bit = uint32(1) << target
	}
	switch f.kind {
	case faultPartition:
		other := all &^ f.group
		s.addRule(f, &rule{kind: ruleCut, from: f.group, to: other, desc: fmt.Sprintf("partition #%d", f.n)})
		s.addRule(f, &rule{kind: ruleCut, from: other, to: f.group, desc: fmt.Sprintf("partition #%d", f.n)})
	case faultIsolateLeader:
		s.addRule(f, &rule{kind: ruleCut, from: bit, to: all, desc: fmt.Sprintf("isolation #%d", f.n)})
		s.addRule(f, &rule{kind: ruleCut, from: all, to: bit, desc: fmt.Sprintf("isolation #%d", f.n)})
	case faultOneWay:
		r := &rule{kind: ruleCut, from: bit, to: all, desc: fmt.Sprintf("one-way cut #%d", f.n)}
		if f.in {
			r.from, r.to = all, bit
		}
		s.addRule(f, r)
	case faultDrop:
		s.addRule(f, &rule{kind: ruleDrop, from: all, to: all, p: f.p, desc: fmt.Sprintf("loss #%d", f.n)})
	case faultDelay:
		from := all
		if target >= 0 {
			from = bit
		}
		s.addRule(f, &rule{kind: ruleDelay, from: from, to: all, delay: f.delay, jitter: f.jitter})
	case faultDup:
		s.addRule(f, &rule{kind: ruleDup, from: all, to: all, p: f.p})
	case faultCrash, faultCrashLeader:
		m := s.members[target]
		if !m.up {
			s.tracef("fault #%d: %s already down", f.n, m.name)
			break
		}
		s.crash(m, fmt.Sprintf("fault #%d", f.n))
		f.victims = append(f.victims, target)
	case faultPowerLoss:
		for _, m := range s.members {
			if m.up {
				s.crash(m, fmt.Sprintf("fault #%d", f.n))
				f.victims = append(f.victims, m.idx)
			}
		}
	case faultPause, faultPauseLeader:
		m := s.members[target]
		if !m.up || m.paused {
			break
		}
		m.paused = true
		f.victims = append(f.victims, target)
	case faultSkew:
		m := s.members[target]
		m.tickEvery = int64(float64(tickInterval) * f.factor)
		f.victims = append(f.victims, target)
	case faultDiskFail:
		m := s.members[target]
		if m.diskErr != nil {
			break
		}
		m.diskErr, m.diskFired = diskError(f.in), false
		f.victims = append(f.victims, target)
	case faultSlowDisk:
		m := s.members[target]
		if m.slowSync > 0 {
			break
		}
		m.slowSync = f.delay
		f.victims = append(f.victims, target)
	}
	s.at(s.now+f.dur, &event{kind: evUndo, fault: f})
}

func (s *simulation) undoFault(f *fault) {
	if f.done {
		return
	}
	f.done = true
	s.tracef("FAULT #%d end: %s", f.n, s.describeFault(f))
	for _, r := range f.rules {
		if i := indexRule(s.rules, r); i >= 0 {
			s.rules = append(s.rules[:i], s.rules[i+1:]...)
		}
	}
	for _, v := range f.victims {
		m := s.members[v]
		switch f.kind {
		case faultCrash, faultCrashLeader, faultPowerLoss:
			s.restart(m)
		case faultPause, faultPauseLeader:
			s.resume(m)
		case faultSkew:
			m.tickEvery = tickInterval
		case faultDiskFail:
			m.diskErr, m.diskFired = nil, false
			s.restart(m)
		case faultSlowDisk:
			m.slowSync = 0
			if m.up {
				s.drive(m)
			}
		}
	}
	if f.kind == faultReplace {
		s.addMember(f)
	}
}

func indexRule(rs []*rule, r *rule) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return -1
}

// resume unfreezes a paused member: what arrived meanwhile is processed in
// arrival order, then the requests its clients sent.
func (s *simulation) resume(m *member) {
	if !m.up || !m.paused {
		return
	}
	m.paused = false
	s.tracef("%s resumed: %d messages and %d requests waiting", m.name, len(m.inbox), len(m.held))
	inbox, held := m.inbox, m.held
	m.inbox, m.held = nil, nil
	for _, ev := range inbox {
		if !m.up {
			return
		}
		switch ev.kind {
		case evDeliver:
			s.step(m, ev)
		case evReport:
			s.onReport(ev)
		}
	}
	m.batching = true
	for _, op := range held {
		if !m.up {
			s.failOp(op, false, m.name+" went down")
			continue
		}
		if !op.done {
			s.serve(m, op)
		}
	}
	m.batching = false
	ws := m.batch
	m.batch = nil
	if len(ws) > 0 && m.up {
		s.tracef("%s proposes %d held writes as one batch", m.name, len(ws))
		if len(ws) > 1 {
			s.stats.BatchedProposals++
		}
		s.proposeWrites(m, ws)
	}
	s.drive(m)
}

// heal ends every fault: links restored, members restarted and resumed,
// clocks corrected.
func (s *simulation) heal() {
	s.tracef("HEAL: all faults end")
	for _, f := range s.faults {
		if !f.done && f.at <= s.now {
			s.undoFault(f)
		}
		f.done = true
	}
	s.rules = nil
	for _, m := range s.members {
		if m.removed {
			s.stopRemoved(m, "removed from the cluster")
			continue
		}
		m.tickEvery = tickInterval
		if m.paused {
			s.resume(m)
		}
		if !m.up && !m.broken {
			s.restart(m)
		}
	}
}

// converged reports whether a leader exists and every member of its
// configuration has applied everything in the leader's log.
func (s *simulation) converged() bool {
	l := s.leader()
	if l == nil {
		return false
	}
	last := max(l.log.last(), l.snapIndex)
	if l.core.BasicStatus().GetCommit() != last {
		return false
	}
	cs := l.core.ConfState()
	for _, ids := range [][]uint64{cs.GetVoters(), cs.GetLearners()} {
		for _, id := range ids {
			if id == 0 || id > uint64(len(s.members)) {
				return false
			}
			m := s.members[id-1]
			if m.broken {
				continue
			}
			if !m.up || m.core.Applied() != last {
				return false
			}
		}
	}
	return true
}

func (s *simulation) describeCluster() string {
	var parts []string
	for _, m := range s.members {
		switch {
		case m.broken:
			parts = append(parts, m.name+" broken")
		case m.removed && !m.up:
			parts = append(parts, m.name+" removed")
		case !m.up:
			parts = append(parts, m.name+" down")
		default:
			st := m.core.BasicStatus()
			parts = append(parts, fmt.Sprintf("%s %s term %d commit %d applied %d", m.name, st.RaftState, st.GetTerm(), st.GetCommit(), m.core.Applied()))
		}
	}
	return strings.Join(parts, "; ")
}
