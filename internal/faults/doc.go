// Package faults is Concord's fault plane: the rules that drop, delay,
// duplicate or partition raft messages between members on purpose, and
// that pause a member's raft loop, skew its lease clock or fail its disk;
// and the decision, per outbound message or disk operation, of what those
// rules do to it. The same Spec (JSON) is what the admin HTTP API accepts,
// what `concord fault` sends and what a schedule or the simulator can
// build.
//
// # Rules
//
// A Spec names one kind of fault:
//
//   - drop: lose matching messages, each with Probability (default 1), or
//     only the Next N of them (then the rule retires itself).
//   - delay: hold matching messages for Delay ± Jitter (uniform); jitter
//     reorders messages of one link, a fixed delay keeps their order.
//   - duplicate: deliver matching messages twice, with Probability.
//   - partition: Groups of members; every link between two different
//     groups is cut both ways, except links touching a Bridge member. One
//     group alone means "these members against all the others". Members
//     named in no group (with two groups or more) keep all their links.
//   - isolate-leader: a partition of the current leader against the rest,
//     resolved to the leader's id when installed (it does not follow later
//     elections) and stored as that partition.
//
// Member rules (member.go) name one Member and act only on it:
//
//   - pause: freeze the member's raft loop (no ticks, steps, proposals or
//     applies; its transport keeps queueing what arrives) for Duration, or
//     until removed. Plane.Paused answers the loop (package server wires it
//     as the raftnode.Pauser); Plane.Changes wakes it when rules change, so
//     a heal resumes it at once.
//   - clock: the member's lease clock reads real time plus Offset plus
//     (Drift-1) × the time since install. Only differences between readings
//     matter to leases, so an Offset is a jump at install (a lease granted
//     before a +2s jump on the leader expires 2s early) and removal jumps
//     back; Drift accumulates. Raft ticks stay real. Plane.ClockSkew.
//   - disk: Mode "slow" makes each fsync wait Delay first, "fail" makes
//     fsync return an error, "enospc" makes writes fail with ENOSPC; Next
//     and Probability work as for messages, counting operations.
//     Plane.Disk returns a DiskVerdict; the filesystem wrapper in package
//     server sleeps and fails (errors wrap ErrDiskFault, and ENOSPC also
//     syscall.ENOSPC). The WAL treats any failure as fatal: the member
//     stops loudly, having acknowledged nothing that was not synced.
//
// A kill (Plane.Kill) names one Member and crashes its process at once,
// as kill -9 would: it is one-shot, never installed nor listed, only
// logged. The Plane only resolves it; package server's hook makes the
// named member exit with KillExitStatus (137, what a shell reports for
// kill -9), without a graceful shutdown. A process cannot restart itself:
// the operator, concord dev (which restarts a member that exited 137) or
// concord check does it.
//
// drop, delay and duplicate are scoped by a Link: "n1->n2" (one way),
// "n1<->n2" (both ways), with "*" for any member ("*->n3": everything sent
// to n3). Every kind may be narrowed to raft message types (Types:
// "MsgVote", "MsgApp", "MsgHeartbeatResp", ... or without the "Msg"
// prefix, any case); types that never leave a member (MsgHup, MsgBeat,
// MsgStorageAppend, ...) are refused. Members are named by name, by
// hexadecimal id, or as "leader" (resolved at install time).
//
// A rule has an id (given, or "f1", "f2", ... chosen by the Plane), an
// optional Duration after which it expires, and a human Description
// (generated when not given). Every install, removal, heal, expiry and
// exhaustion is logged. Rules live in memory: a restarted member has none.
//
// # Decisions
//
// Plane.Decide(from, to, type, now, rand) returns a Verdict: Drop, an added
// Delay, and extra Copies. Rules are consulted in install order; the first
// drop or partition that fires ends the decision; delays add up; each
// duplicate that fires adds one copy. The clock and the random source are
// arguments, so the decision is reproducible from a seed (the table tests
// rely on it; a simulator can too). The only state it touches is each
// rule's "next N" budget and its count of messages acted on.
//
// Expiry takes effect exactly at the deadline (Decide ignores an expired
// rule); the rule is removed and the removal logged by the first Decide,
// List, Install or Remove after it.
//
// Every member is meant to hold the same rules and to judge only the
// messages it sends (from = itself): the transport calls Plane.Intercept
// for each outbound message. A one-way cut n1->n2 is thus enforced by n1
// alone, and a partition by both sides.
//
// # Concurrency
//
// Plane is safe for concurrent use. Decide, Intercept, Paused, ClockSkew,
// Disk and DiskIntercept read an immutable rule set through one atomic
// pointer, so with no rule installed each costs one atomic load. Plane.mu
// guards the rule list (and the Changes channel, closed and replaced at
// every publish) and is never held while calling the Cluster;
// Plane.randMu guards the live random source. Lock order: randMu before
// mu.
//
// # What it must never do
//
// faults never blocks a caller on the network or sleeps, starts a
// goroutine or a timer: delaying is the transport's job (its Verdict says
// how long), a slow fsync the filesystem wrapper's, and ending a pause the
// raft loop's (Paused says until when). It imports no gRPC, net/http,
// etcd API or client package, nor a front-end; the HTTP API lives in
// package admin.
package faults
