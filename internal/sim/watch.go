package sim

import (
	"fmt"

	"github.com/concord-db/concord/internal/check"
	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/watch"
)

// Watch clients: one per key and one on the whole "k" prefix. Each watches
// through the member's real watch hub; when its member goes down it
// reconnects to a random member from the revision after the last event it
// got (etcd's resumable watch), and its stream must still equal history.
const (
	watchStart        = int64(500e6) // first connections
	watchReconnectMin = int64(50e6)
	watchReconnectMax = int64(500e6)
)

// watcher is one simulated watch client.
type watcher struct {
	n      int
	stream check.WatchStream
	member int // -1: disconnected
	inc    int // the member's incarnation it is connected to
	ws     *watch.Stream
	id     int64
	next   int64 // first revision not yet received
	broken string
}

func (s *simulation) startWatchers() {
	for k := 0; k <= s.cfg.Keys; k++ {
		w := &watcher{n: len(s.watchers) + 1, member: -1, next: 1}
		w.stream.StartRev = 1
		if k < s.cfg.Keys {
			w.stream.Key = s.keyName(k)
		} else {
			w.stream.Key, w.stream.Prefix = "k", true
		}
		w.stream.Name = fmt.Sprintf("w%d(%s)", w.n, w.stream.Key)
		if w.stream.Prefix {
			w.stream.Name = fmt.Sprintf("w%d(%s*)", w.n, w.stream.Key)
		}
		s.watchers = append(s.watchers, w)
		s.at(watchStart+s.workRng.Int64N(watchReconnectMax), &event{kind: evWatch, client: len(s.watchers) - 1})
	}
}

// newHub is the member's watch hub, as the server's initWatch builds it,
// with small buffers so watchers overflow into catching up from history.
func newHub(m *member) (*watch.Hub, error) {
	cfg := watch.DefaultConfig()
	cfg.BufferEvents, cfg.BatchEvents, cfg.BatchRevisions = 8, 16, 16
	return watch.New(cfg, m.app.Store(), m.app.Store().Rev())
}

// onWatch (re)connects a watcher to a random live member.
func (s *simulation) onWatch(ev *event) {
	w := s.watchers[ev.client]
	if w.member >= 0 || w.broken != "" || s.phase == phaseDone {
		return
	}
	m := s.members[s.workRng.IntN(len(s.members))]
	if !m.up || m.paused {
		s.at(s.now+watchReconnectMin+s.workRng.Int64N(watchReconnectMax), &event{kind: evWatch, client: ev.client})
		return
	}
	ws := m.hub.NewStream()
	req := watch.Request{Key: []byte(w.stream.Key), StartRev: w.next}
	if w.stream.Prefix {
		req.End = prefixEnd(req.Key)
	}
	id, rev, err := ws.Watch(req)
	if err != nil {
		w.broken = err.Error()
		s.violate(KindWatch, "%s: watch on %s from %d: %v", w.stream.Name, m.name, w.next, err)
		return
	}
	w.member, w.inc, w.ws, w.id = m.idx, m.inc, ws, id
	s.tracef("%s watches on %s from revision %d (hub at %d)", w.stream.Name, m.name, w.next, rev)
	s.pollWatcher(w)
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
}

// disconnectWatchers drops the watches of a member going down; their
// clients reconnect elsewhere.
func (s *simulation) disconnectWatchers(m *member) {
	for i, w := range s.watchers {
		if w.member != m.idx {
			continue
		}
		w.member, w.ws = -1, nil
		s.tracef("%s lost its watch on %s", w.stream.Name, m.name)
		s.at(s.now+watchReconnectMin+s.workRng.Int64N(watchReconnectMax), &event{kind: evWatch, client: i})
	}
}

// pollWatches drains the watch streams served by m.
func (s *simulation) pollWatches(m *member) {
	for _, w := range s.watchers {
		if w.member == m.idx && w.inc == m.inc {
			s.pollWatcher(w)
		}
	}
}

func (s *simulation) pollWatcher(w *watcher) {
	for w.ws != nil {
		r, ok := w.ws.Next()
		if !ok {
			return
		}
		if r.Canceled {
			s.violate(KindWatch, "%s: watch on n%d cancelled (compacted at %d): %v", w.stream.Name, w.member+1, r.CompactRev, r.Err)
			w.broken, w.ws, w.member = "cancelled", nil, -1
			return
		}
		if len(r.Events) == 0 {
			continue
		}
		for _, ev := range r.Events {
			w.stream.Events = append(w.stream.Events, changeOf(ev))
		}
		last := r.Events[len(r.Events)-1].KV.ModRevision
		s.tracef("%s got %d events @%d..%d from n%d", w.stream.Name, len(r.Events), r.Events[0].KV.ModRevision, last, w.member+1)
		w.next = last + 1
	}
}

func changeOf(ev mvcc.Event) check.Change {
	return check.Change{
		Rev:    ev.KV.ModRevision,
		Key:    string(ev.KV.Key),
		Value:  string(ev.KV.Value),
		Delete: ev.Type == mvcc.EventDelete,
	}
}

// watchStreams drains every watch at the end and says how far each is known
// to be complete: a watch on a live member has caught up with its hub.
func (s *simulation) watchStreams() []check.WatchStream {
	var out []check.WatchStream
	for _, w := range s.watchers {
		if w.ws != nil {
			s.pollWatcher(w)
		}
		st := w.stream
		if w.ws != nil {
			m := s.members[w.member]
			if m.up && m.inc == w.inc {
				st.UpTo = m.hub.Rev()
			}
		}
		out = append(out, st)
	}
	return out
}
