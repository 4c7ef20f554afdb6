package wal

import (
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// syncCountFS counts the fdatasyncs and full syncs made through its files.
type syncCountFS struct {
	vfs.FS
	syncData, sync atomic.Int64
}

type syncCountFile struct {
	vfs.File
	fs *syncCountFS
}

func (c *syncCountFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &syncCountFile{File: f, fs: c}, nil
}

func (c *syncCountFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	return c.wrap(c.FS.Create(name, cat))
}

func (c *syncCountFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return c.wrap(c.FS.OpenReadWrite(name, cat, opts...))
}

func (f *syncCountFile) SyncData() error { f.fs.syncData.Add(1); return f.File.SyncData() }
func (f *syncCountFile) Sync() error     { f.fs.sync.Add(1); return f.File.Sync() }

// TestUnsafeNoSync: with Config.UnsafeNoSync every Save still writes its
// batch (a clean reopen reads it back) but makes no fdatasync, so a power
// loss takes back what Save returned for; the default syncs once per Save
// and a power loss loses nothing.
func TestUnsafeNoSync(t *testing.T) {
	const saves = 20
	for _, tc := range []struct {
		noSync        bool
		wantSyncData  int64 // fdatasyncs made by the Saves
		wantAfterLoss int   // entries a CrashClone keeping no unsynced data holds
	}{
		{noSync: false, wantSyncData: saves, wantAfterLoss: saves},
		{noSync: true, wantSyncData: 0, wantAfterLoss: 0},
	} {
		mem := vfs.NewCrashableMem()
		fs := &syncCountFS{FS: mem}
		cfg := testConfig(fs, 1<<20)
		cfg.UnsafeNoSync = tc.noSync
		cfg.ZeroAhead = 0 // count the Saves' fdatasyncs alone
		w := mustCreate(t, cfg, "meta")
		before := fs.syncData.Load()
		for i := uint64(1); i <= saves; i++ {
			if err := w.Save(hardstate(1, 1, i), ents(i, i, 1)); err != nil {
				t.Fatalf("noSync=%v: Save(%d): %v", tc.noSync, i, err)
			}
		}
		if got := fs.syncData.Load() - before; got != tc.wantSyncData {
			t.Errorf("noSync=%v: %d Saves made %d fdatasyncs, want %d", tc.noSync, saves, got, tc.wantSyncData)
		}

		// Power loss: only synced data survives.
		lost := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		_, rr, err := Open(testConfig(lost, 1<<20), SnapshotMark{})
		if err != nil {
			t.Fatalf("noSync=%v: Open after power loss: %v", tc.noSync, err)
		}
		if len(rr.Entries) != tc.wantAfterLoss {
			t.Errorf("noSync=%v: %d entries after power loss, want %d", tc.noSync, len(rr.Entries), tc.wantAfterLoss)
		}

		// Process crash (no power loss): the writes did happen.
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, rr, err = Open(testConfig(mem, 1<<20), SnapshotMark{})
		if err != nil {
			t.Fatalf("noSync=%v: reopen: %v", tc.noSync, err)
		}
		checkEntries(t, rr.Entries, ents(1, saves, 1))
	}
}

// TestUnsafeNoSyncRollover: without per-batch syncs, rollover still syncs
// the full segment first, so a power loss forgets only the current
// segment's unsynced tail and the log still opens (no hole in the batch
// sequence between segments).
func TestUnsafeNoSyncRollover(t *testing.T) {
	mem := vfs.NewCrashableMem()
	cfg := testConfig(mem, 1024)
	cfg.UnsafeNoSync = true
	w := mustCreate(t, cfg, "meta")
	const n = 200
	for i := uint64(1); i <= n; i++ {
		if err := w.Save(hardstate(1, 1, i), ents(i, i, 1)); err != nil {
			t.Fatalf("Save(%d): %v", i, err)
		}
	}
	if len(w.segs) < 3 {
		t.Fatalf("%d segments after %d Saves of a 1 KiB segment size; want rollovers", len(w.segs), n)
	}
	lost := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	_, rr, err := Open(testConfig(lost, 1024), SnapshotMark{})
	if err != nil {
		t.Fatalf("Open after power loss: %v", err)
	}
	// Everything before the current segment survived; some of its tail did
	// not.
	kept := uint64(len(rr.Entries))
	if kept == n || kept < w.segs[len(w.segs)-1].firstIndex-1 {
		t.Errorf("%d of %d entries survived; want every entry before the current segment (first index %d) and not all", kept, n, w.segs[len(w.segs)-1].firstIndex)
	}
	checkEntries(t, rr.Entries, ents(1, kept, 1))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
