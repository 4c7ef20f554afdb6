package server

// Joining a running cluster, and the requests members send each other over
// the peer port (transport request streams).
//
// A member started with ClusterState "existing" on an empty data directory
// was added beforehand (AddMember) under an id it cannot compute: added ids
// mix in the time of the add. Like etcd, it asks the other members listed in
// InitialCluster for the member list over the peer port, finds itself by its
// peer URL, and takes its id and the cluster id from the answer. A restarted
// member reads both from its WAL and ignores InitialCluster.
//
// Request bodies (all integers big-endian), one op byte first:
//
//	1 members        (no payload)      answer: 8 bytes cluster id, 4 bytes n,
//	                                   then n times 4 bytes length + a
//	                                   command.Member (protobuf)
//	2 promote        8 bytes member id answer: empty; sent to the leader
//	3 transfer away  8 bytes member id answer: empty once that member, if it
//	                                   leads, handed leadership to another
//	                                   voter
//
// A failed request answers with the error's text; known server errors are
// mapped back to their sentinels by text.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/transport"
	"github.com/concord-db/concord/internal/wal"
)

const (
	opMembers      byte = 1
	opPromote      byte = 2
	opTransferAway byte = 3
)

// ErrJoin wraps every failure to join a running cluster.
var ErrJoin = errors.New("server: cannot join the cluster")

func encodeRequest(op byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{op}, id)
}

// EncodeMemberList is the answer to a members request.
func EncodeMemberList(clusterID uint64, ms []*command.Member) ([]byte, error) {
	b := binary.BigEndian.AppendUint64(nil, clusterID)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ms)))
	for _, m := range ms {
		mb, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(mb)))
		b = append(b, mb...)
	}
	return b, nil
}

// DecodeMemberList reverses EncodeMemberList.
func DecodeMemberList(b []byte) (uint64, []*command.Member, error) {
	if len(b) < 12 {
		return 0, nil, fmt.Errorf("%w: member list of %d bytes", ErrJoin, len(b))
	}
	cid := binary.BigEndian.Uint64(b)
	n := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	var ms []*command.Member
	for range n {
		if len(b) < 4 {
			return 0, nil, fmt.Errorf("%w: truncated member list", ErrJoin)
		}
		l := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(l) {
			return 0, nil, fmt.Errorf("%w: truncated member", ErrJoin)
		}
		m := &command.Member{}
		if err := proto.Unmarshal(b[4:4+l], m); err != nil {
			return 0, nil, fmt.Errorf("%w: member: %w", ErrJoin, err)
		}
		ms = append(ms, m)
		b = b[4+l:]
	}
	if len(b) != 0 {
		return 0, nil, fmt.Errorf("%w: %d bytes after the member list", ErrJoin, len(b))
	}
	return cid, ms, nil
}

// findSelf picks this member out of a cluster's member list by its peer
// URL. A member that already published a different name is someone else.
func findSelf(ms []*command.Member, name, peerURL string) (*command.Member, error) {
	for _, m := range ms {
		if !slices.Contains(m.GetPeerUrls(), peerURL) {
			continue
		}
		if m.GetName() != "" && m.GetName() != name {
			return nil, fmt.Errorf("%w: peer URL %s belongs to member %q (%x), not %q", ErrJoin, peerURL, m.GetName(), m.GetId(), name)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: no member has peer URL %s; add it first (concord member add %s --peer-urls %s)", ErrJoin, peerURL, name, peerURL)
}

func walExists(cfg Config) bool {
	return wal.Exists(cfg.FS, cfg.FS.PathJoin(cfg.DataDir, "member", "wal"))
}

// discoverIdentity asks the other members of cfg.InitialCluster for the
// member list and returns this member's identity and the peers to dial.
func discoverIdentity(cfg Config, selfURL string, logger *slog.Logger) (identity, map[uint64]string, error) {
	var errs []error
	for _, p := range cfg.InitialCluster {
		if p.Name == cfg.Name {
			continue
		}
		addr, err := PeerAddr(p.URL)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := transport.Request(ctx, addr, cfg.PeerTLS, 0, []byte{opMembers})
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cid, ms, err := DecodeMemberList(body)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		self, err := findSelf(ms, cfg.Name, selfURL)
		if err != nil {
			return identity{}, nil, err
		}
		peers := map[uint64]string{}
		for _, m := range ms {
			if m.GetId() == self.GetId() || len(m.GetPeerUrls()) == 0 {
				continue
			}
			if a, err := PeerAddr(m.GetPeerUrls()[0]); err == nil {
				peers[m.GetId()] = a
			}
		}
		logger.Info("joining cluster", "cluster-id", fmt.Sprintf("%x", cid), "member-id", fmt.Sprintf("%x", self.GetId()), "asked", p.URL)
		return identity{Name: cfg.Name, MemberID: self.GetId(), ClusterID: cid}, peers, nil
	}
	if len(errs) == 0 {
		return identity{}, nil, fmt.Errorf("%w: --initial-cluster names no other member to ask", ErrJoin)
	}
	return identity{}, nil, fmt.Errorf("%w: no member answered: %w", ErrJoin, errors.Join(errs...))
}

// initialPeers are the members the transport dials before the member table
// is known: those a joining member learned, else the founding members.
func (s *Server) initialPeers() map[uint64]string {
	if s.ms.joinPeers != nil {
		return s.ms.joinPeers
	}
	out := map[uint64]string{}
	for _, p := range s.cfg.InitialCluster {
		id := MemberID(p.Name, p.URL, s.cfg.ClusterToken)
		if id == s.id {
			continue
		}
		if addr, err := PeerAddr(p.URL); err == nil {
			out[id] = addr
		}
	}
	return out
}

// serveRequest answers another member's request.
func (s *Server) serveRequest(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 0 {
		return nil, errors.New("server: empty request")
	}
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	switch req[0] {
	case opMembers:
		return EncodeMemberList(s.clusterID, s.applier.Members())
	case opPromote, opTransferAway:
		if len(req) != 9 {
			return nil, fmt.Errorf("server: request of %d bytes", len(req))
		}
		if s.node == nil {
			return nil, ErrStopped
		}
		id := binary.BigEndian.Uint64(req[1:])
		if req[0] == opPromote {
			return nil, s.promoteHere(ctx, id)
		}
		if id != s.id || s.node.Leader() != s.id {
			return nil, nil
		}
		if err := s.node.TransferLeadership(ctx); err != nil {
			return nil, s.nodeErr(ctx, err)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("server: unknown request op %d", req[0])
}

// askMember sends a request to member id at its peer URL and maps a remote
// error back to this package's sentinel.
func (s *Server) askMember(ctx context.Context, id uint64, req []byte) ([]byte, error) {
	m := findMember(s.applier.Members(), id)
	if m == nil || len(m.GetPeerUrls()) == 0 {
		return nil, ErrMemberNotFound
	}
	addr, err := PeerAddr(m.GetPeerUrls()[0])
	if err != nil {
		return nil, err
	}
	body, err := transport.Request(ctx, addr, s.cfg.PeerTLS, s.clusterID, req)
	var re *transport.RemoteError
	if errors.As(err, &re) {
		for _, known := range remoteErrors {
			if re.Text == known.Error() {
				return nil, known
			}
		}
		return nil, errors.New(re.Text)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, s.nodeErr(ctx, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %w", ErrUnhealthy, err)
	}
	return body, nil
}

// remoteErrors are the errors a forwarded request may answer with.
var remoteErrors = []error{
	ErrMemberExists, ErrPeerURLExists, ErrMemberNotFound, ErrMemberBadURLs, ErrTooManyLearners,
	ErrNotEnoughStarted, ErrMemberNotLearner, ErrLearnerNotReady, ErrUnhealthy, ErrNotLeader,
	ErrBadLeaderTransferee, ErrNoLeader, ErrTimeout, ErrStopped,
}
