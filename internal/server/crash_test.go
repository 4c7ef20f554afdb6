package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/command"
)

func testConfig(t testing.TB, fs vfs.FS) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = "solo"
	cfg.DataDir = "data"
	cfg.InitialCluster = []Peer{{Name: "solo", URL: "http://127.0.0.1:1"}}
	cfg.HeartbeatInterval = 10 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.SnapshotCount = 40
	cfg.SnapshotCatchUpEntries = 10
	cfg.WALSegmentBytes = 16 * 1024
	cfg.FS = fs
	return cfg
}

// startTestServer starts a single-member server on fs and waits until it
// serves.
func startTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ln); err != nil {
		t.Fatalf("Start: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.Ready() {
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatal("server not ready after 10s")
		}
		select {
		case <-s.Done():
			t.Fatalf("server stopped: %v", s.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return s
}

type crashPoint struct {
	fs    *vfs.MemFS
	acked map[string]string
	rev   int64
}

// TestPowerLossKeepsAcknowledgedWrites takes crash clones of a member's
// filesystem (un-synced data dropped at random) at many points while writes
// are in flight, including across snapshots and WAL segment rollovers. Every
// clone must start, hold every write acknowledged before the clone was taken,
// and never show a lower revision than one acknowledged.
func TestPowerLossKeepsAcknowledgedWrites(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d (drives the clone points and which un-synced data each clone keeps)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	fs := vfs.NewCrashableMem()
	s := startTestServer(t, testConfig(t, fs))

	var (
		mu     sync.Mutex
		acked  = map[string]string{}
		maxRev int64
		points []crashPoint
	)
	const writers, perWriter = 4, 150
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				k := fmt.Sprintf("k%d-%d", w, i%40)
				v := fmt.Sprintf("v%d-%d", w, i)
				_, h, err := s.Put(context.Background(), &command.PutRequest{Key: []byte(k), Value: []byte(v)})
				if err != nil {
					t.Errorf("put %s: %v", k, err)
					return
				}
				mu.Lock()
				acked[k] = v
				if h.Revision > maxRev {
					maxRev = h.Revision
				}
				// Clone at random moments: the lock keeps this acked set
				// exactly the writes acknowledged before the clone.
				if rng.IntN(12) == 0 {
					snap := make(map[string]string, len(acked))
					for k, v := range acked {
						snap[k] = v
					}
					clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))})
					points = append(points, crashPoint{fs: clone, acked: snap, rev: maxRev})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.Stop()
	if t.Failed() {
		return
	}
	if len(points) < 10 {
		t.Fatalf("only %d crash points taken; want at least 10", len(points))
	}
	for i, p := range points {
		r := startTestServer(t, testConfig(t, p.fs))
		if rev := r.applier.Store().Rev(); rev < p.rev {
			t.Errorf("crash point %d: revision %d after restart, but %d was acknowledged", i, rev, p.rev)
		}
		for k, v := range p.acked {
			resp, _, err := r.Range(context.Background(), &command.RangeRequest{Key: []byte(k), Serializable: true})
			if err != nil {
				t.Fatalf("crash point %d: get %s: %v", i, k, err)
			}
			// A later write to the key may also have survived; the value
			// must be this one or a later one by the same writer.
			if len(resp.Kvs) != 1 {
				t.Errorf("crash point %d: acknowledged key %s lost", i, k)
				continue
			}
			if got := string(resp.Kvs[0].Value); got != v && !laterValue(got, v) {
				t.Errorf("crash point %d: %s = %q, want %q or later", i, k, got, v)
			}
		}
		r.Stop()
	}
	t.Logf("%d crash points checked, %d writes", len(points), writers*perWriter)
}

// laterValue reports whether got ("v<w>-<i>") was written after want by the
// same writer.
func laterValue(got, want string) bool {
	var gw, gi, ww, wi int
	if _, err := fmt.Sscanf(got, "v%d-%d", &gw, &gi); err != nil {
		return false
	}
	if _, err := fmt.Sscanf(want, "v%d-%d", &ww, &wi); err != nil {
		return false
	}
	return gw == ww && gi > wi
}
