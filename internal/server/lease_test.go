package server

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eventually polls cond (the lease loop runs on its own goroutine with a
// real ticker; the fake clock decides expiry, this only waits for the loop).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		<-time.After(2 * time.Millisecond)
	}
}

func keyExists(t *testing.T, s *Server, key string) bool {
	t.Helper()
	resp, _, err := s.Range(context.Background(), &command.RangeRequest{Key: []byte(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return len(resp.Kvs) == 1
}

func leaseServer(t *testing.T, fs vfs.FS, clock Clock) *Server {
	t.Helper()
	cfg := testConfig(t, fs)
	cfg.Clock = clock
	s := startTestServer(t, cfg)
	t.Cleanup(s.Stop)
	return s
}

func TestLeaseLifecycle(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := leaseServer(t, vfs.NewMem(), clock)
	ctx := context.Background()

	if got := s.MinLeaseTTL(); got != 1 {
		t.Fatalf("MinLeaseTTL() with a 50ms election timeout = %d, want 1", got)
	}
	// Grants: server-chosen ids, client ids, the minimum, the maximum.
	g, _, err := s.LeaseGrant(ctx, 0, 5)
	if err != nil || g.Id <= 0 || g.Ttl != 5 {
		t.Fatalf("LeaseGrant(0, 5) = %v, %v", g, err)
	}
	id := g.Id
	if g2, _, err := s.LeaseGrant(ctx, 0, 0); err != nil || g2.Id == id || g2.Ttl != 1 {
		t.Errorf("LeaseGrant(0, 0) = %v, %v; want a new id with TTL raised to 1", g2, err)
	}
	if _, _, err := s.LeaseGrant(ctx, 77, 30); err != nil {
		t.Errorf("LeaseGrant(77, 30) = %v", err)
	}
	if _, _, err := s.LeaseGrant(ctx, 77, 30); !errors.Is(err, apply.ErrLeaseExist) {
		t.Errorf("LeaseGrant(77 again) = %v, want ErrLeaseExist", err)
	}
	if _, _, err := s.LeaseGrant(ctx, 78, 9_000_000_001); !errors.Is(err, apply.ErrLeaseTTLTooLarge) {
		t.Errorf("LeaseGrant(TTL 9e9+1) = %v, want ErrLeaseTTLTooLarge", err)
	}
	ids, _, err := s.LeaseLeases(ctx)
	if err != nil || len(ids) != 3 || !slices.IsSorted(ids) || !slices.Contains(ids, id) {
		t.Errorf("LeaseLeases() = %v, %v", ids, err)
	}

	// Keys attach; TimeToLive sees them and the fake clock.
	if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("k1"), Value: []byte("v"), Lease: id}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("k2"), Value: []byte("v"), Lease: id}); err != nil {
		t.Fatal(err)
	}
	st, h, err := s.LeaseTimeToLive(ctx, id, true)
	if err != nil || st.TTL != 5 || st.GrantedTTL != 5 || len(st.Keys) != 2 || string(st.Keys[0]) != "k1" || h.MemberID != s.ID() {
		t.Errorf("LeaseTimeToLive = %+v, %+v, %v", st, h, err)
	}
	clock.Advance(3500 * time.Millisecond)
	if st, _, _ := s.LeaseTimeToLive(ctx, id, false); st.TTL != 1 || st.Keys != nil {
		t.Errorf("LeaseTimeToLive after 3.5s = %+v, want TTL 1 (truncated) and no keys", st)
	}
	// A renewal 3.5s after the grant runs far ahead of what followers know:
	// it is acknowledged once its checkpoint is applied.
	ttl, _, err := s.LeaseRenew(ctx, id)
	if err != nil || ttl != 5 {
		t.Fatalf("LeaseRenew = %d, %v, want 5", ttl, err)
	}
	if l, _ := s.applier.Lease(id, false); l.RemainingMs != 5000 {
		t.Errorf("checkpoint after renewal: table has remaining %dms, want 5000", l.RemainingMs)
	}
	// Not expired one tick before its time, gone after it.
	clock.Advance(4999 * time.Millisecond)
	for range 5 { // a few lease rounds
		s.leases().wake()
		s.linearize(ctx)
	}
	if !keyExists(t, s, "k1") {
		t.Fatalf("k1 deleted before the lease expired")
	}
	clock.Advance(time.Millisecond)
	eventually(t, "expired lease revoked", func() bool { return !keyExists(t, s, "k1") && !keyExists(t, s, "k2") })
	if ttl, _, err := s.LeaseRenew(ctx, id); err != nil || ttl != 0 {
		t.Errorf("LeaseRenew(expired) = %d, %v, want 0", ttl, err)
	}
	if st, _, err := s.LeaseTimeToLive(ctx, id, true); err != nil || st.TTL != -1 || st.ID != id {
		t.Errorf("LeaseTimeToLive(expired) = %+v, %v, want TTL -1", st, err)
	}
	if _, err := s.LeaseRevoke(ctx, id); !errors.Is(err, apply.ErrLeaseNotFound) {
		t.Errorf("LeaseRevoke(expired) = %v, want ErrLeaseNotFound", err)
	}
	if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("k3"), Lease: id}); !errors.Is(err, apply.ErrLeaseNotFound) {
		t.Errorf("Put with an expired lease = %v, want ErrLeaseNotFound", err)
	}

	// Client revoke deletes the keys at once.
	if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("k4"), Lease: 77}); err != nil {
		t.Fatal(err)
	}
	before := s.applier.Store().Rev()
	h, err = s.LeaseRevoke(ctx, 77)
	if err != nil || h.Revision != before+1 || keyExists(t, s, "k4") {
		t.Errorf("LeaseRevoke(77) = %+v, %v; k4 exists %v", h, err, keyExists(t, s, "k4"))
	}
	if ttl, _, err := s.LeaseRenew(ctx, 12345); err != nil || ttl != 0 {
		t.Errorf("LeaseRenew(unknown) = %d, %v, want 0", ttl, err)
	}
}

// TestLeaseRenewMany: a batch of renewals answers each lease as LeaseRenew
// would (granted TTL, 0 for unknown or expired, duplicates answered twice)
// and waits for the one checkpoint that carries those renewed far ahead.
func TestLeaseRenewMany(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := leaseServer(t, vfs.NewMem(), clock)
	ctx := context.Background()
	for _, g := range []struct{ id, ttl int64 }{{10, 5}, {11, 30}, {12, 2}} {
		if _, _, err := s.LeaseGrant(ctx, g.id, g.ttl); err != nil {
			t.Fatal(err)
		}
	}
	// 12 expires; 10 and 11 are renewed 3.5 s after their grant, far ahead
	// of what followers know, so both need the checkpoint.
	clock.Advance(3500 * time.Millisecond)
	eventually(t, "lease 12 revoked", func() bool {
		s.leases().wake()
		_, ok := s.applier.Lease(12, false)
		return !ok
	})
	ids := []int64{10, 99, 11, 12, 10}
	ttls, h, err := s.LeaseRenewMany(ctx, ids)
	if err != nil || !slices.Equal(ttls, []int64{5, 0, 30, 0, 5}) || h.MemberID != s.ID() {
		t.Fatalf("LeaseRenewMany(%v) = %v, %+v, %v; want [5 0 30 0 5]", ids, ttls, h, err)
	}
	for _, c := range []struct {
		id   int64
		want int64
	}{{10, 5000}, {11, 30000}} {
		if l, _ := s.applier.Lease(c.id, false); l.RemainingMs != c.want {
			t.Errorf("lease %d after the batch: table has remaining %dms, want %d (checkpointed)", c.id, l.RemainingMs, c.want)
		}
	}
	if ttls, _, err := s.LeaseRenewMany(ctx, nil); err != nil || len(ttls) != 0 {
		t.Errorf("LeaseRenewMany(nil) = %v, %v", ttls, err)
	}
}

// TestLeaseRenewManyFindsLeasesAfterLinearize: a lease the Lessor does not
// know yet (granted through the log but not applied here when the batch
// arrives) is looked for again after a linearize, and its answer goes to
// every position that asked for it, the rest of the batch untouched.
func TestLeaseRenewManyFindsLeasesAfterLinearize(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := leaseServer(t, vfs.NewMem(), clock)
	ctx := context.Background()
	for _, g := range []struct{ id, ttl int64 }{{10, 5}, {11, 30}, {20, 7}} {
		if _, _, err := s.LeaseGrant(ctx, g.id, g.ttl); err != nil {
			t.Fatal(err)
		}
	}
	k := s.leases()
	// Lease 20 is in the table; make the Lessor forget it, as if its
	// grant had not been applied yet, and apply it during the linearize.
	k.mu.Lock()
	k.lessor.Revoked(20)
	k.mu.Unlock()
	rounds := 0
	k.relinearize = func(ctx context.Context) error {
		rounds++
		k.mu.Lock()
		k.lessor.Granted(clock.Now(), 20, 7)
		k.mu.Unlock()
		return s.linearize(ctx)
	}
	ids := []int64{10, 20, 99, 20, 11}
	ttls, _, err := s.LeaseRenewMany(ctx, ids)
	if want := []int64{5, 7, 0, 7, 30}; err != nil || !slices.Equal(ttls, want) {
		t.Fatalf("LeaseRenewMany(%v) = %v, %v; want %v", ids, ttls, err, want)
	}
	if rounds != 1 {
		t.Errorf("%d linearizes, want 1", rounds)
	}
	// A batch the Lessor knows whole needs none.
	if ttls, _, err := s.LeaseRenewMany(ctx, []int64{11, 20}); err != nil || !slices.Equal(ttls, []int64{30, 7}) || rounds != 1 {
		t.Errorf("LeaseRenewMany([11 20]) = %v, %v after %d linearizes; want [30 7] after 1", ttls, err, rounds)
	}
}

// TestLeaseRestart: leases and their remaining time survive a restart (WAL
// replay and snapshots), and expiry continues from the checkpoint.
func TestLeaseRestart(t *testing.T) {
	fs := vfs.NewMem()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	cfg := testConfig(t, fs)
	cfg.Clock = clock
	s := startTestServer(t, cfg)
	ctx := context.Background()
	g, _, err := s.LeaseGrant(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("k"), Lease: g.Id}); err != nil {
		t.Fatal(err)
	}
	// Enough writes for a snapshot (SnapshotCount 40) to hold the lease.
	for range 60 {
		if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("filler")}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(4 * time.Second)
	s.Stop() // checkpoints every lease: 6s left
	if l, ok := s.applier.Lease(g.Id, false); !ok || l.RemainingMs != 6000 {
		t.Errorf("after Stop the table holds %+v, want 6000ms remaining", l)
	}

	r := leaseServer(t, fs, clock)
	st, _, err := r.LeaseTimeToLive(ctx, g.Id, true)
	if err != nil || st.GrantedTTL != 10 || st.TTL != 6 || len(st.Keys) != 1 {
		t.Fatalf("after restart: LeaseTimeToLive = %+v, %v; want 6s of 10s left with key k", st, err)
	}
	clock.Advance(5999 * time.Millisecond)
	r.leases().wake()
	r.linearize(ctx)
	if !keyExists(t, r, "k") {
		t.Fatalf("k deleted before its remaining 6s were over")
	}
	clock.Advance(time.Millisecond)
	eventually(t, "lease revoked after restart", func() bool { return !keyExists(t, r, "k") })
}
