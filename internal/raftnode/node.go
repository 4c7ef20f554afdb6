package raftnode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Queue bounds of the Node's inbound channels.
const (
	recvQueueLen     = 4096
	proposalQueueLen = 1024
)

// Status is a point-in-time view of a Node, safe to read from any goroutine.
type Status struct {
	ID           uint64
	Leader       uint64 // 0: no known leader
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	Role         string // "follower", "pre-candidate", "candidate" or "leader"
	IsLeader     bool
	// ReadIndexRounds counts raft ReadIndex rounds this Node started (each
	// serves a whole batch of ReadIndex callers).
	ReadIndexRounds uint64
	// DroppedMessages counts inbound messages dropped on a full queue.
	DroppedMessages uint64
	// LogEntriesRead counts entries read back from storage because the
	// in-memory log no longer held them (to catch a member up);
	// LogReadFailures counts such reads that failed.
	LogEntriesRead, LogReadFailures uint64
}

func roleName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	default:
		return "follower"
	}
}

type proposal struct {
	data []byte
	cc   *raftpb.ConfChange
	done chan error // cap 1: the loop never blocks answering
}

// readBatch is the ReadIndex callers that share one round: done is closed
// once index holds the round's answer.
type readBatch struct {
	done  chan struct{}
	index uint64
}

// readRound is the ReadIndex round in flight.
type readRound struct {
	rctx  []byte
	batch *readBatch
	ticks int // ticks since the round (or its retry) started
}

// Node runs a Core on its own goroutine with a real ticker. Every exported
// method is safe for concurrent use. A Node implements the transport's
// handler shape (Process, ReportUnreachable, ReportSnapshot).
type Node struct {
	cfg  NodeConfig
	log  *slog.Logger
	core *Core // owned by the run goroutine

	propc     chan proposal
	recvc     chan *raftpb.Message
	readc     chan struct{} // cap 1: "a batch waits for a round"
	transferc chan chan uint64
	callc     chan func(*Core) // membership.go: work run on the loop
	reportc   chan struct{}    // cap 1: "reports are pending"
	snapDonec chan snapResult  // cap 1: the background snapshot's outcome
	stopc     chan struct{}
	donec     chan struct{}
	stopOnce  sync.Once
	err       error // set before donec closes

	// readMu guards nextReads: the callers waiting for the next round. A
	// caller signals readc only when it opens a new batch, so the loop wakes
	// once per round rather than once per read.
	readMu    sync.Mutex
	nextReads *readBatch

	// Owned by the run goroutine.
	snapping   bool // a SnapshotJob runs on a goroutine of its own
	round      *readRound
	nextRctx   uint64
	lastLeader uint64

	status     atomic.Pointer[Status]
	readRounds atomic.Uint64
	dropped    atomic.Uint64
	applied    appliedWaiters

	reportMu    sync.Mutex // leaf lock
	unreachable map[uint64]struct{}
	down        map[uint64]struct{}
	snapReports map[uint64]bool // id → failed

	leaderMu sync.Mutex // leaf lock
	leaderCh chan struct{}

	pauser atomic.Pointer[pauserBox] // SetPauser; nil: never paused
}

// Pauser freezes a Node's loop on purpose (fault injection: a member whose
// process stalls, as in a long GC pause or SIGSTOP). While paused the loop
// neither ticks, steps, proposes, applies nor sends; the transport keeps
// queueing what arrives (up to the inbound queue's bound, then drops).
type Pauser interface {
	// Pause reports whether the Node is to be paused now and, if so, until
	// when (zero: until changed closes). changed is closed at the next
	// change of the answer's inputs; the Node asks again then. Pause is
	// called on the Node's goroutine and must not block.
	Pause() (paused bool, until time.Time, changed <-chan struct{})
}

type pauserBox struct{ p Pauser }

// SetPauser installs (or, with nil, removes) the Pauser the loop consults
// before each step of work. Safe to call at any time; it takes effect
// within one tick.
func (n *Node) SetPauser(p Pauser) {
	if p == nil {
		n.pauser.Store(nil)
		return
	}
	n.pauser.Store(&pauserBox{p})
}

// StartNode builds the Core (see NewCore for boot) and starts the goroutine
// that owns it. Stop it with Stop.
func StartNode(cfg NodeConfig, boot Boot, st Storage, tr Transport, sm StateMachine) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	core, err := NewCore(cfg.Core, boot, st, tr, sm)
	if err != nil {
		return nil, err
	}
	// Round contexts start at a random base so an answer to a round of a
	// previous incarnation of this member can never match a current round.
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("raftnode: read random seed: %w", err)
	}
	n := &Node{
		cfg:         cfg,
		log:         cfg.Logger.With("raft_id", fmt.Sprintf("%x", cfg.Core.ID)),
		core:        core,
		propc:       make(chan proposal, proposalQueueLen),
		recvc:       make(chan *raftpb.Message, recvQueueLen),
		readc:       make(chan struct{}, 1),
		transferc:   make(chan chan uint64),
		callc:       make(chan func(*Core)),
		reportc:     make(chan struct{}, 1),
		snapDonec:   make(chan snapResult, 1),
		stopc:       make(chan struct{}),
		donec:       make(chan struct{}),
		nextRctx:    binary.BigEndian.Uint64(seed[:]),
		unreachable: make(map[uint64]struct{}),
		down:        make(map[uint64]struct{}),
		snapReports: make(map[uint64]bool),
		leaderCh:    make(chan struct{}),
	}
	n.applied.advance(core.Applied())
	n.publishStatus()
	go n.run()
	return n, nil
}

// Stop stops the Node's goroutine and waits for it. Pending and later calls
// return ErrStopped. Stop is idempotent.
func (n *Node) Stop() {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.donec
}

// Done is closed once the Node's goroutine has exited, after Stop or a
// fatal error.
func (n *Node) Done() <-chan struct{} { return n.donec }

// Err returns the fatal error (storage or state machine failure) that
// stopped the Node, or nil.
func (n *Node) Err() error {
	select {
	case <-n.donec:
		return n.err
	default:
		return nil
	}
}

// stoppedErr is what calls return once the Node is gone: ErrStopped,
// carrying the fatal cause if there was one.
func (n *Node) stoppedErr() error {
	if n.err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, n.err)
	}
	return ErrStopped
}

// Propose hands data to raft and returns once raft took it (nil), refused it
// (ErrProposalDropped: no leader, leadership transfer), ctx ended, or the
// Node stopped (ErrStopped). nil does not mean committed: the caller waits
// for the entry to be applied, with its own timeout. Concurrent proposals
// are batched into one Ready and one fsync. data must not be modified
// afterwards.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	return n.propose(ctx, proposal{data: data, done: make(chan error, 1)})
}

// ProposeConfChange proposes a membership change; like Propose.
func (n *Node) ProposeConfChange(ctx context.Context, cc *raftpb.ConfChange) error {
	return n.propose(ctx, proposal{cc: cc, done: make(chan error, 1)})
}

func (n *Node) propose(ctx context.Context, p proposal) error {
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return n.stoppedErr()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return n.stoppedErr()
	}
}

// ReadIndex returns a commit index that is safe for a linearizable read once
// the applied index reaches it (see WaitApplied). Callers are batched: all
// callers waiting when a round starts share one raft ReadIndex round. It
// blocks until the round is answered (rounds without an answer are retried
// after an election timeout or a leader change), ctx ends, or the Node
// stops.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	n.readMu.Lock()
	b := n.nextReads
	opened := b == nil
	if opened {
		b = &readBatch{done: make(chan struct{})}
		n.nextReads = b
	}
	n.readMu.Unlock()
	if opened {
		select {
		case n.readc <- struct{}{}:
		default: // already signalled
		}
	}
	select {
	case <-b.done:
		return b.index, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.donec:
		return 0, n.stoppedErr()
	}
}

// WaitApplied blocks until the applied index is at least index, ctx ends,
// or the Node stops.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	w := n.applied.wait(index)
	if w == nil {
		return nil
	}
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		n.applied.cancel(w)
		return ctx.Err()
	case <-n.donec:
		n.applied.cancel(w)
		return n.stoppedErr()
	}
}

// Step queues a message from a peer. It never blocks: when the queue is
// full the message is dropped and raft's retries cover the loss. m must not
// be modified afterwards.
func (n *Node) Step(m *raftpb.Message) {
	select {
	case n.recvc <- m:
	default:
		n.dropped.Add(1)
	}
}

// Process is Step under the transport handler's name.
func (n *Node) Process(m *raftpb.Message) { n.Step(m) }

// ReportUnreachable says a send to id failed. Never blocks; repeated reports
// before the Node's goroutine gets to them coalesce.
func (n *Node) ReportUnreachable(id uint64) {
	n.reportMu.Lock()
	n.unreachable[id] = struct{}{}
	n.reportMu.Unlock()
	n.notifyReports()
}

// ReportDown says id's address refused a connection: its process is not
// running. A follower of id forgets it and elects a new leader early
// (detect.go). Never blocks; repeated reports coalesce.
func (n *Node) ReportDown(id uint64) {
	n.reportMu.Lock()
	n.down[id] = struct{}{}
	n.reportMu.Unlock()
	n.notifyReports()
}

// ReportSnapshot says whether the MsgSnap sent to id was delivered. Never
// blocks and is never dropped (raft pauses replication to id until it
// hears).
func (n *Node) ReportSnapshot(id uint64, failed bool) {
	n.reportMu.Lock()
	n.snapReports[id] = failed
	n.reportMu.Unlock()
	n.notifyReports()
}

func (n *Node) notifyReports() {
	select {
	case n.reportc <- struct{}{}:
	default:
	}
}

// Status returns the Node's latest published status.
func (n *Node) Status() Status {
	s := *n.status.Load()
	s.ReadIndexRounds = n.readRounds.Load()
	s.DroppedMessages = n.dropped.Load()
	s.LogEntriesRead, s.LogReadFailures = n.core.LogReads()
	return s
}

// Leader returns the current leader's id, 0 if none is known.
func (n *Node) Leader() uint64 { return n.status.Load().Leader }

// LeaderChanges returns a channel that is closed at the next change of the
// known leader (including to "none"). Call it again for the change after
// that; Status is already up to date when the channel closes. Taking the
// channel before checking a condition avoids missing a change.
func (n *Node) LeaderChanges() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderCh
}

// TransferLeadership hands leadership to the most up-to-date voter (highest
// Match) and waits until another member leads, ctx ends, or the Node stops.
// It returns nil at once when this member is not the leader or has no other
// voter. An attempt raft abandons is retried after an election timeout.
func (n *Node) TransferLeadership(ctx context.Context) error {
	retry := time.Duration(n.cfg.Core.ElectionTicks) * n.cfg.TickInterval
	for {
		reply := make(chan uint64, 1)
		select {
		case n.transferc <- reply:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.donec:
			return n.stoppedErr()
		}
		var target uint64
		select {
		case target = <-reply:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.donec:
			return n.stoppedErr()
		}
		if target == 0 {
			return nil
		}
		n.log.Info("transferring leadership", "to", fmt.Sprintf("%x", target))
		if done, err := n.awaitOtherLeader(ctx, retry); done || err != nil {
			return err
		}
	}
}

// awaitOtherLeader waits up to d for a member other than this one to lead.
func (n *Node) awaitOtherLeader(ctx context.Context, d time.Duration) (bool, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		changed := n.LeaderChanges()
		if s := n.status.Load(); !s.IsLeader && s.Leader != 0 {
			return true, nil
		}
		select {
		case <-changed:
		case <-t.C:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case <-n.donec:
			return false, n.stoppedErr()
		}
	}
}

// snapResult is how a background snapshot ended.
type snapResult struct {
	job *SnapshotJob
	err error
}

// startSnapshot runs job on a goroutine of its own: serializing and
// fsyncing a large state takes long, and the loop must keep ticking,
// replicating and applying meanwhile (DESIGN §6). The Core starts no other
// job before SnapshotDone, so at most one such goroutine exists; run waits
// for it before it returns.
func (n *Node) startSnapshot(job *SnapshotJob) {
	if job == nil {
		return
	}
	n.snapping = true
	go func() {
		n.snapDonec <- snapResult{job, job.Run()}
	}()
}

func (n *Node) snapshotDone(r snapResult) error {
	n.snapping = false
	next, err := n.core.SnapshotDone(r.job, r.err)
	if err != nil {
		n.log.Error("raft node stopped", "err", err)
		return err
	}
	n.startSnapshot(next)
	return nil
}

// run is the Node's goroutine: the only code that touches the Core.
func (n *Node) run() {
	defer close(n.donec)
	defer func() {
		if n.snapping {
			<-n.snapDonec // the file is complete or failed; nothing else to do
		}
	}()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	var pauseChanged <-chan struct{}
	for {
		if err := n.process(); err != nil {
			n.err = err
			return
		}
		var stop bool
		if pauseChanged, stop = n.holdWhilePaused(ticker); stop {
			return
		}
		select {
		case <-pauseChanged:
			// Ask the Pauser again at the top of the loop.
		case <-ticker.C:
			n.core.Tick()
			n.tickReads()
		case m := <-n.recvc:
			n.step(m)
			for k := len(n.recvc); k > 0; k-- {
				n.step(<-n.recvc)
			}
		case p := <-n.propc:
			n.proposeQueued(p)
		case <-n.readc:
			// process starts the round for the waiting batch.
		case <-n.reportc:
			n.applyReports()
		case r := <-n.snapDonec:
			if err := n.snapshotDone(r); err != nil {
				n.err = err
				return
			}
		case reply := <-n.transferc:
			reply <- n.startTransfer()
		case f := <-n.callc:
			f(n.core)
		case <-n.stopc:
			return
		}
	}
}

// holdWhilePaused blocks while the Pauser says so. It returns the channel
// that signals the Pauser's next change (nil without a Pauser) and whether
// Stop was called meanwhile. Ticks missed while paused are not made up: the
// member resumes with its election timer where it stopped, as a stalled
// process would.
func (n *Node) holdWhilePaused(ticker *time.Ticker) (<-chan struct{}, bool) {
	box := n.pauser.Load()
	if box == nil {
		return nil, false
	}
	paused, until, changed := n.askPauser(box)
	if !paused {
		return changed, false
	}
	start := time.Now()
	n.log.Warn("raft loop paused by fault injection")
	for paused {
		var timeout <-chan time.Time
		var t *time.Timer
		if !until.IsZero() {
			t = time.NewTimer(time.Until(until))
			timeout = t.C
		}
		stopped := false
		select {
		case <-changed:
		case <-timeout:
		case <-n.stopc:
			stopped = true
		}
		if t != nil {
			t.Stop()
		}
		if stopped {
			return nil, true
		}
		paused, until, changed = n.askPauser(box)
		if b := n.pauser.Load(); b != box {
			return nil, false // replaced or removed: the next iteration asks it
		}
	}
	ticker.Reset(n.cfg.TickInterval)
	select {
	case <-ticker.C: // a tick queued while paused
	default:
	}
	n.log.Warn("raft loop resumed", "paused_for", time.Since(start).Round(time.Millisecond))
	return changed, false
}

// askPauser asks the Pauser; a pause whose deadline has passed is over,
// whatever the Pauser says (so a late answer cannot spin the loop).
func (n *Node) askPauser(box *pauserBox) (bool, time.Time, <-chan struct{}) {
	paused, until, changed := box.p.Pause()
	if paused && !until.IsZero() && !time.Now().Before(until) {
		paused = false
	}
	return paused, until, changed
}

// process starts a ReadIndex round if callers wait and none is in flight,
// then runs Readys until raft has nothing left.
func (n *Node) process() error {
	n.maybeStartRound()
	for n.core.HasReady() {
		out, err := n.core.HandleReady()
		if err != nil {
			n.log.Error("raft node stopped", "err", err)
			return err
		}
		n.handleOutput(out)
		n.startSnapshot(out.SnapshotJob)
		n.maybeStartRound()
	}
	n.publishStatus()
	return nil
}

func (n *Node) handleOutput(out Output) {
	for _, rs := range out.ReadStates {
		if n.round == nil || !bytes.Equal(rs.RequestCtx, n.round.rctx) {
			continue // a retried round's late answer
		}
		n.round.batch.index = rs.Index
		close(n.round.batch.done)
		n.round = nil
	}
	n.applied.advance(out.Applied)
	if out.SoftState != nil && out.SoftState.Lead != n.lastLeader {
		n.lastLeader = out.SoftState.Lead
		n.publishStatus() // before the notification: waiters read Status
		n.leaderMu.Lock()
		close(n.leaderCh)
		n.leaderCh = make(chan struct{})
		n.leaderMu.Unlock()
		n.log.Info("leader changed", "leader", fmt.Sprintf("%x", out.SoftState.Lead))
		if n.round != nil && out.SoftState.Lead != raft.None {
			// The round may have gone to the old leader; ask the new one.
			n.issueRound()
		}
	}
}

func (n *Node) step(m *raftpb.Message) {
	if err := n.core.Step(m); err != nil {
		n.log.Debug("dropped message", "type", m.GetType().String(), "from", fmt.Sprintf("%x", m.GetFrom()), "err", err)
	}
}

// proposeQueued proposes first and every proposal queued behind it, so all
// go into the same Ready. Consecutive normal proposals go to raft as one
// proposal of several entries (see Core.Propose) and share its outcome, up
// to MaxSizePerMsg bytes of data a batch (a follower forwards a batch to the
// leader as one message, which must stay within the transport's frame
// limit; a larger proposal goes alone, as before). A membership change is
// proposed on its own, in its place in the order.
func (n *Node) proposeQueued(first proposal) {
	var batch []proposal
	var size uint64
	flush := func() {
		if len(batch) == 0 {
			return
		}
		data := make([][]byte, len(batch))
		for i, p := range batch {
			data[i] = p.data
		}
		err := n.core.Propose(data...)
		for _, p := range batch {
			p.done <- err
		}
		batch, size = batch[:0], 0
	}
	p := first
	for k := len(n.propc); ; k-- {
		if p.cc != nil {
			flush()
			p.done <- n.core.ProposeConfChange(p.cc)
		} else {
			if size+uint64(len(p.data)) > n.cfg.Core.MaxSizePerMsg {
				flush()
			}
			batch = append(batch, p)
			size += uint64(len(p.data))
		}
		if k == 0 {
			break
		}
		p = <-n.propc
	}
	flush()
}

func (n *Node) maybeStartRound() {
	if n.round != nil {
		return
	}
	n.readMu.Lock()
	b := n.nextReads
	n.nextReads = nil
	n.readMu.Unlock()
	if b == nil {
		return
	}
	n.round = &readRound{batch: b}
	n.issueRound()
}

// issueRound asks raft for the round in flight under a fresh context; a
// retry (raft's answer to the old context may never come) keeps the same
// callers, who all arrived before this request is made.
func (n *Node) issueRound() {
	rctx := make([]byte, 8) // raft keeps it; never reuse
	binary.BigEndian.PutUint64(rctx, n.nextRctx)
	n.nextRctx++
	n.round.rctx, n.round.ticks = rctx, 0
	n.readRounds.Add(1)
	n.core.ReadIndex(rctx)
}

func (n *Node) tickReads() {
	if n.round == nil {
		return
	}
	n.round.ticks++
	if n.round.ticks >= n.cfg.Core.ElectionTicks {
		n.issueRound()
	}
}

func (n *Node) applyReports() {
	n.reportMu.Lock()
	unreachable, down, snaps := n.unreachable, n.down, n.snapReports
	n.unreachable, n.down, n.snapReports = make(map[uint64]struct{}), make(map[uint64]struct{}), make(map[uint64]bool)
	n.reportMu.Unlock()
	for id := range unreachable {
		n.core.ReportUnreachable(id)
	}
	for id := range down {
		n.core.ReportDown(id)
	}
	for id, failed := range snaps {
		n.core.ReportSnapshot(id, failed)
	}
}

// startTransfer picks the recently active voter with the highest Match
// (ties: lowest id) and asks raft to transfer to it; 0 when there is nothing
// to do. A voter the leader has not heard from lately would stall the
// transfer (raft refuses proposals while one is in progress).
func (n *Node) startTransfer() uint64 {
	st := n.core.Status()
	if st.RaftState != raft.StateLeader {
		return 0
	}
	var best, bestMatch uint64
	for id, pr := range st.Progress {
		if id == st.ID || pr.IsLearner || !pr.RecentActive {
			continue
		}
		if best == 0 || pr.Match > bestMatch || (pr.Match == bestMatch && id < best) {
			best, bestMatch = id, pr.Match
		}
	}
	if best != 0 {
		n.core.TransferLeadership(best)
	}
	return best
}

func (n *Node) publishStatus() {
	bs := n.core.BasicStatus()
	s := Status{
		ID:           bs.ID,
		Leader:       bs.Lead,
		Term:         bs.GetTerm(),
		CommitIndex:  bs.GetCommit(),
		AppliedIndex: n.core.Applied(),
		Role:         roleName(bs.RaftState),
		IsLeader:     bs.RaftState == raft.StateLeader,
	}
	if old := n.status.Load(); old == nil || *old != s {
		n.status.Store(&s)
	}
}
