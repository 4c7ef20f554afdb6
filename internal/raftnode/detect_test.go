package raftnode

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3"
)

func TestCampaignRank(t *testing.T) {
	for _, tc := range []struct {
		name             string
		voters           []uint64
		self, dead, want uint64
		voter            bool
	}{
		{"lowest survivor first", []uint64{3, 1, 2}, 2, 1, 0, true},
		{"second survivor", []uint64{3, 1, 2}, 3, 1, 1, true},
		{"dead leader in the middle", []uint64{1, 2, 3}, 3, 2, 1, true},
		{"five members", []uint64{10, 20, 30, 40, 50}, 50, 30, 3, true},
		{"not a voter", []uint64{1, 2, 3}, 4, 1, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := campaignRank(tc.voters, tc.self, tc.dead)
			if ok != tc.voter || (ok && uint64(got) != tc.want) {
				t.Errorf("campaignRank(%v, %d, %d) = %d, %v; want %d, %v", tc.voters, tc.self, tc.dead, got, ok, tc.want, tc.voter)
			}
		})
	}
}

// TestNodeLeaderDownElectsEarly: when the followers are told the leader's
// address refuses connections, they elect a new leader in one round within
// a few ticks, long before any election timeout could run out.
func TestNodeLeaderDownElectsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		old := tn.waitLeader(t, ctx)
		term := tn.nodes[old].Status().Term
		rest := tn.restOf(old)

		tn.lb.isolate(old, true)
		// Let what the leader sent before it went away arrive first: a
		// follower that hears the leader after forgetting it follows it again
		// (as it must), and the election then waits for the timeout.
		synctest.Wait()
		start := time.Now()
		for _, id := range rest {
			tn.nodes[id].ReportDown(old)
		}
		lead := tn.waitNewLeader(t, ctx, old, rest...)
		took := time.Since(start)

		tick := 10 * time.Millisecond // startNodes' TickInterval
		timeout := DefaultElectionTicks * tick
		if took > timeout/2 {
			t.Errorf("new leader after %v; want within %v (half the election timeout %v)", took, timeout/2, timeout)
		}
		if got := tn.nodes[lead].Status().Term; got != term+1 {
			t.Errorf("new leader's term %d, want %d: more than one election round", got, term+1)
		}
		// The first-ranked survivor (lowest id) campaigned and won.
		if want := min(rest[0], rest[1]); lead != want {
			t.Errorf("leader %d, want the first-ranked survivor %d", lead, want)
		}
		tn.put(t, ctx, lead, "after", "1", rest...)
	})
}

// TestNodeLeaderDownFalseAlarm: a report about a leader that is in fact
// alive must not disturb it, whichever follower gets it.
func TestNodeLeaderDownFalseAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lead := tn.waitLeader(t, ctx)
		term := tn.nodes[lead].Status().Term
		for _, id := range tn.restOf(lead) {
			tn.nodes[id].ReportDown(lead)
			// Several election timeouts of virtual time.
			time.Sleep(time.Second)
			synctest.Wait()
			if got := tn.waitLeader(t, ctx); got != lead {
				t.Fatalf("after a false report to %d, leader %d; want %d", id, got, lead)
			}
			if got := tn.nodes[lead].Status().Term; got != term {
				t.Fatalf("after a false report to %d, term %d; want %d", id, got, term)
			}
		}
		// A report naming a follower, or made to the leader, changes nothing.
		rest := tn.restOf(lead)
		tn.nodes[rest[0]].ReportDown(rest[1])
		tn.nodes[lead].ReportDown(rest[0])
		time.Sleep(time.Second)
		synctest.Wait()
		if got := tn.waitLeader(t, ctx); got != lead || tn.nodes[lead].Status().Term != term {
			t.Errorf("leader %d term %d; want %d term %d", got, tn.nodes[lead].Status().Term, lead, term)
		}
	})
}

// divergedSurvivors starts a 3-member cluster whose leader's last entries
// reached only one follower, ahead, and then crashes the leader. behind is
// the other follower.
func divergedSurvivors(t *testing.T, aheadRanksFirst bool) (c *cluster, lead, ahead, behind uint64) {
	t.Helper()
	c = newCluster(t, 3, Config{})
	lead = c.waitLeader()
	c.proposeN(lead, 0, 10)
	c.waitConverged()
	var rest []uint64
	for _, id := range c.ids {
		if id != lead {
			rest = append(rest, id)
		}
	}
	ahead, behind = min(rest[0], rest[1]), max(rest[0], rest[1])
	if !aheadRanksFirst {
		ahead, behind = behind, ahead
	}
	c.cut[[2]uint64{lead, behind}] = true
	c.proposeN(lead, 10, 5)
	if a, b := c.stores[ahead].durableLast(), c.stores[behind].durableLast(); a <= b {
		t.Fatalf("setup: member %d has %d entries, %d has %d; want %d ahead", ahead, a, behind, b, ahead)
	}
	c.crash(lead)
	return c, lead, ahead, behind
}

// ticksToLeader ticks until ids agree on a leader among them and returns it
// with the number of ticks taken.
func ticksToLeader(t *testing.T, c *cluster, ids ...uint64) (uint64, int) {
	t.Helper()
	for ticks := 1; ticks <= 5*DefaultElectionTicks; ticks++ {
		c.tick(1)
		if l := c.leaderAmong(ids); l != 0 {
			return l, ticks
		}
	}
	t.Fatalf("no leader among %v after %d ticks", ids, 5*DefaultElectionTicks)
	return 0, 0
}

// TestCoreLeaderDownLateDetectorBehind is the early election when the two
// survivors learn of the leader's death a little apart and the first-ranked
// one holds entries the other lacks:
//
//   - the first-ranked survivor campaigns at its first tick; the other, not
//     told yet, still follows the leader and ignores the pre-vote;
//   - the other is told, campaigns at its third tick, and is refused: its log
//     is behind;
//
// Raft alone would then wait for a randomized election timeout. The
// first-ranked survivor must campaign again and win within a few ticks.
func TestCoreLeaderDownLateDetectorBehind(t *testing.T) {
	c, lead, first, late := divergedSurvivors(t, true)
	c.cores[first].ReportDown(lead)
	c.tick(1) // first campaigns; late, still following the leader, ignores it
	if s := c.cores[first].BasicStatus(); s.RaftState != raft.StatePreCandidate {
		t.Fatalf("after its first tick member %d is %v, want a pre-candidate", first, s.RaftState)
	}
	c.cores[late].ReportDown(lead)
	l, ticks := ticksToLeader(t, c, first, late)
	if l != first {
		t.Errorf("leader %d, want %d: the other's log is behind", l, first)
	}
	if ticks > 6 {
		t.Errorf("leader after %d ticks past the late report; want at most 6 (election timeout %d)", ticks, DefaultElectionTicks)
	}
}

// TestCoreLeaderDownFirstRankedBehind: both survivors are told at once, and
// the first-ranked one's log is behind. Its pre-vote is refused; the other
// must campaign at its next tick, not wait for its rank's third.
func TestCoreLeaderDownFirstRankedBehind(t *testing.T) {
	c, lead, ahead, first := divergedSurvivors(t, false)
	c.cores[first].ReportDown(lead)
	c.cores[ahead].ReportDown(lead)
	l, ticks := ticksToLeader(t, c, first, ahead)
	if l != ahead {
		t.Errorf("leader %d, want %d: the other's log is behind", l, ahead)
	}
	if ticks > 2 {
		t.Errorf("leader after %d ticks; want 2: a refused pre-vote at tick 1, the refuser's at tick 2", ticks)
	}
}
