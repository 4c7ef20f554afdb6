package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxJWTLen bounds what Verify parses; Concord's tokens are a few hundred
// bytes.
const maxJWTLen = 8 << 10

// JWT signs and verifies etcd-style JSON Web Tokens: claims "username"
// (string), "revision" (the auth revision at issue, an integer) and "exp"
// (Unix seconds). It holds no mutable state and is safe for concurrent use.
type JWT struct {
	method    jwt.SigningMethod
	signKey   any // nil on a verify-only member
	verifyKey any
	ttl       time.Duration
}

// NewJWT reads cfg's PEM key files and checks that they fit cfg.SignMethod:
// RSA keys for RS*/PS*, ECDSA keys on the method's curve for ES*, Ed25519
// for EdDSA, the private key file's bytes as the secret for HS*. When both
// keys are given they must be one pair. A private key is tried with a sign
// and verify round trip, so a key Go refuses to use (too small, say) fails
// here rather than at the first login. With only a public key the JWT
// verifies but Sign returns ErrVerifyOnly.
func NewJWT(cfg TokenConfig) (*JWT, error) {
	if cfg.Kind != TokenJWT {
		return nil, fmt.Errorf("%w: NewJWT with token kind %q", ErrInvalidAuthOpts, cfg.Kind)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	method := jwt.GetSigningMethod(cfg.SignMethod)
	if method == nil {
		return nil, fmt.Errorf("%w: %q", ErrInvalidAuthMethod, cfg.SignMethod)
	}
	privPEM, err := readKeyFile(optPrivKey, cfg.PrivKeyPath)
	if err != nil {
		return nil, err
	}
	pubPEM, err := readKeyFile(optPubKey, cfg.PubKeyPath)
	if err != nil {
		return nil, err
	}

	j := &JWT{method: method, ttl: cfg.TTL}
	switch m := method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(privPEM) == 0 {
			return nil, fmt.Errorf("%w: %s secret file %q is empty", ErrMissingKey, cfg.SignMethod, cfg.PrivKeyPath)
		}
		j.signKey, j.verifyKey = privPEM, privPEM
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		j.signKey, j.verifyKey, err = rsaKeys(cfg, privPEM, pubPEM)
	case *jwt.SigningMethodECDSA:
		j.signKey, j.verifyKey, err = ecKeys(cfg, m.CurveBits, privPEM, pubPEM)
	case *jwt.SigningMethodEd25519:
		j.signKey, j.verifyKey, err = edKeys(cfg, privPEM, pubPEM)
	default:
		err = fmt.Errorf("%w: %q", ErrInvalidAuthMethod, cfg.SignMethod)
	}
	if err != nil {
		return nil, err
	}
	if j.signKey != nil {
		now := time.Unix(1<<30, 0)
		tok, err := j.Sign(Subject{User: "probe", Revision: 1}, now)
		if err != nil {
			return nil, fmt.Errorf("%w: %s cannot sign with %s %q: %v", ErrInvalidAuthOpts, cfg.SignMethod, optPrivKey, cfg.PrivKeyPath, err)
		}
		if _, err := j.Verify(tok, now); err != nil {
			return nil, fmt.Errorf("%w: %s cannot verify its own token: %v", ErrInvalidAuthOpts, cfg.SignMethod, err)
		}
	}
	return j, nil
}

func readKeyFile(opt, path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidAuthOpts, opt, err)
	}
	return b, nil
}

func keyErr(cfg TokenConfig, opt, path, want string, err error) error {
	return fmt.Errorf("%w: %s %q is not %s for %s: %v", ErrInvalidAuthOpts, opt, path, want, cfg.SignMethod, err)
}

func rsaKeys(cfg TokenConfig, privPEM, pubPEM []byte) (sign, verify any, err error) {
	var priv *rsa.PrivateKey
	var pub *rsa.PublicKey
	if privPEM != nil {
		if priv, err = jwt.ParseRSAPrivateKeyFromPEM(privPEM); err != nil {
			return nil, nil, keyErr(cfg, optPrivKey, cfg.PrivKeyPath, "an RSA private key", err)
		}
	}
	if pubPEM != nil {
		if pub, err = jwt.ParseRSAPublicKeyFromPEM(pubPEM); err != nil {
			return nil, nil, keyErr(cfg, optPubKey, cfg.PubKeyPath, "an RSA public key", err)
		}
	}
	switch {
	case priv == nil:
		return nil, pub, nil
	case pub != nil && !pub.Equal(&priv.PublicKey):
		return nil, nil, ErrKeyMismatch
	}
	return priv, &priv.PublicKey, nil
}

func ecKeys(cfg TokenConfig, curveBits int, privPEM, pubPEM []byte) (sign, verify any, err error) {
	var priv *ecdsa.PrivateKey
	var pub *ecdsa.PublicKey
	if privPEM != nil {
		if priv, err = jwt.ParseECPrivateKeyFromPEM(privPEM); err != nil {
			return nil, nil, keyErr(cfg, optPrivKey, cfg.PrivKeyPath, "an ECDSA private key", err)
		}
		if bits := priv.Curve.Params().BitSize; bits != curveBits {
			return nil, nil, fmt.Errorf("%w: %s %q is a %d-bit curve key; %s needs %d bits", ErrInvalidAuthOpts, optPrivKey, cfg.PrivKeyPath, bits, cfg.SignMethod, curveBits)
		}
	}
	if pubPEM != nil {
		if pub, err = jwt.ParseECPublicKeyFromPEM(pubPEM); err != nil {
			return nil, nil, keyErr(cfg, optPubKey, cfg.PubKeyPath, "an ECDSA public key", err)
		}
		if bits := pub.Curve.Params().BitSize; bits != curveBits {
			return nil, nil, fmt.Errorf("%w: %s %q is a %d-bit curve key; %s needs %d bits", ErrInvalidAuthOpts, optPubKey, cfg.PubKeyPath, bits, cfg.SignMethod, curveBits)
		}
	}
	switch {
	case priv == nil:
		return nil, pub, nil
	case pub != nil && !pub.Equal(&priv.PublicKey):
		return nil, nil, ErrKeyMismatch
	}
	return priv, &priv.PublicKey, nil
}

func edKeys(cfg TokenConfig, privPEM, pubPEM []byte) (sign, verify any, err error) {
	var priv ed25519.PrivateKey
	var pub ed25519.PublicKey
	if privPEM != nil {
		k, err := jwt.ParseEdPrivateKeyFromPEM(privPEM)
		if err != nil {
			return nil, nil, keyErr(cfg, optPrivKey, cfg.PrivKeyPath, "an Ed25519 private key", err)
		}
		var ok bool
		if priv, ok = k.(ed25519.PrivateKey); !ok {
			return nil, nil, keyErr(cfg, optPrivKey, cfg.PrivKeyPath, "an Ed25519 private key", fmt.Errorf("got %T", k))
		}
	}
	if pubPEM != nil {
		k, err := jwt.ParseEdPublicKeyFromPEM(pubPEM)
		if err != nil {
			return nil, nil, keyErr(cfg, optPubKey, cfg.PubKeyPath, "an Ed25519 public key", err)
		}
		var ok bool
		if pub, ok = k.(ed25519.PublicKey); !ok {
			return nil, nil, keyErr(cfg, optPubKey, cfg.PubKeyPath, "an Ed25519 public key", fmt.Errorf("got %T", k))
		}
	}
	switch {
	case priv == nil:
		return nil, pub, nil
	case pub != nil && !pub.Equal(priv.Public()):
		return nil, nil, ErrKeyMismatch
	}
	return priv, priv.Public(), nil
}

// VerifyOnly reports whether the JWT lacks a private key.
func (j *JWT) VerifyOnly() bool { return j.signKey == nil }

// TTL returns the lifetime Sign gives tokens.
func (j *JWT) TTL() time.Duration { return j.ttl }

// Sign issues a token for sub that expires at now+TTL.
func (j *JWT) Sign(sub Subject, now time.Time) (string, error) {
	if j.signKey == nil {
		return "", ErrVerifyOnly
	}
	tok := jwt.NewWithClaims(j.method, jwt.MapClaims{
		"username": sub.User,
		"revision": sub.Revision,
		"exp":      now.Add(j.ttl).Unix(),
	})
	s, err := tok.SignedString(j.signKey)
	if err != nil {
		return "", fmt.Errorf("auth: sign jwt: %w", err)
	}
	return s, nil
}

// Verify checks token's signature, that its algorithm is exactly the
// configured one (no "none", no HS256 keyed with a public key), that its
// base64 is canonical, that it has not expired at now (valid while
// now < exp, in whole seconds), and that it carries a non-empty "username",
// a positive integer "revision" and an integer "exp". Every failure wraps
// ErrInvalidAuthToken; errors never contain the token.
func (j *JWT) Verify(token string, now time.Time) (Subject, error) {
	if len(token) > maxJWTLen {
		return Subject{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidAuthToken, maxJWTLen)
	}
	alg := j.method.Alg()
	p := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithJSONNumber(), jwt.WithStrictDecoding(), jwt.WithoutClaimsValidation())
	claims := jwt.MapClaims{}
	tok, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if t.Method == nil || t.Method.Alg() != alg {
			return nil, errors.New("unexpected signing method")
		}
		return j.verifyKey, nil
	})
	if err != nil {
		return Subject{}, fmt.Errorf("%w: %v", ErrInvalidAuthToken, err)
	}
	if !tok.Valid {
		return Subject{}, fmt.Errorf("%w: signature not valid", ErrInvalidAuthToken)
	}
	user, ok := claims["username"].(string)
	if !ok || user == "" {
		return Subject{}, fmt.Errorf("%w: missing username claim", ErrInvalidAuthToken)
	}
	revNum, ok := claims["revision"].(json.Number)
	if !ok {
		return Subject{}, fmt.Errorf("%w: missing revision claim", ErrInvalidAuthToken)
	}
	rev, err := strconv.ParseUint(string(revNum), 10, 64)
	if err != nil || rev == 0 {
		return Subject{}, fmt.Errorf("%w: bad revision claim", ErrInvalidAuthToken)
	}
	expNum, ok := claims["exp"].(json.Number)
	if !ok {
		return Subject{}, fmt.Errorf("%w: missing exp claim", ErrInvalidAuthToken)
	}
	exp, err := strconv.ParseInt(string(expNum), 10, 64)
	if err != nil {
		return Subject{}, fmt.Errorf("%w: bad exp claim", ErrInvalidAuthToken)
	}
	if now.Unix() >= exp {
		return Subject{}, fmt.Errorf("%w: token expired", ErrInvalidAuthToken)
	}
	return Subject{User: user, Revision: rev}, nil
}
