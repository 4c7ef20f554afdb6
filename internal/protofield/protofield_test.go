package protofield

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestMatchesProto checks the fields against proto.Marshal of the
// well-known wrappers, whose one field is number 1.
func TestMatchesProto(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 1 << 40, 1<<64 - 1} {
		want, _ := proto.Marshal(wrapperspb.UInt64(v))
		if got := AppendVarint(nil, 1, v); !bytes.Equal(got, want) || SizeVarint(1, v) != len(want) {
			t.Errorf("varint %d: got %x (size %d), want %x", v, got, SizeVarint(1, v), want)
		}
	}
	for _, v := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("y"), 300)} {
		want, _ := proto.Marshal(wrapperspb.Bytes(v))
		if got := AppendBytes(nil, 1, v); !bytes.Equal(got, want) || SizeBytes(1, len(v)) != len(want) {
			t.Errorf("bytes %q: got %x (size %d), want %x", v, got, SizeBytes(1, len(v)), want)
		}
	}
	for _, v := range []bool{false, true} {
		want, _ := proto.Marshal(wrapperspb.Bool(v))
		if got := AppendVarint(nil, 1, Bool(v)); !bytes.Equal(got, want) {
			t.Errorf("bool %v: got %x, want %x", v, got, want)
		}
	}
	inner := AppendVarint(nil, 1, 5)
	msg := append(AppendMessageHead(nil, 2, len(inner)), inner...)
	if want := []byte{0x12, 0x02, 0x08, 0x05}; !bytes.Equal(msg, want) || SizeMessage(2, len(inner)) != len(want) {
		t.Errorf("message: got %x, want %x", msg, want)
	}
	if got := SizeMessage(2, 0); got != 2 {
		t.Errorf("empty message size %d, want 2", got)
	}
}
