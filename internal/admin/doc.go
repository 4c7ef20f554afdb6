// Package admin is Concord's HTTP surface for operators: etcd's /health,
// /livez, /readyz and /version endpoints and Prometheus /metrics, served on
// the metrics address (etcd: --listen-metrics-urls) and, next to gRPC, on
// every client port.
//
// It owns:
//   - Handler, the http.Handler for those endpoints, built over
//     *server.Server. Health answers the way etcd's does, byte for byte where
//     tools parse it: /health is {"health":"true","reason":""} (503 and
//     "false" with etcd's reason when there is no leader, an alarm is active
//     or a read fails); /livez and /readyz are "ok" or a list of failed
//     checks (verbose with ?verbose).
//   - the Prometheus collector: it reads server.Metrics once per scrape and
//     exports it under etcd's metric names where etcd has one, on a private
//     registry (never prometheus.DefaultRegisterer: two members in one
//     process, as in tests, must not collide).
//   - PortMux, which splits one client listener into a gRPC listener and an
//     HTTP/1.x listener by the first bytes of each connection.
//
// Why sniffing instead of h2c routing by content-type: grpc-go's native
// server (grpc.Server.Serve) is markedly faster than its http.Handler mode
// (ServeHTTP over net/http's HTTP/2), and every gRPC client — clientv3,
// etcdctl, grpc-go's health probes — opens with the HTTP/2 client preface,
// while curl, Prometheus and load-balancer probes speak HTTP/1.1. Reading
// the first three bytes ("PRI" begins the preface; no HTTP/1 method does)
// keeps gRPC on its fast path at the cost of one small read per connection.
// The price: an HTTP/2 prior-knowledge (h2c) client on the client port is
// taken for gRPC; use the metrics address for that.
//
// What it must never do: hold state of its own beyond counters' views, write
// anything through the server except the health probes' reads, or be
// imported by internal/server or anything below it (the server stays free of
// net/http; tests/layering enforces it).
//
// Concurrency: Handler is safe for concurrent requests. PortMux runs one
// accept goroutine plus one short-lived goroutine per connection while it
// sniffs; Close stops accepting and unblocks both listeners.
package admin
