package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// sample is one run of one load tool: throughput and latency as both tools
// report them (requests/s over the run; latency percentiles in ms).
type sample struct {
	RPS     float64 `json:"rps"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Elapsed float64 `json:"elapsed_s"`
	Failed  uint64  `json:"failed"`
	// CPU is the run's CPU accounting (cpu.go); nil, with CPUErr saying
	// why, when it could not be taken.
	CPU    *cpuUse `json:"cpu,omitempty"`
	CPUErr string  `json:"cpu_error,omitempty"`
}

var errNoSummary = errors.New("bench: no summary in the load tool's output")

// parseConcord reads `concord bench --format json`.
func parseConcord(out []byte) (sample, error) {
	var r struct {
		Succeeded      uint64  `json:"succeeded"`
		Failed         uint64  `json:"failed"`
		ElapsedSeconds float64 `json:"elapsed_seconds"`
		RequestsPerSec float64 `json:"requests_per_sec"`
		LatencyMS      struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"latency_ms"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return sample{}, fmt.Errorf("bench: concord bench output: %w", err)
	}
	if r.Succeeded == 0 {
		return sample{}, errNoSummary
	}
	return sample{RPS: r.RequestsPerSec, P50: r.LatencyMS.P50, P99: r.LatencyMS.P99,
		Elapsed: r.ElapsedSeconds, Failed: r.Failed}, nil
}

// parseEtcd reads the text report of etcd's tools/benchmark. Some commands
// print several reports (watch: creation then events; watch-latency: puts then
// events); the last one is the one that measures the workload.
func parseEtcd(out []byte) (sample, error) {
	i := bytes.LastIndex(out, []byte("Summary:"))
	if i < 0 {
		return sample{}, errNoSummary
	}
	var s sample
	var have int
	sc := bufio.NewScanner(bytes.NewReader(out[i:]))
	inErrors, haveLatencies := false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Total:"):
			if v, ok := secs(strings.TrimPrefix(line, "Total:")); ok {
				s.Elapsed = v
				have++
			}
		case strings.HasPrefix(line, "Requests/sec:"):
			if v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64); err == nil {
				s.RPS = v
				have++
			}
		case strings.HasPrefix(line, "Latency distribution:"):
			haveLatencies = true
		case strings.HasPrefix(line, "50% in "):
			if v, ok := secs(strings.TrimPrefix(line, "50% in ")); ok {
				s.P50 = v * 1000
			}
		case strings.HasPrefix(line, "99% in "):
			if v, ok := secs(strings.TrimPrefix(line, "99% in ")); ok {
				s.P99 = v * 1000
			}
		case strings.HasPrefix(line, "Error distribution:"):
			inErrors = true
		case inErrors && strings.HasPrefix(line, "["):
			if j := strings.Index(line, "]"); j > 0 {
				if n, err := strconv.ParseUint(line[1:j], 10, 64); err == nil {
					s.Failed += n
				}
			}
		}
	}
	// The tool leaves out a percentile whose value is 0 (watch-latency clips
	// an event that beat the put's reply to 0), so only the distribution's
	// header is required; a missing percentile is 0.
	if have < 2 || !haveLatencies {
		return sample{}, fmt.Errorf("%w (incomplete report)", errNoSummary)
	}
	return s, nil
}

// secs parses "0.0123 secs." as seconds.
func secs(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, ".")
	s = strings.TrimSuffix(s, "secs")
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v, err == nil
}

// spread is the median and the range of a set of runs.
type spread struct{ Med, Min, Max float64 }

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Med: m, Min: s[0], Max: s[len(s)-1]}
}

// cell is what one system did on one workload with one tool.
type cell struct {
	Total   int      `json:"total"`
	Runs    []sample `json:"runs"`
	Command string   `json:"command"`
	Err     string   `json:"error,omitempty"`
	// Retried counts runs that failed once and were run again; Errors says why.
	Retried int      `json:"retried,omitempty"`
	Errors  []string `json:"retried_errors,omitempty"`
}

func (c cell) ok() bool { return c.Err == "" && len(c.Runs) > 0 }

func (c cell) rps() spread {
	xs := make([]float64, len(c.Runs))
	for i, r := range c.Runs {
		xs[i] = r.RPS
	}
	return spreadOf(xs)
}

func (c cell) p50() float64 {
	xs := make([]float64, len(c.Runs))
	for i, r := range c.Runs {
		xs[i] = r.P50
	}
	return spreadOf(xs).Med
}

func (c cell) p99() float64 {
	xs := make([]float64, len(c.Runs))
	for i, r := range c.Runs {
		xs[i] = r.P99
	}
	return spreadOf(xs).Med
}

func (c cell) failed() uint64 {
	var n uint64
	for _, r := range c.Runs {
		n += r.Failed
	}
	return n
}
