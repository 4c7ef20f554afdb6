package server

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/command"
)

// TestUnsafeNoFsyncLosesAcknowledgedWrites: a member whose first run made
// its bootstrap durable restarts with or without UnsafeNoFsync, acknowledges
// a Put, and loses power (a CrashClone keeping no unsynced data). With the
// switch the acknowledged Put is gone after restart; without it, it never is.
func TestUnsafeNoFsyncLosesAcknowledgedWrites(t *testing.T) {
	ctx := context.Background()
	get := func(s *Server, key string) bool {
		t.Helper()
		resp, _, err := s.Range(ctx, &command.RangeRequest{Key: []byte(key), Serializable: true})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return len(resp.Kvs) == 1
	}
	for _, unsafe := range []bool{false, true} {
		fs := vfs.NewCrashableMem()
		cfg := testConfig(t, fs)
		cfg.SnapshotCount = 10000 // no snapshot file (always synced) makes the write durable
		s := startTestServer(t, cfg)
		if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("before"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		s.Stop()

		cfg.UnsafeNoFsync = unsafe
		s = startTestServer(t, cfg)
		if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("acked"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		lost := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		s.Stop()

		cfg.FS = lost
		r := startTestServer(t, cfg)
		if !get(r, "before") {
			t.Errorf("unsafe=%v: the write of the safe first run was lost", unsafe)
		}
		if kept := get(r, "acked"); kept == unsafe {
			t.Errorf("unsafe=%v: acknowledged write survives power loss: %v, want %v", unsafe, kept, !unsafe)
		}
		r.Stop()
	}
}
