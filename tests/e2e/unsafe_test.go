package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestUnsafeLocalReads cuts one follower off with the fault plane and
// writes a new value through the majority. A linearizable get sent to the
// cut-off follower then returns the old value when every member runs with
// --unsafe-local-reads (the stale read the checkers must catch), and fails
// instead of answering without the flag.
func TestUnsafeLocalReads(t *testing.T) {
	for _, tc := range []struct {
		name   string
		unsafe bool
	}{
		{"unsafe", true},
		{"default", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--fault-injection"}
			if tc.unsafe {
				args = append(args, "--unsafe-local-reads")
			}
			c := NewCluster(t, ClusterOptions{Size: 3, ExtraArgs: args})
			leader := c.WaitLeader(10 * c.Opts.ElectionTimeout)
			cut, third := (leader+1)%3, (leader+2)%3
			var rest []string
			for i, m := range c.Members {
				if i != cut {
					rest = append(rest, m.Name)
				}
			}
			for _, m := range c.Members {
				warned := strings.Contains(m.Log(), "UNSAFE MODE: --unsafe-local-reads")
				if warned != tc.unsafe {
					t.Errorf("%s logged the unsafe-local-reads warning: %v, want %v", m.Name, warned, tc.unsafe)
				}
			}

			if _, err := c.All().Put(reqCtx(t), "unsafe/k", "old"); err != nil {
				t.Fatal(err)
			}
			if !pollUntil(5*time.Second, func() bool {
				v, ok, _ := serializableGet(c, cut, "unsafe/k")
				return ok && v == "old"
			}) {
				t.Fatalf("%s never applied unsafe/k=old", c.Members[cut].Name)
			}

			installFault(t, c, "partition", c.Members[cut].Name, strings.Join(rest, ","))
			healed := false
			heal := func() {
				if !healed {
					healed = true
					concordCLIOK(t, c, "fault", "heal")
				}
			}
			defer heal()

			// The majority (the leader is in it) commits the new value.
			if _, err := c.Client(leader).Put(reqCtx(t), "unsafe/k", "new"); err != nil {
				t.Fatalf("put through the majority's leader %s: %v", c.Members[leader].Name, err)
			}
			if !pollUntil(5*time.Second, func() bool {
				v, ok, _ := serializableGet(c, third, "unsafe/k")
				return ok && v == "new"
			}) {
				t.Fatalf("%s (in the majority) never applied unsafe/k=new", c.Members[third].Name)
			}

			// A default (linearizable) get on the cut-off follower.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := c.Client(cut).Get(ctx, "unsafe/k")
			cancel()
			switch {
			case tc.unsafe && err != nil:
				t.Errorf("linearizable get on the cut-off %s with --unsafe-local-reads: %v; want the stale value", c.Members[cut].Name, err)
			case tc.unsafe && (len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "old"):
				t.Errorf("linearizable get on the cut-off %s with --unsafe-local-reads = %v; want the stale value old", c.Members[cut].Name, resp.Kvs)
			case !tc.unsafe && err == nil:
				t.Errorf("linearizable get on the cut-off %s answered %v; want a failure (no leader or timeout), never stale data", c.Members[cut].Name, resp.Kvs)
			case !tc.unsafe:
				t.Logf("linearizable get on the cut-off %s failed as it must: %v", c.Members[cut].Name, err)
			}

			// After heal the follower catches up and reads the new value.
			heal()
			if !pollUntil(10*time.Second, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				resp, err := c.Client(cut).Get(ctx, "unsafe/k")
				return err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == "new"
			}) {
				t.Errorf("%s does not read unsafe/k=new after heal", c.Members[cut].Name)
			}
		})
	}
}

// TestUnsafeFlagsWarn: each unsafe switch is accepted, says at start what it
// breaks in one WARN line, and the member still serves.
func TestUnsafeFlagsWarn(t *testing.T) {
	flags := []string{"--unsafe-local-reads", "--unsafe-no-fsync", "--unsafe-lease-expiry-without-quorum"}
	c := NewCluster(t, ClusterOptions{Size: 1, ExtraArgs: flags})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	if _, err := c.All().Put(reqCtx(t), "unsafe/flags", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.All().Get(reqCtx(t), "unsafe/flags")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get after put = %v, %v", resp, err)
	}
	log := c.Members[0].Log()
	for _, f := range flags {
		found := false
		for line := range strings.Lines(log) {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "UNSAFE MODE: "+f+" is on") && strings.Contains(line, "breaks=") {
				found = true
			}
		}
		if !found {
			t.Errorf("no WARN line naming %s and what it breaks in the member log", f)
		}
	}
}
