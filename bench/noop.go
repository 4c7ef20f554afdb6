package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The no-op gRPC unary service is the ceiling a put or a range could reach on
// this machine if the server did nothing: grpc-go on both sides, a request
// the size of a put (264 bytes: 8 B key + 256 B value), an empty reply, at
// the same connection and client counts as the workload. Server and load run
// as separate processes (this binary re-executed), like the real systems.

const noopMethod = "/concordbench.Noop/Call"

type noopService interface{}

func noopHandler(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.BytesValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	return new(emptypb.Empty), nil
}

var noopDesc = grpc.ServiceDesc{
	ServiceName: "concordbench.Noop",
	HandlerType: (*noopService)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Call", Handler: noopHandler}},
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// serveNoop listens on addr and serves until lis fails or the process ends.
func serveNoop(lis net.Listener) error {
	s := grpc.NewServer()
	s.RegisterService(&noopDesc, struct{}{})
	return s.Serve(lis)
}

// noopServerMain is `bench noop-server`: it prints its address, then serves
// until its standard input closes (the harness holds the other end).
func noopServerMain() error {
	lis, err := listenLoopback()
	if err != nil {
		return err
	}
	fmt.Println(lis.Addr().String())
	go func() {
		_, _ = os.Stdin.Read(make([]byte, 1))
		os.Exit(0)
	}()
	return serveNoop(lis)
}

// noopLoad drives closed-loop calls: clients goroutines round-robin over
// conns connections, for d.
func noopLoad(ctx context.Context, addr string, conns, clients int, d time.Duration) (sample, error) {
	cs := make([]*grpc.ClientConn, conns)
	for i := range cs {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return sample{}, err
		}
		defer c.Close()
		cs[i] = c
	}
	req := wrapperspb.Bytes(make([]byte, 264))
	// One call per connection first, so connection set-up is not measured.
	for _, c := range cs {
		if err := c.Invoke(ctx, noopMethod, req, new(emptypb.Empty)); err != nil {
			return sample{}, fmt.Errorf("bench: no-op call: %w", err)
		}
	}
	lats := make([][]time.Duration, clients)
	var failed [1]uint64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range clients {
		c := cs[i%conns]
		wg.Go(func() {
			var l []time.Duration
			var bad uint64
			for {
				t := time.Now()
				if t.After(end) {
					break
				}
				if err := c.Invoke(ctx, noopMethod, req, new(emptypb.Empty)); err != nil {
					bad++
					if ctx.Err() != nil {
						break
					}
					continue
				}
				l = append(l, time.Since(t))
			}
			lats[i] = l
			mu.Lock()
			failed[0] += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return sample{}, fmt.Errorf("bench: no no-op call succeeded")
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	return sample{RPS: float64(len(all)) / elapsed, P50: pct(0.50), P99: pct(0.99), Elapsed: elapsed, Failed: failed[0]}, nil
}

// noopLoadMain is `bench noop-load --addr A --conns C --clients K --seconds S`;
// it prints the sample as JSON.
func noopLoadMain(args []string) error {
	fs := flag.NewFlagSet("noop-load", flag.ContinueOnError)
	addr := fs.String("addr", "", "no-op server address")
	conns := fs.Int("conns", 1, "gRPC connections")
	clients := fs.Int("clients", 1, "concurrent callers")
	seconds := fs.Float64("seconds", 2, "duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *conns < 1 || *clients < 1 || *seconds <= 0 {
		return fmt.Errorf("bench noop-load: need --addr, --conns ≥ 1, --clients ≥ 1, --seconds > 0")
	}
	s, err := noopLoad(context.Background(), *addr, *conns, *clients, time.Duration(*seconds*float64(time.Second)))
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(s)
}
