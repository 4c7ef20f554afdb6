package watch

import (
	"errors"
	"fmt"
	"slices"

	"github.com/concord-db/concord/internal/mvcc"
)

// Stream is a set of watchers drained by one consumer. Watch ids are per
// stream.
type Stream struct {
	hub    *Hub
	signal chan struct{}

	// Guarded by hub.mu.
	watchers        map[int64]*watcher
	nextID          int64
	ready           []*watcher // watchers with buffered events or catching up, FIFO
	out             []Response // responses that go before anything in ready
	progressPending bool       // a stream-wide progress response sits in out
	closed          bool
}

// NewStream returns an empty stream.
func (h *Hub) NewStream() *Stream {
	return &Stream{hub: h, signal: make(chan struct{}, 1), watchers: make(map[int64]*watcher)}
}

// Ready returns a channel that receives a value when Next may have something
// to return. A consumer loops: wait on Ready, then call Next until it
// reports nothing.
func (s *Stream) Ready() <-chan struct{} { return s.signal }

func (s *Stream) wakeLocked() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *Stream) enqueueLocked(w *watcher) {
	if w.queued || w.removed {
		return
	}
	w.queued = true
	s.ready = append(s.ready, w)
	s.wakeLocked()
}

// Watch creates a watcher and returns its id and the hub revision at
// creation (the revision a start revision of 0 watches after). Errors:
// ErrNegativeStartRev, ErrEmptyRange, ErrDuplicateID, ErrStreamClosed.
func (s *Stream) Watch(r Request) (id, rev int64, err error) {
	if r.StartRev < 0 {
		return AllWatchers, 0, ErrNegativeStartRev
	}
	key := r.Key
	if len(key) == 0 {
		key = []byte{0}
	}
	w := &watcher{
		stream:         s,
		key:            key,
		noPut:          r.NoPut,
		noDelete:       r.NoDelete,
		prevKV:         r.PrevKV,
		progressNotify: r.ProgressNotify,
		progressDue:    true,
	}
	switch {
	case len(r.End) == 0:
		w.single = true
	case len(r.End) == 1 && r.End[0] == 0:
		w.fromKey, w.end = true, r.End
	default:
		if string(key) >= string(r.End) {
			return AllWatchers, 0, ErrEmptyRange
		}
		w.end = r.End
	}
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return AllWatchers, 0, ErrStreamClosed
	}
	id = r.ID
	if id == AutoID {
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		id = s.nextID
		s.nextID++
	} else if s.watchers[id] != nil {
		return AllWatchers, 0, ErrDuplicateID
	}
	w.id = id
	rev = h.rev
	if r.StartRev == 0 || r.StartRev > rev {
		w.next = max(rev+1, r.StartRev)
	} else {
		w.next = r.StartRev
		w.unsynced = true
	}
	s.watchers[id] = w
	h.addLocked(w)
	if w.unsynced {
		s.enqueueLocked(w)
	}
	return id, rev, nil
}

// Cancel removes watcher id, dropping what it had buffered. It reports
// whether the stream had such a watcher.
func (s *Stream) Cancel(id int64) bool {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := s.watchers[id]
	if !ok {
		return false
	}
	s.removeLocked(w)
	return true
}

func (s *Stream) removeLocked(w *watcher) {
	delete(s.watchers, w.id)
	s.hub.removeLocked(w)
	// Responses already queued in out for it are dropped too (a client may
	// name a watcher AllWatchers; its responses cannot be told apart then).
	if w.id != AllWatchers {
		s.out = slices.DeleteFunc(s.out, func(r Response) bool { return r.WatchID == w.id })
	}
}

// Close removes every watcher of the stream; Watch fails afterwards.
func (s *Stream) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, w := range s.watchers {
		h.removeLocked(w)
	}
	clear(s.watchers)
	s.ready, s.out = nil, nil
	s.wakeLocked()
}

// RequestProgress asks for one stream-wide progress response (WatchID
// AllWatchers). It is queued only if every watcher of the stream is synced
// and none waits for a future start revision, and not while an earlier one is
// still queued; otherwise it is dropped (etcd's behaviour). It reports whether
// it was queued.
func (s *Stream) RequestProgress() bool {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed || s.progressPending {
		return false
	}
	for _, w := range s.watchers {
		if w.unsynced || w.future(h.rev) {
			return false
		}
	}
	// Everything buffered so far has revisions <= h.rev and must reach the
	// consumer before the notification does.
	for _, w := range s.ready {
		w.queued = false
		s.flushLocked(w)
	}
	s.ready = s.ready[:0]
	s.out = append(s.out, Response{WatchID: AllWatchers, Rev: h.rev})
	s.progressPending = true
	s.wakeLocked()
	return true
}

// ProgressTick queues a progress response for every watcher that asked for
// progress notifications, is synced, does not wait for a future start
// revision and was handed no events since the previous tick (etcd's periodic
// progress_notify). The caller drives the period.
func (s *Stream) ProgressTick() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	ids := make([]int64, 0, len(s.watchers))
	for id, w := range s.watchers {
		if w.progressNotify {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // a deterministic order for the responses
	queued := false
	for _, id := range ids {
		w := s.watchers[id]
		if w.progressDue && !w.unsynced && !w.future(h.rev) && !w.progressQueued {
			s.flushLocked(w)
			s.out = append(s.out, Response{WatchID: w.id, Rev: h.rev})
			w.progressQueued = true
			queued = true
		}
		w.progressDue = true
	}
	if queued {
		s.wakeLocked()
	}
}

// flushLocked moves w's buffered events to out as one response.
func (s *Stream) flushLocked(w *watcher) {
	if len(w.buf) == 0 {
		return
	}
	s.out = append(s.out, s.takeBufferLocked(w, false))
}

// takeBufferLocked turns w's buffer into a response: the events it points
// to, copied into an array of the response's own (without PrevKV unless w
// asked for it). With recycle (only for a response Next returns at once),
// that array is the one of the response Next returned for w before: the
// consumer is done with it, since it called Next again. Only its entries
// beyond the new events are cleared, so that it never holds more than its
// last response's events. Next then allocates nothing in the steady state,
// and Notify one copy of a revision's events, however many watchers take
// them.
func (s *Stream) takeBufferLocked(w *watcher, recycle bool) Response {
	var evs []mvcc.Event
	stale := 0
	if recycle && w.spare != nil {
		evs, stale = w.spare[:0], len(w.spare)
	} else {
		evs = make([]mvcc.Event, 0, len(w.buf))
	}
	for _, p := range w.buf {
		e := *p
		if !w.prevKV {
			e.PrevKV = nil
		}
		evs = append(evs, e)
	}
	if stale > len(evs) {
		clear(evs[len(evs):stale])
	}
	clear(w.buf)
	w.buf, w.bufBytes = w.buf[:0], 0
	if recycle {
		w.spare = evs
	}
	w.progressDue = false
	return Response{WatchID: w.id, Events: evs, Rev: evs[len(evs)-1].KV.ModRevision}
}

// Queued returns how many responses Next has to give now: one per watcher
// with buffered events or history to read, plus those already made (a
// watcher catching up from history may take several). A consumer that sends
// in rounds takes that many as one round.
func (s *Stream) Queued() int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return len(s.out) + len(s.ready)
}

// Next returns the next response for the consumer, or false when there is
// nothing to send now (wait on Ready). It reads history for unsynced
// watchers, one bounded batch per call, without holding the hub lock. Only
// one goroutine may call Next on a stream at a time, and the returned
// Events are valid only until the next call (their array is reused).
func (s *Stream) Next() (Response, bool) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if s.closed {
			return Response{}, false
		}
		if len(s.out) > 0 {
			r := s.out[0]
			s.out[0] = Response{}
			s.out = s.out[1:]
			if r.WatchID == AllWatchers && r.IsProgress() {
				s.progressPending = false
			} else if r.IsProgress() {
				if w := s.watchers[r.WatchID]; w != nil {
					w.progressQueued = false
				}
			}
			return r, true
		}
		if len(s.ready) == 0 {
			return Response{}, false
		}
		w := s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		w.queued = false
		if w.removed {
			continue
		}
		if len(w.buf) > 0 {
			if w.unsynced {
				s.enqueueLocked(w) // history after the buffer
			}
			return s.takeBufferLocked(w, true), true
		}
		if !w.unsynced {
			continue
		}
		if r, ok := s.catchUpLocked(w); ok {
			return r, true
		}
	}
}

// catchUpLocked reads one batch of history for w. It releases hub.mu during
// the read.
func (s *Stream) catchUpLocked(w *watcher) (Response, bool) {
	h := s.hub
	from := w.next
	if from > h.rev { // nothing left to read
		w.unsynced = false
		h.unsynced--
		return Response{}, false
	}
	to := min(h.rev, from+int64(h.cfg.BatchRevisions)-1)
	h.mu.Unlock()
	evs, next, err := h.hist.Events(w.key, w.end, from, to, h.cfg.BatchEvents, w.prevKV)
	var compactRev int64
	if errors.Is(err, mvcc.ErrCompacted) {
		compactRev = h.hist.CompactRev()
	}
	h.mu.Lock()
	if w.removed {
		return Response{}, false
	}
	if err != nil {
		s.removeLocked(w)
		if compactRev > 0 {
			return Response{WatchID: w.id, Rev: h.rev, Canceled: true, CompactRev: compactRev}, true
		}
		h.logger.Warn("watch catch-up failed", "watch-id", w.id, "from", from, "to", to, "err", err)
		return Response{WatchID: w.id, Rev: h.rev, Canceled: true, Err: fmt.Errorf("watch: catch-up from revision %d: %w", from, err)}, true
	}
	if next <= from { // cannot happen with a correct History; never spin
		s.removeLocked(w)
		return Response{WatchID: w.id, Rev: h.rev, Canceled: true, Err: fmt.Errorf("watch: history made no progress at revision %d", from)}, true
	}
	evs = slices.DeleteFunc(evs, func(e mvcc.Event) bool { return w.filtered(&e) })
	evs, next = trimBytes(evs, next, h.cfg.ResponseBytes)
	w.next = next
	if next > h.rev {
		w.unsynced = false
		h.unsynced--
	} else {
		s.enqueueLocked(w)
	}
	if len(evs) == 0 {
		return Response{}, false
	}
	w.progressDue = false
	return Response{WatchID: w.id, Events: evs, Rev: evs[len(evs)-1].KV.ModRevision}, true
}

// trimBytes cuts evs after the last whole revision that keeps them within
// limit bytes (always keeping the first revision) and returns the revision
// to continue from.
func trimBytes(evs []mvcc.Event, next int64, limit int) ([]mvcc.Event, int64) {
	total := 0
	for i := range evs {
		total += eventBytes(&evs[i])
		if total <= limit || i == 0 {
			continue
		}
		// evs[i] does not fit: back up to the start of its revision, unless
		// that is the first revision.
		cut := i
		for cut > 0 && evs[cut-1].KV.ModRevision == evs[i].KV.ModRevision {
			cut--
		}
		if cut == 0 {
			for cut < len(evs) && evs[cut].KV.ModRevision == evs[0].KV.ModRevision {
				cut++
			}
			if cut == len(evs) {
				return evs, next
			}
		}
		return evs[:cut], evs[cut].KV.ModRevision
	}
	return evs, next
}
