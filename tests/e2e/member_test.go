package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Runtime membership through etcd's Cluster API, as clientv3 and etcdctl use
// it: learners, promotion, removal (the leader included), replacement of a
// dead member, strict reconfiguration, and etcd's exact errors.

// newMemberSlot adds a member that is not started yet: fresh ports, a data
// dir, a log, and flags to join the running cluster with the given
// --initial-cluster. It returns the member's index.
func (c *Cluster) newMemberSlot(name, initialCluster string) int {
	c.t.Helper()
	ports := freePorts(c.t, 2)
	m := &Member{
		Name:       name,
		PeerURL:    fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		ClientAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}
	// Members created by NewCluster share a data root; a sibling of the first
	// one's dir is inside the test's temp dir and removed with it.
	m.DataDir = filepath.Join(filepath.Dir(c.Members[0].DataDir), name)
	m.LogPath = filepath.Join(filepath.Dir(c.Members[0].LogPath), name+".log")
	f, err := os.Create(m.LogPath)
	if err != nil {
		c.t.Fatalf("creating member log: %v", err)
	}
	m.log = &memberLog{file: f}
	if initialCluster != "" {
		initialCluster += ","
	}
	m.args = []string{"server",
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--initial-cluster", initialCluster + name + "=" + m.PeerURL,
		"--initial-cluster-state", "existing",
		"--listen-peer", strings.TrimPrefix(m.PeerURL, "http://"),
		"--listen-client", m.ClientAddr,
		"--heartbeat-interval", c.Opts.HeartbeatInterval.String(),
		"--election-timeout", c.Opts.ElectionTimeout.String(),
	}
	m.args = append(m.args, c.Opts.ExtraArgs...)
	c.mu.Lock()
	c.Members = append(c.Members, m)
	c.clients = append(c.clients, nil)
	c.mu.Unlock()
	return len(c.Members) - 1
}

// initialClusterOf renders a member list as --initial-cluster, skipping
// members that never started (they have no name).
func initialClusterOf(ms []*pb.Member) string {
	var parts []string
	for _, m := range ms {
		if m.Name == "" {
			continue
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, m.Name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// idOf returns the member id of member i from the member list.
func idOf(t *testing.T, cli *clientv3.Client, peerURL string) uint64 {
	t.Helper()
	resp, err := cli.MemberList(reqCtx(t))
	if err != nil {
		t.Fatalf("member list: %v", err)
	}
	for _, m := range resp.Members {
		for _, u := range m.PeerURLs {
			if u == peerURL {
				return m.ID
			}
		}
	}
	t.Fatalf("no member with peer URL %s in %v", peerURL, resp.Members)
	return 0
}

// wantErr fails unless err is etcd's error want (same message and code).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded, want %v", what, want)
		return
	}
	if !errors.Is(rpctypes.Error(err), rpctypes.Error(want)) && err.Error() != want.Error() {
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}

// retryWhile repeats op until it returns something other than one of the
// transient errors, within d.
func retryWhile(d time.Duration, op func() error, transient ...error) error {
	var err error
	pollUntil(d, func() bool {
		err = op()
		for _, tr := range transient {
			if err != nil && rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(tr) {
				return false
			}
		}
		return true
	})
	return err
}

// writer puts increasing values of one key until stopped and remembers the
// last acknowledged one.
type writer struct {
	cli    *clientv3.Client
	stop   chan struct{}
	done   chan struct{}
	acked  atomic.Int64
	failed atomic.Int64
}

func startWriter(cli *clientv3.Client) *writer {
	w := &writer{cli: cli, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := int64(1); ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			_, err := w.cli.Put(ctx, "flow", strconv.FormatInt(i, 10))
			cancel()
			if err == nil {
				w.acked.Store(i)
			} else {
				w.failed.Add(1)
			}
		}
	}()
	return w
}

func (w *writer) halt() { close(w.stop); <-w.done }

// waitSame polls until the given members report the same revision and the
// same HashKV at it.
func waitSame(t *testing.T, c *Cluster, idx []int) {
	t.Helper()
	var last string
	ok := pollUntil(20*time.Second, func() bool {
		var rev int64
		for _, i := range idx {
			st, err := c.Status(context.Background(), i)
			if err != nil {
				last = fmt.Sprintf("status of %s: %v", c.Members[i].Name, err)
				return false
			}
			if rev != 0 && st.Header.Revision != rev {
				last = fmt.Sprintf("revisions differ: %d, %d", rev, st.Header.Revision)
				return false
			}
			rev = st.Header.Revision
		}
		var hash uint32
		for n, i := range idx {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			h, err := c.Client(i).HashKV(ctx, c.Members[i].ClientAddr, rev)
			cancel()
			if err != nil {
				last = fmt.Sprintf("HashKV on %s: %v", c.Members[i].Name, err)
				return false
			}
			if n > 0 && h.Hash != hash {
				last = fmt.Sprintf("HashKV at %d differs on %s", rev, c.Members[i].Name)
				return false
			}
			hash = h.Hash
		}
		return true
	})
	if !ok {
		t.Fatalf("members %v did not converge: %s", idx, last)
	}
}

// joinAsLearner adds a learner for a new member, checks promotion is
// refused before it runs, starts it and promotes it once it caught up.
func joinAsLearner(t *testing.T, c *Cluster, cli *clientv3.Client, name string) int {
	t.Helper()
	list, err := cli.MemberList(reqCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	i := c.newMemberSlot(name, initialClusterOf(list.Members))
	m := c.Members[i]
	var add *clientv3.MemberAddResponse
	err = retryWhile(10*time.Second, func() error {
		var err error
		add, err = cli.MemberAddAsLearner(reqCtx(t), []string{m.PeerURL})
		return err
	}, rpctypes.ErrGRPCUnhealthy)
	if err != nil {
		t.Fatalf("member add --learner %s: %v", name, err)
	}
	if add.Member == nil || !add.Member.IsLearner || add.Member.Name != "" || add.Member.ID == 0 ||
		len(add.Members) != len(list.Members)+1 || add.Header.ClusterId == 0 {
		t.Fatalf("MemberAddAsLearner answer = %+v", add)
	}
	_, err = cli.MemberPromote(reqCtx(t), add.Member.ID)
	wantErr(t, "promote of a learner that never started", err, rpctypes.ErrGRPCLearnerNotReady)

	c.Start(i)
	c.WaitReady(i)
	c.connect(i)
	// A learner refuses all but Status and serializable reads.
	_, err = c.Client(i).Put(reqCtx(t), "learner-put", "x")
	wantErr(t, "put on a learner", err, rpctypes.ErrGRPCNotSupportedForLearner)
	if _, err := c.Client(i).Get(reqCtx(t), "flow", clientv3.WithSerializable()); err != nil {
		t.Errorf("serializable get on a learner: %v", err)
	}
	if st, err := c.Status(context.Background(), i); err != nil || !st.IsLearner {
		t.Errorf("status of learner %s = %+v, %v; want IsLearner", name, st, err)
	}

	err = retryWhile(15*time.Second, func() error {
		_, err := cli.MemberPromote(reqCtx(t), add.Member.ID)
		return err
	}, rpctypes.ErrGRPCLearnerNotReady)
	if err != nil {
		t.Fatalf("promote %s: %v", name, err)
	}
	return i
}

// TestMemberLifecycle grows a cluster from one member to three through
// learners while writes flow, replaces a killed member, removes the leader,
// and checks etcd's strict-reconfiguration refusals on the way.
func TestMemberLifecycle(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 1})
	w := startWriter(c.Client(0))
	n2 := joinAsLearner(t, c, c.Client(0), "n2")
	n3 := joinAsLearner(t, c, c.Client(0), "n3")
	live := []int{0, n2, n3}
	w.halt()
	waitSame(t, c, live)
	list, err := c.Client(0).MemberList(reqCtx(t))
	if err != nil || len(list.Members) != 3 {
		t.Fatalf("member list = %v, %v; want 3 members", list, err)
	}
	for _, m := range list.Members {
		if m.IsLearner || m.Name == "" || len(m.ClientURLs) == 0 {
			t.Errorf("member %+v: want a started voter", m)
		}
	}
	if w.acked.Load() == 0 {
		t.Fatal("no write was acknowledged while the cluster grew")
	}
	got, err := c.Client(n3).Get(reqCtx(t), "flow")
	if err != nil || len(got.Kvs) != 1 {
		t.Fatalf("get flow on n3: %v, %v", got, err)
	}
	if v, _ := strconv.ParseInt(string(got.Kvs[0].Value), 10, 64); v < w.acked.Load() {
		t.Errorf("n3 reads flow=%d, but %d was acknowledged", v, w.acked.Load())
	}
	t.Logf("%d writes acknowledged, %d failed while growing", w.acked.Load(), w.failed.Load())

	// Replace a dead member. Kill a follower; with it down, strict
	// reconfiguration refuses to remove a live voter (it would leave one of
	// three) and to add anyone; removing the dead one is fine.
	lead := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	var dead, other int
	for _, i := range live {
		if i != lead {
			dead, other = i, 0
			break
		}
	}
	for _, i := range live {
		if i != lead && i != dead {
			other = i
		}
	}
	deadID, otherID := idOf(t, c.Client(lead), c.Members[dead].PeerURL), idOf(t, c.Client(lead), c.Members[other].PeerURL)
	c.Kill(dead)
	_, err = c.Client(lead).MemberRemove(reqCtx(t), otherID)
	wantErr(t, "removing a live voter while another is dead", err, rpctypes.ErrGRPCMemberNotEnoughStarted)
	_, err = c.Client(lead).MemberAddAsLearner(reqCtx(t), []string{"http://127.0.0.1:1"})
	wantErr(t, "adding a member while one is dead", err, rpctypes.ErrGRPCUnhealthy)
	// Members must have been connected for a health interval to count as
	// started (etcd's rule), and other may have joined only just now.
	var rm *clientv3.MemberRemoveResponse
	err = retryWhile(10*time.Second, func() error {
		var err error
		rm, err = c.Client(other).MemberRemove(reqCtx(t), deadID)
		return err
	}, rpctypes.ErrGRPCMemberNotEnoughStarted)
	if err != nil || len(rm.Members) != 2 {
		t.Fatalf("removing the dead member: %v, %v", rm, err)
	}
	// Through a follower this time: it forwards the promotion to the
	// leader, the only member that knows the learner's progress.
	n4 := joinAsLearner(t, c, c.Client(other), "n4")
	live = []int{lead, other, n4}
	waitSame(t, c, live)
	// A joined member restarts from its data dir: the WAL knows its id.
	if code := c.Stop(n4); code != 0 {
		t.Fatalf("n4 exited with %d on SIGTERM", code)
	}
	c.Restart(n4)
	waitSame(t, c, live)

	// Remove the leader: leadership moves first, the cluster goes on, and the
	// removed member stops with a clear error.
	lead = c.WaitLeader(10 * c.Opts.ElectionTimeout)
	leadID := idOf(t, c.Client(lead), c.Members[lead].PeerURL)
	var rest []int
	for _, i := range live {
		if i != lead {
			rest = append(rest, i)
		}
	}
	err = retryWhile(10*time.Second, func() error {
		var err error
		rm, err = c.Client(rest[0]).MemberRemove(reqCtx(t), leadID)
		return err
	}, rpctypes.ErrGRPCMemberNotEnoughStarted)
	if err != nil || len(rm.Members) != 2 {
		t.Fatalf("removing the leader: %v, %v", rm, err)
	}
	code, stderr, ok := c.WaitExit(lead, stopTimeout)
	if !ok || code == 0 || !strings.Contains(stderr, "permanently removed from the cluster") {
		t.Errorf("removed leader: exited=%v code=%d, want a clear error; stderr tail:\n%s", ok, code, tail(stderr, 5))
	}
	if _, err := c.Client(rest[0]).Put(reqCtx(t), "after", "leader-removed"); err != nil {
		t.Fatalf("put after removing the leader: %v", err)
	}
	waitSame(t, c, rest)

	// A removed member that restarts stops with the same clear error and
	// leaves the cluster alone.
	c.Start(lead)
	code, stderr, ok = c.WaitExit(lead, readyTimeout)
	if !ok || code == 0 || !strings.Contains(stderr, "permanently removed from the cluster") {
		t.Errorf("restarted removed member: exited=%v code=%d; stderr tail:\n%s", ok, code, tail(stderr, 5))
	}
	if _, err := c.Client(rest[1]).Put(reqCtx(t), "after", "removed-restarted"); err != nil {
		t.Fatalf("put after the removed member restarted: %v", err)
	}
}

// TestMemberBadInput checks etcd's errors for refused membership changes on
// a one-member cluster, and that the member survives all of them.
func TestMemberBadInput(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 1})
	cli := c.Client(0)
	cl := pb.NewClusterClient(cli.ActiveConnection())
	mt := pb.NewMaintenanceClient(cli.ActiveConnection())
	self := idOf(t, cli, c.Members[0].PeerURL)

	_, err := cli.MemberRemove(reqCtx(t), self)
	wantErr(t, "removing the last member", err, rpctypes.ErrGRPCMemberNotEnoughStarted)
	_, err = cli.MemberRemove(reqCtx(t), 0xdead)
	wantErr(t, "removing a member that does not exist", err, rpctypes.ErrGRPCMemberNotFound)
	_, err = cli.MemberAdd(reqCtx(t), []string{c.Members[0].PeerURL})
	wantErr(t, "adding an existing peer URL", err, rpctypes.ErrGRPCPeerURLExist)
	for _, bad := range [][]string{nil, {"127.0.0.1:2380"}, {"http://127.0.0.1"}, {"https://127.0.0.1:2380/x"}} {
		_, err = cl.MemberAdd(reqCtx(t), &pb.MemberAddRequest{PeerURLs: bad})
		wantErr(t, fmt.Sprintf("adding peer URLs %q", bad), err, rpctypes.ErrGRPCMemberBadURLs)
	}
	_, err = cli.MemberPromote(reqCtx(t), self)
	wantErr(t, "promoting a voter", err, rpctypes.ErrGRPCMemberNotLearner)
	_, err = cli.MemberPromote(reqCtx(t), 0xdead)
	wantErr(t, "promoting a member that does not exist", err, rpctypes.ErrGRPCMemberNotFound)
	_, err = cli.MemberUpdate(reqCtx(t), 0xdead, []string{"http://127.0.0.1:1"})
	wantErr(t, "updating a member that does not exist", err, rpctypes.ErrGRPCMemberNotFound)

	add, err := cli.MemberAddAsLearner(reqCtx(t), []string{"http://127.0.0.1:1"})
	if err != nil {
		t.Fatalf("adding a learner: %v", err)
	}
	_, err = cli.MemberAddAsLearner(reqCtx(t), []string{"http://127.0.0.1:2"})
	wantErr(t, "adding a second learner", err, rpctypes.ErrGRPCTooManyLearners)
	_, err = cli.MemberPromote(reqCtx(t), add.Member.ID)
	wantErr(t, "promoting a learner that never caught up", err, rpctypes.ErrGRPCLearnerNotReady)
	_, err = mt.MoveLeader(reqCtx(t), &pb.MoveLeaderRequest{TargetID: add.Member.ID})
	wantErr(t, "moving leadership to a learner", err, rpctypes.ErrGRPCBadLeaderTransferee)
	_, err = cli.MemberUpdate(reqCtx(t), add.Member.ID, []string{c.Members[0].PeerURL})
	wantErr(t, "updating to another member's URL", err, rpctypes.ErrGRPCPeerURLExist)
	if _, err := cli.MemberUpdate(reqCtx(t), add.Member.ID, []string{"http://127.0.0.1:3"}); err != nil {
		t.Errorf("updating the learner's URL: %v", err)
	}
	if _, err := cli.MemberRemove(reqCtx(t), add.Member.ID); err != nil {
		t.Errorf("removing the learner that never started: %v", err)
	}
	list, err := cli.MemberList(reqCtx(t))
	if err != nil || len(list.Members) != 1 {
		t.Fatalf("member list after the bad input = %v, %v; want one member", list, err)
	}
	if _, err := cli.Put(reqCtx(t), "still", "alive"); err != nil {
		t.Fatalf("put after the bad input: %v", err)
	}
}

// TestMemberAutoPromote: with --auto-promote the leader promotes a learner
// once it has caught up. The member is added with concord's own CLI.
func TestMemberAutoPromote(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 1, ExtraArgs: []string{"--auto-promote"}})
	i := c.newMemberSlot("n2", c.Members[0].Name+"="+c.Members[0].PeerURL)
	ep := "--endpoints=" + c.Members[0].ClientAddr
	r := runCmd(t, nil, "", concordBin(t), "member", "add", "n2", "--peer-urls", c.Members[i].PeerURL, "--learner", ep)
	m := regexp.MustCompile(`^Member ([0-9a-f]+) added to cluster [0-9a-f]+\n`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || !strings.Contains(r.stdout, "n1="+c.Members[0].PeerURL) ||
		!strings.Contains(r.stdout, "n2="+c.Members[i].PeerURL) || !strings.Contains(r.stdout, `CONCORD_INITIAL_CLUSTER_STATE="existing"`) {
		t.Fatalf("concord member add: %s", r)
	}
	id := m[1]
	c.Start(i)
	c.WaitReady(i)
	c.connect(i)
	var out string
	ok := pollUntil(10*time.Second, func() bool {
		r := runCmd(t, nil, "", concordBin(t), "member", "list", ep)
		out = r.stdout
		for _, l := range lines(r.stdout) {
			if f := strings.Fields(l); len(f) == 5 && f[0] == id {
				return f[1] == "n2" && f[4] == "false"
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("learner was not promoted automatically; concord member list:\n%s", out)
	}
}

var (
	// etcdctl prints ids with %16x: padded with spaces, not zeros.
	etcdctlAddRE     = regexp.MustCompile(`^Member +([0-9a-f]+) added to cluster +([0-9a-f]+)$`)
	etcdctlListRE    = regexp.MustCompile(`^([0-9a-f]+), (started|unstarted), ([^,]*), ([^,]+), ([^,]*), (true|false)$`)
	etcdctlPromoteRE = regexp.MustCompile(`^Member +([0-9a-f]+) promoted in cluster +([0-9a-f]+)$`)
	etcdctlRemoveRE  = regexp.MustCompile(`^Member +([0-9a-f]+) removed from cluster +([0-9a-f]+)$`)
	// etcdctl 3.4 says "Leadership transferred", 3.5+ "Leader switched".
	etcdctlMoveRE = regexp.MustCompile(`^(?:Leadership transferred|Leader switched) from ([0-9a-f]+) to ([0-9a-f]+)$`)
)

// TestEtcdctlMember drives membership with the real etcdctl: member add
// --learner, promote, list, move-leader and remove.
func TestEtcdctlMember(t *testing.T) {
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Skip("etcdctl is not on PATH; CI installs Debian's etcd-client (3.4.23) to run this test")
	}
	c := NewCluster(t, ClusterOptions{Size: 2})
	lead := c.WaitLeader(10 * c.Opts.ElectionTimeout)

	list := lines(etcdctlOK(t, c, "", "member", "list"))
	if len(list) != 2 {
		t.Fatalf("etcdctl member list printed %q", list)
	}
	for _, l := range list {
		if m := etcdctlListRE.FindStringSubmatch(l); m == nil || m[2] != "started" || m[6] != "false" {
			t.Errorf("etcdctl member list line %q", l)
		}
	}

	i := c.newMemberSlot("n3", initialClusterOf(mustList(t, c.Client(0))))
	var out string
	pollUntil(10*time.Second, func() bool {
		r := etcdctl(t, c, "", "member", "add", "n3", "--peer-urls="+c.Members[i].PeerURL, "--learner")
		out = r.stdout + r.stderr
		return r.code == 0
	})
	outLines := lines(out)
	if len(outLines) < 5 || etcdctlAddRE.FindStringSubmatch(outLines[0]) == nil ||
		outLines[1] != `ETCD_NAME="n3"` || !strings.Contains(outLines[2], "n3="+c.Members[i].PeerURL) ||
		outLines[3] != `ETCD_INITIAL_ADVERTISE_PEER_URLS="`+c.Members[i].PeerURL+`"` || outLines[4] != `ETCD_INITIAL_CLUSTER_STATE="existing"` {
		t.Fatalf("etcdctl member add printed:\n%s", out)
	}
	id := etcdctlAddRE.FindStringSubmatch(outLines[0])[1]

	r := etcdctl(t, c, "", "member", "promote", id)
	if r.code == 0 || !strings.Contains(r.stderr, "etcdserver: can only promote a learner member which is in sync with leader") {
		t.Errorf("etcdctl member promote before the learner started: %s", r)
	}
	c.Start(i)
	c.WaitReady(i)
	c.connect(i)
	var promoted string
	pollUntil(15*time.Second, func() bool {
		r := etcdctl(t, c, "", "member", "promote", id)
		promoted = r.stdout + r.stderr
		return r.code == 0
	})
	if m := etcdctlPromoteRE.FindStringSubmatch(strings.TrimSpace(promoted)); m == nil || m[1] != id {
		t.Fatalf("etcdctl member promote printed %q", promoted)
	}
	list = lines(etcdctlOK(t, c, "", "member", "list"))
	if len(list) != 3 {
		t.Fatalf("etcdctl member list printed %q", list)
	}

	// move-leader: etcdctl finds the leader among its endpoints itself.
	leadID := strconv.FormatUint(c.MemberID(lead), 16)
	moved := etcdctlOK(t, c, "", "move-leader", id)
	if m := etcdctlMoveRE.FindStringSubmatch(strings.TrimSpace(moved)); m == nil || m[1] != leadID || m[2] != id {
		t.Errorf("etcdctl move-leader printed %q (leader was %s)", moved, leadID)
	}
	if got := c.WaitLeader(10 * c.Opts.ElectionTimeout); got != i {
		t.Errorf("leader is %s after move-leader to n3", c.Members[got].Name)
	}
	// Only the leader may be asked.
	follower := 0
	if follower == i {
		follower = 1
	}
	_, err := c.Client(follower).MoveLeader(reqCtx(t), c.MemberID(follower))
	wantErr(t, "MoveLeader on a follower", err, rpctypes.ErrGRPCNotLeader)

	// n3 counts as started once its streams have been up for a health
	// interval; until then strict reconfiguration refuses.
	var removed string
	pollUntil(10*time.Second, func() bool {
		r := etcdctl(t, c, "", "member", "remove", id)
		removed = r.stdout + r.stderr
		return r.code == 0
	})
	if m := etcdctlRemoveRE.FindStringSubmatch(strings.TrimSpace(removed)); m == nil || m[1] != id {
		t.Errorf("etcdctl member remove printed %q", removed)
	}
	if _, _, ok := c.WaitExit(i, stopTimeout); !ok {
		t.Errorf("n3 still runs after its removal")
	}
}

func mustList(t *testing.T, cli *clientv3.Client) []*pb.Member {
	t.Helper()
	resp, err := cli.MemberList(reqCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Members
}
