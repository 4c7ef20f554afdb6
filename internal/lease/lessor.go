package lease

import (
	"container/heap"
	"errors"
	"math"
	"slices"
	"time"
)

// LessorConfig tunes a Lessor.
type LessorConfig struct {
	// Grace is the least time every lease gets after Promote (Concord: one
	// election timeout). 0 gives none.
	Grace time.Duration
	// CheckpointSlack is how far a renewal may move the primary's expiry of
	// a lease ahead of what followers know before the renewal must be
	// checkpointed (Concord: half an election timeout).
	CheckpointSlack time.Duration
	// CheckpointInterval is how often, at least, the primary checkpoints
	// every lease, renewed or not (0: only on renewals and CheckpointAll).
	CheckpointInterval time.Duration
}

// Validate reports a bad configuration.
func (c LessorConfig) Validate() error {
	if c.Grace < 0 || c.CheckpointSlack < 0 || c.CheckpointInterval < 0 {
		return errors.New("lease: lessor durations must not be negative")
	}
	return nil
}

// Checkpoint is one lease's remaining time, to be replicated.
type Checkpoint struct {
	ID        int64
	Remaining time.Duration
}

// tracked is one lease as the Lessor knows it.
type tracked struct {
	id  int64
	ttl time.Duration
	// expiry is when the lease runs out by this member's clock.
	expiry time.Time
	// known is the expiry the followers hold, as far as the primary knows:
	// what its last checkpoint (or the grant) told them.
	known time.Time
	// lastCheckpoint is when the primary last checkpointed the lease.
	lastCheckpoint time.Time
	// index in the expiry heap.
	index int
}

// Lessor tracks lease expiry on one member. See the package doc for the
// rules; it is not safe for concurrent use.
type Lessor struct {
	cfg     LessorConfig
	leases  map[int64]*tracked
	byTime  expiryHeap
	primary bool
}

// NewLessor returns an empty, non-primary Lessor.
func NewLessor(cfg LessorConfig) (*Lessor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Lessor{cfg: cfg, leases: make(map[int64]*tracked)}, nil
}

// Primary reports whether the Lessor is promoted (this member leads and
// decides expiry).
func (l *Lessor) Primary() bool { return l.primary }

// Len returns the number of tracked leases.
func (l *Lessor) Len() int { return len(l.leases) }

func seconds(ttl int64) time.Duration { return time.Duration(ttl) * time.Second }

// fromTable is a lease's expiry counted from now by the replicated table:
// its checkpoint, or its full TTL without one.
func fromTable(now time.Time, le Lease) time.Time {
	if le.RemainingMs > 0 {
		return now.Add(time.Duration(le.RemainingMs) * time.Millisecond)
	}
	return now.Add(seconds(le.TTL))
}

func (l *Lessor) set(t *tracked, expiry time.Time) {
	t.expiry = expiry
	heap.Fix(&l.byTime, t.index)
}

func (l *Lessor) add(id int64, ttl time.Duration, expiry, now time.Time) *tracked {
	if t, ok := l.leases[id]; ok {
		t.ttl, t.known, t.lastCheckpoint = ttl, expiry, now
		l.set(t, expiry)
		return t
	}
	t := &tracked{id: id, ttl: ttl, expiry: expiry, known: expiry, lastCheckpoint: now}
	l.leases[id] = t
	heap.Push(&l.byTime, t)
	return t
}

// Granted records that lease id (ttl seconds) was granted at now.
func (l *Lessor) Granted(now time.Time, id, ttl int64) {
	l.add(id, seconds(ttl), now.Add(seconds(ttl)), now)
}

// Checkpointed records that a checkpoint giving lease id remaining time was
// applied at now. own says this member proposed it while primary. A lease the
// Lessor does not track is tracked from the checkpoint (ttl seconds is its
// granted TTL).
func (l *Lessor) Checkpointed(now time.Time, id, ttl int64, remaining time.Duration, own bool) {
	at := now.Add(remaining)
	t, ok := l.leases[id]
	if !ok {
		l.add(id, seconds(ttl), at, now)
		return
	}
	switch {
	case !l.primary:
		t.known, t.lastCheckpoint = at, now
		l.set(t, at)
	case own:
		// The primary's clock is the truth; the checkpoint only tells it
		// what the followers know now (known was set when it was taken).
	default:
		// A deposed leader's checkpoint, committed under this leader: the
		// followers took it as is, and it may only lengthen the lease here.
		t.known = at
		if at.After(t.expiry) {
			l.set(t, at)
		}
	}
}

// Revoked forgets lease id.
func (l *Lessor) Revoked(id int64) {
	if t, ok := l.leases[id]; ok {
		heap.Remove(&l.byTime, t.index)
		delete(l.leases, id)
	}
}

// Reset replaces everything with the leases of a restored table, each
// counted from now by its checkpoint or full TTL. Primary is unchanged.
func (l *Lessor) Reset(now time.Time, leases []Lease) {
	l.leases = make(map[int64]*tracked, len(leases))
	l.byTime = l.byTime[:0]
	for _, le := range leases {
		l.add(le.ID, seconds(le.TTL), fromTable(now, le), now)
	}
}

// Promote makes the Lessor primary. leases is the replicated table (this
// member must have applied everything its predecessor committed): tracked
// leases keep their estimate, others count from the table, leases no longer
// in it are dropped; then each expiry becomes at least now+Grace.
func (l *Lessor) Promote(now time.Time, leases []Lease) {
	in := make(map[int64]bool, len(leases))
	for _, le := range leases {
		in[le.ID] = true
		if t, ok := l.leases[le.ID]; ok {
			t.ttl = seconds(le.TTL)
			continue
		}
		l.add(le.ID, seconds(le.TTL), fromTable(now, le), now)
	}
	for id := range l.leases {
		if !in[id] {
			l.Revoked(id)
		}
	}
	floor := now.Add(l.cfg.Grace)
	for _, t := range l.leases {
		if t.expiry.Before(floor) {
			l.set(t, floor)
		}
		// The grace is not checkpointed: a later leader gives its own.
		t.known, t.lastCheckpoint = t.expiry, now
	}
	l.primary = true
}

// Demote makes the Lessor a follower again; it keeps its estimates.
func (l *Lessor) Demote() { l.primary = false }

// Renew renews lease id at now on the primary: its expiry becomes now+TTL.
// ok is false when the Lessor is not primary, or the lease is unknown or
// already expired (its revocation is pending). checkpoint says the renewal
// moved the expiry more than CheckpointSlack ahead of what followers know:
// it must be in a committed checkpoint (see Checkpoints) before it is
// acknowledged.
func (l *Lessor) Renew(now time.Time, id int64) (ttl time.Duration, checkpoint, ok bool) {
	t, found := l.leases[id]
	if !l.primary || !found || !t.expiry.After(now) {
		return 0, false, false
	}
	l.set(t, now.Add(t.ttl))
	return t.ttl, t.expiry.Sub(t.known) > l.cfg.CheckpointSlack, true
}

// Remaining returns the time lease id has left at now (<= 0: expired).
func (l *Lessor) Remaining(now time.Time, id int64) (time.Duration, bool) {
	t, ok := l.leases[id]
	if !ok {
		return 0, false
	}
	return t.expiry.Sub(now), true
}

// Expired returns up to limit leases whose expiry is at or before now,
// earliest first (ties by id). It changes nothing: a lease stays expired
// (and unrenewable) until Revoked.
func (l *Lessor) Expired(now time.Time, limit int) []int64 {
	// The expired leases are a subtree at the heap's root (a parent never
	// expires after its children), so a walk of that subtree finds them all
	// without touching the rest.
	var out []*tracked
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(l.byTime) || l.byTime[i].expiry.After(now) {
			continue
		}
		out = append(out, l.byTime[i])
		stack = append(stack, 2*i+1, 2*i+2)
	}
	slices.SortFunc(out, func(a, b *tracked) int {
		if c := a.expiry.Compare(b.expiry); c != 0 {
			return c
		}
		return cmpInt64(a.id, b.id)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	ids := make([]int64, len(out))
	for i, t := range out {
		ids[i] = t.id
	}
	return ids
}

// NextExpiry returns the earliest expiry among tracked leases.
func (l *Lessor) NextExpiry() (time.Time, bool) {
	if len(l.byTime) == 0 {
		return time.Time{}, false
	}
	return l.byTime[0].expiry, true
}

// Checkpoints returns, ascending by id and at most limit of them, the
// unexpired leases the primary must checkpoint at now: those whose expiry
// runs more than CheckpointSlack ahead of what followers know, and those not
// checkpointed for CheckpointInterval. It assumes the checkpoint will commit
// and records it as known; call CheckpointFailed if it does not.
func (l *Lessor) Checkpoints(now time.Time, limit int) []Checkpoint {
	return l.checkpoints(now, limit, false)
}

// CheckpointAll is Checkpoints for every unexpired lease, for handing
// leadership over; the caller splits it as it needs.
func (l *Lessor) CheckpointAll(now time.Time) []Checkpoint {
	return l.checkpoints(now, math.MaxInt, true)
}

func (l *Lessor) checkpoints(now time.Time, limit int, all bool) []Checkpoint {
	if !l.primary {
		return nil
	}
	var due []*tracked
	for _, t := range l.leases {
		if !t.expiry.After(now) {
			continue
		}
		if all || t.expiry.Sub(t.known) > l.cfg.CheckpointSlack ||
			(l.cfg.CheckpointInterval > 0 && now.Sub(t.lastCheckpoint) >= l.cfg.CheckpointInterval) {
			due = append(due, t)
		}
	}
	slices.SortFunc(due, func(a, b *tracked) int { return cmpInt64(a.id, b.id) })
	if len(due) > limit {
		due = due[:limit]
	}
	out := make([]Checkpoint, len(due))
	for i, t := range due {
		out[i] = Checkpoint{ID: t.id, Remaining: t.expiry.Sub(now)}
		t.known, t.lastCheckpoint = t.expiry, now
	}
	return out
}

// CheckpointFailed marks leases of a checkpoint that did not commit as
// unknown to the followers, so the next Checkpoints retries them.
func (l *Lessor) CheckpointFailed(ids []int64) {
	for _, id := range ids {
		if t, ok := l.leases[id]; ok {
			t.known, t.lastCheckpoint = time.Time{}, time.Time{}
		}
	}
}

// expiryHeap orders tracked leases by expiry, then id.
type expiryHeap []*tracked

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	if !h[i].expiry.Equal(h[j].expiry) {
		return h[i].expiry.Before(h[j].expiry)
	}
	return h[i].id < h[j].id
}
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	t := x.(*tracked)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *expiryHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
