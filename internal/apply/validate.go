package apply

import (
	"slices"
	"sort"

	"github.com/concord-db/concord/internal/command"
)

// The Validate functions are pure checks the server runs before proposing,
// mirroring etcd's v3rpc request checks so clients get the same errors.

// ValidateRange checks a RangeRequest.
func ValidateRange(r *command.RangeRequest) error {
	if len(r.GetKey()) == 0 {
		return ErrEmptyKey
	}
	if _, ok := command.RangeRequest_SortOrder_name[int32(r.GetSortOrder())]; !ok {
		return ErrInvalidSortOption
	}
	if _, ok := command.RangeRequest_SortTarget_name[int32(r.GetSortTarget())]; !ok {
		return ErrInvalidSortOption
	}
	return nil
}

// ValidatePut checks a PutRequest.
func ValidatePut(r *command.PutRequest) error {
	if len(r.GetKey()) == 0 {
		return ErrEmptyKey
	}
	if r.GetIgnoreValue() && len(r.GetValue()) != 0 {
		return ErrValueProvided
	}
	if r.GetIgnoreLease() && r.GetLease() != 0 {
		return ErrLeaseProvided
	}
	return nil
}

// ValidateDeleteRange checks a DeleteRangeRequest.
func ValidateDeleteRange(r *command.DeleteRangeRequest) error {
	if len(r.GetKey()) == 0 {
		return ErrEmptyKey
	}
	return nil
}

// ValidateTxn checks a TxnRequest: op counts, compare keys and every op
// (recursively), then duplicate writes. As in etcd, a nested txn's op budget
// is maxTxnOps minus its parent's op count, and the size checks run before the
// duplicate-key walk so an oversized request cannot make that walk expensive.
func ValidateTxn(r *command.TxnRequest, maxTxnOps int) error {
	if err := validateTxnOps(r, maxTxnOps); err != nil {
		return err
	}
	return checkDuplicates(r)
}

func validateTxnOps(r *command.TxnRequest, maxTxnOps int) error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if opc > maxTxnOps {
		return ErrTooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return ErrEmptyKey
		}
	}
	for _, ops := range [][]*command.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if err := validateOp(op, maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateOp(op *command.RequestOp, maxTxnOps int) error {
	switch {
	case op.GetRequestRange() != nil:
		return ValidateRange(op.GetRequestRange())
	case op.GetRequestPut() != nil:
		return ValidatePut(op.GetRequestPut())
	case op.GetRequestDeleteRange() != nil:
		return ValidateDeleteRange(op.GetRequestDeleteRange())
	case op.GetRequestTxn() != nil:
		return validateTxnOps(op.GetRequestTxn(), maxTxnOps)
	}
	// etcd answers an empty op with "key not found".
	return ErrKeyNotFound
}

// checkDuplicates rejects a txn that writes one key twice on a path that can
// execute: two puts of one key, or a put of a key inside a range deleted on
// the same path (either order, at any nesting depth). A then-branch and an
// else-branch of one nested txn are exclusive, so they may put the same key.
func checkDuplicates(r *command.TxnRequest) error {
	if _, _, err := writeSets(r.GetSuccess()); err != nil {
		return err
	}
	_, _, err := writeSets(r.GetFailure())
	return err
}

// writeSets returns the keys put and the ranges deleted by ops, including
// nested txns (either branch), or ErrDuplicateKey. The checks mirror etcd's
// checkIntervals: this level's deletes are gathered first; each nested txn's
// puts are checked against earlier nested puts and the deletes gathered so far
// before its own deletes join; this level's puts are checked last against
// everything.
func writeSets(ops []*command.RequestOp) (puts map[string]struct{}, dels *intervals, err error) {
	dels = &intervals{}
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil {
			dels.add(d.GetKey(), d.GetRangeEnd())
		}
	}
	puts = make(map[string]struct{})
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := writeSets(t.GetSuccess())
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := writeSets(t.GetFailure())
		if err != nil {
			return nil, nil, err
		}
		// A key an earlier sibling put must not be deleted by this one
		// (etcd allows it): mvcc keeps one version per key and revision, so
		// the delete would replace the put and the revision's history would
		// no longer match the events watchers were sent.
		for k := range puts {
			if delsThen.contains(k) || delsElse.contains(k) {
				return nil, nil, ErrDuplicateKey
			}
		}
		// Sorted iteration keeps the walk independent of map order.
		for _, k := range sortedKeys(putsThen) {
			if _, dup := puts[k]; dup || dels.contains(k) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for _, k := range sortedKeys(putsElse) {
			if _, dup := puts[k]; dup {
				if _, sameTxn := putsThen[k]; !sameTxn {
					return nil, nil, ErrDuplicateKey
				}
			}
			if dels.contains(k) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels.union(delsThen)
		dels.union(delsElse)
	}
	for _, op := range ops {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.GetKey())
		if _, dup := puts[k]; dup || dels.contains(k) {
			return nil, nil, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}

func sortedKeys(m map[string]struct{}) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// interval is the key range [begin, end); toEnd means unbounded above.
type interval struct {
	begin, end string
	toEnd      bool
}

// intervals is a set of key ranges answering point queries in O(log n) after
// it has been normalized into sorted, disjoint ranges.
type intervals struct {
	ivs        []interval
	normalized bool
}

// add inserts the range a delete request covers, using etcd's key/range_end
// conventions: no end = one key, "\x00" = every key >= begin.
func (s *intervals) add(key, end []byte) {
	var iv interval
	switch {
	case len(end) == 0:
		// The smallest key greater than key is key+"\x00".
		iv = interval{begin: string(key), end: string(key) + "\x00"}
	case len(end) == 1 && end[0] == 0:
		iv = interval{begin: string(key), toEnd: true}
	default:
		if string(end) <= string(key) {
			return // empty
		}
		iv = interval{begin: string(key), end: string(end)}
	}
	s.ivs = append(s.ivs, iv)
	s.normalized = false
}

func (s *intervals) union(o *intervals) {
	if len(o.ivs) == 0 {
		return
	}
	s.ivs = append(s.ivs, o.ivs...)
	s.normalized = false
}

func (s *intervals) normalize() {
	if s.normalized {
		return
	}
	s.normalized = true
	slices.SortFunc(s.ivs, func(a, b interval) int {
		switch {
		case a.begin < b.begin:
			return -1
		case a.begin > b.begin:
			return 1
		}
		return 0
	})
	out := s.ivs[:0]
	for _, iv := range s.ivs {
		if n := len(out); n > 0 && (out[n-1].toEnd || iv.begin <= out[n-1].end) {
			last := &out[n-1]
			if iv.toEnd {
				last.toEnd = true
			} else if !last.toEnd && iv.end > last.end {
				last.end = iv.end
			}
			continue
		}
		out = append(out, iv)
	}
	s.ivs = out
}

func (s *intervals) contains(k string) bool {
	if len(s.ivs) == 0 {
		return false
	}
	s.normalize()
	// The last range beginning at or before k is the only candidate.
	i := sort.Search(len(s.ivs), func(i int) bool { return s.ivs[i].begin > k }) - 1
	if i < 0 {
		return false
	}
	return s.ivs[i].toEnd || k < s.ivs[i].end
}
