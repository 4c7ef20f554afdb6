package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-db/concord/internal/tlsconf/tlstest"
)

// files is a directory of good and bad PEM files for the table tests.
type files struct {
	dir                         string
	ca, otherCA                 string // CA certificates
	cert, key                   string // a server/client pair signed by ca
	otherCert, otherKey         string // a pair signed by otherCA
	garbage, keyOnly, badCert   string
	badKey, rsaPKCS1, ecSEC1Key string
	rsaCert, ecCert             string
	empty                       string
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// selfSignedWith makes a self-signed certificate for key (for the key
// encodings that tlstest does not produce).
func selfSignedWith(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newFiles(t *testing.T) (files, *tlstest.CA, *tlstest.CA) {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	other := tlstest.NewCA(t, "other CA")
	f := files{dir: dir}
	f.ca = ca.WriteCA(t, dir, "ca.pem")
	f.otherCA = other.WriteCA(t, dir, "other-ca.pem")
	f.cert, f.key = ca.Issue(t, "member", "127.0.0.1", "localhost").Write(t, dir, "member")
	f.otherCert, f.otherKey = other.Issue(t, "rogue", "127.0.0.1").Write(t, dir, "rogue")
	f.garbage = writeFile(t, dir, "garbage.pem", []byte("not pem at all\n"))
	f.empty = writeFile(t, dir, "empty.pem", nil)
	pair := ca.Issue(t, "x")
	f.keyOnly = writeFile(t, dir, "key-only.pem", pair.KeyPEM)
	f.badCert = writeFile(t, dir, "bad-cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
	f.badKey = writeFile(t, dir, "bad-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}))

	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.rsaPKCS1 = writeFile(t, dir, "rsa-key.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	f.rsaCert = writeFile(t, dir, "rsa-cert.pem", selfSignedWith(t, rk))
	ek, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	eder, err := x509.MarshalECPrivateKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	f.ecSEC1Key = writeFile(t, dir, "ec-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: eder}))
	f.ecCert = writeFile(t, dir, "ec-cert.pem", selfSignedWith(t, ek))
	return f, ca, other
}

func TestLoadKeyPair(t *testing.T) {
	f, _, _ := newFiles(t)
	cases := []struct {
		name      string
		cert, key string
		want      error  // nil: success
		text      string // substring of the error
	}{
		{"pkcs8 ecdsa", f.cert, f.key, nil, ""},
		{"pkcs1 rsa", f.rsaCert, f.rsaPKCS1, nil, ""},
		{"sec1 ec", f.ecCert, f.ecSEC1Key, nil, ""},
		{"missing cert", filepath.Join(f.dir, "nope.pem"), f.key, ErrReadFile, "nope.pem: no such file"},
		{"missing key", f.cert, filepath.Join(f.dir, "nokey.pem"), ErrReadFile, "(key)"},
		{"cert is a directory", f.dir, f.key, ErrReadFile, "(certificate)"},
		{"cert not PEM", f.garbage, f.key, ErrNoPEM, "no CERTIFICATE block in certificate file " + f.garbage},
		{"cert empty", f.empty, f.key, ErrNoPEM, "certificate file"},
		{"cert holds a key", f.keyOnly, f.key, ErrNoPEM, "CERTIFICATE"},
		{"cert block junk", f.badCert, f.key, ErrBadCert, f.badCert},
		{"key not PEM", f.cert, f.garbage, ErrNoPEM, "no PRIVATE KEY block in key file " + f.garbage},
		{"key holds a cert", f.cert, f.cert, ErrNoPEM, "PRIVATE KEY"},
		{"key block junk", f.cert, f.badKey, ErrBadKey, f.badKey},
		{"key of another cert", f.cert, f.otherKey, ErrKeyMismatch, "does not match"},
		{"rsa key for ecdsa cert", f.cert, f.rsaPKCS1, ErrKeyMismatch, f.cert},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := LoadKeyPair(c.cert, c.key)
			if c.want == nil {
				if err != nil {
					t.Fatalf("LoadKeyPair(%q, %q) = %v, want success", c.cert, c.key, err)
				}
				if got.Leaf == nil || len(got.Certificate) == 0 || got.PrivateKey == nil {
					t.Fatalf("LoadKeyPair(%q, %q) = %+v: incomplete", c.cert, c.key, got)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("LoadKeyPair(%q, %q) = %v, want %v containing %q", c.cert, c.key, err, c.want, c.text)
			}
		})
	}
	if _, err := LoadKeyPair(filepath.Join(f.dir, "nope.pem"), f.key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestLoadCAPool(t *testing.T) {
	f, _, _ := newFiles(t)
	two := writeFile(t, f.dir, "two.pem", append(mustRead(t, f.ca), mustRead(t, f.otherCA)...))
	cases := []struct {
		name, path string
		want       error
		subjects   int
	}{
		{"one CA", f.ca, nil, 1},
		{"two CAs", two, nil, 2},
		{"missing", filepath.Join(f.dir, "none.pem"), ErrReadFile, 0},
		{"not PEM", f.garbage, ErrNoCACert, 0},
		{"empty", f.empty, ErrNoCACert, 0},
		{"only a key", f.keyOnly, ErrNoCACert, 0},
		{"junk certificate", f.badCert, ErrBadCert, 0},
	}
	for _, c := range cases {
		pool, err := LoadCAPool(c.path)
		if c.want != nil {
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("LoadCAPool(%s) = %v, want %v naming the file", c.name, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("LoadCAPool(%s) = %v", c.name, err)
			continue
		}
		//lint:ignore SA1019 Subjects is fine for a pool built from files.
		if n := len(pool.Subjects()); n != c.subjects { //nolint:staticcheck
			t.Errorf("LoadCAPool(%s) has %d subjects, want %d", c.name, n, c.subjects)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServerConfig(t *testing.T) {
	f, _, _ := newFiles(t)
	cases := []struct {
		name     string
		cfg      Config
		want     error
		auth     tls.ClientAuthType
		withPool bool
	}{
		{"cert only", Config{CertFile: f.cert, KeyFile: f.key}, nil, tls.NoClientCert, false},
		{"client cert auth", Config{CertFile: f.cert, KeyFile: f.key, TrustedCAFile: f.ca, ClientCertAuth: true}, nil, tls.RequireAndVerifyClientCert, true},
		// etcd: a trusted CA file alone already requires client certificates.
		{"trusted CA alone", Config{CertFile: f.cert, KeyFile: f.key, TrustedCAFile: f.ca}, nil, tls.RequireAndVerifyClientCert, true},
		{"client cert auth, system roots", Config{CertFile: f.cert, KeyFile: f.key, ClientCertAuth: true}, nil, tls.RequireAndVerifyClientCert, false},
		{"nothing", Config{}, ErrNoKeyPair, 0, false},
		{"CA only", Config{TrustedCAFile: f.ca}, ErrNoKeyPair, 0, false},
		{"cert without key", Config{CertFile: f.cert}, ErrNoKeyPair, 0, false},
		{"key without cert", Config{KeyFile: f.key}, ErrNoKeyPair, 0, false},
		{"bad CA", Config{CertFile: f.cert, KeyFile: f.key, TrustedCAFile: f.keyOnly}, ErrNoCACert, 0, false},
		{"mismatch", Config{CertFile: f.cert, KeyFile: f.otherKey}, ErrKeyMismatch, 0, false},
	}
	for _, c := range cases {
		tc, err := c.cfg.Server()
		if c.want != nil {
			if !errors.Is(err, c.want) {
				t.Errorf("%s: Server() = %v, want %v", c.name, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Server() = %v", c.name, err)
			continue
		}
		if tc.MinVersion != tls.VersionTLS12 || tc.ClientAuth != c.auth || len(tc.Certificates) != 1 || (tc.ClientCAs != nil) != c.withPool {
			t.Errorf("%s: Server() = min %x auth %v certs %d pool %v; want min 1.2 auth %v pool %v",
				c.name, tc.MinVersion, tc.ClientAuth, len(tc.Certificates), tc.ClientCAs != nil, c.auth, c.withPool)
		}
	}
}

func TestClientConfig(t *testing.T) {
	f, _, _ := newFiles(t)
	cases := []struct {
		name              string
		cfg               Config
		want              error
		certs             int
		withRoots, insecu bool
	}{
		{"nothing: system roots", Config{}, nil, 0, false, false},
		{"CA only", Config{TrustedCAFile: f.ca}, nil, 0, true, false},
		{"cert and CA", Config{CertFile: f.cert, KeyFile: f.key, TrustedCAFile: f.ca}, nil, 1, true, false},
		{"self-signed", Config{CertFile: f.cert, KeyFile: f.key, SkipVerify: true}, nil, 1, false, true},
		{"cert without key", Config{CertFile: f.cert, TrustedCAFile: f.ca}, ErrNoKeyPair, 0, false, false},
		{"missing CA", Config{TrustedCAFile: filepath.Join(f.dir, "x")}, ErrReadFile, 0, false, false},
		{"garbage key", Config{CertFile: f.cert, KeyFile: f.garbage}, ErrNoPEM, 0, false, false},
	}
	for _, c := range cases {
		tc, err := c.cfg.Client()
		if c.want != nil {
			if !errors.Is(err, c.want) {
				t.Errorf("%s: Client() = %v, want %v", c.name, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Client() = %v", c.name, err)
			continue
		}
		if tc.MinVersion != tls.VersionTLS12 || len(tc.Certificates) != c.certs || (tc.RootCAs != nil) != c.withRoots || tc.InsecureSkipVerify != c.insecu {
			t.Errorf("%s: Client() = min %x certs %d roots %v insecure %v", c.name, tc.MinVersion, len(tc.Certificates), tc.RootCAs != nil, tc.InsecureSkipVerify)
		}
	}
}

// handshake runs a TLS handshake between server and client configs over
// loopback TCP (an unbuffered net.Pipe can deadlock when one side aborts
// mid-flight) and returns both sides' errors.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	errc := make(chan error, 1)
	go func() {
		a, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer a.Close()
		a.SetDeadline(deadline)
		s := tls.Server(a, server)
		err = s.Handshake()
		if err == nil {
			// Under TLS 1.3 the client learns of a refused certificate only
			// when it reads; give it something to read.
			_, err = s.Write([]byte{1})
		}
		errc <- err
	}()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetDeadline(deadline)
	c := tls.Client(b, client)
	cerr := c.Handshake()
	if cerr == nil {
		var one [1]byte
		_, cerr = c.Read(one[:])
	}
	b.Close()
	return <-errc, cerr
}

func TestHandshakes(t *testing.T) {
	f, _, _ := newFiles(t)
	selfDir := t.TempDir()
	self, err := SelfCert(selfDir, []string{"127.0.0.1:0"}, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mtls := Config{CertFile: f.cert, KeyFile: f.key, TrustedCAFile: f.ca, ClientCertAuth: true}
	cases := []struct {
		name           string
		server, client Config
		ok             bool
		serverErr      string // part of the server's error, when it fails
	}{
		{"server auth only", Config{CertFile: f.cert, KeyFile: f.key}, Config{TrustedCAFile: f.ca}, true, ""},
		{"mutual", mtls, mtls, true, ""},
		{"client without certificate", mtls, Config{TrustedCAFile: f.ca}, false, "didn't provide a certificate"},
		// Client offers its certificate although the server names another
		// CA, so the server's refusal names the real problem.
		{"client from another CA", mtls, Config{CertFile: f.otherCert, KeyFile: f.otherKey, TrustedCAFile: f.ca}, false, "unknown authority"},
		{"server from another CA", Config{CertFile: f.otherCert, KeyFile: f.otherKey}, Config{TrustedCAFile: f.ca}, false, ""},
		{"self-signed, verified", self, Config{TrustedCAFile: f.ca}, false, ""},
		{"self-signed, skip verify", self, self, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc, err := c.server.Server()
			if err != nil {
				t.Fatal(err)
			}
			cc, err := c.client.Client()
			if err != nil {
				t.Fatal(err)
			}
			cc.ServerName = "127.0.0.1"
			serr, cerr := handshake(t, sc, cc)
			if got := serr == nil && cerr == nil; got != c.ok {
				t.Errorf("handshake ok = %v (server: %v, client: %v), want %v", got, serr, cerr, c.ok)
			}
			if c.serverErr != "" && (serr == nil || !strings.Contains(serr.Error(), c.serverErr)) {
				t.Errorf("server error = %v, want one containing %q", serr, c.serverErr)
			}
		})
	}
}

func TestSelfCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fixtures", "peer")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg, err := SelfCert(dir, []string{"127.0.0.1:2380", "localhost:2380", "127.0.0.1:2381", "[::1]:2380", "example.test"}, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CertFile != filepath.Join(dir, "cert.pem") || cfg.KeyFile != filepath.Join(dir, "key.pem") || !cfg.SkipVerify {
		t.Fatalf("SelfCert = %+v", cfg)
	}
	st, err := os.Stat(cfg.KeyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", st.Mode(), err)
	}
	pair, err := LoadKeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if !leaf.NotBefore.Equal(now) || !leaf.NotAfter.Equal(now.Add(2*365*24*time.Hour)) {
		t.Errorf("validity = %v .. %v, want %v + 730 days", leaf.NotBefore, leaf.NotAfter, now)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if strings.Join(ips, ",") != "127.0.0.1,::1" || strings.Join(leaf.DNSNames, ",") != "localhost,example.test" {
		t.Errorf("SANs = %v %v", ips, leaf.DNSNames)
	}
	k, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P521() {
		t.Errorf("key = %T, want ECDSA P-521 as etcd", pair.PrivateKey)
	}
	if len(leaf.ExtKeyUsage) != 2 || !leaf.IsCA {
		t.Errorf("usages = %v, IsCA %v", leaf.ExtKeyUsage, leaf.IsCA)
	}

	// A second start reuses the files.
	before := mustRead(t, cfg.CertFile)
	again, err := SelfCert(dir, []string{"10.0.0.1:1"}, 1, now.Add(time.Hour))
	if err != nil || again != cfg {
		t.Fatalf("SelfCert again = %+v, %v", again, err)
	}
	if after := mustRead(t, cfg.CertFile); string(after) != string(before) {
		t.Error("SelfCert replaced an existing certificate")
	}
	// A key left without its certificate (a crash between the writes) is
	// replaced by a fresh pair.
	if err := os.Remove(cfg.CertFile); err != nil {
		t.Fatal(err)
	}
	if _, err := SelfCert(dir, []string{"127.0.0.1:1"}, 1, now); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
		t.Errorf("regenerated pair: %v", err)
	}
	if _, err := SelfCert(t.TempDir(), nil, 0, now); !errors.Is(err, ErrValidity) {
		t.Errorf("SelfCert(validity 0) = %v, want %v", err, ErrValidity)
	}
	// A directory that cannot be created.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SelfCert(filepath.Join(blocker, "sub"), nil, 1, now); err == nil {
		t.Error("SelfCert under a regular file succeeded")
	}
}
