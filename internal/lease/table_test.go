package lease

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestTableGrant(t *testing.T) {
	tb := NewTable()
	if err := tb.Grant(5, 10); err != nil {
		t.Fatalf("Grant(5, 10) = %v", err)
	}
	cases := []struct {
		id, ttl int64
		want    error
	}{
		{5, 10, ErrExists},
		{0, 10, ErrNoID},
		{6, MaxTTL + 1, ErrTTLTooLarge},
		{6, 0, ErrInvalidTTL},
		{6, -1, ErrInvalidTTL},
		{6, MaxTTL, nil},
		{-7, 1, nil}, // etcd accepts any non-zero id a client picks
	}
	for _, c := range cases {
		if err := tb.Grant(c.id, c.ttl); !errors.Is(err, c.want) {
			t.Errorf("Grant(%d, %d) = %v, want %v", c.id, c.ttl, err, c.want)
		}
	}
	if got := tb.List(); !slices.EqualFunc(got, []Lease{{ID: -7, TTL: 1}, {ID: 5, TTL: 10}, {ID: 6, TTL: MaxTTL}}, leaseEqual) {
		t.Errorf("List() = %v", got)
	}
}

func leaseEqual(a, b Lease) bool {
	return a.ID == b.ID && a.TTL == b.TTL && a.RemainingMs == b.RemainingMs &&
		slices.EqualFunc(a.Keys, b.Keys, bytes.Equal)
}

func keys(ks ...string) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

func TestTableKeys(t *testing.T) {
	tb := NewTable()
	tb.Grant(1, 10)
	tb.Grant(2, 10)
	for _, k := range []string{"c", "a", "b"} {
		if !tb.Attach(1, []byte(k)) {
			t.Fatalf("Attach(1, %q) = false", k)
		}
	}
	if tb.Attach(3, []byte("x")) {
		t.Errorf("Attach(3 (unknown), x) = true")
	}
	tb.Attach(2, []byte("z"))
	tb.Detach(1, []byte("b"))
	tb.Detach(1, []byte("missing"))
	tb.Detach(9, []byte("a"))
	if l, ok := tb.Get(1, true); !ok || !leaseEqual(l, Lease{ID: 1, TTL: 10, Keys: keys("a", "c")}) {
		t.Errorf("Get(1, keys) = %v, %v", l, ok)
	}
	if l, _ := tb.Get(1, false); l.Keys != nil {
		t.Errorf("Get(1, no keys) returned keys %q", l.Keys)
	}
	ks, err := tb.Revoke(1)
	if err != nil || !slices.EqualFunc(ks, keys("a", "c"), bytes.Equal) {
		t.Errorf("Revoke(1) = %q, %v, want [a c]", ks, err)
	}
	if _, err := tb.Revoke(1); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Revoke(1) = %v, want ErrNotFound", err)
	}
	if tb.Exists(1) || !tb.Exists(2) || tb.Len() != 1 {
		t.Errorf("after Revoke(1): Exists(1)=%v Exists(2)=%v Len=%d", tb.Exists(1), tb.Exists(2), tb.Len())
	}
}

func TestTableCheckpoint(t *testing.T) {
	tb := NewTable()
	tb.Grant(1, 10)
	cases := []struct {
		id, ms int64
		ok     bool
		want   int64
	}{
		{1, 4500, true, 4500},
		{1, -3, true, 0},
		{2, 100, false, 0},
	}
	for _, c := range cases {
		if ok := tb.Checkpoint(c.id, c.ms); ok != c.ok {
			t.Errorf("Checkpoint(%d, %d) = %v, want %v", c.id, c.ms, ok, c.ok)
		}
		if l, _ := tb.Get(c.id, false); l.RemainingMs != c.want {
			t.Errorf("after Checkpoint(%d, %d): RemainingMs = %d, want %d", c.id, c.ms, l.RemainingMs, c.want)
		}
	}
}

// build makes a table from a script, so two insertion orders can be compared.
func build(t *testing.T, ops []string) *Table {
	t.Helper()
	tb := NewTable()
	for _, op := range ops {
		var id, n int64
		var k string
		switch {
		case op[0] == 'g':
			fmt.Sscanf(op, "g %d %d", &id, &n)
			if err := tb.Grant(id, n); err != nil {
				t.Fatal(err)
			}
		case op[0] == 'a':
			fmt.Sscanf(op, "a %d %s", &id, &k)
			tb.Attach(id, []byte(k))
		case op[0] == 'c':
			fmt.Sscanf(op, "c %d %d", &id, &n)
			tb.Checkpoint(id, n)
		}
	}
	return tb
}

func TestTableEncodingDeterministic(t *testing.T) {
	a := build(t, []string{"g 3 10", "g -1 5", "g 99 1", "a 3 k2", "a 3 k1", "a -1 x", "c 3 2500"})
	b := build(t, []string{"g 99 1", "g 3 10", "a 3 k1", "g -1 5", "a -1 x", "a 3 k2", "c 3 2500"})
	ea, _ := a.AppendBinary(nil)
	eb, _ := b.AppendBinary(nil)
	if !bytes.Equal(ea, eb) {
		t.Fatalf("equal tables encode differently:\n%x\n%x", ea, eb)
	}
	dec, rest, err := DecodeTable(append(ea, "tail"...))
	if err != nil || string(rest) != "tail" {
		t.Fatalf("DecodeTable = rest %q, %v", rest, err)
	}
	if got, want := dec.List(), a.List(); !slices.EqualFunc(got, want, leaseEqual) {
		t.Errorf("decoded List() = %v, want %v", got, want)
	}
	if l, _ := dec.Get(3, true); !leaseEqual(l, Lease{ID: 3, TTL: 10, RemainingMs: 2500, Keys: keys("k1", "k2")}) {
		t.Errorf("decoded Get(3) = %v", l)
	}
	empty, _ := NewTable().AppendBinary(nil)
	if !bytes.Equal(empty, []byte{0, 0, 0, 0}) {
		t.Errorf("empty table encodes as %x", empty)
	}
}

func TestDecodeTableRejects(t *testing.T) {
	good, _ := build(t, []string{"g 1 10", "g 2 10", "a 1 a", "a 1 b"}).AppendBinary(nil)
	for n := 0; n < len(good); n++ {
		if _, _, err := DecodeTable(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeTable(first %d of %d bytes) = %v, want ErrCorrupt", n, len(good), err)
		}
	}
	lease := func(id, ttl, rem int64, ks ...string) []byte {
		var b []byte
		b = be64(b, id)
		b = be64(b, ttl)
		b = be64(b, rem)
		b = be32(b, uint32(len(ks)))
		for _, k := range ks {
			b = be32(b, uint32(len(k)))
			b = append(b, k...)
		}
		return b
	}
	table := func(ls ...[]byte) []byte {
		b := be32(nil, uint32(len(ls)))
		for _, l := range ls {
			b = append(b, l...)
		}
		return b
	}
	cases := map[string][]byte{
		"id zero":          table(lease(0, 1, 0)),
		"ids unordered":    table(lease(2, 1, 0), lease(1, 1, 0)),
		"ids duplicate":    table(lease(2, 1, 0), lease(2, 1, 0)),
		"ttl zero":         table(lease(1, 0, 0)),
		"ttl too large":    table(lease(1, MaxTTL+1, 0)),
		"remaining < 0":    table(lease(1, 1, -1)),
		"empty key":        table(lease(1, 1, 0, "")),
		"keys unordered":   table(lease(1, 1, 0, "b", "a")),
		"keys duplicate":   table(lease(1, 1, 0, "a", "a")),
		"huge key count":   be32(be64(be64(be64(be32(nil, 1), 1), 1), 0), 1<<31),
		"huge lease count": be32(nil, 1<<31),
	}
	for name, b := range cases {
		if _, _, err := DecodeTable(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeTable(%s) = %v, want ErrCorrupt", name, err)
		}
	}
}

func be32(b []byte, v uint32) []byte { return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
func be64(b []byte, v int64) []byte  { return be32(be32(b, uint32(uint64(v)>>32)), uint32(v)) }

// FuzzDecodeTable: whatever DecodeTable accepts re-encodes to exactly the
// bytes it consumed.
func FuzzDecodeTable(f *testing.F) {
	seed := NewTable()
	seed.Grant(1, 10)
	seed.Grant(2, 10)
	seed.Attach(1, []byte("a"))
	seed.Checkpoint(2, 5)
	good, _ := seed.AppendBinary(nil)
	f.Add(good)
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, rest, err := DecodeTable(b)
		if err != nil {
			return
		}
		enc, _ := tb.AppendBinary(nil)
		if consumed := b[:len(b)-len(rest)]; !bytes.Equal(enc, consumed) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, consumed)
		}
	})
}
