package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/snap"
	"github.com/concord-db/concord/internal/wal"
)

// RestoreConfig describes the member a snapshot file is restored into (the
// flags of `etcdctl snapshot restore`).
type RestoreConfig struct {
	// Name is the member's name; it must appear in InitialCluster.
	Name string
	// DataDir receives member/wal and member/snap; it must not hold a WAL.
	DataDir string
	// InitialCluster lists every member of the new cluster; every member is
	// restored from the same file with the same list.
	InitialCluster []Peer
	// ClusterToken makes the new cluster's ids unique.
	ClusterToken string
	// FS is the filesystem (vfs.Default in production).
	FS vfs.FS
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Validate reports the first problem with c.
func (c RestoreConfig) Validate() error {
	cfg := DefaultConfig()
	cfg.Name, cfg.DataDir, cfg.InitialCluster, cfg.ClusterToken, cfg.FS = c.Name, c.DataDir, c.InitialCluster, c.ClusterToken, c.FS
	return cfg.Validate()
}

// RestoreInfo describes a restored data dir.
type RestoreInfo struct {
	MemberID, ClusterID uint64
	Revision            int64  // the store revision restored
	Index               uint64 // raft index of the snapshot the new cluster starts from
}

// restoreTerm is the raft term of the snapshot a restored cluster starts
// from; any positive term works since every member restores the same one.
const restoreTerm = 1

// RestoreDataDir creates a new member's data dir from a snapshot file: a
// raft snapshot holding the file's keyspace, revision and leases with the
// member table of c.InitialCluster, and a WAL naming the new member and
// cluster ids (derived from the names, peer URLs and token exactly as a
// fresh `concord server` derives them) whose hard state commits that
// snapshot. `concord server` started on that dir with any
// --initial-cluster-state resumes from it. A damaged file is rejected
// before anything is written.
func RestoreDataDir(c RestoreConfig, file []byte) (RestoreInfo, error) {
	if err := c.Validate(); err != nil {
		return RestoreInfo{}, err
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	blob, err := DecodeSnapshotFile(file)
	if err != nil {
		return RestoreInfo{}, err
	}
	var (
		members []*command.Member
		ids     []uint64
		info    RestoreInfo
	)
	for _, p := range c.InitialCluster {
		id := MemberID(p.Name, p.URL, c.ClusterToken)
		ids = append(ids, id)
		members = append(members, &command.Member{Id: id, Name: p.Name, PeerUrls: []string{p.URL}})
		if p.Name == c.Name {
			info.MemberID = id
		}
	}
	info.ClusterID = ClusterID(ids, c.ClusterToken)
	// As etcd: the snapshot sits at the index that bootstrapping the members
	// one conf change each would have reached.
	info.Index = uint64(len(members))
	state, rev, err := apply.Rebase(blob, info.Index, members)
	if err != nil {
		if errors.Is(err, apply.ErrCorruptSnapshot) {
			return RestoreInfo{}, fmt.Errorf("%w: %w", ErrBadSnapshotFile, err)
		}
		return RestoreInfo{}, err
	}
	info.Revision = rev

	walDir := c.FS.PathJoin(c.DataDir, "member", "wal")
	if wal.Exists(c.FS, walDir) {
		return RestoreInfo{}, fmt.Errorf("server: data dir %s already holds a member; restore into an empty dir", c.DataDir)
	}
	meta, err := json.Marshal(identity{Name: c.Name, MemberID: info.MemberID, ClusterID: info.ClusterID})
	if err != nil {
		return RestoreInfo{}, err
	}
	ss, err := snap.New(c.FS, c.FS.PathJoin(c.DataDir, "member", "snap"), logger)
	if err != nil {
		return RestoreInfo{}, err
	}
	w, err := wal.Create(wal.Config{FS: c.FS, Dir: walDir, Logger: logger}, meta)
	if err != nil {
		return RestoreInfo{}, err
	}
	st := &diskStorage{wal: w, snap: ss}
	term, index := uint64(restoreTerm), info.Index
	err = st.SaveSnapshot(&raftpb.Snapshot{
		Data: state,
		Metadata: &raftpb.SnapshotMetadata{
			Index:     &index,
			Term:      &term,
			ConfState: &raftpb.ConfState{Voters: ids},
		},
	})
	if err == nil {
		err = st.Save(&raftpb.HardState{Term: &term, Commit: &index}, nil)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return RestoreInfo{}, fmt.Errorf("server: restore into %s: %w", c.DataDir, err)
	}
	logger.Info("restored snapshot", "data-dir", c.DataDir, "member-id", fmt.Sprintf("%x", info.MemberID),
		"cluster-id", fmt.Sprintf("%x", info.ClusterID), "revision", rev)
	return info, nil
}
