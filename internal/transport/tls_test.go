package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/tlsconf/tlstest"
)

// peerTLS is one member's TLS material as the CLI builds it for
// --peer-cert-file, --peer-key-file, --peer-trusted-ca-file and
// --peer-client-cert-auth: the listener requires and verifies client
// certificates; the dialer verifies servers and presents the same
// certificate.
func peerTLS(t *testing.T, own tlstest.Pair, trusted *tlstest.CA) (server, client *tls.Config) {
	t.Helper()
	cert := own.TLS(t)
	server = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    trusted.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      trusted.Pool(),
	}
	return server, client
}

// startTLSMember starts a member whose listener is TLS (wrapped by the
// caller, as the CLI does) and whose dials use client.
func startTLSMember(t *testing.T, id uint64, server, client *tls.Config) *member {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startMemberOn(t, id, tls.NewListener(ln, server), func(c *Config) { c.TLS = client })
}

func TestTLSMembersExchange(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster CA")
	sa, ca1 := peerTLS(t, ca.Issue(t, "m1", "127.0.0.1"), ca)
	sb, cb := peerTLS(t, ca.Issue(t, "m2", "127.0.0.1"), ca)
	a, b := startTLSMember(t, 1, sa, ca1), startTLSMember(t, 2, sb, cb)
	connect(a, b)
	exchange(t, 500, a, b)

	// A snapshot travels on its own TLS stream.
	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{Data: []byte("snapshot over tls"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(7), Term: proto.Uint64(1)}}
	a.tr.Send([]*raftpb.Message{snap})
	if got := a.rec.nextSnapReport(t); got != (snapReport{2, false}) {
		t.Fatalf("ReportSnapshot = %+v, want {2 false}", got)
	}
	if got := b.rec.next(t); got.GetType() != raftpb.MsgSnap || string(got.Snapshot.Data) != "snapshot over tls" {
		t.Fatalf("received %v, want the snapshot", got)
	}
}

func TestTLSRequest(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster CA")
	other := tlstest.NewCA(t, "other CA")
	server, _ := peerTLS(t, ca.Issue(t, "m1", "127.0.0.1"), ca)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &memberHandler{recorder: newRecorder(), removed: map[uint64]bool{}, removedBy: make(chan uint64, 1)}
	tr, err := New(Config{ID: 1, ClusterID: 0xC0C0, Logger: slog.New(slog.DiscardHandler)}, h)
	if err != nil {
		t.Fatal(err)
	}
	tr.Serve(tls.NewListener(ln, server))
	t.Cleanup(func() { tr.Close() })
	addr := ln.Addr().String()

	_, good := peerTLS(t, ca.Issue(t, "joiner", "127.0.0.1"), ca)
	_, rogue := peerTLS(t, other.Issue(t, "rogue", "127.0.0.1"), ca)
	_, distrustful := peerTLS(t, ca.Issue(t, "joiner", "127.0.0.1"), other)
	cases := []struct {
		name string
		tc   *tls.Config
		ok   bool
		err  string
	}{
		{"trusted client", good, true, ""},
		// The server refuses the certificate after the client's half of the
		// TLS 1.3 handshake, so the client hears it on its first read.
		{"client certificate from another CA", rogue, false, "tls:"},
		{"server not trusted by the client", distrustful, false, "unknown authority"},
		{"plain text to a TLS port", nil, false, ""},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		got, err := Request(ctx, addr, c.tc, 0, []byte("hi"))
		cancel()
		if c.ok {
			if err != nil || string(got) != "echo:hi" {
				t.Errorf("Request(%s) = %q, %v; want echo:hi", c.name, got, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("Request(%s) = %q, %v; want an error containing %q", c.name, got, err, c.err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Request(%s) hung until its deadline instead of failing", c.name)
		}
	}
}

// TestTLSPeerFromAnotherCARefused: a member whose certificate comes from
// another CA reaches nobody, in either direction, and nothing it sends is
// delivered.
func TestTLSPeerFromAnotherCARefused(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster CA")
	other := tlstest.NewCA(t, "other CA")
	sa, cla := peerTLS(t, ca.Issue(t, "m1", "127.0.0.1"), ca)
	a := startTLSMember(t, 1, sa, cla)
	// The rogue trusts the cluster's CA, so only its own certificate is
	// wrong: member 1 must be the one refusing it.
	sr, cr := peerTLS(t, other.Issue(t, "rogue", "127.0.0.1"), ca)
	rogue := startTLSMember(t, 2, sr, cr)
	connect(a, rogue)

	rogue.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 2, 1, 1)})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)})
	a.logs.waitFor(t, "refused peer connection", "TLS handshake")
	a.logs.waitFor(t, "cannot reach peer", "certificate signed by unknown authority")
	rogue.rec.waitUnreachable(t, 1)
	a.rec.waitUnreachable(t, 2)
	if a.tr.PeerConnected(2) || rogue.tr.PeerConnected(1) {
		t.Errorf("PeerConnected = %t, %t; want false, false", a.tr.PeerConnected(2), rogue.tr.PeerConnected(1))
	}
	a.rec.expectNoMessage(t)
	rogue.rec.expectNoMessage(t)
	// Both are running: a refused or reset TLS handshake is not a death.
	if a.rec.nDown.Load() != 0 || rogue.rec.nDown.Load() != 0 {
		t.Errorf("ReportDown called %d and %d times between running members", a.rec.nDown.Load(), rogue.rec.nDown.Load())
	}
}

// TestTLSPlainDialerRefused: a member without TLS cannot talk to a TLS
// listener (its hello is not a ClientHello), and a TLS member cannot talk
// to a plain one.
func TestTLSPlainDialerRefused(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster CA")
	sa, cla := peerTLS(t, ca.Issue(t, "m1", "127.0.0.1"), ca)
	a := startTLSMember(t, 1, sa, cla)
	plain := startMember(t, 2)
	connect(a, plain)
	plain.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 2, 1, 1)})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)})
	a.logs.waitFor(t, "refused peer connection", "TLS handshake")
	plain.rec.waitUnreachable(t, 1)
	a.rec.waitUnreachable(t, 2)
	a.rec.expectNoMessage(t)
	plain.rec.expectNoMessage(t)
	// The plain listener closes on the TLS member's ClientHello without
	// reading all of it, which resets the TLS dial: not a death.
	if n := a.rec.nDown.Load(); n != 0 {
		t.Errorf("ReportDown called %d times for a running plain member", n)
	}
}
