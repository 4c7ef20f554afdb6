package etcd

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"

	"github.com/concord-db/concord/internal/command"
)

// snapshotChunk is the blob size of one Snapshot message, etcd's 32 KiB.
const snapshotChunk = 32 * 1024

// storageVersion is the storage schema version Status reports: etcd's is
// the major.minor of the release that wrote the data, with patch 0.
var storageVersion = func() string {
	parts := strings.SplitN(version.Version, ".", 3)
	if len(parts) < 2 {
		return version.Version
	}
	return parts[0] + "." + parts[1] + ".0"
}()

// statusErrors is Status.errors as etcd fills it: "etcdserver: no leader"
// without a leader, then one entry per active alarm in the text etcd's
// AlarmMember.String produced.
func statusErrors(leader uint64, alarms []*command.AlarmMember) []string {
	var out []string
	if leader == 0 {
		out = append(out, "etcdserver: no leader")
	}
	for _, a := range alarms {
		out = append(out, fmt.Sprintf("memberID:%d alarm:%s ", a.GetMemberId(), a.GetAlarm()))
	}
	return out
}

// Alarm gets, activates or deactivates alarms (etcdctl alarm list/disarm).
func (m *maintenanceService) Alarm(ctx context.Context, r *etcdserverpb.AlarmRequest) (*etcdserverpb.AlarmResponse, error) {
	var req command.AlarmRequest
	if err := recode(&req, r); err != nil {
		return nil, toGRPC(err)
	}
	// Changing alarms is root's; listing them any authenticated user's
	// (etcd 3.6).
	check := m.s.RequireAdmin
	if req.Action == command.AlarmRequest_GET {
		check = m.s.RequireAuthenticated
	}
	if err := check(ctx); err != nil {
		return nil, toGRPC(err)
	}
	resp, h, err := m.s.Alarm(ctx, &req)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &etcdserverpb.AlarmResponse{}
	if err := recode(out, resp); err != nil {
		return nil, toGRPC(err)
	}
	out.Header = header(h)
	return out, nil
}

// Defragment releases the member's spare memory; it never blocks the
// member for long (see server.Defragment).
func (m *maintenanceService) Defragment(ctx context.Context, _ *etcdserverpb.DefragmentRequest) (*etcdserverpb.DefragmentResponse, error) {
	if err := m.s.RequireAdmin(ctx); err != nil {
		return nil, toGRPC(err)
	}
	h, err := m.s.Defragment(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.DefragmentResponse{Header: header(h)}, nil
}

// Hash is the hash of the member's whole keyspace at its current revision
// (etcd hashes its whole bbolt file; Concord has none, and HashKV's hash at
// the current revision, which covers every retained version, is the
// equivalent).
func (m *maintenanceService) Hash(ctx context.Context, _ *etcdserverpb.HashRequest) (*etcdserverpb.HashResponse, error) {
	if err := m.s.RequireAdmin(ctx); err != nil {
		return nil, toGRPC(err)
	}
	hash, _, h, err := m.s.Hash(0)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &etcdserverpb.HashResponse{Header: header(h), Hash: hash}, nil
}

// Snapshot streams the member's state as a snapshot file (server's format)
// in 32 KiB chunks; like etcd's stream, the last message carries the
// SHA-256 of everything before it. The first message's header says which
// revision the snapshot holds.
func (m *maintenanceService) Snapshot(_ *etcdserverpb.SnapshotRequest, ss etcdserverpb.Maintenance_SnapshotServer) error {
	if err := m.s.RequireAdmin(ss.Context()); err != nil {
		return toGRPC(err)
	}
	file, h, err := m.s.Snapshot(ss.Context())
	if err != nil {
		return toGRPC(err)
	}
	body := file[:len(file)-sha256.Size]
	hdr := header(h)
	for off := 0; off < len(body); off += snapshotChunk {
		end := min(off+snapshotChunk, len(body))
		resp := &etcdserverpb.SnapshotResponse{
			Header:         hdr,
			RemainingBytes: uint64(len(file) - end),
			Blob:           body[off:end],
			Version:        version.Version,
		}
		if err := ss.Send(resp); err != nil {
			return toGRPC(err)
		}
	}
	return toGRPC(ss.Send(&etcdserverpb.SnapshotResponse{
		Header:  hdr,
		Blob:    file[len(file)-sha256.Size:],
		Version: version.Version,
	}))
}
