package check

import (
	"slices"
)

// Committed is the store's committed history as a member holds it at the
// end of a run, read back from its revisioned store: every change from
// CompactRev on, and the store's revision.
type Committed struct {
	// Changes in revision order; within a revision, in write order.
	Changes []Change
	// Rev is the store's current revision (at least the last change's).
	Rev int64
	// CompactRev is the revision below which history is gone; operations
	// at older revisions cannot be judged against it and are skipped.
	CompactRev int64
}

// keyHistory indexes Committed by key for point-in-time lookups.
type keyHistory struct {
	byKey map[string][]Change
	c     *Committed
}

func indexCommitted(c *Committed) keyHistory {
	h := keyHistory{byKey: map[string][]Change{}, c: c}
	for _, ch := range c.Changes {
		h.byKey[ch.Key] = append(h.byKey[ch.Key], ch)
	}
	return h
}

// at returns key's state at revision rev: whether it exists and its value.
func (h keyHistory) at(key string, rev int64) (bool, string) {
	chs := h.byKey[key]
	i, _ := slices.BinarySearchFunc(chs, rev+1, func(c Change, r int64) int { return compareInt64(c.Rev, r) })
	// chs[i-1] is the last change at or below rev.
	if i == 0 || chs[i-1].Delete {
		return false, ""
	}
	return true, chs[i-1].Value
}

// changeAt returns the change to key made at exactly rev, if any.
func (h keyHistory) changeAt(key string, rev int64) (Change, bool) {
	chs := h.byKey[key]
	i, found := slices.BinarySearchFunc(chs, rev, func(c Change, r int64) int { return compareInt64(c.Rev, r) })
	if !found {
		return Change{}, false
	}
	// Several changes to one key in one revision cannot happen (a txn
	// rejects duplicate keys); take the last if they did.
	for i+1 < len(chs) && chs[i+1].Rev == rev {
		i++
	}
	return chs[i], true
}

// Reads checks every answered read against the committed history: a Get
// (linearizable or serializable) that answered at revision R must have seen
// the key's state at R; a CAS that did not succeed at R must have found the
// comparison false at R; a Delete that deleted nothing at R must have found
// the key absent. An answer at a revision the history never reached means
// the writes it saw were lost. This is how etcd's robustness tests judge
// serializable reads, which linearizability does not cover.
func Reads(ops []Op, c *Committed) Report {
	r := newReport("reads")
	h := indexCommitted(c)
	for i := range ops {
		o := &ops[i]
		if o.Status != OK || o.Acknowledged() || o.Kind == Put {
			continue
		}
		if o.Rev < c.CompactRev {
			continue
		}
		if o.Rev > c.Rev {
			r.fail("%s (client %d, on %s) answered at revision %d, beyond the committed history's %d: what it saw was lost", o, o.Client, o.Member, o.Rev, c.Rev)
			continue
		}
		exists, value := h.at(o.Key, o.Rev)
		switch o.Kind {
		case Get:
			if o.Found != exists || (exists && o.Got != value) {
				r.fail("%s (client %d, on %s) but the committed history has %s at revision %d", o, o.Client, o.Member, kvState{exists, value}, o.Rev)
			}
		case CAS:
			holds := (o.ExpectAbsent && !exists) || (!o.ExpectAbsent && exists && value == o.Expect)
			if holds {
				r.fail("%s (client %d, on %s) failed although the committed history has %s at revision %d", o, o.Client, o.Member, kvState{exists, value}, o.Rev)
			}
		case Delete:
			if exists {
				r.fail("%s (client %d, on %s) deleted nothing although the committed history has %s at revision %d", o, o.Client, o.Member, kvState{exists, value}, o.Rev)
			}
		}
	}
	return r
}

// Durability checks that every acknowledged write is in the committed
// history at the revision its response named, with the value it wrote (or
// as a deletion). A missing or different change means an acknowledged write
// was lost or overwritten in place — etcd #14370's "revision went
// backwards after a crash".
func Durability(ops []Op, c *Committed) Report {
	r := newReport("durability")
	h := indexCommitted(c)
	for i := range ops {
		o := &ops[i]
		if !o.Acknowledged() || o.Rev < c.CompactRev {
			continue
		}
		if o.Rev > c.Rev {
			r.fail("acknowledged %s (client %d, on %s) is lost: its revision %d is beyond the committed history's %d", o, o.Client, o.Member, o.Rev, c.Rev)
			continue
		}
		ch, ok := h.changeAt(o.Key, o.Rev)
		want := Change{Rev: o.Rev, Key: o.Key, Value: o.Value, Delete: o.Kind == Delete}
		switch {
		case !ok:
			r.fail("acknowledged %s (client %d, on %s) is lost: no change to %q at revision %d", o, o.Client, o.Member, o.Key, o.Rev)
		case ch != want:
			r.fail("acknowledged %s (client %d, on %s) is lost: revision %d holds %s instead", o, o.Client, o.Member, o.Rev, ch)
		}
	}
	return r
}

// Revisions checks the real-time order of revisions: an operation that
// started after another finished must answer at a revision at least as high
// (a store's revision never goes backwards for linearizable clients), and
// strictly higher when it wrote. Serializable reads and unanswered
// operations are not judged.
func Revisions(ops []Op) Report {
	r := newReport("revisions")
	var judged []*Op
	for i := range ops {
		o := &ops[i]
		if o.Status == OK && !(o.Kind == Get && o.Serializable) {
			judged = append(judged, o)
		}
	}
	byReturn := slices.Clone(judged)
	slices.SortStableFunc(byReturn, func(a, b *Op) int { return compareInt64(a.Return, b.Return) })
	byCall := slices.Clone(judged)
	slices.SortStableFunc(byCall, func(a, b *Op) int { return compareInt64(a.Call, b.Call) })
	var (
		maxRev int64
		maxOp  *Op
		j      int
	)
	for _, b := range byCall {
		for j < len(byReturn) && byReturn[j].Return < b.Call {
			if byReturn[j].Rev > maxRev {
				maxRev, maxOp = byReturn[j].Rev, byReturn[j]
			}
			j++
		}
		if maxOp == nil {
			continue
		}
		switch {
		case b.Rev < maxRev:
			r.fail("%s (client %d, on %s, call %d) answered at revision %d after %s (client %d, on %s) had returned at %d: revision went backwards",
				b, b.Client, b.Member, b.Call, b.Rev, maxOp, maxOp.Client, maxOp.Member, maxOp.Return)
		case b.Acknowledged() && b.Rev == maxRev:
			r.fail("%s (client %d, on %s, call %d) wrote at revision %d, already used by %s (client %d, on %s) which had returned at %d",
				b, b.Client, b.Member, b.Call, b.Rev, maxOp, maxOp.Client, maxOp.Member, maxOp.Return)
		}
	}
	return r
}

// AppliedOnce checks that no write took effect twice: every value put
// appears once in the committed history. The workload writes unique values,
// so a second appearance is one request applied twice — a retried or
// duplicated proposal the state machine did not recognise.
func AppliedOnce(c *Committed) Report {
	r := newReport("applied-once")
	first := map[string]Change{}
	for _, ch := range c.Changes {
		if ch.Delete {
			continue
		}
		if prev, ok := first[ch.Value]; ok {
			r.fail("value %q written twice: %s and %s", ch.Value, prev, ch)
			continue
		}
		first[ch.Value] = ch
	}
	return r
}
