package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// faultCluster starts three members that serve the fault API.
func faultCluster(t *testing.T) *Cluster {
	t.Helper()
	c := NewCluster(t, ClusterOptions{Size: 3, ExtraArgs: []string{"--fault-injection"}})
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		// No rule may outlive a passing test's heal.
		if r := concordCLI(t, c, "fault", "list"); r.code != 0 || !strings.Contains(r.stdout, "no fault rules installed") {
			t.Errorf("fault list at the end: %s", r)
		}
	})
	return c
}

// installFault runs a concord fault verb that installs a rule on every
// member and returns the rule's id.
func installFault(t *testing.T, c *Cluster, args ...string) string {
	t.Helper()
	out := concordCLIOK(t, c, append([]string{"fault"}, args...)...)
	id, rest, ok := strings.Cut(strings.TrimSpace(out), " installed on ")
	if !ok || !strings.HasPrefix(rest, "n1,n2,n3: ") {
		t.Fatalf("concord fault %s printed %q; want \"ID installed on n1,n2,n3: ...\"", strings.Join(args, " "), out)
	}
	return id
}

// serializableGet reads key from member i alone (its local state).
func serializableGet(c *Cluster, i int, key string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := c.Client(i).Get(ctx, key, clientv3.WithSerializable())
	if err != nil || len(resp.Kvs) == 0 {
		return "", false, err
	}
	return string(resp.Kvs[0].Value), true, nil
}

// listRow returns the line of concord fault list for rule id and its fired
// count.
func listRow(t *testing.T, c *Cluster, id string) (string, int) {
	t.Helper()
	for line := range strings.Lines(concordCLIOK(t, c, "fault", "list")) {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == id {
			fired, err := strconv.Atoi(fields[len(fields)-1])
			if err != nil {
				t.Fatalf("fault list row %q: no fired count", line)
			}
			return line, fired
		}
	}
	t.Fatalf("fault list shows no rule %s", id)
	return "", 0
}

// TestFaultPartitionLeader partitions the leader from the majority with
// concord fault: the old leader cannot commit, the majority elects a new
// leader and takes writes, and after heal the old leader catches up.
func TestFaultPartitionLeader(t *testing.T) {
	c := faultCluster(t)
	old := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	oldID := c.MemberID(old)
	var rest []int
	var restNames []string
	for i, m := range c.Members {
		if i != old {
			rest = append(rest, i)
			restNames = append(restNames, m.Name)
		}
	}
	if _, err := c.All().Put(reqCtx(t), "fault/before", "1"); err != nil {
		t.Fatal(err)
	}

	id := installFault(t, c, "partition", c.Members[old].Name, strings.Join(restNames, ","))
	if row, _ := listRow(t, c, id); !strings.Contains(row, "partition "+c.Members[old].Name+" | "+strings.Join(restNames, ",")) ||
		!strings.Contains(row, "never") {
		t.Errorf("fault list row %q: want the partition, never expiring", row)
	}

	// The isolated old leader cannot commit: its write fails or times out.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := c.Client(old).Put(ctx, "fault/minority", "lost")
	cancel()
	if err == nil {
		t.Fatalf("a put through the isolated old leader %s succeeded", c.Members[old].Name)
	}
	t.Logf("put through the isolated old leader failed after %v: %v", time.Since(start).Round(time.Millisecond), err)

	// The majority elects a new leader among itself and serves writes.
	var newLeader int
	if !pollUntil(20*c.Opts.ElectionTimeout, func() bool {
		for _, i := range rest {
			st, err := c.Status(context.Background(), i)
			if err == nil && st.Leader != 0 && st.Leader != oldID && st.Leader == st.Header.MemberId {
				newLeader = i
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the majority %v elected no new leader", restNames)
	}
	var putErr error
	if !pollUntil(5*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, putErr = c.Client(newLeader).Put(ctx, "fault/majority", "during")
		return putErr == nil
	}) {
		t.Fatalf("the majority's new leader %s takes no writes: %v", c.Members[newLeader].Name, putErr)
	}
	for _, i := range rest {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		resp, err := c.Client(i).Get(ctx, "fault/minority")
		cancel()
		if err != nil || len(resp.Kvs) != 0 {
			t.Errorf("%s reads fault/minority = %v, %v; the minority's write must not commit", c.Members[i].Name, resp, err)
		}
	}
	if v, ok, err := serializableGet(c, old, "fault/majority"); ok || err != nil {
		t.Errorf("the isolated %s sees fault/majority = %q, %v", c.Members[old].Name, v, err)
	}
	if _, fired := listRow(t, c, id); fired == 0 {
		t.Errorf("fault list: rule %s fired 0 times under a live partition", id)
	}

	// Heal: the old leader rejoins and sees the majority's write.
	heal := concordCLIOK(t, c, "fault", "heal")
	for _, m := range c.Members {
		if !strings.Contains(heal, m.Name+": removed "+id) {
			t.Errorf("fault heal printed %q; want %s removed on %s", heal, id, m.Name)
		}
	}
	if !pollUntil(10*time.Second, func() bool {
		v, ok, _ := serializableGet(c, old, "fault/majority")
		return ok && v == "during"
	}) {
		t.Fatalf("%s did not catch up with the majority's write after heal", c.Members[old].Name)
	}
	ctx, cancel = context.WithTimeout(context.Background(), requestTimeout)
	_, err = c.Client(old).Put(ctx, "fault/after", "1")
	cancel()
	if err != nil {
		t.Errorf("put through %s after heal: %v", c.Members[old].Name, err)
	}
	c.WaitLeader(20 * c.Opts.ElectionTimeout)
	for _, m := range c.Members {
		if !strings.Contains(m.Log(), "fault rule installed") || !strings.Contains(m.Log(), "fault rule removed") {
			t.Errorf("%s logged no install or removal of the rule", m.Name)
		}
	}
}

// TestFaultOneWayCut cuts only appends and heartbeats from the leader to one
// follower, with an expiry: the follower falls behind while the others
// commit, and heal by id lets it catch up.
func TestFaultOneWayCut(t *testing.T) {
	c := faultCluster(t)
	leader := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	follower, other := (leader+1)%3, (leader+2)%3
	link := c.Members[leader].Name + "->" + c.Members[follower].Name
	id := installFault(t, c, "drop", "--type", "MsgApp,MsgHeartbeat", "--duration", "1m", link, "1.0")
	row, _ := listRow(t, c, id)
	if want := fmt.Sprintf("drop MsgApp,MsgHeartbeat %s", link); !strings.Contains(row, want) || !strings.Contains(row, "in 1m") {
		t.Errorf("fault list row %q: want %q expiring in 1m0s", row, want)
	}

	// Through the leader: the cut follower, hearing no leader, refuses
	// writes (it keeps trying pre-votes, which PreVote makes harmless).
	if _, err := c.Client(leader).Put(reqCtx(t), "oneway/k", "v1"); err != nil {
		t.Fatalf("put under a one-way cut to one follower: %v", err)
	}
	if !pollUntil(5*time.Second, func() bool {
		v, ok, _ := serializableGet(c, other, "oneway/k")
		return ok && v == "v1"
	}) {
		t.Fatalf("%s (not cut) never applied oneway/k", c.Members[other].Name)
	}
	// Many heartbeat intervals later the cut follower still has not heard.
	if pollUntil(20*c.Opts.HeartbeatInterval, func() bool {
		_, ok, _ := serializableGet(c, follower, "oneway/k")
		return ok
	}) {
		t.Fatalf("%s applied oneway/k through a cut link", c.Members[follower].Name)
	}
	if _, fired := listRow(t, c, id); fired == 0 {
		t.Errorf("rule %s fired 0 times", id)
	}

	heal := concordCLIOK(t, c, "fault", "heal", id)
	if strings.Count(heal, "removed "+id) != 3 {
		t.Errorf("fault heal %s printed %q; want it removed on every member", id, heal)
	}
	if !pollUntil(10*time.Second, func() bool {
		v, ok, _ := serializableGet(c, follower, "oneway/k")
		return ok && v == "v1"
	}) {
		t.Fatalf("%s did not catch up after heal", c.Members[follower].Name)
	}
	c.WaitLeader(20 * c.Opts.ElectionTimeout)
}

// TestFaultRelayedProposal: a proposal that a follower forwarded to the
// leader, and that reaches it only after it has handed leadership on, is
// relayed by raft to the new leader under the follower's id. The new
// leader must take it from the old leader's stream: the Put succeeds and
// no stream breaks. (Before, the receiver refused a message whose From was
// not its stream's member; it closed the old leader's stream, the proposal
// was lost, and the client's Put timed out.)
func TestFaultRelayedProposal(t *testing.T) {
	c := faultCluster(t)
	old := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	proposer, next := (old+1)%3, (old+2)%3
	link := c.Members[proposer].Name + "->" + c.Members[old].Name
	id := installFault(t, c, "delay", "--type", "MsgProp", "--duration", "1m", link, "1s")

	put := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		_, err := c.Client(proposer).Put(ctx, "relayed/k", "v")
		put <- err
	}()
	// The proposal is held on its way to the old leader while leadership
	// moves on.
	if !pollUntil(5*time.Second, func() bool { _, fired := listRow(t, c, id); return fired > 0 }) {
		t.Fatalf("rule %s never held a MsgProp on %s", id, link)
	}
	if _, err := c.Client(old).MoveLeader(reqCtx(t), c.MemberID(next)); err != nil {
		t.Fatalf("MoveLeader from %s to %s: %v", c.Members[old].Name, c.Members[next].Name, err)
	}
	if err := <-put; err != nil {
		t.Fatalf("Put through %s, its proposal relayed by %s to the new leader %s: %v",
			c.Members[proposer].Name, c.Members[old].Name, c.Members[next].Name, err)
	}
	concordCLIOK(t, c, "fault", "heal", id)
	if resp, err := c.Client(next).Get(reqCtx(t), "relayed/k"); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Errorf("Get(relayed/k) from the new leader = %v, %v; want v", resp, err)
	}
	for _, m := range c.Members {
		if strings.Contains(m.Log(), "inbound stream ended") {
			t.Errorf("%s ended a peer's inbound stream:\n%s", m.Name, m.Log())
		}
	}
}

// TestFaultPauseLeader freezes the leader's raft loop for about two
// election timeouts: the others elect a new leader and commit without it,
// and when the pause ends it comes back as a follower and catches up.
func TestFaultPauseLeader(t *testing.T) {
	c := faultCluster(t)
	old := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	oldID := c.MemberID(old)
	pause := 2*c.Opts.ElectionTimeout + c.Opts.ElectionTimeout/2
	start := time.Now()
	id := installFault(t, c, "pause", c.Members[old].Name, pause.String())
	if row, _ := listRow(t, c, id); !strings.Contains(row, "pause "+c.Members[old].Name+" for "+pause.String()) {
		t.Errorf("fault list row %q: want the pause", row)
	}

	// Another member takes over while the old leader is frozen.
	newLeader := -1
	if !pollUntil(pause, func() bool {
		for i := range c.Members {
			if i == old {
				continue
			}
			st, err := c.Status(context.Background(), i)
			if err == nil && st.Leader != 0 && st.Leader != oldID && st.Leader == st.Header.MemberId {
				newLeader = i
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no new leader within the %v pause of %s", pause, c.Members[old].Name)
	}
	t.Logf("%s leads %v after the pause of %s began", c.Members[newLeader].Name, time.Since(start).Round(time.Millisecond), c.Members[old].Name)
	if _, err := c.Client(newLeader).Put(reqCtx(t), "fault/pause", "during"); err != nil {
		t.Fatalf("put through the new leader during the pause: %v", err)
	}

	// After the pause the old leader follows and catches up by itself.
	if !pollUntil(pause+10*c.Opts.ElectionTimeout, func() bool {
		v, ok, err := serializableGet(c, old, "fault/pause")
		return err == nil && ok && v == "during"
	}) {
		t.Fatalf("%s never caught up after its pause", c.Members[old].Name)
	}
	resumed := time.Since(start)
	if resumed < pause {
		t.Errorf("%s applied a write %v into a %v pause", c.Members[old].Name, resumed, pause)
	}
	st, err := c.Status(reqCtx(t), old)
	if err != nil || st.Leader == 0 || st.Leader == oldID {
		t.Errorf("%s after the pause: %+v, %v; want a follower of another leader", c.Members[old].Name, st, err)
	}
	t.Logf("%s caught up %v after the pause began (pause %v)", c.Members[old].Name, resumed.Round(time.Millisecond), pause)
	concordCLIOK(t, c, "fault", "heal")
}

// TestFaultClockLeaseEarly jumps the leader's lease clock ahead after a
// grant: the lease (and the key attached to it) expires early by about the
// jump.
func TestFaultClockLeaseEarly(t *testing.T) {
	c := faultCluster(t)
	lead := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	const ttl, skew = 5, 3 * time.Second
	cli := c.Client(lead)
	start := time.Now()
	g, err := cli.Grant(reqCtx(t), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(reqCtx(t), "fault/clock", "x", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	// Only differences between clock readings matter: the offset is a
	// jump of the clock that timed the grant.
	id := installFault(t, c, "clock", c.Members[lead].Name, "+"+skew.String())
	if row, _ := listRow(t, c, id); !strings.Contains(row, "clock "+c.Members[lead].Name+" +3s") {
		t.Errorf("fault list row %q: want the clock rule", row)
	}
	var gone time.Duration
	if !pollUntil(2*ttl*time.Second, func() bool {
		_, ok, err := serializableGet(c, lead, "fault/clock")
		if err == nil && !ok {
			gone = time.Since(start)
			return true
		}
		return false
	}) {
		t.Fatalf("the %ds lease never expired", ttl)
	}
	early := ttl*time.Second - gone
	t.Logf("%ds lease expired after %v with the leader's clock %v ahead: %v early", ttl, gone.Round(time.Millisecond), skew, early.Round(time.Millisecond))
	if early < skew-time.Second || early > skew+time.Second/2 {
		t.Errorf("lease expired %v early, want about %v", early, skew)
	}
	concordCLIOK(t, c, "fault", "heal")
}

// TestFaultDiskFailFollower fails a follower's next fsync: that member
// exits non-zero with the injected error, never having acknowledged the
// write, while the other two keep serving; restarted, it catches up.
func TestFaultDiskFailFollower(t *testing.T) {
	c := faultCluster(t)
	lead := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	victim := (lead + 1) % len(c.Members)
	id := installFault(t, c, "disk", c.Members[victim].Name, "fail")
	if row, _ := listRow(t, c, id); !strings.Contains(row, "disk "+c.Members[victim].Name+" fail fsync") {
		t.Errorf("fault list row %q: want the disk rule", row)
	}
	if _, err := c.Client(lead).Put(reqCtx(t), "fault/disk", "1"); err != nil {
		t.Fatalf("put with one failing follower: %v", err)
	}
	code, stderr, ok := c.WaitExit(victim, 10*c.Opts.ElectionTimeout)
	if !ok {
		t.Fatalf("%s still runs after its fsync failed", c.Members[victim].Name)
	}
	if code == 0 || !strings.Contains(stderr, "injected disk fault") {
		t.Fatalf("%s exited %d; want non-zero with the injected error; stderr:\n%s", c.Members[victim].Name, code, tail(stderr, 2000))
	}
	t.Logf("%s exited %d: %s", c.Members[victim].Name, code, lastLineWith(stderr, "injected disk fault"))

	// The two others keep serving writes.
	for i := range 3 {
		if _, err := c.Client(lead).Put(reqCtx(t), fmt.Sprintf("fault/disk/%d", i), "ok"); err != nil {
			t.Fatalf("put %d after %s stopped: %v", i, c.Members[victim].Name, err)
		}
	}

	// The operator restarts it (rules live in memory: it comes back with
	// none) and it catches up; heal clears the rule from the others.
	c.Restart(victim)
	if !pollUntil(10*c.Opts.ElectionTimeout, func() bool {
		v, ok, err := serializableGet(c, victim, "fault/disk/2")
		return err == nil && ok && v == "ok"
	}) {
		t.Fatalf("%s did not catch up after its restart", c.Members[victim].Name)
	}
	concordCLIOK(t, c, "fault", "heal")
}

// lastLineWith returns the last line of s containing sub.
func lastLineWith(s, sub string) string {
	last := ""
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			last = strings.TrimSpace(line)
		}
	}
	return last
}

// TestFaultKillLeader crashes the leader with concord fault kill: it exits
// at once with status 137, the others elect a new leader and take writes,
// and the restarted member catches up. The kill is never listed.
func TestFaultKillLeader(t *testing.T) {
	c := faultCluster(t)
	lead := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	name, leadID := c.Members[lead].Name, c.MemberID(lead)
	if _, err := c.Client(lead).Put(reqCtx(t), "fault/kill/before", "1"); err != nil {
		t.Fatalf("put before the kill: %v", err)
	}
	out := concordCLIOK(t, c, "fault", "kill", "leader")
	if want := name + " killed: kill " + name + " (exit 137)"; strings.TrimSpace(out) != want {
		t.Errorf("concord fault kill leader printed %q, want %q", out, want)
	}
	code, stderr, ok := c.WaitExit(lead, 5*time.Second)
	if !ok {
		t.Fatalf("%s still runs after concord fault kill", name)
	}
	if code != 137 || !strings.Contains(stderr, "killed by a kill rule") {
		t.Fatalf("%s exited %d; want 137 and the kill line; stderr:\n%s", name, code, tail(stderr, 2000))
	}
	t.Logf("%s exited %d: %s", name, code, lastLineWith(stderr, "killed by a kill rule"))
	// A crash, not a shutdown: nothing after the kill line.
	if after := stderr[strings.LastIndex(stderr, "killed by a kill rule"):]; strings.Contains(after, `msg=stopped`) || strings.Contains(after, "stopping") {
		t.Errorf("%s shut down gracefully after the kill:\n%s", name, tail(after, 1000))
	}

	// The two others elect a new leader and take writes.
	newLeader := c.waitNewLeader(lead, leadID, 10*c.Opts.ElectionTimeout)
	if newLeader < 0 {
		t.Fatalf("no new leader after %s was killed", name)
	}
	if _, err := c.Client(newLeader).Put(reqCtx(t), "fault/kill/after", "ok"); err != nil {
		t.Fatalf("put on the new leader %s: %v", c.Members[newLeader].Name, err)
	}

	c.Restart(lead)
	if !pollUntil(10*c.Opts.ElectionTimeout, func() bool {
		v, ok, err := serializableGet(c, lead, "fault/kill/after")
		return err == nil && ok && v == "ok"
	}) {
		t.Fatalf("%s did not catch up after its restart", name)
	}
}
