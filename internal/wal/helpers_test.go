package wal

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const testDir = "wal"

func ent(index, term uint64, data string) *raftpb.Entry {
	e := &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: raftpb.EntryNormal.Enum()}
	if data != "" {
		e.Data = []byte(data)
	}
	return e
}

// ents returns entries lo..hi at term, with data naming index and term.
func ents(lo, hi, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(i, term, fmt.Sprintf("e%d.t%d", i, term)))
	}
	return out
}

func hardstate(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func entryString(e *raftpb.Entry) string {
	return fmt.Sprintf("%d/%d/%d/%q", e.GetIndex(), e.GetTerm(), e.GetType(), e.GetData())
}

func entryStrings(es []*raftpb.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = entryString(e)
	}
	return out
}

func hsString(h *raftpb.HardState) string {
	return fmt.Sprintf("term=%d vote=%d commit=%d", h.GetTerm(), h.GetVote(), h.GetCommit())
}

func checkEntries(t *testing.T, got, want []*raftpb.Entry) {
	t.Helper()
	g, w := entryStrings(got), entryStrings(want)
	if !slices.Equal(g, w) {
		t.Fatalf("entries:\n got %v\nwant %v", g, w)
	}
}

func testConfig(fs vfs.FS, segSize int64) Config {
	return Config{FS: fs, Dir: testDir, SegmentSize: segSize, ZeroAhead: testZeroAhead}
}

func mustCreate(t testing.TB, cfg Config, meta string) *WAL {
	t.Helper()
	w, err := Create(cfg, []byte(meta))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func mustOpen(t testing.TB, cfg Config, from SnapshotMark) (*WAL, *ReadResult) {
	t.Helper()
	w, rr, err := Open(cfg, from)
	if err != nil {
		t.Fatalf("Open(%+v): %v", from, err)
	}
	return w, rr
}

func mustSave(t testing.TB, w *WAL, hs *raftpb.HardState, es []*raftpb.Entry) {
	t.Helper()
	if err := w.Save(hs, es); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func mustClose(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// segmentFiles lists the segment names in dir, in sequence order.
func segmentFiles(t testing.TB, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, _, ok := parseSegmentName(n); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func readFile(t testing.TB, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, fs vfs.FS, path string, data []byte) {
	t.Helper()
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(slices.Clone(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyDir returns a fresh MemFS holding dir's files from src, each passed
// through edit (nil keeps the bytes; edit returning nil drops the file).
func copyDir(t testing.TB, src vfs.FS, dir string, edit func(name string, b []byte) []byte) *vfs.MemFS {
	t.Helper()
	dst := vfs.NewMem()
	if err := dst.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names, err := src.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b := readFile(t, src, src.PathJoin(dir, n))
		if edit != nil {
			b = edit(n, b)
			if b == nil {
				continue
			}
		}
		writeFile(t, dst, dst.PathJoin(dir, n), b)
	}
	return dst
}

// recordOffsets decodes a clean segment and returns the start offset of
// every record plus the end of the data.
func recordOffsets(t testing.TB, data []byte) []int {
	t.Helper()
	var offs []int
	off := 0
	for off < len(data) && !allZero(data[off:]) {
		rec, err := decodeRecord(data[off:])
		if err != nil {
			t.Fatalf("recordOffsets: offset %d: %v", off, err)
		}
		offs = append(offs, off)
		off += rec.size
	}
	return append(offs, off)
}

func errContains(err error, subs ...string) bool {
	if err == nil {
		return false
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			return false
		}
	}
	return true
}

// testZeroAhead turns zero-ahead on in every test that uses testConfig, with
// a window small enough that zeroing runs, overlaps appends and meets
// rollover many times per test.
const testZeroAhead = 1 << 10
