// Package check records client histories and judges them: it is the part of
// Concord's fault testing that can say "this run broke a guarantee". The
// deterministic simulation (internal/sim) and the live `concord check` both
// feed it.
//
// # What it owns
//
//   - The history format: Op (one client operation on one key, with call
//     and return times and an honest Status — OK, Failed when the error
//     proves the operation never reached the log, Ambiguous when it may
//     have taken effect at any time after its call, or never) and Recorder,
//     which collects Ops from concurrent clients.
//   - Committed: the store's committed history (one Change per key per
//     revision) as read back from a member at the end of a run.
//   - The checkers, each returning a Report with a Verdict:
//   - Linearizable: porcupine (v1.3) over KVModel, a register per key with
//     put, get, compare-and-set and delete, partitioned by key. Indefinite
//     writes return at infinity (porcupine issue #8, etcd robustness); a
//     search cut short by the time budget is Unknown, never Valid.
//     Linearization.Visualize writes porcupine's HTML page.
//   - Reads: every answered read, serializable ones included, saw the
//     committed state at the revision it answered at (etcd's check for
//     stale reads); failed compare-and-sets and empty deletes found what
//     they claim.
//   - Durability: every acknowledged write is in the committed history at
//     its revision, with its value.
//   - Revisions: revisions never go backwards in real time, and a write
//     after a completed operation gets a new revision.
//   - AppliedOnce: no value was written twice (one request applied twice).
//   - Watch: a watch stream delivered exactly the committed changes to its
//     key, in revision order, without gaps or duplicates.
//   - Fencing: lock safety judged at a guarded resource. Lock holders write
//     their fencing token (FenceValue, ordered bytewise like the token) with
//     a transaction that refuses a lower one; in the committed history the
//     tokens never go down and no token has two writers, every accepted
//     write is there, and every refused one met a higher token.
//   - Recording: a whole run (ops, fenced writes, watch streams, the
//     committed history, Annotations of faults and leader terms) as JSON,
//     with kinds and statuses in words; ReadRecording reads it back.
//   - ResolveAmbiguous: unanswered writes whose unique value never reached
//     the committed history become Failed before the search, which keeps
//     porcupine fast under faults; Linearization.Anomalies names the
//     operation each illegal key could not place, and VisualizeAnnotated
//     draws annotations and anomalies ("stale read: ...") into the HTML.
//
// # What it must never do
//
// check never talks to a cluster, reads a clock or starts background work
// beyond porcupine's own search goroutines: it takes histories as values and
// returns verdicts. It never reports Unknown as Valid, and it never drops an
// operation it cannot explain: a Pending operation is judged as Ambiguous.
// It imports no gRPC, net/http, etcd wire types or Concord package, so the
// live checker can convert clientv3 responses into Ops at its own edge.
//
// # Assumptions the checkers make
//
// Each client has at most one operation in flight. Every Put and CAS writes
// a value no other operation writes (the workload makes values unique), so a
// read names the write it saw. Histories start from an empty keyspace.
// Times are comparable across clients (one clock, or virtual time).
package check
