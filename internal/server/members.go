package server

// Runtime membership: add (as a voter or a learner), remove, update peer
// URLs, promote a learner, move leadership; the checks etcd makes before
// each; and what happens to a member that is removed.
//
// The checks run on the member that serves the request, against its member
// table after a ReadIndex, and this member's changes are serialized by
// membership.confMu. They are not re-checked when the conf change is applied
// (raft applies a committed conf change unconditionally), so two members
// changing membership at the same moment could both pass; etcd re-validates
// at apply time instead. A conf change raft refuses outright (one is already
// pending) is answered with ErrTimeout.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/raftnode"
	"github.com/concord-db/concord/internal/transport"
)

// Membership errors. The etcd front-end maps each to etcd's error of the
// same meaning.
var (
	ErrMemberExists          = errors.New("server: member ID already exist")
	ErrPeerURLExists         = errors.New("server: Peer URLs already exists")
	ErrMemberNotFound        = errors.New("server: member not found")
	ErrMemberBadURLs         = errors.New("server: given member URLs are invalid")
	ErrTooManyLearners       = errors.New("server: too many learner members in cluster")
	ErrNotEnoughStarted      = errors.New("server: re-configuration failed due to not enough started members")
	ErrMemberNotLearner      = errors.New("server: can only promote a learner member")
	ErrLearnerNotReady       = errors.New("server: can only promote a learner member which is in sync with leader")
	ErrUnhealthy             = errors.New("server: unhealthy cluster")
	ErrNotLeader             = errors.New("server: not leader")
	ErrBadLeaderTransferee   = errors.New("server: bad leader transferee")
	ErrLeaderTransferTimeout = errors.New("server: request timed out, leader transfer took too long")
	// ErrMemberRemoved stops a member that learns it was removed.
	ErrMemberRemoved = errors.New("server: the member has been permanently removed from the cluster")
)

// MaxLearners is how many learners the cluster may hold at once (etcd's
// --max-learners default).
const MaxLearners = 1

// membership is the Server's membership state that is not replicated.
type membership struct {
	// confMu serializes this member's conf changes: raft refuses a second
	// one while the first is uncommitted.
	confMu sync.Mutex

	mu      sync.Mutex
	removed map[uint64]bool // ids whose removal this process applied
	// joinPeers are the members a joining member learned from the cluster
	// before its first start (nil otherwise).
	joinPeers map[uint64]string

	// learner caches whether this member is a learner in the applied member
	// table: every client request asks.
	learner atomic.Bool

	fatalOnce sync.Once
	fatal     error
	fatalc    chan struct{} // closed once fatal is set
}

func newMembership(joinPeers map[uint64]string) membership {
	return membership{removed: make(map[uint64]bool), joinPeers: joinPeers, fatalc: make(chan struct{})}
}

func (m *membership) isRemoved(id uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removed[id]
}

// stopWith records a fatal error once; the watcher started by
// startMembership stops the raft node.
func (m *membership) stopWith(err error) {
	m.fatalOnce.Do(func() {
		m.fatal = err
		close(m.fatalc)
	})
}

func (m *membership) err() error {
	select {
	case <-m.fatalc:
		return m.fatal
	default:
		return nil
	}
}

// ---- pure rules (table-tested) ----

// ValidatePeerURLs checks URLs given to add or update a member: at least
// one, each http://host:port or https://host:port with nothing after the
// port, no duplicates.
func ValidatePeerURLs(urls []string) error {
	if len(urls) == 0 {
		return ErrMemberBadURLs
	}
	seen := map[string]bool{}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" || u.Hostname() == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return ErrMemberBadURLs
		}
		if seen[raw] {
			return ErrMemberBadURLs
		}
		seen[raw] = true
	}
	return nil
}

// NewMemberID derives the id of a member added at runtime from its peer
// URLs, the cluster token and the time of the add, as etcd does, so a
// member re-added at the same URLs gets a fresh id (raft ids are never
// reused). Founding members use MemberID instead.
func NewMemberID(peerURLs []string, token string, now time.Time) uint64 {
	urls := slices.Clone(peerURLs)
	sort.Strings(urls)
	b := []byte{}
	for _, u := range urls {
		b = append(b, u...)
		b = append(b, 0)
	}
	b = append(b, token...)
	b = binary.BigEndian.AppendUint64(b, uint64(now.UnixNano()))
	h := sha256.Sum256(b)
	id := binary.BigEndian.Uint64(h[:8])
	if id == 0 || id >= math.MaxUint64-1 {
		id = 1 // 0 is raft's "none"; the two highest ids are reserved
	}
	return id
}

func findMember(ms []*command.Member, id uint64) *command.Member {
	for _, m := range ms {
		if m.GetId() == id {
			return m
		}
	}
	return nil
}

func voters(ms []*command.Member) []*command.Member {
	var out []*command.Member
	for _, m := range ms {
		if !m.GetIsLearner() {
			out = append(out, m)
		}
	}
	return out
}

// started reports whether a member has published its name: it ran at least
// once (etcd's IsStarted).
func started(m *command.Member) bool { return m.GetName() != "" }

// readyToAddVoter is etcd's IsReadyToAddVotingMember: after adding one
// voter, a quorum of voters must still be started members. Adding a second
// member to a one-member cluster is always allowed.
func readyToAddVoter(ms []*command.Member) bool {
	n, up := 1, 0
	for _, m := range voters(ms) {
		n++
		if started(m) {
			up++
		}
	}
	if up == 1 && n == 2 {
		return true
	}
	return up >= n/2+1
}

// readyToPromote is etcd's IsReadyToPromoteMember: the learner counts as a
// started voter, and a quorum of the grown voter set must be started.
func readyToPromote(ms []*command.Member) bool {
	n, up := 1, 1
	for _, m := range voters(ms) {
		n++
		if started(m) {
			up++
		}
	}
	return up >= n/2+1
}

// checkAdd decides whether m may join ms. strict applies etcd's
// --strict-reconfig-check rules; connected says whether this member has had
// a live stream to a member for the health interval (itself included).
func checkAdd(ms []*command.Member, m *command.Member, strict bool, connected func(uint64) bool) error {
	if strict {
		if !m.GetIsLearner() && !readyToAddVoter(ms) {
			return ErrNotEnoughStarted
		}
		for _, v := range voters(ms) {
			if !connected(v.GetId()) {
				return ErrUnhealthy
			}
		}
	}
	if findMember(ms, m.GetId()) != nil {
		return ErrMemberExists
	}
	for _, o := range ms {
		for _, u := range o.GetPeerUrls() {
			if slices.Contains(m.GetPeerUrls(), u) {
				return ErrPeerURLExists
			}
		}
	}
	if m.GetIsLearner() {
		n := 0
		for _, o := range ms {
			if o.GetIsLearner() {
				n++
			}
		}
		if n+1 > MaxLearners {
			return ErrTooManyLearners
		}
	}
	return nil
}

// checkRemove decides whether member id may leave ms, served by member
// self. Removing the last voter is always refused (raft cannot run without
// one); the rest is etcd's mayRemoveMember under strict: this member must
// reach a quorum, and removing a reachable voter must leave a quorum of the
// remaining voters reachable.
func checkRemove(ms []*command.Member, self, id uint64, strict bool, connected func(uint64) bool) error {
	m := findMember(ms, id)
	if m == nil {
		return ErrMemberNotFound
	}
	if m.GetIsLearner() {
		return nil
	}
	vs := voters(ms)
	if len(vs) == 1 {
		return ErrNotEnoughStarted
	}
	if !strict {
		return nil
	}
	active := 0
	for _, v := range vs {
		if v.GetId() == self || connected(v.GetId()) {
			active++
		}
	}
	if active < len(vs)/2+1 {
		return ErrNotEnoughStarted
	}
	if id != self && !connected(id) {
		return nil // a member that is down is not part of the active quorum
	}
	if active-1 < 1+(len(vs)-1)/2 {
		return ErrNotEnoughStarted
	}
	return nil
}

// checkUpdate decides whether member id may take urls.
func checkUpdate(ms []*command.Member, id uint64, urls []string) error {
	if findMember(ms, id) == nil {
		return ErrMemberNotFound
	}
	for _, o := range ms {
		if o.GetId() == id {
			continue
		}
		for _, u := range o.GetPeerUrls() {
			if slices.Contains(urls, u) {
				return ErrPeerURLExists
			}
		}
	}
	return nil
}

// checkPromote decides, on the leader, whether learner id may become a
// voter given raft's progress.
func checkPromote(ms []*command.Member, leader, id uint64, pr map[uint64]raftnode.Progress, strict bool) error {
	m := findMember(ms, id)
	if m == nil {
		return ErrMemberNotFound
	}
	if !m.GetIsLearner() {
		return ErrMemberNotLearner
	}
	ready, found := raftnode.LearnerReady(pr, leader, id)
	if !found {
		return ErrMemberNotFound
	}
	if !ready {
		return ErrLearnerNotReady
	}
	if strict && !readyToPromote(ms) {
		return ErrNotEnoughStarted
	}
	return nil
}

// ---- the API ----

// healthInterval is how long a peer's stream must have been up to count as
// connected for the strict reconfiguration checks. etcd uses 5 s; Concord
// scales it with the election timeout so short timeouts (tests) wait less.
func (s *Server) healthInterval() time.Duration {
	return min(5*time.Second, 2*s.cfg.ElectionTimeout)
}

// connectedFunc reports whether this member has had a live stream to a
// member for the health interval; this member is always connected.
func (s *Server) connectedFunc() func(uint64) bool {
	since := time.Now().Add(-s.healthInterval())
	return func(id uint64) bool {
		if id == s.id {
			return true
		}
		t := s.transport.ActiveSince(id)
		return !t.IsZero() && t.Before(since)
	}
}

// membersAfter returns the member table and a header once this member has
// applied everything committed so far.
func (s *Server) membersAfter(ctx context.Context) ([]*command.Member, Header, error) {
	if err := s.linearize(ctx); err != nil {
		return nil, Header{}, err
	}
	return s.applier.Members(), s.header(s.applier.Store().Rev()), nil
}

// AddMember adds a member with the given peer URLs, as a learner or a
// voter. It returns the new member (no name yet: it has not started) and
// the member table after the change.
func (s *Server) AddMember(ctx context.Context, peerURLs []string, learner bool) (*command.Member, []*command.Member, Header, error) {
	if err := ValidatePeerURLs(peerURLs); err != nil {
		return nil, nil, Header{}, err
	}
	s.ms.confMu.Lock()
	defer s.ms.confMu.Unlock()
	if err := s.linearize(ctx); err != nil {
		return nil, nil, Header{}, err
	}
	m := &command.Member{
		Id:        NewMemberID(peerURLs, s.cfg.ClusterToken, time.Now()),
		PeerUrls:  slices.Clone(peerURLs),
		IsLearner: learner,
	}
	if err := checkAdd(s.applier.Members(), m, s.cfg.StrictReconfigCheck, s.connectedFunc()); err != nil {
		return nil, nil, Header{}, err
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, nil, Header{}, err
	}
	typ := raftpb.ConfChangeType_ConfChangeAddNode
	if learner {
		typ = raftpb.ConfChangeType_ConfChangeAddLearnerNode
	}
	if err := s.proposeConfChange(ctx, &raftpb.ConfChange{Type: &typ, NodeId: new(m.Id), Context: data}); err != nil {
		return nil, nil, Header{}, err
	}
	s.logger.Info("added member", "member", fmt.Sprintf("%x", m.Id), "peer-urls", peerURLs, "learner", learner)
	return m, s.applier.Members(), s.header(s.applier.Store().Rev()), nil
}

// RemoveMember removes member id. When id leads, leadership moves to
// another voter first, so the cluster does not wait out an election.
func (s *Server) RemoveMember(ctx context.Context, id uint64) ([]*command.Member, Header, error) {
	s.ms.confMu.Lock()
	defer s.ms.confMu.Unlock()
	if err := s.linearize(ctx); err != nil {
		return nil, Header{}, err
	}
	ms := s.applier.Members()
	if err := checkRemove(ms, s.id, id, s.cfg.StrictReconfigCheck, s.connectedFunc()); err != nil {
		return nil, Header{}, err
	}
	if s.node.Leader() == id {
		if err := s.moveLeadershipAway(ctx, id); err != nil {
			return nil, Header{}, err
		}
		// Propose only once this member follows the new leader, or raft
		// drops the proposal.
		if err := s.awaitLeaderOtherThan(ctx, id); err != nil {
			return nil, Header{}, err
		}
	}
	typ := raftpb.ConfChangeType_ConfChangeRemoveNode
	if err := s.proposeConfChange(ctx, &raftpb.ConfChange{Type: &typ, NodeId: new(id)}); err != nil {
		return nil, Header{}, err
	}
	s.logger.Info("removed member", "member", fmt.Sprintf("%x", id))
	return s.applier.Members(), s.header(s.applier.Store().Rev()), nil
}

// moveLeadershipAway makes leader id hand leadership to another voter: here
// when this member leads, else by asking the leader over the peer port.
func (s *Server) moveLeadershipAway(ctx context.Context, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	if id == s.id {
		if err := s.node.TransferLeadership(ctx); err != nil {
			return s.nodeErr(ctx, err)
		}
		return nil
	}
	_, err := s.askMember(ctx, id, encodeRequest(opTransferAway, id))
	return err
}

// awaitLeaderOtherThan waits until this member knows a leader that is not
// id.
func (s *Server) awaitLeaderOtherThan(ctx context.Context, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	for {
		changed := s.node.LeaderChanges()
		if l := s.node.Leader(); l != 0 && l != id {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s.nodeErr(ctx, ctx.Err())
		case <-s.node.Done():
			return ErrStopped
		}
	}
}

// UpdateMember replaces member id's peer URLs.
func (s *Server) UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*command.Member, Header, error) {
	if err := ValidatePeerURLs(peerURLs); err != nil {
		return nil, Header{}, err
	}
	s.ms.confMu.Lock()
	defer s.ms.confMu.Unlock()
	if err := s.linearize(ctx); err != nil {
		return nil, Header{}, err
	}
	if err := checkUpdate(s.applier.Members(), id, peerURLs); err != nil {
		return nil, Header{}, err
	}
	data, err := proto.Marshal(&command.Member{Id: id, PeerUrls: slices.Clone(peerURLs)})
	if err != nil {
		return nil, Header{}, err
	}
	typ := raftpb.ConfChangeType_ConfChangeUpdateNode
	if err := s.proposeConfChange(ctx, &raftpb.ConfChange{Type: &typ, NodeId: new(id), Context: data}); err != nil {
		return nil, Header{}, err
	}
	return s.applier.Members(), s.header(s.applier.Store().Rev()), nil
}

// PromoteMember makes learner id a voter. Only the leader knows whether the
// learner has caught up, so a follower forwards the promotion to it.
func (s *Server) PromoteMember(ctx context.Context, id uint64) ([]*command.Member, Header, error) {
	if err := s.promoteHere(ctx, id); errors.Is(err, ErrNotLeader) {
		leader := s.node.Leader()
		if leader == 0 {
			return nil, Header{}, ErrNoLeader
		}
		if _, err := s.askMember(ctx, leader, encodeRequest(opPromote, id)); err != nil {
			return nil, Header{}, err
		}
	} else if err != nil {
		return nil, Header{}, err
	}
	return s.membersAfter(ctx)
}

// promoteHere promotes learner id if this member leads (ErrNotLeader
// otherwise).
func (s *Server) promoteHere(ctx context.Context, id uint64) error {
	s.ms.confMu.Lock()
	defer s.ms.confMu.Unlock()
	if err := s.linearize(ctx); err != nil {
		return err
	}
	pr, err := s.node.Progress(ctx)
	if errors.Is(err, raftnode.ErrNotLeader) {
		return ErrNotLeader
	}
	if err != nil {
		return s.nodeErr(ctx, err)
	}
	if err := checkPromote(s.applier.Members(), s.id, id, pr, s.cfg.StrictReconfigCheck); err != nil {
		return err
	}
	// AddNode for a known member with no context keeps its row and clears
	// IsLearner (apply.Applier.ApplyConfChange).
	typ := raftpb.ConfChangeType_ConfChangeAddNode
	if err := s.proposeConfChange(ctx, &raftpb.ConfChange{Type: &typ, NodeId: new(id)}); err != nil {
		return err
	}
	s.logger.Info("promoted learner", "member", fmt.Sprintf("%x", id))
	return nil
}

// MoveLeader hands leadership to voter target. Only the leader may be asked
// (etcd's rule); it waits until target leads.
func (s *Server) MoveLeader(ctx context.Context, target uint64) (Header, error) {
	if s.node.Leader() != s.id {
		return Header{}, ErrNotLeader
	}
	m := findMember(s.applier.Members(), target)
	if m == nil || m.GetIsLearner() {
		return Header{}, ErrBadLeaderTransferee
	}
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	if err := s.node.TransferLeadershipTo(ctx, target); err != nil {
		switch {
		case errors.Is(err, raftnode.ErrNotLeader):
			return Header{}, ErrNotLeader
		case errors.Is(err, context.DeadlineExceeded):
			return Header{}, ErrLeaderTransferTimeout
		}
		return Header{}, s.nodeErr(ctx, err)
	}
	return s.header(s.applier.Store().Rev()), nil
}

// IsLearner reports whether this member is a learner in its applied member
// table. It is cheap: the answer is cached whenever the table changes.
func (s *Server) IsLearner() bool { return s.ms.learner.Load() }

// refreshLearner recomputes the IsLearner cache.
func (s *Server) refreshLearner() {
	m := findMember(s.applier.Members(), s.id)
	s.ms.learner.Store(m != nil && m.GetIsLearner())
}

// membersRestored runs on the raft goroutine after a snapshot replaced the
// member table.
func (s *Server) membersRestored() { s.refreshLearner() }

// proposeConfChange proposes cc and waits until this member applied it.
// cc.Id carries the request id the apply hook wakes.
func (s *Server) proposeConfChange(ctx context.Context, cc *raftpb.ConfChange) error {
	id := s.idPrefix + s.idCounter.Add(1)
	cc.Id = new(id)
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	ch := make(chan apply.Result, 1)
	s.waitMu.Lock()
	s.waiters[id] = ch
	s.waitMu.Unlock()
	defer func() {
		s.waitMu.Lock()
		delete(s.waiters, id)
		s.waitMu.Unlock()
	}()
	if err := s.node.ProposeConfChange(ctx, cc); err != nil {
		return s.nodeErr(ctx, err)
	}
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return s.nodeErr(ctx, ctx.Err())
	case <-s.node.Done():
		return ErrStopped
	}
}

// confChangeApplied runs on the raft goroutine after the applier took a
// conf change and before the transport is re-pointed (syncPeers): a removed
// member is refused from then on, and this member stops if it is the one
// removed.
func (s *Server) confChangeApplied(cc *raftpb.ConfChange) {
	s.refreshLearner()
	if cc.GetType() == raftpb.ConfChangeType_ConfChangeRemoveNode {
		s.ms.mu.Lock()
		s.ms.removed[cc.GetNodeId()] = true
		s.ms.mu.Unlock()
		if cc.GetNodeId() == s.id {
			s.logger.Error("this member was removed from the cluster; stopping")
			s.ms.stopWith(ErrMemberRemoved)
		}
	}
	if id := cc.GetId(); id != 0 {
		s.trigger(id, apply.Result{})
	}
}

// startMembership starts the goroutines membership needs: the one that
// stops the raft node when this member learns it was removed, and the
// leader's auto-promotion loop when configured.
func (s *Server) startMembership() {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		select {
		case <-s.ms.fatalc:
			s.node.Stop()
		case <-s.stopped:
		}
	}()
	if s.cfg.AutoPromote {
		s.bg.Add(1)
		go s.autoPromoteLoop()
	}
}

// autoPromoteLoop promotes, while this member leads, every learner that has
// caught up (beyond etcd, which leaves promotion to the operator).
func (s *Server) autoPromoteLoop() {
	defer s.bg.Done()
	tick := time.NewTicker(max(s.cfg.ElectionTimeout/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.stopped:
			return
		case <-tick.C:
		}
		if s.node.Leader() != s.id {
			continue
		}
		for _, m := range s.applier.Members() {
			if !m.GetIsLearner() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.reqTimeout)
			err := s.promoteHere(ctx, m.GetId())
			cancel()
			if err == nil {
				s.logger.Info("auto-promoted learner", "member", fmt.Sprintf("%x", m.GetId()))
			} else if !errors.Is(err, ErrLearnerNotReady) {
				s.logger.Debug("auto-promotion failed", "member", fmt.Sprintf("%x", m.GetId()), "err", err)
			}
		}
	}
}

// ---- transport hooks (nodeHandler implements transport.RemovalHandler and
// transport.RequestHandler) ----

func (h nodeHandler) IsRemoved(id uint64) bool { return h.s.ms.isRemoved(id) }

func (h nodeHandler) ReportRemoved(by uint64) {
	h.s.logger.Error("a peer says this member was removed from the cluster; stopping", "peer", fmt.Sprintf("%x", by))
	h.s.ms.stopWith(ErrMemberRemoved)
}

func (h nodeHandler) ServeRequest(ctx context.Context, req []byte) ([]byte, error) {
	return h.s.serveRequest(ctx, req)
}

var (
	_ transport.RemovalHandler = nodeHandler{}
	_ transport.RequestHandler = nodeHandler{}
)
