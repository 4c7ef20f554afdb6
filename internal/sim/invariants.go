package sim

import (
	"encoding/binary"
	"hash/crc64"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/concord-db/concord/internal/apply"
)

// logEnt identifies a log entry: its term and a fingerprint of its type and
// data. term 0 means unknown.
type logEnt struct {
	term uint64
	fp   uint64
}

var crcTable = crc64.MakeTable(crc64.ECMA)

func entryFP(t raftpb.EntryType, data []byte) uint64 {
	h := crc64.Update(0, crcTable, []byte{byte(t)})
	return crc64.Update(h, crcTable, data)
}

// resultFP fingerprints what applying an entry did: the revision after it,
// the rejection, and every event. Equal entries must give equal results on
// every member.
func resultFP(res apply.Result) uint64 {
	var b []byte
	b = binary.AppendVarint(b, res.Rev)
	if res.Err != nil {
		b = append(b, res.Err.Error()...)
	}
	for _, ev := range res.Events {
		b = binary.AppendUvarint(b, uint64(ev.Type))
		b = binary.AppendUvarint(b, uint64(len(ev.KV.Key)))
		b = append(b, ev.KV.Key...)
		b = binary.AppendUvarint(b, uint64(len(ev.KV.Value)))
		b = append(b, ev.KV.Value...)
		b = binary.AppendVarint(b, ev.KV.ModRevision)
		b = binary.AppendVarint(b, ev.KV.CreateRevision)
		b = binary.AppendVarint(b, ev.KV.Version)
		b = binary.AppendVarint(b, ev.KV.Lease)
	}
	return crc64.Checksum(b, crcTable) | 1
}

func confFP(cc *raftpb.ConfChange) uint64 {
	var b []byte
	b = binary.AppendUvarint(b, uint64(cc.GetType()))
	b = binary.AppendUvarint(b, cc.GetNodeId())
	return crc64.Checksum(append(b, cc.GetContext()...), crcTable) | 1
}

// mirror is what one incarnation of a member has in its log after its
// snapshot: every entry it saved, with raft's overwrite rule applied.
type mirror struct {
	first uint64 // index of ents[0]
	ents  []logEnt
}

func (l *mirror) last() uint64 {
	if len(l.ents) == 0 {
		return 0
	}
	return l.first + uint64(len(l.ents)) - 1
}

func (l *mirror) put(idx uint64, e logEnt) {
	switch {
	case len(l.ents) == 0 || idx < l.first || idx > l.last()+1:
		l.first, l.ents = idx, append(l.ents[:0], e)
	default:
		l.ents = append(l.ents[:idx-l.first], e)
	}
}

func (l *mirror) get(idx uint64) (logEnt, bool) {
	if len(l.ents) == 0 || idx < l.first || idx > l.last() {
		return logEnt{}, false
	}
	return l.ents[idx-l.first], true
}

// dropThrough forgets entries at or below idx (covered by a snapshot).
func (l *mirror) dropThrough(idx uint64) {
	switch {
	case len(l.ents) == 0 || idx < l.first:
	case idx >= l.last():
		l.ents = l.ents[:0]
	default:
		l.ents = append(l.ents[:0], l.ents[idx-l.first+1:]...)
		l.first = idx + 1
	}
}

// stateFP is a member's store at one applied index.
type stateFP struct {
	rev  int64
	hash uint32
	who  string
}

// invariants is the cluster-wide knowledge the online checks compare
// members against.
type invariants struct {
	s *simulation
	// leaders: term → the one member that led it.
	leaders map[uint64]uint64
	// logMatch: (index, term) → fingerprint of the entry any member saved
	// there. Raft's log matching property makes it unique.
	logMatch map[[2]uint64]uint64
	// committed[i]: the entry some member applied at index i (applied ⇒
	// committed). Index 0 unused; term 0 unknown.
	committed []logEnt
	// commitTerm[i]: the term of the first member to apply index i, when it
	// did. The entry was committed by a leader of that term or an earlier
	// one, so every leader of a later term must hold it.
	commitTerm []uint64
	// results[i]: fingerprint of what applying index i did.
	results []uint64
	// states: applied index → store revision and hash seen there first.
	states map[uint64]stateFP
}

func (inv *invariants) init() {
	inv.leaders = map[uint64]uint64{}
	inv.logMatch = map[[2]uint64]uint64{}
	inv.committed = []logEnt{{}}
	inv.commitTerm = []uint64{0}
	inv.results = []uint64{0}
	inv.states = map[uint64]stateFP{}
}

// leader checks that m is the only leader of term, and that its log holds
// every entry committed in earlier terms (Leader Completeness).
func (inv *invariants) leader(m *member, term uint64) {
	s := inv.s
	if prev, ok := inv.leaders[term]; ok && prev != m.id {
		s.violate(KindLeader, "%s leads term %d, which n%d already led", m.name, term, prev)
	}
	inv.leaders[term] = m.id
	for i := m.snapIndex + 1; i < uint64(len(inv.committed)); i++ {
		c := inv.committed[i]
		// A leader of an old term (elected late, from votes cast long ago)
		// need not hold what later terms committed.
		if c.term == 0 || inv.commitTerm[i] >= term {
			continue
		}
		if e, ok := m.log.get(i); !ok || e != c {
			s.violate(KindCommitted, "%s leads term %d but its log lacks committed entry %d (term %d): has %v", m.name, term, i, c.term, describeEnt(e, ok))
			return
		}
	}
}

func describeEnt(e logEnt, ok bool) string {
	if !ok {
		return "nothing"
	}
	return "an entry of term " + itoa(e.term)
}

// saved checks entries a member just made durable: one entry per (index,
// term) cluster-wide, and a committed entry a member holds is never
// replaced.
func (inv *invariants) saved(m *member, ents []*raftpb.Entry) {
	s := inv.s
	for _, e := range ents {
		idx, term := e.GetIndex(), e.GetTerm()
		le := logEnt{term: term, fp: entryFP(e.GetType(), e.GetData())}
		key := [2]uint64{idx, term}
		if prev, ok := inv.logMatch[key]; ok && prev != le.fp {
			s.violate(KindLogMatching, "%s saved entry %d of term %d unlike the entry another member saved at the same index and term", m.name, idx, term)
		} else if !ok {
			inv.logMatch[key] = le.fp
		}
		// A lagging member may append a deposed leader's stale entry at a
		// committed index; what must never happen is that a member holding
		// the committed entry replaces it.
		if idx < uint64(len(inv.committed)) {
			if c := inv.committed[idx]; c.term != 0 && c != le {
				if cur, ok := m.log.get(idx); ok && cur == c {
					s.violate(KindCommitted, "%s overwrote committed entry %d (term %d) with an entry of term %d", m.name, idx, c.term, term)
				}
			}
		}
		m.log.put(idx, le)
	}
}

// applied checks an entry a member applied: it is in the member's log, it
// is the entry every other member applied at that index, and applying it
// did the same thing.
func (inv *invariants) applied(m *member, idx uint64, result uint64) {
	s := inv.s
	e, ok := m.log.get(idx)
	if !ok {
		s.violate(KindCommitted, "%s applied entry %d, which is not in its log", m.name, idx)
		return
	}
	for uint64(len(inv.committed)) <= idx {
		inv.committed = append(inv.committed, logEnt{})
		inv.commitTerm = append(inv.commitTerm, 0)
		inv.results = append(inv.results, 0)
	}
	switch c := inv.committed[idx]; {
	case c.term == 0:
		inv.committed[idx] = e
		inv.commitTerm[idx] = m.core.BasicStatus().GetTerm()
	case c != e:
		s.violate(KindCommitted, "%s applied entry %d of term %d; an entry of term %d (or other data) was applied there before", m.name, idx, e.term, c.term)
		return
	}
	switch r := inv.results[idx]; {
	case r == 0:
		inv.results[idx] = result
	case r != result:
		s.violate(KindState, "%s applied entry %d with a different outcome (revision/events) than another member", m.name, idx)
	}
}

// stateAt compares the member's whole store with what other members had at
// the same applied index.
func (inv *invariants) stateAt(m *member, why string) {
	s := inv.s
	idx := m.core.Applied()
	hash, _, err := m.app.Hash(0)
	if err != nil {
		s.violate(KindState, "%s: hash at applied index %d: %v", m.name, idx, err)
		return
	}
	cur := stateFP{rev: m.app.Store().Rev(), hash: hash, who: m.name + " (" + why + ")"}
	prev, ok := inv.states[idx]
	if !ok {
		inv.states[idx] = cur
		return
	}
	if prev.rev != cur.rev || prev.hash != cur.hash {
		s.violate(KindState, "%s at applied index %d has revision %d, hash %08x; %s had revision %d, hash %08x",
			cur.who, idx, cur.rev, cur.hash, prev.who, prev.rev, prev.hash)
	}
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
