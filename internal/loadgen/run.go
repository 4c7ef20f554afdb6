package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidConfig is wrapped by every error from Config.Validate and Run's
// argument checks.
var ErrInvalidConfig = errors.New("loadgen: invalid config")

// maxErrorKinds bounds how many distinct error messages a run keeps apart; the
// rest are counted under OtherErrors so a storm of unique messages cannot grow
// memory without bound.
const maxErrorKinds = 32

// OtherErrors is the ErrorCounts key for errors beyond the first
// maxErrorKinds distinct messages.
const OtherErrors = "(other errors)"

// DefaultProgressInterval is how often the progress line is rewritten when
// Config.ProgressInterval is zero.
const DefaultProgressInterval = time.Second

// Config describes one load run.
type Config struct {
	// Total is the number of requests to issue; it must be positive.
	Total int
	// Concurrency is the number of worker goroutines; it must be positive.
	// Worker i uses clients[i % len(clients)].
	Concurrency int
	// Timeout bounds the whole run; zero means no bound beyond ctx. When it
	// fires, requests not yet started are dropped and those in flight are
	// counted as Aborted, not as errors.
	Timeout time.Duration
	// Progress, when not nil, receives a carriage-return progress line at most
	// once per ProgressInterval and a final newline. Leave it nil unless it is
	// a terminal.
	Progress io.Writer
	// ProgressInterval defaults to DefaultProgressInterval.
	ProgressInterval time.Duration
}

// Validate reports whether c can drive a run.
func (c Config) Validate() error {
	switch {
	case c.Total <= 0:
		return fmt.Errorf("%w: total must be positive, got %d", ErrInvalidConfig, c.Total)
	case c.Concurrency <= 0:
		return fmt.Errorf("%w: concurrency must be positive, got %d", ErrInvalidConfig, c.Concurrency)
	case c.Timeout < 0:
		return fmt.Errorf("%w: timeout must not be negative, got %v", ErrInvalidConfig, c.Timeout)
	case c.ProgressInterval < 0:
		return fmt.Errorf("%w: progress interval must not be negative, got %v", ErrInvalidConfig, c.ProgressInterval)
	}
	return nil
}

// Op performs request number seq (0 ≤ seq < Config.Total, each issued exactly
// once) with client c. It is called concurrently from Config.Concurrency
// goroutines, possibly with the same c; a nil error counts as a success and its
// latency is recorded.
type Op[C any] func(ctx context.Context, c C, seq uint64) error

// Result is what a run measured.
type Result struct {
	// Succeeded and Failed count finished requests. Aborted counts requests
	// in flight when the run's context ended (timeout or cancellation) and
	// cut short by it; requests never issued are in none of the three.
	Succeeded, Failed, Aborted uint64
	// ErrorCounts maps an error message to how often it was seen.
	ErrorCounts map[string]uint64
	// Elapsed is the wall time from the first request to the last worker's
	// exit.
	Elapsed time.Duration
	// Interrupted is nil when every request ran, else the context error that
	// stopped the run early (context.DeadlineExceeded for Config.Timeout).
	Interrupted error
	// Latency holds the latency of successful requests only.
	Latency *Histogram
}

// worker is the private tally of one goroutine, merged after it exits so the
// hot path shares nothing but the request channel and two atomic counters.
type worker struct {
	hist      Histogram
	succeeded uint64
	failed    uint64
	aborted   uint64
	errs      map[string]uint64 // allocated on the first error
}

// WithTimeLimit returns a copy of ctx that is cancelled d from now, with
// context.DeadlineExceeded as its cause (context.Cause), but that carries
// no deadline. A deadline travels with every call made under the context
// (gRPC sends it as grpc-timeout) and makes the server arm a timer per
// request, a cost etcd's own tool does not impose and that a benchmark
// would measure as the server's.
func WithTimeLimit(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		t.Stop()
		cancel(nil)
	}
}

// Run issues cfg.Total requests through op from cfg.Concurrency goroutines and
// blocks until they are done, cfg.Timeout passes or ctx ends. Workers are spread
// round-robin over clients, which must not be empty. The error is non-nil only
// for invalid arguments; an interrupted run still returns its partial Result.
func Run[C any](ctx context.Context, cfg Config, clients []C, op Op[C]) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(clients) == 0 {
		return nil, fmt.Errorf("%w: no clients", ErrInvalidConfig)
	}
	if op == nil {
		return nil, fmt.Errorf("%w: nil op", ErrInvalidConfig)
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = WithTimeLimit(ctx, cfg.Timeout)
		defer cancel()
	}

	// The request channel is bounded by Total (the producer stops after Total
	// sends) and its capacity keeps every worker fed without buffering the
	// whole run.
	reqs := make(chan uint64, cfg.Concurrency)
	var finished atomic.Uint64 // succeeded + failed, for the progress line
	var failed atomic.Uint64

	start := time.Now()
	go func() {
		defer close(reqs)
		for seq := uint64(0); seq < uint64(cfg.Total); seq++ {
			select {
			case reqs <- seq:
			case <-ctx.Done():
				return
			}
		}
	}()

	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := new(worker)
		workers[i] = w
		c := clients[i%len(clients)]
		wg.Go(func() { runWorker(ctx, w, c, op, reqs, &finished, &failed) })
	}

	stopProgress := func() {}
	if cfg.Progress != nil {
		interval := cfg.ProgressInterval
		if interval == 0 {
			interval = DefaultProgressInterval
		}
		stopProgress = startProgress(cfg.Progress, interval, uint64(cfg.Total), start, &finished, &failed)
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	res := &Result{Elapsed: elapsed, Latency: new(Histogram)}
	for _, w := range workers {
		res.Succeeded += w.succeeded
		res.Failed += w.failed
		res.Aborted += w.aborted
		res.Latency.Merge(&w.hist)
		for msg, n := range w.errs {
			addError(&res.ErrorCounts, msg, n)
		}
	}
	if res.Succeeded+res.Failed < uint64(cfg.Total) {
		res.Interrupted = context.Cause(ctx)
		if res.Interrupted == nil { // cannot happen: workers only stop early when ctx ends
			res.Interrupted = context.Canceled
		}
	}
	return res, nil
}

// runWorker takes requests until the channel closes or ctx ends. It is a
// function rather than a method because methods cannot have type parameters.
func runWorker[C any](ctx context.Context, w *worker, c C, op Op[C], reqs <-chan uint64, finished, failed *atomic.Uint64) {
	for seq := range reqs {
		if ctx.Err() != nil {
			continue // drain what the producer queued; it was never issued
		}
		begin := time.Now()
		err := op(ctx, c, seq)
		took := time.Since(begin)
		switch {
		case err == nil:
			w.succeeded++
			w.hist.Record(took)
		case ctx.Err() != nil:
			// Our own deadline or cancellation cut it short: not the server's fault.
			w.aborted++
			continue
		default:
			w.failed++
			failed.Add(1)
			addError(&w.errs, err.Error(), 1)
		}
		finished.Add(1)
	}
}

// addError counts n occurrences of msg in *m, folding messages beyond
// maxErrorKinds into OtherErrors.
func addError(m *map[string]uint64, msg string, n uint64) {
	if *m == nil {
		*m = make(map[string]uint64)
	}
	if _, ok := (*m)[msg]; !ok {
		kinds := len(*m)
		if _, ok := (*m)[OtherErrors]; ok {
			kinds--
		}
		if kinds >= maxErrorKinds {
			msg = OtherErrors
		}
	}
	(*m)[msg] += n
}

// startProgress rewrites one status line on w every interval until the
// returned function is called; that function waits for the goroutine and ends
// the line.
func startProgress(w io.Writer, interval time.Duration, total uint64, start time.Time, finished, failed *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	wrote, width := false, 0
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				wrote = true
				n := finished.Load()
				rate := float64(n) / now.Sub(start).Seconds()
				line := fmt.Sprintf("%d/%d requests, %.0f req/s, %d errors", n, total, rate, failed.Load())
				// Pad to the longest line so far: \r does not erase a longer
				// previous line.
				width = max(width, len(line))
				fmt.Fprintf(w, "\r%-*s", width, line)
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		if wrote {
			fmt.Fprintln(w)
		}
	}
}
