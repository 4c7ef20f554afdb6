package raftnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// cluster drives N Cores from the test goroutine over an in-memory network:
// a queue of messages delivered in order, with cuttable links. Invariants
// are checked on every send and after every step.
type cluster struct {
	t      *testing.T
	cfg    Config
	ids    []uint64
	cores  map[uint64]*Core // absent: crashed
	stores map[uint64]*memStorage
	sms    map[uint64]*kvMachine
	queue  []*raftpb.Message
	cut    map[[2]uint64]bool // directed links that drop messages

	leaders        map[uint64]uint64 // term → leader seen in it
	history        map[uint64]string // index → what every member applied there
	reads          map[uint64][]raft.ReadState
	sentBeforeSave int  // MsgApp carrying entries the leader had not yet saved
	readBack       bool // members' storage is a LogReader
}

// clusterTransport is one member's Transport into the cluster's queue.
type clusterTransport struct {
	c  *cluster
	id uint64
}

func (tr clusterTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		tr.c.checkSend(tr.id, m)
		// Clone: the wire would copy, and the receiver must not share the
		// sender's entries.
		tr.c.queue = append(tr.c.queue, proto.Clone(m).(*raftpb.Message))
	}
}

func newCluster(t *testing.T, n int, cfg Config) *cluster {
	t.Helper()
	return newClusterOf(t, n, cfg, false)
}

// newClusterOf is newCluster whose members' storage reads entries back
// (readBackStorage) when readBack is set.
func newClusterOf(t *testing.T, n int, cfg Config, readBack bool) *cluster {
	t.Helper()
	c := &cluster{
		readBack: readBack,
		t:        t,
		cfg:      cfg,
		cores:    map[uint64]*Core{},
		stores:   map[uint64]*memStorage{},
		sms:      map[uint64]*kvMachine{},
		cut:      map[[2]uint64]bool{},
		leaders:  map[uint64]uint64{},
		history:  map[uint64]string{},
		reads:    map[uint64][]raft.ReadState{},
	}
	var peers []raft.Peer
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, uint64(i))
		peers = append(peers, raft.Peer{ID: uint64(i)})
	}
	for _, id := range c.ids {
		c.start(id, Boot{Peers: peers})
	}
	return c
}

// start creates member id with a fresh state machine and the given boot.
func (c *cluster) start(id uint64, boot Boot) {
	c.t.Helper()
	if _, ok := c.stores[id]; !ok {
		c.stores[id] = &memStorage{}
	}
	if !slices.Contains(c.ids, id) {
		c.ids = append(c.ids, id)
	}
	sm := newKVMachine()
	sm.onApply = func(index uint64, rec string) error {
		if prev, ok := c.history[index]; ok && prev != rec {
			c.t.Errorf("member %d applied %q at %d, another applied %q", id, rec, index, prev)
		}
		c.history[index] = rec
		return nil
	}
	c.sms[id] = sm
	cfg := c.cfg
	cfg.ID = id
	var st Storage = c.stores[id]
	if c.readBack {
		st = readBackStorage{c.stores[id]}
	}
	core, err := NewCore(cfg, boot, st, clusterTransport{c, id}, sm)
	if err != nil {
		c.t.Fatalf("NewCore(%d) = %v", id, err)
	}
	c.cores[id] = core
}

// follower returns one of the first two members that is not lead.
func (c *cluster) follower(lead uint64) uint64 {
	if c.ids[0] != lead {
		return c.ids[0]
	}
	return c.ids[1]
}

// crash drops member id; its storage survives.
func (c *cluster) crash(id uint64) { delete(c.cores, id) }

// restart brings a crashed member back from its storage.
func (c *cluster) restart(id uint64) { c.start(id, c.stores[id].boot()) }

func (c *cluster) isolate(id uint64) {
	for _, o := range c.ids {
		if o != id {
			c.cut[[2]uint64{id, o}] = true
			c.cut[[2]uint64{o, id}] = true
		}
	}
}

func (c *cluster) heal() { clear(c.cut) }

// checkSend asserts the durability rules at the moment a message leaves.
func (c *cluster) checkSend(from uint64, m *raftpb.Message) {
	t := c.t
	st := c.stores[from]
	switch m.GetType() {
	case raftpb.MsgAppResp:
		if !m.GetReject() && m.GetIndex() > st.durableLast() {
			t.Errorf("member %d acked index %d to %d with only %d durable", from, m.GetIndex(), m.GetTo(), st.durableLast())
		}
	case raftpb.MsgVoteResp:
		hs := st.hardState()
		if !m.GetReject() && !(hs.GetTerm() > m.GetTerm() || (hs.GetTerm() == m.GetTerm() && hs.GetVote() == m.GetTo())) {
			t.Errorf("member %d granted vote to %d in term %d with durable term %d vote %d", from, m.GetTo(), m.GetTerm(), hs.GetTerm(), hs.GetVote())
		}
	case raftpb.MsgApp:
		if ents := m.GetEntries(); len(ents) > 0 && ents[len(ents)-1].GetIndex() > st.durableLast() {
			if s := c.cores[from].BasicStatus(); s.RaftState != raft.StateLeader {
				t.Errorf("non-leader %d (%v) sent entries it had not saved", from, s.RaftState)
			}
			c.sentBeforeSave++
		}
	}
}

// process runs every live core's Readys; reports whether any ran.
func (c *cluster) process() bool {
	c.t.Helper()
	did := false
	for _, id := range c.ids {
		core, ok := c.cores[id]
		if !ok {
			continue
		}
		for core.HasReady() {
			did = true
			out, err := core.HandleReady()
			if err != nil {
				c.t.Fatalf("member %d HandleReady = %v", id, err)
			}
			c.reads[id] = append(c.reads[id], out.ReadStates...)
			for job := out.SnapshotJob; job != nil; {
				if job, err = core.SnapshotDone(job, job.Run()); err != nil {
					c.t.Fatalf("member %d SnapshotDone = %v", id, err)
				}
			}
			if out.Applied != core.Applied() {
				c.t.Fatalf("member %d Output.Applied %d != Applied() %d", id, out.Applied, core.Applied())
			}
		}
	}
	return did
}

// deliver hands every queued message to its live, reachable target.
func (c *cluster) deliver() bool {
	q := c.queue
	c.queue = nil
	defer c.reportSnapshots(q)
	for _, m := range q {
		to, ok := c.cores[m.GetTo()]
		if !ok || c.cut[[2]uint64{m.GetFrom(), m.GetTo()}] {
			continue
		}
		if m.GetType() == raftpb.MsgSnap && len(m.GetSnapshot().GetData()) == 0 {
			m = proto.Clone(m).(*raftpb.Message)
			m.Snapshot.Data = c.stores[m.GetFrom()].snapshotData(m.GetSnapshot().GetMetadata().GetIndex())
		}
		_ = to.Step(m) // unknown-peer responses are refused; harmless
	}
	return len(q) > 0
}

// reportSnapshots tells senders of MsgSnap whether it arrived, as a real
// transport does.
func (c *cluster) reportSnapshots(q []*raftpb.Message) {
	for _, m := range q {
		if m.GetType() != raftpb.MsgSnap {
			continue
		}
		from, ok := c.cores[m.GetFrom()]
		if !ok {
			continue
		}
		_, live := c.cores[m.GetTo()]
		from.ReportSnapshot(m.GetTo(), !live || c.cut[[2]uint64{m.GetFrom(), m.GetTo()}])
	}
}

func (c *cluster) checkInvariants() {
	for id, core := range c.cores {
		s := core.BasicStatus()
		if s.RaftState != raft.StateLeader {
			continue
		}
		term := s.GetTerm()
		if prev, ok := c.leaders[term]; ok && prev != id {
			c.t.Fatalf("two leaders in term %d: %d and %d", term, prev, id)
		}
		c.leaders[term] = id
	}
}

// stabilize runs Readys and delivers messages until the network is quiet.
func (c *cluster) stabilize() { c.stabilizeCounting(nil) }

// stabilizeCounting is stabilize that also counts, in sent (if not nil),
// the messages of each type that were sent meanwhile.
func (c *cluster) stabilizeCounting(sent map[raftpb.MessageType]int) {
	c.t.Helper()
	for range 10000 {
		a := c.process()
		c.checkInvariants()
		if sent != nil {
			for _, m := range c.queue {
				sent[m.GetType()]++
			}
		}
		b := c.deliver()
		if !a && !b {
			return
		}
	}
	c.t.Fatal("cluster did not stabilize")
}

func (c *cluster) tick(n int) {
	c.t.Helper()
	for range n {
		for _, id := range c.ids {
			if core, ok := c.cores[id]; ok {
				core.Tick()
			}
		}
		c.stabilize()
	}
}

// leaderAmong returns the member every one of ids follows, or 0.
func (c *cluster) leaderAmong(ids []uint64) uint64 {
	var lead uint64
	for _, id := range ids {
		core, ok := c.cores[id]
		if !ok {
			continue
		}
		l := core.BasicStatus().Lead
		if l == 0 || (lead != 0 && l != lead) {
			return 0
		}
		lead = l
	}
	if lead == 0 || !slices.Contains(ids, lead) {
		return 0
	}
	return lead
}

// waitLeader ticks until ids agree on a leader among them.
func (c *cluster) waitLeader(ids ...uint64) uint64 {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids
	}
	for range 500 {
		if l := c.leaderAmong(ids); l != 0 {
			return l
		}
		c.tick(1)
	}
	c.t.Fatalf("no leader among %v", ids)
	return 0
}

// waitConverged ticks until every live member applied the leader's commit.
func (c *cluster) waitConverged() {
	c.t.Helper()
	for range 500 {
		var want uint64
		for _, core := range c.cores {
			if s := core.BasicStatus(); s.RaftState == raft.StateLeader {
				want = s.GetCommit()
			}
		}
		ok := want != 0
		for _, core := range c.cores {
			if core.Applied() != want {
				ok = false
			}
		}
		if ok {
			return
		}
		c.tick(1)
	}
	for id, core := range c.cores {
		s := core.Status()
		c.t.Logf("member %d: %v applied=%d", id, s, core.Applied())
	}
	c.t.Fatal("members did not converge")
}

func (c *cluster) proposeN(via uint64, from, n int) {
	c.t.Helper()
	for i := from; i < from+n; i++ {
		if err := c.cores[via].Propose(fmt.Appendf(nil, "k%d=v%d", i%17, i)); err != nil {
			c.t.Fatalf("Propose via %d = %v", via, err)
		}
	}
	c.stabilize()
}

func (c *cluster) assertSameState() {
	c.t.Helper()
	var ref map[string]string
	var refID uint64
	for _, id := range c.ids {
		sm, live := c.sms[id], c.cores[id] != nil
		if !live {
			continue
		}
		got := sm.state()
		if ref == nil {
			ref, refID = got, id
			continue
		}
		if !maps.Equal(got, ref) {
			c.t.Fatalf("member %d state %v != member %d state %v", id, got, refID, ref)
		}
	}
	if len(ref) == 0 {
		c.t.Fatal("state machines are empty")
	}
}

func TestCoreReplicates(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			c := newCluster(t, n, Config{})
			lead := c.waitLeader()
			c.proposeN(lead, 0, 100)
			// Proposals through followers are forwarded to the leader.
			for _, id := range c.ids {
				if id != lead {
					c.proposeN(id, 100, 20)
				}
			}
			for i := range 10 {
				for j := range 10 { // 10 proposals per Ready
					_ = c.cores[lead].Propose(fmt.Appendf(nil, "b%d=%d", j, i))
				}
				c.stabilize()
			}
			c.waitConverged()
			c.assertSameState()
			want := 100 + 20*(n-1) + 100
			if got := c.sms[lead].state(); got["b9"] != "9" {
				t.Errorf("batched proposals not applied: %v", got)
			}
			if got := c.sms[lead].applied; got < want {
				t.Errorf("leader applied %d entries, want >= %d", got, want)
			}
			if n > 1 && c.sentBeforeSave == 0 {
				t.Error("leader never sent entries before saving them (thesis 10.2.1)")
			}
		})
	}
}

func TestCoreReadIndex(t *testing.T) {
	c := newCluster(t, 3, Config{})
	lead := c.waitLeader()
	c.proposeN(lead, 0, 10)
	commit := c.cores[lead].BasicStatus().GetCommit()

	c.cores[lead].ReadIndex([]byte("on-leader"))
	c.stabilize()
	if idx, ok := c.readAnswer(lead, "on-leader"); !ok || idx < commit {
		t.Fatalf("leader ReadIndex = %d, %v; want >= %d, true", idx, ok, commit)
	}
	follower := c.follower(lead)
	c.cores[follower].ReadIndex([]byte("on-follower"))
	c.stabilize()
	if idx, ok := c.readAnswer(follower, "on-follower"); !ok || idx < commit {
		t.Fatalf("follower ReadIndex = %d, %v; want >= %d, true", idx, ok, commit)
	}

	// A leader cut off from its quorum cannot confirm it still leads.
	c.isolate(lead)
	c.cores[lead].ReadIndex([]byte("isolated"))
	var rest []uint64
	for _, id := range c.ids {
		if id != lead {
			rest = append(rest, id)
		}
	}
	newLead := c.waitLeader(rest...)
	c.tick(3 * DefaultElectionTicks)
	if idx, ok := c.readAnswer(lead, "isolated"); ok {
		t.Fatalf("isolated leader answered ReadIndex with %d", idx)
	}
	if s := c.cores[lead].BasicStatus(); s.RaftState == raft.StateLeader {
		t.Errorf("isolated leader did not step down (CheckQuorum)")
	}
	c.cores[newLead].ReadIndex([]byte("new-leader"))
	c.stabilize()
	if _, ok := c.readAnswer(newLead, "new-leader"); !ok {
		t.Fatal("new leader did not answer ReadIndex")
	}
	c.heal()
	c.proposeN(newLead, 10, 5)
	c.waitConverged()
	c.assertSameState()
}

func TestCoreSnapshotAndCatchUp(t *testing.T) {
	c := newCluster(t, 3, Config{SnapshotCount: 20, SnapshotCatchUpEntries: 5})
	lead := c.waitLeader()
	lagger := c.follower(lead)
	c.isolate(lagger)
	for i := range 10 {
		c.proposeN(lead, i*10, 10)
	}
	ls := c.stores[lead]
	if ls.snapSaves == 0 || ls.released == 0 {
		t.Fatalf("leader snapshots saved %d, released to %d; want both > 0", ls.snapSaves, ls.released)
	}
	first, _ := c.cores[lead].store.FirstIndex()
	if first <= 2 {
		t.Fatalf("leader log not compacted: first index %d", first)
	}
	if want := c.cores[lead].snapIndex - 5 + 1; first != want {
		t.Errorf("first index %d, want %d (snapshot minus catch-up entries)", first, want)
	}

	c.heal()
	c.waitConverged()
	if got := c.sms[lagger].restoreCount(); got != 1 {
		t.Fatalf("lagging member restored %d snapshots, want 1", got)
	}
	if got := c.stores[lagger].snapSaves; got == 0 {
		t.Fatal("lagging member did not persist the leader's snapshot")
	}
	c.assertSameState()
	c.proposeN(lead, 100, 5)
	c.waitConverged()
	c.assertSameState()
}

func TestCoreRestart(t *testing.T) {
	c := newCluster(t, 3, Config{SnapshotCount: 20, SnapshotCatchUpEntries: 5})
	lead := c.waitLeader()
	c.proposeN(lead, 0, 50)
	c.waitConverged()

	f := c.follower(lead)
	c.crash(f)
	c.proposeN(lead, 50, 10)
	c.restart(f)
	if got := c.sms[f].restoreCount(); got != 1 {
		t.Fatalf("restart restored %d snapshots, want 1", got)
	}
	c.waitConverged()
	c.assertSameState()

	// Whole-cluster restart: every member rebuilds from its storage alone.
	before := c.sms[lead].state()
	for _, id := range c.ids {
		c.crash(id)
	}
	c.queue = nil
	for _, id := range c.ids {
		c.restart(id)
	}
	lead = c.waitLeader()
	c.waitConverged()
	if got := c.sms[lead].state(); !maps.Equal(got, before) {
		t.Fatalf("state after full restart %v, want %v", got, before)
	}
	c.proposeN(lead, 60, 10)
	c.waitConverged()
	c.assertSameState()
}

func TestCoreAddMember(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"from log", Config{}},
		{"from snapshot", Config{SnapshotCount: 10, SnapshotCatchUpEntries: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, tc.cfg)
			lead := c.waitLeader()
			c.proposeN(lead, 0, 30)
			cc := &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(4)), Context: []byte("member-4")}
			if err := c.cores[lead].ProposeConfChange(cc); err != nil {
				t.Fatalf("ProposeConfChange = %v", err)
			}
			c.stabilize()
			c.start(4, Boot{}) // joining: no peers, no state
			c.waitConverged()
			c.assertSameState()
			if got := c.cores[4].ConfState().GetVoters(); len(got) != 4 {
				t.Fatalf("member 4 voters = %v, want 4 of them", got)
			}
			for _, id := range c.ids {
				if !c.sms[id].members[4] {
					t.Errorf("member %d state machine did not see member 4 join", id)
				}
			}
			c.proposeN(lead, 30, 5)
			c.waitConverged()
			c.assertSameState()
		})
	}
}

func TestCoreFatalErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, tc := range []struct {
		name    string
		breakIt func(*memStorage, *kvMachine)
		want    error
	}{
		{"save fails", func(s *memStorage, _ *kvMachine) { s.failSave = boom }, ErrStorage},
		{"apply fails", func(_ *memStorage, m *kvMachine) { m.failApply = boom }, ErrApply},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 1, Config{})
			lead := c.waitLeader()
			core := c.cores[lead]
			tc.breakIt(c.stores[lead], c.sms[lead])
			if err := core.Propose([]byte("a=1")); err != nil {
				t.Fatalf("Propose = %v", err)
			}
			var err error
			for err == nil && core.HasReady() {
				_, err = core.HandleReady()
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, boom) {
				t.Fatalf("HandleReady = %v, want %v wrapping %v", err, tc.want, boom)
			}
			if _, again := core.HandleReady(); again != err {
				t.Errorf("second HandleReady = %v, want the same %v", again, err)
			}
			if core.HasReady() {
				t.Error("a dead core reports HasReady")
			}
		})
	}
}

// TestCoreProposeBatch: several entries proposed together cost one MsgApp
// per follower (or one forwarded MsgProp), commit in order, and are dropped
// together.
func TestCoreProposeBatch(t *testing.T) {
	c := newCluster(t, 3, Config{})
	if err := c.cores[1].Propose([]byte("a=1"), []byte("b=1")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("Propose without leader = %v, want %v", err, ErrProposalDropped)
	}
	lead := c.waitLeader()
	c.proposeN(lead, 0, 3) // followers replicate: each proposal would be sent at once
	follower := c.follower(lead)
	sent := func(typ raftpb.MessageType, from uint64) (msgs, entries int) {
		for _, m := range c.queue {
			if m.GetType() == typ && m.GetFrom() == from {
				msgs++
				entries += len(m.GetEntries())
			}
		}
		return msgs, entries
	}
	batch := func(prefix string) [][]byte {
		var b [][]byte
		for i := range 5 {
			b = append(b, fmt.Appendf(nil, "%s=%d", prefix, i))
		}
		return b
	}

	if err := c.cores[lead].Propose(batch("x")...); err != nil {
		t.Fatalf("Propose on leader = %v", err)
	}
	c.process()
	if msgs, ents := sent(raftpb.MessageType_MsgApp, lead); msgs != 2 || ents != 10 {
		t.Errorf("leader sent %d MsgApp with %d entries, want 2 with 5 each", msgs, ents)
	}
	c.stabilize()

	if err := c.cores[follower].Propose(batch("y")...); err != nil {
		t.Fatalf("Propose on follower = %v", err)
	}
	c.process()
	if msgs, ents := sent(raftpb.MessageType_MsgProp, follower); msgs != 1 || ents != 5 {
		t.Errorf("follower forwarded %d MsgProp with %d entries, want 1 with 5", msgs, ents)
	}
	c.stabilize()
	c.waitConverged()
	c.assertSameState()
	for _, id := range c.ids {
		st := c.sms[id].state()
		if st["x"] != "4" || st["y"] != "4" {
			t.Errorf("member %d has x=%q y=%q, want the last of each batch (4)", id, st["x"], st["y"])
		}
	}
	if err := c.cores[lead].Propose(); err != nil {
		t.Errorf("empty Propose = %v, want nil", err)
	}
}

func TestCoreProposalDropped(t *testing.T) {
	c := newCluster(t, 3, Config{})
	// Nobody leads yet: a follower without leader drops proposals.
	if err := c.cores[1].Propose([]byte("a=1")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("Propose without leader = %v, want %v", err, ErrProposalDropped)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{ID: 1}, true},
		{"zero id", Config{}, false},
		{"reserved id", Config{ID: ^uint64(0)}, false},
		{"election not above heartbeat", Config{ID: 1, ElectionTicks: 3, HeartbeatTicks: 3}, false},
		{"negative heartbeat", Config{ID: 1, HeartbeatTicks: -1}, false},
		{"negative inflight", Config{ID: 1, MaxInflightMsgs: -1}, false},
		{"custom", Config{ID: 7, ElectionTicks: 20, HeartbeatTicks: 2, SnapshotCount: 5}, true},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%s) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%s) = %v, does not wrap ErrInvalidConfig", tc.name, err)
		}
	}
}

func TestNewCoreRejectsBadBoot(t *testing.T) {
	ent := func(i, term uint64) *raftpb.Entry {
		return &raftpb.Entry{Index: new(i), Term: new(term)}
	}
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(10)), Term: new(uint64(2)),
		ConfState: &raftpb.ConfState{Voters: []uint64{1}},
	}, Data: []byte(`{}`)}
	for _, tc := range []struct {
		name string
		boot Boot
	}{
		{"peers and state", Boot{Peers: []raft.Peer{{ID: 1}}, Entries: []*raftpb.Entry{ent(1, 1)}}},
		{"peer id 0", Boot{Peers: []raft.Peer{{ID: 0}}}},
		{"gap after snapshot", Boot{Snapshot: snap, Entries: []*raftpb.Entry{ent(12, 2)}}},
		{"gap between entries", Boot{Entries: []*raftpb.Entry{ent(1, 1), ent(3, 1)}}},
		{"commit beyond log", Boot{HardState: &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(5))}, Entries: []*raftpb.Entry{ent(1, 1)}}},
		{"term goes backwards", Boot{Entries: []*raftpb.Entry{ent(1, 2), ent(2, 1)}, HardState: &raftpb.HardState{Term: new(uint64(2)), Commit: new(uint64(2))}}},
	} {
		_, err := NewCore(Config{ID: 1}, tc.boot, &memStorage{}, clusterTransport{}, newKVMachine())
		if !errors.Is(err, ErrInvalidBoot) {
			t.Errorf("NewCore(%s) = %v, want %v", tc.name, err, ErrInvalidBoot)
		}
	}
	// A HardState whose commit lags the snapshot (crash between the two
	// writes) is repaired, not rejected.
	hs := &raftpb.HardState{Term: new(uint64(2)), Commit: new(uint64(4))}
	c, err := NewCore(Config{ID: 1}, Boot{Snapshot: snap, HardState: hs}, &memStorage{}, clusterTransport{}, newKVMachine())
	if err != nil {
		t.Fatalf("NewCore(commit behind snapshot) = %v", err)
	}
	if got := c.Applied(); got != 10 {
		t.Errorf("Applied() = %d, want 10", got)
	}
}

// nopStorage, nopTransport and nopMachine isolate the Core's own cost.
type nopStorage struct{}

func (nopStorage) Save(*raftpb.HardState, []*raftpb.Entry) error { return nil }
func (nopStorage) WriteSnapshotFile(*raftpb.SnapshotMetadata, func(io.Writer) error) (int64, error) {
	return 0, nil
}
func (nopStorage) MarkSnapshot(*raftpb.SnapshotMetadata) error { return nil }
func (nopStorage) Release(uint64) error                        { return nil }

type nopTransport struct{}

func (nopTransport) Send([]*raftpb.Message) {}

type nopMachine struct{}

func (nopMachine) Apply(uint64, []byte) error                       { return nil }
func (nopMachine) ApplyConfChange(uint64, *raftpb.ConfChange) error { return nil }
func (nopMachine) Snapshot() (func(io.Writer) error, error) {
	return func(io.Writer) error { return nil }, nil
}
func (nopMachine) Restore(*raftpb.Snapshot) error { return nil }

func BenchmarkCoreProposeApply(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			c, err := NewCore(Config{ID: 1}, Boot{Peers: []raft.Peer{{ID: 1}}}, nopStorage{}, nopTransport{}, nopMachine{})
			if err != nil {
				b.Fatal(err)
			}
			drain := func() {
				for c.HasReady() {
					if _, err := c.HandleReady(); err != nil {
						b.Fatal(err)
					}
				}
			}
			drain() // apply the bootstrap conf change: raft will not campaign before
			if err := c.Campaign(); err != nil {
				b.Fatal(err)
			}
			drain()
			data := make([]byte, 128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				for range min(batch, b.N-i) {
					if err := c.Propose(data); err != nil {
						b.Fatal(err)
					}
				}
				drain()
			}
		})
	}
}

// TestCoreSnapshotInBackground: a snapshot job captures the state at its
// index and the Core goes on applying while it runs; no second job starts
// before SnapshotDone; only then is the snapshot shown to raft (without its
// data) and the log compacted; a failed job stops the Core.
func TestCoreSnapshotInBackground(t *testing.T) {
	c, st, propose := soloLeader(t, Config{ID: 1, SnapshotCount: 10, SnapshotCatchUpEntries: 2})
	var jobs []*SnapshotJob
	put := func(from, n int) {
		for i := from; i < from+n; i++ {
			if job := propose(fmt.Appendf(nil, "k%d=%d", i, i)); job != nil {
				jobs = append(jobs, job)
			}
		}
	}
	put(0, 12)
	if len(jobs) != 1 {
		t.Fatalf("%d snapshot jobs after 12 entries with SnapshotCount 10, want 1", len(jobs))
	}
	job := jobs[0]
	put(12, 30) // far past the next SnapshotCount: still one job in flight
	if len(jobs) != 1 {
		t.Fatalf("%d jobs started while one was in flight, want 1", len(jobs))
	}
	if first, _ := c.store.FirstIndex(); first != 1 {
		t.Fatalf("log compacted to %d before the snapshot was durable", first)
	}
	if err := job.Run(); err != nil {
		t.Fatal(err)
	}
	next, err := c.SnapshotDone(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := c.store.Snapshot()
	if got := ms.GetMetadata().GetIndex(); got != job.Index() || len(ms.GetData()) != 0 {
		t.Fatalf("raft's snapshot: index %d with %d bytes of data, want index %d without data", got, len(ms.GetData()), job.Index())
	}
	if first, _ := c.store.FirstIndex(); first != job.Index()-2+1 {
		t.Fatalf("log first index %d after the snapshot at %d, want %d", first, job.Index(), job.Index()-1)
	}
	// The file holds the state as of the job's index, not as of its Run.
	var saved kvSnapshot
	if err := json.Unmarshal(st.snap.GetData(), &saved); err != nil {
		t.Fatal(err)
	}
	if _, ok := saved.KV["k11"]; ok == (job.Index() < 14) {
		// index 1..2: bootstrap conf change and the leader's empty entry;
		// k0 is entry 3, so k11 is entry 14.
		t.Fatalf("snapshot at %d: k11 present = %v", job.Index(), ok)
	}
	if len(saved.KV) != int(job.Index())-2 {
		t.Fatalf("snapshot at %d holds %d keys, want %d", job.Index(), len(saved.KV), job.Index()-2)
	}
	if next == nil || next.Index() != c.Applied() {
		t.Fatalf("SnapshotDone returned %v, want the next job at applied %d", next, c.Applied())
	}
	boom := errors.New("disk on fire")
	if _, err := c.SnapshotDone(next, boom); !errors.Is(err, boom) {
		t.Fatalf("SnapshotDone(failed) = %v, want %v", err, boom)
	}
	if _, err := c.HandleReady(); !errors.Is(err, boom) {
		t.Fatalf("HandleReady after a failed snapshot = %v, want the same error", err)
	}
}

// TestCoreSnapshotLogRatio: past SnapshotCount, the next snapshot waits
// until the log applied since the last one is SnapshotLogRatio of that
// snapshot's size or the whole of it up to SnapshotLogFloor, whichever is
// more, unless the ratio is negative.
func TestCoreSnapshotLogRatio(t *testing.T) {
	for _, tc := range []struct {
		ratio float64
		floor uint64
	}{
		{-1, 0},
		{0.25, 0},    // the default floor: the whole snapshot's size
		{0.25, 2000}, // the floor over the ratio's share
		{0.25, 100},  // the ratio's share over the floor
	} {
		t.Run(fmt.Sprint(tc.ratio, "/", tc.floor), func(t *testing.T) {
			c, _, propose := soloLeader(t, Config{ID: 1, SnapshotCount: 10, SnapshotLogRatio: tc.ratio, SnapshotLogFloor: tc.floor})
			// A 4,000-byte value makes the first snapshot about 4 KB.
			job := propose([]byte("big=" + strings.Repeat("x", 4000)))
			for i := 0; job == nil; i++ {
				job = propose(fmt.Appendf(nil, "a%d=1", i%10))
			}
			if err := job.Run(); err != nil {
				t.Fatal(err)
			}
			if next, err := c.SnapshotDone(job, nil); err != nil || next != nil {
				t.Fatalf("SnapshotDone = %v, %v", next, err)
			}
			first, size := job.Index(), job.bytes
			job = nil
			n := 0
			for ; job == nil && n < 1000; n++ {
				job = propose(fmt.Appendf(nil, "b%04d=12", n)) // 8 bytes
			}
			want := 10 // SnapshotCount
			if tc.ratio > 0 {
				floor := float64(size)
				if tc.floor > 0 {
					floor = min(floor, float64(tc.floor))
				}
				want = max(want, int(math.Ceil(max(tc.ratio*float64(size), floor)/8)))
			}
			if job == nil || n != want {
				t.Fatalf("next snapshot job after %d entries of 8 bytes (snapshot at %d is %d bytes), want %d", n, first, size, want)
			}
		})
	}
}

// soloLeader starts a one-member Core with cfg and makes it leader. propose
// proposes data, runs every Ready and returns the snapshot job one of them
// started, if any (the caller runs it).
func soloLeader(t *testing.T, cfg Config) (*Core, *memStorage, func(data []byte) *SnapshotJob) {
	t.Helper()
	st := &memStorage{}
	c, err := NewCore(cfg, Boot{Peers: []raft.Peer{{ID: cfg.ID}}}, st, nopTransport{}, newKVMachine())
	if err != nil {
		t.Fatal(err)
	}
	drain := func() (job *SnapshotJob) {
		t.Helper()
		for c.HasReady() {
			out, err := c.HandleReady()
			if err != nil {
				t.Fatal(err)
			}
			if out.SnapshotJob != nil {
				job = out.SnapshotJob
			}
		}
		return job
	}
	drain()
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	drain()
	return c, st, func(data []byte) *SnapshotJob {
		t.Helper()
		if err := c.Propose(data); err != nil {
			t.Fatal(err)
		}
		return drain()
	}
}
