package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concord-db/concord/internal/loadgen"
)

func TestBenchUsageErrors(t *testing.T) {
	t.Setenv(endpointsEnv, "")
	tests := [][]string{
		{"bench"},
		{"bench", "nosuch"},
		{"bench", "put", "extra"},
		{"bench", "put", "--conns", "0"},
		{"bench", "put", "--clients", "-1"},
		{"bench", "put", "--clients", "many"},
		{"bench", "put", "--format", "xml"},
		{"bench", "put", "--timeout", "-1s"},
		{"bench", "put", "--total", "0"},
		{"bench", "put", "--key-size", "0"},
		{"bench", "put", "--val-size", "-1"},
		{"bench", "put", "--key-space-size", "0"},
		{"bench", "put", "--key-size", "1", "--key-space-size", "257"},
		{"bench", "put", "--endpoints", ","},
		{"bench", "put", "--dial-timeout", "0s"},
		{"bench", "range"},
		{"bench", "range", ""},
		{"bench", "range", "a", "b", "c"},
		{"bench", "range", "k", "--consistency", "x"},
		{"bench", "range", "k", "--total", "-5"},
		{"bench", "range", "k", "--limit", "-1"},
		{"bench", "put", "--key-size", "3", "--key-prefix", "ab", "--key-space-size", "257"},
	}
	for _, args := range tests {
		_, err := execute(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("concord %q: error %v, want a usage error", args, err)
		}
	}
}

func TestPutKey(t *testing.T) {
	tests := []struct {
		name string
		o    putOptions
		seq  uint64
		want []byte
	}{
		{"one key", putOptions{keySize: 8, keySpaceSize: 1, sequential: true}, 12345, make([]byte, 8)},
		{"sequential wraps", putOptions{keySize: 8, keySpaceSize: 1000, sequential: true}, 1001, []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		{"long key pads in front", putOptions{keySize: 10, keySpaceSize: 1 << 20, sequential: true}, 258, []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 2}},
		{"short key", putOptions{keySize: 2, keySpaceSize: 300, sequential: true}, 299, []byte{0x01, 0x2b}},
		{"random in a space of one", putOptions{keySize: 3, keySpaceSize: 1}, 7, []byte{0, 0, 0}},
		{"prefix, short room", putOptions{keySize: 8, keySpaceSize: 100000, sequential: true, keyPrefix: "r/"}, 99999, []byte{'r', '/', 0, 0, 0, 1, 0x86, 0x9f}},
		{"prefix, long room", putOptions{keySize: 12, keySpaceSize: 1000, sequential: true, keyPrefix: "p/"}, 258, []byte{'p', '/', 0, 0, 0, 0, 0, 0, 0, 0, 1, 2}},
	}
	for _, tt := range tests {
		tt.o.total = 1
		if err := tt.o.validate(); err != nil {
			t.Fatalf("%s: options invalid: %v", tt.name, err)
		}
		if got := tt.o.putKey(tt.seq); got != string(tt.want) {
			t.Errorf("%s: putKey(%d) = %x, want %x", tt.name, tt.seq, got, tt.want)
		}
	}

	random := putOptions{keySize: 8, keySpaceSize: 10}
	for range 1000 {
		k := random.putKey(0)
		if n := binary.BigEndian.Uint64([]byte(k)); len(k) != 8 || n >= 10 {
			t.Fatalf("random putKey = %x, want 8 bytes holding a number below 10", k)
		}
	}
}

func TestPutOptionsKeySpaceFits(t *testing.T) {
	tests := []struct {
		keySize, keySpaceSize int
		ok                    bool
	}{
		{1, 1, true}, {1, 256, true}, {1, 257, false}, {2, 65536, true}, {2, 65537, false}, {8, 1 << 40, true},
	}
	for _, tt := range tests {
		o := putOptions{total: 1, keySize: tt.keySize, keySpaceSize: tt.keySpaceSize}
		if err := o.validate(); (err == nil) != tt.ok {
			t.Errorf("validate(key-size %d, key-space-size %d) = %v, want ok %t", tt.keySize, tt.keySpaceSize, err, tt.ok)
		}
	}
}

func TestRangeOpOptions(t *testing.T) {
	tests := []struct {
		end, consistency string
		limit            int64
		countOnly        bool
		serializable     bool
	}{
		{"", "l", 0, false, false}, {"z", "l", 0, false, false}, {"", "s", 0, false, true}, {"z", "s", 0, false, true},
		{"z", "l", 100, false, false}, {"z", "l", 0, true, false}, {"z", "s", 5, true, true},
	}
	for _, tt := range tests {
		o := rangeOptions{consistency: tt.consistency, limit: tt.limit, countOnly: tt.countOnly}
		op := clientv3.OpGet("a", o.opOptions(tt.end)...)
		if string(op.RangeBytes()) != tt.end || op.IsSerializable() != tt.serializable ||
			op.IsCountOnly() != tt.countOnly || op.Limit() != tt.limit {
			t.Errorf("range a %q %+v: end %q serializable %t count-only %t limit %d, want %q %t %t %d",
				tt.end, o, op.RangeBytes(), op.IsSerializable(), op.IsCountOnly(), op.Limit(),
				tt.end, tt.serializable, tt.countOnly, tt.limit)
		}
	}
}

func TestConnEndpoints(t *testing.T) {
	tests := []struct {
		eps  []string
		n    int
		want []string
	}{
		{[]string{"a"}, 3, []string{"a", "a", "a"}},
		{[]string{"a", "b", "c"}, 1, []string{"a"}},
		{[]string{"a", "b", "c"}, 3, []string{"a", "b", "c"}},
		{[]string{"a", "b", "c"}, 10, []string{"a", "b", "c", "a", "b", "c", "a", "b", "c", "a"}},
		{[]string{"a", "b"}, 5, []string{"a", "b", "a", "b", "a"}},
	}
	for _, tt := range tests {
		if got := connEndpoints(tt.eps, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("connEndpoints(%q, %d) = %q, want %q", tt.eps, tt.n, got, tt.want)
		}
	}
}

func TestLeaderEndpoint(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name    string
		results []probeResult
		want    string
		wantErr bool
	}{
		{"leader second", []probeResult{
			{endpoint: "a", resp: statusOf(1, 2, 3, 4, 5)},
			{endpoint: "b", resp: statusOf(2, 2, 3, 4, 5)},
		}, "b", false},
		{"leader behind a dead member", []probeResult{
			{endpoint: "a", err: down},
			{endpoint: "c", resp: statusOf(3, 3, 3, 4, 5)},
		}, "c", false},
		{"no leader elected", []probeResult{
			{endpoint: "a", resp: statusOf(1, 0, 3, 4, 5)},
		}, "", true},
		{"leader not among endpoints", []probeResult{
			{endpoint: "a", resp: statusOf(1, 9, 3, 4, 5)},
			{endpoint: "b", err: down},
		}, "", true},
	}
	for _, tt := range tests {
		got, err := leaderEndpoint(tt.results)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: leaderEndpoint = %q, %v; want %q, error %t", tt.name, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, errNoLeader) {
			t.Errorf("%s: error %v does not wrap errNoLeader", tt.name, err)
		}
	}
}

func TestProbeAndReachability(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{status: map[string]*clientv3.StatusResponse{"up:1": statusOf(1, 1, 1, 1, 1)}}
		res := probe(t.Context(), c, []string{"down:1", "up:1"}, time.Second)
		if len(res) != 2 || res[0].err == nil || res[1].err != nil || res[1].endpoint != "up:1" {
			t.Fatalf("probe = %+v, want down:1 failing and up:1 answering", res)
		}
		if err := anyReachable(res); err != nil {
			t.Errorf("anyReachable with one live endpoint = %v, want nil", err)
		}
		if err := anyReachable(res[:1]); err == nil || !strings.Contains(err.Error(), "down:1") {
			t.Errorf("anyReachable with no live endpoint = %v, want an error naming down:1", err)
		}
	})
}

func sampleReport() benchReport {
	return benchReport{
		Benchmark: "put", Endpoints: []string{"a:1", "b:2"}, Conns: 2, Clients: 8, Total: 100,
		Params: map[string]any{"val_size": 8, "key_size": 8},
		Summary: loadgen.Summary{Succeeded: 100, ElapsedSeconds: 0.5, RequestsPerSec: 200,
			LatencyMS: loadgen.LatencySummary{P50: 1.5}},
	}
}

func TestWriteBenchReportText(t *testing.T) {
	var buf bytes.Buffer
	if err := writeBenchReport(&buf, "text", sampleReport()); err != nil {
		t.Fatalf("writeBenchReport: %v", err)
	}
	got := buf.String()
	header := "bench put: total=100 conns=2 clients=8 key-size=8 val-size=8 endpoints=a:1,b:2\n\nSummary:\n"
	if !strings.HasPrefix(got, header) {
		t.Errorf("text report starts %q, want %q", got[:min(len(got), len(header))], header)
	}
	if !strings.Contains(got, "  p50:      1.5000\n") {
		t.Errorf("text report lacks the p50 line:\n%s", got)
	}
}

func TestWriteBenchReportJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := writeBenchReport(&buf, "json", sampleReport()); err != nil {
		t.Fatalf("writeBenchReport: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, buf.String())
	}
	// The harness reads the parameters and loadgen's fields from one flat object.
	for k, want := range map[string]any{"benchmark": "put", "conns": 2.0, "clients": 8.0, "total": 100.0,
		"succeeded": 100.0, "requests_per_sec": 200.0} {
		if m[k] != want {
			t.Errorf("JSON %q = %v, want %v", k, m[k], want)
		}
	}
	if lat, _ := m["latency_ms"].(map[string]any); lat["p50"] != 1.5 {
		t.Errorf("JSON latency_ms = %v, want p50 1.5", m["latency_ms"])
	}
	if params, _ := m["params"].(map[string]any); params["key_size"] != 8.0 {
		t.Errorf("JSON params = %v, want key_size 8", m["params"])
	}
}
