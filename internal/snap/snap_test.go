package snap

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sort"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/wal"
)

const testDir = "snap"

func snapshot(index, term uint64, data string) *raftpb.Snapshot {
	s := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(index),
		Term:      proto.Uint64(term),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
	}}
	if data != "" {
		s.Data = []byte(data)
	}
	return s
}

func mustNew(t testing.TB, fs vfs.FS) *Snapshotter {
	t.Helper()
	s, err := New(fs, testDir, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func mustSave(t testing.TB, s *Snapshotter, snap *raftpb.Snapshot) {
	t.Helper()
	if err := s.Save(snap); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func checkSnap(t testing.TB, got, want *raftpb.Snapshot) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("snapshot = %v, want %v", got, want)
	}
}

func listDir(t testing.TB, fs vfs.FS) []string {
	t.Helper()
	names, err := fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

func readFile(t testing.TB, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(fs.PathJoin(testDir, name))
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

func writeFile(t testing.TB, fs vfs.FS, name string, b []byte) {
	t.Helper()
	f, err := fs.Create(fs.PathJoin(testDir, name), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Clone(b)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(nil, "d", nil); err == nil {
		t.Error("New(nil fs) succeeded")
	}
	if _, err := New(vfs.NewMem(), "", nil); err == nil {
		t.Error("New(empty dir) succeeded")
	}
}

func TestSaveLoad(t *testing.T) {
	fs := vfs.NewMem()
	s := mustNew(t, fs)
	big := string(bytes.Repeat([]byte("0123456789"), chunkSize/5)) // spans several scratch chunks
	for _, snap := range []*raftpb.Snapshot{
		snapshot(5, 1, "five"),
		snapshot(1<<40, 9, ""),
		snapshot(7, 2, big),
	} {
		mustSave(t, s, snap)
		got, err := s.Load(snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm())
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		checkSnap(t, got, snap)
	}
	if got := listDir(t, fs); !slices.Equal(got, []string{
		"0000000000000001-0000000000000005.snap",
		"0000000000000002-0000000000000007.snap",
		"0000000000000009-0000010000000000.snap",
	}) {
		t.Fatalf("files = %v", got)
	}
	if _, err := s.Load(5, 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load(wrong term) = %v, want ErrNotFound", err)
	}
	if err := s.Save(snapshot(0, 0, "x")); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Save(index 0) = %v, want ErrEmpty", err)
	}
	if err := s.Save(nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Save(nil) = %v, want ErrEmpty", err)
	}
}

func TestSaveDoesNotTouchCallerData(t *testing.T) {
	fs := vfs.NewMem()
	s := mustNew(t, fs)
	snap := snapshot(3, 1, "caller owns these bytes")
	want := bytes.Clone(snap.Data)
	mustSave(t, s, snap)
	if !bytes.Equal(snap.Data, want) {
		t.Fatalf("Save modified the caller's data: %q", snap.Data)
	}
}

func TestCorruptFiles(t *testing.T) {
	good := func() []byte {
		fs := vfs.NewMem()
		mustSave(t, mustNew(t, fs), snapshot(10, 2, "payload"))
		return readFile(t, fs, fileName(2, 10))
	}()
	other := func() []byte {
		fs := vfs.NewMem()
		mustSave(t, mustNew(t, fs), snapshot(11, 2, "payload"))
		return readFile(t, fs, fileName(2, 11))
	}()
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short header", good[:31]},
		{"bad magic", flip(good, 0)},
		{"bad version", flip(good, 8)},
		{"bad crc", flip(good, 12)},
		{"bad meta len", flip(good, 16)},
		{"reserved", flip(good, 21)},
		{"bad data len", flip(good, 24)},
		{"metadata byte", flip(good, 33)},
		{"data byte", flip(good, len(good)-1)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"other snapshot's content", other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s := mustNew(t, fs)
			writeFile(t, fs, fileName(2, 10), tt.data)
			_, err := s.Load(10, 2)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load = %v, want ErrCorrupt", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(fileName(2, 10))) {
				t.Fatalf("error %q does not name the file", err)
			}
			// Streaming fails too: at Open, or at the end of the data.
			r, err := s.Open(10, 2)
			if err == nil {
				_, err = io.ReadAll(r)
				r.Close()
			}
			if !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(fileName(2, 10))) {
				t.Fatalf("Open and read = %v, want ErrCorrupt naming the file", err)
			}
		})
	}
}

// TestOpenStreams: Open gives the data Load gives, in pieces as small as
// the caller reads, with io.EOF only after it; a Purge meanwhile does not
// disturb a file already open.
func TestOpenStreams(t *testing.T) {
	fs := vfs.NewMem()
	s := mustNew(t, fs)
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	want := snapshot(10, 2, string(data))
	mustSave(t, s, want)
	mustSave(t, s, snapshot(20, 2, "newer"))
	r, err := s.Open(10, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != int64(len(data)) || !proto.Equal(r.Metadata(), want.GetMetadata()) {
		t.Fatalf("Size %d metadata %v, want %d %v", r.Size(), r.Metadata(), len(data), want.GetMetadata())
	}
	if err := s.Purge(1); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 100_003)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", len(got), err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("streamed %d bytes that differ from the %d saved", len(got), len(data))
	}
	if _, err := s.Open(10, 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a purged snapshot = %v, want ErrNotFound", err)
	}
	empty := snapshot(30, 3, "")
	mustSave(t, s, empty)
	r2, err := s.Open(30, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if n, err := r2.Read(buf); n != 0 || err != io.EOF || r2.Size() != 0 {
		t.Errorf("empty snapshot: Read = %d, %v; Size %d", n, err, r2.Size())
	}
}

func flip(b []byte, at int) []byte {
	b = bytes.Clone(b)
	b[at] ^= 0x01
	return b
}

func TestLoadNewest(t *testing.T) {
	fs := vfs.NewMem()
	s := mustNew(t, fs)
	if _, err := s.LoadNewest(nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadNewest on empty dir = %v", err)
	}
	for _, sn := range []*raftpb.Snapshot{snapshot(10, 1, "a"), snapshot(20, 2, "b"), snapshot(30, 2, "c"), snapshot(30, 3, "d")} {
		mustSave(t, s, sn)
	}
	m := func(i, t uint64) wal.SnapshotMark { return wal.SnapshotMark{Index: i, Term: t} }
	tests := []struct {
		name  string
		marks []wal.SnapshotMark
		want  string // data, "" for ErrNotFound
	}{
		{"nil accepts all", nil, "d"},
		{"empty accepts none", []wal.SnapshotMark{}, ""},
		{"only old", []wal.SnapshotMark{m(10, 1)}, "a"},
		{"newest of marks", []wal.SnapshotMark{m(10, 1), m(20, 2), m(30, 2)}, "c"},
		{"unknown mark", []wal.SnapshotMark{m(40, 3)}, ""},
		{"term must match", []wal.SnapshotMark{m(20, 1)}, ""},
	}
	for _, tt := range tests {
		got, err := s.LoadNewest(tt.marks)
		if tt.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: LoadNewest = %v, %v; want ErrNotFound", tt.name, got, err)
			}
			continue
		}
		if err != nil || string(got.GetData()) != tt.want {
			t.Errorf("%s: LoadNewest = %q, %v; want %q", tt.name, got.GetData(), err, tt.want)
		}
	}

	// Corrupt the newest: it is set aside and the next one loads.
	writeFile(t, fs, fileName(3, 30), flip(readFile(t, fs, fileName(3, 30)), 40))
	got, err := s.LoadNewest(nil)
	if err != nil || string(got.GetData()) != "c" {
		t.Fatalf("LoadNewest past a corrupt file = %q, %v; want c", got.GetData(), err)
	}
	if names := listDir(t, fs); !slices.Contains(names, fileName(3, 30)+brokenExt) || slices.Contains(names, fileName(3, 30)) {
		t.Fatalf("corrupt file not renamed to .broken: %v", names)
	}
}

func TestPurge(t *testing.T) {
	fs := vfs.NewMem()
	s := mustNew(t, fs)
	for i := uint64(1); i <= 5; i++ {
		mustSave(t, s, snapshot(i*10, 1, fmt.Sprint(i)))
	}
	writeFile(t, fs, fileName(1, 60)+tempSuffix, []byte("half"))
	writeFile(t, fs, fileName(1, 5)+brokenExt, []byte("bad"))
	writeFile(t, fs, "unrelated", []byte("x"))
	if err := s.Purge(0); err == nil {
		t.Fatal("Purge(0) succeeded")
	}
	if err := s.Purge(2); err != nil {
		t.Fatal(err)
	}
	want := []string{fileName(1, 5) + brokenExt, fileName(1, 40), fileName(1, 50), "unrelated"}
	if got := listDir(t, fs); !slices.Equal(got, want) {
		t.Fatalf("after Purge(2): %v, want %v", got, want)
	}
	if err := s.Purge(10); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, fs); !slices.Equal(got, want) {
		t.Fatalf("Purge(10) removed files: %v", got)
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name        string
		term, index uint64
		ok          bool
	}{
		{"0000000000000002-0000000000001a2f.snap", 2, 0x1a2f, true},
		{"0000000000000002-0000000000001a2f.snap.tmp", 0, 0, false},
		{"0000000000000002-0000000000001a2f.snap.broken", 0, 0, false},
		{"0000000000000002-0000000000001A2F.snap", 0, 0, false},
		{"2-1a2f.snap", 0, 0, false},
	}
	for _, tt := range tests {
		term, index, ok := parseName(tt.name)
		if term != tt.term || index != tt.index || ok != tt.ok {
			t.Errorf("parseName(%q) = %d, %d, %v; want %d, %d, %v", tt.name, term, index, ok, tt.term, tt.index, tt.ok)
		}
	}
}

func FuzzDecode(f *testing.F) {
	fs := vfs.NewMem()
	s, _ := New(fs, testDir, nil)
	_ = s.Save(snapshot(10, 2, "payload"))
	_ = s.Save(snapshot(11, 2, ""))
	names, _ := fs.List(testDir)
	for _, n := range names {
		f.Add(readFile(f, fs, n))
	}
	f.Add([]byte("CONCSNAP"))
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, err := decode(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same header.
		meta, merr := proto.Marshal(snap.GetMetadata())
		if merr != nil {
			t.Fatal(merr)
		}
		var hdr [headerSize]byte
		putHeader(hdr[:], meta, int64(len(snap.GetData())), crc32.Checksum(snap.GetData(), crcTable))
		if le.Uint32(hdr[12:16]) != le.Uint32(b[12:16]) && bytes.Equal(meta, b[headerSize:headerSize+len(meta)]) {
			t.Fatalf("decoded file's crc does not re-encode")
		}
	})
}
