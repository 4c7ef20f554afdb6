package etcd

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/server"
)

// kvService is etcd's KV service. Range and Put are rangeWire and putWire
// (kvwire.go), registered by kvServiceDesc in place of the embedded
// Unimplemented methods.
type kvService struct {
	etcdserverpb.UnimplementedKVServer
	s *server.Server
}

// recode moves a message between the etcd and command types, which share
// field numbers.
func recode(dst, src proto.Message) error {
	b, err := proto.Marshal(src)
	if err != nil {
		return err
	}
	return proto.Unmarshal(b, dst)
}

func (k *kvService) DeleteRange(ctx context.Context, r *etcdserverpb.DeleteRangeRequest) (*etcdserverpb.DeleteRangeResponse, error) {
	var req command.DeleteRangeRequest
	if err := recode(&req, r); err != nil {
		return nil, toGRPC(err)
	}
	resp, h, err := k.s.DeleteRange(ctx, &req)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &etcdserverpb.DeleteRangeResponse{}
	if err := recode(out, resp); err != nil {
		return nil, toGRPC(err)
	}
	out.Header = header(h)
	return out, nil
}

func (k *kvService) Txn(ctx context.Context, r *etcdserverpb.TxnRequest) (*etcdserverpb.TxnResponse, error) {
	var req command.TxnRequest
	if err := recode(&req, r); err != nil {
		return nil, toGRPC(err)
	}
	resp, h, err := k.s.Txn(ctx, &req)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &etcdserverpb.TxnResponse{}
	if err := recode(out, resp); err != nil {
		return nil, toGRPC(err)
	}
	out.Header = header(h)
	fillTxnHeaders(out, out.Header)
	return out, nil
}

// fillTxnHeaders gives every response inside a txn the txn's header, as etcd
// does (clients read revisions from nested range responses).
func fillTxnHeaders(t *etcdserverpb.TxnResponse, h *etcdserverpb.ResponseHeader) {
	for _, op := range t.Responses {
		switch r := op.Response.(type) {
		case *etcdserverpb.ResponseOp_ResponseRange:
			r.ResponseRange.Header = h
		case *etcdserverpb.ResponseOp_ResponsePut:
			r.ResponsePut.Header = h
		case *etcdserverpb.ResponseOp_ResponseDeleteRange:
			r.ResponseDeleteRange.Header = h
		case *etcdserverpb.ResponseOp_ResponseTxn:
			r.ResponseTxn.Header = h
			fillTxnHeaders(r.ResponseTxn, h)
		}
	}
}

func (k *kvService) Compact(ctx context.Context, r *etcdserverpb.CompactionRequest) (*etcdserverpb.CompactionResponse, error) {
	h, err := k.s.Compact(ctx, &command.CompactionRequest{Revision: r.Revision, Physical: r.Physical})
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.CompactionResponse{Header: header(h)}, nil
}
