package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// The request stream and the removed-member refusal, documented in doc.go.
const (
	kindRequest  streamKind = 3
	replyRemoved replyCode  = 6

	// MaxRequestBytes caps a request and a response body.
	MaxRequestBytes = 16 << 20

	requestOK    = 0
	requestError = 1
)

// ErrRemoved means the remote member refused us because this member was
// removed from the cluster.
var ErrRemoved = errors.New("transport: this member was removed from the cluster")

// RequestHandler is implemented by a Handler that answers request streams
// (Request): the member-list query of a joining member, forwarded member
// operations. Without it, every request is answered with an error.
type RequestHandler interface {
	// ServeRequest answers one request body. It runs on the inbound
	// connection's goroutine and may block; ctx ends when the Transport
	// closes. A returned error travels to the caller as its text.
	ServeRequest(ctx context.Context, req []byte) ([]byte, error)
}

// RemovalHandler is implemented by a Handler that knows which members were
// removed from the cluster. Their handshakes are refused with the "removed"
// code, and a member refused that way hears ReportRemoved: it is out of the
// cluster for good and should stop. Neither method may block.
type RemovalHandler interface {
	IsRemoved(id uint64) bool
	ReportRemoved(by uint64)
}

func (t *Transport) isRemoved(id uint64) bool {
	rh, ok := t.h.(RemovalHandler)
	return ok && id != 0 && rh.IsRemoved(id)
}

func (t *Transport) reportRemoved(by uint64) {
	if rh, ok := t.h.(RemovalHandler); ok {
		rh.ReportRemoved(by)
	}
}

// checkRequest accepts a request hello: it names no member, and a cluster id
// of 0 means the dialer does not know it yet (a member about to join).
func checkRequest(h hello, clusterID uint64) (replyCode, string, bool) {
	if h.kind != kindRequest {
		return 0, "", false
	}
	if h.clusterID != 0 && h.clusterID != clusterID {
		return replyClusterMismatch, fmt.Sprintf("cluster id mismatch: dialer is in cluster %x, this member is in cluster %x", h.clusterID, clusterID), true
	}
	return replyAccept, "", true
}

// Request sends one request body to the member listening at addr (host:port)
// and returns its answer. clusterID 0 is accepted by any cluster; otherwise
// a member of another cluster refuses. It dials a connection of its own, so
// it needs no Transport: a member that does not know its ids yet can use it.
// A non-nil tc makes the connection a TLS client with that configuration,
// as Config.TLS does for a Transport's streams.
func Request(ctx context.Context, addr string, tc *tls.Config, clusterID uint64, req []byte) ([]byte, error) {
	if len(req) > MaxRequestBytes {
		return nil, fmt.Errorf("%w: request of %d bytes", ErrFrameTooLarge, len(req))
	}
	d := net.Dialer{Timeout: DefaultDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	defer conn.Close()
	stop := closeOnDone(ctx, conn)
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	secured, err := clientTLS(ctx, conn, addr, tc)
	if err != nil {
		return nil, requestErr(ctx, addr, err)
	}
	conn = secured
	hb := hello{version: protocolVersion, kind: kindRequest, clusterID: clusterID}.marshal()
	msg := make([]byte, 0, len(hb)+4+len(req))
	msg = append(msg, hb[:]...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(req)))
	msg = append(msg, req...)
	if _, err := conn.Write(msg); err != nil {
		return nil, requestErr(ctx, addr, err)
	}
	_, code, reason, err := readReply(conn)
	if err != nil {
		return nil, requestErr(ctx, addr, err)
	}
	if code != replyAccept {
		return nil, fmt.Errorf("%w by %s (%s request): %s", ErrRefused, addr, code, reason)
	}
	var hdr [5]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, requestErr(ctx, addr, err)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxRequestBytes {
		return nil, fmt.Errorf("%w: answer of %d bytes from %s", ErrFrameTooLarge, n, addr)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, requestErr(ctx, addr, err)
	}
	switch hdr[0] {
	case requestOK:
		return body, nil
	case requestError:
		return nil, &RemoteError{Addr: addr, Text: string(body)}
	}
	return nil, fmt.Errorf("%w: answer status %d from %s", ErrBadFrame, hdr[0], addr)
}

func requestErr(ctx context.Context, addr string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("transport: request to %s: %w", addr, ctx.Err())
	}
	return fmt.Errorf("transport: request to %s: %w", addr, err)
}

// RemoteError is an error the remote member's RequestHandler returned; Text
// is its message.
type RemoteError struct {
	Addr string
	Text string
}

func (e *RemoteError) Error() string { return e.Text }

// serveRequest runs the acceptor's side of a request stream: read the body,
// ask the RequestHandler, write the answer.
func (t *Transport) serveRequest(conn net.Conn) error {
	if err := conn.SetReadDeadline(time.Now().Add(t.cfg.IOTimeout)); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("%w: read request: %w", ErrBadFrame, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxRequestBytes {
		return fmt.Errorf("%w: request of %d bytes", ErrFrameTooLarge, n)
	}
	req := make([]byte, n)
	if _, err := io.ReadFull(conn, req); err != nil {
		return fmt.Errorf("%w: read request: %w", ErrBadFrame, err)
	}
	var resp []byte
	var err error
	if rh, ok := t.h.(RequestHandler); ok {
		resp, err = rh.ServeRequest(t.ctx, req)
	} else {
		err = errors.New("transport: this member answers no requests")
	}
	status := byte(requestOK)
	if err != nil {
		status, resp = requestError, []byte(err.Error())
		t.log.Debug("transport: request failed", slog.Any("err", err))
	}
	if len(resp) > MaxRequestBytes {
		status, resp = requestError, []byte("transport: answer too large")
	}
	out := make([]byte, 0, 5+len(resp))
	out = append(out, status)
	out = binary.BigEndian.AppendUint32(out, uint32(len(resp)))
	out = append(out, resp...)
	if err := conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout)); err != nil {
		return err
	}
	if _, err := conn.Write(out); err != nil {
		return fmt.Errorf("transport: write answer: %w", err)
	}
	return nil
}
