package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"

	"go.etcd.io/raft/v3/raftpb"
)

// Record framing; doc.go explains every byte.
const (
	recordHeaderSize = 16
	recordAlign      = 8

	// maxPayload bounds one record so that a garbled length field can never
	// make the reader allocate or hash more than a segment's worth of bytes,
	// and so that the length always fits the uint32 on disk.
	maxPayload = math.MaxInt32 - recordHeaderSize - recordAlign
)

// Record types (byte 8 of the record header). Zero is never valid, so a run
// of zeros never decodes as a record.
const (
	recSegmentHeader byte = 1
	recEntry         byte = 2
	recHardState     byte = 3
	recSnapshotMark  byte = 4
)

// flagBatchEnd marks the last record of a batch (one Save, one
// SaveSnapshotMark, or one segment header group). A batch without it at the
// tail of the log was never acknowledged.
const flagBatchEnd byte = 1

// Fixed payload sizes.
const (
	entryFixedSize     = 20 // term(8) index(8) type(4), then data
	hardStateSize      = 24 // term(8) vote(8) commit(8)
	snapshotMarkSize   = 16 // index(8) term(8)
	segmentHeaderFixed = 32 // magic(8) version(4) reserved(4) seq(8) firstIndex(8), then metadata
	formatVersion      = 1
)

// segmentMagic opens the payload of every segment header record.
var segmentMagic = [8]byte{'C', 'O', 'N', 'C', 'W', 'A', 'L', 0}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var le = binary.LittleEndian

// Reasons a record fails to decode. They never leave the package bare: the
// reader wraps them into a *CorruptError (or decides the tail is torn).
var (
	errShortHeader = errors.New("truncated record header")
	errBadType     = errors.New("unknown record type")
	errBadFlags    = errors.New("unknown record flags")
	errReserved    = errors.New("reserved header bytes not zero")
	errShortRecord = errors.New("record extends past end of file")
	errCRC         = errors.New("crc mismatch")
	errPadding     = errors.New("padding bytes not zero")
)

// record is one decoded frame. payload aliases the buffer it was decoded
// from.
type record struct {
	typ     byte
	flags   byte
	batch   uint32
	payload []byte
	size    int // header + payload + padding
}

func paddedLen(n int) int { return (n + recordAlign - 1) &^ (recordAlign - 1) }

// recordSize is the on-disk size of a record with an n-byte payload.
func recordSize(n int) int { return recordHeaderSize + paddedLen(n) }

// sealRecord fills in the header, the padding and the checksum of rec, whose
// payload (rec[16:16+plen]) the caller has already written. rec must be
// exactly recordSize(plen) long.
func sealRecord(rec []byte, typ, flags byte, batch uint32, plen int) {
	le.PutUint32(rec[4:8], uint32(plen))
	rec[8] = typ
	rec[9] = flags
	rec[10] = 0
	rec[11] = 0
	le.PutUint32(rec[12:16], batch)
	clear(rec[recordHeaderSize+plen:])
	le.PutUint32(rec[0:4], crc32.Checksum(rec[4:recordHeaderSize+plen], crcTable))
}

// decodeRecord decodes the record at the start of b. It never panics and
// never allocates; on error the returned record is meaningless.
func decodeRecord(b []byte) (record, error) {
	if len(b) < recordHeaderSize {
		return record{}, errShortHeader
	}
	plen := le.Uint32(b[4:8])
	typ, flags := b[8], b[9]
	if typ < recSegmentHeader || typ > recSnapshotMark {
		return record{}, errBadType
	}
	if flags&^flagBatchEnd != 0 {
		return record{}, errBadFlags
	}
	if b[10] != 0 || b[11] != 0 {
		return record{}, errReserved
	}
	if uint64(plen) > maxPayload {
		return record{}, errShortRecord
	}
	size := recordSize(int(plen))
	if size > len(b) {
		return record{}, errShortRecord
	}
	end := recordHeaderSize + int(plen)
	if crc32.Checksum(b[4:end], crcTable) != le.Uint32(b[0:4]) {
		return record{}, errCRC
	}
	for _, c := range b[end:size] {
		if c != 0 {
			return record{}, errPadding
		}
	}
	return record{
		typ:     typ,
		flags:   flags,
		batch:   le.Uint32(b[12:16]),
		payload: b[recordHeaderSize:end],
		size:    size,
	}, nil
}

// plausibleHeader is a cheap filter used while scanning past a bad record
// for later valid ones: it rejects almost all non-record positions before
// any checksum is computed.
func plausibleHeader(b []byte) bool {
	return len(b) >= recordHeaderSize &&
		b[8] >= recSegmentHeader && b[8] <= recSnapshotMark &&
		b[9]&^flagBatchEnd == 0 && b[10] == 0 && b[11] == 0
}

// Payload codecs. Encoders write into a caller-provided slice of the exact
// size; decoders validate sizes and return errPayload-style reasons.

var (
	errEntryPayload     = errors.New("entry payload too short")
	errHardStatePayload = errors.New("hard state payload has wrong size")
	errMarkPayload      = errors.New("snapshot mark payload has wrong size")
	errHeaderPayload    = errors.New("segment header payload too short")
	errHeaderMagic      = errors.New("segment header has wrong magic")
	errHeaderVersion    = errors.New("segment header has unsupported version")
)

func entryPayloadLen(e *raftpb.Entry) int { return entryFixedSize + len(e.GetData()) }

func putEntry(p []byte, e *raftpb.Entry) {
	le.PutUint64(p[0:8], e.GetTerm())
	le.PutUint64(p[8:16], e.GetIndex())
	le.PutUint32(p[16:20], uint32(e.GetType()))
	copy(p[entryFixedSize:], e.GetData())
}

// entryFields is the fixed part of a decoded entry; data aliases the payload.
type entryFields struct {
	term, index uint64
	typ         raftpb.EntryType
	data        []byte
}

func decodeEntry(p []byte) (entryFields, error) {
	if len(p) < entryFixedSize {
		return entryFields{}, errEntryPayload
	}
	return entryFields{
		term:  le.Uint64(p[0:8]),
		index: le.Uint64(p[8:16]),
		typ:   raftpb.EntryType(int32(le.Uint32(p[16:20]))),
		data:  p[entryFixedSize:],
	}, nil
}

// hardState is raftpb.HardState without the protobuf machinery, so it can be
// copied and compared.
type hardState struct{ term, vote, commit uint64 }

func (h hardState) isEmpty() bool { return h == hardState{} }

func hardStateOf(hs *raftpb.HardState) hardState {
	return hardState{term: hs.GetTerm(), vote: hs.GetVote(), commit: hs.GetCommit()}
}

func (h hardState) proto() *raftpb.HardState {
	if h.isEmpty() {
		return &raftpb.HardState{}
	}
	box := &struct {
		hs raftpb.HardState
		v  hardState
	}{v: h}
	box.hs.Term, box.hs.Vote, box.hs.Commit = &box.v.term, &box.v.vote, &box.v.commit
	return &box.hs
}

func putHardState(p []byte, h hardState) {
	le.PutUint64(p[0:8], h.term)
	le.PutUint64(p[8:16], h.vote)
	le.PutUint64(p[16:24], h.commit)
}

func decodeHardState(p []byte) (hardState, error) {
	if len(p) != hardStateSize {
		return hardState{}, errHardStatePayload
	}
	return hardState{term: le.Uint64(p[0:8]), vote: le.Uint64(p[8:16]), commit: le.Uint64(p[16:24])}, nil
}

func putMark(p []byte, m SnapshotMark) {
	le.PutUint64(p[0:8], m.Index)
	le.PutUint64(p[8:16], m.Term)
}

func decodeMark(p []byte) (SnapshotMark, error) {
	if len(p) != snapshotMarkSize {
		return SnapshotMark{}, errMarkPayload
	}
	return SnapshotMark{Index: le.Uint64(p[0:8]), Term: le.Uint64(p[8:16])}, nil
}

type segmentHeader struct {
	seq, firstIndex uint64
	metadata        []byte // aliases the payload
}

func putSegmentHeader(p []byte, h segmentHeader) {
	copy(p[0:8], segmentMagic[:])
	le.PutUint32(p[8:12], formatVersion)
	le.PutUint32(p[12:16], 0)
	le.PutUint64(p[16:24], h.seq)
	le.PutUint64(p[24:32], h.firstIndex)
	copy(p[segmentHeaderFixed:], h.metadata)
}

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	if len(p) < segmentHeaderFixed {
		return segmentHeader{}, errHeaderPayload
	}
	if !bytes.Equal(p[0:8], segmentMagic[:]) {
		return segmentHeader{}, errHeaderMagic
	}
	if le.Uint32(p[8:12]) != formatVersion || le.Uint32(p[12:16]) != 0 {
		return segmentHeader{}, errHeaderVersion
	}
	return segmentHeader{
		seq:        le.Uint64(p[16:24]),
		firstIndex: le.Uint64(p[24:32]),
		metadata:   p[segmentHeaderFixed:],
	}, nil
}
