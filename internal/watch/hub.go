package watch

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/concord-db/concord/internal/mvcc"
)

// Errors returned by Stream.Watch.
var (
	ErrNegativeStartRev = errors.New("watch: negative start revision")
	ErrEmptyRange       = errors.New("watch: watch range is empty")
	ErrDuplicateID      = errors.New("watch: duplicate watch id")
	ErrStreamClosed     = errors.New("watch: stream closed")
)

// AutoID in Request.ID asks the stream to pick the watch id; AllWatchers is
// the WatchID of a progress response speaking for every watcher of a stream
// (etcd's clientv3.AutoWatchID and InvalidWatchID).
const (
	AutoID      int64 = 0
	AllWatchers int64 = -1
)

// History is the revisioned store the hub catches watchers up from
// (*mvcc.Store). Both methods may be called concurrently with each other and
// with writes; neither is called with the hub lock held.
type History interface {
	// Events returns the events of revisions [fromRev, toRev] on keys in
	// [key, end) in revision and write order, whole revisions only, about
	// limit events at most, and the first revision not covered; ErrCompacted
	// when part of that history is gone. See mvcc.Store.Events.
	Events(key, end []byte, fromRev, toRev int64, limit int, prevKV bool) ([]mvcc.Event, int64, error)
	// CompactRev returns the revision of the last compaction.
	CompactRev() int64
}

// Config tunes a Hub.
type Config struct {
	// BufferEvents bounds the events a synced watcher holds for its consumer;
	// a revision that does not fit makes the watcher catch up from history.
	BufferEvents int
	// ResponseBytes bounds the keys and values (approximately) of what a
	// watcher buffers and of one catch-up response, so that one response
	// never has to hold, say, a thousand large values at once. A single
	// revision larger than it still goes out whole.
	ResponseBytes int
	// BatchRevisions bounds the revisions one history read covers (etcd reads
	// at most 1000 revisions per sync).
	BatchRevisions int
	// BatchEvents is the soft bound on the events of one catch-up response
	// (exceeded only by a single revision larger than it).
	BatchEvents int
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a fresh Config with the defaults.
func DefaultConfig() Config {
	return Config{BufferEvents: 1024, ResponseBytes: 4 << 20, BatchRevisions: 1000, BatchEvents: 1000}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.BufferEvents <= 0:
		return fmt.Errorf("watch: buffer events must be positive, got %d", c.BufferEvents)
	case c.ResponseBytes <= 0:
		return fmt.Errorf("watch: response bytes must be positive, got %d", c.ResponseBytes)
	case c.BatchRevisions <= 0:
		return fmt.Errorf("watch: batch revisions must be positive, got %d", c.BatchRevisions)
	case c.BatchEvents <= 0:
		return fmt.Errorf("watch: batch events must be positive, got %d", c.BatchEvents)
	}
	return nil
}

// Request describes a watcher to create.
type Request struct {
	// ID is the watch id the client chose, or AutoID.
	ID int64
	// Key and End select the keys, as in mvcc.Store.Range: End empty watches
	// Key alone, End "\x00" every key >= Key, otherwise [Key, End). An empty
	// Key means "\x00", the smallest key (etcd's rule).
	Key, End []byte
	// StartRev is the first revision to deliver; 0 means the hub revision + 1.
	StartRev int64
	// NoPut and NoDelete drop those events (etcd's filters).
	NoPut, NoDelete bool
	// PrevKV asks for the replaced version on each event.
	PrevKV bool
	// ProgressNotify asks for progress responses on ProgressTick.
	ProgressNotify bool
}

// Response is one message for a stream's consumer.
type Response struct {
	// WatchID is the watcher's id, or AllWatchers for a stream-wide progress
	// notification.
	WatchID int64
	// Events are whole revisions in revision order; PrevKV is set only for
	// watchers that asked for it. They alias the store's bytes: read only.
	Events []mvcc.Event
	// Rev is the revision for the response header: the last event's revision,
	// or for a progress notification the revision every future event of the
	// watcher(s) will exceed.
	Rev int64
	// Canceled ends the watcher: CompactRev > 0 says the history it needed
	// was compacted (up to CompactRev); otherwise Err says why.
	Canceled   bool
	CompactRev int64
	Err        error
}

// IsProgress reports whether r is a progress notification.
func (r *Response) IsProgress() bool { return len(r.Events) == 0 && !r.Canceled }

// Hub is the watch hub. See the package doc.
type Hub struct {
	cfg    Config
	hist   History
	logger *slog.Logger

	mu      sync.Mutex
	rev     int64                 // last revision notified or restored
	single  map[string][]*watcher // single-key watchers by key
	ranges  []*watcher            // range and from-key watchers, sorted by key
	touched []*watcher            // Notify's scratch list
	// Notify's scratch: the events it was given, and the hub's copy of
	// them, made when a watcher first takes one.
	notified, shared []mvcc.Event
	watchers         int
	unsynced         int
}

// New returns a hub at revision rev (the store's current revision) reading
// history from hist.
func New(cfg Config, hist History, rev int64) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hist == nil {
		return nil, errors.New("watch: no history")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{cfg: cfg, hist: hist, logger: logger, rev: rev, single: make(map[string][]*watcher)}, nil
}

// Rev returns the last revision the hub was notified of.
func (h *Hub) Rev() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// Stats reports the number of watchers and how many of them are unsynced.
func (h *Hub) Stats() (watchers, unsynced int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.watchers, h.unsynced
}

// watcher is one watch. All fields are guarded by Hub.mu.
type watcher struct {
	id      int64
	stream  *Stream
	key     []byte
	end     []byte // as in the Request (nil: single key)
	single  bool
	fromKey bool

	noPut, noDelete, prevKV, progressNotify bool

	next     int64 // first revision not yet handed to buf or the consumer
	unsynced bool
	// buf points into the hub's copies of the events Notify was given:
	// offering an event to a thousand watchers of a key writes a pointer
	// to each, not the event (see Notify).
	buf      []*mvcc.Event
	bufBytes int          // eventBytes of buf, as the watcher will get them
	spare    []mvcc.Event // the array of the last response Next made from buf
	queued   bool         // in stream.ready
	removed  bool

	progressDue    bool // no events handed out since the last tick
	progressQueued bool // a per-watcher progress response sits in stream.out

	// Notify's scratch: the revision being offered and where it began in buf.
	mark      int64
	markLen   int
	markBytes int
	overflow  bool
}

func (w *watcher) matches(key []byte) bool {
	switch {
	case w.single:
		return bytes.Equal(key, w.key)
	case w.fromKey:
		return bytes.Compare(key, w.key) >= 0
	}
	return bytes.Compare(key, w.key) >= 0 && bytes.Compare(key, w.end) < 0
}

func (w *watcher) filtered(e *mvcc.Event) bool {
	return (w.noPut && e.Type == mvcc.EventPut) || (w.noDelete && e.Type == mvcc.EventDelete)
}

// future reports whether w waits for a start revision beyond the next one.
func (w *watcher) future(rev int64) bool { return w.next > rev+1 }

// Notify hands the events of revision rev (all of one applied command, in
// write order) to the synced watchers they match. Called by the apply
// goroutine in revision order; never blocks.
func (h *Hub) Notify(rev int64, events []mvcc.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev > h.rev {
		h.rev = rev
	}
	touched := h.touched[:0]
	h.notified = events
	for i := range events {
		ev := &events[i]
		key := ev.KV.Key
		for _, w := range h.single[string(key)] {
			touched = h.offerLocked(w, rev, i, touched)
		}
		// Range watchers whose start key is <= key are candidates.
		lo, hi := 0, len(h.ranges)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if bytes.Compare(h.ranges[m].key, key) <= 0 {
				lo = m + 1
			} else {
				hi = m
			}
		}
		for _, w := range h.ranges[:lo] {
			if w.fromKey || bytes.Compare(key, w.end) < 0 {
				touched = h.offerLocked(w, rev, i, touched)
			}
		}
	}
	h.notified, h.shared = nil, nil
	for _, w := range touched {
		if w.overflow {
			// Drop the partial revision; history will deliver it whole.
			clear(w.buf[w.markLen:])
			w.buf, w.bufBytes = w.buf[:w.markLen], w.markBytes
			w.overflow = false
			w.unsynced = true
			w.next = rev
			h.unsynced++
		} else {
			w.next = rev + 1
		}
		w.stream.enqueueLocked(w)
	}
	clear(touched)
	h.touched = touched[:0]
}

// offerLocked offers event i of the revision Notify is handing out to w.
func (h *Hub) offerLocked(w *watcher, rev int64, i int, touched []*watcher) []*watcher {
	ev := &h.notified[i]
	if w.unsynced || rev < w.next || w.filtered(ev) {
		return touched
	}
	if w.mark != rev {
		w.mark, w.markLen, w.markBytes, w.overflow = rev, len(w.buf), w.bufBytes, false
		touched = append(touched, w)
	}
	if w.overflow {
		return touched
	}
	n := eventBytes(ev)
	if !w.prevKV && ev.PrevKV != nil {
		n -= 32 + len(ev.PrevKV.Key) + len(ev.PrevKV.Value)
	}
	if len(w.buf) >= h.cfg.BufferEvents || w.bufBytes+n > h.cfg.ResponseBytes {
		w.overflow = true
		return touched
	}
	if h.shared == nil {
		// The caller's events are not the hub's to keep.
		h.shared = slices.Clone(h.notified)
	}
	w.buf = append(w.buf, &h.shared[i])
	w.bufBytes += n
	return touched
}

// eventBytes approximates an event's share of a response.
func eventBytes(e *mvcc.Event) int {
	n := 32 + len(e.KV.Key) + len(e.KV.Value)
	if e.PrevKV != nil {
		n += 32 + len(e.PrevKV.Key) + len(e.PrevKV.Value)
	}
	return n
}

// Restore tells the hub that the store was replaced by a snapshot at
// revision rev: the revisions between the last notified one and rev were
// never notified. Every synced watcher that could have missed some of them
// becomes unsynced from the first revision it has not seen and catches up
// from the restored store's history, or is cancelled as compacted if that
// history is gone. Called by the apply goroutine; never blocks.
func (h *Hub) Restore(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.rev
	h.rev = rev
	restore := func(w *watcher) {
		if w.unsynced {
			return
		}
		w.next = max(w.next, old+1)
		if w.next <= rev {
			w.unsynced = true
			h.unsynced++
			w.stream.enqueueLocked(w)
		}
	}
	for _, ws := range h.single {
		for _, w := range ws {
			restore(w)
		}
	}
	for _, w := range h.ranges {
		restore(w)
	}
}

func (h *Hub) addLocked(w *watcher) {
	h.watchers++
	if w.unsynced {
		h.unsynced++
	}
	if w.single {
		h.single[string(w.key)] = append(h.single[string(w.key)], w)
		return
	}
	i, _ := slices.BinarySearchFunc(h.ranges, w.key, func(x *watcher, k []byte) int {
		if c := bytes.Compare(x.key, k); c != 0 {
			return c
		}
		return -1 // insert after equal keys
	})
	h.ranges = slices.Insert(h.ranges, i, w)
}

func (h *Hub) removeLocked(w *watcher) {
	if w.removed {
		return
	}
	w.removed = true
	h.watchers--
	if w.unsynced {
		h.unsynced--
	}
	w.buf, w.spare = nil, nil
	if w.single {
		ws := h.single[string(w.key)]
		i := slices.Index(ws, w)
		ws = slices.Delete(ws, i, i+1)
		if len(ws) == 0 {
			delete(h.single, string(w.key))
		} else {
			h.single[string(w.key)] = ws
		}
		return
	}
	h.ranges = slices.DeleteFunc(h.ranges, func(x *watcher) bool { return x == w })
}
