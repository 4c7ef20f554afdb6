package sim

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// bootedSim is a 3-member simulation booted but not run.
func bootedSim(t *testing.T) *simulation {
	t.Helper()
	cfg := Config{Seed: 1, Members: 3}.withDefaults()
	s := newSim(cfg)
	for i := range cfg.Members {
		s.members = append(s.members, newMember(s, i))
	}
	for _, m := range s.members {
		s.bootFresh(m)
		if !m.up {
			t.Fatalf("%s did not boot: %v", m.name, s.violations)
		}
	}
	return s
}

func ent(idx, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: &idx, Term: &term, Data: []byte(data)}
}

// Each online invariant, fed a state that breaks it, reports it: none of
// them is vacuous.
func TestInvariantsCatchViolations(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *simulation)
		want  string
	}{
		{"healthy", func(s *simulation) {
			a, b := s.members[0], s.members[1]
			s.inv.saved(a, []*raftpb.Entry{ent(10, 2, "x")})
			s.inv.saved(b, []*raftpb.Entry{ent(10, 2, "x")})
			s.inv.applied(a, 10, 7)
			s.inv.applied(b, 10, 7)
			s.inv.leader(a, 2)
			s.inv.leader(a, 2)
		}, ""},
		{"two leaders in one term", func(s *simulation) {
			s.inv.leader(s.members[0], 5)
			s.inv.leader(s.members[1], 5)
		}, KindLeader},
		{"same index and term, different entries", func(s *simulation) {
			s.inv.saved(s.members[0], []*raftpb.Entry{ent(10, 2, "x")})
			s.inv.saved(s.members[1], []*raftpb.Entry{ent(10, 2, "y")})
		}, KindLogMatching},
		{"different entries applied at one index", func(s *simulation) {
			s.inv.saved(s.members[0], []*raftpb.Entry{ent(10, 2, "x")})
			s.inv.saved(s.members[1], []*raftpb.Entry{ent(10, 3, "y")})
			s.inv.applied(s.members[0], 10, 7)
			s.inv.applied(s.members[1], 10, 7)
		}, KindCommitted},
		{"applied an entry not in the log", func(s *simulation) {
			s.inv.applied(s.members[0], 10, 7)
		}, KindCommitted},
		{"same entry, different outcome", func(s *simulation) {
			s.inv.saved(s.members[0], []*raftpb.Entry{ent(10, 2, "x")})
			s.inv.saved(s.members[1], []*raftpb.Entry{ent(10, 2, "x")})
			s.inv.applied(s.members[0], 10, 7)
			s.inv.applied(s.members[1], 10, 9)
		}, KindState},
		{"committed entry overwritten", func(s *simulation) {
			s.inv.saved(s.members[0], []*raftpb.Entry{ent(10, 2, "x")})
			s.inv.applied(s.members[0], 10, 7)
			s.inv.saved(s.members[0], []*raftpb.Entry{ent(10, 3, "y")})
		}, KindCommitted},
		{"leader without a committed entry", func(s *simulation) {
			s.inv.saved(s.members[0], []*raftpb.Entry{ent(10, 2, "x")})
			s.inv.applied(s.members[0], 10, 7)
			s.inv.saved(s.members[1], []*raftpb.Entry{ent(10, 3, "y")})
			s.inv.leader(s.members[1], 3)
		}, KindCommitted},
		{"stores differ at one applied index", func(s *simulation) {
			a, b := s.members[0], s.members[1]
			w := b.app.Store().Write()
			w.Put([]byte("k"), []byte("v"), 0)
			w.End()
			s.inv.stateAt(a, "test")
			s.inv.stateAt(b, "test")
		}, KindState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bootedSim(t)
			tt.setup(s)
			var kinds []string
			for _, v := range s.violations {
				kinds = append(kinds, v.Kind)
			}
			switch {
			case tt.want == "" && len(kinds) > 0:
				t.Errorf("%s: violations %v, want none", tt.name, s.violations)
			case tt.want != "" && (len(kinds) == 0 || kinds[0] != tt.want):
				t.Errorf("%s: violations %v, want %s", tt.name, kinds, tt.want)
			}
		})
	}
}

func TestMirror(t *testing.T) {
	var l mirror
	e := func(term uint64) logEnt { return logEnt{term: term, fp: term * 10} }
	for i := uint64(5); i <= 9; i++ {
		l.put(i, e(1))
	}
	l.put(8, e(2)) // overwrite truncates the tail
	if got := l.last(); got != 8 {
		t.Fatalf("last after overwrite = %d, want 8", got)
	}
	if got, _ := l.get(8); got != e(2) {
		t.Errorf("get(8) = %v, want %v", got, e(2))
	}
	if _, ok := l.get(9); ok {
		t.Errorf("get(9) found an entry truncated away")
	}
	l.dropThrough(6)
	if _, ok := l.get(6); ok || l.first != 7 {
		t.Errorf("after dropThrough(6): first %d, get(6) ok %t", l.first, ok)
	}
	if got, ok := l.get(7); !ok || got != e(1) {
		t.Errorf("get(7) = %v %t, want %v", got, ok, e(1))
	}
	l.dropThrough(100)
	if len(l.ents) != 0 {
		t.Errorf("dropThrough past the end left %d entries", len(l.ents))
	}
	l.put(101, e(3))
	if l.first != 101 || l.last() != 101 {
		t.Errorf("put after a snapshot: first %d last %d, want 101", l.first, l.last())
	}
}
