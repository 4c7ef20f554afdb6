package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/auth"
	"github.com/concord-db/concord/internal/command"
)

// loginAs authenticates and returns a context carrying the token's subject,
// as the front-end builds it.
func loginAs(t *testing.T, s *Server, name, password string) (context.Context, string) {
	t.Helper()
	tok, _, err := s.Authenticate(context.Background(), name, password)
	if err != nil {
		t.Fatalf("Authenticate(%s): %v", name, err)
	}
	sub, err := s.SubjectFromToken(context.Background(), tok)
	if err != nil || sub.User != name {
		t.Fatalf("SubjectFromToken(token of %s) = %+v, %v", name, sub, err)
	}
	return WithSubject(context.Background(), sub), tok
}

// TestAuthOnOneMember walks the auth path through a real member: password
// hashing before proposing, simple tokens registered by apply, reads checked
// after linearizing, writes checked at apply, lease expiry still working
// with auth on (the member revokes with root's rights), tokens dropped when
// their user goes and when their TTL passes unused.
func TestAuthOnOneMember(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	cfg := testConfig(t, vfs.NewMem())
	cfg.Clock = clock
	cfg.BcryptCost = 4
	s := startTestServer(t, cfg)
	t.Cleanup(s.Stop)
	bg := context.Background()

	if _, _, err := s.Authenticate(bg, "root", "x"); !errors.Is(err, auth.ErrAuthNotEnabled) {
		t.Fatalf("Authenticate with auth off = %v, want %v", err, auth.ErrAuthNotEnabled)
	}
	if _, err := s.AuthEnable(bg); !errors.Is(err, auth.ErrRootUserNotExist) {
		t.Fatalf("AuthEnable without root = %v, want %v", err, auth.ErrRootUserNotExist)
	}
	steps := []func() (Header, error){
		func() (Header, error) { return s.UserAdd(bg, "root", "rootpw", false) },
		func() (Header, error) { return s.UserGrantRole(bg, "root", "root") },
		func() (Header, error) { return s.RoleAdd(bg, "reader") },
		func() (Header, error) {
			return s.RoleGrantPermission(bg, "reader", &command.Permission{PermType: command.Permission_READ, Key: []byte("a"), RangeEnd: []byte("c")})
		},
		func() (Header, error) { return s.UserAdd(bg, "alice", "alicepw", false) },
		func() (Header, error) { return s.UserGrantRole(bg, "alice", "reader") },
		func() (Header, error) { return s.AuthEnable(bg) },
	}
	for i, step := range steps {
		if _, err := step(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	if u, _ := s.applier.Auth().User("alice"); string(u.Hash) == "alicepw" || len(u.Hash) == 0 {
		t.Fatalf("stored password is not a hash: %q", u.Hash)
	}
	for _, c := range []struct{ name, pw string }{{"alice", "wrong"}, {"nobody", "alicepw"}} {
		if _, _, err := s.Authenticate(bg, c.name, c.pw); !errors.Is(err, auth.ErrAuthFailed) {
			t.Errorf("Authenticate(%s, %s) = %v, want %v", c.name, c.pw, err, auth.ErrAuthFailed)
		}
	}
	root, _ := loginAs(t, s, "root", "rootpw")
	alice, aliceTok := loginAs(t, s, "alice", "alicepw")

	if _, _, err := s.Put(root, &command.PutRequest{Key: []byte("b"), Value: []byte("1")}); err != nil {
		t.Fatalf("root put b: %v", err)
	}
	if resp, _, err := s.Range(alice, &command.RangeRequest{Key: []byte("b")}); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("alice get b = %v, %v", resp, err)
	}
	if _, _, err := s.Range(alice, &command.RangeRequest{Key: []byte("d")}); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("alice get d = %v, want permission denied", err)
	}
	if _, _, err := s.Put(alice, &command.PutRequest{Key: []byte("b"), Value: []byte("2")}); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("alice put b = %v, want permission denied", err)
	}
	if _, _, err := s.Range(bg, &command.RangeRequest{Key: []byte("b")}); !errors.Is(err, auth.ErrUserEmpty) {
		t.Errorf("anonymous get b = %v, want %v", err, auth.ErrUserEmpty)
	}
	if _, err := s.UserDelete(alice, "root"); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("alice deleting root = %v, want permission denied", err)
	}
	if err := s.RequireAdmin(alice); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("RequireAdmin(alice) = %v, want permission denied", err)
	}
	if err := s.RequireAuthenticated(alice); err != nil {
		t.Errorf("RequireAuthenticated(alice) = %v", err)
	}
	if u, _, err := s.UserGet(alice, "alice"); err != nil || len(u.Roles) != 1 {
		t.Errorf("alice getting herself = %+v, %v", u, err)
	}

	// Lease expiry is the member's own revoke: it must pass with auth on.
	g, _, err := s.LeaseGrant(root, 0, 2)
	if err != nil {
		t.Fatalf("root LeaseGrant: %v", err)
	}
	if _, _, err := s.Put(root, &command.PutRequest{Key: []byte("leased"), Value: []byte("v"), Lease: g.Id}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2100 * time.Millisecond)
	eventually(t, "expired lease revoked with auth on", func() bool {
		resp, _, err := s.Range(root, &command.RangeRequest{Key: []byte("leased")})
		return err == nil && len(resp.Kvs) == 0
	})

	// A request carrying a subject resolved before a permission change is
	// old; the same simple token presented again is judged by the current
	// state.
	if _, err := s.RoleRevokePermission(root, "reader", []byte("a"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Range(alice, &command.RangeRequest{Key: []byte("b")}); !errors.Is(err, auth.ErrAuthOldRevision) {
		t.Errorf("alice get b with a subject from before the revoke = %v, want %v", err, auth.ErrAuthOldRevision)
	}
	sub, err := s.SubjectFromToken(context.Background(), aliceTok)
	if err != nil {
		t.Fatal(err)
	}
	alice = WithSubject(context.Background(), sub)
	if _, _, err := s.Range(alice, &command.RangeRequest{Key: []byte("b")}); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("alice get b after the revoke = %v, want permission denied", err)
	}

	// Deleting a user kills its tokens on the spot.
	root, _ = loginAs(t, s, "root", "rootpw")
	if _, err := s.UserDelete(root, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubjectFromToken(context.Background(), aliceTok); !errors.Is(err, auth.ErrInvalidAuthToken) {
		t.Errorf("token of a deleted user: %v, want %v", err, auth.ErrInvalidAuthToken)
	}

	// Disabling auth kills every simple token.
	if _, err := s.AuthDisable(root); err != nil {
		t.Fatal(err)
	}
	if n := s.au.simple.Len(); n != 0 {
		t.Errorf("simple tokens after auth disable: %d, want 0", n)
	}
	if _, err := s.AuthEnable(bg); err != nil {
		t.Fatal(err)
	}

	// Simple tokens die after their TTL without use.
	_, rootTok := loginAs(t, s, "root", "rootpw")
	clock.Advance(DefaultAuthTokenTTL + time.Second)
	if _, err := s.SubjectFromToken(context.Background(), rootTok); !errors.Is(err, auth.ErrInvalidAuthToken) {
		t.Errorf("token unused for longer than its TTL: %v, want %v", err, auth.ErrInvalidAuthToken)
	}
	if _, err := s.SubjectFromToken(context.Background(), "garbage"); !errors.Is(err, auth.ErrInvalidAuthToken) {
		t.Errorf("garbage token: %v, want %v", err, auth.ErrInvalidAuthToken)
	}
}

// TestAuthSurvivesRestart: users, roles and the enabled flag are replicated
// state, rebuilt from the log (and snapshots) on restart.
func TestAuthSurvivesRestart(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.BcryptCost = 4
	s := startTestServer(t, cfg)
	bg := context.Background()
	for _, step := range []func() (Header, error){
		func() (Header, error) { return s.UserAdd(bg, "root", "rootpw", false) },
		func() (Header, error) { return s.UserGrantRole(bg, "root", "root") },
		func() (Header, error) { return s.AuthEnable(bg) },
	} {
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// Past a snapshot (SnapshotCount 40 in testConfig) so restore runs too.
	root, _ := loginAs(t, s, "root", "rootpw")
	for i := range 50 {
		if _, _, err := s.Put(root, &command.PutRequest{Key: []byte{'k', byte(i)}, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	rev := s.applier.Auth().Revision()
	s.Stop()

	s = startTestServer(t, cfg)
	t.Cleanup(s.Stop)
	if !s.AuthEnabled() || s.applier.Auth().Revision() != rev {
		t.Fatalf("after restart: enabled %v, revision %d; want true, %d", s.AuthEnabled(), s.applier.Auth().Revision(), rev)
	}
	root, _ = loginAs(t, s, "root", "rootpw")
	if _, _, err := s.Range(root, &command.RangeRequest{Key: []byte("k")}); err != nil {
		t.Errorf("root read after restart: %v", err)
	}
}
