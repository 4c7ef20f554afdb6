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
//   - the fault API under /v1/faults (below), over the member's
//     faults.Plane.
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
// # Fault API
//
// A member started with --fault-injection (server.Config.FaultInjection)
// serves its fault plane (package faults, which documents the rules) on the
// client port's HTTP side and on the metrics address. Without it every
// /v1/faults request answers 403. Each member holds its own rules and judges
// only the raft messages it sends, and acts on a pause, clock or disk rule
// only when the rule names it, so a rule meant for the cluster is installed
// on every member (`concord fault` does that). Rules live in
// memory: a restarted member has none. There is no authentication: enable
// fault injection only where everyone who can reach these ports may cut
// the cluster apart.
//
//	GET    /v1/faults       200 {"faults":[RULE,...]}, in install order
//	POST   /v1/faults       body SPEC; 201 RULE, Location: /v1/faults/ID
//	DELETE /v1/faults/{id}  200 RULE (removed); 404 if no such rule
//	DELETE /v1/faults       200 {"removed":[RULE,...]} (heal everything)
//
// SPEC is one JSON object (faults.Spec; unknown fields are refused):
//
//	kind         "drop", "delay", "duplicate", "partition",
//	             "isolate-leader", "pause", "clock" or "disk" (required)
//	id           optional: letters, digits, '.', '_', '-' (default f1, f2, ...)
//	link         drop, delay, duplicate: "n1->n2" (one way), "n1<->n2"
//	             (both), "*" for any member, e.g. "*->n3" (default "*->*")
//	types        raft message types, e.g. ["MsgVote","MsgPreVote"],
//	             ["MsgApp"], ["MsgHeartbeat","MsgHeartbeatResp"] (default all)
//	probability  chance the rule acts on a matching message, (0, 1]
//	             (default 1; not for partitions)
//	next         act on the next N matching messages (disk: operations)
//	             only, then retire
//	delay        delay: Go duration, e.g. "50ms"; disk slow: what each
//	             fsync waits
//	jitter       delay: uniform spread around delay, e.g. "10ms"
//	groups       partition: [["n1","n2"],["n3"]] cuts every link across
//	             groups both ways; one group cuts it from all others
//	bridge       partition: members that keep every link, e.g. ["n2"]
//	member       pause, clock, disk: the member acted on, e.g. "n1"
//	offset       clock: signed Go duration added to the member's lease
//	             clock, e.g. "2s", "-500ms" (a jump at install)
//	drift        clock: rate of that clock, e.g. 1.5 (50% fast; default 1)
//	mode         disk: "slow" (with delay), "fail" (fsync errors: the
//	             member stops) or "enospc" (writes fail with ENOSPC)
//	duration     Go duration after which the rule expires (default never);
//	             for pause, how long the member stays frozen
//	description  optional; generated when empty
//
// Types, link, groups and bridge are for the network kinds only; member,
// offset, drift and mode for the member kinds. A pause without duration
// lasts until removed; removing it (or healing) resumes the member at
// once. Crash and restart are not rules: kill -9 and start the process
// yourself, or use concord check.
//
// Members are named by name, by hexadecimal id, or as "leader" (this
// member's view of the leader when the rule is installed). RULE is the SPEC
// in canonical form (names resolved, id and description filled in,
// isolate-leader stored as the partition it made; POSTing it to another
// member installs the same rule) plus "created", "expires" (when it has a
// duration), "remaining" (what is left of next N) and "fired" (how many
// messages this member sent that the rule acted on). Errors are
// {"error":"..."} with status 400 (bad JSON, unknown field, invalid rule,
// unknown member or message type), 403 (fault injection off), 404 (no such
// rule), 409 (id in use, or faults.MaxRules installed) or 503 ("leader"
// named while no leader is known). Example:
//
//	curl -X POST http://127.0.0.1:2379/v1/faults \
//	  -d '{"kind":"drop","link":"n1->n2","types":["MsgVote"],"duration":"30s"}'
//	curl -X POST http://127.0.0.1:2379/v1/faults \
//	  -d '{"kind":"pause","member":"n1","duration":"5s"}'
//	curl -X POST http://127.0.0.1:2379/v1/faults \
//	  -d '{"kind":"disk","member":"n2","mode":"slow","delay":"200ms"}'
//
// What it must never do: hold state of its own beyond counters' views (the
// fault rules belong to the member's faults.Plane), write anything through
// the server except the health probes' reads, or be imported by
// internal/server or anything below it (the server stays free of net/http;
// tests/layering enforces it).
//
// Concurrency: Handler is safe for concurrent requests. PortMux runs one
// accept goroutine plus one short-lived goroutine per connection while it
// sniffs; Close stops accepting and unblocks both listeners.
package admin
