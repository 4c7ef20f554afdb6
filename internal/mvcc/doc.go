// Package mvcc is Concord's in-memory, revisioned key-value store: the single
// revision clock, a B-tree key index holding every key's retained versions,
// historical ranges, compaction, a revision-consistent hash and a versioned
// serialization for raft snapshots.
//
// # Why hand-written
//
// etcd's own mvcc package lives in its server module (go.etcd.io/etcd/server),
// is bound to bbolt and its batching backend, and drags in the lessor, auth and
// metrics. Concord keeps the state machine in memory (the WAL plus snapshots are
// the durability), so a small store with the same revision semantics is both
// simpler and faster than adapting etcd's.
//
// # Revision semantics (etcd's)
//
// The store revision starts at 1; the first write gets revision 2. A write
// transaction bumps the revision by exactly one if it wrote anything and not at
// all otherwise. Every key carries create_revision, mod_revision and version
// (1 on create, +1 per put, reset after a delete). A delete leaves a tombstone
// version (Version 0) so historical reads stop seeing the key. A read at
// revision r sees each key's newest version with mod_revision <= r unless that
// version is a tombstone; r < CompactRev fails with ErrCompacted and r > Rev with
// ErrFutureRev.
//
// Compact(c) drops, per key, every version older than the newest one at or
// below c, and drops that one too if it is a tombstone older than c: reads at
// any revision >= c stay exact, and a tombstone written at c itself survives
// so that the history of revision c stays complete (see History below).
//
// # History
//
// Events (history.go) replays the changes of a revision window for a key
// range, the source watchers catch up from. Events of one revision come out in
// the order the transaction wrote them: each version records its position in
// its revision (the sub-revision), and snapshots carry it. The history of
// revision r is complete iff r >= CompactRev: the versions written at the
// compaction revision survive compaction (puts as the newest version at or
// below it, deletes as the tombstone kept at it). The value a change replaced
// (prev_kv) survives only for changes after the compaction revision; a change
// at exactly CompactRev whose previous value was compacted away makes a
// prev_kv history read fail with ErrCompacted instead of omitting it.
//
// # Memory layout
//
// The index is a github.com/tidwall/btree BTreeG of keyIndex values (no
// pointer per key): the key bytes and a slice of versions ordered by
// mod_revision. A version is a flat struct (four int64, an int32 and the
// value); there is no pointer per version. Version slices are append-only
// except for the entry written by the current transaction, and compaction
// and Defragment always build new slices, so a version a reader can see is
// never modified: that is what lets Clone share them.
//
// Both are kept small with package unsafe: an item holds its key and its
// versions, and a version its value, as an array pointer with a 32-bit
// length (and the versions' capacity) instead of a slice header, and
// rebuilds the slice on access (keyIndex.key, keyIndex.versions,
// version.value). An item is 32 bytes instead of 48, a version 48 instead of
// 64 (a string header for the value would make it 56 bytes, which Go's
// allocator rounds up to 64 for a one-version array). The pointers keep
// their arrays alive for the collector as slices do; an empty key or value
// is held as nil, keeping no array alive. Lengths fit 32 bits because
// requests and snapshot entries are bounded far below 4 GiB. The item's
// padding holds the key's first four bytes (keyIndex.head), which decide
// most comparisons in a search without reading the key from another cache
// line.
// Measured with 8-byte keys and 256-byte values loaded in key order
// (BenchmarkMemoryPerKey1M), the index costs about 116 heap bytes per key on
// top of the key and value bytes, where slice headers cost 159: 48 for the
// one-version array, the rest the 32-byte item in half-to-fully filled nodes
// (83 after Defragment, which rewrites the nodes with arrays of their size).
//
// # The counted index
//
// etcd's Count is the number of keys in the range ignoring Limit, so a naive
// store (and etcd itself) walks the whole range for a "--limit 100" or a
// "--count-only" read. Concord keeps counts instead: every tidwall node
// records the number of items in its subtree, so GetAt(i) costs O(log n) and
// the rank of a key (the number of items below it) is a binary search over
// positions, O(log² n). The items in [a, b) are rank(b) - rank(a).
//
// Not every item is a live key: a key whose newest version is a tombstone
// stays in the index until compaction removes it. A second counted tree,
// tombs, holds exactly those keys (a key enters it when deleted and leaves it
// when put again or when compaction drops it; it is usually small). The live
// keys in [a, b) at the current revision are the items of the index in that
// range minus the items of tombs in it. So a Range at the current revision
// (Store.Range, ReadTxn, and a WriteTxn reading at its own revision) answers
// CountOnly in O(log² n), and with a Limit stops after Limit live keys:
// O(log² n + limit + t) for t tombstones among the keys walked.
//
// What stays O(n) in the keys of the range: a Range at an older revision
// (whether a key was live then depends on its version history, which the
// counts do not summarize, so it walks the range and counts as it goes), a
// Range without Limit (it returns everything), DeleteRange, Events, Compact,
// Hash, WriteTo and Restore.
//
// # Why tidwall/btree
//
// github.com/google/btree keeps no subtree counts, so it cannot rank a key
// without walking. tidwall's BTreeG keeps them, and its Copy is an O(1)
// copy-on-write clone: each tree carries an id, nodes remember the id of the
// tree that made them, and a tree about to change a node with another id
// copies it first. Reads never copy, so a clone may be read on one goroutine
// while the original is written on another. Its own locking is switched off
// (Options.NoLocks): the Store's RWMutex already guards every use. Path hints
// make the Set after a Get, and the in-order Sets of a DeleteRange or a
// compaction, start where the previous operation ended.
//
// # Ownership of byte slices
//
// Put retains the key and value slices it is given: the caller must not modify
// them afterwards. Key and Value slices returned by Range, Put, DeleteRange and
// in Events alias the stored bytes: callers may keep them for as long as they
// like but must never modify them. The store itself never modifies a stored
// slice in place.
//
// # Concurrency
//
// A Store is guarded by one sync.RWMutex. Range, Read (a multi-range read view),
// Rev, CompactRev, Len, Size, Hash and WriteTo take the read lock and may run from
// any number of goroutines. Write returns a WriteTxn that holds the write lock
// until End, so readers never see a half-applied transaction and there is at
// most one writer; Compact and Restore take the write lock too, and
// Defragment takes it once per batch of keys. A goroutine
// holding a ReadTxn or WriteTxn must not call methods on the Store itself
// (the lock is not reentrant); use the transaction's own methods.
//
// Clone takes the write lock for O(1) and returns a Store with its own lock
// that shares the index copy-on-write; the two may then be used from
// different goroutines with no coordination. A clone's writes copy a version
// slice before appending to it, because the original appends in place into
// spare capacity that the clone's slices share.
//
// # What it must never do
//
// mvcc never reads a clock, random numbers or configuration, and never depends
// on map iteration order: given the same sequence of calls, two stores hold the
// same state, hash and serialization. It imports no protobuf, gRPC, net/http
// or front-end package.
package mvcc
