package auth

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	simpleTokenLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	// simpleTokenPrefixLen is etcd's defaultSimpleTokenLength.
	simpleTokenPrefixLen = 16
	// minSweepAt is the table size below which Register never sweeps.
	minSweepAt = 1024
)

// NewSimpleToken returns a new simple token in etcd's form: 16 letters drawn
// uniformly from [a-zA-Z] using r (crypto/rand.Reader in production), ".",
// and the raft index of the authenticate command in decimal. The proposer
// makes it and puts it into the command; every member registers it when the
// command applies, so the index makes it unique.
func NewSimpleToken(r io.Reader, index uint64) (string, error) {
	var out [simpleTokenPrefixLen]byte
	n := 0
	var buf [32]byte
	// Rejection sampling keeps the letters uniform: 208 = 4*52. Each byte is
	// kept with probability 13/16, so 16 rounds of 32 bytes all but never
	// run out; a reader that does is broken.
	for round := 0; round < 16 && n < len(out); round++ {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("auth: simple token randomness: %w", err)
		}
		for _, c := range buf {
			if c >= 208 {
				continue
			}
			out[n] = simpleTokenLetters[int(c)%len(simpleTokenLetters)]
			n++
			if n == len(out) {
				break
			}
		}
	}
	if n < len(out) {
		return "", errors.New("auth: simple token randomness: reader yields no usable bytes")
	}
	return string(out[:]) + "." + strconv.FormatUint(index, 10), nil
}

// ParseSimpleToken checks a simple token's form (16 letters, ".", a decimal
// index) without looking it up; a malformed token is ErrInvalidAuthToken.
func ParseSimpleToken(tok string) error {
	_, err := SimpleTokenIndex(tok)
	return err
}

// SimpleTokenIndex returns the raft index in a well-formed simple token. A
// member that has not applied that index yet has not registered the token:
// like etcd (isValidSimpleToken waits for the index), the server waits for
// it before looking the token up.
func SimpleTokenIndex(tok string) (uint64, error) {
	prefix, idx, ok := strings.Cut(tok, ".")
	if !ok || len(prefix) != simpleTokenPrefixLen || idx == "" || len(idx) > 20 {
		return 0, ErrInvalidAuthToken
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return 0, ErrInvalidAuthToken
		}
	}
	for i := 0; i < len(idx); i++ {
		if idx[i] < '0' || idx[i] > '9' {
			return 0, ErrInvalidAuthToken
		}
	}
	n, err := strconv.ParseUint(idx, 10, 64)
	if err != nil {
		return 0, ErrInvalidAuthToken
	}
	return n, nil
}

// SimpleTokens is one member's table of simple tokens. A token lives TTL
// after its last use: Register and each successful Lookup set its expiry to
// now+TTL (etcd's simpleTokenTTLKeeper); a token is dead once now is after
// its expiry. Dead tokens are dropped when looked up, by Sweep, and by
// Register whenever the table has doubled since the last sweep, so memory
// stays within twice the live tokens (plus minSweepAt) even if Sweep is
// never called.
//
// It is not replicated state: apply calls Register, and since every member
// applies the same commands every member knows every token. It is safe for
// concurrent use (one mutex; no method blocks).
type SimpleTokens struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	tokens  map[string]*simpleToken
	byUser  map[string]map[string]struct{}
	sweepAt int
}

type simpleToken struct {
	sub     Subject
	expires time.Time
}

// NewSimpleTokens returns an empty table. ttl <= 0 means DefaultSimpleTTL
// (etcd does the same); now is the member's clock (time.Now in production).
func NewSimpleTokens(ttl time.Duration, now func() time.Time) *SimpleTokens {
	if ttl <= 0 {
		ttl = DefaultSimpleTTL
	}
	if now == nil {
		now = time.Now
	}
	return &SimpleTokens{
		ttl:     ttl,
		now:     now,
		tokens:  make(map[string]*simpleToken),
		byUser:  make(map[string]map[string]struct{}),
		sweepAt: minSweepAt,
	}
}

// Register records token for sub, replacing an earlier registration of the
// same token (a replayed authenticate command after a restart).
func (t *SimpleTokens) Register(token string, sub Subject) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.tokens[token]; ok {
		t.unindexLocked(token, old.sub.User)
	}
	t.tokens[token] = &simpleToken{sub: sub, expires: now.Add(t.ttl)}
	set := t.byUser[sub.User]
	if set == nil {
		set = make(map[string]struct{})
		t.byUser[sub.User] = set
	}
	set[token] = struct{}{}
	if len(t.tokens) >= t.sweepAt {
		t.sweepLocked(now)
		t.sweepAt = max(2*len(t.tokens), minSweepAt)
	}
}

// Lookup returns the subject of a live token and extends its life to
// now+TTL. A dead token is dropped.
func (t *SimpleTokens) Lookup(token string) (Subject, bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tk, ok := t.tokens[token]
	if !ok {
		return Subject{}, false
	}
	if now.After(tk.expires) {
		t.deleteLocked(token, tk)
		return Subject{}, false
	}
	tk.expires = now.Add(t.ttl)
	return tk.sub, true
}

// InvalidateUser drops every token of user (after its deletion or password
// change, as etcd does).
func (t *SimpleTokens) InvalidateUser(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for token := range t.byUser[user] {
		delete(t.tokens, token)
	}
	delete(t.byUser, user)
}

// Clear drops every token (auth disabled, as etcd's tokenSimple.disable).
func (t *SimpleTokens) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tokens = make(map[string]*simpleToken)
	t.byUser = make(map[string]map[string]struct{})
	t.sweepAt = minSweepAt
}

// Sweep drops every dead token. The server calls it periodically (etcd
// sweeps every second).
func (t *SimpleTokens) Sweep() {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
}

// Len returns the number of tokens held, dead ones not yet dropped included.
func (t *SimpleTokens) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.tokens)
}

func (t *SimpleTokens) sweepLocked(now time.Time) {
	for token, tk := range t.tokens {
		if now.After(tk.expires) {
			t.deleteLocked(token, tk)
		}
	}
}

func (t *SimpleTokens) deleteLocked(token string, tk *simpleToken) {
	delete(t.tokens, token)
	t.unindexLocked(token, tk.sub.User)
}

func (t *SimpleTokens) unindexLocked(token, user string) {
	set := t.byUser[user]
	delete(set, token)
	if len(set) == 0 {
		delete(t.byUser, user)
	}
}
