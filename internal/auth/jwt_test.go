package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func cryptoRandReader() io.Reader { return rand.Reader }

// testKeySet holds generated keys as PEM. RSA generation is slow, so the
// set is made once per test binary.
type testKeySet struct {
	rsaPriv, rsaPub, rsa2Priv, rsa2Pub []byte
	p256Priv, p256Pub, p384Priv        []byte
	edPriv, edPub                      []byte
}

var (
	keysOnce sync.Once
	keys     testKeySet
	keysErr  error
)

func testKeys(tb testing.TB) testKeySet {
	tb.Helper()
	keysOnce.Do(func() { keys, keysErr = makeTestKeys() })
	if keysErr != nil {
		tb.Fatal(keysErr)
	}
	return keys
}

func makeTestKeys() (testKeySet, error) {
	var ks testKeySet
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	pub := func(k any) ([]byte, error) {
		der, err := x509.MarshalPKIXPublicKey(k)
		return pemOf("PUBLIC KEY", der), err
	}
	r1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return ks, err
	}
	r2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return ks, err
	}
	ks.rsaPriv = pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(r1))
	der, err := x509.MarshalPKCS8PrivateKey(r2) // PKCS#8 form too
	if err != nil {
		return ks, err
	}
	ks.rsa2Priv = pemOf("PRIVATE KEY", der)
	if ks.rsaPub, err = pub(&r1.PublicKey); err != nil {
		return ks, err
	}
	if ks.rsa2Pub, err = pub(&r2.PublicKey); err != nil {
		return ks, err
	}
	e256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ks, err
	}
	if der, err = x509.MarshalECPrivateKey(e256); err != nil {
		return ks, err
	}
	ks.p256Priv = pemOf("EC PRIVATE KEY", der)
	if ks.p256Pub, err = pub(&e256.PublicKey); err != nil {
		return ks, err
	}
	e384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return ks, err
	}
	if der, err = x509.MarshalECPrivateKey(e384); err != nil {
		return ks, err
	}
	ks.p384Priv = pemOf("EC PRIVATE KEY", der)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return ks, err
	}
	if der, err = x509.MarshalPKCS8PrivateKey(edPriv); err != nil {
		return ks, err
	}
	ks.edPriv = pemOf("PRIVATE KEY", der)
	if ks.edPub, err = pub(edPub); err != nil {
		return ks, err
	}
	return ks, nil
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newTestJWT(t testing.TB, method string, priv, pub []byte, ttl time.Duration) *JWT {
	t.Helper()
	j, err := NewJWT(jwtConfig(t, method, priv, pub, ttl))
	if err != nil {
		t.Fatalf("NewJWT(%s): %v", method, err)
	}
	return j
}

func jwtConfig(t testing.TB, method string, priv, pub []byte, ttl time.Duration) TokenConfig {
	dir := t.TempDir()
	cfg := TokenConfig{Kind: TokenJWT, SignMethod: method, TTL: ttl}
	if priv != nil {
		cfg.PrivKeyPath = writeFile(t, dir, "priv.pem", priv)
	}
	if pub != nil {
		cfg.PubKeyPath = writeFile(t, dir, "pub.pem", pub)
	}
	return cfg
}

func TestJWTRoundTrip(t *testing.T) {
	ks := testKeys(t)
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		method    string
		priv, pub []byte
	}{
		{"RS256", ks.rsaPriv, ks.rsaPub},
		{"RS512", ks.rsaPriv, nil},
		{"RS384", ks.rsa2Priv, ks.rsa2Pub},
		{"PS256", ks.rsaPriv, ks.rsaPub},
		{"PS512", ks.rsa2Priv, nil},
		{"ES256", ks.p256Priv, ks.p256Pub},
		{"ES384", ks.p384Priv, nil},
		{"EdDSA", ks.edPriv, ks.edPub},
		{"HS256", []byte("a shared secret"), nil},
		{"HS512", []byte("another secret\n"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			j := newTestJWT(t, tt.method, tt.priv, tt.pub, time.Minute)
			if j.VerifyOnly() || j.TTL() != time.Minute {
				t.Fatalf("VerifyOnly=%v TTL=%v", j.VerifyOnly(), j.TTL())
			}
			sub := Subject{User: "alice", Revision: 42}
			tok, err := j.Sign(sub, now)
			if err != nil {
				t.Fatal(err)
			}
			got, err := j.Verify(tok, now)
			if err != nil || got != sub {
				t.Fatalf("Verify = %+v, %v; want %+v", got, err, sub)
			}
			// The claims are etcd's.
			claims := decodeClaims(t, tok)
			if claims["username"] != "alice" || claims["revision"] != json.Number("42") || claims["exp"] != json.Number("1700000060") || len(claims) != 3 {
				t.Errorf("claims = %v", claims)
			}
			if h := decodeHeader(t, tok); h["alg"] != tt.method {
				t.Errorf("header alg = %v, want %s", h["alg"], tt.method)
			}
		})
	}
}

func TestJWTVerifyOnly(t *testing.T) {
	ks := testKeys(t)
	now := time.Unix(1_700_000_000, 0)
	for _, tt := range []struct {
		method    string
		priv, pub []byte
	}{
		{"RS256", ks.rsaPriv, ks.rsaPub},
		{"ES256", ks.p256Priv, ks.p256Pub},
		{"EdDSA", ks.edPriv, ks.edPub},
	} {
		signer := newTestJWT(t, tt.method, tt.priv, nil, time.Minute)
		verifier := newTestJWT(t, tt.method, nil, tt.pub, time.Minute)
		if !verifier.VerifyOnly() {
			t.Errorf("%s: pub-key only is not verify-only", tt.method)
		}
		tok, err := signer.Sign(Subject{User: "u", Revision: 1}, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifier.Verify(tok, now); err != nil {
			t.Errorf("%s: verify-only member rejects a good token: %v", tt.method, err)
		}
		if _, err := verifier.Sign(Subject{User: "u", Revision: 1}, now); !errors.Is(err, ErrVerifyOnly) {
			t.Errorf("%s: Sign on verify-only = %v, want ErrVerifyOnly", tt.method, err)
		}
	}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	m := map[string]any{}
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	return decodeSegment(t, strings.Split(tok, ".")[1])
}
func decodeHeader(t *testing.T, tok string) map[string]any {
	return decodeSegment(t, strings.Split(tok, ".")[0])
}

// signRaw signs arbitrary claims with method and key, bypassing JWT.Sign.
func signRaw(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTVerifyRejects(t *testing.T) {
	ks := testKeys(t)
	now := time.Unix(1_700_000_000, 0)
	ttl := 5 * time.Minute
	j := newTestJWT(t, "RS256", ks.rsaPriv, ks.rsaPub, ttl)
	other := newTestJWT(t, "RS256", ks.rsa2Priv, nil, ttl)
	rsaKey, err := jwt.ParseRSAPrivateKeyFromPEM(ks.rsaPriv)
	if err != nil {
		t.Fatal(err)
	}
	good, err := j.Sign(Subject{User: "alice", Revision: 7}, now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	exp := now.Add(ttl).Unix()

	wrongKey, _ := other.Sign(Subject{User: "alice", Revision: 7}, now)
	none := signRaw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"username": "root", "revision": 7, "exp": exp})
	// Alg confusion: HS256 keyed with the RSA public key PEM, which a naive
	// verifier would pass as the HMAC secret.
	confused := signRaw(t, jwt.SigningMethodHS256, ks.rsaPub, jwt.MapClaims{"username": "root", "revision": 7, "exp": exp})
	otherAlg := signRaw(t, jwt.SigningMethodRS384, rsaKey, jwt.MapClaims{"username": "root", "revision": 7, "exp": exp})
	pss := signRaw(t, jwt.SigningMethodPS256, rsaKey, jwt.MapClaims{"username": "root", "revision": 7, "exp": exp})
	raw := func(c jwt.MapClaims) string { return signRaw(t, jwt.SigningMethodRS256, rsaKey, c) }

	tests := []struct {
		name  string
		token string
		at    time.Time
	}{
		{"expired at exp", good, now.Add(ttl)},
		{"expired after exp", good, now.Add(ttl + time.Hour)},
		{"tampered payload", parts[0] + "." + b64(map[string]any{"username": "root", "revision": 7, "exp": exp}) + "." + parts[2], now},
		{"tampered header", b64(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "x"}) + "." + parts[1] + "." + parts[2], now},
		{"signature dropped", parts[0] + "." + parts[1] + ".", now},
		{"signature of other token", parts[0] + "." + parts[1] + "." + strings.Split(wrongKey, ".")[2], now},
		{"wrong key", wrongKey, now},
		{"alg none", none, now},
		{"alg none, no dot", strings.TrimSuffix(none, "."), now},
		{"alg none with our signature", b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "." + parts[2], now},
		{"HS256 keyed with public key", confused, now},
		{"RS384 with the right key", otherAlg, now},
		{"PS256 with the right key", pss, now},
		{"missing username", raw(jwt.MapClaims{"revision": 7, "exp": exp}), now},
		{"empty username", raw(jwt.MapClaims{"username": "", "revision": 7, "exp": exp}), now},
		{"numeric username", raw(jwt.MapClaims{"username": 5, "revision": 7, "exp": exp}), now},
		{"missing revision", raw(jwt.MapClaims{"username": "a", "exp": exp}), now},
		{"string revision", raw(jwt.MapClaims{"username": "a", "revision": "7", "exp": exp}), now},
		{"fractional revision", raw(jwt.MapClaims{"username": "a", "revision": 7.5, "exp": exp}), now},
		{"negative revision", raw(jwt.MapClaims{"username": "a", "revision": -1, "exp": exp}), now},
		{"zero revision", raw(jwt.MapClaims{"username": "a", "revision": 0, "exp": exp}), now},
		{"missing exp", raw(jwt.MapClaims{"username": "a", "revision": 7}), now},
		{"string exp", raw(jwt.MapClaims{"username": "a", "revision": 7, "exp": "never"}), now},
		{"fractional exp", raw(jwt.MapClaims{"username": "a", "revision": 7, "exp": 1e30}), now},
		{"empty", "", now},
		{"garbage", "not a token", now},
		{"three dots", "a.b.c", now},
		{"bad base64", "!!!.@@@.###", now},
		{"header only", parts[0], now},
		{"too long", good + strings.Repeat("A", maxJWTLen), now},
		{"non-canonical base64 signature", parts[0] + "." + parts[1] + "." + flipLastBits(parts[2]), now},
	}
	for _, tt := range tests {
		if sub, err := j.Verify(tt.token, tt.at); !errors.Is(err, ErrInvalidAuthToken) {
			t.Errorf("%s: Verify = %+v, %v; want ErrInvalidAuthToken", tt.name, sub, err)
		}
	}
	// Control: the untouched token is good just before expiry.
	if _, err := j.Verify(good, now.Add(ttl-time.Second)); err != nil {
		t.Errorf("good token 1 s before expiry: %v", err)
	}
	// A hand-made token with etcd's claims and our key is good: the table
	// above fails for the reason it names.
	if _, err := j.Verify(raw(jwt.MapClaims{"username": "a", "revision": 7, "exp": exp}), now); err != nil {
		t.Errorf("hand-made good token: %v", err)
	}
}

// flipLastBits changes the unused low bits of the last base64 character
// (a 256-byte RSA signature leaves 4 of them), keeping the decoded bytes;
// strict decoding must refuse it.
func flipLastBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last^1])
}

func TestNewJWTErrors(t *testing.T) {
	ks := testKeys(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := writeFile(t, dir, "garbage.pem", []byte("-----BEGIN NOTHING-----\nzzz\n-----END NOTHING-----\n"))
	empty := writeFile(t, dir, "empty", nil)
	file := func(name string, b []byte) string { return writeFile(t, dir, name, b) }
	tests := []struct {
		name    string
		cfg     TokenConfig
		wantErr error
		mention string
	}{
		{"simple kind", TokenConfig{Kind: TokenSimple}, ErrInvalidAuthOpts, "simple"},
		{"no sign method", TokenConfig{Kind: TokenJWT, TTL: time.Minute, PrivKeyPath: file("a", ks.rsaPriv)}, ErrInvalidAuthMethod, "sign-method"},
		{"missing file", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "RS256", PrivKeyPath: missing}, ErrInvalidAuthOpts, "priv-key"},
		{"missing pub file", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "RS256", PubKeyPath: missing}, ErrInvalidAuthOpts, "pub-key"},
		{"garbage priv", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "RS256", PrivKeyPath: garbage}, ErrInvalidAuthOpts, "not an RSA private key"},
		{"garbage pub", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "ES256", PubKeyPath: garbage}, ErrInvalidAuthOpts, "not an ECDSA public key"},
		{"EC key for RS256", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "RS256", PrivKeyPath: file("b", ks.p256Priv)}, ErrInvalidAuthOpts, "RSA"},
		{"RSA key for ES256", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "ES256", PrivKeyPath: file("c", ks.rsaPriv)}, ErrInvalidAuthOpts, "ECDSA"},
		{"P-384 key for ES256", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "ES256", PrivKeyPath: file("d", ks.p384Priv)}, ErrInvalidAuthOpts, "384-bit"},
		{"P-256 pub for ES512", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "ES512", PubKeyPath: file("e", ks.p256Pub)}, ErrInvalidAuthOpts, "256-bit"},
		{"RSA key for EdDSA", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "EdDSA", PrivKeyPath: file("f", ks.rsaPriv)}, ErrInvalidAuthOpts, "Ed25519"},
		{"mismatched RSA pair", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "RS256", PrivKeyPath: file("g", ks.rsaPriv), PubKeyPath: file("h", ks.rsa2Pub)}, ErrKeyMismatch, "match"},
		{"mismatched Ed pair", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "EdDSA", PrivKeyPath: file("i", ks.edPriv), PubKeyPath: file("j", mustEdPub(t))}, ErrKeyMismatch, "match"},
		{"empty HMAC secret", TokenConfig{Kind: TokenJWT, TTL: time.Minute, SignMethod: "HS256", PrivKeyPath: empty}, ErrMissingKey, "empty"},
		{"zero ttl", TokenConfig{Kind: TokenJWT, SignMethod: "RS256", PrivKeyPath: file("k", ks.rsaPriv)}, ErrInvalidAuthOpts, "ttl"},
	}
	for _, tt := range tests {
		_, err := NewJWT(tt.cfg)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: NewJWT = %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.mention)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error leaks key material: %q", tt.name, err)
		}
	}
}

func mustEdPub(t *testing.T) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
