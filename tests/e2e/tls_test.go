package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concord-db/concord/internal/tlsconf/tlstest"
)

// TLS on the client and peer ports, with etcd's flags: certificates from a
// CA made by the test, auto-TLS, a member whose certificate comes from
// another CA, bad certificate files, and plain next to TLS client listeners.

// pki is a CA and the files of everything it signed, in one directory.
type pki struct {
	dir    string
	ca     *tlstest.CA
	caFile string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: dir, ca: tlstest.NewCA(t, name+" CA")}
	p.caFile = p.ca.WriteCA(t, dir, "ca.pem")
	return p
}

// issue writes a certificate for 127.0.0.1 named cn and returns its files.
func (p *pki) issue(t *testing.T, cn string) (cert, key string) {
	t.Helper()
	return p.ca.Issue(t, cn, "127.0.0.1", "localhost").Write(t, p.dir, cn)
}

// clientTLS is what a client with cn's certificate uses.
func (p *pki) clientTLS(t *testing.T, cn string) *tls.Config {
	t.Helper()
	tc := &tls.Config{RootCAs: p.ca.Pool()}
	if cn != "" {
		tc.Certificates = []tls.Certificate{p.ca.Issue(t, cn).TLS(t)}
	}
	return tc
}

// tlsMemberSpec describes one member of tlsCluster.
type tlsMemberSpec struct {
	name               string
	cliPort            int
	peerURL, clientURL string
}

// tlsCluster starts members on https peer and client URLs with the given
// per-member flags, waits until each is ready and connects clients using
// clientTLS (like NewCluster).
func tlsCluster(t *testing.T, size int, clientTLS *tls.Config, memberArgs func(name string) []string) *Cluster {
	t.Helper()
	concordBin(t)
	dataRoot, logRoot := t.TempDir(), t.ArtifactDir()
	ports := freePorts(t, 2*size)
	var specs []tlsMemberSpec
	var initial []string
	for i := range size {
		s := tlsMemberSpec{name: fmt.Sprintf("n%d", i+1), cliPort: ports[2*i+1]}
		s.peerURL = fmt.Sprintf("https://127.0.0.1:%d", ports[2*i])
		s.clientURL = fmt.Sprintf("https://127.0.0.1:%d", s.cliPort)
		specs = append(specs, s)
		initial = append(initial, s.name+"="+s.peerURL)
	}
	c := &Cluster{t: t, Opts: ClusterOptions{Size: size, HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond},
		clients: make([]*clientv3.Client, size), clientTLS: clientTLS}
	for _, s := range specs {
		m := &Member{Name: s.name, PeerURL: s.peerURL, ClientAddr: fmt.Sprintf("127.0.0.1:%d", s.cliPort),
			DataDir: filepath.Join(dataRoot, s.name), LogPath: filepath.Join(logRoot, s.name+".log")}
		f, err := os.Create(m.LogPath)
		if err != nil {
			t.Fatalf("creating member log: %v", err)
		}
		m.log = &memberLog{file: f}
		m.args = append([]string{"server",
			"--name", s.name,
			"--data-dir", m.DataDir,
			"--listen-peer-urls", s.peerURL,
			"--initial-advertise-peer-urls", s.peerURL,
			"--listen-client-urls", s.clientURL,
			"--advertise-client-urls", s.clientURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--heartbeat-interval", "50ms",
			"--election-timeout", "500ms",
		}, memberArgs(s.name)...)
		c.Members = append(c.Members, m)
	}
	c.launch(t)
	return c
}

// putGet writes key through cli and reads it back through every member.
func putGet(t *testing.T, c *Cluster, cli *clientv3.Client, key, val string) {
	t.Helper()
	if _, err := cli.Put(reqCtx(t), key, val); err != nil {
		t.Fatalf("put %s over TLS: %v", key, err)
	}
	for i := range c.Members {
		if !c.Members[i].Running() || c.Client(i) == nil {
			continue
		}
		r, err := c.Client(i).Get(reqCtx(t), key)
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != val {
			t.Fatalf("get %s from %s = %v, %v; want %q", key, c.Members[i].Name, r, err, val)
		}
	}
}

// refusedPut shows that a client with tc cannot write through ep.
func refusedPut(t *testing.T, what, ep string, tc *tls.Config) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: time.Second, TLS: tc, Logger: zap.NewNop()})
	if err != nil {
		return // refused at dial: as good as at the first call
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "refused", what); err == nil {
		t.Errorf("%s: put succeeded, want it refused", what)
	}
}

// httpsGet fetches url with a client using tc and returns status and body.
func httpsGet(t *testing.T, tc *tls.Config, url string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// etcdctlTLS runs the real etcdctl against eps with the given TLS flags.
func etcdctlTLS(t *testing.T, eps []string, flags []string, args ...string) cmdResult {
	t.Helper()
	all := append([]string{"--endpoints=" + strings.Join(eps, ","), "--dial-timeout=1s", "--command-timeout=2s"}, flags...)
	return runCmd(t, []string{"ETCDCTL_API=3"}, "", "etcdctl", append(all, args...)...)
}

// TestTLSCertificates: a cluster with peer TLS (--peer-client-cert-auth)
// and client TLS (--client-cert-auth) from the test's CA serves clients with
// the right certificates and refuses the others; a member whose peer
// certificate comes from another CA never joins, and the cluster keeps
// serving.
func TestTLSCertificates(t *testing.T) {
	p := newPKI(t, "cluster")
	clientCert, clientKey := p.issue(t, "client")
	c := tlsCluster(t, 3, p.clientTLS(t, "client"), func(name string) []string {
		cert, key := p.issue(t, name)
		return []string{
			"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", p.caFile, "--peer-client-cert-auth",
			"--cert-file", cert, "--key-file", key, "--trusted-ca-file", p.caFile, "--client-cert-auth",
		}
	})
	putGet(t, c, c.All(), "tls/k", "v1")

	// The member table publishes the https URLs.
	ml, err := c.All().MemberList(reqCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		if len(m.PeerURLs) != 1 || !strings.HasPrefix(m.PeerURLs[0], "https://") || len(m.ClientURLs) != 1 || !strings.HasPrefix(m.ClientURLs[0], "https://") {
			t.Errorf("member %s URLs = %v %v, want https", m.Name, m.PeerURLs, m.ClientURLs)
		}
	}

	ep := c.Members[0].ClientAddr
	refusedPut(t, "no client certificate", ep, p.clientTLS(t, ""))
	refusedPut(t, "plaintext", ep, nil)
	other := newPKI(t, "other")
	rogueClient := other.clientTLS(t, "client")
	rogueClient.RootCAs = p.ca.Pool()
	rogueClient.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &rogueClient.Certificates[0], nil // offer it although the server names another CA
	}
	refusedPut(t, "client certificate from another CA", ep, rogueClient)

	// /health and /metrics on the TLS client port are served over TLS, to
	// clients with a certificate.
	if code, body := httpsGet(t, p.clientTLS(t, "client"), "https://"+ep+"/health"); code != 200 || !strings.Contains(body, `"health":"true"`) {
		t.Errorf("GET /health over TLS = %d %q", code, body)
	}
	if code, body := httpsGet(t, p.clientTLS(t, "client"), "https://"+ep+"/metrics"); code != 200 || !strings.Contains(body, "etcd_server_has_leader") {
		t.Errorf("GET /metrics over TLS = %d, %d bytes", code, len(body))
	}

	if haveEtcdctl() {
		var eps []string
		for _, m := range c.Members {
			eps = append(eps, "https://"+m.ClientAddr)
		}
		good := []string{"--cacert", p.caFile, "--cert", clientCert, "--key", clientKey}
		if r := etcdctlTLS(t, eps, good, "put", "tls/ctl", "v2"); r.code != 0 || r.stdout != "OK\n" {
			t.Errorf("etcdctl put with certificates: %s", r)
		}
		if r := etcdctlTLS(t, eps, good, "get", "tls/ctl", "--print-value-only"); r.code != 0 || r.stdout != "v2\n" {
			t.Errorf("etcdctl get with certificates: %s", r)
		}
		if r := etcdctlTLS(t, eps[:1], []string{"--cacert", p.caFile}, "get", "tls/ctl"); r.code == 0 {
			t.Errorf("etcdctl get without --cert/--key succeeded: %s", r)
		}
	}

	// A member whose peer certificate comes from another CA: added, started,
	// never ready and never started in the member list; the cluster serves.
	cert, key := other.issue(t, "rogue")
	ports := freePorts(t, 2)
	rogueURL := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	add, err := c.All().MemberAdd(reqCtx(t), []string{rogueURL})
	if err != nil {
		t.Fatalf("member add: %v", err)
	}
	initial := []string{"rogue=" + rogueURL}
	for _, m := range c.Members {
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	rogue := &Member{Name: "rogue", PeerURL: rogueURL, ClientAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		DataDir: filepath.Join(t.TempDir(), "rogue"), LogPath: filepath.Join(t.ArtifactDir(), "rogue.log")}
	f, err := os.Create(rogue.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	rogue.log = &memberLog{file: f}
	rogue.args = []string{"server", "--name", "rogue", "--data-dir", rogue.DataDir,
		"--listen-peer-urls", rogueURL, "--initial-advertise-peer-urls", rogueURL,
		"--listen-client-urls", "https://" + rogue.ClientAddr,
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "existing",
		"--heartbeat-interval", "50ms", "--election-timeout", "500ms",
		// It trusts the cluster's CA, so only its own certificate is wrong.
		"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", p.caFile, "--peer-client-cert-auth",
		"--cert-file", cert, "--key-file", key,
	}
	c.mu.Lock()
	c.Members = append(c.Members, rogue)
	c.clients = append(c.clients, nil)
	c.mu.Unlock()
	ri := len(c.Members) - 1
	c.Start(ri)

	const watchFor = 3 * time.Second
	deadline := time.Now().Add(watchFor)
	for time.Now().Before(deadline) {
		ml, err := c.Client(0).MemberList(reqCtx(t))
		if err != nil {
			t.Fatalf("member list while the rogue runs: %v", err)
		}
		for _, m := range ml.Members {
			if m.ID == add.Member.ID && (m.Name != "" || len(m.ClientURLs) != 0) {
				t.Fatalf("the rogue member started: %+v", m)
			}
		}
		select {
		case <-rogue.current().out.ready:
			t.Fatalf("the rogue member became ready:\n%s", tail(rogue.RunLog(), 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("rogue member after %v: running %v; its log ends:\n%s", watchFor, rogue.Running(), tail(rogue.RunLog(), 6))
	if !strings.Contains(c.Members[0].Log()+c.Members[1].Log()+c.Members[2].Log(), "TLS handshake") {
		t.Error("no member logged the refused TLS handshake of the rogue")
	}
	putGet(t, c, c.All(), "tls/after-rogue", "still serving")
}

// TestTLSAuto: --peer-auto-tls and --auto-tls with self-signed certificates
// under <data-dir>/fixtures; clients skip verification as with etcd.
func TestTLSAuto(t *testing.T) {
	c := tlsCluster(t, 3, &tls.Config{InsecureSkipVerify: true}, func(string) []string {
		return []string{"--peer-auto-tls", "--auto-tls"}
	})
	putGet(t, c, c.All(), "auto/k", "v")
	for _, m := range c.Members {
		for _, side := range []string{"client", "peer"} {
			for _, f := range []string{"cert.pem", "key.pem"} {
				if _, err := os.Stat(filepath.Join(m.DataDir, "fixtures", side, f)); err != nil {
					t.Errorf("%s: %v", m.Name, err)
				}
			}
		}
	}
	// A client that verifies cannot trust a self-signed certificate.
	refusedPut(t, "verifying client", c.Members[0].ClientAddr, &tls.Config{})
	if haveEtcdctl() {
		eps := []string{"https://" + c.Members[1].ClientAddr}
		if r := etcdctlTLS(t, eps, []string{"--insecure-skip-tls-verify", "--insecure-transport=false"}, "get", "auto/k", "--print-value-only"); r.code != 0 || r.stdout != "v\n" {
			t.Errorf("etcdctl --insecure-skip-tls-verify get: %s", r)
		}
	}
}

// TestTLSPlainAndTLSClientListeners: one member serves a plain and a TLS
// client URL side by side, gRPC and HTTP on both.
func TestTLSPlainAndTLSClientListeners(t *testing.T) {
	p := newPKI(t, "single")
	cert, key := p.issue(t, "n1")
	ports := freePorts(t, 3)
	plain, secure := fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	dataDir := filepath.Join(t.TempDir(), "n1")
	// The harness's own clients are plain, so they use the plain port.
	customCluster(t, []customMember{{Name: "n1", ClientAddr: plain, DataDir: dataDir, Args: []string{
		"--name", "n1", "--data-dir", dataDir,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "n1=" + peer,
		"--listen-client-urls", "http://" + plain + ",https://" + secure,
		"--cert-file", cert, "--key-file", key,
		"--heartbeat-interval", "50ms", "--election-timeout", "500ms",
	}}})
	tlsCli, err := newClientTLS([]string{secure}, p.clientTLS(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer tlsCli.Close()
	plainCli, err := newClient([]string{plain})
	if err != nil {
		t.Fatal(err)
	}
	defer plainCli.Close()
	if _, err := tlsCli.Put(reqCtx(t), "mixed", "via tls"); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}
	if r, err := plainCli.Get(reqCtx(t), "mixed"); err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "via tls" {
		t.Fatalf("get over plain = %v, %v", r, err)
	}
	refusedPut(t, "plaintext on the TLS port", secure, nil)
	if code, body := httpGet(t, plain, "/health"); code != 200 || !strings.Contains(body, `"health":"true"`) {
		t.Errorf("GET http /health = %d %q", code, body)
	}
	if code, body := httpsGet(t, p.clientTLS(t, ""), "https://"+secure+"/health"); code != 200 || !strings.Contains(body, `"health":"true"`) {
		t.Errorf("GET https /health = %d %q", code, body)
	}
}

// TestTLSBadFiles: missing or bad certificate files, and https without
// certificates, stop the member at once with a message naming the problem.
func TestTLSBadFiles(t *testing.T) {
	bin := concordBin(t)
	p := newPKI(t, "bad")
	cert, key := p.issue(t, "n1")
	_, otherKey := p.issue(t, "n2")
	garbage := filepath.Join(p.dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	base := func(extra ...string) []string {
		peer := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		return append([]string{"server", "--name", "n1", "--data-dir", filepath.Join(t.TempDir(), "d"),
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "n1=" + peer,
			"--listen-client-urls", fmt.Sprintf("https://127.0.0.1:%d", ports[1])}, extra...)
	}
	peerOK := []string{"--peer-cert-file", cert, "--peer-key-file", key}
	clientOK := []string{"--cert-file", cert, "--key-file", key}
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"https client without certificates", base(peerOK...), 2,
			[]string{"TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:"}},
		{"https peer without certificates", base(clientOK...), 2,
			[]string{"TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url https://127.0.0.1:"}},
		{"missing cert file", base(append(peerOK, "--cert-file", filepath.Join(p.dir, "missing.pem"), "--key-file", key)...), 1,
			[]string{"client TLS", "missing.pem", "no such file"}},
		{"garbage peer cert", base(append(clientOK, "--peer-cert-file", garbage, "--peer-key-file", key)...), 1,
			[]string{"peer TLS", "no CERTIFICATE block", "garbage.pem"}},
		{"key of another certificate", base(append(peerOK, "--cert-file", cert, "--key-file", otherKey)...), 1,
			[]string{"client TLS", "private key does not match the certificate"}},
		{"trusted CA file without certificates", base(append(append(peerOK, clientOK...), "--trusted-ca-file", key)...), 1,
			[]string{"client TLS", "no certificate in the trusted CA file"}},
		{"cert without key", base(append(peerOK, "--cert-file", cert)...), 2,
			[]string{"--cert-file and --key-file must be given together"}},
	}
	for _, c := range cases {
		start := time.Now()
		r := runCmd(t, nil, "", bin, c.args...)
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d:\n%s", c.name, r.code, c.code, r)
			continue
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v to fail", c.name, d)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.name, w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, readyLine) {
			t.Errorf("%s: the member became ready", c.name)
		}
	}
}
