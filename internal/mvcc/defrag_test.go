package mvcc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
)

func TestDefragmentKeepsStateAndReleasesSlack(t *testing.T) {
	for _, batch := range []int{1, 3, 0} {
		s := NewStore()
		for i := range 20 {
			for j := range 5 { // five versions each: append leaves spare capacity
				w := s.Write()
				w.Put([]byte(fmt.Sprintf("k%02d", i)), []byte(fmt.Sprintf("v%d", j)), 0)
				w.End()
			}
		}
		var before bytes.Buffer
		if _, err := s.WriteTo(&before); err != nil {
			t.Fatal(err)
		}
		hash, _, _ := s.Hash(0)
		size := s.Size()
		clone := s.Clone() // shares every node Defragment rewrites

		released := s.Defragment(batch)
		if released <= 0 {
			t.Errorf("batch %d: Defragment released %d bytes, want > 0", batch, released)
		}
		var after bytes.Buffer
		if _, err := s.WriteTo(&after); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before.Bytes(), after.Bytes()) {
			t.Errorf("batch %d: serialization changed by Defragment", batch)
		}
		if h, _, _ := s.Hash(0); h != hash {
			t.Errorf("batch %d: hash %d after Defragment, want %d", batch, h, hash)
		}
		if s.Size() != size {
			t.Errorf("batch %d: Size %d after Defragment, want %d", batch, s.Size(), size)
		}
		s.tree.Scan(func(ki keyIndex) bool {
			if ki.vsCap != ki.vsLen {
				t.Errorf("batch %d: key %s keeps cap %d for %d versions", batch, ki.key(), ki.vsCap, ki.vsLen)
			}
			return true
		})
		if again := s.Defragment(batch); again != 0 {
			t.Errorf("batch %d: second Defragment released %d, want 0", batch, again)
		}
		w := s.Write() // a write after Defragment must not reach the clone either
		w.Put([]byte("k00"), []byte("later"), 0)
		w.End()
		var cloned bytes.Buffer
		if _, err := clone.WriteTo(&cloned); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before.Bytes(), cloned.Bytes()) {
			t.Errorf("batch %d: a clone taken before Defragment changed", batch)
		}
	}
}

// TestDefragmentCompactsNodes: a tree grown in key order holds its items in
// arrays twice their size (tidwall splits a full node at its median and the
// left half keeps the whole array); Defragment's rewrite of every node gives
// each an array the size of its items, about 33 bytes per key here.
func TestDefragmentCompactsNodes(t *testing.T) {
	const n = 200_000
	s := NewStore()
	for k := range uint64(n) {
		w := s.Write()
		w.Put(binary.BigEndian.AppendUint64(nil, k), nil, 0)
		w.End()
	}
	heap := func() float64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	before := heap()
	s.Defragment(0)
	saved := (before - heap()) / n
	if saved < 20 {
		t.Errorf("Defragment freed %.1f heap bytes per key of a tree grown in key order, want at least 20", saved)
	}
	runtime.KeepAlive(s)
}
