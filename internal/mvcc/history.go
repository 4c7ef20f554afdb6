package mvcc

import (
	"cmp"
	"slices"
)

// histEvent is an event being collected by Events with its sort key.
type histEvent struct {
	sub int32
	ev  Event
}

// Events returns every change with fromRev <= revision <= toRev to a key in
// [key, end) (end conventions as in Range), ordered by revision and, within a
// revision, in the order the transaction wrote them: exactly the events the
// write transactions of those revisions returned from End, restricted to the
// range. fromRev < 1 reads from 1; toRev above Rev reads to Rev.
//
// next is the first revision not covered: toRev+1 when everything fitted.
// limit > 0 bounds the number of events, but only at revision boundaries so
// that a revision is never split: the answer holds whole revisions totalling
// at most limit events, or the single first revision when that alone exceeds
// limit, and next is the first revision left out.
//
// With prevKV, each event carries the version it replaced (nil for a create),
// as Result.Events do. Without it, PrevKV is nil.
//
// Compaction: the history of a revision r is complete iff r >= CompactRev
// (compaction keeps what was written at the compaction revision itself, see
// Compact), so fromRev < CompactRev fails with ErrCompacted. With prevKV, the
// value replaced by a change at exactly CompactRev is gone, so such a change
// in the answer fails with ErrCompacted too rather than arriving without its
// prev_kv (etcd silently omits it).
//
// Cost: O(K·log V + E·log E) for K keys in the range, V versions per key and
// E events in the window; the caller bounds the window. It holds the read
// lock throughout and may run concurrently with other readers.
func (s *Store) Events(key, end []byte, fromRev, toRev int64, limit int, prevKV bool) (events []Event, next int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fromRev = max(fromRev, 1)
	toRev = min(toRev, s.rev)
	if fromRev < s.compactRev {
		return nil, 0, ErrCompacted
	}
	if fromRev > toRev {
		return nil, fromRev, nil
	}
	var hs []histEvent
	var lost bool
	s.ascendRangeLocked(key, end, func(ki keyIndex) bool {
		vs := ki.versions()
		j, _ := slices.BinarySearchFunc(vs, fromRev, func(v version, rev int64) int { return cmp.Compare(v.mod, rev) })
		for ; j < len(vs) && vs[j].mod <= toRev; j++ {
			v := &vs[j]
			h := histEvent{sub: v.sub}
			if v.tombstone() {
				h.ev = Event{Type: EventDelete, KV: KeyValue{Key: ki.key(), ModRevision: v.mod}}
			} else {
				h.ev = Event{Type: EventPut, KV: ki.kv(j)}
			}
			if prevKV {
				// A delete always replaced a live version; a put did unless
				// it created the key.
				needPrev := v.tombstone() || v.ver > 1
				switch {
				case needPrev && j == 0:
					// Only possible for a change at CompactRev: anything
					// later still has its predecessor (the newest version at
					// or below CompactRev survives unless it is a tombstone,
					// and a change after a tombstone is a create).
					lost = true
					return false
				case needPrev:
					p := ki.kv(j - 1)
					h.ev.PrevKV = &p
				}
			}
			hs = append(hs, h)
		}
		return true
	})
	if lost {
		return nil, 0, ErrCompacted
	}
	slices.SortFunc(hs, func(a, b histEvent) int {
		if c := cmp.Compare(a.ev.KV.ModRevision, b.ev.KV.ModRevision); c != 0 {
			return c
		}
		if c := cmp.Compare(a.sub, b.sub); c != 0 {
			return c
		}
		// Equal subs happen only for stores restored from a format without
		// sub-revisions; key order keeps the answer deterministic.
		return slices.Compare(a.ev.KV.Key, b.ev.KV.Key)
	})
	next = toRev + 1
	if limit > 0 && len(hs) > limit {
		// Back up to the start of the revision that does not fit whole.
		n := limit
		for n > 0 && hs[n-1].ev.KV.ModRevision == hs[limit].ev.KV.ModRevision {
			n--
		}
		if n == 0 { // the first revision alone exceeds limit: take all of it
			for n < len(hs) && hs[n].ev.KV.ModRevision == hs[0].ev.KV.ModRevision {
				n++
			}
		}
		if n < len(hs) {
			next = hs[n].ev.KV.ModRevision
		}
		hs = hs[:n]
	}
	events = make([]Event, len(hs))
	for i := range hs {
		events[i] = hs[i].ev
	}
	return events, next, nil
}
