package auth

import (
	"bytes"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// PermType numbers equal etcd's authpb.Permission_Type.
type PermType int32

const (
	PermRead      PermType = 0
	PermWrite     PermType = 1
	PermReadWrite PermType = 2
)

// String returns etcd's name for t (authpb.Permission_Type_name), or the
// number for a type etcd does not define.
func (t PermType) String() string {
	switch t {
	case PermRead:
		return "READ"
	case PermWrite:
		return "WRITE"
	case PermReadWrite:
		return "READWRITE"
	}
	return strconv.FormatInt(int64(t), 10)
}

// Action is what a request does to a key range.
type Action int

const (
	ActionRead Action = iota + 1
	ActionWrite
)

// Permission lets a role read and/or write a key range. RangeEnd empty: the
// single key Key; RangeEnd "\x00": every key >= Key; otherwise [Key, RangeEnd).
type Permission struct {
	Type          PermType
	Key, RangeEnd []byte
}

// User is a copy of one user's record.
type User struct {
	Name string
	// Hash is the bcrypt hash of the password (nil for a no-password user).
	Hash []byte
	// Roles is sorted and free of duplicates.
	Roles []string
	// NoPassword marks a user that cannot authenticate with a password
	// (etcd's UserAddOptions.NoPassword): only a client certificate names it.
	NoPassword bool
}

// Role is a copy of one role's record.
type Role struct {
	Name string
	// Perms is sorted by (Key, RangeEnd) without duplicates.
	Perms []Permission
}

// Subject is who makes a request.
type Subject struct {
	User string
	// Revision is the auth revision the user's token was issued at.
	Revision uint64
	// FromCert marks an identity taken from a verified TLS client
	// certificate's CN: it has no token, so its revision is never stale.
	FromCert bool
}

const (
	rootUser = "root"
	rootRole = "root"
)

// user is the stored record. Its hash slice is never written in place (a
// password change installs a new slice), which lets CheckPassword compare
// against it after dropping the lock.
type user struct {
	hash       []byte
	roles      []string // sorted
	noPassword bool
}

type role struct {
	perms []Permission // sorted by (Key, RangeEnd)
}

// Store is the replicated auth state: users, roles, their permissions, the
// enabled flag and the auth revision, with etcd v3's semantics.
//
// Concurrency: mutations (everything that changes state, plus Replace) are
// meant to be called by the deterministic applier from one goroutine in log
// order, but each is atomic under mu's write lock anyway. Readers and
// deciders (Enabled, Revision, User, Role, lists, HasRole, Check*,
// AppendBinary) take the read lock and may run from any goroutine; each sees
// every mutation whole.
type Store struct {
	mu sync.RWMutex
	// enabled is written under mu's write lock like the rest, but read
	// without it where auth is off: every read, proposal and applied entry
	// asks, and a shared read lock on that path is a contended write.
	enabled  atomic.Bool
	revision uint64
	users    map[string]*user
	roles    map[string]*role
	// perms caches each user's merged permitted intervals; rebuilt for the
	// affected users by every mutation that can change them.
	perms map[string]*userPerms

	dummyMu sync.Mutex
	dummy   map[int][]byte // bcrypt cost -> hash of nothing; see CheckPassword
}

// NewStore returns an empty, disabled store at auth revision 1 (etcd commits
// revision 1 when it creates its auth store, so a token revision of 0 always
// means "no token").
func NewStore() *Store {
	return &Store{
		revision: 1,
		users:    make(map[string]*user),
		roles:    make(map[string]*role),
		perms:    make(map[string]*userPerms),
	}
}

// Enabled reports whether authentication is on.
func (s *Store) Enabled() bool { return s.enabled.Load() }

// Revision returns the auth revision: the number of successful mutations
// since the store was created, plus one.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revision
}

// Enable turns authentication on. It requires user "root" holding role
// "root". Already enabled: nil, no change. As in etcd (AuthEnable re-reads
// the stored revision instead of committing one), enabling does not bump the
// revision: no token can exist while auth is disabled, so none goes stale.
func (s *Store) Enable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() {
		return nil
	}
	u := s.users[rootUser]
	if u == nil {
		return ErrRootUserNotExist
	}
	if !hasRole(u.roles, rootRole) {
		return ErrRootRoleNotExist
	}
	s.enabled.Store(true)
	return nil
}

// Disable turns authentication off and bumps the revision (etcd commits a
// revision here). No-op when already disabled.
func (s *Store) Disable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled.Load() {
		return
	}
	s.enabled.Store(false)
	s.revision++
}

// UserAdd adds a user. hash is the bcrypt hash of its password (see
// HashPassword); it is ignored (stored as nil) when noPassword is set. An
// empty hash is accepted as etcd does: such a user can never authenticate
// with a password.
func (s *Store) UserAdd(name string, hash []byte, noPassword bool) error {
	if name == "" {
		return ErrUserEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; ok {
		return ErrUserAlreadyExist
	}
	u := &user{noPassword: noPassword}
	if !noPassword {
		u.hash = cloneBytes(hash)
	}
	s.users[name] = u
	s.revision++
	s.refreshUserLocked(name)
	return nil
}

// UserDelete deletes a user. User "root" cannot be deleted while auth is
// enabled (ErrInvalidAuthMgmt, checked before existence as etcd does). The
// caller also drops the user's simple tokens (SimpleTokens.InvalidateUser).
func (s *Store) UserDelete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() && name == rootUser {
		return ErrInvalidAuthMgmt
	}
	if _, ok := s.users[name]; !ok {
		return ErrUserNotFound
	}
	delete(s.users, name)
	delete(s.perms, name)
	s.revision++
	return nil
}

// UserChangePassword installs a new password hash. For a no-password user
// the hash is ignored but, as in etcd, the change still succeeds and bumps
// the revision. The caller also drops the user's simple tokens.
func (s *Store) UserChangePassword(name string, hash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return ErrUserNotFound
	}
	nu := &user{roles: u.roles, noPassword: u.noPassword}
	if !u.noPassword {
		nu.hash = cloneBytes(hash)
	}
	s.users[name] = nu
	s.revision++
	return nil
}

// UserGrantRole grants role to user. Role "root" need not exist (it is
// implicit). Granting a role the user already has succeeds without changing
// anything, the revision included (etcd returns before committing).
func (s *Store) UserGrantRole(userName, roleName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userName]
	if u == nil {
		return ErrUserNotFound
	}
	if roleName != rootRole {
		if _, ok := s.roles[roleName]; !ok {
			return ErrRoleNotFound
		}
	}
	i, found := slices.BinarySearch(u.roles, roleName)
	if found {
		return nil
	}
	nu := *u
	nu.roles = slices.Insert(slices.Clone(u.roles), i, roleName)
	s.users[userName] = &nu
	s.revision++
	s.refreshUserLocked(userName)
	return nil
}

// UserRevokeRole revokes role from user. Revoking "root" from "root" while
// auth is enabled is ErrInvalidAuthMgmt; a role the user does not hold is
// ErrRoleNotGranted (whether or not the role exists).
func (s *Store) UserRevokeRole(userName, roleName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() && userName == rootUser && roleName == rootRole {
		return ErrInvalidAuthMgmt
	}
	u := s.users[userName]
	if u == nil {
		return ErrUserNotFound
	}
	i, found := slices.BinarySearch(u.roles, roleName)
	if !found {
		return ErrRoleNotGranted
	}
	nu := *u
	nu.roles = slices.Delete(slices.Clone(u.roles), i, i+1)
	s.users[userName] = &nu
	s.revision++
	s.refreshUserLocked(userName)
	return nil
}

// RoleAdd adds an empty role. Adding "root" is allowed.
func (s *Store) RoleAdd(name string) error {
	if name == "" {
		return ErrRoleEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.roles[name]; ok {
		return ErrRoleAlreadyExist
	}
	s.roles[name] = &role{}
	s.revision++
	return nil
}

// RoleDelete deletes a role and revokes it from every user. Role "root"
// cannot be deleted while auth is enabled (ErrInvalidAuthMgmt); while
// disabled it can, and that revokes "root" from every user too, as in etcd.
func (s *Store) RoleDelete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() && name == rootRole {
		return ErrInvalidAuthMgmt
	}
	if _, ok := s.roles[name]; !ok {
		return ErrRoleNotFound
	}
	delete(s.roles, name)
	for uname, u := range s.users {
		i, found := slices.BinarySearch(u.roles, name)
		if !found {
			continue
		}
		nu := *u
		nu.roles = slices.Delete(slices.Clone(u.roles), i, i+1)
		s.users[uname] = &nu
		s.refreshUserLocked(uname)
	}
	s.revision++
	return nil
}

// RoleGrantPermission grants p to role, replacing the type of an existing
// permission on the same (Key, RangeEnd). The range must be valid as etcd
// checks it (isValidPermissionRange): Key non-empty, and RangeEnd empty,
// "\x00", or greater than Key; otherwise ErrInvalidAuthMgmt, checked before
// the role's existence. The type is stored as given: a type etcd does not
// define grants nothing, as in etcd.
func (s *Store) RoleGrantPermission(roleName string, p Permission) error {
	if !validPermRange(p.Key, p.RangeEnd) {
		return ErrInvalidAuthMgmt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[roleName]
	if r == nil {
		return ErrRoleNotFound
	}
	np := Permission{Type: p.Type, Key: cloneBytes(p.Key), RangeEnd: cloneBytes(p.RangeEnd)}
	i, found := slices.BinarySearchFunc(r.perms, np, comparePerm)
	perms := slices.Clone(r.perms)
	if found {
		perms[i] = np
	} else {
		perms = slices.Insert(perms, i, np)
	}
	s.roles[roleName] = &role{perms: perms}
	s.revision++
	s.refreshUsersWithRoleLocked(roleName)
	return nil
}

// RoleRevokePermission removes the permission on exactly (key, rangeEnd)
// from role: ErrRoleNotFound, or ErrPermissionNotGranted when it has none.
func (s *Store) RoleRevokePermission(roleName string, key, rangeEnd []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[roleName]
	if r == nil {
		return ErrRoleNotFound
	}
	i, found := slices.BinarySearchFunc(r.perms, Permission{Key: key, RangeEnd: rangeEnd}, comparePerm)
	if !found {
		return ErrPermissionNotGranted
	}
	s.roles[roleName] = &role{perms: slices.Delete(slices.Clone(r.perms), i, i+1)}
	s.revision++
	s.refreshUsersWithRoleLocked(roleName)
	return nil
}

// User returns a deep copy of a user, or ErrUserNotFound.
func (s *Store) User(name string) (User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[name]
	if u == nil {
		return User{}, ErrUserNotFound
	}
	return User{
		Name:       name,
		Hash:       cloneBytes(u.hash),
		Roles:      slices.Clone(u.roles),
		NoPassword: u.noPassword,
	}, nil
}

// UserList returns every user name, sorted.
func (s *Store) UserList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedKeys(s.users)
}

// Role returns a deep copy of a role, or ErrRoleNotFound. As in etcd's
// RoleGet, role "root" exists only once added (granting it to a user does not
// create it), and when it exists its permissions read as the single
// READWRITE permission on everything (Key "", RangeEnd "\x00") whatever was
// granted to it.
func (s *Store) Role(name string) (Role, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.roles[name]
	if r == nil {
		return Role{}, ErrRoleNotFound
	}
	if name == rootRole {
		return Role{Name: name, Perms: []Permission{{Type: PermReadWrite, Key: []byte{}, RangeEnd: []byte{0}}}}, nil
	}
	perms := make([]Permission, len(r.perms))
	for i, p := range r.perms {
		perms[i] = Permission{Type: p.Type, Key: cloneBytes(p.Key), RangeEnd: cloneBytes(p.RangeEnd)}
	}
	return Role{Name: name, Perms: perms}, nil
}

// RoleList returns every role name, sorted. It lists "root" only once added.
func (s *Store) RoleList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedKeys(s.roles)
}

// HasRole reports whether user exists and holds role.
func (s *Store) HasRole(userName, roleName string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[userName]
	return u != nil && hasRole(u.roles, roleName)
}

// Replace swaps other's state into s (snapshot restore). other is only read;
// s shares nothing with it afterwards.
func (s *Store) Replace(other *Store) {
	if other == s {
		return
	}
	other.mu.RLock()
	enabled, revision := other.enabled.Load(), other.revision
	users := make(map[string]*user, len(other.users))
	for name, u := range other.users {
		users[name] = &user{hash: cloneBytes(u.hash), roles: slices.Clone(u.roles), noPassword: u.noPassword}
	}
	roles := make(map[string]*role, len(other.roles))
	for name, r := range other.roles {
		perms := make([]Permission, len(r.perms))
		for i, p := range r.perms {
			perms[i] = Permission{Type: p.Type, Key: cloneBytes(p.Key), RangeEnd: cloneBytes(p.RangeEnd)}
		}
		roles[name] = &role{perms: perms}
	}
	other.mu.RUnlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.revision, s.users, s.roles = revision, users, roles
	s.enabled.Store(enabled)
	s.perms = make(map[string]*userPerms, len(users))
	for name := range users {
		s.refreshUserLocked(name)
	}
}

// refreshUserLocked rebuilds the cached merged permissions of one user.
func (s *Store) refreshUserLocked(name string) {
	u := s.users[name]
	if u == nil {
		delete(s.perms, name)
		return
	}
	var read, write []span
	for _, rn := range u.roles {
		r := s.roles[rn]
		if r == nil {
			continue // "root" granted without the role added
		}
		for _, p := range r.perms {
			sp := permSpan(p.Key, p.RangeEnd)
			switch p.Type {
			case PermRead:
				read = append(read, sp)
			case PermWrite:
				write = append(write, sp)
			case PermReadWrite:
				read = append(read, sp)
				write = append(write, sp)
			}
		}
	}
	s.perms[name] = &userPerms{read: mergeSpans(read), write: mergeSpans(write)}
}

func (s *Store) refreshUsersWithRoleLocked(roleName string) {
	for name, u := range s.users {
		if hasRole(u.roles, roleName) {
			s.refreshUserLocked(name)
		}
	}
}

func hasRole(roles []string, r string) bool {
	_, found := slices.BinarySearch(roles, r)
	return found
}

// comparePerm orders permissions by (Key, RangeEnd). etcd sorts by Key only
// and so can keep duplicates of one range; ordering by both makes the order
// total and duplicates impossible.
func comparePerm(a, b Permission) int {
	if c := bytes.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	return bytes.Compare(a.RangeEnd, b.RangeEnd)
}

// validPermRange is etcd's isValidPermissionRange.
func validPermRange(key, rangeEnd []byte) bool {
	if len(key) == 0 {
		return false
	}
	if len(rangeEnd) == 0 || isOpenEnded(rangeEnd) {
		return true
	}
	return bytes.Compare(key, rangeEnd) < 0
}

// isOpenEnded reports whether rangeEnd is "\x00", etcd's "to the end of the
// keyspace".
func isOpenEnded(rangeEnd []byte) bool {
	return len(rangeEnd) == 1 && rangeEnd[0] == 0
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
