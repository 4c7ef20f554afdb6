// Package protofield writes proto3 fields with protowire for the few
// messages Concord encodes by hand (the etcd front-end's watch, Range and
// Put responses; the Put command): the size and the bytes of a field as
// proto.Marshal writes it, leaving out a scalar that holds its zero value.
//
// It exists so the front-end and package command, which must not import
// each other, share one copy of these rules. Decoding stays with each
// caller: what it accepts differs.
package protofield
