package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Snapshot file format, version 1: what Maintenance.Snapshot streams and
// `etcdctl snapshot save` / `concord snapshot save` write to disk, and what
// `concord snapshot restore` reads. Integers are big-endian.
//
//	offset 0   8 bytes   magic "CNCDSNAP"
//	offset 8   uint32    format version (1)
//	offset 12  uint64    length L of the state blob
//	offset 20  L bytes   the state: an apply.Applier.Snapshot blob (applied
//	                     index, member table, alarms, leases, the mvcc store;
//	                     itself CRC-32C checked)
//	then       zero bytes up to the next multiple of 512
//	last       32 bytes  SHA-256 of every preceding byte
//
// The tail follows etcd's convention: a snapshot stream ends with the
// SHA-256 of what came before, and a file whose size is 32 more than a
// multiple of 512 carries that hash (etcdutl's rule for "has a hash").
// etcd's own files are bbolt databases; Concord's are not, so the two
// tools cannot restore each other's files.
const (
	snapFileMagic   = "CNCDSNAP"
	snapFileVersion = 1
	snapFileHeader  = 20
	snapFileAlign   = 512
)

// ErrBadSnapshotFile means a file is not a Concord snapshot, is damaged, or
// was cut short.
var ErrBadSnapshotFile = errors.New("server: bad snapshot file")

// EncodeSnapshotFile wraps a state blob in the snapshot file format.
func EncodeSnapshotFile(blob []byte) []byte {
	n := snapFileHeader + len(blob)
	padded := (n + snapFileAlign - 1) / snapFileAlign * snapFileAlign
	out := make([]byte, 0, padded+sha256.Size)
	out = append(out, snapFileMagic...)
	out = binary.BigEndian.AppendUint32(out, snapFileVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(len(blob)))
	out = append(out, blob...)
	out = append(out, make([]byte, padded-n)...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...)
}

// DecodeSnapshotFile checks a snapshot file's hash, magic, version and
// padding and returns the state blob inside (aliasing data).
func DecodeSnapshotFile(data []byte) ([]byte, error) {
	if len(data) < snapFileHeader+sha256.Size {
		return nil, fmt.Errorf("%w: only %d bytes", ErrBadSnapshotFile, len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		if !bytes.HasPrefix(data, []byte(snapFileMagic)) {
			return nil, fmt.Errorf("%w: not a Concord snapshot (an etcd bbolt snapshot cannot be restored by Concord)", ErrBadSnapshotFile)
		}
		return nil, fmt.Errorf("%w: SHA-256 mismatch (file damaged or truncated)", ErrBadSnapshotFile)
	}
	if string(body[:8]) != snapFileMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrBadSnapshotFile, body[:8])
	}
	if v := binary.BigEndian.Uint32(body[8:12]); v != snapFileVersion {
		return nil, fmt.Errorf("%w: unsupported format version %d", ErrBadSnapshotFile, v)
	}
	l := binary.BigEndian.Uint64(body[12:20])
	if l > uint64(len(body)-snapFileHeader) {
		return nil, fmt.Errorf("%w: state length %d beyond the file", ErrBadSnapshotFile, l)
	}
	end := snapFileHeader + int(l)
	if len(body)%snapFileAlign != 0 || len(body)-end >= snapFileAlign {
		return nil, fmt.Errorf("%w: bad padding", ErrBadSnapshotFile)
	}
	for _, b := range body[end:] {
		if b != 0 {
			return nil, fmt.Errorf("%w: bad padding", ErrBadSnapshotFile)
		}
	}
	return body[snapFileHeader:end], nil
}
