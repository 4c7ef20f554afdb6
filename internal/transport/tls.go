package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// clientTLS makes conn, dialed to addr, a TLS client connection when tc is
// non-nil and completes the handshake within ctx and conn's deadline. The
// server name to verify is addr's host unless tc names one.
func clientTLS(ctx context.Context, conn net.Conn, addr string, tc *tls.Config) (net.Conn, error) {
	if tc == nil {
		return conn, nil
	}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("transport: TLS to %s: %w", addr, err)
		}
		tc = tc.Clone()
		tc.ServerName = host
	}
	c := tls.Client(conn, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("transport: TLS handshake with %s: %w", addr, err)
	}
	return hardCloseConn{c}, nil
}

// hardCloseConn closes a TLS connection without sending close_notify.
// tls.Conn.Close writes that alert with a 5-second deadline, so closing a
// stream to a wedged peer — from the writer after a write timeout, or under
// Transport.mu when a stream is replaced — could stall. Every stream here
// delimits its own data, so the alert carries nothing.
type hardCloseConn struct{ *tls.Conn }

func (c hardCloseConn) Close() error { return c.NetConn().Close() }
