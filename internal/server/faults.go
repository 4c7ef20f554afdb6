package server

import (
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/faults"
	"github.com/concord-db/concord/internal/wal"
)

// memberFaults applies the fault plane's member rules (pause, clock, disk)
// to this member: the raft loop's Pauser, the lease clock and the
// filesystem all ask it. It exists only with Config.FaultInjection.
type memberFaults struct {
	plane *faults.Plane
	// self is this member's id, 0 until New knows it (the WAL is opened
	// before, through the wrapped FS): rules name real ids, so none
	// matches meanwhile.
	self atomic.Uint64
	// exit ends the process for a kill rule (nil: os.Exit); tests
	// substitute a recorder.
	exit func(code int)
}

// FaultCrash is the admin handler's hook for kill rules (faults.Plane.Kill
// resolves the member): it reports whether member is this member and, if
// so, returns crash, which logs one line and ends the process at once with
// faults.KillExitStatus. crash runs no graceful shutdown, no leadership
// transfer and no flush beyond what is already fsynced: a crash, as kill
// -9 is, which the WAL must survive. The handler answers its client before
// it calls crash. Without fault injection it reports false.
func (s *Server) FaultCrash(member uint64) (crash func(), self bool) {
	if s.mfaults == nil || member == 0 || member != s.id {
		return nil, false
	}
	return func() { s.mfaults.crash(s.logger, member) }, true
}

// crash logs and exits; it returns only when exit is a test's recorder.
func (m *memberFaults) crash(logger *slog.Logger, member uint64) {
	logger.Error("fault: killed by a kill rule; exiting at once as kill -9 would (no graceful shutdown)",
		"member_id", strconv.FormatUint(member, 16), "exit_status", faults.KillExitStatus)
	exit := m.exit
	if exit == nil {
		exit = os.Exit
	}
	exit(faults.KillExitStatus)
}

// Pause implements raftnode.Pauser.
func (m *memberFaults) Pause() (bool, time.Time, <-chan struct{}) {
	changed := m.plane.Changes() // before the state it guards
	paused, until := m.plane.Paused(m.self.Load(), m.plane.Now())
	return paused, until, changed
}

// skewClock is the lease (and auth token) clock seen through clock rules:
// the base clock plus this member's skew.
type skewClock struct {
	base Clock
	mf   *memberFaults
}

func (c skewClock) Now() time.Time {
	return c.base.Now().Add(c.mf.plane.ClockSkew(c.mf.self.Load(), c.mf.plane.Now()))
}

// faultFS is the member's filesystem seen through disk rules: files opened
// for writing consult the plane on every write and sync. Reads, renames
// and removals pass through.
type faultFS struct {
	vfs.FS
	mf *memberFaults
}

func (fs faultFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return faultFile{File: f, mf: fs.mf}, nil
}

func (fs faultFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

// OpenReadWrite leaves the WAL's zero-ahead writes alone: they only make
// later fsyncs cheaper, and a disk rule is about the operations a member
// waits for ("fail the next fsync" must fail a Save, not be spent on a
// zeroing whose failure only turns zero-ahead off).
func (fs faultFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	if c == wal.ZeroWriteCategory {
		return fs.FS.OpenReadWrite(name, c, opts...)
	}
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs faultFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, c))
}

// OpenDir is wrapped for the directory syncs that make renames durable.
func (fs faultFS) OpenDir(name string) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenDir(name))
}

type faultFile struct {
	vfs.File
	mf *memberFaults
}

// sync applies the sync rules: a slow disk waits here, in the caller's
// goroutine (the raft loop's, for the WAL), as a slow fsync would block it.
func (f faultFile) sync() error {
	v := f.mf.plane.DiskIntercept(f.mf.self.Load(), faults.OpSync)
	if v.Delay > 0 {
		time.Sleep(v.Delay)
	}
	return v.Err
}

func (f faultFile) write() error {
	return f.mf.plane.DiskIntercept(f.mf.self.Load(), faults.OpWrite).Err
}

func (f faultFile) Write(p []byte) (int, error) {
	if err := f.write(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.write(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f faultFile) Sync() error {
	if err := f.sync(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f faultFile) SyncData() error {
	if err := f.sync(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f faultFile) SyncTo(length int64) (bool, error) {
	if err := f.sync(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}
