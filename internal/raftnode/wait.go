package raftnode

import (
	"container/heap"
	"sync"
)

// appliedWaiters wakes goroutines waiting for the applied index to reach a
// target. Only waiters whose target was reached are woken, in target order,
// so thousands of waiting requests cost nothing per Ready that does not
// reach them.
type appliedWaiters struct {
	mu      sync.Mutex
	applied uint64
	h       waiterHeap
}

type appliedWaiter struct {
	index uint64
	pos   int // position in the heap, -1 once removed
	ch    chan struct{}
}

// wait returns nil if index is already applied, else a registered waiter
// whose ch closes once it is.
func (a *appliedWaiters) wait(index uint64) *appliedWaiter {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applied >= index {
		return nil
	}
	w := &appliedWaiter{index: index, ch: make(chan struct{})}
	heap.Push(&a.h, w)
	return w
}

// cancel forgets w (its caller gave up).
func (a *appliedWaiters) cancel(w *appliedWaiter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.pos >= 0 {
		heap.Remove(&a.h, w.pos)
	}
}

// advance records the applied index and wakes every waiter it satisfies.
func (a *appliedWaiters) advance(applied uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if applied <= a.applied {
		return
	}
	a.applied = applied
	for len(a.h) > 0 && a.h[0].index <= applied {
		w := heap.Pop(&a.h).(*appliedWaiter)
		close(w.ch)
	}
}

type waiterHeap []*appliedWaiter

func (h waiterHeap) Len() int           { return len(h) }
func (h waiterHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h waiterHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos = i
	h[j].pos = j
}

func (h *waiterHeap) Push(x any) {
	w := x.(*appliedWaiter)
	w.pos = len(*h)
	*h = append(*h, w)
}

func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.pos = -1
	return w
}
