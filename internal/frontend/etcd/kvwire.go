package etcd

import (
	"context"
	"slices"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/protofield"
	"github.com/concord-db/concord/internal/server"
)

// Range and Put answer with their responses in Concord's own types, which
// codec encodes straight to the wire. Through etcd's message types, each
// call built a response, a header and a KeyValue per key, and then
// marshalled them by reflection: 7% of a member's CPU serving one-key
// ranges, beside the allocations (bench/STEPS.md, step 22). The encoding is
// checked byte for byte against proto.Marshal of etcd's messages
// (TestKVWireMatchesProto).

// Field numbers of etcd's api/etcdserverpb/rpc.proto.
const (
	rrHeader, rrKvs, rrMore, rrCount protowire.Number = 1, 2, 3, 4
	prHeader, prPrevKV               protowire.Number = 1, 2
)

// wireRange is a RangeResponse. Its KeyValues alias the store's bytes,
// which are never modified.
type wireRange struct {
	hdr  server.Header
	resp *command.RangeResponse
}

func (w *wireRange) size() int {
	n := protofield.SizeMessage(rrHeader, headerSize(&w.hdr))
	for _, kv := range w.resp.Kvs {
		n += protofield.SizeMessage(rrKvs, commandKVSize(kv))
	}
	return n + protofield.SizeVarint(rrMore, protofield.Bool(w.resp.More)) + protofield.SizeVarint(rrCount, uint64(w.resp.Count))
}

func (w *wireRange) appendTo(b []byte) []byte {
	b = appendHeader(b, rrHeader, &w.hdr)
	for _, kv := range w.resp.Kvs {
		b = appendCommandKV(b, rrKvs, kv)
	}
	b = protofield.AppendVarint(b, rrMore, protofield.Bool(w.resp.More))
	return protofield.AppendVarint(b, rrCount, uint64(w.resp.Count))
}

// wirePut is a PutResponse.
type wirePut struct {
	hdr  server.Header
	resp *command.PutResponse
}

func (w *wirePut) size() int {
	n := protofield.SizeMessage(prHeader, headerSize(&w.hdr))
	if kv := w.resp.PrevKv; kv != nil {
		n += protofield.SizeMessage(prPrevKV, commandKVSize(kv))
	}
	return n
}

func (w *wirePut) appendTo(b []byte) []byte {
	b = appendHeader(b, prHeader, &w.hdr)
	if kv := w.resp.PrevKv; kv != nil {
		b = appendCommandKV(b, prPrevKV, kv)
	}
	return b
}

// storeKV views a command.KeyValue as the store's, whose encoding
// watchwire.go writes: the two share etcd's fields.
func storeKV(kv *command.KeyValue) mvcc.KeyValue {
	return mvcc.KeyValue{Key: kv.Key, Value: kv.Value, CreateRevision: kv.CreateRevision,
		ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
}

func commandKVSize(kv *command.KeyValue) int {
	s := storeKV(kv)
	return kvSize(&s)
}

// appendCommandKV appends kv as the KeyValue field n.
func appendCommandKV(b []byte, n protowire.Number, kv *command.KeyValue) []byte {
	s := storeKV(kv)
	b = protofield.AppendMessageHead(b, n, kvSize(&s))
	return appendKV(b, &s)
}

func (k *kvService) rangeWire(ctx context.Context, r *etcdserverpb.RangeRequest) (any, error) {
	resp, h, err := k.s.Range(ctx, rangeRequest(r))
	if err != nil {
		return nil, toGRPC(err)
	}
	return &wireRange{hdr: h, resp: resp}, nil
}

func (k *kvService) putWire(ctx context.Context, r *etcdserverpb.PutRequest) (any, error) {
	resp, h, err := k.s.Put(ctx, putRequest(r))
	if err != nil {
		return nil, toGRPC(err)
	}
	return &wirePut{hdr: h, resp: resp}, nil
}

// kvServiceDesc is etcd's KV service with Range and Put served by
// rangeWire and putWire. The generated handlers call methods that must
// return etcd's response types; these are the same handlers otherwise
// (decode, then the interceptor with the method's name, then the call).
func kvServiceDesc() *grpc.ServiceDesc {
	d := etcdserverpb.KV_ServiceDesc
	d.Methods = slices.Clone(d.Methods)
	for i := range d.Methods {
		switch d.Methods[i].MethodName {
		case "Range":
			d.Methods[i].Handler = wireHandler(etcdserverpb.KV_Range_FullMethodName, (*kvService).rangeWire)
		case "Put":
			d.Methods[i].Handler = wireHandler(etcdserverpb.KV_Put_FullMethodName, (*kvService).putWire)
		}
	}
	return &d
}

func wireHandler[Req any](method string, serve func(*kvService, context.Context, *Req) (any, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		req := new(Req)
		if err := dec(req); err != nil {
			return nil, err
		}
		k := srv.(*kvService)
		if icpt == nil {
			return serve(k, ctx, req)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
		return icpt(ctx, req, info, func(ctx context.Context, r any) (any, error) {
			return serve(k, ctx, r.(*Req))
		})
	}
}
