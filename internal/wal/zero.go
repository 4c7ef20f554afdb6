package wal

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Zero-ahead: Preallocate reserves a segment's blocks, but as unwritten
// extents past the end of the file. An append there makes its fdatasync
// also convert the extent and commit the new file size to the filesystem
// journal; on ext4 here that took an append from about 120 µs to about
// 260 µs. Blocks that already hold zeros inside the file's size need
// neither, so a goroutine keeps Config.ZeroAhead bytes after the append
// offset written with zeros and synced, and Save then only overwrites.
//
// The zeros are never needed for correctness: a segment's data ends at its
// last complete batch whatever follows it (doc.go, "Where decoding stops"),
// so a zeroing cut short by a crash or an error leaves a well-formed log.
// Two rules keep it that way:
//
//   - A zeroing goroutine writes only at or after the append offset of the
//     moment it starts, and a write that would reach its range waits for it
//     to finish (zeroWaitLocked), so zeros never land on data.
//   - It writes and syncs through a file handle of its own. Linux reports a
//     writeback error once per open file description; on the shared handle
//     its fdatasync could take the error meant for a batch's own
//     fdatasync, and Save would acknowledge lost data.

// zeroBlock is the source of every zero write; never written.
var zeroBlock [256 << 10]byte

// ZeroWriteCategory is the write category the zeroing goroutine opens the
// segment with, so that a filesystem wrapper can tell its writes and syncs
// from the log's own (the server's fault plane counts only the log's: a
// "fail the next fsync" rule must fail a Save, not a zeroing nobody waits
// for).
const ZeroWriteCategory vfs.DiskWriteCategory = "wal-zero-ahead"

// zeroRun is one zeroing goroutine: it writes zeros over [from, to) of the
// current segment, syncs them, and closes done. err is set before done
// closes.
type zeroRun struct {
	from, to int64
	done     chan struct{}
	err      error
}

// zeroAheadLocked starts a zeroing goroutine when the zeroed space after
// the append offset has fallen below half of ZeroAhead and none is running.
// Called after every append and segment change.
func (w *WAL) zeroAheadLocked() {
	if w.zeroAhead == 0 || w.noSync || w.f == nil {
		return
	}
	if w.zeroing != nil {
		select {
		case <-w.zeroing.done:
			w.reapZeroLocked()
		default:
			return
		}
	}
	from := max(w.zeroEnd, w.off)
	if from-w.off >= w.zeroAhead/2 {
		return
	}
	to := min(from+w.zeroAhead, w.segSize)
	if to <= from {
		return // the segment is about to roll over
	}
	path := w.fs.PathJoin(w.dir, w.segs[len(w.segs)-1].name)
	run := &zeroRun{from: from, to: to, done: make(chan struct{})}
	w.zeroing = run
	go func() {
		defer close(run.done)
		run.err = zeroRange(w.fs, path, from, to)
	}()
}

// zeroWaitLocked waits for a running zeroing goroutine that a write of
// [off, end) would overlap, or, with end < 0, for any running one (before
// the segment changes or the WAL closes).
func (w *WAL) zeroWaitLocked(end int64) {
	if w.zeroing == nil || (end >= 0 && end <= w.zeroing.from) {
		return
	}
	<-w.zeroing.done
	w.reapZeroLocked()
}

// reapZeroLocked records a finished zeroing goroutine's outcome. A failure
// turns zero-ahead off for this WAL: appends still work, only slower.
func (w *WAL) reapZeroLocked() {
	run := w.zeroing
	w.zeroing = nil
	if run.err != nil {
		w.logger.Warn("wal: zeroing ahead of the log failed; appends will sync file metadata too", "err", run.err)
		w.zeroAhead = 0
		return
	}
	w.zeroEnd = max(w.zeroEnd, run.to)
}

// zeroRange writes zeros over [from, to) of the file at path and syncs them,
// through a handle of its own.
func zeroRange(fs vfs.FS, path string, from, to int64) error {
	f, err := fs.OpenReadWrite(path, ZeroWriteCategory)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	for p := from; p < to; {
		n := min(int64(len(zeroBlock)), to-p)
		if _, err := f.WriteAt(zeroBlock[:n], p); err != nil {
			_ = f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		p += n
	}
	if err := f.SyncData(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}
