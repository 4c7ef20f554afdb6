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
// concurrent use (see the package doc for what waits for what).
type Snapshotter struct {
	mu      sync.Mutex
	writing map[string]bool // temp files being written (SaveStream)
	fs      vfs.FS
	dir     string
	logger  *slog.Logger
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
	return &Snapshotter{fs: fs, dir: dir, logger: logger, writing: make(map[string]bool)}, nil
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
	_, err := s.SaveStream(snap.GetMetadata(), func(w io.Writer) error {
		_, err := w.Write(snap.GetData())
		return err
	})
	return err
}

// SaveStream is Save for data that write produces into the file as it goes,
// so a large snapshot is never whole in memory. It returns the number of
// data bytes. The file is written outside the Snapshotter's lock (Purge
// leaves a temp file being written alone); only the rename and the
// directory fsync take it, so a long write never holds up Load or Purge.
func (s *Snapshotter) SaveStream(md *raftpb.SnapshotMetadata, write func(io.Writer) error) (int64, error) {
	if md.GetIndex() == 0 {
		return 0, ErrEmpty
	}
	meta, err := proto.Marshal(md)
	if err != nil {
		return 0, fmt.Errorf("snap: encode metadata: %w", err)
	}
	name := fileName(md.GetTerm(), md.GetIndex())
	path := s.fs.PathJoin(s.dir, name)
	tmp := path + tempSuffix

	s.mu.Lock()
	if s.writing[tmp] {
		s.mu.Unlock()
		return 0, fmt.Errorf("snap: %s is already being written", name)
	}
	s.writing[tmp] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.writing, tmp)
		s.mu.Unlock()
	}()

	n, err := s.writeFile(tmp, meta, write)
	if err != nil {
		_ = s.fs.Remove(tmp)
		return 0, fmt.Errorf("snap: write %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fs.Rename(tmp, path); err != nil {
		_ = s.fs.Remove(tmp)
		return 0, fmt.Errorf("snap: rename %s: %w", name, err)
	}
	if err := syncDir(s.fs, s.dir); err != nil {
		return 0, err
	}
	s.logger.Debug("snap: saved", "file", name, "bytes", headerSize+int64(len(meta))+n)
	return n, nil
}

// writeFile writes a complete snapshot file at path and fsyncs it: a
// header whose lengths and checksum are not known yet, the metadata, the
// data as write produces it, then the real header over the first bytes.
func (s *Snapshotter) writeFile(path string, meta []byte, write func(io.Writer) error) (int64, error) {
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return 0, err
	}
	dw := &dataWriter{f: f, buf: make([]byte, 0, 4<<10)}
	var hdr [headerSize]byte
	_, _ = dw.Write(hdr[:])
	_, _ = dw.Write(meta)
	dw.n, dw.crc = 0, 0 // count and checksum the data alone
	if err := write(dw); err != nil {
		_ = f.Close()
		return 0, err
	}
	if err := dw.flush(); err != nil {
		_ = f.Close()
		return 0, err
	}
	putHeader(hdr[:], meta, dw.n, dw.crc)
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		_ = f.Close()
		return 0, err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return 0, err
	}
	return dw.n, f.Close()
}

// dataWriter copies everything written to it through its own buffer
// (vfs.File.Write may scribble on its argument, so caller memory is never
// handed to it), counting bytes and keeping their CRC-32C. Every
// syncEvery bytes it asks the kernel to start writing back what it has
// (vfs.File.SyncTo: sync_file_range on Linux), so the final fsync is short:
// one fsync of hundreds of megabytes of dirty pages would hold up the
// WAL's own fsyncs on the same filesystem for as long.
type dataWriter struct {
	f      vfs.File
	buf    []byte
	n      int64
	crc    uint32
	off    int64 // bytes written to f
	synced int64 // offset of the last SyncTo
	err    error
}

const syncEvery = 4 << 20

func (d *dataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	d.n += int64(len(p))
	d.crc = crc32.Update(d.crc, crcTable, p)
	written := len(p)
	for len(p) > 0 {
		c := copy(d.buf[len(d.buf):cap(d.buf)], p)
		d.buf = d.buf[:len(d.buf)+c]
		p = p[c:]
		switch {
		case len(d.buf) < cap(d.buf):
		case cap(d.buf) < chunkSize:
			// Grow towards chunkSize: most snapshots of a small state fit
			// in a few KiB, and the simulation writes thousands of them.
			d.buf = append(make([]byte, 0, min(2*cap(d.buf), chunkSize)), d.buf...)
		default:
			if err := d.flush(); err != nil {
				return 0, err
			}
		}
	}
	return written, nil
}

func (d *dataWriter) flush() error {
	if d.err == nil && len(d.buf) > 0 {
		_, d.err = d.f.Write(d.buf)
		d.off += int64(len(d.buf))
		d.buf = d.buf[:0]
		if d.err == nil && d.off-d.synced >= syncEvery {
			_, d.err = d.f.SyncTo(d.off)
			d.synced = d.off
		}
	}
	return d.err
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
	if err == nil {
		err = checkNamed(snap.GetMetadata(), index, term)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
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
		if strings.HasSuffix(n, snapExt+tempSuffix) && !s.writing[s.fs.PathJoin(s.dir, n)] {
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

// putHeader fills the 32-byte file header for meta and dataLen bytes of
// data whose CRC-32C is dataCRC (see doc.go for the layout).
func putHeader(h []byte, meta []byte, dataLen int64, dataCRC uint32) {
	copy(h[0:8], magic[:])
	le.PutUint32(h[8:12], formatVersion)
	le.PutUint32(h[16:20], uint32(len(meta)))
	le.PutUint32(h[20:24], 0)
	le.PutUint64(h[24:32], uint64(dataLen))
	crc := crc32.Update(0, crcTable, h[16:32])
	crc = crc32.Update(crc, crcTable, meta)
	le.PutUint32(h[12:16], crc32Combine(crc, dataCRC, dataLen))
}

// fileHeader is a file's 32-byte header, parsed.
type fileHeader struct {
	metaLen, dataLen uint64
	crc              uint32 // of every byte from offset 16 to the end
}

// parseHeader checks a file's header against the file's size; h holds at
// least its first headerSize bytes.
func parseHeader(h []byte, fileSize uint64) (fileHeader, error) {
	if len(h) < headerSize || fileSize < headerSize {
		return fileHeader{}, errors.New("file shorter than its header")
	}
	if !bytes.Equal(h[0:8], magic[:]) {
		return fileHeader{}, errors.New("bad magic")
	}
	if v := le.Uint32(h[8:12]); v != formatVersion {
		return fileHeader{}, fmt.Errorf("unsupported version %d", v)
	}
	if le.Uint32(h[20:24]) != 0 {
		return fileHeader{}, errors.New("reserved header bytes not zero")
	}
	fh := fileHeader{metaLen: uint64(le.Uint32(h[16:20])), dataLen: le.Uint64(h[24:32]), crc: le.Uint32(h[12:16])}
	body := fileSize - headerSize
	if fh.metaLen > body || fh.dataLen != body-fh.metaLen {
		return fileHeader{}, fmt.Errorf("header says %d+%d bytes, file holds %d", fh.metaLen, fh.dataLen, body)
	}
	return fh, nil
}

// decodeMeta decodes a file's metadata.
func decodeMeta(b []byte) (*raftpb.SnapshotMetadata, error) {
	md := &raftpb.SnapshotMetadata{}
	if err := proto.Unmarshal(b, md); err != nil {
		return nil, fmt.Errorf("decode metadata: %w", err)
	}
	return md, nil
}

// checkNamed reports whether md is the snapshot at index and term, which
// the file's name says.
func checkNamed(md *raftpb.SnapshotMetadata, index, term uint64) error {
	if md.GetIndex() != index || md.GetTerm() != term {
		return fmt.Errorf("metadata says index %d term %d", md.GetIndex(), md.GetTerm())
	}
	return nil
}

// decode parses a whole snapshot file. It never panics; Data aliases b.
func decode(b []byte) (*raftpb.Snapshot, error) {
	fh, err := parseHeader(b, uint64(len(b)))
	if err != nil {
		return nil, err
	}
	if crc32.Checksum(b[16:], crcTable) != fh.crc {
		return nil, errors.New("crc mismatch")
	}
	md, err := decodeMeta(b[headerSize : headerSize+fh.metaLen])
	if err != nil {
		return nil, err
	}
	snap := &raftpb.Snapshot{Metadata: md}
	if fh.dataLen > 0 {
		snap.Data = b[headerSize+fh.metaLen:]
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
