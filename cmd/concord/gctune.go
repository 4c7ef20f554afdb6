package main

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// A Concord member keeps every key and value in its Go heap (there is no
// page cache behind it, as bbolt's mmap is behind etcd). Go's default,
// GOGC=100, sizes the collector's headroom by the live heap alone, which is
// wrong at both ends for a member:
//
//   - A small member (a few MB live, as most coordination stores are)
//     collects every few MB of garbage. Under load every request allocates,
//     so it ran dozens of collections a second (217 in 3 s of serializable
//     ranges at 33k/s), each also shrinking idle goroutine stacks that the
//     next request grows again.
//   - A large member (400 MB of keys) could hold up to 800 MB.
//
// tuneGC sets the headroom to max(gcMinHeadroom, scan/gcHeadroomFrac)
// instead, where scan is the part of the live heap the collector must scan
// (the objects holding pointers), re-computed right after every collection
// from what that collection found, so the goal always follows the data. A
// collection's cost is its mark work, which is the scannable heap: values
// and keys are pointer-free byte arrays, marked without being read, so they
// are no reason to collect less often, and a member's values no longer buy
// it headroom. A small member may grow by 64 MiB between collections, one
// holding a million 256-byte values (373 MB live, 90 MB of it scannable)
// by 64 MiB too, where a quarter of its live heap allowed 93 MB. GOGC in
// the environment turns it off.
const (
	gcMinHeadroom  = 64 << 20
	gcHeadroomFrac = 4 // headroom = scannable / gcHeadroomFrac
)

// gcPercentFor is the GOGC value that gives a live heap of live bytes, scan
// of them scannable, its headroom. It is never below 1: 0 would mean
// collecting without pause.
func gcPercentFor(live, scan uint64) int {
	if live == 0 {
		return 100
	}
	headroom := max(uint64(gcMinHeadroom), min(scan, live)/gcHeadroomFrac)
	return max(1, int(headroom*100/live))
}

// gcSentinel is garbage made for the collector to find: a cleanup attached
// to it runs after the collection that freed it. It holds a pointer so the
// allocator never packs it into a shared tiny block, which could keep it
// alive.
type gcSentinel struct{ _ *byte }

// tuneGC sets the GC percent after every collection until ctx ends, unless
// GOGC is set in the environment.
func tuneGC(ctx context.Context, logger *slog.Logger) {
	if os.Getenv("GOGC") != "" {
		return
	}
	t := &gcTuner{ctx: ctx, log: logger, cur: 100,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}}}
	t.afterGC()
}

type gcTuner struct {
	ctx    context.Context
	log    *slog.Logger
	sample []metrics.Sample
	cur    int // only touched from cleanups, which run one at a time
}

// afterGC sets the percent for the live heap the last collection found and
// arms itself for the next collection.
func (t *gcTuner) afterGC() {
	if t.ctx.Err() != nil {
		return
	}
	metrics.Read(t.sample)
	for _, x := range t.sample {
		if x.Value.Kind() != metrics.KindUint64 {
			return // not this runtime's metric: leave the default
		}
	}
	live, scan := t.sample[0].Value.Uint64(), t.sample[1].Value.Uint64()
	if p := gcPercentFor(live, scan); p != t.cur {
		debug.SetGCPercent(p)
		t.log.Debug("gc percent", "gogc", p, "live_heap_bytes", live, "scan_heap_bytes", scan)
		t.cur = p
	}
	runtime.AddCleanup(new(gcSentinel), func(t *gcTuner) { t.afterGC() }, t)
}
