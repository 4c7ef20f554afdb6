package mvcc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Hash returns a CRC-32C over every retained version with mod_revision <= rev
// (rev 0 = the current revision), in key order and, per key, revision order,
// together with the compaction revision. Retained versions include each key's
// surviving version at or below the compaction revision, so the hash covers
// the full state readable at rev. Two stores that applied the same writes and
// compactions return the same hash for the same rev, whatever their current
// revisions; callers compare hashes only when compaction revisions match.
func (s *Store) Hash(rev int64) (hash uint32, compactRev int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rev == 0 {
		rev = s.rev
	}
	if rev > s.rev {
		return 0, s.compactRev, ErrFutureRev
	}
	if rev < s.compactRev {
		return 0, s.compactRev, ErrCompacted
	}
	var (
		crc uint32
		buf []byte
	)
	s.tree.Scan(func(ki keyIndex) bool {
		vs := ki.versions()
		for i := range vs {
			v := &vs[i]
			if v.mod > rev {
				break
			}
			buf = appendVersion(buf[:0], ki.key(), v)
			crc = crc32.Update(crc, castagnoli, buf)
			crc = crc32.Update(crc, castagnoli, v.value())
		}
		return true
	})
	return crc, s.compactRev, nil
}

// appendVersion encodes one version, minus its value bytes, for Hash.
func appendVersion(b, key []byte, v *version) []byte {
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendVarint(b, v.mod)
	b = binary.AppendVarint(b, v.create)
	b = binary.AppendVarint(b, v.ver)
	b = binary.AppendVarint(b, v.lease)
	return binary.AppendUvarint(b, uint64(v.valLen))
}

// Serialization format, version 2. Fixed-width integers are big-endian;
// "uvarint"/"varint" are encoding/binary's (zig-zag for varint).
//
//	offset 0   8 bytes  magic "CNCDMVCC"
//	offset 8   uint32   format version (2; 1 is still read)
//	offset 12  int64    revision
//	offset 20  int64    compaction revision
//	offset 28  uint64   number of keys K
//	then K keys, ascending by key bytes:
//	  uvarint  key length, key bytes
//	  uvarint  number of versions V (>= 1)
//	  V versions, ascending by mod revision:
//	    varint mod revision, varint create revision, varint version (0 = tombstone),
//	    varint lease, uvarint sub-revision (absent in version 1, read as 0),
//	    uvarint value length, value bytes
//	trailer    uint32   CRC-32C (Castagnoli) of every preceding byte
//
// Nothing may follow the trailer.
const (
	snapMagic   = "CNCDMVCC"
	snapVersion = 2
	// snapVersionNoSub is the previous format, without sub-revisions. A store
	// restored from it orders the events of one revision by key in history
	// reads (the write order was not recorded).
	snapVersionNoSub = 1
	// maxSnapBytes bounds any single key or value so a corrupt length fails
	// cleanly instead of allocating without limit.
	maxSnapBytes = 256 << 20
)

// ErrCorruptSnapshot is returned by Restore for input that is not a valid
// serialization.
var ErrCorruptSnapshot = errors.New("mvcc: corrupt snapshot")

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteTo writes the whole store in the format above. It holds the read lock
// for the duration, so writers wait; reads proceed.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cw := &countWriter{w: w}
	h := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(cw, h), 64<<10)

	var buf []byte
	buf = append(buf, snapMagic...)
	buf = binary.BigEndian.AppendUint32(buf, snapVersion)
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.rev))
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.compactRev))
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.tree.Len()))
	if _, err := bw.Write(buf); err != nil {
		return cw.n, fmt.Errorf("mvcc: write snapshot: %w", err)
	}
	var werr error
	s.tree.Scan(func(ki keyIndex) bool {
		key, vs := ki.key(), ki.versions()
		buf = binary.AppendUvarint(buf[:0], uint64(len(key)))
		buf = append(buf, key...)
		buf = binary.AppendUvarint(buf, uint64(len(vs)))
		for i := range vs {
			v := &vs[i]
			buf = binary.AppendVarint(buf, v.mod)
			buf = binary.AppendVarint(buf, v.create)
			buf = binary.AppendVarint(buf, v.ver)
			buf = binary.AppendVarint(buf, v.lease)
			buf = binary.AppendUvarint(buf, uint64(v.sub))
			buf = binary.AppendUvarint(buf, uint64(v.valLen))
			if _, werr = bw.Write(buf); werr != nil {
				return false
			}
			if _, werr = bw.Write(v.value()); werr != nil {
				return false
			}
			buf = buf[:0]
		}
		return true
	})
	if werr == nil {
		werr = bw.Flush()
	}
	if werr != nil {
		return cw.n, fmt.Errorf("mvcc: write snapshot: %w", werr)
	}
	// The trailer bypasses the hash: it is the hash.
	if _, err := cw.Write(binary.BigEndian.AppendUint32(nil, h.Sum32())); err != nil {
		return cw.n, fmt.Errorf("mvcc: write snapshot: %w", err)
	}
	return cw.n, nil
}

// snapReader reads the serialization while keeping a running CRC-32C of
// every byte consumed (not merely buffered), so the trailer can be checked.
type snapReader struct {
	r   *bufio.Reader
	crc uint32 // inverted running state, as crc32's table update keeps it
}

func (d *snapReader) ReadByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err != nil {
		return 0, err
	}
	d.crc = castagnoli[byte(d.crc)^b] ^ (d.crc >> 8)
	return b, nil
}

func (d *snapReader) full(p []byte) error {
	if _, err := io.ReadFull(d.r, p); err != nil {
		return err
	}
	d.crc = ^crc32.Update(^d.crc, castagnoli, p)
	return nil
}

func (d *snapReader) bytes(n uint64) ([]byte, error) {
	if n > maxSnapBytes {
		return nil, fmt.Errorf("%w: length %d too large", ErrCorruptSnapshot, n)
	}
	if n == 0 {
		return nil, nil
	}
	p := make([]byte, n)
	return p, d.full(p)
}

func (d *snapReader) uvarint() (uint64, error) { return binary.ReadUvarint(d) }
func (d *snapReader) varint() (int64, error)   { return binary.ReadVarint(d) }

// Restore replaces the store's contents with a serialization produced by
// WriteTo. The input is parsed and verified completely before the swap, so on
// error the store is unchanged. It holds the write lock only for the swap.
func (s *Store) Restore(r io.Reader) error {
	n, err := readSnapshot(r)
	if err != nil {
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%w: truncated", ErrCorruptSnapshot)
		case errors.Is(err, ErrCorruptSnapshot):
			return err
		}
		return fmt.Errorf("mvcc: restore: %w", err)
	}
	s.mu.Lock()
	s.tree, s.tombs, s.rev, s.compactRev, s.size = n.tree, n.tombs, n.rev, n.compactRev, n.size
	s.mu.Unlock()
	return nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptSnapshot}, args...)...)
}

// readSnapshot decodes a serialization into a fresh Store, which Restore
// swaps in only once all of it has been read and checked.
func readSnapshot(r io.Reader) (*Store, error) {
	d := &snapReader{r: bufio.NewReaderSize(r, 64<<10), crc: ^uint32(0)}
	hdr := make([]byte, 36)
	if err := d.full(hdr); err != nil {
		return nil, err
	}
	if string(hdr[:8]) != snapMagic {
		return nil, corrupt("bad magic %q", hdr[:8])
	}
	format := binary.BigEndian.Uint32(hdr[8:12])
	if format != snapVersion && format != snapVersionNoSub {
		return nil, fmt.Errorf("unsupported snapshot format version %d", format)
	}
	rev := int64(binary.BigEndian.Uint64(hdr[12:20]))
	compactRev := int64(binary.BigEndian.Uint64(hdr[20:28]))
	nkeys := binary.BigEndian.Uint64(hdr[28:36])
	if rev < 1 || compactRev < 0 || compactRev > rev {
		return nil, corrupt("revision %d, compaction revision %d", rev, compactRev)
	}
	t, tombs := newTree(), newTombTree()
	var size int64
	var prevKey []byte
	for k := uint64(0); k < nkeys; k++ {
		klen, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		key, err := d.bytes(klen)
		if err != nil {
			return nil, err
		}
		if k > 0 && string(key) <= string(prevKey) {
			return nil, corrupt("keys out of order at key %d", k)
		}
		prevKey = key
		nv, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if nv == 0 {
			return nil, corrupt("key %q has no versions", key)
		}
		var vs []version
		for j := uint64(0); j < nv; j++ {
			var v version
			for _, f := range []*int64{&v.mod, &v.create, &v.ver, &v.lease} {
				if *f, err = d.varint(); err != nil {
					return nil, err
				}
			}
			if format != snapVersionNoSub {
				sub, err := d.uvarint()
				if err != nil {
					return nil, err
				}
				if sub > math.MaxInt32 {
					return nil, corrupt("key %q: bad sub-revision %d", key, sub)
				}
				v.sub = int32(sub)
			}
			vlen, err := d.uvarint()
			if err != nil {
				return nil, err
			}
			val, err := d.bytes(vlen)
			if err != nil {
				return nil, err
			}
			v.setValue(val)
			if v.mod < 1 || v.mod > rev || (len(vs) > 0 && v.mod <= vs[len(vs)-1].mod) ||
				v.ver < 0 || (v.ver > 0 && (v.create < 1 || v.create > v.mod)) {
				return nil, corrupt("key %q: bad version %d", key, j)
			}
			vs = append(vs, v)
		}
		// Keys arrive ascending, so Load appends to the rightmost leaf.
		if vs[len(vs)-1].tombstone() {
			tombs.Load(key)
		}
		ki := indexItem(key, vs)
		size += keySize(&ki)
		t.Load(ki)
	}
	want := ^d.crc
	var trailer [4]byte
	if _, err := io.ReadFull(d.r, trailer[:]); err != nil {
		return nil, err
	}
	if got := binary.BigEndian.Uint32(trailer[:]); got != want {
		return nil, corrupt("checksum mismatch: stored %08x, computed %08x", got, want)
	}
	switch _, err := d.r.ReadByte(); {
	case err == nil:
		return nil, corrupt("trailing bytes after checksum")
	case err != io.EOF:
		return nil, err
	}
	return &Store{tree: t, tombs: tombs, rev: rev, compactRev: compactRev, size: size}, nil
}
