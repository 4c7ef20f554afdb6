package wal

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

func TestConfigValidate(t *testing.T) {
	fs := vfs.NewMem()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{FS: fs, Dir: "d"}, true},
		{"ok with size", Config{FS: fs, Dir: "d", SegmentSize: 1}, true},
		{"no fs", Config{Dir: "d"}, false},
		{"no dir", Config{FS: fs}, false},
		{"negative size", Config{FS: fs, Dir: "d", SegmentSize: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if _, err := Create(tt.cfg, nil); !tt.ok && err == nil {
			t.Errorf("%s: Create accepted an invalid config", tt.name)
		}
	}
}

func TestCreateOpenEmpty(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 0)
	if Exists(fs, testDir) {
		t.Fatal("Exists before Create")
	}
	if _, _, err := Open(cfg, SnapshotMark{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Open before Create = %v, want ErrNotExist", err)
	}
	w := mustCreate(t, cfg, "member-a")
	if !Exists(fs, testDir) {
		t.Fatal("Exists after Create = false")
	}
	if _, err := Create(cfg, nil); !errors.Is(err, ErrExist) {
		t.Fatalf("second Create = %v, want ErrExist", err)
	}
	mustClose(t, w)
	if err := w.Save(hardstate(1, 0, 0), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close = %v, want ErrClosed", err)
	}

	w, rr := mustOpen(t, cfg, SnapshotMark{})
	defer mustClose(t, w)
	if string(rr.Metadata) != "member-a" || len(rr.Entries) != 0 || len(rr.Marks) != 0 || !isEmpty(rr.HardState) {
		t.Fatalf("Open of empty WAL = %+v", rr)
	}
	if got := segmentFiles(t, fs, testDir); !slices.Equal(got, []string{"0000000000000000-0000000000000000.wal"}) {
		t.Fatalf("segments = %v", got)
	}
}

func isEmpty(h *raftpb.HardState) bool { return hardStateOf(h).isEmpty() }

func TestSaveRejectsBadEntries(t *testing.T) {
	fs := vfs.NewMem()
	w := mustCreate(t, testConfig(fs, 0), "")
	defer mustClose(t, w)
	for name, es := range map[string][]*raftpb.Entry{
		"gap":     {ent(1, 1, ""), ent(3, 1, "")},
		"index 0": {ent(0, 1, "")},
		"nil":     {nil},
		"reverse": {ent(2, 1, ""), ent(1, 1, "")},
	} {
		if err := w.Save(nil, es); !errors.Is(err, ErrBadEntries) {
			t.Errorf("Save(%s) = %v, want ErrBadEntries", name, err)
		}
	}
	// A rejected Save does not poison the WAL.
	mustSave(t, w, hardstate(1, 1, 0), ents(1, 2, 1))
}

func TestReopenAndAppend(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 0)
	w := mustCreate(t, cfg, "m")
	mustSave(t, w, hardstate(1, 1, 0), ents(1, 3, 1))
	mustSave(t, w, hardstate(1, 1, 2), nil)
	mustSave(t, w, nil, ents(4, 5, 1))
	mustClose(t, w)

	w, rr := mustOpen(t, cfg, SnapshotMark{})
	checkEntries(t, rr.Entries, ents(1, 5, 1))
	if got, want := hsString(rr.HardState), hsString(hardstate(1, 1, 2)); got != want {
		t.Fatalf("hard state = %s, want %s", got, want)
	}
	mustSave(t, w, hardstate(2, 1, 5), ents(6, 7, 2))
	mustClose(t, w)

	w, rr = mustOpen(t, cfg, SnapshotMark{})
	defer mustClose(t, w)
	checkEntries(t, rr.Entries, append(ents(1, 5, 1), ents(6, 7, 2)...))
	if got, want := hsString(rr.HardState), hsString(hardstate(2, 1, 5)); got != want {
		t.Fatalf("hard state = %s, want %s", got, want)
	}
}

func TestRolloverAcrossSegments(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 512)
	w := mustCreate(t, cfg, "meta")
	var want []*raftpb.Entry
	for i := uint64(1); i <= 60; i++ {
		e := ent(i, 1, string(make([]byte, int(i%7)*20)))
		want = append(want, e)
		mustSave(t, w, hardstate(1, 2, i-1), []*raftpb.Entry{e})
	}
	// A batch larger than a whole segment goes alone into a new segment.
	big := ents(61, 70, 1)
	for _, e := range big {
		e.Data = make([]byte, 100)
	}
	want = append(want, big...)
	mustSave(t, w, hardstate(1, 2, 60), big)
	mustSave(t, w, hardstate(1, 2, 61), ents(71, 71, 1))
	want = append(want, ents(71, 71, 1)...)
	mustClose(t, w)

	segs := segmentFiles(t, fs, testDir)
	if len(segs) < 5 {
		t.Fatalf("only %d segments after 60 saves into 512-byte segments", len(segs))
	}
	for i, name := range segs {
		seq, _, _ := parseSegmentName(name)
		if seq != uint64(i) {
			t.Fatalf("segment %d is %s", i, name)
		}
	}
	// The first index in each rolled segment's name is the first entry it holds.
	for _, name := range segs[1:] {
		_, first, _ := parseSegmentName(name)
		data := readFile(t, fs, fs.PathJoin(testDir, name))
		for _, off := range recordOffsets(t, data) {
			rec, err := decodeRecord(data[off:])
			if err == nil && rec.typ == recEntry {
				e, _ := decodeEntry(rec.payload)
				if e.index != first {
					t.Fatalf("%s: first entry %d", name, e.index)
				}
				break
			}
		}
	}
	w, rr := mustOpen(t, cfg, SnapshotMark{})
	defer mustClose(t, w)
	checkEntries(t, rr.Entries, want)
	if got, want := hsString(rr.HardState), hsString(hardstate(1, 2, 61)); got != want {
		t.Fatalf("hard state = %s, want %s", got, want)
	}
	if string(rr.Metadata) != "meta" {
		t.Fatalf("metadata = %q", rr.Metadata)
	}
}

func TestOverwrittenTail(t *testing.T) {
	for _, segSize := range []int64{0, 200} { // one segment; the overwrite in a later segment
		fs := vfs.NewMem()
		cfg := testConfig(fs, segSize)
		w := mustCreate(t, cfg, "")
		mustSave(t, w, hardstate(1, 1, 3), ents(1, 10, 1))
		mustSave(t, w, hardstate(2, 2, 3), ents(8, 9, 2))
		mustClose(t, w)

		w, rr := mustOpen(t, cfg, SnapshotMark{})
		checkEntries(t, rr.Entries, append(ents(1, 7, 1), ents(8, 9, 2)...))
		// Appending after the reopen continues from the new tail.
		mustSave(t, w, nil, ents(10, 10, 2))
		mustClose(t, w)
		w, rr = mustOpen(t, cfg, SnapshotMark{})
		checkEntries(t, rr.Entries, append(ents(1, 7, 1), ents(8, 10, 2)...))
		// Reading from a snapshot inside the overwritten range.
		mustClose(t, w)
		w, rr = mustOpen(t, cfg, SnapshotMark{Index: 8, Term: 2})
		checkEntries(t, rr.Entries, ents(9, 10, 2))
		mustClose(t, w)
	}
}

func TestSnapshotMarksAndReleaseTo(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 400)
	w := mustCreate(t, cfg, "id")
	for i := uint64(1); i <= 40; i++ {
		mustSave(t, w, hardstate(1, 1, i-1), ents(i, i, 1))
	}
	before := segmentFiles(t, fs, testDir)
	if len(before) < 4 {
		t.Fatalf("want several segments, got %v", before)
	}
	m := SnapshotMark{Index: 30, Term: 1}
	if err := w.SaveSnapshotMark(SnapshotMark{Index: 10, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshotMark(m); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseTo(30); err != nil {
		t.Fatal(err)
	}
	after := segmentFiles(t, fs, testDir)
	if len(after) >= len(before) {
		t.Fatalf("ReleaseTo(30) removed nothing: %v", after)
	}
	if after[len(after)-1] != before[len(before)-1] {
		t.Fatalf("current segment removed: %v -> %v", before, after)
	}
	// Every removed segment held only entries <= 30: the first retained one
	// must still hold the entry after the last removed one's, i.e. the
	// retained log reaches back to 30 or earlier.
	mustSave(t, w, hardstate(1, 2, 40), nil) // a vote change: written and synced
	mustClose(t, w)

	w, rr := mustOpen(t, cfg, m)
	checkEntries(t, rr.Entries, ents(31, 40, 1))
	if got := rr.Marks[len(rr.Marks)-1]; got != m {
		t.Fatalf("newest mark = %+v, want %+v (marks %v)", got, m, rr.Marks)
	}
	if got, want := hsString(rr.HardState), hsString(hardstate(1, 2, 40)); got != want {
		t.Fatalf("hard state = %s, want %s", got, want)
	}
	if string(rr.Metadata) != "id" {
		t.Fatalf("metadata = %q", rr.Metadata)
	}
	mustClose(t, w)

	// From the beginning the log now has a hole: ErrGap, no state.
	if w, rr, err := Open(cfg, SnapshotMark{}); !errors.Is(err, ErrGap) || w != nil || rr != nil {
		t.Fatalf("Open from 0 after release = %v, %v, %v; want ErrGap and nothing", w, rr, err)
	}

	// Releasing everything keeps the current segment, and the hard state and
	// newest mark survive in its header group.
	w, _ = mustOpen(t, cfg, m)
	m = SnapshotMark{Index: 40, Term: 1}
	if err := w.SaveSnapshotMark(m); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseTo(1000); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, fs, testDir); len(got) != 1 || got[0] != after[len(after)-1] {
		t.Fatalf("ReleaseTo(1000) left %v", got)
	}
	mustClose(t, w)
	w, rr = mustOpen(t, cfg, m)
	defer mustClose(t, w)
	if got, want := hsString(rr.HardState), hsString(hardstate(1, 2, 40)); got != want {
		t.Fatalf("hard state after full release = %s, want %s", got, want)
	}
	if len(rr.Marks) == 0 || rr.Marks[len(rr.Marks)-1] != m {
		t.Fatalf("marks after full release = %v", rr.Marks)
	}
}

func TestReleaseToKeepsSegmentsWithLaterEntries(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 300)
	w := mustCreate(t, cfg, "")
	defer mustClose(t, w)
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, w, nil, ents(i, i, 1))
	}
	n := len(segmentFiles(t, fs, testDir))
	if err := w.ReleaseTo(0); err != nil {
		t.Fatal(err)
	}
	if got := len(segmentFiles(t, fs, testDir)); got != n {
		t.Fatalf("ReleaseTo(0) removed %d segments", n-got)
	}
	for idx := uint64(1); idx <= 20; idx++ {
		if err := w.ReleaseTo(idx); err != nil {
			t.Fatal(err)
		}
		// Whatever is left must still contain every entry above idx.
		w2, rr, err := Open(cfg, SnapshotMark{Index: idx, Term: 1})
		if err != nil {
			t.Fatalf("after ReleaseTo(%d): Open: %v", idx, err)
		}
		checkEntries(t, rr.Entries, ents(idx+1, 20, 1)[:20-idx])
		mustClose(t, w2)
	}
}

func TestOpenFromSnapshot(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 0)
	w := mustCreate(t, cfg, "")
	mustSave(t, w, hardstate(1, 1, 5), ents(1, 5, 1))
	// A follower that receives a snapshot far ahead of its log.
	if err := w.SaveSnapshotMark(SnapshotMark{Index: 100, Term: 3}); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hardstate(3, 0, 101), ents(101, 102, 3))
	mustClose(t, w)

	tests := []struct {
		from SnapshotMark
		want []*raftpb.Entry
		err  error
	}{
		{SnapshotMark{Index: 100, Term: 3}, ents(101, 102, 3), nil},
		{SnapshotMark{Index: 101, Term: 3}, ents(102, 102, 3), nil},
		{SnapshotMark{Index: 200, Term: 3}, nil, nil},
		{SnapshotMark{}, nil, ErrGap},
		{SnapshotMark{Index: 3, Term: 1}, nil, ErrGap},
	}
	for _, tt := range tests {
		w, rr, err := Open(cfg, tt.from)
		if !errors.Is(err, tt.err) {
			t.Fatalf("Open(%+v) error = %v, want %v", tt.from, err, tt.err)
		}
		if err != nil {
			continue
		}
		checkEntries(t, rr.Entries, tt.want)
		if !slices.Equal(rr.Marks, []SnapshotMark{{Index: 100, Term: 3}}) {
			t.Fatalf("marks = %v", rr.Marks)
		}
		mustClose(t, w)
	}
}

func TestOpenIgnoresAndRemovesTempSegments(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 0)
	w := mustCreate(t, cfg, "")
	mustSave(t, w, nil, ents(1, 2, 1))
	mustClose(t, w)
	tmp := fs.PathJoin(testDir, segmentName(1, 3)+tempSuffix)
	writeFile(t, fs, tmp, []byte("half a header"))
	writeFile(t, fs, fs.PathJoin(testDir, "README"), []byte("not ours"))
	w, rr := mustOpen(t, cfg, SnapshotMark{})
	defer mustClose(t, w)
	checkEntries(t, rr.Entries, ents(1, 2, 1))
	if _, err := fs.Stat(tmp); err == nil {
		t.Fatal("temp segment survived Open")
	}
}

// TestCommitOnlySaveWritesNothing checks raft's MustSync rule: a hard state
// that only moves the commit index costs no write or fsync; the next batch
// carries it.
func TestCommitOnlySaveWritesNothing(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs, 64<<10)
	w := mustCreate(t, cfg, "id")
	mustSave(t, w, hardstate(2, 1, 0), ents(1, 3, 2))
	size := func() int64 {
		t.Helper()
		segs := segmentFiles(t, fs, testDir)
		f, err := fs.Open(fs.PathJoin(testDir, segs[len(segs)-1]))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		data := make([]byte, 64<<10)
		n, _ := f.ReadAt(data, 0)
		last := 0
		for i := 0; i < n; i++ {
			if data[i] != 0 {
				last = i
			}
		}
		return int64(last)
	}
	before := size()
	mustSave(t, w, hardstate(2, 1, 3), nil)
	if after := size(); after != before {
		t.Fatalf("commit-only Save wrote %d bytes", after-before)
	}
	mustClose(t, w)
	w, rr := mustOpen(t, cfg, SnapshotMark{})
	if got, want := hsString(rr.HardState), hsString(hardstate(2, 1, 0)); got != want {
		t.Fatalf("after reopen hard state = %s, want %s (commit-only save not on disk)", got, want)
	}
	// The next batch with entries carries the newer commit index, even
	// though its own Ready had no hard state.
	mustSave(t, w, hardstate(2, 1, 3), nil)
	mustSave(t, w, nil, ents(4, 4, 2))
	mustClose(t, w)
	w, rr = mustOpen(t, cfg, SnapshotMark{})
	defer mustClose(t, w)
	if got, want := hsString(rr.HardState), hsString(hardstate(2, 1, 3)); got != want {
		t.Fatalf("hard state = %s, want %s", got, want)
	}
}

// TestOnSyncTimesBatchSyncsOnly checks that Config.OnSync sees the
// fdatasync of every batch a caller waits for (Save with entries or a new
// term or vote, SaveSnapshotMark, after reopening too) and nothing else: not
// a commit-only Save, which writes nothing, and not the syncs of segment
// creation and rollover.
func TestOnSyncTimesBatchSyncsOnly(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		fs := vfs.NewMem()
		var calls int
		cfg := testConfig(fs, 4<<10)
		cfg.UnsafeNoSync = noSync
		cfg.OnSync = func(d time.Duration) {
			if d < 0 {
				t.Errorf("OnSync(%v)", d)
			}
			calls++
		}
		want := func(n int) {
			t.Helper()
			if noSync {
				n = 0 // nothing is synced, so nothing is timed
			}
			if calls != n {
				t.Fatalf("noSync=%v: OnSync called %d times, want %d", noSync, calls, n)
			}
		}
		w := mustCreate(t, cfg, "id")
		want(0)
		mustSave(t, w, hardstate(2, 1, 0), ents(1, 3, 2))
		want(1)
		mustSave(t, w, hardstate(2, 1, 3), nil) // commit-only: no write
		want(1)
		mustSave(t, w, hardstate(3, 0, 3), nil) // a new term must be durable
		want(2)
		// Enough batches to roll over to new segments: one sync per batch.
		for i := uint64(4); i < 40; i++ {
			mustSave(t, w, nil, []*raftpb.Entry{ent(i, 3, strings.Repeat("x", 300))})
		}
		if n := len(segmentFiles(t, fs, testDir)); n < 2 {
			t.Fatalf("%d segments, want a rollover", n)
		}
		want(38)
		if err := w.SaveSnapshotMark(SnapshotMark{Index: 10, Term: 3}); err != nil {
			t.Fatal(err)
		}
		want(39)
		mustClose(t, w)
		w, _ = mustOpen(t, cfg, SnapshotMark{Index: 10, Term: 3})
		mustSave(t, w, nil, ents(40, 40, 3))
		want(40)
		mustClose(t, w)
	}
}
