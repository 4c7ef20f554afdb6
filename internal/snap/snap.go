package snap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	iofs "io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/durable"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/wal"
)

var (
	// ErrNotFound means no (acceptable) snapshot file exists.
	ErrNotFound = errors.New("snap: no snapshot")
	// ErrCorrupt means a snapshot file failed its checks; the error names
	// the file.
	ErrCorrupt = errors.New("snap: corrupt snapshot")
	// ErrEmpty is returned by Save for a snapshot with index 0, which raft
	// uses to mean "no snapshot".
	ErrEmpty = errors.New("snap: empty snapshot")
)

const (
	snapExt    = ".snap"
	tempSuffix = ".tmp"
	brokenExt  = ".broken"
	// len("%016x-%016x.snap")
	snapNameLen = 16 + 1 + 16 + len(snapExt)

	headerSize    = 32
	formatVersion = 1
	// chunkSize bounds the scratch buffer Save copies through: vfs.File.Write
	// may scribble on its argument, so caller memory is never handed to it.
	chunkSize = 256 << 10
)

var (
	magic    = [8]byte{'C', 'O', 'N', 'C', 'S', 'N', 'A', 'P'}
	crcTable = crc32.MakeTable(crc32.Castagnoli)
	le       = binary.LittleEndian
)

// Snapshotter owns a directory of snapshot files. Its methods are safe for
// concurrent use; they serialize on one mutex, and Save holds it for the
// whole write and fsyncs.
type Snapshotter struct {
	mu     sync.Mutex
	fs     vfs.FS
	dir    string
	logger *slog.Logger
}

// New returns a Snapshotter for dir, creating it (durably) if needed.
func New(fs vfs.FS, dir string, logger *slog.Logger) (*Snapshotter, error) {
	if fs == nil {
		return nil, errors.New("snap: fs is required")
	}
	if dir == "" {
		return nil, errors.New("snap: dir is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := mkdirAllDurable(fs, dir); err != nil {
		return nil, err
	}
	return &Snapshotter{fs: fs, dir: dir, logger: logger}, nil
}

// fileName is %016x-%016x.snap of term and index, so names sort by term,
// then index.
func fileName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", term, index, snapExt)
}

func parseName(name string) (term, index uint64, ok bool) {
	if len(name) != snapNameLen || name[16] != '-' || !strings.HasSuffix(name, snapExt) {
		return 0, 0, false
	}
	term, err1 := strconv.ParseUint(name[:16], 16, 64)
	index, err2 := strconv.ParseUint(name[17:33], 16, 64)
	if err1 != nil || err2 != nil || fileName(term, index) != name {
		return 0, 0, false
	}
	return term, index, true
}

// Save writes snap durably: a temp file, fsync, rename to its final name,
// fsync of the directory. When Save returns nil the snapshot survives a
// crash; if it fails or the process dies half-way, at most a *.snap.tmp
// file is left, which Load ignores and Purge removes. Save blocks for the
// whole write.
func (s *Snapshotter) Save(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if md.GetIndex() == 0 {
		return ErrEmpty
	}
	meta, err := proto.Marshal(md)
	if err != nil {
		return fmt.Errorf("snap: encode metadata: %w", err)
	}
	data := snap.GetData()
	var hdr [headerSize]byte
	putHeader(hdr[:], meta, data)

	s.mu.Lock()
	defer s.mu.Unlock()
	name := fileName(md.GetTerm(), md.GetIndex())
	path := s.fs.PathJoin(s.dir, name)
	tmp := path + tempSuffix
	if err := s.writeFile(tmp, hdr[:], meta, data); err != nil {
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("snap: write %s: %w", name, err)
	}
	if err := s.fs.Rename(tmp, path); err != nil {
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("snap: rename %s: %w", name, err)
	}
	if err := syncDir(s.fs, s.dir); err != nil {
		return err
	}
	s.logger.Debug("snap: saved", "file", name, "bytes", headerSize+len(meta)+len(data))
	return nil
}

func (s *Snapshotter) writeFile(path string, parts ...[]byte) error {
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	scratch := make([]byte, min(total, chunkSize))
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := f.Write(scratch[:n])
		n = 0
		return err
	}
	for _, p := range parts {
		for len(p) > 0 {
			c := copy(scratch[n:], p)
			n += c
			p = p[c:]
			if n == len(scratch) {
				if err := flush(); err != nil {
					_ = f.Close()
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// Load reads the snapshot with exactly this index and term. It returns
// ErrNotFound if there is no such file and an error matching ErrCorrupt,
// naming the file, if the file fails its checks.
func (s *Snapshotter) Load(index, term uint64) (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked(fileName(term, index), index, term)
}

func (s *Snapshotter) loadLocked(name string, index, term uint64) (*raftpb.Snapshot, error) {
	f, err := s.fs.Open(s.fs.PathJoin(s.dir, name))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("snap: open %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("snap: read %s: %w", name, err)
	}
	snap, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
	if md := snap.GetMetadata(); md.GetIndex() != index || md.GetTerm() != term {
		return nil, fmt.Errorf("%w: %s: metadata says index %d term %d", ErrCorrupt, name, md.GetIndex(), md.GetTerm())
	}
	return snap, nil
}

// LoadNewest returns the newest snapshot (highest index, then term) that is
// among marks and passes its checks. A nil marks slice accepts every file;
// a non-nil empty one accepts none. Files failing their checks are renamed
// to *.broken, logged at warn, and skipped. ErrNotFound if nothing is left.
func (s *Snapshotter) LoadNewest(marks []wal.SnapshotMark) (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, err := s.listLocked()
	if err != nil {
		return nil, err
	}
	var allowed map[wal.SnapshotMark]bool
	if marks != nil {
		allowed = make(map[wal.SnapshotMark]bool, len(marks))
		for _, m := range marks {
			allowed[m] = true
		}
	}
	for _, sf := range files {
		if allowed != nil && !allowed[wal.SnapshotMark{Index: sf.index, Term: sf.term}] {
			continue
		}
		snap, err := s.loadLocked(sf.name, sf.index, sf.term)
		if err == nil {
			return snap, nil
		}
		if !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		s.logger.Warn("snap: skipping corrupt snapshot", "file", sf.name, "err", err)
		from := s.fs.PathJoin(s.dir, sf.name)
		if rerr := s.fs.Rename(from, from+brokenExt); rerr != nil {
			return nil, fmt.Errorf("snap: set aside %s: %w", sf.name, rerr)
		}
	}
	return nil, ErrNotFound
}

// Purge keeps the newest keep snapshot files (at least one) and removes the
// older ones and any temp files left by interrupted Saves. *.broken files
// are left for an operator.
func (s *Snapshotter) Purge(keep int) error {
	if keep < 1 {
		return fmt.Errorf("snap: Purge(%d): must keep at least one snapshot", keep)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names, err := s.fs.List(s.dir)
	if err != nil {
		return fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	var remove []string
	for _, n := range names {
		if strings.HasSuffix(n, snapExt+tempSuffix) {
			remove = append(remove, n)
		}
	}
	files, err := s.listLocked()
	if err != nil {
		return err
	}
	for i := keep; i < len(files); i++ {
		remove = append(remove, files[i].name)
	}
	for _, n := range remove {
		if err := s.fs.Remove(s.fs.PathJoin(s.dir, n)); err != nil {
			return fmt.Errorf("snap: remove %s: %w", n, err)
		}
	}
	if len(remove) > 0 {
		return syncDir(s.fs, s.dir)
	}
	return nil
}

type snapFile struct {
	name        string
	index, term uint64
}

// listLocked returns the snapshot files, newest (highest index, then term)
// first.
func (s *Snapshotter) listLocked() ([]snapFile, error) {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return nil, fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	var files []snapFile
	for _, n := range names {
		if term, index, ok := parseName(n); ok {
			files = append(files, snapFile{name: n, index: index, term: term})
		}
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].index != files[j].index {
			return files[i].index > files[j].index
		}
		return files[i].term > files[j].term
	})
	return files, nil
}

// putHeader fills the 32-byte file header for meta and data (see doc.go).
func putHeader(h []byte, meta, data []byte) {
	copy(h[0:8], magic[:])
	le.PutUint32(h[8:12], formatVersion)
	le.PutUint32(h[16:20], uint32(len(meta)))
	le.PutUint32(h[20:24], 0)
	le.PutUint64(h[24:32], uint64(len(data)))
	crc := crc32.Update(0, crcTable, h[16:32])
	crc = crc32.Update(crc, crcTable, meta)
	crc = crc32.Update(crc, crcTable, data)
	le.PutUint32(h[12:16], crc)
}

// decode parses a whole snapshot file. It never panics; Data aliases b.
func decode(b []byte) (*raftpb.Snapshot, error) {
	if len(b) < headerSize {
		return nil, errors.New("file shorter than its header")
	}
	if !bytes.Equal(b[0:8], magic[:]) {
		return nil, errors.New("bad magic")
	}
	if v := le.Uint32(b[8:12]); v != formatVersion {
		return nil, fmt.Errorf("unsupported version %d", v)
	}
	if le.Uint32(b[20:24]) != 0 {
		return nil, errors.New("reserved header bytes not zero")
	}
	metaLen := uint64(le.Uint32(b[16:20]))
	dataLen := le.Uint64(b[24:32])
	body := uint64(len(b) - headerSize)
	if metaLen > body || dataLen != body-metaLen {
		return nil, fmt.Errorf("header says %d+%d bytes, file holds %d", metaLen, dataLen, body)
	}
	if crc32.Checksum(b[16:], crcTable) != le.Uint32(b[12:16]) {
		return nil, errors.New("crc mismatch")
	}
	md := &raftpb.SnapshotMetadata{}
	if err := proto.Unmarshal(b[headerSize:headerSize+metaLen], md); err != nil {
		return nil, fmt.Errorf("decode metadata: %w", err)
	}
	snap := &raftpb.Snapshot{Metadata: md}
	if dataLen > 0 {
		snap.Data = b[headerSize+metaLen:]
	}
	return snap, nil
}

func syncDir(fs vfs.FS, dir string) error {
	if err := durable.SyncDir(fs, dir); err != nil {
		return fmt.Errorf("snap: %w", err)
	}
	return nil
}

func mkdirAllDurable(fs vfs.FS, dir string) error {
	if err := durable.MkdirAll(fs, dir); err != nil {
		return fmt.Errorf("snap: %w", err)
	}
	return nil
}
