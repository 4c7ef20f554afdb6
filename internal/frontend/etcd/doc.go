// Package etcd serves etcd's v3 gRPC API on top of package server, using the
// upstream wire types of go.etcd.io/etcd/api/v3 so that etcdctl, clientv3 and
// every other etcd client talk to Concord unmodified.
//
// What lives here and nowhere else: gRPC plumbing (options, keepalive
// enforcement, size limits, the hasleader requirement), conversion between
// etcd's messages and Concord's commands, and the one table (errors.go) that
// maps domain errors to etcd's rpctypes errors with their exact codes and
// messages. No request logic lives here; it belongs to package server.
//
// Conversion relies on command's etcd messages sharing field numbers with
// etcdserverpb's: a request is re-encoded, not copied field by field, so a
// field added to one side and not the other fails the round-trip test rather
// than vanishing silently.
//
// Three messages are written by hand: a watch response carrying the hub's
// events (watchwire.go), and the responses of Range and Put (kvwire.go). A
// fan-out stream sends one watch response per watcher and revision, and
// building etcd's messages for each and marshalling them by reflection was
// most of a watch-serving member's CPU; Range and Put are the calls a
// member serves most. Each hand encoding is checked byte for byte against
// proto.Marshal, and the codec hands every other message to gRPC's. A watch stream that falls behind the
// writes sends in rounds no closer than --watch-batch-interval (watch.go's
// round), so that each response carries many events, as etcd's batches do.
package etcd
