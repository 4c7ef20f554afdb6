package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{ID: 1, ClusterID: 7}
	tests := []struct {
		name   string
		modify func(*Config)
		valid  bool
	}{
		{"minimal", func(*Config) {}, true},
		{"all set", func(c *Config) {
			c.QueueSize, c.DialTimeout, c.IOTimeout = 8, time.Second, time.Second
			c.MinBackoff, c.MaxBackoff = time.Millisecond, time.Second
			c.MaxMessageBytes, c.MaxSnapshotBytes = 1<<20, 1<<30
		}, true},
		{"zero id", func(c *Config) { c.ID = 0 }, false},
		{"zero cluster", func(c *Config) { c.ClusterID = 0 }, false},
		{"negative queue", func(c *Config) { c.QueueSize = -1 }, false},
		{"negative dial timeout", func(c *Config) { c.DialTimeout = -1 }, false},
		{"negative io timeout", func(c *Config) { c.IOTimeout = -1 }, false},
		{"min above max backoff", func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }, false},
		{"negative max message", func(c *Config) { c.MaxMessageBytes = -1 }, false},
		{"huge max message", func(c *Config) { c.MaxMessageBytes = maxFrameLimit + 1 }, false},
		{"negative max snapshot", func(c *Config) { c.MaxSnapshotBytes = -1 }, false},
	}
	for _, tt := range tests {
		c := ok
		tt.modify(&c)
		err := c.Validate()
		if (err == nil) != tt.valid {
			t.Errorf("Validate(%s) = %v, want valid %t", tt.name, err, tt.valid)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%s) = %v, want ErrInvalidConfig", tt.name, err)
		}
		if _, err := New(c, newRecorder()); (err == nil) != tt.valid {
			t.Errorf("New(%s) = %v, want valid %t", tt.name, err, tt.valid)
		}
	}
	if _, err := New(ok, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New(nil handler) = %v, want ErrInvalidConfig", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{ID: 1, ClusterID: 1}.withDefaults()
	if c.QueueSize != 4096 || c.MaxBackoff != time.Second || c.MinBackoff != 50*time.Millisecond ||
		c.MaxMessageBytes != 64<<20 || c.MaxSnapshotBytes != 8<<30 || c.Logger == nil {
		t.Errorf("withDefaults() = %+v", c)
	}
	c = Config{ID: 1, ClusterID: 1, MaxBackoff: 10 * time.Millisecond}.withDefaults()
	if c.MinBackoff != 10*time.Millisecond {
		t.Errorf("MinBackoff with MaxBackoff 10ms = %v, want 10ms", c.MinBackoff)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		jitter float64
		want   []time.Duration
	}{
		{0, []time.Duration{25, 50, 100, 200, 400, 500, 500}},
		{0.5, []time.Duration{37, 75, 150, 300, 600, 750, 750}},
		{0.999, []time.Duration{49, 99, 199, 399, 799, 999, 999}},
	}
	for _, tt := range tests {
		b := backoff{min: 50 * time.Millisecond, max: time.Second}
		for i, w := range tt.want {
			got := b.next(tt.jitter)
			// Compare in whole milliseconds; jitter is a float.
			if got/time.Millisecond != w {
				t.Errorf("backoff jitter %v step %d = %v, want %vms", tt.jitter, i, got, int64(w))
			}
		}
		b.reset()
		if got := b.next(0); got != 25*time.Millisecond {
			t.Errorf("after reset next(0) = %v, want 25ms", got)
		}
	}
}

func TestHandshakeCheck(t *testing.T) {
	const self, cluster = 2, 0xAB
	good := hello{version: protocolVersion, kind: kindMessage, clusterID: cluster, from: 1, to: self}
	tests := []struct {
		name   string
		modify func(*hello)
		want   replyCode
	}{
		{"message stream", func(*hello) {}, replyAccept},
		{"snapshot stream", func(h *hello) { h.kind = kindSnapshot }, replyAccept},
		{"version 2", func(h *hello) { h.version = 2 }, replyBadVersion},
		{"other cluster", func(h *hello) { h.clusterID = 0xCD }, replyClusterMismatch},
		{"other member", func(h *hello) { h.to = 3 }, replyWrongMember},
		{"kind 0", func(h *hello) { h.kind = 0 }, replyBadKind},
		{"kind 9", func(h *hello) { h.kind = 9 }, replyBadKind},
		{"from 0", func(h *hello) { h.from = 0 }, replyBadSender},
		{"from self", func(h *hello) { h.from = self }, replyBadSender},
	}
	for _, tt := range tests {
		h := good
		tt.modify(&h)
		b := h.marshal()
		parsed, err := parseHello(&b)
		if err != nil || parsed != h {
			t.Fatalf("parseHello(marshal(%+v)) = %+v, %v", h, parsed, err)
		}
		code, reason := check(parsed, self, cluster)
		if code != tt.want {
			t.Errorf("check(%s) = %v (%q), want %v", tt.name, code, reason, tt.want)
		}
		if (code == replyAccept) != (reason == "") {
			t.Errorf("check(%s) reason = %q for code %v", tt.name, reason, code)
		}
		r := appendReply(nil, code, reason)
		v, gotCode, gotReason, err := readReply(bytes.NewReader(r))
		if err != nil || v != protocolVersion || gotCode != code || gotReason != reason {
			t.Errorf("readReply(appendReply(%v, %q)) = %d, %v, %q, %v", code, reason, v, gotCode, gotReason, err)
		}
	}

	bad := good.marshal()
	bad[0] = 'X'
	if _, err := parseHello(&bad); !errors.Is(err, ErrBadHandshake) {
		t.Errorf("parseHello(bad magic) = %v, want ErrBadHandshake", err)
	}
	bad = good.marshal()
	bad[7] = 1
	if _, err := parseHello(&bad); !errors.Is(err, ErrBadHandshake) {
		t.Errorf("parseHello(reserved set) = %v, want ErrBadHandshake", err)
	}
}

func TestSnapshotHeaderKeepsAllButData(t *testing.T) {
	m := msg(raftpb.MsgSnap, 1, 2, 10)
	m.LogTerm, m.Commit, m.Vote, m.Reject, m.RejectHint = proto.Uint64(3), proto.Uint64(4), proto.Uint64(5), proto.Bool(true), proto.Uint64(6)
	m.Context = []byte("ctx")
	m.Snapshot = &raftpb.Snapshot{
		Data: []byte("state machine"),
		Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(10), Term: proto.Uint64(1),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
	h := snapshotHeader(m)
	if h.Snapshot.Data != nil {
		t.Fatalf("header carries data %q", h.Snapshot.Data)
	}
	if m.Snapshot.Data == nil {
		t.Fatal("snapshotHeader modified the original")
	}
	h.Snapshot.Data = m.Snapshot.Data
	if !proto.Equal(h, m) {
		t.Errorf("snapshotHeader(m) + data = %v, want %v", h, m)
	}
}

// exchange sends n numbered messages from every member to every other, in
// Send calls of varying size, and checks each receiver sees every sender's
// messages once and in order.
func exchange(t *testing.T, n int, ms ...*member) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, a := range ms {
		for _, b := range ms {
			if a == b {
				continue
			}
			from, to := a.tr.cfg.ID, b.tr.cfg.ID
			for i := 0; i < n; {
				k := min(1+rnd.IntN(50), n-i)
				batch := make([]*raftpb.Message, k)
				for j := range batch {
					batch[j] = appMsg(from, to, uint64(i+j), []byte("payload"))
				}
				a.tr.Send(batch)
				i += k
			}
		}
	}
	for _, b := range ms {
		next := map[uint64]uint64{}
		for range n * (len(ms) - 1) {
			m := b.rec.next(t)
			if m.GetTo() != b.tr.cfg.ID {
				t.Fatalf("member %d got message to %d", b.tr.cfg.ID, m.GetTo())
			}
			if want := next[m.GetFrom()]; m.GetIndex() != want {
				t.Fatalf("member %d got index %d from %d, want %d", b.tr.cfg.ID, m.GetIndex(), m.GetFrom(), want)
			}
			next[m.GetFrom()]++
			if string(m.Entries[0].Data) != "payload" {
				t.Fatalf("entry data = %q", m.Entries[0].Data)
			}
		}
		b.rec.expectNoMessage(t)
	}
}

func TestTwoMembersExchangeInOrder(t *testing.T) {
	a, b := startMember(t, 1), startMember(t, 2)
	connect(a, b)
	exchange(t, 2000, a, b)
	if !a.tr.PeerConnected(2) || !b.tr.PeerConnected(1) {
		t.Errorf("PeerConnected = %t, %t after exchange, want true, true", a.tr.PeerConnected(2), b.tr.PeerConnected(1))
	}
	if a.tr.ActiveSince(2).IsZero() {
		t.Error("ActiveSince(2) is zero while connected")
	}
}

func TestThreeMembersExchangeInOrder(t *testing.T) {
	a, b, c := startMember(t, 1), startMember(t, 2), startMember(t, 3)
	connect(a, b, c)
	exchange(t, 1000, a, b, c)
}

// TestRelayedMessagesKeepTheirSender: raft on a follower passes proposals,
// read-index requests and leadership transfers on to its leader under the
// id of the member that sent them first (a member that has just stepped
// down relays what others had sent it as the leader). They arrive on the
// relaying member's stream with another From and must be delivered without
// breaking the stream; any other message with a foreign From still ends it.
func TestRelayedMessagesKeepTheirSender(t *testing.T) {
	a, b := startMember(t, 1), startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	b.rec.next(t)
	up := a.tr.ActiveSince(2)

	// As raft's stepFollower sends them: To is the leader, From and the
	// zero Term are the first sender's.
	relayed := func(typ raftpb.MessageType, data string) *raftpb.Message {
		m := &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(3), To: proto.Uint64(2)}
		if data != "" {
			m.Entries = []*raftpb.Entry{{Data: []byte(data)}}
		}
		return m
	}
	want := []*raftpb.Message{
		relayed(raftpb.MsgProp, "put k v"),
		relayed(raftpb.MsgReadIndex, "read ctx"),
		relayed(raftpb.MsgTransferLeader, ""),
		msg(raftpb.MsgHeartbeat, 1, 2, 1),
	}
	a.tr.Send(want)
	for _, w := range want {
		if got := b.rec.next(t); !proto.Equal(got, w) {
			t.Fatalf("got %v, want %v", got, w)
		}
	}
	if got := a.tr.ActiveSince(2); !got.Equal(up) {
		t.Errorf("the stream came up again at %v (first up at %v): a relayed message broke it", got, up)
	}

	a.tr.Send([]*raftpb.Message{appMsg(3, 2, 5, []byte("x"))})
	a.logs.waitFor(t, "message stream broke")
	b.rec.expectNoMessage(t)
}

// TestBatching queues messages before the stream is up, so the writer finds
// them all waiting and must write them in few batches, in order.
func TestBatching(t *testing.T) {
	const n = 10000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// b's listener accepts in the kernel but nobody answers the hello until
	// Serve, so a's writer is stuck in the handshake while Send queues.
	a := startMember(t, 1, func(c *Config) { c.QueueSize = n })
	a.tr.AddPeer(2, ln.Addr().String())
	batch := make([]*raftpb.Message, n)
	for i := range batch {
		batch[i] = appMsg(1, 2, uint64(i), make([]byte, 64))
	}
	a.tr.Send(batch)
	b := startMemberOn(t, 2, ln)
	for i := range n {
		if m := b.rec.next(t); m.GetIndex() != uint64(i) {
			t.Fatalf("message %d has index %d", i, m.GetIndex())
		}
	}
	// The writer counts a batch after its flush returns, which can be just
	// after the receiver has read it.
	s := waitSent(t, a, 2, n)
	if s.Sent != n || s.Dropped != 0 {
		t.Errorf("PeerStatus = %+v, want Sent %d, Dropped 0", s, n)
	}
	// All n were queued when the stream came up, so batches are full.
	if s.Batches == 0 || s.Batches > n/100 {
		t.Errorf("%d messages written in %d batches, want at most %d", n, s.Batches, n/100)
	}
}

func TestSendNeverBlocksOnDeadPeer(t *testing.T) {
	a := startMember(t, 1, func(c *Config) { c.QueueSize = 64 })
	a.tr.AddPeer(2, deadAddr(t))
	m := []*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)}
	start := time.Now()
	for range 100_000 {
		a.tr.Send(m)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("100k Sends to a dead peer took %v", d)
	}
	a.rec.waitUnreachable(t, 2)
	s, _ := a.tr.PeerStatus(2)
	if s.Dropped < 100_000-64 {
		t.Errorf("Dropped = %d, want at least %d", s.Dropped, 100_000-64)
	}
	if s.Connected {
		t.Error("Connected to a dead address")
	}
}

func TestSendToUnknownPeerIsDropped(t *testing.T) {
	a := startMember(t, 1)
	snap := msg(raftpb.MsgSnap, 1, 9, 0)
	snap.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1)}}
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 9, 0), snap})
	if got := a.rec.nextSnapReport(t); got != (snapReport{9, true}) {
		t.Errorf("ReportSnapshot = %+v, want {9 true}", got)
	}
	if _, ok := a.tr.PeerStatus(9); ok {
		t.Error("PeerStatus(9) found an unknown peer")
	}
}

func TestReconnectAfterPeerRestart(t *testing.T) {
	a, b := startMember(t, 1), startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	b.rec.next(t)

	if err := b.tr.Close(); err != nil {
		t.Fatal(err)
	}
	a.rec.waitUnreachable(t, 2)

	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("relisten on %s: %v", b.addr, err)
	}
	b2 := startMemberOn(t, 2, ln)

	// Messages sent while the stream is down may be lost; keep sending until
	// one gets through, then everything after it must arrive in order.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitLimit)
	var first uint64
	for i := uint64(1); ; i++ {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, i)})
		select {
		case m := <-b2.rec.msgs:
			first = m.GetIndex()
		case <-tick.C:
			continue
		case <-deadline:
			t.Fatal("no message reached the restarted peer")
		}
		break
	}
	if !a.tr.PeerConnected(2) {
		t.Error("PeerConnected(2) = false after reconnect")
	}
	var batch []*raftpb.Message
	for i := range uint64(100) {
		batch = append(batch, msg(raftpb.MsgHeartbeat, 1, 2, 1000+i))
	}
	a.tr.Send(batch)
	want := uint64(1000)
	for want < 1100 {
		m := b2.rec.next(t)
		if m.GetIndex() < 1000 {
			if m.GetIndex() <= first {
				t.Fatalf("index %d after %d", m.GetIndex(), first)
			}
			first = m.GetIndex()
			continue
		}
		if m.GetIndex() != want {
			t.Fatalf("index %d, want %d", m.GetIndex(), want)
		}
		want++
	}
}

// TestPeerDownOnlyWhenRefused checks ReportDown is the failure detector's
// strong evidence: a peer whose transport is closed refuses our redials and
// is reported down; a peer that answers the TCP dial but never completes the
// handshake (as a stopped or overloaded process would) is only unreachable.
func TestPeerDownOnlyWhenRefused(t *testing.T) {
	a, b := startMember(t, 1), startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	b.rec.next(t)
	if n := a.rec.nDown.Load(); n != 0 {
		t.Fatalf("ReportDown called %d times while the peer was up", n)
	}
	if err := b.tr.Close(); err != nil {
		t.Fatal(err)
	}
	a.rec.waitDown(t, 2)

	// A listener nobody accepts from: the kernel completes the TCP dial, and
	// the handshake times out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c := startMember(t, 1, func(c *Config) { c.DialTimeout = 20 * time.Millisecond })
	c.tr.AddPeer(3, silent.Addr().String())
	for range 3 {
		c.rec.waitUnreachable(t, 3)
	}
	if n := c.rec.nDown.Load(); n != 0 {
		t.Errorf("ReportDown called %d times for a peer that accepts but does not answer", n)
	}
}

// TestPeerDownReportedAtOnce: a stream that had been up for MinBackoff is
// redialed as soon as it breaks, so a peer whose process is gone is reported
// down within a round trip, not after a backoff; a peer that accepts the
// stream and at once drops it is redialed no faster than the backoff allows.
func TestPeerDownReportedAtOnce(t *testing.T) {
	const backoff = time.Second // each wait would be 0.5-1 s
	slow := func(c *Config) { c.MinBackoff, c.MaxBackoff = backoff, backoff }
	a, b := startMember(t, 1, slow), startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	b.rec.next(t)
	time.Sleep(backoff) // the stream has lasted MinBackoff
	closed := time.Now()
	if err := b.tr.Close(); err != nil {
		t.Fatal(err)
	}
	a.rec.waitDown(t, 2)
	if took := time.Since(closed); took >= backoff/2 {
		t.Errorf("ReportDown %v after the peer closed; want it before any backoff (%v at least)", took, backoff/2)
	}

	// A peer that completes the handshake and closes at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			var h [helloLen]byte
			if _, err := io.ReadFull(conn, h[:]); err == nil {
				conn.Write(appendReply(nil, replyAccept, ""))
			}
			conn.Close()
		}
	}()
	const short = 100 * time.Millisecond
	c := startMember(t, 1, func(c *Config) { c.MinBackoff, c.MaxBackoff = short, short })
	c.tr.AddPeer(3, ln.Addr().String())
	time.Sleep(10 * short)
	// One dial at once, then one per 50-100 ms: at most 21 in 1 s.
	if n := accepted.Load(); n < 2 || n > 21 {
		t.Errorf("%d dials in %v to a peer that drops every stream; want 2..21 (backoff %v)", n, 10*short, short)
	}
}

// TestPeerDownWhenResetAtHandshake: a dial whose connection is reset before
// the handshake's reply, as when a dying process's listener took it, is
// reported down like a refused one.
func TestPeerDownWhenResetAtHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			var h [helloLen]byte
			io.ReadFull(conn, h[:])
			conn.(*net.TCPConn).SetLinger(0) // close with RST
			conn.Close()
		}
	}()
	c := startMember(t, 1)
	c.tr.AddPeer(3, ln.Addr().String())
	c.rec.waitDown(t, 3)
}

func TestClusterIDMismatchRefused(t *testing.T) {
	a := startMember(t, 1)
	b := startMember(t, 2, func(c *Config) { c.ClusterID = 0xBAD })
	a.tr.AddPeer(2, b.addr)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})

	a.logs.waitFor(t, "ERROR", "refused", "cluster id mismatch", "c0c0", "bad")
	b.logs.waitFor(t, "refused", "cluster id mismatch", "c0c0", "bad")
	a.rec.waitUnreachable(t, 2)
	b.rec.expectNoMessage(t)

	_, err := a.tr.dial(a.tr.ctx, 2, b.addr, kindMessage)
	if !errors.Is(err, ErrRefused) {
		t.Errorf("dial = %v, want ErrRefused", err)
	}
}

// sourceWithVerdict is a SnapshotSource over data whose last Read returns
// end instead of io.EOF, as a snapshot file failing its checksum does.
type sourceWithVerdict struct {
	*bytes.Reader
	end    error
	closed *atomic.Bool
}

func (s sourceWithVerdict) Read(p []byte) (int, error) {
	n, err := s.Reader.Read(p)
	if err == io.EOF && s.end != nil {
		return n, s.end
	}
	return n, err
}

func (s sourceWithVerdict) Close() error { s.closed.Store(true); return nil }

// TestSnapshotStreamedFromSource: a MsgSnap without data is streamed from
// Config.SnapshotData's source and arrives whole; a source whose end says
// its data is bad fails the send, and the receiver never sees the message.
func TestSnapshotStreamedFromSource(t *testing.T) {
	data := make([]byte, 5<<20+3)
	for i := range data {
		data[i] = byte(i ^ i>>9)
	}
	var bad atomic.Bool
	var closed atomic.Bool
	a := startMember(t, 1, func(c *Config) {
		c.SnapshotData = func(index, term uint64) (SnapshotSource, error) {
			if index != 42 || term != 3 {
				return nil, fmt.Errorf("no snapshot %d/%d", index, term)
			}
			var end error
			if bad.Load() {
				end = errors.New("crc mismatch")
			}
			return sourceWithVerdict{bytes.NewReader(data), end, &closed}, nil
		}
	})
	b := startMember(t, 2)
	connect(a, b)
	snap := func() *raftpb.Message {
		m := msg(raftpb.MsgSnap, 1, 2, 0)
		m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(42), Term: proto.Uint64(3),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}},
		}}
		return m
	}

	a.tr.Send([]*raftpb.Message{snap()})
	if got := a.rec.nextSnapReport(t); got != (snapReport{2, false}) {
		t.Fatalf("ReportSnapshot = %+v, want {2 false}", got)
	}
	got := b.rec.next(t)
	if got.GetType() != raftpb.MsgSnap || !bytes.Equal(got.GetSnapshot().GetData(), data) {
		t.Fatalf("got %v with %d data bytes, want the snapshot's %d", got.GetType(), len(got.GetSnapshot().GetData()), len(data))
	}
	if !closed.Load() {
		t.Error("the source was not closed")
	}

	bad.Store(true)
	a.tr.Send([]*raftpb.Message{snap()})
	if got := a.rec.nextSnapReport(t); got != (snapReport{2, true}) {
		t.Fatalf("ReportSnapshot = %+v, want {2 true}", got)
	}
	a.logs.waitFor(t, "snapshot send failed", "crc mismatch")
	b.rec.expectNoMessage(t)
}

func TestLargeSnapshotWhileHeartbeatsFlow(t *testing.T) {
	a, b := startMember(t, 1), startMember(t, 2)
	connect(a, b)

	data := make([]byte, 32<<20)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rnd.Uint64())
	}
	snapIn := make(chan struct{})
	release := make(chan struct{})
	b.rec.onSnap = func(*raftpb.Message) {
		close(snapIn)
		<-release
	}
	// Runs before the Close registered by startMember, so a failing test
	// still lets the snapshot goroutine finish.
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})

	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{
		Data: data,
		Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(42), Term: proto.Uint64(3),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}},
		},
	}
	a.tr.Send([]*raftpb.Message{snap})
	select {
	case <-snapIn:
	case <-time.After(waitLimit):
		t.Fatal("snapshot did not arrive")
	}

	// The snapshot's stream is now held open by its receiver; heartbeats
	// must still flow on the message stream.
	for i := range uint64(20) {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, i)})
		if m := b.rec.next(t); m.GetType() != raftpb.MsgHeartbeat || m.GetIndex() != i {
			t.Fatalf("got %v, want heartbeat %d", m, i)
		}
	}
	select {
	case r := <-a.rec.snaps:
		t.Fatalf("ReportSnapshot %+v before the receiver acked", r)
	default:
	}

	released = true
	close(release)
	if got := a.rec.nextSnapReport(t); got != (snapReport{2, false}) {
		t.Fatalf("ReportSnapshot = %+v, want {2 false}", got)
	}
	got := b.rec.next(t)
	if got.GetType() != raftpb.MsgSnap {
		t.Fatalf("got %v, want the snapshot", got.GetType())
	}
	if !bytes.Equal(got.Snapshot.Data, data) {
		t.Fatal("snapshot data differs")
	}
	if !proto.Equal(got.Snapshot.Metadata, snap.Snapshot.Metadata) || got.GetTerm() != 1 {
		t.Errorf("snapshot metadata = %v, want %v", got.Snapshot.Metadata, snap.Snapshot.Metadata)
	}
}

func TestSnapshotToUnreachablePeerFails(t *testing.T) {
	a := startMember(t, 1)
	a.tr.AddPeer(2, deadAddr(t))
	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{Data: []byte("x"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1)}}
	a.tr.Send([]*raftpb.Message{snap})
	if got := a.rec.nextSnapReport(t); got != (snapReport{2, true}) {
		t.Errorf("ReportSnapshot = %+v, want {2 true}", got)
	}
	a.rec.waitUnreachable(t, 2)
}

func TestSnapshotOverReceiverCapFails(t *testing.T) {
	a := startMember(t, 1)
	b := startMember(t, 2, func(c *Config) { c.MaxSnapshotBytes = 1024 })
	connect(a, b)
	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{Data: make([]byte, 2048), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1)}}
	a.tr.Send([]*raftpb.Message{snap})
	if got := a.rec.nextSnapReport(t); got != (snapReport{2, true}) {
		t.Errorf("ReportSnapshot = %+v, want {2 true}", got)
	}
	b.logs.waitFor(t, "frame too large", "2048")
	b.rec.expectNoMessage(t)
}

func TestRemovePeer(t *testing.T) {
	a, b := startMember(t, 1), startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	b.rec.next(t)
	a.tr.RemovePeer(2)
	a.tr.RemovePeer(2) // idempotent
	if a.tr.PeerConnected(2) {
		t.Error("PeerConnected after RemovePeer")
	}
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)})
	// Re-adding works and the old message was not kept.
	a.tr.AddPeer(2, b.addr)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 2)})
	if m := b.rec.next(t); m.GetIndex() != 2 {
		t.Errorf("after re-add got index %d, want 2", m.GetIndex())
	}
}

func TestAddPeerAddressChange(t *testing.T) {
	a, b, c := startMember(t, 1), startMember(t, 2), startMember(t, 3, func(c *Config) { c.ID = 2 })
	a.tr.AddPeer(2, b.addr)
	a.tr.AddPeer(2, b.addr) // idempotent
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	b.rec.next(t)
	a.tr.AddPeer(2, c.addr)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)})
	if m := c.rec.next(t); m.GetIndex() != 1 {
		t.Errorf("after address change got index %d, want 1", m.GetIndex())
	}
	b.rec.expectNoMessage(t)
	if s, _ := a.tr.PeerStatus(2); s.Addr != c.addr {
		t.Errorf("PeerStatus(2).Addr = %s, want %s", s.Addr, c.addr)
	}
}

func TestCloseStopsAllGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	var ms []*member
	for id := uint64(1); id <= 3; id++ {
		ms = append(ms, startMember(t, id))
	}
	connect(ms...)
	ms[0].tr.AddPeer(9, deadAddr(t)) // a writer stuck in backoff
	exchange(t, 100, ms...)

	// A delivered snapshot.
	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{Data: make([]byte, 1<<20), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1)}}
	ms[0].tr.Send([]*raftpb.Message{snap})
	if got := ms[0].rec.nextSnapReport(t); got != (snapReport{2, false}) {
		t.Fatalf("ReportSnapshot = %+v, want {2 false}", got)
	}

	// A snapshot in flight to a peer that accepts it and then never acks:
	// Close must break it and report it failed.
	stalled, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	ms[0].tr.AddPeer(7, stalled.Addr().String())
	stuck := msg(raftpb.MsgSnap, 1, 7, 0)
	stuck.Snapshot = &raftpb.Snapshot{Data: make([]byte, 1<<20), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1)}}
	ms[0].tr.Send([]*raftpb.Message{stuck})
	// Both the message stream and the snapshot dial the stalled peer; accept
	// both, and read the snapshot's data so its sender is waiting for the ack.
	for gotSnap := false; !gotSnap; {
		conn, err := stalled.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var hb [helloLen]byte
		if _, err := io.ReadFull(conn, hb[:]); err != nil {
			t.Fatal(err)
		}
		h, err := parseHello(&hb)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(appendReply(nil, replyAccept, ""))
		if h.kind == kindSnapshot {
			if _, err := io.CopyN(io.Discard, conn, 1<<20); err != nil {
				t.Fatal(err)
			}
			gotSnap = true
		}
	}

	// A raw connection stuck in the handshake.
	raw, err := net.Dial("tcp", ms[2].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	for _, m := range ms {
		if err := m.tr.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		if n := m.tr.running.Load(); n != 0 {
			t.Errorf("member %d: %d goroutines running after Close", m.tr.cfg.ID, n)
		}
		if err := m.tr.Close(); err != nil {
			t.Errorf("second Close() = %v", err)
		}
	}
	if got := ms[0].rec.nextSnapReport(t); got != (snapReport{7, true}) {
		t.Errorf("ReportSnapshot after Close = %+v, want {7 true}", got)
	}
	// Goroutines that have signalled the WaitGroup may still be exiting.
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}

	// After Close, everything is a silent no-op.
	ms[0].tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	ms[0].tr.AddPeer(5, "127.0.0.1:1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms[0].tr.Serve(ln)
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve after Close left the listener open: %v", err)
	}
}
