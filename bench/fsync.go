package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// fsyncWriters are the probe's shapes: one WAL, and the WALs of a
// 3-member cluster on this machine's one disk.
var fsyncWriters = []int{1, 3}

// fsyncProbe measures the data disk as WALs see it: each of writers
// goroutines rewrites one 4 KiB block of a file of its own and fdatasyncs
// it, as often as it can for d, in dir. It returns the fsyncs per second of
// one writer (the writers' mean) and the p50 and p99 of every write +
// fdatasync, in ms. One writer is one WAL; three are the three members of
// a cluster on one machine, whose fsyncs share the disk.
func fsyncProbe(dir string, writers int, d time.Duration) (sample, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lats []time.Duration
		errs []error
	)
	start := time.Now()
	for i := range writers {
		wg.Go(func() {
			l, err := fsyncLoop(filepath.Join(dir, fmt.Sprintf("fsync.probe.%d", i)), start.Add(d))
			mu.Lock()
			defer mu.Unlock()
			lats = append(lats, l...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if len(errs) > 0 {
		return sample{}, errs[0]
	}
	if len(lats) == 0 {
		return sample{}, fmt.Errorf("bench: no fsync completed in %v", d)
	}
	slices.Sort(lats)
	at := func(q float64) float64 { return float64(lats[int(q*float64(len(lats)-1))]) / 1e6 }
	return sample{RPS: float64(len(lats)) / elapsed / float64(writers), P50: at(0.50), P99: at(0.99), Elapsed: elapsed}, nil
}

// fsyncLoop rewrites and fdatasyncs one 4 KiB block of path until end and
// returns how long each took.
func fsyncLoop(path string, end time.Time) ([]time.Duration, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 4096)
	var lats []time.Duration
	for {
		t := time.Now()
		if !t.Before(end) {
			return lats, nil
		}
		if _, err := f.WriteAt(buf, 0); err != nil {
			return lats, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return lats, err
		}
		lats = append(lats, time.Since(t))
	}
}
