package wal_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/snap"
	"github.com/concord-db/concord/internal/wal"
)

var (
	powerLossSeed   = flag.Uint64("powerloss.seed", 0, "seed for TestPowerLoss; 0 picks one from the clock")
	powerLossPoints = flag.Int("powerloss.points", 200, "crash points TestPowerLoss takes")
)

// hookFS calls before ahead of every operation that changes the filesystem
// (including syncs), so a test can take a CrashClone between any two of
// them: after a write but before its fsync, between a rename and the
// directory sync, and so on.
type hookFS struct {
	vfs.FS
	before func()
}

type hookFile struct {
	vfs.File
	before func()
}

func (h *hookFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, before: h.before}, nil
}

func (h *hookFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	h.before()
	return h.wrap(h.FS.Create(name, c))
}

// OpenReadWrite is only reached, in this test, by the WAL's zeroing
// goroutine (the WAL is never reopened through the hook): its writes and
// syncs take no crash points, since the hook and its model belong to the
// test's goroutine. Crash points the test's goroutine takes still catch
// zeroing half done.
func (h *hookFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := h.FS.OpenReadWrite(name, c, opts...)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, before: func() {}}, nil
}

func (h *hookFS) OpenDir(name string) (vfs.File, error) { return h.wrap(h.FS.OpenDir(name)) }

func (h *hookFS) Rename(a, b string) error      { h.before(); return h.FS.Rename(a, b) }
func (h *hookFS) Remove(name string) error      { h.before(); return h.FS.Remove(name) }
func (f *hookFile) Write(p []byte) (int, error) { f.before(); return f.File.Write(p) }
func (f *hookFile) WriteAt(p []byte, off int64) (int, error) {
	f.before()
	return f.File.WriteAt(p, off)
}
func (f *hookFile) Sync() error     { f.before(); return f.File.Sync() }
func (f *hookFile) SyncData() error { f.before(); return f.File.SyncData() }

// modelEntry is what the test expects at one log index.
type modelEntry struct {
	term uint64
	data string
}

type hs3 struct{ term, vote, commit uint64 }

// model is the acknowledged state: the whole log from index 1 and the last
// hard state.
type model struct {
	log []modelEntry
	hs  hs3
	// syncedCommit is the commit index last written to disk: a Save that
	// only moves the commit index writes nothing, so a crash may roll the
	// commit index back to here (never further).
	syncedCommit uint64
}

func (m model) clone() model {
	return model{log: slices.Clone(m.log), hs: m.hs, syncedCommit: m.syncedCommit}
}

type crashPoint struct {
	fs          *vfs.MemFS
	acked, next model  // before and after the operation in flight
	durableSnap uint64 // index of the newest snapshot whose snap.Save returned
	created     bool   // wal.Create had returned
	unsynced    int
}

func TestPowerLoss(t *testing.T) {
	seed := *powerLossSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -powerloss.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	points := *powerLossPoints

	mem := vfs.NewCrashableMem()
	var (
		crashes     []crashPoint
		acked       model
		inflight    *model
		durableSnap uint64
		created     bool
	)
	fs := &hookFS{FS: mem, before: func() {
		if len(crashes) >= points || rng.IntN(100) >= 15 {
			return
		}
		cp := crashPoint{acked: acked.clone(), next: acked.clone(), durableSnap: durableSnap, created: created, unsynced: rng.IntN(4) * 33}
		if inflight != nil {
			cp.next = inflight.clone()
		}
		cp.fs = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: cp.unsynced, RNG: rng})
		crashes = append(crashes, cp)
	}}

	cfg := wal.Config{FS: fs, Dir: "wal", SegmentSize: 16 << 10, ZeroAhead: 1 << 10}
	w, err := wal.Create(cfg, []byte("member-1"))
	if err != nil {
		t.Fatal(err)
	}
	created = true
	ss, err := snap.New(fs, "snap", nil)
	if err != nil {
		t.Fatal(err)
	}

	var term uint64 = 1
	for step := 0; step < 5000 && len(crashes) < points; step++ {
		last := uint64(len(acked.log))
		commit := acked.hs.commit
		if rng.IntN(100) < 6 && commit > durableSnap {
			// Snapshot at the commit index, mark it, compact behind it.
			idx, sterm := commit, acked.log[commit-1].term
			if err := ss.Save(snapshotAt(idx, sterm)); err != nil {
				t.Fatal(err)
			}
			durableSnap = idx
			if err := w.SaveSnapshotMark(wal.SnapshotMark{Index: idx, Term: sterm}); err != nil {
				t.Fatal(err)
			}
			if err := w.ReleaseTo(idx); err != nil {
				t.Fatal(err)
			}
			if err := ss.Purge(2); err != nil {
				t.Fatal(err)
			}
			continue
		}
		start := last + 1
		if last > commit && rng.IntN(100) < 10 {
			// A new leader overwrites part of the uncommitted tail.
			start = commit + 1 + uint64(rng.IntN(int(last-commit)))
			term++
		}
		n := rng.IntN(6)
		next := acked.clone()
		next.log = next.log[:start-1]
		var es []*raftpb.Entry
		for i := 0; i < n; i++ {
			idx := start + uint64(i)
			data := fmt.Sprintf("%d.%d.%s", idx, term, strings.Repeat("x", rng.IntN(1500)))
			es = append(es, &raftpb.Entry{Index: proto.Uint64(idx), Term: proto.Uint64(term), Data: []byte(data)})
			next.log = append(next.log, modelEntry{term: term, data: data})
		}
		if n == 0 {
			next.log = acked.log // nothing truncated without entries
		}
		newLast := uint64(len(next.log))
		next.hs = hs3{term: term, vote: term%3 + 1, commit: min(newLast, commit+uint64(rng.IntN(4)))}
		if n == 0 && next.hs == acked.hs {
			continue
		}
		next.syncedCommit = next.hs.commit
		if n == 0 && next.hs.term == acked.hs.term && next.hs.vote == acked.hs.vote {
			next.syncedCommit = acked.syncedCommit
		}
		inflight = &next
		if err := w.Save(&raftpb.HardState{Term: &next.hs.term, Vote: &next.hs.vote, Commit: &next.hs.commit}, es); err != nil {
			t.Fatal(err)
		}
		acked, inflight = next, nil
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(crashes) < points/2 {
		t.Fatalf("only %d crash points", len(crashes))
	}
	for i, cp := range crashes {
		if err := checkRecovery(cp); err != nil {
			t.Fatalf("seed %d, crash point %d (unsynced %d%%): %v", seed, i, cp.unsynced, err)
		}
	}
}

func snapshotAt(index, term uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data:     []byte(fmt.Sprintf("state@%d", index)),
		Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: &raftpb.ConfState{Voters: []uint64{1}}},
	}
}

// checkRecovery restarts from a crash image the way a member does: newest
// snapshot, then the WAL after it.
func checkRecovery(cp crashPoint) error {
	ss, err := snap.New(cp.fs, "snap", nil)
	if err != nil {
		return err
	}
	var from wal.SnapshotMark
	s, err := ss.LoadNewest(nil)
	switch {
	case err == nil:
		from = wal.SnapshotMark{Index: s.GetMetadata().GetIndex(), Term: s.GetMetadata().GetTerm()}
		if from.Index < cp.durableSnap {
			return fmt.Errorf("newest snapshot %d older than durable snapshot %d", from.Index, cp.durableSnap)
		}
		if string(s.GetData()) != fmt.Sprintf("state@%d", from.Index) || from.Term != cp.next.log[from.Index-1].term {
			return fmt.Errorf("snapshot %+v has data %q", from, s.GetData())
		}
	case errors.Is(err, snap.ErrNotFound):
		if cp.durableSnap != 0 {
			return fmt.Errorf("durable snapshot %d lost", cp.durableSnap)
		}
	default:
		return err
	}

	cfg := wal.Config{FS: cp.fs, Dir: "wal", SegmentSize: 16 << 10, ZeroAhead: 1 << 10}
	if !wal.Exists(cp.fs, "wal") {
		if cp.created {
			return errors.New("WAL vanished after Create returned")
		}
		// A crash inside Create leaves no WAL at all: the member starts fresh.
		_, err := wal.Create(cfg, []byte("member-1"))
		return err
	}
	w, rr, err := wal.Open(cfg, from)
	if err != nil {
		return fmt.Errorf("Open(%+v): %w", from, err)
	}
	if string(rr.Metadata) != "member-1" {
		return fmt.Errorf("metadata %q", rr.Metadata)
	}
	got := describe(rr)
	wantA, wantB := expect(cp.acked, from, rr), expect(cp.next, from, rr)
	if got != wantA && got != wantB {
		return fmt.Errorf("recovered state\n%s\nis neither the acknowledged state\n%s\nnor that plus the write in flight\n%s", got, wantA, wantB)
	}

	// The recovered log accepts appends, and they survive a reopen.
	lastIdx := from.Index
	if n := len(rr.Entries); n > 0 {
		lastIdx = rr.Entries[n-1].GetIndex()
	}
	hs := rr.HardState
	extra := &raftpb.Entry{Index: proto.Uint64(lastIdx + 1), Term: proto.Uint64(hs.GetTerm() + 1), Data: []byte("after crash")}
	if err := w.Save(&raftpb.HardState{Term: proto.Uint64(hs.GetTerm() + 1), Commit: proto.Uint64(hs.GetCommit())}, []*raftpb.Entry{extra}); err != nil {
		return fmt.Errorf("Save after recovery: %w", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	w, rr2, err := wal.Open(cfg, from)
	if err != nil {
		return fmt.Errorf("reopen after append: %w", err)
	}
	defer w.Close()
	if len(rr2.Entries) != len(rr.Entries)+1 || rr2.Entries[len(rr.Entries)].GetIndex() != lastIdx+1 ||
		string(rr2.Entries[len(rr.Entries)].GetData()) != "after crash" {
		return fmt.Errorf("append after recovery not read back: %d entries", len(rr2.Entries))
	}
	return nil
}

func describe(rr *wal.ReadResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hs %d/%d/%d;", rr.HardState.GetTerm(), rr.HardState.GetVote(), rr.HardState.GetCommit())
	for _, e := range rr.Entries {
		fmt.Fprintf(&b, " %d:%d:%s", e.GetIndex(), e.GetTerm(), e.GetData())
	}
	return b.String()
}

// expect describes m as describe would. The commit index may legitimately
// be anywhere between m's last written commit and m's commit; then the
// recovered one is used, so only a commit outside that range differs.
func expect(m model, from wal.SnapshotMark, rr *wal.ReadResult) string {
	var b strings.Builder
	commit := m.hs.commit
	if got := rr.HardState.GetCommit(); got >= m.syncedCommit && got <= m.hs.commit {
		commit = got
	}
	fmt.Fprintf(&b, "hs %d/%d/%d;", m.hs.term, m.hs.vote, commit)
	for i := from.Index; i < uint64(len(m.log)); i++ {
		fmt.Fprintf(&b, " %d:%d:%s", i+1, m.log[i].term, m.log[i].data)
	}
	return b.String()
}
