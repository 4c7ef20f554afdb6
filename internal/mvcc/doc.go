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
// The index is a github.com/google/btree BTreeG of keyIndex values (no pointer
// per key): the key bytes and a slice of versions ordered by mod_revision. A
// version is a flat struct (four int64 and the value slice); there is no
// pointer per version. Version slices are append-only except for the entry
// written by the current transaction, and compaction always builds new slices,
// which keeps the door open for copy-on-write snapshots via BTreeG.Clone.
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
// # What it must never do
//
// mvcc never reads a clock, random numbers or configuration, and never depends
// on map iteration order: given the same sequence of calls, two stores hold the
// same state, hash and serialization. It imports no protobuf, gRPC, net/http
// or front-end package.
package mvcc
