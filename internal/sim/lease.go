package sim

// Leases. Clients grant leases, put keys with them and revoke them; each
// member runs the server's expiry tracker around the real lease.Lessor
// (internal/server/lease.go), in virtual time:
//
//   - every member feeds its Lessor from what apply did, stamped with the
//     virtual clock (observeLeases); a restored snapshot resets it;
//   - on its ticks the leader promotes the Lessor once a ReadIndex round has
//     confirmed its leadership and it has applied up to the read index,
//     then proposes the checkpoints due and, for expired leases, starts a
//     ReadIndex round and revokes them only if it still leads in the same
//     term when the round answers;
//   - a lease-loop proposal that has not applied within 2 election
//     timeouts + 1s is given up, as the server's proposeLease times out.
//
// Every lease has its own key (leaseKey), so a revocation deletes at most
// one key and is, for the history checkers, a Delete of that key: a
// client's revoke is the client's operation, an expiry revoke an operation
// of its own (one pseudo-client each), recorded from the proposal to its
// apply on the proposer. The lease invariant: an expiry revoke never
// applies anywhere before the lease's TTL has passed since the client
// called grant.

import (
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/check"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/lease"
	"github.com/concord-db/concord/internal/raftnode"
)

const (
	// Lessor settings as the server derives them from its election
	// timeout (one tick × electionTicks).
	leaseGrace              = time.Duration(electionTicks * tickInterval)
	leaseCheckpointSlack    = leaseGrace / 2
	leaseCheckpointInterval = 5 * time.Second
	leaseRoundLimit         = 2 * electionTicks * tickInterval
	leaseProposalLimit      = leaseRoundLimit + int64(time.Second)
	maxRevokesPerRound      = 500
	maxCheckpointsPerCmd    = 1000
	// Granted TTLs: from the server's minimum (ceil(1.5 × election
	// timeout)) to a few seconds, so leases expire within a run.
	leaseTTLMin = 2
	leaseTTLMax = 4
	// expiryClientBase numbers the pseudo-clients of expiry revokes.
	expiryClientBase = 10000
)

// KindLease is the lease invariant's violation kind.
const KindLease = "lease-expiry"

// leaseReq is what a lease operation asks, besides its KV Op.
type leaseReq struct {
	kind  leaseOpKind
	id    int64
	ttl   int64
	attch bool // a put attached to lease id
}

type leaseOpKind uint8

const (
	leaseNone leaseOpKind = iota
	leaseGrant
	leaseRevoke
)

// clientLease is a client's current lease as the client sees it.
type clientLease struct {
	id, ttl int64
	call    int64 // when the client called grant: the lease lives ttl from here
}

// leaseInfo is what the invariant knows of a granted lease.
type leaseInfo struct {
	call, ttl int64
	gone      bool // a revoke applied somewhere
}

// leaseState is one member incarnation's lease tracker.
type leaseState struct {
	lessor   *lease.Lessor
	term     uint64 // the term the Lessor was promoted in
	promote  *leaseRound
	confirm  *leaseRound
	revoking map[int64]bool
	props    map[uint64]*leaseProp // own lease-loop proposals by command id
}

// leaseRound is a ReadIndex round of the lease loop.
type leaseRound struct {
	rctx     uint64
	issued   int64
	term     uint64
	index    uint64
	answered bool
	ids      []int64 // confirm: the expired leases it would revoke
}

type leaseProp struct {
	revoke bool
	ids    []int64
	hid    int // revoke: its history operation
	issued int64
}

func newLeaseState() *leaseState {
	// Non-negative constants: NewLessor cannot fail.
	l, _ := lease.NewLessor(lease.LessorConfig{
		Grace:              leaseGrace,
		CheckpointSlack:    leaseCheckpointSlack,
		CheckpointInterval: leaseCheckpointInterval,
	})
	return &leaseState{lessor: l, revoking: map[int64]bool{}, props: map[uint64]*leaseProp{}}
}

func (s *simulation) leaseKey(id int64) string { return fmt.Sprintf("lease%d", id) }

// clock is the lease clock of every member: the virtual clock (or the
// test-only fast one).
func (s *simulation) clock() time.Time {
	if r := s.cfg.leaseClockRate; r > 1 {
		return time.Unix(0, int64(float64(s.now)*r))
	}
	return time.Unix(0, s.now)
}

// pickLeaseOp chooses a client's next lease operation: a grant when it holds
// no lease it believes alive, else a put with it, a read of its key or a
// revoke.
func (s *simulation) pickLeaseOp(c *client) (check.Op, leaseReq) {
	if c.lease == nil || s.now >= c.lease.call+c.lease.ttl*int64(time.Second) {
		c.lease = nil
		s.nextLease++
		ttl := int64(leaseTTLMin + s.workRng.IntN(leaseTTLMax-leaseTTLMin+1))
		return check.Op{}, leaseReq{kind: leaseGrant, id: s.nextLease, ttl: ttl}
	}
	l := c.lease
	key := s.leaseKey(l.id)
	switch p := s.workRng.IntN(4); {
	case p < 2:
		c.seq++
		return check.Op{Kind: check.Put, Key: key, Value: fmt.Sprintf("c%d.%d", c.id, c.seq)}, leaseReq{id: l.id, attch: true}
	case p < 3:
		return check.Op{Kind: check.Get, Key: key}, leaseReq{}
	default:
		c.lease = nil
		return check.Op{Kind: check.Delete, Key: key}, leaseReq{kind: leaseRevoke, id: l.id}
	}
}

// leaseCommand builds the command of a lease operation, nil for a plain KV
// operation.
func leaseCommand(op *opState, id uint64, now int64) *command.Command {
	cmd := &command.Command{Version: command.Version, Id: id, Stamp: now}
	switch op.lease.kind {
	case leaseGrant:
		cmd.Op = &command.Command_LeaseGrant{LeaseGrant: &command.LeaseGrantRequest{Id: op.lease.id, Ttl: op.lease.ttl}}
	case leaseRevoke:
		cmd.Op = &command.Command_LeaseRevoke{LeaseRevoke: &command.LeaseRevokeRequest{Id: op.lease.id}}
	default:
		return nil
	}
	return cmd
}

// leaseTick is one round of the member's lease loop, run on its ticks.
func (s *simulation) leaseTick(m *member) {
	ls := m.ls
	if ls == nil {
		return
	}
	s.expireLeaseProps(m)
	if m.role != raft.StateLeader {
		if ls.lessor.Primary() {
			ls.lessor.Demote()
			s.tracef("%s lease expiry: no longer the leader", m.name)
		}
		ls.promote, ls.confirm = nil, nil
		return
	}
	term := m.core.BasicStatus().GetTerm()
	if !ls.lessor.Primary() || ls.term != term {
		if p := ls.promote; p == nil || p.term != term || s.now-p.issued > leaseRoundLimit {
			ls.promote = s.leaseReadIndex(m, term)
		}
		return
	}
	s.proposeCheckpoints(m)
	if c := ls.confirm; c != nil && s.now-c.issued > leaseRoundLimit {
		s.releaseRevoking(m, c.ids)
		ls.confirm = nil
	}
	if ls.confirm != nil {
		return
	}
	var ids []int64
	for _, id := range ls.lessor.Expired(s.clock(), maxRevokesPerRound) {
		if !ls.revoking[id] {
			ls.revoking[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	ls.confirm = s.leaseReadIndex(m, term)
	if ls.confirm != nil {
		ls.confirm.ids = ids
	} else {
		s.releaseRevoking(m, ids)
	}
}

func (s *simulation) leaseReadIndex(m *member, term uint64) *leaseRound {
	s.nextRctx++
	r := &leaseRound{rctx: s.nextRctx, issued: s.now, term: term}
	if !s.guard(m, "ReadIndex", func() { m.core.ReadIndex(rctxBytes(r.rctx)) }) {
		return nil
	}
	return r
}

func (s *simulation) releaseRevoking(m *member, ids []int64) {
	for _, id := range ids {
		delete(m.ls.revoking, id)
	}
}

// leaseReadState takes a ReadIndex answer meant for the lease loop.
func (s *simulation) leaseReadState(m *member, rctx, index uint64) {
	if m.ls == nil {
		return
	}
	for _, r := range []*leaseRound{m.ls.promote, m.ls.confirm} {
		if r != nil && r.rctx == rctx && !r.answered {
			r.index, r.answered = index, true
		}
	}
}

// leaseProgress finishes answered lease rounds: promotion once the read
// index is applied, revocation once leadership is confirmed. It runs after
// every Ready; proposals it makes are handled by the Ready loop that runs
// it.
func (s *simulation) leaseProgress(m *member) {
	ls := m.ls
	if ls == nil || !m.up {
		return
	}
	term := m.core.BasicStatus().GetTerm()
	leads := m.role == raft.StateLeader
	if p := ls.promote; p != nil && p.answered && m.core.Applied() >= p.index {
		ls.promote = nil
		if leads && term == p.term {
			ls.lessor.Promote(s.clock(), m.app.Leases())
			ls.term = term
			clear(ls.revoking)
			ls.confirm = nil
			s.tracef("%s lease expiry: leader, tracking %d leases (term %d)", m.name, ls.lessor.Len(), term)
		}
	}
	if c := ls.confirm; c != nil && c.answered {
		ls.confirm = nil
		if !leads || term != c.term || ls.term != term || !ls.lessor.Primary() {
			s.releaseRevoking(m, c.ids)
			s.tracef("%s lease expiry: leadership not confirmed; revoking nothing", m.name)
			return
		}
		for _, id := range c.ids {
			s.proposeExpiry(m, id)
		}
	}
}

// proposeExpiry proposes the revocation of an expired lease and records it
// in the history as a Delete of the lease's key.
func (s *simulation) proposeExpiry(m *member, id int64) {
	s.nextCmd++
	cmd := &command.Command{Version: command.Version, Id: s.nextCmd, Stamp: s.now,
		Op: &command.Command_LeaseRevoke{LeaseRevoke: &command.LeaseRevokeRequest{Id: id}}}
	s.expiryCmds[cmd.Id] = true
	s.nExpiry++
	in := check.Op{Client: expiryClientBase + s.nExpiry, Kind: check.Delete, Key: s.leaseKey(id), Member: m.name}
	hid := s.rec.Call(in, s.now)
	s.tracef("%s lease %d expired: proposes its revocation (cmd %d)", m.name, id, cmd.Id)
	if err := s.proposeLease(m, cmd, &leaseProp{revoke: true, ids: []int64{id}, hid: hid, issued: s.now}); err != nil {
		s.rec.Fail(hid, true, s.now)
		s.releaseRevoking(m, []int64{id})
	}
}

func (s *simulation) proposeCheckpoints(m *member) {
	cps := m.ls.lessor.Checkpoints(s.clock(), maxCheckpointsPerCmd)
	if len(cps) == 0 {
		return
	}
	req := &command.LeaseCheckpointRequest{}
	ids := make([]int64, len(cps))
	for i, c := range cps {
		req.Checkpoints = append(req.Checkpoints, &command.LeaseCheckpoint{Id: c.ID, RemainingTtlMs: c.Remaining.Milliseconds()})
		ids[i] = c.ID
	}
	s.nextCmd++
	cmd := &command.Command{Version: command.Version, Id: s.nextCmd, Stamp: s.now,
		Op: &command.Command_LeaseCheckpoint{LeaseCheckpoint: req}}
	if err := s.proposeLease(m, cmd, &leaseProp{ids: ids, hid: -1, issued: s.now}); err != nil {
		m.ls.lessor.CheckpointFailed(ids)
	}
}

func (s *simulation) proposeLease(m *member, cmd *command.Command, p *leaseProp) error {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return err
	}
	if !s.guard(m, "Propose", func() { err = m.core.Propose(data) }) {
		return raftnode.ErrProposalDropped
	}
	if err == nil {
		m.ls.props[cmd.GetId()] = p
	}
	return err
}

// expireLeaseProps gives up lease-loop proposals that did not apply in time.
func (s *simulation) expireLeaseProps(m *member) {
	ls := m.ls
	var old []uint64
	for id, p := range ls.props {
		if s.now-p.issued > leaseProposalLimit {
			old = append(old, id)
		}
	}
	slices.Sort(old)
	for _, id := range old {
		p := ls.props[id]
		delete(ls.props, id)
		if p.revoke {
			s.rec.Fail(p.hid, false, s.now)
			s.releaseRevoking(m, p.ids)
		} else {
			ls.lessor.CheckpointFailed(p.ids)
		}
	}
}

// observeLeases feeds the member's Lessor with what applied command cmdID
// did to the lease table, settles the member's own lease-loop proposal and
// checks the lease invariant.
func (s *simulation) observeLeases(m *member, cmdID uint64, res apply.Result) {
	ls := m.ls
	p, own := ls.props[cmdID]
	if own {
		delete(ls.props, cmdID)
		if p.revoke {
			if res.Err != nil {
				s.rec.Fail(p.hid, true, s.now)
			} else {
				s.rec.Return(p.hid, check.Op{Deleted: int64(len(res.Events)), Rev: res.Rev, Member: m.name}, s.now)
			}
		}
	}
	now := s.clock()
	for _, c := range res.Leases {
		switch c.Kind {
		case apply.LeaseGranted:
			ls.lessor.Granted(now, c.ID, c.TTL)
		case apply.LeaseRevoked:
			ls.lessor.Revoked(c.ID)
			delete(ls.revoking, c.ID)
			s.leaseGone(m, c.ID, s.expiryCmds[cmdID])
		case apply.LeaseCheckpointed:
			ls.lessor.Checkpointed(now, c.ID, c.TTL, time.Duration(c.RemainingMs)*time.Millisecond, own)
		}
	}
}

// leaseGone checks the lease invariant at the first apply of a revocation.
func (s *simulation) leaseGone(m *member, id int64, expiry bool) {
	li, ok := s.leases[id]
	if !ok || li.gone {
		return
	}
	li.gone = true
	if !expiry {
		return
	}
	s.stats.LeasesExpired++
	if due := li.call + li.ttl*int64(time.Second); s.now < due {
		s.violate(KindLease, "%s applied the expiry of lease %d (TTL %ds, grant called at %s) at %s, %s early",
			m.name, id, li.ttl, fmtTime(li.call), fmtTime(s.now), fmtDur(due-s.now))
	}
}
