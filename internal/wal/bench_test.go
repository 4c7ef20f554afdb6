package wal

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkSave measures one Save (one write + one fdatasync) on the real
// filesystem, with and without zero-ahead. Allocations should be zero in
// steady state.
func BenchmarkSave(b *testing.B) {
	for _, bc := range []struct {
		perSave, size int
		zeroAhead     int64
	}{{1, 256, 0}, {1, 256, DefaultZeroAhead}, {100, 256, 0}, {100, 256, DefaultZeroAhead}} {
		b.Run(fmt.Sprintf("entries=%d/size=%d/zeroahead=%d", bc.perSave, bc.size, bc.zeroAhead), func(b *testing.B) {
			w, err := Create(Config{FS: vfs.Default, Dir: b.TempDir(), ZeroAhead: bc.zeroAhead}, []byte("bench"))
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			batch := make([]*raftpb.Entry, bc.perSave)
			idx := make([]uint64, bc.perSave)
			term := uint64(1)
			data := make([]byte, bc.size)
			for i := range batch {
				batch[i] = &raftpb.Entry{Index: &idx[i], Term: &term, Data: data}
			}
			var commit uint64
			hs := &raftpb.HardState{Term: &term, Commit: &commit}
			next := uint64(1)
			b.SetBytes(int64(bc.perSave * bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i := range idx {
					idx[i] = next
					next++
				}
				commit = next - 1
				if err := w.Save(hs, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
