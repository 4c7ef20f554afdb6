package wal

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/durable"
)

const (
	segmentExt = ".wal"
	tempSuffix = ".tmp"
	// len("%016x-%016x.wal")
	segmentNameLen = 16 + 1 + 16 + len(segmentExt)
)

func segmentName(seq, firstIndex uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, firstIndex, segmentExt)
}

// parseSegmentName accepts exactly the names segmentName produces.
func parseSegmentName(name string) (seq, firstIndex uint64, ok bool) {
	if len(name) != segmentNameLen || name[16] != '-' || !strings.HasSuffix(name, segmentExt) {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(name[:16], 16, 64)
	firstIndex, err2 := strconv.ParseUint(name[17:33], 16, 64)
	if err1 != nil || err2 != nil || segmentName(seq, firstIndex) != name {
		return 0, 0, false
	}
	return seq, firstIndex, true
}

// cutLocked creates segment seq, durably, and makes it current. The new
// file is written under a temporary name, synced, renamed and the directory
// synced, so a file with a segment name always has a complete, synced header
// batch. The header batch repeats the metadata, the current hard state and
// the newest snapshot mark, so that releasing older segments loses none of
// them.
func (w *WAL) cutLocked(seq, firstIndex uint64) error {
	name := segmentName(seq, firstIndex)
	path := w.fs.PathJoin(w.dir, name)
	tmp := path + tempSuffix

	hdrLen := segmentHeaderFixed + len(w.metadata)
	size := recordSize(hdrLen)
	if !w.hs.isEmpty() {
		size += recordSize(hardStateSize)
	}
	if w.hasMark {
		size += recordSize(snapshotMarkSize)
	}
	buf := w.grow(size)
	batch := w.nextBatch
	off := recordSize(hdrLen)
	putSegmentHeader(buf[recordHeaderSize:], segmentHeader{seq: seq, firstIndex: firstIndex, metadata: w.metadata})
	flags := byte(0)
	if off == size {
		flags = flagBatchEnd
	}
	sealRecord(buf[:off], recSegmentHeader, flags, batch, hdrLen)
	if !w.hs.isEmpty() {
		rec := buf[off : off+recordSize(hardStateSize)]
		putHardState(rec[recordHeaderSize:], w.hs)
		w.hsWritten = w.hs
		flags = 0
		if off+len(rec) == size {
			flags = flagBatchEnd
		}
		sealRecord(rec, recHardState, flags, batch, hardStateSize)
		off += len(rec)
	}
	if w.hasMark {
		rec := buf[off : off+recordSize(snapshotMarkSize)]
		putMark(rec[recordHeaderSize:], w.mark)
		sealRecord(rec, recSnapshotMark, flagBatchEnd, batch, snapshotMarkSize)
	}

	fail := func(f vfs.File, err error) error {
		if f != nil {
			_ = f.Close()
		}
		_ = w.fs.Remove(tmp)
		w.err = fmt.Errorf("wal: create segment %s: %w", name, err)
		return w.err
	}
	f, err := w.fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fail(nil, err)
	}
	if err := f.Preallocate(0, w.segSize); err != nil {
		// Preallocation only saves the filesystem work later; some
		// filesystems do not support it.
		w.logger.Debug("wal: preallocate failed", "file", name, "err", err)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return fail(f, err)
	}
	if err := f.Sync(); err != nil {
		return fail(f, err)
	}
	if err := w.fs.Rename(tmp, path); err != nil {
		return fail(f, err)
	}
	if err := syncDir(w.fs, w.dir); err != nil {
		_ = f.Close()
		w.err = fmt.Errorf("wal: create segment %s: %w", name, err)
		return w.err
	}

	w.zeroWaitLocked(-1)
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			w.logger.Warn("wal: close full segment", "file", w.segs[len(w.segs)-1].name, "err", err)
		}
	}
	w.f = f
	w.off = int64(size)
	w.zeroEnd = int64(size)
	w.dataStart = int64(size)
	w.nextBatch++
	w.segs = append(w.segs, segment{seq: seq, firstIndex: firstIndex, name: name})
	w.logger.Debug("wal: new segment", "file", name)
	return nil
}

func syncDir(fs vfs.FS, dir string) error {
	if err := durable.SyncDir(fs, dir); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

func mkdirAllDurable(fs vfs.FS, dir string) error {
	if err := durable.MkdirAll(fs, dir); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// removeTemps deletes half-created segments left by a crash during a cut.
func removeTemps(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", dir, err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, segmentExt+tempSuffix) {
			if err := fs.Remove(fs.PathJoin(dir, n)); err != nil {
				return fmt.Errorf("wal: remove %s: %w", n, err)
			}
		}
	}
	return nil
}
