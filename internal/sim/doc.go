// Package sim is Concord's deterministic simulation: a whole cluster in one
// goroutine, in virtual time, driven by one seed, under a schedule of faults,
// with every guarantee checked while it runs and on the client history
// afterwards. A failing seed replays exactly.
//
// # What it owns
//
// Run(Config) builds N members (3 or 5). Each is the production code, not a
// model of it: raftnode.Core (the raft driver), apply.Applier (the state
// machine, with mvcc and the lease table) and watch.Hub, over the real
// internal/wal and internal/snap files on a pebble vfs.NewCrashableMem. The
// package reimplements only the thin adapters the server keeps unexported
// (its Storage over WAL+snapshots and its StateMachine), following
// server/storage.go and server/requests.go. Around them it owns:
//
//   - the virtual clock and an agenda of events ordered by (time, sequence):
//     ticks (100ms each, per-member rate), message deliveries, client
//     operations and timeouts, faults, watch reconnects;
//   - the network: every message is copied (the wire copies), delivered
//     after 1–3ms, subject to the active fault rules; a lost MsgSnap and a
//     send to a dead member are reported back to the sender's Core as the
//     real transport does;
//   - the nemesis: a fault schedule drawn from the seed before the run and
//     printed at the top of the trace — partitions into two groups,
//     isolating the leader, one-way cuts, random loss, delays with jitter
//     (reordering), duplication, crashes of a member or the leader (the
//     disk keeps exactly what was synced: CrashClone), power loss of every
//     member at once, pauses (a frozen process whose inbox fills; the
//     writes its clients sent meanwhile are proposed as one raft proposal
//     when it resumes, as the server's raft loop proposes what queued while
//     it was held up), clock rate skew, leadership transfers, member replacement (remove one,
//     add a fresh member as a learner, promote it when caught up), and disk
//     faults (disk.go): a failing disk (EIO on fsync, or ENOSPC) stops the
//     member when its Ready fails — a crash, restarted from its disk when
//     the fault ends — and a slow disk makes every Ready wait a virtual
//     fsync delay;
//   - the workload: clients issuing put, linearizable get (ReadIndex, then
//     wait for apply, as the server does), serializable get, txn
//     compare-and-set and delete to random members, one operation at a time,
//     with a 2s timeout after which the outcome is indefinite; lease grant,
//     put with a lease and lease revoke (lease.go: one key per lease, so a
//     revocation is a Delete of that key in the history), with expiry run
//     as the server runs it — each member's lease.Lessor on the virtual
//     clock, promoted on the leader after a ReadIndex round, checkpoints
//     through raft, expired leases revoked only after a ReadIndex round
//     confirms leadership — each expiry revocation recorded as a Delete of
//     its own; and watch
//     clients (one per key, one on the prefix) that reconnect elsewhere from
//     the revision after their last event when their member dies;
//   - the online invariants (invariants.go): at most one leader per term;
//     log matching (one entry per index and term cluster-wide); every
//     applied entry is in the member's log and equal to what every other
//     member applied there, with the same outcome; a committed entry a
//     member holds is never overwritten; a new leader holds every entry
//     committed in earlier terms; stores equal (revision and hash) at equal
//     applied index, compared at snapshots, restarts and the end; the
//     revision never goes backwards on a member; the applier and the Core
//     agree on the applied index; an expiry revocation never applies before
//     the lease's TTL has passed since the client called grant; no raft
//     panic, storage error (other than an injected one) or failed restart;
//   - the end of a run: heal everything, wait for the cluster to converge,
//     read every key linearizably, then hand the history and the committed
//     history (read back from the store) to internal/check: Linearizable
//     (porcupine), Reads, Durability (every acknowledged write present),
//     Revisions, Watch and AppliedOnce.
//
// # What it must never do
//
// sim never starts a goroutine, reads the wall clock or the global math/rand,
// or lets map iteration order reach the trace or a decision; every random
// choice comes from the three PCG streams seeded from Config.Seed (network,
// workload, nemesis — separate so that e.g. one more message does not
// reshuffle the fault schedule). It never changes production behaviour: it
// calls the same exported APIs the server calls. It imports no gRPC,
// net/http, etcd wire types, front-end or internal/server.
//
// # Determinism contract
//
// The same Config yields the same Trace, byte for byte (TestReplayIsExact
// compares SHA-256s), provided crypto/rand is deterministic too:
// go.etcd.io/raft draws its randomized election timeouts from crypto/rand
// and offers no seam. Tests call testing/cryptotest.SetGlobalRandom(t, seed)
// in a subtest per seed (so a seed replays alone exactly as within a batch)
// and never run seeds in parallel. The history checkers' verdicts are not
// part of the hashed trace: porcupine's budget is wall time.
//
// # Unsafe switches
//
// Config.UnsafeLocalReads serves linearizable gets from local state without
// ReadIndex; Config.UnsafeNoFsync makes the WAL skip fsync on every member
// (a writeback every 0.1–1s plays the kernel, so a crash loses the last
// window of acknowledged appends and votes). Tests assert that the checkers
// catch each within a few seeds (TestUnsafeLocalReadsIsCaught,
// TestUnsafeNoFsyncIsCaught); they exist to prove the checkers can fail.
// The lease invariant has its own proof, a test-only lease clock running
// 30% fast (TestEarlyLeaseExpiryIsCaught).
//
// # Running and replaying
//
//	go test ./internal/sim -run TestSeeds -seeds=500      # seeds 1..500
//	go test ./internal/sim -run TestSeeds -seeds=N -first-seed=F
//	go test ./internal/sim -run TestSeeds -seed=S -v      # one seed, full trace
//	go test ./internal/sim -run TestSeeds -seed=S -sim-trace=/tmp/s.trace
//
// A failing seed prints its violations, the one-line replay command, the
// last trace lines and the path of the full trace file. Trace lines are
// "seconds.micros what": messages ("n1->n2 App t3 prev=41/3 ents=2
// commit=40 +1.8ms", or "DROP partition #2"), raft's own log lines, role
// changes, client calls and returns ("c2 call cas(...) on n3 (op 17)"),
// faults ("FAULT #4 start: crash the leader (n2) for 1.2s"), crashes,
// restarts, watch events and violations ("!! VIOLATION ...").
//
// # Known limits
//
// Forwarded proposals (MsgProp) are never duplicated: apply does not
// deduplicate command ids, so a duplicated MsgProp is applied twice, which
// AppliedOnce flags (TestDuplicatedProposalsAreCaught) — a transport must
// never deliver one twice. Leases have no keepalives yet (so no
// renewal-driven checkpoints), every member's lease clock is the virtual
// clock (clock skew slows raft ticks, not lease clocks), and a slow disk
// delays Ready handling while raft keeps taking ticks and messages (the
// server queues them). Not simulated yet: compaction, torn writes
// (CrashClone keeps exactly the synced bytes), clock skew beyond the raft
// tick rate.
package sim
