package transport

import (
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// fakeInterceptor applies a replaceable decision function and records who
// asked.
type fakeInterceptor struct {
	mu     sync.Mutex
	decide func(from, to uint64, typ raftpb.MessageType) Verdict
	froms  map[uint64]int
}

func newFakeInterceptor(decide func(from, to uint64, typ raftpb.MessageType) Verdict) *fakeInterceptor {
	return &fakeInterceptor{decide: decide, froms: map[uint64]int{}}
}

func (f *fakeInterceptor) Intercept(from, to uint64, typ raftpb.MessageType) Verdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.froms[from]++
	if f.decide == nil {
		return Verdict{}
	}
	return f.decide(from, to, typ)
}

func (f *fakeInterceptor) set(decide func(from, to uint64, typ raftpb.MessageType) Verdict) {
	f.mu.Lock()
	f.decide = decide
	f.mu.Unlock()
}

func withInterceptor(ic Interceptor) func(*Config) {
	return func(c *Config) { c.Interceptor = ic }
}

// wantIndexes reads len(want) messages and checks their types and indexes.
func wantIndexes(t *testing.T, r *recorder, want ...uint64) {
	t.Helper()
	for i, w := range want {
		m := r.next(t)
		if m.GetIndex() != w {
			t.Fatalf("message %d: got %v index %d, want index %d", i, m.GetType(), m.GetIndex(), w)
		}
	}
}

func TestInterceptDrop(t *testing.T) {
	ic := newFakeInterceptor(func(_, to uint64, typ raftpb.MessageType) Verdict {
		return Verdict{Drop: to == 2 && typ == raftpb.MsgVote}
	})
	a := startMember(t, 1, withInterceptor(ic))
	b := startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{
		msg(raftpb.MsgVote, 1, 2, 1), msg(raftpb.MsgApp, 1, 2, 2),
		msg(raftpb.MsgVote, 1, 2, 3), msg(raftpb.MsgApp, 1, 2, 4),
		msg(raftpb.MsgHeartbeat, 1, 2, 5),
	})
	// The heartbeat sent last arrives right after the two MsgApps: the
	// votes were dropped, not late.
	wantIndexes(t, b.rec, 2, 4, 5)
	ic.mu.Lock()
	froms := ic.froms[1]
	ic.mu.Unlock()
	if froms != 5 {
		t.Errorf("Intercept called %d times with from=1, want 5", froms)
	}
	if n := b.rec.nUnreach.Load() + a.rec.nUnreach.Load(); n != 0 {
		t.Errorf("a drop reported %d unreachable peers; drops are silent", n)
	}
}

func TestInterceptDelayOrder(t *testing.T) {
	const delay = 150 * time.Millisecond
	ic := newFakeInterceptor(func(_, _ uint64, typ raftpb.MessageType) Verdict {
		if typ == raftpb.MsgHeartbeat {
			return Verdict{Delay: delay}
		}
		return Verdict{}
	})
	a := startMember(t, 1, withInterceptor(ic))
	b := startMember(t, 2)
	connect(a, b)
	start := time.Now()
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1), msg(raftpb.MsgApp, 1, 2, 2)})
	wantIndexes(t, b.rec, 2, 1)
	if took := time.Since(start); took < delay {
		t.Errorf("delayed heartbeat arrived after %v, want at least %v", took, delay)
	}

	// A fixed delay keeps a link's order.
	ic.set(func(_, _ uint64, _ raftpb.MessageType) Verdict { return Verdict{Delay: 20 * time.Millisecond} })
	var batch []*raftpb.Message
	var want []uint64
	for i := uint64(10); i < 110; i++ {
		batch = append(batch, msg(raftpb.MsgApp, 1, 2, i))
		want = append(want, i)
	}
	a.tr.Send(batch[:50])
	a.tr.Send(batch[50:])
	wantIndexes(t, b.rec, want...)

	// Different delays (jitter) reorder: later messages with shorter delays
	// overtake earlier ones.
	ic.set(func(_, _ uint64, _ raftpb.MessageType) Verdict { return Verdict{} })
	var reversed []*raftpb.Message
	for i := uint64(0); i < 5; i++ {
		idx := 200 + i
		d := time.Duration(5-i) * 30 * time.Millisecond
		reversed = append(reversed, msg(raftpb.MsgApp, 1, 2, idx))
		ic.set(func(_, _ uint64, _ raftpb.MessageType) Verdict { return Verdict{Delay: d} })
		a.tr.Send(reversed[i : i+1])
	}
	wantIndexes(t, b.rec, 204, 203, 202, 201, 200)
	if n := a.tr.DelayedMessages(); n != 0 {
		t.Errorf("DelayedMessages() = %d after every delay passed", n)
	}
}

func TestInterceptDuplicate(t *testing.T) {
	ic := newFakeInterceptor(func(_, _ uint64, typ raftpb.MessageType) Verdict {
		if typ == raftpb.MsgApp {
			return Verdict{Copies: 1}
		}
		return Verdict{}
	})
	a := startMember(t, 1, withInterceptor(ic))
	b := startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1), msg(raftpb.MsgApp, 1, 2, 2), msg(raftpb.MsgHeartbeat, 1, 2, 3)})
	wantIndexes(t, b.rec, 1, 1, 2, 2, 3)

	// Delayed copies arrive too.
	ic.set(func(_, _ uint64, _ raftpb.MessageType) Verdict {
		return Verdict{Copies: 2, Delay: 10 * time.Millisecond}
	})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 4)})
	wantIndexes(t, b.rec, 4, 4, 4)
}

func TestInterceptPartitionStopsStream(t *testing.T) {
	ic := newFakeInterceptor(nil)
	a := startMember(t, 1, withInterceptor(ic))
	b := startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
	wantIndexes(t, b.rec, 1)

	ic.set(func(_, to uint64, _ raftpb.MessageType) Verdict { return Verdict{Drop: to == 2} })
	for i := uint64(2); i < 50; i++ {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, i), msg(raftpb.MsgHeartbeat, 1, 2, i)})
	}
	if !a.tr.PeerConnected(2) {
		t.Error("the stream went down under a partition; it should stay up and carry nothing")
	}
	// Heal: the first message to arrive is the one sent after it.
	ic.set(nil)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 100)})
	wantIndexes(t, b.rec, 100)
	b.rec.expectNoMessage(t)
}

func TestInterceptSnapshot(t *testing.T) {
	ic := newFakeInterceptor(func(_, _ uint64, typ raftpb.MessageType) Verdict {
		return Verdict{Drop: typ == raftpb.MsgSnap}
	})
	a := startMember(t, 1, withInterceptor(ic))
	b := startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 10, []byte("state"))})
	if r := a.rec.nextSnapReport(t); r != (snapReport{2, true}) {
		t.Errorf("dropped MsgSnap reported %+v, want {2 true}", r)
	}

	ic.set(func(_, _ uint64, typ raftpb.MessageType) Verdict {
		return Verdict{Delay: 50 * time.Millisecond, Copies: 3}
	})
	start := time.Now()
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 11, []byte("state"))})
	if r := a.rec.nextSnapReport(t); r != (snapReport{2, false}) {
		t.Errorf("delayed MsgSnap reported %+v, want {2 false}", r)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("delayed snapshot done after %v", took)
	}
	if m := b.rec.next(t); m.GetType() != raftpb.MsgSnap || m.GetSnapshot().GetMetadata().GetIndex() != 11 {
		t.Errorf("received %v, want the MsgSnap at 11", m)
	}
	// A MsgSnap is never copied: exactly one report, one delivery.
	select {
	case r := <-a.rec.snaps:
		t.Errorf("extra snapshot report %+v", r)
	case m := <-b.rec.msgs:
		t.Errorf("extra delivery %v", m)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestInterceptCloseDiscardsDelayed(t *testing.T) {
	ic := newFakeInterceptor(func(_, _ uint64, _ raftpb.MessageType) Verdict { return Verdict{Delay: time.Hour} })
	a := startMember(t, 1, withInterceptor(ic), func(c *Config) { c.QueueSize = 2 })
	b := startMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1), snapMsg(1, 2, 5, []byte("s"))})
	// The heap holds QueueSize×16 = 32; the rest is dropped as unreachable.
	var flood []*raftpb.Message
	for i := range uint64(40) {
		flood = append(flood, msg(raftpb.MsgApp, 1, 2, 10+i))
	}
	a.tr.Send(flood)
	a.rec.waitUnreachable(t, 2)
	if n := a.tr.DelayedMessages(); n != 32 {
		t.Errorf("DelayedMessages() = %d, want the cap 32", n)
	}
	if err := a.tr.Close(); err != nil {
		t.Fatal(err)
	}
	if r := a.rec.nextSnapReport(t); r != (snapReport{2, true}) {
		t.Errorf("MsgSnap held at Close reported %+v, want {2 true}", r)
	}
	if n := a.tr.running.Load(); n != 0 {
		t.Errorf("%d goroutines running after Close", n)
	}
	b.rec.expectNoMessage(t)
	// Send after Close does nothing, delayed or not.
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 99)})
	if n := a.tr.running.Load(); n != 0 {
		t.Errorf("%d goroutines running after a Send after Close", n)
	}
}

// snapMsg is a MsgSnap carrying data at index.
func snapMsg(from, to, index uint64, data []byte) *raftpb.Message {
	m := msg(raftpb.MsgSnap, from, to, 0)
	m.Snapshot = &raftpb.Snapshot{
		Data: data,
		Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(index), Term: proto.Uint64(1),
			ConfState: &raftpb.ConfState{Voters: []uint64{from, to}},
		},
	}
	return m
}
