package auth

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkStore builds the users the Check matrix talks about, enabled.
func checkStore(t *testing.T) *Store {
	t.Helper()
	s := NewStore()
	mustApply(t, s, rootSetup...)
	mustApply(t, s,
		// reader: READ on [a, c) — the lead's end-to-end example.
		roleAdd("rd"), grantPerm("rd", PermRead, "a", "c"),
		userAdd("reader"), grantRole("reader", "rd"),
		// writer: WRITE on [a, c).
		roleAdd("wr"), grantPerm("wr", PermWrite, "a", "c"),
		userAdd("writer"), grantRole("writer", "wr"),
		// both: READWRITE on key k and on [m, end).
		roleAdd("both"), grantPerm("both", PermReadWrite, "k", ""), grantPerm("both", PermReadWrite, "m", "\x00"),
		userAdd("both"), grantRole("both", "both"),
		// adj: READ [a,b) + [b,c) from two roles, key c, READ [d,e) with a gap at [c\x00, d).
		roleAdd("adj1"), grantPerm("adj1", PermRead, "a", "b"), grantPerm("adj1", PermRead, "c", ""),
		roleAdd("adj2"), grantPerm("adj2", PermRead, "b", "c"), grantPerm("adj2", PermRead, "d", "e"),
		userAdd("adj"), grantRole("adj", "adj1"), grantRole("adj", "adj2"),
		// all: READ on everything.
		roleAdd("all"), grantPerm("all", PermRead, "\x00", "\x00"),
		userAdd("all"), grantRole("all", "all"),
		// admin: a second user with role root.
		userAdd("admin"), grantRole("admin", "root"),
		// none: no roles; odd: an undefined permission type only.
		userAdd("none"),
		roleAdd("odd"), grantPerm("odd", PermType(9), "a", "\x00"),
		userAdd("odd"), grantRole("odd", "odd"),
		// mixed: READ and WRITE on different ranges, READ overlapping.
		roleAdd("mixed"), grantPerm("mixed", PermRead, "a", "f"), grantPerm("mixed", PermRead, "c", "h"),
		grantPerm("mixed", PermWrite, "x", "z"),
		userAdd("mixed"), grantRole("mixed", "mixed"),
		enable(),
	)
	return s
}

func TestCheckMatrix(t *testing.T) {
	s := checkStore(t)
	rev := s.Revision()
	const R, W = ActionRead, ActionWrite
	tests := []struct {
		user     string
		a        Action
		key, end string
		want     error
	}{
		// The lead's end-to-end case.
		{"reader", R, "b", "", nil},
		{"reader", W, "b", "", ErrPermissionDenied},
		{"reader", R, "d", "", ErrPermissionDenied},
		// Single keys at the edges of [a, c).
		{"reader", R, "a", "", nil},
		{"reader", R, "bzzz", "", nil},
		{"reader", R, "c", "", ErrPermissionDenied},
		{"reader", R, "", "", ErrPermissionDenied},
		{"reader", R, "\x00", "", ErrPermissionDenied},
		// Ranges inside, equal, exceeding.
		{"reader", R, "a", "c", nil},
		{"reader", R, "a", "b", nil},
		{"reader", R, "b", "c", nil},
		{"reader", R, "a", "c\x00", ErrPermissionDenied},
		{"reader", R, "0", "b", ErrPermissionDenied},
		{"reader", R, "a", "\x00", ErrPermissionDenied},
		{"reader", R, "\x00", "\x00", ErrPermissionDenied},
		{"reader", R, "b", "b\x00", nil},
		// Empty or inverted ranges are checked as their key (etcd's tree).
		{"reader", R, "b", "a", nil},
		{"reader", R, "b", "b", nil},
		{"reader", R, "d", "a", ErrPermissionDenied},
		{"reader", R, "c", "b", ErrPermissionDenied},
		// WRITE is not READ and vice versa.
		{"writer", W, "b", "", nil},
		{"writer", W, "a", "c", nil},
		{"writer", R, "b", "", ErrPermissionDenied},
		{"writer", W, "c", "", ErrPermissionDenied},
		// READWRITE grants both; single-key permission covers only that key.
		{"both", R, "k", "", nil},
		{"both", W, "k", "", nil},
		{"both", R, "k", "k\x00", nil},
		{"both", R, "k\x00", "", ErrPermissionDenied},
		{"both", R, "k", "l", ErrPermissionDenied},
		{"both", W, "kk", "", ErrPermissionDenied},
		{"both", R, "j", "", ErrPermissionDenied},
		// Open-ended permission [m, end).
		{"both", W, "m", "", nil},
		{"both", W, "zzzz", "", nil},
		{"both", W, "\xff\xff\xff", "", nil},
		{"both", R, "m", "\x00", nil},
		{"both", R, "n", "\x00", nil},
		{"both", R, "l", "\x00", ErrPermissionDenied},
		{"both", R, "m", "\xff", nil},
		{"both", R, "l", "n", ErrPermissionDenied},
		{"both", R, "\x00", "\x00", ErrPermissionDenied},
		// Adjacent permissions from two roles merge; a gap does not.
		{"adj", R, "a", "c", nil},
		{"adj", R, "a", "c\x00", nil}, // [a,b) + [b,c) + key c
		{"adj", R, "a", "d", ErrPermissionDenied},
		{"adj", R, "a", "e", ErrPermissionDenied},
		{"adj", R, "d", "e", nil},
		{"adj", R, "c", "", nil},
		{"adj", R, "c\x00", "", ErrPermissionDenied},
		{"adj", R, "b", "c\x00", nil},
		{"adj", W, "b", "", ErrPermissionDenied},
		// Overlapping permissions merge.
		{"mixed", R, "a", "h", nil},
		{"mixed", R, "b", "g", nil},
		{"mixed", R, "a", "h\x00", ErrPermissionDenied},
		{"mixed", W, "a", "", ErrPermissionDenied},
		{"mixed", W, "y", "", nil},
		{"mixed", R, "y", "", ErrPermissionDenied},
		// "\x00".."\x00" grants and asks for everything.
		{"all", R, "\x00", "\x00", nil},
		{"all", R, "\x00", "", nil},
		{"all", R, "anything", "\x00", nil},
		{"all", R, "a", "b", nil},
		{"all", W, "a", "", ErrPermissionDenied},
		{"all", R, "", "", ErrPermissionDenied},
		{"all", R, "", "\x00", ErrPermissionDenied},
		// Root role holders may do anything; others nothing.
		{"root", W, "\x00", "\x00", nil},
		{"root", R, "", "", nil},
		{"admin", W, "x", "", nil},
		{"none", R, "a", "", ErrPermissionDenied},
		{"odd", R, "a", "", ErrPermissionDenied},
		{"odd", W, "a", "", ErrPermissionDenied},
		// Unknown user, unknown action.
		{"ghost", R, "a", "", ErrPermissionDenied},
		{"reader", Action(0), "b", "", ErrPermissionDenied},
		{"reader", Action(99), "b", "", ErrPermissionDenied},
	}
	for _, tt := range tests {
		sub := Subject{User: tt.user, Revision: rev}
		err := s.Check(sub, tt.a, []byte(tt.key), []byte(tt.end))
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Check(%s, %v, %q, %q) = %v, want %v", tt.user, tt.a, tt.key, tt.end, err, tt.want)
		}
	}
}

func TestCheckIdentity(t *testing.T) {
	s := checkStore(t)
	rev := s.Revision()
	tests := []struct {
		name string
		sub  Subject
		want error
	}{
		{"current token", Subject{User: "reader", Revision: rev}, nil},
		{"newer token", Subject{User: "reader", Revision: rev + 5}, nil},
		{"old token", Subject{User: "reader", Revision: rev - 1}, ErrAuthOldRevision},
		{"old root token", Subject{User: "root", Revision: 1}, ErrAuthOldRevision},
		{"revision 0", Subject{User: "reader"}, ErrUserEmpty},
		{"empty user", Subject{Revision: rev}, ErrUserEmpty},
		{"empty user from cert", Subject{FromCert: true}, ErrUserEmpty},
		{"cert, revision 0", Subject{User: "reader", FromCert: true}, nil},
		{"cert, old revision", Subject{User: "reader", Revision: 1, FromCert: true}, nil},
		{"cert, unknown user", Subject{User: "ghost", FromCert: true}, ErrPermissionDenied},
		{"old token of unknown user", Subject{User: "ghost", Revision: 1}, ErrAuthOldRevision},
	}
	for _, tt := range tests {
		err := s.Check(tt.sub, ActionRead, []byte("b"), nil)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: Check(%+v) = %v, want %v", tt.name, tt.sub, err, tt.want)
		}
	}
}

func TestCheckDisabled(t *testing.T) {
	s := checkStore(t)
	s.Disable()
	for _, sub := range []Subject{{}, {User: "ghost"}, {User: "reader", Revision: 1}, {User: "none", Revision: s.Revision()}} {
		if err := s.Check(sub, ActionWrite, []byte("z"), nil); err != nil {
			t.Errorf("disabled: Check(%+v) = %v, want nil", sub, err)
		}
		if err := s.CheckAdmin(sub); err != nil {
			t.Errorf("disabled: CheckAdmin(%+v) = %v, want nil", sub, err)
		}
		if err := s.CheckSubject(sub); err != nil {
			t.Errorf("disabled: CheckSubject(%+v) = %v, want nil", sub, err)
		}
	}
}

func TestCheckAfterMutations(t *testing.T) {
	s := checkStore(t)
	cur := func(u string) Subject { return Subject{User: u, Revision: s.Revision()} }
	steps := []struct {
		op   op
		user string
		a    Action
		key  string
		want error
	}{
		{revokePerm("rd", "a", "c"), "reader", ActionRead, "b", ErrPermissionDenied},
		{grantPerm("rd", PermWrite, "a", "c"), "reader", ActionWrite, "b", nil},
		{grantPerm("rd", PermRead, "a", "c"), "reader", ActionWrite, "b", ErrPermissionDenied}, // type replaced
		{grantPerm("rd", PermReadWrite, "a", "c"), "reader", ActionWrite, "b", nil},
		{revokeRole("reader", "rd"), "reader", ActionRead, "b", ErrPermissionDenied},
		{grantRole("reader", "rd"), "reader", ActionRead, "b", nil},
		{roleDelete("rd"), "reader", ActionRead, "b", ErrPermissionDenied},
		{roleAdd("rd"), "reader", ActionRead, "b", ErrPermissionDenied}, // not re-granted
		{grantRole("reader", "root"), "reader", ActionWrite, "zz", nil},
		{revokeRole("reader", "root"), "reader", ActionWrite, "zz", ErrPermissionDenied},
		{userDelete("writer"), "writer", ActionWrite, "b", ErrPermissionDenied},
		{userAdd("writer"), "writer", ActionWrite, "b", ErrPermissionDenied}, // roles do not come back
	}
	for _, st := range steps {
		mustApply(t, s, st.op)
		err := s.Check(cur(st.user), st.a, []byte(st.key), nil)
		if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
			t.Errorf("after %s: Check(%s, %v, %q) = %v, want %v", st.op.desc, st.user, st.a, st.key, err, st.want)
		}
	}
}

func TestCheckAdmin(t *testing.T) {
	s := checkStore(t)
	tests := []struct {
		sub  Subject
		want error
	}{
		{Subject{User: "root", Revision: s.Revision()}, nil},
		{Subject{User: "root", Revision: 1}, nil}, // etcd's IsAdminPermitted ignores the revision
		{Subject{User: "admin", FromCert: true}, nil},
		{Subject{User: "reader", Revision: s.Revision()}, ErrPermissionDenied},
		{Subject{User: "ghost", Revision: s.Revision()}, ErrUserNotFound},
		{Subject{Revision: s.Revision()}, ErrUserEmpty},
	}
	for _, tt := range tests {
		if err := s.CheckAdmin(tt.sub); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("CheckAdmin(%+v) = %v, want %v", tt.sub, err, tt.want)
		}
	}
}

func TestCheckSubject(t *testing.T) {
	s := checkStore(t)
	tests := []struct {
		sub  Subject
		want error
	}{
		{Subject{User: "reader", Revision: s.Revision()}, nil},
		{Subject{User: "reader", Revision: 1}, nil}, // etcd's requireAuthInfo ignores the revision
		{Subject{User: "ghost", FromCert: true}, nil},
		{Subject{}, ErrUserEmpty},
		{Subject{Revision: 7}, ErrUserEmpty},
	}
	for _, tt := range tests {
		if err := s.CheckSubject(tt.sub); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("CheckSubject(%+v) = %v, want %v", tt.sub, err, tt.want)
		}
	}
}

func TestMergeSpans(t *testing.T) {
	sp := func(b, e string) span { return span{begin: []byte(b), end: []byte(e)} }
	open := func(b string) span { return span{begin: []byte(b), open: true} }
	tests := []struct {
		in, want []span
	}{
		{nil, nil},
		{[]span{sp("a", "b")}, []span{sp("a", "b")}},
		{[]span{sp("b", "c"), sp("a", "b")}, []span{sp("a", "c")}},
		{[]span{sp("a", "b"), sp("c", "d")}, []span{sp("a", "b"), sp("c", "d")}},
		{[]span{sp("a", "z"), sp("b", "c")}, []span{sp("a", "z")}},
		{[]span{sp("a", "c"), sp("b", "d")}, []span{sp("a", "d")}},
		{[]span{sp("a", "c"), open("b"), sp("x", "y")}, []span{open("a")}},
		{[]span{open("m"), sp("a", "m")}, []span{open("a")}},
		{[]span{open("m"), sp("a", "l")}, []span{sp("a", "l"), open("m")}},
		{[]span{open("a"), open("b")}, []span{open("a")}},
	}
	for _, tt := range tests {
		got := mergeSpans(slices.Clone(tt.in))
		if !slices.EqualFunc(got, tt.want, func(a, b span) bool {
			return bytes.Equal(a.begin, b.begin) && a.open == b.open && (a.open || bytes.Equal(a.end, b.end))
		}) {
			t.Errorf("mergeSpans(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// naiveCovered decides coverage without merging: walk from the request's
// begin, repeatedly jumping to the farthest end among permissions that
// contain the current point.
func naiveCovered(perms []Permission, want PermType, key, rangeEnd []byte) bool {
	req := requestSpan(key, rangeEnd)
	cur := req.begin
	for range len(perms) + 1 {
		var best *span
		for _, p := range perms {
			if p.Type != want && p.Type != PermReadWrite {
				continue
			}
			ps := permSpan(p.Key, p.RangeEnd)
			if bytes.Compare(ps.begin, cur) > 0 || (!ps.open && bytes.Compare(ps.end, cur) <= 0) {
				continue
			}
			if best == nil || ps.open || (!best.open && bytes.Compare(ps.end, best.end) > 0) {
				best = &ps
			}
		}
		if best == nil {
			return false
		}
		if best.open {
			return true
		}
		if !req.open && bytes.Compare(best.end, req.end) >= 0 {
			return true
		}
		cur = best.end
	}
	return false
}

// TestCheckAgainstNaiveModel compares Check with naiveCovered on random
// permissions and requests over a tiny alphabet, where edges meet often.
func TestCheckAgainstNaiveModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{0, 'a', 'b', 'c'}
	randKey := func(min int) []byte {
		n := min + rng.IntN(3)
		k := make([]byte, n)
		for i := range k {
			k[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return k
	}
	for iter := 0; iter < 2000; iter++ {
		s := NewStore()
		mustApply(t, s, rootSetup...)
		mustApply(t, s, userAdd("u"), roleAdd("r1"), roleAdd("r2"), grantRole("u", "r1"), grantRole("u", "r2"))
		var granted []Permission
		for n := rng.IntN(6); n > 0; n-- {
			p := Permission{Type: PermType(rng.IntN(3)), Key: randKey(1)}
			switch rng.IntN(3) {
			case 1:
				p.RangeEnd = []byte{0}
			case 2:
				p.RangeEnd = randKey(1)
			}
			r := "r1"
			if rng.IntN(2) == 0 {
				r = "r2"
			}
			if err := s.RoleGrantPermission(r, p); err != nil {
				continue // invalid range
			}
			granted = append(granted, p)
		}
		// Replacements within a role make "granted" stale; rebuild it.
		granted = granted[:0]
		for _, r := range []string{"r1", "r2"} {
			role, _ := s.Role(r)
			granted = append(granted, role.Perms...)
		}
		mustApply(t, s, enable())
		sub := Subject{User: "u", Revision: s.Revision()}
		for q := 0; q < 20; q++ {
			key := randKey(0)
			var end []byte
			switch rng.IntN(3) {
			case 1:
				end = []byte{0}
			case 2:
				end = randKey(1)
			}
			for _, a := range []Action{ActionRead, ActionWrite} {
				want := PermRead
				if a == ActionWrite {
					want = PermWrite
				}
				wantOK := naiveCovered(granted, want, key, end)
				err := s.Check(sub, a, key, end)
				if (err == nil) != wantOK {
					t.Fatalf("perms %s: Check(%v, %q, %q) = %v, naive model says permitted=%v", fmtPerms(granted), a, key, end, err, wantOK)
				}
			}
		}
	}
}

func fmtPerms(ps []Permission) string {
	var b bytes.Buffer
	for _, p := range ps {
		fmt.Fprintf(&b, "%v[%q,%q) ", p.Type, p.Key, p.RangeEnd)
	}
	return b.String()
}
