package etcd

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/watch"
)

func TestSendFragments(t *testing.T) {
	event := func(i, size int) *mvccpb.Event {
		return &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte(fmt.Sprintf("k%02d", i)), Value: bytes.Repeat([]byte("v"), size), ModRevision: int64(i + 2)}}
	}
	tests := []struct {
		name   string
		sizes  []int
		limit  int
		pieces []int // events per piece
	}{
		{name: "under the limit", sizes: []int{10, 10, 10}, limit: 1000, pieces: []int{3}},
		{name: "one event never splits", sizes: []int{5000}, limit: 100, pieces: []int{1}},
		{name: "even split", sizes: []int{100, 100, 100, 100}, limit: 250, pieces: []int{2, 2}},
		{name: "oversized event alone", sizes: []int{10, 1000, 10}, limit: 300, pieces: []int{1, 1, 1}},
		{name: "tail", sizes: []int{100, 100, 100, 100, 100}, limit: 250, pieces: []int{2, 2, 1}},
	}
	for _, tt := range tests {
		wr := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 9, ClusterId: 1}, WatchId: 3}
		for i, s := range tt.sizes {
			wr.Events = append(wr.Events, event(i, s))
		}
		var got []*pb.WatchResponse
		err := sendFragments(wr, tt.limit, func(r *pb.WatchResponse) error { got = append(got, r); return nil })
		if err != nil {
			t.Fatal(err)
		}
		var counts []int
		n := 0
		for i, r := range got {
			counts = append(counts, len(r.Events))
			if want := i < len(got)-1; r.Fragment != want {
				t.Errorf("%s: piece %d fragment = %v, want %v", tt.name, i, r.Fragment, want)
			}
			if len(r.Events) > 1 && proto.Size(r) >= tt.limit {
				t.Errorf("%s: piece %d of %d events is %d bytes, limit %d", tt.name, i, len(r.Events), proto.Size(r), tt.limit)
			}
			if r.WatchId != 3 || r.Header.GetRevision() != 9 {
				t.Errorf("%s: piece %d lost its header or id", tt.name, i)
			}
			for _, e := range r.Events {
				if !proto.Equal(e, wr.Events[n]) {
					t.Errorf("%s: event %d out of order", tt.name, n)
				}
				n++
			}
		}
		if fmt.Sprint(counts) != fmt.Sprint(tt.pieces) {
			t.Errorf("%s: pieces %v, want %v", tt.name, counts, tt.pieces)
		}
	}
}

func TestToPBEvents(t *testing.T) {
	prev := mvcc.KeyValue{Key: []byte("a"), Value: []byte("0"), CreateRevision: 2, ModRevision: 2, Version: 1, Lease: 7}
	evs := []mvcc.Event{
		{Type: mvcc.EventPut, KV: mvcc.KeyValue{Key: []byte("a"), Value: []byte("1"), CreateRevision: 2, ModRevision: 3, Version: 2}, PrevKV: &prev},
		{Type: mvcc.EventDelete, KV: mvcc.KeyValue{Key: []byte("b"), ModRevision: 3}},
	}
	got := toPBEvents(evs)
	want := []*mvccpb.Event{
		{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("1"), CreateRevision: 2, ModRevision: 3, Version: 2},
			PrevKv: &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("0"), CreateRevision: 2, ModRevision: 2, Version: 1, Lease: 7}},
		{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte("b"), ModRevision: 3}},
	}
	if len(got) != len(want) {
		t.Fatalf("toPBEvents: %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("toPBEvents[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestCancelReasons checks every watch creation error has etcd's text.
func TestCancelReasons(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{watch.ErrNegativeStartRev, "etcdserver: mvcc: required revision has been compacted"},
		{watch.ErrDuplicateID, "mvcc: duplicate watch ID provided on the WatchStream"},
		{watch.ErrEmptyRange, "mvcc: watcher range is empty"},
		{fmt.Errorf("wrapped: %w", watch.ErrDuplicateID), "mvcc: duplicate watch ID provided on the WatchStream"},
	}
	for _, tt := range tests {
		if got := cancelReason(tt.err); got != tt.want {
			t.Errorf("cancelReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	for _, e := range []error{watch.ErrNegativeStartRev, watch.ErrDuplicateID, watch.ErrEmptyRange, watch.ErrStreamClosed} {
		found := false
		for _, c := range cancelReasons {
			found = found || errors.Is(e, c.domain)
		}
		if !found {
			t.Errorf("watch error %v has no cancel reason", e)
		}
	}
}

// TestRoundWait checks when a round holds the stream's next one back.
func TestRoundWait(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const iv = 100 * time.Millisecond
	ms := time.Millisecond
	cases := []struct {
		name                         string
		held                         bool
		responses, behind, revisions int
		elapsed, interval, want      time.Duration
	}{
		{"keeping up", false, 100, 0, 1, 2 * ms, iv, 0},
		{"congested", false, 100, 90, 3, 2 * ms, iv, 98 * ms},
		{"exactly half behind", false, 100, 50, 2, 2 * ms, iv, 0},
		{"just over half behind", false, 100, 51, 2, 2 * ms, iv, 98 * ms},
		{"few watchers", false, congestedResponses - 1, congestedResponses - 1, 9, ms, iv, 0},
		{"fewest that count", false, congestedResponses, congestedResponses, 2, ms, iv, 99 * ms},
		{"round longer than the interval", false, 100, 100, 2, 150 * ms, iv, -50 * ms},
		{"batching off", false, 100, 100, 2, ms, 0, 0},
		// After a hold: would one round per revision have fit?
		{"held, few revisions, quick", true, 100, 100, 5, 2 * ms, iv, 0},
		{"held, just fits", true, 100, 100, 49, 2 * ms, iv, 0},
		{"held, does not fit", true, 100, 100, 50, 2 * ms, iv, 98 * ms},
		{"held, slow round", true, 100, 100, 2, 60 * ms, iv, 40 * ms},
		{"held, few watchers", true, congestedResponses - 1, congestedResponses - 1, 100, 50 * ms, iv, 0},
	}
	for _, tc := range cases {
		r := round{start: t0, held: tc.held, responses: tc.responses, behind: tc.behind, revisions: tc.revisions}
		if got := r.wait(t0.Add(tc.elapsed), tc.interval); got != tc.want {
			t.Errorf("%s: wait = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRoundWaitProgress checks that a round during which a client asked for
// progress is never followed by a wait, congested or not.
func TestRoundWaitProgress(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, held := range []bool{false, true} {
		r := round{start: t0, held: held, responses: 100, behind: 100, revisions: 100, progress: true}
		if got := r.wait(t0.Add(time.Millisecond), 100*time.Millisecond); got != 0 {
			t.Errorf("held %v: wait = %v, want 0", held, got)
		}
		r.progress = false
		if got := r.wait(t0.Add(time.Millisecond), 100*time.Millisecond); got <= 0 {
			t.Errorf("held %v, no progress asked: wait = %v, want > 0", held, got)
		}
	}
}

// TestRoundAdd checks which responses count as behind.
func TestRoundAdd(t *testing.T) {
	ev := func(revs ...int64) []mvcc.Event {
		var evs []mvcc.Event
		for _, r := range revs {
			evs = append(evs, mvcc.Event{KV: mvcc.KeyValue{Key: []byte("k"), ModRevision: r}})
		}
		return evs
	}
	var r round
	for _, resp := range []watch.Response{
		{WatchID: 1, Events: ev(5)},       // one revision
		{WatchID: 2, Events: ev(5, 5, 5)}, // one revision, a txn's three keys
		{WatchID: 3, Events: ev(5, 6, 6)}, // behind, two revisions
		{WatchID: 4, Rev: 6},              // progress
		{WatchID: 5, Canceled: true},      // cancel
	} {
		r.add(&resp)
	}
	if r.responses != 5 || r.behind != 1 || r.revisions != 2 {
		t.Fatalf("round = %d responses, %d behind, at most %d revisions; want 5, 1, 2", r.responses, r.behind, r.revisions)
	}
}
