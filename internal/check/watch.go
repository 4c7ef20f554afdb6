package check

import (
	"strings"
)

// WatchStream is what one watcher received: the key (or prefix) it
// watched, the revision it started from, the events in delivery order, and
// how far it is known to be caught up.
type WatchStream struct {
	// Name identifies the stream in problem reports.
	Name   string
	Key    string
	Prefix bool
	// StartRev is the first revision the watcher asked for (> 0).
	StartRev int64
	// Events in the order they were delivered.
	Events []Change
	// UpTo is a revision the stream is known to have covered, e.g. from a
	// progress notification: every matching change at or below it must have
	// been delivered. 0 means the last delivered event's revision.
	UpTo int64
}

func (w *WatchStream) matches(key string) bool {
	if w.Prefix {
		return strings.HasPrefix(key, w.Key)
	}
	return key == w.Key
}

// Watch checks etcd's watch guarantees for each stream against the
// committed history: events arrive in revision order (Ordered), none twice
// (Unique), each equal to the committed change at its revision (no invented
// or altered events), and every matching committed change from StartRev up
// to UpTo was delivered (Reliable: no gaps). Streams that start below
// c.CompactRev are not judged below it.
func Watch(streams []WatchStream, c *Committed) Report {
	r := newReport("watch")
	h := indexCommitted(c)
	for i := range streams {
		w := &streams[i]
		upTo := w.UpTo
		var last Change
		got := make(map[Change]bool, len(w.Events))
		for j, ev := range w.Events {
			switch {
			case got[ev]:
				r.fail("watch %s: %s delivered twice", w.Name, ev)
			case j > 0 && ev.Rev < last.Rev:
				r.fail("watch %s: %s delivered after %s: out of revision order", w.Name, ev, last)
			}
			got[ev] = true
			if !w.matches(ev.Key) {
				r.fail("watch %s: %s does not match the watched key %q", w.Name, ev, w.Key)
			}
			if ev.Rev < w.StartRev {
				r.fail("watch %s: %s is older than the start revision %d", w.Name, ev, w.StartRev)
			}
			if ev.Rev > c.Rev {
				r.fail("watch %s: %s is beyond the committed history's revision %d: a lost write was delivered", w.Name, ev, c.Rev)
			} else if ev.Rev >= c.CompactRev {
				ch, ok := h.changeAt(ev.Key, ev.Rev)
				if !ok || ch != ev {
					r.fail("watch %s: delivered %s, committed history has %s", w.Name, ev, describeChange(ch, ok))
				}
			}
			last = ev
		}
		if upTo == 0 && len(w.Events) > 0 {
			upTo = w.Events[len(w.Events)-1].Rev
		}
		upTo = min(upTo, c.Rev)
		from := max(w.StartRev, c.CompactRev)
		if upTo < from {
			continue
		}
		for _, ch := range c.Changes {
			if ch.Rev < from || ch.Rev > upTo || !w.matches(ch.Key) {
				continue
			}
			if !got[ch] {
				r.fail("watch %s: committed %s was never delivered (stream covers %d..%d)", w.Name, ch, from, upTo)
			}
		}
	}
	return r
}

func describeChange(ch Change, ok bool) string {
	if !ok {
		return "no change there"
	}
	return ch.String()
}
