package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// A Concord member keeps every key and value in its Go heap (there is no
// page cache behind it, as bbolt's mmap is behind etcd), and Go's default
// GOGC=100 lets the heap grow to twice the live data between collections:
// a member holding 400 MB of keys would hold up to 800 MB. tuneGC caps the
// headroom instead: the collector may let the heap grow by a quarter of the
// live heap, but never by less than gcMinHeadroom, and never by more than
// GOGC=100 would. A small member therefore runs exactly as with the
// default; a large one trades some collector CPU (a few percent of a core
// while loading a million keys, BenchmarkLoadKeys with GOGC=25) for a
// resident set close to its data. GOGC in the environment turns it off.
const (
	gcMinHeadroom  = 64 << 20
	gcHeadroomFrac = 4 // headroom = live / gcHeadroomFrac
	gcTuneEvery    = time.Second
)

// gcPercentFor is the GOGC value tuneGC sets for a live heap of live bytes.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return 100
	}
	headroom := max(uint64(gcMinHeadroom), live/gcHeadroomFrac)
	return int(min(100, max(100/gcHeadroomFrac, headroom*100/live)))
}

// tuneGC adjusts the GC percent every gcTuneEvery until ctx ends, unless
// GOGC is set in the environment.
func tuneGC(ctx context.Context, logger *slog.Logger) {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	go func() {
		t := time.NewTicker(gcTuneEvery)
		defer t.Stop()
		cur := 100
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				return // not this runtime's metric: leave the default
			}
			if p := gcPercentFor(sample[0].Value.Uint64()); p != cur {
				debug.SetGCPercent(p)
				logger.Debug("gc percent", "gogc", p, "live_heap_bytes", sample[0].Value.Uint64())
				cur = p
			}
		}
	}()
}
