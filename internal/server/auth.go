package server

// Authentication and authorization: the domain side of etcd's Auth service.
// The replicated state and every decision live in package auth; this file
// turns requests into auth commands, hashes passwords before proposing
// (apply must stay deterministic), keeps this member's simple tokens, and
// checks reads, which never reach apply.
//
// Who is asking travels in the request's context (WithSubject), put there by
// the front-end from a token or a verified client certificate. Writes carry
// it into the command (command.AuthInfo), and apply checks them against the
// auth state at their place in the log; reads are checked here after the
// read is linearized, against the state they are served from.

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/auth"
	"github.com/concord-db/concord/internal/command"
)

// DefaultAuthTokenTTL is etcd's --auth-token-ttl default.
const DefaultAuthTokenTTL = 300 * time.Second

// authState is this member's token machinery; the users and roles are
// replicated state in the applier.
type authState struct {
	// simple holds simple tokens; registered on every member as the
	// authenticate commands apply, so any member accepts any token.
	simple *auth.SimpleTokens
	// jwt signs and verifies tokens when --auth-token is jwt; nil for simple.
	jwt  *auth.JWT
	ttl  time.Duration // of simple tokens
	cost int
	// replayedUpTo is the last log index found on disk at start: logins up
	// to it are replays of logins from before the restart, whose tokens
	// died with the process (as etcd's do) and are not registered again.
	replayedUpTo uint64
	tokens       atomic.Uint64 // index part of simple tokens made here
}

func (s *Server) clockNow() time.Time { return s.cfg.Clock.Now() }

// initAuth builds the token provider from the config.
func (s *Server) initAuth() error {
	spec := s.cfg.AuthToken
	if spec == "" {
		spec = "simple"
	}
	tc, err := auth.ParseTokenConfig(spec)
	if err != nil {
		return fmt.Errorf("server: --auth-token: %w", err)
	}
	ttl := s.cfg.AuthTokenTTL
	if ttl == 0 {
		ttl = DefaultAuthTokenTTL
	}
	s.au.ttl = ttl
	s.au.simple = auth.NewSimpleTokens(ttl, s.clockNow)
	if tc.Kind == "jwt" {
		if s.au.jwt, err = auth.NewJWT(tc); err != nil {
			return fmt.Errorf("server: --auth-token: %w", err)
		}
	}
	s.au.cost = s.cfg.BcryptCost
	return nil
}

// systemSubject is the requester of what a member proposes on its own
// behalf (lease expiry and checkpoints): root, as etcd's AuthStore.WithRoot.
// While auth is on, user root exists with role root (the store refuses to
// remove either), and FromCert keeps its revision from going stale.
var systemSubject = auth.Subject{User: "root", FromCert: true}

type subjectKey struct{}

// WithSubject returns ctx carrying who makes the request. Front-ends call it
// once per request when auth is enabled.
func WithSubject(ctx context.Context, sub auth.Subject) context.Context {
	return context.WithValue(ctx, subjectKey{}, sub)
}

// subjectOf returns the requester in ctx (the zero Subject if none).
func subjectOf(ctx context.Context) auth.Subject {
	sub, _ := ctx.Value(subjectKey{}).(auth.Subject)
	return sub
}

// AuthEnabled reports whether auth is on, as of this member's applied state.
// Safe from any goroutine; cheap.
func (s *Server) AuthEnabled() bool { return s.applier.Auth().Enabled() }

// SubjectFromToken resolves a token to who holds it: auth.ErrInvalidAuthToken
// for an unknown, expired or forged token. Simple tokens are refreshed by
// use. As in etcd, a simple token stands for its user at the auth revision
// of the moment it is presented (a write is still refused at apply if auth
// changes before it commits), while a JWT carries the revision it was
// signed at, so any auth change makes it old and clients log in again.
//
// A simple token is good on every member as soon as Authenticate returned
// it: a member that does not know the token yet may simply not have
// applied the login, so it catches up with a ReadIndex round and looks
// again before refusing (etcd waits for the token's raft index instead).
func (s *Server) SubjectFromToken(ctx context.Context, token string) (auth.Subject, error) {
	if s.au.jwt != nil {
		return s.au.jwt.Verify(token, s.clockNow())
	}
	if auth.ParseSimpleToken(token) != nil {
		return auth.Subject{}, auth.ErrInvalidAuthToken
	}
	sub, ok := s.au.simple.Lookup(token)
	if !ok {
		if err := s.linearize(ctx); err != nil {
			return auth.Subject{}, err
		}
		if sub, ok = s.au.simple.Lookup(token); !ok {
			return auth.Subject{}, auth.ErrInvalidAuthToken
		}
	}
	sub.Revision = s.applier.Auth().Revision()
	return sub, nil
}

// authInfo is the requester as recorded in a command.
func authInfo(ctx context.Context) *command.AuthInfo {
	sub := subjectOf(ctx)
	if sub == (auth.Subject{}) {
		return nil
	}
	return &command.AuthInfo{Username: sub.User, Revision: sub.Revision, FromCert: sub.FromCert}
}

// RequireAdmin fails unless auth is off or the requester has the root role
// (maintenance and membership changes).
func (s *Server) RequireAdmin(ctx context.Context) error {
	return s.applier.Auth().CheckAdmin(subjectOf(ctx))
}

// RequireAuthenticated fails unless auth is off or the requester is a
// current, known user (etcd's Status).
func (s *Server) RequireAuthenticated(ctx context.Context) error {
	return s.applier.Auth().CheckSubject(subjectOf(ctx))
}

// RequireRead fails unless the requester may read [key, rangeEnd) (watches,
// lease keys).
func (s *Server) RequireRead(ctx context.Context, key, rangeEnd []byte) error {
	return s.applier.Auth().Check(subjectOf(ctx), auth.ActionRead, key, rangeEnd)
}

// tokenRegistered feeds this member's simple-token table from the entry at
// index (stateMachine.Apply calls it for every entry).
func (s *Server) tokenRegistered(index uint64, res apply.Result) {
	if res.TokensRevoked != "" {
		s.au.simple.InvalidateUser(res.TokensRevoked)
	}
	if _, ok := res.Resp.(*command.AuthResponse); ok && !s.applier.Auth().Enabled() {
		s.au.simple.Clear() // auth disabled: every token dies (etcd)
		return
	}
	r, ok := res.Resp.(*command.AuthenticateResponse)
	if !ok || r.GetSimpleToken() == "" {
		return
	}
	if index <= s.au.replayedUpTo {
		return
	}
	s.au.simple.Register(r.GetSimpleToken(), auth.Subject{User: r.GetName(), Revision: r.GetRevision()})
}

// proposeAuth replicates an auth change and returns the header.
func (s *Server) proposeAuth(ctx context.Context, cmd *command.Command) (Header, error) {
	res, err := s.propose(ctx, cmd)
	if err := firstErr(err, res.Err); err != nil {
		return Header{}, err
	}
	return s.header(res.Rev), nil
}

// AuthEnable turns auth on; refused unless user root exists with role root.
func (s *Server) AuthEnable(ctx context.Context) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthEnable{AuthEnable: &command.AuthEnableRequest{}}})
}

// AuthDisable turns auth off.
func (s *Server) AuthDisable(ctx context.Context) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthDisable{AuthDisable: &command.AuthDisableRequest{}}})
}

// AuthStatus reports whether auth is on and the auth revision, linearized.
func (s *Server) AuthStatus(ctx context.Context) (enabled bool, revision uint64, h Header, err error) {
	if err := s.linearize(ctx); err != nil {
		return false, 0, Header{}, err
	}
	st := s.applier.Auth()
	return st.Enabled(), st.Revision(), s.header(s.applier.Store().Rev()), nil
}

// Authenticate checks name's password and returns a token for it. The
// password is checked on this member (bcrypt is slow; it must not run in
// apply); the login is then replicated so the token's auth revision is the
// one at its place in the log and, for simple tokens, every member learns
// the token.
func (s *Server) Authenticate(ctx context.Context, name, password string) (string, Header, error) {
	st := s.applier.Auth()
	if !st.Enabled() {
		return "", Header{}, auth.ErrAuthNotEnabled
	}
	if err := st.CheckPassword(name, password); err != nil {
		return "", Header{}, err
	}
	return s.login(ctx, &command.AuthenticateRequest{Name: name})
}

// login replicates req and returns the token it grants: the simple token
// generated here (every member registers it as the login applies) or a JWT
// signed at the login's auth revision.
func (s *Server) login(ctx context.Context, req *command.AuthenticateRequest) (string, Header, error) {
	if s.au.jwt == nil {
		tok, err := auth.NewSimpleToken(rand.Reader, s.au.tokens.Add(1))
		if err != nil {
			return "", Header{}, fmt.Errorf("server: make token: %w", err)
		}
		req.SimpleToken = tok
	}
	res, err := s.propose(ctx, &command.Command{Op: &command.Command_Authenticate{Authenticate: req}})
	if err := firstErr(err, res.Err); err != nil {
		return "", Header{}, err
	}
	resp := res.Resp.(*command.AuthenticateResponse)
	if s.au.jwt == nil {
		return resp.GetSimpleToken(), s.header(res.Rev), nil
	}
	tok, err := s.au.jwt.Sign(auth.Subject{User: req.GetName(), Revision: resp.GetRevision()}, s.clockNow())
	if err != nil {
		return "", Header{}, err
	}
	return tok, s.header(res.Rev), nil
}

// SystemToken returns a root token this member uses to ask other members
// for root-only answers (the corruption check), minted without a password
// through a replicated system login, or signed locally with JWT. The caller
// gets a fresh one after ErrInvalidAuthToken or ErrAuthOldRevision. It never
// leaves the process except on calls to other members.
func (s *Server) SystemToken(ctx context.Context) (string, error) {
	st := s.applier.Auth()
	if !st.Enabled() {
		return "", auth.ErrAuthNotEnabled
	}
	tok, _, err := s.login(ctx, &command.AuthenticateRequest{Name: systemSubject.User, System: true})
	return tok, err
}

// hashPassword hashes for a user add or password change, after checking the
// requester may make it: bcrypt is deliberately slow and must not be free
// to anyone.
func (s *Server) hashPassword(ctx context.Context, password string) ([]byte, error) {
	if err := s.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	return auth.HashPassword(password, s.au.cost)
}

// UserAdd adds a user; noPassword users can only authenticate by a client
// certificate.
func (s *Server) UserAdd(ctx context.Context, name, password string, noPassword bool) (Header, error) {
	if name == "" {
		return Header{}, auth.ErrUserEmpty
	}
	req := &command.AuthUserAddRequest{Name: name, NoPassword: noPassword}
	if !noPassword {
		h, err := s.hashPassword(ctx, password)
		if err != nil {
			return Header{}, err
		}
		req.HashedPassword = h
	}
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthUserAdd{AuthUserAdd: req}})
}

// UserDelete deletes a user; its tokens die with it.
func (s *Server) UserDelete(ctx context.Context, name string) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthUserDelete{AuthUserDelete: &command.AuthUserDeleteRequest{Name: name}}})
}

// UserChangePassword sets a user's password; its tokens die.
func (s *Server) UserChangePassword(ctx context.Context, name, password string) (Header, error) {
	h, err := s.hashPassword(ctx, password)
	if err != nil {
		return Header{}, err
	}
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthUserChangePassword{
		AuthUserChangePassword: &command.AuthUserChangePasswordRequest{Name: name, HashedPassword: h}}})
}

// UserGrantRole grants role to user.
func (s *Server) UserGrantRole(ctx context.Context, user, role string) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthUserGrantRole{
		AuthUserGrantRole: &command.AuthUserGrantRoleRequest{User: user, Role: role}}})
}

// UserRevokeRole revokes role from user.
func (s *Server) UserRevokeRole(ctx context.Context, user, role string) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthUserRevokeRole{
		AuthUserRevokeRole: &command.AuthUserRevokeRoleRequest{Name: user, Role: role}}})
}

// RoleAdd adds a role without permissions.
func (s *Server) RoleAdd(ctx context.Context, name string) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthRoleAdd{AuthRoleAdd: &command.AuthRoleAddRequest{Name: name}}})
}

// RoleDelete deletes a role and revokes it from every user.
func (s *Server) RoleDelete(ctx context.Context, name string) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthRoleDelete{AuthRoleDelete: &command.AuthRoleDeleteRequest{Role: name}}})
}

// RoleGrantPermission grants (or changes the type of) a permission.
func (s *Server) RoleGrantPermission(ctx context.Context, role string, p *command.Permission) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthRoleGrantPermission{
		AuthRoleGrantPermission: &command.AuthRoleGrantPermissionRequest{Name: role, Perm: p}}})
}

// RoleRevokePermission revokes the permission on exactly [key, rangeEnd).
func (s *Server) RoleRevokePermission(ctx context.Context, role string, key, rangeEnd []byte) (Header, error) {
	return s.proposeAuth(ctx, &command.Command{Op: &command.Command_AuthRoleRevokePermission{
		AuthRoleRevokePermission: &command.AuthRoleRevokePermissionRequest{Role: role, Key: key, RangeEnd: rangeEnd}}})
}

// UserGet returns a user. Root may read anyone; a user may read itself.
func (s *Server) UserGet(ctx context.Context, name string) (auth.User, Header, error) {
	if err := s.linearize(ctx); err != nil {
		return auth.User{}, Header{}, err
	}
	st := s.applier.Auth()
	if err := st.CheckAdmin(subjectOf(ctx)); err != nil && subjectOf(ctx).User != name {
		return auth.User{}, Header{}, err
	}
	u, err := st.User(name)
	if err != nil {
		return auth.User{}, Header{}, err
	}
	return u, s.header(s.applier.Store().Rev()), nil
}

// UserList lists user names (root only).
func (s *Server) UserList(ctx context.Context) ([]string, Header, error) {
	if err := s.linearize(ctx); err != nil {
		return nil, Header{}, err
	}
	if err := s.RequireAdmin(ctx); err != nil {
		return nil, Header{}, err
	}
	return s.applier.Auth().UserList(), s.header(s.applier.Store().Rev()), nil
}

// RoleGet returns a role. Root may read any; a user may read its own roles.
func (s *Server) RoleGet(ctx context.Context, name string) (auth.Role, Header, error) {
	if err := s.linearize(ctx); err != nil {
		return auth.Role{}, Header{}, err
	}
	st := s.applier.Auth()
	if err := st.CheckAdmin(subjectOf(ctx)); err != nil && !st.HasRole(subjectOf(ctx).User, name) {
		return auth.Role{}, Header{}, err
	}
	r, err := st.Role(name)
	if err != nil {
		return auth.Role{}, Header{}, err
	}
	return r, s.header(s.applier.Store().Rev()), nil
}

// RoleList lists role names (root only).
func (s *Server) RoleList(ctx context.Context) ([]string, Header, error) {
	if err := s.linearize(ctx); err != nil {
		return nil, Header{}, err
	}
	if err := s.RequireAdmin(ctx); err != nil {
		return nil, Header{}, err
	}
	return s.applier.Auth().RoleList(), s.header(s.applier.Store().Rev()), nil
}
