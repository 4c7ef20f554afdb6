package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestParseTokenConfig(t *testing.T) {
	good := []struct {
		in   string
		want TokenConfig
	}{
		{"simple", TokenConfig{Kind: TokenSimple}},
		{"jwt,pub-key=/k.pub,priv-key=/k.pem,sign-method=RS256", TokenConfig{Kind: TokenJWT, TTL: 5 * time.Minute, PubKeyPath: "/k.pub", PrivKeyPath: "/k.pem", SignMethod: "RS256"}},
		{"jwt,sign-method=ES384,ttl=10m,priv-key=/e.pem", TokenConfig{Kind: TokenJWT, TTL: 10 * time.Minute, PrivKeyPath: "/e.pem", SignMethod: "ES384"}},
		{"jwt,pub-key=/e.pub,sign-method=EdDSA", TokenConfig{Kind: TokenJWT, TTL: 5 * time.Minute, PubKeyPath: "/e.pub", SignMethod: "EdDSA"}},
		{"jwt,priv-key=/secret,sign-method=HS512,ttl=90s", TokenConfig{Kind: TokenJWT, TTL: 90 * time.Second, PrivKeyPath: "/secret", SignMethod: "HS512"}},
		{"jwt,priv-key=/a=b.pem,sign-method=PS256", TokenConfig{Kind: TokenJWT, TTL: 5 * time.Minute, PrivKeyPath: "/a=b.pem", SignMethod: "PS256"}},
	}
	for _, tt := range good {
		got, err := ParseTokenConfig(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseTokenConfig(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}

	bad := []struct {
		in      string
		wantErr error
		mention string
	}{
		{"", ErrInvalidAuthOpts, "empty token kind"},
		{"bogus", ErrInvalidAuthOpts, `"bogus"`},
		{"Simple", ErrInvalidAuthOpts, `"Simple"`},
		{"simple,ttl=5m", ErrInvalidAuthOpts, `"ttl"`},
		{"jwt", ErrInvalidAuthMethod, "sign-method"},
		{"jwt,pub-key=/k", ErrInvalidAuthMethod, "sign-method"},
		{"jwt,sign-method=RS256", ErrMissingKey, "priv-key"},
		{"jwt,sign-method=none,pub-key=/k", ErrInvalidAuthMethod, `"none"`},
		{"jwt,sign-method=rs256,pub-key=/k", ErrInvalidAuthMethod, `"rs256"`},
		{"jwt,sign-method=RS256,pub-key=/k,ttl=soon", ErrInvalidAuthOpts, `"ttl"`},
		{"jwt,sign-method=RS256,pub-key=/k,ttl=0s", ErrInvalidAuthOpts, "ttl"},
		{"jwt,sign-method=RS256,pub-key=/k,ttl=-1m", ErrInvalidAuthOpts, "ttl"},
		{"jwt,sign-method=RS256,pub-key=/k,color=blue", ErrInvalidAuthOpts, `"color"`},
		{"jwt,sign-method=RS256,pub-key=/k,pub-key=/j", ErrInvalidAuthOpts, `"pub-key" given twice`},
		{"jwt,sign-method=RS256,pub-key", ErrInvalidAuthOpts, `"pub-key"`},
		{"jwt,sign-method=RS256,pub-key=", ErrInvalidAuthOpts, `"pub-key" has an empty value`},
		{"jwt,sign-method=RS256,=x", ErrInvalidAuthOpts, `"=x"`},
		{"jwt,sign-method=RS256,pub-key=/k,", ErrInvalidAuthOpts, `""`},
		{"jwt,sign-method=HS256", ErrMissingKey, "priv-key"},
		{"jwt,sign-method=HS256,priv-key=/s,pub-key=/p", ErrInvalidAuthOpts, "pub-key"},
	}
	for _, tt := range bad {
		_, err := ParseTokenConfig(tt.in)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseTokenConfig(%q) = %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("ParseTokenConfig(%q) error %q does not mention %s", tt.in, err, tt.mention)
		}
	}
}

// fakeClock is a settable clock for SimpleTokens.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestSimpleTokensExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	ttl := 10 * time.Second
	st := NewSimpleTokens(ttl, clk.now)
	alice := Subject{User: "alice", Revision: 3}
	st.Register("tokA", alice)

	if got, ok := st.Lookup("tokA"); !ok || got != alice {
		t.Fatalf("Lookup right after Register = %+v, %v", got, ok)
	}
	// Each lookup restarts the TTL: 9 s steps never let it die.
	for i := 0; i < 5; i++ {
		clk.advance(9 * time.Second)
		if _, ok := st.Lookup("tokA"); !ok {
			t.Fatalf("token died %d s after its last use (ttl %v)", 9, ttl)
		}
	}
	// Exactly TTL after the last use it is still alive (etcd deletes only
	// once now is after the expiry) ...
	clk.advance(ttl)
	if _, ok := st.Lookup("tokA"); !ok {
		t.Fatal("token dead exactly TTL after last use")
	}
	// ... and one nanosecond past TTL it is dead and dropped.
	clk.advance(ttl + time.Nanosecond)
	if _, ok := st.Lookup("tokA"); ok {
		t.Fatal("token alive past TTL")
	}
	if n := st.Len(); n != 0 {
		t.Fatalf("Len after a dead lookup = %d, want 0", n)
	}
	if _, ok := st.Lookup("never"); ok {
		t.Fatal("unknown token found")
	}
}

func TestSimpleTokensDefaultTTL(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	st := NewSimpleTokens(0, clk.now)
	st.Register("t", Subject{User: "u"})
	clk.advance(300 * time.Second)
	if _, ok := st.Lookup("t"); !ok {
		t.Fatal("dead before the 300 s default TTL")
	}
	clk.advance(300*time.Second + 1)
	if _, ok := st.Lookup("t"); ok {
		t.Fatal("alive after the 300 s default TTL")
	}
}

func TestSimpleTokensInvalidateAndSweep(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	st := NewSimpleTokens(time.Minute, clk.now)
	st.Register("a1", Subject{User: "alice"})
	st.Register("a2", Subject{User: "alice"})
	st.Register("b1", Subject{User: "bob"})
	st.Register("x1", Subject{User: "alice"})
	st.Register("x1", Subject{User: "bob"}) // re-registration moves x1 to bob
	st.InvalidateUser("alice")
	for tok, want := range map[string]bool{"a1": false, "a2": false, "b1": true, "x1": true} {
		if _, ok := st.Lookup(tok); ok != want {
			t.Errorf("after InvalidateUser(alice): Lookup(%s) ok=%v, want %v", tok, ok, want)
		}
	}
	st.InvalidateUser("nobody")

	clk.advance(30 * time.Second)
	st.Register("c1", Subject{User: "carol"})
	clk.advance(31 * time.Second) // b1, x1 past TTL; c1 not
	if n := st.Len(); n != 3 {
		t.Fatalf("Len before Sweep = %d, want 3 (dead tokens kept until swept)", n)
	}
	st.Sweep()
	if n := st.Len(); n != 1 {
		t.Fatalf("Len after Sweep = %d, want 1", n)
	}
	if _, ok := st.Lookup("c1"); !ok {
		t.Fatal("Sweep dropped a live token")
	}
	st.InvalidateUser("bob") // its index entries went with the sweep; no effect
	st.Clear()
	if n := st.Len(); n != 0 {
		t.Fatalf("Len after Clear = %d", n)
	}
}

// TestSimpleTokensBounded registers many tokens that all die; even without
// Sweep the table never grows past minSweepAt.
func TestSimpleTokensBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	st := NewSimpleTokens(time.Second, clk.now)
	peak := 0
	for i := 0; i < 20000; i++ {
		st.Register(fmt.Sprintf("t%d", i), Subject{User: fmt.Sprintf("u%d", i%7)})
		clk.advance(2 * time.Second)
		peak = max(peak, st.Len())
	}
	if peak > minSweepAt {
		t.Fatalf("table of dead tokens grew to %d, want <= %d", peak, minSweepAt)
	}
	// Live tokens are never dropped to bound memory.
	st2 := NewSimpleTokens(time.Hour, clk.now)
	for i := 0; i < 3000; i++ {
		st2.Register(fmt.Sprintf("t%d", i), Subject{User: "u"})
	}
	if n := st2.Len(); n != 3000 {
		t.Fatalf("live tokens dropped: Len = %d, want 3000", n)
	}
}

var simpleTokenRE = regexp.MustCompile(`^[a-zA-Z]{16}\.[0-9]+$`)

func TestNewSimpleToken(t *testing.T) {
	seen := make(map[string]bool)
	for i := uint64(0); i < 200; i++ {
		tok, err := NewSimpleToken(cryptoRandReader(), i*7919)
		if err != nil {
			t.Fatal(err)
		}
		if !simpleTokenRE.MatchString(tok) || !strings.HasSuffix(tok, fmt.Sprintf(".%d", i*7919)) {
			t.Fatalf("NewSimpleToken = %q, want 16 letters . %d", tok, i*7919)
		}
		if err := ParseSimpleToken(tok); err != nil {
			t.Fatalf("ParseSimpleToken(%q) = %v", tok, err)
		}
		if seen[tok[:16]] {
			t.Fatalf("repeated prefix %q", tok[:16])
		}
		seen[tok[:16]] = true
	}

	// Deterministic mapping: byte b < 208 picks letters[b % 52]; others are skipped.
	src := append(bytes.Repeat([]byte{255}, 5), []byte{0, 1, 25, 26, 51, 52, 207, 208, 2, 3, 4, 5, 6, 7, 8, 9, 10}...)
	src = append(src, make([]byte, 64)...)
	tok, err := NewSimpleToken(bytes.NewReader(src), 42)
	if err != nil {
		t.Fatal(err)
	}
	if want := "abzAZaZcdefghijk.42"; tok != want {
		t.Errorf("NewSimpleToken(fixed bytes) = %q, want %q", tok, want)
	}

	if _, err := NewSimpleToken(iotest.ErrReader(io.ErrUnexpectedEOF), 1); err == nil {
		t.Error("NewSimpleToken with a failing reader succeeded")
	}
	if _, err := NewSimpleToken(bytes.NewReader(bytes.Repeat([]byte{0xff}, 1<<16)), 1); err == nil {
		t.Error("NewSimpleToken with a reader of only unusable bytes succeeded")
	}
	if _, err := NewSimpleToken(bytes.NewReader([]byte{1, 2, 3}), 1); err == nil {
		t.Error("NewSimpleToken with a short reader succeeded")
	}
}

func TestParseSimpleToken(t *testing.T) {
	tests := []struct {
		in    string
		index uint64
		ok    bool
	}{
		{"abcdefghijklmnop.1", 1, true},
		{"ABCDEFGHIJKLMNOP.0", 0, true},
		{"abcdefghijklmnop.18446744073709551615", 1<<64 - 1, true},
		{"abcdefghijklmnop.007", 7, true},
		{"abcdefghijklmnop.18446744073709551616", 0, false},
		{"abcdefghijklmnop.", 0, false},
		{"abcdefghijklmnop", 0, false},
		{"abcdefghijklmno.1", 0, false},
		{"abcdefghijklmnopq.1", 0, false},
		{"abcdefghijklmn0p.1", 0, false},
		{"abcdefghijklmnop.+1", 0, false},
		{"abcdefghijklmnop.-1", 0, false},
		{"abcdefghijklmnop.1.2", 0, false},
		{"abcdefghijklmnop.1a", 0, false},
		{"abcdefghijklmnop. 1", 0, false},
		{"abcdefghijklmnop.1_0", 0, false},
		{".1", 0, false},
		{"", 0, false},
		{"abcdefghijklmnop.0x10", 0, false},
		{"abcdéfghijklmnop.1", 0, false},
	}
	for _, tt := range tests {
		idx, err := SimpleTokenIndex(tt.in)
		if tt.ok != (err == nil) || idx != tt.index {
			t.Errorf("SimpleTokenIndex(%q) = %d, %v; want %d, ok=%v", tt.in, idx, err, tt.index, tt.ok)
		}
		if err := ParseSimpleToken(tt.in); tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidAuthToken)) {
			t.Errorf("ParseSimpleToken(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}
