package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func frame(m *raftpb.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func helloBytes(kind streamKind, cluster, from, to uint64) []byte {
	b := hello{version: protocolVersion, kind: kind, clusterID: cluster, from: from, to: to}.marshal()
	return b[:]
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestMalformedInboundClosesConnection feeds raw bytes to a member and checks
// that it answers as documented, closes the connection, delivers nothing and
// keeps serving. Every input is exactly what the member reads before giving
// up, so its close is a clean FIN rather than a reset.
func TestMalformedInboundClosesConnection(t *testing.T) {
	const self, cluster = 2, 0xC0C0
	b := startMember(t, self, func(c *Config) {
		c.MaxMessageBytes = 1024
		c.MaxSnapshotBytes = 4096
	})
	accept := appendReply(nil, replyAccept, "")
	okMsg := msg(raftpb.MsgHeartbeat, 1, self, 0)
	snapHeader := msg(raftpb.MsgSnap, 1, self, 0)
	snapHeader.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1)}}
	badVersion := helloBytes(kindMessage, cluster, 1, self)
	badVersion[4] = 9
	reserved := helloBytes(kindMessage, cluster, 1, self)
	reserved[6] = 1
	msgHello := helloBytes(kindMessage, cluster, 1, self)
	snapHello := helloBytes(kindSnapshot, cluster, 1, self)

	tests := []struct {
		name string
		in   []byte
		// halfClose ends our side after writing, for inputs the member can
		// only recognise as truncated.
		halfClose bool
		// reply is what the member must answer before closing.
		reply     []byte
		replyCode replyCode // checked instead of reply when reply is nil and code is not accept
	}{
		{name: "http request", in: []byte("GET / HTTP/1.1\r\nHost: concord\r\n\r\n")[:helloLen]},
		{name: "short hello", in: []byte("CNCD\x01\x01"), halfClose: true},
		{name: "nothing", halfClose: true},
		{name: "reserved bytes set", in: reserved},
		{name: "bad version", in: badVersion, replyCode: replyBadVersion},
		{name: "other cluster", in: helloBytes(kindMessage, 0xBAD, 1, self), replyCode: replyClusterMismatch},
		{name: "other member", in: helloBytes(kindMessage, cluster, 1, 3), replyCode: replyWrongMember},
		{name: "unknown kind", in: helloBytes(7, cluster, 1, self), replyCode: replyBadKind},
		{name: "sender 0", in: helloBytes(kindMessage, cluster, 0, self), replyCode: replyBadSender},
		{name: "sender is self", in: helloBytes(kindMessage, cluster, self, self), replyCode: replyBadSender},
		{name: "zero-length frame", in: cat(msgHello, []byte{0, 0, 0, 0}), reply: accept},
		{name: "oversized frame", in: cat(msgHello, []byte{0, 0, 4, 1}), reply: accept},
		{name: "max uint32 frame", in: cat(msgHello, []byte{0xff, 0xff, 0xff, 0xff}), reply: accept},
		{name: "garbage protobuf", in: cat(msgHello, []byte{0, 0, 0, 3, 0xff, 0xff, 0xff}), reply: accept},
		{name: "truncated varint", in: cat(msgHello, []byte{0, 0, 0, 1, 0x10}), reply: accept},
		{name: "truncated frame header", in: cat(msgHello, []byte{0, 0}), halfClose: true, reply: accept},
		{name: "truncated frame body", in: cat(msgHello, []byte{0, 0, 0, 9, 0x08}), halfClose: true, reply: accept},
		{name: "spoofed sender", in: cat(msgHello, frame(msg(raftpb.MsgHeartbeat, 3, self, 0))), reply: accept},
		{name: "misaddressed", in: cat(msgHello, frame(msg(raftpb.MsgHeartbeat, 1, 3, 0))), reply: accept},
		{name: "snapshot stream without snapshot", in: cat(snapHello, frame(okMsg)), reply: accept},
		{name: "snapshot over cap", in: cat(snapHello, frame(snapHeader), binary.BigEndian.AppendUint64(nil, 4097)), reply: accept},
		{name: "snapshot huge length", in: cat(snapHello, frame(snapHeader), binary.BigEndian.AppendUint64(nil, 1<<63)), reply: accept},
		{name: "snapshot truncated", in: cat(snapHello, frame(snapHeader), binary.BigEndian.AppendUint64(nil, 10), []byte("abc")), halfClose: true, reply: accept},
		{name: "snapshot bad checksum", in: cat(snapHello, frame(snapHeader), binary.BigEndian.AppendUint64(nil, 3), []byte("abc"), []byte{1, 2, 3, 4}),
			reply: cat(accept, []byte{snapshotAckNotOK})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tt.in); err != nil {
				t.Fatal(err)
			}
			if tt.halfClose {
				conn.(*net.TCPConn).CloseWrite()
			}
			conn.SetReadDeadline(time.Now().Add(waitLimit))
			got, err := io.ReadAll(conn)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("member did not close the connection; read %x", got)
			}
			switch {
			case tt.reply != nil:
				if string(got) != string(tt.reply) {
					t.Errorf("reply = %x, want %x", got, tt.reply)
				}
			case tt.replyCode != replyAccept:
				if len(got) < replyHeaderLen || replyCode(got[1]) != tt.replyCode {
					t.Errorf("reply = %q, want code %v", got, tt.replyCode)
				}
			default:
				if len(got) != 0 {
					t.Errorf("reply = %x, want none", got)
				}
			}
			b.rec.expectNoMessage(t)
		})
	}

	// The member still works.
	a := startMember(t, 1)
	a.tr.AddPeer(self, b.addr)
	a.tr.Send([]*raftpb.Message{okMsg})
	if m := b.rec.next(t); m.GetType() != raftpb.MsgHeartbeat {
		t.Errorf("after malformed inputs got %v", m)
	}
}

// TestHandshakeTimeout checks that a dialer that never finishes its hello is
// cut off after DialTimeout.
func TestHandshakeTimeout(t *testing.T) {
	b := startMember(t, 2, func(c *Config) { c.DialTimeout = 50 * time.Millisecond })
	conn, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("CNCD"))
	conn.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := io.ReadAll(conn); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("member kept a stalled handshake open")
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(frame(msg(raftpb.MsgHeartbeat, 1, 2, 3)))
	f.Add(frame(appMsg(1, 2, 3, []byte("data"))))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		var hdr [frameHeaderLen]byte
		m, _, err := readFrame(bytes.NewReader(in), hdr[:], nil, 1<<16)
		if err == nil && m == nil {
			t.Fatal("readFrame returned neither message nor error")
		}
		if err == nil {
			// What decodes must re-encode to a frame that decodes equal.
			m2, _, err := readFrame(bytes.NewReader(frame(m)), hdr[:], nil, 1<<20)
			if err != nil || !proto.Equal(m, m2) {
				t.Fatalf("re-decode = %v, %v; want %v", m2, err, m)
			}
		}
	})
}

func FuzzParseHello(f *testing.F) {
	f.Add(helloBytes(kindMessage, 1, 2, 3))
	f.Fuzz(func(t *testing.T, in []byte) {
		var b [helloLen]byte
		copy(b[:], in)
		h, err := parseHello(&b)
		if err != nil {
			return
		}
		if h.marshal() != b {
			t.Fatalf("marshal(parseHello(%x)) = %x", b, h.marshal())
		}
		check(h, 2, 1)
	})
}
