package check

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FencedWrite is one attempt by a lock holder to write to the guarded
// resource: a key whose value names the fencing token of its last writer,
// written by a transaction that refuses a token lower than the one stored.
// The token is the holder's lock key's create revision, which grows with
// every acquisition.
type FencedWrite struct {
	Client int
	Token  int64
	// Value is what the write stores (FenceValue(Token, Client, n)):
	// unique, and ordered like the token.
	Value        string
	Call, Return int64
	Status       Status
	// Accepted: the guard took the write (meaningful when Status is OK).
	Accepted bool
	// Rev is the revision of the response header: the write's revision
	// when accepted, the revision it was refused at otherwise.
	Rev int64
}

// FenceValue is the guarded value for token, client and sequence number n.
// The token is zero-padded so that byte order (the only order an etcd
// compare knows) is numeric order; FenceBound(token) sorts after every value
// of that token and before every higher one.
func FenceValue(token int64, client, n int) string {
	return fmt.Sprintf("%020d/c%d/%d", token, client, n)
}

// FenceBound is the exclusive upper bound of the values of token: a guard
// that writes only when the stored value is below FenceBound(token) accepts
// a stored token up to its own and refuses a higher one.
func FenceBound(token int64) string { return fmt.Sprintf("%020d/~", token) }

// ParseFenceValue returns the token and client of a FenceValue.
func ParseFenceValue(v string) (token int64, client int, ok bool) {
	tok, rest, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	t, err := strconv.ParseInt(tok, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	c, _, _ := strings.Cut(rest, "/")
	if !strings.HasPrefix(c, "c") {
		return t, -1, true
	}
	n, err := strconv.Atoi(c[1:])
	if err != nil {
		return t, -1, true
	}
	return t, n, true
}

// Fencing judges lock safety at the guarded resource key: mutual exclusion
// as the resource saw it. In the committed history of key, tokens never go
// down and a token is only ever written by one client (a lower token
// accepted after a higher one, or two clients writing under one token, is
// two holders acting at once). Every acknowledged fenced write is in the
// history at its revision with its value, and every refused one was refused
// because a higher token was stored at the revision it was refused at.
// Values that do not parse as FenceValue (an initial value) count as token
// 0 of no client.
func Fencing(writes []FencedWrite, c *Committed, key string) Report {
	r := newReport("fencing")
	h := indexCommitted(c)
	var (
		lastTok    int64
		lastClient = -1
		last       Change
	)
	for _, ch := range h.byKey[key] {
		if ch.Rev < c.CompactRev {
			continue
		}
		if ch.Delete {
			r.fail("guarded key %q deleted at revision %d: the resource lost its fence", key, ch.Rev)
			continue
		}
		tok, client, ok := ParseFenceValue(ch.Value)
		if !ok {
			tok, client = 0, -1
		}
		switch {
		case tok < lastTok:
			r.fail("lock holder c%d's write with token %d accepted at revision %d after c%d's with token %d at revision %d: two holders at once",
				client, tok, ch.Rev, lastClient, lastTok, last.Rev)
		case tok == lastTok && tok != 0 && client != lastClient:
			r.fail("token %d written by c%d at revision %d and by c%d at revision %d: one token, two holders",
				tok, lastClient, last.Rev, client, ch.Rev)
		}
		if tok >= lastTok {
			lastTok, lastClient, last = tok, client, ch
		}
	}
	sorted := slices.Clone(writes)
	slices.SortStableFunc(sorted, func(a, b FencedWrite) int { return compareInt64(a.Call, b.Call) })
	for _, w := range sorted {
		if w.Status != OK || w.Rev < c.CompactRev {
			continue
		}
		if w.Rev > c.Rev {
			r.fail("fenced write %s by c%d answered at revision %d, beyond the committed history's %d", w.Value, w.Client, w.Rev, c.Rev)
			continue
		}
		if w.Accepted {
			ch, ok := h.changeAt(key, w.Rev)
			if !ok || ch.Delete || ch.Value != w.Value {
				r.fail("acknowledged fenced write %s by c%d is lost: revision %d holds %s", w.Value, w.Client, w.Rev, describeChange(ch, ok))
			}
			continue
		}
		exists, v := h.at(key, w.Rev)
		tok, _, ok := ParseFenceValue(v)
		if !exists || !ok || tok <= w.Token {
			r.fail("fenced write with token %d by c%d refused at revision %d although the guard held %s", w.Token, w.Client, w.Rev, kvState{exists, v})
		}
	}
	return r
}
