package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/command"
)

func TestParseAutoCompaction(t *testing.T) {
	cases := []struct {
		mode, retention string
		want            AutoCompaction
		err             bool
	}{
		{"periodic", "0", AutoCompaction{}, false},
		{"periodic", "", AutoCompaction{}, false},
		{"periodic", "1", AutoCompaction{Mode: CompactionPeriodic, Period: time.Hour}, false},
		{"periodic", "72", AutoCompaction{Mode: CompactionPeriodic, Period: 72 * time.Hour}, false},
		{"periodic", "30m", AutoCompaction{Mode: CompactionPeriodic, Period: 30 * time.Minute}, false},
		{"", "5s", AutoCompaction{Mode: CompactionPeriodic, Period: 5 * time.Second}, false},
		{"periodic", "0s", AutoCompaction{}, false},
		{"periodic", "-1", AutoCompaction{}, true},
		{"periodic", "soon", AutoCompaction{}, true},
		{"revision", "1000", AutoCompaction{Mode: CompactionRevision, Revisions: 1000}, false},
		{"revision", "1h", AutoCompaction{}, true},
		{"revision", "-3", AutoCompaction{}, true},
		{"hourly", "1", AutoCompaction{}, true},
	}
	for _, c := range cases {
		got, err := ParseAutoCompaction(c.mode, c.retention)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseAutoCompaction(%q, %q) = %+v, %v; want %+v, error %v", c.mode, c.retention, got, err, c.want, c.err)
		}
	}
}

// compactorRun feeds a compactor one step per tick and returns the
// compactions it asked for as "tick:target" in order; every compaction
// succeeds.
func compactorRun(cfg AutoCompaction, tick time.Duration, steps int, rev func(i int) int64, leader func(i int) bool) []int64 {
	c := compactor{cfg: cfg}
	start := time.Unix(1000, 0)
	var out []int64
	for i := range steps {
		now := start.Add(time.Duration(i) * tick)
		if target, ok := c.step(now, rev(i), leader(i)); ok {
			out = append(out, int64(i), target)
			c.done(now, target)
		}
	}
	return out
}

func TestCompactorRevisionMode(t *testing.T) {
	always := func(int) bool { return true }
	// Revision grows by 10 per tick; keep 25; check every 3 ticks.
	got := compactorRun(AutoCompaction{Mode: CompactionRevision, Revisions: 25, Interval: 3 * time.Second}, time.Second, 10,
		func(i int) int64 { return int64(10 * i) }, always)
	want := []int64{3, 5, 6, 35, 9, 65}
	if !equal(got, want) {
		t.Errorf("revision mode compactions (tick, target) = %v, want %v", got, want)
	}
	// A revision that does not move is not compacted twice.
	got = compactorRun(AutoCompaction{Mode: CompactionRevision, Revisions: 5, Interval: time.Second}, time.Second, 5,
		func(int) int64 { return 100 }, always)
	if want := []int64{1, 95}; !equal(got, want) {
		t.Errorf("revision mode on a still store = %v, want %v", got, want)
	}
	// Followers never compact.
	if got := compactorRun(AutoCompaction{Mode: CompactionRevision, Revisions: 5, Interval: time.Second}, time.Second, 5,
		func(i int) int64 { return int64(100 * i) }, func(int) bool { return false }); len(got) != 0 {
		t.Errorf("follower compactions = %v, want none", got)
	}
}

func TestCompactorPeriodicMode(t *testing.T) {
	// Period 10s: sample every 1s, compact every 10s to the revision of
	// about 10s before. Revision = 100 * tick.
	got := compactorRun(AutoCompaction{Mode: CompactionPeriodic, Period: 10 * time.Second}, time.Second, 31,
		func(i int) int64 { return int64(100 * i) }, func(int) bool { return true })
	want := []int64{10, 0, 20, 1000, 30, 2000}
	if !equal(got, want) {
		t.Errorf("periodic compactions (tick, target) = %v, want %v", got, want)
	}
	// Leadership gained late: samples were kept as a follower, so the new
	// leader compacts at once to the revision of a period ago.
	got = compactorRun(AutoCompaction{Mode: CompactionPeriodic, Period: 10 * time.Second}, time.Second, 16,
		func(i int) int64 { return int64(100 * i) }, func(i int) bool { return i >= 15 })
	if want := []int64{15, 500}; !equal(got, want) {
		t.Errorf("periodic compactions of a late leader = %v, want %v", got, want)
	}
	// Periods above an hour compact hourly, keeping the whole period.
	c := compactor{cfg: AutoCompaction{Mode: CompactionPeriodic, Period: 5 * time.Hour}}
	if w := c.window(); w != time.Hour {
		t.Errorf("window for 5h = %v, want 1h", w)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSnapshotFileRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 491, 492, 493, 5000} {
		blob := bytes.Repeat([]byte{0xab}, n)
		file := EncodeSnapshotFile(blob)
		if len(file)%512 != sha256.Size {
			t.Errorf("len(EncodeSnapshotFile(%d bytes)) = %d, want 32 more than a multiple of 512", n, len(file))
		}
		got, err := DecodeSnapshotFile(file)
		if err != nil || !bytes.Equal(got, blob) {
			t.Errorf("DecodeSnapshotFile(EncodeSnapshotFile(%d bytes)) = %d bytes, %v", n, len(got), err)
		}
	}
}

func TestDecodeSnapshotFileRejects(t *testing.T) {
	good := EncodeSnapshotFile([]byte("state"))
	resum := func(b []byte) []byte {
		body := b[:len(b)-sha256.Size]
		sum := sha256.Sum256(body)
		return append(append([]byte(nil), body...), sum[:]...)
	}
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 1
		return b
	}
	cases := map[string][]byte{
		"empty":           nil,
		"short":           good[:40],
		"truncated":       good[:len(good)-1],
		"flipped body":    flip(25),
		"flipped hash":    flip(len(good) - 1),
		"bad magic":       resum(flip(0)),
		"bad version":     resum(flip(11)),
		"length too long": resum(flip(13)),
		"dirty padding":   resum(flip(100)),
		"etcd bbolt file": append(bytes.Repeat([]byte{0}, 1024), make([]byte, 32)...),
	}
	for name, data := range cases {
		if _, err := DecodeSnapshotFile(data); !errors.Is(err, ErrBadSnapshotFile) {
			t.Errorf("DecodeSnapshotFile(%s) err = %v, want %v", name, err, ErrBadSnapshotFile)
		}
	}
}

func TestDurationHistogram(t *testing.T) {
	var h durationHistogram
	for _, d := range []time.Duration{50 * time.Microsecond, 100 * time.Microsecond, 3 * time.Millisecond, time.Minute} {
		h.observe(d)
	}
	s := h.snapshot()
	if s.Count != 4 {
		t.Errorf("Count = %d, want 4", s.Count)
	}
	if s.Cumulative[0] != 2 { // <= 100µs
		t.Errorf("Cumulative[<=%v] = %d, want 2", s.Bounds[0], s.Cumulative[0])
	}
	if last := s.Cumulative[len(s.Cumulative)-1]; last != 3 {
		t.Errorf("Cumulative[<=%v] = %d, want 3 (the minute is above every bound)", s.Bounds[len(s.Bounds)-1], last)
	}
	if want := (time.Minute + 3150*time.Microsecond).Seconds(); s.Sum != want {
		t.Errorf("Sum = %v, want %v", s.Sum, want)
	}
}

// TestWALSyncMetricCountsSyncsOnly: a put on one member is two Saves, its
// entry and then the commit index alone, which writes nothing. The
// histogram behind etcd_disk_wal_fsync_duration_seconds must count the one
// fdatasync, or half its samples are zeros that hide how slow the disk is.
func TestWALSyncMetricCountsSyncsOnly(t *testing.T) {
	ctx := context.Background()
	s := startTestServer(t, testConfig(t, vfs.NewMem()))
	defer s.Stop()
	if _, _, err := s.Put(ctx, &command.PutRequest{Key: []byte("warm"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	before := s.Metrics().WALSync.Count
	const puts = 20
	for i := range puts {
		if _, _, err := s.Put(ctx, &command.PutRequest{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	// A put waits for its own sync only: allow one sync of something else
	// the member wrote meanwhile, not one per put.
	if got := s.Metrics().WALSync.Count - before; got < puts || got > puts+1 {
		t.Fatalf("%d puts counted %d WAL syncs, want %d", puts, got, puts)
	}
}
