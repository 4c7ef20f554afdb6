package raftnode

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Sentinel errors. Storage and state-machine errors are wrapped, not
// replaced, so errors.Is still finds the cause.
var (
	ErrStopped         = errors.New("raftnode: stopped")
	ErrProposalDropped = errors.New("raftnode: proposal dropped")
	ErrTimeout         = errors.New("raftnode: timed out")
	ErrInvalidBoot     = errors.New("raftnode: invalid boot state")
	ErrStorage         = errors.New("raftnode: storage failed")
	ErrApply           = errors.New("raftnode: state machine failed")
)

// Storage persists what raft needs durable. The server implements it over
// the WAL and snapshot files. Every method is called from the goroutine that
// drives the Core, never concurrently, and may block on disk IO. Any error is
// fatal to the Core.
type Storage interface {
	// Save makes hs (nil: unchanged since the last Save) and ents durable
	// before it returns, with one fsync. An entry at index i replaces every
	// previously saved entry at index >= i. A commit-only change of hs may be
	// written without fsync (raft.MustSync says when one is required).
	Save(hs *raftpb.HardState, ents []*raftpb.Entry) error
	// WriteSnapshotFile makes the file of a snapshot durable before it
	// returns, its data being what data writes (streamed: a large state is
	// never whole in memory), and returns the data's size. Unlike every
	// other method it is also called from a goroutine of its own
	// (SnapshotJob.Run, for a snapshot this member took), concurrently with
	// the others, among them a call on the Core's goroutine for a leader's
	// snapshot; two calls never carry the same index.
	WriteSnapshotFile(md *raftpb.SnapshotMetadata, data func(io.Writer) error) (int64, error)
	// MarkSnapshot records that the file of the snapshot md describes is
	// durable (WriteSnapshotFile returned nil for it). Entries after md's
	// index that were saved before stay valid. Called from the Core's
	// goroutine.
	MarkSnapshot(md *raftpb.SnapshotMetadata) error
	// Release says log data at or below index is covered by a durable
	// snapshot and may be dropped.
	Release(index uint64) error
}

// Transport delivers messages to peers (Message.To). Send is called from
// the goroutine that drives the Core and must never block: queue, or drop
// and let raft retry (and report via ReportUnreachable). Send must not keep
// msgs (the slice is reused); it may keep the messages, which raft no longer
// touches, but must not modify them: their entries are shared with the log.
// A MsgSnap's outcome is reported back with ReportSnapshot.
type Transport interface {
	Send(msgs []*raftpb.Message)
}

// StateMachine is what committed entries are applied to. It is called from
// the goroutine that drives the Core, in log order, never concurrently. It
// must be deterministic: the same entries on every member give the same
// state. An error is an IO or invariant failure and stops the Core; a
// command the state machine rejects is not an error.
type StateMachine interface {
	// Apply applies a committed EntryNormal. data is empty for the no-op a
	// new leader appends.
	Apply(index uint64, data []byte) error
	// ApplyConfChange is told about a committed membership change after
	// raft applied it. A ConfChangeV2 arrives as one call per change it
	// holds, each carrying the V2 Context.
	ApplyConfChange(index uint64, cc *raftpb.ConfChange) error
	// Snapshot captures the state as of the last applied index and returns
	// the function that serializes it into w (the data Restore takes).
	// Snapshot itself runs on the Core's goroutine, between Apply calls, and
	// must be cheap (a copy-on-write view); the returned function runs
	// later, possibly on another goroutine concurrently with later Apply
	// calls, at most once.
	Snapshot() (func(w io.Writer) error, error)
	// Restore replaces the state with snap.Data (from some member's
	// Snapshot); afterwards the last applied index is snap's index.
	Restore(snap *raftpb.Snapshot) error
}

// Boot says how a Core starts. Exactly one of three shapes:
//   - new cluster member: Peers non-empty, everything else empty; the core
//     bootstraps the log with one ConfChangeAddNode per peer (Context as
//     given, identical on every founding member);
//   - joining member: everything empty; it waits for the leader to send it
//     the log or a snapshot;
//   - restart: the persisted state (Snapshot and/or HardState/Entries).
type Boot struct {
	Peers     []raft.Peer       // new cluster only
	Snapshot  *raftpb.Snapshot  // restart: newest durable snapshot (nil if none)
	HardState *raftpb.HardState // restart: nil if never saved
	Entries   []*raftpb.Entry   // restart: entries after the snapshot, contiguous
}

func (b Boot) isRestart() bool {
	return !raft.IsEmptySnap(b.Snapshot) || !raft.IsEmptyHardState(b.HardState) || len(b.Entries) > 0
}

// validate catches the boot states on which raft would panic.
func (b Boot) validate() error {
	if len(b.Peers) > 0 && b.isRestart() {
		return fmt.Errorf("%w: both peers and persisted state given", ErrInvalidBoot)
	}
	for _, p := range b.Peers {
		if p.ID == 0 {
			return fmt.Errorf("%w: peer id 0", ErrInvalidBoot)
		}
	}
	snapIndex := b.Snapshot.GetMetadata().GetIndex()
	snapTerm := b.Snapshot.GetMetadata().GetTerm()
	last := snapIndex
	for i, e := range b.Entries {
		if i == 0 && e.GetIndex() > snapIndex+1 {
			return fmt.Errorf("%w: first entry %d leaves a gap after snapshot %d", ErrInvalidBoot, e.GetIndex(), snapIndex)
		}
		if i > 0 && e.GetIndex() != b.Entries[i-1].GetIndex()+1 {
			return fmt.Errorf("%w: entry %d follows entry %d", ErrInvalidBoot, e.GetIndex(), b.Entries[i-1].GetIndex())
		}
		prevTerm := snapTerm
		if i > 0 {
			prevTerm = b.Entries[i-1].GetTerm()
		}
		if e.GetIndex() > snapIndex && e.GetTerm() < prevTerm {
			return fmt.Errorf("%w: entry %d has term %d after term %d", ErrInvalidBoot, e.GetIndex(), e.GetTerm(), prevTerm)
		}
		last = max(last, e.GetIndex())
	}
	if c := b.HardState.GetCommit(); c > last {
		return fmt.Errorf("%w: commit %d beyond last index %d", ErrInvalidBoot, c, last)
	}
	return nil
}

// Output is what one HandleReady leaves for the shell to act on.
type Output struct {
	// ReadStates answer earlier ReadIndex calls, matched by RequestCtx.
	ReadStates []raft.ReadState
	// Applied is the applied index after this Ready.
	Applied uint64
	// SoftState is non-nil when the leader or this member's role changed.
	SoftState *raft.SoftState
	// AppliedEntries counts committed entries applied in this Ready.
	AppliedEntries int
	// ConfChanged says a membership change was applied.
	ConfChanged bool
	// SnapshotJob, when non-nil, is a snapshot the Core started: the driver
	// runs it (SnapshotJob.Run, on any goroutine) and hands the outcome back
	// with SnapshotDone on the Core's goroutine. No other job starts until
	// then.
	SnapshotJob *SnapshotJob
	// SnapshotRestored is the index of a leader's snapshot this Ready
	// installed (0: none).
	SnapshotRestored uint64
}

// Core drives one raft.RawNode: Tick, Step and the proposal methods feed it;
// HandleReady runs one Ready through storage, transport and state machine in
// the order doc.go gives. It never starts goroutines, reads a clock, sleeps
// or waits on a channel, so a simulation can drive many cores from one
// goroutine in virtual time. A Core is not safe for concurrent use.
type Core struct {
	cfg Config
	log *slog.Logger
	rn  *raft.RawNode
	// store is raft's log: the newest entries in memory, older ones read
	// back from st when it is a LogReader (logstore.go).
	store *logStore
	st    Storage
	tr    Transport
	sm    StateMachine

	confState *raftpb.ConfState
	applied   uint64
	snapIndex uint64 // index of the newest snapshot, local or installed
	// snapJob is the snapshot being written in the background (nil: none);
	// confSnapDue asks for a snapshot as soon as none is in flight, after a
	// membership change (see handleReady).
	snapJob     *SnapshotJob
	confSnapDue bool
	// logBytes counts the entry bytes applied since the newest snapshot
	// capture; snapBytes is the size of the newest snapshot (see
	// Config.SnapshotLogRatio and SnapshotLogFloor).
	logBytes  uint64
	snapBytes int64
	soft      raft.SoftState
	err       error // sticky: set by the first storage or apply failure
	// earlyCampaign counts the ticks until a campaign after the leader was
	// reported down (detect.go); 0: none scheduled. earlyLeft is the ticks
	// left in which campaigns may follow while no leader appears.
	earlyCampaign, earlyLeft int

	early, late []*raftpb.Message // reused send buffers
}

// NewCore builds a Core from cfg and boot. On restart it restores sm from
// boot.Snapshot first. It returns an error, never panics, on a bad config
// or a boot state raft would reject.
func NewCore(cfg Config, boot Boot, st Storage, tr Transport, sm StateMachine) (c *Core, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil || tr == nil || sm == nil {
		return nil, fmt.Errorf("%w: storage, transport and state machine are required", ErrInvalidConfig)
	}
	if err := boot.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("raft_id", fmt.Sprintf("%x", cfg.ID))
	reader, _ := st.(LogReader)
	c = &Core{
		cfg:       cfg,
		log:       log,
		store:     newLogStore(reader, log),
		st:        st,
		tr:        tr,
		sm:        sm,
		confState: &raftpb.ConfState{},
	}
	// raft and MemoryStorage panic on states validate may have missed;
	// a constructor returns those as errors.
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%w: %v", ErrInvalidBoot, r)
		}
	}()
	if !raft.IsEmptySnap(boot.Snapshot) {
		snap := boot.Snapshot
		if err := c.store.mem.ApplySnapshot(withoutData(snap)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidBoot, err)
		}
		c.store.setSnapshot(snap.GetMetadata())
		if err := sm.Restore(snap); err != nil {
			return nil, fmt.Errorf("%w: restore snapshot %d: %w", ErrApply, snap.GetMetadata().GetIndex(), err)
		}
		c.confState = proto.Clone(raftpb.EnsureConfState(snap.GetMetadata().GetConfState())).(*raftpb.ConfState)
		c.applied = snap.GetMetadata().GetIndex()
		c.snapIndex = c.applied
		c.snapBytes = int64(len(snap.GetData()))
	}
	if !raft.IsEmptyHardState(boot.HardState) {
		hs := proto.Clone(boot.HardState).(*raftpb.HardState)
		// A crash between saving a leader's snapshot and the HardState that
		// followed it leaves commit behind the snapshot; a snapshot is always
		// committed state, so commit is at least its index.
		if hs.GetCommit() < c.snapIndex {
			hs.Commit = new(c.snapIndex)
		}
		if err := c.store.mem.SetHardState(hs); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidBoot, err)
		}
	}
	if err := c.store.mem.Append(boot.Entries); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidBoot, err)
	}
	rc := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   c.store,
		Applied:                   c.applied,
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedEntriesSize,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{c.log},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if len(boot.Peers) > 0 {
		if err := rn.Bootstrap(boot.Peers); err != nil {
			return nil, fmt.Errorf("%w: bootstrap: %w", ErrInvalidBoot, err)
		}
	}
	c.rn = rn
	c.soft = rn.BasicStatus().SoftState
	return c, nil
}

// Tick advances raft's logical clock by one tick.
func (c *Core) Tick() {
	c.rn.Tick()
	c.tickEarlyCampaign()
}

// Campaign makes this member start an election now (tests, simulation).
func (c *Core) Campaign() error { return c.rn.Campaign() }

// Step feeds a message from a peer. raft may keep m; the caller must not
// modify it afterwards. Messages from unknown peers or of local-only types
// are rejected with raft's error and are harmless to ignore.
func (c *Core) Step(m *raftpb.Message) error {
	switch m.GetType() {
	case raftpb.MsgPreVote:
		c.notePreVote(m)
	case raftpb.MsgReadIndex:
		if c.answerReadIndex(m) {
			return nil
		}
	}
	return c.rn.Step(m)
}

// Propose appends one entry per data, in order, to the log if this member
// leads, or forwards them to the leader: one raft proposal, taken or refused
// as a whole. Several entries in one proposal cost the leader one append and
// one MsgApp per follower (and the follower one acknowledgement) instead of
// one per entry. nil means raft took them, not that they will commit: a
// leader change can still lose them, so callers wait for apply with a
// timeout. ErrProposalDropped means raft refused them (no leader, leadership
// transfer in progress, or the uncommitted-size limit). raft keeps data; the
// caller must not modify it.
func (c *Core) Propose(data ...[]byte) error {
	if len(data) == 0 {
		return nil // raft panics on an empty proposal
	}
	ents := make([]*raftpb.Entry, len(data))
	for i, d := range data {
		ents[i] = &raftpb.Entry{Data: d}
	}
	return translate(c.rn.Step(&raftpb.Message{
		Type:    raftpb.MessageType_MsgProp.Enum(),
		From:    new(c.cfg.ID),
		Entries: ents,
	}))
}

// ProposeConfChange proposes a membership change; it is applied, to raft
// and to the state machine, when committed. Same errors as Propose.
func (c *Core) ProposeConfChange(cc *raftpb.ConfChange) error {
	return translate(c.rn.ProposeConfChange(cc))
}

func translate(err error) error {
	if errors.Is(err, raft.ErrProposalDropped) {
		return ErrProposalDropped
	}
	return err
}

// ReadIndex starts a ReadIndex round tagged rctx. Its answer, if any, comes
// out of a later HandleReady as a ReadState carrying rctx. No answer comes
// if there is no leader or the leader loses its quorum; the caller retries
// with a fresh rctx.
func (c *Core) ReadIndex(rctx []byte) { c.rn.ReadIndex(rctx) }

// TransferLeadership asks the leader to hand leadership to member to.
// raft aborts the attempt after an election timeout.
func (c *Core) TransferLeadership(to uint64) { c.rn.TransferLeader(to) }

// ReportUnreachable says the last send to id failed.
func (c *Core) ReportUnreachable(id uint64) { c.rn.ReportUnreachable(id) }

// ReportSnapshot says whether the MsgSnap sent to id was delivered.
func (c *Core) ReportSnapshot(id uint64, failed bool) {
	status := raft.SnapshotFinish
	if failed {
		status = raft.SnapshotFailure
	}
	c.rn.ReportSnapshot(id, status)
}

// HasReady reports whether HandleReady has work.
func (c *Core) HasReady() bool { return c.err == nil && c.rn.HasReady() }

// Status returns raft's full status (progress of followers on a leader). It
// allocates; BasicStatus does not.
func (c *Core) Status() raft.Status { return c.rn.Status() }

// BasicStatus returns raft's status without the progress map.
func (c *Core) BasicStatus() raft.BasicStatus { return c.rn.BasicStatus() }

// LogReads returns how many entries the log has read back from storage
// (LogReader) and how many reads failed. Safe from any goroutine.
func (c *Core) LogReads() (entries, failures uint64) {
	return c.store.entriesRead.Load(), c.store.readFailures.Load()
}

// Applied returns the index of the last entry applied to the state machine.
func (c *Core) Applied() uint64 { return c.applied }

// ConfState returns the membership as of Applied. The caller must not
// modify it.
func (c *Core) ConfState() *raftpb.ConfState { return c.confState }

// Err returns the failure that stopped the Core, or nil.
func (c *Core) Err() error { return c.err }

// HandleReady takes one Ready from raft and processes it completely, in the
// order written in doc.go. Once it returns an error (storage or state
// machine failed) the Core is dead: every later call returns the same error.
func (c *Core) HandleReady() (Output, error) {
	if c.err != nil {
		return Output{Applied: c.applied}, c.err
	}
	if !c.rn.HasReady() {
		return Output{Applied: c.applied}, nil
	}
	out, err := c.handleReady()
	if err != nil {
		c.err = err
		c.log.Error("raft core stopped", "err", err)
	}
	return out, err
}

func (c *Core) handleReady() (Output, error) {
	rd := c.rn.Ready()
	var out Output
	out.ReadStates = rd.ReadStates
	if rd.SoftState != nil {
		ss := *rd.SoftState
		out.SoftState = &ss
		c.soft = ss
	}

	// Split messages: those that acknowledge local durable state (votes,
	// append acks) always wait for Save. On a leader every other message
	// goes first, so followers write while the leader does (thesis 10.2.1).
	// On a follower or candidate everything waits for Save.
	leader := c.soft.RaftState == raft.StateLeader
	c.early, c.late = c.early[:0], c.late[:0]
	for _, m := range rd.Messages {
		if leader && !acksDurableState(m.GetType()) {
			c.early = append(c.early, m)
		} else {
			c.late = append(c.late, m)
		}
	}
	c.send(c.early)

	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := c.installSnapshot(rd.Snapshot); err != nil {
			return out, err
		}
		out.SnapshotRestored = c.applied
	}
	if !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 {
		if err := c.st.Save(rd.HardState, rd.Entries); err != nil {
			return out, fmt.Errorf("%w: save: %w", ErrStorage, err)
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			// Only InitialState reads it, but keep the mirror exact.
			_ = c.store.mem.SetHardState(rd.HardState)
		}
		if err := c.store.mem.Append(rd.Entries); err != nil {
			return out, fmt.Errorf("%w: memory append: %w", ErrStorage, err)
		}
	}
	c.send(c.late)
	clear(c.early)
	clear(c.late)

	for _, e := range rd.CommittedEntries {
		changed, err := c.apply(e)
		if err != nil {
			return out, err
		}
		out.ConfChanged = out.ConfChanged || changed
		out.AppliedEntries++
	}
	if err := c.store.trim(c.applied, c.cfg.MemoryLogEntries); err != nil {
		return out, fmt.Errorf("%w: trim the in-memory log: %w", ErrStorage, err)
	}
	// After a membership change on a compacted log, snapshot at once: a
	// leader sends its newest snapshot to a member that needs one, and a
	// member refuses a snapshot whose ConfState does not list it, so a new
	// member could otherwise wait for the next SnapshotCount entries.
	if out.ConfChanged && c.snapIndex > 0 {
		c.confSnapDue = true
	}
	job, err := c.maybeSnapshot()
	if err != nil {
		return out, err
	}
	out.SnapshotJob = job
	c.rn.Advance(rd)
	out.Applied = c.applied
	return out, nil
}

// acksDurableState reports the message types raft sends only once the state
// they vouch for is durable (its msgsAfterAppend).
func acksDurableState(t raftpb.MessageType) bool {
	return t == raftpb.MsgAppResp || t == raftpb.MsgVoteResp || t == raftpb.MsgPreVoteResp
}

func (c *Core) send(msgs []*raftpb.Message) {
	if len(msgs) > 0 {
		c.tr.Send(msgs)
	}
}

// installSnapshot makes a leader's snapshot durable, then visible to raft,
// then the state machine's.
func (c *Core) installSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	idx := md.GetIndex()
	if _, err := c.st.WriteSnapshotFile(md, func(w io.Writer) error {
		_, err := w.Write(snap.GetData())
		return err
	}); err != nil {
		return fmt.Errorf("%w: save snapshot %d: %w", ErrStorage, idx, err)
	}
	if err := c.st.MarkSnapshot(md); err != nil {
		return fmt.Errorf("%w: mark snapshot %d: %w", ErrStorage, idx, err)
	}
	if err := c.store.mem.ApplySnapshot(withoutData(snap)); err != nil {
		return fmt.Errorf("%w: memory snapshot %d: %w", ErrStorage, idx, err)
	}
	c.store.setSnapshot(md)
	if err := c.sm.Restore(snap); err != nil {
		return fmt.Errorf("%w: restore snapshot %d: %w", ErrApply, idx, err)
	}
	c.confState = proto.Clone(raftpb.EnsureConfState(snap.GetMetadata().GetConfState())).(*raftpb.ConfState)
	c.applied = idx
	c.snapIndex = idx
	c.snapBytes = int64(len(snap.GetData()))
	c.logBytes = 0
	c.log.Info("installed snapshot", "index", idx, "term", snap.GetMetadata().GetTerm())
	return nil
}

// withoutData returns snap's metadata alone. raft.MemoryStorage keeps the
// snapshot it is given for as long as it is the newest, only to put it in a
// MsgSnap; the data is the whole state, so the Core keeps none there and the
// transport reads it back from the snapshot file when it sends one.
func withoutData(snap *raftpb.Snapshot) *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: snap.GetMetadata()}
}

// apply applies one committed entry and reports whether it changed the
// membership.
func (c *Core) apply(e *raftpb.Entry) (bool, error) {
	idx := e.GetIndex()
	if idx <= c.applied {
		// Already covered by an installed snapshot.
		return false, nil
	}
	c.logBytes += uint64(len(e.GetData()))
	changed := false
	switch e.GetType() {
	case raftpb.EntryNormal:
		if err := c.sm.Apply(idx, e.GetData()); err != nil {
			return false, fmt.Errorf("%w: apply %d: %w", ErrApply, idx, err)
		}
	case raftpb.EntryConfChange:
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			return false, fmt.Errorf("%w: decode conf change %d: %w", ErrApply, idx, err)
		}
		c.confState = c.rn.ApplyConfChange(cc)
		if err := c.sm.ApplyConfChange(idx, cc); err != nil {
			return false, fmt.Errorf("%w: apply conf change %d: %w", ErrApply, idx, err)
		}
		changed = true
	case raftpb.EntryConfChangeV2:
		cc := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			return false, fmt.Errorf("%w: decode conf change %d: %w", ErrApply, idx, err)
		}
		c.confState = c.rn.ApplyConfChange(cc)
		for _, ch := range cc.GetChanges() {
			v1 := &raftpb.ConfChange{Type: ch.Type, NodeId: ch.NodeId, Context: cc.GetContext()}
			if err := c.sm.ApplyConfChange(idx, v1); err != nil {
				return false, fmt.Errorf("%w: apply conf change %d: %w", ErrApply, idx, err)
			}
		}
		changed = true
	default:
		return false, fmt.Errorf("%w: entry %d has unknown type %v", ErrApply, idx, e.GetType())
	}
	c.applied = idx
	return changed, nil
}

// SnapshotJob is one snapshot of the state machine at an applied index,
// taken in the background: the Core captures the state (cheap, on its own
// goroutine), the driver runs the job (serialize and write the file, on any
// goroutine) and reports back with Core.SnapshotDone, which makes the
// snapshot visible to raft and compacts the log behind it.
type SnapshotJob struct {
	md    *raftpb.SnapshotMetadata
	data  func(io.Writer) error
	st    Storage
	bytes int64
}

// Index is the applied index the snapshot captures.
func (j *SnapshotJob) Index() uint64 { return j.md.GetIndex() }

// Run serializes the captured state and makes the snapshot file durable.
// It may run on any goroutine, concurrently with the Core; call it once.
func (j *SnapshotJob) Run() error {
	var serr error
	n, err := j.st.WriteSnapshotFile(j.md, func(w io.Writer) error {
		serr = j.data(w)
		return serr
	})
	j.data = nil
	switch {
	case serr != nil:
		return fmt.Errorf("%w: snapshot at %d: %w", ErrApply, j.Index(), serr)
	case err != nil:
		return fmt.Errorf("%w: save snapshot %d: %w", ErrStorage, j.Index(), err)
	}
	j.bytes = n
	return nil
}

// snapshotLogWant is the log bytes applied since the newest snapshot
// that the next one waits for: SnapshotLogRatio of that snapshot's size,
// or its whole size up to SnapshotLogFloor, whichever is more.
func (c *Core) snapshotLogWant() uint64 {
	r := c.cfg.SnapshotLogRatio
	if r <= 0 {
		return 0
	}
	size := uint64(max(c.snapBytes, 0))
	return max(uint64(r*float64(size)), min(size, c.cfg.SnapshotLogFloor))
}

// maybeSnapshot starts a snapshot job when one is due and none is in
// flight: SnapshotCount entries applied since the newest snapshot holding
// snapshotLogWant bytes, or a membership change since it
// (confSnapDue).
func (c *Core) maybeSnapshot() (*SnapshotJob, error) {
	if c.snapJob != nil || c.applied <= c.snapIndex {
		return nil, nil
	}
	if !c.confSnapDue && !c.store.wantSnapshot {
		if c.applied-c.snapIndex < c.cfg.SnapshotCount {
			return nil, nil
		}
		if c.logBytes < c.snapshotLogWant() {
			return nil, nil
		}
	}
	idx := c.applied
	term, err := c.store.Term(idx)
	if err != nil {
		return nil, fmt.Errorf("%w: term of %d: %w", ErrStorage, idx, err)
	}
	data, err := c.sm.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot at %d: %w", ErrApply, idx, err)
	}
	c.confSnapDue = false
	c.store.wantSnapshot = false
	c.logBytes = 0
	c.snapJob = &SnapshotJob{
		md: &raftpb.SnapshotMetadata{
			Index:     new(idx),
			Term:      new(term),
			ConfState: proto.Clone(c.confState).(*raftpb.ConfState),
		},
		data: data,
		st:   c.st,
	}
	return c.snapJob, nil
}

// SnapshotDone takes the outcome of the job HandleReady (or an earlier
// SnapshotDone) returned. A failed job stops the Core, as any storage
// failure does. A durable snapshot gets its WAL mark, becomes the snapshot
// raft sends to members that need one (without its data, which the
// transport reads back from the file: keeping a copy of the whole state in
// memory would double it), and the log behind it is compacted. If another
// snapshot is due by now, its job is returned.
func (c *Core) SnapshotDone(job *SnapshotJob, runErr error) (*SnapshotJob, error) {
	if c.err != nil {
		return nil, c.err
	}
	if job != c.snapJob {
		return nil, nil
	}
	c.snapJob = nil
	if err := c.finishSnapshot(job, runErr); err != nil {
		c.err = err
		c.log.Error("raft core stopped", "err", err)
		return nil, err
	}
	next, err := c.maybeSnapshot()
	if err != nil {
		c.err = err
		c.log.Error("raft core stopped", "err", err)
	}
	return next, err
}

func (c *Core) finishSnapshot(job *SnapshotJob, runErr error) error {
	if runErr != nil {
		return runErr
	}
	idx := job.Index()
	if idx <= c.snapIndex {
		// A leader's snapshot was installed meanwhile and covers this one;
		// the file is harmless and Purge removes it in time.
		return nil
	}
	md := job.md
	if err := c.st.MarkSnapshot(md); err != nil {
		return fmt.Errorf("%w: mark snapshot %d: %w", ErrStorage, idx, err)
	}
	c.store.snapshotTaken(md)
	c.snapIndex = idx
	c.snapBytes = job.bytes
	c.log.Info("took snapshot", "index", idx, "term", md.GetTerm(), "bytes", job.bytes)
	if idx <= c.cfg.SnapshotCatchUpEntries {
		return nil
	}
	compact := idx - c.cfg.SnapshotCatchUpEntries
	if err := c.store.compact(compact); err != nil {
		return fmt.Errorf("%w: compact to %d: %w", ErrStorage, compact, err)
	}
	if err := c.st.Release(compact); err != nil {
		return fmt.Errorf("%w: release to %d: %w", ErrStorage, compact, err)
	}
	return nil
}
