package apply

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/mvcc"
)

// LeaseLookup is the seam the lease table fills: apply asks it whether a
// lease a put names (or keeps via ignore_lease) exists. Exists runs on the
// apply goroutine and must be deterministic: it may consult only replicated
// state. New installs noLeases; the lease table, being replicated state the
// Applier will own (and snapshot), replaces it there.
type LeaseLookup interface {
	Exists(id int64) bool
}

// noLeases is the lease table until leases exist: nothing is granted.
type noLeases struct{}

func (noLeases) Exists(int64) bool { return false }

// view is what ranges and compares read from: a write transaction (which sees
// its own writes) or a read view.
type view interface {
	Range(key, end []byte, o mvcc.RangeOptions) (mvcc.RangeResult, error)
	Rev() int64
	CompactRev() int64
}

// rangeEnd turns a request's range_end into mvcc's convention. They agree
// already (empty = one key, "\x00" = from key); this keeps a nil for "one key"
// whatever protobuf decoded.
func rangeEnd(end []byte) []byte {
	if len(end) == 0 {
		return nil
	}
	return end
}

// defaultOrder reports whether results come out in mvcc's native order (key
// ascending), so limit can be pushed down into the store.
func defaultOrder(target command.RangeRequest_SortTarget, order command.RangeRequest_SortOrder) bool {
	return order == command.RangeRequest_NONE ||
		(target == command.RangeRequest_KEY && order == command.RangeRequest_ASCEND)
}

func hasRevisionFilters(r *command.RangeRequest) bool {
	return r.GetMinModRevision() != 0 || r.GetMaxModRevision() != 0 ||
		r.GetMinCreateRevision() != 0 || r.GetMaxCreateRevision() != 0
}

// execRange runs a RangeRequest with etcd's semantics: count ignores limit and
// the min/max filters; sorting happens before the limit is applied; a NONE
// order with a non-key target sorts ascending (over the first limit+1 keys,
// as etcd does, since the limit is pushed down for NONE).
func execRange(v view, r *command.RangeRequest) (*command.RangeResponse, error) {
	limit := r.GetLimit()
	if !defaultOrder(r.GetSortTarget(), r.GetSortOrder()) || hasRevisionFilters(r) {
		limit = 0
	}
	if limit > 0 && limit < math.MaxInt64 {
		limit++ // one extra to learn whether there is more
	}
	rr, err := v.Range(r.GetKey(), rangeEnd(r.GetRangeEnd()), mvcc.RangeOptions{
		Limit:     limit,
		Rev:       r.GetRevision(),
		CountOnly: r.GetCountOnly(),
	})
	if err != nil {
		return nil, err
	}
	kvs := filterKVs(rr.KVs, r)
	sortKVs(kvs, r)
	resp := &command.RangeResponse{Count: int64(rr.Count)}
	if r.GetLimit() > 0 && int64(len(kvs)) > r.GetLimit() {
		kvs = kvs[:r.GetLimit()]
		resp.More = true
	}
	resp.Kvs = toProtoKVs(kvs, r.GetKeysOnly())
	return resp, nil
}

func filterKVs(kvs []mvcc.KeyValue, r *command.RangeRequest) []mvcc.KeyValue {
	if !hasRevisionFilters(r) {
		return kvs
	}
	minMod, maxMod := r.GetMinModRevision(), r.GetMaxModRevision()
	minCreate, maxCreate := r.GetMinCreateRevision(), r.GetMaxCreateRevision()
	return slices.DeleteFunc(kvs, func(kv mvcc.KeyValue) bool {
		return (maxMod != 0 && kv.ModRevision > maxMod) ||
			(minMod != 0 && kv.ModRevision < minMod) ||
			(maxCreate != 0 && kv.CreateRevision > maxCreate) ||
			(minCreate != 0 && kv.CreateRevision < minCreate)
	})
}

func sortKVs(kvs []mvcc.KeyValue, r *command.RangeRequest) {
	target, order := r.GetSortTarget(), r.GetSortOrder()
	if target != command.RangeRequest_KEY && order == command.RangeRequest_NONE {
		order = command.RangeRequest_ASCEND
	}
	if defaultOrder(target, order) {
		return
	}
	var by func(a, b *mvcc.KeyValue) int
	switch target {
	case command.RangeRequest_KEY:
		if order == command.RangeRequest_DESCEND {
			slices.Reverse(kvs)
		}
		return
	case command.RangeRequest_VERSION:
		by = func(a, b *mvcc.KeyValue) int { return cmp.Compare(a.Version, b.Version) }
	case command.RangeRequest_CREATE:
		by = func(a, b *mvcc.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) }
	case command.RangeRequest_MOD:
		by = func(a, b *mvcc.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) }
	case command.RangeRequest_VALUE:
		by = func(a, b *mvcc.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		return // rejected by ValidateRange; never reorder on garbage
	}
	if order != command.RangeRequest_ASCEND && order != command.RangeRequest_DESCEND {
		return
	}
	// The input is key-ascending and the sort is stable, so ties stay in key
	// order; DESCEND is the exact reverse of ASCEND.
	slices.SortStableFunc(kvs, func(a, b mvcc.KeyValue) int { return by(&a, &b) })
	if order == command.RangeRequest_DESCEND {
		slices.Reverse(kvs)
	}
}

// toProtoKVs converts without a heap object per KeyValue: one backing array
// holds them all. The byte slices alias the store's and must not be mutated.
func toProtoKVs(kvs []mvcc.KeyValue, keysOnly bool) []*command.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	backing := make([]command.KeyValue, len(kvs))
	out := make([]*command.KeyValue, len(kvs))
	for i := range kvs {
		p := &backing[i]
		setProtoKV(p, &kvs[i])
		if keysOnly {
			p.Value = nil
		}
		out[i] = p
	}
	return out
}

func setProtoKV(p *command.KeyValue, kv *mvcc.KeyValue) {
	p.Key = kv.Key
	p.Value = kv.Value
	p.CreateRevision = kv.CreateRevision
	p.ModRevision = kv.ModRevision
	p.Version = kv.Version
	p.Lease = kv.Lease
}

func protoKV(kv *mvcc.KeyValue) *command.KeyValue {
	p := &command.KeyValue{}
	setProtoKV(p, kv)
	return p
}

// current returns the live version of key in v, if any.
func current(v view, key []byte) (*mvcc.KeyValue, error) {
	rr, err := v.Range(key, nil, mvcc.RangeOptions{})
	if err != nil || len(rr.KVs) == 0 {
		return nil, err
	}
	return &rr.KVs[0], nil
}

// checkPut is the pre-write check of a put: ignore_value/ignore_lease need
// the key, and the lease the put ends up with must exist.
func (a *Applier) checkPut(v view, p *command.PutRequest) error {
	lease := p.GetLease()
	if p.GetIgnoreValue() || p.GetIgnoreLease() {
		prev, err := current(v, p.GetKey())
		if err != nil {
			return err
		}
		if prev == nil {
			return ErrKeyNotFound
		}
		if p.GetIgnoreLease() {
			lease = prev.Lease
		}
	}
	if lease != 0 && !a.leases.Exists(lease) {
		return ErrLeaseNotFound
	}
	return nil
}

// execPut performs a put that checkPut accepted against the same state.
func execPut(w *mvcc.WriteTxn, p *command.PutRequest) (*command.PutResponse, error) {
	value, lease := p.GetValue(), p.GetLease()
	var prev *mvcc.KeyValue
	if p.GetIgnoreValue() || p.GetIgnoreLease() || p.GetPrevKv() {
		var err error
		if prev, err = current(w, p.GetKey()); err != nil {
			return nil, err
		}
	}
	if p.GetIgnoreValue() || p.GetIgnoreLease() {
		if prev == nil {
			// checkPut saw the key; only an undetected duplicate write in
			// the same txn could remove it in between.
			return nil, fmt.Errorf("apply: ignore_value/ignore_lease put of %q: key vanished mid-txn", p.GetKey())
		}
		if p.GetIgnoreValue() {
			value = prev.Value
		}
		if p.GetIgnoreLease() {
			lease = prev.Lease
		}
	}
	resp := &command.PutResponse{}
	if p.GetPrevKv() && prev != nil {
		resp.PrevKv = protoKV(prev)
	}
	w.Put(p.GetKey(), value, lease)
	return resp, nil
}

func execDeleteRange(w *mvcc.WriteTxn, d *command.DeleteRangeRequest) *command.DeleteRangeResponse {
	deleted := w.DeleteRange(d.GetKey(), rangeEnd(d.GetRangeEnd()))
	resp := &command.DeleteRangeResponse{Deleted: int64(len(deleted))}
	if d.GetPrevKv() {
		resp.PrevKvs = toProtoKVs(deleted, false)
	}
	return resp
}

// compareToPath evaluates, against the state before the txn runs, the compares
// of the txn and of every nested txn on the chosen branches, in pre-order.
// Like etcd, nested compares never see the txn's own earlier writes.
func compareToPath(v view, t *command.TxnRequest) []bool {
	ok := applyCompares(v, t.GetCompare())
	path := []bool{ok}
	for _, op := range branch(t, ok) {
		if nt := op.GetRequestTxn(); nt != nil {
			path = append(path, compareToPath(v, nt)...)
		}
	}
	return path
}

func branch(t *command.TxnRequest, succeeded bool) []*command.RequestOp {
	if succeeded {
		return t.GetSuccess()
	}
	return t.GetFailure()
}

func applyCompares(v view, cs []*command.Compare) bool {
	for _, c := range cs {
		if !applyCompare(v, c) {
			return false
		}
	}
	return true
}

// applyCompare: with a range every key in it must match; a missing key (or an
// empty range) compares as zero version/create/mod/lease, while a VALUE
// compare on it is false.
func applyCompare(v view, c *command.Compare) bool {
	rr, err := v.Range(c.GetKey(), rangeEnd(c.GetRangeEnd()), mvcc.RangeOptions{})
	if err != nil {
		return false
	}
	if len(rr.KVs) == 0 {
		if c.GetTarget() == command.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvcc.KeyValue{})
	}
	for i := range rr.KVs {
		if !compareKV(c, &rr.KVs[i]) {
			return false
		}
	}
	return true
}

// compareKV follows etcd: the getters return 0/nil when target_union holds a
// different member than target names; an unknown target compares equal, an
// unknown result is true.
func compareKV(c *command.Compare, kv *mvcc.KeyValue) bool {
	var result int
	switch c.GetTarget() {
	case command.Compare_VALUE:
		result = bytes.Compare(kv.Value, c.GetValue())
	case command.Compare_CREATE:
		result = cmp.Compare(kv.CreateRevision, c.GetCreateRevision())
	case command.Compare_MOD:
		result = cmp.Compare(kv.ModRevision, c.GetModRevision())
	case command.Compare_VERSION:
		result = cmp.Compare(kv.Version, c.GetVersion())
	case command.Compare_LEASE:
		result = cmp.Compare(kv.Lease, c.GetLease())
	}
	switch c.GetResult() {
	case command.Compare_EQUAL:
		return result == 0
	case command.Compare_NOT_EQUAL:
		return result != 0
	case command.Compare_GREATER:
		return result > 0
	case command.Compare_LESS:
		return result < 0
	}
	return true
}

// checkTxn runs the pre-write checks of every op on the chosen path against
// the state before the txn: historical range revisions and puts. It returns
// how many path entries (nested txns) it consumed.
func (a *Applier) checkTxn(v view, t *command.TxnRequest, path []bool) (int, error) {
	used := 0
	for _, op := range branch(t, path[0]) {
		switch {
		case op.GetRequestRange() != nil:
			if err := checkRangeRev(v, op.GetRequestRange()); err != nil {
				return 0, err
			}
		case op.GetRequestPut() != nil:
			if err := a.checkPut(v, op.GetRequestPut()); err != nil {
				return 0, err
			}
		case op.GetRequestTxn() != nil:
			n, err := a.checkTxn(v, op.GetRequestTxn(), path[1+used:])
			if err != nil {
				return 0, err
			}
			used += n + 1
		}
	}
	return used, nil
}

// checkRangeRev mirrors etcd's txn range check, where a never-compacted store
// has first revision -1 (so -1 passes and means "latest" while -2 is
// "compacted").
func checkRangeRev(v view, r *command.RangeRequest) error {
	first := v.CompactRev()
	if first == 0 {
		first = -1
	}
	switch rev := r.GetRevision(); {
	case rev == 0:
		return nil
	case rev > v.Rev():
		return mvcc.ErrFutureRev
	case rev < first:
		return mvcc.ErrCompacted
	}
	return nil
}

// execTxn executes the chosen path. w is nil for a read-only execution, in
// which case a write on the path is ErrNotReadOnly. Errors other than that
// are invariant failures: checkTxn and the duplicate-key check ran first.
func execTxn(v view, w *mvcc.WriteTxn, t *command.TxnRequest, path []bool) (*command.TxnResponse, int, error) {
	ops := branch(t, path[0])
	resp := &command.TxnResponse{Succeeded: path[0], Responses: make([]*command.ResponseOp, len(ops))}
	used := 0
	for i, op := range ops {
		out := &command.ResponseOp{}
		resp.Responses[i] = out
		switch {
		case op.GetRequestRange() != nil:
			r, err := execRange(v, op.GetRequestRange())
			if err != nil {
				return nil, 0, fmt.Errorf("apply: txn range: %w", err)
			}
			out.Response = &command.ResponseOp_ResponseRange{ResponseRange: r}
		case op.GetRequestPut() != nil:
			if w == nil {
				return nil, 0, ErrNotReadOnly
			}
			r, err := execPut(w, op.GetRequestPut())
			if err != nil {
				return nil, 0, err
			}
			out.Response = &command.ResponseOp_ResponsePut{ResponsePut: r}
		case op.GetRequestDeleteRange() != nil:
			if w == nil {
				return nil, 0, ErrNotReadOnly
			}
			out.Response = &command.ResponseOp_ResponseDeleteRange{
				ResponseDeleteRange: execDeleteRange(w, op.GetRequestDeleteRange()),
			}
		case op.GetRequestTxn() != nil:
			r, n, err := execTxn(v, w, op.GetRequestTxn(), path[1+used:])
			if err != nil {
				return nil, 0, err
			}
			used += n + 1
			out.Response = &command.ResponseOp_ResponseTxn{ResponseTxn: r}
		}
		// An empty op (rejected by ValidateTxn) gets an empty response.
	}
	return resp, used, nil
}

// pathWrites reports whether the chosen path contains a put or delete.
func pathWrites(t *command.TxnRequest, path []bool) (writes bool, used int) {
	for _, op := range branch(t, path[0]) {
		switch {
		case op.GetRequestPut() != nil, op.GetRequestDeleteRange() != nil:
			writes = true
		case op.GetRequestTxn() != nil:
			w, n := pathWrites(op.GetRequestTxn(), path[1+used:])
			writes = writes || w
			used += n + 1
		}
	}
	return writes, used
}

// IsReadOnlyTxn reports whether every op on both branches is a range (a
// nested txn counts as a write, as in etcd), so the txn may be served as a
// read without going through raft.
func IsReadOnlyTxn(r *command.TxnRequest) bool {
	for _, ops := range [][]*command.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if op.GetRequestRange() == nil {
				return false
			}
		}
	}
	return true
}
