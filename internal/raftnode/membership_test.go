package raftnode

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestLearnerReady(t *testing.T) {
	p := map[uint64]Progress{1: {Match: 100}, 2: {Match: 90, IsLearner: true}, 3: {Match: 89, IsLearner: true}}
	tests := []struct {
		name         string
		p            map[uint64]Progress
		learner      uint64
		ready, found bool
	}{
		{"at 90%", p, 2, true, true},
		{"below 90%", p, 3, false, true},
		{"unknown", p, 9, false, false},
		{"empty leader log", map[uint64]Progress{1: {}, 2: {}}, 2, true, true},
	}
	for _, tt := range tests {
		ready, found := LearnerReady(tt.p, 1, tt.learner)
		if ready != tt.ready || found != tt.found {
			t.Errorf("LearnerReady(%s) = %v, %v; want %v, %v", tt.name, ready, found, tt.ready, tt.found)
		}
	}
}

func TestNodeProgressAndTransferLeadershipTo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lead := tn.waitLeader(t, ctx)
		tn.put(t, ctx, lead, "a", "1", tn.all()...)
		pr, err := tn.nodes[lead].Progress(ctx)
		if err != nil {
			t.Fatalf("Progress on the leader = %v", err)
		}
		if len(pr) != 3 || pr[lead].Match == 0 {
			t.Errorf("Progress = %+v, want 3 members with the leader's match set", pr)
		}
		var target uint64
		for id := range tn.nodes {
			if id == lead {
				continue
			}
			target = id
			if _, err := tn.nodes[id].Progress(ctx); !errors.Is(err, ErrNotLeader) {
				t.Errorf("Progress on follower %d = %v, want ErrNotLeader", id, err)
			}
			if err := tn.nodes[id].TransferLeadershipTo(ctx, lead); err != nil {
				t.Errorf("TransferLeadershipTo(current leader) on follower %d = %v, want nil", id, err)
			}
		}
		if err := tn.nodes[lead].TransferLeadershipTo(ctx, target); err != nil {
			t.Fatalf("TransferLeadershipTo(%d) = %v", target, err)
		}
		if got := tn.waitLeader(t, ctx); got != target {
			t.Fatalf("leader = %d after TransferLeadershipTo(%d)", got, target)
		}
		if err := tn.nodes[lead].TransferLeadershipTo(ctx, lead); !errors.Is(err, ErrNotLeader) {
			t.Errorf("TransferLeadershipTo on the old leader = %v, want ErrNotLeader", err)
		}
	})
}
