package raftnode

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// A follower's ReadIndex answered without a heartbeat round.
//
// raft's ReadOnlySafe leader answers a follower's MsgReadIndex only after a
// heartbeat round: acknowledgements from a quorum, itself included, prove
// that no newer leader could have committed anything before the read
// began, so its commit index covers every write acknowledged before then.
// A round on a follower so takes four transport hops: the request, the
// heartbeats, their answers and the response.
//
// The request is itself such an acknowledgement. A follower sends it only
// after the read began (t0), and only to the leader it follows in its
// current term; so when it sent it (t1 >= t0) it had not voted in any term
// after the leader's current one T (it follows this leader, and the
// leader, still leading in T when the request arrives, has led in no later
// term). A leader of a term after T elected before t0 needs votes from a
// quorum, and every quorum meets every other: if the leader and the
// requester together are a quorum, one of them voted for it, the requester
// before t1 (it had not) or the leader before it stepped this message (it
// would no longer lead in T). So nothing was committed before t0 in a term
// after T, and what was committed in terms up to T is at or below the
// leader's commit index once an entry of T is committed (raft's own
// condition for answering reads). The leader then answers at once with its
// commit index, as raft would after the heartbeat round.
//
// The leader and the requester are a quorum in clusters of two or three
// voters (in every configuration of a joint one); elsewhere, and before the
// leader has committed in its term, raft's heartbeat round is used. The
// answer carries the request's context, which Node makes unique per round,
// so a late answer matches no later round.

// answerReadIndex answers a follower's MsgReadIndex itself when the
// leader and the follower are a quorum (see above), and reports whether
// it did; if not, raft handles the message.
func (c *Core) answerReadIndex(m *raftpb.Message) bool {
	from := m.GetFrom()
	if from == raft.None || from == c.cfg.ID || len(m.GetEntries()) != 1 {
		return false
	}
	bs := c.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader || !pairIsQuorum(c.confState, c.cfg.ID, from) {
		return false
	}
	commit := bs.GetCommit()
	if t, err := c.store.Term(commit); err != nil || t != bs.GetTerm() {
		return false
	}
	c.tr.Send([]*raftpb.Message{{
		Type:    raftpb.MessageType_MsgReadIndexResp.Enum(),
		To:      new(from),
		From:    new(c.cfg.ID),
		Term:    new(bs.GetTerm()),
		Index:   new(commit),
		Entries: m.GetEntries(),
	}})
	return true
}

// pairIsQuorum reports whether a and b together hold a majority of the
// voters, and of the outgoing voters too during a joint change.
func pairIsQuorum(cs *raftpb.ConfState, a, b uint64) bool {
	majority := func(voters []uint64) bool {
		n := 0
		for _, v := range voters {
			if v == a || v == b {
				n++
			}
		}
		return n > len(voters)/2
	}
	if !majority(cs.GetVoters()) {
		return false
	}
	out := cs.GetVotersOutgoing()
	return len(out) == 0 || majority(out)
}
