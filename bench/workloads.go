package main

import (
	"math"
	"strconv"
	"strings"
)

// workload is one line of issue 5's list, spelled for both load tools. The
// global flags (--target-leader, --conns, --clients) are common; the
// subcommand differs only where the tools' flags do (watch's watchers flag).
type workload struct {
	ID     string
	Name   string
	Global []string
	// Concord and Etcd are the subcommand and its flags, without the total.
	Concord, Etcd []string
	// TotalFlag is the flag that sizes a run; Smoke is its value in smoke
	// mode and the calibration run's in a full run.
	TotalFlag string
	Smoke     int
	// RatePerSec > 0: the workload is paced (watch-latency), so a run of d
	// seconds is RatePerSec*d puts and needs no calibration.
	RatePerSec int
	// ByLatency: the rate is set by the tool, so the ratio compares p50
	// latencies (etcd's ÷ Concord's: above 1 means Concord is faster).
	ByLatency bool
	// Ceiling is the no-op gRPC shape ("conns/clients") this workload's rate
	// is compared with; "" for none.
	Ceiling string
	// Conn is connection flags (TLS, credentials) put after --endpoints;
	// ConnShown is how the page shows them, with placeholders for the work
	// directory's files and the password. Only the TLS and auth section
	// sets them.
	Conn, ConnShown []string
}

const (
	ceil1   = "1/1"
	ceil100 = "10/100"
)

func workloads() []workload {
	put := []string{"put", "--key-size", "8", "--val-size", "256"}
	put100 := append(append([]string{}, put...), "--sequential-keys", "--key-space-size", "100000")
	rangeL := []string{"range", "foo", "--consistency", "l"}
	rangeS := []string{"range", "foo", "--consistency", "s"}
	txn := []string{"txn-put", "--key-size", "8", "--val-size", "256", "--key-space-size", "100000"}
	c100 := []string{"--conns", "10", "--clients", "100"}
	c1 := []string{"--conns", "1", "--clients", "1"}
	leader := func(g []string) []string { return append([]string{"--target-leader"}, g...) }
	return []workload{
		{ID: "put-1", Name: "put 8 B/256 B, 1 client, leader", Global: leader(c1), Concord: put, Etcd: put,
			TotalFlag: "--total", Smoke: 100, Ceiling: ceil1},
		{ID: "put-100-leader", Name: "put 8 B/256 B, 100 clients/10 conns, leader", Global: leader(c100), Concord: put100, Etcd: put100,
			TotalFlag: "--total", Smoke: 1000, Ceiling: ceil100},
		{ID: "put-100-spread", Name: "put 8 B/256 B, 100 clients/10 conns, all members", Global: c100, Concord: put100, Etcd: put100,
			TotalFlag: "--total", Smoke: 1000, Ceiling: ceil100},
		{ID: "range-l-100", Name: "range 1 key linearizable, 100 clients/10 conns", Global: c100, Concord: rangeL, Etcd: rangeL,
			TotalFlag: "--total", Smoke: 2000, Ceiling: ceil100},
		{ID: "range-s-100", Name: "range 1 key serializable, 100 clients/10 conns", Global: c100, Concord: rangeS, Etcd: rangeS,
			TotalFlag: "--total", Smoke: 2000, Ceiling: ceil100},
		{ID: "range-l-1", Name: "range 1 key linearizable, 1 client", Global: c1, Concord: rangeL, Etcd: rangeL,
			TotalFlag: "--total", Smoke: 200, Ceiling: ceil1},
		{ID: "range-s-1", Name: "range 1 key serializable, 1 client", Global: c1, Concord: rangeS, Etcd: rangeS,
			TotalFlag: "--total", Smoke: 200, Ceiling: ceil1},
		{ID: "txn-put-100", Name: "txn-put (1 put), 100 clients/10 conns", Global: c100, Concord: txn, Etcd: txn,
			TotalFlag: "--total", Smoke: 1000},
		{ID: "lease-100", Name: "lease keepalive, 100 clients/10 conns", Global: c100,
			Concord: []string{"lease-keepalive"}, Etcd: []string{"lease-keepalive"}, TotalFlag: "--total", Smoke: 2000},
		{ID: "watch-fanout", Name: "watch fan-out, 10 streams × 100 watchers (events/s)", Global: []string{"--conns", "10", "--clients", "10"},
			Concord:   []string{"watch", "--streams", "10", "--watchers-per-stream", "100"},
			Etcd:      []string{"watch", "--streams", "10", "--watch-per-stream", "100"},
			TotalFlag: "--put-total", Smoke: 100},
		{ID: "watch-latency", Name: "watch latency, 10 streams × 10 watchers, 100 puts/s", Global: []string{"--conns", "10", "--clients", "10"},
			Concord:   []string{"watch-latency", "--streams", "10", "--watchers-per-stream", "10", "--put-rate", "100"},
			Etcd:      []string{"watch-latency", "--streams", "10", "--watchers-per-stream", "10", "--put-rate", "100"},
			TotalFlag: "--put-total", Smoke: 30, RatePerSec: 100, ByLatency: true},
	}
}

// toolKind names a load tool.
type toolKind string

const (
	toolEtcd    toolKind = "etcd benchmark"
	toolConcord toolKind = "concord bench"
)

// args is the load tool's command line (after the binary) for one run.
func (w workload) args(t toolKind, endpoints []string, total int) []string {
	var a []string
	sub := w.Etcd
	if t == toolConcord {
		a = append(a, "bench", "--format", "json")
		sub = w.Concord
	} else {
		a = append(a, "--precise")
	}
	a = append(a, "--endpoints", strings.Join(endpoints, ","))
	a = append(a, w.Conn...)
	a = append(a, w.Global...)
	a = append(a, sub...)
	return append(a, w.TotalFlag, strconv.Itoa(total))
}

// scaledTotal sizes a run to last about secs seconds, given a calibration
// run of calTotal that took calElapsed. It never goes below the calibration
// size, nor above limit.
func scaledTotal(calTotal int, calElapsed, secs float64, limit int) int {
	if calElapsed <= 0 || math.IsNaN(calElapsed) {
		return calTotal
	}
	n := int(float64(calTotal) * secs / calElapsed)
	return max(calTotal, min(n, limit))
}
