package auth

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseSimpleToken: never panics, and accepts exactly 16 ASCII letters,
// ".", and a decimal uint64.
func FuzzParseSimpleToken(f *testing.F) {
	for _, s := range []string{"abcdefghijklmnop.1", "ABCDEFGHIJKLMNOP.18446744073709551615", "abcdefghijklmnop.", ".", "", "abcdefghijklmnop.1.2", "abcdefghijklmnop.18446744073709551616"} {
		f.Add(s)
	}
	form := regexp.MustCompile(`^[a-zA-Z]{16}\.([0-9]{1,20})$`)
	f.Fuzz(func(t *testing.T, s string) {
		idx, err := SimpleTokenIndex(s)
		m := form.FindStringSubmatch(s)
		var want uint64
		wantOK := m != nil
		if wantOK {
			var perr error
			want, perr = strconv.ParseUint(m[1], 10, 64)
			if perr != nil {
				want, wantOK = 0, false
			}
		}
		if (err == nil) != wantOK || idx != want {
			t.Fatalf("SimpleTokenIndex(%q) = %d, %v; want %d, ok=%v", s, idx, err, want, wantOK)
		}
		if err != nil && !errors.Is(err, ErrInvalidAuthToken) {
			t.Fatalf("SimpleTokenIndex(%q) error %v is not ErrInvalidAuthToken", s, err)
		}
		if (ParseSimpleToken(s) == nil) != wantOK {
			t.Fatalf("ParseSimpleToken(%q) disagrees with SimpleTokenIndex", s)
		}
	})
}

// FuzzJWTVerify: Verify never panics, and accepts a string only when its
// signed part (header.payload) is exactly one this key signed, and then
// returns that token's subject. The fuzzer cannot forge a signature, so any
// other acceptance would be a verification bug.
func FuzzJWTVerify(f *testing.F) {
	ks := testKeys(f)
	now := time.Unix(1_700_000_000, 0)
	j := newTestJWT(f, "ES256", ks.p256Priv, ks.p256Pub, time.Hour)
	signed := make(map[string]Subject)
	for _, sub := range []Subject{{User: "root", Revision: 1}, {User: "alice", Revision: 99}} {
		tok, err := j.Sign(sub, now)
		if err != nil {
			f.Fatal(err)
		}
		signed[tok[:strings.LastIndexByte(tok, '.')]] = sub
		f.Add(tok)
		parts := strings.Split(tok, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(b64(map[string]any{"alg": "none"}) + "." + parts[1] + ".")
		f.Add(b64(map[string]any{"alg": "HS256"}) + "." + parts[1] + "." + parts[2])
	}
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := j.Verify(s, now)
		if err != nil {
			if !errors.Is(err, ErrInvalidAuthToken) {
				t.Fatalf("Verify error %v is not ErrInvalidAuthToken", err)
			}
			return
		}
		i := strings.LastIndexByte(s, '.')
		want, ok := signed[s[:max(i, 0)]]
		if i < 0 || !ok {
			t.Fatalf("Verify accepted %q, which this key never signed", s)
		}
		if sub != want {
			t.Fatalf("Verify(%q) = %+v, want %+v", s, sub, want)
		}
	})
}

// FuzzDecodeStore: DecodeStore never panics, and a decoded store encodes to
// exactly the bytes it consumed (the encoding is canonical).
func FuzzDecodeStore(f *testing.F) {
	empty, err := NewStore().AppendBinary(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(empty)
	rich, err := richStore(f).AppendBinary(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rich)
	f.Add(append(rich[:len(rich):len(rich)], 1, 2, 3))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, rest, err := DecodeStore(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptSnapshot) || s != nil {
				t.Fatalf("DecodeStore error %v (store %v) does not wrap ErrCorruptSnapshot", err, s)
			}
			return
		}
		consumed := b[:len(b)-len(rest)]
		again, err := s.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, consumed) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, consumed)
		}
		// The decoded store is usable.
		for _, u := range s.UserList() {
			_ = s.Check(Subject{User: u, Revision: s.Revision()}, ActionRead, []byte("k"), []byte("\x00"))
		}
	})
}
