package command

import (
	"math"

	"github.com/concord-db/concord/internal/protofield"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Marshal and Unmarshal are proto.Marshal and proto.Unmarshal for a
// Command, written out by hand for the command the write path carries most:
// a Put with no auth information. Every member decodes every entry, and the
// proposer encodes it; through protobuf's generic code, encoding was 3.9%
// of a leader's CPU and decoding 3-7% of each member's under puts at 100
// clients (bench/STEPS.md, step 24). Any other command, and any encoding of a Put this code does not
// expect (a field repeated or unknown, an empty bytes field, a bool other
// than 0 or 1), goes to the proto package, so both produce the same bytes
// and the same message (TestPutCodecMatchesProto, FuzzUnmarshal).

// Field numbers of command.proto.
const (
	cmdVersion, cmdID, cmdStamp, cmdPut                                   protowire.Number = 1, 2, 3, 10
	putKey, putValue, putLease, putPrevKV, putIgnoreValue, putIgnoreLease protowire.Number = 1, 2, 3, 4, 5, 6
)

// Marshal encodes c as proto.Marshal does.
func Marshal(c *Command) ([]byte, error) {
	p := c.GetPut()
	if p == nil || c.Auth != nil || len(c.unknownFields) > 0 || len(p.unknownFields) > 0 {
		return proto.Marshal(c)
	}
	pn := putSize(p)
	n := protofield.SizeVarint(cmdVersion, uint64(c.Version)) + protofield.SizeVarint(cmdID, c.Id) + protofield.SizeVarint(cmdStamp, uint64(c.Stamp)) +
		protofield.SizeMessage(cmdPut, pn)
	b := make([]byte, 0, n)
	b = protofield.AppendVarint(b, cmdVersion, uint64(c.Version))
	b = protofield.AppendVarint(b, cmdID, c.Id)
	b = protofield.AppendVarint(b, cmdStamp, uint64(c.Stamp))
	b = protofield.AppendMessageHead(b, cmdPut, pn)
	b = protofield.AppendBytes(b, putKey, p.Key)
	b = protofield.AppendBytes(b, putValue, p.Value)
	b = protofield.AppendVarint(b, putLease, uint64(p.Lease))
	b = protofield.AppendVarint(b, putPrevKV, protofield.Bool(p.PrevKv))
	b = protofield.AppendVarint(b, putIgnoreValue, protofield.Bool(p.IgnoreValue))
	return protofield.AppendVarint(b, putIgnoreLease, protofield.Bool(p.IgnoreLease)), nil
}

func putSize(p *PutRequest) int {
	return protofield.SizeBytes(putKey, len(p.Key)) + protofield.SizeBytes(putValue, len(p.Value)) + protofield.SizeVarint(putLease, uint64(p.Lease)) +
		protofield.SizeVarint(putPrevKV, protofield.Bool(p.PrevKv)) + protofield.SizeVarint(putIgnoreValue, protofield.Bool(p.IgnoreValue)) +
		protofield.SizeVarint(putIgnoreLease, protofield.Bool(p.IgnoreLease))
}

// Unmarshal decodes data into c as proto.Unmarshal does.
func Unmarshal(data []byte, c *Command) error {
	if unmarshalPut(data, c) {
		return nil
	}
	return proto.Unmarshal(data, c)
}

// unmarshalPut decodes a Put command written as Marshal writes it, and
// reports false, leaving c alone, for anything else.
func unmarshalPut(data []byte, c *Command) bool {
	var version, id, stamp uint64
	var seen uint32 // bit n: field n was read
	var put *PutRequest
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 || num > 31 || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		data = data[n:]
		switch {
		case typ == protowire.VarintType && (num == cmdVersion || num == cmdID || num == cmdStamp):
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return false
			}
			data = data[n:]
			switch num {
			case cmdVersion:
				if v > math.MaxUint32 {
					return false
				}
				version = v
			case cmdID:
				id = v
			default:
				stamp = v
			}
		case typ == protowire.BytesType && num == cmdPut:
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return false
			}
			data = data[n:]
			if put = unmarshalPutRequest(v); put == nil {
				return false
			}
		default:
			return false
		}
	}
	if put == nil {
		return false
	}
	c.Reset()
	c.Version, c.Id, c.Stamp = uint32(version), id, int64(stamp)
	c.Op = &Command_Put{Put: put}
	return true
}

// unmarshalPutRequest decodes a PutRequest, or returns nil.
func unmarshalPutRequest(data []byte) *PutRequest {
	p := new(PutRequest)
	var seen uint32
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 || num > 31 || seen&(1<<num) != 0 {
			return nil
		}
		seen |= 1 << num
		data = data[n:]
		switch {
		case typ == protowire.BytesType && (num == putKey || num == putValue):
			v, n := protowire.ConsumeBytes(data)
			if n < 0 || len(v) == 0 {
				return nil
			}
			data = data[n:]
			// A copy, as proto.Unmarshal makes: the store keeps it, and
			// the entry it came from is dropped with the log.
			v = append([]byte(nil), v...)
			if num == putKey {
				p.Key = v
			} else {
				p.Value = v
			}
		case typ == protowire.VarintType && num >= putLease && num <= putIgnoreLease:
			v, n := protowire.ConsumeVarint(data)
			if n < 0 || (num != putLease && v > 1) {
				return nil
			}
			data = data[n:]
			switch num {
			case putLease:
				p.Lease = int64(v)
			case putPrevKV:
				p.PrevKv = v == 1
			case putIgnoreValue:
				p.IgnoreValue = v == 1
			default:
				p.IgnoreLease = v == 1
			}
		default:
			return nil
		}
	}
	return p
}
