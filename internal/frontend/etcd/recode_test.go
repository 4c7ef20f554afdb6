package etcd

import (
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/server"
)

// TestWireCompatible checks, field by field, that each command message the
// front-end recodes has the same field numbers, kinds and cardinality as its
// etcd counterpart (headers excepted: the server fills them in), so no field
// is silently dropped by recode.
func TestWireCompatible(t *testing.T) {
	pairs := []struct{ etcd, cmd proto.Message }{
		{&etcdserverpb.RangeRequest{}, &command.RangeRequest{}},
		{&etcdserverpb.RangeResponse{}, &command.RangeResponse{}},
		{&etcdserverpb.PutRequest{}, &command.PutRequest{}},
		{&etcdserverpb.PutResponse{}, &command.PutResponse{}},
		{&etcdserverpb.DeleteRangeRequest{}, &command.DeleteRangeRequest{}},
		{&etcdserverpb.DeleteRangeResponse{}, &command.DeleteRangeResponse{}},
		{&etcdserverpb.TxnRequest{}, &command.TxnRequest{}},
		{&etcdserverpb.TxnResponse{}, &command.TxnResponse{}},
		{&mvccpb.KeyValue{}, &command.KeyValue{}},
	}
	for _, p := range pairs {
		compareDescriptors(t, p.etcd.ProtoReflect().Descriptor(), p.cmd.ProtoReflect().Descriptor(), map[protoreflect.FullName]bool{})
	}
}

func compareDescriptors(t *testing.T, e, c protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) {
	t.Helper()
	if seen[e.FullName()] {
		return
	}
	seen[e.FullName()] = true
	ef := e.Fields()
	for i := 0; i < ef.Len(); i++ {
		f := ef.Get(i)
		if f.Name() == "header" && f.Kind() == protoreflect.MessageKind {
			continue
		}
		g := c.Fields().ByNumber(f.Number())
		if g == nil {
			t.Errorf("%s.%s (field %d) has no counterpart in %s", e.FullName(), f.Name(), f.Number(), c.FullName())
			continue
		}
		if f.Kind() != g.Kind() || f.Cardinality() != g.Cardinality() {
			t.Errorf("%s.%s: kind %v/%v, command has %v/%v", e.FullName(), f.Name(), f.Kind(), f.Cardinality(), g.Kind(), g.Cardinality())
		}
		if f.Kind() == protoreflect.EnumKind {
			ev, gv := f.Enum().Values(), g.Enum().Values()
			for j := 0; j < ev.Len(); j++ {
				if gv.ByNumber(ev.Get(j).Number()) == nil {
					t.Errorf("%s.%s: enum value %s missing in command", e.FullName(), f.Name(), ev.Get(j).Name())
				}
			}
		}
		if f.Kind() == protoreflect.MessageKind {
			compareDescriptors(t, f.Message(), g.Message(), seen)
		}
	}
}

// TestRecodeRoundTrip pushes a fully populated txn through both directions.
func TestRecodeRoundTrip(t *testing.T) {
	in := &etcdserverpb.TxnRequest{
		Compare: []*etcdserverpb.Compare{{
			Result: etcdserverpb.Compare_NOT_EQUAL, Target: etcdserverpb.Compare_VALUE, Key: []byte("k"),
			TargetUnion: &etcdserverpb.Compare_Value{Value: []byte("v")}, RangeEnd: []byte("z"),
		}},
		Success: []*etcdserverpb.RequestOp{
			{Request: &etcdserverpb.RequestOp_RequestRange{RequestRange: &etcdserverpb.RangeRequest{
				Key: []byte("a"), RangeEnd: []byte("b"), Limit: 3, Revision: 4, SortOrder: etcdserverpb.RangeRequest_DESCEND,
				SortTarget: etcdserverpb.RangeRequest_MOD, Serializable: true, KeysOnly: true, CountOnly: true,
				MinModRevision: 1, MaxModRevision: 2, MinCreateRevision: 3, MaxCreateRevision: 4}}},
			{Request: &etcdserverpb.RequestOp_RequestPut{RequestPut: &etcdserverpb.PutRequest{
				Key: []byte("p"), Value: []byte("v"), Lease: 7, PrevKv: true, IgnoreValue: true, IgnoreLease: true}}},
		},
		Failure: []*etcdserverpb.RequestOp{
			{Request: &etcdserverpb.RequestOp_RequestDeleteRange{RequestDeleteRange: &etcdserverpb.DeleteRangeRequest{Key: []byte("d"), RangeEnd: []byte("e"), PrevKv: true}}},
			{Request: &etcdserverpb.RequestOp_RequestTxn{RequestTxn: &etcdserverpb.TxnRequest{
				Compare: []*etcdserverpb.Compare{{Target: etcdserverpb.Compare_LEASE, Key: []byte("l"), TargetUnion: &etcdserverpb.Compare_Lease{Lease: 9}}}}}},
		},
	}
	var mid command.TxnRequest
	if err := recode(&mid, in); err != nil {
		t.Fatal(err)
	}
	out := &etcdserverpb.TxnRequest{}
	if err := recode(out, &mid); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Errorf("round trip changed the txn:\n in  %v\n out %v", in, out)
	}
	if got := mid.Success[0].GetRequestRange().GetMaxCreateRevision(); got != 4 {
		t.Errorf("command range max_create_revision = %d, want 4", got)
	}
}

// TestErrorTable checks each domain error maps to etcd's exact code and
// message, also when wrapped.
func TestErrorTable(t *testing.T) {
	for _, e := range errorTable {
		wrapped := errors.Join(errors.New("context"), e.domain)
		got := toGRPC(wrapped)
		if got != e.grpc {
			t.Errorf("toGRPC(%v) = %v, want %v", e.domain, got, e.grpc)
		}
		if s, _ := status.FromError(got); s.Code() == codes.Unknown {
			t.Errorf("toGRPC(%v) has code Unknown", e.domain)
		}
	}
	cases := []struct {
		err  error
		want error
	}{
		{apply.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
		{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
		{server.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	}
	for _, c := range cases {
		if got := toGRPC(c.err); got.Error() != c.want.Error() {
			t.Errorf("toGRPC(%v) = %q, want %q", c.err, got.Error(), c.want.Error())
		}
	}
	if s, _ := status.FromError(toGRPC(errors.New("surprise"))); s.Code() != codes.Unknown {
		t.Errorf("unmapped error code = %v, want Unknown", s.Code())
	}
}
