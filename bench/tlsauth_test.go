package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// The generated certificate must carry a real TLS handshake on 127.0.0.1
// for a client that trusts only the generated CA, as the members' does for
// the load tools; the key must not be readable by others.
func TestWriteCerts(t *testing.T) {
	f, err := writeCerts(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(f.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no certificate in ca.pem")
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan error, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.WriteString(c, "ok")
		done <- err
	}()
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.2", Roots: pool}); err == nil {
		t.Error("the certificate should not be good for 127.0.0.2")
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", lis.Addr().String(),
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "ok" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSpliceSection(t *testing.T) {
	sec := sectionBegin + "\n## New\nfigures\n" + sectionEnd + "\n"
	old := sectionBegin + "\n## Old\nold figures\n" + sectionEnd + "\n"
	tests := []struct{ name, page, want string }{
		{"no page", "", "# Benchmarks\n\n" + sec},
		{"before Commands", "# B\n\n## Results\nx\n\n## Commands\n\n- c\n",
			"# B\n\n## Results\nx\n\n" + sec + "\n## Commands\n\n- c\n"},
		{"replaces its own part only", "# B\n\n## Results\nx\n\n" + old + "\n## Commands\n\n- c\n",
			"# B\n\n## Results\nx\n\n" + sec + "\n## Commands\n\n- c\n"},
		{"appended without Commands", "# B\n\nx\n\n\n", "# B\n\nx\n\n" + sec},
		{"a subsection named Commands is not the page's", "# B\n\n### Commands (other)\n",
			"# B\n\n### Commands (other)\n\n" + sec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spliceSection(tt.page, sec)
			if got != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tt.want)
			}
			if again := spliceSection(got, sec); again != got {
				t.Fatalf("not idempotent:\n%q", again)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	e := &env{secrets: []string{"S3CRET", ""}}
	got := e.redact("benchmark --user bench:S3CRET put; again S3CRET")
	if strings.Contains(got, "S3CRET") || got != "benchmark --user bench:<password> put; again <password>" {
		t.Fatalf("got %q", got)
	}
	// tail keeps the last 1500 bytes: a password across that cut must not
	// leave a piece of itself behind.
	out := "S3CRET" + strings.Repeat("x", 1496)
	if got := e.redactedTail([]byte(out)); strings.Contains(got, "CRET") {
		t.Fatalf("a piece of the password survived: %q", got[:20])
	}
}

func tlsAuthEnv(sectionOnly bool) *env {
	e := &env{
		opts:    options{Runs: 3, Secs: 2, Members: []int{3}, Commands: "go -C bench run . --only tls-auth"},
		started: time.Unix(0, 0), finished: time.Unix(200, 0), commit: "abc",
		systems:   []system{{Key: "concord", Name: "Concord", Version: "commit abc"}},
		tools:     map[toolKind]string{},
		toolVers:  map[toolKind]string{toolEtcd: "v3.6.8", toolConcord: "commit abc"},
		cells:     map[string]*cell{},
		noop:      map[string]*cell{},
		rss:       map[string][]float64{},
		tlsAuth:   true,
		tlsCells:  map[string]*cell{},
		secrets:   []string{"S3CRET"},
		workloads: workloads()[:1],
	}
	e.sectionOnly = sectionOnly
	for _, t := range tools {
		e.tlsCells[tlsCellKey("plain", "put-100-leader", t)] = &cell{Total: 10, Runs: []sample{{RPS: 10000, P50: 5, P99: 20}}}
		e.tlsCells[tlsCellKey("tls", "put-100-leader", t)] = &cell{Total: 10, Runs: []sample{{RPS: 9000, P50: 6, P99: 30}}}
		e.tlsCells[tlsCellKey("auth", "put-100-leader", t)] = &cell{Total: 10, Err: "setup: boom"}
	}
	return e
}

// The section shows each variant's figures and its ratios to the plain
// variant of the same tool, a failed variant as failed, and never a
// password; run alone, it says so.
func TestRenderTLSAuth(t *testing.T) {
	sec := renderTLSAuth(tlsAuthEnv(true))
	for _, want := range []string{
		sectionBegin, sectionEnd, "## Concord: the cost of client TLS and of auth (3 members)",
		"| put 8 B/256 B, 100 clients/10 conns, leader | etcd benchmark | TLS | 9000 (9000–9000) | 6.00 / 30.0 | 0.90× | 1.20× | 1.50× |",
		"| put 8 B/256 B, 100 clients/10 conns, leader | concord bench | auth | failed | — | — | — | — |",
		"Measured on its own by `go -C bench run . --only tls-auth`",
		"--endpoints <endpoints> --cacert <ca.pem> --user bench:<bench password> --target-leader --conns 10 --clients 100 put",
		"`concord role grant-permission bench readwrite \"\" --prefix`",
		"| TLS | put-100-leader | etcd benchmark | 10 | 9000 |  |",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q", want)
		}
	}
	if strings.Contains(sec, "S3CRET") {
		t.Error("the section shows a password")
	}
	if !strings.HasPrefix(sec, sectionBegin+"\n") || !strings.HasSuffix(sec, sectionEnd+"\n") {
		t.Error("the section must be wrapped in its markers")
	}
}

// A whole page has the section before its Commands, and running the section
// alone against that page changes nothing but the section.
func TestPageWithTLSAuth(t *testing.T) {
	e := tlsAuthEnv(false)
	e.opts.Commands = "go -C bench run ."
	page := renderPage(e)
	sec := renderTLSAuth(e)
	i, j := strings.Index(page, sec), strings.Index(page, "\n## Commands\n")
	if i < 0 || j < i {
		t.Fatalf("section missing or after Commands (%d, %d)", i, j)
	}
	if !strings.Contains(sec, "Measured in the same run as the rest of this page") {
		t.Error("a whole run should say the section is from the same run")
	}
	if got := spliceSection(page, sec); got != page {
		t.Error("splicing the same section changed the page")
	}
	alone := tlsAuthEnv(true)
	alone.tlsCells[tlsCellKey("tls", "put-100-leader", toolEtcd)].Runs[0].RPS = 7777
	newSec := renderTLSAuth(alone)
	got := spliceSection(page, newSec)
	if want := page[:i] + newSec + page[i+len(sec):]; got != want {
		t.Error("splicing changed more than the section")
	}
	if !strings.Contains(got, "7777") {
		t.Error("the new figures are not in the page")
	}
}

// A smoke run keeps plain and TLS + auth, which take every path of the
// other two; a full run measures all four.
func TestSectionVariants(t *testing.T) {
	ids := func(vs []variant) string {
		var s []string
		for _, v := range vs {
			s = append(s, v.ID)
		}
		return strings.Join(s, ",")
	}
	if got := ids((&env{}).sectionVariants()); got != "plain,tls,auth,tls+auth" {
		t.Errorf("full: %s", got)
	}
	if got := ids((&env{opts: options{Smoke: true}}).sectionVariants()); got != "plain,tls+auth" {
		t.Errorf("smoke: %s", got)
	}
}
