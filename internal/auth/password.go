package auth

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// HashPassword returns the bcrypt hash of password at cost (0 means
// bcrypt.DefaultCost, 10, etcd's default --bcrypt-cost). A cost outside
// [bcrypt.MinCost, bcrypt.MaxCost] or a password longer than bcrypt's 72
// bytes is an error. It is slow on purpose: call it before proposing, never
// while applying.
func HashPassword(password string, cost int) ([]byte, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d outside [%d, %d]", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return nil, fmt.Errorf("auth: hash password: %w", err)
	}
	return h, nil
}

// CheckPassword verifies name's password. Errors, in etcd's order: auth
// disabled: ErrAuthNotEnabled; unknown user: ErrAuthFailed; a no-password
// user: ErrNoPasswordUser (etcd's answer); wrong password: ErrAuthFailed.
// The bcrypt comparison runs without the store lock; an unknown user costs a
// comparison too, so timing does not tell unknown users from wrong
// passwords.
func (s *Store) CheckPassword(name, password string) error {
	_, err := s.CheckPasswordRevision(name, password)
	return err
}

// CheckPasswordRevision is CheckPassword that also returns the auth revision
// at which the user's hash was read. etcd's Authenticate compares it with the
// revision after its authenticate command applied and retries when they
// differ, so a password changed meanwhile cannot yield a token.
func (s *Store) CheckPasswordRevision(name, password string) (uint64, error) {
	s.mu.RLock()
	if !s.enabled.Load() {
		s.mu.RUnlock()
		return 0, ErrAuthNotEnabled
	}
	rev := s.revision
	u := s.users[name]
	var hash []byte
	var dummyCost int
	switch {
	case u == nil:
		dummyCost = bcrypt.DefaultCost
		if root := s.users[rootUser]; root != nil {
			if c, err := bcrypt.Cost(root.hash); err == nil {
				dummyCost = c
			}
		}
	case u.noPassword:
		s.mu.RUnlock()
		return 0, ErrNoPasswordUser
	default:
		hash = u.hash // never written in place; safe after unlock
	}
	s.mu.RUnlock()

	if u == nil {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(dummyCost), []byte(password))
		return 0, ErrAuthFailed
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return 0, ErrAuthFailed
	}
	return rev, nil
}

// dummyHash returns a hash at cost that no password is compared against for
// real; made once per cost and store.
func (s *Store) dummyHash(cost int) []byte {
	s.dummyMu.Lock()
	defer s.dummyMu.Unlock()
	if h, ok := s.dummy[cost]; ok {
		return h
	}
	h, err := bcrypt.GenerateFromPassword([]byte("concord: no such user"), cost)
	if err != nil {
		return nil // CompareHashAndPassword fails fast; only timing suffers
	}
	if s.dummy == nil {
		s.dummy = make(map[int][]byte)
	}
	s.dummy[cost] = h
	return h
}
