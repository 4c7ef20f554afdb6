package raftnode

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// TestNodeBatchesQueuedProposals: proposals that queue while the loop is
// busy reach raft as few proposals (a follower forwards few MsgProp), each
// batch within MaxSizePerMsg bytes unless it is a single larger proposal,
// and every one of them commits.
func TestNodeBatchesQueuedProposals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lead := tn.waitLeader(t, ctx)
		follower := tn.restOf(lead)[0]

		type prop struct{ entries, bytes int }
		var props []prop
		tn.lb.mu.Lock()
		tn.lb.observe = func(from uint64, m *raftpb.Message) {
			if from == follower && m.GetType() == raftpb.MsgProp {
				p := prop{entries: len(m.GetEntries())}
				for _, e := range m.GetEntries() {
					p.bytes += len(e.GetData())
				}
				props = append(props, p)
			}
		}
		tn.lb.mu.Unlock()

		// Freeze the follower's loop so that the proposals queue up.
		p := newTestPauser()
		tn.nodes[follower].SetPauser(p)
		p.set(true, time.Time{})
		synctest.Wait()

		limit := int(DefaultMaxSizePerMsg)
		small := strings.Repeat("s", limit*3/10) // three fit in a batch, four do not
		big := strings.Repeat("b", 2*limit)
		data := map[string]string{"big": big}
		for _, k := range []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"} {
			data[k] = small
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(data))
		for k, v := range data {
			wg.Go(func() { errs <- tn.nodes[follower].Propose(ctx, []byte(k+"="+v)) })
		}
		synctest.Wait() // all nine wait in the queue
		p.set(false, time.Time{})
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Propose = %v", err)
			}
		}
		for k, v := range data {
			for _, id := range tn.all() {
				tn.waitKey(t, ctx, id, k, v)
			}
		}

		tn.lb.mu.Lock()
		defer tn.lb.mu.Unlock()
		entries := 0
		for _, pr := range props {
			entries += pr.entries
			if pr.entries > 1 && pr.bytes > limit {
				t.Errorf("a forwarded batch of %d entries holds %d bytes, over MaxSizePerMsg %d", pr.entries, pr.bytes, limit)
			}
		}
		// Eight small ones in runs of at most three, cut at most once by the
		// big one: five messages at most, where one per proposal is nine.
		if entries != len(data) || len(props) > 5 {
			t.Errorf("follower forwarded %d entries in %d MsgProp %v; want %d in at most 5", entries, len(props), props, len(data))
		}
	})
}
