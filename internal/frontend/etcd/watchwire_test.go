package etcd

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/server"
	"github.com/concord-db/concord/internal/watch"
)

// TestWatchWireMatchesProto checks the hand encoding against proto.Marshal
// of the same response built from etcd's message types, byte for byte.
func TestWatchWireMatchesProto(t *testing.T) {
	prev := mvcc.KeyValue{Key: []byte("a"), Value: []byte("0"), CreateRevision: 2, ModRevision: 2, Version: 1, Lease: 7}
	big := mvcc.KeyValue{Key: bytes.Repeat([]byte("k"), 300), Value: bytes.Repeat([]byte("v"), 70000), CreateRevision: 1 << 40, ModRevision: 1<<40 + 1, Version: 1 << 20, Lease: -1}
	many := make([]mvcc.Event, 500)
	for i := range many {
		many[i] = mvcc.Event{KV: mvcc.KeyValue{Key: []byte("key"), Value: []byte("data"), CreateRevision: 5, ModRevision: int64(10 + i), Version: int64(1 + i)}}
	}
	hdr := server.Header{ClusterID: 0xdeadbeefcafe, MemberID: 1<<63 + 5, Revision: 42, RaftTerm: 3}
	cases := []struct {
		name string
		hdr  server.Header
		resp watch.Response
	}{
		{"one put", hdr, watch.Response{WatchID: 1, Rev: 3, Events: []mvcc.Event{{KV: mvcc.KeyValue{Key: []byte("a"), Value: []byte("1"), CreateRevision: 2, ModRevision: 3, Version: 2}}}}},
		{"put with prev, delete", hdr, watch.Response{WatchID: 7, Rev: 3, Events: []mvcc.Event{
			{Type: mvcc.EventPut, KV: mvcc.KeyValue{Key: []byte("a"), Value: []byte("1"), CreateRevision: 2, ModRevision: 3, Version: 2}, PrevKV: &prev},
			{Type: mvcc.EventDelete, KV: mvcc.KeyValue{Key: []byte("b"), ModRevision: 3}, PrevKV: &prev},
		}}},
		{"empty value, watch id 0", hdr, watch.Response{Rev: 4, Events: []mvcc.Event{{KV: mvcc.KeyValue{Key: []byte("e"), CreateRevision: 4, ModRevision: 4, Version: 1}}}}},
		{"large fields", hdr, watch.Response{WatchID: 1 << 50, Rev: big.ModRevision, Events: []mvcc.Event{{KV: big, PrevKV: &big}}}},
		{"many events", hdr, watch.Response{WatchID: 3, Rev: 509, Events: many}},
		{"stream-wide progress", hdr, watch.Response{WatchID: watch.AllWatchers, Rev: 42}},
		{"progress, zero header", server.Header{}, watch.Response{WatchID: 2}},
		{"compacted", hdr, watch.Response{WatchID: 9, Rev: 42, Canceled: true, CompactRev: 17}},
		{"canceled with a reason", hdr, watch.Response{WatchID: 9, Rev: 42, Canceled: true, Err: errors.New("watch: catch-up from revision 3: " + strings.Repeat("x", 200))}},
	}
	// Events alike but for one field each, so that a cache keyed on too
	// little would hand out the wrong encoding.
	base := mvcc.Event{KV: mvcc.KeyValue{Key: []byte("k"), Value: []byte("v1"), CreateRevision: 2, ModRevision: 9, Version: 3, Lease: 4}}
	variants := []func(e *mvcc.Event){
		func(e *mvcc.Event) {},
		func(e *mvcc.Event) { e.KV.Value = []byte("v2") },
		func(e *mvcc.Event) { e.KV.Key = []byte("j") },
		func(e *mvcc.Event) { e.KV.Lease = 5 },
		func(e *mvcc.Event) { e.KV.ModRevision = 10 },
		func(e *mvcc.Event) { e.KV.Version = 4 },
		func(e *mvcc.Event) { e.KV.CreateRevision = 3 },
		func(e *mvcc.Event) { e.Type = mvcc.EventDelete },
		func(e *mvcc.Event) { e.PrevKV = &prev },
		func(e *mvcc.Event) { p := prev; p.Value = []byte("other"); e.PrevKV = &p },
	}
	for i, v := range variants {
		e := base
		v(&e)
		cases = append(cases, struct {
			name string
			hdr  server.Header
			resp watch.Response
		}{fmt.Sprint("variant ", i), hdr, watch.Response{WatchID: int64(i), Rev: 9, Events: []mvcc.Event{e}}})
	}
	// Every case alone, then all in turn through one stream's cache, twice
	// (the second time each follows itself).
	var cache eventCache
	for pass, c := range []*eventCache{nil, &cache, &cache} {
		for _, tc := range cases {
			if pass == 2 {
				checkWire(t, tc.name+" again", tc.hdr, tc.resp, c)
			}
			checkWire(t, tc.name, tc.hdr, tc.resp, c)
		}
	}
}

// checkWire encodes resp through the codec and compares it with
// proto.Marshal of the same response built from etcd's message types.
func checkWire(t *testing.T, name string, hdr server.Header, resp watch.Response, cache *eventCache) {
	t.Helper()
	w := &wireWatch{hdr: hdr, resp: &resp, cache: cache}
	want := &pb.WatchResponse{
		Header:          header(hdr),
		WatchId:         resp.WatchID,
		Events:          toPBEvents(resp.Events),
		CompactRevision: resp.CompactRev,
		Canceled:        resp.Canceled,
	}
	if resp.Err != nil {
		w.reason = resp.Err.Error()
		want.CancelReason = w.reason
	}
	checkWireMessage(t, fmt.Sprintf("%s (cache %v)", name, cache != nil), w, want, &pb.WatchResponse{})
}

// TestCodecPassesOtherMessages checks every other message still goes through
// gRPC's proto codec.
func TestCodecPassesOtherMessages(t *testing.T) {
	in := &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 3}
	data, err := newCodec().Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out pb.PutRequest
	if err := newCodec().Unmarshal(data, &out); err != nil || !proto.Equal(in, &out) {
		t.Fatalf("round trip: %v (%v), want %v", &out, err, in)
	}
	if _, err := newCodec().Marshal(struct{}{}); err == nil {
		t.Fatal("marshalling a non-message succeeded")
	}
}

// TestEventCacheLetsLargeGo checks a stream keeps small encodings between
// responses and lets large ones go once sent.
func TestEventCacheLetsLargeGo(t *testing.T) {
	var c eventCache
	send := func(value int) {
		t.Helper()
		evs := []mvcc.Event{{KV: mvcc.KeyValue{Key: []byte("k"), Value: make([]byte, value), ModRevision: 2}}}
		data, err := newCodec().Marshal(&wireWatch{resp: &watch.Response{WatchID: 1, Rev: 2, Events: evs}, cache: &c})
		if err != nil {
			t.Fatal(err)
		}
		data.Free()
	}
	send(100)
	if c.enc == nil || len(c.evs) != 1 {
		t.Fatal("a small encoding was not kept")
	}
	send(maxCachedEvents)
	if c.enc != nil || c.evs != nil {
		t.Fatalf("a %d-byte encoding was kept", cap(c.enc))
	}
}
