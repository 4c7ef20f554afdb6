package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// putKeys writes keys prefix000..prefix(n-1) with value "val-<i>" through cli
// from a few goroutines and fails t on any error.
func putKeys(t *testing.T, cli *clientv3.Client, prefix string, n int) {
	t.Helper()
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				_, err := cli.Put(ctx, fmt.Sprintf("%s%04d", prefix, i), fmt.Sprintf("val-%d", i))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("put %s%04d: %w", prefix, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// snapFiles lists the member's *.snap files.
func snapFiles(t *testing.T, m *Member) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(m.DataDir, "member", "snap", "*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// waitConverged polls until every member reports the same header revision
// and the same HashKV at that revision, and returns the revision.
func waitConverged(t *testing.T, c *Cluster, d time.Duration) int64 {
	t.Helper()
	var last string
	var rev int64
	ok := pollUntil(d, func() bool {
		revs := make([]int64, len(c.Members))
		for i, m := range c.Members {
			st, err := c.Status(context.Background(), i)
			if err != nil {
				last = fmt.Sprintf("status of %s: %v", m.Name, err)
				return false
			}
			revs[i] = st.Header.Revision
		}
		for i := range revs {
			if revs[i] != revs[0] {
				last = fmt.Sprintf("revisions differ: %v", revs)
				return false
			}
		}
		rev = revs[0]
		hashes := make([]uint32, len(c.Members))
		for i, m := range c.Members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			h, err := c.Client(i).HashKV(ctx, m.ClientAddr, rev)
			cancel()
			if err != nil {
				last = fmt.Sprintf("HashKV(%d) on %s: %v", rev, m.Name, err)
				return false
			}
			if h.HashRevision != rev {
				last = fmt.Sprintf("HashKV(%d) on %s has hash_revision %d", rev, m.Name, h.HashRevision)
				return false
			}
			hashes[i] = h.Hash
		}
		for i := range hashes {
			if hashes[i] != hashes[0] {
				last = fmt.Sprintf("HashKV at revision %d differs: %x", rev, hashes)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("members did not converge within %v: %s", d, last)
	}
	return rev
}

// TestLeaderKillAndCatchUp kills the leader with SIGKILL, checks a new one
// is elected in time and writes go on, then restarts the old leader and
// checks it catches up through a snapshot to the same state.
func TestLeaderKillAndCatchUp(t *testing.T) {
	const afterKill = 300 // see the comment at the writes below
	c := NewCluster(t, ClusterOptions{Size: 3, SnapshotCount: 100, ExtraArgs: []string{"--snapshot-catchup-entries", "20"}})
	et := c.Opts.ElectionTimeout
	old := c.WaitLeader(10 * et)

	putKeys(t, c.All(), "before/", 50)
	oldID := c.MemberID(old)
	if oldID == 0 {
		t.Fatalf("leader %s has no known member id", c.Members[old].Name)
	}
	if files := snapFiles(t, c.Members[old]); len(files) != 0 {
		t.Logf("note: %s already has snapshots before the kill: %v", c.Members[old].Name, files)
	}

	killedAt := time.Now()
	c.Kill(old)

	// The followers see the dead leader's address refuse connections and
	// elect a new one early (TestLeaderKillElectsEarly); should that fail,
	// a follower campaigns after a randomized timeout in [et, 2et) since
	// the last heartbeat, and a split vote costs another such round, so 3×et
	// covers one failed round. The margin adds the polling period (10ms),
	// one Status round trip per member and scheduling on a loaded 2-core CI
	// machine running three servers: 500ms.
	bound := 3*et + 500*time.Millisecond
	newLeader := c.waitNewLeader(old, oldID, bound+5*time.Second)
	took := time.Since(killedAt)
	if newLeader < 0 {
		t.Fatalf("no new leader %v after killing %s", took, c.Members[old].Name)
	}
	t.Logf("%s elected %v after the kill of %s", c.Members[newLeader].Name, took, c.Members[old].Name)
	if took > bound {
		t.Errorf("new leader elected after %v, want ≤ %v (3 election timeouts of %v + margin)", took, bound, et)
	}

	// Writes go on, enough that the survivors compact their logs past the
	// killed member's position, so it can only catch up from a snapshot.
	// With --snapshot-count 100 they snapshot every 100 entries and keep
	// only 20 entries behind each snapshot (--snapshot-catchup-entries), so
	// 300 writes compact the killed member's position away.
	putKeys(t, c.All(), "after/", afterKill)

	c.Restart(old)
	rev := waitConverged(t, c, 30*time.Second)
	t.Logf("converged at revision %d", rev)

	// The restarted member serves every key with the right value (a
	// serializable read shows its own state, not the leader's).
	for _, r := range []struct {
		prefix string
		n      int
	}{{"before/", 50}, {"after/", afterKill}} {
		resp, err := c.Client(old).Get(reqCtx(t), r.prefix, clientv3.WithPrefix(), clientv3.WithSerializable())
		if err != nil {
			t.Fatalf("Get(%s*) on %s: %v", r.prefix, c.Members[old].Name, err)
		}
		if len(resp.Kvs) != r.n {
			t.Fatalf("Get(%s*) on restarted %s: %d keys, want %d", r.prefix, c.Members[old].Name, len(resp.Kvs), r.n)
		}
		for i, kv := range resp.Kvs {
			if want := fmt.Sprintf("val-%d", i); string(kv.Value) != want {
				t.Fatalf("restarted %s: %s = %q, want %q", c.Members[old].Name, kv.Key, kv.Value, want)
			}
		}
	}

	// It caught up through a snapshot: its log of this run says it received
	// one, and it holds a snapshot file.
	runLog := c.Members[old].RunLog()
	if !strings.Contains(runLog, "snapshot received") {
		t.Errorf("restarted %s did not log receiving a snapshot (\"snapshot received\"); it caught up without one although the others compacted their logs", c.Members[old].Name)
	}
	if files := snapFiles(t, c.Members[old]); len(files) == 0 {
		t.Errorf("restarted %s has no *.snap file in %s", c.Members[old].Name, filepath.Join(c.Members[old].DataDir, "member", "snap"))
	}
	for i, m := range c.Members {
		if i == old {
			continue
		}
		if files := snapFiles(t, m); len(files) == 0 {
			t.Errorf("%s wrote no snapshot after %d writes with --snapshot-count 100", m.Name, 50+afterKill)
		}
	}
}

// TestLeaderKillElectsEarly: after kill -9 of the leader, the followers find
// its peer address refusing connections, forget it and elect a new leader at
// once instead of waiting out the election timeout. The timeout here is 3 s,
// so an election on the timeout could not come before 2.9 s (3 s after the
// last heartbeat); the early one takes a tick or a few (the transport
// redials a broken stream at once), well under 0.5 s on an idle machine.
func TestLeaderKillElectsEarly(t *testing.T) {
	const et = 3 * time.Second
	c := NewCluster(t, ClusterOptions{Size: 3, HeartbeatInterval: 100 * time.Millisecond, ElectionTimeout: et})
	old := c.WaitLeader(10 * et)
	putKeys(t, c.All(), "before/", 10)
	oldID := c.MemberID(old)

	killedAt := time.Now()
	c.Kill(old)
	newLeader := c.waitNewLeader(old, oldID, 3*et)
	took := time.Since(killedAt)
	if newLeader < 0 {
		t.Fatalf("no new leader %v after killing %s", took, c.Members[old].Name)
	}
	t.Logf("%s elected %v after the kill of %s (election timeout %v)", c.Members[newLeader].Name, took, c.Members[old].Name, et)
	if bound := et / 2; took > bound {
		t.Errorf("new leader elected after %v, want ≤ %v: the election waited for the timeout", took, bound)
	}
	if log := c.Members[newLeader].RunLog(); !strings.Contains(log, "campaigning early") {
		t.Errorf("new leader %s did not log \"campaigning early\"", c.Members[newLeader].Name)
	}
	putKeys(t, c.All(), "after/", 10)
}

// waitNewLeader polls the members other than old until one reports itself
// leader with an id other than oldID, and returns its index, or -1 after d.
func (c *Cluster) waitNewLeader(old int, oldID uint64, d time.Duration) int {
	newLeader := -1
	pollUntil(d, func() bool {
		for i := range c.Members {
			if i == old {
				continue
			}
			st, err := c.Status(context.Background(), i)
			if err != nil || st.Header == nil {
				continue
			}
			if st.Leader != 0 && st.Leader != oldID && st.Leader == st.Header.MemberId {
				newLeader = i
				return true
			}
		}
		return false
	})
	return newLeader
}

// TestFollowerCatchUpFromWAL: a member keeps only its newest 5,000 applied
// raft entries in memory (raftnode.Config.MemoryLogEntries). A follower
// that missed more than that, while no snapshot was due, is caught up with
// entries the leader reads back from its WAL, not with a snapshot.
func TestFollowerCatchUpFromWAL(t *testing.T) {
	const missed = 7000 // > 5,000 kept, plus the quarter trimmed at once
	c := NewCluster(t, ClusterOptions{Size: 3, SnapshotCount: 100000})
	et := c.Opts.ElectionTimeout
	lead := c.WaitLeader(10 * et)
	follower := (lead + 1) % len(c.Members)
	c.Kill(follower)
	putKeys(t, c.Client(lead), "missed/", missed)

	c.Restart(follower)
	waitConverged(t, c, 60*time.Second)
	resp, err := c.Client(follower).Get(reqCtx(t), "missed/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("count on %s: %v", c.Members[follower].Name, err)
	}
	if resp.Count != missed {
		t.Fatalf("%s holds %d of the %d keys it missed", c.Members[follower].Name, resp.Count, missed)
	}
	if strings.Contains(c.Members[follower].RunLog(), "snapshot received") {
		t.Fatalf("%s was sent a snapshot; want the log", c.Members[follower].Name)
	}
	code, body := httpGet(t, c.Members[lead].ClientAddr, "/metrics")
	read := metricValue(body, "concord_raft_log_entries_read_total")
	// The leader trims its memory in steps of a quarter of 5,000 entries,
	// so it holds at most 6,250: at least 750 of the missed entries are
	// older.
	if code != 200 || read < 700 {
		t.Fatalf("leader's concord_raft_log_entries_read_total = %v (GET /metrics %d); want at least the 750 missed entries older than its in-memory log", read, code)
	}
	if f := metricValue(body, "concord_raft_log_read_failures_total"); f != 0 {
		t.Fatalf("leader's concord_raft_log_read_failures_total = %v", f)
	}
	t.Logf("the leader read %v entries back from its WAL", read)
}

// metricValue is the value of the unlabelled metric name in Prometheus
// text, or -1 if it is absent.
func metricValue(body, name string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
