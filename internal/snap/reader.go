package snap

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	iofs "io/fs"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// Reader streams the data of one snapshot file, for sending it to a peer
// without holding the whole state in memory (Load reads the file at once,
// as a restart needs). Open checks everything but the CRC up front; the CRC
// covers the data too, so Read computes it as the data goes by and, instead
// of io.EOF, returns an error matching ErrCorrupt at the end of a file that
// fails it. A caller must therefore read to io.EOF before trusting what it
// read; the bytes before that are unverified.
//
// Open takes the Snapshotter's lock only to open the file: a Purge that
// removes it while it is being read does not disturb the open file.
type Reader struct {
	f    vfs.File
	name string
	md   *raftpb.SnapshotMetadata
	size int64  // data bytes
	left int64  // data bytes not yet read
	crc  uint32 // running CRC-32C from offset 16
	want uint32 // the header's CRC
}

// Open opens the snapshot with exactly this index and term for streaming.
// Errors are as Load's.
func (s *Snapshotter) Open(index, term uint64) (*Reader, error) {
	name := fileName(term, index)
	s.mu.Lock()
	f, err := s.fs.Open(s.fs.PathJoin(s.dir, name))
	s.mu.Unlock()
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("snap: open %s: %w", name, err)
	}
	r, err := openReader(f, name, index, term)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func openReader(f vfs.File, name string, index, term uint64) (*Reader, error) {
	corrupt := func(err error) error { return fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err) }
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("snap: stat %s: %w", name, err)
	}
	var h [headerSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("snap: read %s: %w", name, err)
	}
	fh, err := parseHeader(h[:], uint64(st.Size()))
	if err != nil {
		return nil, corrupt(err)
	}
	meta := make([]byte, fh.metaLen)
	if _, err := io.ReadFull(f, meta); err != nil {
		return nil, fmt.Errorf("snap: read %s: %w", name, err)
	}
	md, err := decodeMeta(meta)
	if err == nil {
		err = checkNamed(md, index, term)
	}
	if err != nil {
		return nil, corrupt(err)
	}
	crc := crc32.Update(0, crcTable, h[16:32])
	return &Reader{
		f:    f,
		name: name,
		md:   md,
		size: int64(fh.dataLen),
		left: int64(fh.dataLen),
		crc:  crc32.Update(crc, crcTable, meta),
		want: fh.crc,
	}, nil
}

// Metadata is the snapshot's metadata, as stored in the file.
func (r *Reader) Metadata() *raftpb.SnapshotMetadata { return r.md }

// Size is the number of data bytes Read returns before io.EOF.
func (r *Reader) Size() int64 { return r.size }

// Read reads the data. At its end it returns io.EOF if the file's CRC
// matched, and an error matching ErrCorrupt if not.
func (r *Reader) Read(p []byte) (int, error) {
	if r.left == 0 {
		if r.crc != r.want {
			return 0, fmt.Errorf("%w: %s: crc mismatch", ErrCorrupt, r.name)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.f.Read(p)
	r.crc = crc32.Update(r.crc, crcTable, p[:n])
	r.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if r.left > 0 {
			return n, fmt.Errorf("%w: %s: file ended %d bytes early", ErrCorrupt, r.name, r.left)
		}
		err = nil // the next Read reports the CRC's verdict
	}
	if err != nil {
		return n, fmt.Errorf("snap: read %s: %w", r.name, err)
	}
	return n, nil
}

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }
