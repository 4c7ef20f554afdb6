package server

// Leases. The replicated lease table lives in apply; this file runs the
// member's expiry tracker (lease.Lessor) around it:
//
//   - Every member feeds its Lessor from what apply did (observeLeases,
//     resetLeases), stamped with its own clock, so every member holds an
//     estimate of each lease's expiry (rules in package lease's doc).
//   - The leader's lease loop promotes the Lessor once it has confirmed its
//     leadership and applied everything its predecessors committed (a
//     ReadIndex round, then WaitApplied), and from then on decides expiry.
//   - A renewal is decided on the leader only. When it moves a lease more
//     than half an election timeout ahead of what followers know, it is
//     acknowledged only after a LeaseCheckpoint carrying it has been applied
//     here, so a leader change loses at most half an election timeout of an
//     acknowledged renewal.
//   - Expired leases are revoked through raft, and only after a ReadIndex
//     round started after the expiry decision confirms this member still
//     leads: a stuck or deposed leader revokes nothing (etcd #15247).
//     Config.UnsafeLeaseExpiryWithoutQuorum skips that round (and the
//     leadership re-check after it), on purpose, to show the checkers
//     catching the bug it prevents.
//   - On a leader change a lease keeps its remaining time; it gets at least
//     one election timeout (the grace) so clients can find the new leader.
//     etcd instead restarts every lease at its full TTL (etcd #9395).
//   - Stop checkpoints every lease before handing leadership over.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/lease"
)

// Clock is the time source of lease expiry: only differences between its
// readings matter, so it should be monotonic. A nil Config.Clock uses the
// system clock (time.Now, which carries a monotonic reading).
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// NotLeaderError names the leader a leader-only call must go to: lease
// renewals and TTL queries return it on any member but the leader, and a
// front-end forwards the call to ClientURLs. errors.Is(err, ErrNotLeader)
// holds for it.
type NotLeaderError struct {
	LeaderID uint64
	// ClientURLs are the leader's published client URLs; empty if it has
	// not published them yet.
	ClientURLs []string
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("%v: member %x leads (client URLs %v)", ErrNotLeader, e.LeaderID, e.ClientURLs)
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// LeaseStatus answers LeaseTimeToLive.
type LeaseStatus struct {
	ID int64
	// TTL is the remaining time in whole seconds (truncated, as etcd), -1
	// for a lease that does not exist.
	TTL int64
	// GrantedTTL is the TTL the lease was granted with, in seconds.
	GrantedTTL int64
	// Keys are the attached keys, ascending, when asked for.
	Keys [][]byte
}

const (
	// leaseCheckpointInterval: every lease is checkpointed at least this
	// often, which bounds how far a member that replayed old entries after a
	// restart can overestimate a lease.
	leaseCheckpointInterval = 5 * time.Second
	// maxCheckpointsPerCommand keeps one checkpoint command far below the
	// request size limit (about 20 bytes per lease).
	maxCheckpointsPerCommand = 1000
	// maxRevokesPerRound bounds one round of expiry revocations; etcd
	// revokes at most 1000 leases per second.
	maxRevokesPerRound = 500
	revokeConcurrency  = 16
)

// leaseKeeper is the server's lease state that is not replicated. mu is
// taken by the apply goroutine (observeLeases, resetLeases, after apply
// returns), the lease loop and renewals; while holding it, code reads the
// lease table (its lock comes after mu) but never calls into raft, proposes
// or applies.
type leaseKeeper struct {
	once  sync.Once
	clock Clock
	tick  time.Duration // lease loop period
	grace time.Duration // one election timeout

	kick chan struct{} // cap 1: wakes the lease loop

	mu     sync.Mutex
	lessor *lease.Lessor
	// term is the raft term the Lessor was promoted in (valid while
	// primary).
	term uint64
	// changed is closed (and replaced) whenever the Lessor is promoted or
	// demoted.
	changed chan struct{}
	// waiters are renewals waiting for the next checkpoint round.
	waiters []chan error
	// revoking holds expired leases whose revocation is in flight.
	revoking map[int64]bool
	// confirm, when set, replaces the ReadIndex round that proves this
	// member still leads before it revokes: a test plays a leader that has
	// lost its quorum with it.
	confirm func(context.Context) error
	// relinearize, when set, replaces the ReadIndex round LeaseRenewMany
	// waits for before it looks again for leases the Lessor did not know:
	// a test lands a grant's apply inside it.
	relinearize func(context.Context) error
}

// leases returns the keeper, built on first use (restore can feed it before
// Start).
func (s *Server) leases() *leaseKeeper {
	k := &s.leaseState
	k.once.Do(func() {
		et := s.cfg.ElectionTimeout
		k.clock = s.cfg.Clock
		k.grace = et
		k.tick = min(max(et/10, 10*time.Millisecond), 100*time.Millisecond)
		k.kick = make(chan struct{}, 1)
		k.changed = make(chan struct{})
		k.revoking = make(map[int64]bool)
		// Validated config, non-negative durations: NewLessor cannot fail.
		k.lessor, _ = lease.NewLessor(lease.LessorConfig{
			Grace:              et,
			CheckpointSlack:    et / 2,
			CheckpointInterval: leaseCheckpointInterval,
		})
	})
	return k
}

func (k *leaseKeeper) wake() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// MinLeaseTTL is the shortest TTL a lease is granted with, in seconds:
// ceil(1.5 × election timeout), as etcd. Shorter requests are raised to it.
func (s *Server) MinLeaseTTL() int64 {
	return int64(math.Ceil((3 * s.cfg.ElectionTimeout / 2).Seconds()))
}

// newLeaseID picks a lease id from the request-id scheme (member id bits,
// start time, counter), positive as etcd's, so members never pick the same.
func (s *Server) newLeaseID() int64 {
	for {
		if id := int64((s.idPrefix + s.idCounter.Add(1)) & (1<<63 - 1)); id != 0 {
			return id
		}
	}
}

// proposedHere reports whether command id was proposed by this run of this
// member (ids are idPrefix+1, idPrefix+2, ...).
func (s *Server) proposedHere(id uint64) bool {
	return id-s.idPrefix-1 < s.idCounter.Load()
}

// LeaseGrant grants a lease of ttl seconds (raised to MinLeaseTTL) with the
// given id, or one this member picks when id is 0.
func (s *Server) LeaseGrant(ctx context.Context, id, ttl int64) (*command.LeaseGrantResponse, Header, error) {
	req := &command.LeaseGrantRequest{Id: id, Ttl: max(ttl, s.MinLeaseTTL())}
	if err := apply.ValidateLeaseGrant(req); err != nil {
		return nil, Header{}, err
	}
	for attempt := 0; ; attempt++ {
		if id == lease.NoLease {
			req.Id = s.newLeaseID()
		}
		res, err := s.propose(ctx, &command.Command{Op: &command.Command_LeaseGrant{LeaseGrant: req}})
		err = firstErr(err, res.Err)
		if id == lease.NoLease && errors.Is(err, apply.ErrLeaseExist) && attempt < 3 {
			continue // a client took the id we picked
		}
		if err != nil {
			return nil, Header{}, err
		}
		return res.Resp.(*command.LeaseGrantResponse), s.header(res.Rev), nil
	}
}

// LeaseRevoke revokes a lease and deletes its keys (one revision).
func (s *Server) LeaseRevoke(ctx context.Context, id int64) (Header, error) {
	res, err := s.propose(ctx, &command.Command{Op: &command.Command_LeaseRevoke{LeaseRevoke: &command.LeaseRevokeRequest{Id: id}}})
	if err := firstErr(err, res.Err); err != nil {
		return Header{}, err
	}
	return s.header(res.Rev), nil
}

// LeaseRenew renews a lease on the leader and returns its granted TTL in
// seconds, 0 for an unknown or expired lease (not an error, as etcd). The
// header is taken before the renewal. On a follower it returns a
// *NotLeaderError for the front-end to forward; without a leader,
// ErrNoLeader. It may wait for a checkpoint to commit (see the file
// comment).
func (s *Server) LeaseRenew(ctx context.Context, id int64) (int64, Header, error) {
	ttls, h, err := s.LeaseRenewMany(ctx, []int64{id})
	if err != nil {
		return 0, h, err
	}
	return ttls[0], h, nil
}

// LeaseRenewMany renews several leases at once, as LeaseRenew does each:
// ttls[i] answers ids[i]. They are renewed under one lock and wait for at
// most one checkpoint round and one ReadIndex round together, so a member
// forwarding the renewals that reached it meanwhile (the etcd front-end)
// costs the leader one call, not one per lease. An error answers them all.
func (s *Server) LeaseRenewMany(ctx context.Context, ids []int64) ([]int64, Header, error) {
	h := s.header(s.applier.Store().Rev())
	primary, _, err := s.isPrimary()
	if err != nil {
		return nil, h, err // a follower: at once
	}
	// The request timeout bounds the waits only. Most renewals wait for
	// nothing, and the timer would cost more than the renewal.
	var cancel context.CancelFunc
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	bounded := func() context.Context {
		if cancel == nil {
			ctx, cancel = context.WithTimeout(ctx, s.reqTimeout)
		}
		return ctx
	}
	ttls := make([]int64, len(ids))
	// todo is what this round renews, into out; on the retry after a
	// linearize, the leases not known before, whose answers go to ttls[at[j]].
	todo, out := ids, ttls
	var at []int
	for linearized := false; ; {
		if !primary {
			if err := s.awaitPrimary(bounded()); err != nil {
				return nil, h, err
			}
		}
		primary = false // checked again if the loop goes round
		k := s.leases()
		unknown, wait, ok := k.renewMany(todo, out)
		if !ok {
			continue // demoted meanwhile: awaitPrimary says where to go
		}
		if wait != nil {
			k.wake()
			select {
			case err := <-wait:
				if err != nil {
					return nil, h, err
				}
			case <-bounded().Done():
				return nil, h, s.nodeErr(ctx, ctx.Err())
			}
		}
		if len(unknown) == 0 || linearized {
			for j, i := range at {
				ttls[i] = out[j]
			}
			return ttls, h, nil // still unknown after a linearize: 0
		}
		// Granted through another member and not applied here yet?
		linearize := s.linearize
		if k.relinearize != nil {
			linearize = k.relinearize
		}
		if err := linearize(bounded()); err != nil {
			return nil, h, err
		}
		linearized = true
		retry := make([]int64, len(unknown))
		for j, i := range unknown {
			retry[j] = todo[i]
		}
		todo, out, at = retry, make([]int64, len(retry)), unknown
	}
}

// renewMany renews ids on the primary Lessor, setting ttls[i] to ids[i]'s
// granted TTL in seconds (an expired lease is left at 0). It returns the
// positions of the leases it does not track, and a channel for the next
// checkpoint round when one of them moved too far ahead of what followers
// know (registered under the same lock, so the round that takes them
// answers it). primary is false, and nothing renewed, if this member no
// longer leads.
func (k *leaseKeeper) renewMany(ids, ttls []int64) (unknown []int, wait chan error, primary bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.lessor.Primary() {
		return nil, nil, false
	}
	now := k.clock.Now()
	checkpoint := false
	for i, id := range ids {
		if _, tracked := k.lessor.Remaining(now, id); !tracked {
			unknown = append(unknown, i)
			continue
		}
		ttl, cp, ok := k.lessor.Renew(now, id)
		if !ok {
			continue // expired: TTL 0
		}
		checkpoint = checkpoint || cp
		ttls[i] = int64(ttl / time.Second)
	}
	if checkpoint {
		wait = make(chan error, 1)
		k.waiters = append(k.waiters, wait)
	}
	return unknown, wait, true
}

// LeaseTimeToLive reports a lease's remaining and granted TTL (and keys).
// An unknown lease has TTL -1 (not an error). Like LeaseRenew, it is
// answered by the leader only.
func (s *Server) LeaseTimeToLive(ctx context.Context, id int64, keys bool) (LeaseStatus, Header, error) {
	h := s.header(s.applier.Store().Rev())
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	if err := s.awaitPrimary(ctx); err != nil {
		return LeaseStatus{}, h, err
	}
	l, ok := s.applier.Lease(id, keys)
	if !ok {
		// It may have been granted through another member and not be
		// applied here yet.
		if err := s.linearize(ctx); err != nil {
			return LeaseStatus{}, h, err
		}
		if l, ok = s.applier.Lease(id, keys); !ok {
			return LeaseStatus{ID: id, TTL: -1}, h, nil
		}
	}
	k := s.leases()
	k.mu.Lock()
	rem, tracked := k.lessor.Remaining(k.clock.Now(), id)
	k.mu.Unlock()
	if !tracked {
		rem = time.Duration(l.TTL) * time.Second
	}
	return LeaseStatus{ID: id, TTL: int64(max(rem, 0) / time.Second), GrantedTTL: l.TTL, Keys: l.Keys}, h, nil
}

// LeaseLeases lists every lease id, ascending (linearizable).
func (s *Server) LeaseLeases(ctx context.Context) ([]int64, Header, error) {
	if err := s.linearize(ctx); err != nil {
		return nil, Header{}, err
	}
	ls := s.applier.Leases()
	ids := make([]int64, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	return ids, s.header(s.applier.Store().Rev()), nil
}

// LeaderChanges returns a channel closed at the next change of the leader
// this member knows (raftnode.Node.LeaderChanges): a front-end forwarding a
// leader-only call stops waiting on a leader that was replaced.
func (s *Server) LeaderChanges() <-chan struct{} { return s.node.LeaderChanges() }

// leaderError is the error for a leader-only call on a member that does not
// lead, or nil if it does.
func (s *Server) leaderError() error {
	leader := s.node.Leader()
	switch leader {
	case 0:
		return ErrNoLeader
	case s.id:
		return nil
	}
	return &NotLeaderError{LeaderID: leader, ClientURLs: s.applier.ClientURLs(leader)}
}

// awaitPrimary returns nil once this member leads and its Lessor is
// promoted for the current term; ErrNoLeader or a *NotLeaderError at once
// when another member (or none) leads.
func (s *Server) awaitPrimary(ctx context.Context) error {
	for {
		leaderChanged := s.node.LeaderChanges()
		primary, changed, err := s.isPrimary()
		if err != nil || primary {
			return err
		}
		s.leases().wake()
		select {
		case <-changed:
		case <-leaderChanged:
		case <-time.After(s.leases().tick): // a term change keeping the leader
		case <-ctx.Done():
			return s.nodeErr(ctx, ctx.Err())
		}
	}
}

// isPrimary reports, without waiting, whether this member leads and its
// Lessor is promoted for the current term, with the channel that closes
// when the Lessor is next promoted or demoted; ErrNoLeader or a
// *NotLeaderError when another member (or none) leads.
func (s *Server) isPrimary() (primary bool, changed <-chan struct{}, err error) {
	if err := s.leaderError(); err != nil {
		return false, nil, err
	}
	term := s.node.Status().Term
	k := s.leases()
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lessor.Primary() && k.term == term, k.changed, nil
}

// observeLeases feeds the Lessor with what an applied command (id cmdID) did
// to the lease table. It runs on the apply goroutine.
func (s *Server) observeLeases(cmdID uint64, changes []apply.LeaseChange) {
	k := s.leases()
	own := s.proposedHere(cmdID)
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.clock.Now()
	for _, c := range changes {
		switch c.Kind {
		case apply.LeaseGranted:
			k.lessor.Granted(now, c.ID, c.TTL)
		case apply.LeaseRevoked:
			k.lessor.Revoked(c.ID)
			delete(k.revoking, c.ID)
		case apply.LeaseCheckpointed:
			k.lessor.Checkpointed(now, c.ID, c.TTL, time.Duration(c.RemainingMs)*time.Millisecond, own)
		}
	}
}

// resetLeases rebuilds the Lessor from the table after a snapshot restore.
func (s *Server) resetLeases() {
	k := s.leases()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lessor.Reset(k.clock.Now(), s.applier.Leases())
	clear(k.revoking)
}

// startLeases starts the lease loop; Stop ends it.
func (s *Server) startLeases() {
	ctx, cancel := context.WithCancel(context.Background())
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		<-s.stopped
		cancel()
	}()
	go func() {
		defer s.bg.Done()
		s.leaseLoop(ctx)
	}()
}

// leaseLoop promotes and demotes the Lessor with leadership and, while
// primary, checkpoints and revokes. It is the only goroutine that proposes
// checkpoints and expiry revocations.
func (s *Server) leaseLoop(ctx context.Context) {
	k := s.leases()
	tick := time.NewTicker(k.tick)
	defer tick.Stop()
	for ctx.Err() == nil {
		leaderChanged := s.node.LeaderChanges()
		s.leaseRound(ctx)
		select {
		case <-ctx.Done():
		case <-leaderChanged:
		case <-tick.C:
		case <-k.kick:
		}
	}
	k.mu.Lock()
	waiters := k.waiters
	k.waiters = nil
	k.mu.Unlock()
	for _, w := range waiters {
		w <- ErrStopped
	}
}

func (s *Server) leaseRound(ctx context.Context) {
	k := s.leases()
	st := s.node.Status()
	k.mu.Lock()
	wasPrimary := k.lessor.Primary()
	primary := wasPrimary && k.term == st.Term
	k.mu.Unlock()
	if st.Leader != s.id {
		if wasPrimary {
			s.demoteLeases()
		}
		return
	}
	if !primary {
		if !s.promoteLeases(ctx, st.Term) {
			return
		}
	}
	s.checkpointLeases(ctx, false)
	s.revokeExpired(ctx)
}

func (s *Server) demoteLeases() {
	k := s.leases()
	k.mu.Lock()
	k.lessor.Demote()
	close(k.changed)
	k.changed = make(chan struct{})
	waiters := k.waiters
	k.waiters = nil
	k.mu.Unlock()
	err := s.leaderError()
	if err == nil {
		err = ErrNoLeader
	}
	for _, w := range waiters {
		w <- err
	}
	s.logger.Info("lease expiry: no longer the leader")
}

// promoteLeases makes the Lessor primary for term once this member has
// confirmed its leadership and applied everything committed before.
func (s *Server) promoteLeases(ctx context.Context, term uint64) bool {
	k := s.leases()
	rctx, cancel := context.WithTimeout(ctx, 2*s.cfg.ElectionTimeout)
	defer cancel()
	if err := s.linearize(rctx); err != nil {
		return false
	}
	if st := s.node.Status(); st.Leader != s.id || st.Term != term {
		return false
	}
	k.mu.Lock()
	k.lessor.Promote(k.clock.Now(), s.applier.Leases())
	k.term = term
	n := k.lessor.Len()
	close(k.changed)
	k.changed = make(chan struct{})
	clear(k.revoking)
	k.mu.Unlock()
	s.logger.Info("lease expiry: leader, tracking leases", "term", term, "leases", n)
	return true
}

// proposeLease proposes a lease command with a timeout shorter than a
// client request's: a lease round must not stall the loop for long. The
// member proposes it on its own behalf (expiry, checkpoints), with root's
// rights when auth is on.
func (s *Server) proposeLease(ctx context.Context, cmd *command.Command) (apply.Result, error) {
	ctx = WithSubject(ctx, systemSubject)
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.ElectionTimeout+time.Second)
	defer cancel()
	res, err := s.propose(ctx, cmd)
	return res, firstErr(err, res.Err)
}

// checkpointLeases proposes the checkpoints due (all of them when all),
// then answers the renewals that were waiting for them.
func (s *Server) checkpointLeases(ctx context.Context, all bool) {
	k := s.leases()
	k.mu.Lock()
	waiters := k.waiters
	k.waiters = nil
	k.mu.Unlock()
	var err error
	var pending []lease.Checkpoint // CheckpointAll's rest
	for range 64 {
		var cps []lease.Checkpoint
		k.mu.Lock()
		switch {
		case all && pending == nil:
			pending = k.lessor.CheckpointAll(k.clock.Now())
		case !all:
			cps = k.lessor.Checkpoints(k.clock.Now(), maxCheckpointsPerCommand)
		}
		k.mu.Unlock()
		if all {
			n := min(len(pending), maxCheckpointsPerCommand)
			cps, pending = pending[:n], pending[n:]
		}
		if len(cps) == 0 {
			break
		}
		req := &command.LeaseCheckpointRequest{Checkpoints: make([]*command.LeaseCheckpoint, len(cps))}
		ids := make([]int64, len(cps))
		for i, c := range cps {
			req.Checkpoints[i] = &command.LeaseCheckpoint{Id: c.ID, RemainingTtlMs: c.Remaining.Milliseconds()}
			ids[i] = c.ID
		}
		if _, err = s.proposeLease(ctx, &command.Command{Op: &command.Command_LeaseCheckpoint{LeaseCheckpoint: req}}); err != nil {
			k.mu.Lock()
			k.lessor.CheckpointFailed(ids)
			k.mu.Unlock()
			s.logger.Warn("lease checkpoint failed", "leases", len(ids), "err", err)
			break
		}
	}
	for _, w := range waiters {
		w <- err
	}
}

// revokeExpired revokes the leases that expired by this leader's clock,
// after a ReadIndex round confirms it still leads (unless
// UnsafeLeaseExpiryWithoutQuorum).
func (s *Server) revokeExpired(ctx context.Context) {
	k := s.leases()
	k.mu.Lock()
	term, confirm := k.term, k.confirm
	var ids []int64
	for _, id := range k.lessor.Expired(k.clock.Now(), maxRevokesPerRound) {
		if !k.revoking[id] {
			k.revoking[id] = true
			ids = append(ids, id)
		}
	}
	k.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	release := func(ids []int64) {
		k.mu.Lock()
		for _, id := range ids {
			delete(k.revoking, id)
		}
		k.mu.Unlock()
	}
	if s.cfg.UnsafeLeaseExpiryWithoutQuorum {
		s.logger.Info("lease expiry: UNSAFE: revoking without confirming leadership", "expired", len(ids), "term", term)
	} else {
		if confirm == nil {
			confirm = func(ctx context.Context) error { _, err := s.node.ReadIndex(ctx); return err }
		}
		rctx, cancel := context.WithTimeout(ctx, 2*s.cfg.ElectionTimeout)
		err := confirm(rctx)
		cancel()
		if st := s.node.Status(); err != nil || st.Leader != s.id || st.Term != term {
			release(ids)
			s.logger.Info("lease expiry: leadership not confirmed; revoking nothing", "expired", len(ids), "err", err)
			return
		}
	}
	sem := make(chan struct{}, revokeConcurrency)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := s.proposeLease(ctx, &command.Command{Op: &command.Command_LeaseRevoke{LeaseRevoke: &command.LeaseRevokeRequest{Id: id}}})
			switch {
			case err == nil, errors.Is(err, apply.ErrLeaseNotFound):
				s.logger.Debug("lease expired and revoked", "lease", fmt.Sprintf("%016x", id))
			default:
				release([]int64{id})
				s.logger.Warn("revoking expired lease failed", "lease", fmt.Sprintf("%016x", id), "err", err)
			}
		})
	}
	wg.Wait()
}

// handOverLeases checkpoints every lease when this member leads, so the
// next leader starts from exact remaining TTLs. Stop calls it before it
// transfers leadership.
func (s *Server) handOverLeases() {
	if s.node == nil {
		return
	}
	k := s.leases()
	k.mu.Lock()
	primary := k.lessor.Primary()
	k.mu.Unlock()
	if !primary || s.node.Leader() != s.id {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ElectionTimeout)
	defer cancel()
	s.checkpointLeases(ctx, true)
}
