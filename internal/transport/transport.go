package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Handler receives what arrives and what the transport learns. It is
// implemented by the raft node.
//
// Every method may be called concurrently from several transport goroutines,
// and ReportUnreachable and ReportSnapshot may also be called from inside
// Send on the caller's goroutine. So no method may block for long, and none
// may call back into the Transport.
type Handler interface {
	// Process delivers one message addressed to this member. The message is
	// the handler's to keep. Messages from one peer's message stream arrive in
	// the order they were sent; a snapshot arrives on its own stream, so it is
	// not ordered with respect to that peer's other messages.
	Process(m *raftpb.Message)
	// ReportUnreachable tells raft a peer could not be reached: its send
	// queue was full, a dial failed, or its connection broke.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a MsgSnap ended. It is called
	// exactly once for every MsgSnap passed to Send before Close.
	ReportSnapshot(id uint64, failed bool)
	// ReportDown says a dial to peer id was refused at the TCP level, or
	// (without TLS) reset before the peer answered its hello: its host
	// answered that nothing listens at its address, or closed the listening
	// socket with our connection in it, so its process is not running or is
	// exiting (it crashed, was killed or stopped). This is stronger evidence than
	// ReportUnreachable: a partitioned, paused or slow peer makes dials time
	// out, it neither refuses nor resets them. It is called after
	// ReportUnreachable for the same failed dial, at every such redial.
	ReportDown(id uint64)
}

// Transport carries raft messages between members. Create it with New, start
// accepting with Serve, name peers with AddPeer, and stop everything with
// Close.
type Transport struct {
	cfg Config
	h   Handler
	log *slog.Logger

	// ctx is cancelled by Close; every connection closes itself when it is.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every goroutine started by the Transport; Close waits for it.
	// wg.Add happens only under mu with closed false, so it never races with
	// the Wait in Close.
	wg sync.WaitGroup
	// running counts live transport goroutines, for tests to assert on.
	running atomic.Int64

	// mu guards the fields below. It is never held while calling the
	// Handler, dialing, or waiting on a goroutine.
	mu        sync.RWMutex
	closed    bool
	peers     map[uint64]*peer
	listeners []net.Listener
	// inbound is the current inbound message stream of each remote member; a
	// newer stream from the same member replaces (and closes) the older one.
	inbound map[uint64]net.Conn

	// randMu guards cfg.Rand, which need not be safe for concurrent use.
	// It is a leaf lock.
	randMu sync.Mutex

	// delays holds messages an Interceptor delayed (intercept.go).
	delays delayQueue
}

// New returns a Transport for cfg that reports to h. It starts no goroutines
// until Serve or AddPeer is called.
func New(cfg Config, h Handler) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{
		cfg:     cfg,
		h:       h,
		log:     cfg.Logger.With(slog.Uint64("member", cfg.ID)),
		ctx:     ctx,
		cancel:  cancel,
		peers:   make(map[uint64]*peer),
		inbound: make(map[uint64]net.Conn),
		delays:  delayQueue{wake: make(chan struct{}, 1)},
	}, nil
}

// spawn runs f in a goroutine counted by wg, unless the Transport is closed.
func (t *Transport) spawn(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.goLocked(f)
	return true
}

// goLocked is spawn for callers that hold mu (read or write) and have seen
// closed false.
func (t *Transport) goLocked(f func()) {
	t.wg.Add(1)
	t.running.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.running.Add(-1)
		f()
	}()
}

// Serve accepts peer connections on ln in a goroutine it owns and returns at
// once. Close closes ln. Serve may be called more than once with different
// listeners; after Close it just closes ln.
func (t *Transport) Serve(ln net.Listener) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		ln.Close()
		return
	}
	t.listeners = append(t.listeners, ln)
	t.goLocked(func() { t.acceptLoop(ln) })
}

// AddPeer names the address (host:port) of member id and starts its message
// stream. It is idempotent; a changed address replaces the peer, dropping
// whatever was queued for the old address. It may block briefly while the
// old peer's goroutine stops.
func (t *Transport) AddPeer(id uint64, addr string) {
	if id == 0 || id == t.cfg.ID {
		t.log.Error("transport: ignoring peer with invalid id", slog.Uint64("peer", id), slog.String("addr", addr))
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.log.Error("transport: ignoring peer with invalid address", slog.Uint64("peer", id), slog.String("addr", addr), slog.Any("err", err))
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	old := t.peers[id]
	if old != nil && old.addr == addr {
		t.mu.Unlock()
		return
	}
	p := newPeer(t.ctx, id, addr, t.cfg.QueueSize)
	t.peers[id] = p
	// Count the goroutine now, while closed is known false, but start it only
	// after the old peer has stopped, so that one member never has two
	// outbound message streams of ours at once.
	t.wg.Add(1)
	t.running.Add(1)
	t.mu.Unlock()

	if old != nil {
		old.stop()
		t.log.Info("transport: peer address changed", slog.Uint64("peer", id), slog.String("from", old.addr), slog.String("to", addr))
	}
	go func() {
		defer t.wg.Done()
		defer t.running.Add(-1)
		t.runPeer(p)
	}()
}

// RemovePeer stops member id's message stream and forgets it; when the
// Handler's RemovalHandler says id was removed from the cluster, the stream
// id opened to us is closed too. A snapshot being sent to it fails
// (ReportSnapshot(id, true)). It blocks until the peer's writer goroutine
// has stopped.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	if in := t.inbound[id]; in != nil && t.isRemoved(id) {
		// A removed member's stream must not outlive its removal; when it
		// redials, it is refused and told why.
		in.Close()
	}
	t.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Send queues msgs for their peers and never blocks on the network. A message
// that does not fit its peer's queue is dropped and the peer is reported
// unreachable (once per Send call); a dropped MsgSnap also gets
// ReportSnapshot(failed). Messages to unknown peers are dropped. Each MsgSnap
// is sent on its own connection by its own goroutine. With a
// Config.Interceptor, each message to a known peer is first judged by it:
// dropped, held for a delay, or queued with extra copies.
//
// Send keeps the message pointers: the caller must not modify a message
// after passing it to Send (raft does not). Send is safe for concurrent use;
// after Close it drops everything without reporting.
func (t *Transport) Send(msgs []*raftpb.Message) {
	t.send(msgs, t.cfg.Interceptor)
}

// send is Send with the interceptor to apply (nil for messages whose delay
// is over). It reports false, having done nothing, when the Transport is
// closed.
func (t *Transport) send(msgs []*raftpb.Message, ic Interceptor) bool {
	// Report after releasing mu: the Handler must never run under it.
	var unreachBuf, snapFailBuf [4]uint64
	unreachable, snapFailed := unreachBuf[:0], snapFailBuf[:0]

	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return false
	}
	var p *peer
	for _, m := range msgs {
		to := m.GetTo()
		if p == nil || p.id != to {
			p = t.peers[to]
		}
		isSnap := m.GetType() == raftpb.MsgSnap
		if p == nil {
			t.log.Debug("transport: dropping message to unknown peer", slog.Uint64("peer", to), slog.String("type", m.GetType().String()))
			if isSnap {
				snapFailed = append(snapFailed, to)
			}
			continue
		}
		copies := 0
		if ic != nil {
			v := ic.Intercept(t.cfg.ID, to, m.GetType())
			if v.Drop {
				if isSnap {
					snapFailed = append(snapFailed, to)
				}
				continue
			}
			if !isSnap {
				copies = max(v.Copies, 0)
			}
			if v.Delay > 0 {
				if !t.delayLocked(m, 1+copies, v.Delay) {
					p.dropped.Add(uint64(1 + copies))
					unreachable = appendUnique(unreachable, to)
					if isSnap {
						snapFailed = append(snapFailed, to)
					}
				}
				continue
			}
		}
		if isSnap {
			// goLocked under the read lock is safe: Close needs the write
			// lock to set closed, so it cannot have started waiting.
			p := p
			t.goLocked(func() { t.sendSnapshot(p, m) })
			continue
		}
		for range 1 + copies {
			select {
			case p.queue <- m:
			default:
				p.dropped.Add(1)
				unreachable = appendUnique(unreachable, to)
			}
		}
	}
	t.mu.RUnlock()

	for _, id := range unreachable {
		t.h.ReportUnreachable(id)
	}
	for _, id := range snapFailed {
		t.h.ReportSnapshot(id, true)
	}
	return true
}

func appendUnique(s []uint64, id uint64) []uint64 {
	for _, v := range s {
		if v == id {
			return s
		}
	}
	return append(s, id)
}

// PeerStatus is a snapshot of one peer's outbound state, for debugging and
// the admin view.
type PeerStatus struct {
	ID   uint64
	Addr string
	// Connected is true while the outbound message stream is up.
	Connected bool
	// ActiveSince is when the current outbound stream completed its
	// handshake; zero when not connected.
	ActiveSince time.Time
	// Queued is the number of messages waiting in the queue.
	Queued int
	// Sent counts messages written to the stream (not necessarily received).
	Sent uint64
	// Batches counts flushes of the stream; Sent/Batches is the mean batch.
	Batches uint64
	// Dropped counts messages Send dropped because the queue was full.
	Dropped uint64
}

// PeerStatus returns the status of member id, or false if it is not a peer.
func (t *Transport) PeerStatus(id uint64) (PeerStatus, bool) {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		return PeerStatus{}, false
	}
	s := PeerStatus{
		ID:      p.id,
		Addr:    p.addr,
		Queued:  len(p.queue),
		Sent:    p.sent.Load(),
		Batches: p.batches.Load(),
		Dropped: p.dropped.Load(),
	}
	if ns := p.activeSince.Load(); ns != 0 {
		s.Connected = true
		s.ActiveSince = time.Unix(0, ns)
	}
	return s, true
}

// PeerConnected reports whether the outbound message stream to member id is
// up.
func (t *Transport) PeerConnected(id uint64) bool {
	s, ok := t.PeerStatus(id)
	return ok && s.Connected
}

// ActiveSince returns when the outbound message stream to member id came up,
// or the zero time if it is down or id is not a peer.
func (t *Transport) ActiveSince(id uint64) time.Time {
	s, _ := t.PeerStatus(id)
	return s.ActiveSince
}

// Close stops every goroutine the Transport started and waits for them,
// closing listeners and connections. Snapshots in flight fail. Queued
// messages are discarded. Close is idempotent; calls after the first return
// nil at once.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	listeners := t.listeners
	t.listeners = nil
	t.mu.Unlock()

	// Listeners first: a peer that sees its stream to us end and redials at
	// once must be refused (ReportDown), not accepted by a listener about to
	// close.
	var errs []error
	for _, ln := range listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	// Cancelling ctx closes every connection (each registered a
	// context.AfterFunc) and stops every peer, backoff and dial.
	t.cancel()
	t.wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("transport: close listeners: %w", errors.Join(errs...))
	}
	return nil
}

// jitter returns a uniform float in [0, 1).
func (t *Transport) jitter() float64 {
	if t.cfg.Rand == nil {
		return rand.Float64()
	}
	t.randMu.Lock()
	defer t.randMu.Unlock()
	return t.cfg.Rand.Float64()
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// closeOnDone closes c when ctx is done; the returned stop function undoes
// that and reports false if c has already been (or is being) closed.
func closeOnDone(ctx context.Context, c net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.Close() })
}
