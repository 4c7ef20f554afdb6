package server

import (
	"context"
	"errors"
	"io"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/raftnode"
)

// propose replicates cmd and returns apply's result once this member applied
// it. cmd's version, id and stamp are filled in here.
func (s *Server) propose(ctx context.Context, cmd *command.Command) (apply.Result, error) {
	cmd.Version = command.Version
	cmd.Id = s.idPrefix + s.idCounter.Add(1)
	cmd.Stamp = time.Now().UnixNano()
	cmd.Auth = authInfo(ctx)
	if err := s.admit(cmd); err != nil {
		return apply.Result{}, err
	}
	if err := s.applier.Authorize(cmd); err != nil {
		return apply.Result{}, err
	}
	data, err := command.Marshal(cmd)
	if err != nil {
		return apply.Result{}, err
	}
	if len(data) > s.cfg.MaxRequestBytes {
		return apply.Result{}, ErrRequestTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()

	ch := make(chan apply.Result, 1)
	s.waitMu.Lock()
	s.waiters[cmd.Id] = ch
	s.waitMu.Unlock()
	defer func() {
		s.waitMu.Lock()
		delete(s.waiters, cmd.Id)
		s.waitMu.Unlock()
	}()

	if err := s.node.Propose(ctx, data); err != nil {
		s.mt.proposalsFailed.Add(1)
		return apply.Result{}, s.nodeErr(ctx, err)
	}
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		s.mt.proposalsFailed.Add(1)
		return apply.Result{}, s.nodeErr(ctx, ctx.Err())
	case <-s.node.Done():
		s.mt.proposalsFailed.Add(1)
		return apply.Result{}, ErrStopped
	}
}

// nodeErr turns a raft node or context error into the server's terms.
func (s *Server) nodeErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, raftnode.ErrStopped):
		return ErrStopped
	case errors.Is(err, raftnode.ErrProposalDropped):
		if s.node.Leader() == 0 {
			return ErrNoLeader
		}
		return ErrTimeout
	case errors.Is(err, context.DeadlineExceeded):
		if s.node.Leader() == 0 {
			return ErrNoLeader
		}
		return ErrTimeout
	case errors.Is(err, context.Canceled):
		return err
	}
	return err
}

func (s *Server) trigger(id uint64, res apply.Result) {
	s.waitMu.Lock()
	ch, ok := s.waiters[id]
	if ok {
		delete(s.waiters, id)
	}
	s.waitMu.Unlock()
	if ok {
		ch <- res // buffered, never blocks
	}
}

func (s *Server) failWaiters(err error) {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	for id, ch := range s.waiters {
		ch <- apply.Result{Err: err}
		delete(s.waiters, id)
	}
}

// linearize waits until this member's applied state reflects every write
// acknowledged before the call (ReadIndex, then wait for apply).
func (s *Server) linearize(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	idx, err := s.node.ReadIndex(ctx)
	if err != nil {
		return s.nodeErr(ctx, err)
	}
	if err := s.node.WaitApplied(ctx, idx); err != nil {
		return s.nodeErr(ctx, err)
	}
	return nil
}

// linearizeRead is the barrier of a client's linearizable key read (Range,
// read-only Txn): linearize, unless Config.UnsafeLocalReads, which serves
// the read from whatever this member has applied — stale on a member cut off
// from the leader. Leadership checks (leases, auth, members) keep linearize.
func (s *Server) linearizeRead(ctx context.Context) error {
	if s.cfg.UnsafeLocalReads {
		return nil
	}
	return s.linearize(ctx)
}

// Range reads keys; linearizable unless req.Serializable.
func (s *Server) Range(ctx context.Context, req *command.RangeRequest) (*command.RangeResponse, Header, error) {
	if err := apply.ValidateRange(req); err != nil {
		return nil, Header{}, err
	}
	if !req.Serializable {
		if err := s.linearizeRead(ctx); err != nil {
			return nil, Header{}, err
		}
	}
	if err := apply.PermitRange(s.applier.Auth(), subjectOf(ctx), req); err != nil {
		return nil, Header{}, err
	}
	resp, rev, err := s.applier.Range(req)
	if err != nil {
		return nil, Header{}, err
	}
	return resp, s.header(rev), nil
}

// Put writes one key.
func (s *Server) Put(ctx context.Context, req *command.PutRequest) (*command.PutResponse, Header, error) {
	if err := apply.ValidatePut(req); err != nil {
		return nil, Header{}, err
	}
	res, err := s.propose(ctx, &command.Command{Op: &command.Command_Put{Put: req}})
	if err := firstErr(err, res.Err); err != nil {
		return nil, Header{}, err
	}
	return res.Resp.(*command.PutResponse), s.header(res.Rev), nil
}

// DeleteRange deletes keys.
func (s *Server) DeleteRange(ctx context.Context, req *command.DeleteRangeRequest) (*command.DeleteRangeResponse, Header, error) {
	if err := apply.ValidateDeleteRange(req); err != nil {
		return nil, Header{}, err
	}
	res, err := s.propose(ctx, &command.Command{Op: &command.Command_DeleteRange{DeleteRange: req}})
	if err := firstErr(err, res.Err); err != nil {
		return nil, Header{}, err
	}
	return res.Resp.(*command.DeleteRangeResponse), s.header(res.Rev), nil
}

// Txn runs a transaction. A txn that only reads is served like a read: no
// log entry, linearizable through ReadIndex.
func (s *Server) Txn(ctx context.Context, req *command.TxnRequest) (*command.TxnResponse, Header, error) {
	if err := apply.ValidateTxn(req, s.cfg.MaxTxnOps); err != nil {
		return nil, Header{}, err
	}
	if apply.IsReadOnlyTxn(req) {
		if err := s.linearizeRead(ctx); err != nil {
			return nil, Header{}, err
		}
		if err := apply.PermitTxn(s.applier.Auth(), subjectOf(ctx), req); err != nil {
			return nil, Header{}, err
		}
		resp, rev, err := s.applier.ReadTxn(req)
		if err != nil {
			return nil, Header{}, err
		}
		return resp, s.header(rev), nil
	}
	res, err := s.propose(ctx, &command.Command{Op: &command.Command_Txn{Txn: req}})
	if err := firstErr(err, res.Err); err != nil {
		return nil, Header{}, err
	}
	return res.Resp.(*command.TxnResponse), s.header(res.Rev), nil
}

// Compact drops history below req.Revision on every member.
func (s *Server) Compact(ctx context.Context, req *command.CompactionRequest) (Header, error) {
	res, err := s.propose(ctx, &command.Command{Op: &command.Command_Compaction{Compaction: req}})
	if err := firstErr(err, res.Err); err != nil {
		return Header{}, err
	}
	return s.header(res.Rev), nil
}

// Members returns the member table; linearizable unless told otherwise.
func (s *Server) Members(ctx context.Context, linearizable bool) ([]*command.Member, Header, error) {
	if linearizable {
		if err := s.linearize(ctx); err != nil {
			return nil, Header{}, err
		}
	}
	return s.applier.Members(), s.header(s.applier.Store().Rev()), nil
}

// Hash returns the hash of the keyspace at rev (0: current) and the
// revision it covers.
func (s *Server) Hash(rev int64) (hash uint32, compactRev int64, h Header, err error) {
	if rev == 0 {
		rev = s.applier.Store().Rev()
	}
	hash, compactRev, err = s.applier.Hash(rev)
	return hash, compactRev, s.header(rev), err
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// stateMachine is the Server seen by the raft node: it applies committed
// entries and wakes the requests waiting on them.
type stateMachine Server

func (sm *stateMachine) Apply(index uint64, data []byte) error {
	start := time.Now()
	id, res, err := sm.applier.Apply(index, data)
	sm.mt.apply.observe(time.Since(start))
	if err != nil {
		return err
	}
	(*Server)(sm).notifyWatchers(res)         // watch.go; before the proposer wakes
	(*Server)(sm).tokenRegistered(index, res) // auth.go; before the proposer wakes
	if len(res.Leases) > 0 {
		(*Server)(sm).observeLeases(id, res.Leases)
	}
	if id != 0 {
		(*Server)(sm).trigger(id, res)
	}
	return nil
}

func (sm *stateMachine) ApplyConfChange(index uint64, cc *raftpb.ConfChange) error {
	if err := sm.applier.ApplyConfChange(index, cc); err != nil {
		return err
	}
	(*Server)(sm).confChangeApplied(cc) // members.go; before syncPeers
	(*Server)(sm).syncPeers()
	return nil
}

func (sm *stateMachine) Snapshot() (func(io.Writer) error, error) {
	return sm.applier.SnapshotView()
}

func (sm *stateMachine) Restore(snap *raftpb.Snapshot) error {
	if err := sm.applier.Restore(snap.GetData()); err != nil {
		return err
	}
	(*Server)(sm).resetLeases()
	(*Server)(sm).restoreWatchers() // watch.go
	(*Server)(sm).membersRestored() // members.go
	(*Server)(sm).syncPeers()
	return nil
}

// syncPeers points the transport at every member of the replicated table.
func (s *Server) syncPeers() {
	if s.transport == nil {
		return
	}
	want := map[uint64]string{}
	for _, m := range s.applier.Members() {
		if m.Id == s.id || len(m.PeerUrls) == 0 {
			continue
		}
		addr, err := PeerAddr(m.PeerUrls[0])
		if err != nil {
			s.logger.Warn("member has a bad peer URL", "member", m.Name, "url", m.PeerUrls[0], "err", err)
			continue
		}
		want[m.Id] = addr
	}
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	for id := range s.peers {
		if _, ok := want[id]; !ok {
			s.transport.RemovePeer(id)
			delete(s.peers, id)
		}
	}
	for id, addr := range want {
		if s.peers[id] != addr {
			s.transport.AddPeer(id, addr)
			s.peers[id] = addr
		}
	}
}

func (s *Server) addPeer(id uint64, addr string) {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	s.transport.AddPeer(id, addr)
	s.peers[id] = addr
}
