package snap

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestCRC32Combine(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []struct{ a, b int }{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {3, 7}, {16, 1 << 10}, {100, 12345}, {1, 1 << 20}} {
		a, b := make([]byte, n.a), make([]byte, n.b)
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		want := crc32.Checksum(append(append([]byte(nil), a...), b...), crcTable)
		got := crc32Combine(crc32.Checksum(a, crcTable), crc32.Checksum(b, crcTable), int64(len(b)))
		if got != want {
			t.Errorf("crc32Combine over %d+%d bytes = %08x, want %08x", n.a, n.b, got, want)
		}
	}
}
