package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// warnCounter is a slog.Handler counting records at warn and above.
type warnCounter struct{ n atomic.Int64 }

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnCounter) Handle(context.Context, slog.Record) error    { w.n.Add(1); return nil }
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *warnCounter) WithGroup(string) slog.Handler                { return w }

// buildLog writes nSaves single-entry Saves (entry i at term 1, no hard
// state) and returns the filesystem and the byte range of the last batch in
// the last segment.
func buildLog(t *testing.T, nSaves int) (*vfs.MemFS, string, int, int) {
	t.Helper()
	fs := vfs.NewMem()
	w := mustCreate(t, testConfig(fs, 0), "m")
	for i := 1; i <= nSaves; i++ {
		mustSave(t, w, nil, []*raftpb.Entry{ent(uint64(i), 1, fmt.Sprintf("entry-%d-%s", i, bytes.Repeat([]byte{'x'}, i)))})
	}
	mustClose(t, w)
	segs := segmentFiles(t, fs, testDir)
	last := segs[len(segs)-1]
	offs := recordOffsets(t, readFile(t, fs, fs.PathJoin(testDir, last)))
	return fs, last, offs[len(offs)-2], offs[len(offs)-1]
}

func TestTornTailAtEveryOffset(t *testing.T) {
	const n = 4
	src, last, start, end := buildLog(t, n)
	full := readFile(t, src, src.PathJoin(testDir, last))
	want := make([]*raftpb.Entry, 0, n)
	for i := 1; i < n; i++ {
		want = append(want, ent(uint64(i), 1, fmt.Sprintf("entry-%d-%s", i, bytes.Repeat([]byte{'x'}, i))))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tails := map[string]func(cut int) []byte{
		"eof":   func(cut int) []byte { return full[:cut] },
		"zeros": func(cut int) []byte { return append(bytes.Clone(full[:cut]), make([]byte, 4096)...) },
		"garbage then zeros": func(cut int) []byte {
			b := bytes.Clone(full[:end])
			for i := cut; i < end; i++ {
				b[i] = byte(rng.Uint32())
			}
			return append(b, make([]byte, 100)...)
		},
	}
	for tailName, tail := range tails {
		for cut := start; cut < end; cut++ {
			t.Run(fmt.Sprintf("%s/%d", tailName, cut), func(t *testing.T) {
				fs := copyDir(t, src, testDir, func(name string, b []byte) []byte {
					if name == last {
						return tail(cut)
					}
					return b
				})
				warns := &warnCounter{}
				cfg := testConfig(fs, 0)
				cfg.Logger = slog.New(warns)
				w, rr := mustOpen(t, cfg, SnapshotMark{})
				checkEntries(t, rr.Entries, want)
				wantWarns := int64(1)
				if cut == start && tailName != "garbage then zeros" {
					wantWarns = 0 // a clean end, not a torn tail
				}
				if got := warns.n.Load(); got != wantWarns {
					t.Fatalf("Open logged %d warnings, want %d", got, wantWarns)
				}
				// Appends after the repair land on clean space and survive.
				mustSave(t, w, hardstate(2, 1, 1), ents(n, n+1, 2))
				mustClose(t, w)
				w, rr = mustOpen(t, cfg, SnapshotMark{})
				checkEntries(t, rr.Entries, append(bytes2ents(want), ents(n, n+1, 2)...))
				if got := hsString(rr.HardState); got != hsString(hardstate(2, 1, 1)) {
					t.Fatalf("hard state = %s", got)
				}
				mustClose(t, w)
			})
		}
	}
}

func bytes2ents(es []*raftpb.Entry) []*raftpb.Entry { return append([]*raftpb.Entry(nil), es...) }

// A Save is atomic across a crash: tearing its last record drops all of it,
// and its hard state too.
func TestTornBatchIsAtomic(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 0)
	cfg.ZeroAhead = 0 // the cuts below count back from the end of the data
	w := mustCreate(t, cfg, "")
	mustSave(t, w, hardstate(1, 1, 0), ents(1, 3, 1))
	mustSave(t, w, hardstate(2, 2, 3), ents(4, 8, 2))
	mustClose(t, w)
	name := segmentFiles(t, fs, testDir)[0]
	full := readFile(t, fs, fs.PathJoin(testDir, name))
	for _, cut := range []int{len(full) - 1, len(full) - 24, len(full) - 40, len(full) - 100} {
		fs2 := copyDir(t, fs, testDir, func(_ string, b []byte) []byte { return b[:cut] })
		w, rr := mustOpen(t, testConfig(fs2, 0), SnapshotMark{})
		checkEntries(t, rr.Entries, ents(1, 3, 1))
		if got := hsString(rr.HardState); got != hsString(hardstate(1, 1, 0)) {
			t.Fatalf("cut %d: hard state = %s, want the first Save's", cut, got)
		}
		mustClose(t, w)
	}
}

// Unsynced blocks of the last write can land in any order: a hole followed
// by later parts of the same batch is still a torn tail.
func TestTornTailWithHole(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 0)
	w := mustCreate(t, cfg, "")
	mustSave(t, w, hardstate(1, 1, 0), ents(1, 2, 1))
	big := ents(3, 12, 1)
	mustSave(t, w, hardstate(1, 1, 2), big)
	mustClose(t, w)
	name := segmentFiles(t, fs, testDir)[0]
	full := readFile(t, fs, fs.PathJoin(testDir, name))
	offs := recordOffsets(t, full)
	// Zero the second record of the last batch; later records stay valid.
	hole := offs[len(offs)-1-len(big)]
	fs2 := copyDir(t, fs, testDir, func(_ string, b []byte) []byte {
		clear(b[hole : hole+8])
		return b
	})
	w, rr := mustOpen(t, testConfig(fs2, 0), SnapshotMark{})
	defer mustClose(t, w)
	checkEntries(t, rr.Entries, ents(1, 2, 1))
}

func TestMidLogCorruption(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 400)
	w := mustCreate(t, cfg, "meta")
	for i := uint64(1); i <= 30; i++ {
		mustSave(t, w, hardstate(1, 1, i-1), ents(i, i, 1))
	}
	mustClose(t, w)
	segs := segmentFiles(t, fs, testDir)
	if len(segs) < 3 {
		t.Fatalf("want 3+ segments, got %v", segs)
	}
	first, lastSeg := segs[0], segs[len(segs)-1]
	lastOffs := recordOffsets(t, readFile(t, fs, fs.PathJoin(testDir, lastSeg)))
	if len(lastOffs) < 8 {
		t.Fatalf("last segment too short for the test: %v", lastOffs)
	}
	firstOffs := recordOffsets(t, readFile(t, fs, fs.PathJoin(testDir, first)))
	seq1, _, _ := parseSegmentName(segs[1])
	renamed := segmentName(seq1, 12345)

	type edit func(name string, b []byte) []byte
	flip := func(file string, at int) edit {
		return func(name string, b []byte) []byte {
			if name == file {
				b[at] ^= 0x10
			}
			return b
		}
	}
	tests := []struct {
		name   string
		edit   edit
		file   string
		offset int // -1: whole-segment error
		post   func(t *testing.T, fs *vfs.MemFS)
	}{
		{"payload byte in first segment", flip(first, firstOffs[1]+recordHeaderSize+3), first, firstOffs[1], nil},
		{"crc in first segment's last record", flip(first, firstOffs[len(firstOffs)-2]), first, firstOffs[len(firstOffs)-2], nil},
		{"segment header of first segment", flip(first, 20), first, 0, nil},
		{"length field mid last segment", flip(lastSeg, lastOffs[2]+5), lastSeg, lastOffs[2], nil},
		{"payload mid last segment", flip(lastSeg, lastOffs[3]+recordHeaderSize), lastSeg, lastOffs[3], nil},
		{"type byte mid last segment", flip(lastSeg, lastOffs[3]+8), lastSeg, lastOffs[3], nil},
		{"segment header of last segment", flip(lastSeg, 30), lastSeg, 0, nil},
		{"zeroed record mid last segment", func(name string, b []byte) []byte {
			if name == lastSeg {
				clear(b[lastOffs[2]:lastOffs[3]])
			}
			return b
		}, lastSeg, lastOffs[2], nil},
		{"garbage after end of first segment", func(name string, b []byte) []byte {
			if name == first {
				return append(b, 1, 2, 3, 4, 5, 6, 7, 8)
			}
			return b
		}, first, firstOffs[len(firstOffs)-1], nil},
		{"missing middle segment", func(name string, b []byte) []byte {
			if name == segs[1] {
				return nil
			}
			return b
		}, segs[2], -1, nil},
		{"last batch of first segment lost", func(name string, b []byte) []byte {
			if name == first {
				return b[:firstOffs[len(firstOffs)-3]]
			}
			return b
		}, segs[1], 0, nil},
		{"segment renamed", func(_ string, b []byte) []byte { return b }, renamed, 0, func(t *testing.T, fs *vfs.MemFS) {
			// The first index in the name disagrees with the header.
			if err := fs.Rename(fs.PathJoin(testDir, segs[1]), fs.PathJoin(testDir, renamed)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs2 := copyDir(t, fs, testDir, func(name string, b []byte) []byte {
				return tt.edit(name, b)
			})
			if tt.post != nil {
				tt.post(t, fs2)
			}
			w, rr, err := Open(testConfig(fs2, 400), SnapshotMark{})
			if !errors.Is(err, ErrCorrupt) || w != nil || rr != nil {
				t.Fatalf("Open = %v, %v, %v; want ErrCorrupt and nothing else", w, rr, err)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.File != tt.file || ce.Offset != int64(tt.offset) {
				t.Fatalf("Open error = %v; want file %s offset %d", err, tt.file, tt.offset)
			}
			want := tt.file
			if tt.offset >= 0 {
				want = fmt.Sprintf("%s at offset %d", tt.file, tt.offset)
			}
			if !errContains(err, want) {
				t.Fatalf("Open error %q does not name %q", err, want)
			}
		})
	}
}

func TestCorruptErrorMessage(t *testing.T) {
	err := error(&CorruptError{File: "0000000000000002-0000000000001a2f.wal", Offset: 8192, Reason: "crc mismatch"})
	if got, want := err.Error(), "wal: corrupt record in 0000000000000002-0000000000001a2f.wal at offset 8192: crc mismatch"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(fmt.Errorf("open: %w", err), ErrCorrupt) {
		t.Fatal("wrapped CorruptError does not match ErrCorrupt")
	}
}
