package admin

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// sniffTimeout bounds how long a new connection may stay silent before its
// first bytes decide where it goes. gRPC clients send their preface at once;
// HTTP clients their request line.
const sniffTimeout = 10 * time.Second

// http2Prefix is how every HTTP/2 connection (hence every gRPC one) starts:
// the client preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". No HTTP/1 method
// starts with these three bytes.
const http2Prefix = "PRI"

// IsHTTP2Preface reports whether the first bytes of a connection begin the
// HTTP/2 client preface (len(b) >= 3 is needed to decide).
func IsHTTP2Preface(b []byte) bool { return len(b) >= 3 && string(b[:3]) == http2Prefix }

// PortMux splits one listener into two by protocol: connections opening
// with the HTTP/2 preface go to GRPC(), all others to HTTP(). See the
// package doc for why. On a TLS port the listener is a tls.NewListener, so
// TLS ends before the mux and the sniff reads plaintext (the handshake runs
// in the per-connection goroutine, under the same sniff timeout).
type PortMux struct {
	ln   net.Listener
	grpc *subListener
	http *subListener

	closeOnce sync.Once
	done      chan struct{}
}

// NewPortMux wraps ln; call Serve to start dispatching.
func NewPortMux(ln net.Listener) *PortMux {
	m := &PortMux{ln: ln, done: make(chan struct{})}
	m.grpc = &subListener{mux: m, conns: make(chan net.Conn)}
	m.http = &subListener{mux: m, conns: make(chan net.Conn)}
	return m
}

// GRPC is the listener of HTTP/2 (gRPC) connections.
func (m *PortMux) GRPC() net.Listener { return m.grpc }

// HTTP is the listener of every other connection (HTTP/1.x).
func (m *PortMux) HTTP() net.Listener { return m.http }

// Serve accepts connections and dispatches them until the listener fails or
// Close is called; after Close it returns nil.
func (m *PortMux) Serve() error {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.Close()
			return err
		}
		go m.dispatch(c)
	}
}

// dispatch reads the first bytes of c and hands it, with those bytes put
// back, to the matching listener.
func (m *PortMux) dispatch(c net.Conn) {
	var buf [len(http2Prefix)]byte
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	n, err := io.ReadFull(c, buf[:])
	c.SetReadDeadline(time.Time{})
	if err != nil && n == 0 {
		c.Close()
		return
	}
	pc := &prefixConn{Conn: c, prefix: buf[:n]}
	to := m.http
	if IsHTTP2Preface(buf[:n]) {
		to = m.grpc
	}
	select {
	case to.conns <- pc:
	case <-m.done:
		c.Close()
	}
}

// Close stops accepting and makes both listeners' Accept fail.
func (m *PortMux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

// subListener is one side of a PortMux. Closing it closes the whole mux
// (servers close their listener when they stop).
type subListener struct {
	mux   *PortMux
	conns chan net.Conn
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.mux.done:
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error   { return l.mux.Close() }
func (l *subListener) Addr() net.Addr { return l.mux.ln.Addr() }

// prefixConn replays the sniffed bytes before reading on.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// NetConn returns the connection underneath (a *tls.Conn on a TLS client
// port), as tls.Conn.NetConn does, so gRPC's transport credentials can
// reach the TLS state of a connection the mux already handed over.
func (c *prefixConn) NetConn() net.Conn { return c.Conn }

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
