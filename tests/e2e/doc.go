// Package e2e is the real-process test suite (rung 4 and the etcdctl part of
// rung 5 of the testing ladder in DESIGN.md §8): it builds cmd/concord once
// (TestMain), runs members as separate processes on 127.0.0.1 with per-test
// data directories, and checks behaviour from the outside through clientv3,
// etcdctl and concord's own CLI: KV semantics through every member,
// linearizable follower reads, failover after SIGKILL and catch-up by
// snapshot, durability of acknowledged writes across a whole-cluster kill,
// etcd's exact error messages and codes, WAL corruption detection, flag
// validation, leadership transfer on SIGTERM, and partitions and one-way
// cuts injected through the fault plane with concord fault (fault_test.go).
//
// What it owns: cluster.go, the harness (ports, processes, logs, clients,
// leader discovery), and the tests. It never imports internal packages: it
// sees the product only through the binary and the wire, except that
// corrupt_test.go decodes the WAL framing documented in internal/wal/doc.go.
//
// Rules: tests run serially (no t.Parallel; timing matters on small CI
// machines); every wait polls with a ticker and a deadline; every process is
// killed by its PID in t.Cleanup (and, on Linux, by the kernel if the test
// binary dies); member stderr is printed when a test fails. TestEtcdctl
// skips when etcdctl is not on PATH.
package e2e
