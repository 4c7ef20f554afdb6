package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// executeIn runs the root command with stdin and returns stdout, stderr and
// the error.
func executeIn(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	root.SetContext(t.Context())
	err := root.Execute()
	return out.String(), errb.String(), err
}

// writePEMFiles writes a self-signed certificate and its key into dir and
// returns their paths.
func writePEMFiles(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// parsedConn registers connFlags on a throwaway command and parses args.
func parsedConn(t *testing.T, args ...string) (*connFlags, *cobra.Command) {
	t.Helper()
	var f connFlags
	cmd := &cobra.Command{Use: "x"}
	f.register(cmd.Flags())
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return &f, cmd
}

func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		args           []string
		name, password string
		ask, usage     bool
	}{
		{args: nil},
		{args: []string{"--user", "alice:pw"}, name: "alice", password: "pw"},
		{args: []string{"--user", "alice:p:w"}, name: "alice", password: "p:w"},
		{args: []string{"--user", "alice"}, name: "alice", ask: true},
		// With --password, --user is the name verbatim (etcdctl).
		{args: []string{"--user", "a:b", "--password", "pw"}, name: "a:b", password: "pw"},
		{args: []string{"--user", "alice", "--password", "pw"}, name: "alice", password: "pw"},
		{args: []string{"--password", "pw"}, usage: true},
		{args: []string{"--user", ""}, usage: true},
		{args: []string{"--user", ":pw"}, usage: true},
		{args: []string{"--user", "alice:"}, usage: true},
		{args: []string{"--user", "alice", "--password", ""}, usage: true},
	}
	for _, tt := range tests {
		f, cmd := parsedConn(t, tt.args...)
		name, password, ask, err := f.credentials(cmd.Flags())
		if tt.usage {
			if !isUsage(err) {
				t.Errorf("credentials(%q) error = %v, want a usage error", tt.args, err)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("credentials(%q) error %q shows the password", tt.args, err)
			}
			continue
		}
		if err != nil || name != tt.name || password != tt.password || ask != tt.ask {
			t.Errorf("credentials(%q) = %q, %q, %t, %v; want %q, %q, %t, nil",
				tt.args, name, password, ask, err, tt.name, tt.password, tt.ask)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePEMFiles(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name       string
		args       []string
		wantTLS    bool
		skipVerify bool
		usage      bool
	}{
		{name: "plain by default", args: nil},
		{name: "http endpoint", args: []string{"--endpoints", "http://127.0.0.1:1"}},
		{name: "https endpoint", args: []string{"--endpoints", "https://127.0.0.1:1"}, wantTLS: true},
		{name: "unixs endpoint", args: []string{"--endpoints", "unixs://sock"}, wantTLS: true},
		{name: "insecure-transport=false", args: []string{"--insecure-transport=false"}, wantTLS: true},
		{name: "skip verify", args: []string{"--insecure-skip-tls-verify"}, wantTLS: true, skipVerify: true},
		{name: "cacert", args: []string{"--cacert", cert}, wantTLS: true},
		{name: "client cert", args: []string{"--cert", cert, "--key", key, "--cacert", cert}, wantTLS: true},
		{name: "cert without key", args: []string{"--cert", cert}, usage: true},
		{name: "key without cert", args: []string{"--key", key}, usage: true},
		{name: "missing cacert", args: []string{"--cacert", missing}, usage: true},
		{name: "cacert not PEM", args: []string{"--cacert", notPEM}, usage: true},
		{name: "missing cert", args: []string{"--cert", missing, "--key", key}, usage: true},
		{name: "key does not match", args: []string{"--cert", cert, "--key", notPEM}, usage: true},
		{name: "empty cacert", args: []string{"--cacert", ""}, usage: true},
		{name: "TLS flag on http endpoint", args: []string{"--endpoints", "http://127.0.0.1:1", "--cacert", cert}, usage: true},
		{name: "mixed schemes", args: []string{"--endpoints", "https://127.0.0.1:1,http://127.0.0.1:2"}, usage: true},
	}
	for _, tt := range tests {
		f, cmd := parsedConn(t, tt.args...)
		eps, err := f.resolve(cmd.Flags())
		if err != nil {
			t.Fatalf("%s: resolve: %v", tt.name, err)
		}
		cfg, err := f.tlsConfig(cmd.Flags(), eps)
		switch {
		case tt.usage:
			if !isUsage(err) {
				t.Errorf("%s: tlsConfig error = %v, want a usage error", tt.name, err)
			}
		case err != nil:
			t.Errorf("%s: tlsConfig: %v", tt.name, err)
		case (cfg != nil) != tt.wantTLS:
			t.Errorf("%s: TLS = %t, want %t", tt.name, cfg != nil, tt.wantTLS)
		case cfg != nil && cfg.InsecureSkipVerify != tt.skipVerify:
			t.Errorf("%s: InsecureSkipVerify = %t, want %t", tt.name, cfg.InsecureSkipVerify, tt.skipVerify)
		}
		if tt.name == "client cert" && cfg != nil && (len(cfg.Certificates) != 1 || cfg.RootCAs == nil) {
			t.Errorf("client cert: %d certificates, RootCAs %v; want 1 and a pool", len(cfg.Certificates), cfg.RootCAs)
		}
	}
}

func TestPrompter(t *testing.T) {
	var errb bytes.Buffer
	p := newPrompter(strings.NewReader("first\r\nsecond\nlast"), &errb)
	for _, want := range []string{"first", "second", "last"} {
		got, err := p.ask("Password: ")
		if err != nil || got != want {
			t.Fatalf("ask() = %q, %v; want %q", got, err, want)
		}
	}
	if errb.String() != "Password: Password: Password: " {
		t.Errorf("prompts on stderr = %q", errb.String())
	}
	if _, err := p.read(); !isUsage(err) || !errors.Is(err, errNoPassword) {
		t.Errorf("read() at EOF = %v, want a usage error wrapping errNoPassword", err)
	}
}

func TestDialerAsksOnce(t *testing.T) {
	f, cmd := parsedConn(t, "--user", "alice")
	var errb bytes.Buffer
	cmd.SetIn(strings.NewReader("s3cret\nnot-read\n"))
	cmd.SetErr(&errb)
	d, err := f.dialer(cmd)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.askPassword(); err != nil {
			t.Fatal(err)
		}
	}
	if d.cfg.Username != "alice" || d.cfg.Password != "s3cret" || errb.String() != "Password: " {
		t.Errorf("after two asks: user %q password %q prompts %q; want alice, s3cret, one prompt",
			d.cfg.Username, d.cfg.Password, errb.String())
	}

	f, cmd = parsedConn(t, "--user", "alice")
	cmd.SetIn(strings.NewReader("\n"))
	cmd.SetErr(&errb)
	if d, err = f.dialer(cmd); err != nil {
		t.Fatal(err)
	}
	if err := d.askPassword(); !isUsage(err) {
		t.Errorf("empty typed password: %v, want a usage error", err)
	}
}

// TestDialErrorHidesPassword logs in against a port nobody listens on: the
// error must name the endpoint and never the password.
func TestDialErrorHidesPassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := ln.Addr().String()
	ln.Close()
	_, _, err = executeIn(t, "", "get", "k", "--endpoints", ep, "--dial-timeout", "300ms", "--user", "alice:s3cret-pw")
	if err == nil || isUsage(err) {
		t.Fatalf("get against a closed port with credentials: %v, want a connection error", err)
	}
	if strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), ep) {
		t.Errorf("error %q: want the endpoint and not the password", err)
	}
}

func TestConnFlagUsageErrors(t *testing.T) {
	t.Setenv(endpointsEnv, "")
	dir := t.TempDir()
	cert, _ := writePEMFiles(t, dir)
	missing := filepath.Join(dir, "missing")
	// Every client verb has the connection flags, and each bad combination
	// fails before anything is dialed or asked.
	verbs := [][]string{
		{"get", "k"}, {"put", "k", "v"}, {"del", "k"}, {"members"}, {"status"},
		{"watch", "k"}, {"lease", "grant", "10"}, {"lease", "keepalive", "1"}, {"lock", "l"}, {"elect", "e"},
		{"member", "list"}, {"snapshot", "save", filepath.Join(dir, "s.db")},
		{"bench", "put"}, {"bench", "watch"},
		{"auth", "status"}, {"user", "list"}, {"role", "list"},
		{"user", "add", "bob:pw"}, {"user", "passwd", "bob", "--interactive=false"},
	}
	bad := [][]string{
		{"--cert", cert},
		{"--key", cert},
		{"--cacert", missing},
		{"--password", "pw"},
		{"--user", ""},
		{"--user", ":pw"},
		{"--endpoints", "http://127.0.0.1:1", "--insecure-skip-tls-verify"},
	}
	for _, v := range verbs {
		for _, b := range bad {
			args := append(slices.Clone(v), b...)
			_, stderr, err := executeIn(t, "pw\n", args...)
			if !isUsage(err) {
				t.Errorf("concord %q: error %v, want a usage error", args, err)
			}
			if stderr != "" {
				t.Errorf("concord %q: asked %q before failing", args, stderr)
			}
		}
	}
}

func TestAuthVerbUsageErrors(t *testing.T) {
	t.Setenv(endpointsEnv, "")
	tests := [][]string{
		{"auth"}, {"auth", "enable", "x"}, {"auth", "status", "x"},
		{"user"}, {"user", "add"}, {"user", "add", "a", "b"}, {"user", "add", ":pw"},
		{"user", "add", "", "--no-password"},
		{"user", "add", "a", "--no-password", "--new-user-password", "x"},
		{"user", "get"}, {"user", "list", "x"}, {"user", "delete"}, {"user", "passwd"},
		{"user", "grant-role", "a"}, {"user", "revoke-role", "a", "b", "c"},
		{"role"}, {"role", "add"}, {"role", "get", "a", "b"}, {"role", "delete"},
		{"role", "grant-permission", "r", "read"},
		{"role", "grant-permission", "r", "admin", "k"},
		{"role", "grant-permission", "r", "read", "a", "b", "c"},
		{"role", "grant-permission", "--prefix", "--from-key", "r", "read", "k"},
		{"role", "grant-permission", "--prefix", "r", "read", "a", "b"},
		{"role", "grant-permission", "r", "read", ""},
		{"role", "revoke-permission", "r"},
		{"role", "revoke-permission", "--from-key", "r", "a", "b"},
		// Passwords that were needed and not given.
		{"user", "add", "bob"},
		{"user", "add", "bob", "--interactive=false"},
		{"user", "passwd", "bob"},
	}
	for _, args := range tests {
		_, _, err := executeIn(t, "", args...)
		if !isUsage(err) {
			t.Errorf("concord %q: error %v, want a usage error", args, err)
		}
	}
}

func TestPermRange(t *testing.T) {
	tests := []struct {
		args            []string
		prefix, fromKey bool
		key, end        string
		usage           bool
	}{
		{args: []string{"k"}, key: "k", end: ""},
		{args: []string{"a", "c"}, key: "a", end: "c"},
		{args: []string{"p/"}, prefix: true, key: "p/", end: "p0"},
		{args: []string{"a\xff"}, prefix: true, key: "a\xff", end: "b"},
		{args: []string{"\xff"}, prefix: true, key: "\xff", end: "\x00"},
		{args: []string{"z"}, fromKey: true, key: "z", end: "\x00"},
		{args: []string{""}, prefix: true, key: "\x00", end: "\x00"},
		{args: []string{""}, fromKey: true, key: "\x00", end: "\x00"},
		{args: []string{"", "c"}, key: "\x00", end: "c"},
		{args: []string{""}, usage: true},
		{args: []string{"k"}, prefix: true, fromKey: true, usage: true},
		{args: []string{""}, prefix: true, fromKey: true, usage: true},
		{args: []string{"a", "c"}, prefix: true, usage: true},
		{args: []string{"a", "c"}, fromKey: true, usage: true},
	}
	for _, tt := range tests {
		key, end, err := permRange(tt.args, tt.prefix, tt.fromKey)
		if tt.usage {
			if !isUsage(err) {
				t.Errorf("permRange(%q, prefix=%t, fromKey=%t) error = %v, want a usage error", tt.args, tt.prefix, tt.fromKey, err)
			}
			continue
		}
		if err != nil || key != tt.key || end != tt.end {
			t.Errorf("permRange(%q, prefix=%t, fromKey=%t) = %q, %q, %v; want %q, %q", tt.args, tt.prefix, tt.fromKey, key, end, err, tt.key, tt.end)
		}
	}
}

func TestParseGrant(t *testing.T) {
	for _, tt := range []struct {
		perm string
		want clientv3.PermissionType
	}{{"read", clientv3.PermissionType(authpb.READ)}, {"WRITE", clientv3.PermissionType(authpb.WRITE)}, {"ReadWrite", clientv3.PermissionType(authpb.READWRITE)}} {
		g, err := parseGrant([]string{"r", tt.perm, "k"}, false, false)
		if err != nil || g.perm != tt.want || g.role != "r" || g.key != "k" || g.end != "" {
			t.Errorf("parseGrant(r %s k) = %+v, %v; want perm %v on k", tt.perm, g, err, tt.want)
		}
	}
}

func TestParseUserAdd(t *testing.T) {
	tests := []struct {
		arg          string
		noPassword   bool
		flagPassword string
		want         newUser
		usage        bool
	}{
		{arg: "alice:pw", want: newUser{name: "alice", password: "pw"}},
		{arg: "alice:p:w", want: newUser{name: "alice", password: "p:w"}},
		// An empty password after the colon is sent as such (etcd 3.6 accepts it).
		{arg: "alice:", want: newUser{name: "alice"}},
		{arg: "alice", want: newUser{name: "alice", ask: true}},
		{arg: "a:b", noPassword: true, want: newUser{name: "a:b", noPassword: true}},
		{arg: "a:b", flagPassword: "pw", want: newUser{name: "a:b", password: "pw"}},
		{arg: ":pw", usage: true},
		{arg: "", usage: true},
		{arg: "", noPassword: true, usage: true},
		{arg: "a", noPassword: true, flagPassword: "pw", usage: true},
	}
	for _, tt := range tests {
		got, err := parseUserAdd(tt.arg, tt.noPassword, tt.flagPassword)
		if tt.usage {
			if !isUsage(err) {
				t.Errorf("parseUserAdd(%q, %t, %q) error = %v, want a usage error", tt.arg, tt.noPassword, tt.flagPassword, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseUserAdd(%q, %t, %q) = %+v, %v; want %+v", tt.arg, tt.noPassword, tt.flagPassword, got, err, tt.want)
		}
	}
}

func TestPasswordSource(t *testing.T) {
	tests := []struct {
		stdin       string
		interactive bool
		want        string
		prompts     string
		usage       bool
	}{
		{stdin: "pw\npw\n", interactive: true, want: "pw",
			prompts: "Password of bob: Type password of bob again for confirmation: "},
		{stdin: "pw\nPW\n", interactive: true, usage: true},
		{stdin: "\n", interactive: true, usage: true},
		{stdin: "pw\n", interactive: true, usage: true},
		{stdin: "two words\n", want: "two words"},
		{stdin: "", usage: true},
	}
	for _, tt := range tests {
		var errb bytes.Buffer
		src := passwordSource{p: newPrompter(strings.NewReader(tt.stdin), &errb), interactive: tt.interactive}
		got, err := src.read("bob")
		if tt.usage {
			if !isUsage(err) {
				t.Errorf("read(%q, interactive=%t) error = %v, want a usage error", tt.stdin, tt.interactive, err)
			}
			continue
		}
		if err != nil || got != tt.want || errb.String() != tt.prompts {
			t.Errorf("read(%q, interactive=%t) = %q, %v, prompts %q; want %q, prompts %q",
				tt.stdin, tt.interactive, got, err, errb.String(), tt.want, tt.prompts)
		}
	}
}

func perm(t authpb.Permission_Type, key, end string) *authpb.Permission {
	return &authpb.Permission{PermType: t, Key: []byte(key), RangeEnd: []byte(end)}
}

func TestWriteRole(t *testing.T) {
	tests := []struct {
		name  string
		perms []*authpb.Permission
		want  string
	}{
		{"root", nil, "Role root\nKV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n"},
		{"root", []*authpb.Permission{perm(authpb.READ, "k", "")}, "Role root\nKV Read:\n\tk\nKV Write:\n"},
		{"empty", nil, "Role empty\nKV Read:\nKV Write:\n"},
		// The permissions etcd 3.6 printed for the same grants (see the
		// report of issue 6): read [a, c), readwrite --prefix p/, write
		// single, write --from-key z, read --prefix "".
		{"r", []*authpb.Permission{
			perm(authpb.READ, "\x00", "\x00"),
			perm(authpb.READ, "a", "c"),
			perm(authpb.READWRITE, "p/", "p0"),
			perm(authpb.WRITE, "single", ""),
			perm(authpb.WRITE, "z", "\x00"),
		}, "Role r\nKV Read:\n\t[\x00, <open ended>\n\t[a, c)\n\t[p/, p0) (prefix p/)\n" +
			"KV Write:\n\t[p/, p0) (prefix p/)\n\tsingle\n\t[z, <open ended>\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := writeRole(&b, tt.name, tt.perms); err != nil || b.String() != tt.want {
			t.Errorf("writeRole(%s) = %q, %v; want %q", tt.name, b.String(), err, tt.want)
		}
	}
}

func TestSimplePrinters(t *testing.T) {
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  string
	}{
		{"status", func(b *bytes.Buffer) error { return writeAuthStatus(b, true, 4) }, "Authentication Status: true\nAuthRevision: 4\n"},
		{"user", func(b *bytes.Buffer) error { return writeUser(b, "alice", []string{"r", "s"}) }, "User: alice\nRoles: r s\n"},
		{"user without roles", func(b *bytes.Buffer) error { return writeUser(b, "bob", nil) }, "User: bob\nRoles:\n"},
		{"names", func(b *bytes.Buffer) error { return writeNames(b, []string{"alice", "root"}) }, "alice\nroot\n"},
		{"revoke key", func(b *bytes.Buffer) error { return writeRevoked(b, "r", "k", "") }, "Permission of key k is revoked from role r\n"},
		{"revoke range", func(b *bytes.Buffer) error { return writeRevoked(b, "r", "a", "c") }, "Permission of range [a, c) is revoked from role r\n"},
		{"revoke from key", func(b *bytes.Buffer) error { return writeRevoked(b, "r", "z", "\x00") }, "Permission of range [z, <open ended> is revoked from role r\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := tt.write(&b); err != nil || b.String() != tt.want {
			t.Errorf("%s: printed %q, %v; want %q", tt.name, b.String(), err, tt.want)
		}
	}
}

// fakeAuth answers the Auth calls the verbs make from canned errors and
// records each call.
type fakeAuth struct {
	calls []string
	errs  map[string][]error // per method, consumed in order; missing = success
	roles map[string][]*authpb.Permission
	users map[string][]string
}

func (f *fakeAuth) call(format string, args ...any) error {
	c := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, c)
	method, _, _ := strings.Cut(c, " ")
	if errs := f.errs[method]; len(errs) > 0 {
		f.errs[method] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *fakeAuth) AuthEnable(context.Context) (*clientv3.AuthEnableResponse, error) {
	return &clientv3.AuthEnableResponse{}, f.call("AuthEnable")
}

func (f *fakeAuth) AuthDisable(context.Context) (*clientv3.AuthDisableResponse, error) {
	return &clientv3.AuthDisableResponse{}, f.call("AuthDisable")
}

func (f *fakeAuth) AuthStatus(context.Context) (*clientv3.AuthStatusResponse, error) {
	return &clientv3.AuthStatusResponse{Enabled: true, AuthRevision: 7}, f.call("AuthStatus")
}

func (f *fakeAuth) RoleAdd(_ context.Context, name string) (*clientv3.AuthRoleAddResponse, error) {
	return &clientv3.AuthRoleAddResponse{}, f.call("RoleAdd %s", name)
}

func (f *fakeAuth) UserGrantRole(_ context.Context, user, role string) (*clientv3.AuthUserGrantRoleResponse, error) {
	return &clientv3.AuthUserGrantRoleResponse{}, f.call("UserGrantRole %s %s", user, role)
}

func (f *fakeAuth) UserAddWithOptions(_ context.Context, name, password string, opt *clientv3.UserAddOptions) (*clientv3.AuthUserAddResponse, error) {
	return &clientv3.AuthUserAddResponse{}, f.call("UserAdd %s %s %t", name, password, opt.NoPassword)
}

func (f *fakeAuth) UserDelete(_ context.Context, name string) (*clientv3.AuthUserDeleteResponse, error) {
	return &clientv3.AuthUserDeleteResponse{}, f.call("UserDelete %s", name)
}

func (f *fakeAuth) UserChangePassword(_ context.Context, name, password string) (*clientv3.AuthUserChangePasswordResponse, error) {
	return &clientv3.AuthUserChangePasswordResponse{}, f.call("UserChangePassword %s %s", name, password)
}

func (f *fakeAuth) UserGet(_ context.Context, name string) (*clientv3.AuthUserGetResponse, error) {
	return &clientv3.AuthUserGetResponse{Roles: f.users[name]}, f.call("UserGet %s", name)
}

func (f *fakeAuth) UserList(context.Context) (*clientv3.AuthUserListResponse, error) {
	return &clientv3.AuthUserListResponse{Users: []string{"alice", "root"}}, f.call("UserList")
}

func (f *fakeAuth) UserRevokeRole(_ context.Context, name, role string) (*clientv3.AuthUserRevokeRoleResponse, error) {
	return &clientv3.AuthUserRevokeRoleResponse{}, f.call("UserRevokeRole %s %s", name, role)
}

func (f *fakeAuth) RoleGet(_ context.Context, role string) (*clientv3.AuthRoleGetResponse, error) {
	return &clientv3.AuthRoleGetResponse{Perm: f.roles[role]}, f.call("RoleGet %s", role)
}

func (f *fakeAuth) RoleList(context.Context) (*clientv3.AuthRoleListResponse, error) {
	return &clientv3.AuthRoleListResponse{Roles: []string{"r", "root"}}, f.call("RoleList")
}

func (f *fakeAuth) RoleGrantPermission(_ context.Context, name, key, end string, t clientv3.PermissionType) (*clientv3.AuthRoleGrantPermissionResponse, error) {
	return &clientv3.AuthRoleGrantPermissionResponse{}, f.call("RoleGrantPermission %s %q %q %v", name, key, end, authpb.Permission_Type(t))
}

func (f *fakeAuth) RoleRevokePermission(_ context.Context, role, key, end string) (*clientv3.AuthRoleRevokePermissionResponse, error) {
	return &clientv3.AuthRoleRevokePermissionResponse{}, f.call("RoleRevokePermission %s %q %q", role, key, end)
}

func (f *fakeAuth) RoleDelete(_ context.Context, role string) (*clientv3.AuthRoleDeleteResponse, error) {
	return &clientv3.AuthRoleDeleteResponse{}, f.call("RoleDelete %s", role)
}

func TestRunAuthEnable(t *testing.T) {
	tests := []struct {
		name      string
		errs      map[string][]error
		wantCalls []string
		wantErr   error
		wantOut   string
	}{
		{name: "enabled", wantCalls: []string{"AuthEnable"}, wantOut: "Authentication Enabled\n"},
		{name: "root lacks its role: add it, grant it, retry",
			errs:      map[string][]error{"AuthEnable": {rpctypes.ErrRootRoleNotExist}},
			wantCalls: []string{"AuthEnable", "RoleAdd root", "UserGrantRole root root", "AuthEnable"},
			wantOut:   "Authentication Enabled\n"},
		{name: "role root exists but is not granted",
			errs:      map[string][]error{"AuthEnable": {rpctypes.ErrRootRoleNotExist}, "RoleAdd": {rpctypes.ErrRoleAlreadyExist}},
			wantCalls: []string{"AuthEnable", "RoleAdd root", "UserGrantRole root root", "AuthEnable"},
			wantOut:   "Authentication Enabled\n"},
		{name: "no root user",
			errs:      map[string][]error{"AuthEnable": {rpctypes.ErrRootUserNotExist}},
			wantCalls: []string{"AuthEnable"}, wantErr: rpctypes.ErrRootUserNotExist},
		{name: "grant fails",
			errs:      map[string][]error{"AuthEnable": {rpctypes.ErrRootRoleNotExist}, "UserGrantRole": {rpctypes.ErrPermissionDenied}},
			wantCalls: []string{"AuthEnable", "RoleAdd root", "UserGrantRole root root"}, wantErr: rpctypes.ErrPermissionDenied},
		{name: "retry fails once, no loop",
			errs:      map[string][]error{"AuthEnable": {rpctypes.ErrRootRoleNotExist, rpctypes.ErrRootRoleNotExist}},
			wantCalls: []string{"AuthEnable", "RoleAdd root", "UserGrantRole root root", "AuthEnable"}, wantErr: rpctypes.ErrRootRoleNotExist},
	}
	for _, tt := range tests {
		f := &fakeAuth{errs: tt.errs}
		var out bytes.Buffer
		err := runAuthEnable(t.Context(), f, &out)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
		}
		if !slices.Equal(f.calls, tt.wantCalls) || out.String() != tt.wantOut {
			t.Errorf("%s: calls %q, printed %q; want %q, %q", tt.name, f.calls, out.String(), tt.wantCalls, tt.wantOut)
		}
	}
}

func TestRunAuthVerbs(t *testing.T) {
	f := &fakeAuth{
		users: map[string][]string{"alice": {"r", "root"}},
		roles: map[string][]*authpb.Permission{"r": {perm(authpb.READ, "a", "c")}},
	}
	ctx := t.Context()
	tests := []struct {
		name     string
		run      func(*bytes.Buffer) error
		wantCall string
		want     string
	}{
		{"auth disable", func(b *bytes.Buffer) error { return runAuthDisable(ctx, f, b) }, "AuthDisable", "Authentication Disabled\n"},
		{"auth status", func(b *bytes.Buffer) error { return runAuthStatus(ctx, f, b) }, "AuthStatus", "Authentication Status: true\nAuthRevision: 7\n"},
		{"user add", func(b *bytes.Buffer) error { return runUserAdd(ctx, f, b, newUser{name: "bob", password: "pw"}) }, "UserAdd bob pw false", "User bob created\n"},
		{"user add --no-password", func(b *bytes.Buffer) error { return runUserAdd(ctx, f, b, newUser{name: "cn", noPassword: true}) }, "UserAdd cn  true", "User cn created\n"},
		{"user delete", func(b *bytes.Buffer) error { return runUserDelete(ctx, f, b, "bob") }, "UserDelete bob", "User bob deleted\n"},
		{"user passwd", func(b *bytes.Buffer) error { return runUserPasswd(ctx, f, b, "bob", "new") }, "UserChangePassword bob new", "Password updated\n"},
		{"user grant-role", func(b *bytes.Buffer) error { return runUserGrantRole(ctx, f, b, "bob", "r") }, "UserGrantRole bob r", "Role r is granted to user bob\n"},
		{"user revoke-role", func(b *bytes.Buffer) error { return runUserRevokeRole(ctx, f, b, "bob", "r") }, "UserRevokeRole bob r", "Role r is revoked from user bob\n"},
		{"user get", func(b *bytes.Buffer) error { return runUserGet(ctx, f, b, "alice", false) }, "UserGet alice", "User: alice\nRoles: r root\n"},
		{"user get --detail", func(b *bytes.Buffer) error { return runUserGet(ctx, f, b, "alice", true) }, "RoleGet root",
			"User: alice\n\nRole r\nKV Read:\n\t[a, c)\nKV Write:\n\nRole root\nKV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n"},
		{"user list", func(b *bytes.Buffer) error { return runUserList(ctx, f, b) }, "UserList", "alice\nroot\n"},
		{"role add", func(b *bytes.Buffer) error { return runRoleAdd(ctx, f, b, "r") }, "RoleAdd r", "Role r created\n"},
		{"role delete", func(b *bytes.Buffer) error { return runRoleDelete(ctx, f, b, "r") }, "RoleDelete r", "Role r deleted\n"},
		{"role get", func(b *bytes.Buffer) error { return runRoleGet(ctx, f, b, "r") }, "RoleGet r", "Role r\nKV Read:\n\t[a, c)\nKV Write:\n"},
		{"role list", func(b *bytes.Buffer) error { return runRoleList(ctx, f, b) }, "RoleList", "r\nroot\n"},
		{"role grant-permission --prefix", func(b *bytes.Buffer) error {
			g, err := parseGrant([]string{"r", "readwrite", "p/"}, true, false)
			if err != nil {
				return err
			}
			return runRoleGrant(ctx, f, b, g)
		}, `RoleGrantPermission r "p/" "p0" READWRITE`, "Role r updated\n"},
		{"role revoke-permission --from-key ''", func(b *bytes.Buffer) error {
			return runRoleRevoke(ctx, f, b, "r", "", "\x00", "\x00")
		}, `RoleRevokePermission r "\x00" "\x00"`, "Permission of range [, <open ended> is revoked from role r\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		err := tt.run(&b)
		if err != nil || b.String() != tt.want || len(f.calls) == 0 || f.calls[len(f.calls)-1] != tt.wantCall {
			last := ""
			if len(f.calls) > 0 {
				last = f.calls[len(f.calls)-1]
			}
			t.Errorf("%s: printed %q, %v, last call %q; want %q, last call %q", tt.name, b.String(), err, last, tt.want, tt.wantCall)
		}
	}
}

func TestRunAuthVerbErrors(t *testing.T) {
	ctx := t.Context()
	denied := func() *fakeAuth {
		errs := map[string][]error{}
		for _, m := range []string{"AuthDisable", "AuthStatus", "UserAdd", "UserDelete", "UserChangePassword", "UserGrantRole",
			"UserGet", "UserList", "UserRevokeRole", "RoleGet", "RoleList", "RoleGrantPermission", "RoleRevokePermission", "RoleAdd", "RoleDelete"} {
			errs[m] = []error{rpctypes.ErrPermissionDenied}
		}
		return &fakeAuth{errs: errs}
	}
	for name, run := range map[string]func(*fakeAuth, *bytes.Buffer) error{
		"auth disable": func(f *fakeAuth, b *bytes.Buffer) error { return runAuthDisable(ctx, f, b) },
		"auth status":  func(f *fakeAuth, b *bytes.Buffer) error { return runAuthStatus(ctx, f, b) },
		"user add": func(f *fakeAuth, b *bytes.Buffer) error {
			return runUserAdd(ctx, f, b, newUser{name: "bob", password: "s3cret"})
		},
		"user passwd":      func(f *fakeAuth, b *bytes.Buffer) error { return runUserPasswd(ctx, f, b, "bob", "s3cret") },
		"user get":         func(f *fakeAuth, b *bytes.Buffer) error { return runUserGet(ctx, f, b, "bob", true) },
		"user list":        func(f *fakeAuth, b *bytes.Buffer) error { return runUserList(ctx, f, b) },
		"user delete":      func(f *fakeAuth, b *bytes.Buffer) error { return runUserDelete(ctx, f, b, "bob") },
		"user grant-role":  func(f *fakeAuth, b *bytes.Buffer) error { return runUserGrantRole(ctx, f, b, "bob", "r") },
		"user revoke-role": func(f *fakeAuth, b *bytes.Buffer) error { return runUserRevokeRole(ctx, f, b, "bob", "r") },
		"role add":         func(f *fakeAuth, b *bytes.Buffer) error { return runRoleAdd(ctx, f, b, "r") },
		"role get":         func(f *fakeAuth, b *bytes.Buffer) error { return runRoleGet(ctx, f, b, "r") },
		"role list":        func(f *fakeAuth, b *bytes.Buffer) error { return runRoleList(ctx, f, b) },
		"role delete":      func(f *fakeAuth, b *bytes.Buffer) error { return runRoleDelete(ctx, f, b, "r") },
		"role grant-permission": func(f *fakeAuth, b *bytes.Buffer) error {
			return runRoleGrant(ctx, f, b, permGrant{role: "r", key: "k"})
		},
		"role revoke-permission": func(f *fakeAuth, b *bytes.Buffer) error { return runRoleRevoke(ctx, f, b, "r", "k", "k", "") },
	} {
		var b bytes.Buffer
		err := run(denied(), &b)
		if !errors.Is(err, rpctypes.ErrPermissionDenied) || b.Len() != 0 {
			t.Errorf("%s: error %v, printed %q; want permission denied and nothing printed", name, err, b.String())
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error %q shows the password", name, err)
		}
	}
	// A role that fails under --detail fails the verb.
	f := &fakeAuth{users: map[string][]string{"bob": {"r"}}, errs: map[string][]error{"RoleGet": {rpctypes.ErrRoleNotFound}}}
	var b bytes.Buffer
	if err := runUserGet(ctx, f, &b, "bob", true); !errors.Is(err, rpctypes.ErrRoleNotFound) {
		t.Errorf("user get --detail with a failing role get: %v, want role not found", err)
	}
}

// TestUserAddReadsPasswordsInEtcdctlOrder pipes the new user's password and
// then --user's into user add: the verb must read them in that order before
// it dials. The endpoint refuses connections, so the run ends at the dial.
func TestUserAddReadsPasswordsInEtcdctlOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := ln.Addr().String()
	ln.Close()
	_, stderr, err := executeIn(t, "newpw\nnewpw\nrootpw\n", "user", "add", "bob", "--user", "root",
		"--endpoints", ep, "--dial-timeout", "200ms")
	want := "Password of bob: Type password of bob again for confirmation: Password: "
	if stderr != want {
		t.Errorf("prompts = %q, want %q", stderr, want)
	}
	if err == nil || isUsage(err) || strings.Contains(err.Error(), "pw") {
		t.Errorf("error %v: want a connection error without any password", err)
	}
}
