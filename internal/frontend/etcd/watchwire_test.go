package etcd

import (
	"bytes"
	"errors"
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
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &wireWatch{hdr: tc.hdr, resp: &tc.resp}
			want := &pb.WatchResponse{
				Header:          header(tc.hdr),
				WatchId:         tc.resp.WatchID,
				Events:          toPBEvents(tc.resp.Events),
				CompactRevision: tc.resp.CompactRev,
				Canceled:        tc.resp.Canceled,
			}
			if tc.resp.Err != nil {
				w.reason = tc.resp.Err.Error()
				want.CancelReason = w.reason
			}
			wantBytes, err := proto.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := newCodec().Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			gotBytes := got.Materialize()
			got.Free()
			if w.size() != len(wantBytes) {
				t.Errorf("size() = %d, want %d", w.size(), len(wantBytes))
			}
			if !bytes.Equal(gotBytes, wantBytes) {
				t.Fatalf("encoding differs from proto.Marshal:\n got %x\nwant %x", gotBytes, wantBytes)
			}
			var back pb.WatchResponse
			if err := proto.Unmarshal(gotBytes, &back); err != nil || !proto.Equal(&back, want) {
				t.Fatalf("decoded %v (%v), want %v", &back, err, want)
			}
		})
	}
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
