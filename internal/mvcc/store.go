package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"sync"
	"unsafe"

	"github.com/tidwall/btree"
)

// Errors returned by reads at a revision and by Compact. The text matches
// etcd's mvcc errors (the etcd front-end adds its "etcdserver: " prefix).
var (
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
)

// KeyValue is one version of a key as seen by a reader.
type KeyValue struct {
	Key, Value     []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
}

// EventType says what a write did to a key.
type EventType int

// Event types.
const (
	EventPut EventType = iota
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return "UNKNOWN"
}

// Event is one change made by a write transaction. For EventDelete only
// KV.Key and KV.ModRevision (the delete revision) are set. PrevKV is the
// version the change replaced, nil if the key did not exist.
type Event struct {
	Type   EventType
	KV     KeyValue
	PrevKV *KeyValue
}

// RangeOptions tune a Range.
type RangeOptions struct {
	// Limit caps the number of KVs returned; <= 0 means no limit.
	Limit int64
	// Rev is the revision to read at; <= 0 means the current revision.
	Rev int64
	// CountOnly returns only Count, no KVs.
	CountOnly bool
}

// RangeResult is the answer to a Range.
type RangeResult struct {
	// KVs are ascending by key.
	KVs []KeyValue
	// Rev is the current revision of the store (or of the write transaction),
	// not the revision read at.
	Rev int64
	// Count is the number of keys in the range at the read revision, ignoring
	// Limit.
	Count int
}

// version is one retained version of a key. ver == 0 marks a tombstone.
// sub is the version's position among the writes of its revision (etcd's
// sub-revision): history reads order the events of one revision by it, so
// they come out in the order the transaction wrote them.
//
// The value is held as its array pointer and a 32-bit length rather than a
// slice: that makes a version 48 bytes, where a slice header made it 64 (see
// "Memory layout" in the package doc). value rebuilds the slice.
type version struct {
	val    *byte // the value's first byte; nil for an empty value
	mod    int64
	create int64
	ver    int64
	lease  int64
	valLen uint32
	sub    int32
}

func (v *version) tombstone() bool { return v.ver == 0 }

// value returns the version's value, aliasing the stored bytes.
func (v *version) value() []byte { return unsafe.Slice(v.val, v.valLen) }

// setValue makes b the version's value; the store keeps b.
func (v *version) setValue(b []byte) { v.val, v.valLen = dataOf(b), len32(b) }

// keyIndex is one B-tree item: a key and its retained versions, ascending by
// mod revision. It is stored by value so the tree holds no pointer per key,
// and as array pointers with 32-bit lengths (and the versions' capacity)
// rather than two slices, so an item is 32 bytes where two slice headers made
// it 48: the tree's nodes hold an item per key, filled half to fully. key and
// versions rebuild the slices.
//
// head holds the key's first four bytes in the struct's padding, so most
// comparisons in a search never read the key itself (see lessKeyIndex).
type keyIndex struct {
	keyPtr *byte    // nil for an empty key
	vsPtr  *version // nil when there are no versions
	keyLen uint32
	vsLen  uint32
	vsCap  uint32
	head   uint32 // keyHead(key)
}

// indexItem returns the item for key with versions vs; the store keeps both.
func indexItem(key []byte, vs []version) keyIndex {
	ki := probe(key)
	ki.setVersions(vs)
	return ki
}

// probe is the item that finds key in the tree: the key, no versions.
func probe(key []byte) keyIndex {
	return keyIndex{keyPtr: dataOf(key), keyLen: len32(key), head: keyHead(key)}
}

// keyHead is key's first four bytes as a big-endian number, zero-padded
// when the key is shorter. Keys whose heads differ are ordered as their
// heads are: at the first byte where the padded heads differ, either both
// keys have that byte, and it orders them, or the one that has ended is a
// prefix of the other and is the smaller (its padding is 0, the other's
// byte is not). Keys with equal heads are compared in full.
func keyHead(key []byte) uint32 {
	if len(key) >= 4 {
		return binary.BigEndian.Uint32(key)
	}
	var h uint32
	for i, c := range key {
		h |= uint32(c) << (24 - 8*i)
	}
	return h
}

// key returns the item's key, aliasing the stored bytes.
func (ki *keyIndex) key() []byte { return unsafe.Slice(ki.keyPtr, ki.keyLen) }

// versions returns the item's versions with the capacity they were given, so
// an append may fill it in place (see Store.appendable).
func (ki *keyIndex) versions() []version { return unsafe.Slice(ki.vsPtr, ki.vsCap)[:ki.vsLen] }

// newest returns the item's newest version; it must have one.
func (ki *keyIndex) newest() *version { return &ki.versions()[ki.vsLen-1] }

func (ki *keyIndex) setVersions(vs []version) {
	if cap(vs) == 0 {
		ki.vsPtr, ki.vsLen, ki.vsCap = nil, 0, 0
		return
	}
	if cap(vs) > math.MaxUint32 {
		panic("mvcc: 4Gi versions of one key")
	}
	ki.vsPtr, ki.vsLen, ki.vsCap = unsafe.SliceData(vs), uint32(len(vs)), uint32(cap(vs))
}

// dataOf returns b's array pointer, nil for an empty b, so that an empty key
// or value keeps no array alive.
func dataOf(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return unsafe.SliceData(b)
}

// len32 returns len(b), which must fit 32 bits: keys and values come from
// requests bounded far below that (and snapshot entries by maxSnapBytes).
func len32(b []byte) uint32 {
	if len(b) > math.MaxUint32 {
		panic("mvcc: a key or value of 4 GiB or more")
	}
	return uint32(len(b))
}

// lessKeyIndex orders items by key. The heads decide most comparisons
// without a read of either key, whose bytes live elsewhere in the heap: in a
// large tree nearly every comparison of a search read a cold cache line
// (bytes.Compare was 15% of a follower's CPU under random puts over 100,000
// keys, bench/STEPS.md step 23).
func lessKeyIndex(a, b keyIndex) bool {
	if a.head != b.head {
		return a.head < b.head
	}
	return bytes.Compare(a.key(), b.key()) < 0
}

// visibleAt returns the index of the newest version with mod <= rev, or -1.
func (ki *keyIndex) visibleAt(rev int64) int {
	vs := ki.versions()
	n := len(vs)
	if n == 0 {
		return -1
	}
	if vs[n-1].mod <= rev { // the common case: reading the latest
		return n - 1
	}
	// First index whose mod > rev, minus one.
	return sort.Search(n, func(i int) bool { return vs[i].mod > rev }) - 1
}

func (ki *keyIndex) kv(i int) KeyValue {
	v := &ki.versions()[i]
	return KeyValue{
		Key:            ki.key(),
		Value:          v.value(),
		CreateRevision: v.create,
		ModRevision:    v.mod,
		Version:        v.ver,
		Lease:          v.lease,
	}
}

// btreeDegree trades node size against depth: nodes hold up to 63 items, so
// a million keys sit four levels deep, and a positional lookup (GetAt) scans
// at most 64 subtree counts per level.
const btreeDegree = 32

// Store is the revisioned key-value store. See the package doc for the
// concurrency contract. The zero value is not usable; use NewStore.
type Store struct {
	mu sync.RWMutex
	// tree holds every key with retained versions, live or not.
	tree *btree.BTreeG[keyIndex]
	// tombs holds exactly the keys of tree whose newest version is a
	// tombstone. With tree's subtree counts it gives the number of live keys
	// in any range at the current revision without visiting them.
	tombs      *btree.BTreeG[[]byte]
	rev        int64
	compactRev int64
	size       int64 // see Size
	// clipAppends makes writes copy a key's version slice instead of
	// appending into its spare capacity. A store made by Clone sets it: its
	// slices share arrays with the original, which does append in place, and
	// two stores appending into one array would overwrite each other.
	clipAppends bool
}

// Per-entry overheads counted by Size: an index item and a version struct.
const (
	keyOverhead     = int64(unsafe.Sizeof(keyIndex{}))
	versionOverhead = int64(unsafe.Sizeof(version{}))
)

func versionSize(v *version) int64 { return int64(v.valLen) + versionOverhead }

func keySize(ki *keyIndex) int64 {
	n := int64(len(ki.key())) + keyOverhead
	vs := ki.versions()
	for i := range vs {
		n += versionSize(&vs[i])
	}
	return n
}

// Size returns the approximate number of bytes the store holds: keys, values
// (every retained version) and a fixed overhead per key and per version. It is
// Concord's analogue of etcd's backend size: it grows with writes and shrinks
// only with compaction.
func (s *Store) Size() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.size
}

// NewStore returns an empty store at revision 1.
func NewStore() *Store {
	return &Store{tree: newTree(), tombs: newTombTree(), rev: 1}
}

// The trees take no locks of their own: s.mu guards them.
func newTree() *btree.BTreeG[keyIndex] {
	return btree.NewBTreeGOptions(lessKeyIndex, btree.Options{NoLocks: true, Degree: btreeDegree})
}

func newTombTree() *btree.BTreeG[[]byte] {
	return btree.NewBTreeGOptions(func(a, b []byte) bool { return bytes.Compare(a, b) < 0 },
		btree.Options{NoLocks: true, Degree: btreeDegree})
}

// rank returns the number of items in t less than k: a binary search over
// positions, O(log² n) because each GetAt walks the subtree counts.
func rank[T any](t *btree.BTreeG[T], k T) int {
	lo, hi := 0, t.Len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if it, _ := t.GetAt(m); t.Less(it, k) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// countRange returns the number of items of t in [key, end) under the end
// conventions of Range, for a multi-key end (not a single key).
func countRange[T any](t *btree.BTreeG[T], key, end T, fromKey bool) int {
	if t.Len() == 0 {
		return 0
	}
	if fromKey {
		return t.Len() - rank(t, key)
	}
	return rank(t, end) - rank(t, key)
}

// liveInRangeLocked returns the number of keys in [key, end) whose newest
// version is live, for a multi-key end. The caller holds s.mu.
func (s *Store) liveInRangeLocked(key, end []byte) int {
	fromKey := isFromKey(end)
	if !fromKey && bytes.Compare(key, end) >= 0 {
		return 0
	}
	return countRange(s.tree, probe(key), probe(end), fromKey) -
		countRange(s.tombs, key, end, fromKey)
}

// Rev returns the current revision.
func (s *Store) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// CompactRev returns the revision of the last compaction, 0 if never compacted.
func (s *Store) CompactRev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.compactRev
}

// Len returns the number of live keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Len() - s.tombs.Len()
}

// Range returns the keys in [key, end) at o.Rev, ascending by key. end == nil
// (or empty) selects the single key; end == "\x00" selects every key >= key.
// It may run concurrently with other Ranges and with a WriteTxn (it waits for
// the transaction to end). At the current revision Count comes from the
// counted index and the walk stops at Limit; at an older revision it walks
// the whole range (see "The counted index" in the package doc).
func (s *Store) Range(key, end []byte, o RangeOptions) (RangeResult, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rangeLocked(key, end, o, s.rev)
}

// isFromKey reports whether end selects every key >= the start key.
func isFromKey(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// ascendRangeLocked calls fn for every index item in [key, end) using the
// end conventions of Range, stopping when fn returns false.
func (s *Store) ascendRangeLocked(key, end []byte, fn func(keyIndex) bool) {
	switch {
	case len(end) == 0:
		if ki, ok := s.tree.Get(probe(key)); ok {
			fn(ki)
		}
	case isFromKey(end):
		s.tree.Ascend(probe(key), fn)
	default:
		if bytes.Compare(key, end) >= 0 {
			return
		}
		s.tree.Ascend(probe(key), func(ki keyIndex) bool {
			return bytes.Compare(ki.key(), end) < 0 && fn(ki)
		})
	}
}

// rangeLocked serves a Range with curRev as the current revision; the caller
// holds s.mu (read or write).
func (s *Store) rangeLocked(key, end []byte, o RangeOptions, curRev int64) (RangeResult, error) {
	rev := o.Rev
	if rev > curRev {
		return RangeResult{Rev: curRev}, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	if rev < s.compactRev {
		return RangeResult{Rev: curRev}, ErrCompacted
	}
	res := RangeResult{Rev: curRev}
	if len(end) == 0 {
		// A single key never needs the iterator closure.
		if ki, ok := s.tree.Get(probe(key)); ok {
			if i := ki.visibleAt(rev); i >= 0 && !ki.versions()[i].tombstone() {
				res.Count = 1
				if !o.CountOnly {
					res.KVs = []KeyValue{ki.kv(i)}
				}
			}
		}
		return res, nil
	}
	if rev == curRev {
		// At the current revision a key is live iff its newest version is,
		// which is what the counted trees know: Count costs O(log² n) and
		// the walk stops after the keys it returns (plus any tombstones
		// between them).
		res.Count = s.liveInRangeLocked(key, end)
		if o.CountOnly || res.Count == 0 {
			return res, nil
		}
		want := res.Count
		if o.Limit > 0 && o.Limit < int64(want) {
			want = int(o.Limit)
		}
		res.KVs = make([]KeyValue, 0, want)
		s.ascendRangeLocked(key, end, func(ki keyIndex) bool {
			n := int(ki.vsLen)
			if ki.newest().tombstone() {
				return true
			}
			res.KVs = append(res.KVs, ki.kv(n-1))
			return len(res.KVs) < want
		})
		return res, nil
	}
	// An older revision: whether a key was live then is not in the counts,
	// and etcd's Count is the total ignoring Limit, so the walk covers the
	// whole range; only the copying stops at Limit.
	s.ascendRangeLocked(key, end, func(ki keyIndex) bool {
		i := ki.visibleAt(rev)
		if i < 0 || ki.versions()[i].tombstone() {
			return true
		}
		res.Count++
		if !o.CountOnly && (o.Limit <= 0 || int64(len(res.KVs)) < o.Limit) {
			res.KVs = append(res.KVs, ki.kv(i))
		}
		return true
	})
	return res, nil
}

// ReadTxn is a consistent read view: every Range on it sees the same
// revision. It holds the store's read lock until End, so keep it short.
type ReadTxn struct {
	s     *Store
	ended bool
}

// Read opens a read view. The caller must call End.
func (s *Store) Read() *ReadTxn {
	s.mu.RLock()
	return &ReadTxn{s: s}
}

// Range is Store.Range inside the view.
func (r *ReadTxn) Range(key, end []byte, o RangeOptions) (RangeResult, error) {
	return r.s.rangeLocked(key, end, o, r.s.rev)
}

// Rev returns the revision of the view.
func (r *ReadTxn) Rev() int64 { return r.s.rev }

// CompactRev returns the compaction revision of the view.
func (r *ReadTxn) CompactRev() int64 { return r.s.compactRev }

// End releases the view. Calling it twice is a no-op.
func (r *ReadTxn) End() {
	if r.ended {
		return
	}
	r.ended = true
	r.s.mu.RUnlock()
}

// WriteTxn is the single write transaction. It holds the store's write lock
// from Write until End; its writes are visible to its own Range at once and to
// everyone else after End. All its writes share one revision.
type WriteTxn struct {
	s      *Store
	events []Event
	ended  bool
}

// Write opens the write transaction, waiting for readers and any other writer
// to finish. The caller must call End.
func (s *Store) Write() *WriteTxn {
	s.mu.Lock()
	return &WriteTxn{s: s}
}

// writeRev is the revision this transaction writes at.
func (w *WriteTxn) writeRev() int64 { return w.s.rev + 1 }

// Rev returns the revision the transaction's reads see: the store revision + 1
// once it has written, the store revision before.
func (w *WriteTxn) Rev() int64 {
	if len(w.events) > 0 {
		return w.s.rev + 1
	}
	return w.s.rev
}

// CompactRev returns the store's compaction revision.
func (w *WriteTxn) CompactRev() int64 { return w.s.compactRev }

// Range is Store.Range inside the transaction; it sees the transaction's own
// writes.
func (w *WriteTxn) Range(key, end []byte, o RangeOptions) (RangeResult, error) {
	return w.s.rangeLocked(key, end, o, w.Rev())
}

// Put writes key=value with lease at the transaction's revision and returns
// the version it replaced (nil if the key did not exist). The store retains
// key and value; the caller must not modify them afterwards.
func (w *WriteTxn) Put(key, value []byte, lease int64) (prev *KeyValue) {
	s, rev := w.s, w.writeRev()
	var hint btree.PathHint // the Set below lands where the Get looked
	ki, ok := s.tree.GetHint(probe(key), &hint)
	nv := version{mod: rev, create: rev, ver: 1, lease: lease, sub: int32(len(w.events))}
	nv.setValue(value)
	if ok {
		vs := ki.versions()
		n := len(vs)
		last := &vs[n-1]
		if !last.tombstone() {
			p := ki.kv(n - 1)
			prev = &p
			nv.create, nv.ver = last.create, last.ver+1
		} else {
			s.tombs.Delete(ki.key())
		}
		s.pushVersion(&ki, nv)
	} else {
		ki = indexItem(key, []version{nv})
		s.size += keySize(&ki)
	}
	s.tree.SetHint(ki, &hint)
	w.events = append(w.events, Event{Type: EventPut, KV: ki.kv(int(ki.vsLen) - 1), PrevKV: prev})
	return prev
}

// DeleteRange deletes the live keys in [key, end) (end conventions as in
// Range) at the transaction's revision and returns their previous versions,
// ascending by key. Deleting nothing writes nothing.
func (w *WriteTxn) DeleteRange(key, end []byte) (deleted []KeyValue) {
	s, rev := w.s, w.writeRev()
	// The hints make each Set below start where the previous one ended:
	// the keys come in order, usually from one leaf.
	var hint, tombHint btree.PathHint
	var hit []keyIndex
	if len(end) == 0 {
		if ki, ok := s.tree.GetHint(probe(key), &hint); ok && !ki.newest().tombstone() {
			hit = []keyIndex{ki}
		}
	} else {
		s.ascendRangeLocked(key, end, func(ki keyIndex) bool {
			if !ki.newest().tombstone() {
				hit = append(hit, ki)
			}
			return true
		})
	}
	if len(hit) == 0 {
		return nil
	}
	deleted = make([]KeyValue, len(hit))
	for i, ki := range hit {
		deleted[i] = ki.kv(int(ki.vsLen) - 1)
		s.pushVersion(&ki, version{mod: rev, sub: int32(len(w.events))})
		s.tree.SetHint(ki, &hint)
		s.tombs.SetHint(ki.key(), &tombHint)
		w.events = append(w.events, Event{
			Type:   EventDelete,
			KV:     KeyValue{Key: ki.key(), ModRevision: rev},
			PrevKV: &deleted[i],
		})
	}
	return deleted
}

// pushVersion makes v the newest of ki's versions, which must not be empty,
// and counts it in the store's size. A newest version at v's revision was
// written earlier in this transaction: nobody outside it has seen that
// entry, so v replaces it rather than keep two versions at one revision. A
// fresh slice keeps the "never mutate in place" rule for anything a clone
// might share.
func (s *Store) pushVersion(ki *keyIndex, v version) {
	vs := ki.versions()
	n := len(vs)
	if vs[n-1].mod == v.mod {
		s.size += versionSize(&v) - versionSize(&vs[n-1])
		fresh := make([]version, n)
		copy(fresh, vs)
		fresh[n-1] = v
		ki.setVersions(fresh)
		return
	}
	ki.setVersions(append(s.appendable(vs), v))
	s.size += versionSize(&v)
}

// appendable returns vs ready for an append: vs itself, or with its capacity
// clipped (so append copies) when the store shares arrays with another.
func (s *Store) appendable(vs []version) []version {
	if s.clipAppends {
		return vs[:len(vs):len(vs)]
	}
	return vs
}

// End commits the transaction: the store revision grows by one iff anything
// was written. It releases the write lock and returns the events in write
// order. Calling it twice is a no-op returning nil.
func (w *WriteTxn) End() []Event {
	if w.ended {
		return nil
	}
	w.ended = true
	if len(w.events) > 0 {
		w.s.rev++
	}
	w.s.mu.Unlock()
	return w.events
}

// Compact drops history below rev: per key, every version older than its
// newest version at or below rev, and that version too if it is a tombstone
// older than rev. A tombstone written exactly at rev is kept (etcd's fix for
// #18089), so a watch from the compaction revision still sees that delete.
// It does not change the revision. rev <= CompactRev fails with ErrCompacted,
// rev > Rev with ErrFutureRev. It holds the write lock for one pass over the
// index.
func (s *Store) Compact(rev int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev <= s.compactRev {
		return ErrCompacted
	}
	if rev > s.rev {
		return ErrFutureRev
	}
	// The tree must not change while it is being iterated, so collect first.
	var changed, gone []keyIndex
	s.tree.Scan(func(ki keyIndex) bool {
		i := ki.visibleAt(rev)
		if i < 0 {
			return true // nothing at or below rev
		}
		vs := ki.versions()
		dropFirst := vs[i].tombstone() && vs[i].mod < rev
		if i == 0 && !dropFirst {
			return true // nothing at or below rev is droppable
		}
		keep := vs[i:]
		if dropFirst {
			keep = keep[1:]
		}
		if len(keep) == 0 { // only a tombstone was left: the key is in tombs
			gone = append(gone, ki)
			s.size -= keySize(&ki)
			return true
		}
		for j := range vs[:len(vs)-len(keep)] {
			s.size -= versionSize(&vs[j])
		}
		// A fresh, exact-size slice lets the old array be collected.
		ki.setVersions(append([]version(nil), keep...))
		changed = append(changed, ki)
		return true
	})
	// Both lists are in key order, so each hint leads the next operation
	// straight to the right leaf.
	var hint, tombHint btree.PathHint
	for _, ki := range changed {
		s.tree.SetHint(ki, &hint)
	}
	for _, ki := range gone {
		s.tree.DeleteHint(ki, &hint)
		s.tombs.DeleteHint(ki.key(), &tombHint)
	}
	s.compactRev = rev
	return nil
}

// Clone returns a copy of the store in O(1): the copy shares both trees with
// s, and each side copies a node only when it first writes to it
// (tidwall/btree's copy-on-write Copy). The copy and s may be used
// concurrently from different goroutines; the copy is meant to be read
// (WriteTo, Hash, Range) while s goes on taking writes, which is how a
// snapshot is written in the background. Version slices are shared too,
// which is safe because the store never modifies a version another reader
// can see (see Memory layout); writes to the copy copy a slice before
// appending to it, so even a written copy leaves s intact.
func (s *Store) Clone() *Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Store{
		tree:        s.tree.Copy(),
		tombs:       s.tombs.Copy(),
		rev:         s.rev,
		compactRev:  s.compactRev,
		size:        s.size,
		clipAppends: true,
	}
}
