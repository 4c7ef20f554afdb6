package apply

import (
	"bytes"
	"errors"
	"testing"

	"github.com/concord-db/concord/internal/auth"
	"github.com/concord-db/concord/internal/command"
)

// authCmd wraps an auth op as a command proposed by user (root when empty
// and auth is on, the tests say so explicitly).
func authCmd(user string, op any) *command.Command {
	c := &command.Command{}
	if user != "" {
		c.Auth = &command.AuthInfo{Username: user, FromCert: true}
	}
	switch o := op.(type) {
	case *command.AuthEnableRequest:
		c.Op = &command.Command_AuthEnable{AuthEnable: o}
	case *command.AuthDisableRequest:
		c.Op = &command.Command_AuthDisable{AuthDisable: o}
	case *command.AuthUserAddRequest:
		c.Op = &command.Command_AuthUserAdd{AuthUserAdd: o}
	case *command.AuthUserDeleteRequest:
		c.Op = &command.Command_AuthUserDelete{AuthUserDelete: o}
	case *command.AuthUserGrantRoleRequest:
		c.Op = &command.Command_AuthUserGrantRole{AuthUserGrantRole: o}
	case *command.AuthRoleAddRequest:
		c.Op = &command.Command_AuthRoleAdd{AuthRoleAdd: o}
	case *command.AuthRoleGrantPermissionRequest:
		c.Op = &command.Command_AuthRoleGrantPermission{AuthRoleGrantPermission: o}
	case *command.AuthRoleRevokePermissionRequest:
		c.Op = &command.Command_AuthRoleRevokePermission{AuthRoleRevokePermission: o}
	case *command.AuthenticateRequest:
		c.Op = &command.Command_Authenticate{Authenticate: o}
	case *command.PutRequest:
		c.Op = &command.Command_Put{Put: o}
	case *command.DeleteRangeRequest:
		c.Op = &command.Command_DeleteRange{DeleteRange: o}
	case *command.TxnRequest:
		c.Op = &command.Command_Txn{Txn: o}
	case *command.CompactionRequest:
		c.Op = &command.Command_Compaction{Compaction: o}
	case *command.LeaseGrantRequest:
		c.Op = &command.Command_LeaseGrant{LeaseGrant: o}
	case *command.LeaseRevokeRequest:
		c.Op = &command.Command_LeaseRevoke{LeaseRevoke: o}
	default:
		panic("authCmd: unknown op")
	}
	return c
}

// setUpAuth enables auth with root and user alice holding role r with the
// given permission.
func setUpAuth(t *testing.T, h *harness, perm *command.Permission) {
	t.Helper()
	steps := []any{
		&command.AuthUserAddRequest{Name: "root", NoPassword: true},
		&command.AuthUserGrantRoleRequest{User: "root", Role: "root"},
		&command.AuthUserAddRequest{Name: "alice", NoPassword: true},
		&command.AuthRoleAddRequest{Name: "r"},
		&command.AuthRoleGrantPermissionRequest{Name: "r", Perm: perm},
		&command.AuthUserGrantRoleRequest{User: "alice", Role: "r"},
		&command.AuthEnableRequest{},
	}
	for _, op := range steps {
		if res := h.apply(authCmd("", op)); res.Err != nil {
			t.Fatalf("apply %T: %v", op, res.Err)
		}
	}
	if !h.a.Auth().Enabled() {
		t.Fatal("auth not enabled after AuthEnable")
	}
}

func TestAuthEnableNeedsRoot(t *testing.T) {
	h := newHarness(t)
	if res := h.apply(authCmd("", &command.AuthEnableRequest{})); !errors.Is(res.Err, auth.ErrRootUserNotExist) {
		t.Fatalf("AuthEnable without root: err = %v, want %v", res.Err, auth.ErrRootUserNotExist)
	}
	h.apply(authCmd("", &command.AuthUserAddRequest{Name: "root", NoPassword: true}))
	if res := h.apply(authCmd("", &command.AuthEnableRequest{})); !errors.Is(res.Err, auth.ErrRootRoleNotExist) {
		t.Fatalf("AuthEnable, root without role root: err = %v, want %v", res.Err, auth.ErrRootRoleNotExist)
	}
	if h.a.Auth().Enabled() {
		t.Fatal("auth enabled after refused AuthEnable")
	}
}

// TestAuthChecksWritesAtApply: writes are judged by the auth state at
// their place in the log, with etcd's rules per op.
func TestAuthChecksWritesAtApply(t *testing.T) {
	h := newHarness(t)
	setUpAuth(t, h, &command.Permission{PermType: command.Permission_READWRITE, Key: []byte("a"), RangeEnd: []byte("c")})
	revBefore := h.a.Store().Rev()
	tests := []struct {
		name string
		user string
		op   any
		want error
	}{
		{"put inside", "alice", &command.PutRequest{Key: []byte("b"), Value: []byte("1")}, nil},
		{"put outside", "alice", &command.PutRequest{Key: []byte("d"), Value: []byte("1")}, auth.ErrPermissionDenied},
		{"put no user", "", &command.PutRequest{Key: []byte("b"), Value: []byte("1")}, auth.ErrUserEmpty},
		{"root puts anywhere", "root", &command.PutRequest{Key: []byte("zz"), Value: []byte("1")}, nil},
		{"delete range inside", "alice", &command.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b")}, nil},
		{"delete range crossing", "alice", &command.DeleteRangeRequest{Key: []byte("b"), RangeEnd: []byte("d")}, auth.ErrPermissionDenied},
		{"txn compares outside", "alice", &command.TxnRequest{
			Compare: []*command.Compare{{Key: []byte("x")}},
			Success: []*command.RequestOp{{Request: &command.RequestOp_RequestPut{RequestPut: &command.PutRequest{Key: []byte("b")}}}},
		}, auth.ErrPermissionDenied},
		{"txn failure branch outside", "alice", &command.TxnRequest{
			Success: []*command.RequestOp{{Request: &command.RequestOp_RequestPut{RequestPut: &command.PutRequest{Key: []byte("b")}}}},
			Failure: []*command.RequestOp{{Request: &command.RequestOp_RequestPut{RequestPut: &command.PutRequest{Key: []byte("q")}}}},
		}, auth.ErrPermissionDenied},
		{"nested txn outside", "alice", &command.TxnRequest{
			Success: []*command.RequestOp{{Request: &command.RequestOp_RequestTxn{RequestTxn: &command.TxnRequest{
				Success: []*command.RequestOp{{Request: &command.RequestOp_RequestRange{RequestRange: &command.RangeRequest{Key: []byte("q")}}}},
			}}}},
		}, auth.ErrPermissionDenied},
		{"compaction by alice", "alice", &command.CompactionRequest{Revision: 1}, auth.ErrPermissionDenied},
		{"admin op by alice", "alice", &command.AuthRoleAddRequest{Name: "r2"}, auth.ErrPermissionDenied},
		{"admin op by root", "root", &command.AuthRoleAddRequest{Name: "r2"}, nil},
	}
	for _, tt := range tests {
		res := h.apply(authCmd(tt.user, tt.op))
		if !errors.Is(res.Err, tt.want) || (tt.want == nil && res.Err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, res.Err, tt.want)
		}
		if tt.want != nil && len(res.Events) != 0 {
			t.Errorf("%s: refused but wrote %d events", tt.name, len(res.Events))
		}
	}
	// Three writes passed (put b, put zz, delete [a,b) wrote nothing).
	if got := h.a.Store().Rev(); got != revBefore+2 {
		t.Errorf("store revision = %d, want %d", got, revBefore+2)
	}
}

// TestAuthRevokeTakesEffectInLogOrder: a write proposed before a revoke but
// applied after it is refused; an old token revision is refused.
func TestAuthRevokeTakesEffectInLogOrder(t *testing.T) {
	h := newHarness(t)
	setUpAuth(t, h, &command.Permission{PermType: command.Permission_WRITE, Key: []byte("k")})
	rev := h.a.Auth().Revision()
	put := func(r uint64) error {
		c := authCmd("", &command.PutRequest{Key: []byte("k"), Value: []byte("v")})
		c.Auth = &command.AuthInfo{Username: "alice", Revision: r}
		return h.apply(c).Err
	}
	if err := put(rev); err != nil {
		t.Fatalf("put with current token: %v", err)
	}
	h.apply(authCmd("root", &command.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("k")}))
	if err := put(rev); !errors.Is(err, auth.ErrAuthOldRevision) {
		t.Fatalf("put with token from before the revoke: err = %v, want %v", err, auth.ErrAuthOldRevision)
	}
	if err := put(h.a.Auth().Revision()); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Fatalf("put with fresh token after the revoke: err = %v, want %v", err, auth.ErrPermissionDenied)
	}
}

// TestAuthLeaseRevokeNeedsWriteOnKeys follows etcd's checkLeasePuts.
func TestAuthLeaseRevokeNeedsWriteOnKeys(t *testing.T) {
	h := newHarness(t)
	setUpAuth(t, h, &command.Permission{PermType: command.Permission_READWRITE, Key: []byte("a"), RangeEnd: []byte("c")})
	h.apply(authCmd("root", &command.LeaseGrantRequest{Id: 7, Ttl: 60}))
	if res := h.apply(authCmd("root", &command.PutRequest{Key: []byte("z"), Value: []byte("v"), Lease: 7})); res.Err != nil {
		t.Fatalf("root put with lease: %v", res.Err)
	}
	if res := h.apply(authCmd("alice", &command.PutRequest{Key: []byte("b"), Value: []byte("v"), Lease: 7})); !errors.Is(res.Err, auth.ErrPermissionDenied) {
		t.Errorf("alice attaching to a lease holding z: err = %v, want permission denied", res.Err)
	}
	if res := h.apply(authCmd("alice", &command.LeaseRevokeRequest{Id: 7})); !errors.Is(res.Err, auth.ErrPermissionDenied) {
		t.Errorf("alice revoking a lease holding z: err = %v, want permission denied", res.Err)
	}
	if res := h.apply(authCmd("root", &command.LeaseRevokeRequest{Id: 7})); res.Err != nil {
		t.Errorf("root revoke: %v", res.Err)
	}
}

func TestAuthenticateApplies(t *testing.T) {
	h := newHarness(t)
	if res := h.apply(authCmd("", &command.AuthenticateRequest{Name: "root"})); !errors.Is(res.Err, auth.ErrAuthNotEnabled) {
		t.Fatalf("authenticate with auth off: err = %v", res.Err)
	}
	setUpAuth(t, h, &command.Permission{Key: []byte("a")})
	h.apply(authCmd("root", &command.AuthUserAddRequest{Name: "bob", HashedPassword: []byte("$2a$04$notreal")}))
	res := h.apply(authCmd("", &command.AuthenticateRequest{Name: "bob", SimpleToken: "tok.1"}))
	r, ok := res.Resp.(*command.AuthenticateResponse)
	if res.Err != nil || !ok || r.GetSimpleToken() != "tok.1" || r.GetRevision() != h.a.Auth().Revision() {
		t.Fatalf("authenticate bob = %v, %v; want token tok.1 at revision %d", res.Resp, res.Err, h.a.Auth().Revision())
	}
	for _, name := range []string{"nobody", "alice"} { // alice has no password
		if res := h.apply(authCmd("", &command.AuthenticateRequest{Name: name})); !errors.Is(res.Err, auth.ErrAuthFailed) {
			t.Errorf("authenticate %s: err = %v, want %v", name, res.Err, auth.ErrAuthFailed)
		}
	}
	res = h.apply(authCmd("root", &command.AuthUserDeleteRequest{Name: "bob"}))
	if res.Err != nil || res.TokensRevoked != "bob" {
		t.Errorf("delete bob: err %v, TokensRevoked %q, want bob", res.Err, res.TokensRevoked)
	}
}

// TestAuthSurvivesSnapshot: the auth store is part of the applier snapshot.
func TestAuthSurvivesSnapshot(t *testing.T) {
	h := newHarness(t)
	setUpAuth(t, h, &command.Permission{PermType: command.Permission_READ, Key: []byte("a"), RangeEnd: []byte("c")})
	blob, err := h.a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := New(nil)
	if err := b.Restore(blob); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !b.Auth().Enabled() || b.Auth().Revision() != h.a.Auth().Revision() {
		t.Fatalf("restored auth: enabled %v revision %d, want true %d", b.Auth().Enabled(), b.Auth().Revision(), h.a.Auth().Revision())
	}
	alice := auth.Subject{User: "alice", Revision: b.Auth().Revision()}
	if err := b.Auth().Check(alice, auth.ActionRead, []byte("b"), nil); err != nil {
		t.Errorf("restored: alice read b: %v", err)
	}
	if err := b.Auth().Check(alice, auth.ActionWrite, []byte("b"), nil); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("restored: alice write b: %v, want permission denied", err)
	}
	again, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(blob, again) {
		t.Error("snapshot of the restored state differs from the original")
	}
}
