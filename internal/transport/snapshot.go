package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"slices"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const (
	// snapshotChunk is the unit of snapshot IO: each chunk gets a fresh
	// IOTimeout, so a slow but moving transfer is not cut off.
	snapshotChunk = 1 << 20
	// snapshotInitialAlloc bounds what a receiver allocates on the sender's
	// word alone; beyond it the buffer grows only as data actually arrives.
	snapshotInitialAlloc = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// sendSnapshot is the goroutine Send starts for one MsgSnap. It streams m on
// a connection of its own and always ends with exactly one ReportSnapshot.
func (t *Transport) sendSnapshot(p *peer, m *raftpb.Message) {
	start := time.Now()
	log := t.log.With(slog.Uint64("peer", p.id), slog.String("addr", p.addr),
		slog.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()))
	src, err := t.snapshotSource(m)
	if err == nil {
		log = log.With(slog.Int64("bytes", src.Size()))
		err = t.writeSnapshot(p, m, src)
		src.Close()
	}
	if err != nil {
		if p.ctx.Err() == nil {
			log.Warn("transport: snapshot send failed", slog.Any("err", err))
			var opErr *net.OpError
			if errors.As(err, &opErr) || errors.Is(err, ErrRefused) {
				t.h.ReportUnreachable(p.id)
			}
		}
		t.h.ReportSnapshot(p.id, true)
		return
	}
	log.Info("transport: snapshot sent", slog.Duration("took", time.Since(start)))
	t.h.ReportSnapshot(p.id, false)
}

// snapshotSource returns the data of m's snapshot: the bytes m carries, or,
// when it carries none, the source Config.SnapshotData opens. m itself is
// shared with raft and is never modified.
func (t *Transport) snapshotSource(m *raftpb.Message) (SnapshotSource, error) {
	sn := m.GetSnapshot()
	if sn == nil || len(sn.GetData()) > 0 || t.cfg.SnapshotData == nil {
		return bytesSource{bytes.NewReader(sn.GetData())}, nil
	}
	md := sn.GetMetadata()
	src, err := t.cfg.SnapshotData(md.GetIndex(), md.GetTerm())
	if err != nil {
		return nil, fmt.Errorf("transport: read snapshot %d: %w", md.GetIndex(), err)
	}
	return src, nil
}

// bytesSource is a snapshot whose data is already in memory.
type bytesSource struct{ *bytes.Reader }

func (bytesSource) Close() error { return nil }

// writeSnapshot dials, streams the snapshot from src and waits for the ack.
func (t *Transport) writeSnapshot(p *peer, m *raftpb.Message, src SnapshotSource) error {
	if m.GetSnapshot() == nil {
		return fmt.Errorf("%w: MsgSnap without a snapshot", ErrBadFrame)
	}
	header := snapshotHeader(m)
	size := proto.Size(header)
	if size == 0 || size > t.cfg.MaxMessageBytes {
		return fmt.Errorf("%w: snapshot header %d bytes, cap %d", ErrFrameTooLarge, size, t.cfg.MaxMessageBytes)
	}
	dataLen := src.Size()
	buf := make([]byte, 0, frameHeaderLen+size+8)
	buf = binary.BigEndian.AppendUint32(buf, uint32(size))
	buf, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, header)
	if err != nil {
		return fmt.Errorf("%w: encode snapshot header: %w", ErrBadFrame, err)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(dataLen))

	conn, err := t.dial(p.ctx, p.id, p.addr, kindSnapshot)
	if err != nil {
		return err
	}
	defer conn.Close()
	stopClose := closeOnDone(p.ctx, conn)
	defer stopClose()

	write := func(b []byte) error {
		if err := conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout)); err != nil {
			return err
		}
		_, err := conn.Write(b)
		return err
	}
	if err := write(buf); err != nil {
		return fmt.Errorf("transport: write snapshot header: %w", err)
	}
	// On any error below the deferred Close ends the stream before its
	// CRC, so the receiver cannot mistake a partial snapshot for a whole.
	chunk := make([]byte, min(dataLen, snapshotChunk))
	var crc uint32
	var sent int64
	for sent < dataLen {
		k, err := src.Read(chunk[:min(int64(len(chunk)), dataLen-sent)])
		if k > 0 {
			if err := write(chunk[:k]); err != nil {
				return fmt.Errorf("transport: write snapshot at byte %d: %w", sent, err)
			}
			crc = crc32.Update(crc, crcTable, chunk[:k])
			sent += int64(k)
		}
		if err != nil && (!errors.Is(err, io.EOF) || sent < dataLen) {
			return fmt.Errorf("transport: read snapshot at byte %d of %d: %w", sent, dataLen, err)
		}
	}
	// The source's verdict on what it gave: a checked source fails here
	// rather than with io.EOF.
	if k, err := src.Read(chunk[:cap(chunk)]); k > 0 || !errors.Is(err, io.EOF) {
		if err == nil {
			err = fmt.Errorf("%d bytes past the %d it announced", k, dataLen)
		}
		return fmt.Errorf("transport: read snapshot end: %w", err)
	}
	if err := write(binary.BigEndian.AppendUint32(nil, crc)); err != nil {
		return fmt.Errorf("transport: write snapshot checksum: %w", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(t.cfg.IOTimeout)); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return fmt.Errorf("transport: read snapshot ack: %w", err)
	}
	if ack[0] != snapshotAckOK {
		return fmt.Errorf("%w by member %d (ack %#x)", ErrSnapshotRejected, p.id, ack[0])
	}
	return nil
}

// snapshotHeader returns a message equal to m except that its snapshot has
// no data. It shares every other field with m (read-only), so that a field
// added to raftpb.Message later still travels without a change here.
func snapshotHeader(m *raftpb.Message) *raftpb.Message {
	h := new(raftpb.Message)
	dst := h.ProtoReflect()
	src := m.ProtoReflect()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	if u := src.GetUnknown(); len(u) > 0 {
		dst.SetUnknown(u)
	}
	if s := m.GetSnapshot(); s != nil {
		h.Snapshot = &raftpb.Snapshot{Metadata: s.Metadata}
	}
	return h
}

// receiveSnapshot reads one snapshot stream, hands the message to the
// Handler and acknowledges it.
func (t *Transport) receiveSnapshot(conn net.Conn, from uint64) error {
	br := bufio.NewReaderSize(conn, readBufferSize)
	deadline := func() error { return conn.SetReadDeadline(time.Now().Add(t.cfg.IOTimeout)) }
	if err := deadline(); err != nil {
		return err
	}
	var hdr [frameHeaderLen]byte
	m, _, err := readFrame(br, hdr[:], nil, t.cfg.MaxMessageBytes)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: snapshot stream ended before its header", ErrBadFrame)
		}
		return err
	}
	if m.GetType() != raftpb.MsgSnap || m.GetSnapshot() == nil || m.GetFrom() != from || m.GetTo() != t.cfg.ID {
		return fmt.Errorf("%w: %s %d->%d with snapshot %t on snapshot stream %d->%d",
			ErrBadFrame, m.GetType(), m.GetFrom(), m.GetTo(), m.GetSnapshot() != nil, from, t.cfg.ID)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
		return fmt.Errorf("%w: read snapshot length: %w", ErrBadFrame, err)
	}
	n := binary.BigEndian.Uint64(lenBuf[:])
	if n > uint64(t.cfg.MaxSnapshotBytes) || n > uint64(maxInt) {
		return fmt.Errorf("%w: snapshot of %d bytes, cap %d", ErrFrameTooLarge, n, t.cfg.MaxSnapshotBytes)
	}
	data, crc, err := readChunked(br, int(n), deadline)
	if err != nil {
		return fmt.Errorf("%w: read snapshot data: %w", ErrBadFrame, err)
	}
	var crcBuf [4]byte
	if _, err := io.ReadFull(br, crcBuf[:]); err != nil {
		return fmt.Errorf("%w: read snapshot checksum: %w", ErrBadFrame, err)
	}
	if want := binary.BigEndian.Uint32(crcBuf[:]); want != crc {
		conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout))
		conn.Write([]byte{snapshotAckNotOK})
		return fmt.Errorf("%w: snapshot checksum %08x, sender says %08x", ErrBadFrame, crc, want)
	}
	if n > 0 {
		m.Snapshot.Data = data
	}
	t.log.Info("transport: snapshot received", slog.Uint64("peer", from),
		slog.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()), slog.Uint64("bytes", n))
	t.h.Process(m)
	if err := conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte{snapshotAckOK}); err != nil {
		return fmt.Errorf("transport: write snapshot ack: %w", err)
	}
	return nil
}

const maxInt = int(^uint(0) >> 1)

// readChunked reads exactly n bytes in chunks, refreshing the read deadline
// before each, and returns them with their CRC-32C. It allocates at most
// snapshotInitialAlloc up front and grows only as bytes arrive, so a peer
// announcing a huge snapshot and then stalling costs little.
func readChunked(r io.Reader, n int, deadline func() error) ([]byte, uint32, error) {
	data := make([]byte, 0, min(n, snapshotInitialAlloc))
	var crc uint32
	for len(data) < n {
		if len(data) == cap(data) {
			data = slices.Grow(data, min(n-len(data), len(data)))
		}
		want := min(cap(data)-len(data), snapshotChunk, n-len(data))
		if err := deadline(); err != nil {
			return nil, 0, err
		}
		k, err := io.ReadFull(r, data[len(data):len(data)+want])
		crc = crc32.Update(crc, crcTable, data[len(data):len(data)+k])
		data = data[:len(data)+k]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, 0, err
		}
	}
	return data, crc, nil
}
