// Package loadgen drives closed-loop load and measures latency: the engine
// behind `concord bench`.
//
// It owns three things:
//
//   - [Run]: a producer hands request numbers 0..Total-1 to a shared channel
//     (so the number of requests is bounded by Total, as in etcd's
//     tools/benchmark), Concurrency workers spread round-robin over the given
//     clients take them and call an [Op] for each, and the run stops early when
//     its Timeout passes or its context ends;
//   - [Histogram]: a log-linear (HdrHistogram-like) latency histogram, within
//     1% from 1µs to 60s, mergeable, with no allocation per Record;
//   - [Summary]: the digest printed for people (WriteText) or machines (its
//     JSON encoding).
//
// The package is generic over the client type and knows nothing of what an
// operation does: it must never import clientv3, gRPC or any network package,
// so its tests run with fake operations and no sockets (a test enforces the
// import rule). Time is read through the time package only, which lets tests
// run inside testing/synctest bubbles with exact virtual latencies.
//
// Concurrency: Run blocks until the run is over and calls Op from
// Config.Concurrency goroutines at once; every goroutine it starts has exited
// when it returns. Each worker keeps its own Histogram and counters and they are
// merged after the workers exit, so the only shared state on the hot path is the
// request channel and two atomic counters. A Histogram itself is not safe for
// concurrent use. The optional progress goroutine reads atomic counters only.
package loadgen
