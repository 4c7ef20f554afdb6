package raftnode

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// testPauser is a Pauser a test flips.
type testPauser struct {
	mu      sync.Mutex
	paused  bool
	until   time.Time
	changed chan struct{}
	asked   int
}

func newTestPauser() *testPauser { return &testPauser{changed: make(chan struct{})} }

func (p *testPauser) Pause() (bool, time.Time, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked++
	return p.paused, p.until, p.changed
}

func (p *testPauser) set(paused bool, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused, p.until = paused, until
	close(p.changed)
	p.changed = make(chan struct{})
}

// TestNodePause freezes the leader's loop: the others elect a new leader
// and commit without it, the frozen member neither applies nor moves its
// term; when the pause lifts (by a change, then by its deadline) it
// resumes as a follower and catches up.
func TestNodePause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		old := tn.waitLeader(t, ctx)
		rest := tn.restOf(old)
		p := newTestPauser()
		tn.nodes[old].SetPauser(p)
		p.set(true, time.Time{})
		synctest.Wait() // the loop took the change and froze
		frozen := tn.nodes[old].Status()

		// The others still follow the frozen leader until its heartbeats
		// are missed; wait for them to agree on one of their own.
		lead := tn.waitNewLeader(t, ctx, old, rest...)
		tn.put(t, ctx, lead, "during", "1", rest...)
		// Well past several election timeouts of virtual time.
		time.Sleep(time.Second)
		synctest.Wait()
		if got := tn.nodes[old].Status(); got != frozen {
			t.Errorf("paused member's status moved: %+v, was %+v", got, frozen)
		}
		if v, ok := tn.sms[old].state()["during"]; ok {
			t.Errorf("paused member applied during=%s", v)
		}

		p.set(false, time.Time{})
		tn.waitKey(t, ctx, old, "during", "1")
		tn.waitLeader(t, ctx)
		if st := tn.nodes[old].Status(); st.IsLeader || st.Term <= frozen.Term {
			t.Errorf("resumed member: %+v; want a follower in a term after %d", st, frozen.Term)
		}

		// A pause with a deadline lifts by itself.
		follower := old
		start := time.Now()
		p.set(true, start.Add(300*time.Millisecond))
		synctest.Wait()
		tn.put(t, ctx, lead, "after", "2", follower)
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("member applied %v after a 300ms pause began", d)
		}

		// Stop ends a pause without a deadline.
		p.set(true, time.Time{})
		synctest.Wait()
		tn.nodes[follower].Stop()
	})
}
