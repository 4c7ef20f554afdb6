package server

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/faults"
	"github.com/concord-db/concord/internal/wal"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// newMemberFaults returns member faults for member 1 of a plane whose
// clock the test sets.
func newMemberFaults(t *testing.T, now *time.Time) *memberFaults {
	t.Helper()
	plane, err := faults.New(faults.Config{Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	mf := &memberFaults{plane: plane}
	mf.self.Store(1)
	return mf
}

func install(t *testing.T, mf *memberFaults, s faults.Spec) {
	t.Helper()
	if _, err := mf.plane.Install(s); err != nil {
		t.Fatalf("Install(%+v) = %v", s, err)
	}
}

// faultSegment is a member's fault plane and filesystem wrapper over an
// in-memory filesystem, with one file created through it (closed at the
// end of the test).
func faultSegment(t *testing.T, now *time.Time) (*memberFaults, faultFS, vfs.File) {
	t.Helper()
	mf := newMemberFaults(t, now)
	fs := faultFS{FS: vfs.NewMem(), mf: mf}
	f, err := fs.Create("seg", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return mf, fs, f
}

// TestFaultFS drives the filesystem wrapper through each disk mode: the
// injected errors reach the caller as the WAL would see them, and a
// healed plane lets everything through again.
func TestFaultFS(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mf, fs, f := faultSegment(t, &now)
	dir, err := fs.OpenDir("")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()

	type op struct {
		name string
		run  func() error
	}
	write := op{"Write", func() error { _, err := f.Write([]byte("abc")); return err }}
	writeAt := op{"WriteAt", func() error { _, err := f.WriteAt([]byte("xyz"), 0); return err }}
	sync := op{"Sync", f.Sync}
	syncData := op{"SyncData", f.SyncData}
	syncTo := op{"SyncTo", func() error { _, err := f.SyncTo(3); return err }}
	dirSync := op{"dir Sync", dir.Sync}
	all := []op{write, writeAt, sync, syncData, syncTo, dirSync}

	tests := []struct {
		name  string
		rule  *faults.Spec
		fails map[string]error // op name -> wanted error (errors.Is)
	}{
		{"no rule", nil, nil},
		{"other member", &faults.Spec{Kind: faults.KindDisk, Member: "2", Mode: faults.DiskFail}, nil},
		{"fail", &faults.Spec{Kind: faults.KindDisk, Member: "1", Mode: faults.DiskFail},
			map[string]error{"Sync": faults.ErrDiskFault, "SyncData": faults.ErrDiskFault, "SyncTo": faults.ErrDiskFault, "dir Sync": faults.ErrDiskFault}},
		{"enospc", &faults.Spec{Kind: faults.KindDisk, Member: "1", Mode: faults.DiskNoSpace},
			map[string]error{"Write": syscall.ENOSPC, "WriteAt": syscall.ENOSPC}},
	}
	for _, tt := range tests {
		mf.plane.Heal()
		if tt.rule != nil {
			install(t, mf, *tt.rule)
		}
		for _, o := range all {
			err := o.run()
			want := tt.fails[o.name]
			switch {
			case want == nil && err != nil:
				t.Errorf("%s: %s = %v, want nil", tt.name, o.name, err)
			case want != nil && !errors.Is(err, want):
				t.Errorf("%s: %s = %v, want %v", tt.name, o.name, err, want)
			}
			if want == syscall.ENOSPC && !vfs.IsNoSpaceError(err) {
				t.Errorf("%s: %s = %v: vfs.IsNoSpaceError is false", tt.name, o.name, err)
			}
		}
	}
	// The failed writes wrote nothing: only the passing ones' bytes are there.
	mf.plane.Heal()
	r, err := fs.Open("seg")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "xyzabcabc" {
		t.Errorf("file holds %q, want %q (3 passing rounds of Write, WriteAt at 0)", data, "xyzabcabc")
	}
}

// TestFaultFSSkipsZeroAhead: disk rules act on the WAL's own writes and
// syncs, not on its zero-ahead goroutine's (opened with
// wal.ZeroWriteCategory), so "fail the next fsync" is spent on a Save.
func TestFaultFSSkipsZeroAhead(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mf, fs, f := faultSegment(t, &now)
	install(t, mf, faults.Spec{Kind: faults.KindDisk, Member: "1", Mode: faults.DiskFail, Next: 1})
	z, err := fs.OpenReadWrite("seg", wal.ZeroWriteCategory)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if _, err := z.WriteAt(make([]byte, 8), 8); err != nil {
		t.Errorf("zero-ahead WriteAt = %v, want nil", err)
	}
	if err := z.SyncData(); err != nil {
		t.Errorf("zero-ahead SyncData = %v, want nil (the rule is for the WAL's own fsync)", err)
	}
	if err := f.SyncData(); !errors.Is(err, faults.ErrDiskFault) {
		t.Errorf("WAL SyncData after the zeroing = %v, want the rule's %v", err, faults.ErrDiskFault)
	}
}

// TestFaultFSSlow checks that a slow rule delays syncs, not writes.
func TestFaultFSSlow(t *testing.T) {
	now := time.Now()
	mf, _, f := faultSegment(t, &now)
	const delay = 30 * time.Millisecond
	install(t, mf, faults.Spec{Kind: faults.KindDisk, Member: "1", Mode: faults.DiskSlow, Delay: faults.Duration(delay)})
	start := time.Now()
	if err := f.SyncData(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < delay {
		t.Errorf("SyncData under a %v slow rule took %v", delay, d)
	}
	v := mf.plane.Disk(1, faults.OpWrite, now, nil)
	if v.Delay != 0 || v.Err != nil {
		t.Errorf("a slow rule acts on writes: %+v", v)
	}
}

func TestSkewClockAndPause(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mf := newMemberFaults(t, &now)
	base := fixedClock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := skewClock{base: base, mf: mf}
	if got := c.Now(); !got.Equal(base.t) {
		t.Errorf("skewClock without rules = %v, want %v", got, base.t)
	}
	drift := 1.5
	install(t, mf, faults.Spec{Kind: faults.KindClock, Member: "1", Offset: faults.Duration(2 * time.Second), Drift: &drift})
	now = now.Add(10 * time.Second)
	if got, want := c.Now(), base.t.Add(7*time.Second); !got.Equal(want) {
		t.Errorf("skewClock with +2s drift 1.5 after 10s = %v, want %v", got, want)
	}

	changed := mf.plane.Changes()
	if paused, _, _ := mf.Pause(); paused {
		t.Error("Pause() without a pause rule = true")
	}
	install(t, mf, faults.Spec{Kind: faults.KindPause, Member: "1", Duration: faults.Duration(5 * time.Second)})
	select {
	case <-changed:
	default:
		t.Error("installing a pause did not signal the Pauser's change channel")
	}
	if paused, until, _ := mf.Pause(); !paused || !until.Equal(now.Add(5*time.Second)) {
		t.Errorf("Pause() = %v, %v; want true, %v", paused, until, now.Add(5*time.Second))
	}
	mf.self.Store(2)
	if paused, _, _ := mf.Pause(); paused {
		t.Error("another member's pause paused this one")
	}
}
