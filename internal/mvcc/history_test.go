package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// shortEvents renders events compactly: TYPE key=value@mod[<prev value@mod].
func shortEvents(evs []Event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch e.Type {
		case EventPut:
			fmt.Fprintf(&b, "PUT %s=%s@%d/%d/%d", e.KV.Key, e.KV.Value, e.KV.CreateRevision, e.KV.ModRevision, e.KV.Version)
		default:
			fmt.Fprintf(&b, "DEL %s@%d", e.KV.Key, e.KV.ModRevision)
		}
		if e.PrevKV != nil {
			fmt.Fprintf(&b, "<%s@%d/%d/%d", e.PrevKV.Value, e.PrevKV.CreateRevision, e.PrevKV.ModRevision, e.PrevKV.Version)
		}
	}
	return b.String()
}

func TestEvents(t *testing.T) {
	// fixture plus one txn writing in non-key order: rev 10 puts z, then a,
	// then deletes b.
	build := func() *Store {
		s := fixture()
		w := s.Write()
		w.Put([]byte("z"), []byte("1"), 0)
		w.Put([]byte("a"), []byte("3"), 0)
		w.DeleteRange([]byte("b"), nil)
		w.End()
		return s
	}
	all := "\x00"
	tests := []struct {
		name      string
		key, end  string
		from, to  int64
		limit     int
		prevKV    bool
		compact   int64
		want      string
		wantNext  int64
		wantError error
	}{
		{name: "everything", key: all, end: all, from: 1, to: 10, wantNext: 11,
			want: "PUT a=1@2/2/1 PUT b=1@3/3/1 PUT a=2@2/4/2 PUT c=1@5/5/1 DEL b@6 PUT b=2@7/7/1 PUT d=1@8/8/1 DEL c@9 DEL d@9 PUT z=1@10/10/1 PUT a=3@2/10/3 DEL b@10"},
		{name: "write order within a revision", key: all, end: all, from: 10, to: 10, wantNext: 11,
			want: "PUT z=1@10/10/1 PUT a=3@2/10/3 DEL b@10"},
		{name: "prev kv", key: all, end: all, from: 9, to: 10, prevKV: true, wantNext: 11,
			want: "DEL c@9<1@5/5/1 DEL d@9<1@8/8/1 PUT z=1@10/10/1 PUT a=3@2/10/3<2@2/4/2 DEL b@10<2@7/7/1"},
		{name: "single key", key: "b", from: 1, to: 10, prevKV: true, wantNext: 11,
			want: "PUT b=1@3/3/1 DEL b@6<1@3/3/1 PUT b=2@7/7/1 DEL b@10<2@7/7/1"},
		{name: "range", key: "b", end: "d", from: 4, to: 9, wantNext: 10,
			want: "PUT c=1@5/5/1 DEL b@6 PUT b=2@7/7/1 DEL c@9"},
		{name: "from key", key: "c", end: all, from: 1, to: 10, wantNext: 11,
			want: "PUT c=1@5/5/1 PUT d=1@8/8/1 DEL c@9 DEL d@9 PUT z=1@10/10/1"},
		{name: "window clamped to rev", key: "a", from: 3, to: 100, wantNext: 11,
			want: "PUT a=2@2/4/2 PUT a=3@2/10/3"},
		{name: "empty window", key: all, end: all, from: 11, to: 20, wantNext: 11, want: ""},
		{name: "limit cuts at a revision boundary", key: all, end: all, from: 8, to: 10, limit: 2, wantNext: 9,
			want: "PUT d=1@8/8/1"},
		{name: "limit exactly whole revisions", key: all, end: all, from: 8, to: 10, limit: 3, wantNext: 10,
			want: "PUT d=1@8/8/1 DEL c@9 DEL d@9"},
		{name: "first revision larger than limit", key: all, end: all, from: 9, to: 10, limit: 1, wantNext: 10,
			want: "DEL c@9 DEL d@9"},
		{name: "compacted", key: all, end: all, from: 4, to: 10, compact: 5, wantError: ErrCompacted},
		{name: "from the compaction revision", key: all, end: all, from: 6, to: 7, compact: 6, wantNext: 8,
			want: "DEL b@6 PUT b=2@7/7/1"},
		{name: "delete at the compaction revision keeps its tombstone", key: all, end: all, from: 9, to: 9, compact: 9, wantNext: 10,
			want: "DEL c@9 DEL d@9"},
		{name: "prev kv lost at the compaction revision", key: "b", from: 6, to: 7, compact: 6, prevKV: true, wantError: ErrCompacted},
		{name: "prev kv not needed at the compaction revision", key: "c", from: 5, to: 10, compact: 5, prevKV: true, wantNext: 11,
			want: "PUT c=1@5/5/1 DEL c@9<1@5/5/1"},
		{name: "prev kv after the compaction revision", key: "b", from: 7, to: 10, compact: 6, prevKV: true, wantNext: 11,
			want: "PUT b=2@7/7/1 DEL b@10<2@7/7/1"},
	}
	for _, tt := range tests {
		s := build()
		if tt.compact > 0 {
			if err := s.Compact(tt.compact); err != nil {
				t.Fatalf("%s: Compact(%d) = %v", tt.name, tt.compact, err)
			}
		}
		var end []byte
		if tt.end != "" {
			end = []byte(tt.end)
		}
		evs, next, err := s.Events([]byte(tt.key), end, tt.from, tt.to, tt.limit, tt.prevKV)
		if !errors.Is(err, tt.wantError) {
			t.Errorf("%s: Events(%q, %q, %d, %d, %d, %v) error = %v, want %v", tt.name, tt.key, tt.end, tt.from, tt.to, tt.limit, tt.prevKV, err, tt.wantError)
			continue
		}
		if err != nil {
			continue
		}
		if got := shortEvents(evs); got != tt.want || next != tt.wantNext {
			t.Errorf("%s: Events(%q, %q, %d, %d, %d, %v) =\n  %s, next %d\nwant\n  %s, next %d", tt.name, tt.key, tt.end, tt.from, tt.to, tt.limit, tt.prevKV, got, next, tt.want, tt.wantNext)
		}
	}
}

// TestCompactDropsOldTombstone checks that the tombstone kept at one
// compaction revision goes at the next compaction.
func TestCompactDropsOldTombstone(t *testing.T) {
	s := fixture()
	if err := s.Compact(9); err != nil {
		t.Fatal(err)
	}
	if n := s.tree.Len(); n != 4 {
		t.Fatalf("after Compact(9): %d index entries, want 4", n)
	}
	put(s, "e", "1")
	if err := s.Compact(10); err != nil {
		t.Fatal(err)
	}
	if n := s.tree.Len(); n != 3 { // a, b, e
		t.Errorf("after Compact(10): %d index entries, want 3", n)
	}
	if s.Size() != recomputeSize(s) {
		t.Errorf("Size() = %d, recomputed %d", s.Size(), recomputeSize(s))
	}
}

// TestEventsModel checks Events against the events the write transactions
// returned, over random writes, compactions and windows, including after a
// snapshot round trip (which must keep the write order within a revision).
func TestEventsModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s := NewStore()
	var log []Event // every event ever written, in write order
	keys := []string{"a", "b", "c", "d", "e", "f"}
	for step := 0; step < 400; step++ {
		w := s.Write()
		for range 1 + rng.IntN(4) {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(3) == 0 {
				end := []byte(nil)
				if rng.IntN(2) == 0 {
					end = []byte(keys[rng.IntN(len(keys))] + "z")
				}
				// One write per key per txn, as apply guarantees.
				if !writtenIn(w, k, end) {
					w.DeleteRange([]byte(k), end)
				}
				continue
			}
			if !writtenIn(w, k, nil) {
				w.Put([]byte(k), []byte(fmt.Sprint(step)), 0)
			}
		}
		log = append(log, w.End()...)
		if rng.IntN(25) == 0 && s.Rev() > s.CompactRev()+1 {
			c := s.CompactRev() + 1 + rng.Int64N(s.Rev()-s.CompactRev())
			if err := s.Compact(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	restored := NewStore()
	if err := restored.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, restored} {
		for range 300 {
			key := keys[rng.IntN(len(keys))]
			var end []byte
			switch rng.IntN(3) {
			case 1:
				end = []byte("\x00")
			case 2:
				end = []byte(keys[rng.IntN(len(keys))] + "z")
			}
			from := st.CompactRev() + rng.Int64N(20)
			to := from + rng.Int64N(40)
			limit := rng.IntN(6)
			prevKV := rng.IntN(2) == 0
			got, next, err := st.Events([]byte(key), end, from, to, limit, prevKV)
			want, wantNext, wantErr := modelEvents(log, key, end, from, min(to, st.Rev()), limit, prevKV, st.CompactRev())
			if !errors.Is(err, wantErr) {
				t.Fatalf("Events(%q, %q, %d, %d, %d, %v) error %v, want %v", key, end, from, to, limit, prevKV, err, wantErr)
			}
			if err != nil {
				continue
			}
			if shortEvents(got) != shortEvents(want) || next != wantNext {
				t.Fatalf("Events(%q, %q, %d, %d, %d, %v) =\n  %s next %d\nwant\n  %s next %d", key, end, from, to, limit, prevKV, shortEvents(got), next, shortEvents(want), wantNext)
			}
		}
	}
}

// writtenIn reports whether the txn already wrote a key in [key, end).
func writtenIn(w *WriteTxn, key string, end []byte) bool {
	for _, e := range w.events {
		if inRange(string(e.KV.Key), key, end) {
			return true
		}
	}
	return false
}

func inRange(k, key string, end []byte) bool {
	switch {
	case len(end) == 0:
		return k == key
	case len(end) == 1 && end[0] == 0:
		return k >= key
	}
	return k >= key && k < string(end)
}

// modelEvents is the specification of Events over the log of written events.
func modelEvents(log []Event, key string, end []byte, from, to int64, limit int, prevKV bool, compactRev int64) ([]Event, int64, error) {
	from = max(from, 1)
	if from < compactRev {
		return nil, 0, ErrCompacted
	}
	var out []Event
	for _, e := range log {
		rev := e.KV.ModRevision
		if rev < from || rev > to || !inRange(string(e.KV.Key), key, end) {
			continue
		}
		if prevKV && rev == compactRev && e.PrevKV != nil {
			return nil, 0, ErrCompacted
		}
		if !prevKV {
			e.PrevKV = nil
		}
		out = append(out, e)
	}
	next := to + 1
	if from > to {
		next = from
	}
	if limit > 0 && len(out) > limit {
		n := 0
		for n < len(out) {
			r := out[n].KV.ModRevision
			m := n
			for m < len(out) && out[m].KV.ModRevision == r {
				m++
			}
			if m > limit && n > 0 {
				break
			}
			n = m
			if n >= limit {
				break
			}
		}
		if n < len(out) {
			next = out[n].KV.ModRevision
		}
		out = out[:n]
	}
	return out, next, nil
}
