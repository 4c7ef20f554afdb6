package transport

import (
	"container/heap"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Verdict is an Interceptor's decision about one outbound message. The zero
// Verdict sends it unchanged.
type Verdict struct {
	// Drop loses the message silently (a dropped MsgSnap is reported as a
	// failed snapshot, so raft retries it).
	Drop bool
	// Delay holds the message that long before it is queued for its peer.
	Delay time.Duration
	// Copies is the number of extra copies queued after the message; it is
	// ignored for MsgSnap, which gets exactly one ReportSnapshot.
	Copies int
}

// Interceptor judges outbound messages for fault injection (package faults
// implements the rules; package server adapts it).
type Interceptor interface {
	// Intercept is called by Send on the caller's goroutine, with the
	// Transport's read lock held, once per message to a known peer. It must
	// be fast, must not block and must not call into the Transport.
	Intercept(from, to uint64, typ raftpb.MessageType) Verdict
}

// delayedPerQueueSlot bounds the messages held for delay at once to
// QueueSize times this; beyond it a delayed message is dropped as if its
// peer's queue were full.
const delayedPerQueueSlot = 16

// delayQueue holds delayed messages until they are due. Its goroutine
// (runDelays) starts with the first delayed message and runs until Close.
type delayQueue struct {
	// mu guards the fields below; it is a leaf lock (taken under t.mu's
	// read lock in Send, alone in runDelays).
	mu      sync.Mutex
	items   delayHeap
	seq     uint64
	running bool
	// wake tells runDelays that the earliest due time may have changed.
	wake chan struct{}
}

type delayedMsg struct {
	due time.Time
	seq uint64 // equal due times keep their Send order
	m   *raftpb.Message
}

// delayHeap is a min-heap by (due, seq).
type delayHeap []delayedMsg

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayedMsg)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = delayedMsg{}
	*h = old[:len(old)-1]
	return x
}

// delayLocked holds n copies of m for d. The caller holds t.mu (read or
// write) and has seen closed false. It reports false when the delay queue
// is full.
func (t *Transport) delayLocked(m *raftpb.Message, n int, d time.Duration) bool {
	q := &t.delays
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items)+n > t.cfg.QueueSize*delayedPerQueueSlot {
		return false
	}
	due := time.Now().Add(d)
	for range n {
		q.seq++
		heap.Push(&q.items, delayedMsg{due: due, seq: q.seq, m: m})
	}
	if !q.running {
		q.running = true
		t.goLocked(t.runDelays)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// runDelays queues delayed messages for their peers when they are due. It
// ends when the Transport closes, failing the snapshots it still holds.
func (t *Transport) runDelays() {
	q := &t.delays
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var due []*raftpb.Message
	for {
		q.mu.Lock()
		now := time.Now()
		for len(q.items) > 0 && !q.items[0].due.After(now) {
			due = append(due, heap.Pop(&q.items).(delayedMsg).m)
		}
		wait := time.Duration(-1)
		if len(q.items) > 0 {
			wait = q.items[0].due.Sub(now)
		}
		q.mu.Unlock()
		if len(due) > 0 {
			if !t.send(due, nil) {
				t.failSnapshots(due)
			}
			clear(due)
			due = due[:0]
		}
		var fire <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-t.ctx.Done():
			timer.Stop()
			q.mu.Lock()
			for _, it := range q.items {
				due = append(due, it.m)
			}
			q.items = nil
			q.mu.Unlock()
			t.failSnapshots(due)
			return
		case <-q.wake:
		case <-fire:
		}
		timer.Stop()
	}
}

// failSnapshots reports every MsgSnap in msgs as failed: each was passed to
// Send before Close and is owed its one ReportSnapshot.
func (t *Transport) failSnapshots(msgs []*raftpb.Message) {
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			t.h.ReportSnapshot(m.GetTo(), true)
		}
	}
}

// DelayedMessages returns how many messages are held for delay now.
func (t *Transport) DelayedMessages() int {
	t.delays.mu.Lock()
	defer t.delays.mu.Unlock()
	return len(t.delays.items)
}
