package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestSIGTERMTransfersLeadership stops the leader with SIGTERM: it must hand
// leadership over before exiting (so no election timeout passes without a
// leader), exit 0, and the cluster must keep accepting writes.
func TestSIGTERMTransfersLeadership(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	et := c.Opts.ElectionTimeout
	old := c.WaitLeader(10 * et)
	oldID := c.MemberID(old)
	putKeys(t, c.All(), "pre/", 20)

	sent := time.Now()
	c.Signal(old)
	newLeader := c.waitNewLeader(old, oldID, 10*et)
	took := time.Since(sent)
	if newLeader < 0 {
		t.Fatalf("no new leader %v after SIGTERM to leader %s", took, c.Members[old].Name)
	}
	t.Logf("%s leads %v after SIGTERM to %s", c.Members[newLeader].Name, took, c.Members[old].Name)
	// A transfer takes a heartbeat round or two (MsgTimeoutNow after the
	// target caught up), far below an election timeout; an election after
	// the leader simply vanished would take at least one.
	if took >= et {
		t.Errorf("new leader after %v, want < one election timeout (%v): leadership was not transferred", took, et)
	}

	code, stderr, ok := c.WaitExit(old, stopTimeout)
	if !ok {
		t.Fatalf("%s still running %v after SIGTERM", c.Members[old].Name, stopTimeout)
	}
	if code != 0 {
		t.Errorf("%s exited with status %d after SIGTERM, want 0; stderr:\n%s", c.Members[old].Name, code, tail(stderr, 30))
	}

	// Writes go on through the two survivors, and read back.
	for i := range 20 {
		k, v := fmt.Sprintf("post/%02d", i), fmt.Sprintf("v%d", i)
		if _, err := c.All().Put(reqCtx(t), k, v); err != nil {
			t.Fatalf("Put(%s) after the leader stopped: %v", k, err)
		}
		got, err := c.Client(newLeader).Get(reqCtx(t), k)
		if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != v {
			t.Fatalf("Get(%s) via %s = %v, %v; want %s", k, c.Members[newLeader].Name, got, err, v)
		}
	}
}
