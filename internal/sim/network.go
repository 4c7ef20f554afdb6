package sim

import (
	"strconv"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Link latency without faults: 1ms plus up to 2ms of jitter. Messages on a
// link may overtake each other (raft does not need FIFO links, so the
// simulation does not grant it); delay faults add much more jitter.
const (
	baseLatency   = int64(1e6)
	baseJitter    = int64(2e6)
	dupLatency    = int64(5e6)
	reportLatency = 1
	// snapshotLatency is how long a background snapshot takes to serialize
	// and write, in virtual time: long enough that entries are applied,
	// members crash and leaders' snapshots arrive while one is in flight.
	snapshotLatency = int64(20e6)
)

type ruleKind uint8

const (
	ruleCut   ruleKind = iota + 1 // drop everything
	ruleDrop                      // drop with probability p
	ruleDelay                     // add delay + uniform jitter
	ruleDup                       // deliver a second copy with probability p
)

// rule is one active network fault on the links from a member in from to a
// member in to (bit i = member index i).
type rule struct {
	kind          ruleKind
	from, to      uint32
	p             float64
	delay, jitter int64
	desc          string
}

func (r *rule) applies(from, to int) bool {
	return r.from&(1<<from) != 0 && r.to&(1<<to) != 0
}

// send puts a member's outgoing messages on the simulated wire. It runs
// inside the member's HandleReady, so it never calls into a Core: outcomes
// the sender must hear of (a lost snapshot) come back as events.
func (s *simulation) send(m *member, msgs []*raftpb.Message) {
	for _, msg := range msgs {
		to := int(msg.GetTo()) - 1
		if to < 0 || to >= len(s.members) {
			continue
		}
		s.stats.Messages++
		delay := baseLatency + s.netRng.Int64N(baseJitter)
		dups := 0
		var dropped string
		for _, r := range s.rules {
			if !r.applies(m.idx, to) {
				continue
			}
			switch r.kind {
			case ruleCut:
				dropped = r.desc
			case ruleDrop:
				if s.netRng.Float64() < r.p {
					dropped = r.desc
				}
			case ruleDelay:
				delay += r.delay + s.netRng.Int64N(r.jitter+1)
			case ruleDup:
				// Never a forwarded proposal: apply does not deduplicate
				// command ids, so a second copy of a MsgProp is a second
				// write (TCP never duplicates, and raft tolerates
				// duplicates of every other message).
				if (msg.GetType() != raftpb.MessageType_MsgProp || s.cfg.dupProposals) && s.netRng.Float64() < r.p {
					dups++
				}
			}
			if dropped != "" {
				break
			}
		}
		if dropped != "" {
			s.stats.Dropped++
			s.traceMsg(m, to, msg, "DROP "+dropped)
			if msg.GetType() == raftpb.MessageType_MsgSnap {
				s.at(s.now+reportLatency, &event{kind: evReport, member: m.idx, inc: m.inc, peer: to, snap: true, failed: true})
			}
			continue
		}
		// The wire copies: the receiver must not share the sender's entries.
		wire := proto.Clone(msg).(*raftpb.Message)
		if msg.GetType() == raftpb.MessageType_MsgSnap {
			// As the transport does: the data comes from the snapshot file.
			md := msg.GetSnapshot().GetMetadata()
			sn, err := m.st.snap.Load(md.GetIndex(), md.GetTerm())
			if err != nil {
				s.traceMsg(m, to, msg, "FAIL "+err.Error())
				s.at(s.now+reportLatency, &event{kind: evReport, member: m.idx, inc: m.inc, peer: to, snap: true, failed: true})
				continue
			}
			wire.Snapshot.Data = sn.GetData()
			s.stats.SnapshotsSent++
		}
		s.traceMsg(m, to, msg, "+"+fmtMillis(delay))
		s.at(s.now+delay, &event{kind: evDeliver, member: to, from: m.idx, fromInc: m.inc, msg: wire})
		for range dups {
			d := delay + s.netRng.Int64N(dupLatency)
			s.tracef("  duplicate n%d->n%d %s +%s", m.idx+1, to+1, msg.GetType(), fmtMillis(d))
			s.at(s.now+d, &event{kind: evDeliver, member: to, from: m.idx, fromInc: m.inc, msg: proto.Clone(wire).(*raftpb.Message)})
		}
	}
}

func (s *simulation) onDeliver(ev *event) {
	m := s.members[ev.member]
	if !m.up {
		s.tracef("lost n%d->%s %s: %s is down", ev.from+1, m.name, ev.msg.GetType(), m.name)
		// The sender's transport notices the dead connection, and its
		// redial is refused (transport.Handler.ReportDown).
		snap := ev.msg.GetType() == raftpb.MessageType_MsgSnap
		s.at(s.now+reportLatency, &event{kind: evReport, member: ev.from, inc: ev.fromInc, peer: ev.member,
			snap: snap, failed: true, refused: !snap})
		return
	}
	if m.paused {
		m.inbox = append(m.inbox, ev)
		return
	}
	s.step(m, ev)
}

// step hands a delivered message to the member's Core.
func (s *simulation) step(m *member, ev *event) {
	if !s.guard(m, "Step "+ev.msg.GetType().String(), func() { _ = m.core.Step(ev.msg) }) {
		return
	}
	s.drive(m)
	if ev.msg.GetType() == raftpb.MessageType_MsgSnap {
		s.at(s.now+reportLatency, &event{kind: evReport, member: ev.from, inc: ev.fromInc, peer: ev.member, snap: true})
	}
}

// onReport tells a sender what its transport learned about a peer.
func (s *simulation) onReport(ev *event) {
	m := s.members[ev.member]
	if !m.up || m.inc != ev.inc {
		return
	}
	if m.paused {
		m.inbox = append(m.inbox, ev)
		return
	}
	peer := uint64(ev.peer + 1)
	ok := s.guard(m, "report", func() {
		if ev.snap {
			m.core.ReportSnapshot(peer, ev.failed)
		} else {
			m.core.ReportUnreachable(peer)
			if ev.refused {
				m.core.ReportDown(peer)
			}
		}
	})
	if ok {
		s.drive(m)
	}
}

// onTick advances a member's raft clock and re-issues ReadIndex rounds
// that went unanswered for an election timeout (the server's Node does the
// same).
func (s *simulation) onTick(ev *event) {
	m := s.members[ev.member]
	if m.inc != ev.inc || !m.up {
		return
	}
	s.at(s.now+m.tickEvery, &event{kind: evTick, member: m.idx, inc: m.inc})
	if m.paused {
		return
	}
	if !s.guard(m, "Tick", m.core.Tick) {
		return
	}
	s.retryReads(m)
	s.leaseTick(m)
	s.drive(m)
}

func (s *simulation) onWriteback(ev *event) {
	m := s.members[ev.member]
	if m.inc != ev.inc || !m.up || m.nosync == nil {
		return
	}
	m.nosync.writeback()
	s.at(s.now+writebackMin+s.netRng.Int64N(writebackMax-writebackMin), &event{kind: evWriteback, member: m.idx, inc: m.inc})
}

// traceMsg writes one line per sent message: sender, receiver, type, the
// fields that matter for that type, and its fate.
func (s *simulation) traceMsg(m *member, to int, msg *raftpb.Message, fate string) {
	b := s.lineStart()
	b = append(b, m.name...)
	b = append(b, "->n"...)
	b = strconv.AppendInt(b, int64(to+1), 10)
	b = append(b, ' ')
	b = append(b, shortType(msg.GetType())...)
	b = append(b, " t"...)
	b = strconv.AppendUint(b, msg.GetTerm(), 10)
	switch msg.GetType() {
	case raftpb.MessageType_MsgApp:
		b = append(b, " prev="...)
		b = strconv.AppendUint(b, msg.GetIndex(), 10)
		b = append(b, '/')
		b = strconv.AppendUint(b, msg.GetLogTerm(), 10)
		b = append(b, " ents="...)
		b = strconv.AppendInt(b, int64(len(msg.GetEntries())), 10)
		b = append(b, " commit="...)
		b = strconv.AppendUint(b, msg.GetCommit(), 10)
	case raftpb.MessageType_MsgAppResp:
		b = append(b, " idx="...)
		b = strconv.AppendUint(b, msg.GetIndex(), 10)
		if msg.GetReject() {
			b = append(b, " reject hint="...)
			b = strconv.AppendUint(b, msg.GetRejectHint(), 10)
		}
	case raftpb.MessageType_MsgHeartbeat:
		b = append(b, " commit="...)
		b = strconv.AppendUint(b, msg.GetCommit(), 10)
	case raftpb.MessageType_MsgVote, raftpb.MessageType_MsgPreVote:
		b = append(b, " last="...)
		b = strconv.AppendUint(b, msg.GetIndex(), 10)
		b = append(b, '/')
		b = strconv.AppendUint(b, msg.GetLogTerm(), 10)
	case raftpb.MessageType_MsgVoteResp, raftpb.MessageType_MsgPreVoteResp:
		if msg.GetReject() {
			b = append(b, " reject"...)
		} else {
			b = append(b, " grant"...)
		}
	case raftpb.MessageType_MsgSnap:
		b = append(b, " snap="...)
		b = strconv.AppendUint(b, msg.GetSnapshot().GetMetadata().GetIndex(), 10)
		b = append(b, '/')
		b = strconv.AppendUint(b, msg.GetSnapshot().GetMetadata().GetTerm(), 10)
	case raftpb.MessageType_MsgReadIndexResp:
		b = append(b, " idx="...)
		b = strconv.AppendUint(b, msg.GetIndex(), 10)
	case raftpb.MessageType_MsgProp:
		b = append(b, " ents="...)
		b = strconv.AppendInt(b, int64(len(msg.GetEntries())), 10)
	}
	b = append(b, ' ')
	b = append(b, fate...)
	s.lineEnd(b)
}

func shortType(t raftpb.MessageType) string {
	switch t {
	case raftpb.MessageType_MsgApp:
		return "App"
	case raftpb.MessageType_MsgAppResp:
		return "AppResp"
	case raftpb.MessageType_MsgHeartbeat:
		return "Heartbeat"
	case raftpb.MessageType_MsgHeartbeatResp:
		return "HeartbeatResp"
	case raftpb.MessageType_MsgVote:
		return "Vote"
	case raftpb.MessageType_MsgVoteResp:
		return "VoteResp"
	case raftpb.MessageType_MsgPreVote:
		return "PreVote"
	case raftpb.MessageType_MsgPreVoteResp:
		return "PreVoteResp"
	case raftpb.MessageType_MsgSnap:
		return "Snap"
	case raftpb.MessageType_MsgProp:
		return "Prop"
	case raftpb.MessageType_MsgReadIndex:
		return "ReadIndex"
	case raftpb.MessageType_MsgReadIndexResp:
		return "ReadIndexResp"
	case raftpb.MessageType_MsgTimeoutNow:
		return "TimeoutNow"
	case raftpb.MessageType_MsgTransferLeader:
		return "TransferLeader"
	}
	return t.String()
}

func fmtMillis(d int64) string {
	return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + "ms"
}
