package raftnode

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Node tests run inside synctest bubbles: the Nodes' tickers run on virtual
// time, so a 10ms tick costs nothing and no test sleeps; and a bubble fails
// the test if any goroutine is left behind, which checks that Stop is clean.

// loopback is an in-process transport between Nodes that marshals every
// message, as the wire would.
type loopback struct {
	mu       sync.Mutex
	nodes    map[uint64]*Node
	isolated map[uint64]bool
	hold     bool // queue messages in held instead of delivering them
	held     []heldMessage
	// observe, if set, sees every message a member sends (under mu).
	observe func(from uint64, m *raftpb.Message)
}

type heldMessage struct {
	from, to *Node
	m        *raftpb.Message
}

func deliver(from, to *Node, m *raftpb.Message) {
	to.Step(m)
	if m.GetType() == raftpb.MsgSnap {
		from.ReportSnapshot(m.GetTo(), false)
	}
}

// setHold pauses the network, or resumes it and delivers what was held.
func (lb *loopback) setHold(on bool) {
	lb.mu.Lock()
	lb.hold = on
	held := lb.held
	lb.held = nil
	lb.mu.Unlock()
	for _, h := range held {
		deliver(h.from, h.to, h.m)
	}
}

type loopbackTransport struct {
	lb   *loopback
	from uint64
}

func (t loopbackTransport) Send(msgs []*raftpb.Message) {
	t.lb.mu.Lock()
	if t.lb.observe != nil {
		for _, m := range msgs {
			t.lb.observe(t.from, m)
		}
	}
	from := t.lb.nodes[t.from]
	cutFrom := t.lb.isolated[t.from]
	targets := make([]*Node, len(msgs))
	for i, m := range msgs {
		if !cutFrom && !t.lb.isolated[m.GetTo()] {
			targets[i] = t.lb.nodes[m.GetTo()]
		}
	}
	t.lb.mu.Unlock()
	for i, m := range msgs {
		to := targets[i]
		if to == nil {
			from.ReportUnreachable(m.GetTo())
			if m.GetType() == raftpb.MsgSnap {
				from.ReportSnapshot(m.GetTo(), true)
			}
			continue
		}
		b, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		cp := &raftpb.Message{}
		if err := proto.Unmarshal(b, cp); err != nil {
			panic(err)
		}
		t.lb.mu.Lock()
		if t.lb.hold {
			t.lb.held = append(t.lb.held, heldMessage{from, to, cp})
			t.lb.mu.Unlock()
			continue
		}
		t.lb.mu.Unlock()
		deliver(from, to, cp)
	}
}

func (lb *loopback) isolate(id uint64, on bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.isolated[id] = on
}

type testNodes struct {
	lb     *loopback
	nodes  map[uint64]*Node
	sms    map[uint64]*kvMachine
	stores map[uint64]*memStorage
}

func startNodes(t *testing.T, n int) *testNodes {
	t.Helper()
	tn := &testNodes{
		lb:     &loopback{nodes: map[uint64]*Node{}, isolated: map[uint64]bool{}},
		nodes:  map[uint64]*Node{},
		sms:    map[uint64]*kvMachine{},
		stores: map[uint64]*memStorage{},
	}
	var peers []raft.Peer
	for i := 1; i <= n; i++ {
		peers = append(peers, raft.Peer{ID: uint64(i)})
	}
	for _, p := range peers {
		id := p.ID
		tn.sms[id] = newKVMachine()
		tn.stores[id] = &memStorage{}
		node, err := StartNode(NodeConfig{
			Core:         Config{ID: id},
			TickInterval: 10 * time.Millisecond,
		}, Boot{Peers: peers}, tn.stores[id], loopbackTransport{tn.lb, id}, tn.sms[id])
		if err != nil {
			t.Fatalf("StartNode(%d) = %v", id, err)
		}
		tn.nodes[id] = node
		tn.lb.mu.Lock()
		tn.lb.nodes[id] = node
		tn.lb.mu.Unlock()
	}
	return tn
}

func (tn *testNodes) stop() {
	for _, n := range tn.nodes {
		n.Stop()
	}
}

// waitLeader waits until the given nodes agree on a leader among them.
func (tn *testNodes) waitLeader(t *testing.T, ctx context.Context, ids ...uint64) uint64 {
	t.Helper()
	if len(ids) == 0 {
		ids = tn.all()
	}
	for {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
		for _, id := range ids {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(tn.nodes[id].LeaderChanges())})
		}
		lead := tn.nodes[ids[0]].Leader()
		agreed := lead != 0
		for _, id := range ids {
			if tn.nodes[id].Leader() != lead {
				agreed = false
			}
		}
		if agreed {
			if ln, ok := tn.nodes[lead]; ok && ln.Status().IsLeader {
				return lead
			}
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			t.Fatalf("no leader among %v: %v", ids, ctx.Err())
		}
	}
}

// waitNewLeader waits until the given nodes agree on a leader among them
// other than old (which may still believe it leads).
func (tn *testNodes) waitNewLeader(t *testing.T, ctx context.Context, old uint64, ids ...uint64) uint64 {
	t.Helper()
	for {
		changed := tn.nodes[ids[0]].LeaderChanges()
		if lead := tn.waitLeader(t, ctx, ids...); lead != old {
			return lead
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("members %v elected no leader other than %d: %v", ids, old, ctx.Err())
		}
	}
}

// restOf lists the members other than id.
func (tn *testNodes) restOf(id uint64) []uint64 {
	var rest []uint64
	for other := range tn.nodes {
		if other != id {
			rest = append(rest, other)
		}
	}
	return rest
}

// put proposes key=val through member via and waits until each of ids has
// applied it.
func (tn *testNodes) put(t *testing.T, ctx context.Context, via uint64, key, val string, ids ...uint64) {
	t.Helper()
	if err := tn.nodes[via].Propose(ctx, []byte(key+"="+val)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		tn.waitKey(t, ctx, id, key, val)
	}
}

// all lists every member's id.
func (tn *testNodes) all() []uint64 {
	ids := make([]uint64, 0, len(tn.nodes))
	for id := range tn.nodes {
		ids = append(ids, id)
	}
	return ids
}

// waitKey waits until member id's state machine holds key=val.
func (tn *testNodes) waitKey(t *testing.T, ctx context.Context, id uint64, key, val string) {
	t.Helper()
	n := tn.nodes[id]
	for {
		// Read the applied index before the state: the other way round, an
		// apply of key between the two reads would leave the wait below for
		// an apply that never comes.
		applied := n.Status().AppliedIndex
		if tn.sms[id].state()[key] == val {
			return
		}
		// Every apply moves the applied index; wait for the next one.
		if err := n.WaitApplied(ctx, applied+1); err != nil {
			t.Fatalf("member %d never applied %s=%s: %v", id, key, val, err)
		}
	}
}

func TestNodeProposeAndLinearizableRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lead := tn.waitLeader(t, ctx)

		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				via := tn.nodes[uint64(i%3+1)] // followers forward to the leader
				if err := via.Propose(ctx, fmt.Appendf(nil, "k%d=v%d", i, i)); err != nil {
					t.Errorf("Propose(%d) = %v", i, err)
				}
			})
		}
		wg.Wait()
		for id := range tn.nodes {
			for i := range 50 {
				tn.waitKey(t, ctx, id, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
			}
		}

		// Linearizable read on a follower: a write applied on the leader
		// before the read began is visible once applied >= ReadIndex.
		tn.put(t, ctx, lead, "x", "final", lead)
		for id, n := range tn.nodes {
			idx, err := n.ReadIndex(ctx)
			if err != nil {
				t.Fatalf("ReadIndex on %d = %v", id, err)
			}
			if err := n.WaitApplied(ctx, idx); err != nil {
				t.Fatalf("WaitApplied(%d) on %d = %v", idx, id, err)
			}
			if got := tn.sms[id].state()["x"]; got != "final" {
				t.Errorf("member %d read x=%q after ReadIndex %d, want final", id, got, idx)
			}
		}
		ref := tn.sms[lead].state()
		for id, sm := range tn.sms {
			if got := sm.state(); !maps.Equal(got, ref) {
				t.Errorf("member %d state differs from leader's", id)
			}
		}
	})
}

func TestNodeReadIndexBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lead := tn.waitLeader(t, ctx)
		tn.put(t, ctx, lead, "a", "1", lead)

		for id, n := range tn.nodes {
			commit := n.Status().CommitIndex
			before := n.Status().ReadIndexRounds
			// Hold the network until all callers are waiting, so they are
			// truly concurrent: the first round is in flight and everyone
			// else queues for the second.
			tn.lb.setHold(true)
			const callers = 100
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					idx, err := n.ReadIndex(ctx)
					if err != nil || idx < commit {
						t.Errorf("ReadIndex on %d = %d, %v; want >= %d", id, idx, err, commit)
					}
				})
			}
			synctest.Wait()
			tn.lb.setHold(false)
			wg.Wait()
			rounds := n.Status().ReadIndexRounds - before
			if rounds == 0 || rounds > 2 {
				t.Errorf("member %d used %d ReadIndex rounds for %d concurrent callers, want 1 or 2", id, rounds, callers)
			}
		}
	})
}

func TestNodeReadIndexSurvivesLeaderLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lead := tn.waitLeader(t, ctx)
		rest := tn.restOf(lead)
		tn.lb.isolate(lead, true)
		// Issued while the leader is unreachable: the round must be retried
		// with whichever leader comes next.
		idx, err := tn.nodes[rest[0]].ReadIndex(ctx)
		if err != nil {
			t.Fatalf("ReadIndex across leader loss = %v", err)
		}
		newLead := tn.waitLeader(t, ctx, rest...)
		if newLead == lead {
			t.Fatalf("isolated member %d still leads", lead)
		}
		if idx == 0 {
			t.Error("ReadIndex = 0")
		}

		// The isolated old leader cannot serve a linearizable read.
		short, cancelShort := context.WithTimeout(ctx, time.Second)
		defer cancelShort()
		if _, err := tn.nodes[lead].ReadIndex(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ReadIndex on isolated old leader = %v, want %v", err, context.DeadlineExceeded)
		}
		tn.lb.isolate(lead, false)
		tn.waitLeader(t, ctx)
	})
}

func TestNodeTransferLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lead := tn.waitLeader(t, ctx)
		tn.put(t, ctx, lead, "a", "1", tn.all()...)
		for id, n := range tn.nodes {
			if id != lead {
				if err := n.TransferLeadership(ctx); err != nil {
					t.Errorf("TransferLeadership on follower %d = %v, want nil (no-op)", id, err)
				}
			}
		}
		if err := tn.nodes[lead].TransferLeadership(ctx); err != nil {
			t.Fatalf("TransferLeadership = %v", err)
		}
		if tn.nodes[lead].Status().IsLeader {
			t.Fatal("old leader still leads after TransferLeadership")
		}
		newLead := tn.waitLeader(t, ctx)
		if newLead == lead {
			t.Fatalf("leader is still %d", lead)
		}
		tn.put(t, ctx, newLead, "b", "2", tn.all()...)
	})
}

func TestNodeSingleMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 1)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tn.waitLeader(t, ctx)
		tn.put(t, ctx, 1, "a", "1", 1)
		// A lone voter is its own quorum: ReadIndex answers without a round trip.
		idx, err := tn.nodes[1].ReadIndex(ctx)
		if err != nil || idx < tn.nodes[1].Status().AppliedIndex {
			t.Fatalf("ReadIndex = %d, %v; want >= applied %d", idx, err, tn.nodes[1].Status().AppliedIndex)
		}
		if err := tn.nodes[1].TransferLeadership(ctx); err != nil {
			t.Fatalf("TransferLeadership on a single member = %v", err)
		}
		if !tn.nodes[1].Status().IsLeader {
			t.Fatal("single member lost leadership")
		}
	})
}

func TestNodeStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lead := tn.waitLeader(t, ctx)
		n := tn.nodes[lead]

		// A caller blocked in WaitApplied is released by Stop.
		waitErr := make(chan error, 1)
		go func() { waitErr <- n.WaitApplied(ctx, 1<<40) }()
		synctest.Wait()
		tn.stop()
		n.Stop() // idempotent

		if err := <-waitErr; !errors.Is(err, ErrStopped) {
			t.Errorf("WaitApplied across Stop = %v, want %v", err, ErrStopped)
		}
		if err := n.Propose(ctx, []byte("a=1")); !errors.Is(err, ErrStopped) {
			t.Errorf("Propose after Stop = %v, want %v", err, ErrStopped)
		}
		if _, err := n.ReadIndex(ctx); !errors.Is(err, ErrStopped) {
			t.Errorf("ReadIndex after Stop = %v, want %v", err, ErrStopped)
		}
		if err := n.TransferLeadership(ctx); !errors.Is(err, ErrStopped) {
			t.Errorf("TransferLeadership after Stop = %v, want %v", err, ErrStopped)
		}
		if err := n.Err(); err != nil {
			t.Errorf("Err after a clean Stop = %v, want nil", err)
		}
		n.Step(&raftpb.Message{}) // must not block or panic
		// synctest.Test fails if any Node goroutine outlived Stop.
	})
}

func TestNodeFatalStorageError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNodes(t, 1)
		defer tn.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tn.waitLeader(t, ctx)
		boom := errors.New("disk on fire")
		tn.stores[1].mu.Lock()
		tn.stores[1].failSave = boom
		tn.stores[1].mu.Unlock()

		n := tn.nodes[1]
		_ = n.Propose(ctx, []byte("a=1")) // raft takes it; the save then fails
		select {
		case <-n.Done():
		case <-ctx.Done():
			t.Fatal("node did not stop on a storage failure")
		}
		if err := n.Err(); !errors.Is(err, ErrStorage) || !errors.Is(err, boom) {
			t.Fatalf("Err() = %v, want %v wrapping %v", err, ErrStorage, boom)
		}
		if err := n.Propose(ctx, []byte("b=1")); !errors.Is(err, ErrStopped) || !errors.Is(err, boom) {
			t.Errorf("Propose after failure = %v, want %v carrying the cause", err, ErrStopped)
		}
	})
}

func TestNodeConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  NodeConfig
		ok   bool
	}{
		{"defaults", NodeConfig{Core: Config{ID: 1}}, true},
		{"negative tick", NodeConfig{Core: Config{ID: 1}, TickInterval: -time.Second}, false},
		{"bad core", NodeConfig{}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%s) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := StartNode(NodeConfig{}, Boot{}, &memStorage{}, nopTransport{}, newKVMachine()); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("StartNode(bad config) = %v, want %v", err, ErrInvalidConfig)
	}
}
