package auth

import (
	"encoding/binary"
	"fmt"
	"math"
)

// snapshotVersion is the first byte of the encoding; see doc.go.
const snapshotVersion = 1

const flagNoPassword = 1

// Minimum encoded sizes, used to refuse counts the remaining bytes cannot
// hold before allocating for them.
const (
	minUserSize     = 4 + 1 + 1 + 4 + 4 // name len, 1-byte name, flags, hash len, role count
	minRoleNameSize = 4 + 1
	minRoleSize     = 4 + 1 + 4 // name len, 1-byte name, perm count
	minPermSize     = 4 + 4 + 1 + 4
)

// AppendBinary appends the store's encoding (format in doc.go) to b. Equal
// states give equal bytes.
func (s *Store) AppendBinary(b []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b = append(b, snapshotVersion)
	if s.enabled.Load() {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint64(b, s.revision)

	names := sortedKeys(s.users)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	var err error
	for _, name := range names {
		u := s.users[name]
		if b, err = appendString(b, name); err != nil {
			return nil, err
		}
		var flags byte
		if u.noPassword {
			flags |= flagNoPassword
		}
		b = append(b, flags)
		if b, err = appendBytes(b, u.hash); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(u.roles)))
		for _, r := range u.roles {
			if b, err = appendString(b, r); err != nil {
				return nil, err
			}
		}
	}

	names = sortedKeys(s.roles)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, name := range names {
		r := s.roles[name]
		if b, err = appendString(b, name); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.perms)))
		for _, p := range r.perms {
			b = binary.BigEndian.AppendUint32(b, uint32(p.Type))
			if b, err = appendBytes(b, p.Key); err != nil {
				return nil, err
			}
			if b, err = appendBytes(b, p.RangeEnd); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func appendString(b []byte, s string) ([]byte, error) {
	if uint64(len(s)) > math.MaxUint32 {
		return nil, fmt.Errorf("auth: encode snapshot: string of %d bytes too long", len(s))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...), nil
}

func appendBytes(b, v []byte) ([]byte, error) {
	if uint64(len(v)) > math.MaxUint32 {
		return nil, fmt.Errorf("auth: encode snapshot: field of %d bytes too long", len(v))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...), nil
}

// DecodeStore decodes a store encoded by AppendBinary and returns the bytes
// after it. It validates everything (lengths, order, duplicates, flags,
// permission ranges, that every granted role exists or is "root", that an
// enabled store has user root with role root) and fails with an error
// wrapping ErrCorruptSnapshot, never a panic.
func DecodeStore(b []byte) (*Store, []byte, error) {
	d := decoder{b: b}
	s := NewStore()
	if v := d.u8("version"); d.err == nil && v != snapshotVersion {
		return nil, nil, corrupt("unknown version %d", v)
	}
	switch e := d.u8("enabled flag"); {
	case d.err != nil:
	case e == 1:
		s.enabled.Store(true)
	case e != 0:
		return nil, nil, corrupt("enabled flag %d", e)
	}
	s.revision = d.u64("revision")
	if d.err == nil && s.revision == 0 {
		return nil, nil, corrupt("auth revision 0")
	}

	nusers := d.count("user count", minUserSize)
	prev := ""
	for i := 0; i < nusers && d.err == nil; i++ {
		name := d.name("user name")
		if d.err == nil && i > 0 && name <= prev {
			return nil, nil, corrupt("user %d (%q) not after %q", i, name, prev)
		}
		prev = name
		flags := d.u8("user flags")
		if d.err == nil && flags&^flagNoPassword != 0 {
			return nil, nil, corrupt("user %q: unknown flags %#x", name, flags)
		}
		u := &user{noPassword: flags&flagNoPassword != 0}
		u.hash = cloneBytes(d.bytes("password hash"))
		if d.err == nil && u.noPassword && len(u.hash) != 0 {
			return nil, nil, corrupt("user %q: no-password user with a hash", name)
		}
		nroles := d.count("user role count", minRoleNameSize)
		for j := 0; j < nroles && d.err == nil; j++ {
			r := d.name("user role")
			if d.err == nil && j > 0 && r <= u.roles[j-1] {
				return nil, nil, corrupt("user %q: role %q not after %q", name, r, u.roles[j-1])
			}
			u.roles = append(u.roles, r)
		}
		s.users[name] = u
	}

	nroles := d.count("role count", minRoleSize)
	prev = ""
	for i := 0; i < nroles && d.err == nil; i++ {
		name := d.name("role name")
		if d.err == nil && i > 0 && name <= prev {
			return nil, nil, corrupt("role %d (%q) not after %q", i, name, prev)
		}
		prev = name
		r := &role{}
		nperms := d.count("permission count", minPermSize)
		for j := 0; j < nperms && d.err == nil; j++ {
			p := Permission{Type: PermType(int32(d.u32("permission type")))}
			p.Key = cloneBytes(d.bytes("permission key"))
			p.RangeEnd = cloneBytes(d.bytes("permission range end"))
			if d.err != nil {
				break
			}
			if !validPermRange(p.Key, p.RangeEnd) {
				return nil, nil, corrupt("role %q: invalid permission range [%q, %q)", name, p.Key, p.RangeEnd)
			}
			if j > 0 && comparePerm(r.perms[j-1], p) >= 0 {
				return nil, nil, corrupt("role %q: permission %d out of order", name, j)
			}
			r.perms = append(r.perms, p)
		}
		s.roles[name] = r
	}
	if d.err != nil {
		return nil, nil, d.err
	}

	for _, name := range sortedKeys(s.users) {
		for _, r := range s.users[name].roles {
			if _, ok := s.roles[r]; !ok && r != rootRole {
				return nil, nil, corrupt("user %q holds missing role %q", name, r)
			}
		}
	}
	if s.enabled.Load() {
		root := s.users[rootUser]
		if root == nil || !hasRole(root.roles, rootRole) {
			return nil, nil, corrupt("auth enabled without user root holding role root")
		}
	}
	for name := range s.users {
		s.refreshUserLocked(name)
	}
	return s, d.b, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptSnapshot}, args...)...)
}

// decoder reads big-endian fields; after the first error every read returns
// zero values and err keeps that first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) need(n uint64, what string) bool {
	if d.err != nil {
		return false
	}
	if uint64(len(d.b)) < n {
		d.err = corrupt("truncated %s: need %d bytes, have %d", what, n, len(d.b))
		return false
	}
	return true
}

func (d *decoder) u8(what string) uint8 {
	if !d.need(1, what) {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32(what string) uint32 {
	if !d.need(4, what) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64(what string) uint64 {
	if !d.need(8, what) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// count reads a uint32 count of records at least min bytes each and refuses
// one the remaining bytes cannot hold.
func (d *decoder) count(what string, min int) int {
	n := d.u32(what)
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(min) > uint64(len(d.b)) {
		d.err = corrupt("%s %d does not fit in %d bytes", what, n, len(d.b))
		return 0
	}
	return int(n)
}

// bytes reads a uint32-length-prefixed field; the result aliases d.b.
func (d *decoder) bytes(what string) []byte {
	n := d.u32(what + " length")
	if !d.need(uint64(n), what) {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// name reads a non-empty length-prefixed string.
func (d *decoder) name(what string) string {
	v := d.bytes(what)
	if d.err == nil && len(v) == 0 {
		d.err = corrupt("empty %s", what)
	}
	return string(v)
}
