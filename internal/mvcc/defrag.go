package mvcc

// DefaultDefragBatch is the number of keys Defragment rewrites per hold of
// the write lock: small enough that a write waits well under a millisecond.
const DefaultDefragBatch = 1024

// Defragment releases the slack the index accumulated: a key's version slice
// grows by appending (Go doubles its capacity), so a key written many times
// holds up to twice the versions it retains. Defragment gives every such key
// an exact-size slice, so the old arrays become garbage. It changes nothing a
// reader can observe (revision, hash, serialization, Size are unchanged).
//
// Unlike etcd's defragmentation, which rewrites the whole bbolt file while
// the member serves nothing, it walks the index in batches of batch keys
// (<= 0: DefaultDefragBatch), taking the write lock once per batch, so reads
// and writes continue between batches. It returns the bytes of version
// capacity released. Safe to run concurrently with everything else.
func (s *Store) Defragment(batch int) (released int64) {
	if batch <= 0 {
		batch = DefaultDefragBatch
	}
	var (
		from  []byte
		items []keyIndex
	)
	for started := false; ; started = true {
		items = items[:0]
		s.mu.Lock()
		s.tree.Ascend(probe(from), func(ki keyIndex) bool {
			if started && string(ki.key()) == string(from) {
				return true // the last key of the previous batch
			}
			items = append(items, ki)
			return len(items) < batch
		})
		// The tree must not change while it is iterated: rewrite afterwards.
		for _, ki := range items {
			if spare := ki.vsCap - ki.vsLen; spare > 0 {
				vs := make([]version, ki.vsLen)
				copy(vs, ki.versions())
				ki.setVersions(vs)
				s.tree.Set(ki)
				released += int64(spare) * versionOverhead
			}
		}
		s.mu.Unlock()
		if len(items) < batch {
			return released
		}
		from = items[len(items)-1].key()
	}
}
