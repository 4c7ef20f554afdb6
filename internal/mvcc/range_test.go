package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// checkTombs fails unless s.tombs holds exactly the keys whose newest
// version is a tombstone: the invariant the counted Range relies on.
func checkTombs(t *testing.T, s *Store) {
	t.Helper()
	var want, got []string
	s.tree.Scan(func(ki keyIndex) bool {
		if ki.newest().tombstone() {
			want = append(want, string(ki.key()))
		}
		return true
	})
	s.tombs.Scan(func(k []byte) bool {
		got = append(got, string(k))
		return true
	})
	if !slices.Equal(got, want) {
		t.Fatalf("tombstone index = %q, want %q", got, want)
	}
}

func TestRangeCountEdges(t *testing.T) {
	empty := NewStore()
	// a b c live, bb deleted (a tombstone inside the range), d deleted.
	s := NewStore()
	for _, k := range []string{"a", "b", "bb", "c", "d"} {
		put(s, k, "1")
	}
	del(s, "bb", "")
	del(s, "d", "")
	tests := []struct {
		name     string
		s        *Store
		key, end string
		o        RangeOptions
		want     string // keys returned, space-separated
		count    int
	}{
		{name: "empty store", s: empty, key: "a", end: "z", count: 0},
		{name: "empty store from key", s: empty, key: "\x00", end: "\x00", count: 0},
		{name: "empty store count only", s: empty, key: "a", end: "\x00", o: RangeOptions{CountOnly: true}, count: 0},
		{name: "empty store single key", s: empty, key: "a", count: 0},
		{name: "all", s: s, key: "\x00", end: "\x00", want: "a b c", count: 3},
		{name: "from empty key", s: s, key: "", end: "\x00", want: "a b c", count: 3},
		{name: "all count only", s: s, key: "\x00", end: "\x00", o: RangeOptions{CountOnly: true}, count: 3},
		{name: "limit skips tombstone", s: s, key: "a", end: "z", o: RangeOptions{Limit: 2}, want: "a b", count: 3},
		{name: "limit past tombstone", s: s, key: "b", end: "z", o: RangeOptions{Limit: 2}, want: "b c", count: 2},
		{name: "limit above count", s: s, key: "a", end: "z", o: RangeOptions{Limit: 10}, want: "a b c", count: 3},
		{name: "limit and count only", s: s, key: "a", end: "z", o: RangeOptions{Limit: 1, CountOnly: true}, count: 3},
		{name: "past the end", s: s, key: "e", end: "z", count: 0},
		{name: "past the end from key", s: s, key: "e", end: "\x00", count: 0},
		{name: "only tombstones", s: s, key: "bb", end: "bc", count: 0},
		{name: "only tombstones from key", s: s, key: "d", end: "\x00", count: 0},
		{name: "key equals end", s: s, key: "b", end: "b", count: 0},
		{name: "key after end", s: s, key: "c", end: "a", count: 0},
		{name: "end is an exclusive key", s: s, key: "a", end: "c", want: "a b", count: 2},
		{name: "end before first key", s: s, key: "\x00", end: "a", count: 0},
		{name: "single live key", s: s, key: "c", want: "c", count: 1},
		{name: "single tombstone", s: s, key: "bb", count: 0},
		{name: "single absent key", s: s, key: "ba", count: 0},
		{name: "single key count only", s: s, key: "a", o: RangeOptions{CountOnly: true}, count: 1},
		{name: "current revision given", s: s, key: "a", end: "z", o: RangeOptions{Rev: 8, Limit: 1}, want: "a", count: 3},
		{name: "historical", s: s, key: "a", end: "z", o: RangeOptions{Rev: 6, Limit: 1}, want: "a", count: 5},
		{name: "historical count only", s: s, key: "a", end: "z", o: RangeOptions{Rev: 7, CountOnly: true}, count: 4},
	}
	for _, tt := range tests {
		got, err := tt.s.Range([]byte(tt.key), []byte(tt.end), tt.o)
		if err != nil {
			t.Errorf("%s: Range(%q, %q, %+v) error %v", tt.name, tt.key, tt.end, tt.o, err)
			continue
		}
		var keys []string
		for _, kv := range got.KVs {
			keys = append(keys, string(kv.Key))
		}
		if k := fmt.Sprint(keys); k != fmt.Sprint(strings.Fields(tt.want)) || got.Count != tt.count {
			t.Errorf("%s: Range(%q, %q, %+v) = %s count %d, want %s count %d",
				tt.name, tt.key, tt.end, tt.o, k, got.Count, fmt.Sprint(strings.Fields(tt.want)), tt.count)
		}
	}
}

// rangeModel is a brute-force keyspace at one revision.
type rangeModel map[string]KeyValue

// answer serves a Range from the model with Range's end conventions.
func (m rangeModel) answer(key, end string, o RangeOptions) (kvs []KeyValue, count int) {
	var keys []string
	for k := range m {
		switch {
		case end == "":
			if k == key {
				keys = append(keys, k)
			}
		case end == "\x00":
			if k >= key {
				keys = append(keys, k)
			}
		case k >= key && k < end:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !o.CountOnly && (o.Limit <= 0 || int64(len(kvs)) < o.Limit) {
			kvs = append(kvs, m[k])
		}
	}
	return kvs, len(keys)
}

func (m rangeModel) clone() rangeModel {
	c := make(rangeModel, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// rangeReader is what Store, ReadTxn and WriteTxn have in common.
type rangeReader interface {
	Range(key, end []byte, o RangeOptions) (RangeResult, error)
}

var (
	modelKeys   = []string{"\x00", "a", "b", "ba", "c", "d", "e", "f"}
	modelStarts = []string{"", "\x00", "a", "b", "ba", "bz", "c", "f", "z"}
	modelEnds   = []string{"", "", "\x00", "\x00", "a", "b", "ba", "c", "cz", "e", "g", "z"}
)

// checkRanges compares random Ranges on r, whose current revision is cur,
// against history (history[rev] is the keyspace at rev; history[cur] is the
// current one), at the current revision and at older ones down to compactRev.
func checkRanges(t *testing.T, rng *rand.Rand, what string, r rangeReader, history []rangeModel, cur, compactRev int64) {
	t.Helper()
	for range 12 {
		key := modelStarts[rng.IntN(len(modelStarts))]
		end := modelEnds[rng.IntN(len(modelEnds))]
		o := RangeOptions{CountOnly: rng.IntN(4) == 0}
		if rng.IntN(2) == 0 {
			o.Limit = rng.Int64N(4)
		}
		switch rng.IntN(4) {
		case 0: // current, implicitly
		case 1:
			o.Rev = cur
		default:
			o.Rev = max(1, compactRev) + rng.Int64N(cur-max(1, compactRev)+1)
		}
		var endb []byte
		if end != "" {
			endb = []byte(end)
		}
		got, err := r.Range([]byte(key), endb, o)
		if err != nil {
			t.Fatalf("%s: Range(%q, %q, %+v) at rev %d: %v", what, key, end, o, cur, err)
		}
		at := cur
		if o.Rev > 0 {
			at = o.Rev
		}
		wantKVs, wantCount := history[at].answer(key, end, o)
		if short(got.KVs) != short(wantKVs) || got.Count != wantCount || got.Rev != cur {
			t.Fatalf("%s: Range(%q, %q, %+v) = %q count %d rev %d, want %q count %d rev %d",
				what, key, end, o, short(got.KVs), got.Count, got.Rev, short(wantKVs), wantCount, cur)
		}
	}
	if _, err := r.Range([]byte("a"), nil, RangeOptions{Rev: cur + 1}); !errors.Is(err, ErrFutureRev) {
		t.Fatalf("%s: Range at %d (current %d) error %v, want ErrFutureRev", what, cur+1, cur, err)
	}
	if compactRev > 1 {
		if _, err := r.Range([]byte("a"), []byte("\x00"), RangeOptions{Rev: compactRev - 1, CountOnly: true}); !errors.Is(err, ErrCompacted) {
			t.Fatalf("%s: Range at %d (compacted %d) error %v, want ErrCompacted", what, compactRev-1, compactRev, err)
		}
	}
}

// TestRangeCountModel drives random transactions of puts, deletes and
// delete-ranges (several writes per key per transaction included), and
// compactions, over a small alphabet, and checks counted, limited, from-key
// and single-key Ranges at the current and at older revisions against a
// brute-force model: on the store, inside write transactions (which read
// their own writes at their own revision), on clones and on restored copies.
func TestRangeCountModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s := NewStore()
	history := []rangeModel{nil, {}} // history[rev]
	type frozen struct {
		c   *Store
		rev int64
	}
	var clones []frozen
	for step := 0; step < 500; step++ {
		cur := history[len(history)-1]
		next := cur.clone()
		rev := int64(len(history)) // the revision this transaction writes
		w := s.Write()
		wrote := false
		for range 1 + rng.IntN(4) {
			k := modelKeys[rng.IntN(len(modelKeys))]
			switch rng.IntN(4) {
			case 0:
				end := modelEnds[rng.IntN(len(modelEnds))]
				var endb []byte
				if end != "" {
					endb = []byte(end)
				}
				w.DeleteRange([]byte(k), endb)
				for kk := range next {
					if (end == "" && kk == k) || (end == "\x00" && kk >= k) || (end != "" && end != "\x00" && kk >= k && kk < end) {
						delete(next, kk)
						wrote = true
					}
				}
			default:
				val := fmt.Sprint(step)
				w.Put([]byte(k), []byte(val), 0)
				wrote = true
				kv := KeyValue{Key: []byte(k), Value: []byte(val), CreateRevision: rev, ModRevision: rev, Version: 1}
				if old, ok := next[k]; ok {
					kv.CreateRevision, kv.Version = old.CreateRevision, old.Version+1
				}
				next[k] = kv
			}
			view := append(history[:len(history):len(history)], next)
			if !wrote {
				view = history
			}
			checkRanges(t, rng, fmt.Sprintf("step %d in txn", step), w, view, w.Rev(), s.compactRev)
		}
		w.End()
		if wrote {
			history = append(history, next)
		}
		if s.Rev() != int64(len(history)-1) {
			t.Fatalf("step %d: Rev() = %d, want %d", step, s.Rev(), len(history)-1)
		}
		if s.Len() != len(history[s.Rev()]) {
			t.Fatalf("step %d: Len() = %d, want %d", step, s.Len(), len(history[s.Rev()]))
		}
		if rng.IntN(15) == 0 && s.Rev() > s.CompactRev() {
			c := s.CompactRev() + 1 + rng.Int64N(s.Rev()-s.CompactRev())
			if err := s.Compact(c); err != nil {
				t.Fatalf("step %d: Compact(%d) = %v", step, c, err)
			}
		}
		checkTombs(t, s)
		checkRanges(t, rng, fmt.Sprintf("step %d", step), s, history, s.Rev(), s.CompactRev())
		r := s.Read()
		checkRanges(t, rng, fmt.Sprintf("step %d read txn", step), r, history, r.Rev(), r.CompactRev())
		r.End()
		if rng.IntN(40) == 0 {
			clones = append(clones, frozen{s.Clone(), s.Rev()})
		}
		if rng.IntN(40) == 0 {
			var buf bytes.Buffer
			if _, err := s.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			restored := NewStore()
			if err := restored.Restore(&buf); err != nil {
				t.Fatal(err)
			}
			checkTombs(t, restored)
			checkRanges(t, rng, fmt.Sprintf("step %d restored", step), restored, history, restored.Rev(), restored.CompactRev())
		}
	}
	for i, f := range clones {
		checkTombs(t, f.c)
		if f.c.Rev() != f.rev {
			t.Fatalf("clone %d: Rev() = %d, want %d", i, f.c.Rev(), f.rev)
		}
		checkRanges(t, rng, fmt.Sprintf("clone %d", i), f.c, history[:f.rev+1], f.rev, f.c.CompactRev())
	}
}

// TestWrittenCloneLeavesOriginal writes to a clone whose version slices
// share spare capacity with the original's.
func TestWrittenCloneLeavesOriginal(t *testing.T) {
	s := NewStore()
	for i := range 3 { // three versions: a slice with spare capacity
		put(s, "k", fmt.Sprint(i))
	}
	c := s.Clone()
	put(s, "k", "original")
	put(c, "k", "clone")
	for _, tt := range []struct {
		s    *Store
		want string
	}{{s, "original"}, {c, "clone"}} {
		r, err := tt.s.Range([]byte("k"), nil, RangeOptions{})
		if err != nil || len(r.KVs) != 1 || string(r.KVs[0].Value) != tt.want {
			t.Errorf("Range(k) = %q, %v; want %s", short(r.KVs), err, tt.want)
		}
		ev, _, err := tt.s.Events([]byte("k"), nil, 1, 5, 0, false)
		if err != nil || len(ev) != 4 || string(ev[3].KV.Value) != tt.want {
			t.Errorf("Events(k) = %v, %v; want 4 events ending with %s", ev, err, tt.want)
		}
	}
}

// TestCloneReadWhileOriginalWrites reads a clone on one goroutine while the
// original takes writes and compactions on another; meaningful under -race.
func TestCloneReadWhileOriginalWrites(t *testing.T) {
	s := NewStore()
	for i := range 2000 {
		put(s, fmt.Sprintf("k%04d", i), "v")
	}
	del(s, "k0100", "k0200")
	c := s.Clone()
	var want bytes.Buffer
	if _, err := c.WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 3000 {
			w := s.Write()
			k := []byte(fmt.Sprintf("k%04d", i%2500))
			switch i % 3 {
			case 0:
				w.DeleteRange(k, []byte(fmt.Sprintf("k%04d", i%2500+7)))
			default:
				w.Put(k, []byte(fmt.Sprint(i)), 0)
			}
			w.End()
			if i%500 == 0 {
				if err := s.Compact(s.Rev()); err != nil {
					t.Error(err)
					return
				}
			}
			if i%1000 == 0 {
				s.Defragment(64)
			}
		}
	}()
	for range 20 {
		var got bytes.Buffer
		if _, err := c.WriteTo(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatal("clone's serialization changed while the original was written")
		}
		r, err := c.Range([]byte("k"), []byte("\x00"), RangeOptions{Limit: 150})
		if err != nil || r.Count != 1900 || len(r.KVs) != 150 || string(r.KVs[100].Key) != "k0200" {
			t.Fatalf("clone Range = %d kvs count %d, %v; want 150 of 1900", len(r.KVs), r.Count, err)
		}
		if n, _ := c.Range([]byte("k0050"), []byte("k0250"), RangeOptions{CountOnly: true}); n.Count != 100 {
			t.Fatalf("clone count [k0050, k0250) = %d, want 100", n.Count)
		}
	}
	wg.Wait()
	checkTombs(t, s)
	checkTombs(t, c)
}
