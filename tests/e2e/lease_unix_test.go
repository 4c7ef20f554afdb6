//go:build unix

package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLeaseStuckLeader: while the leader is frozen (SIGSTOP) for twice a
// lease's TTL, renewals sent to a follower must stop waiting on the frozen
// leader and reach the new one (the lease survives); when the old leader
// wakes up believing it still leads and that the lease expired long ago, it
// must not revoke it (etcd #15247).
func TestLeaseStuckLeader(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	stuck := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	var others []string
	for i, m := range c.Members {
		if i != stuck {
			others = append(others, m.ClientAddr)
		}
	}
	// A client that never talks to the member about to freeze.
	cli, err := newClient(others)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// clientv3 gives a lease up when no renewal is answered within its TTL;
	// 3s leaves room for an election that takes a few rounds.
	const ttl = 3
	g, err := cli.Grant(reqCtx(t), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(reqCtx(t), "stuck/k", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	kctx, kcancel := context.WithCancel(context.Background())
	defer kcancel()
	kch, err := cli.KeepAlive(kctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range kch {
		}
	}()

	proc := c.Members[stuck].current().cmd.Process
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", c.Members[stuck].Name, err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			proc.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	t.Logf("froze leader %s", c.Members[stuck].Name)
	// Twice the TTL, kept alive through the other members' new leader.
	<-time.After(2 * ttl * time.Second)
	if !keyPresent(t, cli, "stuck/k") {
		t.Fatalf("the kept-alive lease expired while the old leader was frozen")
	}
	resume()
	t.Logf("resumed %s", c.Members[stuck].Name)
	// The old leader runs its lease loop on waking; give it a few rounds
	// and an election's worth of time to find out it was deposed.
	<-time.After(4 * c.Opts.ElectionTimeout)
	if !keyPresent(t, cli, "stuck/k") {
		t.Fatalf("the kept-alive lease's key was deleted after the frozen leader woke up")
	}
	if r, err := cli.TimeToLive(reqCtx(t), g.ID); err != nil || r.TTL <= 0 {
		t.Errorf("TimeToLive after the old leader woke = %+v, %v", r, err)
	}
	// The cluster (all three members) agrees on a leader again.
	c.WaitLeader(20 * c.Opts.ElectionTimeout)
}
