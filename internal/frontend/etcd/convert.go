package etcd

import (
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/concord-db/concord/internal/command"
)

// Direct conversions for the hottest calls, Range and Put. recode goes
// through the wire format: a 100-key range response was marshalled,
// unmarshalled (a copy of every key and value) and then marshalled again by
// gRPC, 14% of a member's CPU under `range --limit 100`. These copy the
// fields and share the byte slices, which neither side modifies (the store's
// values are immutable; gRPC only reads a response). TestConvertMatchesRecode
// keeps them equal to recode, and TestWireCompatible keeps the field sets
// equal.

func rangeRequest(r *etcdserverpb.RangeRequest) *command.RangeRequest {
	return &command.RangeRequest{
		Key:               r.Key,
		RangeEnd:          r.RangeEnd,
		Limit:             r.Limit,
		Revision:          r.Revision,
		SortOrder:         command.RangeRequest_SortOrder(r.SortOrder),
		SortTarget:        command.RangeRequest_SortTarget(r.SortTarget),
		Serializable:      r.Serializable,
		KeysOnly:          r.KeysOnly,
		CountOnly:         r.CountOnly,
		MinModRevision:    r.MinModRevision,
		MaxModRevision:    r.MaxModRevision,
		MinCreateRevision: r.MinCreateRevision,
		MaxCreateRevision: r.MaxCreateRevision,
	}
}

func rangeResponse(r *command.RangeResponse) *etcdserverpb.RangeResponse {
	out := &etcdserverpb.RangeResponse{More: r.More, Count: r.Count}
	if len(r.Kvs) > 0 {
		// One allocation for all the KeyValues.
		kvs := make([]mvccpb.KeyValue, len(r.Kvs))
		out.Kvs = make([]*mvccpb.KeyValue, len(r.Kvs))
		for i, kv := range r.Kvs {
			setKeyValue(&kvs[i], kv)
			out.Kvs[i] = &kvs[i]
		}
	}
	return out
}

func putRequest(r *etcdserverpb.PutRequest) *command.PutRequest {
	return &command.PutRequest{
		Key:         r.Key,
		Value:       r.Value,
		Lease:       r.Lease,
		PrevKv:      r.PrevKv,
		IgnoreValue: r.IgnoreValue,
		IgnoreLease: r.IgnoreLease,
	}
}

func putResponse(r *command.PutResponse) *etcdserverpb.PutResponse {
	out := &etcdserverpb.PutResponse{}
	if r.PrevKv != nil {
		out.PrevKv = new(mvccpb.KeyValue)
		setKeyValue(out.PrevKv, r.PrevKv)
	}
	return out
}

func setKeyValue(dst *mvccpb.KeyValue, kv *command.KeyValue) {
	dst.Key = kv.Key
	dst.CreateRevision = kv.CreateRevision
	dst.ModRevision = kv.ModRevision
	dst.Version = kv.Version
	dst.Value = kv.Value
	dst.Lease = kv.Lease
}
