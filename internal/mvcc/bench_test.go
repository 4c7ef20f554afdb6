package mvcc

import (
	"fmt"
	"testing"
)

func BenchmarkPut(b *testing.B) {
	s := NewStore()
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key-%08d", i))
	}
	value := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := s.Write()
		w.Put(keys[i&(len(keys)-1)], value, 0)
		w.End()
	}
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
