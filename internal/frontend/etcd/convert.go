package etcd

import (
	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concord-db/concord/internal/command"
)

// Direct conversions for the hottest requests, Range and Put (their
// responses are encoded by hand, kvwire.go). recode goes through the wire
// format: a copy of every key and value, and a marshalling by reflection.
// These copy the fields and share the byte slices, which neither side
// modifies. TestConvertMatchesRecode keeps them equal to recode, and
// TestWireCompatible keeps the field sets equal.

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
