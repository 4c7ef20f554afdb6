package faults

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKill(t *testing.T) {
	noLeader := threeMembers()
	noLeader.leader = 0
	tests := []struct {
		name    string
		cluster Cluster
		spec    Spec
		id      uint64
		member  string
		desc    string
		err     error
	}{
		{"by name", threeMembers(), Spec{Kind: KindKill, Member: "n3"}, 3, "n3", "kill n3 (exit 137)", nil},
		{"leader", threeMembers(), Spec{Kind: KindKill, Member: "leader"}, 2, "n2", "kill n2 (exit 137)", nil},
		{"hex id", threeMembers(), Spec{Kind: KindKill, Member: "1", ID: "k1", Description: "bye"}, 1, "n1", "bye", nil},
		{"no leader", noLeader, Spec{Kind: KindKill, Member: "leader"}, 0, "", "", ErrNoLeader},
		{"unknown", threeMembers(), Spec{Kind: KindKill, Member: "n9"}, 0, "", "", ErrUnknownMember},
		{"no member", threeMembers(), Spec{Kind: KindKill}, 0, "", "", ErrInvalidRule},
		{"duration", threeMembers(), Spec{Kind: KindKill, Member: "n1", Duration: Duration(time.Second)}, 0, "", "", ErrInvalidRule},
		{"link", threeMembers(), Spec{Kind: KindKill, Member: "n1", Link: "n1->n2"}, 0, "", "", ErrInvalidRule},
		{"not kill", threeMembers(), Spec{Kind: KindPause, Member: "n1"}, 0, "", "", ErrInvalidRule},
	}
	for _, tt := range tests {
		p := newTestPlane(t, tt.cluster)
		info, id, err := p.Kill(tt.spec)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: Kill(%+v) error = %v, want %v", tt.name, tt.spec, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		wantID := tt.spec.ID
		if wantID == "" {
			wantID = "kill"
		}
		if id != tt.id || info.Member != tt.member || info.Description != tt.desc || info.ID != wantID || info.Kind != KindKill {
			t.Errorf("%s: Kill(%+v) = %+v, %d; want member %s (%d), description %q, id %s", tt.name, tt.spec, info, id, tt.member, tt.id, tt.desc, wantID)
		}
		// One-shot: nothing is installed, but the request is logged.
		if l := p.List(); len(l) != 0 {
			t.Errorf("%s: List after Kill = %+v, want nothing", tt.name, l)
		}
		if !strings.Contains(p.logs.String(), "fault kill requested") {
			t.Errorf("%s: log lacks the kill: %s", tt.name, p.logs.String())
		}
	}
}

func TestInstallRefusesKill(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	if _, err := p.Install(Spec{Kind: KindKill, Member: "n1"}); !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "one-shot") {
		t.Errorf("Install(kill) = %v, want an invalid rule error saying one-shot", err)
	}
	if l := p.List(); len(l) != 0 {
		t.Errorf("List = %+v, want nothing", l)
	}
}
