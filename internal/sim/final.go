package sim

import (
	"slices"

	"github.com/concord-db/concord/internal/check"
	"github.com/concord-db/concord/internal/mvcc"
)

// finalCompare compares every live member's store at the end and reads the
// committed history back from the most advanced one.
func (s *simulation) finalCompare() {
	// Compare the members of the final configuration; a member whose
	// addition never committed holds nothing to compare.
	inConfig := func(m *member) bool { return !m.removed }
	if l := s.leader(); l != nil {
		cs := l.core.ConfState()
		inConfig = func(m *member) bool {
			return slices.Contains(cs.GetVoters(), m.id) || slices.Contains(cs.GetLearners(), m.id)
		}
	}
	var best *member
	for _, m := range s.members {
		if !m.up || !inConfig(m) {
			continue
		}
		s.inv.stateAt(m, "end")
		if best == nil || m.core.Applied() > best.core.Applied() {
			best = m
		}
	}
	if best == nil {
		s.violate(KindLiveness, "no member is up at the end")
		return
	}
	for _, m := range s.members {
		if m.up && inConfig(m) && m.core.Applied() != best.core.Applied() {
			s.violate(KindLiveness, "%s ends at applied index %d, %s at %d", m.name, m.core.Applied(), best.name, best.core.Applied())
		}
	}
	store := best.app.Store()
	evs, _, err := store.Events(nil, []byte{0}, 1, store.Rev(), 0, false)
	if err != nil {
		s.violate(KindState, "%s: read history: %v", best.name, err)
		return
	}
	c := &check.Committed{Rev: store.Rev(), CompactRev: store.CompactRev()}
	for _, ev := range evs {
		c.Changes = append(c.Changes, check.Change{
			Rev:    ev.KV.ModRevision,
			Key:    string(ev.KV.Key),
			Value:  string(ev.KV.Value),
			Delete: ev.Type == mvcc.EventDelete,
		})
	}
	s.final = c
	s.finalWatch = s.watchStreams()
	s.stats.FinalRev = c.Rev
	s.tracef("END %s: applied %d, revision %d, %d changes", best.name, best.core.Applied(), c.Rev, len(c.Changes))
}

// checkHistory runs the history checkers and records their verdicts.
func (s *simulation) checkHistory(r *Result) {
	if s.final == nil {
		return
	}
	lin := check.Linearizable(r.Ops, s.cfg.CheckTimeout)
	r.Reports = []check.Report{
		lin.Report,
		check.Reads(r.Ops, s.final),
		check.Durability(r.Ops, s.final),
		check.Revisions(r.Ops),
		check.Watch(s.finalWatch, s.final),
		check.AppliedOnce(s.final),
	}
	for _, rep := range r.Reports {
		switch rep.Verdict {
		case check.Invalid:
			s.violate(rep.Checker, "%s", rep.String())
		case check.Unknown:
			s.violate(KindUnknown, "%s", rep.String())
		}
	}
	r.Violations = s.violations
}
