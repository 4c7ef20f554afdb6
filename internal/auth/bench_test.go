package auth

import "testing"

// BenchmarkCheckDisabled is the cost every read, proposal and applied entry
// pays for auth while auth is off, from many goroutines at once.
func BenchmarkCheckDisabled(b *testing.B) {
	s := NewStore()
	sub := Subject{}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Check(sub, ActionRead, []byte("k"), nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCheckEnabled is a non-root user's permission check.
func BenchmarkCheckEnabled(b *testing.B) {
	s := NewStore()
	for _, err := range []error{
		s.UserAdd("root", nil, true), s.UserGrantRole("root", "root"), s.RoleAdd("r"),
		s.RoleGrantPermission("r", Permission{Type: PermReadWrite, Key: []byte("a"), RangeEnd: []byte("z")}),
		s.UserAdd("u", nil, true), s.UserGrantRole("u", "r"), s.Enable(),
	} {
		if err != nil {
			b.Fatal(err)
		}
	}
	sub := Subject{User: "u", FromCert: true}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Check(sub, ActionRead, []byte("k"), nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
