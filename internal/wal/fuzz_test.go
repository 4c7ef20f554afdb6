package wal

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Add(encodeOne(recEntry, flagBatchEnd, 1, []byte("hello")))
	f.Add(encodeOne(recHardState, flagBatchEnd, 7, make([]byte, hardStateSize)))
	f.Add(encodeOne(recSegmentHeader, 0, 1, make([]byte, segmentHeaderFixed)))
	f.Add(encodeOne(recSnapshotMark, flagBatchEnd, 1, make([]byte, snapshotMarkSize))[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		_ = plausibleHeader(b)
		if err != nil {
			return
		}
		// A record that decodes is exactly what the encoder makes of it.
		if again := encodeOne(rec.typ, rec.flags, rec.batch, rec.payload); !bytes.Equal(again, b[:rec.size]) {
			t.Fatalf("decode(%x) = %+v, which re-encodes to %x", b[:rec.size], rec, again)
		}
		switch rec.typ {
		case recEntry:
			_, _ = decodeEntry(rec.payload)
		case recHardState:
			_, _ = decodeHardState(rec.payload)
		case recSnapshotMark:
			_, _ = decodeMark(rec.payload)
		case recSegmentHeader:
			_, _ = decodeSegmentHeader(rec.payload)
		}
	})
}

// fuzzSegment is a one-segment WAL built by the real writer.
func fuzzSegment(tb testing.TB, saves func(w *WAL)) []byte {
	fs := vfs.NewMem()
	w, err := Create(testConfig(fs, 0), []byte("fuzz"))
	if err != nil {
		tb.Fatal(err)
	}
	saves(w)
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return readFile(tb, fs, fs.PathJoin(testDir, segmentName(0, 0)))
}

// FuzzOpen feeds arbitrary bytes to Open as the only segment. Open must not
// panic; it either fails or returns a log that takes appends and reads them
// back after a reopen.
func FuzzOpen(f *testing.F) {
	f.Add(fuzzSegment(f, func(*WAL) {}))
	f.Add(fuzzSegment(f, func(w *WAL) {
		_ = w.Save(hardstate(1, 1, 0), ents(1, 3, 1))
		_ = w.Save(hardstate(2, 1, 2), ents(3, 4, 2))
		_ = w.SaveSnapshotMark(SnapshotMark{Index: 2, Term: 1})
	}))
	full := fuzzSegment(f, func(w *WAL) {
		for i := uint64(1); i <= 5; i++ {
			_ = w.Save(hardstate(1, 1, i-1), ents(i, i, 1))
		}
	})
	f.Add(full)
	f.Add(full[:len(full)-5])
	f.Add(append(bytes.Clone(full), make([]byte, 64)...))
	f.Add(flipped(full, len(full)-30))
	f.Add(flipped(full, 70))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := vfs.NewMem()
		if err := fs.MkdirAll(testDir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, fs, fs.PathJoin(testDir, segmentName(0, 0)), b)
		cfg := testConfig(fs, 0)
		w, rr, err := Open(cfg, SnapshotMark{})
		if err != nil {
			if w != nil || rr != nil {
				t.Fatalf("Open failed (%v) but returned state", err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrGap) {
				t.Fatalf("Open failed with an unexpected error: %v", err)
			}
			return
		}
		next := uint64(len(rr.Entries)) + 1
		if err := w.Save(hardstate(9, 9, 0), []*raftpb.Entry{ent(next, 9, "appended")}); err != nil {
			t.Fatalf("Save after Open: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w2, rr2, err := Open(cfg, SnapshotMark{})
		if err != nil {
			t.Fatalf("reopen after append: %v", err)
		}
		defer w2.Close()
		want := append(append([]*raftpb.Entry(nil), rr.Entries...), ent(next, 9, "appended"))
		checkEntries(t, rr2.Entries, want)
		if got := hsString(rr2.HardState); got != hsString(hardstate(9, 9, 0)) {
			t.Fatalf("hard state after append = %s", got)
		}
	})
}

func flipped(b []byte, at int) []byte {
	b = bytes.Clone(b)
	b[at] ^= 0x04
	return b
}
