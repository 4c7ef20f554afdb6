// Package apply is Concord's deterministic state machine. It decodes committed
// raft entries ([command.Command] envelopes and conf changes), applies them to
// the mvcc store and the member table, and returns each command's result for
// the proposer waiting on its id. It also serves local (non-replicated) reads,
// validates requests before they are proposed, and snapshots and restores the
// whole state.
//
// # Determinism contract
//
// Every member applies the same entries in the same order and must reach
// byte-identical state (see TestDeterminism). Therefore nothing on the apply
// path may read a clock, a random source, the environment, local configuration
// (limits such as max-txn-ops are checked by ValidateTxn before proposing,
// never at apply), or depend on map iteration order, goroutine scheduling or
// pointer values. Time that ends up in state is stamped into the command by the
// proposer (Command.stamp).
//
// # Rejection is not failure
//
// A command that etcd would refuse at apply time (a missing key for
// ignore_value, an unknown lease, a compacted revision, a duplicate key in a
// txn) yields a Result whose Err is a sentinel below: it is an answer for the
// client, identical on every member. Apply returns a non-nil error only for an
// entry it cannot apply at all (undecodable bytes, an unknown envelope version
// or op, an out-of-order index): the node must stop, because skipping the entry
// would let its state diverge.
//
// # Differences from etcd worth knowing
//
//   - A Txn is re-checked for duplicate keys at apply time as well as by
//     ValidateTxn, and a delete with range_end "\x00" counts as covering every
//     key from its start (etcd's interval check misses that case and can then
//     panic mid-txn on an ignore_value put). This keeps a txn's writes
//     all-or-nothing without undo.
//   - Inside one txn, a key put by a nested txn and deleted by a later
//     sibling nested txn is a duplicate key (etcd accepts it). The store keeps
//     one version per key per revision, so the put would vanish from history
//     while live watchers saw it.
//   - Results sorted on a non-key target break ties by key (ascending for
//     ASCEND, descending for DESCEND); etcd leaves tie order unspecified.
//
// # Leases
//
// The Applier owns the replicated lease table (package lease) and applies
// LeaseGrant (the proposer picked the id and raised the TTL to the minimum;
// an existing id is ErrLeaseExist, a TTL over lease.MaxTTL
// ErrLeaseTTLTooLarge), LeaseRevoke (deletes the lease's keys in one
// revision, ascending by key, one DELETE event each; unknown is
// ErrLeaseNotFound) and LeaseCheckpoint (records remaining TTLs; unknown
// leases are skipped). Expiry is not decided here: it arrives as a
// LeaseRevoke like any other. After every command the table's key sets follow
// the store from the command's events: a put with a lease attaches the key
// (detaching it from its previous lease), a put without one or a delete
// detaches it, ignore_lease keeps it. Result.Leases tells the server's expiry
// tracker what changed. A put naming a lease that does not exist is
// ErrLeaseNotFound, as in etcd. The table is part of the snapshot (format
// version 2 onwards).
//
// # Alarms
//
// The alarm table (alarm.go; etcd's NOSPACE and CORRUPT per member) is
// replicated state, in the snapshot since format version 3. Before any
// command, Apply asks Admit: under NOSPACE a command that grows the store
// (QuotaCost > 0: puts, txns with a put, lease grants) is refused with
// ErrNoSpace; under CORRUPT every keyspace and lease command is refused with
// ErrCorrupt. Both are ordinary deterministic rejections. The quota itself
// (a local setting) is checked only by the proposer, never here.
//
// # Watch events
//
// mvcc returns each write transaction's events from WriteTxn.End; apply
// returns them in Result.Events (all at Result.Rev, in write order). The
// caller feeds the watch hub from there, in apply order, without ever
// blocking Apply.
//
// # Concurrency
//
// Apply, ApplyConfChange, Snapshot and Restore serialize on one mutex; call
// Apply and ApplyConfChange from one goroutine (the raft apply loop) in log
// order. Range, ReadTxn, Hash, AppliedIndex and Members may run from any
// goroutine at any time; reads see either all or none of an applied command.
// Lock order: Applier.mu, then the member-table lock, then the mvcc store's
// lock.
//
// # What it must never do
//
// apply imports no gRPC, net/http, etcd wire types or front-end; it depends
// only on internal/command, internal/mvcc, internal/lease, raftpb and
// protobuf.
package apply
