package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// leasePollInterval is how often the expiry tests look at a key; it is part
// of every measured bound's margin.
const leasePollInterval = 10 * time.Millisecond

// expiryMargin is what an expiry may take beyond its deadline, besides the
// election timeout the bounds already allow: the leader's lease loop runs
// every election timeout / 10 (50ms here), then confirms its leadership (one
// heartbeat round), commits the revoke (an fsync on a quorum) and applies it;
// the test sees it at its next poll (10ms) after one Range. 300ms covers that
// with room for a loaded CI machine.
const expiryMargin = 300 * time.Millisecond

func keyPresent(t *testing.T, cli *clientv3.Client, key string) bool {
	t.Helper()
	resp, err := cli.Get(reqCtx(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return len(resp.Kvs) == 1
}

// waitGone polls until key is gone and returns when it was first seen gone.
func waitGone(t *testing.T, cli *clientv3.Client, key string, d time.Duration) time.Time {
	t.Helper()
	var gone time.Time
	if !pollUntilEvery(d, leasePollInterval, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 0 {
			return false
		}
		gone = time.Now()
		return true
	}) {
		t.Fatalf("key %s still present after %v", key, d)
	}
	return gone
}

func pollUntilEvery(d, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-time.After(every)
	}
}

// rawKeepAlive sends one keepalive for id on member i's own connection and
// returns the raw response (TTL 0 included, which clientv3 hides).
func rawKeepAlive(t *testing.T, c *Cluster, i int, id clientv3.LeaseID) *pb.LeaseKeepAliveResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	stream, err := pb.NewLeaseClient(c.Client(i).ActiveConnection()).LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatalf("keepalive stream to %s: %v", c.Members[i].Name, err)
	}
	if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
		t.Fatalf("keepalive send to %s: %v", c.Members[i].Name, err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("keepalive recv from %s: %v", c.Members[i].Name, err)
	}
	return resp
}

// watchDeletes opens a raw watch on prefix at member i; ok is false when the
// member has no Watch service yet.
func watchDeletes(t *testing.T, c *Cluster, i int, prefix string) (recv func() *pb.WatchResponse, ok bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := pb.NewWatchClient(c.Client(i).ActiveConnection()).Watch(ctx)
	if err == nil {
		err = stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
			Key: []byte(prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix)), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT},
		}}})
	}
	var created *pb.WatchResponse
	if err == nil {
		created, err = stream.Recv()
	}
	if status.Code(err) == codes.Unimplemented {
		return nil, false
	}
	if err != nil || !created.Created {
		t.Fatalf("watch %s on %s: %v, %v", prefix, c.Members[i].Name, created, err)
	}
	return func() *pb.WatchResponse {
		t.Helper()
		type result struct {
			r   *pb.WatchResponse
			err error
		}
		ch := make(chan result, 1)
		go func() { r, err := stream.Recv(); ch <- result{r, err} }()
		select {
		case res := <-ch:
			if res.err != nil {
				t.Fatalf("watch recv: %v", res.err)
			}
			return res.r
		case <-time.After(requestTimeout):
			t.Fatalf("no watch event within %v", requestTimeout)
			return nil
		}
	}, true
}

func followerOf(c *Cluster, leader int) int {
	for i := range c.Members {
		if i != leader && c.Members[i].Running() {
			return i
		}
	}
	return -1
}

// TestLeaseAPI covers the Lease service's answers, revocation, forwarding of
// renewals and TTL queries from a follower, and expiry without keepalives.
func TestLeaseAPI(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	leader := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	follower := followerOf(c, leader)
	cli := c.All()

	// Grant: minimum TTL (ceil(1.5 × 500ms) = 1s), too large, explicit ids.
	if g, err := cli.Grant(reqCtx(t), 0); err != nil || g.TTL != 1 || g.ID <= 0 {
		t.Errorf("Grant(TTL 0) = %+v, %v; want TTL raised to 1 and a positive id", g, err)
	}
	if _, err := cli.Grant(reqCtx(t), 9_000_000_001); !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
		t.Errorf("Grant(TTL 9e9+1) = %v, want ErrLeaseTTLTooLarge", err)
	}
	if _, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(reqCtx(t), &pb.LeaseGrantRequest{ID: 0x7e57, TTL: 30}); err != nil {
		t.Fatalf("LeaseGrant(ID 0x7e57) = %v", err)
	}
	if _, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(reqCtx(t), &pb.LeaseGrantRequest{ID: 0x7e57, TTL: 30}); rpctypes.Error(err) != rpctypes.ErrLeaseExist {
		t.Errorf("LeaseGrant(ID 0x7e57 again) = %v, want ErrLeaseExist", err)
	}

	// Keys attach; TimeToLive lists them, also through a follower.
	g, err := cli.Grant(reqCtx(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lease/b", "lease/a"} {
		if _, err := cli.Put(reqCtx(t), k, "v", clientv3.WithLease(g.ID)); err != nil {
			t.Fatalf("put %s with lease: %v", k, err)
		}
	}
	for _, i := range []int{leader, follower} {
		ttl, err := c.Client(i).TimeToLive(reqCtx(t), g.ID, clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatalf("TimeToLive via %s: %v", c.Members[i].Name, err)
		}
		var keys []string
		for _, k := range ttl.Keys {
			keys = append(keys, string(k))
		}
		if ttl.GrantedTTL != 10 || ttl.TTL < 8 || ttl.TTL > 10 || !slices.Equal(keys, []string{"lease/a", "lease/b"}) {
			t.Errorf("TimeToLive via %s = TTL %d granted %d keys %q", c.Members[i].Name, ttl.TTL, ttl.GrantedTTL, keys)
		}
		if ttl.ResponseHeader.MemberId != c.MemberID(i) && c.MemberID(i) != 0 {
			t.Errorf("TimeToLive via %s: header member %x, want the member asked", c.Members[i].Name, ttl.ResponseHeader.MemberId)
		}
	}
	leases, err := cli.Leases(reqCtx(t))
	if err != nil || !slices.ContainsFunc(leases.Leases, func(l clientv3.LeaseStatus) bool { return l.ID == g.ID }) {
		t.Errorf("Leases() = %+v, %v; want lease %x in it", leases, err, g.ID)
	}

	// Renewal through a follower is forwarded to the leader; the header is
	// the follower's, taken before the renewal.
	if r := rawKeepAlive(t, c, follower, g.ID); r.TTL != 10 || r.ID != int64(g.ID) || r.Header == nil || r.Header.MemberId == 0 {
		t.Errorf("keepalive via follower %s = %+v, want TTL 10 and a header", c.Members[follower].Name, r)
	} else if r.Header.MemberId != c.MemberID(follower) {
		t.Errorf("keepalive via follower: header member %x, want the follower's %x", r.Header.MemberId, c.MemberID(follower))
	}

	// Many renewals through the follower at once, each on a stream of its
	// own (the follower forwards those that arrive together as one call):
	// each answers its own lease, an unknown one with TTL 0.
	var ids []int64
	for i := range 30 {
		gi, err := cli.Grant(reqCtx(t), int64(10+i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, int64(gi.ID))
	}
	ids = append(ids, 0x0dd)
	var wg sync.WaitGroup
	for round := range 5 {
		for i, id := range ids {
			wg.Go(func() {
				want := int64(10 + i)
				if id == 0x0dd {
					want = 0
				}
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				defer cancel()
				stream, err := pb.NewLeaseClient(c.Client(follower).ActiveConnection()).LeaseKeepAlive(ctx)
				if err == nil {
					err = stream.Send(&pb.LeaseKeepAliveRequest{ID: id})
				}
				var r *pb.LeaseKeepAliveResponse
				if err == nil {
					r, err = stream.Recv()
				}
				if err != nil || r.ID != id || r.TTL != want {
					t.Errorf("round %d: concurrent keepalive of %x via follower = %v, %v; want TTL %d", round, id, r, err, want)
				}
			})
		}
		wg.Wait()
	}

	// Revoke deletes every key in one revision, one DELETE event each.
	recv, haveWatch := watchDeletes(t, c, follower, "lease/")
	rev, err := cli.Revoke(reqCtx(t), g.ID)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if keyPresent(t, cli, "lease/a") || keyPresent(t, cli, "lease/b") {
		t.Errorf("keys of a revoked lease still present")
	}
	if haveWatch {
		wr := recv()
		var got []string
		for _, ev := range wr.Events {
			if ev.Type != mvccpb.DELETE || ev.Kv.ModRevision != rev.Header.Revision {
				t.Errorf("revoke event %v, want DELETE at revision %d", ev, rev.Header.Revision)
			}
			got = append(got, string(ev.Kv.Key))
		}
		if !slices.Equal(got, []string{"lease/a", "lease/b"}) {
			t.Errorf("revoke watch events for keys %q, want [lease/a lease/b] in one response", got)
		}
	} else {
		t.Log("no Watch service yet: revoke checked through Get only")
	}

	// Unknown (or revoked) leases: TTL -1, keepalive TTL 0, revoke fails,
	// a put with it fails.
	if ttl, err := cli.TimeToLive(reqCtx(t), g.ID); err != nil || ttl.TTL != -1 {
		t.Errorf("TimeToLive(revoked) = %+v, %v; want TTL -1", ttl, err)
	}
	for _, i := range []int{leader, follower} {
		if r := rawKeepAlive(t, c, i, g.ID); r.TTL != 0 || r.ID != int64(g.ID) {
			t.Errorf("keepalive(revoked) via %s = %+v, want TTL 0", c.Members[i].Name, r)
		}
	}
	if _, err := cli.KeepAliveOnce(reqCtx(t), g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("clientv3 KeepAliveOnce(revoked) = %v, want ErrLeaseNotFound", err)
	}
	if _, err := cli.Revoke(reqCtx(t), g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("Revoke(revoked) = %v, want ErrLeaseNotFound", err)
	}
	if _, err := cli.Put(reqCtx(t), "lease/c", "v", clientv3.WithLease(g.ID)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("Put with a revoked lease = %v, want ErrLeaseNotFound", err)
	}

	// A lease kept alive only through a follower outlives its TTL.
	short, err := cli.Grant(reqCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(reqCtx(t), "lease/kept", "v", clientv3.WithLease(short.ID)); err != nil {
		t.Fatal(err)
	}
	kctx, kcancel := context.WithCancel(context.Background())
	kch, err := c.Client(follower).KeepAlive(kctx, short.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range kch {
		}
	}()
	<-time.After(3 * time.Second)
	if !keyPresent(t, cli, "lease/kept") {
		t.Errorf("lease kept alive through follower %s expired", c.Members[follower].Name)
	}
	kcancel()

	// Expiry without keepalives: within [TTL, TTL + election timeout +
	// margin] of the grant.
	sent := time.Now()
	g2, err := cli.Grant(reqCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	if _, err := cli.Put(reqCtx(t), "lease/exp", "v", clientv3.WithLease(g2.ID)); err != nil {
		t.Fatal(err)
	}
	gone := waitGone(t, cli, "lease/exp", 10*time.Second)
	lo, hi := sent.Add(2*time.Second), acked.Add(2*time.Second+c.Opts.ElectionTimeout+expiryMargin)
	t.Logf("lease of 2s expired %v after its grant was sent", gone.Sub(sent))
	if gone.Before(lo) || gone.After(hi) {
		t.Errorf("lease of 2s expired %v after grant; want within [2s, %v]", gone.Sub(sent), hi.Sub(sent))
	}
}

// TestLeaseLeaderChange: a lease kept alive survives two leader kills; a
// lease renewed once and then left alone expires, across a leader change,
// within TTL + one election timeout of that renewal — neither reset to a
// full TTL by the new leader nor cut short.
func TestLeaseLeaderChange(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	leader := c.WaitLeader(10 * c.Opts.ElectionTimeout)
	cli := c.All()
	const ttl = 5

	kept, err := cli.Grant(reqCtx(t), ttl)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := cli.Grant(reqCtx(t), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(reqCtx(t), "lc/kept", "v", clientv3.WithLease(kept.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(reqCtx(t), "lc/idle", "v", clientv3.WithLease(idle.ID)); err != nil {
		t.Fatal(err)
	}
	kctx, kcancel := context.WithCancel(context.Background())
	defer kcancel()
	kch, err := cli.KeepAlive(kctx, kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	keptAlive := make(chan struct{})
	go func() {
		defer close(keptAlive)
		for range kch {
		}
	}()

	// Renew the idle lease once, a second after its grant.
	<-time.After(time.Second)
	renewSent := time.Now()
	if r, err := cli.KeepAliveOnce(reqCtx(t), idle.ID); err != nil || r.TTL != ttl {
		t.Fatalf("KeepAliveOnce(idle) = %+v, %v", r, err)
	}
	renewAcked := time.Now()

	// First leader kill, half a second later.
	<-time.After(500 * time.Millisecond)
	t.Logf("killing leader %s", c.Members[leader].Name)
	c.Kill(leader)
	killed := leader
	leader = c.WaitLeader(20 * c.Opts.ElectionTimeout)
	t.Logf("new leader %s, %v after the renewal", c.Members[leader].Name, time.Since(renewSent))

	gone := waitGone(t, cli, "lc/idle", 15*time.Second)
	lo := renewSent.Add(ttl * time.Second)
	hi := renewAcked.Add(ttl*time.Second + c.Opts.ElectionTimeout + expiryMargin)
	t.Logf("idle lease expired %v after its renewal (across a leader change)", gone.Sub(renewSent))
	if gone.Before(lo) {
		t.Errorf("idle lease expired %v after its renewal: before its TTL of %ds", gone.Sub(renewSent), ttl)
	}
	if gone.After(hi) {
		t.Errorf("idle lease expired %v after its renewal: later than TTL + election timeout + %v (reset by the new leader?)", gone.Sub(renewSent), expiryMargin)
	}

	// Second leader kill; the killed members come back.
	c.Restart(killed)
	t.Logf("killing leader %s", c.Members[leader].Name)
	c.Kill(leader)
	killed = leader
	leader = c.WaitLeader(20 * c.Opts.ElectionTimeout)
	c.Restart(killed)
	<-time.After(ttl * time.Second) // a full TTL under the new leader

	select {
	case <-keptAlive:
		t.Fatalf("clientv3 stopped keeping lease %x alive (the server said it expired)", kept.ID)
	default:
	}
	if !keyPresent(t, cli, "lc/kept") {
		t.Fatalf("the kept-alive lease's key is gone after two leader kills")
	}
	r, err := cli.TimeToLive(reqCtx(t), kept.ID)
	if err != nil || r.TTL <= 0 || r.GrantedTTL != ttl {
		t.Errorf("TimeToLive(kept) = %+v, %v", r, err)
	}
}

// TestLeaseCLI checks what etcdctl (when installed) and concord's own lease
// verbs print.
func TestLeaseCLI(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	eps := "--endpoints=" + strings.Join(c.Endpoints(), ",")

	type tool struct {
		name string
		run  func(args ...string) cmdResult
		ttl  string // the time-to-live verb
		keep string // the keep-alive verb
	}
	tools := []tool{{
		name: "concord",
		run:  func(args ...string) cmdResult { return runCmd(t, nil, "", concordBin(t), append(args, eps)...) },
		ttl:  "ttl", keep: "keepalive",
	}}
	if _, err := exec.LookPath("etcdctl"); err == nil {
		tools = append(tools, tool{
			name: "etcdctl",
			run:  func(args ...string) cmdResult { return etcdctl(t, c, "", args...) },
			ttl:  "timetolive", keep: "keep-alive",
		})
	} else {
		t.Log("etcdctl is not on PATH; checking concord's lease verbs only")
	}
	for _, tl := range tools {
		t.Run(tl.name, func(t *testing.T) {
			ok := func(args ...string) string {
				t.Helper()
				r := tl.run(args...)
				if r.code != 0 {
					t.Fatalf("%s %s: %s", tl.name, strings.Join(args, " "), r)
				}
				return r.stdout
			}
			out := ok("lease", "grant", "30")
			m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(30s\)\n$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("lease grant printed %q", out)
			}
			id := m[1]
			key := tl.name + "/k"
			if out := ok("put", key, "v", "--lease="+id); out != "OK\n" {
				t.Errorf("put --lease printed %q", out)
			}
			out = ok("lease", tl.ttl, id, "--keys")
			if !regexp.MustCompile(`^lease ` + id + ` granted with TTL\(30s\), remaining\((29|30)s\), attached keys\(\[` + key + `\]\)\n$`).MatchString(out) {
				t.Errorf("lease %s --keys printed %q", tl.ttl, out)
			}
			if out := ok("lease", tl.keep, "--once", id); out != fmt.Sprintf("lease %s keepalived with TTL(30)\n", id) {
				t.Errorf("lease %s --once printed %q", tl.keep, out)
			}
			if out := ok("lease", "list"); !strings.HasPrefix(out, "found ") || !strings.Contains(out, "\n"+id+"\n") {
				t.Errorf("lease list printed %q", out)
			}
			if out := ok("lease", "revoke", id); out != fmt.Sprintf("lease %s revoked\n", id) {
				t.Errorf("lease revoke printed %q", out)
			}
			if out := ok("lease", tl.ttl, id); out != fmt.Sprintf("lease %s already expired\n", id) {
				t.Errorf("lease %s of a revoked lease printed %q", tl.ttl, out)
			}
			if out := ok("get", key); out != "" {
				t.Errorf("key of a revoked lease still there: %q", out)
			}
			// keep-alive of a gone lease ends at once with etcdctl's line.
			if out := ok("lease", tl.keep, id); out != fmt.Sprintf("lease %s expired or revoked.\n", id) {
				t.Errorf("lease %s of a revoked lease printed %q", tl.keep, out)
			}
			if r := tl.run("lease", "revoke", id); r.code == 0 || !strings.Contains(r.stderr, "requested lease not found") {
				t.Errorf("lease revoke of a revoked lease: %s", r)
			}
		})
	}
}
