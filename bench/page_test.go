package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// A page from a fabricated run: every section is there, ratios are computed
// against the same tool, and a failed cell says so instead of a figure.
func TestRenderPage(t *testing.T) {
	e := &env{
		opts:    options{Runs: 3, Secs: 2, Members: []int{1, 3}, Commands: "go -C bench run ."},
		started: time.Unix(0, 0), finished: time.Unix(60, 0),
		systems: []system{{Key: "concord", Name: "Concord", Version: "commit x"},
			{Key: "etcd36", Name: "etcd 3.6", Version: "3.6.16"}},
		tools:     map[toolKind]string{},
		toolVers:  map[toolKind]string{toolEtcd: "v3.6.8", toolConcord: "commit x"},
		workloads: workloads()[:2],
		cells:     map[string]*cell{},
		noop:      map[string]*cell{ceil1: {Runs: []sample{{RPS: 10000}}}, ceil100: {Runs: []sample{{RPS: 50000}}}},
		fsync: map[int]*cell{1: {Runs: []sample{{RPS: 1000, P50: 0.9, P99: 1.5}, {RPS: 1200, P50: 0.8, P99: 1.4}, {RPS: 1100, P50: 0.85, P99: 1.45}}},
			3: {Runs: []sample{{RPS: 700, P50: 1.4, P99: 2.5}}}},
		fsyncAfter: map[int]*cell{1: {Runs: []sample{{RPS: 500, P50: 1.9, P99: 3.5}}}},
		rss:        map[string][]float64{"3|concord": {40, 41, 42}},
		phases:     []phase{{"build", 9400 * time.Millisecond}, {"3-member tables", 61 * time.Second}},
	}
	for _, n := range []int{1, 3} {
		for _, t := range []toolKind{toolEtcd, toolConcord} {
			e.cells[cellKey(n, "concord", "put-1", t)] = &cell{Total: 10, Runs: []sample{{RPS: 2000, P50: 0.4, P99: 1}, {RPS: 1800, P50: 0.4, P99: 1}, {RPS: 2200, P50: 0.4, P99: 1}}}
			e.cells[cellKey(n, "etcd36", "put-1", t)] = &cell{Total: 10, Runs: []sample{{RPS: 1000, P50: 0.9, P99: 2}}}
			e.cells[cellKey(n, "concord", "put-100-leader", t)] = &cell{Total: 10, Err: "boom | bang"}
		}
	}
	page := renderPage(e)
	for _, want := range []string{
		"# Benchmarks", "## Machine ceilings",
		"| data disk: 4 KiB write + fdatasync, per second | 1100 | 1000–1200 | 0.85 / 1.45 | 500 | 500–500 | 1.90 / 3.50 |",
		"| data disk: the same in 3 files at once (a cluster's WALs on one disk), per second per file | 700 | 700–700 | 1.40 / 2.50 | not measured | | |",
		"| no-op gRPC unary (264 B request), 1 conns / 1 clients, calls/s | 10000 | 10000–10000 |",
		"## Results, 3 members", "## Results, 1 member", "| 2000 (1800–2200) |", "| 2.00× |", "| failed |",
		"## Concord against the no-op gRPC ceiling", "| 20.0% |", "40, 41, 42",
		"concord bench --format json --endpoints <endpoints> --target-leader --conns 1 --clients 1 put --key-size 8 --val-size 256 --total <N>",
		"benchmark --precise --endpoints <endpoints>", "boom \\| bang", "put, 1 client: p50 ≤ 0.5 ms | met (0.40 ms)",
		"- run: 1970-01-01 00:00 UTC, took 1m0s (build 9s, 3-member tables 1m1s)",
		"- steal: a measured run during which the hypervisor gave more than 10% of the machine's CPU",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Index(page, "## Results, 3 members") > strings.Index(page, "## Results, 1 member") {
		t.Error("3 members should come first")
	}
}

func TestNoopLoad(t *testing.T) {
	lis, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	go serveNoop(lis)
	defer lis.Close()
	s, err := noopLoad(context.Background(), lis.Addr().String(), 2, 4, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.RPS <= 0 || s.P50 <= 0 || s.P99 < s.P50 || s.Failed != 0 {
		t.Fatalf("sample %+v", s)
	}
}

func TestFsyncProbe(t *testing.T) {
	for _, w := range []int{1, 3} {
		dir := t.TempDir()
		s, err := fsyncProbe(dir, w, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if s.RPS <= 0 || s.P50 <= 0 || s.P99 < s.P50 {
			t.Fatalf("%d writers: sample %+v", w, s)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%d writers left %d files behind", w, len(left))
		}
	}
}
