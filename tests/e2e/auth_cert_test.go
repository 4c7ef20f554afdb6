package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAuthClientCertCN: with --client-cert-auth and auth enabled, the CN of
// a verified client certificate is the user (etcd's rule): no password, no
// token. Along the way, on the same TLS cluster, what members ask each
// other over their https client URLs keeps working with auth on: lease
// renewals sent to a follower reach the leader, and the leader's
// corruption check still gets every member's HashKV (a root-only call,
// made with the member's system login).
func TestAuthClientCertCN(t *testing.T) {
	p := newPKI(t, "certauth")
	c := tlsCluster(t, 3, p.clientTLS(t, "root"), func(name string) []string {
		cert, key := p.issue(t, name)
		return []string{
			"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", p.caFile, "--peer-client-cert-auth",
			"--cert-file", cert, "--key-file", key, "--trusted-ca-file", p.caFile, "--client-cert-auth",
			"--experimental-corrupt-check-time", "100ms", "--log-level", "debug", "--bcrypt-cost", "4",
		}
	})
	root := c.All()
	ctx := reqCtx(t)
	if _, err := root.UserAddWithOptions(ctx, "root", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.RoleAdd(ctx, "reader"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "reader", "a", "c", clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error {
			_, err := root.UserAddWithOptions(ctx, "alice", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx, "alice", "reader"); return err },
		func() error { _, err := root.Put(ctx, "b", "before"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	logMarks := make([]int, len(c.Members))
	for i, m := range c.Members {
		logMarks[i] = len(m.Log())
	}

	// CN root is root.
	if _, err := root.Put(reqCtx(t), "b", "by-root-cert"); err != nil {
		t.Fatalf("put as CN root: %v", err)
	}
	if _, err := root.Status(reqCtx(t), c.Members[0].ClientAddr); err != nil {
		t.Errorf("status as CN root: %v", err)
	}

	connect := func(cn string) *clientv3.Client {
		cli, err := newClientTLS(c.Endpoints(), p.clientTLS(t, cn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	alice := connect("alice")
	if resp, err := alice.Get(reqCtx(t), "b"); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "by-root-cert" {
		t.Errorf("get b as CN alice = %v, %v", resp, err)
	}
	if _, err := alice.Put(reqCtx(t), "b", "x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("put b as CN alice: %v, want %v", err, rpctypes.ErrPermissionDenied)
	}
	if _, err := alice.Get(reqCtx(t), "d"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("get d as CN alice: %v, want %v", err, rpctypes.ErrPermissionDenied)
	}
	if _, err := alice.Defragment(reqCtx(t), c.Members[0].ClientAddr); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("defragment as CN alice: %v, want %v", err, rpctypes.ErrPermissionDenied)
	}
	mallory := connect("mallory") // signed by the CA, but no such user
	if _, err := mallory.Get(reqCtx(t), "b"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("get b as CN mallory (no such user): %v, want %v", err, rpctypes.ErrPermissionDenied)
	}

	// A renewal sent to a follower is forwarded to the leader's https URL.
	leader := c.WaitLeader(10 * time.Second)
	follower := c.Client((leader + 1) % len(c.Members))
	g, err := root.Grant(reqCtx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	if ka, err := follower.KeepAliveOnce(reqCtx(t), g.ID); err != nil || ka.TTL != 30 {
		t.Errorf("keepalive through follower %s: %v, %v", c.Members[(leader+1)%len(c.Members)].Name, ka, err)
	}

	// The leader's corruption check, run every 100ms, still hears from both
	// other members now that HashKV needs root.
	ok := pollUntil(10*time.Second, func() bool {
		for i, m := range c.Members {
			for _, line := range strings.Split(m.Log()[logMarks[i]:], "\n") {
				if strings.Contains(line, "corruption check: hashes agree") && strings.Contains(line, "members-checked=2") {
					return true
				}
			}
		}
		return false
	})
	if !ok {
		t.Errorf("no corruption check reached both other members after auth was enabled")
	}
}
