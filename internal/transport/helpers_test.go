package transport

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// waitLimit bounds every wait in these tests; a correct run takes far less.
const waitLimit = 10 * time.Second

type snapReport struct {
	id     uint64
	failed bool
}

// recorder is a Handler that records everything on channels.
type recorder struct {
	msgs        chan *raftpb.Message
	unreachable chan uint64
	down        chan uint64
	snaps       chan snapReport
	nUnreach    atomic.Int64
	nDown       atomic.Int64
	// onSnap, if set, runs in Process for MsgSnap before it is recorded.
	onSnap func(m *raftpb.Message)
}

func newRecorder() *recorder {
	return &recorder{
		msgs:        make(chan *raftpb.Message, 1<<16),
		unreachable: make(chan uint64, 1024),
		down:        make(chan uint64, 1024),
		snaps:       make(chan snapReport, 64),
	}
}

func (r *recorder) Process(m *raftpb.Message) {
	if m.GetType() == raftpb.MsgSnap && r.onSnap != nil {
		r.onSnap(m)
	}
	select {
	case r.msgs <- m:
	default:
		panic("recorder: message buffer full")
	}
}

func (r *recorder) ReportUnreachable(id uint64) {
	r.nUnreach.Add(1)
	select {
	case r.unreachable <- id:
	default:
	}
}

func (r *recorder) ReportDown(id uint64) {
	r.nDown.Add(1)
	select {
	case r.down <- id:
	default:
	}
}

func (r *recorder) ReportSnapshot(id uint64, failed bool) {
	r.snaps <- snapReport{id, failed}
}

func (r *recorder) next(t testing.TB) *raftpb.Message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for a message")
		return nil
	}
}

func (r *recorder) nextSnapReport(t testing.TB) snapReport {
	t.Helper()
	select {
	case s := <-r.snaps:
		return s
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for ReportSnapshot")
		return snapReport{}
	}
}

func (r *recorder) waitUnreachable(t testing.TB, id uint64) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case got := <-r.unreachable:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("timed out waiting for ReportUnreachable(%d)", id)
		}
	}
}

func (r *recorder) waitDown(t testing.TB, id uint64) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case got := <-r.down:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("timed out waiting for ReportDown(%d)", id)
		}
	}
}

// waitSent waits until m's stream to peer id has counted n messages sent
// (or waitLimit passes) and returns its status.
func waitSent(t testing.TB, m *member, id uint64, n uint64) PeerStatus {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitLimit)
	for {
		s, _ := m.tr.PeerStatus(id)
		if s.Sent >= n {
			return s
		}
		select {
		case <-tick.C:
		case <-deadline:
			return s
		}
	}
}

func (r *recorder) expectNoMessage(t testing.TB) {
	t.Helper()
	select {
	case m := <-r.msgs:
		t.Fatalf("unexpected message %v", m)
	default:
	}
}

// logLines collects every record logged through a logSink, as one line of
// message plus attributes, and lets a test wait for a line.
type logLines struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func newLogLines() *logLines { return &logLines{changed: make(chan struct{}, 1)} }

// logSink is the slog.Handler feeding a logLines; derived loggers share the
// root and carry their attributes as a prefix.
type logSink struct {
	root  *logLines
	attrs string
}

func (logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message + s.attrs)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	s.root.mu.Lock()
	s.root.lines = append(s.root.lines, b.String())
	s.root.mu.Unlock()
	select {
	case s.root.changed <- struct{}{}:
	default:
	}
	return nil
}

func (s logSink) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(s.attrs)
	for _, a := range as {
		b.WriteString(" " + a.String())
	}
	return logSink{root: s.root, attrs: b.String()}
}

func (s logSink) WithGroup(string) slog.Handler { return s }

// waitFor waits until a logged line contains every one of subs.
func (s *logLines) waitFor(t testing.TB, subs ...string) string {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		s.mu.Lock()
		for _, l := range s.lines {
			ok := true
			for _, sub := range subs {
				if !strings.Contains(l, sub) {
					ok = false
					break
				}
			}
			if ok {
				s.mu.Unlock()
				return l
			}
		}
		s.mu.Unlock()
		select {
		case <-s.changed:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("no log line contains %q; got:\n%s", subs, strings.Join(s.lines, "\n"))
		}
	}
}

type member struct {
	tr   *Transport
	rec  *recorder
	addr string
	logs *logLines
}

// startMember creates a transport serving on a fresh loopback port, closed
// at the end of the test.
func startMember(t testing.TB, id uint64, modify ...func(*Config)) *member {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startMemberOn(t, id, ln, modify...)
}

func startMemberOn(t testing.TB, id uint64, ln net.Listener, modify ...func(*Config)) *member {
	t.Helper()
	logs := newLogLines()
	cfg := Config{
		ID:          id,
		ClusterID:   0xC0C0,
		DialTimeout: 2 * time.Second,
		MinBackoff:  5 * time.Millisecond,
		MaxBackoff:  50 * time.Millisecond,
		Logger:      slog.New(logSink{root: logs}),
	}
	for _, f := range modify {
		f(&cfg)
	}
	rec := newRecorder()
	tr, err := New(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	tr.Serve(ln)
	t.Cleanup(func() { tr.Close() })
	return &member{tr: tr, rec: rec, addr: ln.Addr().String(), logs: logs}
}

func connect(ms ...*member) {
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				a.tr.AddPeer(b.tr.cfg.ID, b.addr)
			}
		}
	}
}

func msg(typ raftpb.MessageType, from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{
		Type:  typ.Enum(),
		From:  proto.Uint64(from),
		To:    proto.Uint64(to),
		Term:  proto.Uint64(1),
		Index: proto.Uint64(index),
	}
}

func appMsg(from, to, index uint64, payload []byte) *raftpb.Message {
	m := msg(raftpb.MsgApp, from, to, index)
	m.Entries = []*raftpb.Entry{{
		Term:  proto.Uint64(1),
		Index: proto.Uint64(index + 1),
		Type:  raftpb.EntryNormal.Enum(),
		Data:  payload,
	}}
	return m
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
