package auth

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func mustHash(t *testing.T, pw string) []byte {
	t.Helper()
	h, err := HashPassword(pw, bcrypt.MinCost)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	return h
}

func TestHashPassword(t *testing.T) {
	tests := []struct {
		name     string
		password string
		cost     int
		wantCost int
		wantErr  bool
	}{
		{"min cost", "pw", bcrypt.MinCost, bcrypt.MinCost, false},
		{"cost 5", "pw", 5, 5, false},
		{"empty password", "", bcrypt.MinCost, bcrypt.MinCost, false},
		{"72 bytes", strings.Repeat("x", 72), bcrypt.MinCost, bcrypt.MinCost, false},
		{"73 bytes", strings.Repeat("x", 73), bcrypt.MinCost, 0, true},
		{"cost below min", "pw", bcrypt.MinCost - 1, 0, true},
		{"negative cost", "pw", -1, 0, true},
		{"cost above max", "pw", bcrypt.MaxCost + 1, 0, true},
	}
	for _, tt := range tests {
		h, err := HashPassword(tt.password, tt.cost)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: HashPassword(cost %d) error = %v, want error %v", tt.name, tt.cost, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if c, _ := bcrypt.Cost(h); c != tt.wantCost {
			t.Errorf("%s: cost %d, want %d", tt.name, c, tt.wantCost)
		}
		if bcrypt.CompareHashAndPassword(h, []byte(tt.password)) != nil {
			t.Errorf("%s: hash does not match its password", tt.name)
		}
	}
}

// TestHashPasswordDefaultCost is separate: cost 10 takes a while, and
// longer under -race.
func TestHashPasswordDefaultCost(t *testing.T) {
	if testing.Short() {
		t.Skip("bcrypt cost 10")
	}
	h, err := HashPassword("pw", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := bcrypt.Cost(h); c != bcrypt.DefaultCost {
		t.Errorf("HashPassword(cost 0) cost = %d, want %d", c, bcrypt.DefaultCost)
	}
}

func TestCheckPassword(t *testing.T) {
	s := NewStore()
	if err := s.CheckPassword("root", "pw"); !errors.Is(err, ErrAuthNotEnabled) {
		t.Fatalf("CheckPassword while disabled = %v, want ErrAuthNotEnabled", err)
	}
	mustApply(t, s,
		op{"UserAdd root", func(s *Store) error { return s.UserAdd("root", mustHash(t, "rootpw"), false) }},
		grantRole("root", "root"),
		op{"UserAdd bob", func(s *Store) error { return s.UserAdd("bob", mustHash(t, "bobpw"), false) }},
		userAddNoPass("carol"),
		op{"UserAdd nohash", func(s *Store) error { return s.UserAdd("nohash", nil, false) }},
		enable(),
	)
	tests := []struct {
		user, pw string
		want     error
	}{
		{"root", "rootpw", nil},
		{"bob", "bobpw", nil},
		{"bob", "rootpw", ErrAuthFailed},
		{"bob", "", ErrAuthFailed},
		{"bob", "bobpw ", ErrAuthFailed},
		{"ghost", "bobpw", ErrAuthFailed},
		{"", "", ErrAuthFailed},
		{"carol", "anything", ErrNoPasswordUser},
		{"carol", "", ErrNoPasswordUser},
		{"nohash", "", ErrAuthFailed},
	}
	for _, tt := range tests {
		err := s.CheckPassword(tt.user, tt.pw)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("CheckPassword(%q) = %v, want %v", tt.user, err, tt.want)
		}
	}

	rev, err := s.CheckPasswordRevision("bob", "bobpw")
	if err != nil || rev != s.Revision() {
		t.Errorf("CheckPasswordRevision = %d, %v; want %d, nil", rev, err, s.Revision())
	}

	mustApply(t, s, op{"passwd bob", func(s *Store) error { return s.UserChangePassword("bob", mustHash(t, "new")) }})
	if err := s.CheckPassword("bob", "bobpw"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("old password after change = %v, want ErrAuthFailed", err)
	}
	if err := s.CheckPassword("bob", "new"); err != nil {
		t.Errorf("new password after change = %v", err)
	}
	for _, pw := range []string{"x", "rootpw"} {
		if err := s.CheckPassword("ghost", pw); err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("CheckPassword error %v leaks or accepts the password", err)
		}
	}
}
