package command

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func putCommand(p *PutRequest) *Command {
	return &Command{Version: Version, Id: 1<<56 + 42, Stamp: 1_765_000_000_123_456_789, Op: &Command_Put{Put: p}}
}

// TestPutCodecMatchesProto checks Marshal byte for byte against
// proto.Marshal, and Unmarshal against proto.Unmarshal, for Puts the hand
// code writes and for commands it leaves to the proto package.
func TestPutCodecMatchesProto(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 70000)
	cmds := map[string]*Command{
		"put":                putCommand(&PutRequest{Key: []byte("k"), Value: []byte("v")}),
		"every put field":    putCommand(&PutRequest{Key: []byte("key"), Value: big, Lease: 1 << 40, PrevKv: true, IgnoreValue: true, IgnoreLease: true}),
		"negative lease":     putCommand(&PutRequest{Key: []byte("k"), Lease: -1}),
		"empty put":          putCommand(&PutRequest{}),
		"zero envelope":      {Op: &Command_Put{Put: &PutRequest{Key: []byte("k")}}},
		"negative stamp":     {Version: Version, Stamp: -5, Op: &Command_Put{Put: &PutRequest{Key: []byte("k")}}},
		"put with auth":      {Version: Version, Id: 7, Auth: &AuthInfo{Username: "u", Revision: 3}, Op: &Command_Put{Put: &PutRequest{Key: []byte("k")}}},
		"delete":             {Version: Version, Id: 7, Op: &Command_DeleteRange{DeleteRange: &DeleteRangeRequest{Key: []byte("k")}}},
		"txn with a put":     {Version: Version, Id: 8, Op: &Command_Txn{Txn: &TxnRequest{Success: []*RequestOp{{Request: &RequestOp_RequestPut{RequestPut: &PutRequest{Key: []byte("k")}}}}}}},
		"lease grant":        {Version: Version, Id: 9, Op: &Command_LeaseGrant{LeaseGrant: &LeaseGrantRequest{Id: 5, Ttl: 10}}},
		"no operation":       {Version: Version, Id: 10},
		"future version put": {Version: 2, Id: 11, Op: &Command_Put{Put: &PutRequest{Key: []byte("k")}}},
	}
	for name, c := range cmds {
		want, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(c)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Marshal differs from proto.Marshal:\n got %x\nwant %x", name, got, want)
		}
		checkUnmarshal(t, name, want)
		var back Command
		if err := Unmarshal(want, &back); err != nil || !proto.Equal(&back, c) {
			t.Errorf("%s: Unmarshal gave %v (%v), want %v", name, &back, err, c)
		}
	}
}

// TestUnmarshalUnusualPuts covers encodings of a Put that Marshal never
// writes, which must decode as proto.Unmarshal decodes them.
func TestUnmarshalUnusualPuts(t *testing.T) {
	env := func(put []byte, extra ...byte) []byte {
		b := protowire.AppendVarint(protowire.AppendTag(nil, cmdVersion, protowire.VarintType), Version)
		b = protowire.AppendBytes(protowire.AppendTag(b, cmdPut, protowire.BytesType), put)
		return append(b, extra...)
	}
	key := protowire.AppendBytes(protowire.AppendTag(nil, putKey, protowire.BytesType), []byte("k"))
	boolField := func(n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), v)
	}
	cases := map[string][]byte{
		"key twice":              env(append(append([]byte{}, key...), key...)),
		"empty key present":      env(protowire.AppendBytes(protowire.AppendTag(nil, putKey, protowire.BytesType), nil)),
		"bool of 2":              env(append(append([]byte{}, key...), boolField(putPrevKV, 2)...)),
		"bool of 0":              env(append(append([]byte{}, key...), boolField(putPrevKV, 0)...)),
		"unknown put field":      env(append(append([]byte{}, key...), boolField(40, 1)...)),
		"unknown command field":  env(key, boolField(99, 3)...),
		"put twice":              append(env(key), env(boolField(putLease, 3))...),
		"key as a varint":        env(boolField(putKey, 1)),
		"version too large":      env(key, boolField(cmdVersion, 1<<33)...),
		"envelope after the put": append(env(key), boolField(cmdID, 5)...),
		"truncated":              env(key)[:len(env(key))-1],
		"bad length":             append(env(nil), 0x52, 0x05, 0x0a),
		"empty":                  nil,
	}
	for name, data := range cases {
		checkUnmarshal(t, name, data)
	}
}

// checkUnmarshal decodes data with Unmarshal and with proto.Unmarshal and
// wants the same outcome, down to whether a Put's key and value are nil.
func checkUnmarshal(t *testing.T, name string, data []byte) {
	t.Helper()
	var got, want Command
	gotErr, wantErr := Unmarshal(data, &got), proto.Unmarshal(data, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%s: Unmarshal error %v, proto.Unmarshal error %v", name, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if !proto.Equal(&got, &want) {
		t.Fatalf("%s: Unmarshal gave %v, proto.Unmarshal %v", name, &got, &want)
	}
	if g, w := got.GetPut(), want.GetPut(); g != nil {
		if (g.Key == nil) != (w.Key == nil) || (g.Value == nil) != (w.Value == nil) {
			t.Fatalf("%s: nil key or value differs: got %#v, want %#v", name, g, w)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, p := range []*PutRequest{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("key"), Lease: -1, PrevKv: true, IgnoreLease: true}, {}} {
		b, _ := Marshal(putCommand(p))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkUnmarshal(t, "fuzz", data)
	})
}

func BenchmarkPutCodec(b *testing.B) {
	c := putCommand(&PutRequest{Key: []byte("k0012345"), Value: make([]byte, 256)})
	data, _ := proto.Marshal(c)
	b.Run("proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			proto.Marshal(c)
		}
	})
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Marshal(c)
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Command
			proto.Unmarshal(data, &c)
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Command
			Unmarshal(data, &c)
		}
	})
}
