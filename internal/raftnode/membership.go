package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
)

// ErrNotLeader is returned by the leader-only calls (Progress,
// TransferLeadershipTo) on a member that does not lead.
var ErrNotLeader = errors.New("raftnode: not leader")

// Progress is the leader's view of one member's replication.
type Progress struct {
	// Match is the highest log index known to be on the member.
	Match uint64
	// IsLearner says the member does not vote.
	IsLearner bool
	// RecentActive says the leader heard from it within an election
	// timeout.
	RecentActive bool
}

// call runs f on the Node's goroutine, where the Core may be touched, and
// waits for it. f must not block.
func (n *Node) call(ctx context.Context, f func(c *Core)) error {
	done := make(chan struct{})
	wrapped := func(c *Core) {
		f(c)
		close(done)
	}
	select {
	case n.callc <- wrapped:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return n.stoppedErr()
	}
	select {
	case <-done:
		return nil
	case <-n.donec:
		return n.stoppedErr()
	}
}

// Progress returns, on the leader, every member's replication progress
// (the leader's own included) keyed by member id. It returns ErrNotLeader on
// any other member. It blocks only until the Node's goroutine answers.
func (n *Node) Progress(ctx context.Context) (map[uint64]Progress, error) {
	var out map[uint64]Progress
	var leader bool
	err := n.call(ctx, func(c *Core) {
		st := c.Status()
		if st.RaftState != raft.StateLeader {
			return
		}
		leader = true
		out = make(map[uint64]Progress, len(st.Progress))
		for id, pr := range st.Progress {
			out[id] = Progress{Match: pr.Match, IsLearner: pr.IsLearner, RecentActive: pr.RecentActive}
		}
	})
	if err != nil {
		return nil, err
	}
	if !leader {
		return nil, ErrNotLeader
	}
	return out, nil
}

// LearnerReady reports whether a learner's log is close enough to the
// leader's to be promoted: its Match is at least 90% of the leader's (etcd's
// readiness rule). found is false when p holds no such member.
func LearnerReady(p map[uint64]Progress, leader, learner uint64) (ready, found bool) {
	lp, ok := p[learner]
	if !ok {
		return false, false
	}
	self := p[leader].Match
	if self == 0 {
		return true, true
	}
	return float64(lp.Match)/float64(self) >= 0.9, true
}

// TransferLeadershipTo asks raft to hand leadership to member to and waits
// until to leads, ctx ends, or the Node stops. It returns ErrNotLeader at
// once when this member does not lead. raft abandons an attempt after an
// election timeout (a lagging target must catch up first); the attempt is
// re-issued while this member still leads.
func (n *Node) TransferLeadershipTo(ctx context.Context, to uint64) error {
	retry := time.Duration(n.cfg.Core.ElectionTicks) * n.cfg.TickInterval
	for {
		var leader bool
		err := n.call(ctx, func(c *Core) {
			if c.BasicStatus().RaftState != raft.StateLeader {
				return
			}
			leader = true
			c.TransferLeadership(to)
		})
		if err != nil {
			return err
		}
		if !leader {
			if n.Leader() == to {
				return nil
			}
			return ErrNotLeader
		}
		n.log.Info("transferring leadership", "to", fmt.Sprintf("%x", to))
		t := time.NewTimer(retry)
		for waiting := true; waiting; {
			changed := n.LeaderChanges()
			if n.Leader() == to {
				t.Stop()
				return nil
			}
			select {
			case <-changed:
			case <-t.C:
				waiting = false
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-n.donec:
				t.Stop()
				return n.stoppedErr()
			}
		}
	}
}
