package mvcc

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestLayoutSizes pins the sizes the package doc's memory figures rest on:
// a field added to either struct would cost every key in every member.
func TestLayoutSizes(t *testing.T) {
	if got := unsafe.Sizeof(keyIndex{}); got != 32 {
		t.Errorf("keyIndex is %d bytes, want 32", got)
	}
	if got := unsafe.Sizeof(version{}); got != 48 {
		t.Errorf("version is %d bytes, want 48", got)
	}
}

// TestPackedSlices checks that the packed item and version give back the
// slices they were given: same bytes, same array, nothing for empty ones,
// and the versions' capacity kept for appends in place.
func TestPackedSlices(t *testing.T) {
	backing := []byte("keyvalue-and-more")
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty, not nil", []byte{}},
		{"empty at the end of an array", backing[len(backing):]},
		{"one byte", []byte("k")},
		{"part of a larger array", backing[3:8]},
	} {
		ki, p := indexItem(tc.b, nil), probe(tc.b)
		var v version
		v.setValue(tc.b)
		for what, got := range map[string][]byte{"key": ki.key(), "probe's key": p.key(), "value": v.value()} {
			if !bytes.Equal(got, tc.b) {
				t.Errorf("%s: %s = %q, want %q", tc.name, what, got, tc.b)
			}
			if len(tc.b) == 0 {
				if got != nil {
					t.Errorf("%s: %s = %#v, want nil", tc.name, what, got)
				}
				continue
			}
			if unsafe.SliceData(got) != unsafe.SliceData(tc.b) {
				t.Errorf("%s: %s is a copy, want the stored bytes", tc.name, what)
			}
			if cap(got) != len(tc.b) {
				t.Errorf("%s: %s has capacity %d, want %d: an append must not reach beyond it", tc.name, what, cap(got), len(tc.b))
			}
		}
	}

	vs := make([]version, 2, 5)
	vs[0].mod, vs[1].mod = 2, 3
	ki := indexItem([]byte("k"), vs)
	got := ki.versions()
	if len(got) != 2 || cap(got) != 5 || &got[0] != &vs[0] || ki.newest().mod != 3 {
		t.Errorf("versions() = len %d cap %d (same array %v), newest mod %d; want len 2 cap 5 on the same array, newest mod 3",
			len(got), cap(got), &got[0] == &vs[0], ki.newest().mod)
	}
	ki.setVersions(nil)
	if ki.versions() != nil || ki.vsPtr != nil {
		t.Errorf("after setVersions(nil): versions() = %v, pointer %p; want nil", ki.versions(), ki.vsPtr)
	}
}

// TestLessKeyIndexOrdersAsBytes checks that comparing by the items' heads
// first orders keys exactly as bytes.Compare does: keys shorter than a head,
// keys with zero bytes where a shorter key's padding is, keys that differ
// only after the head, and random ones.
func TestLessKeyIndexOrdersAsBytes(t *testing.T) {
	keys := [][]byte{
		nil, {0}, {0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 1}, {1},
		[]byte("a"), []byte("a\x00"), []byte("a\x00\x00\x00"), []byte("a\x00\x00\x00\x00"), []byte("a\x01"),
		[]byte("ab"), []byte("abc"), []byte("abcd"), []byte("abcd\x00"), []byte("abcde"), []byte("abce"),
		[]byte("abd"), []byte("b"), {0xff}, {0xff, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xff, 0},
		[]byte("/registry/pods/a"), []byte("/registry/pods/b"), []byte("/registry/svc"),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		k := make([]byte, rng.IntN(7))
		for i := range k {
			k[i] = byte(rng.IntN(3)) // few symbols: many shared heads and zero bytes
		}
		keys = append(keys, k)
	}
	for _, a := range keys {
		for _, b := range keys {
			want := bytes.Compare(a, b) < 0
			if got := lessKeyIndex(probe(a), indexItem(b, nil)); got != want {
				t.Fatalf("lessKeyIndex(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
}
