// Package server is the domain API every front-end calls: Range, Put,
// DeleteRange, Txn, Compact, member and status queries. It wires the pieces
// below it — raftnode, apply, wal, snap, transport — into one member.
//
// Writes: a request becomes one command.Command with a request id; the server
// registers a waiter under that id, proposes the encoded command through the
// raft node and returns the result that apply produced when the entry was
// committed and applied. A write is therefore answered only after it is
// durable on a quorum and applied here.
//
// Reads: linearizable reads ask the raft node for a read index (batched: one
// ReadIndex round serves every read waiting at that moment), wait until this
// member has applied that index, then read the local store. Serializable reads
// read the local store at once.
//
// Leases (lease.go): grants and revokes are proposals like writes; renewals
// and TTL queries are answered by the leader only (others return a
// *NotLeaderError naming the leader's client URLs, for the front-end to
// forward); expiry is decided by the leader's injected Clock and carried out
// as a revoke only after a ReadIndex round confirms its leadership, and
// remaining TTLs are checkpointed through raft so a leader change neither
// resets nor cuts them.
//
// On disk, a member's data directory holds member/wal (package wal) and
// member/snap (package snap). The WAL's metadata records the member and
// cluster ids, so a restart needs no flags to know who it is.
//
// Maintenance (maintenance.go): the space quota is checked before proposing
// (crossing it raises the replicated NOSPACE alarm); alarms, defragmentation,
// operator snapshots (snapfile.go) and restoring a data dir from one
// (restore.go); the leader's auto-compaction; the counters behind Metrics. A
// maintenance goroutine, owned by the Server and stopped by Stop, counts
// leader changes, re-raises NOSPACE while over quota and runs compactions.
//
// Fault injection: with Config.FaultInjection the server owns a
// faults.Plane (Faults), answers its questions about members and the leader,
// and hands it to the transport as the Interceptor of every outbound raft
// message. Without it the transport has no interceptor at all.
//
// The server never imports a front-end, gRPC, net/http or a protocol's wire
// types; front-ends translate their protocol to this package's calls and map
// its errors (and apply's and mvcc's) to their own codes.
//
// Concurrency: every exported method is safe for concurrent use. The raft
// node's goroutine calls the state machine (apply) and triggers waiters; the
// waiter registry has its own mutex and is never held while calling out.
package server
