package wal

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// TestEntries reads back a log with an overwritten tail, spread over
// several segments, part of it released.
func TestEntries(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 1024)
	w := mustCreate(t, cfg, "m")
	defer w.Close()
	mustSave(t, w, hardstate(1, 1, 0), ents(1, 5, 1))
	mustSave(t, w, nil, ents(6, 10, 1))
	mustSave(t, w, hardstate(2, 2, 7), ents(8, 12, 2)) // overwrites 8..10
	for i := uint64(13); i <= 60; i += 3 {
		mustSave(t, w, nil, ents(i, i+2, 2))
	}
	if n := len(segmentFiles(t, fs, testDir)); n < 3 {
		t.Fatalf("want the log over several segments, got %d", n)
	}
	byIndex := func(i uint64) *raftpb.Entry {
		if i >= 8 {
			return ents(i, i, 2)[0]
		}
		return ents(i, i, 1)[0]
	}
	want := func(lo, hi uint64) []*raftpb.Entry {
		var out []*raftpb.Entry
		for i := lo; i < hi; i++ {
			out = append(out, byIndex(i))
		}
		return out
	}
	one := uint64(entryFixedSize + len("e8.t2")) // e10.t2 is a byte longer
	for _, tc := range []struct {
		name            string
		lo, hi, maxSize uint64
		want            []*raftpb.Entry
	}{
		{"first batch", 1, 6, noLimit, want(1, 6)},
		{"across the overwrite", 5, 14, noLimit, want(5, 14)},
		{"inside a batch", 9, 11, noLimit, want(9, 11)},
		{"everything", 1, 64, noLimit, want(1, 61)},
		{"past the end", 58, 100, noLimit, want(58, 61)},
		{"size limit", 8, 20, 3*one + 1, want(8, 11)},
		{"at least one", 8, 20, 1, want(8, 9)},
		{"empty range", 9, 9, noLimit, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.Entries(tc.lo, tc.hi, tc.maxSize)
			if err != nil {
				t.Fatalf("Entries(%d, %d): %v", tc.lo, tc.hi, err)
			}
			checkEntries(t, got, tc.want)
		})
	}
	if _, err := w.Entries(70, 80, noLimit); !errors.Is(err, ErrNotRetained) {
		t.Fatalf("Entries past the log: %v, want ErrNotRetained", err)
	}

	if err := w.SaveSnapshotMark(SnapshotMark{Index: 30, Term: 2}); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseTo(30); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Entries(1, 5, noLimit); !errors.Is(err, ErrNotRetained) {
		t.Fatalf("Entries of a released segment: %v, want ErrNotRetained", err)
	}
	got, err := w.Entries(31, 64, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, got, want(31, 61))
}

const noLimit = ^uint64(0)

// TestEntriesMatchLog checks Entries against a model of the raft log
// through random appends, overwrites, releases and reopens.
func TestEntriesMatchLog(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		fs := vfs.NewMem()
		cfg := testConfig(fs, 2048)
		w := mustCreate(t, cfg, "m")
		model := map[uint64]*raftpb.Entry{}
		var last, floor, term uint64 // floor: entries at or below it may be gone
		var mark SnapshotMark
		check := func(op string) {
			t.Helper()
			if last <= floor {
				return
			}
			for range 5 {
				lo := floor + 1 + rng.Uint64N(last-floor)
				hi := lo + 1 + rng.Uint64N(last-lo+2)
				got, err := w.Entries(lo, hi, noLimit)
				if err != nil {
					t.Fatalf("seed %d after %s: Entries(%d, %d): %v", seed, op, lo, hi, err)
				}
				var want []*raftpb.Entry
				for i := lo; i < hi && i <= last; i++ {
					want = append(want, model[i])
				}
				checkEntries(t, got, want)
				small, err := w.Entries(lo, hi, uint64(rng.IntN(40)))
				if err != nil || len(small) == 0 || len(small) > len(want) {
					t.Fatalf("seed %d: Entries(%d, %d) with a size limit: %d entries, %v", seed, lo, hi, len(small), err)
				}
				checkEntries(t, small, want[:len(small)])
			}
		}
		for step := range 200 {
			switch r := rng.IntN(20); {
			case r < 14: // append, sometimes over the tail
				first := last + 1
				if last > floor+1 && rng.IntN(3) == 0 {
					first = last - rng.Uint64N(min(last-floor-1, 4))
					term++
				}
				n := 1 + rng.Uint64N(6)
				es := ents(first, first+n-1, term+1)
				for i := first; i <= last; i++ {
					delete(model, i)
				}
				for _, e := range es {
					model[e.GetIndex()] = e
				}
				last = first + n - 1
				mustSave(t, w, hardstate(term+1, 1, 0), es)
				check("save")
			case r < 16: // snapshot and release
				if last <= floor+2 {
					continue
				}
				idx := floor + 1 + rng.Uint64N(last-floor-1)
				mark = SnapshotMark{Index: idx, Term: model[idx].GetTerm()}
				if err := w.SaveSnapshotMark(mark); err != nil {
					t.Fatal(err)
				}
				if err := w.ReleaseTo(idx); err != nil {
					t.Fatal(err)
				}
				floor = idx
				check("release")
			default: // reopen from the newest mark
				mustClose(t, w)
				var rr *ReadResult
				w, rr = mustOpen(t, cfg, mark)
				if n := uint64(len(rr.Entries)); n != last-mark.Index {
					t.Fatalf("seed %d step %d: reopen read %d entries, want %d", seed, step, n, last-mark.Index)
				}
				floor = max(floor, mark.Index)
				check("reopen")
			}
		}
		mustClose(t, w)
	}
}
