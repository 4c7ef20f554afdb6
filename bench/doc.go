// Command bench is the side-by-side benchmark harness of issue 5: it runs the
// same workloads, with both etcd's load tool (tools/benchmark from
// go.etcd.io/etcd/v3 v3.6.8) and `concord bench`, against Concord, etcd
// 3.6.16 (built from its Go module in ./etcd36) and Debian's etcd-server
// 3.4.23, each as 1 and as 3 members on loopback, measures the machine's
// ceilings (fsyncs/s of the data disk, alone and three at once as a
// cluster's WALs are, and a no-op gRPC unary service at the same client and
// connection counts) in the same run, before the side-by-side tables and
// again after them, and regenerates docs/BENCHMARKS.md.
//
// Issue 5's targets at scale are three sections of their own (scale.go,
// scalepage.go), on a fresh 3-member cluster of every system each:
// range-big (ranges with --limit 100 and --count-only over 100,000 keys
// loaded under one prefix, both tools), mem-1m (VmRSS per member after
// loading 1,000,000 keys, as (RSS − key and value bytes) per key, then
// SIGTERM, restart on the same data dirs and the time until every member
// serves a linearizable range and a put) and failover (a steady put load
// through every member, kill -9 of the leader, the time to the first
// acknowledged put sent after it; 5 trials). Memory, restart and the write
// gap are taken by the harness itself through a bare etcd v3 gRPC client
// (etcdrpc.go: no clientv3 balancing or retries between a request and its
// member). Their rows of the targets table sit between markers of their
// own under the main table. The last section (tlsauth.go, issue 6) is
// Concord's alone: the put workloads on a 3-member cluster plain, with
// client TLS (certificates the harness makes), with auth (as a non-root
// user) and with both, as ratios to the plain variant of the same run.
//
// Every measured run of the main tables also records the CPU its members
// and its load tool used (cpu.go), so that the page can say, as "CPU per
// request", how close each rate came to what the machine's cores allow: on
// two cores shared by three members and the tool, a ratio may be the
// machine's rather than the server's. The page's last section is
// bench/STEPS.md, the hand-written log of issue 5's optimization steps,
// copied verbatim between markers by every write of the page (steps.go).
//
//	go -C bench run .                     # from the repository root; full run, < 30 min on 2 cores
//	go -C bench run . --smoke             # a second or so per workload: checks the harness and that every server answers
//	go -C bench run . --only tls-auth     # the TLS and auth section alone (a few minutes), written into the existing page
//	go -C bench run . --only range-big,mem-1m,failover   # the sections at scale alone (~12 min), likewise
//
// Why a Go program in a module of its own rather than scripts/bench.py: the
// no-op gRPC ceiling must be a Go gRPC server and client like the systems
// under test (grpc-go on both sides), and the harness, the rivals and etcd's
// tool are then all obtained the same way, from the Go module proxy, pinned by
// go.sum files under bench/. Each rival sits in a module of its own
// (./etcd36 pins etcd's server at v3.6.16; ./etcdbench pins go.etcd.io/etcd/v3
// at v3.6.8, whose own requirements would otherwise drag the server back to
// v3.6.8), so Concord's module never depends on etcd's server.
// scripts/bench.py remains as a thin wrapper for muscle memory.
//
// What it must never do: send traffic anywhere but 127.0.0.1, leave a server
// running (every process it starts is in its own process group and is killed
// on exit, on a timeout and on Ctrl-C), show a password it made (the auth
// variants' are random per run and hidden in every message), or edit
// docs/BENCHMARKS.md by any route other than regenerating it whole — or,
// run with --only naming sections only (tls-auth, range-big, mem-1m,
// failover), regenerating each of those self-contained sections whole
// between its markers, with its own run line and baseline, and the rows of
// the targets at scale that those sections measure (the other rows are
// kept as the page had them); every write also replaces the copy of
// bench/STEPS.md between its markers.
//
// Concurrency: the harness is sequential on purpose — one load tool at a
// time, so that nothing else competes for the machine's two cores while a
// figure is taken. For the side-by-side tables the clusters of every system
// of one size run at once, idle but the one measured, so that each
// workload's runs can alternate between the systems (measureAcross): a
// ratio then compares runs taken seconds apart, not minutes. The sections
// at scale and the TLS and auth section start one cluster at a time. The
// one exception to a single load is the failover section's own load
// (scale.go), a goroutine per member and one per put in flight, all stopped
// and waited for before the cluster is.
package main
