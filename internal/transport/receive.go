package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	readBufferSize = 64 << 10
	// maxKeptFrameBuffer is the largest frame buffer a reader keeps between
	// frames.
	maxKeptFrameBuffer = 4 << 20
	// Accept errors that are not "closed" (EMFILE, ...) back off between
	// these bounds instead of spinning.
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// acceptLoop is the goroutine Serve starts for ln. It ends when ln is closed.
func (t *Transport) acceptLoop(ln net.Listener) {
	log := t.log.With(slog.String("listen", ln.Addr().String()))
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			log.Warn("transport: accept failed", slog.Any("err", err), slog.Duration("retry_in", delay))
			if !sleep(t.ctx, delay) {
				return
			}
			continue
		}
		delay = 0
		if !t.spawn(func() { t.serveConn(conn) }) {
			conn.Close()
			return
		}
	}
}

// serveConn runs the acceptor's side of one connection: handshake, then the
// stream's kind decides the rest. It owns conn.
func (t *Transport) serveConn(conn net.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = hardCloseConn{tc}
	}
	defer conn.Close()
	stopClose := closeOnDone(t.ctx, conn)
	defer stopClose()
	log := t.log.With(slog.String("remote", conn.RemoteAddr().String()))
	if tc, ok := conn.(hardCloseConn); ok {
		// Handshake explicitly, so a peer with a certificate we do not trust
		// is logged as such rather than as a bad hello.
		if err := t.serverTLS(tc.Conn); err != nil {
			log.Warn("transport: refused peer connection", slog.Any("err", err))
			return
		}
	}

	h, err := t.acceptHandshake(conn)
	if err != nil {
		log.Warn("transport: refused peer connection", slog.Any("err", err))
		return
	}
	log = log.With(slog.Uint64("peer", h.from), slog.String("stream", h.kind.String()))
	switch h.kind {
	case kindMessage:
		err = t.readMessages(conn, h.from)
	case kindSnapshot:
		err = t.receiveSnapshot(conn, h.from)
	case kindRequest:
		err = t.serveRequest(conn)
	}
	if err != nil && t.ctx.Err() == nil {
		log.Warn("transport: inbound stream ended", slog.Any("err", err))
	}
}

// acceptHandshake reads and answers the hello. Bytes that are not a hello at
// all get no answer.
func (t *Transport) acceptHandshake(conn net.Conn) (hello, error) {
	if err := conn.SetDeadline(time.Now().Add(t.cfg.DialTimeout)); err != nil {
		return hello{}, err
	}
	var b [helloLen]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return hello{}, fmt.Errorf("%w: read hello: %w", ErrBadHandshake, err)
	}
	h, err := parseHello(&b)
	if err != nil {
		return hello{}, err
	}
	code, reason := check(h, t.cfg.ID, t.cfg.ClusterID)
	if code == replyAccept && t.isRemoved(h.from) {
		code, reason = replyRemoved, fmt.Sprintf("member %x was removed from the cluster", h.from)
	}
	if _, err := conn.Write(appendReply(nil, code, reason)); err != nil {
		return hello{}, fmt.Errorf("%w: write reply: %w", ErrBadHandshake, err)
	}
	if code != replyAccept {
		return hello{}, fmt.Errorf("%w: member %d (%s stream): %s", ErrRefused, h.from, h.kind, reason)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return hello{}, err
	}
	return h, nil
}

// readMessages reads frames from an inbound message stream and hands them to
// the Handler until the stream ends or misbehaves.
func (t *Transport) readMessages(conn net.Conn, from uint64) error {
	t.mu.Lock()
	if old := t.inbound[from]; old != nil {
		// The peer redialed; its old stream is dead or soon will be, and
		// closing it keeps its messages from interleaving with the new ones.
		old.Close()
	}
	t.inbound[from] = conn
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.inbound[from] == conn {
			delete(t.inbound, from)
		}
		t.mu.Unlock()
	}()

	br := bufio.NewReaderSize(conn, readBufferSize)
	var hdr [frameHeaderLen]byte
	var buf []byte
	for {
		m, nbuf, err := readFrame(br, hdr[:], buf, t.cfg.MaxMessageBytes)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		buf = nbuf
		if cap(buf) > maxKeptFrameBuffer {
			buf = nil
		}
		if (m.GetFrom() != from && !relayed(m.GetType())) || m.GetTo() != t.cfg.ID {
			return fmt.Errorf("%w: %s %d->%d on stream %d->%d", ErrBadFrame, m.GetType(), m.GetFrom(), m.GetTo(), from, t.cfg.ID)
		}
		t.h.Process(m)
	}
}

// relayed reports whether raft passes messages of type typ on to its leader
// as they are, keeping the From of the member that sent them first: a
// follower forwards proposals, read-index requests and leadership transfers
// (stepFollower), including those another member had forwarded to it while
// it was the leader. Such a message arrives on the relaying member's stream
// with another member's From, and must be delivered: refusing it closes
// the stream, losing the proposal and whatever was queued behind it.
func relayed(typ raftpb.MessageType) bool {
	switch typ {
	case raftpb.MsgProp, raftpb.MsgReadIndex, raftpb.MsgTransferLeader:
		return true
	}
	return false
}

// readFrame reads one length-prefixed message. buf is reused when it is big
// enough; the returned message does not alias it (protobuf copies bytes
// fields while decoding). A clean end of stream before a frame starts is
// io.EOF.
func readFrame(r io.Reader, hdr, buf []byte, maxBytes int) (*raftpb.Message, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:frameHeaderLen]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, buf, fmt.Errorf("%w: truncated frame header", ErrBadFrame)
		}
		return nil, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:frameHeaderLen])
	if n == 0 {
		return nil, buf, fmt.Errorf("%w: empty frame", ErrBadFrame)
	}
	if uint64(n) > uint64(maxBytes) {
		return nil, buf, fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, n, maxBytes)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, buf, fmt.Errorf("%w: truncated frame: %w", ErrBadFrame, err)
	}
	m := new(raftpb.Message)
	if err := proto.Unmarshal(buf, m); err != nil {
		return nil, buf, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return m, buf, nil
}

// serverTLS completes the TLS handshake of an inbound connection within
// DialTimeout (the same bound as the hello that follows).
func (t *Transport) serverTLS(c *tls.Conn) error {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("%w: TLS handshake: %w", ErrBadHandshake, err)
	}
	return nil
}
