package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concord-db/concord/internal/loadgen"
)

// watchOptions configure both watch benchmarks: streams × watchers on one
// key, then putTotal puts to it by --clients workers (at putRate per second
// in all; 0 = as fast as they go).
type watchOptions struct {
	streams, watchersPerStream, putTotal, putRate, keySize, valSize int
}

func (o watchOptions) validate(name string) error {
	switch {
	case o.streams < 1, o.watchersPerStream < 1:
		return usagef("bench %s: --streams and --watchers-per-stream must be at least 1", name)
	case o.putTotal < 1:
		return usagef("bench %s: --put-total must be at least 1, got %d", name, o.putTotal)
	case o.putRate < 0:
		return usagef("bench %s: --put-rate must not be negative", name)
	case o.keySize < 1 || o.valSize < 0:
		return usagef("bench %s: bad --key-size or --val-size", name)
	}
	return nil
}

func (o *watchOptions) register(cmd *cobra.Command, defaultWatchers, defaultRate int) {
	fs := cmd.Flags()
	fs.IntVar(&o.streams, "streams", 10, "watch streams (each its own gRPC stream)")
	fs.IntVar(&o.watchersPerStream, "watchers-per-stream", defaultWatchers, "watchers on each stream, all on the same key")
	fs.IntVar(&o.putTotal, "put-total", 1000, "puts to the watched key")
	fs.IntVar(&o.putRate, "put-rate", defaultRate, "puts per second (0 = unthrottled)")
	fs.IntVar(&o.keySize, "key-size", 32, "watched key size in bytes")
	fs.IntVar(&o.valSize, "val-size", 32, "value size in bytes")
}

func newBenchWatchCmd(f *benchFlags) *cobra.Command {
	o := &watchOptions{}
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Benchmark watch fan-out: events delivered per second to streams × watchers",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWatchBench(cmd, f, "watch", *o)
		},
	}
	o.register(cmd, 100, 0)
	return cmd
}

func newBenchWatchLatencyCmd(f *benchFlags) *cobra.Command {
	o := &watchOptions{}
	cmd := &cobra.Command{
		Use:   "watch-latency",
		Short: "Benchmark the delay from a put's acknowledgement to each watcher receiving it",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWatchBench(cmd, f, "watch-latency", *o)
		},
	}
	o.register(cmd, 10, 100)
	return cmd
}

// arrival is one event received by a watcher: its revision, and when (since
// the benchmark's base time).
type arrival struct {
	rev int64
	at  time.Duration
}

// runWatchBench opens the watchers over --conns connections, then puts and
// measures, per delivered event, the time from the put's acknowledgement
// (latency may be negative when the event beats the reply; it counts as 0)
// and the overall delivery rate.
func runWatchBench(cmd *cobra.Command, f *benchFlags, name string, o watchOptions) error {
	if err := o.validate(name); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	d, err := f.conn.dialer(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = loadgen.WithTimeLimit(ctx, f.timeout)
		defer cancel()
	}
	clients, closeAll, err := dialConns(d, d.endpoints(), f.conns)
	if err != nil {
		return err
	}
	defer closeAll()
	key := string(make([]byte, o.keySize-1)) + "w"
	val := benchValue(o.valSize)

	// Each watcher's goroutine only appends what arrived when to its own
	// log; latencies are worked out once every event is in, from ackAt,
	// which the putters fill. A lock or a shared map per event would
	// measure the tool: with a thousand watchers it cost 10-14 µs of CPU per
	// event (bench/STEPS.md).
	base := time.Now()
	ackAt := make(map[int64]time.Duration, o.putTotal) // since base
	logs := make([][]arrival, o.streams*o.watchersPerStream)
	var got atomic.Uint64
	want := uint64(o.streams * o.watchersPerStream * o.putTotal)
	allDone := make(chan struct{})
	var ready sync.WaitGroup
	var wg sync.WaitGroup
	wctx, cancelWatches := context.WithCancel(ctx)
	defer cancelWatches()
	for s := range o.streams {
		w := clientv3.NewWatcher(clients[s%len(clients)])
		defer w.Close()
		for i := range o.watchersPerStream {
			ready.Add(1)
			wg.Add(1)
			// WithCreatedNotify: the put loop starts only when every watcher
			// is registered, so no event predates a watcher.
			ch := w.Watch(clientv3.WithRequireLeader(wctx), key, clientv3.WithCreatedNotify())
			log := &logs[s*o.watchersPerStream+i]
			*log = make([]arrival, 0, o.putTotal)
			go func() {
				defer wg.Done()
				first := true
				for resp := range ch {
					if first {
						first = false
						ready.Done()
					}
					if len(resp.Events) == 0 {
						continue
					}
					now := time.Since(base)
					for _, ev := range resp.Events {
						*log = append(*log, arrival{rev: ev.Kv.ModRevision, at: now})
					}
					if got.Add(uint64(len(resp.Events))) == want {
						close(allDone)
					}
				}
				if first {
					ready.Done()
				}
			}()
		}
	}
	ready.Wait()

	// The puts: --clients workers over the connections, as etcd's tool
	// puts, each put at start + seq × interval when paced.
	start := time.Now()
	var interval time.Duration
	if o.putRate > 0 {
		interval = time.Second / time.Duration(o.putRate)
	}
	var ackMu sync.Mutex
	put := func(ctx context.Context, c *clientv3.Client, seq uint64) error {
		if wait := time.Until(start.Add(time.Duration(seq) * interval)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		r, err := c.Put(ctx, key, val)
		if err != nil {
			return err
		}
		ackMu.Lock()
		ackAt[r.Header.Revision] = time.Since(base)
		ackMu.Unlock()
		return nil
	}
	puts, err := loadgen.Run(ctx, loadgen.Config{Total: o.putTotal, Concurrency: f.clients}, clients, put)
	if err != nil {
		return err
	}
	putErrs := puts.Failed + puts.Aborted
	var interrupted error
	select {
	case <-allDone:
	case <-ctx.Done():
		interrupted = context.Cause(ctx)
	case <-time.After(30 * time.Second):
		interrupted = fmt.Errorf("not every event arrived within 30s of the last put")
	}
	cancelWatches()
	wg.Wait()

	// The latency of an event whose put was never acknowledged, or whose
	// event beat the acknowledgement, counts as 0.
	var hist loadgen.Histogram
	var last time.Duration
	for _, l := range logs {
		for _, a := range l {
			d := time.Duration(0)
			if ack, ok := ackAt[a.rev]; ok && a.at > ack {
				d = a.at - ack
			}
			hist.Record(d)
			last = max(last, a.at)
		}
	}
	res := loadgen.Result{Succeeded: got.Load(), Latency: &hist, Interrupted: interrupted, Elapsed: max(0, last-start.Sub(base))}
	if putErrs > 0 {
		res.Failed = putErrs
		res.ErrorCounts = map[string]uint64{"put failed": putErrs}
	}
	report := benchReport{
		Benchmark: name, Endpoints: d.endpoints(), Conns: f.conns, Clients: o.streams * o.watchersPerStream, Total: int(want),
		Params: map[string]any{
			"streams": o.streams, "watchers_per_stream": o.watchersPerStream,
			"put_total": o.putTotal, "put_rate": o.putRate, "key_size": o.keySize, "val_size": o.valSize,
		},
		Summary: res.Summarize(),
	}
	if err := writeBenchReport(cmd.OutOrStdout(), f.format, report); err != nil {
		return err
	}
	if got.Load() == 0 {
		return fmt.Errorf("bench %s: no event arrived", name)
	}
	return nil
}
