// Package lease holds Concord's leases: the replicated lease table and the
// expiry tracker (the "lessor") that decides when a lease has run out.
//
// # Table (replicated)
//
// Table maps a lease id to its granted TTL (whole seconds, as etcd grants
// them), the remaining time of its latest checkpoint (milliseconds; 0 = no
// checkpoint, i.e. the full TTL) and the keys attached to it. Package apply
// owns one Table, changes it only while applying committed commands, and
// serializes it into raft snapshots with AppendBinary / DecodeTable (format
// below). Everything about it is deterministic: no clock, no map order.
//
// Binary format (fixed-width integers big-endian), AppendBinary's output:
//
//	uint32  number of leases N
//	N times, ascending by id:
//	  int64   id (never 0)
//	  int64   granted TTL in seconds (1 ... MaxTTL)
//	  int64   remaining TTL of the latest checkpoint in ms (>= 0; 0 = none)
//	  uint32  number of attached keys K
//	  K times, ascending bytewise, no duplicates:
//	    uint32  key length L (>= 1)
//	    L bytes key
//
// # Lessor (not replicated)
//
// Lessor knows, on one member, when each lease expires by that member's own
// monotonic clock. It never reads a clock: every method that needs the time
// takes now. It is fed with what apply did (Granted, Checkpointed, Revoked,
// Reset after a snapshot) on every member, so that a follower always holds
// an estimate of each lease's expiry, and is driven by the leader: Promote,
// Renew, Expired, Checkpoints, Demote.
//
// Expiry rules, exactly:
//
//   - A grant applied at local time a sets expiry a+TTL.
//   - A checkpoint (remaining r) applied at local time a sets expiry a+r on
//     a member that is not primary: the checkpoint is the cluster's word. The
//     leader took r from its own expiry at time t <= a, so the estimate is
//     never earlier than the leader's expiry was (never shorter), and later
//     only by the commit-and-apply delay a-t. On the primary its own
//     checkpoints leave the expiry alone (its clock is the truth); one it did
//     not propose (a deposed leader's, forwarded by raft) can only extend.
//   - Promote (this member became leader and has applied its predecessor's
//     log) keeps each tracked estimate, and tracks an untracked lease from
//     its checkpoint (or its full TTL) starting now. Then it applies a grace:
//     expiry = max(estimate, now+Grace). The grace (one election timeout in
//     Concord) gives clients time to find the new leader; unlike etcd, which
//     extends every lease to its full TTL + election timeout on every leader
//     change, a lease with more than Grace left keeps exactly its estimate.
//   - Renew (primary only) sets expiry now+TTL, but refuses an expired lease:
//     its revocation is under way and must not be raced.
//
// A renewal moves the leader's expiry ahead of what followers know. Renew
// reports when that lead exceeds CheckpointSlack; the caller then puts the
// lease into the next checkpoint before acknowledging the renewal, so a
// leader change loses at most CheckpointSlack of an acknowledged renewal.
// Checkpoints also returns every lease not checkpointed for
// CheckpointInterval, which bounds how far a member that replayed old log
// entries after a restart (and so anchored them at replay time) can
// overestimate.
//
// # Concurrency
//
// Table is safe for concurrent use: one writer (the apply goroutine) and any
// number of readers; reads see each change whole. Lessor is not safe for
// concurrent use: its owner (package server) guards it with one mutex.
//
// # What it must never do
//
// lease never reads a clock, random numbers or configuration, and imports no
// gRPC, net/http, etcd wire type or other Concord package.
package lease
