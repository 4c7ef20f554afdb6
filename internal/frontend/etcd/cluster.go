package etcd

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/server"
)

// clusterService is etcd's Cluster service: membership changes and the
// member list. The rules (strict reconfiguration, learner readiness) live in
// package server.
type clusterService struct {
	etcdserverpb.UnimplementedClusterServer
	s *server.Server
}

func memberPB(m *command.Member) *etcdserverpb.Member {
	return &etcdserverpb.Member{
		ID: m.Id, Name: m.Name, PeerURLs: m.PeerUrls, ClientURLs: m.ClientUrls, IsLearner: m.IsLearner,
	}
}

func membersPB(ms []*command.Member) []*etcdserverpb.Member {
	out := make([]*etcdserverpb.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberPB(m))
	}
	return out
}

func (c *clusterService) MemberList(ctx context.Context, r *etcdserverpb.MemberListRequest) (*etcdserverpb.MemberListResponse, error) {
	if err := c.s.RequireAuthenticated(ctx); err != nil {
		return nil, toGRPC(err)
	}
	ms, h, err := c.s.Members(ctx, r.Linearizable)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.MemberListResponse{Header: header(h), Members: membersPB(ms)}, nil
}

func (c *clusterService) MemberAdd(ctx context.Context, r *etcdserverpb.MemberAddRequest) (*etcdserverpb.MemberAddResponse, error) {
	if err := c.s.RequireAdmin(ctx); err != nil {
		return nil, toGRPC(err)
	}
	m, ms, h, err := c.s.AddMember(ctx, r.PeerURLs, r.IsLearner)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.MemberAddResponse{Header: header(h), Member: memberPB(m), Members: membersPB(ms)}, nil
}

func (c *clusterService) MemberRemove(ctx context.Context, r *etcdserverpb.MemberRemoveRequest) (*etcdserverpb.MemberRemoveResponse, error) {
	if err := c.s.RequireAdmin(ctx); err != nil {
		return nil, toGRPC(err)
	}
	ms, h, err := c.s.RemoveMember(ctx, r.ID)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.MemberRemoveResponse{Header: header(h), Members: membersPB(ms)}, nil
}

func (c *clusterService) MemberUpdate(ctx context.Context, r *etcdserverpb.MemberUpdateRequest) (*etcdserverpb.MemberUpdateResponse, error) {
	if err := c.s.RequireAdmin(ctx); err != nil {
		return nil, toGRPC(err)
	}
	ms, h, err := c.s.UpdateMember(ctx, r.ID, r.PeerURLs)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.MemberUpdateResponse{Header: header(h), Members: membersPB(ms)}, nil
}

func (c *clusterService) MemberPromote(ctx context.Context, r *etcdserverpb.MemberPromoteRequest) (*etcdserverpb.MemberPromoteResponse, error) {
	if err := c.s.RequireAdmin(ctx); err != nil {
		return nil, toGRPC(err)
	}
	ms, h, err := c.s.PromoteMember(ctx, r.ID)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.MemberPromoteResponse{Header: header(h), Members: membersPB(ms)}, nil
}

// MoveLeader is served here rather than with the rest of Maintenance
// because it is a membership operation: only the leader accepts it, and the
// target must be a voter.
func (m *maintenanceService) MoveLeader(ctx context.Context, r *etcdserverpb.MoveLeaderRequest) (*etcdserverpb.MoveLeaderResponse, error) {
	if err := m.s.RequireAdmin(ctx); err != nil {
		return nil, toGRPC(err)
	}
	h, err := m.s.MoveLeader(ctx, r.TargetID)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.MoveLeaderResponse{Header: header(h)}, nil
}

// snapshotMethod is the one stream a learner serves (etcd's rule).
const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

// supportedForLearner is etcd's isRPCSupportedForLearner: a learner answers
// Status and serializable Range, nothing else.
func supportedForLearner(req any) bool {
	switch r := req.(type) {
	case *etcdserverpb.StatusRequest:
		return true
	case *etcdserverpb.RangeRequest:
		return r.Serializable
	case *healthpb.HealthCheckRequest:
		return true // beyond etcd: probes may ask a learner if it is up
	}
	return false
}
