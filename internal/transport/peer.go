package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	// writeBufferSize is the bufio.Writer size of a message stream: large
	// enough that a batch of heartbeats and small MsgApps is one syscall.
	writeBufferSize = 64 << 10
	// maxBatchMessages and maxBatchBytes bound one batch, so that one
	// IOTimeout covers a bounded amount of data and a long queue does not
	// delay the flush of its head.
	maxBatchMessages = 1024
	maxBatchBytes    = 4 << 20
	// maxKeptScratch is the largest encode buffer kept between messages; a
	// rare huge MsgApp should not pin its buffer for the life of the stream.
	maxKeptScratch = 1 << 20
)

// peer is one remote member as seen by the sending side.
type peer struct {
	id    uint64
	addr  string // immutable: a new address makes a new peer
	queue chan *raftpb.Message

	ctx    context.Context // cancelled by stop or by Transport.Close
	cancel context.CancelFunc
	done   chan struct{} // closed when runPeer returns

	activeSince atomic.Int64 // unix nanos of the current stream's handshake; 0 when down
	sent        atomic.Uint64
	batches     atomic.Uint64
	dropped     atomic.Uint64
}

func newPeer(parent context.Context, id uint64, addr string, queueSize int) *peer {
	ctx, cancel := context.WithCancel(parent)
	return &peer{
		id:     id,
		addr:   addr,
		queue:  make(chan *raftpb.Message, queueSize),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
}

// stop cancels the peer and waits for its writer. The writer must have been
// started (AddPeer starts it right after creating the peer).
func (p *peer) stop() {
	p.cancel()
	<-p.done
}

// backoff computes reconnect delays: min, 2·min, 4·min, ... capped at max,
// each jittered into [d/2, d).
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next(jitter float64) time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + time.Duration(jitter*float64(b.cur-half))
}

func (b *backoff) reset() { b.cur = 0 }

// runPeer is the peer's writer goroutine: it dials, streams the queue, and
// redials with backoff until the peer is stopped.
func (t *Transport) runPeer(p *peer) {
	defer close(p.done)
	log := t.log.With(slog.Uint64("peer", p.id), slog.String("addr", p.addr))
	bo := backoff{min: t.cfg.MinBackoff, max: t.cfg.MaxBackoff}
	// lastErr dedupes failure logs: a peer that stays down is logged once
	// per distinct error, not once per attempt.
	var lastErr string
	for {
		conn, err := t.dial(p.ctx, p.id, p.addr, kindMessage)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			if s := err.Error(); s != lastErr {
				lastErr = s
				if errors.Is(err, ErrRefused) {
					log.Error("transport: peer refused message stream", slog.Any("err", err))
				} else {
					log.Warn("transport: cannot reach peer", slog.Any("err", err))
				}
			}
			t.h.ReportUnreachable(p.id)
			if processGone(err) {
				t.h.ReportDown(p.id)
			}
			if !sleep(p.ctx, bo.next(t.jitter())) {
				return
			}
			continue
		}
		bo.reset()
		lastErr = ""
		log.Info("transport: message stream up")
		up := time.Now()
		err = t.stream(p, conn)
		if p.ctx.Err() != nil {
			return
		}
		log.Warn("transport: message stream broke", slog.Any("err", err))
		t.h.ReportUnreachable(p.id)
		// A stream that lasted at least MinBackoff is redialed at once: if
		// the peer's process died, the redial is refused and ReportDown
		// comes within a round trip of the death, on every member at about
		// the same moment, which is what the early election needs. A stream
		// that broke sooner waits, so that a peer that accepts and at once
		// drops us cannot make us spin: at most one immediate redial per
		// MinBackoff.
		if time.Since(up) < t.cfg.MinBackoff && !sleep(p.ctx, bo.next(t.jitter())) {
			return
		}
	}
}

// errResetBeforeReply marks a plain-TCP dial whose connection was reset
// after our hello and before the peer's reply.
var errResetBeforeReply = errors.New("reset before the handshake reply")

// processGone reports whether a failed dial proves the peer's process is
// not running or is exiting: refused, or, without TLS, reset before the
// handshake's reply (see ReportDown in the package comment). After kill -9
// the kernel may close the process's connections before its listener, so a
// redial made as soon as the stream broke can be taken by the dying
// listener and reset. With TLS a reset proves less: a running peer that
// refuses our certificate, or a plain listener reading our ClientHello as a
// bad hello, closes with our bytes unread, which resets the connection.
func processGone(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, errResetBeforeReply)
}

var errPeerClosedStream = errors.New("transport: peer closed the stream")

// stream writes p's queue to conn in batches until the connection fails or p
// is stopped. It owns conn and closes it before returning.
func (t *Transport) stream(p *peer, conn net.Conn) error {
	stopClose := closeOnDone(p.ctx, conn)
	defer stopClose()
	p.activeSince.Store(time.Now().UnixNano())
	defer p.activeSince.Store(0)

	// The acceptor never writes on a message stream after the handshake, so
	// a read that returns means the peer went away. Watching for it lets us
	// redial at once instead of losing the next batch to a dead socket.
	peerGone := make(chan struct{})
	go func() {
		defer close(peerGone)
		var b [1]byte
		conn.Read(b[:])
		conn.Close()
	}()
	defer func() {
		conn.Close()
		<-peerGone
	}()

	bw := bufio.NewWriterSize(conn, writeBufferSize)
	var scratch []byte
	for {
		var m *raftpb.Message
		select {
		case <-p.ctx.Done():
			return nil
		case <-peerGone:
			return errPeerClosedStream
		case m = <-p.queue:
		}
		if err := conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout)); err != nil {
			return fmt.Errorf("transport: set write deadline: %w", err)
		}
		n, size := 0, 0
		for {
			var err error
			var k int
			scratch, k, err = t.writeFrame(bw, scratch, m)
			if err != nil {
				return err
			}
			n++
			size += k
			if n >= maxBatchMessages || size >= maxBatchBytes {
				break
			}
			select {
			case m = <-p.queue:
				continue
			default:
			}
			break
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("transport: write to peer %d: %w", p.id, err)
		}
		p.sent.Add(uint64(n))
		p.batches.Add(1)
		if cap(scratch) > maxKeptScratch {
			scratch = nil
		}
	}
}

// writeFrame encodes m as one frame into scratch and writes it to w. An
// error means w failed; a message that cannot be encoded is logged, dropped
// and not an error (the stream is fine, raft will resend).
func (t *Transport) writeFrame(w *bufio.Writer, scratch []byte, m *raftpb.Message) ([]byte, int, error) {
	size := proto.Size(m)
	if size == 0 || size > t.cfg.MaxMessageBytes {
		t.log.Error("transport: dropping message that cannot be framed",
			slog.Uint64("peer", m.GetTo()), slog.String("type", m.GetType().String()),
			slog.Int("bytes", size), slog.Int("max", t.cfg.MaxMessageBytes))
		return scratch, 0, nil
	}
	scratch = binary.BigEndian.AppendUint32(scratch[:0], uint32(size))
	scratch, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(scratch, m)
	if err != nil {
		t.log.Error("transport: dropping message that cannot be encoded",
			slog.Uint64("peer", m.GetTo()), slog.String("type", m.GetType().String()), slog.Any("err", err))
		return scratch, 0, nil
	}
	if _, err := w.Write(scratch); err != nil {
		return scratch, 0, fmt.Errorf("transport: write to peer %d: %w", m.GetTo(), err)
	}
	return scratch, len(scratch), nil
}

// dial connects to member to at addr and completes the handshake for a
// stream of the given kind. The returned conn has no deadlines set.
func (t *Transport) dial(ctx context.Context, to uint64, addr string, kind streamKind) (net.Conn, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial member %d at %s: %w", to, addr, err)
	}
	stopClose := closeOnDone(ctx, conn)
	fail := func(err error) (net.Conn, error) {
		stopClose()
		conn.Close()
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(t.cfg.DialTimeout)); err != nil {
		return fail(fmt.Errorf("transport: handshake with member %d at %s: %w", to, addr, err))
	}
	secured, err := clientTLS(ctx, conn, addr, t.cfg.TLS)
	if err != nil {
		return fail(fmt.Errorf("transport: member %d: %w", to, err))
	}
	conn = secured
	hb := hello{version: protocolVersion, kind: kind, clusterID: t.cfg.ClusterID, from: t.cfg.ID, to: to}.marshal()
	_, err = conn.Write(hb[:])
	var code replyCode
	var reason string
	if err == nil {
		_, code, reason, err = readReply(conn)
	}
	if err != nil {
		if t.cfg.TLS == nil && errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("%w: %w", errResetBeforeReply, err)
		}
		return fail(fmt.Errorf("transport: handshake with member %d at %s: %w", to, addr, err))
	}
	if code == replyRemoved {
		t.reportRemoved(to)
		return fail(fmt.Errorf("%w: %w by member %d at %s (%s stream): %s", ErrRemoved, ErrRefused, to, addr, kind, reason))
	}
	if code != replyAccept {
		return fail(fmt.Errorf("%w by member %d at %s (%s %s stream): %s", ErrRefused, to, addr, code, kind, reason))
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return fail(fmt.Errorf("transport: handshake with member %d at %s: %w", to, addr, err))
	}
	if !stopClose() {
		// ctx ended during the handshake and the conn is already closed.
		conn.Close()
		return nil, ctx.Err()
	}
	return conn, nil
}
