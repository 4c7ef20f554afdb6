package sim

import (
	"github.com/cockroachdb/pebble/v2/vfs"
)

// noSyncFS is the UnsafeNoFsync switch: a filesystem whose files ignore
// SyncData (the call the WAL makes to make each batch durable), so the
// member acknowledges appends and votes that a crash can take back. Full
// Syncs (segment creation, snapshot files, directories) still work, Close
// syncs (a closed segment's pages reach the disk eventually), and writeback
// plays the kernel flushing dirty pages now and then: a crash loses only
// what was written since the last writeback.
type noSyncFS struct {
	vfs.FS
	open []*noSyncFile
}

func (fs *noSyncFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	nf := &noSyncFile{File: f}
	fs.open = append(fs.open, nf)
	return nf, nil
}

func (fs *noSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs *noSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs *noSyncFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, c))
}

// writeback makes everything written so far durable, as the kernel's
// periodic flush would.
func (fs *noSyncFS) writeback() {
	keep := fs.open[:0]
	for _, f := range fs.open {
		if f.closed {
			continue
		}
		_ = f.File.Sync()
		keep = append(keep, f)
	}
	clear(fs.open[len(keep):])
	fs.open = keep
}

type noSyncFile struct {
	vfs.File
	closed bool
}

func (f *noSyncFile) SyncData() error { return nil }

func (f *noSyncFile) SyncTo(int64) (bool, error) { return false, nil }

func (f *noSyncFile) Close() error {
	f.closed = true
	_ = f.File.Sync()
	return f.File.Close()
}
