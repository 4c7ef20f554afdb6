package transport

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The handshake is documented byte by byte in doc.go; keep the two in step.
const (
	handshakeMagic   = "CNCD"
	protocolVersion  = 1
	helloLen         = 32
	replyHeaderLen   = 4
	maxReasonLen     = 1024
	frameHeaderLen   = 4
	snapshotAckOK    = 0x01
	snapshotAckNotOK = 0x00
)

// streamKind says what a connection carries after the handshake.
type streamKind uint8

const (
	kindMessage  streamKind = 1
	kindSnapshot streamKind = 2
)

func (k streamKind) String() string {
	switch k {
	case kindMessage:
		return "message"
	case kindSnapshot:
		return "snapshot"
	case kindRequest:
		return "request"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// hello is the dialer's opening.
type hello struct {
	version   uint8
	kind      streamKind
	clusterID uint64
	from      uint64
	to        uint64
}

func (h hello) marshal() [helloLen]byte {
	var b [helloLen]byte
	copy(b[0:4], handshakeMagic)
	b[4] = h.version
	b[5] = uint8(h.kind)
	// b[6:8] reserved, zero.
	binary.BigEndian.PutUint64(b[8:16], h.clusterID)
	binary.BigEndian.PutUint64(b[16:24], h.from)
	binary.BigEndian.PutUint64(b[24:32], h.to)
	return b
}

// parseHello decodes the fixed part of a hello. It checks only what makes the
// bytes not a Concord hello at all (magic, reserved bytes); whether this
// member accepts it is decided by Transport.check, so that the refusal can be
// explained to the dialer.
func parseHello(b *[helloLen]byte) (hello, error) {
	if string(b[0:4]) != handshakeMagic {
		return hello{}, fmt.Errorf("%w: magic %q", ErrBadHandshake, b[0:4])
	}
	if b[6] != 0 || b[7] != 0 {
		return hello{}, fmt.Errorf("%w: reserved bytes %#x %#x not zero", ErrBadHandshake, b[6], b[7])
	}
	return hello{
		version:   b[4],
		kind:      streamKind(b[5]),
		clusterID: binary.BigEndian.Uint64(b[8:16]),
		from:      binary.BigEndian.Uint64(b[16:24]),
		to:        binary.BigEndian.Uint64(b[24:32]),
	}, nil
}

// replyCode is the acceptor's verdict on a hello.
type replyCode uint8

const (
	replyAccept          replyCode = 0
	replyBadVersion      replyCode = 1
	replyClusterMismatch replyCode = 2
	replyWrongMember     replyCode = 3
	replyBadKind         replyCode = 4
	replyBadSender       replyCode = 5
)

func (c replyCode) String() string {
	switch c {
	case replyAccept:
		return "accepted"
	case replyBadVersion:
		return "unsupported version"
	case replyClusterMismatch:
		return "cluster id mismatch"
	case replyWrongMember:
		return "wrong member"
	case replyBadKind:
		return "unknown stream kind"
	case replyBadSender:
		return "bad sender id"
	case replyRemoved:
		return "member removed"
	default:
		return fmt.Sprintf("code(%d)", uint8(c))
	}
}

// appendReply encodes the acceptor's answer: version, code, reason length,
// reason.
func appendReply(b []byte, code replyCode, reason string) []byte {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	b = append(b, protocolVersion, uint8(code))
	b = binary.BigEndian.AppendUint16(b, uint16(len(reason)))
	return append(b, reason...)
}

// readReply reads the acceptor's answer.
func readReply(r io.Reader) (version uint8, code replyCode, reason string, err error) {
	var h [replyHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, "", fmt.Errorf("read handshake reply: %w", err)
	}
	n := binary.BigEndian.Uint16(h[2:4])
	if n > maxReasonLen {
		return 0, 0, "", fmt.Errorf("%w: reply reason length %d", ErrBadHandshake, n)
	}
	text := make([]byte, n)
	if _, err := io.ReadFull(r, text); err != nil {
		return 0, 0, "", fmt.Errorf("read handshake reason: %w", err)
	}
	return h[0], replyCode(h[1]), string(text), nil
}

// check decides whether this member accepts h and, if not, why. The reason
// is written for the dialer's operator, who sees it in their log.
func check(h hello, self, clusterID uint64) (replyCode, string) {
	if h.version == protocolVersion {
		if code, reason, ok := checkRequest(h, clusterID); ok {
			return code, reason
		}
	}
	switch {
	case h.version != protocolVersion:
		return replyBadVersion, fmt.Sprintf("version %d not supported; member %d speaks version %d", h.version, self, protocolVersion)
	case h.clusterID != clusterID:
		return replyClusterMismatch, fmt.Sprintf("cluster id mismatch: dialer is in cluster %x, member %d is in cluster %x", h.clusterID, self, clusterID)
	case h.to != self:
		return replyWrongMember, fmt.Sprintf("dialer wants member %d, this is member %d", h.to, self)
	case h.kind != kindMessage && h.kind != kindSnapshot:
		return replyBadKind, fmt.Sprintf("unknown stream kind %d", uint8(h.kind))
	case h.from == 0 || h.from == self:
		return replyBadSender, fmt.Sprintf("dialer claims member id %d", h.from)
	}
	return replyAccept, ""
}
