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
package etcd
