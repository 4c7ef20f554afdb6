package auth

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

type op struct {
	desc string
	do   func(*Store) error
}

func userAdd(name string) op {
	return op{"UserAdd " + name, func(s *Store) error { return s.UserAdd(name, []byte("hash-"+name), false) }}
}
func userAddNoPass(name string) op {
	return op{"UserAdd(nopass) " + name, func(s *Store) error { return s.UserAdd(name, []byte("ignored"), true) }}
}
func userDelete(name string) op {
	return op{"UserDelete " + name, func(s *Store) error { return s.UserDelete(name) }}
}
func userPasswd(name, hash string) op {
	return op{"UserChangePassword " + name, func(s *Store) error { return s.UserChangePassword(name, []byte(hash)) }}
}
func grantRole(u, r string) op {
	return op{"UserGrantRole " + u + " " + r, func(s *Store) error { return s.UserGrantRole(u, r) }}
}
func revokeRole(u, r string) op {
	return op{"UserRevokeRole " + u + " " + r, func(s *Store) error { return s.UserRevokeRole(u, r) }}
}
func roleAdd(name string) op {
	return op{"RoleAdd " + name, func(s *Store) error { return s.RoleAdd(name) }}
}
func roleDelete(name string) op {
	return op{"RoleDelete " + name, func(s *Store) error { return s.RoleDelete(name) }}
}
func grantPerm(r string, t PermType, key, end string) op {
	return op{fmt.Sprintf("RoleGrantPermission %s %v [%q,%q)", r, t, key, end), func(s *Store) error {
		return s.RoleGrantPermission(r, Permission{Type: t, Key: []byte(key), RangeEnd: []byte(end)})
	}}
}
func revokePerm(r, key, end string) op {
	return op{fmt.Sprintf("RoleRevokePermission %s [%q,%q)", r, key, end), func(s *Store) error {
		return s.RoleRevokePermission(r, []byte(key), []byte(end))
	}}
}
func enable() op  { return op{"Enable", func(s *Store) error { return s.Enable() }} }
func disable() op { return op{"Disable", func(s *Store) error { s.Disable(); return nil }} }

// rootSetup makes user root with role root: what Enable needs.
var rootSetup = []op{userAdd("root"), grantRole("root", "root")}

func mustApply(t *testing.T, s *Store, ops ...op) {
	t.Helper()
	for _, o := range ops {
		if err := o.do(s); err != nil {
			t.Fatalf("setup %s: %v", o.desc, err)
		}
	}
}

func encode(t *testing.T, s *Store) []byte {
	t.Helper()
	b, err := s.AppendBinary(nil)
	if err != nil {
		t.Fatalf("AppendBinary: %v", err)
	}
	return b
}

func TestMutations(t *testing.T) {
	enabledRoot := append(slices.Clone(rootSetup), enable())
	tests := []struct {
		name     string
		setup    []op
		op       op
		wantErr  error
		wantBump bool
	}{
		// UserAdd
		{"add user", nil, userAdd("u"), nil, true},
		{"add no-password user", nil, userAddNoPass("u"), nil, true},
		{"add empty user", nil, userAdd(""), ErrUserEmpty, false},
		{"add existing user", []op{userAdd("u")}, userAdd("u"), ErrUserAlreadyExist, false},
		{"add existing user as no-password", []op{userAdd("u")}, userAddNoPass("u"), ErrUserAlreadyExist, false},

		// UserDelete
		{"delete user", []op{userAdd("u")}, userDelete("u"), nil, true},
		{"delete missing user", nil, userDelete("u"), ErrUserNotFound, false},
		{"delete root while enabled", enabledRoot, userDelete("root"), ErrInvalidAuthMgmt, false},
		{"delete root while disabled", rootSetup, userDelete("root"), nil, true},
		{"delete root after disable", append(slices.Clone(enabledRoot), disable()), userDelete("root"), nil, true},
		{"delete missing root while disabled", nil, userDelete("root"), ErrUserNotFound, false},
		{"delete user while enabled", append(slices.Clone(enabledRoot), userAdd("u")), userDelete("u"), nil, true},

		// UserChangePassword
		{"change password", []op{userAdd("u")}, userPasswd("u", "new"), nil, true},
		{"change password of no-password user", []op{userAddNoPass("u")}, userPasswd("u", "new"), nil, true},
		{"change password of missing user", nil, userPasswd("u", "new"), ErrUserNotFound, false},
		{"change root password while enabled", enabledRoot, userPasswd("root", "new"), nil, true},

		// UserGrantRole
		{"grant role", []op{userAdd("u"), roleAdd("r")}, grantRole("u", "r"), nil, true},
		{"grant implicit root role", []op{userAdd("u")}, grantRole("u", "root"), nil, true},
		{"grant added root role", []op{userAdd("u"), roleAdd("root")}, grantRole("u", "root"), nil, true},
		{"grant granted role", []op{userAdd("u"), roleAdd("r"), grantRole("u", "r")}, grantRole("u", "r"), nil, false},
		{"grant granted root", []op{userAdd("u"), grantRole("u", "root")}, grantRole("u", "root"), nil, false},
		{"grant missing role", []op{userAdd("u")}, grantRole("u", "r"), ErrRoleNotFound, false},
		{"grant role to missing user", []op{roleAdd("r")}, grantRole("u", "r"), ErrUserNotFound, false},
		{"grant missing role to missing user", nil, grantRole("u", "r"), ErrUserNotFound, false},
		{"grant empty role name", []op{userAdd("u")}, grantRole("u", ""), ErrRoleNotFound, false},

		// UserRevokeRole
		{"revoke role", []op{userAdd("u"), roleAdd("r"), grantRole("u", "r")}, revokeRole("u", "r"), nil, true},
		{"revoke ungranted role", []op{userAdd("u"), roleAdd("r")}, revokeRole("u", "r"), ErrRoleNotGranted, false},
		{"revoke missing role", []op{userAdd("u")}, revokeRole("u", "r"), ErrRoleNotGranted, false},
		{"revoke role of missing user", []op{roleAdd("r")}, revokeRole("u", "r"), ErrUserNotFound, false},
		{"revoke root from root while enabled", enabledRoot, revokeRole("root", "root"), ErrInvalidAuthMgmt, false},
		{"revoke root from root while disabled", rootSetup, revokeRole("root", "root"), nil, true},
		{"revoke root from other user while enabled", append(slices.Clone(enabledRoot), userAdd("u"), grantRole("u", "root")), revokeRole("u", "root"), nil, true},
		{"revoke other role from root while enabled", append(slices.Clone(enabledRoot), roleAdd("r"), grantRole("root", "r")), revokeRole("root", "r"), nil, true},

		// RoleAdd
		{"add role", nil, roleAdd("r"), nil, true},
		{"add root role", nil, roleAdd("root"), nil, true},
		{"add empty role", nil, roleAdd(""), ErrRoleEmpty, false},
		{"add existing role", []op{roleAdd("r")}, roleAdd("r"), ErrRoleAlreadyExist, false},

		// RoleDelete
		{"delete role", []op{roleAdd("r")}, roleDelete("r"), nil, true},
		{"delete granted role", []op{roleAdd("r"), userAdd("u"), grantRole("u", "r")}, roleDelete("r"), nil, true},
		{"delete missing role", nil, roleDelete("r"), ErrRoleNotFound, false},
		{"delete implicit root role", rootSetup, roleDelete("root"), ErrRoleNotFound, false},
		{"delete root role while enabled", append(slices.Clone(enabledRoot), roleAdd("root")), roleDelete("root"), ErrInvalidAuthMgmt, false},
		{"delete implicit root role while enabled", enabledRoot, roleDelete("root"), ErrInvalidAuthMgmt, false},
		{"delete root role while disabled", append(slices.Clone(rootSetup), roleAdd("root")), roleDelete("root"), nil, true},

		// RoleGrantPermission
		{"grant key", []op{roleAdd("r")}, grantPerm("r", PermRead, "a", ""), nil, true},
		{"grant range", []op{roleAdd("r")}, grantPerm("r", PermWrite, "a", "c"), nil, true},
		{"grant open range", []op{roleAdd("r")}, grantPerm("r", PermReadWrite, "a", "\x00"), nil, true},
		{"grant everything", []op{roleAdd("r")}, grantPerm("r", PermReadWrite, "\x00", "\x00"), nil, true},
		{"grant to root role", []op{roleAdd("root")}, grantPerm("root", PermRead, "a", ""), nil, true},
		{"grant same range again", []op{roleAdd("r"), grantPerm("r", PermRead, "a", "c")}, grantPerm("r", PermRead, "a", "c"), nil, true},
		{"grant new type on same range", []op{roleAdd("r"), grantPerm("r", PermRead, "a", "c")}, grantPerm("r", PermWrite, "a", "c"), nil, true},
		{"grant undefined type", []op{roleAdd("r")}, grantPerm("r", PermType(7), "a", "c"), nil, true},
		{"grant to missing role", nil, grantPerm("r", PermRead, "a", ""), ErrRoleNotFound, false},
		{"grant to implicit root role", nil, grantPerm("root", PermRead, "a", ""), ErrRoleNotFound, false},
		{"grant empty key", []op{roleAdd("r")}, grantPerm("r", PermRead, "", ""), ErrInvalidAuthMgmt, false},
		{"grant empty key open", []op{roleAdd("r")}, grantPerm("r", PermRead, "", "\x00"), ErrInvalidAuthMgmt, false},
		{"grant inverted range", []op{roleAdd("r")}, grantPerm("r", PermRead, "c", "a"), ErrInvalidAuthMgmt, false},
		{"grant empty range", []op{roleAdd("r")}, grantPerm("r", PermRead, "a", "a"), ErrInvalidAuthMgmt, false},
		{"grant range ending at \\x00\\x00", []op{roleAdd("r")}, grantPerm("r", PermRead, "a", "\x00\x00"), ErrInvalidAuthMgmt, false},
		{"grant invalid range to missing role", nil, grantPerm("r", PermRead, "c", "a"), ErrInvalidAuthMgmt, false},

		// RoleRevokePermission
		{"revoke permission", []op{roleAdd("r"), grantPerm("r", PermRead, "a", "c")}, revokePerm("r", "a", "c"), nil, true},
		{"revoke key permission", []op{roleAdd("r"), grantPerm("r", PermRead, "a", "")}, revokePerm("r", "a", ""), nil, true},
		{"revoke other range", []op{roleAdd("r"), grantPerm("r", PermRead, "a", "c")}, revokePerm("r", "a", "b"), ErrPermissionNotGranted, false},
		{"revoke key of range", []op{roleAdd("r"), grantPerm("r", PermRead, "a", "c")}, revokePerm("r", "a", ""), ErrPermissionNotGranted, false},
		{"revoke from empty role", []op{roleAdd("r")}, revokePerm("r", "a", ""), ErrPermissionNotGranted, false},
		{"revoke from missing role", nil, revokePerm("r", "a", ""), ErrRoleNotFound, false},

		// Enable / Disable
		{"enable", rootSetup, enable(), nil, false},
		{"enable without root", []op{userAdd("u")}, enable(), ErrRootUserNotExist, false},
		{"enable without root role", []op{userAdd("root")}, enable(), ErrRootRoleNotExist, false},
		{"enable with root role on other user", []op{userAdd("root"), userAdd("u"), grantRole("u", "root")}, enable(), ErrRootRoleNotExist, false},
		{"enable twice", enabledRoot, enable(), nil, false},
		{"disable", enabledRoot, disable(), nil, true},
		{"disable disabled", nil, disable(), nil, false},
		{"re-enable", append(slices.Clone(enabledRoot), disable()), enable(), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore()
			mustApply(t, s, tt.setup...)
			before := encode(t, s)
			rev := s.Revision()
			err := tt.op.do(s)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("%s = %v, want %v", tt.op.desc, err, tt.wantErr)
			}
			wantRev := rev
			if tt.wantBump {
				wantRev++
			}
			if got := s.Revision(); got != wantRev {
				t.Errorf("%s: revision %d -> %d, want %d", tt.op.desc, rev, got, wantRev)
			}
			if (err != nil || !tt.wantBump) && !(err == nil && tt.op.desc == "Enable") {
				if after := encode(t, s); !bytes.Equal(before, after) {
					t.Errorf("%s changed the state without a revision bump", tt.op.desc)
				}
			}
		})
	}
}

func TestNewStore(t *testing.T) {
	s := NewStore()
	if s.Enabled() || s.Revision() != 1 || len(s.UserList()) != 0 || len(s.RoleList()) != 0 {
		t.Fatalf("NewStore: enabled=%v revision=%d users=%v roles=%v, want disabled at 1 and empty",
			s.Enabled(), s.Revision(), s.UserList(), s.RoleList())
	}
}

func TestEnableDisable(t *testing.T) {
	s := NewStore()
	mustApply(t, s, rootSetup...)
	if err := s.Enable(); err != nil || !s.Enabled() {
		t.Fatalf("Enable = %v, Enabled = %v", err, s.Enabled())
	}
	s.Disable()
	if s.Enabled() {
		t.Fatal("Enabled after Disable")
	}
}

func TestUserRecords(t *testing.T) {
	s := NewStore()
	mustApply(t, s, userAdd("bob"), userAddNoPass("alice"), roleAdd("z"), roleAdd("a"),
		grantRole("bob", "z"), grantRole("bob", "root"), grantRole("bob", "a"))

	bob, err := s.User("bob")
	if err != nil {
		t.Fatal(err)
	}
	want := User{Name: "bob", Hash: []byte("hash-bob"), Roles: []string{"a", "root", "z"}}
	if bob.Name != want.Name || !bytes.Equal(bob.Hash, want.Hash) || !slices.Equal(bob.Roles, want.Roles) || bob.NoPassword {
		t.Errorf("User(bob) = %+v, want %+v", bob, want)
	}
	alice, _ := s.User("alice")
	if !alice.NoPassword || alice.Hash != nil || len(alice.Roles) != 0 {
		t.Errorf("User(alice) = %+v, want a no-password user without hash or roles", alice)
	}
	if _, err := s.User("carol"); !errors.Is(err, ErrUserNotFound) {
		t.Errorf("User(carol) = %v, want ErrUserNotFound", err)
	}

	// A deep copy: changing it changes nothing stored.
	bob.Hash[0] = 'X'
	bob.Roles[0] = "X"
	again, _ := s.User("bob")
	if !bytes.Equal(again.Hash, []byte("hash-bob")) || again.Roles[0] != "a" {
		t.Errorf("User returned shared memory: now %+v", again)
	}

	// The caller's hash slice is copied too.
	h := []byte("secret-hash")
	mustApply(t, s, op{"UserAdd carol", func(s *Store) error { return s.UserAdd("carol", h, false) }})
	h[0] = 'X'
	if c, _ := s.User("carol"); string(c.Hash) != "secret-hash" {
		t.Errorf("UserAdd kept the caller's slice: %q", c.Hash)
	}

	if got, want := s.UserList(), []string{"alice", "bob", "carol"}; !slices.Equal(got, want) {
		t.Errorf("UserList = %v, want %v", got, want)
	}
	if got, want := s.RoleList(), []string{"a", "z"}; !slices.Equal(got, want) {
		t.Errorf("RoleList = %v, want %v (root is implicit until added)", got, want)
	}

	for _, c := range []struct {
		user, role string
		want       bool
	}{
		{"bob", "a", true}, {"bob", "root", true}, {"bob", "b", false},
		{"alice", "a", false}, {"nobody", "a", false},
	} {
		if got := s.HasRole(c.user, c.role); got != c.want {
			t.Errorf("HasRole(%q, %q) = %v, want %v", c.user, c.role, got, c.want)
		}
	}

	mustApply(t, s, userPasswd("bob", "newhash"), userPasswd("alice", "ignored"))
	if b, _ := s.User("bob"); string(b.Hash) != "newhash" || !slices.Equal(b.Roles, []string{"a", "root", "z"}) {
		t.Errorf("after password change User(bob) = %+v", b)
	}
	if a, _ := s.User("alice"); a.Hash != nil || !a.NoPassword {
		t.Errorf("no-password user got a hash: %+v", a)
	}

	mustApply(t, s, revokeRole("bob", "root"), roleDelete("z"))
	if b, _ := s.User("bob"); !slices.Equal(b.Roles, []string{"a"}) {
		t.Errorf("after revoke root and delete z: roles %v, want [a]", b.Roles)
	}
}

func TestRoleRecords(t *testing.T) {
	s := NewStore()
	if _, err := s.Role("root"); !errors.Is(err, ErrRoleNotFound) {
		t.Errorf("Role(root) before it is added = %v, want ErrRoleNotFound (etcd's RoleGet)", err)
	}
	mustApply(t, s, roleAdd("r"), roleAdd("root"),
		grantPerm("r", PermRead, "b", ""),
		grantPerm("r", PermWrite, "a", "c"),
		grantPerm("r", PermReadWrite, "a", ""),
		grantPerm("r", PermRead, "a", "\x00"),
		grantPerm("r", PermRead, "a", "c"), // replaces WRITE
		grantPerm("root", PermRead, "x", ""),
	)
	r, err := s.Role("r")
	if err != nil {
		t.Fatal(err)
	}
	want := []Permission{
		{PermReadWrite, []byte("a"), nil},
		{PermRead, []byte("a"), []byte("\x00")},
		{PermRead, []byte("a"), []byte("c")},
		{PermRead, []byte("b"), nil},
	}
	if !equalPerms(r.Perms, want) {
		t.Errorf("Role(r).Perms = %v, want %v", r.Perms, want)
	}
	r.Perms[0].Key[0] = 'X'
	if again, _ := s.Role("r"); again.Perms[0].Key[0] != 'a' {
		t.Error("Role returned shared memory")
	}

	root, err := s.Role("root")
	if err != nil {
		t.Fatal(err)
	}
	wantRoot := []Permission{{PermReadWrite, []byte{}, []byte{0}}}
	if !equalPerms(root.Perms, wantRoot) || root.Perms[0].Key == nil {
		t.Errorf("Role(root).Perms = %v, want %v", root.Perms, wantRoot)
	}
	if _, err := s.Role("nope"); !errors.Is(err, ErrRoleNotFound) {
		t.Errorf("Role(nope) = %v, want ErrRoleNotFound", err)
	}

	mustApply(t, s, revokePerm("r", "a", "\x00"))
	r, _ = s.Role("r")
	if len(r.Perms) != 3 {
		t.Errorf("after revoke: %v", r.Perms)
	}
}

func equalPerms(a, b []Permission) bool {
	return slices.EqualFunc(a, b, func(x, y Permission) bool {
		return x.Type == y.Type && bytes.Equal(x.Key, y.Key) && bytes.Equal(x.RangeEnd, y.RangeEnd)
	})
}

func TestPermTypeString(t *testing.T) {
	for typ, want := range map[PermType]string{PermRead: "READ", PermWrite: "WRITE", PermReadWrite: "READWRITE", 9: "9", -1: "-1"} {
		if got := typ.String(); got != want {
			t.Errorf("PermType(%d).String() = %q, want %q", int32(typ), got, want)
		}
	}
}

func TestReplace(t *testing.T) {
	src := NewStore()
	mustApply(t, src, append(slices.Clone(rootSetup), userAdd("u"), roleAdd("r"), grantPerm("r", PermRead, "a", "c"), grantRole("u", "r"), enable())...)
	dst := NewStore()
	mustApply(t, dst, userAdd("old"))
	dst.Replace(src)
	if !bytes.Equal(encode(t, dst), encode(t, src)) {
		t.Fatal("Replace: state differs from source")
	}
	sub := Subject{User: "u", Revision: dst.Revision()}
	if err := dst.Check(sub, ActionRead, []byte("b"), nil); err != nil {
		t.Errorf("Check after Replace = %v (permission cache not rebuilt?)", err)
	}
	// Nothing shared: mutating the source leaves dst alone.
	mustApply(t, src, revokePerm("r", "a", "c"))
	if err := dst.Check(Subject{User: "u", Revision: dst.Revision()}, ActionRead, []byte("b"), nil); err != nil {
		t.Errorf("Check after mutating the source = %v", err)
	}
	dst.Replace(dst) // no deadlock, no change
}

// TestConcurrentReaders runs deciders and readers against a mutating store;
// it means something under -race.
func TestConcurrentReaders(t *testing.T) {
	s := NewStore()
	mustApply(t, s, append(slices.Clone(rootSetup), userAdd("u"), roleAdd("r"), grantRole("u", "r"), enable())...)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = s.Check(Subject{User: "u", Revision: s.Revision()}, ActionRead, []byte("k"), nil)
				_ = s.CheckAdmin(Subject{User: "u"})
				_, _ = s.User("u")
				_, _ = s.Role("r")
				_, _ = s.AppendBinary(nil)
			}
		}()
	}
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("k%03d", i)
		mustApply(t, s, grantPerm("r", PermRead, k, ""))
		if i%2 == 0 {
			mustApply(t, s, revokePerm("r", k, ""))
		}
	}
	close(stop)
	wg.Wait()
}
