package watch

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/concord-db/concord/internal/mvcc"
)

// env is a store plus a hub fed the way the apply path feeds it.
type env struct {
	t     testing.TB
	store *mvcc.Store
	hub   *Hub
	log   []mvcc.Event // every event written, in revision and write order
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	st := mvcc.NewStore()
	h, err := New(cfg, st, st.Rev())
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: st, hub: h}
}

func smallConfig(buffer int) Config {
	c := DefaultConfig()
	c.BufferEvents = buffer
	c.BatchRevisions = 3
	c.BatchEvents = 4
	return c
}

// op is one write of a txn: a put (end == "" and !del) or a delete range.
type op struct {
	key, val, end string
	del           bool
}

func put(k, v string) op      { return op{key: k, val: v} }
func del(k, end string) op    { return op{key: k, end: end, del: true} }
func bs(s string) []byte      { return []byte(s) }
func endOf(end string) []byte { return map[bool][]byte{true: nil, false: bs(end)}[end == ""] }

// txn applies ops as one write transaction and notifies the hub.
func (e *env) txn(ops ...op) int64 {
	w := e.store.Write()
	for _, o := range ops {
		if o.del {
			w.DeleteRange(bs(o.key), endOf(o.end))
		} else {
			w.Put(bs(o.key), bs(o.val), 0)
		}
	}
	evs := w.End()
	if len(evs) > 0 {
		e.log = append(e.log, evs...)
		e.hub.Notify(e.store.Rev(), evs)
	}
	return e.store.Rev()
}

// next is Stream.Next for tests that keep responses: Next's events are
// valid only until its next call.
func next(s *Stream) (Response, bool) {
	r, ok := s.Next()
	r.Events = slices.Clone(r.Events)
	return r, ok
}

func drain(s *Stream) []Response {
	var out []Response
	for {
		r, ok := next(s)
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

func render(evs []mvcc.Event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		if e.Type == mvcc.EventPut {
			fmt.Fprintf(&b, "PUT %s=%s@%d", e.KV.Key, e.KV.Value, e.KV.ModRevision)
		} else {
			fmt.Fprintf(&b, "DEL %s@%d", e.KV.Key, e.KV.ModRevision)
		}
		if e.PrevKV != nil {
			fmt.Fprintf(&b, "<%s@%d", e.PrevKV.Value, e.PrevKV.ModRevision)
		}
	}
	return b.String()
}

// renderResponses renders responses one per line: id: events | progress@rev |
// compacted@rev | canceled.
func renderResponses(rs []Response) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%d: ", r.WatchID)
		switch {
		case r.Canceled && r.CompactRev > 0:
			fmt.Fprintf(&b, "compacted@%d", r.CompactRev)
		case r.Canceled:
			fmt.Fprintf(&b, "canceled: %v", r.Err)
		case r.IsProgress():
			fmt.Fprintf(&b, "progress@%d", r.Rev)
		default:
			b.WriteString(render(r.Events))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func mustWatch(t testing.TB, s *Stream, r Request) int64 {
	t.Helper()
	id, _, err := s.Watch(r)
	if err != nil {
		t.Fatalf("Watch(%+v) = %v", r, err)
	}
	return id
}

func TestDeliveryFromNow(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	e.txn(put("a", "0"))
	s := e.hub.NewStream()
	id, rev, err := s.Watch(Request{Key: bs("a"), End: bs("c"), PrevKV: true})
	if err != nil || id != 0 || rev != 2 {
		t.Fatalf("Watch = %d, %d, %v; want 0, 2, nil", id, rev, err)
	}
	if rs := drain(s); len(rs) != 0 {
		t.Fatalf("before any write: %s", renderResponses(rs))
	}
	e.txn(put("b", "1"), put("a", "1"), put("c", "x")) // rev 3, write order b then a
	e.txn(del("a", ""))                                // rev 4
	e.txn(put("z", "1"))                               // no match
	got := renderResponses(drain(s))
	want := "0: PUT b=1@3 PUT a=1@3<0@2 DEL a@4<1@3\n"
	if got != want {
		t.Errorf("responses:\n%swant:\n%s", got, want)
	}
}

func TestWatchErrorsAndIDs(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	s := e.hub.NewStream()
	tests := []struct {
		req    Request
		wantID int64
		err    error
	}{
		{req: Request{Key: bs("a")}, wantID: 0},
		{req: Request{Key: bs("a")}, wantID: 1},
		{req: Request{Key: bs("a"), ID: 3}, wantID: 3},
		{req: Request{Key: bs("a")}, wantID: 2},
		{req: Request{Key: bs("a")}, wantID: 4}, // skips the client's 3
		{req: Request{Key: bs("a"), ID: 3}, err: ErrDuplicateID},
		{req: Request{Key: bs("a"), StartRev: -1}, err: ErrNegativeStartRev},
		{req: Request{Key: bs("b"), End: bs("a")}, err: ErrEmptyRange},
		{req: Request{Key: bs("b"), End: bs("b")}, err: ErrEmptyRange},
		{req: Request{Key: nil, End: bs("\x00")}, wantID: 5},
	}
	for i, tt := range tests {
		id, _, err := s.Watch(tt.req)
		if !errors.Is(err, tt.err) || (err == nil && id != tt.wantID) || (err != nil && id != AllWatchers) {
			t.Errorf("%d: Watch(%+v) = %d, %v; want %d, %v", i, tt.req, id, err, tt.wantID, tt.err)
		}
	}
	if !s.Cancel(3) || s.Cancel(3) {
		t.Errorf("Cancel(3) twice: want true then false")
	}
	s.Close()
	if _, _, err := s.Watch(Request{Key: bs("a")}); !errors.Is(err, ErrStreamClosed) {
		t.Errorf("Watch after Close = %v, want ErrStreamClosed", err)
	}
	if n, _ := e.hub.Stats(); n != 0 {
		t.Errorf("after Close: %d watchers, want 0", n)
	}
}

func TestFiltersAndRanges(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	s := e.hub.NewStream()
	mustWatch(t, s, Request{Key: bs("a"), End: bs("\x00"), NoPut: true}) // 0: deletes >= a
	mustWatch(t, s, Request{Key: bs("b"), End: bs("c"), NoDelete: true}) // 1: puts in [b, c)
	mustWatch(t, s, Request{Key: bs("bb")})                              // 2: bb only
	mustWatch(t, s, Request{Key: nil})                                   // 3: "\x00" only
	e.txn(put("a", "1"), put("b", "1"), put("bb", "1"), put("c", "1"))   // 2
	e.txn(del("a", "\x00"))                                              // 3
	e.txn(put("\x00", "z"))                                              // 4
	got := renderResponses(drain(s))
	want := "1: PUT b=1@2 PUT bb=1@2\n2: PUT bb=1@2 DEL bb@3\n0: DEL a@3 DEL b@3 DEL bb@3 DEL c@3\n3: PUT \x00=z@4\n"
	if got != want {
		t.Errorf("responses:\n%q\nwant:\n%q", got, want)
	}
}

func TestCatchUpFromPast(t *testing.T) {
	e := newEnv(t, smallConfig(100))
	for i := range 10 {
		e.txn(put("k", fmt.Sprint(i))) // revs 2..11
	}
	s := e.hub.NewStream()
	mustWatch(t, s, Request{Key: bs("k"), StartRev: 4, PrevKV: true})
	if _, unsynced := e.hub.Stats(); unsynced != 1 {
		t.Fatalf("unsynced = %d, want 1", unsynced)
	}
	var got []string
	for _, r := range drain(s) {
		got = append(got, render(r.Events))
	}
	// BatchEvents 4: batches of at most 4 events; BatchRevisions 3 bounds them first.
	want := []string{
		"PUT k=2@4<1@3 PUT k=3@5<2@4 PUT k=4@6<3@5",
		"PUT k=5@7<4@6 PUT k=6@8<5@7 PUT k=7@9<6@8",
		"PUT k=8@10<7@9 PUT k=9@11<8@10",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("catch-up batches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, unsynced := e.hub.Stats(); unsynced != 0 {
		t.Errorf("after catch-up: unsynced = %d, want 0", unsynced)
	}
	e.txn(put("k", "x"))
	if got := renderResponses(drain(s)); got != "0: PUT k=x@12<9@11\n" {
		t.Errorf("after sync: %q", got)
	}
}

func TestSlowWatcherOverflowCatchesUp(t *testing.T) {
	e := newEnv(t, smallConfig(3))
	s := e.hub.NewStream()
	fast := e.hub.NewStream()
	mustWatch(t, s, Request{Key: bs("k"), End: bs("l")})
	mustWatch(t, fast, Request{Key: bs("k"), End: bs("l")})
	// The fast stream is drained after every write and never overflows,
	// except for the one revision larger than its whole buffer.
	var fastGot string
	for _, ops := range [][]op{
		{put("k1", "a")},                 // 2
		{put("k1", "b"), put("k2", "b")}, // 3: fills the slow buffer (3)
		{put("k1", "c")},                 // 4: does not fit
		{put("k1", "d"), put("k2", "d"), put("k3", "d"), put("k4", "d")}, // 5: larger than any buffer
	} {
		e.txn(ops...)
		fastGot += renderResponses(drain(fast))
	}
	if _, unsynced := e.hub.Stats(); unsynced != 1 {
		t.Fatalf("unsynced = %d, want 1 (the slow watcher)", unsynced)
	}
	fastWant := "0: PUT k1=a@2\n0: PUT k1=b@3 PUT k2=b@3\n0: PUT k1=c@4\n0: PUT k1=d@5 PUT k2=d@5 PUT k3=d@5 PUT k4=d@5\n"
	if fastGot != fastWant {
		t.Errorf("fast stream:\n%swant:\n%s", fastGot, fastWant)
	}
	got := renderResponses(drain(s))
	want := "0: PUT k1=a@2 PUT k1=b@3 PUT k2=b@3\n" + // the buffer
		"0: PUT k1=c@4\n" + // history: revision 5 does not fit this batch (BatchEvents 4)...
		"0: PUT k1=d@5 PUT k2=d@5 PUT k3=d@5 PUT k4=d@5\n" // ...so it comes whole in the next
	if got != want {
		t.Errorf("slow stream:\n%swant:\n%s", got, want)
	}
	if _, unsynced := e.hub.Stats(); unsynced != 0 {
		t.Errorf("unsynced after catch-up = %d", unsynced)
	}
	e.txn(put("k9", "z"))
	if got := renderResponses(drain(s)); got != "0: PUT k9=z@6\n" {
		t.Errorf("after resync: %q", got)
	}
}

func TestCompactionCancelsUnsyncedWatcher(t *testing.T) {
	e := newEnv(t, smallConfig(1))
	s := e.hub.NewStream()
	mustWatch(t, s, Request{Key: bs("k")})
	e.txn(put("k", "1")) // 2: buffered
	e.txn(put("k", "2")) // 3: overflow, next = 3
	e.txn(put("k", "3")) // 4
	if err := e.store.Compact(4); err != nil {
		t.Fatal(err)
	}
	got := renderResponses(drain(s))
	want := "0: PUT k=1@2\n0: compacted@4\n"
	if got != want {
		t.Errorf("responses:\n%swant:\n%s", got, want)
	}
	if n, _ := e.hub.Stats(); n != 0 {
		t.Errorf("compacted watcher still registered: %d watchers", n)
	}
}

func TestStartRevisionAndCompaction(t *testing.T) {
	tests := []struct {
		start  int64
		prevKV bool
		want   string
	}{
		{start: 3, want: "0: compacted@4\n"},
		// etcd serves a watch from the compaction revision itself; the
		// delete at 4 survives compaction.
		{start: 4, want: "0: DEL k@4 PUT k=3@5\n"},
		// ...but the value it replaced does not: with prev_kv that is a
		// compaction, not an event without its prev_kv.
		{start: 4, prevKV: true, want: "0: compacted@4\n"},
		{start: 5, prevKV: true, want: "0: PUT k=3@5\n"},
	}
	for _, tt := range tests {
		e := newEnv(t, DefaultConfig())
		e.txn(put("k", "1")) // 2
		e.txn(put("k", "2")) // 3
		e.txn(del("k", ""))  // 4
		e.txn(put("k", "3")) // 5
		if err := e.store.Compact(4); err != nil {
			t.Fatal(err)
		}
		s := e.hub.NewStream()
		mustWatch(t, s, Request{Key: bs("k"), StartRev: tt.start, PrevKV: tt.prevKV})
		if got := renderResponses(drain(s)); got != tt.want {
			t.Errorf("watch from %d (prev_kv %v) after Compact(4):\n%swant:\n%s", tt.start, tt.prevKV, got, tt.want)
		}
	}
}

func TestFutureStartRevisionWaits(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	s := e.hub.NewStream()
	_, rev, _ := s.Watch(Request{Key: bs("k"), StartRev: 4, ProgressNotify: true})
	if rev != 1 {
		t.Fatalf("created at rev %d, want 1", rev)
	}
	// No progress while waiting for a future revision (etcd #20221).
	if s.RequestProgress() {
		t.Errorf("RequestProgress with a future watcher was queued")
	}
	s.ProgressTick()
	e.txn(put("k", "1")) // 2
	if got := renderResponses(drain(s)); got != "" {
		t.Errorf("before the start revision: %q", got)
	}
	e.txn(put("x", "1")) // 3
	e.txn(put("k", "2")) // 4
	e.txn(put("k", "3")) // 5
	if got := renderResponses(drain(s)); got != "0: PUT k=2@4 PUT k=3@5\n" {
		t.Errorf("from the start revision: %q", got)
	}
}

func TestRequestProgress(t *testing.T) {
	e := newEnv(t, smallConfig(1))
	s := e.hub.NewStream()
	if !s.RequestProgress() {
		t.Fatal("RequestProgress on an empty stream was dropped")
	}
	if got := renderResponses(drain(s)); got != "-1: progress@1\n" {
		t.Errorf("empty stream: %q", got)
	}
	mustWatch(t, s, Request{Key: bs("a")})
	mustWatch(t, s, Request{Key: bs("b")})
	e.txn(put("a", "1")) // 2: buffered for watcher 0
	e.txn(put("x", "1")) // 3
	if !s.RequestProgress() {
		t.Fatal("RequestProgress with synced watchers was dropped")
	}
	if s.RequestProgress() {
		t.Error("a second RequestProgress while one is queued was not dropped")
	}
	e.txn(put("b", "1")) // 4: after the request, so after the notification
	got := renderResponses(drain(s))
	want := "0: PUT a=1@2\n-1: progress@3\n1: PUT b=1@4\n"
	if got != want {
		t.Errorf("responses:\n%swant:\n%s", got, want)
	}
	e.txn(put("a", "2")) // 5: buffered (1 of 1)
	e.txn(put("a", "3")) // 6: overflow, watcher 0 unsynced
	if s.RequestProgress() {
		t.Error("RequestProgress with an unsynced watcher was queued")
	}
	drain(s)
	if !s.RequestProgress() {
		t.Error("RequestProgress after catching up was dropped")
	}
	if got := renderResponses(drain(s)); got != "-1: progress@6\n" {
		t.Errorf("after catch-up: %q", got)
	}
}

func TestProgressTick(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	s := e.hub.NewStream()
	mustWatch(t, s, Request{Key: bs("a"), ProgressNotify: true})
	mustWatch(t, s, Request{Key: bs("b"), ProgressNotify: true})
	mustWatch(t, s, Request{Key: bs("c")}) // did not ask
	s.ProgressTick()
	if got := renderResponses(drain(s)); got != "0: progress@1\n1: progress@1\n" {
		t.Errorf("first tick: %q", got)
	}
	e.txn(put("a", "1")) // 2
	drain(s)
	s.ProgressTick() // 0 had events since the last tick: elided
	if got := renderResponses(drain(s)); got != "1: progress@2\n" {
		t.Errorf("second tick: %q", got)
	}
	e.txn(put("b", "1")) // 3: buffered, not yet drained
	s.ProgressTick()
	if got := renderResponses(drain(s)); got != "0: progress@3\n1: PUT b=1@3\n1: progress@3\n" {
		t.Errorf("third tick: %q", got)
	}
}

func TestCancelDropsBuffered(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	s := e.hub.NewStream()
	mustWatch(t, s, Request{Key: bs("a")})
	e.txn(put("a", "1"))
	s.Cancel(0)
	if got := renderResponses(drain(s)); got != "" {
		t.Errorf("after cancel: %q", got)
	}
	e.txn(put("a", "2"))
	if got := renderResponses(drain(s)); got != "" {
		t.Errorf("write after cancel: %q", got)
	}
}

func TestRestoreCatchesUp(t *testing.T) {
	// The leader's store, written without notifying the follower's hub.
	leader := mvcc.NewStore()
	write := func(st *mvcc.Store, k, v string) {
		w := st.Write()
		w.Put(bs(k), bs(v), 0)
		w.End()
	}
	e := newEnv(t, DefaultConfig())
	e.txn(put("k", "1")) // 2
	write(leader, "k", "1")
	s := e.hub.NewStream()
	mustWatch(t, s, Request{Key: bs("k")})                // synced, next 3
	mustWatch(t, s, Request{Key: bs("k"), StartRev: 4})   // future
	mustWatch(t, s, Request{Key: bs("k"), StartRev: 100}) // far future
	write(leader, "k", "2")                               // 3
	write(leader, "k", "3")                               // 4
	var buf bytes.Buffer
	if _, err := leader.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	e.hub.Restore(e.store.Rev())
	if _, unsynced := e.hub.Stats(); unsynced != 2 {
		t.Errorf("after restore: %d unsynced, want 2", unsynced)
	}
	got := renderResponses(drain(s))
	want := "0: PUT k=2@3 PUT k=3@4\n1: PUT k=3@4\n"
	if got != want {
		t.Errorf("after restore:\n%swant:\n%s", got, want)
	}
	// A restore past a compaction cancels whoever needed the lost history.
	mustWatch(t, s, Request{Key: bs("k"), ID: 7})
	write(leader, "k", "4") // 5
	write(leader, "k", "5") // 6
	if err := leader.Compact(6); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	leader.WriteTo(&buf)
	if err := e.store.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	e.hub.Restore(e.store.Rev())
	got = renderResponses(drain(s))
	want = "0: compacted@6\n1: compacted@6\n7: compacted@6\n"
	if got != want {
		t.Errorf("after restore past a compaction:\n%swant:\n%s", got, want)
	}
}

// watchSpec is a watcher of the randomized tests and what it received.
type watchSpec struct {
	req      Request
	id       int64
	got      []Response
	canceled bool
}

func (w *watchSpec) want(log []mvcc.Event) []mvcc.Event {
	var out []mvcc.Event
	for _, e := range log {
		if e.KV.ModRevision < w.req.StartRev {
			continue
		}
		k := string(e.KV.Key)
		end := string(w.req.End)
		switch {
		case end == "":
			if k != string(w.req.Key) {
				continue
			}
		case end == "\x00":
			if k < string(w.req.Key) {
				continue
			}
		default:
			if k < string(w.req.Key) || k >= end {
				continue
			}
		}
		if (w.req.NoPut && e.Type == mvcc.EventPut) || (w.req.NoDelete && e.Type == mvcc.EventDelete) {
			continue
		}
		if !w.req.PrevKV {
			e.PrevKV = nil
		}
		out = append(out, e)
	}
	return out
}

// check verifies the watch guarantees for one watcher against the log:
// ordered, no gaps, no duplicates, whole revisions per response, prev_kv
// right; a compacted cancel may end the stream only where history was gone.
func (w *watchSpec) check(t *testing.T, log []mvcc.Event, compactRevs map[int64]bool) {
	t.Helper()
	want := w.want(log)
	var got []mvcc.Event
	var compacted int64
	for i, r := range w.got {
		if r.Canceled {
			if r.CompactRev == 0 || i != len(w.got)-1 {
				t.Fatalf("watch %+v: unexpected cancel %+v at response %d", w.req, r, i)
			}
			compacted = r.CompactRev
			continue
		}
		if r.IsProgress() {
			continue
		}
		// Atomic: a response holds whole revisions.
		first, last := r.Events[0].KV.ModRevision, r.Events[len(r.Events)-1].KV.ModRevision
		var whole int
		for _, e := range want {
			if e.KV.ModRevision >= first && e.KV.ModRevision <= last {
				whole++
			}
		}
		if whole != len(r.Events) {
			t.Fatalf("watch %+v: response %d holds %d events of revisions %d..%d, want %d", w.req, i, len(r.Events), first, last, whole)
		}
		got = append(got, r.Events...)
	}
	if compacted == 0 {
		if render(got) != render(want) {
			t.Fatalf("watch %+v:\n got %s\nwant %s", w.req, render(got), render(want))
		}
		return
	}
	if !compactRevs[compacted] {
		t.Fatalf("watch %+v: compacted at %d, which was never a compaction revision", w.req, compacted)
	}
	if len(got) > len(want) || render(got) != render(want[:len(got)]) {
		t.Fatalf("watch %+v before its compacted cancel:\n got %s\nwant a prefix of %s", w.req, render(got), render(want))
	}
	// The watcher needed a revision after the last one it got, and that
	// needs history from a revision the compaction did not keep.
	if len(got) > 0 && got[len(got)-1].KV.ModRevision >= compacted {
		t.Fatalf("watch %+v: cancelled at compaction %d after receiving revision %d", w.req, compacted, got[len(got)-1].KV.ModRevision)
	}
}

func randomRequest(rng *rand.Rand, keys []string, rev int64) Request {
	r := Request{Key: bs(keys[rng.IntN(len(keys))])}
	switch rng.IntN(3) {
	case 1:
		r.End = bs("\x00")
	case 2:
		r.End = bs(string(r.Key) + "zz")
	}
	if rng.IntN(2) == 0 {
		r.StartRev = 1 + rng.Int64N(rev+3)
	}
	r.PrevKV = rng.IntN(2) == 0
	r.NoPut = rng.IntN(8) == 0
	r.NoDelete = !r.NoPut && rng.IntN(8) == 0
	return r
}

func randomTxn(rng *rand.Rand, keys []string) []op {
	var ops []op
	used := map[string]bool{}
	for range 1 + rng.IntN(4) {
		k := keys[rng.IntN(len(keys))]
		if used[k] {
			continue
		}
		used[k] = true
		if rng.IntN(4) == 0 {
			ops = append(ops, del(k, ""))
		} else {
			ops = append(ops, put(k, fmt.Sprint(rng.IntN(1000))))
		}
	}
	return ops
}

// TestRandomized interleaves writes, compactions, watch creation, progress
// requests and slow consumers on one goroutine, and checks every watcher's
// stream against the log.
func TestRandomized(t *testing.T) {
	for iter := range 20 {
		seed := rand.Uint64()
		rng := rand.New(rand.NewPCG(seed, uint64(iter)))
		t.Logf("iteration %d: seed %d", iter, seed)
		e := newEnv(t, smallConfig(1+rng.IntN(6)))
		keys := []string{"a", "ab", "b", "ba", "c", "d"}
		type stream struct {
			s     *Stream
			specs map[int64]*watchSpec
		}
		var streams []*stream
		var all []*watchSpec
		compactRevs := map[int64]bool{}
		deliver := func(st *stream) {
			for {
				r, ok := next(st.s)
				if !ok {
					return
				}
				if r.WatchID == AllWatchers {
					continue
				}
				w := st.specs[r.WatchID]
				if w == nil || w.canceled {
					t.Fatalf("seed %d: response for unknown watch %d", seed, r.WatchID)
				}
				w.got = append(w.got, r)
				if r.Canceled {
					w.canceled = true
				}
			}
		}
		for step := 0; step < 300; step++ {
			switch x := rng.IntN(20); {
			case x < 12:
				e.txn(randomTxn(rng, keys)...)
			case x < 13 && e.store.Rev() > e.store.CompactRev()+1:
				c := e.store.CompactRev() + 1 + rng.Int64N(min(5, e.store.Rev()-e.store.CompactRev()))
				if err := e.store.Compact(c); err != nil {
					t.Fatal(err)
				}
				compactRevs[c] = true
			case x < 15:
				if len(streams) == 0 || rng.IntN(3) == 0 {
					streams = append(streams, &stream{s: e.hub.NewStream(), specs: map[int64]*watchSpec{}})
				}
				st := streams[rng.IntN(len(streams))]
				w := &watchSpec{req: randomRequest(rng, keys, e.store.Rev())}
				id, rev, err := st.s.Watch(w.req)
				if err != nil {
					t.Fatalf("seed %d: Watch: %v", seed, err)
				}
				if w.req.StartRev == 0 {
					w.req.StartRev = rev + 1
				}
				w.id = id
				st.specs[id] = w
				all = append(all, w)
			case x < 16 && len(streams) > 0:
				streams[rng.IntN(len(streams))].s.RequestProgress()
			default:
				// Some streams are slow: drained rarely.
				for i, st := range streams {
					if i%3 != 0 || rng.IntN(4) == 0 {
						deliver(st)
					}
				}
			}
		}
		for _, st := range streams {
			deliver(st)
		}
		for _, w := range all {
			w.check(t, e.log, compactRevs)
		}
		if n, unsynced := e.hub.Stats(); unsynced != 0 {
			t.Errorf("seed %d: %d of %d watchers still unsynced after draining", seed, unsynced, n)
		}
	}
}

// TestConcurrentConsumers runs the apply path and consumers on their own
// goroutines (meaningful under -race): every stream still matches the log.
func TestConcurrentConsumers(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	e := newEnv(t, smallConfig(2))
	keys := []string{"a", "b", "c"}
	const streams = 4
	specs := make([]*watchSpec, streams)
	ss := make([]*Stream, streams)
	for i := range streams {
		ss[i] = e.hub.NewStream()
		specs[i] = &watchSpec{req: Request{Key: bs("a"), End: bs("\x00"), PrevKV: i%2 == 0, StartRev: int64(1 + i)}}
		specs[i].id = mustWatch(t, ss[i], specs[i].req)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				for {
					r, ok := next(ss[i])
					if !ok {
						break
					}
					specs[i].got = append(specs[i].got, r)
				}
				select {
				case <-ss[i].Ready():
				case <-done:
					for {
						r, ok := next(ss[i])
						if !ok {
							return
						}
						specs[i].got = append(specs[i].got, r)
					}
				}
			}
		}()
	}
	for range 2000 {
		e.txn(randomTxn(rng, keys)...)
	}
	close(done)
	wg.Wait()
	for _, w := range specs {
		w.check(t, e.log, nil)
	}
}

func TestTrimBytes(t *testing.T) {
	ev := func(rev int64, size int) mvcc.Event {
		return mvcc.Event{KV: mvcc.KeyValue{Key: []byte("k"), Value: make([]byte, size-33), ModRevision: rev}}
	}
	evs := []mvcc.Event{ev(2, 100), ev(2, 100), ev(3, 100), ev(4, 100), ev(4, 100)}
	tests := []struct {
		limit    int
		wantLen  int
		wantNext int64
	}{
		{limit: 1000, wantLen: 5, wantNext: 9},
		{limit: 300, wantLen: 3, wantNext: 4}, // revision 4 does not fit whole
		{limit: 250, wantLen: 2, wantNext: 3}, // revision 3 does not fit
		{limit: 50, wantLen: 2, wantNext: 3},  // the first revision always goes
		{limit: 450, wantLen: 3, wantNext: 4}, // 4's second event does not fit
	}
	for _, tt := range tests {
		got, next := trimBytes(slices.Clone(evs), 9, tt.limit)
		if len(got) != tt.wantLen || next != tt.wantNext {
			t.Errorf("trimBytes(limit %d) = %d events, next %d; want %d, %d", tt.limit, len(got), next, tt.wantLen, tt.wantNext)
		}
	}
}

func TestBufferBytesOverflow(t *testing.T) {
	cfg := smallConfig(100)
	cfg.ResponseBytes = 200
	e := newEnv(t, cfg)
	s := e.hub.NewStream()
	mustWatch(t, s, Request{Key: bs("k")})
	big := strings.Repeat("x", 150)
	e.txn(put("k", big)) // 2: fits
	e.txn(put("k", big)) // 3: would pass 200 bytes: catch up from history
	if _, unsynced := e.hub.Stats(); unsynced != 1 {
		t.Fatalf("unsynced = %d, want 1", unsynced)
	}
	var revs []int64
	for _, r := range drain(s) {
		for _, ev := range r.Events {
			revs = append(revs, ev.KV.ModRevision)
		}
	}
	if fmt.Sprint(revs) != "[2 3]" {
		t.Errorf("revisions %v, want [2 3]", revs)
	}
}

// TestRecycledBufferHoldsNoStaleEvents checks that an event array reused for
// a watcher's buffer, once handed out again, holds no event of an earlier
// response beyond the new ones (they would keep old values alive).
func TestRecycledBufferHoldsNoStaleEvents(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	s := e.hub.NewStream()
	if _, _, err := s.Watch(Request{Key: bs("a")}); err != nil {
		t.Fatal(err)
	}
	take := func(want int) []mvcc.Event {
		t.Helper()
		r, ok := s.Next()
		if !ok || len(r.Events) != want {
			t.Fatalf("Next = %d events (%v), want %d", len(r.Events), ok, want)
		}
		return r.Events
	}
	for i := range 3 {
		e.txn(put("a", fmt.Sprint("x", i)))
	}
	first := take(3) // a fresh array
	e.txn(put("a", "y"))
	take(1) // the same array, the consumer being done with the first response
	e.txn(put("a", "z"))
	again := take(1) // and again
	if &again[0] != &first[0] {
		t.Fatal("the array was not reused; the test checks nothing")
	}
	if v := string(again[0].KV.Value); v != "z" {
		t.Fatalf("event = %q, want z", v)
	}
	for i, ev := range again[1:cap(again)][:2] {
		if ev.KV.Key != nil || ev.KV.Value != nil {
			t.Errorf("entry %d beyond the response still holds %s=%s", i+1, ev.KV.Key, ev.KV.Value)
		}
	}
}
