package raftnode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// memStorage is a Storage that keeps what a WAL + snapshot directory would
// hold, so a core can be restarted from it.
type memStorage struct {
	mu        sync.Mutex
	hs        *raftpb.HardState
	snap      *raftpb.Snapshot
	written   map[uint64]*raftpb.Snapshot // by index: files not yet marked
	ents      []*raftpb.Entry
	released  uint64
	saves     int
	snapSaves int
	failSave  error
	// log is every saved entry not yet released, as a WAL keeps them
	// (readBackStorage reads it); reads counts those reads, failReads
	// fails them.
	log       []*raftpb.Entry
	reads     int
	failReads error
}

// readBackStorage is a memStorage that is also a LogReader, as the
// server's storage over the WAL is.
type readBackStorage struct{ *memStorage }

func (s readBackStorage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.failReads != nil {
		return nil, s.failReads
	}
	var out []*raftpb.Entry
	var size uint64
	for _, e := range s.log {
		i := e.GetIndex()
		if i < lo || i >= hi {
			continue
		}
		if i != lo+uint64(len(out)) {
			break
		}
		n := uint64(proto.Size(e))
		if len(out) > 0 && size+n > maxSize {
			break
		}
		out, size = append(out, e), size+n
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("entry %d not held", lo)
	}
	return out, nil
}

// keepEntries returns, in a new slice, the entries of es whose index keep
// accepts.
func keepEntries(es []*raftpb.Entry, keep func(index uint64) bool) []*raftpb.Entry {
	var out []*raftpb.Entry
	for _, e := range es {
		if keep(e.GetIndex()) {
			out = append(out, e)
		}
	}
	return out
}

func (s *memStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSave != nil {
		return s.failSave
	}
	s.saves++
	if hs != nil {
		s.hs = proto.Clone(hs).(*raftpb.HardState)
	}
	if len(ents) > 0 {
		first := ents[0].GetIndex()
		below := func(i uint64) bool { return i < first }
		s.ents = append(keepEntries(s.ents, below), ents...)
		s.log = append(keepEntries(s.log, below), ents...)
	}
	return nil
}

func (s *memStorage) WriteSnapshotFile(md *raftpb.SnapshotMetadata, data func(io.Writer) error) (int64, error) {
	var b bytes.Buffer
	if err := data(&b); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		s.written = make(map[uint64]*raftpb.Snapshot)
	}
	s.written[md.GetIndex()] = &raftpb.Snapshot{Metadata: proto.Clone(md).(*raftpb.SnapshotMetadata), Data: b.Bytes()}
	return int64(b.Len()), nil
}

// MarkSnapshot makes the written file the snapshot a restart boots from.
func (s *memStorage) MarkSnapshot(md *raftpb.SnapshotMetadata) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := md.GetIndex()
	w, ok := s.written[idx]
	if !ok {
		return fmt.Errorf("mark of snapshot %d without its file", idx)
	}
	delete(s.written, idx)
	s.snapSaves++
	s.snap = w
	// Entries after the snapshot stay, as they would in a WAL.
	s.ents = keepEntries(s.ents, func(i uint64) bool { return i > idx })
	return nil
}

// snapshotData is what a real member's transport reads back from the
// snapshot file to fill a MsgSnap the Core sends without data.
func (s *memStorage) snapshotData(index uint64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap.GetMetadata().GetIndex() != index {
		return nil
	}
	return s.snap.GetData()
}

func (s *memStorage) Release(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = max(s.released, index)
	s.log = keepEntries(s.log, func(i uint64) bool { return i > index })
	return nil
}

// durableLast is the highest log index this storage vouches for.
func (s *memStorage) durableLast() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.snap.GetMetadata().GetIndex()
	if n := len(s.ents); n > 0 {
		last = max(last, s.ents[n-1].GetIndex())
	}
	return last
}

func (s *memStorage) hardState() *raftpb.HardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hs
}

// boot is what a restarting member would read back.
func (s *memStorage) boot() Boot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Boot{Snapshot: s.snap, HardState: s.hs, Entries: append([]*raftpb.Entry(nil), s.ents...)}
}

// kvMachine is a StateMachine over a string map; a command is "key=value",
// an empty command is the leader's no-op. It checks that indexes only grow.
type kvMachine struct {
	mu        sync.Mutex
	kv        map[string]string
	last      uint64
	applied   int
	restores  int
	members   map[uint64]bool
	failApply error
	onApply   func(index uint64, rec string) error
}

func newKVMachine() *kvMachine {
	return &kvMachine{kv: map[string]string{}, members: map[uint64]bool{}}
}

func (m *kvMachine) advance(index uint64, rec string) error {
	if index <= m.last {
		return fmt.Errorf("apply %d after %d", index, m.last)
	}
	m.last = index
	m.applied++
	if m.onApply != nil {
		return m.onApply(index, rec)
	}
	return nil
}

func (m *kvMachine) Apply(index uint64, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failApply != nil {
		return m.failApply
	}
	if len(data) > 0 {
		k, v, ok := strings.Cut(string(data), "=")
		if !ok {
			return fmt.Errorf("bad command %q", data)
		}
		m.kv[k] = v
	}
	return m.advance(index, string(data))
}

func (m *kvMachine) ApplyConfChange(index uint64, cc *raftpb.ConfChange) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		m.members[cc.GetNodeId()] = true
	case raftpb.ConfChangeRemoveNode:
		delete(m.members, cc.GetNodeId())
	}
	return m.advance(index, fmt.Sprintf("cc:%v:%d", cc.GetType(), cc.GetNodeId()))
}

type kvSnapshot struct {
	KV      map[string]string
	Members map[uint64]bool
}

func (m *kvMachine) Snapshot() (func(io.Writer) error, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := json.Marshal(kvSnapshot{KV: m.kv, Members: m.members})
	if err != nil {
		return nil, err
	}
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}, nil
}

func (m *kvMachine) Restore(snap *raftpb.Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s kvSnapshot
	if err := json.Unmarshal(snap.GetData(), &s); err != nil {
		return err
	}
	m.kv, m.members = s.KV, s.Members
	if m.kv == nil {
		m.kv = map[string]string{}
	}
	if m.members == nil {
		m.members = map[uint64]bool{}
	}
	m.last = snap.GetMetadata().GetIndex()
	m.restores++
	return nil
}

func (m *kvMachine) state() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.kv)
}

func (m *kvMachine) lastIndex() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

func (m *kvMachine) restoreCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restores
}
