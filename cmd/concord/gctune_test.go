package main

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, scan uint64
		want       int
	}{
		{0, 0, 100},
		{4 * mib, 4 * mib, 1600},     // 64 MiB of headroom: 16 times the live heap
		{10 * mib, 2 * mib, 640},     // 64 MiB of headroom
		{64 * mib, 64 * mib, 100},    // 64 MiB, as the default would give
		{128 * mib, 128 * mib, 50},   // 64 MiB of headroom
		{256 * mib, 256 * mib, 25},   // a quarter, also 64 MiB
		{400 * mib, 400 * mib, 25},   // a quarter of the scannable heap, all of it
		{400 * mib, 150 * mib, 16},   // mostly values: the 64 MiB floor
		{4096 * mib, 4096 * mib, 25}, // a quarter
		{4096 * mib, 1024 * mib, 6},  // a quarter of the scannable gigabyte
		{4096 * mib, 8192 * mib, 25}, // scan counted since the collection: never above live
		{1 << 40, 1 << 30, 1},        // never 0, which would collect without pause
	} {
		if got := gcPercentFor(tc.live, tc.scan); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", tc.live/mib, tc.scan/mib, got, tc.want)
		}
	}
}

// TestTuneGCFollowsCollections: after every collection the tuner sets the
// percent for the live heap that collection found, and it stops when its
// context ends.
func TestTuneGCFollowsCollections(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tuneGC(ctx, slog.New(slog.DiscardHandler))

	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}}
	tuned := func() (int, int, bool) {
		metrics.Read(sample)
		got, want := int(sample[0].Value.Uint64()), gcPercentFor(sample[1].Value.Uint64(), sample[2].Value.Uint64())
		return got, want, got == want
	}
	// Undo the tuner's setting, then let a collection run: the tuner must
	// set it again (asynchronously, from the collection's cleanup).
	debug.SetGCPercent(100)
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if _, want, ok := tuned(); ok && want != 100 {
			break
		}
		if time.Now().After(deadline) {
			got, want, _ := tuned()
			t.Fatalf("GOGC %d after collections, want %d (the tuner's setting for this live heap)", got, want)
		}
		time.Sleep(time.Millisecond) // let the cleanup goroutine run
	}

	cancel()
	runtime.GC() // runs the cleanup armed before cancel; it sees ctx done
	debug.SetGCPercent(100)
	for range 5 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if got, _, _ := tuned(); got != 100 {
		t.Errorf("GOGC %d after the tuner's context ended, want the 100 set by hand", got)
	}
}
