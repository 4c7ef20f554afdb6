package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestDurabilityKillAll acknowledges writes from concurrent clients, kills
// every member with SIGKILL, restarts them all and checks that no
// acknowledged write is lost and the revision never went backwards.
func TestDurabilityKillAll(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)

	const n, workers = 300, 6
	type ack struct {
		key, value string
		rev        int64
	}
	var (
		mu    sync.Mutex
		acked []ack
		wg    sync.WaitGroup
	)
	for w := range workers {
		// Each worker writes through a different member's endpoint, so
		// followers forward proposals too.
		cli := c.Client(w % len(c.Members))
		wg.Go(func() {
			for i := w; i < n; i += workers {
				key, value := fmt.Sprintf("dur/%04d", i), fmt.Sprintf("value-%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				resp, err := cli.Put(ctx, key, value)
				cancel()
				if err != nil {
					t.Errorf("Put(%s): %v", key, err)
					return
				}
				mu.Lock()
				acked = append(acked, ack{key, value, resp.Header.Revision})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var maxRev int64
	revs := map[int64]string{}
	for _, a := range acked {
		maxRev = max(maxRev, a.rev)
		if other, dup := revs[a.rev]; dup {
			t.Fatalf("writes %s and %s were both acknowledged at revision %d", other, a.key, a.rev)
		}
		revs[a.rev] = a.key
	}
	t.Logf("%d writes acknowledged, highest revision %d", len(acked), maxRev)

	for i := range c.Members {
		c.Kill(i)
	}
	for i := range c.Members {
		c.Start(i)
	}
	for i := range c.Members {
		c.WaitReady(i)
	}
	for i := range c.Members {
		c.connect(i)
	}
	c.WaitLeader(10 * c.Opts.ElectionTimeout)

	for i, m := range c.Members {
		resp, err := c.Client(i).Get(reqCtx(t), "dur/", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("Get(dur/*) via %s after restart: %v", m.Name, err)
		}
		if resp.Header.Revision < maxRev {
			t.Errorf("%s: revision after restart = %d, below the highest acknowledged revision %d", m.Name, resp.Header.Revision, maxRev)
		}
		got := map[string]*kvView{}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = &kvView{value: string(kv.Value), mod: kv.ModRevision}
		}
		lost := 0
		for _, a := range acked {
			g, ok := got[a.key]
			switch {
			case !ok:
				lost++
				if lost <= 10 {
					t.Errorf("%s: acknowledged write %s=%s (revision %d) is lost", m.Name, a.key, a.value, a.rev)
				}
			case g.value != a.value || g.mod != a.rev:
				t.Errorf("%s: %s = %q at mod revision %d, want %q at %d", m.Name, a.key, g.value, g.mod, a.value, a.rev)
			}
		}
		if lost > 0 {
			t.Errorf("%s: %d of %d acknowledged writes lost", m.Name, lost, len(acked))
		}
	}
}

type kvView struct {
	value string
	mod   int64
}
