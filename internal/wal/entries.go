package wal

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// Reading entries back.
//
// raft asks its storage for old entries only to catch a lagging member up,
// and the raft core keeps just the newest ones in memory (raftnode's
// MemoryLogEntries), so the rest are read back from the segments here. A
// span records where one Save put its entry records: they are consecutive
// records from the batch's start, entries first..last in order. The spans
// follow raft's overwrite rule as Open does: a Save whose first entry is at
// or below the tail drops the spans it overwrites and clips the one it cuts
// into, so the spans always locate the current log and never a replaced
// entry.

// ErrNotRetained is returned by Entries for an entry the WAL no longer
// holds (released with its segment) or never held.
var ErrNotRetained = errors.New("wal: entry not retained")

// span locates the entry records of one batch.
type span struct {
	first, last uint64 // entry indexes; last is lowered when a later Save cuts in
	seq         uint64 // segment sequence number
	off         int64  // offset of the batch's first entry record
	size        int64  // bytes of the batch's entry records
}

// addSpan appends s to spans (sorted by first), after dropping the spans s
// overwrites and clipping the one it cuts into.
func addSpan(spans []span, s span) []span {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].first >= s.first })
	spans = spans[:i]
	if i > 0 && spans[i-1].last >= s.first {
		spans[i-1].last = s.first - 1
	}
	return append(spans, s)
}

// Entries returns the saved entries from lo up to hi (exclusive), stopping
// before the one that would take their payload bytes (data plus 20 bytes
// each) over maxSize, but returning at least one. It returns ErrNotRetained
// if lo is not in the WAL, and stops early, without error, at an entry it
// does not hold. Records are checked (CRC, index) as they are read; damage
// is a *CorruptError.
func (w *WAL) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return nil, err
	}
	if lo >= hi {
		return nil, nil
	}
	i := sort.Search(len(w.spans), func(i int) bool { return w.spans[i].last >= lo })
	var (
		out  []*raftpb.Entry
		size uint64
		buf  []byte
	)
	next := lo
	for ; i < len(w.spans) && next < hi; i++ {
		s := w.spans[i]
		if s.first > next {
			break
		}
		f, name, err := w.segmentFileLocked(s.seq)
		if err != nil {
			return nil, err
		}
		if int64(cap(buf)) < s.size {
			buf = make([]byte, s.size)
		}
		buf = buf[:s.size]
		if _, err := f.ReadAt(buf, s.off); err != nil {
			return nil, fmt.Errorf("wal: read %s at %d: %w", name, s.off, err)
		}
		for off := 0; off < len(buf) && next <= s.last && next < hi; {
			rec, err := decodeRecord(buf[off:])
			if err == nil && rec.typ != recEntry {
				err = errors.New("not an entry record")
			}
			var e entryFields
			if err == nil {
				e, err = decodeEntry(rec.payload)
			}
			if err == nil && e.index > next {
				err = fmt.Errorf("entry %d where %d was expected", e.index, next)
			}
			if err != nil {
				return nil, &CorruptError{File: name, Offset: s.off + int64(off), Reason: err.Error()}
			}
			off += rec.size
			if e.index < next {
				continue
			}
			n := uint64(entryFixedSize + len(e.data))
			if len(out) > 0 && size+n > maxSize {
				return out, nil
			}
			out = append(out, newEntry(e))
			size += n
			next++
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %d", ErrNotRetained, lo)
	}
	return out, nil
}

// segmentFileLocked returns a handle to read segment seq through: the
// current segment's own, or one opened read-only and kept until the
// segment is released or the WAL closed.
func (w *WAL) segmentFileLocked(seq uint64) (vfs.File, string, error) {
	k := sort.Search(len(w.segs), func(k int) bool { return w.segs[k].seq >= seq })
	if k == len(w.segs) || w.segs[k].seq != seq {
		return nil, "", fmt.Errorf("%w: segment %d is gone", ErrNotRetained, seq)
	}
	name := w.segs[k].name
	if k == len(w.segs)-1 && w.f != nil {
		return w.f, name, nil
	}
	if f, ok := w.readers[seq]; ok {
		return f, name, nil
	}
	f, err := w.fs.Open(w.fs.PathJoin(w.dir, name))
	if err != nil {
		return nil, "", fmt.Errorf("wal: open %s: %w", name, err)
	}
	if w.readers == nil {
		w.readers = make(map[uint64]vfs.File)
	}
	w.readers[seq] = f
	return f, name, nil
}

// dropReleasedLocked forgets the spans and read handles of segments older
// than the oldest live one.
func (w *WAL) dropReleasedLocked() {
	oldest := w.segs[0].seq
	k := sort.Search(len(w.spans), func(k int) bool { return w.spans[k].seq >= oldest })
	w.spans = append(w.spans[:0], w.spans[k:]...)
	for seq, f := range w.readers {
		if seq < oldest {
			_ = f.Close()
			delete(w.readers, seq)
		}
	}
}

// closeReadersLocked closes every read handle.
func (w *WAL) closeReadersLocked() {
	for seq, f := range w.readers {
		_ = f.Close()
		delete(w.readers, seq)
	}
}
