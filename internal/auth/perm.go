package auth

import (
	"bytes"
	"slices"
	"sort"
)

// span is the half-open key interval [begin, end); open means end is past
// every key (etcd's range_end "\x00").
type span struct {
	begin, end []byte
	open       bool
}

// userPerms holds one user's permitted intervals per kind, each sorted by
// begin, disjoint and non-adjacent (touching intervals are merged), so a
// requested interval is permitted exactly when one of them covers it.
type userPerms struct {
	read, write []span
}

// pointEnd returns the smallest key greater than key: key + "\x00". No key
// lies strictly between key and pointEnd(key), so the single key key is the
// interval [key, pointEnd(key)), as etcd's adt.NewBytesAffinePoint has it.
func pointEnd(key []byte) []byte {
	e := make([]byte, len(key)+1)
	copy(e, key)
	return e
}

// permSpan is the interval a permission grants.
func permSpan(key, rangeEnd []byte) span {
	switch {
	case len(rangeEnd) == 0:
		return span{begin: key, end: pointEnd(key)}
	case isOpenEnded(rangeEnd):
		return span{begin: key, open: true}
	default:
		return span{begin: key, end: rangeEnd}
	}
}

// requestSpan is the interval a request touches. A range whose end is not
// after its key ("b".."a", or "a".."a") selects no key; etcd's interval tree
// then permits it exactly when the single key `key` is permitted, so it is
// checked as that key. (An empty key is never permitted: no permission can
// begin at or before it.)
func requestSpan(key, rangeEnd []byte) span {
	switch {
	case isOpenEnded(rangeEnd):
		return span{begin: key, open: true}
	case len(rangeEnd) == 0 || bytes.Compare(rangeEnd, key) <= 0:
		return span{begin: key, end: pointEnd(key)}
	default:
		return span{begin: key, end: rangeEnd}
	}
}

// mergeSpans sorts spans and merges overlapping or touching ones.
func mergeSpans(spans []span) []span {
	if len(spans) == 0 {
		return nil
	}
	slices.SortFunc(spans, func(a, b span) int { return bytes.Compare(a.begin, b.begin) })
	out := []span{spans[0]}
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if !last.open && bytes.Compare(last.end, sp.begin) < 0 {
			out = append(out, sp)
			continue
		}
		switch {
		case last.open:
		case sp.open:
			last.open, last.end = true, nil
		case bytes.Compare(sp.end, last.end) > 0:
			last.end = sp.end
		}
	}
	return out
}

// covers reports whether the merged spans cover req entirely.
func covers(merged []span, req span) bool {
	i := sort.Search(len(merged), func(i int) bool { return bytes.Compare(merged[i].begin, req.begin) > 0 }) - 1
	if i < 0 {
		return false
	}
	m := merged[i]
	switch {
	case m.open:
		return true
	case req.open:
		return false
	default:
		return bytes.Compare(m.end, req.end) >= 0
	}
}

// Check decides whether sub may perform a on [key, rangeEnd) (rangeEnd
// empty: the single key; "\x00": every key >= key), with etcd's
// isOpPermitted order of checks:
//
//   - auth disabled: nil;
//   - empty user, or a token subject with revision 0: ErrUserEmpty;
//   - a token subject whose revision is older than the store's:
//     ErrAuthOldRevision (a certificate subject is never stale);
//   - unknown user: ErrPermissionDenied;
//   - a user holding role "root": nil;
//   - otherwise the union of the user's permissions of the needed kind
//     (READ or READWRITE to read, WRITE or READWRITE to write) must cover the
//     whole interval, else ErrPermissionDenied.
func (s *Store) Check(sub Subject, a Action, key, rangeEnd []byte) error {
	if !s.enabled.Load() {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled.Load() {
		return nil
	}
	if err := s.checkCurrentLocked(sub); err != nil {
		return err
	}
	u := s.users[sub.User]
	if u == nil {
		return ErrPermissionDenied
	}
	if hasRole(u.roles, rootRole) {
		return nil
	}
	up := s.perms[sub.User]
	if up == nil {
		return ErrPermissionDenied
	}
	var merged []span
	switch a {
	case ActionRead:
		merged = up.read
	case ActionWrite:
		merged = up.write
	default:
		return ErrPermissionDenied
	}
	if covers(merged, requestSpan(key, rangeEnd)) {
		return nil
	}
	return ErrPermissionDenied
}

// checkCurrentLocked is the identity half of Check.
func (s *Store) checkCurrentLocked(sub Subject) error {
	if sub.User == "" {
		return ErrUserEmpty
	}
	if sub.FromCert {
		return nil
	}
	if sub.Revision == 0 {
		return ErrUserEmpty
	}
	if sub.Revision < s.revision {
		return ErrAuthOldRevision
	}
	return nil
}

// CheckAdmin decides whether sub may administer the cluster (auth
// management, maintenance), as etcd's IsAdminPermitted: auth disabled: nil;
// empty user: ErrUserEmpty; unknown user: ErrUserNotFound; a user without
// role "root": ErrPermissionDenied. Like etcd it does not look at the
// subject's revision: admin requests are not refused as stale.
func (s *Store) CheckAdmin(sub Subject) error {
	if !s.enabled.Load() {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled.Load() {
		return nil
	}
	if sub.User == "" {
		return ErrUserEmpty
	}
	u := s.users[sub.User]
	if u == nil {
		return ErrUserNotFound
	}
	if !hasRole(u.roles, rootRole) {
		return ErrPermissionDenied
	}
	return nil
}

// CheckSubject decides whether a request that needs only an authenticated
// caller may proceed (etcd's requireAuthInfo, used for LeaseGrant,
// LeaseRevoke, LeaseTimeToLive): auth disabled: nil; no user: ErrUserEmpty.
// Like etcd it checks neither the revision nor that the user still exists;
// the token layer has already rejected an invalid or expired token.
func (s *Store) CheckSubject(sub Subject) error {
	if !s.enabled.Load() {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled.Load() {
		return nil
	}
	if sub.User == "" {
		return ErrUserEmpty
	}
	return nil
}
