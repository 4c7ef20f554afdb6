package etcd

import (
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/concord-db/concord/internal/command"
)

// The direct conversions give what recode gives, for messages with every
// field set (so a field added to one side and forgotten in convert.go shows
// up here) and for empty ones.
func TestConvertMatchesRecode(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("full=%v", full), func(t *testing.T) {
			check := func(name string, src proto.Message, convert func() proto.Message, want proto.Message) {
				t.Helper()
				if full {
					fill(src.ProtoReflect())
				}
				got := convert()
				if err := recode(want, src); err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(got, want) {
					t.Errorf("%s: direct conversion\n%s\nrecode\n%s", name, prototext.Format(got), prototext.Format(want))
				}
			}
			rr := &etcdserverpb.RangeRequest{}
			check("RangeRequest", rr, func() proto.Message { return rangeRequest(rr) }, &command.RangeRequest{})
			pr := &etcdserverpb.PutRequest{}
			check("PutRequest", pr, func() proto.Message { return putRequest(pr) }, &command.PutRequest{})
		})
	}
}

// fill sets every field of m to a value derived from its field number (a
// repeated message field gets two elements), so fields cannot stand in for
// one another unnoticed.
func fill(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		n := int64(f.Number())
		switch {
		case f.IsList() && f.Kind() == protoreflect.MessageKind:
			l := m.Mutable(f).List()
			for range 2 {
				e := l.NewElement()
				fill(e.Message())
				l.Append(e)
			}
		case f.IsList() || f.IsMap():
			panic(fmt.Sprintf("fill: %s: only repeated messages are handled", f.FullName()))
		case f.Kind() == protoreflect.MessageKind:
			fill(m.Mutable(f).Message())
		case f.Kind() == protoreflect.BoolKind:
			m.Set(f, protoreflect.ValueOfBool(true))
		case f.Kind() == protoreflect.Int64Kind:
			m.Set(f, protoreflect.ValueOfInt64(n*1000+7))
		case f.Kind() == protoreflect.BytesKind:
			m.Set(f, protoreflect.ValueOfBytes([]byte(fmt.Sprintf("field-%d", n))))
		case f.Kind() == protoreflect.EnumKind:
			vals := f.Enum().Values()
			m.Set(f, protoreflect.ValueOfEnum(vals.Get(vals.Len()-1).Number()))
		default:
			panic(fmt.Sprintf("fill: %s: kind %v not handled", f.FullName(), f.Kind()))
		}
	}
}
