package sim

import (
	"errors"
	"slices"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/concord-db/concord/internal/raftnode"
)

// Membership changes, as an operator does them with etcd: remove a member
// (one conf change), later add a brand-new member (fresh id, empty disk) as
// a learner, and promote it once it has caught up. A member that applies its
// own removal stops, as the server does.
const (
	maxReplacements = 3
	promoteEvery    = int64(300e6)
)

// proposeConf asks the leader to commit cc. It reports whether raft took
// the proposal (it may still be lost; the caller checks the outcome).
func (s *simulation) proposeConf(l *member, cc *raftpb.ConfChange) bool {
	var err error
	if !s.guard(l, "ProposeConfChange", func() { err = l.core.ProposeConfChange(cc) }) {
		return false
	}
	if err != nil {
		if !errors.Is(err, raftnode.ErrProposalDropped) {
			s.tracef("%s: conf change refused: %v", l.name, err)
		}
		return false
	}
	s.drive(l)
	return true
}

// startRemove proposes removing a random voter (possibly the leader).
func (s *simulation) startRemove(f *fault) {
	l := s.leader()
	if l == nil {
		s.tracef("fault #%d: remove a member: no leader, skipped", f.n)
		f.done = true
		return
	}
	voters := l.core.ConfState().GetVoters()
	if len(voters) < 3 {
		s.tracef("fault #%d: remove a member: only %d voters, skipped", f.n, len(voters))
		f.done = true
		return
	}
	victim := voters[s.nemRng.IntN(len(voters))]
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: &victim}
	s.tracef("FAULT #%d start: %s proposes removing n%d", f.n, l.name, victim)
	if !s.proposeConf(l, cc) {
		s.tracef("fault #%d: removal of n%d not proposed", f.n, victim)
	}
	s.at(s.now+f.dur, &event{kind: evUndo, fault: f})
}

// addMember starts a new member with an empty disk and asks the leader to
// add it as a learner; promotion follows once it has caught up.
func (s *simulation) addMember(f *fault) {
	l := s.leader()
	if l == nil || len(s.members) >= 32 {
		s.tracef("fault #%d: add a member: no leader, skipped", f.n)
		return
	}
	m := newMember(s, len(s.members))
	s.members = append(s.members, m)
	id := m.id
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: &id, Context: peerContext(id)}
	s.tracef("FAULT #%d end: %s proposes adding %s as a learner", f.n, l.name, m.name)
	st, boot, err := openStorage(m)
	if err != nil || boot != nil {
		s.violate(KindStorage, "%s: create storage: %v", m.name, err)
		m.broken = true
		return
	}
	s.start(m, st, raftnode.Boot{})
	s.proposeConf(l, cc)
	s.at(s.now+promoteEvery, &event{kind: evPromote, member: m.idx})
}

// onPromote promotes a caught-up learner, retrying until it votes.
func (s *simulation) onPromote(ev *event) {
	m := s.members[ev.member]
	if s.phase > phaseSettle || m.removed || m.broken {
		return
	}
	again := func() { s.at(s.now+promoteEvery, &event{kind: evPromote, member: m.idx}) }
	l := s.leader()
	if l == nil {
		again()
		return
	}
	cs := l.core.ConfState()
	if slices.Contains(cs.GetVoters(), m.id) {
		s.tracef("%s is a voter", m.name)
		return
	}
	if !slices.Contains(cs.GetLearners(), m.id) {
		// The add was lost (leader change); propose it again.
		id := m.id
		s.tracef("%s proposes adding %s as a learner again", l.name, m.name)
		s.proposeConf(l, &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: &id, Context: peerContext(id)})
		again()
		return
	}
	st := l.core.Status()
	progress := map[uint64]raftnode.Progress{}
	for id, pr := range st.Progress {
		progress[id] = raftnode.Progress{Match: pr.Match, IsLearner: pr.IsLearner, RecentActive: pr.RecentActive}
	}
	if ready, _ := raftnode.LearnerReady(progress, l.id, m.id); ready {
		id := m.id
		s.tracef("%s proposes promoting %s", l.name, m.name)
		s.proposeConf(l, &raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: &id})
	}
	again()
}

// confApplied notes a membership change a member applied. A member that
// applies its own removal stops once its Ready is done (stopping inside
// apply would tear the Core down mid-Ready).
func (s *simulation) confApplied(m *member, cc *raftpb.ConfChange) {
	if cc.GetType() != raftpb.ConfChangeType_ConfChangeRemoveNode {
		return
	}
	id := cc.GetNodeId()
	if id == 0 || id > uint64(len(s.members)) {
		return
	}
	gone := s.members[id-1]
	if !gone.removed {
		gone.removed = true
		s.tracef("n%d is removed from the cluster (applied by %s)", id, m.name)
	}
	if gone == m {
		m.stopAfterReady = true
	}
}

// stopRemoved stops a removed member for good.
func (s *simulation) stopRemoved(m *member, why string) {
	if !m.up {
		return
	}
	s.tracef("%s stops: %s", m.name, why)
	s.down(m, "removed")
}
