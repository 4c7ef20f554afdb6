package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClient counts the requests in flight through it, so tests can see how
// workers were spread over clients.
type fakeClient struct {
	inflight, maxInflight atomic.Int64
	calls                 atomic.Int64
}

func (c *fakeClient) enter() {
	n := c.inflight.Add(1)
	for {
		m := c.maxInflight.Load()
		if n <= m || c.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	c.calls.Add(1)
}

// sleepCtx waits d of (virtual) time or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestRunIssuesEveryRequestOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const total = 1000
		clients := []*fakeClient{{}, {}}
		var mu sync.Mutex
		seen := make(map[uint64]int)
		op := func(ctx context.Context, c *fakeClient, seq uint64) error {
			c.enter()
			defer c.inflight.Add(-1)
			mu.Lock()
			seen[seq]++
			mu.Unlock()
			// Latencies 1ms..10ms, each used total/10 times.
			return sleepCtx(ctx, time.Duration(seq%10+1)*time.Millisecond)
		}
		res, err := Run(t.Context(), Config{Total: total, Concurrency: 4}, clients, op)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Succeeded != total || res.Failed != 0 || res.Aborted != 0 || res.Interrupted != nil {
			t.Errorf("Succeeded, Failed, Aborted, Interrupted = %d, %d, %d, %v; want %d, 0, 0, nil",
				res.Succeeded, res.Failed, res.Aborted, res.Interrupted, total)
		}
		if len(seen) != total {
			t.Errorf("%d distinct request numbers issued, want %d", len(seen), total)
		}
		for seq, n := range seen {
			if seq >= total || n != 1 {
				t.Errorf("request %d issued %d times, want once and seq < %d", seq, n, total)
			}
		}
		// Four workers round-robin over two clients: two workers per client, and
		// with every op sleeping they are all in flight together.
		for i, c := range clients {
			if got := c.maxInflight.Load(); got != 2 {
				t.Errorf("client %d: max in flight = %d, want 2", i, got)
			}
		}
		if got, want := clients[0].calls.Load()+clients[1].calls.Load(), int64(total); got != want {
			t.Errorf("calls = %d, want %d", got, want)
		}
		h := res.Latency
		if h.Min() != time.Millisecond || h.Max() != 10*time.Millisecond || h.Count() != total {
			t.Errorf("latency Min, Max, Count = %v, %v, %d; want 1ms, 10ms, %d", h.Min(), h.Max(), h.Count(), total)
		}
		for _, tc := range []struct {
			p    float64
			want time.Duration
		}{{50, 5 * time.Millisecond}, {90, 9 * time.Millisecond}, {99, 10 * time.Millisecond}} {
			got := h.Percentile(tc.p)
			if d := got - tc.want; d < -tc.want/100 || d > tc.want/100 {
				t.Errorf("Percentile(%v) = %v, want %v ±1%%", tc.p, got, tc.want)
			}
		}
	})
}

func TestRunElapsedAndMeanAreExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		op := func(ctx context.Context, _ int, seq uint64) error {
			return sleepCtx(ctx, time.Duration(seq+1)*time.Millisecond)
		}
		res, err := Run(t.Context(), Config{Total: 10, Concurrency: 1}, []int{0}, op)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := res.Elapsed, 55*time.Millisecond; got != want {
			t.Errorf("Elapsed = %v, want %v", got, want)
		}
		if got, want := res.Latency.Mean(), 5500*time.Microsecond; got != want {
			t.Errorf("Mean() = %v, want %v", got, want)
		}
		s := res.Summarize()
		if s.RequestsPerSec < 181.8 || s.RequestsPerSec > 181.9 { // 10 / 0.055 s
			t.Errorf("RequestsPerSec = %v, want 181.8", s.RequestsPerSec)
		}
	})
}

func TestRunCountsErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errBusy := errors.New("etcdserver: too many requests")
		errGone := errors.New("etcdserver: no leader")
		op := func(ctx context.Context, _ int, seq uint64) error {
			switch seq % 4 {
			case 0:
				return errBusy
			case 1:
				return fmt.Errorf("wrapped: %w", errGone)
			}
			return sleepCtx(ctx, time.Millisecond)
		}
		res, err := Run(t.Context(), Config{Total: 100, Concurrency: 3}, []int{0, 1}, op)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Succeeded != 50 || res.Failed != 50 || res.Latency.Count() != 50 {
			t.Errorf("Succeeded, Failed, latency count = %d, %d, %d; want 50, 50, 50",
				res.Succeeded, res.Failed, res.Latency.Count())
		}
		want := map[string]uint64{"etcdserver: too many requests": 25, "wrapped: etcdserver: no leader": 25}
		if fmt.Sprint(res.ErrorCounts) != fmt.Sprint(want) {
			t.Errorf("ErrorCounts = %v, want %v", res.ErrorCounts, want)
		}
	})
}

func TestRunBoundsDistinctErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		op := func(_ context.Context, _ int, seq uint64) error { return fmt.Errorf("error %d", seq) }
		res, err := Run(t.Context(), Config{Total: 200, Concurrency: 1}, []int{0}, op)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := len(res.ErrorCounts); got != maxErrorKinds+1 {
			t.Errorf("%d error kinds kept, want %d", got, maxErrorKinds+1)
		}
		if got, want := res.ErrorCounts[OtherErrors], uint64(200-maxErrorKinds); got != want {
			t.Errorf("ErrorCounts[OtherErrors] = %d, want %d", got, want)
		}
	})
}

func TestRunTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		op := func(ctx context.Context, _ int, _ uint64) error {
			if d, ok := ctx.Deadline(); ok {
				// gRPC would send it with every call as grpc-timeout.
				t.Errorf("op's context has deadline %v, want none", d)
			}
			return sleepCtx(ctx, 30*time.Millisecond)
		}
		cfg := Config{Total: 100, Concurrency: 1, Timeout: 100 * time.Millisecond}
		res, err := Run(t.Context(), cfg, []int{0}, op)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		// Finished at 30, 60 and 90 ms; the fourth was cut off at 100 ms.
		if res.Succeeded != 3 || res.Failed != 0 || res.Aborted != 1 {
			t.Errorf("Succeeded, Failed, Aborted = %d, %d, %d; want 3, 0, 1", res.Succeeded, res.Failed, res.Aborted)
		}
		if !errors.Is(res.Interrupted, context.DeadlineExceeded) {
			t.Errorf("Interrupted = %v, want %v", res.Interrupted, context.DeadlineExceeded)
		}
		if res.Elapsed != 100*time.Millisecond {
			t.Errorf("Elapsed = %v, want 100ms", res.Elapsed)
		}
	})
}

func TestRunParentCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		op := func(ctx context.Context, _ int, seq uint64) error {
			if seq == 5 {
				cancel()
			}
			return sleepCtx(ctx, time.Millisecond)
		}
		res, err := Run(ctx, Config{Total: 100, Concurrency: 1}, []int{0}, op)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Succeeded != 5 || !errors.Is(res.Interrupted, context.Canceled) {
			t.Errorf("Succeeded, Interrupted = %d, %v; want 5, %v", res.Succeeded, res.Interrupted, context.Canceled)
		}
	})
}

func TestRunProgress(t *testing.T) {
	tests := []struct {
		name      string
		interval  time.Duration
		wantLines int
	}{
		// 300 requests of 7 ms on one worker take 2.1 s; 7 ms never divides the
		// tick times, so a tick and a completion never coincide.
		{"default one second", 0, 2},
		{"half second", 500 * time.Millisecond, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var out bytes.Buffer
				op := func(ctx context.Context, _ int, _ uint64) error { return sleepCtx(ctx, 7*time.Millisecond) }
				cfg := Config{Total: 300, Concurrency: 1, Progress: &out, ProgressInterval: tt.interval}
				if _, err := Run(t.Context(), cfg, []int{0}, op); err != nil {
					t.Fatalf("Run: %v", err)
				}
				got := out.String()
				if n := strings.Count(got, "\r"); n != tt.wantLines {
					t.Errorf("%d progress lines, want %d; output %q", n, tt.wantLines, got)
				}
				if !strings.HasSuffix(got, "\n") {
					t.Errorf("progress output %q does not end the line", got)
				}
				if first := "\r142/300 requests, 142 req/s, 0 errors"; tt.interval == 0 && !strings.HasPrefix(got, first) {
					t.Errorf("progress output %q, want it to start with %q", got, first)
				}
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{Total: 1, Concurrency: 1}, false},
		{Config{Total: 10, Concurrency: 100, Timeout: time.Minute, ProgressInterval: time.Second}, false},
		{Config{Total: 0, Concurrency: 1}, true},
		{Config{Total: -1, Concurrency: 1}, true},
		{Config{Total: 1, Concurrency: 0}, true},
		{Config{Total: 1, Concurrency: 1, Timeout: -time.Second}, true},
		{Config{Total: 1, Concurrency: 1, ProgressInterval: -time.Second}, true},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tt.cfg, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v.Validate() = %v, want it to wrap ErrInvalidConfig", tt.cfg, err)
		}
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	ok := func(context.Context, int, uint64) error { return nil }
	good := Config{Total: 1, Concurrency: 1}
	tests := []struct {
		name    string
		cfg     Config
		clients []int
		op      Op[int]
	}{
		{"invalid config", Config{}, []int{0}, ok},
		{"no clients", good, nil, ok},
		{"nil op", good, []int{0}, nil},
	}
	for _, tt := range tests {
		res, err := Run(t.Context(), tt.cfg, tt.clients, tt.op)
		if !errors.Is(err, ErrInvalidConfig) || res != nil {
			t.Errorf("%s: Run = %v, %v; want nil, ErrInvalidConfig", tt.name, res, err)
		}
	}
}

// TestImports enforces the layering rule in doc.go: the engine stays free of
// clients and networking so it can be tested without sockets.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatalf("ImportDir: %v", err)
	}
	forbidden := []string{"go.etcd.io/", "google.golang.org/grpc", "net", "net/http", "github.com/concord-db/concord/"}
	for _, imp := range pkg.Imports {
		for _, f := range forbidden {
			if imp == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(imp, f)) || strings.HasPrefix(imp, f+"/") {
				t.Errorf("loadgen imports %q, which doc.go forbids", imp)
			}
		}
	}
}

func TestWithTimeLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := WithTimeLimit(t.Context(), time.Second)
		defer cancel()
		if d, ok := ctx.Deadline(); ok {
			t.Fatalf("Deadline() = %v, want none", d)
		}
		time.Sleep(999 * time.Millisecond)
		if err := ctx.Err(); err != nil {
			t.Fatalf("Err() before the limit = %v, want nil", err)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Cause() after the limit = %v, want %v", err, context.DeadlineExceeded)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := WithTimeLimit(t.Context(), time.Second)
		cancel()
		if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Cause() after cancel = %v, want %v", err, context.Canceled)
		}
	})
}
