package etcd

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"

	"github.com/concord-db/concord/internal/server"
)

type maintenanceService struct {
	etcdserverpb.UnimplementedMaintenanceServer
	s *server.Server
}

// Status reports this member. Version is the etcd API version Concord
// implements, because clients compare it as etcd's.
func (m *maintenanceService) Status(ctx context.Context, r *etcdserverpb.StatusRequest) (*etcdserverpb.StatusResponse, error) {
	if err := m.s.RequireAuthenticated(ctx); err != nil {
		return nil, toGRPC(err)
	}
	st := m.s.Status()
	return &etcdserverpb.StatusResponse{
		Header:           header(st.Header),
		Version:          version.Version,
		DbSize:           st.DBSize,
		DbSizeInUse:      m.s.DBSizeInUse(),
		DbSizeQuota:      m.s.QuotaBytes(),
		Errors:           statusErrors(st.Leader, m.s.Alarms()),
		Leader:           st.Leader,
		RaftIndex:        st.CommitIndex,
		RaftTerm:         st.RaftTerm,
		RaftAppliedIndex: st.AppliedIndex,
		IsLearner:        st.IsLearner,
		StorageVersion:   storageVersion,
	}, nil
}

func (m *maintenanceService) HashKV(ctx context.Context, r *etcdserverpb.HashKVRequest) (*etcdserverpb.HashKVResponse, error) {
	if err := m.s.RequireAdmin(ctx); err != nil {
		return nil, toGRPC(err)
	}
	hash, compactRev, h, err := m.s.Hash(r.Revision)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.HashKVResponse{Header: header(h), Hash: hash, CompactRevision: compactRev, HashRevision: h.Revision}, nil
}
