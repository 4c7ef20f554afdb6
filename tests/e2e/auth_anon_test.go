package e2e

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAuthCallersWithoutIdentity pins what etcd 3.6 answers (checked
// against it by hand) once auth is on: lease calls, member and alarm lists
// need an authenticated caller, compaction needs root; and the members' own
// work still runs — the leader's auto-compaction and lease expiry go through
// with root's rights.
func TestAuthCallersWithoutIdentity(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 1, ExtraArgs: []string{"--bcrypt-cost", "4",
		"--auto-compaction-mode", "revision", "--auto-compaction-retention", "10", "--auto-compaction-interval", "100ms",
	}})
	eps := c.Endpoints()
	setup := mustPlainClient(t, eps)
	ctx := reqCtx(t)
	for i, step := range []func() error{
		func() error { _, err := setup.UserAdd(ctx, "root", rootPassword); return err },
		func() error { _, err := setup.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := setup.UserAdd(ctx, "alice", alicePassword); return err },
		func() error { _, err := setup.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	anon := mustPlainClient(t, eps)
	alice := mustAuthClient(t, eps, "alice", alicePassword)
	root := mustAuthClient(t, eps, "root", rootPassword)

	anonCalls := []struct {
		name string
		call func() error
	}{
		{"lease grant", func() error { _, err := anon.Grant(reqCtx(t), 10); return err }},
		{"lease list", func() error { _, err := anon.Leases(reqCtx(t)); return err }},
		{"member list", func() error { _, err := anon.MemberList(reqCtx(t)); return err }},
		{"alarm list", func() error { _, err := anon.AlarmList(reqCtx(t)); return err }},
		{"compaction", func() error { _, err := anon.Compact(reqCtx(t), 1); return err }},
	}
	for _, tc := range anonCalls {
		if err := tc.call(); !errors.Is(err, rpctypes.ErrUserEmpty) {
			t.Errorf("anonymous %s: %v, want %v", tc.name, err, rpctypes.ErrUserEmpty)
		}
	}
	g, err := root.Grant(reqCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(reqCtx(t), "leased", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	aliceCalls := []struct {
		name string
		call func() error
	}{
		{"lease grant", func() error { _, err := alice.Grant(reqCtx(t), 10); return err }},
		{"lease time-to-live", func() error { _, err := alice.TimeToLive(reqCtx(t), g.ID); return err }},
		{"member list", func() error { _, err := alice.MemberList(reqCtx(t)); return err }},
		{"alarm list", func() error { _, err := alice.AlarmList(reqCtx(t)); return err }},
	}
	for _, tc := range aliceCalls {
		if err := tc.call(); err != nil {
			t.Errorf("alice %s: %v", tc.name, err)
		}
	}
	if _, err := alice.Compact(reqCtx(t), 1); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("alice compaction: %v, want %v", err, rpctypes.ErrPermissionDenied)
	}
	if _, err := alice.Revoke(reqCtx(t), g.ID); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("alice revoking a lease holding a key she may not write: %v, want %v", err, rpctypes.ErrPermissionDenied)
	}

	// The member's own work: the lease expires and its key goes; the leader
	// auto-compacts to revision - 10.
	if !pollUntil(10*time.Second, func() bool {
		r, err := root.Get(reqCtx(t), "leased")
		return err == nil && len(r.Kvs) == 0
	}) {
		t.Errorf("leased key still there after its 2 s lease should have expired")
	}
	var rev int64
	for i := range 30 {
		p, err := root.Put(reqCtx(t), "k", strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		rev = p.Header.Revision
	}
	var lastErr error
	if !pollUntil(10*time.Second, func() bool {
		_, lastErr = root.Get(reqCtx(t), "k", clientv3.WithRev(rev-11))
		return errors.Is(lastErr, rpctypes.ErrCompacted)
	}) {
		t.Errorf("with auth on, get at revision %d never failed as compacted (last: %v)", rev-11, lastErr)
	}
}
