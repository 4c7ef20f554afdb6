package main

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const etcdPut = `Summary:
  Total:	2.0134 secs.
  Slowest:	0.0451 secs.
  Fastest:	0.0011 secs.
  Average:	0.0088 secs.
  Stddev:	0.0041 secs.
  Requests/sec:	11352.4412

Response time histogram:
  0.0011 [1]	|
  0.0451 [3]	|

Latency distribution:
  10% in 0.0049 secs.
  25% in 0.0062 secs.
  50% in 0.0079 secs.
  75% in 0.0104 secs.
  90% in 0.0134 secs.
  95% in 0.0158 secs.
  99% in 0.0224 secs.
  99.9% in 0.0331 secs.
`

func TestParseEtcd(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    sample
		wantErr bool
	}{
		{name: "put", out: "bench with linearizable range\n\n" + etcdPut,
			want: sample{RPS: 11352.4412, P50: 7.9, P99: 22.4, Elapsed: 2.0134}},
		{name: "last report wins", out: "Put summary:\n" + strings.ReplaceAll(etcdPut, "11352.4412", "1") +
			"\nWatch events summary:\n" + etcdPut,
			want: sample{RPS: 11352.4412, P50: 7.9, P99: 22.4, Elapsed: 2.0134}},
		{name: "zero percentiles are left out", out: `Summary:
  Total:	0.0309 secs.
  Requests/sec:	96942.8

Latency distribution:
  75% in 0.0001 secs.
`, want: sample{RPS: 96942.8, Elapsed: 0.0309}},
		{name: "precise and exponent", out: `Summary:
  Total:	1.5 secs.
  Requests/sec:	100

Latency distribution:
  50% in 7.5e-05 secs.
  99% in 0.001 secs.
`, want: sample{RPS: 100, P50: 0.075, P99: 1, Elapsed: 1.5}},
		{name: "errors counted", out: etcdPut + "Error distribution:\n  [12]\tetcdserver: request timed out\n  [3]\tcontext canceled\n",
			want: sample{RPS: 11352.4412, P50: 7.9, P99: 22.4, Elapsed: 2.0134, Failed: 15}},
		{name: "no summary", out: "panic: boom\n", wantErr: true},
		{name: "no distribution", out: "Summary:\n  Total:\t1 secs.\n  Requests/sec:\t5\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEtcd([]byte(tt.out))
			if tt.wantErr {
				if !errors.Is(err, errNoSummary) {
					t.Fatalf("err = %v, want errNoSummary", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !approx(got.RPS, tt.want.RPS) || !approx(got.P50, tt.want.P50) || !approx(got.P99, tt.want.P99) ||
				!approx(got.Elapsed, tt.want.Elapsed) || got.Failed != tt.want.Failed {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestParseConcord(t *testing.T) {
	out := `{"benchmark":"put","succeeded":100,"failed":2,"elapsed_seconds":0.5,"requests_per_sec":200,
		"latency_ms":{"p50":1.5,"p99":4}}`
	got, err := parseConcord([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if want := (sample{RPS: 200, P50: 1.5, P99: 4, Elapsed: 0.5, Failed: 2}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := parseConcord([]byte(`{"succeeded":0}`)); !errors.Is(err, errNoSummary) {
		t.Fatalf("no success: err = %v", err)
	}
	if _, err := parseConcord([]byte(`not json`)); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		in   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{3}, spread{3, 3, 3}},
		{[]float64{5, 1, 3}, spread{3, 1, 5}},
		{[]float64{4, 1, 3, 2}, spread{2.5, 1, 4}},
	}
	for _, tt := range tests {
		if got := spreadOf(tt.in); got != tt.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestScaledTotal(t *testing.T) {
	tests := []struct {
		cal     int
		elapsed float64
		secs    float64
		limit   int
		want    int
	}{
		{100, 0.1, 2, 1e6, 2000},
		{100, 0.1, 2, 500, 500}, // capped
		{100, 10, 2, 1e6, 100},  // never below the calibration size
		{100, 0, 2, 1e6, 100},   // no elapsed time reported
		{100, math.NaN(), 2, 1e6, 100},
	}
	for _, tt := range tests {
		if got := scaledTotal(tt.cal, tt.elapsed, tt.secs, tt.limit); got != tt.want {
			t.Errorf("scaledTotal(%d, %v, %v, %d) = %d, want %d", tt.cal, tt.elapsed, tt.secs, tt.limit, got, tt.want)
		}
	}
}

func TestWorkloadArgs(t *testing.T) {
	var watch workload
	for _, w := range workloads() {
		if w.ID == "watch-fanout" {
			watch = w
		}
		// Both tools must get the same global flags and the same total flag.
		e := strings.Join(w.args(toolEtcd, []string{"a:1", "b:2"}, 7), " ")
		c := strings.Join(w.args(toolConcord, []string{"a:1", "b:2"}, 7), " ")
		if !strings.HasPrefix(e, "--precise --endpoints a:1,b:2 ") || !strings.HasSuffix(e, w.TotalFlag+" 7") {
			t.Errorf("%s: etcd args %q", w.ID, e)
		}
		if !strings.HasPrefix(c, "bench --format json --endpoints a:1,b:2 ") || !strings.HasSuffix(c, w.TotalFlag+" 7") {
			t.Errorf("%s: concord args %q", w.ID, c)
		}
		if w.Smoke < 1 {
			t.Errorf("%s: no smoke total", w.ID)
		}
	}
	// The one place the tools spell a flag differently.
	if e := strings.Join(watch.args(toolEtcd, []string{"x"}, 1), " "); !strings.Contains(e, "--watch-per-stream 100") {
		t.Errorf("etcd watch args %q", e)
	}
	if c := strings.Join(watch.args(toolConcord, []string{"x"}, 1), " "); !strings.Contains(c, "--watchers-per-stream 100") {
		t.Errorf("concord watch args %q", c)
	}
}

func TestRatio(t *testing.T) {
	mk := func(rps, p50 float64) *cell { return &cell{Runs: []sample{{RPS: rps, P50: p50}}} }
	put := workload{ID: "put"}
	lat := workload{ID: "lat", ByLatency: true}
	tests := []struct {
		name   string
		w      workload
		c, r   *cell
		want   float64
		wantOK bool
	}{
		{"throughput", put, mk(300, 1), mk(100, 1), 3, true},
		{"latency: rival slower is > 1", lat, mk(10, 0.5), mk(10, 1), 2, true},
		{"rival missing", put, mk(1, 1), nil, 0, false},
		{"rival failed", put, mk(1, 1), &cell{Err: "x"}, 0, false},
		{"zero rival", put, mk(1, 1), mk(0, 1), 0, false},
	}
	for _, tt := range tests {
		got, ok := ratio(tt.w, tt.c, tt.r)
		if ok != tt.wantOK || !approx(got, tt.want) {
			t.Errorf("%s: ratio = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"--smoke", "--runs", "5", "--members", "3", "--systems", "concord,etcd36"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Runs != 1 || len(o.Members) != 1 || o.Members[0] != 3 || len(o.Systems) != 2 {
		t.Fatalf("options %+v", o)
	}
	for _, bad := range [][]string{{"--members", "0"}, {"--systems", "zk"}, {"--runs", "0"}, {"--secs", "-1"}} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
