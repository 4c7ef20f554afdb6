package main

// `concord bench put|range`: the flags of etcd's tools/benchmark that matter,
// on clientv3, so the same load runs against Concord and etcd. The engine
// (workers, request channel, histogram, summary) is internal/loadgen; this
// file only turns flags into clients and per-request operations.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concord-db/concord/internal/loadgen"
)

func init() {
	subcommands = append(subcommands, newBenchCmd)
}

// benchFlags are the flags every benchmark shares (persistent on `bench`).
type benchFlags struct {
	conn         connFlags
	conns        int
	clients      int
	targetLeader bool
	timeout      time.Duration
	format       string
}

func (f *benchFlags) validate() error {
	switch {
	case f.conns < 1:
		return usagef("bench: --conns must be at least 1, got %d", f.conns)
	case f.clients < 1:
		return usagef("bench: --clients must be at least 1, got %d", f.clients)
	case f.timeout < 0:
		return usagef("bench: --timeout must not be negative, got %v", f.timeout)
	case f.format != "text" && f.format != "json":
		return usagef(`bench: --format must be "text" or "json", got %q`, f.format)
	}
	return nil
}

func newBenchCmd() *cobra.Command {
	f := new(benchFlags)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate load with etcd benchmark's flags (put, range, txn-put, lease-keepalive, watch, watch-latency)",
		Long: "Bench drives closed-loop load through clientv3: --conns gRPC connections,\n" +
			"each to one endpoint, the endpoints in turn (as etcd's tool does), --clients\n" +
			"goroutines spread round-robin over them, --total requests in all.\n" +
			"It prints total time, requests/s and latency percentiles (--format json for\n" +
			"machines); a progress line goes to stderr when stderr is a terminal. The\n" +
			"exit status is 1 when no request succeeded.",
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("bench: name a benchmark: put, range, txn-put, lease-keepalive, watch or watch-latency")
		},
	}
	pf := cmd.PersistentFlags()
	f.conn.register(pf)
	pf.IntVar(&f.conns, "conns", 1, "number of gRPC connections (clientv3 clients)")
	pf.IntVar(&f.clients, "clients", 1, "number of concurrent workers, spread round-robin over the connections")
	pf.BoolVar(&f.targetLeader, "target-leader", false, "send every request to the leader's endpoint only")
	pf.DurationVar(&f.timeout, "timeout", 10*time.Minute, "stop the run after this long (0 = no limit)")
	pf.StringVar(&f.format, "format", "text", `summary format: "text" or "json"`)
	cmd.AddCommand(newBenchPutCmd(f), newBenchRangeCmd(f), newBenchTxnPutCmd(f), newBenchLeaseKeepaliveCmd(f),
		newBenchWatchCmd(f), newBenchWatchLatencyCmd(f))
	return cmd
}

// ---- put ----

type putOptions struct {
	total        int
	keySize      int
	valSize      int
	sequential   bool
	keySpaceSize int
	// keyPrefix fills the first bytes of every key, so that a load can be
	// ranged over later with printable bounds (etcd's tool has no such
	// flag; its keys start with a varint).
	keyPrefix string
}

func (o putOptions) validate() error {
	switch {
	case o.total < 1:
		return usagef("bench put: --total must be at least 1, got %d", o.total)
	case o.keySize < 1:
		return usagef("bench put: --key-size must be at least 1, got %d", o.keySize)
	case o.valSize < 0:
		return usagef("bench put: --val-size must not be negative, got %d", o.valSize)
	case o.keySpaceSize < 1:
		return usagef("bench put: --key-space-size must be at least 1, got %d", o.keySpaceSize)
	}
	if need := len(o.keyPrefix) + (bits.Len64(uint64(o.keySpaceSize-1))+7)/8; need > o.keySize {
		return usagef("bench put: --key-size %d is too small for --key-prefix %q and --key-space-size %d (needs %d bytes)",
			o.keySize, o.keyPrefix, o.keySpaceSize, need)
	}
	return nil
}

// putKey returns the key of request seq: key number seq mod key-space-size
// with --sequential-keys, else a random one, written big-endian into the last
// bytes of a key-size key that starts with --key-prefix, so sequential keys
// also sort in order.
func (o putOptions) putKey(seq uint64) string {
	var n uint64
	if o.sequential {
		n = seq % uint64(o.keySpaceSize)
	} else {
		n = rand.Uint64N(uint64(o.keySpaceSize))
	}
	k := make([]byte, o.keySize)
	copy(k, o.keyPrefix)
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], n)
	if room := o.keySize - len(o.keyPrefix); room >= 8 {
		copy(k[o.keySize-8:], be[:])
	} else {
		copy(k[len(o.keyPrefix):], be[8-room:]) // validate made sure n fits
	}
	return string(k)
}

// benchValue is the value every put writes, drawn once as etcd's tool does.
func benchValue(size int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, size)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

func newBenchPutCmd(f *benchFlags) *cobra.Command {
	var o putOptions
	cmd := &cobra.Command{
		Use:   "put",
		Short: "Benchmark puts",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			val := benchValue(o.valSize)
			op := func(ctx context.Context, c *clientv3.Client, seq uint64) error {
				_, err := c.Put(ctx, o.putKey(seq), val)
				return err
			}
			params := map[string]any{
				"key_size": o.keySize, "val_size": o.valSize,
				"sequential_keys": o.sequential, "key_space_size": o.keySpaceSize,
			}
			if o.keyPrefix != "" {
				params["key_prefix"] = o.keyPrefix
			}
			return runBench(cmd, f, "put", o.total, params, op)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.total, "total", 10000, "total number of put requests")
	fs.IntVar(&o.keySize, "key-size", 8, "key size in bytes")
	fs.IntVar(&o.valSize, "val-size", 8, "value size in bytes")
	fs.BoolVar(&o.sequential, "sequential-keys", false, "use keys 0, 1, 2, ... (mod --key-space-size) instead of random ones")
	fs.IntVar(&o.keySpaceSize, "key-space-size", 1, "number of distinct keys")
	fs.StringVar(&o.keyPrefix, "key-prefix", "", "start every key with these bytes (counted in --key-size)")
	return cmd
}

// ---- range ----

type rangeOptions struct {
	total       int
	consistency string
	limit       int64
	countOnly   bool
}

func (o rangeOptions) validate(key string) error {
	switch {
	case key == "":
		return usagef("bench range: empty KEY")
	case o.total < 1:
		return usagef("bench range: --total must be at least 1, got %d", o.total)
	case o.consistency != "l" && o.consistency != "s":
		return usagef(`bench range: --consistency must be "l" (linearizable) or "s" (serializable), got %q`, o.consistency)
	case o.limit < 0:
		return usagef("bench range: --limit must not be negative, got %d", o.limit)
	}
	return nil
}

func (o rangeOptions) opOptions(end string) []clientv3.OpOption {
	var opts []clientv3.OpOption
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	if o.limit > 0 {
		opts = append(opts, clientv3.WithLimit(o.limit))
	}
	if o.countOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if o.consistency == "s" {
		opts = append(opts, clientv3.WithSerializable())
	}
	return opts
}

func newBenchRangeCmd(f *benchFlags) *cobra.Command {
	var o rangeOptions
	cmd := &cobra.Command{
		Use:   "range KEY [END]",
		Short: "Benchmark ranges over [KEY, END), or the single KEY",
		Args:  argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, end := args[0], ""
			if len(args) == 2 {
				end = args[1]
			}
			if err := o.validate(key); err != nil {
				return err
			}
			opts := o.opOptions(end)
			op := func(ctx context.Context, c *clientv3.Client, _ uint64) error {
				_, err := c.Get(ctx, key, opts...)
				return err
			}
			params := map[string]any{"key": key, "end": end, "consistency": o.consistency,
				"limit": o.limit, "count_only": o.countOnly}
			return runBench(cmd, f, "range", o.total, params, op)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.total, "total", 10000, "total number of range requests")
	fs.StringVar(&o.consistency, "consistency", "l", `"l" (linearizable) or "s" (serializable)`)
	fs.Int64Var(&o.limit, "limit", 0, "return at most this many keys per range (0 = no limit)")
	fs.BoolVar(&o.countOnly, "count-only", false, "ask for the count of keys only")
	return cmd
}

// ---- shared run ----

// benchReport is the JSON document of --format json: the run's parameters
// with loadgen's Summary fields inlined.
type benchReport struct {
	Benchmark string         `json:"benchmark"`
	Endpoints []string       `json:"endpoints"`
	Conns     int            `json:"conns"`
	Clients   int            `json:"clients"`
	Total     int            `json:"total"`
	Params    map[string]any `json:"params"`
	loadgen.Summary
}

func writeBenchReport(w io.Writer, format string, r benchReport) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	keys := make([]string, 0, len(r.Params))
	for k := range r.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		v := r.Params[k]
		if _, ok := v.(string); ok {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%v", strings.ReplaceAll(k, "_", "-"), v)
	}
	if _, err := fmt.Fprintf(w, "bench %s: total=%d conns=%d clients=%d%s endpoints=%s\n\n",
		r.Benchmark, r.Total, r.Conns, r.Clients, b.String(), strings.Join(r.Endpoints, ",")); err != nil {
		return err
	}
	return r.Summary.WriteText(w)
}

// probeResult is one endpoint's answer to the pre-flight Status call.
type probeResult struct {
	endpoint string
	resp     *clientv3.StatusResponse
	err      error
}

// probe asks every endpoint for its status in parallel, each within timeout.
func probe(ctx context.Context, s statuser, eps []string, timeout time.Duration) []probeResult {
	res := make([]probeResult, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		res[i].endpoint = ep
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res[i].resp, res[i].err = s.Status(ctx, ep)
		})
	}
	wg.Wait()
	return res
}

var errNoLeader = errors.New("bench: no endpoint reports itself as leader")

// leaderEndpoint returns the endpoint whose member is the leader it reports.
func leaderEndpoint(results []probeResult) (string, error) {
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.endpoint, r.err))
			continue
		}
		if r.resp.Header != nil && r.resp.Leader != 0 && r.resp.Leader == r.resp.Header.MemberId {
			return r.endpoint, nil
		}
	}
	return "", errors.Join(append([]error{errNoLeader}, errs...)...)
}

// anyReachable fails unless some endpoint answered, so a wrong --endpoints
// fails within --dial-timeout instead of after --timeout (clientv3 waits for
// a connection rather than failing fast).
func anyReachable(results []probeResult) error {
	errs := make([]error, 0, len(results))
	for _, r := range results {
		if r.err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.endpoint, r.err))
	}
	return fmt.Errorf("bench: no endpoint reachable: %w", errors.Join(errs...))
}

// isTerminal reports whether f is a character device, which is how we decide
// that a progress line is welcome.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// dialConns opens n clients (gRPC connections), each with the flags' TLS
// and credentials; closeAll closes them. Client i talks to eps[i mod
// len(eps)] alone, as etcd's tool hands out its connections: a client given
// every endpoint would open one connection per endpoint and balance its
// calls over them, so --conns 10 against 3 members would be 30 connections,
// each carrying a third of the calls with less batching per read and write,
// on the tool's side and the members'.
func dialConns(d *dialer, eps []string, n int) (clients []*clientv3.Client, closeAll func(), err error) {
	closeAll = func() {
		for _, c := range clients {
			c.Close()
		}
	}
	for _, ep := range connEndpoints(eps, n) {
		c, err := d.dialTo([]string{ep})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		clients = append(clients, c)
	}
	return clients, closeAll, nil
}

// connEndpoints returns the endpoint of each of n connections: eps in turn.
func connEndpoints(eps []string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = eps[i%len(eps)]
	}
	return out
}

func runBench(cmd *cobra.Command, f *benchFlags, name string, total int, params map[string]any,
	op loadgen.Op[*clientv3.Client]) error {
	if err := f.validate(); err != nil {
		return err
	}
	d, err := f.conn.dialer(cmd)
	if err != nil {
		return err
	}
	eps := d.endpoints()
	// Ctrl-C ends the run early but still prints what was measured.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()

	probeClient, err := d.dial()
	if err != nil {
		return err
	}
	results := probe(ctx, probeClient, eps, f.conn.dialTimeout)
	probeClient.Close()
	if f.targetLeader {
		leader, err := leaderEndpoint(results)
		if err != nil {
			return err
		}
		eps = []string{leader}
	} else if err := anyReachable(results); err != nil {
		return err
	}

	clients, closeAll, err := dialConns(d, eps, f.conns)
	if err != nil {
		return err
	}
	defer closeAll()

	cfg := loadgen.Config{Total: total, Concurrency: f.clients, Timeout: f.timeout}
	if isTerminal(os.Stderr) {
		cfg.Progress = cmd.ErrOrStderr()
	}
	res, err := loadgen.Run(ctx, cfg, clients, op)
	if err != nil {
		return fmt.Errorf("bench %s: %w", name, err)
	}
	report := benchReport{
		Benchmark: name, Endpoints: eps, Conns: f.conns, Clients: f.clients, Total: total,
		Params: params, Summary: res.Summarize(),
	}
	if err := writeBenchReport(cmd.OutOrStdout(), f.format, report); err != nil {
		return err
	}
	if res.Succeeded == 0 {
		return fmt.Errorf("bench %s: no request succeeded", name)
	}
	return nil
}
