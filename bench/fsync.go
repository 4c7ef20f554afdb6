package main

import (
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// fsyncsPerSecond measures the data disk as a WAL sees it: rewrite one 4 KiB
// block and fdatasync it, as often as possible for d, in dir.
func fsyncsPerSecond(dir string, d time.Duration) (float64, error) {
	path := filepath.Join(dir, "fsync.probe")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.WriteAt(buf, 0); err != nil {
			return 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
