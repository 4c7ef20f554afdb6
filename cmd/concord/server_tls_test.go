package main

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concord-db/concord/internal/tlsconf"
	"github.com/concord-db/concord/internal/tlsconf/tlstest"
)

// tlsBase is a valid single-member flag set for the TLS table tests.
func tlsBase() serverFlags {
	return serverFlags{name: "a", listenClient: "127.0.0.1:1", listenPeer: "127.0.0.1:2", clusterState: "new",
		clusterToken: "t", heartbeat: 100 * time.Millisecond, election: time.Second, snapshotCount: 10,
		maxRequestBytes: 1, maxTxnOps: 1, logLevel: "info", autoCompactionMode: "periodic", autoCompactionRetention: "0",
		tls: serverTLSFlags{selfSignedCertValidity: 1}}
}

func TestServerTLSFlagCheck(t *testing.T) {
	withCert := func(f *serverFlags) { f.tls.certFile, f.tls.keyFile = "c.pem", "k.pem" }
	withPeerCert := func(f *serverFlags) { f.tls.peerCertFile, f.tls.peerKeyFile = "pc.pem", "pk.pem" }
	httpsPeer := func(f *serverFlags) {
		f.listenPeerURLs, f.initialAdvertisePeerURLs = "https://127.0.0.1:2", "https://127.0.0.1:2"
	}
	cases := []struct {
		name string
		mod  func(*serverFlags)
		err  string // "" means valid
	}{
		{"plain", func(*serverFlags) {}, ""},
		{"https client with cert", func(f *serverFlags) { withCert(f); f.listenClientURLs = "https://127.0.0.1:1" }, ""},
		{"https client with auto-tls", func(f *serverFlags) { f.tls.autoTLS = true; f.listenClientURLs = "https://127.0.0.1:1" }, ""},
		{"plain and https client listeners", func(f *serverFlags) {
			withCert(f)
			f.listenClientURLs = "http://127.0.0.1:1,https://127.0.0.1:3"
		}, ""},
		{"https client without cert", func(f *serverFlags) { f.listenClientURLs = "http://127.0.0.1:1,https://127.0.0.1:3" },
			"TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:3 with HTTPS scheme (or use --auto-tls)"},
		{"https client with only a CA", func(f *serverFlags) { f.tls.trustedCAFile = "ca.pem"; f.listenClientURLs = "https://127.0.0.1:1" },
			"must be provided for client url"},
		{"cert without key", func(f *serverFlags) { f.tls.certFile = "c.pem" }, "--cert-file and --key-file must be given together"},
		{"key without cert", func(f *serverFlags) { f.tls.keyFile = "k.pem" }, "--cert-file and --key-file must be given together"},
		{"peer cert without key", func(f *serverFlags) { f.tls.peerCertFile = "c.pem" }, "--peer-cert-file and --peer-key-file must be given together"},
		{"https metrics without cert", func(f *serverFlags) { f.listenMetricsURLs = "https://127.0.0.1:9" },
			"client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url https://127.0.0.1:9"},
		{"https metrics with cert", func(f *serverFlags) { withCert(f); f.listenMetricsURLs = "https://127.0.0.1:9" }, ""},
		{"https peer with cert", func(f *serverFlags) { withPeerCert(f); httpsPeer(f) }, ""},
		{"https peer with auto-tls", func(f *serverFlags) { f.tls.peerAutoTLS = true; httpsPeer(f) }, ""},
		{"https peer without cert", httpsPeer,
			"TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url https://127.0.0.1:2 with HTTPS scheme (or use --peer-auto-tls)"},
		{"client cert does not serve peers", func(f *serverFlags) { withCert(f); httpsPeer(f) }, "--peer-cert-file, --peer-key-file"},
		{"https peer URL on a plain listener", func(f *serverFlags) {
			withPeerCert(f)
			f.listenPeerURLs, f.initialAdvertisePeerURLs = "http://127.0.0.1:2", "https://127.0.0.1:2"
		}, "this member's peer URL https://127.0.0.1:2 is https, but no --listen-peer-urls URL is"},
		{"mixed peer schemes", func(f *serverFlags) {
			withPeerCert(f)
			httpsPeer(f)
			f.initialCluster = "a=https://127.0.0.1:2,b=http://127.0.0.1:5"
		}, "peer URLs must be all http or all https"},
		{"https peers in the initial cluster", func(f *serverFlags) {
			withPeerCert(f)
			httpsPeer(f)
			f.initialCluster = "a=https://127.0.0.1:2,b=https://127.0.0.1:5"
		}, ""},
		{"https peer named by --advertise-peer", func(f *serverFlags) {
			withPeerCert(f)
			f.listenPeerURLs, f.advertisePeer = "https://127.0.0.1:2", "https://127.0.0.1:2"
		}, ""},
		{"default advertise peer follows the listen scheme", func(f *serverFlags) {
			withPeerCert(f)
			f.listenPeerURLs = "https://127.0.0.1:2"
		}, ""},
		{"auto-tls with zero validity", func(f *serverFlags) {
			f.tls.autoTLS, f.tls.selfSignedCertValidity = true, 0
			f.listenClientURLs = "https://127.0.0.1:1"
		}, "--self-signed-cert-validity must be at least 1"},
		{"zero validity unused", func(f *serverFlags) { f.tls.selfSignedCertValidity = 0 }, ""},
		{"unix client URL", func(f *serverFlags) { f.listenClientURLs = "unixs://x:1" }, "unix socket URLs are not supported"},
	}
	for _, c := range cases {
		f := tlsBase()
		c.mod(&f)
		_, err := f.config()
		if c.err == "" {
			if err != nil {
				t.Errorf("%s: config() = %v, want valid", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: config() = %v, want an error containing %q", c.name, err, c.err)
		}
	}
}

func TestServerTLSAddrs(t *testing.T) {
	f := tlsBase()
	f.listenClientURLs = "http://127.0.0.1:1,https://localhost:3"
	f.listenPeerURLs = "https://127.0.0.1:2"
	f.listenMetricsURLs = "https://127.0.0.1:9"
	f.adminListen = "127.0.0.1:8"
	a, err := f.addrs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.listenClient, []string{"127.0.0.1:1", "localhost:3"}) || !slices.Equal(a.clientTLS, []bool{false, true}) {
		t.Errorf("client = %v %v", a.listenClient, a.clientTLS)
	}
	if !slices.Equal(a.advertiseClient, []string{"http://127.0.0.1:1", "https://localhost:3"}) {
		t.Errorf("advertiseClient = %v", a.advertiseClient)
	}
	if !slices.Equal(a.peerTLS, []bool{true}) || a.advertisePeer != "https://127.0.0.1:2" {
		t.Errorf("peer = %v %v %q", a.listenPeer, a.peerTLS, a.advertisePeer)
	}
	if !slices.Equal(a.listenMetrics, []string{"127.0.0.1:9", "127.0.0.1:8"}) || !slices.Equal(a.metricsTLS, []bool{true, false}) {
		t.Errorf("metrics = %v %v", a.listenMetrics, a.metricsTLS)
	}
	// --advertise-client (host:port) takes the first listen URL's scheme.
	f = tlsBase()
	f.listenClientURLs, f.advertiseClient = "https://127.0.0.1:1", "10.0.0.1:1"
	if a, err := f.addrs(); err != nil || !slices.Equal(a.advertiseClient, []string{"https://10.0.0.1:1"}) {
		t.Errorf("advertiseClient = %v, %v", a.advertiseClient, err)
	}
}

func TestServerTLSBuild(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	cert, key := ca.Issue(t, "member", "127.0.0.1").Write(t, dir, "member")
	log := slog.New(slog.DiscardHandler)
	now := time.Now()

	t.Run("plain", func(t *testing.T) {
		f := tlsBase()
		f.tls.certFile, f.tls.keyFile = cert, key // ignored: no https URL
		a, _ := f.addrs()
		mt, err := f.tls.build(a, t.TempDir(), now, log)
		if err != nil || mt.client != nil || mt.peerServer != nil || mt.peerClient != nil || mt.memberClient != nil {
			t.Fatalf("build = %+v, %v; want all plain", mt, err)
		}
	})

	t.Run("given certificates", func(t *testing.T) {
		f := tlsBase()
		f.tls = serverTLSFlags{certFile: cert, keyFile: key, trustedCAFile: caFile, clientCertAuth: true,
			peerCertFile: cert, peerKeyFile: key, peerTrustedCAFile: caFile, peerClientCertAuth: true, selfSignedCertValidity: 1}
		f.listenClientURLs = "http://127.0.0.1:1,https://127.0.0.1:3"
		f.listenPeerURLs = "https://127.0.0.1:2"
		a, _ := f.addrs()
		mt, err := f.tls.build(a, t.TempDir(), now, log)
		if err != nil {
			t.Fatal(err)
		}
		if mt.client.ClientAuth != tls.RequireAndVerifyClientCert || !slices.Equal(mt.client.NextProtos, clientALPN) || !mt.clientCertAuth {
			t.Errorf("client = auth %v protos %v certAuth %v", mt.client.ClientAuth, mt.client.NextProtos, mt.clientCertAuth)
		}
		if mt.memberClient == nil || len(mt.memberClient.Certificates) != 1 || mt.memberClient.RootCAs == nil || mt.memberClient.InsecureSkipVerify {
			t.Errorf("memberClient = %+v", mt.memberClient)
		}
		if mt.peerServer.ClientAuth != tls.RequireAndVerifyClientCert || mt.peerClient == nil ||
			len(mt.peerClient.Certificates) != 1 || mt.peerClient.RootCAs == nil || mt.peerClient.InsecureSkipVerify {
			t.Errorf("peer = %+v / %+v", mt.peerServer, mt.peerClient)
		}
	})

	t.Run("auto TLS", func(t *testing.T) {
		data := t.TempDir()
		f := tlsBase()
		// As in etcd, auto-TLS drops the CA and client cert auth.
		f.tls = serverTLSFlags{autoTLS: true, clientCertAuth: true, trustedCAFile: caFile, peerAutoTLS: true, selfSignedCertValidity: 3}
		f.listenClientURLs = "https://127.0.0.1:1,https://localhost:3"
		f.listenPeerURLs = "https://127.0.0.1:2"
		a, _ := f.addrs()
		mt, err := f.tls.build(a, data, now, log)
		if err != nil {
			t.Fatal(err)
		}
		if mt.client.ClientAuth != tls.NoClientCert || mt.clientCertAuth || !mt.memberClient.InsecureSkipVerify {
			t.Errorf("client = auth %v certAuth %v", mt.client.ClientAuth, mt.clientCertAuth)
		}
		if mt.peerServer == nil || mt.peerClient == nil || !mt.peerClient.InsecureSkipVerify {
			t.Errorf("peer = %+v / %+v", mt.peerServer, mt.peerClient)
		}
		for _, side := range []string{"client", "peer"} {
			p := filepath.Join(data, "fixtures", side, "cert.pem")
			pair, err := tlsconf.LoadKeyPair(p, filepath.Join(data, "fixtures", side, "key.pem"))
			if err != nil {
				t.Fatalf("%s fixtures: %v", side, err)
			}
			leaf := pair.Leaf
			if leaf.NotAfter.Sub(leaf.NotBefore) != 3*365*24*time.Hour {
				t.Errorf("%s certificate validity %v, want 3 years", side, leaf.NotAfter.Sub(leaf.NotBefore))
			}
			if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
				t.Errorf("%s certificate: %v", side, err)
			}
			if side == "client" {
				if err := leaf.VerifyHostname("localhost"); err != nil {
					t.Errorf("client certificate: %v", err)
				}
			}
		}
		// A restart reuses the generated certificate.
		before, _ := os.ReadFile(filepath.Join(data, "fixtures", "client", "cert.pem"))
		if _, err := f.tls.build(a, data, now.Add(time.Hour), log); err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(filepath.Join(data, "fixtures", "client", "cert.pem"))
		if string(before) != string(after) {
			t.Error("auto TLS replaced its certificate on restart")
		}
	})

	t.Run("auto TLS yields to given certificates", func(t *testing.T) {
		data := t.TempDir()
		f := tlsBase()
		f.tls = serverTLSFlags{autoTLS: true, certFile: cert, keyFile: key, selfSignedCertValidity: 1}
		f.listenClientURLs = "https://127.0.0.1:1"
		a, _ := f.addrs()
		mt, err := f.tls.build(a, data, now, log)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(mt.client.Certificates[0].Certificate[0])
		if leaf.Subject.CommonName != "member" {
			t.Errorf("served %q, want the given certificate", leaf.Subject.CommonName)
		}
		if _, err := os.Stat(filepath.Join(data, "fixtures")); !os.IsNotExist(err) {
			t.Errorf("fixtures written although certificates were given: %v", err)
		}
	})

	bad := []struct {
		name string
		mod  func(*serverFlags)
		want []string
	}{
		{"missing client cert", func(f *serverFlags) {
			f.tls.certFile, f.tls.keyFile = filepath.Join(dir, "nope.pem"), key
			f.listenClientURLs = "https://127.0.0.1:1"
		}, []string{"client TLS", "nope.pem", "no such file"}},
		{"client key of another cert", func(f *serverFlags) {
			_, otherKey := ca.Issue(t, "other").Write(t, dir, "other")
			f.tls.certFile, f.tls.keyFile = cert, otherKey
			f.listenClientURLs = "https://127.0.0.1:1"
		}, []string{"client TLS", "does not match"}},
		{"peer CA without certificates", func(f *serverFlags) {
			f.tls.peerCertFile, f.tls.peerKeyFile, f.tls.peerTrustedCAFile = cert, key, key
			f.listenPeerURLs = "https://127.0.0.1:2"
		}, []string{"peer TLS", "no certificate in the trusted CA file", key}},
		{"garbage peer cert", func(f *serverFlags) {
			g := filepath.Join(dir, "garbage.pem")
			os.WriteFile(g, []byte("hello"), 0o600)
			f.tls.peerCertFile, f.tls.peerKeyFile = g, key
			f.listenPeerURLs = "https://127.0.0.1:2"
		}, []string{"peer TLS", "no CERTIFICATE block", "garbage.pem"}},
	}
	for _, c := range bad {
		f := tlsBase()
		c.mod(&f)
		a, err := f.addrs()
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.tls.build(a, t.TempDir(), now, log)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: build = %v, want an error containing %q", c.name, err, w)
			}
		}
	}
}

// TestServerTLSAndAuthFlagsParse: etcd's security and auth flags parse, with
// etcd's defaults, and reach server.Config.
func TestServerTLSAndAuthFlagsParse(t *testing.T) {
	fl := newServerCmd().Flags()
	for name, def := range map[string]string{
		"cert-file": "", "key-file": "", "trusted-ca-file": "", "client-cert-auth": "false", "auto-tls": "false",
		"peer-cert-file": "", "peer-key-file": "", "peer-trusted-ca-file": "", "peer-client-cert-auth": "false",
		"peer-auto-tls": "false", "self-signed-cert-validity": "1",
		"auth-token": "simple", "auth-token-ttl": "300", "bcrypt-cost": "10",
	} {
		f := fl.Lookup(name)
		if f == nil {
			t.Errorf("no --%s flag", name)
			continue
		}
		if f.DefValue != def {
			t.Errorf("--%s default = %q, want %q", name, f.DefValue, def)
		}
	}
	args := []string{
		"--cert-file", "c", "--key-file", "k", "--trusted-ca-file", "ca", "--client-cert-auth",
		"--peer-cert-file", "pc", "--peer-key-file", "pk", "--peer-trusted-ca-file", "pca", "--peer-client-cert-auth",
		"--auto-tls", "--peer-auto-tls", "--self-signed-cert-validity", "2",
		"--auth-token", "jwt,pub-key=a,priv-key=b,sign-method=RS256", "--auth-token-ttl", "60", "--bcrypt-cost", "12",
	}
	if err := fl.Parse(args); err != nil {
		t.Fatal(err)
	}

	f := tlsBase()
	f.authToken, f.authTokenTTL, f.bcryptCost = "jwt,pub-key=a,priv-key=b,sign-method=RS256", 60, 12
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuthToken != f.authToken || cfg.AuthTokenTTL != time.Minute || cfg.BcryptCost != 12 {
		t.Errorf("auth config = %q %v %d", cfg.AuthToken, cfg.AuthTokenTTL, cfg.BcryptCost)
	}
}

// TestServerTLSMemberRoots: without --trusted-ca-file, a member still
// verifies other members' client certificates from a private CA when the CA
// comes with --peer-trusted-ca-file or bundled after the leaf in
// --cert-file (lease renewals forwarded to the leader depend on it).
func TestServerTLSMemberRoots(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "private CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	member := ca.Issue(t, "member", "127.0.0.1")
	cert, key := member.Write(t, dir, "member")
	bundle := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(bundle, append(append([]byte{}, member.CertPEM...), ca.CertPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	other := ca.Issue(t, "leader", "127.0.0.1").TLS(t) // what the leader presents
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name     string
		flags    serverTLSFlags
		verifies bool
	}{
		{"leaf only", serverTLSFlags{certFile: cert, keyFile: key}, false},
		{"CA bundled in --cert-file", serverTLSFlags{certFile: bundle, keyFile: key}, true},
		{"--peer-trusted-ca-file", serverTLSFlags{certFile: cert, keyFile: key, peerTrustedCAFile: caFile}, true},
	}
	for _, tt := range tests {
		f := tlsBase()
		f.tls = tt.flags
		f.tls.selfSignedCertValidity = 1
		f.listenClientURLs = "https://127.0.0.1:3"
		a, _ := f.addrs()
		mt, err := f.tls.build(a, t.TempDir(), time.Now(), log)
		if err != nil {
			t.Fatalf("%s: build: %v", tt.name, err)
		}
		leaf, err := x509.ParseCertificate(other.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: mt.memberClient.RootCAs, DNSName: "127.0.0.1"})
		if (err == nil) != tt.verifies {
			t.Errorf("%s: verifying another member's certificate: %v, want verified=%v", tt.name, err, tt.verifies)
		}
	}
}
