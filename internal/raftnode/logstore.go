package raftnode

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// LogReader is implemented by a Storage that can read saved entries back
// (the server's, over the WAL). The Core then keeps only the newest
// MemoryLogEntries applied entries in memory and reads older ones, which
// raft wants only to catch a lagging member up, from storage.
type LogReader interface {
	// Entries returns saved entries from lo up to hi (exclusive), as many
	// as fit in maxSize bytes but at least one; fewer when it reaches one
	// it does not hold. An error means the entries cannot be had; the
	// member is then sent a snapshot instead.
	Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error)
}

// logStore is raft's Storage: the log from first to the last entry, of
// which mem holds the newest part and disk (if any) the rest.
//
// Without disk, mem holds the whole log, compacted only behind snapshots,
// as before the split. With it, mem is trimmed to MemoryLogEntries behind
// the applied index (trim, after every Ready): between two snapshots a
// member would otherwise keep in memory every entry since the last one, up
// to a quarter of the state or 64 MiB (SnapshotLogRatio,
// SnapshotLogFloor), which after a million fresh keys was a fifth of its
// heap. Only applied
// entries leave mem: those are durable, and never overwritten, so what
// disk returns for them is final. A read that fails reports ErrCompacted,
// which makes raft send a snapshot instead, and moves first up to mem's
// first entry: a member is never stopped for it. A snapshot too old to
// continue from mem is then not sent; Snapshot asks the Core for a fresh
// one (wantSnapshot) and raft tries again when it is taken.
//
// All methods run on the Core's goroutine (raft calls them from inside the
// RawNode).
type logStore struct {
	mem  *raft.MemoryStorage
	disk LogReader
	log  *slog.Logger
	// first is the lowest index raft may read: one past the newest
	// compaction point (snapshot index, less the catch-up entries kept).
	first uint64
	// firstTerm is the term of entry first-1, which raft matches against
	// (Storage.Term); firstTermOK says it is known.
	firstTerm   uint64
	firstTermOK bool
	// snap is the newest snapshot, without its data (withoutData).
	snap *raftpb.Snapshot
	// wantSnapshot asks the Core for a snapshot now: raft wanted to send
	// one and none could continue the log (Snapshot).
	wantSnapshot bool
	// entriesRead and readFailures count the reads from disk, for the
	// metrics; read from any goroutine.
	entriesRead, readFailures atomic.Uint64
}

func newLogStore(disk LogReader, log *slog.Logger) *logStore {
	return &logStore{
		mem:         raft.NewMemoryStorage(),
		disk:        disk,
		log:         log,
		first:       1,
		firstTermOK: true,
		snap:        &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{ConfState: &raftpb.ConfState{}}},
	}
}

func (s *logStore) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	return s.mem.InitialState()
}

func (s *logStore) FirstIndex() (uint64, error) { return s.first, nil }

func (s *logStore) LastIndex() (uint64, error) { return s.mem.LastIndex() }

// Snapshot returns the newest snapshot. If there is none, or the log no
// longer continues from it (entries after it could not be read back), it
// asks for a fresh one and has raft try again later
// (ErrSnapshotTemporarilyUnavailable); raft would panic on an empty one.
func (s *logStore) Snapshot() (*raftpb.Snapshot, error) {
	if idx := s.snap.GetMetadata().GetIndex(); idx == 0 || idx+1 < s.first {
		s.wantSnapshot = true
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return proto.Clone(s.snap).(*raftpb.Snapshot), nil
}

// memFirst is the first index mem holds an entry for (its dummy is at
// memFirst-1).
func (s *logStore) memFirst() uint64 {
	i, _ := s.mem.FirstIndex()
	return i
}

func (s *logStore) Term(i uint64) (uint64, error) {
	if i+1 >= s.memFirst() {
		return s.mem.Term(i)
	}
	if i+1 < s.first {
		return 0, raft.ErrCompacted
	}
	if i+1 == s.first && s.firstTermOK {
		return s.firstTerm, nil
	}
	ents, err := s.read(i, i+1, 0)
	if err != nil {
		return 0, raft.ErrCompacted
	}
	return ents[0].GetTerm(), nil
}

func (s *logStore) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	mf := s.memFirst()
	if lo >= mf {
		return s.mem.Entries(lo, hi, maxSize)
	}
	if lo < s.first {
		return nil, raft.ErrCompacted
	}
	ents, err := s.read(lo, min(hi, mf), maxSize)
	if err != nil {
		return nil, raft.ErrCompacted
	}
	return ents, nil
}

// read reads [lo, hi) from disk and checks that it got a run starting at lo.
func (s *logStore) read(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	ents, err := s.disk.Entries(lo, hi, maxSize)
	if err == nil {
		for k, e := range ents {
			if e.GetIndex() != lo+uint64(k) {
				err = fmt.Errorf("entry %d of the read is %d", lo+uint64(k), e.GetIndex())
				break
			}
		}
		if len(ents) == 0 {
			err = fmt.Errorf("no entries read")
		}
	}
	if err != nil {
		s.readFailures.Add(1)
		s.log.Warn("raft log: cannot read entries back from storage; a member that needs them gets a snapshot",
			"lo", lo, "hi", hi, "err", err)
		if mf := s.memFirst(); mf > s.first {
			s.firstTerm, _ = s.mem.Term(mf - 1)
			s.first, s.firstTermOK = mf, true
		}
		return nil, err
	}
	s.entriesRead.Add(uint64(len(ents)))
	return ents, nil
}

// setSnapshot makes md the newest snapshot and moves first past it: for a
// snapshot installed from a leader, or the one a member boots from.
func (s *logStore) setSnapshot(md *raftpb.SnapshotMetadata) {
	s.snap = &raftpb.Snapshot{Metadata: md}
	s.first = md.GetIndex() + 1
	s.firstTerm, s.firstTermOK = md.GetTerm(), true
}

// snapshotTaken records md, a snapshot this member took, as the newest.
// Unlike MemoryStorage.CreateSnapshot it does not need the entry at md's
// index in mem, which may have been trimmed while the snapshot was being
// written.
func (s *logStore) snapshotTaken(md *raftpb.SnapshotMetadata) {
	s.snap = &raftpb.Snapshot{Metadata: md}
}

// compact drops the log at and below index: raft may read from index+1
// on. The term of index is kept for matching.
func (s *logStore) compact(index uint64) error {
	if index < s.first {
		return nil
	}
	t, err := s.Term(index)
	s.firstTerm, s.firstTermOK = t, err == nil
	s.first = index + 1
	if index >= s.memFirst() {
		if err := s.mem.Compact(index); err != nil && err != raft.ErrCompacted {
			return err
		}
	}
	return nil
}

// trim drops from mem the applied entries more than keep behind applied,
// in steps of a quarter of keep so that the copy MemoryStorage.Compact
// makes is paid once per keep/4 entries. Without disk it does nothing.
func (s *logStore) trim(applied, keep uint64) error {
	if s.disk == nil || applied <= keep {
		return nil
	}
	to := applied - keep
	if to < s.memFirst()+keep/4 {
		return nil
	}
	if err := s.mem.Compact(to); err != nil && err != raft.ErrCompacted {
		return err
	}
	return nil
}
