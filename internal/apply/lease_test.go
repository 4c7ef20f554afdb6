package apply

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/lease"
	"github.com/concord-db/concord/internal/mvcc"
)

func (h *harness) grant(id, ttl int64) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_LeaseGrant{LeaseGrant: &command.LeaseGrantRequest{Id: id, Ttl: ttl}}})
}

func (h *harness) revoke(id int64) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_LeaseRevoke{LeaseRevoke: &command.LeaseRevokeRequest{Id: id}}})
}

func (h *harness) checkpoint(cps ...*command.LeaseCheckpoint) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_LeaseCheckpoint{LeaseCheckpoint: &command.LeaseCheckpointRequest{Checkpoints: cps}}})
}

func (h *harness) putLease(key string, id int64) Result {
	h.t.Helper()
	return h.putReq(&command.PutRequest{Key: []byte(key), Value: []byte("v"), Lease: id})
}

// leaseKeys renders lease id's attached keys, or "none" if it does not exist.
func leaseKeys(a *Applier, id int64) string {
	l, ok := a.Lease(id, true)
	if !ok {
		return "none"
	}
	var ks []string
	for _, k := range l.Keys {
		ks = append(ks, string(k))
	}
	return "[" + strings.Join(ks, " ") + "]"
}

func TestLeaseErrorTexts(t *testing.T) {
	for _, tt := range []struct{ ours, etcds error }{
		{ErrLeaseExist, rpctypes.ErrGRPCLeaseExist},
		{ErrLeaseTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	} {
		if got, want := tt.ours.Error(), rpctypes.ErrorDesc(tt.etcds); got != want {
			t.Errorf("error text %q, want etcd's %q", got, want)
		}
	}
}

func TestLeaseGrant(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		id, ttl int64
		wantTTL int64
		err     error
	}{
		{7, 10, 10, nil},
		{7, 10, 0, ErrLeaseExist},
		{8, lease.MaxTTL + 1, 0, ErrLeaseTTLTooLarge},
		{8, lease.MaxTTL, lease.MaxTTL, nil},
		{0, 10, 0, ErrLeaseNotFound},
		{9, 0, 1, nil}, // a broken proposer's TTL: one second
	}
	for _, c := range cases {
		res := h.grant(c.id, c.ttl)
		if !errors.Is(res.Err, c.err) {
			t.Errorf("Grant(%d, %d) error = %v, want %v", c.id, c.ttl, res.Err, c.err)
			continue
		}
		if res.Rev != 1 || len(res.Events) != 0 {
			t.Errorf("Grant(%d, %d) moved the revision to %d or made events", c.id, c.ttl, res.Rev)
		}
		if c.err != nil {
			if res.Resp != nil || res.Leases != nil {
				t.Errorf("rejected Grant(%d, %d) = %v, %v", c.id, c.ttl, res.Resp, res.Leases)
			}
			continue
		}
		want := &command.LeaseGrantResponse{Id: c.id, Ttl: c.wantTTL}
		if !proto.Equal(res.Resp, want) {
			t.Errorf("Grant(%d, %d) = %v, want %v", c.id, c.ttl, res.Resp, want)
		}
		if !slices.Equal(res.Leases, []LeaseChange{{Kind: LeaseGranted, ID: c.id, TTL: c.wantTTL}}) {
			t.Errorf("Grant(%d, %d) changes = %v", c.id, c.ttl, res.Leases)
		}
	}
	if err := ValidateLeaseGrant(&command.LeaseGrantRequest{Ttl: lease.MaxTTL + 1}); !errors.Is(err, ErrLeaseTTLTooLarge) {
		t.Errorf("ValidateLeaseGrant(too large) = %v", err)
	}
	if ids := leaseIDs(h.a.Leases()); !slices.Equal(ids, []int64{7, 8, 9}) {
		t.Errorf("Leases() = %v, want [7 8 9]", ids)
	}
}

func leaseIDs(ls []lease.Lease) []int64 {
	var ids []int64
	for _, l := range ls {
		ids = append(ids, l.ID)
	}
	return ids
}

// TestLeaseKeyTracking: which writes attach a key to a lease and which
// detach it.
func TestLeaseKeyTracking(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 10)
	h.grant(2, 10)
	steps := []struct {
		name   string
		do     func() Result
		err    error
		l1, l2 string
	}{
		{"put with lease", func() Result { return h.putLease("a", 1) }, nil, "[a]", "[]"},
		{"second key", func() Result { return h.putLease("b", 1) }, nil, "[a b]", "[]"},
		{"move to lease 2", func() Result { return h.putLease("a", 2) }, nil, "[b]", "[a]"},
		{"ignore_lease keeps it", func() Result {
			return h.putReq(&command.PutRequest{Key: []byte("a"), Value: []byte("w"), IgnoreLease: true})
		}, nil, "[b]", "[a]"},
		{"unknown lease refused", func() Result { return h.putLease("a", 3) }, ErrLeaseNotFound, "[b]", "[a]"},
		{"put without lease detaches", func() Result { return h.put("a", "plain") }, nil, "[b]", "[]"},
		{"txn put attaches", func() Result {
			return h.txn(&command.TxnRequest{Success: []*command.RequestOp{opPutReq(&command.PutRequest{Key: []byte("c"), Lease: 2})}})
		}, nil, "[b]", "[c]"},
		{"delete detaches", func() Result { return h.del(&command.DeleteRangeRequest{Key: []byte("b")}) }, nil, "[]", "[c]"},
		{"txn delete range detaches", func() Result {
			return h.txn(&command.TxnRequest{Success: []*command.RequestOp{{Request: &command.RequestOp_RequestDeleteRange{
				RequestDeleteRange: &command.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}}}}})
		}, nil, "[]", "[]"},
	}
	for _, st := range steps {
		res := st.do()
		if !errors.Is(res.Err, st.err) {
			t.Fatalf("%s: error %v, want %v", st.name, res.Err, st.err)
		}
		if got1, got2 := leaseKeys(h.a, 1), leaseKeys(h.a, 2); got1 != st.l1 || got2 != st.l2 {
			t.Errorf("%s: lease 1 keys %s, lease 2 keys %s; want %s, %s", st.name, got1, got2, st.l1, st.l2)
		}
	}
}

func TestLeaseRevoke(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 10)
	h.grant(2, 10)
	h.putLease("c", 1)
	h.putLease("a", 1)
	h.putLease("other", 2)
	h.putLease("b", 1)
	h.put("plain", "x")
	before := h.a.Store().Rev() // 6

	res := h.revoke(1)
	if res.Err != nil || !proto.Equal(res.Resp, &command.LeaseRevokeResponse{}) {
		t.Fatalf("Revoke(1) = %v, %v", res.Resp, res.Err)
	}
	if res.Rev != before+1 {
		t.Errorf("Revoke(1) revision %d, want one revision: %d", res.Rev, before+1)
	}
	var got []string
	for _, ev := range res.Events {
		if ev.Type != mvcc.EventDelete || ev.KV.ModRevision != res.Rev || ev.PrevKV == nil || ev.PrevKV.Lease != 1 {
			t.Errorf("revoke event %+v: want a DELETE at %d of a key of lease 1", ev, res.Rev)
		}
		got = append(got, string(ev.KV.Key))
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("revoke deleted %q, want [a b c] in key order", got)
	}
	if !slices.Equal(res.Leases, []LeaseChange{{Kind: LeaseRevoked, ID: 1}}) {
		t.Errorf("Revoke(1) changes = %v", res.Leases)
	}
	r, _, _ := h.a.Range(&command.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if got := kvs(r.GetKvs()); got != "other=v@4/4/1 plain=x@6/6/1" {
		t.Errorf("after Revoke(1) the store holds %q", got)
	}
	if leaseKeys(h.a, 1) != "none" {
		t.Errorf("lease 1 still exists")
	}
	// Unknown lease: a rejection, no revision.
	if res := h.revoke(1); !errors.Is(res.Err, ErrLeaseNotFound) || res.Rev != before+1 {
		t.Errorf("Revoke(1) again = %v at rev %d, want ErrLeaseNotFound at %d", res.Err, res.Rev, before+1)
	}
	// A lease without keys: revoked without a revision.
	h.grant(3, 5)
	if res := h.revoke(3); res.Err != nil || res.Rev != before+1 || len(res.Events) != 0 {
		t.Errorf("Revoke(3 without keys) = %v at rev %d with %d events", res.Err, res.Rev, len(res.Events))
	}
	// A put with the revoked lease is refused.
	if res := h.putLease("a", 1); !errors.Is(res.Err, ErrLeaseNotFound) {
		t.Errorf("put with revoked lease = %v, want ErrLeaseNotFound", res.Err)
	}
}

func TestLeaseCheckpoint(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 10)
	h.grant(2, 20)
	res := h.checkpoint(
		&command.LeaseCheckpoint{Id: 1, RemainingTtlMs: 4200},
		&command.LeaseCheckpoint{Id: 9, RemainingTtlMs: 100}, // unknown: skipped
		&command.LeaseCheckpoint{Id: 2, RemainingTtlMs: 15000},
	)
	want := []LeaseChange{
		{Kind: LeaseCheckpointed, ID: 1, TTL: 10, RemainingMs: 4200},
		{Kind: LeaseCheckpointed, ID: 2, TTL: 20, RemainingMs: 15000},
	}
	if res.Err != nil || res.Rev != 1 || !slices.Equal(res.Leases, want) {
		t.Errorf("Checkpoint = %v at rev %d, changes %v; want %v", res.Err, res.Rev, res.Leases, want)
	}
	if l, _ := h.a.Lease(1, false); l.RemainingMs != 4200 || l.TTL != 10 {
		t.Errorf("Lease(1) = %+v", l)
	}
}

func TestLeaseSnapshot(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 10)
	h.grant(2, 20)
	h.putLease("a", 1)
	h.putLease("b", 2)
	h.checkpoint(&command.LeaseCheckpoint{Id: 2, RemainingTtlMs: 1234})
	snap, err := h.a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := New(nil)
	if err := r.Restore(snap); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	if got, want := r.Leases(), h.a.Leases(); !slices.Equal(leaseIDs(got), leaseIDs(want)) || got[1].RemainingMs != 1234 {
		t.Errorf("restored Leases() = %+v, want %+v", got, want)
	}
	if leaseKeys(r, 1) != "[a]" || leaseKeys(r, 2) != "[b]" {
		t.Errorf("restored keys: %s, %s", leaseKeys(r, 1), leaseKeys(r, 2))
	}
	// The restored table is live: revoking deletes the key.
	r2 := &harness{t: t, a: r, index: r.AppliedIndex(), id: 100}
	if res := r2.revoke(1); res.Err != nil || len(res.Events) != 1 {
		t.Errorf("revoke after restore = %v with %d events", res.Err, len(res.Events))
	}
}

// v1Snapshot turns a current snapshot of a state without leases into the
// version 1 format: everything between the member table and the mvcc data
// (the lease table and whatever later versions added) goes.
func v1Snapshot(t *testing.T, a *Applier, cur []byte) []byte {
	t.Helper()
	var store bytes.Buffer
	if _, err := a.Store().WriteTo(&store); err != nil {
		t.Fatal(err)
	}
	body := cur[:len(cur)-4]
	n := binary.BigEndian.Uint32(body[20:24])
	off := 24
	for range n {
		off += 4 + int(binary.BigEndian.Uint32(body[off:]))
	}
	v1 := append(bytes.Clone(body[:off]), body[len(body)-store.Len():]...)
	binary.BigEndian.PutUint32(v1[8:12], snapVersionV1)
	return binary.BigEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
}

func TestRestoreVersions(t *testing.T) {
	h := rangeFixture(t)
	cur, _ := h.a.Snapshot()
	r := New(nil)
	if err := r.Restore(v1Snapshot(t, h.a, cur)); err != nil {
		t.Fatalf("Restore(version 1) = %v", err)
	}
	if again, _ := r.Snapshot(); !bytes.Equal(again, cur) {
		t.Errorf("state restored from a version 1 snapshot differs from the original")
	}
	next := bytes.Clone(cur[:len(cur)-4])
	binary.BigEndian.PutUint32(next[8:12], snapVersion+1)
	next = binary.BigEndian.AppendUint32(next, crc32.Checksum(next, castagnoli))
	if err := r.Restore(next); err == nil || !strings.Contains(err.Error(), "unsupported snapshot format version") {
		t.Errorf("Restore(version %d) = %v", snapVersion+1, err)
	}
}
