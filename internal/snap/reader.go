package snap

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	iofs "io/fs"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
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
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, name, fmt.Sprintf(format, args...))
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("snap: stat %s: %w", name, err)
	}
	var h [headerSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, corrupt("file shorter than its header")
		}
		return nil, fmt.Errorf("snap: read %s: %w", name, err)
	}
	switch {
	case !bytes.Equal(h[0:8], magic[:]):
		return nil, corrupt("bad magic")
	case le.Uint32(h[8:12]) != formatVersion:
		return nil, corrupt("unsupported version %d", le.Uint32(h[8:12]))
	case le.Uint32(h[20:24]) != 0:
		return nil, corrupt("reserved header bytes not zero")
	}
	metaLen := uint64(le.Uint32(h[16:20]))
	dataLen := le.Uint64(h[24:32])
	body := uint64(st.Size()) - headerSize
	if st.Size() < headerSize || metaLen > body || dataLen != body-metaLen {
		return nil, corrupt("header says %d+%d bytes, file holds %d", metaLen, dataLen, body)
	}
	meta := make([]byte, metaLen)
	if _, err := io.ReadFull(f, meta); err != nil {
		return nil, fmt.Errorf("snap: read %s: %w", name, err)
	}
	md := &raftpb.SnapshotMetadata{}
	if err := proto.Unmarshal(meta, md); err != nil {
		return nil, corrupt("decode metadata: %v", err)
	}
	if md.GetIndex() != index || md.GetTerm() != term {
		return nil, corrupt("metadata says index %d term %d", md.GetIndex(), md.GetTerm())
	}
	crc := crc32.Update(0, crcTable, h[16:32])
	return &Reader{
		f:    f,
		name: name,
		md:   md,
		size: int64(dataLen),
		left: int64(dataLen),
		crc:  crc32.Update(crc, crcTable, meta),
		want: le.Uint32(h[12:16]),
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
