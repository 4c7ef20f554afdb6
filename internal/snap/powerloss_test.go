package snap

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

var powerLossSeed = flag.Uint64("powerloss.seed", 0, "seed for TestPowerLoss; 0 picks one from the clock")

// hookFS calls before ahead of every operation that changes the filesystem,
// so the test can take a CrashClone between any two of them.
type hookFS struct {
	vfs.FS
	before func()
}

type hookFile struct {
	vfs.File
	before func()
}

func (h *hookFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, before: h.before}, nil
}

func (h *hookFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	h.before()
	return h.wrap(h.FS.Create(name, c))
}
func (h *hookFS) OpenDir(name string) (vfs.File, error) { return h.wrap(h.FS.OpenDir(name)) }
func (h *hookFS) Rename(a, b string) error              { h.before(); return h.FS.Rename(a, b) }
func (h *hookFS) Remove(name string) error              { h.before(); return h.FS.Remove(name) }
func (f *hookFile) Write(p []byte) (int, error)         { f.before(); return f.File.Write(p) }
func (f *hookFile) Sync() error                         { f.before(); return f.File.Sync() }

func TestPowerLoss(t *testing.T) {
	seed := *powerLossSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -powerloss.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0xfeed))

	type crashPoint struct {
		fs               *vfs.MemFS
		durable, writing uint64 // newest index whose Save returned; index being saved (0: none)
	}
	mem := vfs.NewCrashableMem()
	var (
		crashes          []crashPoint
		durable, writing uint64
	)
	fs := &hookFS{FS: mem, before: func() {
		if len(crashes) < 200 && rng.IntN(100) < 30 {
			clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(4) * 33, RNG: rng})
			crashes = append(crashes, crashPoint{fs: clone, durable: durable, writing: writing})
		}
	}}
	s, err := New(fs, testDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	content := func(index uint64, size int) string {
		return fmt.Sprintf("%d:%s", index, strings.Repeat("s", size))
	}
	for index := uint64(1); len(crashes) < 200 && index < 2000; index++ {
		writing = index
		// Sizes span several 4 KiB crash blocks, so crashes tear files mid-write.
		if err := s.Save(snapshot(index, 1, content(index, rng.IntN(24<<10)))); err != nil {
			t.Fatal(err)
		}
		durable, writing = index, 0
		if rng.IntN(3) == 0 {
			if err := s.Purge(2); err != nil {
				t.Fatal(err)
			}
		}
	}

	sawTemp := false
	for i, cp := range crashes {
		names, _ := cp.fs.List(testDir)
		for _, n := range names {
			sawTemp = sawTemp || strings.HasSuffix(n, tempSuffix)
		}
		s, err := New(cp.fs, testDir, nil)
		if err != nil {
			t.Fatalf("seed %d, crash %d: New: %v", seed, i, err)
		}
		got, err := s.LoadNewest(nil)
		if errors.Is(err, ErrNotFound) && cp.durable == 0 {
			continue
		}
		if err != nil {
			t.Fatalf("seed %d, crash %d: LoadNewest: %v (durable %d)", seed, i, err, cp.durable)
		}
		idx := got.GetMetadata().GetIndex()
		if idx < cp.durable || (idx > cp.durable && idx != cp.writing) {
			t.Fatalf("seed %d, crash %d: loaded snapshot %d; durable %d, in flight %d", seed, i, idx, cp.durable, cp.writing)
		}
		if !strings.HasPrefix(string(got.GetData()), fmt.Sprintf("%d:", idx)) {
			t.Fatalf("seed %d, crash %d: snapshot %d has wrong data", seed, i, idx)
		}
		// The durable snapshot itself always loads by name.
		if cp.durable > 0 {
			if _, err := s.Load(cp.durable, 1); err != nil {
				t.Fatalf("seed %d, crash %d: Load(durable %d): %v", seed, i, cp.durable, err)
			}
		}
		names, _ = cp.fs.List(testDir)
		for _, n := range names {
			if strings.HasSuffix(n, brokenExt) {
				t.Fatalf("seed %d, crash %d: a crash produced a corrupt snapshot: %v", seed, i, names)
			}
		}
		// Purge clears the half-written temp files.
		if err := s.Purge(1); err != nil {
			t.Fatal(err)
		}
		names, _ = cp.fs.List(testDir)
		for _, n := range names {
			if strings.HasSuffix(n, tempSuffix) {
				t.Fatalf("seed %d, crash %d: Purge left %s", seed, i, n)
			}
		}
	}
	if !sawTemp {
		t.Fatal("no crash point caught a half-written temp file")
	}
}
