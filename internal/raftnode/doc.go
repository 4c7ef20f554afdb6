// Package raftnode owns go.etcd.io/raft/v3's RawNode for one Concord member:
// the Ready loop, durability ordering, apply, snapshots and log compaction,
// proposal batching, ReadIndex batching and leadership transfer.
//
// It is cut as a pure core inside a thin shell:
//
//   - Core (core.go) is the algorithm's driver. It never starts a goroutine,
//     sleeps, reads a clock or waits on a channel. Inputs are Tick, Step and
//     the proposal methods; HandleReady returns an Output. A simulation
//     drives many Cores from one goroutine in virtual time.
//   - Node (node.go) is the shell: one goroutine owns the Core, a real
//     ticker calls Tick every TickInterval, and other goroutines talk to it
//     through bounded channels.
//
// The package declares what it needs — Storage (the server implements it
// over internal/wal and internal/snap), Transport (internal/transport) and
// StateMachine (internal/apply) — and must never import those packages,
// gRPC, net/http, etcd's api module or any other Concord package; a test
// enforces it.
//
// # The Ready loop
//
// The order below is law. Durability first: a member never acknowledges (an
// append, a vote) what is not on disk. The one exception is the leader's
// parallel send (Raft thesis §10.2.1): its MsgApp, heartbeats and MsgSnap go
// out before its own fsync, so followers write while it writes; its own
// entries count towards the quorum only after its Save, because raft counts
// the leader's self-ack at Advance. Messages that acknowledge durable state
// (MsgAppResp, MsgVoteResp, MsgPreVoteResp) wait for Save on every member,
// leader or not.
//
// One HandleReady, written out as the loop a driver runs:
//
//	for {
//	    // inputs: c.Tick() on each tick, c.Step(m) per received message,
//	    // c.Propose(data...) with EVERY queued proposal's data (one raft
//	    // proposal: one append, one MsgApp and one ack per follower; one
//	    // Ready, one fsync carries them all), c.ReadIndex(rctx) per
//	    // ReadIndex round.
//	    for c.HasReady() {
//	        rd := rn.Ready()
//	        if leader {
//	            transport.Send(messages except MsgAppResp/MsgVoteResp/MsgPreVoteResp)
//	        }
//	        if rd.Snapshot is not empty {                 // only on a follower
//	            storage.WriteSnapshotFile(rd.Snapshot)    // the file, fsync'd
//	            storage.MarkSnapshot(rd.Snapshot)         // then its WAL mark
//	            memoryStorage.ApplySnapshot(rd.Snapshot metadata, no data)
//	            sm.Restore(rd.Snapshot)                   // applied = snapshot index
//	        }
//	        if rd.HardState or rd.Entries {
//	            storage.Save(rd.HardState, rd.Entries)    // one call, one fsync per Ready
//	            memoryStorage.SetHardState / Append
//	        }
//	        transport.Send(the remaining messages)        // all of them on a follower/candidate
//	        for e in rd.CommittedEntries {                // in log order
//	            EntryNormal:          sm.Apply(e.Index, e.Data)
//	            EntryConfChange(V2):  confState = rn.ApplyConfChange(cc); sm.ApplyConfChange(e.Index, cc)
//	            applied = e.Index
//	        }
//	        if no snapshot job is in flight && applied > lastSnapshotIndex &&
//	            (applied - lastSnapshotIndex >= SnapshotCount ||
//	             a conf change was applied since the last snapshot && a snapshot exists) {
//	            serialize := sm.Snapshot()                // a copy-on-write view, cheap
//	            Output.SnapshotJob = {applied, term, confState, serialize}
//	        }
//	        rn.Advance(rd)
//	        return Output{ReadStates, Applied, SoftState, ...}
//	    }
//	}
//
// The driver runs the job off the loop and reports back on the Core's
// goroutine:
//
//	go func() { err := job.Run() }()                      // serialize; storage.WriteSnapshotFile: durable
//	next, err := core.SnapshotDone(job, err)               // on the Core's goroutine:
//	    storage.MarkSnapshot(job's metadata)               //   WAL mark after the durable file
//	    log: the newest snapshot is index's (metadata only)
//	    if index > SnapshotCatchUpEntries {
//	        log: compact to index - SnapshotCatchUpEntries
//	        storage.Release(index - SnapshotCatchUpEntries)
//	    }
//	    next: a job, if another snapshot is already due
//
// The log is compacted only behind a durable snapshot, so a crash while a
// job runs loses nothing: the member restarts from the previous snapshot and
// the longer log. The log keeps snapshot metadata only (a copy of the whole
// state would double the memory): a MsgSnap leaves the Core without data
// and the transport reads the data back from the snapshot file
// (transport.Config.SnapshotData) when it streams it.
//
// # The log in memory
//
// raft's Storage is the Core's logStore (logstore.go): a raft.MemoryStorage
// holding the newest entries, and, when the Storage is a LogReader (the
// server's WAL), older ones read back on demand. After each Ready the Core
// trims the memory to the MemoryLogEntries applied entries behind the
// applied index; raft wants older entries only to catch a lagging member
// up. Without a LogReader the MemoryStorage holds the whole log since the
// last compaction, which between snapshots can be a quarter of the state
// (SnapshotLogRatio).
//
// The snapshot after a membership change exists because a leader sends a
// member that needs one its newest snapshot, and raft refuses a snapshot
// whose ConfState does not list the receiving member: without it, a member
// added to a compacted log would wait for the next SnapshotCount entries.
//
// Any Storage or StateMachine error stops the Core for good: HandleReady
// returns it now and on every later call; the Node shell stops and reports
// it from Err.
//
// # Start
//
// raft is configured with PreVote, CheckQuorum, ReadOnlySafe (ReadIndex
// confirms leadership with a heartbeat round, or see Reads; no clock-based
// leases) and StepDownOnRemoval. Its Storage is the logStore the Core
// owns. On restart the Core fills it from Boot (ApplySnapshot,
// SetHardState, Append: the whole log since the snapshot, trimmed as it is
// applied), restores the state machine from the snapshot
// first, and tells raft that the snapshot index is applied; the committed
// tail of the log is applied again from there, so the state machine must be
// the in-memory one the snapshot restored, not one that survived the
// restart.
//
// # Losing a leader early
//
// Core.ReportDown (detect.go) lets a follower act on proof that its
// leader's process is gone (the transport's refused or reset dial): it
// forgets the leader (raft's ForgetLeader) and, ranked by id among the
// surviving voters, campaigns after 1, 3, 5, ... ticks unless a leader
// appeared, and again every 2n ticks (n survivors) for one election timeout
// while none has; with two survivors, one that refuses the other's pre-vote
// for a shorter log campaigns at its next tick. A killed leader is so
// replaced in a tick or a few instead of one to two election timeouts,
// whichever survivor hears first and whichever holds the longer log.
// PreVote and CheckQuorum keep it harmless when the report is wrong:
// followers that still hear the leader ignore the pre-votes, and the
// leader's next message restores it.
//
// # Reads
//
// Node.ReadIndex batches: every caller waiting when a round starts shares
// one raft ReadIndex round (one heartbeat round on the leader), tagged with
// an 8-byte request context unique to the round (a per-process random base
// plus a counter, so a late answer to a previous incarnation's round cannot
// match). Callers arriving during a round join the next one: they share one
// batch object, and only the caller that opens a batch wakes the loop, so a
// busy member's loop wakes once per round rather than once per read. A
// round with no answer after an election timeout, or in flight across a
// leader change, is re-issued for the same batch with a fresh context. The returned index is safe for a
// linearizable read once the applied index reaches it (WaitApplied).
//
// A follower's round needs no heartbeat round when the leader and that
// follower are a quorum (two or three voters): the follower's request
// proves what a heartbeat answer would, so the leader answers it at once
// with its commit index (readindex.go has the argument). A follower's round
// is then two messages instead of six.
//
// # Concurrency
//
// Core: not safe for concurrent use; one goroutine calls everything, and
// Storage, Transport and StateMachine are called from inside HandleReady on
// that goroutine, except a SnapshotJob's serialization and
// Storage.WriteSnapshotFile, which run wherever the driver runs the job (the
// Node: a goroutine of its own, at most one at a time, waited for by Stop). Node: every exported method is safe from any goroutine;
// only the Node's goroutine touches the Core. Node locks are leaves (none is
// held while taking another or while blocking on a channel).
package raftnode
