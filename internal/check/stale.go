package check

import (
	"slices"
)

// StaleReads finds the linearizable reads that returned a value older than
// one already acknowledged when they were called: a Get answered with the
// value committed at revision r, called after a write to the same key at a
// revision above r had returned. Unlike porcupine's verdict, which says only
// that a key has no linearization, this names the reads, so a report can
// show them; it needs the committed history to date the values read
// (values are unique). Serializable reads are exempt (they may be stale by
// contract); reads of values missing from the history are left to Reads.
func StaleReads(ops []Op, c *Committed) (Report, []Op) {
	r := newReport("stale-reads")
	revOf := map[string]int64{}
	for _, ch := range c.Changes {
		if !ch.Delete {
			revOf[ch.Key+"\x00"+ch.Value] = ch.Rev
		}
	}
	type write struct {
		ret, rev int64
		op       *Op
	}
	byKey := map[string][]write{}
	for i := range ops {
		o := &ops[i]
		if o.Acknowledged() && o.Kind != Delete {
			byKey[o.Key] = append(byKey[o.Key], write{o.Return, o.Rev, o})
		}
	}
	// Per key, writes by return time with the highest revision so far.
	for k, ws := range byKey {
		slices.SortFunc(ws, func(a, b write) int { return compareInt64(a.ret, b.ret) })
		for i := 1; i < len(ws); i++ {
			if ws[i].rev < ws[i-1].rev {
				ws[i].rev, ws[i].op = ws[i-1].rev, ws[i-1].op
			}
		}
		byKey[k] = ws
	}
	var stale []Op
	for i := range ops {
		o := &ops[i]
		if o.Kind != Get || o.Serializable || o.Status != OK {
			continue
		}
		var seen int64 // revision of the value read; 0: the key was absent
		if o.Found {
			rev, ok := revOf[o.Key+"\x00"+o.Got]
			if !ok {
				continue
			}
			seen = rev
		}
		ws := byKey[o.Key]
		j, _ := slices.BinarySearchFunc(ws, o.Call, func(w write, call int64) int {
			if w.ret < call {
				return -1
			}
			return 1
		})
		if j == 0 {
			continue
		}
		if newer := ws[j-1]; newer.rev > seen {
			r.fail("stale read: %s (client %d, on %s, call %d) returned the value of revision %d after %s (client %d, on %s) had returned at %d",
				o, o.Client, o.Member, o.Call, seen, newer.op, newer.op.Client, newer.op.Member, newer.ret)
			stale = append(stale, *o)
		}
	}
	return r, stale
}
