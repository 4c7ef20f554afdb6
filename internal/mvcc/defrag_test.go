package mvcc

import (
	"bytes"
	"fmt"
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
	}
}
