package etcd

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/concord-db/concord/internal/admin"
	"github.com/concord-db/concord/internal/tlsconf/tlstest"
)

// seen is what the server's interceptor found in one call's context.
type seen struct {
	cn       string
	ok       bool
	level    credentials.SecurityLevel
	authType string
}

// muxedServer runs one gRPC server with TLSInfoCreds behind two PortMuxes,
// one over a TLS listener and one over a plain listener, as runServer does
// for --listen-client-urls https://..,http://.. .
func muxedServer(t *testing.T, serverTLS *tls.Config) (tlsAddr, plainAddr string, calls <-chan seen) {
	t.Helper()
	ch := make(chan seen, 16)
	g := grpc.NewServer(grpc.Creds(TLSInfoCreds()), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			var s seen
			s.cn, s.ok = ClientCertCN(ctx)
			if p, ok := peer.FromContext(ctx); ok && p.AuthInfo != nil {
				s.authType = p.AuthInfo.AuthType()
				if ci, ok := p.AuthInfo.(interface {
					GetCommonAuthInfo() credentials.CommonAuthInfo
				}); ok {
					s.level = ci.GetCommonAuthInfo().SecurityLevel
				}
			}
			ch <- s
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(g, health.NewServer())
	var muxes []*admin.PortMux
	for _, secure := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if secure {
			tlsAddr = ln.Addr().String()
			ln = tls.NewListener(ln, serverTLS)
		} else {
			plainAddr = ln.Addr().String()
		}
		m := admin.NewPortMux(ln)
		muxes = append(muxes, m)
		go m.Serve()
		go g.Serve(m.GRPC())
	}
	t.Cleanup(func() {
		g.Stop()
		for _, m := range muxes {
			m.Close()
		}
	})
	return tlsAddr, plainAddr, ch
}

func check(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestTLSInfoCreds(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	other := tlstest.NewCA(t, "other CA")
	serverCert := ca.Issue(t, "member", "127.0.0.1").TLS(t)
	alice := ca.Issue(t, "alice").TLS(t)
	nameless := ca.Issue(t, "").TLS(t)
	mallory := other.Issue(t, "root").TLS(t)

	// VerifyClientCertIfGiven lets one server show both a verified and an
	// absent client certificate; --client-cert-auth requires one.
	serverTLS := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
		NextProtos:   []string{"http/1.1", "h2"},
	}
	tlsAddr, plainAddr, calls := muxedServer(t, serverTLS)
	client := func(certs ...tls.Certificate) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: certs})
	}
	cases := []struct {
		name  string
		addr  string
		creds credentials.TransportCredentials
		ok    bool // the call succeeds
		want  seen
	}{
		{"client certificate", tlsAddr, client(alice), true, seen{"alice", true, credentials.PrivacyAndIntegrity, "tls"}},
		{"no client certificate", tlsAddr, client(), true, seen{"", false, credentials.PrivacyAndIntegrity, "tls"}},
		{"certificate without CN", tlsAddr, client(nameless), true, seen{"", false, credentials.PrivacyAndIntegrity, "tls"}},
		// Go's client offers only a certificate from a CA the server names,
		// so it offers none here; forced, the certificate is refused.
		{"certificate from another CA", tlsAddr, client(mallory), true, seen{"", false, credentials.PrivacyAndIntegrity, "tls"}},
		{"certificate from another CA, forced", tlsAddr, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mallory, nil }}), false, seen{}},
		{"plaintext listener", plainAddr, insecure.NewCredentials(), true, seen{"", false, credentials.NoSecurity, "insecure"}},
		{"plaintext to the TLS listener", tlsAddr, insecure.NewCredentials(), false, seen{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := check(t, c.addr, c.creds)
			if (err == nil) != c.ok {
				t.Fatalf("Check = %v, want success %v", err, c.ok)
			}
			if !c.ok {
				return
			}
			select {
			case got := <-calls:
				if got != c.want {
					t.Errorf("server saw %+v, want %+v", got, c.want)
				}
			default:
				t.Fatal("the call succeeded without passing the interceptor")
			}
		})
	}
}

// TestTLSInfoCredsWithoutIdentity: without --client-cert-auth the verified
// certificate is no identity, but the connection is still TLS.
func TestTLSInfoCredsWithoutIdentity(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, "member", "127.0.0.1").TLS(t)},
		ClientCAs:    ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert,
	}
	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{ca.Issue(t, "alice").TLS(t)}}
	go func() {
		// Read on after the handshake: session tickets follow it, and an
		// unbuffered pipe would block the server writing them.
		c := tls.Client(b, clientTLS)
		if c.Handshake() == nil {
			io.Copy(io.Discard, c)
		}
	}()
	_, ai, err := TLSInfoCredsWithoutIdentity().ServerHandshake(tls.Server(a, serverTLS))
	if err != nil {
		t.Fatal(err)
	}
	info, ok := ai.(credentials.TLSInfo)
	if !ok || !info.State.HandshakeComplete || info.State.VerifiedChains != nil || info.SecurityLevel != credentials.PrivacyAndIntegrity {
		t.Fatalf("AuthInfo = %#v", ai)
	}
	if cn, ok := ClientCertCN(peer.NewContext(context.Background(), &peer.Peer{AuthInfo: ai})); ok {
		t.Errorf("ClientCertCN = %q, true; want no identity", cn)
	}
}

func TestClientCertCNWithoutPeer(t *testing.T) {
	if cn, ok := ClientCertCN(context.Background()); ok || cn != "" {
		t.Errorf("ClientCertCN(no peer) = %q, %v", cn, ok)
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{}})
	if cn, ok := ClientCertCN(ctx); ok || cn != "" {
		t.Errorf("ClientCertCN(TLS without chains) = %q, %v", cn, ok)
	}
}
