package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// wev is a watch event in comparable form.
type wev struct {
	typ                      mvccpb.Event_EventType
	key, value               string
	create, mod, ver         int64
	hasPrev                  bool
	prevValue                string
	prevCreate, prevMod, pve int64
}

func (e wev) String() string {
	s := fmt.Sprintf("%v %s=%q c%d m%d v%d", e.typ, e.key, e.value, e.create, e.mod, e.ver)
	if e.hasPrev {
		s += fmt.Sprintf(" <%q c%d m%d v%d", e.prevValue, e.prevCreate, e.prevMod, e.pve)
	}
	return s
}

func toWev(e *mvccpb.Event) wev {
	w := wev{typ: e.Type, key: string(e.Kv.Key), value: string(e.Kv.Value), create: e.Kv.CreateRevision, mod: e.Kv.ModRevision, ver: e.Kv.Version}
	if p := e.PrevKv; p != nil {
		w.hasPrev, w.prevValue, w.prevCreate, w.prevMod, w.pve = true, string(p.Value), p.CreateRevision, p.ModRevision, p.Version
	}
	return w
}

// watchRecord is what one watcher received: its responses' events, and how
// it ended.
type watchRecord struct {
	name     string
	member   int
	key      string
	prefix   bool
	start    int64
	prevKV   bool
	mu       sync.Mutex
	resps    [][]wev
	n        int // events received
	err      error
	compactR int64
	done     bool
}

func (w *watchRecord) add(evs []*mvccpb.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := make([]wev, len(evs))
	for i, e := range evs {
		r[i] = toWev(e)
	}
	w.resps = append(w.resps, r)
	w.n += len(r)
}

func (w *watchRecord) finish(err error, compactRev int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err, w.compactR, w.done = err, compactRev, true
}

func (w *watchRecord) matches(key string) bool {
	if w.prefix {
		return strings.HasPrefix(key, w.key)
	}
	return key == w.key
}

// want filters the reference history for this watcher.
func (w *watchRecord) want(ref []wev) []wev {
	var out []wev
	for _, e := range ref {
		if e.mod < w.start || !w.matches(e.key) {
			continue
		}
		if !w.prevKV {
			e.hasPrev, e.prevValue, e.prevCreate, e.prevMod, e.pve = false, "", 0, 0, 0
		}
		out = append(out, e)
	}
	return out
}

// check verifies ordered, unique, gap-free, atomic-per-revision delivery with
// the right prev_kv, or a compacted end after a correct prefix.
func (w *watchRecord) check(t *testing.T, ref []wev, compactions map[int64]bool) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	want := w.want(ref)
	var got []wev
	for i, r := range w.resps {
		if len(r) == 0 {
			continue
		}
		// Atomic: a response carries every event of each revision it holds.
		first, last := r[0].mod, r[len(r)-1].mod
		whole := 0
		for _, e := range want {
			if e.mod >= first && e.mod <= last {
				whole++
			}
		}
		if whole != len(r) {
			t.Errorf("%s: response %d holds %d events of revisions %d..%d, want %d", w.name, i, len(r), first, last, whole)
		}
		got = append(got, r...)
	}
	if w.compactR > 0 {
		if !compactions[w.compactR] {
			t.Errorf("%s: compacted at %d, never a compaction revision", w.name, w.compactR)
		}
		if len(got) > 0 && got[len(got)-1].mod >= w.compactR {
			t.Errorf("%s: compacted at %d after receiving revision %d", w.name, w.compactR, got[len(got)-1].mod)
		}
		if len(got) > len(want) {
			t.Errorf("%s: %d events before its compacted cancel, only %d exist", w.name, len(got), len(want))
			return
		}
		want = want[:len(got)]
	} else if w.err != nil {
		t.Errorf("%s: ended with %v", w.name, w.err)
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("%s (from %d): missing %d events from %v on", w.name, w.start, len(want)-i, want[i])
			return
		case i >= len(want):
			t.Errorf("%s (from %d): %d extra events from %v on", w.name, w.start, len(got)-i, got[i])
			return
		case got[i] != want[i]:
			t.Errorf("%s (from %d): event %d is\n  %v\nwant\n  %v", w.name, w.start, i, got[i], want[i])
			return
		}
	}
}

// writeRecord is one acknowledged write and the events it must have made.
type writeRecord struct {
	rev    int64
	events []wev // type, key, value, prev (value/create/mod/version); mod = rev
}

// TestWatchRandomized runs random writers (puts, deletes, multi-key txns) and
// compactions against a 3-member cluster with tiny watch buffers while
// watchers start from random past and future revisions on random members,
// some consuming slowly, one not reading at all for most of the run; one
// member is killed and restarted mid-run (its watchers resume from their
// last revision + 1, as clientv3 does). Every watcher must see exactly the
// history from its start revision, or a correct prefix ended by a compacted
// cancel. The reference history is a fast watcher from revision 1, itself
// checked against every acknowledged write.
func TestWatchRandomized(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var rngMu sync.Mutex
	rnd := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	c := NewCluster(t, ClusterOptions{Size: 3, SnapshotCount: 40, ExtraArgs: []string{
		"--watch-buffer-events", "4", "--snapshot-catchup-entries", "10",
	}})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	const restarted = 2
	keys := []string{"/w/a0", "/w/a1", "/w/a2", "/w/a3", "/w/b0", "/w/b1", "/w/b2", "/w/c"}

	// Clients of our own, so the harness never closes them under watchers.
	clients := make([]*clientv3.Client, len(c.Members))
	for i := range clients {
		cli, err := newClient([]string{c.Members[i].ClientAddr})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		clients[i] = cli
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	stopWrites := make(chan struct{})
	var wg sync.WaitGroup
	var recMu sync.Mutex
	var records []*watchRecord
	runWatcher := func(w *watchRecord, slow time.Duration) {
		recMu.Lock()
		records = append(records, w)
		recMu.Unlock()
		opts := []clientv3.OpOption{clientv3.WithRev(w.start)}
		if w.prefix {
			opts = append(opts, clientv3.WithPrefix())
		}
		if w.prevKV {
			opts = append(opts, clientv3.WithPrevKV())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Watch blocks until the member answers: on a dead member,
			// until it is back.
			ch := clients[w.member].Watch(ctx, w.key, opts...)
			for resp := range ch {
				if err := resp.Err(); err != nil {
					w.finish(err, resp.CompactRevision)
					return
				}
				w.add(resp.Events)
				if slow > 0 && !closed(stopWrites) {
					time.Sleep(slow)
				}
			}
			w.finish(nil, 0)
		}()
	}
	// The reference: fast, from revision 1, on a member never restarted.
	ref := &watchRecord{name: "reference", member: 0, key: "/w/", prefix: true, start: 1, prevKV: true}
	runWatcher(ref, 0)

	// A raw stream that does not read for most of the run: the server must
	// not let it hold up anything, and it must still get its history.
	conn, err := grpc.NewClient(c.Members[1].ClientAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stalled, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stalled.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("/w/"), RangeEnd: []byte("/w0"), StartRevision: 2, PrevKv: true,
	}}}); err != nil {
		t.Fatal(err)
	}
	stalledRec := &watchRecord{name: "stalled raw stream", member: 1, key: "/w/", prefix: true, start: 2, prevKV: true}

	// Writers on the members that stay up, so every write's outcome is known.
	var (
		writesMu  sync.Mutex
		writes    []writeRecord
		failed    int
		lastRev   int64
		compactMu sync.Mutex
		compacted = map[int64]bool{}
		writersWG sync.WaitGroup
	)
	record := func(w writeRecord, err error) {
		writesMu.Lock()
		defer writesMu.Unlock()
		if err != nil {
			failed++
			return
		}
		if len(w.events) > 0 {
			writes = append(writes, w)
		}
		lastRev = max(lastRev, w.rev)
	}
	value := func() string { return strings.Repeat(strconv.Itoa(rnd(10)), 1+rnd(200)) }
	for wi := range 3 {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			cli := clients[wi%2]
			for {
				select {
				case <-stopWrites:
					return
				default:
				}
				wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
				switch x := rnd(10); {
				case x < 5:
					k, v := keys[rnd(len(keys))], value()
					resp, err := cli.Put(wctx, k, v, clientv3.WithPrevKV())
					var w writeRecord
					if err == nil {
						w = writeRecord{rev: resp.Header.Revision, events: []wev{putEvent(k, v, resp.PrevKv)}}
					}
					record(w, err)
				case x < 7:
					k := keys[rnd(len(keys))]
					resp, err := cli.Delete(wctx, k, clientv3.WithPrevKV())
					var w writeRecord
					if err == nil {
						w.rev = resp.Header.Revision
						for _, p := range resp.PrevKvs {
							w.events = append(w.events, deleteEvent(k, p))
						}
					}
					record(w, err)
				default:
					var ops []clientv3.Op
					var desc []string // "put k v" or "del k", in op order
					used := map[string]bool{}
					for range 2 + rnd(5) {
						k := keys[rnd(len(keys))]
						if used[k] {
							continue
						}
						used[k] = true
						if rnd(4) == 0 {
							ops = append(ops, clientv3.OpDelete(k, clientv3.WithPrevKV()))
							desc = append(desc, "del\x00"+k)
						} else {
							v := value()
							ops = append(ops, clientv3.OpPut(k, v, clientv3.WithPrevKV()))
							desc = append(desc, "put\x00"+k+"\x00"+v)
						}
					}
					resp, err := cli.Txn(wctx).Then(ops...).Commit()
					var w writeRecord
					if err == nil {
						w.rev = resp.Header.Revision
						for i, r := range resp.Responses {
							d := strings.Split(desc[i], "\x00")
							if d[0] == "put" {
								w.events = append(w.events, putEvent(d[1], d[2], r.GetResponsePut().GetPrevKv()))
							} else {
								for _, p := range r.GetResponseDeleteRange().GetPrevKvs() {
									w.events = append(w.events, deleteEvent(d[1], p))
								}
							}
						}
					}
					record(w, err)
				}
				wcancel()
			}
		}()
	}
	// Compactions, never past the reference watcher (it must see everything).
	writersWG.Add(1)
	go func() {
		defer writersWG.Done()
		tick := time.NewTicker(700 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopWrites:
				return
			case <-tick.C:
			}
			ref.mu.Lock()
			var refRev int64
			if n := len(ref.resps); n > 0 && len(ref.resps[n-1]) > 0 {
				refRev = ref.resps[n-1][len(ref.resps[n-1])-1].mod
			}
			ref.mu.Unlock()
			rev := refRev - 10 - int64(rnd(50))
			if rev < 2 {
				continue
			}
			cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := clients[0].Compact(cctx, rev)
			ccancel()
			if err == nil || errors.Is(err, rpctypes.ErrCompacted) {
				compactMu.Lock()
				compacted[rev] = true
				compactMu.Unlock()
			}
		}
	}()

	// Watchers join over the run, from random past or future revisions.
	currentRev := func() int64 {
		writesMu.Lock()
		defer writesMu.Unlock()
		return lastRev
	}
	startWatchers := func(n int) {
		for i := range n {
			cur := currentRev()
			w := &watchRecord{
				name:   fmt.Sprintf("watcher %d", len(records)),
				member: rnd(len(c.Members)),
				start:  max(1, cur-int64(rnd(120))+3),
				prevKV: rnd(2) == 0,
			}
			switch rnd(3) {
			case 0:
				w.key = keys[rnd(len(keys))]
			case 1:
				w.key, w.prefix = "/w/a", true
			default:
				w.key, w.prefix = "/w/", true
			}
			var slow time.Duration
			if i%3 == 0 {
				slow = time.Duration(2+rnd(8)) * time.Millisecond
				w.name += " (slow)"
			}
			w.name += fmt.Sprintf(" on n%d key %q prefix %v from %d prev_kv %v", w.member+1, w.key, w.prefix, w.start, w.prevKV)
			runWatcher(w, slow)
		}
	}
	wait := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	startWatchers(4)
	wait(1500 * time.Millisecond)
	startWatchers(4)
	wait(700 * time.Millisecond)
	t.Logf("killing %s at revision %d", c.Members[restarted].Name, currentRev())
	c.Kill(restarted)
	wait(1500 * time.Millisecond)
	startWatchers(3) // some on the dead member: they wait for it
	startRetryingBind(t, c, restarted)
	t.Logf("%s restarted at revision %d", c.Members[restarted].Name, currentRev())
	wait(1500 * time.Millisecond)
	startWatchers(4)
	wait(1000 * time.Millisecond)
	close(stopWrites)
	writersWG.Wait()
	final := currentRev()
	writesMu.Lock()
	t.Logf("%d acknowledged writes with events, %d failed, last revision %d, compactions %v", len(writes), failed, final, compacted)
	writesMu.Unlock()

	// The stalled stream reads now.
	go func() {
		for {
			resp, err := stalled.Recv()
			if err != nil {
				stalledRec.finish(err, 0)
				return
			}
			if resp.Created {
				continue
			}
			if resp.CompactRevision > 0 {
				stalledRec.finish(nil, resp.CompactRevision)
				return
			}
			stalledRec.add(resp.Events)
		}
	}()

	// Wait until the reference has everything, then every watcher.
	if !pollUntil(20*time.Second, func() bool {
		ref.mu.Lock()
		defer ref.mu.Unlock()
		n := len(ref.resps)
		return n > 0 && len(ref.resps[n-1]) > 0 && ref.resps[n-1][len(ref.resps[n-1])-1].mod >= final
	}) {
		t.Fatalf("reference watcher did not reach revision %d", final)
	}
	ref.mu.Lock()
	var refEvents []wev
	for _, r := range ref.resps {
		refEvents = append(refEvents, r...)
	}
	ref.mu.Unlock()
	checkReference(t, refEvents, writes, failed)
	all := append(slices.Clone(records), stalledRec)
	for _, w := range all {
		want := len(w.want(refEvents))
		if !pollUntil(20*time.Second, func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.done || w.n >= want
		}) {
			w.mu.Lock()
			t.Errorf("%s: got %d of %d events in time", w.name, w.n, want)
			w.mu.Unlock()
		}
	}
	cancel()
	wg.Wait()
	compactMu.Lock()
	defer compactMu.Unlock()
	ended := 0
	for _, w := range all {
		w.check(t, refEvents, compacted)
		if w.compactR > 0 {
			ended++
		}
	}
	t.Logf("%d watchers checked, %d ended by compaction", len(all), ended)
}

// startRetryingBind starts member i again and waits until it is ready. While
// it was down its ports were free for anyone: another process on the machine
// (or a client's ephemeral source port) may hold one for a moment, so a
// start that fails to bind is retried a few times.
func startRetryingBind(t *testing.T, c *Cluster, i int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c.Start(i)
		_, stderr, exited := c.WaitExit(i, time.Second)
		if !exited {
			break
		}
		if !strings.Contains(stderr, "address already in use") || attempt == 5 {
			t.Fatalf("%s exited on restart:\n%s", c.Members[i].Name, tail(stderr, 20))
		}
		t.Logf("%s could not bind on restart (attempt %d); retrying", c.Members[i].Name, attempt)
		time.Sleep(500 * time.Millisecond)
	}
	c.WaitReady(i)
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func putEvent(k, v string, prev *mvccpb.KeyValue) wev {
	e := wev{typ: mvccpb.PUT, key: k, value: v}
	if prev != nil {
		e.hasPrev, e.prevValue, e.prevCreate, e.prevMod, e.pve = true, string(prev.Value), prev.CreateRevision, prev.ModRevision, prev.Version
	}
	return e
}

func deleteEvent(k string, prev *mvccpb.KeyValue) wev {
	return wev{typ: mvccpb.DELETE, key: k, hasPrev: true, prevValue: string(prev.Value), prevCreate: prev.CreateRevision, prevMod: prev.ModRevision, pve: prev.Version}
}

// checkReference checks the reference watcher's history against every
// acknowledged write (same events, in op order, at the write's revision)
// and for internal consistency (create revisions, versions, prev_kv chain).
// Revisions no acknowledged write explains may only come from failed writes.
func checkReference(t *testing.T, ref []wev, writes []writeRecord, failed int) {
	t.Helper()
	byRev := map[int64][]wev{}
	var revs []int64
	for _, e := range ref {
		if _, ok := byRev[e.mod]; !ok {
			revs = append(revs, e.mod)
		}
		byRev[e.mod] = append(byRev[e.mod], e)
	}
	if !slices.IsSorted(revs) {
		t.Fatalf("reference history is not in revision order")
	}
	for _, w := range writes {
		got := byRev[w.rev]
		if len(got) != len(w.events) {
			t.Fatalf("revision %d: reference has %d events, the write made %d (%v)", w.rev, len(got), len(w.events), w.events)
		}
		for i, we := range w.events {
			g := got[i]
			if g.typ != we.typ || g.key != we.key || g.value != we.value || g.hasPrev != we.hasPrev ||
				g.prevValue != we.prevValue || g.prevCreate != we.prevCreate || g.prevMod != we.prevMod || g.pve != we.pve {
				t.Fatalf("revision %d event %d: reference %v, write %v", w.rev, i, g, we)
			}
		}
		delete(byRev, w.rev)
	}
	if len(byRev) > failed {
		t.Errorf("%d revisions in the reference match no acknowledged write, but only %d writes failed", len(byRev), failed)
	}
	// Replay: versions and create revisions follow from the history.
	type state struct{ create, mod, ver int64 }
	live := map[string]state{}
	for _, e := range ref {
		prev, ok := live[e.key]
		if ok != e.hasPrev || (ok && (prev.create != e.prevCreate || prev.mod != e.prevMod || prev.ver != e.pve)) {
			t.Fatalf("%v: prev_kv disagrees with the history (live %v %+v)", e, ok, prev)
		}
		if e.typ == mvccpb.DELETE {
			delete(live, e.key)
			continue
		}
		want := state{create: e.mod, mod: e.mod, ver: 1}
		if ok {
			want.create, want.ver = prev.create, prev.ver+1
		}
		if e.create != want.create || e.ver != want.ver {
			t.Fatalf("%v: want create %d version %d", e, want.create, want.ver)
		}
		live[e.key] = want
	}
}

// watchCLI runs etcdctl watch (or concord watch) for d and returns what it
// printed before it was stopped or exited, and its stderr.
func watchCLI(t *testing.T, d time.Duration, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cmd.Environ(), "ETCDCTL_API=3")
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second
	_ = cmd.Run() // killed at the deadline, or exits on a cancelled watch
	return out.String(), errb.String()
}

// TestWatchEtcdctl checks what etcdctl watch and concord watch print for
// --rev, --prefix and --prev-kv, and a compacted start revision.
func TestWatchEtcdctl(t *testing.T) {
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Skip("etcdctl is not on PATH")
	}
	c := NewCluster(t, ClusterOptions{Size: 1})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	cli := c.Client(0)
	r1, _ := cli.Put(reqCtx(t), "foo", "bar")
	if _, err := cli.Put(reqCtx(t), "foo", "baz"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(reqCtx(t), "foo"); err != nil {
		t.Fatal(err)
	}
	r4, err := cli.Put(reqCtx(t), "foo/x", "1")
	if err != nil {
		t.Fatal(err)
	}
	ep := "--endpoints=" + c.Members[0].ClientAddr
	from := strconv.FormatInt(r1.Header.Revision, 10)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"watch", "foo", "--rev", from}, "PUT\nfoo\nbar\nPUT\nfoo\nbaz\nDELETE\nfoo\n\n"},
		{[]string{"watch", "foo", "--prefix", "--rev", from, "--prev-kv"},
			"PUT\nfoo\nbar\nPUT\nfoo\nbar\nfoo\nbaz\nDELETE\nfoo\nbaz\nfoo\n\nPUT\nfoo/x\n1\n"},
	}
	for _, tt := range tests {
		out, _ := watchCLI(t, 1500*time.Millisecond, "etcdctl", append([]string{ep}, tt.args...)...)
		if out != tt.want {
			t.Errorf("etcdctl %s printed:\n%q\nwant:\n%q", strings.Join(tt.args, " "), out, tt.want)
		}
		out, _ = watchCLI(t, 1500*time.Millisecond, concordBin(t), append(tt.args, ep)...)
		if out != tt.want {
			t.Errorf("concord %s printed:\n%q\nwant:\n%q", strings.Join(tt.args, " "), out, tt.want)
		}
	}
	// A live event reaches a running etcdctl watch (started from the next
	// revision, so it cannot miss it whenever it registers).
	done := make(chan string)
	next := strconv.FormatInt(r4.Header.Revision+1, 10)
	go func() {
		out, _ := watchCLI(t, 2*time.Second, "etcdctl", ep, "watch", "live", "--rev", next)
		done <- out
	}()
	if _, err := cli.Put(reqCtx(t), "live", "now"); err != nil {
		t.Fatal(err)
	}
	if out := <-done; out != "PUT\nlive\nnow\n" {
		t.Errorf("etcdctl watch live printed %q, want the put", out)
	}
	// A compacted start revision: etcdctl reports the cancel.
	if _, err := cli.Compact(reqCtx(t), r4.Header.Revision); err != nil {
		t.Fatal(err)
	}
	_, stderr := watchCLI(t, 3*time.Second, "etcdctl", ep, "watch", "foo", "--rev", from)
	if !strings.Contains(stderr, "watch was canceled (etcdserver: mvcc: required revision has been compacted)") {
		t.Errorf("etcdctl watch from a compacted revision: stderr %q", stderr)
	}
}

// rawWatch opens a Watch stream on member i with optional metadata.
func rawWatch(t *testing.T, c *Cluster, i int, md ...string) (pb.Watch_WatchClient, context.CancelFunc) {
	t.Helper()
	conn, err := grpc.NewClient(c.Members[i].ClientAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	st, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); conn.Close() })
	return st, cancel
}

func recvTimeout(t *testing.T, st pb.Watch_WatchClient, d time.Duration) (*pb.WatchResponse, error) {
	t.Helper()
	type res struct {
		r   *pb.WatchResponse
		err error
	}
	ch := make(chan res, 1)
	go func() {
		r, err := st.Recv()
		ch <- res{r, err}
	}()
	select {
	case r := <-ch:
		return r.r, r.err
	case <-time.After(d):
		t.Fatalf("no watch response within %v", d)
		return nil, nil
	}
}

func create(key, end string, start, id int64, fragment bool) *pb.WatchRequest {
	return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte(key), RangeEnd: []byte(end), StartRevision: start, WatchId: id, Fragment: fragment,
	}}}
}

// TestWatchWire checks the Watch RPC on the raw wire: etcd's exact answers
// to bad input, ids, cancel, progress requests, headers and fragments.
func TestWatchWire(t *testing.T) {
	const maxBytes = 64 << 10
	c := NewCluster(t, ClusterOptions{Size: 1, MaxRequestBytes: maxBytes,
		ExtraArgs: []string{"--watch-progress-notify-interval", "200ms"}})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	cli := c.Client(0)
	st, _ := rawWatch(t, c, 0)
	send := func(r *pb.WatchRequest) *pb.WatchResponse {
		t.Helper()
		if err := st.Send(r); err != nil {
			t.Fatal(err)
		}
		resp, err := recvTimeout(t, st, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		h := resp.GetHeader()
		if h.GetClusterId() == 0 || h.GetMemberId() == 0 || h.GetRevision() == 0 || h.GetRaftTerm() == 0 {
			t.Errorf("response %v: incomplete header", resp)
		}
		return resp
	}
	check := func(what string, got *pb.WatchResponse, id int64, created, canceled bool, reason string) {
		t.Helper()
		if got.WatchId != id || got.Created != created || got.Canceled != canceled || got.CancelReason != reason {
			t.Errorf("%s: got id %d created %v canceled %v reason %q; want %d %v %v %q", what, got.WatchId, got.Created, got.Canceled, got.CancelReason, id, created, canceled, reason)
		}
	}
	check("negative start revision", send(create("a", "", -1, 0, false)), -1, true, true, "etcdserver: mvcc: required revision has been compacted")
	check("first auto id", send(create("a", "", 0, 0, false)), 0, true, false, "")
	check("client id", send(create("a", "", 0, 7, false)), 7, true, false, "")
	check("duplicate id", send(create("a", "", 0, 7, false)), -1, true, true, "mvcc: duplicate watch ID provided on the WatchStream")
	check("second auto id", send(create("a", "", 0, 0, false)), 1, true, false, "")
	check("empty range", send(create("b", "a", 0, 0, false)), -1, true, true, "mvcc: watcher range is empty")
	check("cancel", send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}}), 7, false, true, "")
	pr, err := cli.Put(reqCtx(t), "a", "1")
	if err != nil {
		t.Fatal(err)
	}
	// Watchers 0 and 1 both see it, with the event's revision in the header.
	for range 2 {
		r, err := recvTimeout(t, st, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Events) != 1 || string(r.Events[0].Kv.Value) != "1" || r.Header.GetRevision() != pr.Header.Revision || r.Events[0].PrevKv != nil {
			t.Errorf("event response %v", r)
		}
	}
	p := send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	if p.WatchId != -1 || len(p.Events) != 0 || p.Created || p.Canceled || p.Header.GetRevision() != pr.Header.Revision {
		t.Errorf("progress response %v, want watch id -1 at revision %d", p, pr.Header.Revision)
	}

	// Fragments: a catch-up batch larger than --max-request-bytes plus
	// gRPC's allowance, for a watcher that asked for fragments.
	val := strings.Repeat("x", maxBytes-1024)
	var first int64
	const n = 12
	for i := range n {
		r, err := cli.Put(reqCtx(t), fmt.Sprintf("big/%02d", i), val)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = r.Header.Revision
		}
	}
	fst, _ := rawWatch(t, c, 0)
	if err := fst.Send(create("big/", "big0", first, 0, true)); err != nil {
		t.Fatal(err)
	}
	var pieces, events int
	for events < n {
		r, err := recvTimeout(t, fst, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Created {
			continue
		}
		pieces++
		events += len(r.Events)
		if want := events < n; r.Fragment != want {
			t.Errorf("piece %d (%d events so far): fragment %v, want %v", pieces, events, r.Fragment, want)
		}
		if len(r.Events) > 1 && proto.Size(r) >= maxBytes+512<<10 {
			t.Errorf("piece %d is %d bytes", pieces, proto.Size(r))
		}
	}
	if pieces < 2 {
		t.Errorf("%d events of %d KiB came in %d piece(s), want fragments", n, len(val)>>10, pieces)
	}
	// clientv3 reassembles them.
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	got := 0
	for resp := range cli.Watch(wctx, "big/", clientv3.WithPrefix(), clientv3.WithRev(first), clientv3.WithFragment()) {
		got += len(resp.Events)
		if got >= n {
			break
		}
	}
	if got != n {
		t.Errorf("clientv3 with fragments got %d events, want %d", got, n)
	}

	// Periodic progress notifications for a quiet watcher that asked.
	pst, _ := rawWatch(t, c, 0)
	req := create("quiet", "", 0, 0, false)
	req.GetCreateRequest().ProgressNotify = true
	if err := pst.Send(req); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; {
		r, err := recvTimeout(t, pst, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Created {
			continue
		}
		if r.WatchId != 0 || len(r.Events) != 0 || r.Canceled || r.Header.GetRevision() == 0 {
			t.Errorf("progress notification %v", r)
		}
		i++
	}
}

// TestWatchNoLeader checks that a stream opened with hasleader ends with
// etcd's no-leader error once the member has been without a leader for a few
// election timeouts, while a stream without it stays open.
func TestWatchNoLeader(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	et := c.Opts.ElectionTimeout
	leader := c.WaitLeader(10 * et)
	survivor := (leader + 1) % 3
	withLeader, _ := rawWatch(t, c, survivor, rpctypes.MetadataRequireLeaderKey, rpctypes.MetadataHasLeader)
	plain, _ := rawWatch(t, c, survivor)
	for _, st := range []pb.Watch_WatchClient{withLeader, plain} {
		if err := st.Send(create("k", "", 0, 0, false)); err != nil {
			t.Fatal(err)
		}
		if r, err := recvTimeout(t, st, 5*time.Second); err != nil || !r.Created {
			t.Fatalf("create: %v, %v", r, err)
		}
	}
	for i := range c.Members {
		if i != survivor {
			c.Kill(i)
		}
	}
	start := time.Now()
	_, err := recvTimeout(t, withLeader, 20*et)
	wantStatus(t, "hasleader watch stream without a leader", err, rpctypes.ErrGRPCNoLeader)
	t.Logf("hasleader stream ended after %v (election timeout %v)", time.Since(start).Round(time.Millisecond), et)
	// Three consecutive leaderless checks, one per election timeout.
	if time.Since(start) < 2*et {
		t.Errorf("ended after %v, sooner than etcd's three leaderless election timeouts allow", time.Since(start))
	}
	// The plain stream is still open: a progress request is answered.
	if err := plain.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := recvTimeout(t, plain, 5*time.Second); err != nil || r.WatchId != -1 {
		t.Errorf("plain stream after leader loss: %v, %v", r, err)
	}
}
