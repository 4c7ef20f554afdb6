package raftnode

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

func TestPairIsQuorum(t *testing.T) {
	for _, tc := range []struct {
		name     string
		voters   []uint64
		outgoing []uint64
		want     bool
	}{
		{"two of three", []uint64{1, 2, 3}, nil, true},
		{"both of two", []uint64{1, 2}, nil, true},
		{"two of five", []uint64{1, 2, 3, 4, 5}, nil, false},
		{"two of four", []uint64{1, 2, 3, 4}, nil, false},
		{"one of three", []uint64{1, 3, 4}, nil, false},
		{"joint, both halves", []uint64{1, 2, 3}, []uint64{1, 2, 4}, true},
		{"joint, outgoing lacks one", []uint64{1, 2, 3}, []uint64{1, 3, 4}, false},
		{"joint, incoming lacks one", []uint64{2, 3, 4}, []uint64{1, 2, 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := &raftpb.ConfState{Voters: tc.voters, VotersOutgoing: tc.outgoing}
			if got := pairIsQuorum(cs, 1, 2); got != tc.want {
				t.Fatalf("pairIsQuorum(%v / %v, 1, 2) = %t, want %t", tc.voters, tc.outgoing, got, tc.want)
			}
		})
	}
}

// readAnswer is the index member id's ReadIndex round rctx was answered
// with, if it was.
func (c *cluster) readAnswer(id uint64, rctx string) (uint64, bool) {
	for _, rs := range c.reads[id] {
		if string(rs.RequestCtx) == rctx {
			return rs.Index, true
		}
	}
	return 0, false
}

// otherThan is ids without the members in not.
func otherThan(ids []uint64, not ...uint64) []uint64 {
	var out []uint64
	for _, id := range ids {
		if !slices.Contains(not, id) {
			out = append(out, id)
		}
	}
	return out
}

// With three voters the leader answers a follower's ReadIndex at once; with
// five it still runs raft's heartbeat round. Both answers cover the commit.
func TestCoreFollowerReadIndexRound(t *testing.T) {
	for _, tc := range []struct {
		voters     int
		heartbeats int // heartbeats the round sends
		messages   int // messages in all
	}{
		{3, 0, 2},
		{5, 4, 10},
	} {
		c := newCluster(t, tc.voters, Config{})
		lead := c.waitLeader()
		c.proposeN(lead, 0, 10)
		commit := c.cores[lead].BasicStatus().GetCommit()
		follower := otherThan(c.ids, lead)[0]

		c.cores[follower].ReadIndex([]byte("r"))
		sent := map[raftpb.MessageType]int{}
		c.stabilizeCounting(sent)
		idx, ok := c.readAnswer(follower, "r")
		if !ok || idx < commit {
			t.Fatalf("%d voters: follower ReadIndex = %d, %t; want >= %d, true", tc.voters, idx, ok, commit)
		}
		total := 0
		for _, n := range sent {
			total += n
		}
		if sent[raftpb.MsgHeartbeat] != tc.heartbeats || total != tc.messages {
			t.Errorf("%d voters: round sent %v (%d messages); want %d heartbeats, %d messages", tc.voters, sent, total, tc.heartbeats, tc.messages)
		}
	}
}

// A leader cut off with one follower, in five voters, is not a quorum with
// it: the follower's ReadIndex must not be answered from the old leader's
// commit while a new leader commits on the other side.
func TestCoreFollowerReadIndexMinority(t *testing.T) {
	c := newCluster(t, 5, Config{})
	lead := c.waitLeader()
	c.proposeN(lead, 0, 5)
	follower := otherThan(c.ids, lead)[0]
	majority := otherThan(c.ids, lead, follower)
	for _, a := range []uint64{lead, follower} {
		for _, b := range majority {
			c.cut[[2]uint64{a, b}] = true
			c.cut[[2]uint64{b, a}] = true
		}
	}
	// Only the majority's clocks run, so the old leader keeps leading (its
	// CheckQuorum never fires) and the follower keeps following it.
	var newLead uint64
	for range 500 {
		if newLead = c.leaderAmong(majority); newLead != 0 {
			break
		}
		for _, id := range majority {
			c.cores[id].Tick()
		}
		c.stabilize()
	}
	if newLead == 0 {
		t.Fatal("the majority elected no leader")
	}
	c.proposeN(newLead, 100, 1)
	newCommit := c.cores[newLead].BasicStatus().GetCommit()
	if s := c.cores[lead].BasicStatus(); s.RaftState != raft.StateLeader || c.cores[follower].BasicStatus().Lead != lead {
		t.Fatalf("setup: old leader %v, follower follows %d", s.RaftState, c.cores[follower].BasicStatus().Lead)
	}

	c.cores[follower].ReadIndex([]byte("stale?"))
	c.stabilize()
	if idx, ok := c.readAnswer(follower, "stale?"); ok {
		t.Fatalf("follower in the minority got ReadIndex %d (the majority committed %d)", idx, newCommit)
	}
}

// A new leader that has not yet committed an entry of its term leaves a
// follower's ReadIndex to raft, which answers it once that entry commits.
func TestCoreFollowerReadIndexBeforeFirstCommit(t *testing.T) {
	c := newCluster(t, 3, Config{})
	lead := c.waitLeader()
	c.proposeN(lead, 0, 5)
	next := otherThan(c.ids, lead)[0]
	reader := otherThan(c.ids, lead, next)[0]

	early := &raftpb.Message{
		Type:    raftpb.MessageType_MsgReadIndex.Enum(),
		From:    new(reader),
		To:      new(next),
		Entries: []*raftpb.Entry{{Data: []byte("early")}},
	}
	c.cores[lead].TransferLeadership(next)
	for range 100 {
		c.process()
		s := c.cores[next].BasicStatus()
		if s.RaftState == raft.StateLeader {
			if term, err := c.cores[next].store.Term(s.GetCommit()); err != nil || term == s.GetTerm() {
				t.Fatalf("setup: new leader's commit %d already in its term (%d, %v)", s.GetCommit(), term, err)
			}
			if c.cores[next].answerReadIndex(early) {
				t.Fatal("answered a ReadIndex before committing in its term")
			}
			_ = c.cores[next].Step(early)
			break
		}
		c.deliver()
	}
	if s := c.cores[next].BasicStatus(); s.RaftState != raft.StateLeader {
		t.Fatalf("setup: %d did not become leader (%v)", next, s.RaftState)
	}
	term := c.cores[next].BasicStatus().GetTerm()
	c.stabilize()
	idx, ok := c.readAnswer(reader, "early")
	if !ok {
		t.Fatal("ReadIndex held for the first commit was never answered")
	}
	if got, err := c.cores[next].store.Term(idx); err != nil || got != term {
		t.Fatalf("answer %d has term %d (%v); want the new term %d", idx, got, err, term)
	}
}
