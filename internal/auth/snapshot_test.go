package auth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// richStore exercises every field of the encoding.
func richStore(t testing.TB) *Store {
	s := NewStore()
	ops := []op{
		userAdd("root"), grantRole("root", "root"),
		userAdd("bob"), userAddNoPass("carol"), userAdd("dave"),
		roleAdd("root"), roleAdd("rd"), roleAdd("wr"), roleAdd("empty"),
		grantPerm("rd", PermRead, "a", "c"), grantPerm("rd", PermRead, "a", ""),
		grantPerm("rd", PermReadWrite, "m", "\x00"), grantPerm("rd", PermType(-3), "z", ""),
		grantPerm("wr", PermWrite, "\x00", "\x00"), grantPerm("root", PermRead, "q", ""),
		grantRole("bob", "rd"), grantRole("bob", "wr"), grantRole("carol", "wr"), grantRole("dave", "root"),
		enable(),
	}
	for _, o := range ops {
		if err := o.do(s); err != nil {
			t.Fatalf("%s: %v", o.desc, err)
		}
	}
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    func(testing.TB) *Store
	}{
		{"empty", func(testing.TB) *Store { return NewStore() }},
		{"rich", richStore},
		{"disabled after enable", func(tb testing.TB) *Store { s := richStore(tb); s.Disable(); return s }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s(t)
			enc := encode(t, s)
			trailer := []byte("trailing")
			got, rest, err := DecodeStore(append(slices.Clone(enc), trailer...))
			if err != nil {
				t.Fatalf("DecodeStore: %v", err)
			}
			if !bytes.Equal(rest, trailer) {
				t.Errorf("rest = %q, want %q", rest, trailer)
			}
			if again := encode(t, got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, enc)
			}
			if got.Enabled() != s.Enabled() || got.Revision() != s.Revision() ||
				!slices.Equal(got.UserList(), s.UserList()) || !slices.Equal(got.RoleList(), s.RoleList()) {
				t.Errorf("decoded store differs in flags or lists")
			}
			for _, name := range s.UserList() {
				a, _ := s.User(name)
				b, _ := got.User(name)
				if !bytes.Equal(a.Hash, b.Hash) || !slices.Equal(a.Roles, b.Roles) || a.NoPassword != b.NoPassword {
					t.Errorf("User(%q) = %+v, want %+v", name, b, a)
				}
			}
			for _, name := range s.RoleList() {
				a, _ := s.Role(name)
				b, _ := got.Role(name)
				if !equalPerms(a.Perms, b.Perms) {
					t.Errorf("Role(%q) = %+v, want %+v", name, b, a)
				}
			}
			// The permission cache is rebuilt by decoding.
			if s.Enabled() {
				sub := Subject{User: "bob", Revision: got.Revision()}
				if err := got.Check(sub, ActionRead, []byte("b"), nil); err != nil {
					t.Errorf("decoded Check(bob, read b) = %v", err)
				}
				if err := got.Check(sub, ActionWrite, []byte("b"), nil); err != nil {
					t.Errorf("decoded Check(bob, write b) = %v", err)
				}
				if err := got.Check(Subject{User: "carol", Revision: got.Revision()}, ActionRead, []byte("b"), nil); !errors.Is(err, ErrPermissionDenied) {
					t.Errorf("decoded Check(carol, read b) = %v, want ErrPermissionDenied", err)
				}
			}
		})
	}
}

// TestSnapshotDeterministic builds one state along two orders of commands:
// the bytes must match.
func TestSnapshotDeterministic(t *testing.T) {
	a := NewStore()
	mustApply(t, a, userAdd("x"), userAdd("y"), roleAdd("r1"), roleAdd("r2"),
		grantPerm("r1", PermRead, "b", ""), grantPerm("r1", PermRead, "a", "\x00"), grantPerm("r1", PermRead, "a", ""),
		grantRole("x", "r2"), grantRole("x", "r1"))
	b := NewStore()
	mustApply(t, b, roleAdd("r2"), roleAdd("r1"), userAdd("y"), userAdd("x"),
		grantRole("x", "r1"), grantRole("x", "r2"),
		grantPerm("r1", PermRead, "a", ""), grantPerm("r1", PermRead, "b", ""), grantPerm("r1", PermRead, "a", "\x00"))
	ea, eb := encode(t, a), encode(t, b)
	if !bytes.Equal(ea, eb) {
		t.Fatalf("equal states encode differently:\n%x\n%x", ea, eb)
	}
	mustApply(t, b, grantRole("y", "r1"))
	if bytes.Equal(ea, encode(t, b)) {
		t.Fatal("different states encode the same")
	}
}

// TestSnapshotExactBytes pins the format documented in doc.go.
func TestSnapshotExactBytes(t *testing.T) {
	s := NewStore()
	mustApply(t, s, userAdd("u"), roleAdd("r"), grantPerm("r", PermWrite, "k", "\x00"), grantRole("u", "r"))
	want := []byte{
		1,                      // version
		0,                      // disabled
		0, 0, 0, 0, 0, 0, 0, 5, // revision 1 + 4 mutations
		0, 0, 0, 1, // one user
		0, 0, 0, 1, 'u', // name
		0,                                        // flags
		0, 0, 0, 6, 'h', 'a', 's', 'h', '-', 'u', // hash
		0, 0, 0, 1, 0, 0, 0, 1, 'r', // roles [r]
		0, 0, 0, 1, // one role
		0, 0, 0, 1, 'r',
		0, 0, 0, 1, // one permission
		0, 0, 0, 1, // WRITE
		0, 0, 0, 1, 'k',
		0, 0, 0, 1, 0,
	}
	if got := encode(t, s); !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %v\nwant %v", got, want)
	}
}

func TestDecodeTruncations(t *testing.T) {
	enc := encode(t, richStore(t))
	for n := 0; n < len(enc); n++ {
		s, _, err := DecodeStore(enc[:n])
		if !errors.Is(err, ErrCorruptSnapshot) || s != nil {
			t.Fatalf("DecodeStore(first %d of %d bytes) = %v, %v; want ErrCorruptSnapshot", n, len(enc), s, err)
		}
	}
}

// blob assembles encodings by hand for the corruption table.
type blob []byte

func (b blob) u8(v uint8) blob   { return append(b, v) }
func (b blob) u32(v uint32) blob { return binary.BigEndian.AppendUint32(b, v) }
func (b blob) u64(v uint64) blob { return binary.BigEndian.AppendUint64(b, v) }
func (b blob) str(s string) blob { return append(b.u32(uint32(len(s))), s...) }

func header(enabled uint8, rev uint64) blob { return blob{}.u8(1).u8(enabled).u64(rev) }

func TestDecodeCorrupt(t *testing.T) {
	// userRec is a plain user record with the given roles.
	userRec := func(b blob, name string, roles ...string) blob {
		b = b.str(name).u8(0).str("h").u32(uint32(len(roles)))
		for _, r := range roles {
			b = b.str(r)
		}
		return b
	}
	tests := []struct {
		name string
		b    blob
		want string
	}{
		{"empty input", blob{}, "truncated"},
		{"bad version", blob{}.u8(2).u8(0).u64(1).u32(0).u32(0), "version"},
		{"enabled flag 2", header(2, 1).u32(0).u32(0), "enabled flag"},
		{"revision 0", header(0, 0).u32(0).u32(0), "revision 0"},
		{"huge user count", header(0, 1).u32(0xffffffff).u32(0), "does not fit"},
		{"huge role count", header(0, 1).u32(0).u32(0x10000000), "does not fit"},
		{"huge name length", header(0, 1).u32(1).u32(0xfffffff0).u8(0).u32(0).u32(0).u32(0), "truncated"},
		{"empty user name", userRec(header(0, 1).u32(1), "").u32(0), "empty user name"},
		{"users out of order", userRec(userRec(header(0, 1).u32(2), "b"), "a").u32(0), "not after"},
		{"duplicate users", userRec(userRec(header(0, 1).u32(2), "a"), "a").u32(0), "not after"},
		{"unknown user flag", header(0, 1).u32(1).str("u").u8(2).str("").u32(0).u32(0), "flags"},
		{"no-password user with hash", header(0, 1).u32(1).str("u").u8(1).str("h").u32(0).u32(0), "no-password"},
		{"user roles out of order", userRec(header(0, 1).u32(1), "u", "root", "a").u32(1).str("a").u32(0), "not after"},
		{"duplicate user roles", userRec(header(0, 1).u32(1), "u", "a", "a").u32(1).str("a").u32(0), "not after"},
		{"empty user role", userRec(header(0, 1).u32(1), "u", "").u32(0), "empty user role"},
		{"user holds missing role", userRec(header(0, 1).u32(1), "u", "ghost").u32(0), "missing role"},
		{"roles out of order", header(0, 1).u32(0).u32(2).str("b").u32(0).str("a").u32(0), "not after"},
		{"duplicate roles", header(0, 1).u32(0).u32(2).str("a").u32(0).str("a").u32(0), "not after"},
		{"empty role name", header(0, 1).u32(0).u32(1).str("").u32(0).u32(0), "empty role name"}, // padded past the size check
		{"perm with empty key", header(0, 1).u32(0).u32(1).str("r").u32(1).u32(0).str("").str("").u32(0), "invalid permission range"},
		{"perm inverted", header(0, 1).u32(0).u32(1).str("r").u32(1).u32(0).str("b").str("a"), "invalid permission range"},
		{"perms out of order", header(0, 1).u32(0).u32(1).str("r").u32(2).u32(0).str("b").str("").u32(0).str("a").str(""), "out of order"},
		{"duplicate perms", header(0, 1).u32(0).u32(1).str("r").u32(2).u32(0).str("a").str("").u32(1).str("a").str(""), "out of order"},
		{"huge perm count", header(0, 1).u32(0).u32(1).str("r").u32(1 << 30), "does not fit"},
		{"enabled without root", header(1, 1).u32(0).u32(0), "root"},
		{"enabled, root without root role", userRec(header(1, 1).u32(1), "root").u32(0), "root"},
	}
	for _, tt := range tests {
		s, _, err := DecodeStore(tt.b)
		if !errors.Is(err, ErrCorruptSnapshot) || s != nil {
			t.Errorf("%s: DecodeStore = %v, %v; want ErrCorruptSnapshot", tt.name, s, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.want)
		}
	}

	// The same blobs, made valid, decode: the table tests what it claims.
	valid := []blob{
		header(0, 1).u32(0).u32(0),
		userRec(header(1, 9).u32(1), "root", "root").u32(0),
		userRec(header(0, 1).u32(1), "u", "a", "root").u32(1).str("a").u32(2).u32(0).str("a").str("").u32(1).str("a").str("\x00"),
		header(0, 1).u32(1).str("u").u8(1).str("").u32(0).u32(0),
	}
	for i, b := range valid {
		if _, _, err := DecodeStore(b); err != nil {
			t.Errorf("valid blob %d: DecodeStore = %v", i, err)
		}
	}
}
