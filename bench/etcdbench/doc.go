// Package etcdbench pins etcd's load tool, tools/benchmark from the module
// go.etcd.io/etcd/v3 v3.6.8, as a Go tool of this module; the harness builds
// it with `go build -o DIR/benchmark go.etcd.io/etcd/v3/tools/benchmark`. It
// is a module of its own because etcd/v3 v3.6.8 pins etcd's server at v3.6.8,
// which would clash with the v3.6.16 server in ../etcd36.
package etcdbench
