package server

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/command"
)

// TestUnsafeLeaseExpiryWithoutQuorum plays a leader that has lost its
// quorum (its leadership confirmation fails) while a lease expires by its
// clock: by default it revokes nothing; with the switch it revokes without
// asking, and the lease's key is deleted.
func TestUnsafeLeaseExpiryWithoutQuorum(t *testing.T) {
	errDeposed := errors.New("test: no quorum answers")
	for _, tc := range []struct {
		unsafe      bool
		wantRevoked bool
	}{
		{unsafe: false, wantRevoked: false},
		{unsafe: true, wantRevoked: true},
	} {
		clock := &fakeClock{now: time.Unix(1000, 0)}
		cfg := testConfig(t, vfs.NewMem())
		cfg.Clock = clock
		cfg.UnsafeLeaseExpiryWithoutQuorum = tc.unsafe
		s := startTestServer(t, cfg)
		ctx := context.Background()

		g, _, err := s.LeaseGrant(ctx, 0, 5)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("held"), Value: []byte("v"), Lease: g.Id}); err != nil {
			t.Fatal(err)
		}
		if err := s.awaitPrimary(ctx); err != nil {
			t.Fatal(err)
		}
		var asked atomic.Int64
		k := s.leases()
		k.mu.Lock()
		k.confirm = func(context.Context) error { asked.Add(1); return errDeposed }
		k.mu.Unlock()

		clock.Advance(6 * time.Second)
		if tc.wantRevoked {
			eventually(t, "expired lease revoked without confirmation", func() bool {
				s.revokeExpired(ctx)
				return !keyExists(t, s, "held")
			})
			if n := asked.Load(); n != 0 {
				t.Errorf("unsafe=%v: leadership confirmation asked %d times, want none", tc.unsafe, n)
			}
		} else {
			for range 5 { // direct rounds, besides the lease loop's own
				s.revokeExpired(ctx)
			}
			if !keyExists(t, s, "held") {
				t.Errorf("unsafe=%v: lease revoked by a leader that could not confirm its leadership", tc.unsafe)
			}
			if n := asked.Load(); n < 5 {
				t.Errorf("unsafe=%v: leadership confirmation asked %d times in 5 rounds", tc.unsafe, n)
			}
		}
		s.Stop()
	}
}

// TestUnsafeNoFsyncLosesAcknowledgedEntries: a Save of the member storage
// is the acknowledgement raft counts (a follower answers MsgApp, a leader
// counts itself, only after it). With UnsafeNoFsync a power loss takes the
// saved entries back; by default it never does.
func TestUnsafeNoFsyncLosesAcknowledgedEntries(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	id := identity{Name: "solo", MemberID: 1, ClusterID: 2}
	for _, tc := range []struct {
		unsafe   bool
		wantKept int
	}{
		{unsafe: false, wantKept: 3},
		{unsafe: true, wantKept: 0},
	} {
		mem := vfs.NewCrashableMem()
		cfg := testConfig(t, mem)
		cfg.UnsafeNoFsync = tc.unsafe
		st, _, err := openMemberStorage(cfg, logger, id)
		if err != nil {
			t.Fatal(err)
		}
		var ents []*raftpb.Entry
		for i := uint64(1); i <= 3; i++ {
			ents = append(ents, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Type: raftpb.EntryNormal.Enum(), Data: []byte("put")})
		}
		hs := &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(1), Commit: proto.Uint64(3)}
		if err := st.Save(hs, ents); err != nil {
			t.Fatal(err)
		}
		lost := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		st.Close()

		st2, p, err := openMemberStorage(testConfig(t, lost), logger, id)
		if err != nil {
			t.Fatalf("unsafe=%v: reopen after power loss: %v", tc.unsafe, err)
		}
		if got := len(p.entries); got != tc.wantKept {
			t.Errorf("unsafe=%v: %d of 3 saved entries survive a power loss, want %d", tc.unsafe, got, tc.wantKept)
		}
		st2.Close()
	}
}
