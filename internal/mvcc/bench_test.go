package mvcc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

func BenchmarkPut(b *testing.B) {
	s := NewStore()
	keys := benchKeys(1 << 16)
	value := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := s.Write()
		w.Put(keys[i&(len(keys)-1)], value, 0)
		w.End()
	}
}

// BenchmarkPutRandom overwrites keys of a 100,000-key store in random
// order, the index's worst case for cache misses: no path hint helps, and
// every comparison in a search may read a key from another cache line.
// "binary" keys are 8 random bytes (etcd's benchmark tool writes varints);
// "prefixed" ones share their first 7 bytes ("/registry/" style).
func BenchmarkPutRandom(b *testing.B) {
	for _, kind := range []string{"binary", "prefixed"} {
		b.Run(kind, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			keys := make([][]byte, 100000)
			for i := range keys {
				if kind == "binary" {
					keys[i] = binary.BigEndian.AppendUint64(nil, rng.Uint64())
				} else {
					keys[i] = []byte(fmt.Sprintf("/stuff/%08d", rng.IntN(1<<30)))
				}
			}
			s := NewStore()
			value := make([]byte, 256)
			for _, k := range keys {
				w := s.Write()
				w.Put(k, value, 0)
				w.End()
			}
			order := rng.Perm(len(keys))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := s.Write()
				w.Put(keys[order[i%len(order)]], value, 0)
				w.End()
				if i%len(order) == len(order)-1 {
					// Keep one version per key, as a server's compaction would.
					if err := s.Compact(s.Rev()); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// benchKeys returns the keys loadStore(n) writes, in order.
func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key-%08d", i))
	}
	return keys
}

func loadStore(n int) *Store {
	s := NewStore()
	value := make([]byte, 256)
	w := s.Write()
	for i := 0; i < n; i++ {
		w.Put([]byte(fmt.Sprintf("key-%08d", i)), value, 0)
	}
	w.End()
	return s
}

func BenchmarkRangeOneKey(b *testing.B) {
	s := loadStore(100_000)
	key := []byte("key-00050000")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := s.Range(key, nil, RangeOptions{})
		if err != nil || len(r.KVs) != 1 {
			b.Fatalf("Range = %v, %v", r, err)
		}
	}
}

func BenchmarkRangeLimit100Of100k(b *testing.B) {
	s := loadStore(100_000)
	key, end := []byte("key-"), []byte("key.")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := s.Range(key, end, RangeOptions{Limit: 100})
		if err != nil || len(r.KVs) != 100 || r.Count != 100_000 {
			b.Fatalf("Range = %d kvs count %d, %v", len(r.KVs), r.Count, err)
		}
	}
}

func BenchmarkRangeCountOnly100k(b *testing.B) {
	s := loadStore(100_000)
	key, end := []byte("key-"), []byte("key.")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := s.Range(key, end, RangeOptions{CountOnly: true})
		if err != nil || r.Count != 100_000 {
			b.Fatalf("Range = count %d, %v", r.Count, err)
		}
	}
}

// BenchmarkRangeLimit100Of100kHistorical reads one revision back: the counts
// describe only the current revision, so this stays a full walk.
func BenchmarkRangeLimit100Of100kHistorical(b *testing.B) {
	s := loadStore(100_000)
	put(s, "zz", "v")
	key, end := []byte("key-"), []byte("key.")
	rev := s.Rev() - 1
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := s.Range(key, end, RangeOptions{Limit: 100, Rev: rev})
		if err != nil || len(r.KVs) != 100 || r.Count != 100_000 {
			b.Fatalf("Range = %d kvs count %d, %v", len(r.KVs), r.Count, err)
		}
	}
}

// BenchmarkDeletePut alternates deleting and re-creating keys, the writes
// that move a key in and out of the tombstone index.
func BenchmarkDeletePut(b *testing.B) {
	s := loadStore(1 << 16)
	keys := benchKeys(1 << 16)
	value := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := keys[(i/2)&(len(keys)-1)]
		w := s.Write()
		if i%2 == 0 {
			w.DeleteRange(k, nil)
		} else {
			w.Put(k, value, 0)
		}
		w.End()
	}
}

// BenchmarkMemoryPerKey1M loads 1,000,000 keys of 8 bytes with distinct
// 256-byte values, one write transaction each, and reports the live heap
// they cost per key (heap-B/key) and that minus the 264 bytes of key and
// value payload (index-B/key), then that again after Defragment
// (index-B/key-defragmented).
func BenchmarkMemoryPerKey1M(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := NewStore()
		for k := uint64(0); k < n; k++ {
			w := s.Write()
			w.Put(binary.BigEndian.AppendUint64(nil, k), make([]byte, 256), 0)
			w.End()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey := float64(after.HeapAlloc-before.HeapAlloc) / n
		b.ReportMetric(perKey, "heap-B/key")
		b.ReportMetric(perKey-264, "index-B/key")
		s.Defragment(0)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n-264, "index-B/key-defragmented")
		runtime.KeepAlive(s)
	}
}

// BenchmarkRangeAll100k returns every key: a walk that no count can shorten.
func BenchmarkRangeAll100k(b *testing.B) {
	s := loadStore(100_000)
	key, end := []byte("key-"), []byte("key.")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := s.Range(key, end, RangeOptions{})
		if err != nil || len(r.KVs) != 100_000 {
			b.Fatalf("Range = %d kvs, %v", len(r.KVs), err)
		}
	}
}

func BenchmarkWriteTo100k(b *testing.B) {
	s := loadStore(100_000)
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if _, err := s.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRestore100k(b *testing.B) {
	var buf bytes.Buffer
	if _, err := loadStore(100_000).WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := NewStore().Restore(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompact20k compacts 20,000 keys with two versions each, a
// quarter of them deleted, so compaction rewrites every key and drops some.
func BenchmarkCompact20k(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := loadStore(20_000)
		w := s.Write()
		for k := 0; k < 20_000; k++ {
			key := []byte(fmt.Sprintf("key-%08d", k))
			if k%4 == 0 {
				w.DeleteRange(key, nil)
			} else {
				w.Put(key, []byte("v2"), 0)
			}
		}
		w.End()
		put(s, "zz", "v") // the deletes must be older than the compaction
		b.StartTimer()
		if err := s.Compact(s.Rev()); err != nil {
			b.Fatal(err)
		}
	}
}
