package raftnode

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Early leader-loss detection.
//
// Left to itself, raft replaces a leader that died only when a follower's
// randomized election timeout runs out: one to two election timeouts after
// the last heartbeat, however obvious the death was. When the leader's
// process is gone but its host is up, as after a crash, kill -9 or a stop,
// the transport sees its address refuse connections, or reset them before
// answering (ReportDown), and that cannot be a partition or a pause: those
// time out, they neither refuse nor reset.
//
// On that evidence a follower forgets the leader (raft's ForgetLeader). With
// PreVote and CheckQuorum a follower that knows a live leader ignores
// (pre-)votes, which is what protects a healthy leader from a member that
// merely lost touch; a follower without a leader grants them. So once the
// surviving followers have all forgotten, the first to campaign wins at
// once instead of after the timeout. Campaigns are staggered to avoid a
// split vote: the surviving voters ranked by id campaign at tick 1, 3, 5,
// ... after forgetting, each only if no leader has appeared by then.
//
// Survivors are not told at the same moment, so a campaign can find the
// next survivor still following the dead leader: it ignores the pre-vote.
// That costs a round, not safety: a pre-candidate whose pre-votes were
// ignored grants the next member's pre-vote, which is for a later term,
// unless that member's log is behind its own. Then neither can win, and raft
// alone would wait out a randomized election timeout, one to two seconds at
// the defaults. So a survivor still without a leader campaigns again every
// 2n ticks (n survivors, keeping the ranks' turns apart) for one election
// timeout after it was told; by its second turn the others have been told,
// and the one with the longest log wins.
//
// Ranks ignore logs, and under load the first-ranked survivor is often
// the one behind: its pre-vote is refused and the next survivor's turn
// comes two ticks later. With two survivors that turn is brought forward to
// the next tick: the refusing member is the only other survivor, so it
// campaigns alone (notePreVote).
//
// Nothing here can elect a second leader or disturb a live one: forgetting
// only changes whom this member follows, a campaign is pre-voted first, and
// any message from a live leader makes the member follow it again.

// ReportDown says peer id's address refused a connection (see the
// transport's Handler). If id is the leader this member follows, the member
// forgets it and schedules an early campaign by its rank; otherwise the
// report changes nothing.
func (c *Core) ReportDown(id uint64) {
	bs := c.rn.BasicStatus()
	if bs.RaftState != raft.StateFollower || bs.Lead != id {
		return
	}
	if err := c.rn.ForgetLeader(); err != nil {
		return
	}
	rank, ok := campaignRank(c.confState.GetVoters(), c.cfg.ID, id)
	if !ok {
		c.log.Info("leader refuses connections: forgot it", "leader", fmt.Sprintf("%x", id), "term", bs.GetTerm())
		return
	}
	c.earlyCampaign = 1 + 2*rank
	c.earlyLeft = c.cfg.ElectionTicks
	c.log.Info("leader refuses connections: forgot it, campaigning early",
		"leader", fmt.Sprintf("%x", id), "term", bs.GetTerm(), "in_ticks", c.earlyCampaign)
}

// tickEarlyCampaign runs the countdown ReportDown started, on every Tick.
func (c *Core) tickEarlyCampaign() {
	if c.earlyCampaign == 0 {
		return
	}
	bs := c.rn.BasicStatus()
	if bs.Lead != raft.None || bs.RaftState == raft.StateCandidate || bs.RaftState == raft.StateLeader {
		c.earlyCampaign = 0 // a leader appeared, or an election is under way
		return
	}
	c.earlyLeft--
	c.earlyCampaign--
	if c.earlyCampaign > 0 {
		return
	}
	if c.earlyLeft > 0 {
		c.earlyCampaign = 2 * (len(c.confState.GetVoters()) - 1) // every survivor's turn, again
	}
	c.log.Info("campaigning early: the leader is gone", "term", bs.GetTerm(), "state", bs.RaftState.String())
	_ = c.rn.Campaign() // refused only with unapplied conf changes; the timeout covers it
}

// notePreVote looks at a pre-vote before raft answers it. A survivor with
// an early campaign pending and one other survivor, whose pre-vote it is
// about to refuse for a log behind its own, campaigns at its next tick
// instead of at its rank's: the other cannot win, and nobody else is left
// to split the vote.
func (c *Core) notePreVote(m *raftpb.Message) {
	if c.earlyCampaign <= 1 || len(c.confState.GetVoters()) != 3 {
		return
	}
	last, err := c.store.LastIndex()
	if err != nil {
		return
	}
	term, err := c.store.Term(last)
	if err != nil {
		return
	}
	// raft's up-to-date rule (thesis 3.6.1), negated.
	if m.GetLogTerm() < term || (m.GetLogTerm() == term && m.GetIndex() < last) {
		c.earlyCampaign = 1
	}
}

// campaignRank is self's position among voters once dead is left out, and
// whether self is a voter at all. Every survivor computes the same order.
func campaignRank(voters []uint64, self, dead uint64) (int, bool) {
	others := make([]uint64, 0, len(voters))
	for _, v := range voters {
		if v != dead {
			others = append(others, v)
		}
	}
	slices.Sort(others)
	i, ok := slices.BinarySearch(others, self)
	return i, ok
}
