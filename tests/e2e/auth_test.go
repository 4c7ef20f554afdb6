package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Authentication and authorization (issue 6): users, roles and key-range
// permissions with etcd's exact semantics and error texts, checked through
// clientv3, raw gRPC, etcdctl (when on PATH) and concord's own CLI.
//
// Every expectation here was first observed on real etcd 3.6: set
// CONCORD_E2E_ETCD to an etcd binary (go -C bench/etcd36 build -o
// /tmp/etcd36 .) and TestAuthEtcdReference runs the same checks against
// it. Members run with --bcrypt-cost 4 so logins stay fast.

// Passwords are distinctive so that finding one in a log is unambiguous.
const (
	rootPassword  = "R00t-pw-7f3a"
	alicePassword = "al1ce-pw-9c2e"
	wrongPassword = "wr0ng-pw-1b4d"
)

// The error texts etcd 3.6 returns.
const (
	errTextDenied      = "etcdserver: permission denied"
	errTextAuthFailed  = "etcdserver: authentication failed, invalid user ID or password"
	errTextNoRootUser  = "etcdserver: root user does not exist"
	errTextNoRootRole  = "etcdserver: root user does not have root role"
	errTextUserEmpty   = "etcdserver: user name is empty"
	errTextInvalidAuth = "etcdserver: invalid auth token"
	// A watch on a forbidden range is answered with watch id -1, canceled,
	// and the whole gRPC error string as CancelReason; clientv3 then closes
	// the watch stream with that text as the error (CancelReason of the
	// response it delivers is empty).
	errTextWatchDenied = "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
)

var authSecrets = []string{rootPassword, alicePassword, wrongPassword}

// authCluster is what the auth checks need of a cluster: concord's harness,
// or a real etcd for the reference run.
type authCluster interface {
	endpoints() []string
	// logs is everything the members wrote.
	logs() string
	// restartAll stops every member and starts them all again on the same
	// data.
	restartAll(t *testing.T)
}

type concordAuthCluster struct{ c *Cluster }

func (a concordAuthCluster) endpoints() []string { return a.c.Endpoints() }

func (a concordAuthCluster) logs() string {
	var b strings.Builder
	for _, m := range a.c.Members {
		b.WriteString(m.Log())
	}
	return b.String()
}

func (a concordAuthCluster) restartAll(t *testing.T) {
	t.Helper()
	for i := range a.c.Members {
		if code := a.c.Stop(i); code != 0 {
			t.Fatalf("%s exited %d on SIGTERM", a.c.Members[i].Name, code)
		}
	}
	for i := range a.c.Members {
		a.c.Start(i)
	}
	for i := range a.c.Members {
		a.c.WaitReady(i)
	}
	for i := range a.c.Members {
		a.c.connect(i)
	}
}

// authArgs are the server flags of every auth test member.
func authArgs(extra ...string) []string {
	return append([]string{"--bcrypt-cost", "4"}, extra...)
}

// authClient logs in as user over eps. clientv3 authenticates inside New,
// so a wrong password fails here.
func authClient(eps []string, user, password string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		Username:    user,
		Password:    password,
		Logger:      zap.NewNop(),
	})
}

func mustAuthClient(t *testing.T, eps []string, user, password string) *clientv3.Client {
	t.Helper()
	c, err := authClient(eps, user, password)
	if err != nil {
		t.Fatalf("log in as %s at %v: %v", user, eps, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustPlainClient(t *testing.T, eps []string) *clientv3.Client {
	t.Helper()
	c, err := newClient(eps)
	if err != nil {
		t.Fatalf("connect to %v: %v", eps, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantErrText fails unless err's text is exactly want.
func wantErrText(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %q", what, want)
	} else if err.Error() != want {
		t.Errorf("%s: error %q, want %q", what, err, want)
	}
}

// wantDenied fails unless err is etcd's permission denied, as clientv3
// returns it.
func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	wantErrText(t, what, err, errTextDenied)
	if err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("%s: %v is not rpctypes.ErrPermissionDenied", what, err)
	}
}

// grpcConn is a raw connection to one endpoint, for calls with a token of
// our choosing.
func grpcConn(t *testing.T, ep string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", ep, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func rawAuthenticate(ctx context.Context, conn *grpc.ClientConn, user, password string) (string, error) {
	resp, err := pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: user, Password: password})
	if err != nil {
		return "", err
	}
	return resp.Token, nil
}

// rawGet reads key with token in the request metadata, as clientv3 sends it.
func rawGet(ctx context.Context, conn *grpc.ClientConn, token, key string) error {
	ctx = metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, token)
	_, err := pb.NewKVClient(conn).Range(ctx, &pb.RangeRequest{Key: []byte(key)})
	return err
}

// cliAt runs concord's CLI against eps.
func cliAt(t *testing.T, eps []string, stdin string, args ...string) cmdResult {
	t.Helper()
	args = append(args, "--endpoints", strings.Join(eps, ","))
	return runCmd(t, nil, stdin, concordBin(t), args...)
}

// cliOK runs concord's CLI, requires exit 0 and stdout == want.
func cliOK(t *testing.T, eps []string, stdin, want string, args ...string) {
	t.Helper()
	r := cliAt(t, eps, stdin, args...)
	if r.code != 0 || r.stdout != want {
		t.Errorf("concord %s: %s\nwant exit 0 and stdout %q", strings.Join(args, " "), r, want)
	}
	noSecrets(t, "concord "+strings.Join(args, " "), r.stderr)
}

// cliFails runs concord's CLI and requires exit 1 with wantErr on stderr.
func cliFails(t *testing.T, eps []string, stdin, wantErr string, args ...string) {
	t.Helper()
	r := cliAt(t, eps, stdin, args...)
	if r.code != 1 || !strings.Contains(r.stderr, wantErr) {
		t.Errorf("concord %s: %s\nwant exit 1 and %q on stderr", strings.Join(args, " "), r, wantErr)
	}
	noSecrets(t, "concord "+strings.Join(args, " "), r.stderr)
}

// etcdctlAt runs the real etcdctl against eps.
func etcdctlAt(t *testing.T, eps []string, args ...string) cmdResult {
	t.Helper()
	args = append([]string{"--endpoints=" + strings.Join(eps, ",")}, args...)
	return runCmd(t, []string{"ETCDCTL_API=3"}, "", "etcdctl", args...)
}

// noSecrets fails if text contains a password.
func noSecrets(t *testing.T, what, text string, extra ...string) {
	t.Helper()
	for _, s := range append(slices.Clone(authSecrets), extra...) {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains the secret %q", what, s)
		}
	}
}

// memberStatus is one endpoint's answer to Status, asked as root.
type memberStatus struct {
	endpoint string
	id       uint64
	leader   uint64
}

func statusAll(t *testing.T, root *clientv3.Client, eps []string) []memberStatus {
	t.Helper()
	var out []memberStatus
	for _, ep := range eps {
		s, err := root.Status(reqCtx(t), ep)
		if err != nil {
			t.Fatalf("Status(%s) as root: %v", ep, err)
		}
		out = append(out, memberStatus{endpoint: ep, id: s.Header.MemberId, leader: s.Leader})
	}
	return out
}

// TestAuth runs the whole lifecycle on a 3-member Concord cluster.
func TestAuth(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3, ExtraArgs: authArgs()})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	runAuthChecks(t, concordAuthCluster{c})
}

// TestAuthJWT checks JWT tokens (RS256, 2 s TTL) on one Concord member.
func TestAuthJWT(t *testing.T) {
	opt := jwtOption(t)
	c := NewCluster(t, ClusterOptions{Size: 1, ExtraArgs: authArgs("--auth-token", opt)})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	runJWTChecks(t, concordAuthCluster{c})
}

// runAuthChecks is the lifecycle: enabling, users, roles, permissions,
// maintenance, bad input, restart, revocation, and clean logs.
func runAuthChecks(t *testing.T, ac authCluster) {
	eps := ac.endpoints()
	plain := mustPlainClient(t, eps)
	rootFlag := "--user=root:" + rootPassword
	var tokens []string

	// Enabling needs a root user that has the root role. concord auth
	// enable, like etcdctl's, adds and grants the role itself.
	cliOK(t, eps, "", "Authentication Status: false\nAuthRevision: 1\n", "auth", "status")
	_, err := plain.AuthEnable(reqCtx(t))
	wantErrText(t, "AuthEnable without users", err, errTextNoRootUser)
	cliFails(t, eps, "", errTextNoRootUser, "auth", "enable")
	cliOK(t, eps, rootPassword+"\n", "User root created\n", "user", "add", "root", "--interactive=false")
	_, err = plain.AuthEnable(reqCtx(t))
	wantErrText(t, "AuthEnable while root has no root role", err, errTextNoRootRole)
	cliOK(t, eps, "", "Authentication Enabled\n", "auth", "enable")

	// Without a token every request is refused.
	_, err = plain.Get(reqCtx(t), "b")
	wantErrText(t, "Get without a token", err, errTextUserEmpty)
	_, err = plain.Status(reqCtx(t), eps[0])
	wantErrText(t, "Status without a token", err, errTextUserEmpty)

	// Role r may read [a, c); alice has role r. Root's password comes from
	// stdin as a prompt answer here, from the flag elsewhere.
	cliOK(t, eps, rootPassword+"\n", "Role r created\n", "role", "add", "r", "--user", "root")
	cliOK(t, eps, "", "Role r updated\n", "role", "grant-permission", "r", "read", "a", "c", rootFlag)
	if haveEtcdctl() {
		for _, step := range []struct{ want, args string }{
			{"User alice created\n", "user add alice:" + alicePassword},
			{"Role r is granted to user alice\n", "user grant-role alice r"},
			{"Role r\nKV Read:\n\t[a, c)\nKV Write:\n", "role get r"},
		} {
			r := etcdctlAt(t, eps, append([]string{rootFlag}, strings.Fields(step.args)...)...)
			if r.code != 0 || r.stdout != step.want {
				t.Errorf("etcdctl %s: %s\nwant stdout %q", step.args, r, step.want)
			}
		}
	} else {
		t.Log("etcdctl is not on PATH: alice is added with concord's CLI instead")
		cliOK(t, eps, alicePassword+"\n"+alicePassword+"\n", "User alice created\n", "user", "add", "alice", rootFlag)
		cliOK(t, eps, "", "Role r is granted to user alice\n", "user", "grant-role", "alice", "r", rootFlag)
	}
	cliOK(t, eps, "", "Role r\nKV Read:\n\t[a, c)\nKV Write:\n", "role", "get", "r", rootFlag)
	cliOK(t, eps, "", "User: alice\nRoles: r\n", "user", "get", "alice", rootFlag)
	cliOK(t, eps, "", "User: alice\n\nRole r\nKV Read:\n\t[a, c)\nKV Write:\n", "user", "get", "alice", "--detail", rootFlag)
	cliOK(t, eps, "", "alice\nroot\n", "user", "list", rootFlag)
	cliOK(t, eps, "", "r\nroot\n", "role", "list", rootFlag)
	cliOK(t, eps, "", "Role root\nKV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n", "role", "get", "root", rootFlag)
	cliFails(t, eps, "", errTextDenied, "user", "list", "--user=alice:"+alicePassword)

	root := mustAuthClient(t, eps, "root", rootPassword)
	for k, v := range map[string]string{"b": "v1", "d": "v2"} {
		if _, err := root.Put(reqCtx(t), k, v); err != nil {
			t.Fatalf("Put(%s) as root: %v", k, err)
		}
	}

	checkAlice(t, eps, root)
	checkMaintenance(t, eps, root)
	checkLeaseRenewals(t, eps, root)

	// Bad credentials, and tokens that are not tokens.
	for _, cred := range [][2]string{{"alice", wrongPassword}, {"nobody", wrongPassword}} {
		_, err := authClient(eps, cred[0], cred[1])
		wantErrText(t, "log in as "+cred[0]+" with a wrong password", err, errTextAuthFailed)
	}
	conn := grpcConn(t, eps[0])
	_, err = rawAuthenticate(reqCtx(t), conn, "alice", wrongPassword)
	wantStatus(t, "raw Authenticate with a wrong password", err, rpctypes.ErrGRPCAuthFailed)
	wantStatus(t, "raw Range with token=garbage", rawGet(reqCtx(t), conn, "garbage", "b"), rpctypes.ErrGRPCInvalidAuthToken)
	tok, err := rawAuthenticate(reqCtx(t), conn, "alice", alicePassword)
	if err != nil {
		t.Fatalf("raw Authenticate as alice: %v", err)
	}
	tokens = append(tokens, tok)
	if err := rawGet(reqCtx(t), conn, tok, "b"); err != nil {
		t.Errorf("raw Range(b) with alice's token: %v", err)
	}
	wantStatus(t, "raw Range(d) with alice's token", rawGet(reqCtx(t), conn, tok, "d"), rpctypes.ErrGRPCPermissionDenied)
	// A token is good on every member as soon as Authenticate returns: a
	// member that has not applied the login yet waits for it (etcd's
	// simple tokens carry their raft index for this) rather than refusing
	// the token.
	conns := make([]*grpc.ClientConn, len(eps))
	for i, ep := range eps {
		conns[i] = grpcConn(t, ep)
	}
	for i := range 10 * len(eps) {
		login, use := conns[i%len(eps)], conns[(i+1)%len(eps)]
		tok, err := rawAuthenticate(reqCtx(t), login, "alice", alicePassword)
		if err != nil {
			t.Fatalf("raw Authenticate as alice at %s: %v", eps[i%len(eps)], err)
		}
		if err := rawGet(reqCtx(t), use, tok, "b"); err != nil {
			t.Errorf("login %d: token from %s refused at %s: %v", i, eps[i%len(eps)], eps[(i+1)%len(eps)], err)
			break
		}
	}
	if haveEtcdctl() {
		r := etcdctlAt(t, eps, "--user=alice:"+wrongPassword, "get", "b")
		if r.code == 0 || !strings.Contains(r.stderr, errTextAuthFailed) {
			t.Errorf("etcdctl get with a wrong password: %s\nwant a failure with %q", r, errTextAuthFailed)
		}
		noSecrets(t, "etcdctl output", r.stdout+r.stderr, wrongPassword)
	}
	r := cliAt(t, eps, "", "get", "b", "--user=alice:"+wrongPassword)
	if r.code != 1 || !strings.Contains(r.stderr, errTextAuthFailed) {
		t.Errorf("concord get with a wrong password: %s\nwant exit 1 and %q", r, errTextAuthFailed)
	}
	noSecrets(t, "concord get with a wrong password", r.stdout+r.stderr)

	// Auth state is durable: after every member restarts, alice still logs
	// in, still reads b and is still refused writes, and the auth revision
	// is the same.
	before := cliAt(t, eps, "", "auth", "status", rootFlag)
	ac.restartAll(t)
	// Simple tokens live in the members' memory only: a restart ends them.
	wantStatus(t, "raw Range(b) with alice's token from before the restart", rawGet(reqCtx(t), grpcConn(t, eps[0]), tok, "b"), rpctypes.ErrGRPCInvalidAuthToken)
	alice := mustAuthClient(t, eps, "alice", alicePassword)
	if resp, err := alice.Get(reqCtx(t), "b"); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Errorf("after restarting every member, alice Get(b) = %v, %v; want v1", resp, err)
	}
	_, err = alice.Put(reqCtx(t), "b", "x")
	wantDenied(t, "after restarting every member, alice Put(b)", err)
	cliOK(t, eps, "", before.stdout, "auth", "status", rootFlag)

	// A revoked permission is gone for a client logged in before the
	// revocation: its token carries an old auth revision, clientv3 logs in
	// again transparently, and the fresh token no longer grants the read.
	root2 := mustAuthClient(t, eps, "root", rootPassword)
	if _, err := alice.Get(reqCtx(t), "b"); err != nil {
		t.Fatalf("alice Get(b) before the revocation: %v", err)
	}
	cliOK(t, eps, "", "Permission of range [a, c) is revoked from role r\n", "role", "revoke-permission", "r", "a", "c", rootFlag)
	_, err = alice.Get(reqCtx(t), "b")
	wantDenied(t, "alice Get(b) on her old client after the revocation", err)
	if resp, err := root2.Get(reqCtx(t), "b"); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("root Get(b) after the revocation = %v, %v", resp, err)
	}

	logs := ac.logs()
	noSecrets(t, "member logs", logs, tokens...)
	if !strings.Contains(logs, "ready") {
		t.Errorf("member logs look empty (%d bytes): the secrets check proves nothing", len(logs))
	}
}

// checkAlice: alice reads inside [a, c) and nothing else, writes nothing,
// and watches only what she may read; through clientv3, etcdctl and
// concord's CLI.
func checkAlice(t *testing.T, eps []string, root *clientv3.Client) {
	t.Helper()
	alice := mustAuthClient(t, eps, "alice", alicePassword)
	resp, err := alice.Get(reqCtx(t), "b")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Errorf("alice Get(b) = %v, %v; want v1", resp, err)
	}
	if _, err := alice.Get(reqCtx(t), "a", clientv3.WithRange("c")); err != nil {
		t.Errorf("alice Get([a, c)): %v", err)
	}
	_, err = alice.Put(reqCtx(t), "b", "x")
	wantDenied(t, "alice Put(b)", err)
	_, err = alice.Delete(reqCtx(t), "b")
	wantDenied(t, "alice Delete(b)", err)
	_, err = alice.Get(reqCtx(t), "d")
	wantDenied(t, "alice Get(d)", err)
	_, err = alice.Get(reqCtx(t), "a", clientv3.WithRange("e"))
	wantDenied(t, "alice Get([a, e))", err)
	_, err = alice.Get(reqCtx(t), "", clientv3.WithPrefix())
	wantDenied(t, "alice Get(every key)", err)

	txn, err := alice.Txn(reqCtx(t)).If(clientv3.Compare(clientv3.Value("b"), "=", "v1")).Then(clientv3.OpGet("b")).Commit()
	if err != nil || !txn.Succeeded {
		t.Errorf("alice Txn(b = v1 ? get b) = %v, %v; want success", txn, err)
	}
	_, err = alice.Txn(reqCtx(t)).If(clientv3.Compare(clientv3.Value("d"), "=", "v2")).Then(clientv3.OpGet("b")).Commit()
	wantDenied(t, "alice Txn comparing d", err)
	_, err = alice.Txn(reqCtx(t)).If(clientv3.Compare(clientv3.Value("b"), "=", "v1")).Then(clientv3.OpGet("b")).Else(clientv3.OpGet("d")).Commit()
	wantDenied(t, "alice Txn reading d in its else branch", err)
	_, err = alice.Txn(reqCtx(t)).Then(clientv3.OpPut("b", "x")).Commit()
	wantDenied(t, "alice Txn putting b", err)

	// Watches: refused outside [a, c) (created and canceled at once),
	// delivered inside.
	for _, w := range []struct {
		what string
		key  string
		opts []clientv3.OpOption
	}{
		{"d", "d", nil},
		{"[a, e)", "a", []clientv3.OpOption{clientv3.WithRange("e")}},
		{"every key", "", []clientv3.OpOption{clientv3.WithPrefix()}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		wr, ok := <-alice.Watch(ctx, w.key, w.opts...)
		cancel()
		if !ok {
			t.Errorf("alice Watch(%s): channel closed without a response", w.what)
			continue
		}
		if !wr.Canceled {
			t.Errorf("alice Watch(%s): response %+v is not canceled", w.what, wr)
		}
		wantErrText(t, "alice Watch("+w.what+") response", wr.Err(), errTextWatchDenied)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	wch := alice.Watch(ctx, "a", clientv3.WithRange("c"), clientv3.WithCreatedNotify())
	if wr := <-wch; !wr.Created || wr.Err() != nil {
		t.Fatalf("alice Watch([a, c)) first response %+v, %v; want created", wr, wr.Err())
	}
	if _, err := root.Put(reqCtx(t), "b", "v1"); err != nil {
		t.Fatalf("root Put(b): %v", err)
	}
	if wr := <-wch; wr.Err() != nil || len(wr.Events) != 1 || string(wr.Events[0].Kv.Key) != "b" {
		t.Errorf("alice Watch([a, c)) after root put b: %+v, %v; want the put", wr, wr.Err())
	}

	aliceFlag := "--user=alice:" + alicePassword
	cliOK(t, eps, "", "b\nv1\n", "get", "b", aliceFlag)
	cliOK(t, eps, alicePassword+"\n", "b\nv1\n", "get", "b", "--user", "alice")
	cliOK(t, eps, "", "b\nv1\n", "get", "b", "--user", "alice", "--password", alicePassword)
	cliFails(t, eps, "", errTextDenied, "put", "b", "x", aliceFlag)
	cliFails(t, eps, "", errTextDenied, "get", "d", aliceFlag)
	cliFails(t, eps, "", errTextDenied, "watch", "d", aliceFlag)
	if haveEtcdctl() {
		if r := etcdctlAt(t, eps, aliceFlag, "get", "b"); r.code != 0 || r.stdout != "b\nv1\n" {
			t.Errorf("etcdctl get b as alice: %s", r)
		}
		for _, args := range [][]string{{"put", "b", "x"}, {"get", "d"}} {
			if r := etcdctlAt(t, eps, append([]string{aliceFlag}, args...)...); r.code == 0 || !strings.Contains(r.stderr, errTextDenied) {
				t.Errorf("etcdctl %s as alice: %s\nwant a failure with %q", strings.Join(args, " "), r, errTextDenied)
			}
		}
	}
}

// checkMaintenance: the operations etcd reserves for root are refused to
// alice and allowed to root; Status and the alarm list are open to any
// user.
func checkMaintenance(t *testing.T, eps []string, root *clientv3.Client) {
	t.Helper()
	members := statusAll(t, root, eps)
	leader := slices.IndexFunc(members, func(m memberStatus) bool { return m.id == m.leader })
	if leader < 0 {
		t.Fatalf("no member reports itself leader: %+v", members)
	}
	ep := eps[0]
	alice := mustAuthClient(t, eps, "alice", alicePassword)
	aliceAtLeader := mustAuthClient(t, []string{members[leader].endpoint}, "alice", alicePassword)
	rootAtLeader := mustAuthClient(t, []string{members[leader].endpoint}, "root", rootPassword)

	if _, err := alice.Status(reqCtx(t), ep); err != nil {
		t.Errorf("alice Status: %v", err)
	}
	if _, err := alice.AlarmList(reqCtx(t)); err != nil {
		t.Errorf("alice AlarmList: %v", err)
	}

	snapshot := func(c *clientv3.Client) error {
		rc, err := c.Snapshot(reqCtx(t))
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}
	disarm := func(c *clientv3.Client) error {
		_, err := c.AlarmDisarm(reqCtx(t), &clientv3.AlarmMember{MemberID: members[0].id, Alarm: pb.AlarmType_NOSPACE})
		return err
	}
	ops := []struct {
		what string
		do   func(c *clientv3.Client) error
	}{
		{"Defragment", func(c *clientv3.Client) error { _, err := c.Defragment(reqCtx(t), ep); return err }},
		{"HashKV", func(c *clientv3.Client) error { _, err := c.HashKV(reqCtx(t), ep, 0); return err }},
		{"AlarmDisarm", disarm},
	}
	for _, op := range ops {
		wantDenied(t, "alice "+op.what, op.do(alice))
		if err := op.do(root); err != nil {
			t.Errorf("root %s: %v", op.what, err)
		}
	}
	// The snapshot stream ends with the status error itself.
	if err := snapshot(alice); err == nil || !strings.Contains(err.Error(), errTextDenied) {
		t.Errorf("alice Snapshot: %v, want %q", err, errTextDenied)
	}
	if err := snapshot(root); err != nil {
		t.Errorf("root Snapshot: %v", err)
	}
	cliFails(t, []string{ep}, "", errTextDenied, "snapshot", "save", filepath.Join(t.TempDir(), "alice.db"), "--user=alice:"+alicePassword)

	// Membership: alice may not add or remove; root adds a learner (no
	// quorum change) and removes it again.
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1)[0])
	_, err := alice.MemberAdd(reqCtx(t), []string{peer})
	wantDenied(t, "alice MemberAdd", err)
	// etcd refuses membership changes until the leader has been connected
	// to every voter for a while (5 s after a start): retry on that.
	var added *clientv3.MemberAddResponse
	pollUntil(10*time.Second, func() bool {
		added, err = root.MemberAddAsLearner(reqCtx(t), []string{peer})
		return !errors.Is(err, rpctypes.ErrUnhealthy)
	})
	if err != nil {
		t.Fatalf("root MemberAddAsLearner: %v", err)
	}
	_, err = alice.MemberRemove(reqCtx(t), added.Member.ID)
	wantDenied(t, "alice MemberRemove", err)
	if _, err := root.MemberRemove(reqCtx(t), added.Member.ID); err != nil {
		t.Errorf("root MemberRemove(learner): %v", err)
	}

	// Leadership transfer, sent to the leader.
	if len(members) < 2 {
		t.Log("one member: no leadership transfer to check as root")
		_, err := aliceAtLeader.MoveLeader(reqCtx(t), members[leader].id)
		wantDenied(t, "alice MoveLeader", err)
		return
	}
	target := members[(leader+1)%len(members)].id
	_, err = aliceAtLeader.MoveLeader(reqCtx(t), target)
	wantDenied(t, "alice MoveLeader", err)
	if _, err := rootAtLeader.MoveLeader(reqCtx(t), target); err != nil {
		t.Errorf("root MoveLeader to %x: %v", target, err)
	}
}

// jwtOption writes an RSA key pair into a temp dir and returns the
// --auth-token value for RS256 tokens living 2 s.
func jwtOption(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("jwt,pub-key=%s,priv-key=%s,sign-method=RS256,ttl=2s", pub, priv)
}

const jwtTTL = 2 * time.Second

// runJWTChecks: a JWT is a signed three-part token that works until its TTL
// passes and is refused after; logging in again works, and clientv3 does it
// by itself.
func runJWTChecks(t *testing.T, ac authCluster) {
	eps := ac.endpoints()
	plain := mustPlainClient(t, eps)
	ctx := reqCtx(t)
	if _, err := plain.UserAdd(ctx, "root", rootPassword); err != nil {
		t.Fatalf("UserAdd(root): %v", err)
	}
	if _, err := plain.RoleAdd(ctx, "root"); err != nil {
		t.Fatalf("RoleAdd(root): %v", err)
	}
	if _, err := plain.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatalf("UserGrantRole(root, root): %v", err)
	}
	if _, err := plain.AuthEnable(ctx); err != nil {
		t.Fatalf("AuthEnable: %v", err)
	}
	root := mustAuthClient(t, eps, "root", rootPassword)
	if _, err := root.Put(reqCtx(t), "k", "v"); err != nil {
		t.Fatalf("root Put: %v", err)
	}

	conn := grpcConn(t, eps[0])
	issued := time.Now()
	tok, err := rawAuthenticate(reqCtx(t), conn, "root", rootPassword)
	if err != nil {
		t.Fatalf("raw Authenticate(root): %v", err)
	}
	if parts := strings.Split(tok, "."); len(parts) != 3 {
		t.Errorf("token %q has %d dot-separated parts, want a JWT's 3", tok, len(parts))
	}
	if err := rawGet(reqCtx(t), conn, tok, "k"); err != nil {
		t.Fatalf("raw Range with a fresh JWT: %v", err)
	}
	// Past the TTL (etcd stamps exp in whole seconds, so a token lives
	// between TTL-1s and TTL).
	<-time.After(time.Until(issued.Add(jwtTTL + 200*time.Millisecond)))
	wantStatus(t, fmt.Sprintf("raw Range with a JWT issued %v ago", time.Since(issued).Round(time.Millisecond)),
		rawGet(reqCtx(t), conn, tok, "k"), rpctypes.ErrGRPCInvalidAuthToken)
	fresh, err := rawAuthenticate(reqCtx(t), conn, "root", rootPassword)
	if err != nil {
		t.Fatalf("raw Authenticate(root) after expiry: %v", err)
	}
	if err := rawGet(reqCtx(t), conn, fresh, "k"); err != nil {
		t.Errorf("raw Range with a fresh JWT after the old one expired: %v", err)
	}
	if resp, err := root.Get(reqCtx(t), "k"); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("clientv3 Get with an expired token (it logs in again) = %v, %v", resp, err)
	}
	secrets := []string{tok, fresh}
	if parts := strings.Split(tok, "."); len(parts) == 3 {
		secrets = append(secrets, parts[2])
	}
	noSecrets(t, "member logs", ac.logs(), secrets...)
}

// ---- the reference run against real etcd ----

// etcdRefMember is one real etcd process of an etcdRef cluster.
type etcdRefMember struct {
	args       []string
	clientAddr string
	cmd        *exec.Cmd
	done       chan struct{}
}

// checkLeaseRenewals: renewals of one lease by root and alice at once, ten
// streams each through every member, are all answered. A follower forwards
// them to the leader with each client's token (Concord groups those that
// arrive together by token), and renewing needs no key permission.
func checkLeaseRenewals(t *testing.T, eps []string, root *clientv3.Client) {
	t.Helper()
	g, err := root.Grant(reqCtx(t), 60)
	if err != nil {
		t.Fatalf("Grant as root: %v", err)
	}
	var wg sync.WaitGroup
	for _, ep := range eps {
		for _, user := range [][2]string{{"root", rootPassword}, {"alice", alicePassword}} {
			cli := mustAuthClient(t, []string{ep}, user[0], user[1])
			for range 10 {
				wg.Go(func() {
					if ka, err := cli.KeepAliveOnce(reqCtx(t), g.ID); err != nil || ka.TTL != 60 {
						t.Errorf("KeepAliveOnce as %s via %s = %v, %v; want TTL 60", user[0], ep, ka, err)
					}
				})
			}
		}
	}
	wg.Wait()
	if _, err := root.Revoke(reqCtx(t), g.ID); err != nil {
		t.Errorf("Revoke as root: %v", err)
	}
}

// etcdRef is a cluster of real etcd members for TestAuthEtcdReference.
type etcdRef struct {
	bin     string
	members []*etcdRefMember

	mu  sync.Mutex
	log bytes.Buffer // every member's output
}

func (e *etcdRef) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.log.Write(p)
}

func (e *etcdRef) endpoints() []string {
	eps := make([]string, len(e.members))
	for i, m := range e.members {
		eps[i] = m.clientAddr
	}
	return eps
}

func (e *etcdRef) logs() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.log.String()
}

// startAll starts every member, then waits until each serves.
func (e *etcdRef) startAll(t *testing.T) {
	t.Helper()
	for _, m := range e.members {
		cmd := exec.Command(e.bin, m.args...)
		cmd.Stdout, cmd.Stderr = e, e
		cmd.SysProcAttr = childProcAttr()
		if err := cmd.Start(); err != nil {
			t.Fatalf("start etcd: %v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		m.cmd, m.done = cmd, done
	}
	for _, m := range e.members {
		c := mustPlainClient(t, []string{m.clientAddr})
		if !pollUntil(readyTimeout, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := c.Get(ctx, "probe")
			// Once auth is on, an anonymous read is refused, which still
			// proves the member serves.
			return err == nil || errors.Is(err, rpctypes.ErrUserEmpty)
		}) {
			t.Fatalf("etcd at %s not serving within %v:\n%s", m.clientAddr, readyTimeout, tail(e.logs(), 30))
		}
	}
}

func (e *etcdRef) stopAll(t *testing.T) {
	t.Helper()
	for _, m := range e.members {
		if m.cmd == nil {
			continue
		}
		m.cmd.Process.Signal(terminateSignal)
		select {
		case <-m.done:
		case <-time.After(stopTimeout):
			m.cmd.Process.Kill()
			<-m.done
		}
		m.cmd = nil
	}
}

func (e *etcdRef) restartAll(t *testing.T) {
	t.Helper()
	e.stopAll(t)
	e.startAll(t)
}

// newEtcdRef starts n etcd members with the auth test's flags plus extra.
func newEtcdRef(t *testing.T, bin string, n int, extra ...string) *etcdRef {
	t.Helper()
	ports := freePorts(t, 2*n)
	dir := t.TempDir()
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("ref%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	e := &etcdRef{bin: bin}
	for i := range n {
		client := fmt.Sprintf("127.0.0.1:%d", ports[2*i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		e.members = append(e.members, &etcdRefMember{clientAddr: client, args: append([]string{
			"--name", fmt.Sprintf("ref%d", i), "--data-dir", filepath.Join(dir, fmt.Sprintf("ref%d", i)),
			"--listen-client-urls", "http://" + client, "--advertise-client-urls", "http://" + client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--heartbeat-interval", "50", "--election-timeout", "500",
		}, authArgs(extra...)...)})
	}
	t.Cleanup(func() {
		e.stopAll(t)
		if t.Failed() {
			t.Logf("==== etcd logs ====\n%s", tail(e.logs(), 100))
		}
	})
	e.startAll(t)
	return e
}

// TestAuthEtcdReference runs TestAuth's and TestAuthJWT's checks against
// real etcd (three members, and one for JWT), to prove the expectations
// are etcd's. It runs only when CONCORD_E2E_ETCD names an etcd binary.
func TestAuthEtcdReference(t *testing.T) {
	bin := os.Getenv("CONCORD_E2E_ETCD")
	if bin == "" {
		t.Skip("set CONCORD_E2E_ETCD to an etcd 3.6 binary to check the auth expectations against etcd")
	}
	t.Run("lifecycle", func(t *testing.T) { runAuthChecks(t, newEtcdRef(t, bin, 3)) })
	t.Run("jwt", func(t *testing.T) { runJWTChecks(t, newEtcdRef(t, bin, 1, "--auth-token", jwtOption(t))) })
}
