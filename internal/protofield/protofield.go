package protofield

import "google.golang.org/protobuf/encoding/protowire"

// SizeVarint is the encoded size of varint field n holding v: 0 for 0.
func SizeVarint(n protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeVarint(v)
}

// SizeBytes is the encoded size of bytes field n holding l bytes: 0 for 0.
func SizeBytes(n protowire.Number, l int) int {
	if l == 0 {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeBytes(l)
}

// SizeMessage is the encoded size of message field n whose message encodes
// to l bytes; a message field is written even when empty.
func SizeMessage(n protowire.Number, l int) int {
	return protowire.SizeTag(n) + protowire.SizeBytes(l)
}

// AppendVarint appends varint field n holding v, nothing for 0.
func AppendVarint(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
}

// AppendBytes appends bytes field n holding v, nothing for an empty v.
func AppendBytes(b []byte, n protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v)
}

// AppendMessageHead appends the tag and length of message field n whose
// message encodes to l bytes; the message's own fields follow.
func AppendMessageHead(b []byte, n protowire.Number, l int) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.BytesType), uint64(l))
}

// Bool is v as the varint proto writes for a bool.
func Bool(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}
