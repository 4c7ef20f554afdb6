package main

// The TLS and auth section (issue 6): what client TLS and etcd-style auth
// cost Concord, measured against a plain cluster in the same run, with the
// same two put workloads and both load tools as the side-by-side tables.
// It is Concord's alone (the rivals' TLS is not what issue 6 asks about),
// and it can run on its own (--only tls-auth), in which case it replaces
// its own part of the existing page, between its markers, and nothing else:
// its plain baseline is measured in the same run as its other variants, so
// its ratios never lean on figures from another run.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// tlsAuthID names the section in --only and in its page markers.
const tlsAuthID = "tls-auth"

// The markers around the section, so that a run of the section alone finds
// and replaces exactly its own part of the page.
const (
	sectionBegin = "<!-- bench section " + tlsAuthID + ": written by the harness, replaced whole by `go -C bench run . --only " + tlsAuthID + "` -->"
	sectionEnd   = "<!-- /bench section " + tlsAuthID + " -->"
)

// variant is one way of reaching the same 3-member cluster.
type variant struct {
	ID   string
	Name string
	TLS  bool // members serve https:// client URLs; the tools verify them with --cacert
	Auth bool // auth enabled; the tools log in as the non-root user bench
}

func variants() []variant {
	return []variant{
		{ID: "plain", Name: "plain"},
		{ID: "tls", Name: "TLS", TLS: true},
		{ID: "auth", Name: "auth", Auth: true},
		{ID: "tls+auth", Name: "TLS + auth", TLS: true, Auth: true},
	}
}

// sectionVariants are the variants a run measures: all of them, or in a
// smoke run only plain and TLS + auth, which between them take every path
// of the other two (certificates, https:// endpoints, --cacert, the auth
// setup, --user) at half the cluster starts, to keep CI short.
func (e *env) sectionVariants() []variant {
	if !e.opts.Smoke {
		return variants()
	}
	var out []variant
	for _, v := range variants() {
		if v.TLS == v.Auth {
			out = append(out, v)
		}
	}
	return out
}

// tlsAuthWorkloads are the section's workloads: the side-by-side put
// workloads, unchanged but for the variant's connection flags.
func tlsAuthWorkloads() []workload {
	var out []workload
	for _, id := range []string{"put-100-leader", "put-1"} {
		if w := findWorkload(workloads(), id); w != nil {
			out = append(out, *w)
		}
	}
	return out
}

// benchUser is the user the load tools run as: not root, whose requests
// skip the permission check.
const benchUser = "bench"

// conn is the variant's client flags for Concord's CLI and both load tools:
// --cacert for TLS (the endpoints are https:// URLs as well), --user for
// auth.
func (v variant) conn(files tlsFiles, benchPassword string) []string {
	var a []string
	if v.TLS {
		a = append(a, "--cacert", files.CA)
	}
	if v.Auth {
		a = append(a, "--user", benchUser+":"+benchPassword)
	}
	return a
}

// connShown is conn as the page shows it.
func (v variant) connShown() []string {
	return v.conn(tlsFiles{CA: "<ca.pem>"}, "<bench password>")
}

// authSetup is what turns auth on, as an operator would with etcdctl (here
// Concord's verbs of the same syntax): the root user with the root role,
// then a role with read and write on every key and the user bench with it,
// then auth enable. Every key because both tools write 8-byte binary keys
// with no common prefix; "" with --prefix is etcd's spelling of every key.
func authSetup(rootPassword, benchPassword string) [][]string {
	return [][]string{
		{"role", "add", "root"},
		{"user", "add", "root", "--new-user-password", rootPassword},
		{"user", "grant-role", "root", "root"},
		{"role", "add", benchUser},
		{"role", "grant-permission", benchUser, "readwrite", "", "--prefix"},
		{"user", "add", benchUser, "--new-user-password", benchPassword},
		{"user", "grant-role", benchUser, benchUser},
		{"auth", "enable"},
	}
}

// shellWords joins args for the page, quoting the empty one.
func shellWords(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if a == "" {
			q[i] = `""`
		}
	}
	return strings.Join(q, " ")
}

// tlsFiles are the PEM files of the TLS variants: the CA the clients trust
// and the server certificate and key the members serve.
type tlsFiles struct{ CA, Cert, Key string }

// writeCerts makes, under dir, a CA and a server certificate it signs for
// 127.0.0.1 and localhost, with ECDSA P-256 keys, valid from an hour before
// now for a day (a run is far shorter). The server certificate is good for
// client authentication too, as etcd's generated ones are, in case a member
// presents it to another.
func writeCerts(dir string, now time.Time) (tlsFiles, error) {
	f := tlsFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	serial := func() (*big.Int, error) { return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) }
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	caSerial, err := serial()
	if err != nil {
		return f, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: caSerial, Subject: pkix.Name{CommonName: "concord bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("bench: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return f, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	srvSerial, err := serial()
	if err != nil {
		return f, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: srvSerial, Subject: pkix.Name{CommonName: "concord bench member"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("bench: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return f, err
	}
	for _, w := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{{f.CA, "CERTIFICATE", caDER, 0o644}, {f.Cert, "CERTIFICATE", der, 0o644}, {f.Key, "PRIVATE KEY", keyDER, 0o600}} {
		if err := os.WriteFile(w.path, pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der}), w.mode); err != nil {
			return f, err
		}
	}
	return f, nil
}

// redact hides the run's passwords in a message.
func (e *env) redact(s string) string {
	for _, p := range e.secrets {
		if p != "" {
			s = strings.ReplaceAll(s, p, "<password>")
		}
	}
	return s
}

// redactedTail is tail of b with the passwords hidden first, so that no
// part of one survives the cut.
func (e *env) redactedTail(b []byte) string { return tail([]byte(e.redact(string(b)))) }

func tlsCellKey(v, wl string, t toolKind) string { return v + "|" + wl + "|" + string(t) }

// tlsAuthSteps is the section's share of the progress accounting.
func (e *env) tlsAuthSteps(perCell float64) (int, float64) {
	n := len(tlsAuthWorkloads()) * len(tools)
	vs := len(e.sectionVariants())
	return vs * (1 + n), float64(vs) * (6 + float64(n)*perCell)
}

// measureTLSAuth runs the section: for each variant a fresh 3-member
// Concord cluster, alone on the machine, set up, warmed up and measured
// like the side-by-side clusters. A variant that cannot be set up fails its
// own cells (the page says why) and the run goes on.
func (e *env) measureTLSAuth(ctx context.Context, p *progress, work string, perCell float64, runTimeout time.Duration) error {
	files, err := writeCerts(filepath.Join(work, "tls"), time.Now())
	if err != nil {
		return fmt.Errorf("bench: certificates: %w", err)
	}
	rootPassword, benchPassword := rand.Text(), rand.Text()
	e.secrets = append(e.secrets, rootPassword, benchPassword)
	wls := tlsAuthWorkloads()
	for _, v := range e.sectionVariants() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.step(6, "Concord × 3, %s: starting", v.Name)
		var ct *tlsFiles
		if v.TLS {
			ct = &files
		}
		err := e.measureVariant(ctx, p, v, ct, filepath.Join(work, "tls-auth-"+strings.ReplaceAll(v.ID, "+", "-")),
			v.conn(files, benchPassword), rootPassword, benchPassword, wls, perCell, runTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			msg := "setup: " + e.redact(err.Error())
			p.note("  Concord ×3 | %s | FAILED: %s", v.Name, firstOf(msg))
			for _, w := range wls {
				for _, t := range tools {
					if c := e.tlsCells[tlsCellKey(v.ID, w.ID, t)]; c == nil {
						e.tlsCells[tlsCellKey(v.ID, w.ID, t)] = &cell{Err: msg, Command: e.template(t, withConn(w, v, nil))}
					}
				}
			}
		}
	}
	return nil
}

// withConn is w with the variant's connection flags (conn: the real ones;
// nil when only the page's are wanted).
func withConn(w workload, v variant, conn []string) workload {
	w.Conn, w.ConnShown = conn, v.connShown()
	return w
}

func (e *env) measureVariant(ctx context.Context, p *progress, v variant, ct *tlsFiles, dir string, conn []string,
	rootPassword, benchPassword string, wls []workload, perCell float64, runTimeout time.Duration) error {
	ctl := e.concord.Bin
	cl, err := startCluster(e.concord, 3, dir, ct)
	if err != nil {
		return err
	}
	defer cl.stop()
	if err := cl.waitReady(ctl, 60*time.Second); err != nil {
		return err
	}
	eps := strings.Join(cl.Endpoints, ",")
	if v.Auth {
		for _, a := range authSetup(rootPassword, benchPassword) {
			args := append(append(a, "--endpoints", eps), cl.Conn...)
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, se, err := runCmd(cctx, ctl, args, "")
			cancel()
			if err != nil {
				return fmt.Errorf("concord %s: %w: %s", e.redact(shellWords(args)), err, e.redact(strings.TrimSpace(string(se))))
			}
		}
	}
	// A smoke run skips the warm-up: its figures mean nothing anyway, the
	// measured runs exercise the same flags, and CI's time is short.
	if !e.opts.Smoke {
		warm := append(append([]string{"bench", "--endpoints", eps}, conn...), "--conns", "10", "--clients", "100",
			"put", "--key-size", "8", "--val-size", "256", "--total", "2000")
		if _, se, err := runCmd(ctx, ctl, warm, ""); err != nil {
			return fmt.Errorf("warm-up: %w: %s", err, e.redact(strings.TrimSpace(string(se))))
		}
	}
	for _, w := range wls {
		w := withConn(w, v, conn)
		for _, t := range tools {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.tlsCells[tlsCellKey(v.ID, w.ID, t)] = e.measureNoted(ctx, p, perCell, fmt.Sprintf("Concord ×3 %-10s", v.Name), t, w, cl, runTimeout)
		}
	}
	return nil
}

// fmtRatio is a/b as "0.93×", or "—" when b is not positive.
func fmtRatio(a, b float64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// renderTLSAuth is the section, markers included.
func renderTLSAuth(e *env) string {
	o := e.opts
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("%s", sectionBegin)
	p("## Concord: the cost of client TLS and of auth (3 members)")
	p("")
	if o.Smoke {
		p("> **SMOKE RUN**: tiny totals, one run each; the figures mean nothing.")
		p("")
	}
	if e.sectionOnly {
		p("Measured on its own by `%s` (%s, commit %s, took %v, on %d cores (%s), %s) and written into this page in place of this section's previous version; the rest of the page is from the run named at the top. Its ratios use only its own plain variant.",
			strings.TrimSpace(o.Commands), e.started.UTC().Format("2006-01-02 15:04 MST"), e.commit,
			e.finished.Sub(e.started).Round(time.Second), runtime.NumCPU(), cpuModel(), e.goVersion)
	} else {
		p("Measured in the same run as the rest of this page, after the side-by-side clusters.")
	}
	p("")
	measured := fmt.Sprintf("one calibration run sizes the total N to about %.3g s of load, then %d runs of N; figures are the median with min–max of the runs, latencies the medians of the runs' p50 and p99", o.Secs, o.Runs)
	if o.Smoke {
		measured = "one run at the smoke total, no warm-up"
	}
	p("Each variant is a fresh 3-member Concord cluster started with the member flags under Setup plus the variant's own, alone on the machine, the variants one after another; then the warm-up under Setup with the variant's client flags; then each workload with both tools: %s. A ratio is the variant's median ÷ the plain variant's, from this section's run and with the same tool: req/s below 1× and latency above 1× are what the variant costs.", measured)
	p("")
	p("- **plain**: http:// client URLs, auth off, as in the tables above.")
	p("- **TLS**: the members serve https:// client URLs, `--listen-client-urls https://127.0.0.1:<port> --advertise-client-urls https://127.0.0.1:<port> --cert-file <server.pem> --key-file <server-key.pem>`; peer URLs stay http://. The harness makes the CA and the server certificate it signs in the work directory (ECDSA P-256, IP SAN 127.0.0.1; `writeCerts` in bench/tlsauth.go). The tools use https:// endpoints and verify the members with `--cacert <ca.pem>`, without client certificates. One handshake per connection (10 at most), which may fall inside the timed run as gRPC connects on first use: nothing against runs of seconds.")
	p("- **auth**: http:// client URLs; once the cluster is ready the harness turns auth on with Concord's etcdctl-style verbs, each run as `concord <verb> --endpoints <endpoints>` (plus `--cacert <ca.pem>` with TLS):")
	for _, a := range authSetup("<root password>", "<bench password>") {
		p("  - `concord %s`", shellWords(a))
	}
	p("  with the server's defaults (simple tokens, bcrypt cost 10, as etcd's). The tools run as `--user %s:<bench password>`: a user without the root role, so every put passes a permission check (root skips it). Its role grants every key because both tools write 8-byte binary keys with no common prefix. Each connection logs in once, before the timed run.", benchUser)
	p("- **TLS + auth**: both.")
	p("")
	p("| workload | tool | variant | req/s (min–max) | p50 / p99 ms | req/s ÷ plain | p50 ÷ plain | p99 ÷ plain |")
	p("|---|---|---|---:|---:|---:|---:|---:|")
	for _, w := range tlsAuthWorkloads() {
		for _, t := range tools {
			base := e.tlsCells[tlsCellKey("plain", w.ID, t)]
			for _, v := range e.sectionVariants() {
				c := e.tlsCells[tlsCellKey(v.ID, w.ID, t)]
				rr, r50, r99 := "—", "—", "—"
				if v.ID != "plain" && c != nil && c.ok() && base != nil && base.ok() {
					rr = fmtRatio(c.rps().Med, base.rps().Med)
					r50 = fmtRatio(c.p50(), base.p50())
					r99 = fmtRatio(c.p99(), base.p99())
				}
				p("| %s | %s | %s | %s | %s | %s | %s | %s |", w.Name, t, v.Name, fmtRate(c), fmtLat(c), rr, r50, r99)
			}
		}
	}
	p("")
	p("### Commands (TLS and auth)")
	p("")
	p("`<endpoints>` is every member's client URL: `127.0.0.1:<port>,...`, or `https://127.0.0.1:<port>,...` in the TLS variants. `<N>` is the total of each run, listed below.")
	p("")
	for _, w := range tlsAuthWorkloads() {
		p("- %s:", w.Name)
		for _, v := range e.sectionVariants() {
			for _, t := range tools {
				p("  - %s: `%s`", v.Name, e.template(t, withConn(w, v, nil)))
			}
		}
	}
	p("")
	p("### Runs (TLS and auth)")
	p("")
	p("| variant | workload | tool | N | req/s per run | error or retry |")
	p("|---|---|---|---:|---|---|")
	for _, v := range e.sectionVariants() {
		for _, w := range tlsAuthWorkloads() {
			for _, t := range tools {
				c := e.tlsCells[tlsCellKey(v.ID, w.ID, t)]
				if c == nil {
					continue
				}
				rs := make([]string, len(c.Runs))
				for i, r := range c.Runs {
					rs[i] = fmt.Sprintf("%.0f", r.RPS)
				}
				msg := firstOf(c.Err)
				if c.Retried > 0 {
					msg = strings.TrimSpace(fmt.Sprintf("%s (%d run(s) retried after: %s)", msg, c.Retried, strings.Join(c.Errors, "; ")))
				}
				p("| %s | %s | %s | %d | %s | %s |", v.Name, w.ID, t, c.Total, strings.Join(rs, ", "),
					strings.ReplaceAll(msg, "|", "\\|"))
			}
		}
	}
	p("%s", sectionEnd)
	return b.String()
}

// spliceSection puts the TLS and auth section into page: spliceSectionID
// for tlsAuthID.
func spliceSection(page, section string) string { return spliceSectionID(page, tlsAuthID, section) }

// replaceBetween replaces the first region of page that runs from begin to
// end (both markers included, and the newline after end) with region; ok is
// false, and page unchanged, when page has no such region.
func replaceBetween(page, begin, end, region string) (out string, ok bool) {
	i := strings.Index(page, begin)
	if i < 0 {
		return page, false
	}
	j := strings.Index(page[i:], end)
	if j < 0 {
		return page, false
	}
	stop := i + j + len(end)
	if strings.HasPrefix(page[stop:], "\n") {
		stop++
	}
	return page[:i] + region + page[stop:], true
}

// appendSection puts section at the end of page, after a blank line; an
// empty page gets the page title first.
func appendSection(page, section string) string {
	if strings.TrimSpace(page) == "" {
		return "# Benchmarks\n\n" + section
	}
	return strings.TrimRight(page, "\n") + "\n\n" + section
}

// spliceSectionID puts section (markers included, ending in a newline) into
// page in place of the previous one between the same markers (those of
// sectionMarkers(id)); a page without them gets it before "## Commands"
// (where a whole run puts the sections), else at the end. Nothing else of
// the page changes.
func spliceSectionID(page, id, section string) string {
	begin, end := sectionMarkers(id)
	if out, ok := replaceBetween(page, begin, end, section); ok {
		return out
	}
	if i := strings.Index(page, "\n## Commands\n"); i >= 0 {
		return page[:i+1] + section + "\n" + page[i+1:]
	}
	return appendSection(page, section)
}
