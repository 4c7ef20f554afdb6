package lease

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// MaxTTL is the longest TTL a lease may be granted, in seconds (etcd's
// MaxLeaseTTL).
const MaxTTL = 9_000_000_000

// NoLease is the id meaning "no lease".
const NoLease int64 = 0

// Errors of the table.
var (
	ErrExists      = errors.New("lease: lease already exists")
	ErrNotFound    = errors.New("lease: lease not found")
	ErrTTLTooLarge = errors.New("lease: too large lease TTL")
	ErrInvalidTTL  = errors.New("lease: TTL must be positive")
	ErrNoID        = errors.New("lease: lease id 0 is reserved")
	ErrCorrupt     = errors.New("lease: corrupt table encoding")
)

// Lease is a copy of one row of the table.
type Lease struct {
	ID int64
	// TTL is the granted TTL in seconds.
	TTL int64
	// RemainingMs is the remaining time of the latest checkpoint in
	// milliseconds; 0 means none (the lease counts from its full TTL).
	RemainingMs int64
	// Keys are the attached keys, ascending; filled only when asked for.
	Keys [][]byte
}

type entry struct {
	ttl         int64
	remainingMs int64
	keys        map[string]struct{}
}

// Table is the replicated lease table. The zero value is not usable; use
// NewTable. See the package doc for the concurrency contract.
type Table struct {
	mu     sync.RWMutex
	leases map[int64]*entry
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{leases: make(map[int64]*entry)} }

// Exists reports whether lease id is granted.
func (t *Table) Exists(id int64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.leases[id]
	return ok
}

// Len returns the number of leases.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.leases)
}

// CheckGrant reports whether Grant(id, ttl) would succeed, without changing
// anything.
func (t *Table) CheckGrant(id, ttl int64) error {
	switch {
	case id == NoLease:
		return ErrNoID
	case ttl > MaxTTL:
		return ErrTTLTooLarge
	case ttl <= 0:
		return ErrInvalidTTL
	}
	if t.Exists(id) {
		return ErrExists
	}
	return nil
}

// Grant adds lease id with ttl seconds and no keys.
func (t *Table) Grant(id, ttl int64) error {
	if err := t.CheckGrant(id, ttl); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leases[id] = &entry{ttl: ttl, keys: make(map[string]struct{})}
	return nil
}

// Revoke removes lease id and returns its keys, ascending. The caller
// deletes them from the store.
func (t *Table) Revoke(id int64) ([][]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.leases[id]
	if !ok {
		return nil, ErrNotFound
	}
	delete(t.leases, id)
	return sortedKeys(e.keys), nil
}

// Attach attaches key to lease id; false if the lease does not exist.
func (t *Table) Attach(id int64, key []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.leases[id]
	if ok {
		e.keys[string(key)] = struct{}{}
	}
	return ok
}

// Detach detaches key from lease id; a missing lease or key is a no-op.
func (t *Table) Detach(id int64, key []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.leases[id]; ok {
		delete(e.keys, string(key))
	}
}

// Checkpoint records remainingMs for lease id; false if it does not exist.
// A negative remainingMs is stored as 0 ("none"): a lease past its time
// counts from its full TTL rather than being expired by a checkpoint.
func (t *Table) Checkpoint(id, remainingMs int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.leases[id]
	if ok {
		e.remainingMs = max(remainingMs, 0)
	}
	return ok
}

// Get returns lease id, with its keys when withKeys.
func (t *Table) Get(id int64, withKeys bool) (Lease, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.leases[id]
	if !ok {
		return Lease{}, false
	}
	l := Lease{ID: id, TTL: e.ttl, RemainingMs: e.remainingMs}
	if withKeys {
		l.Keys = sortedKeys(e.keys)
	}
	return l, true
}

// List returns every lease (without keys), ascending by id.
func (t *Table) List() []Lease {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Lease, 0, len(t.leases))
	for id, e := range t.leases {
		out = append(out, Lease{ID: id, TTL: e.ttl, RemainingMs: e.remainingMs})
	}
	slices.SortFunc(out, func(a, b Lease) int { return cmpInt64(a.ID, b.ID) })
	return out
}

// Replace makes t hold exactly src's leases; src must not be used afterwards.
func (t *Table) Replace(src *Table) {
	src.mu.Lock()
	leases := src.leases
	src.leases = nil
	src.mu.Unlock()
	t.mu.Lock()
	t.leases = leases
	t.mu.Unlock()
}

func sortedKeys(m map[string]struct{}) [][]byte {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// AppendBinary appends the table in the format of the package doc. Equal
// tables give equal bytes.
func (t *Table) AppendBinary(b []byte) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ids := make([]int64, 0, len(t.leases))
	for id := range t.leases {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		e := t.leases[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint64(b, uint64(e.ttl))
		b = binary.BigEndian.AppendUint64(b, uint64(e.remainingMs))
		keys := sortedKeys(e.keys)
		b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
		for _, k := range keys {
			b = binary.BigEndian.AppendUint32(b, uint32(len(k)))
			b = append(b, k...)
		}
	}
	return b, nil
}

// DecodeTable reads a table written by AppendBinary from the start of b and
// returns it with the bytes that follow it. It checks every invariant the
// format promises (ordering, ranges, lengths).
func DecodeTable(b []byte) (*Table, []byte, error) {
	r := reader{b: b}
	n := r.u32()
	t := NewTable()
	var prev int64
	for i := uint32(0); i < n && r.err == nil; i++ {
		id, ttl, rem := int64(r.u64()), int64(r.u64()), int64(r.u64())
		k := r.u32()
		if r.err != nil {
			break
		}
		switch {
		case id == NoLease:
			return nil, nil, fmt.Errorf("%w: lease id 0", ErrCorrupt)
		case i > 0 && id <= prev:
			return nil, nil, fmt.Errorf("%w: lease ids out of order (%d after %d)", ErrCorrupt, id, prev)
		case ttl <= 0 || ttl > MaxTTL:
			return nil, nil, fmt.Errorf("%w: lease %d has TTL %d", ErrCorrupt, id, ttl)
		case rem < 0:
			return nil, nil, fmt.Errorf("%w: lease %d has remaining %d", ErrCorrupt, id, rem)
		case uint64(k)*4 > uint64(len(r.b)):
			return nil, nil, fmt.Errorf("%w: lease %d claims %d keys", ErrCorrupt, id, k)
		}
		prev = id
		e := &entry{ttl: ttl, remainingMs: rem, keys: make(map[string]struct{}, k)}
		var prevKey []byte
		for j := uint32(0); j < k; j++ {
			l := r.u32()
			key := r.bytes(l)
			if r.err != nil {
				break
			}
			if l == 0 || (j > 0 && bytes.Compare(key, prevKey) <= 0) {
				return nil, nil, fmt.Errorf("%w: lease %d: keys empty or out of order", ErrCorrupt, id)
			}
			prevKey = key
			e.keys[string(key)] = struct{}{}
		}
		t.leases[id] = e
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	return t, r.b, nil
}

// reader decodes big-endian fields and remembers the first truncation.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = fmt.Errorf("%w: truncated", ErrCorrupt)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *reader) bytes(n uint32) []byte { return r.take(uint64(n)) }
