package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/raftnode"
	"github.com/concord-db/concord/internal/snap"
	"github.com/concord-db/concord/internal/wal"
	"github.com/concord-db/concord/internal/watch"
)

// Storage and raft settings small enough that snapshots, log compaction,
// snapshot transfer to lagging members, WAL segment rollover and release all
// happen within a few seconds of virtual time.
const (
	snapshotCount   = 48
	snapshotCatchUp = 12
	// memoryLogEntries is far below snapshotCount, so catching a member up
	// reads entries back from the WAL (raftnode.LogReader) in most seeds.
	memoryLogEntries   = 4
	walSegmentSize     = 16 << 10
	maxSizePerMsg      = 4 << 10
	maxInflightMsgs    = 16
	walDir             = "/member/wal"
	snapDir            = "/member/snap"
	snapshotsKept      = 3
	writebackMin       = int64(100e6) // 100ms
	writebackMax       = int64(1e9)   // 1s
	clockSkewMinFactor = 0.5
)

// member is one simulated Concord member: the real raftnode.Core and
// apply.Applier over the real WAL and snapshot files on a crashable
// in-memory filesystem.
type member struct {
	s    *simulation
	idx  int
	id   uint64
	name string

	mem    *vfs.MemFS // the disk; replaced by its crash clone on a crash
	nosync *noSyncFS  // non-nil under UnsafeNoFsync

	up, paused, broken bool
	// Disk faults (disk.go): diskErr is what the failing disk returns,
	// diskFired that it did; slowSync the virtual cost of each Ready while
	// the disk is slow, slowPending that one is scheduled.
	diskErr     error
	diskFired   bool
	slowSync    int64
	slowPending bool
	// removed: a committed conf change took it out of the cluster; it
	// never restarts. stopAfterReady: it applied its own removal.
	removed, stopAfterReady bool
	inc                     int // incarnation: bumped by every crash
	tickEvery               int64

	core *raftnode.Core
	app  *apply.Applier
	hub  *watch.Hub
	st   *storage
	ls   *leaseState // the lease expiry tracker of this incarnation

	inbox []*event   // deliveries held while paused
	held  []*opState // client requests held while paused
	// batch collects the writes of held requests on resume, proposed
	// together as the server's raft loop proposes what queued while it was
	// paused (one raft proposal of several entries).
	batch    []queuedWrite
	batching bool

	waiters map[uint64]*opState // proposals by command id
	reads   []*opState          // linearizable reads waiting for ReadIndex / apply

	// Invariant bookkeeping (invariants.go).
	log       mirror // what this incarnation saved to its log
	snapIndex uint64 // newest snapshot, taken or installed
	lastRev   int64  // revision after the previous Ready
	role      raft.StateType
	lead      uint64
}

func newMember(s *simulation, idx int) *member {
	return &member{
		s:         s,
		idx:       idx,
		id:        uint64(idx + 1),
		name:      fmt.Sprintf("n%d", idx+1),
		mem:       vfs.NewCrashableMem(),
		tickEvery: tickInterval,
	}
}

// fs is the filesystem the member's WAL and snapshots use.
func (m *member) fs() vfs.FS {
	var base vfs.FS = m.mem
	if m.s.cfg.UnsafeNoFsync {
		if m.nosync == nil || m.nosync.FS != m.mem {
			m.nosync = &noSyncFS{FS: m.mem}
		}
		base = m.nosync
	}
	return &faultFS{FS: base, m: m}
}

func (m *member) coreConfig() raftnode.Config {
	return raftnode.Config{
		ID:                     m.id,
		ElectionTicks:          electionTicks,
		HeartbeatTicks:         1,
		SnapshotCount:          snapshotCount,
		SnapshotCatchUpEntries: snapshotCatchUp,
		MemoryLogEntries:       memoryLogEntries,
		MaxSizePerMsg:          maxSizePerMsg,
		MaxInflightMsgs:        maxInflightMsgs,
		Logger:                 slog.New(&traceHandler{s: m.s, m: m}),
	}
}

// peerContext is the conf-change context apply expects: the member row.
func peerContext(id uint64) []byte {
	b, _ := proto.Marshal(&command.Member{Id: id, Name: fmt.Sprintf("n%d", id), PeerUrls: []string{fmt.Sprintf("sim://n%d", id)}})
	return b
}

// bootFresh starts a founding member of a new cluster.
func (s *simulation) bootFresh(m *member) {
	var peers []raft.Peer
	for i := range s.cfg.Members {
		id := uint64(i + 1)
		peers = append(peers, raft.Peer{ID: id, Context: peerContext(id)})
	}
	st, boot, err := openStorage(m)
	if err != nil {
		s.violate(KindStorage, "%s: create storage: %v", m.name, err)
		m.broken = true
		return
	}
	if boot != nil {
		s.violate(KindStorage, "%s: fresh disk already holds a log", m.name)
		m.broken = true
		return
	}
	s.start(m, st, raftnode.Boot{Peers: peers})
}

// start builds the member's Core and Applier and starts its clock.
func (s *simulation) start(m *member, st *storage, boot raftnode.Boot) {
	m.st = st
	m.app = apply.New(nil)
	hub, err := newHub(m)
	if err != nil {
		s.violate(KindWatch, "%s: watch hub: %v", m.name, err)
		m.broken = true
		return
	}
	m.hub = hub
	m.ls = newLeaseState()
	m.waiters = map[uint64]*opState{}
	m.reads, m.inbox, m.held = nil, nil, nil
	m.log = mirror{}
	m.snapIndex = boot.Snapshot.GetMetadata().GetIndex()
	for _, e := range boot.Entries {
		m.log.put(e.GetIndex(), logEnt{term: e.GetTerm(), fp: entryFP(e.GetType(), e.GetData())})
	}
	m.role, m.lead = raft.StateFollower, 0
	var core *raftnode.Core
	ok := s.guard(m, "NewCore", func() {
		core, err = raftnode.NewCore(m.coreConfig(), boot, st, transport{s, m}, machine{s, m})
	})
	if !ok {
		return
	}
	if err != nil {
		s.violate(KindRestart, "%s: NewCore: %v", m.name, err)
		m.broken = true
		return
	}
	m.core = core
	m.up = true
	m.lastRev = m.app.Store().Rev()
	if boot.Snapshot != nil {
		s.inv.stateAt(m, "restored from disk")
	}
	s.tracef("%s up (incarnation %d): snapshot %d, %d log entries, commit %d, revision %d",
		m.name, m.inc, m.snapIndex, len(boot.Entries), boot.HardState.GetCommit(), m.lastRev)
	// Start the clock at a random phase so members do not tick in lockstep.
	s.at(s.now+1+s.netRng.Int64N(m.tickEvery), &event{kind: evTick, member: m.idx, inc: m.inc})
	if s.cfg.UnsafeNoFsync {
		s.at(s.now+writebackMin+s.netRng.Int64N(writebackMax-writebackMin), &event{kind: evWriteback, member: m.idx, inc: m.inc})
	}
}

// crash kills the member: its process state is gone and its disk keeps only
// what was synced.
func (s *simulation) crash(m *member, why string) {
	if !m.up {
		return
	}
	s.stats.Crashes++
	s.tracef("%s CRASH (%s): applied %d, revision %d", m.name, why, m.core.Applied(), m.app.Store().Rev())
	s.down(m, "crashed")
	m.mem = m.mem.CrashClone(vfs.CrashCloneCfg{})
	m.nosync = nil
}

// down takes the member out: the incarnation ends and its clients get
// connection errors.
func (s *simulation) down(m *member, why string) {
	m.up, m.paused = false, false
	m.inc++
	m.core, m.app, m.st, m.hub, m.ls = nil, nil, nil, nil, nil
	m.inbox = nil
	s.disconnectWatchers(m)
	var pending []*opState
	for _, op := range m.held {
		pending = append(pending, op)
	}
	for _, op := range m.reads {
		pending = append(pending, op)
	}
	for _, op := range m.waiters {
		pending = append(pending, op)
	}
	sortOps(pending)
	m.held, m.reads, m.waiters = nil, nil, nil
	for _, op := range pending {
		s.failOp(op, false, fmt.Sprintf("%s %s", m.name, why))
	}
}

// restart boots a crashed member from its disk, as the server's restart
// path does.
func (s *simulation) restart(m *member) {
	// A member whose disk still fails stays down until the fault ends.
	if m.up || m.broken || m.removed || m.diskErr != nil {
		return
	}
	st, boot, err := openStorage(m)
	if err != nil {
		s.violate(KindRestart, "%s: open storage after crash: %v", m.name, err)
		m.broken = true
		return
	}
	if boot == nil {
		s.violate(KindRestart, "%s: no WAL on disk after crash", m.name)
		m.broken = true
		return
	}
	s.start(m, st, *boot)
}

// breakMember stops a member for good after a panic or fatal error.
func (s *simulation) breakMember(m *member) {
	m.broken = true
	if m.up {
		s.down(m, "broken")
	}
}

// guard runs f, turning a panic (raft's invariant checks panic) into a
// violation that stops the member.
func (s *simulation) guard(m *member, what string, f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.panics = append(s.panics, fmt.Sprintf("%s %s: %v\n%s", m.name, what, r, debug.Stack()))
			s.violate(KindPanic, "%s: %s panicked: %v", m.name, what, r)
			s.breakMember(m)
			ok = false
		}
	}()
	f()
	return true
}

// drive runs the member's Ready loop until raft has nothing more to do.
// While its disk is slow, each Ready waits for the virtual fsync instead.
func (s *simulation) drive(m *member) {
	for m.up && !m.paused && m.core.HasReady() {
		if m.slowSync > 0 {
			if !m.slowPending {
				m.slowPending = true
				s.at(s.now+m.slowSync, &event{kind: evSlowReady, member: m.idx, inc: m.inc})
			}
			return
		}
		if !s.readyOnce(m) {
			return
		}
	}
}

// readyOnce handles one Ready; false when the member stopped.
func (s *simulation) readyOnce(m *member) bool {
	var (
		out raftnode.Output
		err error
	)
	if !s.guard(m, "HandleReady", func() { out, err = m.core.HandleReady() }) {
		return false
	}
	if err != nil {
		s.storageFailed(m, err)
		return false
	}
	if m.slowSync > 0 {
		s.stats.SlowReadies++
	}
	s.afterReady(m, out)
	if m.stopAfterReady {
		s.stopRemoved(m, "it applied its own removal")
		return false
	}
	return true
}

func (s *simulation) afterReady(m *member, out raftnode.Output) {
	if ss := out.SoftState; ss != nil && (ss.RaftState != m.role || ss.Lead != m.lead) {
		m.role, m.lead = ss.RaftState, ss.Lead
		term := m.core.BasicStatus().GetTerm()
		s.tracef("%s is %s in term %d (%s)", m.name, roleName(ss.RaftState), term, leaderName(ss.Lead))
		if ss.RaftState == raft.StateLeader {
			s.inv.leader(m, term)
		}
	}
	for _, rs := range out.ReadStates {
		s.readState(m, rs)
	}
	if out.SnapshotJob != nil {
		s.startSnapshot(m, out.SnapshotJob)
	}
	if out.SnapshotRestored != 0 {
		s.tracef("%s installed snapshot %d", m.name, out.SnapshotRestored)
		s.inv.stateAt(m, "snapshot installed")
	}
	if a, c := m.app.AppliedIndex(), m.core.Applied(); a != c {
		s.violate(KindState, "%s: applier at index %d, raft core at %d", m.name, a, c)
	}
	rev := m.app.Store().Rev()
	if rev < m.lastRev {
		s.violate(KindRevision, "%s: revision went back from %d to %d at applied index %d", m.name, m.lastRev, rev, m.core.Applied())
	}
	m.lastRev = rev
	s.serveReads(m)
	s.leaseProgress(m)
	s.pollWatches(m)
}

// startSnapshot schedules the end of a background snapshot the Core just
// started (the server runs it on a goroutine of its own): the state was
// captured now, the file is written snapshotLatency later, while the member
// goes on applying. A crash before then loses it, as it would a real one.
func (s *simulation) startSnapshot(m *member, job *raftnode.SnapshotJob) {
	s.inv.stateAt(m, "snapshot taken")
	s.at(s.now+snapshotLatency, &event{kind: evSnapshot, member: m.idx, inc: m.inc, job: job})
}

func (s *simulation) onSnapshot(ev *event) {
	m := s.members[ev.member]
	if !m.up || m.inc != ev.inc {
		return
	}
	if m.paused {
		// A stopped process's goroutines are stopped too.
		s.at(s.now+snapshotLatency, ev)
		return
	}
	var next *raftnode.SnapshotJob
	var err error
	if !s.guard(m, "SnapshotDone", func() { next, err = m.core.SnapshotDone(ev.job, ev.job.Run()) }) {
		return
	}
	if err != nil {
		s.storageFailed(m, err)
		return
	}
	s.stats.Snapshots++
	s.tracef("%s saved snapshot %d", m.name, ev.job.Index())
	if next != nil {
		s.startSnapshot(m, next)
	}
}

// transport is a member's raftnode.Transport: the simulated network.
type transport struct {
	s *simulation
	m *member
}

func (t transport) Send(msgs []*raftpb.Message) { t.s.send(t.m, msgs) }

// machine is a member's raftnode.StateMachine: the Applier, plus the
// simulation's bookkeeping (the server's stateMachine does the same with
// waiters and watchers).
type machine struct {
	s *simulation
	m *member
}

func (sm machine) Apply(index uint64, data []byte) error {
	id, res, err := sm.m.app.Apply(index, data)
	if err != nil {
		return err
	}
	sm.s.inv.applied(sm.m, index, resultFP(res))
	sm.s.observeLeases(sm.m, id, res)
	// As the server does: watchers hear of a write before its proposer.
	if len(res.Events) > 0 {
		sm.m.hub.Notify(res.Rev, res.Events)
	}
	if id != 0 {
		sm.s.proposalApplied(sm.m, id, res)
	}
	return nil
}

func (sm machine) ApplyConfChange(index uint64, cc *raftpb.ConfChange) error {
	if err := sm.m.app.ApplyConfChange(index, cc); err != nil {
		return err
	}
	sm.s.inv.applied(sm.m, index, confFP(cc))
	sm.s.confApplied(sm.m, cc)
	return nil
}

func (sm machine) Snapshot() (func(io.Writer) error, error) { return sm.m.app.SnapshotView() }

func (sm machine) Restore(snap *raftpb.Snapshot) error {
	if err := sm.m.app.Restore(snap.GetData()); err != nil {
		return err
	}
	sm.m.hub.Restore(sm.m.app.Store().Rev())
	sm.m.ls.lessor.Reset(sm.s.clock(), sm.m.app.Leases())
	clear(sm.m.ls.revoking)
	return nil
}

// storage is raftnode.Storage over the WAL and snapshot files, as the
// server's diskStorage, plus the invariant hooks.
type storage struct {
	s    *simulation
	m    *member
	wal  *wal.WAL
	snap *snap.Snapshotter
}

func (st *storage) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if err := st.wal.Save(hs, ents); err != nil {
		return err
	}
	st.s.inv.saved(st.m, ents)
	return nil
}

func (st *storage) WriteSnapshotFile(md *raftpb.SnapshotMetadata, data func(io.Writer) error) (int64, error) {
	return st.snap.SaveStream(md, data)
}

func (st *storage) MarkSnapshot(md *raftpb.SnapshotMetadata) error {
	if err := st.wal.SaveSnapshotMark(wal.SnapshotMark{Index: md.GetIndex(), Term: md.GetTerm()}); err != nil {
		return err
	}
	st.m.snapIndex = max(st.m.snapIndex, md.GetIndex())
	st.m.log.dropThrough(md.GetIndex())
	return nil
}

// Entries reads saved entries back from the WAL (raftnode.LogReader).
func (st *storage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	return st.wal.Entries(lo, hi, maxSize)
}

func (st *storage) Release(index uint64) error {
	if err := st.wal.ReleaseTo(index); err != nil {
		return err
	}
	return st.snap.Purge(snapshotsKept)
}

// openStorage opens the member's WAL and snapshot directory, creating them
// on a fresh disk (boot nil). It mirrors the server's openStorage: the
// newest snapshot file decides where the WAL is read from.
func openStorage(m *member) (*storage, *raftnode.Boot, error) {
	fs := m.fs()
	ss, err := snap.New(fs, snapDir, nil)
	if err != nil {
		return nil, nil, err
	}
	wcfg := wal.Config{FS: fs, Dir: walDir, SegmentSize: walSegmentSize}
	st := &storage{s: m.s, m: m, snap: ss}
	if !wal.Exists(fs, walDir) {
		w, err := wal.Create(wcfg, []byte(m.name))
		if err != nil {
			return nil, nil, err
		}
		st.wal = w
		return st, nil, nil
	}
	var boot raftnode.Boot
	var from wal.SnapshotMark
	sn, err := ss.LoadNewest(nil)
	switch {
	case err == nil:
		boot.Snapshot = sn
		from = wal.SnapshotMark{Index: sn.GetMetadata().GetIndex(), Term: sn.GetMetadata().GetTerm()}
	case errors.Is(err, snap.ErrNotFound):
	default:
		return nil, nil, err
	}
	w, rr, err := wal.Open(wcfg, from)
	if err != nil {
		return nil, nil, err
	}
	if string(rr.Metadata) != m.name {
		return nil, nil, fmt.Errorf("sim: WAL belongs to %q, not %s", rr.Metadata, m.name)
	}
	st.wal = w
	boot.HardState = rr.HardState
	boot.Entries = rr.Entries
	return st, &boot, nil
}

func roleName(r raft.StateType) string {
	switch r {
	case raft.StateFollower:
		return "follower"
	case raft.StateCandidate:
		return "candidate"
	case raft.StateLeader:
		return "LEADER"
	case raft.StatePreCandidate:
		return "pre-candidate"
	}
	return r.String()
}

func leaderName(id uint64) string {
	if id == 0 {
		return "no leader"
	}
	return "leader n" + itoa(id)
}
