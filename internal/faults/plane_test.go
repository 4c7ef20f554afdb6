package faults

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Members 1, 2, 3 are n1, n2, n3; member 4 has not published a name.
type fakeCluster struct {
	members []Member
	leader  uint64
}

func (c *fakeCluster) Members() []Member { return c.members }
func (c *fakeCluster) Leader() uint64    { return c.leader }

func threeMembers() *fakeCluster {
	return &fakeCluster{members: []Member{{1, "n1"}, {2, "n2"}, {3, "n3"}, {4, ""}}, leader: 2}
}

// testClock is a manual clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a bytes.Buffer safe for a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testPlane struct {
	*Plane
	clock *testClock
	logs  *syncBuffer
}

func newTestPlane(t *testing.T, c Cluster) testPlane {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	logs := &syncBuffer{}
	p, err := New(Config{Cluster: c, Now: clock.now, Rand: rand.New(rand.NewPCG(1, 2)),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return testPlane{p, clock, logs}
}

func (p testPlane) mustInstall(t *testing.T, s Spec) Info {
	t.Helper()
	info, err := p.Install(s)
	if err != nil {
		t.Fatalf("Install(%+v) = %v", s, err)
	}
	return info
}

func TestInstallResolves(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		check func(Info) string // "" when fine
	}{
		{"link by name", Spec{Kind: KindDrop, Link: "n1->n2"}, func(i Info) string {
			return want(i.Link == "n1->n2" && i.Description == "drop all n1->n2", i)
		}},
		{"default link", Spec{Kind: KindDuplicate, Probability: prob(0.25)}, func(i Info) string {
			return want(i.Link == "*->*" && i.Description == "duplicate all *->* with probability 0.25", i)
		}},
		{"hex id and leader", Spec{Kind: KindDrop, Link: "0x1<->leader", Types: []string{"vote,prevote"}, Next: 3}, func(i Info) string {
			return want(i.Link == "n1<->n2" && slices.Equal(i.Types, []string{"MsgVote", "MsgPreVote"}) &&
				i.Description == "drop MsgVote,MsgPreVote n1<->n2, next 3" && i.Remaining != nil && *i.Remaining == 3, i)
		}},
		{"unnamed member by id", Spec{Kind: KindDrop, Link: "*->4"}, func(i Info) string {
			return want(i.Link == "*->4", i)
		}},
		{"delay", Spec{Kind: KindDelay, Link: "*->n3", Delay: Duration(50 * time.Millisecond), Jitter: Duration(10 * time.Millisecond), Duration: Duration(time.Minute)}, func(i Info) string {
			return want(i.Description == "delay all *->n3 by 50ms±10ms, expires after 1m0s" && i.Expires != nil &&
				i.Expires.Sub(i.Created) == time.Minute, i)
		}},
		{"partition", Spec{Kind: KindPartition, Groups: [][]string{{"n1", "0x2"}, {"n3"}}, Bridge: []string{"n2"}}, func(i Info) string {
			return want(fmt.Sprint(i.Groups) == "[[n1 n2] [n3]]" && i.Description == "partition n1,n2 | n3 (bridge n2)", i)
		}},
		{"isolate leader", Spec{Kind: KindIsolateLeader}, func(i Info) string {
			return want(i.Kind == KindPartition && fmt.Sprint(i.Groups) == "[[n2]]" && i.Description == "isolate leader n2 | rest", i)
		}},
		{"given description", Spec{Kind: KindDrop, Description: "lossy"}, func(i Info) string {
			return want(i.Description == "lossy", i)
		}},
	}
	for _, tt := range tests {
		p := newTestPlane(t, threeMembers())
		info, err := p.Install(tt.spec)
		if err != nil {
			t.Errorf("Install(%s) = %v", tt.name, err)
			continue
		}
		if msg := tt.check(info); msg != "" {
			t.Errorf("Install(%s): %s", tt.name, msg)
		}
		if !strings.Contains(p.logs.String(), "fault rule installed") || !strings.Contains(p.logs.String(), info.Description) {
			t.Errorf("Install(%s) logged %q, want the install and its description", tt.name, p.logs.String())
		}
		// The canonical form installs the same rule elsewhere.
		q := newTestPlane(t, threeMembers())
		again, err := q.Install(info.Spec)
		if err != nil || again.Description != info.Description || again.Link != info.Link || fmt.Sprint(again.Groups) != fmt.Sprint(info.Groups) {
			t.Errorf("Install(%s) of the canonical spec %+v = %+v, %v", tt.name, info.Spec, again, err)
		}
	}
}

func want(ok bool, i Info) string {
	if ok {
		return ""
	}
	return fmt.Sprintf("got %+v", i)
}

func TestInstallErrors(t *testing.T) {
	noLeader := threeMembers()
	noLeader.leader = 0
	tests := []struct {
		name    string
		cluster Cluster
		spec    Spec
		err     error
		text    string
	}{
		{"unknown name", threeMembers(), Spec{Kind: KindDrop, Link: "n1->n9"}, ErrUnknownMember, `"n9" (members: n1, n2, n3)`},
		{"unknown id", threeMembers(), Spec{Kind: KindDrop, Link: "n1->ff"}, ErrUnknownMember, `"ff"`},
		{"no cluster, name", nil, Spec{Kind: KindDrop, Link: "n1->n2"}, ErrUnknownMember, "hexadecimal"},
		{"no leader", noLeader, Spec{Kind: KindIsolateLeader}, ErrNoLeader, "leader"},
		{"leader in link", noLeader, Spec{Kind: KindDrop, Link: "leader->*"}, ErrNoLeader, "leader"},
		{"member in two groups", threeMembers(), Spec{Kind: KindPartition, Groups: [][]string{{"n1"}, {"n2", "0x1"}}}, ErrInvalidRule, "groups 1 and 2"},
		{"invalid", threeMembers(), Spec{Kind: "boom"}, ErrInvalidRule, "boom"},
	}
	for _, tt := range tests {
		p := newTestPlane(t, tt.cluster)
		_, err := p.Install(tt.spec)
		if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("Install(%s) = %v, want %v containing %q", tt.name, err, tt.err, tt.text)
		}
		if p.Active() || len(p.List()) != 0 {
			t.Errorf("Install(%s) failed but left rules: %+v", tt.name, p.List())
		}
	}
	// Without a cluster, hexadecimal ids still work.
	p := newTestPlane(t, nil)
	if info, err := p.Install(Spec{Kind: KindDrop, Link: "a->b"}); err != nil || info.Link != "a->b" {
		t.Errorf("Install(a->b) without a cluster = %+v, %v", info, err)
	}
}

func TestIDs(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	if id := p.mustInstall(t, Spec{Kind: KindDrop}).ID; id != "f1" {
		t.Errorf("first id = %q, want f1", id)
	}
	p.mustInstall(t, Spec{ID: "f2", Kind: KindDrop})
	if id := p.mustInstall(t, Spec{Kind: KindDrop}).ID; id != "f3" {
		t.Errorf("id after a given f2 = %q, want f3", id)
	}
	if _, err := p.Install(Spec{ID: "f2", Kind: KindDrop}); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("Install(id f2 again) = %v, want ErrDuplicateID", err)
	}
	if _, err := p.Remove("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(nope) = %v, want ErrNotFound", err)
	}
	if info, err := p.Remove("f2"); err != nil || info.ID != "f2" {
		t.Errorf("Remove(f2) = %+v, %v", info, err)
	}
	var ids []string
	for _, i := range p.List() {
		ids = append(ids, i.ID)
	}
	if !slices.Equal(ids, []string{"f1", "f3"}) {
		t.Errorf("List ids = %v, want [f1 f3]", ids)
	}
	healed := p.Heal()
	if len(healed) != 2 || p.Active() || len(p.List()) != 0 {
		t.Errorf("Heal() = %v; Active %t; List %v", healed, p.Active(), p.List())
	}
	if !strings.Contains(p.logs.String(), "fault rule removed") || !strings.Contains(p.logs.String(), "fault plane healed") {
		t.Errorf("logs lack removals: %s", p.logs.String())
	}
	for range MaxRules {
		p.mustInstall(t, Spec{Kind: KindDrop, Link: "n1->n2"})
	}
	if _, err := p.Install(Spec{Kind: KindDrop}); !errors.Is(err, ErrTooManyRules) {
		t.Errorf("Install beyond MaxRules = %v, want ErrTooManyRules", err)
	}
}

// msgCase is one message judged under a rule set.
type msgCase struct {
	from, to uint64
	typ      raftpb.MessageType
	want     Verdict
}

func TestDecide(t *testing.T) {
	ms := time.Millisecond
	drop := Verdict{Drop: true}
	pass := Verdict{}
	tests := []struct {
		name  string
		rules []Spec
		msgs  []msgCase
	}{
		{"no rules", nil, []msgCase{{1, 2, raftpb.MsgApp, pass}}},
		{"one-way cut", []Spec{{Kind: KindDrop, Link: "n1->n2"}}, []msgCase{
			{1, 2, raftpb.MsgApp, drop}, {2, 1, raftpb.MsgAppResp, pass}, {1, 3, raftpb.MsgApp, pass}, {3, 2, raftpb.MsgApp, pass},
		}},
		{"both ways", []Spec{{Kind: KindDrop, Link: "n1<->n2"}}, []msgCase{
			{1, 2, raftpb.MsgApp, drop}, {2, 1, raftpb.MsgAppResp, drop}, {1, 3, raftpb.MsgApp, pass},
		}},
		{"wildcard to", []Spec{{Kind: KindDrop, Link: "*->n3"}}, []msgCase{
			{1, 3, raftpb.MsgApp, drop}, {2, 3, raftpb.MsgHeartbeat, drop}, {3, 1, raftpb.MsgAppResp, pass},
		}},
		{"wildcard from", []Spec{{Kind: KindDrop, Link: "n3->*"}}, []msgCase{
			{3, 1, raftpb.MsgAppResp, drop}, {3, 2, raftpb.MsgVote, drop}, {1, 3, raftpb.MsgApp, pass},
		}},
		{"votes only", []Spec{{Kind: KindDrop, Types: []string{"MsgVote", "MsgPreVote"}}}, []msgCase{
			{1, 2, raftpb.MsgVote, drop}, {1, 2, raftpb.MsgPreVote, drop}, {2, 1, raftpb.MsgVoteResp, pass},
			{1, 2, raftpb.MsgApp, pass}, {1, 2, raftpb.MsgHeartbeat, pass},
		}},
		{"app responses only", []Spec{{Kind: KindDrop, Types: []string{"MsgAppResp"}}}, []msgCase{
			{2, 1, raftpb.MsgAppResp, drop}, {1, 2, raftpb.MsgApp, pass},
		}},
		{"heartbeats only", []Spec{{Kind: KindDrop, Link: "n1->*", Types: []string{"heartbeat,heartbeatresp"}}}, []msgCase{
			{1, 2, raftpb.MsgHeartbeat, drop}, {1, 3, raftpb.MsgHeartbeatResp, drop}, {1, 2, raftpb.MsgApp, pass}, {2, 1, raftpb.MsgHeartbeatResp, pass},
		}},
		{"snapshots", []Spec{{Kind: KindDrop, Types: []string{"MsgSnap"}}}, []msgCase{
			{1, 2, raftpb.MsgSnap, drop}, {1, 2, raftpb.MsgApp, pass},
		}},
		{"partition two groups", []Spec{{Kind: KindPartition, Groups: [][]string{{"n1", "n2"}, {"n3"}}}}, []msgCase{
			{1, 3, raftpb.MsgApp, drop}, {3, 1, raftpb.MsgVote, drop}, {2, 3, raftpb.MsgHeartbeat, drop}, {3, 2, raftpb.MsgAppResp, drop},
			{1, 2, raftpb.MsgApp, pass}, {2, 1, raftpb.MsgAppResp, pass},
			{4, 1, raftpb.MsgApp, pass}, {3, 4, raftpb.MsgApp, pass}, // member 4 is in no group
		}},
		{"partition one group is it against the rest", []Spec{{Kind: KindPartition, Groups: [][]string{{"n3"}}}}, []msgCase{
			{1, 3, raftpb.MsgApp, drop}, {3, 2, raftpb.MsgVote, drop}, {3, 4, raftpb.MsgApp, drop},
			{1, 2, raftpb.MsgApp, pass}, {4, 1, raftpb.MsgApp, pass},
		}},
		{"partition with bridge", []Spec{{Kind: KindPartition, Groups: [][]string{{"n1", "n2"}, {"n3", "4"}}, Bridge: []string{"n2"}}}, []msgCase{
			{1, 3, raftpb.MsgApp, drop}, {4, 1, raftpb.MsgApp, drop},
			{2, 3, raftpb.MsgApp, pass}, {3, 2, raftpb.MsgAppResp, pass}, {4, 2, raftpb.MsgVote, pass}, {1, 2, raftpb.MsgApp, pass}, {3, 4, raftpb.MsgApp, pass},
		}},
		{"isolate leader", []Spec{{Kind: KindIsolateLeader}}, []msgCase{
			{2, 1, raftpb.MsgApp, drop}, {3, 2, raftpb.MsgVote, drop}, {1, 3, raftpb.MsgVote, pass},
		}},
		{"partition of votes only", []Spec{{Kind: KindPartition, Groups: [][]string{{"n1"}}, Types: []string{"MsgVote"}}}, []msgCase{
			{1, 2, raftpb.MsgVote, drop}, {1, 2, raftpb.MsgApp, pass},
		}},
		{"fixed delay", []Spec{{Kind: KindDelay, Link: "n1->n2", Delay: Duration(50 * ms)}}, []msgCase{
			{1, 2, raftpb.MsgApp, Verdict{Delay: 50 * ms}}, {2, 1, raftpb.MsgAppResp, pass},
		}},
		{"delays add up", []Spec{{Kind: KindDelay, Delay: Duration(10 * ms)}, {Kind: KindDelay, Link: "n1->n2", Delay: Duration(50 * ms)}}, []msgCase{
			{1, 2, raftpb.MsgApp, Verdict{Delay: 60 * ms}}, {1, 3, raftpb.MsgApp, Verdict{Delay: 10 * ms}},
		}},
		{"duplicate", []Spec{{Kind: KindDuplicate, Link: "n1->n2"}, {Kind: KindDuplicate, Link: "*->n2", Types: []string{"MsgApp"}}}, []msgCase{
			{1, 2, raftpb.MsgApp, Verdict{Copies: 2}}, {1, 2, raftpb.MsgHeartbeat, Verdict{Copies: 1}}, {3, 2, raftpb.MsgApp, Verdict{Copies: 1}},
		}},
		{"drop wins over delay and copies", []Spec{{Kind: KindDelay, Delay: Duration(ms)}, {Kind: KindDuplicate}, {Kind: KindDrop, Link: "n1->n2"}}, []msgCase{
			{1, 2, raftpb.MsgApp, drop}, {1, 3, raftpb.MsgApp, Verdict{Delay: ms, Copies: 1}},
		}},
		{"type outside the mask", []Spec{{Kind: KindDrop, Types: []string{"MsgApp"}}}, []msgCase{
			{1, 2, raftpb.MessageType(99), pass}, {1, 2, raftpb.MessageType(-1), pass},
		}},
	}
	for _, tt := range tests {
		p := newTestPlane(t, threeMembers())
		for _, s := range tt.rules {
			p.mustInstall(t, s)
		}
		r := rand.New(rand.NewPCG(7, 7))
		for _, m := range tt.msgs {
			if got := p.Decide(m.from, m.to, m.typ, p.clock.now(), r); got != m.want {
				t.Errorf("%s: Decide(%d->%d %v) = %+v, want %+v", tt.name, m.from, m.to, m.typ, got, m.want)
			}
		}
	}
}

func TestDecideProbability(t *testing.T) {
	const n = 10000
	for _, p := range []float64{0.1, 0.5, 0.9} {
		pl := newTestPlane(t, threeMembers())
		pl.mustInstall(t, Spec{Kind: KindDrop, Probability: prob(p)})
		pl.mustInstall(t, Spec{Kind: KindDuplicate, Probability: prob(p)})
		r := rand.New(rand.NewPCG(42, uint64(p*100)))
		dropped, copied := 0, 0
		for range n {
			v := pl.Decide(1, 2, raftpb.MsgApp, pl.clock.now(), r)
			if v.Drop {
				dropped++
			}
			copied += v.Copies
		}
		// Binomial standard deviation is at most 50 of 10000; allow 5σ.
		if got := float64(dropped) / n; got < p-0.025 || got > p+0.025 {
			t.Errorf("drop probability %v: dropped %d of %d", p, dropped, n)
		}
		// Copies are drawn only for messages not dropped.
		if got, want := float64(copied)/float64(n-dropped), p; got < want-0.04 || got > want+0.04 {
			t.Errorf("duplicate probability %v: copied %d of %d kept", p, copied, n-dropped)
		}
		fired := pl.List()[0].Fired
		if fired != uint64(dropped) {
			t.Errorf("drop rule fired %d, dropped %d", fired, dropped)
		}
	}
	// The same seed gives the same decisions.
	run := func() []Verdict {
		pl := newTestPlane(t, threeMembers())
		pl.mustInstall(t, Spec{Kind: KindDrop, Probability: prob(0.3)})
		pl.mustInstall(t, Spec{Kind: KindDelay, Delay: Duration(time.Millisecond), Jitter: Duration(time.Millisecond)})
		r := rand.New(rand.NewPCG(9, 9))
		var out []Verdict
		for range 100 {
			out = append(out, pl.Decide(1, 2, raftpb.MsgApp, pl.clock.now(), r))
		}
		return out
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Error("two runs from one seed decided differently")
	}
}

func TestDecideJitter(t *testing.T) {
	ms := time.Millisecond
	p := newTestPlane(t, threeMembers())
	p.mustInstall(t, Spec{Kind: KindDelay, Delay: Duration(50 * ms), Jitter: Duration(10 * ms)})
	r := rand.New(rand.NewPCG(3, 4))
	seen := map[time.Duration]bool{}
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		d := p.Decide(1, 2, raftpb.MsgApp, p.clock.now(), r).Delay
		if d < 40*ms || d > 60*ms {
			t.Fatalf("delay 50ms±10ms gave %v", d)
		}
		seen[d] = true
		lo, hi = min(lo, d), max(hi, d)
	}
	if len(seen) < 100 || lo > 41*ms || hi < 59*ms {
		t.Errorf("delay 50ms±10ms: %d distinct values in [%v, %v]; want a spread over the range", len(seen), lo, hi)
	}
	// Jitter larger than the delay never yields a negative delay.
	q := newTestPlane(t, threeMembers())
	q.mustInstall(t, Spec{Kind: KindDelay, Delay: Duration(ms), Jitter: Duration(10 * ms)})
	for range 1000 {
		if d := q.Decide(1, 2, raftpb.MsgApp, q.clock.now(), r).Delay; d < 0 {
			t.Fatalf("delay 1ms±10ms gave %v", d)
		}
	}
}

func TestNext(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	p.mustInstall(t, Spec{Kind: KindDrop, Link: "n1->n2", Types: []string{"MsgVote"}, Next: 3})
	var got []bool
	for _, typ := range []raftpb.MessageType{raftpb.MsgVote, raftpb.MsgApp, raftpb.MsgVote, raftpb.MsgVote, raftpb.MsgVote} {
		got = append(got, p.Decide(1, 2, typ, p.clock.now(), nil).Drop)
	}
	if want := []bool{true, false, true, true, false}; !slices.Equal(got, want) {
		t.Errorf("drop next 3 MsgVote: dropped %v, want %v", got, want)
	}
	if p.Active() || len(p.List()) != 0 {
		t.Errorf("spent rule still installed: %+v", p.List())
	}
	if !strings.Contains(p.logs.String(), "fault rule spent its budget") {
		t.Errorf("no log of the spent rule: %s", p.logs.String())
	}
}

func TestExpiry(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	p.mustInstall(t, Spec{Kind: KindDrop, Duration: Duration(10 * time.Second)})
	p.mustInstall(t, Spec{Kind: KindDuplicate, Duration: Duration(20 * time.Second)})
	start := p.clock.now()
	if v := p.Decide(1, 2, raftpb.MsgApp, start.Add(10*time.Second-1), nil); !v.Drop {
		t.Errorf("just before expiry: %+v, want a drop", v)
	}
	if len(p.List()) != 2 {
		t.Errorf("List before expiry = %+v", p.List())
	}
	if v := p.Decide(1, 2, raftpb.MsgApp, start.Add(10*time.Second), nil); v != (Verdict{Copies: 1}) {
		t.Errorf("at the drop's expiry: %+v, want one copy", v)
	}
	if l := p.List(); len(l) != 1 || l[0].Kind != KindDuplicate {
		t.Errorf("List after the first expiry = %+v", l)
	}
	if !strings.Contains(p.logs.String(), "fault rule expired") {
		t.Errorf("no expiry logged: %s", p.logs.String())
	}
	// List sweeps by the Plane's clock even when no message is judged.
	p.clock.advance(30 * time.Second)
	if l := p.List(); len(l) != 0 || p.Active() {
		t.Errorf("List after every expiry = %+v", l)
	}
}

func TestInterceptIdle(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	if v := p.Intercept(1, 2, raftpb.MsgApp); v != (Verdict{}) {
		t.Errorf("Intercept with no rule = %+v", v)
	}
	if allocs := testing.AllocsPerRun(1000, func() { p.Intercept(1, 2, raftpb.MsgApp) }); allocs != 0 {
		t.Errorf("idle Intercept allocates %v times", allocs)
	}
	p.mustInstall(t, Spec{Kind: KindDrop, Link: "n1->n2"})
	if v := p.Intercept(1, 2, raftpb.MsgApp); !v.Drop {
		t.Errorf("Intercept under a cut = %+v", v)
	}
}

func TestConcurrentUse(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p.Intercept(uint64(g%3+1), uint64(i%3+1), raftpb.MsgApp)
			}
		}()
	}
	for range 50 {
		info := p.mustInstall(t, Spec{Kind: KindDrop, Next: 2})
		p.List()
		p.Remove(info.ID)
	}
	wg.Wait()
}

func BenchmarkInterceptIdle(b *testing.B) {
	p, _ := New(Config{})
	for b.Loop() {
		p.Intercept(1, 2, raftpb.MsgApp)
	}
}

func BenchmarkInterceptThreeRules(b *testing.B) {
	p, _ := New(Config{Cluster: threeMembers()})
	for _, s := range []Spec{
		{Kind: KindDrop, Link: "n3->n1", Types: []string{"MsgVote"}},
		{Kind: KindDelay, Link: "*->n3", Delay: Duration(time.Millisecond)},
		{Kind: KindPartition, Groups: [][]string{{"n3"}}},
	} {
		if _, err := p.Install(s); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		p.Intercept(1, 2, raftpb.MsgApp)
	}
}

// TestDuplicateSparesProposals: a duplicated forwarded proposal would be
// applied twice (apply does not deduplicate command ids), so the duplicate
// rule never copies MsgProp.
func TestDuplicateSparesProposals(t *testing.T) {
	clock := &testClock{t: time.Unix(1000, 0)}
	p, err := New(Config{Cluster: threeMembers(), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	one := 1.0
	if _, err := p.Install(Spec{Kind: KindDuplicate, Link: "*->*", Probability: &one}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	if v := p.Decide(1, 2, raftpb.MsgProp, clock.now(), r); v.Copies != 0 {
		t.Errorf("MsgProp copies = %d, want 0", v.Copies)
	}
	if v := p.Decide(1, 2, raftpb.MsgApp, clock.now(), r); v.Copies != 1 {
		t.Errorf("MsgApp copies = %d, want 1", v.Copies)
	}
}
