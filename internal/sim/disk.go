package sim

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Disk faults. A member's filesystem is wrapped by faultFS, which the
// nemesis arms:
//
//   - a failing disk (EIO on every sync, or ENOSPC on every write, create
//     and sync): the WAL or snapshot write fails, the Core returns the
//     error from HandleReady before anything of that Ready is sent (except
//     the leader's parallel appends) or applied, and the member stops as
//     the server does on a storage error — the simulation crashes it (its
//     disk keeps what was synced before) and restarts it from its disk
//     when the fault ends;
//   - a slow disk: every Ready the member handles costs a virtual delay
//     (the fsync), during which its Ready loop is blocked. Raft still takes
//     ticks and messages meanwhile (the server queues them in channels);
//     the next Ready carries all of it, one fsync for the batch.

// errInjected marks an error the simulation injected.
var errInjected = errors.New("sim: injected disk fault")

// faultFS is a member's filesystem with injectable failures.
type faultFS struct {
	vfs.FS
	m *member
}

// fail returns the injected error for an operation, nil when the disk is
// healthy or the fault does not touch that operation.
func (fs *faultFS) fail(write bool) error {
	m := fs.m
	if m.diskErr == nil || (write && !errors.Is(m.diskErr, syscall.ENOSPC)) {
		return nil
	}
	m.diskFired = true
	return m.diskErr
}

func (fs *faultFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.fail(true); err != nil {
		return nil, err
	}
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs *faultFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs *faultFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.fail(true); err != nil {
		return nil, err
	}
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, c))
}

type faultFile struct {
	vfs.File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.fail(true); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(true); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.fs.fail(false); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) SyncData() error {
	if err := f.fs.fail(false); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *faultFile) SyncTo(length int64) (bool, error) {
	if err := f.fs.fail(false); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

// diskError is the error a failing-disk fault injects.
func diskError(enospc bool) error {
	if enospc {
		return fmt.Errorf("%w: %w", errInjected, syscall.ENOSPC)
	}
	return fmt.Errorf("%w: %w", errInjected, syscall.EIO)
}

// storageFailed handles an error from the member's Ready loop: an injected
// disk fault stops the member like a crash (it restarts from its disk when
// the fault ends); anything else is a violation.
func (s *simulation) storageFailed(m *member, err error) {
	if m.diskFired && m.diskErr != nil {
		s.stats.DiskFaults++
		s.crash(m, fmt.Sprintf("disk fault: %v", err))
		return
	}
	s.violate(KindStorage, "%s: %v", m.name, err)
	s.breakMember(m)
}

// onSlowReady handles one Ready of a member whose disk is slow, after the
// virtual fsync delay.
func (s *simulation) onSlowReady(ev *event) {
	m := s.members[ev.member]
	if m.inc != ev.inc {
		return
	}
	m.slowPending = false
	if !m.up || m.paused {
		return
	}
	if m.core.HasReady() && !s.readyOnce(m) {
		return
	}
	s.drive(m)
}
