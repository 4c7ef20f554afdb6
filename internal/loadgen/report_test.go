package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

func sampleResult() *Result {
	h := new(Histogram)
	for _, d := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond} {
		h.Record(d)
	}
	return &Result{
		Succeeded:   4,
		Failed:      3,
		Aborted:     1,
		ErrorCounts: map[string]uint64{"etcdserver: no leader": 1, "etcdserver: too many requests": 2},
		Elapsed:     2 * time.Second,
		Interrupted: context.DeadlineExceeded,
		Latency:     h,
	}
}

func TestSummaryText(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleResult().Summarize().WriteText(&buf); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	want := `Summary:
  Total:         2.0000 s
  Requests:      4 ok, 3 failed, 1 aborted
  Requests/sec:  2.0
  Interrupted:   context deadline exceeded

Latency (ms):
  Fastest:  1.0000
  Average:  2.5000
  Stddev:   1.1180
  Slowest:  4.0000
  p50:      2.0029
  p90:      4.0000
  p99:      4.0000
  p99.9:    4.0000

Errors:
  2  etcdserver: too many requests
  1  etcdserver: no leader
`
	if got := buf.String(); got != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", got, want)
	}
}

func TestSummaryJSONFieldNames(t *testing.T) {
	b, err := json.Marshal(sampleResult().Summarize())
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	// The benchmark harness parses these names; renaming one is a breaking change.
	for _, k := range []string{"succeeded", "failed", "aborted", "elapsed_seconds", "requests_per_sec", "interrupted", "error_counts", "latency_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s lacks key %q", b, k)
		}
	}
	lat, _ := m["latency_ms"].(map[string]any)
	for _, k := range []string{"min", "mean", "stddev", "max", "p50", "p90", "p99", "p99_9"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("JSON latency_ms %v lacks key %q", lat, k)
		}
	}
	if got := m["requests_per_sec"]; got != 2.0 {
		t.Errorf("requests_per_sec = %v, want 2", got)
	}
}

func TestSummarizeEmptyResult(t *testing.T) {
	s := (&Result{}).Summarize()
	if s.RequestsPerSec != 0 || s.LatencyMS != (LatencySummary{}) || s.Interrupted != "" {
		t.Errorf("Summarize of an empty result = %+v, want zeros", s)
	}
}
