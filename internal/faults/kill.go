package faults

import (
	"fmt"
	"time"
)

// Kill resolves a kill rule against the cluster without installing it: a
// kill is one-shot, so nothing is kept to list or heal. It returns the
// rule in canonical form (the member by name, "leader" resolved, id "kill"
// unless given, a description) and the id of the member to crash, and logs
// the request. The caller (package admin, through package server's hook)
// crashes the process when that id is its own. Errors wrap ErrInvalidRule,
// ErrUnknownMember or ErrNoLeader.
func (p *Plane) Kill(s Spec) (Info, uint64, error) {
	if s.Kind != KindKill {
		return Info{}, 0, invalid("Kill takes a kill rule, not %q", s.Kind)
	}
	if _, err := s.check(); err != nil {
		return Info{}, 0, err
	}
	id, name, err := p.resolver().ref(s.Member)
	if err != nil {
		return Info{}, 0, err
	}
	canon := Spec{ID: s.ID, Kind: KindKill, Member: name, Description: s.Description}
	if canon.ID == "" {
		canon.ID = "kill"
	}
	if canon.Description == "" {
		canon.Description = fmt.Sprintf("kill %s (exit %d)", name, KillExitStatus)
	}
	now := p.now()
	p.log.Warn("fault kill requested", "id", canon.ID, "rule", canon.Description, "member", name, "at", now.Format(time.RFC3339Nano))
	return Info{Spec: canon, Created: now}, id, nil
}
