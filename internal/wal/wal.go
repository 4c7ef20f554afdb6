package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// DefaultSegmentSize is the preallocated size of a segment when
// Config.SegmentSize is zero.
const DefaultSegmentSize int64 = 64 << 20

var (
	// ErrCorrupt is matched (errors.Is) by every *CorruptError: a damaged
	// record that is not a torn tail, a broken segment chain, or a missing
	// segment. The node must not start on such a log.
	ErrCorrupt = errors.New("wal: corrupt log")
	// ErrGap means the log does not continue from the snapshot Open was
	// given: entries between the snapshot and the log were released (or
	// never written). The caller must load a newer snapshot.
	ErrGap = errors.New("wal: log does not continue from the snapshot")
	// ErrNotExist is returned by Open when dir holds no WAL.
	ErrNotExist = errors.New("wal: no WAL in directory")
	// ErrExist is returned by Create when dir already holds a WAL.
	ErrExist = errors.New("wal: WAL already exists in directory")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrBadEntries is returned by Save when the entries are not a run of
	// consecutive indexes starting above zero.
	ErrBadEntries = errors.New("wal: entries are not consecutive")
)

// CorruptError names the file and byte offset of a corruption. It matches
// ErrCorrupt with errors.Is. Offset is -1 when the problem is a whole file
// (a missing or misnamed segment) rather than a record.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("wal: corrupt segment %s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("wal: corrupt record in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Config configures a WAL.
type Config struct {
	// FS is the filesystem seam: vfs.Default in production, a (crashable)
	// MemFS in tests. Required.
	FS vfs.FS
	// Dir holds the segment files and nothing else of ours. Required.
	Dir string
	// SegmentSize is the number of bytes preallocated per segment and the
	// size at which the WAL rolls over to a new one. Zero means
	// DefaultSegmentSize. A single Save larger than a segment gets a segment
	// of its own that grows past SegmentSize.
	SegmentSize int64
	// Logger receives torn-tail repairs and rollover events; nil discards.
	Logger *slog.Logger
	// UnsafeNoSync skips the fdatasync of every batch (Save,
	// SaveSnapshotMark): the write still happens, so a process crash loses
	// nothing, but a power loss can take back batches Save already returned
	// for — raft acknowledgements included. It exists only so the durability
	// checkers can be seen to fail (server.Config.UnsafeNoFsync). Segment
	// creation, rollover and torn-tail repair still sync, so the segment
	// chain stays well formed (see doc.go, "fsync rules").
	UnsafeNoSync bool
	// ZeroAhead, when positive, is how many bytes after the append offset
	// a background goroutine keeps written with zeros and synced, so that
	// an append's fdatasync flushes data only (zero.go). Zero turns it off.
	// Ignored with UnsafeNoSync.
	ZeroAhead int64
	// OnSync, when set, is called with the duration of each batch's
	// fdatasync (Save, SaveSnapshotMark), on the caller's goroutine after
	// the sync returned without error. A Save that writes nothing (a
	// commit-only hard state) makes no call, nor do the syncs of segment
	// creation, rollover, repair and zero-ahead: it times the syncs a
	// caller waits for, which is what etcd's wal_fsync_duration_seconds
	// times.
	OnSync func(time.Duration)
}

// DefaultZeroAhead is the ZeroAhead every Concord member's WAL uses.
const DefaultZeroAhead int64 = 4 << 20

// Validate reports whether c is usable.
func (c Config) Validate() error {
	switch {
	case c.FS == nil:
		return errors.New("wal: Config.FS is required")
	case c.Dir == "":
		return errors.New("wal: Config.Dir is required")
	case c.SegmentSize < 0:
		return fmt.Errorf("wal: Config.SegmentSize %d is negative", c.SegmentSize)
	case c.ZeroAhead < 0:
		return fmt.Errorf("wal: Config.ZeroAhead %d is negative", c.ZeroAhead)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.SegmentSize == 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SnapshotMark identifies a snapshot the caller has made durable.
type SnapshotMark struct{ Index, Term uint64 }

// ReadResult is the durable state Open found.
type ReadResult struct {
	// Metadata is the opaque identity given to Create.
	Metadata []byte
	// HardState is the last hard state saved; an empty (all-nil) HardState
	// if none was.
	HardState *raftpb.HardState
	// Entries are the entries with Index > from.Index, in order, after
	// applying raft's overwrite rule (a later write of an index replaces it
	// and drops everything after it).
	Entries []*raftpb.Entry
	// Marks are the snapshot marks in the retained segments, oldest first.
	// Marks in segments removed by ReleaseTo are gone, but the newest mark
	// is always retained (every segment repeats it at its start).
	Marks []SnapshotMark
}

// WAL is an open write-ahead log. All methods are safe for concurrent use;
// they serialize on one mutex, and Save holds it across its fsync.
//
// After any write or sync error the WAL is poisoned: the state of the file
// is unknown (a failed fsync may have dropped pages), so every later call
// returns the same error and the caller must stop and re-Open.
type WAL struct {
	mu sync.Mutex

	fs      vfs.FS
	dir     string
	segSize int64
	logger  *slog.Logger
	noSync  bool // Config.UnsafeNoSync
	onSync  func(time.Duration)

	metadata []byte

	segs      []segment // live segments, oldest first; the last is current
	f         vfs.File  // current segment, open for writing
	off       int64     // next write offset in f
	dataStart int64     // end of the current segment's header batch

	zeroAhead int64    // Config.ZeroAhead; 0 once zeroing failed
	zeroEnd   int64    // f holds data or synced zeros before this offset
	zeroing   *zeroRun // the zeroing goroutine running, if any

	nextBatch uint32
	hsWritten hardState // the newest hard state in the files (w.hs may be newer by its commit index)
	lastIndex uint64    // last entry index written (raised by newer marks)
	hs        hardState
	mark      SnapshotMark // newest mark; zero if none
	hasMark   bool

	// spans locate the current log's entries in the segments, oldest
	// first; readers holds read handles of older segments (entries.go).
	spans   []span
	readers map[uint64]vfs.File

	buf    []byte // encoding buffer reused by every Save
	err    error  // sticky write error
	closed bool
}

type segment struct {
	seq        uint64
	firstIndex uint64
	maxIndex   uint64 // highest entry index in the segment; 0 if none
	name       string
}

// Exists reports whether dir holds a WAL (at least one segment file).
func Exists(fs vfs.FS, dir string) bool {
	if fs == nil {
		return false
	}
	names, err := fs.List(dir)
	if err != nil {
		return false
	}
	for _, n := range names {
		if _, _, ok := parseSegmentName(n); ok {
			return true
		}
	}
	return false
}

// Create makes a new WAL in dir, which must not hold one, and returns it
// ready for appends. metadata (the member and cluster identity) is stored in
// the header of every segment and returned by Open.
func Create(cfg Config, metadata []byte) (*WAL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(metadata) > maxPayload-segmentHeaderFixed {
		return nil, errors.New("wal: metadata too large")
	}
	cfg = cfg.withDefaults()
	if err := mkdirAllDurable(cfg.FS, cfg.Dir); err != nil {
		return nil, err
	}
	if Exists(cfg.FS, cfg.Dir) {
		return nil, fmt.Errorf("%w: %s", ErrExist, cfg.Dir)
	}
	if err := removeTemps(cfg.FS, cfg.Dir); err != nil {
		return nil, err
	}
	w := &WAL{
		fs:        cfg.FS,
		dir:       cfg.Dir,
		segSize:   cfg.SegmentSize,
		logger:    cfg.Logger,
		noSync:    cfg.UnsafeNoSync,
		zeroAhead: cfg.ZeroAhead,
		onSync:    cfg.OnSync,
		metadata:  slices.Clone(metadata),
		nextBatch: 1,
	}
	w.warnNoSync()
	if err := w.cutLocked(0, 0); err != nil {
		return nil, err
	}
	w.zeroAheadLocked() // w is not shared yet
	return w, nil
}

// Save appends the entries and then the hard state (skipped if empty) as one
// batch, and makes it durable with one write and one fdatasync before
// returning. A call without entries whose hard state keeps the term and vote
// and only moves the commit index writes nothing (raft's MustSync rule): a
// member may forget its commit index in a crash and learns it again from the
// leader, so it is not worth a second fsync per write. The newer commit index
// reaches the disk with the next batch or segment header. The batch is atomic across a crash: after Open either all of it
// is there or none of it is. Call it once per raft Ready. It rolls over to a
// new segment first when the batch would not fit the current one (that costs
// the new file's sync and a directory sync).
//
// ents must have consecutive indexes; the first may be at or below the last
// saved index, which overwrites that tail as raft requires. Save blocks for
// the duration of the fsync.
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	h := hardStateOf(hs)
	if h.isEmpty() && len(ents) == 0 {
		return nil
	}
	if len(ents) == 0 {
		w.mu.Lock()
		commitOnly := w.usableLocked() == nil && h.term == w.hs.term && h.vote == w.hs.vote
		if commitOnly {
			w.hs = h
		}
		w.mu.Unlock()
		if commitOnly {
			return nil
		}
	}
	size := 0
	for i, e := range ents {
		if e == nil || e.GetIndex() == 0 || e.GetIndex() != ents[0].GetIndex()+uint64(i) {
			return fmt.Errorf("%w: entry %d of %d", ErrBadEntries, i, len(ents))
		}
		n := entryPayloadLen(e)
		if n > maxPayload {
			return fmt.Errorf("wal: entry %d is %d bytes, over the %d-byte record limit", e.GetIndex(), n, maxPayload)
		}
		size += recordSize(n)
	}
	if !h.isEmpty() {
		size += recordSize(hardStateSize)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	if h.isEmpty() && w.hs != w.hsWritten {
		// Carry a commit index that an earlier commit-only Save skipped.
		h = w.hs
		size += recordSize(hardStateSize)
	}
	next := w.lastIndex + 1
	if len(ents) > 0 {
		next = ents[0].GetIndex()
	}
	if err := w.maybeCutLocked(size, next); err != nil {
		return err
	}
	at := w.off

	buf := w.grow(size)
	batch := w.nextBatch
	off := 0
	for i, e := range ents {
		n := entryPayloadLen(e)
		rec := buf[off : off+recordSize(n)]
		putEntry(rec[recordHeaderSize:], e)
		var flags byte
		if i == len(ents)-1 && h.isEmpty() {
			flags = flagBatchEnd
		}
		sealRecord(rec, recEntry, flags, batch, n)
		off += len(rec)
	}
	if !h.isEmpty() {
		rec := buf[off : off+recordSize(hardStateSize)]
		putHardState(rec[recordHeaderSize:], h)
		sealRecord(rec, recHardState, flagBatchEnd, batch, hardStateSize)
	}
	if err := w.writeLocked(buf); err != nil {
		return err
	}

	if len(ents) > 0 {
		last := ents[len(ents)-1].GetIndex()
		w.lastIndex = last
		cur := &w.segs[len(w.segs)-1]
		cur.maxIndex = max(cur.maxIndex, last)
		entBytes := int64(len(buf))
		if !h.isEmpty() {
			entBytes -= int64(recordSize(hardStateSize))
		}
		w.spans = addSpan(w.spans, span{first: ents[0].GetIndex(), last: last, seq: cur.seq, off: at, size: entBytes})
	}
	if !h.isEmpty() {
		w.hs = h
		w.hsWritten = h
	}
	return nil
}

// SaveSnapshotMark records, durably (one write, one fdatasync), that the
// snapshot at m is on disk. Call it only after the snapshot file is synced.
func (w *WAL) SaveSnapshotMark(m SnapshotMark) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	size := recordSize(snapshotMarkSize)
	if err := w.maybeCutLocked(size, max(w.lastIndex, m.Index)+1); err != nil {
		return err
	}
	buf := w.grow(size)
	putMark(buf[recordHeaderSize:], m)
	sealRecord(buf, recSnapshotMark, flagBatchEnd, w.nextBatch, snapshotMarkSize)
	if err := w.writeLocked(buf); err != nil {
		return err
	}
	w.noteMarkLocked(m)
	return nil
}

func (w *WAL) noteMarkLocked(m SnapshotMark) {
	if !w.hasMark || m.Index >= w.mark.Index {
		w.mark, w.hasMark = m, true
	}
	w.lastIndex = max(w.lastIndex, m.Index)
}

// ReleaseTo deletes the oldest segments whose every entry has Index <= index,
// stopping at the first segment that has a later entry and never touching the
// current segment. Call it after the snapshot at index is durable and marked.
// Each removal is followed by a directory sync, so a crash can only ever
// leave a suffix of the segment chain.
func (w *WAL) ReleaseTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	for len(w.segs) > 1 && w.segs[0].maxIndex <= index {
		s := w.segs[0]
		if err := w.fs.Remove(w.fs.PathJoin(w.dir, s.name)); err != nil {
			return fmt.Errorf("wal: release %s: %w", s.name, err)
		}
		w.segs = w.segs[1:]
		if err := syncDir(w.fs, w.dir); err != nil {
			return err
		}
		w.logger.Debug("wal: released segment", "file", s.name, "max_index", s.maxIndex, "release_to", index)
	}
	w.dropReleasedLocked()
	return nil
}

// Close closes the current segment. Everything Save returned for is already
// durable, so Close does not sync.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	w.zeroWaitLocked(-1)
	w.closeReadersLocked()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("wal: close: %w", err)
	}
	return nil
}

func (w *WAL) usableLocked() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// grow returns w.buf resized to n bytes, reallocating only when it has to.
func (w *WAL) grow(n int) []byte {
	if cap(w.buf) < n {
		w.buf = make([]byte, n, max(n, 2*cap(w.buf)))
	}
	return w.buf[:n]
}

// warnNoSync says loudly, once per Create or Open, that this WAL breaks
// its durability promise.
func (w *WAL) warnNoSync() {
	if w.noSync {
		w.logger.Warn("wal: UNSAFE: fsync disabled; a power loss can lose acknowledged writes", "dir", w.dir)
	}
}

// writeLocked writes one encoded batch at the current offset and fdatasyncs
// it (unless UnsafeNoSync). Any failure poisons the WAL.
func (w *WAL) writeLocked(buf []byte) error {
	w.zeroWaitLocked(w.off + int64(len(buf)))
	if _, err := w.f.WriteAt(buf, w.off); err != nil {
		w.err = fmt.Errorf("wal: write %s: %w", w.segs[len(w.segs)-1].name, err)
		return w.err
	}
	if w.noSync {
		w.off += int64(len(buf))
		w.nextBatch++
		return nil
	}
	start := time.Now()
	if err := w.f.SyncData(); err != nil {
		w.err = fmt.Errorf("wal: sync %s: %w", w.segs[len(w.segs)-1].name, err)
		return w.err
	}
	if w.onSync != nil {
		w.onSync(time.Since(start))
	}
	w.off += int64(len(buf))
	w.nextBatch++
	w.zeroAheadLocked()
	return nil
}

// maybeCutLocked rolls over when a batch of size bytes would overflow the
// current segment, unless the segment holds only its header (a batch bigger
// than a segment then simply makes this segment grow).
func (w *WAL) maybeCutLocked(size int, firstIndex uint64) error {
	if w.off+int64(size) <= w.segSize || w.off <= w.dataStart {
		return nil
	}
	if w.noSync {
		// Open requires every segment but the last to end in a synced
		// batch; without this a power loss could leave a hole in the batch
		// sequence, and the member would refuse to start instead of merely
		// forgetting its newest writes.
		if err := w.f.SyncData(); err != nil {
			w.err = fmt.Errorf("wal: sync %s: %w", w.segs[len(w.segs)-1].name, err)
			return w.err
		}
	}
	return w.cutLocked(w.segs[len(w.segs)-1].seq+1, firstIndex)
}
