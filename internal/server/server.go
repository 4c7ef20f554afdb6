package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/faults"
	"github.com/concord-db/concord/internal/raftnode"
	"github.com/concord-db/concord/internal/transport"
)

// Errors a front-end maps to its protocol's codes.
var (
	ErrNoLeader        = errors.New("server: no leader")
	ErrTimeout         = errors.New("server: request timed out")
	ErrStopped         = errors.New("server: server stopped")
	ErrRequestTooLarge = errors.New("server: request is too large")
)

// Header is what every answer carries (etcd's ResponseHeader).
type Header struct {
	ClusterID uint64
	MemberID  uint64
	Revision  int64
	RaftTerm  uint64
}

// Status is one member's view of itself and the cluster.
type Status struct {
	Header
	Name         string
	Leader       uint64
	CommitIndex  uint64
	AppliedIndex uint64
	DBSize       int64
	IsLearner    bool
}

// Server is one Concord member.
type Server struct {
	cfg       Config
	logger    *slog.Logger
	id        uint64
	clusterID uint64

	applier   *apply.Applier
	storage   *diskStorage
	node      *raftnode.Node
	nodeRef   atomic.Pointer[raftnode.Node] // for transport callbacks racing Start
	transport *transport.Transport
	faults    *faults.Plane // nil unless Config.FaultInjection
	mfaults   *memberFaults // pause, clock and disk rules; nil with faults

	reqTimeout time.Duration
	idPrefix   uint64
	idCounter  atomic.Uint64

	waitMu  sync.Mutex
	waiters map[uint64]chan apply.Result

	peersMu sync.Mutex
	peers   map[uint64]string // transport addresses in use

	leaseState leaseKeeper // lease.go

	mt maintState // maintenance.go

	ms membership // members.go

	wt watchState // watch.go

	au authState // auth.go

	boot      raftnode.Boot
	published atomic.Bool
	stopOnce  sync.Once
	stopped   chan struct{}
	bgMu      sync.Mutex // orders late bg.Add calls against Stop's close(stopped)
	bg        sync.WaitGroup
}

// New opens (or creates) the member's storage and prepares the raft node.
// Nothing runs until Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	var selfURL string
	ids := make([]uint64, 0, len(cfg.InitialCluster))
	for _, p := range cfg.InitialCluster {
		ids = append(ids, MemberID(p.Name, p.URL, cfg.ClusterToken))
		if p.Name == cfg.Name {
			selfURL = p.URL
		}
	}
	fresh := identity{
		Name:      cfg.Name,
		MemberID:  MemberID(cfg.Name, selfURL, cfg.ClusterToken),
		ClusterID: ClusterID(ids, cfg.ClusterToken),
	}
	var joinPeers map[uint64]string
	if cfg.ClusterState == "existing" && !walExists(cfg) {
		// Added at runtime: the cluster knows our id (join.go).
		var err error
		if fresh, joinPeers, err = discoverIdentity(cfg, selfURL, logger); err != nil {
			return nil, err
		}
	}
	// The fault plane exists before the storage, so that the WAL and the
	// snapshot files are written through its disk rules from the start.
	var mf *memberFaults
	fc := &faultCluster{}
	if cfg.FaultInjection {
		plane, err := faults.New(faults.Config{Cluster: fc, Logger: logger.With("component", "faults")})
		if err != nil {
			return nil, err
		}
		mf = &memberFaults{plane: plane}
		cfg.FS = faultFS{FS: cfg.FS, mf: mf}
		cfg.Clock = skewClock{base: cfg.Clock, mf: mf}
	}
	st, p, err := openMemberStorage(cfg, logger, fresh)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		logger:     logger,
		applier:    apply.New(logger),
		storage:    st,
		waiters:    make(map[uint64]chan apply.Result),
		peers:      make(map[uint64]string),
		stopped:    make(chan struct{}),
		ms:         newMembership(joinPeers),
		reqTimeout: 5*time.Second + 2*cfg.ElectionTimeout,
	}
	if err := s.initWatch(); err != nil {
		st.Close()
		return nil, err
	}
	fc.s = s
	if mf != nil {
		s.faults, s.mfaults = mf.plane, mf
		logger.Warn("fault injection enabled: the admin API's /v1/faults can drop, delay and partition this member's peer traffic, pause its raft loop, skew its lease clock and fail its disk")
	}
	if err := s.initAuth(); err != nil {
		st.Close()
		return nil, err
	}
	var boot raftnode.Boot
	if p == nil {
		s.id, s.clusterID = fresh.MemberID, fresh.ClusterID
		if cfg.ClusterState == "new" {
			for _, peer := range cfg.InitialCluster {
				id := MemberID(peer.Name, peer.URL, cfg.ClusterToken)
				ctx, err := proto.Marshal(&command.Member{Id: id, Name: peer.Name, PeerUrls: []string{peer.URL}})
				if err != nil {
					return nil, err
				}
				boot.Peers = append(boot.Peers, raft.Peer{ID: id, Context: ctx})
			}
		}
	} else {
		s.id, s.clusterID = p.id.MemberID, p.id.ClusterID
		if p.id.Name != cfg.Name {
			st.Close()
			return nil, fmt.Errorf("server: data dir %s belongs to member %q, not %q", cfg.DataDir, p.id.Name, cfg.Name)
		}
		boot.Snapshot, boot.HardState, boot.Entries = p.snapshot, p.hs, p.entries
		if n := len(p.entries); n > 0 {
			s.au.replayedUpTo = p.entries[n-1].GetIndex()
		}
		logger.Info("restarting from disk", "snapshot-index", snapIndex(p.snapshot), "entries", len(p.entries), "commit", p.hs.Commit)
	}
	// Request ids: the member id's low 16 bits, then the start time in
	// milliseconds, then a counter, so ids never repeat across restarts of
	// one member (a replayed entry must not wake a new request's waiter).
	if mf != nil {
		mf.self.Store(s.id)
	}
	s.idPrefix = s.id<<48 | (uint64(time.Now().UnixMilli())&(1<<40-1))<<8
	s.boot = boot
	return s, nil
}

func snapIndex(s *raftpb.Snapshot) uint64 {
	if s == nil {
		return 0
	}
	return s.GetMetadata().GetIndex()
}

// ID returns this member's id; ClusterID the cluster's.
func (s *Server) ID() uint64        { return s.id }
func (s *Server) ClusterID() uint64 { return s.clusterID }

// Start starts the peer transport on peerLn and the raft node. It returns once
// they run; Ready reports when the member can serve.
func (s *Server) Start(peerLn net.Listener) error {
	tcfg := transport.Config{
		ID: s.id, ClusterID: s.clusterID, TLS: s.cfg.PeerTLS,
		SnapshotData: s.storage.snapshotData,
		Logger:       s.logger.With("component", "transport"),
	}
	if s.faults != nil {
		tcfg.Interceptor = faultInterceptor{s.faults}
	}
	tr, err := transport.New(tcfg, nodeHandler{s})
	if err != nil {
		return err
	}
	s.transport = tr
	for id, addr := range s.initialPeers() {
		s.addPeer(id, addr)
	}
	tr.Serve(peerLn)

	electionTicks := int(s.cfg.ElectionTimeout / s.cfg.HeartbeatInterval)
	ncfg := raftnode.NodeConfig{
		Core: raftnode.Config{
			ID:                     s.id,
			ElectionTicks:          electionTicks,
			HeartbeatTicks:         1,
			SnapshotCount:          s.cfg.SnapshotCount,
			SnapshotLogRatio:       s.cfg.SnapshotLogRatio,
			SnapshotCatchUpEntries: s.cfg.SnapshotCatchUpEntries,
			Logger:                 s.logger.With("component", "raft"),
		},
		TickInterval: s.cfg.HeartbeatInterval,
		Logger:       s.logger.With("component", "raftnode"),
	}
	s.startMaintenance()
	n, err := raftnode.StartNode(ncfg, s.boot, s.storage, tr, (*stateMachine)(s))
	if err != nil {
		tr.Close()
		return err
	}
	s.node = n
	s.nodeRef.Store(n)
	// A boot snapshot's data is the whole state as read from its file, and
	// the store now holds its own copy: drop it, and hand the pages back to
	// the OS now rather than when the scavenger gets to them, so a
	// restarted member's memory is its state's, not twice that.
	restored := len(s.boot.Snapshot.GetData()) > 0
	s.boot = raftnode.Boot{}
	if restored {
		go debug.FreeOSMemory()
	}
	if s.mfaults != nil {
		n.SetPauser(s.mfaults)
	}
	s.bg.Add(1)
	go s.publishLoop()
	s.startMembership()
	s.startLeases()
	return nil
}

// nodeHandler hands what the transport receives to the raft node, which may
// not exist yet while Start is wiring things.
type nodeHandler struct{ s *Server }

func (h nodeHandler) Process(m *raftpb.Message) {
	if n := h.s.nodeRef.Load(); n != nil {
		n.Step(m)
	}
}
func (h nodeHandler) ReportUnreachable(id uint64) {
	if n := h.s.nodeRef.Load(); n != nil {
		n.ReportUnreachable(id)
	}
}
func (h nodeHandler) ReportDown(id uint64) {
	if n := h.s.nodeRef.Load(); n != nil {
		n.ReportDown(id)
	}
}
func (h nodeHandler) ReportSnapshot(id uint64, failed bool) {
	if n := h.s.nodeRef.Load(); n != nil {
		n.ReportSnapshot(id, failed)
	}
}

// Faults returns the member's fault plane, or nil when Config.FaultInjection
// is off.
func (s *Server) Faults() *faults.Plane { return s.faults }

// faultInterceptor lets the fault plane judge what the transport sends.
type faultInterceptor struct{ p *faults.Plane }

func (f faultInterceptor) Intercept(from, to uint64, typ raftpb.MessageType) transport.Verdict {
	return transport.Verdict(f.p.Intercept(from, to, typ))
}

// faultCluster answers the fault plane's questions from the applied member
// table and the raft node (none before Start: no leader yet).
type faultCluster struct{ s *Server }

func (c *faultCluster) Members() []faults.Member {
	ms := c.s.applier.Members()
	out := make([]faults.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, faults.Member{ID: m.GetId(), Name: m.GetName()})
	}
	return out
}

func (c *faultCluster) Leader() uint64 {
	if n := c.s.nodeRef.Load(); n != nil {
		return n.Leader()
	}
	return 0
}

// publishLoop records this member's name and client URLs in the replicated
// member table, retrying until it is applied (etcd publishes the same way).
func (s *Server) publishLoop() {
	defer s.bg.Done()
	peerURL := ""
	for _, p := range s.cfg.InitialCluster {
		if p.Name == s.cfg.Name {
			peerURL = p.URL
		}
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimeout)
		_, err := s.propose(ctx, &command.Command{Op: &command.Command_PublishMember{PublishMember: &command.PublishMember{
			MemberId: s.id, Name: s.cfg.Name, PeerUrls: []string{peerURL}, ClientUrls: s.cfg.ClientURLs,
		}}})
		cancel()
		if err == nil {
			s.published.Store(true)
			s.logger.Info("published member attributes", "name", s.cfg.Name, "client-urls", s.cfg.ClientURLs)
			return
		}
		select {
		case <-s.stopped:
			return
		case <-time.After(s.cfg.HeartbeatInterval):
		}
	}
}

// Ready reports whether this member has published itself and knows a leader.
func (s *Server) Ready() bool {
	return s.published.Load() && s.node.Leader() != 0
}

// Err returns a fatal error that stopped the raft node, if any; Done is
// closed when it stops.
func (s *Server) Err() error {
	if err := s.ms.err(); err != nil {
		return err
	}
	return s.node.Err()
}
func (s *Server) Done() <-chan struct{}   { return s.node.Done() }
func (s *Server) Applier() *apply.Applier { return s.applier }

// Stop transfers leadership away when this member leads, then stops the raft
// node, the transport and the storage. Safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.handOverLeases()
		if s.node != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.ElectionTimeout)
			if err := s.node.TransferLeadership(ctx); err != nil {
				s.logger.Warn("leadership transfer before stop failed", "err", err)
			}
			cancel()
		}
		s.bgMu.Lock()
		close(s.stopped)
		s.bgMu.Unlock()
		s.bg.Wait()
		if s.node != nil {
			s.node.Stop()
		}
		if s.transport != nil {
			s.transport.Close()
		}
		if err := s.storage.Close(); err != nil {
			s.logger.Warn("closing storage", "err", err)
		}
		s.failWaiters(ErrStopped)
	})
}

// Leader returns the current leader's id (0: none known).
func (s *Server) Leader() uint64 { return s.node.Leader() }

func (s *Server) header(rev int64) Header {
	return Header{ClusterID: s.clusterID, MemberID: s.id, Revision: rev, RaftTerm: s.node.Status().Term}
}

// Status returns this member's status.
func (s *Server) Status() Status {
	st := s.node.Status()
	return Status{
		Header:       Header{ClusterID: s.clusterID, MemberID: s.id, Revision: s.applier.Store().Rev(), RaftTerm: st.Term},
		Name:         s.cfg.Name,
		Leader:       st.Leader,
		CommitIndex:  st.CommitIndex,
		AppliedIndex: st.AppliedIndex,
		IsLearner:    s.IsLearner(),
		DBSize:       s.dbSize(),
	}
}
