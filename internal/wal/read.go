package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"slices"
	"sort"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// Open opens the WAL in cfg.Dir, reads it, repairs a torn tail, and returns
// it ready for appends together with the state at/after from: the snapshot
// the caller loaded (zero value: read from the beginning).
//
// On any error nothing is returned: no partial state, no open WAL. A damaged
// record that is not a torn tail yields a *CorruptError (errors.Is
// ErrCorrupt); a log that does not continue from `from` yields ErrGap.
func Open(cfg Config, from SnapshotMark) (*WAL, *ReadResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.withDefaults()
	fs := cfg.FS

	names, err := fs.List(cfg.Dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotExist, cfg.Dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("wal: list %s: %w", cfg.Dir, err)
	}
	var segs []segment
	for _, n := range names {
		if seq, first, ok := parseSegmentName(n); ok {
			segs = append(segs, segment{seq: seq, firstIndex: first, name: n})
		}
	}
	if len(segs) == 0 {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotExist, cfg.Dir)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, nil, &CorruptError{File: segs[i].name, Offset: -1,
				Reason: fmt.Sprintf("segment chain broken: previous segment is %s (missing sequence %d)", segs[i-1].name, segs[i-1].seq+1)}
		}
	}
	if err := removeTemps(fs, cfg.Dir); err != nil {
		return nil, nil, err
	}

	r := &reader{from: from, logger: cfg.Logger}
	var (
		data []byte
		cur  vfs.File // the last segment, kept open for appends
	)
	for i := range segs {
		last := i == len(segs)-1
		path := fs.PathJoin(cfg.Dir, segs[i].name)
		var f vfs.File
		if last {
			f, err = fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
		} else {
			f, err = fs.Open(path)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("wal: open %s: %w", segs[i].name, err)
		}
		data, err = readAll(f, data)
		if err == nil {
			err = r.readSegment(&segs[i], data, last)
		}
		if err == nil && last && r.tornAt >= 0 {
			err = r.repairTail(f, segs[i].name, data)
		}
		if err != nil || !last {
			_ = f.Close()
		}
		if err != nil {
			return nil, nil, err
		}
		if last {
			cur = f
		}
	}
	w := &WAL{
		fs:        fs,
		dir:       cfg.Dir,
		segSize:   cfg.SegmentSize,
		logger:    cfg.Logger,
		noSync:    cfg.UnsafeNoSync,
		zeroAhead: cfg.ZeroAhead,
		onSync:    cfg.OnSync,
		zeroEnd:   int64(len(data)),
		metadata:  r.metadata,
		segs:      segs,
		f:         cur,
		off:       r.end,
		dataStart: r.headerEnd,
		nextBatch: r.prevBatch + 1,
		lastIndex: r.lastIndex,
		hs:        r.hs,
		hsWritten: r.hs,
		spans:     r.spans,
		mark:      r.mark,
		hasMark:   r.hasMark,
	}
	w.warnNoSync()
	w.zeroAheadLocked() // w is not shared yet
	res := &ReadResult{
		Metadata:  slices.Clone(r.metadata),
		HardState: r.hs.proto(),
		Entries:   r.ents,
		Marks:     r.marks,
	}
	return w, res, nil
}

// readAll reads the whole file into buf (reused when large enough).
func readAll(f vfs.File, buf []byte) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("wal: stat: %w", err)
	}
	n := int(st.Size())
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	m, err := f.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && m == n) {
		return nil, fmt.Errorf("wal: read %s: %w", st.Name(), err)
	}
	return buf, nil
}

// reader accumulates state across segments, one complete batch at a time.
type reader struct {
	from   SnapshotMark
	logger *slog.Logger

	metadata  []byte
	haveBatch bool   // prevBatch is meaningful
	prevBatch uint32 // batch number of the last complete batch
	pending   []record

	// Results.
	ents      []*raftpb.Entry
	spans     []span
	hs        hardState
	marks     []SnapshotMark
	mark      SnapshotMark
	hasMark   bool
	lastIndex uint64

	// Last segment only.
	end       int64 // end of the last complete batch
	headerEnd int64 // end of the segment's header batch
	tornAt    int64 // offset the torn tail starts at; -1 if none
	tornWhy   error
}

// readSegment decodes one segment. data is the whole file.
//
// A segment is a header batch followed by batches; every batch must be
// complete and carry the next batch number. Where decoding stops early:
//   - the rest of the file is zeros and no batch is open: clean end;
//   - not the last segment: corruption;
//   - the last segment: a torn tail, unless a valid record of a batch later
//     than the damaged one follows it somewhere in the file (then the
//     damaged batch had been synced and acknowledged: corruption).
func (r *reader) readSegment(seg *segment, data []byte, last bool) error {
	r.pending = r.pending[:0]
	r.tornAt = -1
	off := 0
	end := 0
	headerEnd := -1
	for off < len(data) {
		rec, err := decodeRecord(data[off:])
		if err != nil {
			if len(r.pending) == 0 && allZero(data[off:]) && headerEnd >= 0 {
				break
			}
			if !last || headerEnd < 0 {
				return &CorruptError{File: seg.name, Offset: int64(off), Reason: err.Error()}
			}
			if later := r.laterBatchAfter(data, off); later >= 0 {
				return &CorruptError{File: seg.name, Offset: int64(off),
					Reason: fmt.Sprintf("%v (followed by a valid record of a later batch at offset %d)", err, later)}
			}
			r.tornAt, r.tornWhy = int64(off), err
			break
		}
		// Batch sequencing: a record continues the open batch, or opens the
		// next one. Segment headers open every segment and appear nowhere
		// else.
		isFirst := off == 0
		switch {
		case isFirst != (rec.typ == recSegmentHeader):
			return &CorruptError{File: seg.name, Offset: int64(off), Reason: "segment header record out of place"}
		case len(r.pending) > 0 && rec.batch != r.pending[0].batch:
			return &CorruptError{File: seg.name, Offset: int64(off),
				Reason: fmt.Sprintf("batch %d record inside open batch %d", rec.batch, r.pending[0].batch)}
		case len(r.pending) == 0 && r.haveBatch && rec.batch != r.prevBatch+1:
			return &CorruptError{File: seg.name, Offset: int64(off),
				Reason: fmt.Sprintf("batch %d follows batch %d", rec.batch, r.prevBatch)}
		}
		if rec.typ == recSegmentHeader {
			if err := r.checkHeader(seg, rec); err != nil {
				return err
			}
		}
		r.pending = append(r.pending, rec)
		off += rec.size
		if rec.flags&flagBatchEnd != 0 {
			if err := r.applyBatch(seg, off); err != nil {
				return err
			}
			end = off
			if headerEnd < 0 {
				headerEnd = off
			}
		}
	}
	if headerEnd < 0 {
		return &CorruptError{File: seg.name, Offset: 0, Reason: "segment has no complete header batch"}
	}
	if len(r.pending) > 0 && r.tornAt < 0 {
		if !last {
			return &CorruptError{File: seg.name, Offset: int64(end), Reason: "batch not closed before end of segment"}
		}
		r.tornAt, r.tornWhy = int64(end), errors.New("batch not closed before end of file")
	}
	r.pending = r.pending[:0]
	r.end, r.headerEnd = int64(end), int64(headerEnd)
	return nil
}

// laterBatchAfter looks for a valid record after the bad one at off whose
// batch is later than the batch the bad record belongs to, and returns its
// offset, or -1. Records start at 8-byte boundaries, so only those are
// tried; plausibleHeader rejects almost every position before hashing.
func (r *reader) laterBatchAfter(data []byte, off int) int {
	damaged := r.prevBatch + 1
	if len(r.pending) > 0 {
		damaged = r.pending[0].batch
	}
	for p := off + recordAlign; p+recordHeaderSize <= len(data); p += recordAlign {
		if !plausibleHeader(data[p:]) {
			continue
		}
		rec, err := decodeRecord(data[p:])
		if err == nil && int32(rec.batch-damaged) > 0 {
			return p
		}
	}
	return -1
}

func (r *reader) checkHeader(seg *segment, rec record) error {
	h, err := decodeSegmentHeader(rec.payload)
	if err != nil {
		return &CorruptError{File: seg.name, Offset: 0, Reason: err.Error()}
	}
	if h.seq != seg.seq || h.firstIndex != seg.firstIndex {
		return &CorruptError{File: seg.name, Offset: 0,
			Reason: fmt.Sprintf("header says sequence %d, first index %d", h.seq, h.firstIndex)}
	}
	if r.metadata == nil {
		r.metadata = slices.Clone(h.metadata)
		if r.metadata == nil {
			r.metadata = []byte{}
		}
	} else if !bytes.Equal(r.metadata, h.metadata) {
		return &CorruptError{File: seg.name, Offset: 0, Reason: "metadata differs from the previous segment's"}
	}
	return nil
}

// applyBatch folds the complete pending batch into the results.
func (r *reader) applyBatch(seg *segment, end int) error {
	start := end
	for _, rec := range r.pending {
		start -= rec.size
	}
	off := start
	var sp span // the batch's entries, if any (entries.go)
	for _, rec := range r.pending {
		var err error
		switch rec.typ {
		case recEntry:
			var e entryFields
			if e, err = decodeEntry(rec.payload); err == nil {
				seg.maxIndex = max(seg.maxIndex, e.index)
				err = r.addEntry(e)
			}
			if err == nil {
				if sp.size == 0 {
					sp = span{first: e.index, seq: seg.seq, off: int64(off)}
				}
				sp.last = e.index
				sp.size = int64(off+rec.size) - sp.off
			}
		case recHardState:
			var h hardState
			if h, err = decodeHardState(rec.payload); err == nil {
				r.hs = h
			}
		case recSnapshotMark:
			var m SnapshotMark
			if m, err = decodeMark(rec.payload); err == nil {
				if len(r.marks) == 0 || r.marks[len(r.marks)-1] != m {
					r.marks = append(r.marks, m)
				}
				if !r.hasMark || m.Index >= r.mark.Index {
					r.mark, r.hasMark = m, true
				}
				r.lastIndex = max(r.lastIndex, m.Index)
			}
		}
		if err != nil {
			var gap *gapError
			if errors.As(err, &gap) {
				return fmt.Errorf("%w: %s at offset %d: %s", ErrGap, seg.name, off, gap.msg)
			}
			return &CorruptError{File: seg.name, Offset: int64(off), Reason: err.Error()}
		}
		off += rec.size
	}
	if sp.size > 0 {
		r.spans = addSpan(r.spans, sp)
	}
	r.prevBatch, r.haveBatch = r.pending[len(r.pending)-1].batch, true
	r.pending = r.pending[:0]
	return nil
}

type gapError struct{ msg string }

func (g *gapError) Error() string { return g.msg }

// addEntry applies raft's log rules to one entry: entries at or below the
// snapshot are dropped; an entry at or below the current tail replaces it
// and everything after it; an entry past tail+1 is a gap.
func (r *reader) addEntry(e entryFields) error {
	if e.index == 0 {
		return errors.New("entry with index 0")
	}
	r.lastIndex = e.index
	if e.index <= r.from.Index {
		r.ents = r.ents[:0]
		return nil
	}
	if n := len(r.ents); n == 0 {
		if e.index != r.from.Index+1 {
			return &gapError{fmt.Sprintf("first entry after snapshot %d is %d", r.from.Index, e.index)}
		}
	} else {
		first, last := r.ents[0].GetIndex(), r.ents[n-1].GetIndex()
		if e.index > last+1 {
			return &gapError{fmt.Sprintf("entry %d follows entry %d", e.index, last)}
		}
		clear(r.ents[e.index-first:])
		r.ents = r.ents[:e.index-first]
	}
	r.ents = append(r.ents, newEntry(e))
	return nil
}

// newEntry builds a raftpb.Entry whose scalar fields live in the same
// allocation, so decoding costs two allocations per entry (box and data).
func newEntry(e entryFields) *raftpb.Entry {
	box := &struct {
		ent   raftpb.Entry
		term  uint64
		index uint64
		typ   raftpb.EntryType
	}{term: e.term, index: e.index, typ: e.typ}
	box.ent.Term, box.ent.Index, box.ent.Type = &box.term, &box.index, &box.typ
	if len(e.data) > 0 {
		box.ent.Data = slices.Clone(e.data)
	}
	return &box.ent
}

// repairTail cuts the torn tail off the last segment: it zeros every byte
// from the end of the last complete batch to the last non-zero byte and
// syncs, so that the next append lands on clean space and no stale
// fragment can ever be mistaken for a record.
func (r *reader) repairTail(f vfs.File, name string, data []byte) error {
	cut := r.end
	stop := int64(len(data))
	for stop > cut && data[stop-1] == 0 {
		stop--
	}
	r.logger.Warn("wal: truncating torn tail",
		"file", name, "offset", cut, "damaged_at", r.tornAt, "reason", r.tornWhy, "bytes", int64(len(data))-cut)
	var zeros [64 << 10]byte
	for p := cut; p < stop; {
		n := min(int64(len(zeros)), stop-p)
		if _, err := f.WriteAt(zeros[:n], p); err != nil {
			return fmt.Errorf("wal: repair torn tail of %s: %w", name, err)
		}
		p += n
	}
	if stop > cut {
		if err := f.SyncData(); err != nil {
			return fmt.Errorf("wal: repair torn tail of %s: %w", name, err)
		}
	}
	clear(data[cut:])
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if le.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
