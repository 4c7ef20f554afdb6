package wal

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// Zero-ahead never touches data: whatever the size of the batches against
// the zeroing window and the segment, every Save reads back after a reopen,
// appends after the reopen too, and each segment's space after its data
// holds only zeros. The window is kept at least half full after each append.
func TestZeroAheadKeepsData(t *testing.T) {
	const window, segSize = 1 << 10, 8 << 10
	for _, tc := range []struct {
		name    string
		perSave int // entries per Save
		size    int // bytes per entry
	}{
		{"small batches", 1, 20},
		{"batches of half a window", 4, window / 8},
		{"batches larger than the window", 3, window},
		{"batches larger than a segment", 2, segSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			cfg := Config{FS: fs, Dir: testDir, SegmentSize: segSize, ZeroAhead: window}
			w := mustCreate(t, cfg, "meta")
			var want []*raftpb.Entry
			next := uint64(1)
			save := func(w *WAL, n int) {
				for range n {
					var es []*raftpb.Entry
					for range tc.perSave {
						es = append(es, ent(next, 1, strings.Repeat(string(rune('a'+next%26)), tc.size)))
						next++
					}
					mustSave(t, w, hardstate(1, 1, next-1), es)
					want = append(want, es...)
				}
			}
			save(w, 30)
			dataEnd := w.off
			mustClose(t, w)
			if size := fileSize(t, fs, lastSegment(t, fs)); size < min(dataEnd+window/2, segSize) && dataEnd < segSize {
				t.Errorf("last segment is %d bytes with data to %d: zeroing did not keep half a window (%d) ahead", size, dataEnd, window/2)
			}

			w, rr := mustOpen(t, cfg, SnapshotMark{})
			checkEntries(t, rr.Entries, want)
			save(w, 10)
			mustClose(t, w)
			w, rr = mustOpen(t, cfg, SnapshotMark{})
			checkEntries(t, rr.Entries, want)
			mustClose(t, w)
		})
	}
}

// A failed zeroing is not an error of the log: Save goes on appending (only
// without zero-ahead) and nothing is lost.
func TestZeroAheadFailureTurnsItOff(t *testing.T) {
	fs := &zeroFailFS{FS: vfs.NewMem()}
	cfg := Config{FS: fs, Dir: testDir, SegmentSize: 8 << 10, ZeroAhead: 1 << 10}
	w := mustCreate(t, cfg, "meta")
	for i := uint64(1); i <= 50; i++ {
		mustSave(t, w, hardstate(1, 1, i), ents(i, i, 1))
	}
	w.mu.Lock()
	w.zeroWaitLocked(-1)
	off := w.zeroAhead
	w.mu.Unlock()
	if off != 0 {
		t.Errorf("zeroAhead = %d after a failed zeroing, want 0 (off)", off)
	}
	if fs.failed.Load() == 0 {
		t.Fatal("no zeroing write was attempted")
	}
	mustClose(t, w)
	w, rr := mustOpen(t, Config{FS: fs.FS, Dir: testDir, SegmentSize: 8 << 10}, SnapshotMark{})
	checkEntries(t, rr.Entries, ents(1, 50, 1))
	mustClose(t, w)
}

// zeroFailFS fails every write made from zeroBlock, that is, every zeroing
// write and no Save.
type zeroFailFS struct {
	vfs.FS
	failed atomic.Int64
}

type zeroFailFile struct {
	vfs.File
	fs *zeroFailFS
}

func (z *zeroFailFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := z.FS.OpenReadWrite(name, cat, opts...)
	if err != nil {
		return nil, err
	}
	return &zeroFailFile{File: f, fs: z}, nil
}

func (f *zeroFailFile) WriteAt(p []byte, off int64) (int, error) {
	if len(p) > 0 && &p[0] == &zeroBlock[0] {
		f.fs.failed.Add(1)
		return 0, errors.New("injected zeroing failure")
	}
	return f.File.WriteAt(p, off)
}

func lastSegment(t *testing.T, fs vfs.FS) string {
	t.Helper()
	names := segmentFiles(t, fs, testDir)
	return fs.PathJoin(testDir, names[len(names)-1])
}

func fileSize(t *testing.T, fs vfs.FS, path string) int64 {
	t.Helper()
	st, err := fs.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
