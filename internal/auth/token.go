package auth

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Token kinds, the first field of etcd's --auth-token.
const (
	TokenSimple = "simple"
	TokenJWT    = "jwt"
)

const (
	// DefaultJWTTTL is a JWT's lifetime when --auth-token has no ttl option
	// (etcd's auth.DefaultTTL).
	DefaultJWTTTL = 5 * time.Minute
	// DefaultSimpleTTL is a simple token's idle lifetime when none is
	// configured (etcd's --auth-token-ttl default, 300 s).
	DefaultSimpleTTL = 300 * time.Second
)

// --auth-token option names, etcd's (server/auth/options.go).
const (
	optSignMethod = "sign-method"
	optPubKey     = "pub-key"
	optPrivKey    = "priv-key"
	optTTL        = "ttl"
)

// signMethods lists every sign-method etcd accepts for JWTs: the methods
// golang-jwt registers that etcd's jwtOptions.Key supports (not "none").
var signMethods = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
	"HS256", "HS384", "HS512",
}

// TokenConfig says how a member issues and verifies auth tokens.
type TokenConfig struct {
	// Kind is TokenSimple or TokenJWT.
	Kind string
	// TTL is, for jwt, a token's lifetime (default DefaultJWTTTL); for
	// simple, the idle lifetime, set by the server from --auth-token-ttl.
	TTL time.Duration
	// PubKeyPath and PrivKeyPath are PEM files (jwt only). For HS* methods
	// the private key file's raw bytes are the shared secret, as in etcd.
	// With only PubKeyPath the member verifies tokens but cannot issue them.
	PubKeyPath, PrivKeyPath string
	// SignMethod is one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384
	// ES512 EdDSA HS256 HS384 HS512 (jwt only; required).
	SignMethod string
}

// Validate checks the fields' consistency (not the key files; NewJWT reads
// them).
func (c TokenConfig) Validate() error {
	switch c.Kind {
	case TokenSimple:
		if c.PubKeyPath != "" || c.PrivKeyPath != "" || c.SignMethod != "" {
			return fmt.Errorf("%w: simple tokens take no keys or sign-method", ErrInvalidAuthOpts)
		}
		if c.TTL < 0 {
			return fmt.Errorf("%w: negative simple token ttl %v", ErrInvalidAuthOpts, c.TTL)
		}
		return nil
	case TokenJWT:
		if c.SignMethod == "" {
			return fmt.Errorf("%w: jwt needs option %q", ErrInvalidAuthMethod, optSignMethod)
		}
		if !slices.Contains(signMethods, c.SignMethod) {
			return fmt.Errorf("%w: %s %q (want one of %s)", ErrInvalidAuthMethod, optSignMethod, c.SignMethod, strings.Join(signMethods, " "))
		}
		if c.TTL <= 0 {
			return fmt.Errorf("%w: %s must be positive, got %v", ErrInvalidAuthOpts, optTTL, c.TTL)
		}
		if strings.HasPrefix(c.SignMethod, "HS") {
			if c.PrivKeyPath == "" {
				return fmt.Errorf("%w: %s needs option %q (the shared secret file)", ErrMissingKey, c.SignMethod, optPrivKey)
			}
			if c.PubKeyPath != "" {
				return fmt.Errorf("%w: %s takes no %q (the secret is %q)", ErrInvalidAuthOpts, c.SignMethod, optPubKey, optPrivKey)
			}
			return nil
		}
		if c.PubKeyPath == "" && c.PrivKeyPath == "" {
			return fmt.Errorf("%w: jwt needs option %q and/or %q", ErrMissingKey, optPrivKey, optPubKey)
		}
		return nil
	case "":
		return fmt.Errorf("%w: empty token kind (want %q or %q)", ErrInvalidAuthOpts, TokenSimple, TokenJWT)
	default:
		return fmt.Errorf("%w: unknown token kind %q (want %q or %q)", ErrInvalidAuthOpts, c.Kind, TokenSimple, TokenJWT)
	}
}

// ParseTokenConfig parses etcd's --auth-token value: "simple", or
// "jwt,pub-key=PATH,priv-key=PATH,sign-method=METHOD,ttl=DURATION" (options
// in any order; sign-method required; ttl defaults to 5m). Unlike etcd,
// which only warns, unknown options are errors, and so are options given to
// simple tokens (their ttl is --auth-token-ttl). Every error wraps
// ErrInvalidAuthOpts, ErrInvalidAuthMethod or ErrMissingKey and names the
// option.
func ParseTokenConfig(s string) (TokenConfig, error) {
	fields := strings.Split(s, ",")
	cfg := TokenConfig{Kind: fields[0]}
	if cfg.Kind == TokenJWT {
		cfg.TTL = DefaultJWTTTL
	}
	seen := make(map[string]bool)
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return TokenConfig{}, fmt.Errorf("%w: option %q is not key=value", ErrInvalidAuthOpts, f)
		}
		if seen[k] {
			return TokenConfig{}, fmt.Errorf("%w: option %q given twice", ErrInvalidAuthOpts, k)
		}
		seen[k] = true
		if cfg.Kind != TokenJWT {
			if cfg.Kind == TokenSimple {
				return TokenConfig{}, fmt.Errorf("%w: option %q is not accepted by simple tokens (their ttl is --auth-token-ttl)", ErrInvalidAuthOpts, k)
			}
			break // Validate names the bad kind
		}
		if v == "" {
			return TokenConfig{}, fmt.Errorf("%w: option %q has an empty value", ErrInvalidAuthOpts, k)
		}
		switch k {
		case optSignMethod:
			cfg.SignMethod = v
		case optPubKey:
			cfg.PubKeyPath = v
		case optPrivKey:
			cfg.PrivKeyPath = v
		case optTTL:
			d, err := time.ParseDuration(v)
			if err != nil {
				return TokenConfig{}, fmt.Errorf("%w: option %q: %v", ErrInvalidAuthOpts, optTTL, err)
			}
			cfg.TTL = d
		default:
			return TokenConfig{}, fmt.Errorf("%w: unknown jwt option %q (known: %s, %s, %s, %s)", ErrInvalidAuthOpts, k, optSignMethod, optPubKey, optPrivKey, optTTL)
		}
	}
	if err := cfg.Validate(); err != nil {
		return TokenConfig{}, err
	}
	return cfg, nil
}
