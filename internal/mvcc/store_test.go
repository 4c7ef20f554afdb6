package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
)

func put(s *Store, key, value string) int64 {
	w := s.Write()
	w.Put([]byte(key), []byte(value), 0)
	w.End()
	return s.Rev()
}

func del(s *Store, key, end string) int64 {
	w := s.Write()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	w.DeleteRange([]byte(key), e)
	w.End()
	return s.Rev()
}

// short renders KVs compactly for table comparisons: key=value@create/mod/version.
func short(kvs []KeyValue) string {
	var b bytes.Buffer
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s@%d/%d/%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
	}
	return b.String()
}

func TestInitialRevision(t *testing.T) {
	s := NewStore()
	if got := s.Rev(); got != 1 {
		t.Fatalf("Rev() = %d, want 1", got)
	}
	if got := put(s, "a", "1"); got != 2 {
		t.Fatalf("Rev() after first put = %d, want 2", got)
	}
}

// fixture builds a store with history:
//
//	rev 2: put a=1      rev 3: put b=1     rev 4: put a=2
//	rev 5: put c=1      rev 6: delete b    rev 7: put b=2
//	rev 8: put d=1      rev 9: delete [c, e)
func fixture() *Store {
	s := NewStore()
	put(s, "a", "1")
	put(s, "b", "1")
	put(s, "a", "2")
	put(s, "c", "1")
	del(s, "b", "")
	put(s, "b", "2")
	put(s, "d", "1")
	del(s, "c", "e")
	return s
}

func TestRange(t *testing.T) {
	s := fixture()
	tests := []struct {
		key, end string
		o        RangeOptions
		want     string
		count    int
		err      error
	}{
		{key: "a", want: "a=2@2/4/2", count: 1},
		{key: "b", want: "b=2@7/7/1", count: 1},
		{key: "c", want: "", count: 0},
		{key: "zz", want: "", count: 0},
		{key: "a", end: "c", want: "a=2@2/4/2 b=2@7/7/1", count: 2},
		{key: "a", end: "\x00", want: "a=2@2/4/2 b=2@7/7/1", count: 2},
		{key: "\x00", end: "\x00", want: "a=2@2/4/2 b=2@7/7/1", count: 2},
		{key: "b", end: "a", want: "", count: 0},
		{key: "a", end: "\x00", o: RangeOptions{Limit: 1}, want: "a=2@2/4/2", count: 2},
		{key: "a", end: "\x00", o: RangeOptions{CountOnly: true}, want: "", count: 2},
		{key: "a", end: "\x00", o: RangeOptions{Rev: 5}, want: "a=2@2/4/2 b=1@3/3/1 c=1@5/5/1", count: 3},
		{key: "a", end: "\x00", o: RangeOptions{Rev: 3}, want: "a=1@2/2/1 b=1@3/3/1", count: 2},
		{key: "a", end: "\x00", o: RangeOptions{Rev: 1}, want: "", count: 0},
		{key: "b", o: RangeOptions{Rev: 6}, want: "", count: 0},
		{key: "a", end: "\x00", o: RangeOptions{Rev: 8}, want: "a=2@2/4/2 b=2@7/7/1 c=1@5/5/1 d=1@8/8/1", count: 4},
		{key: "a", end: "\x00", o: RangeOptions{Rev: -3}, want: "a=2@2/4/2 b=2@7/7/1", count: 2},
		{key: "a", o: RangeOptions{Rev: 10}, err: ErrFutureRev},
	}
	for _, tt := range tests {
		got, err := s.Range([]byte(tt.key), []byte(tt.end), tt.o)
		if !errors.Is(err, tt.err) {
			t.Errorf("Range(%q, %q, %+v) error = %v, want %v", tt.key, tt.end, tt.o, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if short(got.KVs) != tt.want || got.Count != tt.count || got.Rev != 9 {
			t.Errorf("Range(%q, %q, %+v) = %q count %d rev %d, want %q count %d rev 9",
				tt.key, tt.end, tt.o, short(got.KVs), got.Count, got.Rev, tt.want, tt.count)
		}
	}
}

func TestPutVersions(t *testing.T) {
	s := NewStore()
	w := s.Write()
	if prev := w.Put([]byte("k"), []byte("v1"), 0); prev != nil {
		t.Errorf("Put(new key) prev = %+v, want nil", prev)
	}
	w.End()
	w = s.Write()
	prev := w.Put([]byte("k"), []byte("v2"), 0)
	w.End()
	if prev == nil || short([]KeyValue{*prev}) != "k=v1@2/2/1" {
		t.Errorf("Put(existing) prev = %+v, want k=v1@2/2/1", prev)
	}
	del(s, "k", "")
	put(s, "k", "v3")
	got, _ := s.Range([]byte("k"), nil, RangeOptions{})
	if want := "k=v3@5/5/1"; short(got.KVs) != want {
		t.Errorf("Range(k) after delete+put = %q, want %q (version resets)", short(got.KVs), want)
	}
	if s.Len() != 1 {
		t.Errorf("Len() = %d, want 1", s.Len())
	}
}

func TestWriteTxn(t *testing.T) {
	s := NewStore()
	put(s, "x", "0") // rev 2

	w := s.Write()
	if w.Rev() != 2 {
		t.Errorf("Rev() before writing = %d, want 2", w.Rev())
	}
	w.Put([]byte("a"), []byte("1"), 0)
	if w.Rev() != 3 {
		t.Errorf("Rev() after writing = %d, want 3", w.Rev())
	}
	got, _ := w.Range([]byte("a"), nil, RangeOptions{})
	if short(got.KVs) != "a=1@3/3/1" || got.Rev != 3 {
		t.Errorf("txn Range(a) = %q rev %d, want a=1@3/3/1 rev 3", short(got.KVs), got.Rev)
	}
	prev := w.Put([]byte("a"), []byte("2"), 0) // put/put in one txn
	if prev == nil || string(prev.Value) != "1" {
		t.Errorf("second Put prev = %+v, want value 1", prev)
	}
	w.Put([]byte("b"), []byte("1"), 0)
	deleted := w.DeleteRange([]byte("b"), nil) // put then delete
	if short(deleted) != "b=1@3/3/1" {
		t.Errorf("DeleteRange(b) = %q, want b=1@3/3/1", short(deleted))
	}
	w.DeleteRange([]byte("x"), nil)
	w.Put([]byte("x"), []byte("1"), 0) // delete then put
	evs := w.End()
	if s.Rev() != 3 {
		t.Fatalf("Rev() after txn = %d, want 3 (one revision per txn)", s.Rev())
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, fmt.Sprintf("%v:%s@%d", ev.Type, ev.KV.Key, ev.KV.ModRevision))
	}
	wantKinds := []string{"PUT:a@3", "PUT:a@3", "PUT:b@3", "DELETE:b@3", "DELETE:x@3", "PUT:x@3"}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("End() events = %v, want %v", kinds, wantKinds)
	}
	all, _ := s.Range([]byte("\x00"), []byte("\x00"), RangeOptions{})
	if want := "a=2@3/3/2 x=1@3/3/1"; short(all.KVs) != want {
		t.Errorf("Range(all) = %q, want %q", short(all.KVs), want)
	}
	old, _ := s.Range([]byte("\x00"), []byte("\x00"), RangeOptions{Rev: 2})
	if want := "x=0@2/2/1"; short(old.KVs) != want {
		t.Errorf("Range(all, rev 2) = %q, want %q", short(old.KVs), want)
	}
	if s.Len() != 2 {
		t.Errorf("Len() = %d, want 2", s.Len())
	}

	// A transaction that writes nothing does not bump the revision.
	w = s.Write()
	if d := w.DeleteRange([]byte("nope"), []byte("nopf")); d != nil {
		t.Errorf("DeleteRange(nothing) = %v, want nil", d)
	}
	if evs := w.End(); len(evs) != 0 || s.Rev() != 3 {
		t.Errorf("empty txn: events %d rev %d, want 0 events rev 3", len(evs), s.Rev())
	}
}

func TestDeleteEvents(t *testing.T) {
	s := NewStore()
	put(s, "a", "1")
	put(s, "b", "2")
	w := s.Write()
	deleted := w.DeleteRange([]byte("a"), []byte("\x00"))
	evs := w.End()
	if short(deleted) != "a=1@2/2/1 b=2@3/3/1" {
		t.Errorf("DeleteRange(a, from-key) = %q", short(deleted))
	}
	if len(evs) != 2 || evs[0].Type != EventDelete || string(evs[0].KV.Key) != "a" ||
		evs[0].KV.ModRevision != 4 || evs[0].PrevKV == nil || string(evs[0].PrevKV.Value) != "1" {
		t.Errorf("events = %+v", evs)
	}
	if s.Len() != 0 {
		t.Errorf("Len() = %d, want 0", s.Len())
	}
}

func TestCompact(t *testing.T) {
	tests := []struct {
		rev     int64
		err     error
		readRev int64
		want    string // range all at readRev after compaction
		keys    int    // index entries left
	}{
		{rev: 1, readRev: 1, want: "", keys: 4},
		{rev: 4, readRev: 4, want: "a=2@2/4/2 b=1@3/3/1", keys: 4},
		{rev: 6, readRev: 6, want: "a=2@2/4/2 c=1@5/5/1", keys: 4}, // b keeps only its put at 7
		// c and d were deleted at 9: their tombstones at the compaction
		// revision survive it (the history of revision 9 stays complete).
		{rev: 9, readRev: 9, want: "a=2@2/4/2 b=2@7/7/1", keys: 4},
		{rev: 10, err: ErrFutureRev},
		{rev: 0, err: ErrCompacted},
	}
	for _, tt := range tests {
		s := fixture()
		err := s.Compact(tt.rev)
		if !errors.Is(err, tt.err) {
			t.Errorf("Compact(%d) = %v, want %v", tt.rev, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if s.Rev() != 9 || s.CompactRev() != tt.rev {
			t.Errorf("Compact(%d): rev %d compactRev %d, want 9, %d", tt.rev, s.Rev(), s.CompactRev(), tt.rev)
		}
		got, err := s.Range([]byte("\x00"), []byte("\x00"), RangeOptions{Rev: tt.readRev})
		if err != nil || short(got.KVs) != tt.want {
			t.Errorf("Compact(%d): Range(all, %d) = %q, %v, want %q", tt.rev, tt.readRev, short(got.KVs), err, tt.want)
		}
		if s.tree.Len() != tt.keys {
			t.Errorf("Compact(%d): index holds %d keys, want %d", tt.rev, s.tree.Len(), tt.keys)
		}
		if tt.rev > 1 {
			if _, err := s.Range([]byte("a"), nil, RangeOptions{Rev: tt.rev - 1}); !errors.Is(err, ErrCompacted) {
				t.Errorf("Compact(%d): Range at %d = %v, want ErrCompacted", tt.rev, tt.rev-1, err)
			}
		}
		if err := s.Compact(tt.rev); !errors.Is(err, ErrCompacted) {
			t.Errorf("Compact(%d) twice = %v, want ErrCompacted", tt.rev, err)
		}
		// Latest reads never change with compaction.
		latest, _ := s.Range([]byte("\x00"), []byte("\x00"), RangeOptions{})
		if short(latest.KVs) != "a=2@2/4/2 b=2@7/7/1" {
			t.Errorf("Compact(%d): latest = %q", tt.rev, short(latest.KVs))
		}
	}
}

func TestHash(t *testing.T) {
	a, b := fixture(), fixture()
	ha, ca, err := a.Hash(0)
	if err != nil {
		t.Fatal(err)
	}
	hb, cb, _ := b.Hash(0)
	if ha != hb || ca != cb {
		t.Fatalf("Hash(0) of equal stores: %08x/%d vs %08x/%d", ha, ca, hb, cb)
	}
	// Revision-consistent: hashing at rev 9 gives the same answer after more writes.
	put(b, "e", "1")
	if h, _, _ := b.Hash(9); h != ha {
		t.Errorf("Hash(9) after a later write = %08x, want %08x", h, ha)
	}
	if h, _, _ := b.Hash(0); h == ha {
		t.Errorf("Hash(0) after a later write unchanged")
	}
	c := fixture()
	w := c.Write()
	w.Put([]byte("a"), []byte("X"), 0)
	w.End()
	if h, _, _ := c.Hash(9); h != ha {
		t.Errorf("Hash(9) = %08x, want %08x", h, ha)
	}
	if h, _, _ := c.Hash(10); h == ha {
		t.Errorf("Hash(10) of a different store equals")
	}
	if _, _, err := a.Hash(11); !errors.Is(err, ErrFutureRev) {
		t.Errorf("Hash(future) = %v, want ErrFutureRev", err)
	}
	a.Compact(5)
	if _, _, err := a.Hash(4); !errors.Is(err, ErrCompacted) {
		t.Errorf("Hash(compacted) = %v, want ErrCompacted", err)
	}
	b2 := fixture()
	b2.Compact(5)
	h1, c1, _ := a.Hash(0)
	h2, c2, _ := b2.Hash(0)
	if h1 != h2 || c1 != 5 || c2 != 5 {
		t.Errorf("Hash after equal compactions: %08x/%d vs %08x/%d", h1, c1, h2, c2)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := fixture()
	s.Compact(4)
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; buffer holds %d", n, err, buf.Len())
	}
	data := buf.Bytes()
	r := NewStore()
	put(r, "junk", "x")
	if err := r.Restore(bytes.NewReader(data)); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	if r.Size() != s.Size() || s.Size() != recomputeSize(s) {
		t.Errorf("restored Size() = %d, want %d (recomputed %d)", r.Size(), s.Size(), recomputeSize(s))
	}
	if r.Rev() != s.Rev() || r.CompactRev() != s.CompactRev() || r.Len() != s.Len() {
		t.Errorf("restored rev/compact/len = %d/%d/%d, want %d/%d/%d",
			r.Rev(), r.CompactRev(), r.Len(), s.Rev(), s.CompactRev(), s.Len())
	}
	h1, _, _ := s.Hash(0)
	h2, _, _ := r.Hash(0)
	if h1 != h2 {
		t.Errorf("restored hash %08x, want %08x", h2, h1)
	}
	var again bytes.Buffer
	r.WriteTo(&again)
	if !bytes.Equal(again.Bytes(), data) {
		t.Errorf("WriteTo after Restore differs")
	}
	for rev := int64(4); rev <= 9; rev++ {
		a, _ := s.Range([]byte("\x00"), []byte("\x00"), RangeOptions{Rev: rev})
		b, _ := r.Range([]byte("\x00"), []byte("\x00"), RangeOptions{Rev: rev})
		if short(a.KVs) != short(b.KVs) {
			t.Errorf("Range at %d: restored %q, want %q", rev, short(b.KVs), short(a.KVs))
		}
	}

	// Every truncation and every single-bit flip is rejected, and leaves the
	// store untouched.
	before, _, _ := r.Hash(0)
	for i := 0; i < len(data); i++ {
		if err := r.Restore(bytes.NewReader(data[:i])); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("Restore(truncated to %d) = %v, want ErrCorruptSnapshot", i, err)
		}
		bad := bytes.Clone(data)
		bad[i] ^= 0x10
		if err := r.Restore(bytes.NewReader(bad)); err == nil {
			t.Fatalf("Restore(bit flip at %d) = nil", i)
		}
	}
	if err := r.Restore(bytes.NewReader(append(bytes.Clone(data), 0))); !errors.Is(err, ErrCorruptSnapshot) {
		t.Errorf("Restore(trailing byte) = %v, want ErrCorruptSnapshot", err)
	}
	if after, _, _ := r.Hash(0); after != before {
		t.Errorf("failed Restore changed the store")
	}
}

// TestRandomAgainstModel checks Range at every revision against a naive
// model that keeps a full copy of the keyspace per revision.
func TestRandomAgainstModel(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s := NewStore()
	type kv struct {
		value            string
		create, mod, ver int64
	}
	history := []map[string]kv{nil, {}} // history[rev]
	keys := []string{"a", "b", "c", "d", "e"}
	for step := 0; step < 300; step++ {
		cur := history[len(history)-1]
		next := make(map[string]kv, len(cur))
		for k, v := range cur {
			next[k] = v
		}
		rev := int64(len(history))
		w := s.Write()
		wrote := false
		for n := rng.IntN(3) + 1; n > 0; n-- {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(3) == 0 {
				end := keys[rng.IntN(len(keys))] + "z"
				w.DeleteRange([]byte(k), []byte(end))
				for kk := range next {
					if kk >= k && kk < end {
						delete(next, kk)
						wrote = true
					}
				}
				continue
			}
			val := fmt.Sprint(step)
			w.Put([]byte(k), []byte(val), 0)
			wrote = true
			if old, ok := next[k]; ok {
				next[k] = kv{val, old.create, rev, old.ver + 1}
			} else {
				next[k] = kv{val, rev, rev, 1}
			}
		}
		w.End()
		if wrote {
			history = append(history, next)
		}
		if want := recomputeSize(s); s.Size() != want {
			t.Fatalf("step %d: Size() = %d, want %d", step, s.Size(), want)
		}
		if s.Rev() != int64(len(history)-1) {
			t.Fatalf("step %d: Rev() = %d, want %d", step, s.Rev(), len(history)-1)
		}
		if rng.IntN(20) == 0 {
			c := s.CompactRev() + 1 + rng.Int64N(s.Rev()-s.CompactRev())
			if err := s.Compact(c); err != nil {
				t.Fatalf("Compact(%d) = %v", c, err)
			}
		}
	}
	for rev := s.CompactRev(); rev <= s.Rev(); rev++ {
		if rev < 1 {
			continue
		}
		got, err := s.Range([]byte("\x00"), []byte("\x00"), RangeOptions{Rev: rev})
		if err != nil {
			t.Fatalf("Range at %d: %v", rev, err)
		}
		var want []KeyValue
		for _, k := range keys {
			if v, ok := history[rev][k]; ok {
				want = append(want, KeyValue{Key: []byte(k), Value: []byte(v.value), CreateRevision: v.create, ModRevision: v.mod, Version: v.ver})
			}
		}
		if short(got.KVs) != short(want) {
			t.Fatalf("Range at %d = %q, want %q", rev, short(got.KVs), short(want))
		}
	}
}

func recomputeSize(s *Store) int64 {
	var n int64
	s.tree.Scan(func(ki keyIndex) bool {
		n += keySize(&ki)
		return true
	})
	return n
}

// TestConcurrentReaders runs readers against a writer; meaningful under -race.
func TestConcurrentReaders(t *testing.T) {
	s := NewStore()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.Range([]byte("k"), []byte("\x00"), RangeOptions{Limit: 3})
				if err != nil {
					t.Error(err)
					return
				}
				// A writer writes k0..k9 in one txn: a reader sees all or none.
				if r.Count != 0 && r.Count != 10 {
					t.Errorf("reader saw a half-applied txn: count %d", r.Count)
					return
				}
				s.Hash(0)
			}
		}()
	}
	for i := 0; i < 200; i++ {
		w := s.Write()
		if i%2 == 0 {
			for k := 0; k < 10; k++ {
				w.Put([]byte(fmt.Sprintf("k%d", k)), []byte("v"), 0)
			}
		} else {
			w.DeleteRange([]byte("k"), []byte("\x00"))
		}
		w.End()
	}
	close(stop)
	wg.Wait()
}

func TestCloneIsFrozen(t *testing.T) {
	s := NewStore()
	w := s.Write()
	w.Put([]byte("a"), []byte("1"), 0)
	w.Put([]byte("b"), []byte("1"), 0)
	w.End()
	c := s.Clone()
	w = s.Write()
	w.Put([]byte("a"), []byte("2"), 0)
	w.DeleteRange([]byte("b"), nil)
	w.Put([]byte("c"), []byte("1"), 0)
	w.End()
	if err := s.Compact(s.Rev()); err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	ref := NewStore()
	w = ref.Write()
	w.Put([]byte("a"), []byte("1"), 0)
	w.Put([]byte("b"), []byte("1"), 0)
	w.End()
	if _, err := ref.WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("clone changed after writes to the original")
	}
	if c.Len() != 2 || s.Len() != 2 {
		t.Fatalf("Len: clone %d, original %d; want 2, 2", c.Len(), s.Len())
	}
}
