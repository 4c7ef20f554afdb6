package lease

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// t0 is the fake clock's origin; at(d) is t0+d.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	ms  = time.Millisecond
	sec = time.Second
)

var testCfg = LessorConfig{Grace: 500 * ms, CheckpointSlack: 250 * ms, CheckpointInterval: 5 * sec}

func newTestLessor(t *testing.T) *Lessor {
	t.Helper()
	l, err := NewLessor(testCfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func remaining(t *testing.T, l *Lessor, now time.Time, id int64) time.Duration {
	t.Helper()
	r, ok := l.Remaining(now, id)
	if !ok {
		t.Fatalf("Remaining(%d): not tracked", id)
	}
	return r
}

func TestLessorConfigValidate(t *testing.T) {
	if err := (LessorConfig{Grace: -1}).Validate(); err == nil {
		t.Error("negative grace accepted")
	}
	if _, err := NewLessor(LessorConfig{CheckpointInterval: -1}); err == nil {
		t.Error("NewLessor accepted a negative interval")
	}
}

func TestLessorExpired(t *testing.T) {
	l := newTestLessor(t)
	l.Granted(at(0), 1, 10)
	l.Granted(at(0), 2, 5)
	l.Granted(at(2*sec), 3, 3) // expires at 5s too; id breaks the tie
	l.Granted(at(0), 4, 60)
	cases := []struct {
		now   time.Duration
		limit int
		want  []int64
	}{
		{4999 * ms, 10, nil},
		{5 * sec, 10, []int64{2, 3}},
		{5 * sec, 1, []int64{2}},
		{10 * sec, 10, []int64{2, 3, 1}},
		{time.Hour, 10, []int64{2, 3, 1, 4}},
	}
	for _, c := range cases {
		if got := l.Expired(at(c.now), c.limit); !slices.Equal(got, c.want) {
			t.Errorf("Expired(%v, %d) = %v, want %v", c.now, c.limit, got, c.want)
		}
	}
	l.Revoked(2)
	l.Revoked(42) // unknown: no-op
	if got := l.Expired(at(10*sec), 10); !slices.Equal(got, []int64{3, 1}) {
		t.Errorf("after Revoked(2): Expired(10s) = %v, want [3 1]", got)
	}
	if next, ok := l.NextExpiry(); !ok || !next.Equal(at(5*sec)) {
		t.Errorf("NextExpiry() = %v, %v, want 5s", next, ok)
	}
}

func TestLessorRenew(t *testing.T) {
	l := newTestLessor(t)
	l.Granted(at(0), 1, 10)
	if _, _, ok := l.Renew(at(sec), 1); ok {
		t.Fatal("Renew on a non-primary lessor succeeded")
	}
	l.Promote(at(0), []Lease{{ID: 1, TTL: 10}})
	cases := []struct {
		now        time.Duration
		id         int64
		ok, ckpt   bool
		wantRemain time.Duration // at now, after the call
	}{
		{100 * ms, 1, true, false, 10 * sec},    // 100ms ahead of followers: within slack
		{300 * ms, 1, true, true, 10 * sec},     // 300ms ahead: must checkpoint
		{300 * ms, 7, false, false, 0},          // unknown lease
		{10300 * ms, 1, false, false, 0},        // expired exactly at 10.3s: refused
		{20 * sec, 1, false, false, -9700 * ms}, // still expired, still refused
	}
	for _, c := range cases {
		ttl, ckpt, ok := l.Renew(at(c.now), c.id)
		if ok != c.ok || ckpt != c.ckpt || (ok && ttl != 10*sec) {
			t.Errorf("Renew(%v, %d) = %v, %v, %v, want 10s, %v, %v", c.now, c.id, ttl, ckpt, ok, c.ckpt, c.ok)
		}
		if c.id == 1 {
			if r := remaining(t, l, at(c.now), 1); r != c.wantRemain {
				t.Errorf("after Renew(%v): Remaining = %v, want %v", c.now, r, c.wantRemain)
			}
		}
	}
}

func TestLessorFollowerCheckpoints(t *testing.T) {
	l := newTestLessor(t)
	l.Granted(at(0), 1, 10)
	// The checkpoint is the cluster's word on a follower, in both directions.
	l.Checkpointed(at(sec), 1, 10, 2*sec, false)
	if r := remaining(t, l, at(sec), 1); r != 2*sec {
		t.Errorf("after shortening checkpoint: Remaining = %v, want 2s", r)
	}
	l.Checkpointed(at(2*sec), 1, 10, 9*sec, false)
	if r := remaining(t, l, at(2*sec), 1); r != 9*sec {
		t.Errorf("after lengthening checkpoint: Remaining = %v, want 9s", r)
	}
	// An untracked lease is tracked from its checkpoint.
	l.Checkpointed(at(3*sec), 5, 30, 4*sec, false)
	if r := remaining(t, l, at(3*sec), 5); r != 4*sec {
		t.Errorf("untracked lease after checkpoint: Remaining = %v, want 4s", r)
	}
}

func TestLessorPrimaryCheckpoints(t *testing.T) {
	l := newTestLessor(t)
	l.Granted(at(0), 1, 10)
	l.Granted(at(0), 2, 10)
	l.Promote(at(0), []Lease{{ID: 1, TTL: 10}, {ID: 2, TTL: 10}})

	// A fresh grant is known to followers: nothing to checkpoint.
	if got := l.Checkpoints(at(100*ms), 10); len(got) != 0 {
		t.Errorf("Checkpoints right after grant = %v, want none", got)
	}
	l.Renew(at(sec), 1) // 1s ahead of the followers
	got := l.Checkpoints(at(1100*ms), 10)
	if want := []Checkpoint{{1, 9900 * ms}}; !slices.Equal(got, want) {
		t.Errorf("Checkpoints after renewal = %v, want %v", got, want)
	}
	if got := l.Checkpoints(at(1200*ms), 10); len(got) != 0 {
		t.Errorf("Checkpoints again = %v, want none (taken as known)", got)
	}
	// Its own checkpoint applied later leaves the primary's expiry alone.
	l.Checkpointed(at(1150*ms), 1, 10, 9900*ms, true)
	if r := remaining(t, l, at(1150*ms), 1); r != 9850*ms {
		t.Errorf("after own checkpoint: Remaining = %v, want 9.85s", r)
	}
	// A deposed leader's checkpoint may lengthen, never shorten.
	l.Checkpointed(at(1200*ms), 1, 10, sec, false)
	if r := remaining(t, l, at(1200*ms), 1); r != 9800*ms {
		t.Errorf("after a foreign shorter checkpoint: Remaining = %v, want 9.8s", r)
	}
	l.Checkpointed(at(1200*ms), 1, 10, 20*sec, false)
	if r := remaining(t, l, at(1200*ms), 1); r != 20*sec {
		t.Errorf("after a foreign longer checkpoint: Remaining = %v, want 20s", r)
	}
	// A failed checkpoint is retried.
	l.Renew(at(2*sec), 2)
	first := l.Checkpoints(at(2*sec), 10)
	l.CheckpointFailed([]int64{2})
	if again := l.Checkpoints(at(2100*ms), 10); len(first) != 1 || len(again) != 1 || again[0].ID != 2 {
		t.Errorf("Checkpoints after CheckpointFailed = %v (first %v), want lease 2 again", again, first)
	}
	// Every lease is checkpointed at least every CheckpointInterval.
	got = l.Checkpoints(at(5*sec), 10)
	if ids := checkpointIDs(got); !slices.Equal(ids, []int64{}) {
		t.Errorf("Checkpoints at 5s = %v, want none (lease 1 at 1.1s, 2 at 2.1s)", got)
	}
	if ids := checkpointIDs(l.Checkpoints(at(6100*ms), 10)); !slices.Equal(ids, []int64{1}) {
		t.Errorf("Checkpoints at 6.1s = %v, want [1]", ids)
	}
	if ids := checkpointIDs(l.CheckpointAll(at(6200 * ms))); !slices.Equal(ids, []int64{1, 2}) {
		t.Errorf("CheckpointAll = %v, want [1 2]", ids)
	}
	if ids := checkpointIDs(l.Checkpoints(at(6200*ms), 1)); len(ids) != 0 {
		t.Errorf("Checkpoints after CheckpointAll = %v, want none", ids)
	}
	// Expired leases are not checkpointed; a follower checkpoints nothing.
	if ids := checkpointIDs(l.CheckpointAll(at(time.Hour))); len(ids) != 0 {
		t.Errorf("CheckpointAll after expiry = %v, want none", ids)
	}
	l.Demote()
	if l.Primary() || len(l.CheckpointAll(at(6300*ms))) != 0 {
		t.Errorf("a demoted lessor still checkpoints")
	}
}

func checkpointIDs(cs []Checkpoint) []int64 {
	ids := []int64{}
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestLessorPromote(t *testing.T) {
	l := newTestLessor(t)
	l.Granted(at(0), 1, 10) // tracked: keeps its estimate (expires 10s)
	l.Granted(at(0), 2, 1)  // tracked, about to expire: gets the grace
	l.Granted(at(0), 3, 10) // tracked but revoked meanwhile: dropped
	table := []Lease{
		{ID: 1, TTL: 10},
		{ID: 2, TTL: 1},
		{ID: 4, TTL: 10, RemainingMs: 3000}, // untracked: from its checkpoint
		{ID: 5, TTL: 7},                     // untracked, no checkpoint: full TTL
	}
	l.Promote(at(900*ms), table)
	if !l.Primary() {
		t.Fatal("not primary after Promote")
	}
	now := at(900 * ms)
	want := map[int64]time.Duration{1: 9100 * ms, 2: 500 * ms, 4: 3 * sec, 5: 7 * sec}
	for id, w := range want {
		if r := remaining(t, l, now, id); r != w {
			t.Errorf("after Promote: Remaining(%d) = %v, want %v", id, r, w)
		}
	}
	if _, ok := l.Remaining(now, 3); ok || l.Len() != 4 {
		t.Errorf("after Promote: lease 3 still tracked or Len = %d, want 4", l.Len())
	}
	// The grace and the estimates are not checkpointed by themselves.
	if got := l.Checkpoints(now, 10); len(got) != 0 {
		t.Errorf("Checkpoints right after Promote = %v, want none", got)
	}
}

func TestLessorReset(t *testing.T) {
	l := newTestLessor(t)
	l.Granted(at(0), 9, 10)
	l.Reset(at(sec), []Lease{{ID: 1, TTL: 10, RemainingMs: 1500}, {ID: 2, TTL: 4}})
	if _, ok := l.Remaining(at(sec), 9); ok {
		t.Error("Reset kept a lease not in the table")
	}
	if r1, r2 := remaining(t, l, at(sec), 1), remaining(t, l, at(sec), 2); r1 != 1500*ms || r2 != 4*sec {
		t.Errorf("after Reset: Remaining = %v, %v, want 1.5s, 4s", r1, r2)
	}
	if got := l.Expired(at(2500*ms), 10); !slices.Equal(got, []int64{1}) {
		t.Errorf("after Reset: Expired(2.5s) = %v, want [1]", got)
	}
}

// TestLeaderChange plays a leader A and a follower B through A's crash: an
// acknowledged renewal survives, an idle lease is neither reset nor cut.
func TestLeaderChange(t *testing.T) {
	const ttl = 5
	a, b := newTestLessor(t), newTestLessor(t)
	for _, l := range []*Lessor{a, b} {
		l.Granted(at(0), 1, ttl) // kept alive
		l.Granted(at(0), 2, ttl) // idle
	}
	a.Promote(at(0), []Lease{{ID: 1, TTL: ttl}, {ID: 2, TTL: ttl}})

	// A renews lease 1 at 1s; the renewal needs a checkpoint, which commits
	// and applies on both 5ms later.
	if _, ckpt, ok := a.Renew(at(sec), 1); !ok || !ckpt {
		t.Fatalf("Renew at 1s: ok %v, checkpoint %v", ok, ckpt)
	}
	cps := a.Checkpoints(at(sec), 100)
	for _, c := range cps {
		a.Checkpointed(at(1005*ms), c.ID, ttl, c.Remaining, true)
		b.Checkpointed(at(1005*ms), c.ID, ttl, c.Remaining, false)
	}
	// A dies at 1.5s; B wins the election and promotes at 2.2s.
	b.Promote(at(2200*ms), []Lease{{ID: 1, TTL: ttl}, {ID: 2, TTL: ttl}})
	// Lease 1 was renewed at 1s: it must not expire before 6s, and gets at
	// most the 5ms apply delay on top.
	if got := b.Expired(at(6004*ms), 10); slices.Contains(got, 1) {
		t.Errorf("B expired lease 1 before 6.005s: %v", got)
	}
	if got := b.Expired(at(6005*ms), 10); !slices.Equal(got, []int64{2, 1}) {
		t.Errorf("B at 6.005s: Expired = %v, want [2 1]", got)
	}
	// Lease 2, idle since its grant at 0, expires at 5s, not 2.2s+5s.
	if got := b.Expired(at(5*sec), 10); !slices.Equal(got, []int64{2}) {
		t.Errorf("B at 5s: Expired = %v, want [2]", got)
	}
}

func TestLessorCheckpointsLimit(t *testing.T) {
	l := newTestLessor(t)
	for id := int64(1); id <= 3; id++ {
		l.Granted(at(0), id, 10)
	}
	l.Promote(at(0), []Lease{{ID: 1, TTL: 10}, {ID: 2, TTL: 10}, {ID: 3, TTL: 10}})
	for id := int64(1); id <= 3; id++ {
		l.Renew(at(sec), id)
	}
	var got [][]int64
	for range 3 {
		got = append(got, checkpointIDs(l.Checkpoints(at(sec), 2)))
	}
	if want := [][]int64{{1, 2}, {3}, {}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Checkpoints(limit 2) three times = %v, want %v", got, want)
	}
}

// TestLessorExpiredMatchesModel drives random operations and checks Expired
// against a plain map of expiries (the heap must stay consistent).
func TestLessorExpiredMatchesModel(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	l := newTestLessor(t)
	l.Promote(at(0), nil)
	model := map[int64]time.Time{}
	ttls := map[int64]int64{}
	now := at(0)
	for step := range 3000 {
		now = now.Add(time.Duration(rng.IntN(300)) * ms)
		id := int64(1 + rng.IntN(40))
		switch rng.IntN(5) {
		case 0:
			ttl := int64(1 + rng.IntN(5))
			l.Granted(now, id, ttl)
			model[id], ttls[id] = now.Add(seconds(ttl)), ttl
		case 1:
			_, _, ok := l.Renew(now, id)
			exp, known := model[id]
			if want := known && exp.After(now); ok != want {
				t.Fatalf("step %d: Renew(%d) ok = %v, want %v", step, id, ok, want)
			}
			if ok {
				model[id] = now.Add(seconds(ttls[id]))
			}
		case 2:
			l.Revoked(id)
			delete(model, id)
		case 3:
			if _, ok := model[id]; ok {
				// A foreign checkpoint on the primary only lengthens.
				at := now.Add(time.Duration(rng.IntN(8000)) * ms)
				l.Checkpointed(now, id, ttls[id], at.Sub(now), false)
				if at.After(model[id]) {
					model[id] = at
				}
			}
		case 4:
			var want []int64
			for id, exp := range model {
				if !exp.After(now) {
					want = append(want, id)
				}
			}
			slices.SortFunc(want, func(a, b int64) int {
				if c := model[a].Compare(model[b]); c != 0 {
					return c
				}
				return cmpInt64(a, b)
			})
			if got := l.Expired(now, 100); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("step %d: Expired = %v, want %v", step, got, want)
			}
		}
	}
}
