package etcd

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/server"
)

// TestKVWireMatchesProto checks the hand-encoded Range and Put responses
// against proto.Marshal of etcd's messages holding the same fields (moved
// over by recode, so a field the encoder forgets shows up in the filled
// cases), byte for byte.
func TestKVWireMatchesProto(t *testing.T) {
	hdr := server.Header{ClusterID: 0xdeadbeefcafe, MemberID: 1<<63 + 5, Revision: 42, RaftTerm: 3}
	kv := func(key string, val []byte, create, mod, ver, lease int64) *command.KeyValue {
		return &command.KeyValue{Key: []byte(key), Value: val, CreateRevision: create, ModRevision: mod, Version: ver, Lease: lease}
	}
	many := make([]*command.KeyValue, 300)
	for i := range many {
		many[i] = kv(fmt.Sprintf("key%03d", i), []byte("value"), 5, int64(10+i), int64(1+i), 0)
	}
	big := bytes.Repeat([]byte("v"), 70000)
	filledRange, filledPut := &command.RangeResponse{}, &command.PutResponse{}
	fill(filledRange.ProtoReflect())
	fill(filledPut.ProtoReflect())

	ranges := []struct {
		name string
		hdr  server.Header
		resp *command.RangeResponse
	}{
		{"no keys", hdr, &command.RangeResponse{}},
		{"zero header", server.Header{}, &command.RangeResponse{}},
		{"count only", hdr, &command.RangeResponse{Count: 100000}},
		{"one key", hdr, &command.RangeResponse{Kvs: []*command.KeyValue{kv("foo", []byte("bar"), 2, 3, 2, 0)}, Count: 1}},
		{"keys only, lease", hdr, &command.RangeResponse{Kvs: []*command.KeyValue{kv("a", nil, 2, 2, 1, 7), kv("b", nil, 4, 9, 3, -1)}, Count: 2}},
		{"limited", hdr, &command.RangeResponse{Kvs: many[:100], More: true, Count: 300}},
		{"many", hdr, &command.RangeResponse{Kvs: many, Count: 300}},
		{"large value", hdr, &command.RangeResponse{Kvs: []*command.KeyValue{kv("big", big, 1<<40, 1<<40+1, 1<<20, 0)}, Count: 1}},
		{"every field", hdr, filledRange},
	}
	for _, c := range ranges {
		want := &pb.RangeResponse{}
		if err := recode(want, c.resp); err != nil {
			t.Fatal(err)
		}
		want.Header = header(c.hdr)
		checkWireMessage(t, "range: "+c.name, &wireRange{hdr: c.hdr, resp: c.resp}, want, &pb.RangeResponse{})
	}

	puts := []struct {
		name string
		resp *command.PutResponse
	}{
		{"no previous", &command.PutResponse{}},
		{"previous", &command.PutResponse{PrevKv: kv("foo", []byte("old"), 2, 3, 2, 9)}},
		{"previous without value", &command.PutResponse{PrevKv: kv("foo", nil, 2, 3, 2, 0)}},
		{"every field", filledPut},
	}
	for _, c := range puts {
		want := &pb.PutResponse{}
		if err := recode(want, c.resp); err != nil {
			t.Fatal(err)
		}
		want.Header = header(hdr)
		checkWireMessage(t, "put: "+c.name, &wirePut{hdr: hdr, resp: c.resp}, want, &pb.PutResponse{})
	}
}

// checkWireMessage encodes w through the codec and compares it with
// proto.Marshal of want, then decodes it into back and compares again.
func checkWireMessage(t *testing.T, name string, w wireMessage, want, back proto.Message) {
	t.Helper()
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
		t.Errorf("%s: size() = %d, want %d", name, w.size(), len(wantBytes))
	}
	if !bytes.Equal(gotBytes, wantBytes) {
		t.Fatalf("%s: encoding differs from proto.Marshal:\n got %x\nwant %x", name, gotBytes, wantBytes)
	}
	if err := proto.Unmarshal(gotBytes, back); err != nil || !proto.Equal(back, want) {
		t.Fatalf("%s: decoded %v (%v), want %v", name, back, err, want)
	}
}

// TestKVOverGRPC calls Range and Put through gRPC with etcd's generated
// client, which decodes the hand-encoded responses.
func TestKVOverGRPC(t *testing.T) {
	kv := startMember(t)
	ctx := context.Background()
	put, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k1"), Value: []byte("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if h := put.Header; h == nil || h.Revision != 2 || h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 {
		t.Fatalf("put header %v", h)
	}
	if put.PrevKv != nil {
		t.Fatalf("prev_kv %v without prev_kv asked", put.PrevKv)
	}
	put, err = kv.Put(ctx, &pb.PutRequest{Key: []byte("k1"), Value: []byte("v2"), PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	wantPrev := &mvccpb.KeyValue{Key: []byte("k1"), Value: []byte("v1"), CreateRevision: 2, ModRevision: 2, Version: 1}
	if !proto.Equal(put.PrevKv, wantPrev) || put.Header.Revision != 3 {
		t.Fatalf("put with prev_kv: %v", put)
	}
	for i := 2; i <= 5; i++ {
		if _, err := kv.Put(ctx, &pb.PutRequest{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}

	one, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k1")})
	if err != nil {
		t.Fatal(err)
	}
	wantOne := &mvccpb.KeyValue{Key: []byte("k1"), Value: []byte("v2"), CreateRevision: 2, ModRevision: 3, Version: 2}
	if len(one.Kvs) != 1 || !proto.Equal(one.Kvs[0], wantOne) || one.Count != 1 || one.More || one.Header.Revision != 7 {
		t.Fatalf("range k1: %v", one)
	}
	missing, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("nope"), Serializable: true})
	if err != nil || len(missing.Kvs) != 0 || missing.Count != 0 || missing.Header.Revision != 7 {
		t.Fatalf("range of a missing key: %v, %v", missing, err)
	}
	limited, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Limit: 2, KeysOnly: true})
	if err != nil || len(limited.Kvs) != 2 || !limited.More || limited.Count != 5 ||
		string(limited.Kvs[1].Key) != "k2" || limited.Kvs[1].Value != nil || limited.Kvs[1].ModRevision != 4 {
		t.Fatalf("limited keys-only range: %v, %v", limited, err)
	}
	count, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), CountOnly: true})
	if err != nil || len(count.Kvs) != 0 || count.Count != 5 || count.More {
		t.Fatalf("count-only range: %v, %v", count, err)
	}
	if _, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k1"), Revision: 100}); err == nil ||
		err.Error() != "rpc error: code = OutOfRange desc = etcdserver: mvcc: required revision is a future revision" {
		t.Fatalf("range at a future revision: %v", err)
	}
}
