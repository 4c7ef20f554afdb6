// Package command defines the replicated command envelope: every write of every
// dialect is one [Command], a versioned protobuf message that travels through
// Raft and is applied by package apply.
//
// The etcd keyspace operations (PutRequest, TxnRequest, ...) reuse the field
// numbers of etcd's own etcdserverpb messages, so a front-end can turn an etcd
// request into a command by re-encoding bytes rather than copying fields, and a
// later change of dialect never changes how old log entries decode.
//
// The Go code is generated from command.proto:
//
//	protoc --go_out=. --go_opt=paths=source_relative command.proto
//
// Marshal and Unmarshal (putcodec.go) encode and decode a Command as the
// proto package does, by hand for a plain Put, the one command every write
// workload is made of, and through the proto package for everything else;
// use them rather than proto.Marshal and proto.Unmarshal for log entries.
//
// This package must never import a front-end, gRPC or a protocol's wire types.
package command

// Version is the envelope version this build writes and the newest it applies.
const Version = 1
