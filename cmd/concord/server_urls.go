package main

// etcd's URL-list flags (--listen-client-urls, --advertise-client-urls,
// --listen-peer-urls, --initial-advertise-peer-urls, --listen-metrics-urls)
// and listening on every address they name.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
)

// parseURLs parses a comma-separated list of http:// or https://host:port
// URLs (etcd's URL-list flags), keeping each URL's scheme: https makes that
// listener (or link) TLS. unix and unixs URLs are refused.
func parseURLs(flag, v string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: want http://host:port or https://host:port", flag, part)
		}
		switch u.Scheme {
		case "http", "https":
		case "unix", "unixs":
			return nil, fmt.Errorf("--%s %q: unix socket URLs are not supported; use http:// or https://", flag, part)
		default:
			return nil, fmt.Errorf("--%s %q: want http://host:port or https://host:port", flag, part)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return nil, fmt.Errorf("--%s %q: a URL here has no path", flag, part)
		}
		if err := checkHostPort(flag, u.Host); err != nil {
			return nil, err
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s: no URL in %q", flag, v)
	}
	return out, nil
}

// urlHosts returns the host:port of each URL parseURLs returned.
func urlHosts(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		_, out[i], _ = strings.Cut(u, "://")
	}
	return out
}

// isHTTPS reports whether a URL from parseURLs (or a peer URL) is https.
func isHTTPS(u string) bool { return strings.HasPrefix(u, "https://") }

// urlsSecure returns, for each URL, whether it is https.
func urlsSecure(urls []string) []bool {
	out := make([]bool, len(urls))
	for i, u := range urls {
		out[i] = isHTTPS(u)
	}
	return out
}

// scheme is the URL scheme of a plain or TLS listener.
func scheme(secure bool) string {
	if secure {
		return "https"
	}
	return "http"
}

// listenAddrs expands one listen address into what to bind: "localhost"
// means loopback, so it binds 127.0.0.1 and, where the host has IPv6, ::1
// (net.Listen on a name binds only one of its addresses).
func listenAddrs(hostport string) (required string, optional []string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || !strings.EqualFold(host, "localhost") {
		return hostport, nil
	}
	return net.JoinHostPort("127.0.0.1", port), []string{net.JoinHostPort("::1", port)}
}

// listenAll binds every address (expanded by listenAddrs). An address whose
// secure entry is true is served over TLS with tc (secure may be nil: all
// plain). On error it closes what it bound.
func listenAll(what string, addrs []string, secure []bool, tc *tls.Config) ([]net.Listener, error) {
	var lns []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	for i, a := range addrs {
		wrap := func(ln net.Listener) net.Listener { return ln }
		if i < len(secure) && secure[i] {
			if tc == nil {
				// serverTLSFlags.check refuses this combination first.
				return fail(fmt.Errorf("listen for %s on %s: https without TLS configuration", what, a))
			}
			wrap = func(ln net.Listener) net.Listener { return tls.NewListener(ln, tc) }
		}
		req, opt := listenAddrs(a)
		ln, err := net.Listen("tcp", req)
		if err != nil {
			return fail(fmt.Errorf("listen for %s on %s: %w", what, a, err))
		}
		lns = append(lns, wrap(ln))
		for _, o := range opt {
			if ln, err := net.Listen("tcp", o); err == nil {
				lns = append(lns, wrap(ln))
			}
		}
	}
	return lns, nil
}

// mergedListener accepts from several listeners as one (the peer transport
// serves one listener; etcd lets --listen-peer-urls name several).
type mergedListener struct {
	lns   []net.Listener
	conns chan net.Conn
	errs  chan error

	once sync.Once
	done chan struct{}
}

func mergeListeners(lns []net.Listener) net.Listener {
	if len(lns) == 1 {
		return lns[0]
	}
	m := &mergedListener{lns: lns, conns: make(chan net.Conn), errs: make(chan error, len(lns)), done: make(chan struct{})}
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					select {
					case m.errs <- err:
					default:
					}
					return
				}
				select {
				case m.conns <- c:
				case <-m.done:
					c.Close()
					return
				}
			}
		}()
	}
	return m
}

func (m *mergedListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case err := <-m.errs:
		return nil, err
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *mergedListener) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			if e := ln.Close(); err == nil {
				err = e
			}
		}
	})
	return err
}

func (m *mergedListener) Addr() net.Addr { return m.lns[0].Addr() }

// serverAddrs are the resolved listen and advertise addresses of a member:
// etcd's URL-list flags when given, else Concord's host:port flags (which
// are always plain http).
type serverAddrs struct {
	listenClient    []string // host:port
	clientTLS       []bool   // per listenClient: https
	advertiseClient []string // http(s)://host:port
	listenPeer      []string // host:port
	peerTLS         []bool   // per listenPeer: https
	advertisePeer   string   // http(s)://host:port, this member's --initial-cluster URL
	listenMetrics   []string // host:port; may be empty
	metricsTLS      []bool   // per listenMetrics: https
}

func (f serverFlags) addrs() (serverAddrs, error) {
	var a serverAddrs
	if f.listenClientURLs != "" {
		urls, err := parseURLs("listen-client-urls", f.listenClientURLs)
		if err != nil {
			return a, err
		}
		a.listenClient, a.clientTLS = urlHosts(urls), urlsSecure(urls)
	} else {
		if err := checkHostPort("listen-client", f.listenClient); err != nil {
			return a, err
		}
		a.listenClient, a.clientTLS = []string{f.listenClient}, []bool{false}
	}
	// The Concord host:port flags take the scheme of the first listen URL.
	clientScheme := scheme(a.clientTLS[0])
	switch {
	case f.advertiseClientURLs != "":
		urls, err := parseURLs("advertise-client-urls", f.advertiseClientURLs)
		if err != nil {
			return a, err
		}
		a.advertiseClient = urls
	case f.advertiseClient != "":
		if err := checkHostPort("advertise-client", f.advertiseClient); err != nil {
			return a, err
		}
		a.advertiseClient = []string{clientScheme + "://" + f.advertiseClient}
	default:
		for i, h := range a.listenClient {
			a.advertiseClient = append(a.advertiseClient, scheme(a.clientTLS[i])+"://"+h)
		}
	}
	if f.listenPeerURLs != "" {
		urls, err := parseURLs("listen-peer-urls", f.listenPeerURLs)
		if err != nil {
			return a, err
		}
		a.listenPeer, a.peerTLS = urlHosts(urls), urlsSecure(urls)
	} else {
		if err := checkHostPort("listen-peer", f.listenPeer); err != nil {
			return a, err
		}
		a.listenPeer, a.peerTLS = []string{f.listenPeer}, []bool{false}
	}
	switch {
	case f.initialAdvertisePeerURLs != "":
		urls, err := parseURLs("initial-advertise-peer-urls", f.initialAdvertisePeerURLs)
		if err != nil {
			return a, err
		}
		a.advertisePeer = urls[0]
	case f.advertisePeer != "":
		a.advertisePeer = f.advertisePeer
	default:
		a.advertisePeer = scheme(a.peerTLS[0]) + "://" + a.listenPeer[0]
	}
	if f.listenMetricsURLs != "" {
		urls, err := parseURLs("listen-metrics-urls", f.listenMetricsURLs)
		if err != nil {
			return a, err
		}
		a.listenMetrics, a.metricsTLS = urlHosts(urls), urlsSecure(urls)
	}
	if f.adminListen != "" {
		if err := checkHostPort("admin-listen", f.adminListen); err != nil {
			return a, err
		}
		a.listenMetrics = append(a.listenMetrics, f.adminListen)
		a.metricsTLS = append(a.metricsTLS, false)
	}
	return a, nil
}
