package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/concord-db/concord/internal/snap"
	"github.com/concord-db/concord/internal/transport"
	"github.com/concord-db/concord/internal/wal"
)

// identity is the WAL metadata: who this member is, fixed at creation.
type identity struct {
	Name      string `json:"name"`
	MemberID  uint64 `json:"member_id"`
	ClusterID uint64 `json:"cluster_id"`
}

// diskStorage is raftnode.Storage over the WAL and the snapshot directory.
type diskStorage struct {
	wal  *wal.WAL
	snap *snap.Snapshotter
	// observeSync, if set before the raft node starts, times every fdatasync
	// of a WAL batch (metrics; see maintenance.go). A Save that writes
	// nothing (a commit-only hard state, half of a put's Saves) is not one.
	observeSync func(time.Duration)
}

// onWALSync is the WAL's Config.OnSync.
func (d *diskStorage) onWALSync(took time.Duration) {
	if d.observeSync != nil {
		d.observeSync(took)
	}
}

func (d *diskStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	return d.wal.Save(hs, ents)
}

// SaveSnapshot writes the snapshot file before the WAL mark, so a mark always
// names a durable file (restore.go seeds a new member's data dir with it).
func (d *diskStorage) SaveSnapshot(s *raftpb.Snapshot) error {
	if err := d.snap.Save(s); err != nil {
		return err
	}
	return d.MarkSnapshot(s.GetMetadata())
}

// WriteSnapshotFile writes a snapshot file: a leader's, or one this member
// took, in the background; the snapshotter's own lock orders it against
// Purge and the transport's reads.
func (d *diskStorage) WriteSnapshotFile(md *raftpb.SnapshotMetadata, data func(io.Writer) error) (int64, error) {
	return d.snap.SaveStream(md, data)
}

// MarkSnapshot records in the WAL that the snapshot file is durable.
func (d *diskStorage) MarkSnapshot(md *raftpb.SnapshotMetadata) error {
	return d.wal.SaveSnapshotMark(wal.SnapshotMark{Index: md.GetIndex(), Term: md.GetTerm()})
}

// snapshotData opens the snapshot file at index and term for the transport
// to stream to a peer, for a MsgSnap the raft core sends without its data
// (raftnode.withoutData; transport.Config.SnapshotData).
func (d *diskStorage) snapshotData(index, term uint64) (transport.SnapshotSource, error) {
	r, err := d.snap.Open(index, term)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Entries reads saved entries back from the WAL, for raft to catch a
// lagging member up with entries the core no longer keeps in memory
// (raftnode.LogReader).
func (d *diskStorage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	return d.wal.Entries(lo, hi, maxSize)
}

func (d *diskStorage) Release(index uint64) error {
	if err := d.wal.ReleaseTo(index); err != nil {
		return err
	}
	return d.snap.Purge(3)
}

func (d *diskStorage) Close() error { return d.wal.Close() }

// persisted is what a restarting member read from disk.
type persisted struct {
	id       identity
	snapshot *raftpb.Snapshot
	hs       *raftpb.HardState
	entries  []*raftpb.Entry
}

// openMemberStorage opens the member's storage as cfg says: its filesystem, data
// directory, WAL segment size and the UnsafeNoFsync switch (the WAL then
// writes every batch but never fdatasyncs it, so a power loss can take back
// acknowledged writes; snapshot files are still synced).
func openMemberStorage(cfg Config, logger *slog.Logger, fresh identity) (*diskStorage, *persisted, error) {
	return openStorageWAL(cfg.FS, cfg.DataDir, wal.Config{SegmentSize: cfg.WALSegmentBytes, UnsafeNoSync: cfg.UnsafeNoFsync, ZeroAhead: wal.DefaultZeroAhead}, logger, fresh)
}

// openStorageWAL opens (or, when fresh, creates) the member's WAL and
// snapshot directory, with the WAL's tunables taken from wcfg (its FS, Dir
// and Logger are filled in here). It returns nil persisted state for a
// fresh directory.
func openStorageWAL(fs vfs.FS, dataDir string, wcfg wal.Config, logger *slog.Logger, fresh identity) (*diskStorage, *persisted, error) {
	walDir := fs.PathJoin(dataDir, "member", "wal")
	snapDir := fs.PathJoin(dataDir, "member", "snap")
	ss, err := snap.New(fs, snapDir, logger)
	if err != nil {
		return nil, nil, err
	}
	ds := &diskStorage{snap: ss}
	wcfg.FS, wcfg.Dir, wcfg.Logger, wcfg.OnSync = fs, walDir, logger, ds.onWALSync
	if !wal.Exists(fs, walDir) {
		meta, err := json.Marshal(fresh)
		if err != nil {
			return nil, nil, err
		}
		w, err := wal.Create(wcfg, meta)
		if err != nil {
			return nil, nil, err
		}
		ds.wal = w
		return ds, nil, nil
	}

	// The newest snapshot file decides where the WAL is read from. A file
	// without a WAL mark (a crash between the two writes) is still a durable,
	// committed state: the WAL keeps every entry after it until a later
	// snapshot's mark releases them.
	var p persisted
	var from wal.SnapshotMark
	s, err := ss.LoadNewest(nil)
	switch {
	case err == nil:
		p.snapshot = s
		from = wal.SnapshotMark{Index: s.GetMetadata().GetIndex(), Term: s.GetMetadata().GetTerm()}
	case errors.Is(err, snap.ErrNotFound):
	default:
		return nil, nil, err
	}
	w, rr, err := wal.Open(wcfg, from)
	if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(rr.Metadata, &p.id); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("server: WAL metadata in %s: %w", walDir, err)
	}
	p.hs = rr.HardState
	p.entries = rr.Entries
	ds.wal = w
	return ds, &p, nil
}
