package main

// etcd's URL-list flags (--listen-client-urls, --advertise-client-urls,
// --listen-peer-urls, --initial-advertise-peer-urls, --listen-metrics-urls)
// and listening on every address they name.

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
)

// parseURLs parses a comma-separated list of http://host:port URLs (etcd's
// URL-list flags). https and unix URLs are refused: Concord has no TLS yet.
func parseURLs(flag, v string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: want http://host:port", flag, part)
		}
		switch u.Scheme {
		case "http":
		case "https", "unix", "unixs":
			return nil, fmt.Errorf("--%s %q: %s URLs are not supported (Concord has no TLS yet); use http://", flag, part, u.Scheme)
		default:
			return nil, fmt.Errorf("--%s %q: want http://host:port", flag, part)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return nil, fmt.Errorf("--%s %q: a URL here has no path", flag, part)
		}
		if err := checkHostPort(flag, u.Host); err != nil {
			return nil, err
		}
		out = append(out, "http://"+u.Host)
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
		out[i] = strings.TrimPrefix(u, "http://")
	}
	return out
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

// listenAll binds every address (expanded by listenAddrs). On error it
// closes what it bound.
func listenAll(what string, addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	for _, a := range addrs {
		req, opt := listenAddrs(a)
		ln, err := net.Listen("tcp", req)
		if err != nil {
			return fail(fmt.Errorf("listen for %s on %s: %w", what, a, err))
		}
		lns = append(lns, ln)
		for _, o := range opt {
			if ln, err := net.Listen("tcp", o); err == nil {
				lns = append(lns, ln)
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
// etcd's URL-list flags when given, else Concord's host:port flags.
type serverAddrs struct {
	listenClient    []string // host:port
	advertiseClient []string // http://host:port
	listenPeer      []string // host:port
	advertisePeer   string   // http://host:port, this member's --initial-cluster URL
	listenMetrics   []string // host:port; may be empty
}

func (f serverFlags) addrs() (serverAddrs, error) {
	var a serverAddrs
	if f.listenClientURLs != "" {
		urls, err := parseURLs("listen-client-urls", f.listenClientURLs)
		if err != nil {
			return a, err
		}
		a.listenClient = urlHosts(urls)
	} else {
		if err := checkHostPort("listen-client", f.listenClient); err != nil {
			return a, err
		}
		a.listenClient = []string{f.listenClient}
	}
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
		a.advertiseClient = []string{"http://" + f.advertiseClient}
	default:
		for _, h := range a.listenClient {
			a.advertiseClient = append(a.advertiseClient, "http://"+h)
		}
	}
	if f.listenPeerURLs != "" {
		urls, err := parseURLs("listen-peer-urls", f.listenPeerURLs)
		if err != nil {
			return a, err
		}
		a.listenPeer = urlHosts(urls)
	} else {
		if err := checkHostPort("listen-peer", f.listenPeer); err != nil {
			return a, err
		}
		a.listenPeer = []string{f.listenPeer}
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
		a.advertisePeer = "http://" + a.listenPeer[0]
	}
	if f.listenMetricsURLs != "" {
		urls, err := parseURLs("listen-metrics-urls", f.listenMetricsURLs)
		if err != nil {
			return a, err
		}
		a.listenMetrics = urlHosts(urls)
	}
	if f.adminListen != "" {
		if err := checkHostPort("admin-listen", f.adminListen); err != nil {
			return a, err
		}
		a.listenMetrics = append(a.listenMetrics, f.adminListen)
	}
	return a, nil
}
