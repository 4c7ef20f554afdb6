package faults

import (
	"cmp"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Member is one cluster member as the Plane resolves references to it.
type Member struct {
	ID   uint64
	Name string // empty while the member has not published its name
}

// Cluster answers the two questions installing a rule asks: who the
// members are, and who leads. Package server implements it. Its methods are
// called without any Plane lock held and must not call back into the Plane.
type Cluster interface {
	Members() []Member
	// Leader returns the leader's id as this member knows it, 0 if none.
	Leader() uint64
}

// Verdict is what the rules do to one message. The zero Verdict delivers
// it unchanged.
type Verdict struct {
	// Drop loses the message.
	Drop bool
	// Delay holds the message that long before it is sent.
	Delay time.Duration
	// Copies is the number of extra copies sent after the message.
	Copies int
}

// Info is an installed rule as List reports it: the Spec in canonical form
// (members by name, "leader" resolved, isolate-leader stored as the
// partition it made, the id and description filled in), which installs the
// same rule on another member, plus its state on this member.
type Info struct {
	Spec
	// Created is when the rule was installed here.
	Created time.Time `json:"created"`
	// Expires is when the rule expires (absent: never).
	Expires *time.Time `json:"expires,omitempty"`
	// Remaining is what is left of a "next N" budget here.
	Remaining *int64 `json:"remaining,omitempty"`
	// Fired counts the messages this member sent (disk rules: the disk
	// operations of this member) that the rule acted on; pause and clock
	// rules leave it 0.
	Fired uint64 `json:"fired"`
}

// Config configures a Plane.
type Config struct {
	// Cluster resolves member names and "leader". Nil: only hexadecimal
	// member ids and "*" resolve.
	Cluster Cluster
	// Now is the clock of installs, expiry and Intercept (nil: time.Now).
	Now func() time.Time
	// Rand is Intercept's random source, used under a lock (nil: seeded
	// from math/rand/v2's global source).
	Rand *rand.Rand
	// Logger receives every install, removal and expiry (nil: discarded).
	Logger *slog.Logger
}

// Plane holds one member's active rules and judges its outbound messages.
type Plane struct {
	cluster Cluster
	now     func() time.Time
	log     *slog.Logger

	// active is the immutable rule set Decide reads; nil when no rule is
	// installed, so that an idle plane costs one atomic load.
	active atomic.Pointer[ruleSet]

	// mu guards rules and seq; never held while calling the Cluster.
	mu      sync.Mutex
	rules   []*rule       // install order
	seq     uint64        // last generated id number
	changed chan struct{} // closed and replaced at each publish

	// randMu guards rnd; taken before mu when both are needed.
	randMu sync.Mutex
	rnd    *rand.Rand
}

// ruleSet is one published version of the rules.
type ruleSet struct {
	rules []*rule
	// deadline is the earliest expiry among rules (zero: none expires).
	deadline time.Time
}

// New returns an empty Plane.
func New(cfg Config) (*Plane, error) {
	p := &Plane{cluster: cfg.Cluster, now: cfg.Now, log: cfg.Logger, rnd: cfg.Rand, changed: make(chan struct{})}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.rnd == nil {
		p.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return p, nil
}

// Active reports whether any rule is installed (expired ones included
// until they are swept).
func (p *Plane) Active() bool { return p.active.Load() != nil }

// Intercept is Decide with the Plane's clock and random source: the hook
// the transport calls for every outbound message. With no rule installed it
// is one atomic load.
func (p *Plane) Intercept(from, to uint64, typ raftpb.MessageType) Verdict {
	if p.active.Load() == nil {
		return Verdict{}
	}
	p.randMu.Lock()
	defer p.randMu.Unlock()
	return p.Decide(from, to, typ, p.now(), p.rnd)
}

// Decide returns what the rules installed at now do to a message of type
// typ sent by member from to member to, drawing probabilities and jitter
// from r (nil: math/rand/v2's global source). It is safe for concurrent
// use except for r, which the caller must not share unguarded. It consumes
// "next N" budgets and counts what each rule acted on; a rule that expired
// or spent its budget is removed (and logged) here.
func (p *Plane) Decide(from, to uint64, typ raftpb.MessageType, now time.Time, r *rand.Rand) Verdict {
	set := p.active.Load()
	if set == nil {
		return Verdict{}
	}
	if !set.deadline.IsZero() && !now.Before(set.deadline) {
		p.retire(now)
		if set = p.active.Load(); set == nil {
			return Verdict{}
		}
	}
	var v Verdict
	spent := false
	for _, ru := range set.rules {
		if memberKind(ru.kind) || ru.expiredAt(now) || !ru.matches(from, to, typ) {
			continue
		}
		fired, last := ru.fire(r)
		if !fired {
			continue
		}
		spent = spent || last
		switch ru.kind {
		case KindDrop, KindPartition:
			v = Verdict{Drop: true}
		case KindDelay:
			v.Delay += ru.delay + spread(r, ru.jitter)
			if v.Delay < 0 {
				v.Delay = 0
			}
		case KindDuplicate:
			// Never a forwarded proposal: apply does not deduplicate
			// command ids, so a second copy would run the write twice —
			// an anomaly no real network makes of one TCP-carried message
			// (the simulation found it). Every other raft message is
			// idempotent to raft.
			if typ != raftpb.MsgProp {
				v.Copies++
			}
		}
		if v.Drop {
			break
		}
	}
	if spent {
		p.retire(now)
	}
	return v
}

// unit draws a float in [0, 1).
func unit(r *rand.Rand) float64 {
	if r == nil {
		return rand.Float64()
	}
	return r.Float64()
}

// spread draws a uniform offset in [-j, +j].
func spread(r *rand.Rand, j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	n := int64(2*j + 1)
	if r == nil {
		return time.Duration(rand.Int64N(n)) - j
	}
	return time.Duration(r.Int64N(n)) - j
}

// Install resolves s against the cluster, gives it an id and a
// description when it has none, and makes it active. Errors wrap
// ErrInvalidRule, ErrUnknownMember, ErrNoLeader, ErrDuplicateID or
// ErrTooManyRules.
func (p *Plane) Install(s Spec) (Info, error) {
	c, err := s.check()
	if err != nil {
		return Info{}, err
	}
	if s.Kind == KindKill {
		return Info{}, invalid("kill is one-shot, not an installed rule (Plane.Kill resolves it)")
	}
	rv := p.resolver()
	now := p.now()
	ru, err := compile(s, c, rv, now)
	if err != nil {
		return Info{}, err
	}
	p.mu.Lock()
	retired := p.sweepLocked(now)
	switch {
	case len(p.rules) >= MaxRules:
		err = fmt.Errorf("%w: %d installed, at most %d", ErrTooManyRules, len(p.rules), MaxRules)
	case ru.spec.ID == "":
		ru.spec.ID = p.nextIDLocked()
	case p.indexLocked(ru.spec.ID) >= 0:
		err = fmt.Errorf("%w: %q", ErrDuplicateID, ru.spec.ID)
	}
	if err == nil {
		p.rules = append(p.rules, ru)
	}
	if err == nil || len(retired) > 0 {
		p.publishLocked()
	}
	p.mu.Unlock()
	p.logRetired(retired, now)
	if err != nil {
		return Info{}, err
	}
	info := ru.info()
	attrs := []any{"id", info.ID, "rule", info.Description}
	if info.Expires != nil {
		attrs = append(attrs, "expires", info.Expires.Format(time.RFC3339Nano))
	}
	p.log.Warn("fault rule installed", attrs...)
	return info, nil
}

// Remove uninstalls the rule with the given id (ErrNotFound if none).
func (p *Plane) Remove(id string) (Info, error) {
	now := p.now()
	p.mu.Lock()
	retired := p.sweepLocked(now)
	i := p.indexLocked(id)
	var ru *rule
	if i >= 0 {
		ru = p.rules[i]
		p.rules = slices.Delete(p.rules, i, i+1)
	}
	if ru != nil || len(retired) > 0 {
		p.publishLocked()
	}
	p.mu.Unlock()
	p.logRetired(retired, now)
	if ru == nil {
		return Info{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	info := ru.info()
	p.log.Info("fault rule removed", "id", info.ID, "rule", info.Description)
	return info, nil
}

// Heal uninstalls every rule and returns them.
func (p *Plane) Heal() []Info {
	now := p.now()
	p.mu.Lock()
	retired := p.sweepLocked(now)
	removed := p.rules
	p.rules = nil
	p.publishLocked()
	p.mu.Unlock()
	p.logRetired(retired, now)
	infos := make([]Info, len(removed))
	for i, ru := range removed {
		infos[i] = ru.info()
		p.log.Info("fault rule removed", "id", infos[i].ID, "rule", infos[i].Description, "by", "heal")
	}
	if len(removed) > 0 {
		p.log.Info("fault plane healed", "removed", len(removed))
	}
	return infos
}

// List returns the installed rules in install order, after removing those
// that expired.
func (p *Plane) List() []Info {
	now := p.now()
	p.mu.Lock()
	retired := p.sweepLocked(now)
	if len(retired) > 0 {
		p.publishLocked()
	}
	infos := make([]Info, len(p.rules))
	for i, ru := range p.rules {
		infos[i] = ru.info()
	}
	p.mu.Unlock()
	p.logRetired(retired, now)
	return infos
}

// retire removes rules that expired at now or spent their budget.
func (p *Plane) retire(now time.Time) {
	p.mu.Lock()
	retired := p.sweepLocked(now)
	if len(retired) > 0 {
		p.publishLocked()
	}
	p.mu.Unlock()
	p.logRetired(retired, now)
}

// sweepLocked drops expired and spent rules from p.rules and returns them;
// the caller publishes and logs.
func (p *Plane) sweepLocked(now time.Time) []*rule {
	var gone []*rule
	p.rules = slices.DeleteFunc(p.rules, func(ru *rule) bool {
		if ru.expiredAt(now) || ru.spent() {
			gone = append(gone, ru)
			return true
		}
		return false
	})
	return gone
}

func (p *Plane) logRetired(rules []*rule, now time.Time) {
	for _, ru := range rules {
		if ru.expiredAt(now) {
			p.log.Info("fault rule expired", "id", ru.spec.ID, "rule", ru.spec.Description, "fired", ru.fired.Load())
		} else {
			p.log.Info("fault rule spent its budget", "id", ru.spec.ID, "rule", ru.spec.Description, "fired", ru.fired.Load())
		}
	}
}

func (p *Plane) publishLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
	if len(p.rules) == 0 {
		p.active.Store(nil)
		return
	}
	set := &ruleSet{rules: slices.Clone(p.rules)}
	for _, ru := range p.rules {
		if !ru.expires.IsZero() && (set.deadline.IsZero() || ru.expires.Before(set.deadline)) {
			set.deadline = ru.expires
		}
	}
	p.active.Store(set)
}

func (p *Plane) indexLocked(id string) int {
	return slices.IndexFunc(p.rules, func(ru *rule) bool { return ru.spec.ID == id })
}

// nextIDLocked returns "f<n>" for the next n not in use (a given id may
// have taken it).
func (p *Plane) nextIDLocked() string {
	for {
		p.seq++
		id := "f" + strconv.FormatUint(p.seq, 10)
		if p.indexLocked(id) < 0 {
			return id
		}
	}
}

// resolver takes one consistent view of the cluster for an install.
func (p *Plane) resolver() *resolver {
	rv := &resolver{byName: map[string]uint64{}, names: map[uint64]string{}}
	if p.cluster == nil {
		return rv
	}
	rv.known = true
	for _, m := range p.cluster.Members() {
		rv.names[m.ID] = m.Name
		if m.Name != "" {
			rv.byName[m.Name] = m.ID
		}
	}
	rv.leader = p.cluster.Leader()
	return rv
}

// resolver turns member references into ids and display names.
type resolver struct {
	known  bool // a Cluster answered; ids must then be members
	byName map[string]uint64
	names  map[uint64]string
	leader uint64
}

func (rv *resolver) display(id uint64) string {
	if n := rv.names[id]; n != "" {
		return n
	}
	return strconv.FormatUint(id, 16)
}

// ref resolves a name, a hexadecimal id or "leader" (a member's name wins
// over the other two readings).
func (rv *resolver) ref(s string) (uint64, string, error) {
	if id, ok := rv.byName[s]; ok {
		return id, s, nil
	}
	if s == LeaderRef {
		if rv.leader == 0 {
			return 0, "", fmt.Errorf("%w: cannot resolve %q", ErrNoLeader, s)
		}
		return rv.leader, rv.display(rv.leader), nil
	}
	if id, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64); err == nil && id != 0 {
		if _, member := rv.names[id]; member || !rv.known {
			return id, rv.display(id), nil
		}
	}
	names := make([]string, 0, len(rv.byName))
	for n := range rv.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return 0, "", fmt.Errorf("%w %q (no member names known; use hexadecimal ids)", ErrUnknownMember, s)
	}
	return 0, "", fmt.Errorf("%w %q (members: %s)", ErrUnknownMember, s, strings.Join(names, ", "))
}

// rule is one compiled, installed rule. Everything but the atomics is
// immutable once installed.
type rule struct {
	spec    Spec // canonical
	created time.Time
	expires time.Time // zero: never

	kind  Kind   // drop, delay, duplicate or partition
	types uint64 // bit t set: type t matches; 0: every type
	prob  float64

	// Links (drop, delay, duplicate): 0 is "any member".
	from, to uint64
	both     bool

	// Partition: group index per member; with rest, members in no group
	// form one more group.
	groups map[uint64]int
	rest   bool
	bridge map[uint64]bool

	delay, jitter time.Duration

	// Member rules (pause, clock, disk): the member acted on.
	member uint64
	offset time.Duration // clock
	drift  float64       // clock: rate of the member's clock (1: real time)
	mode   DiskMode      // disk

	limited   bool
	remaining atomic.Int64
	fired     atomic.Uint64
}

func (ru *rule) expiredAt(now time.Time) bool {
	return !ru.expires.IsZero() && !now.Before(ru.expires)
}

func (ru *rule) spent() bool { return ru.limited && ru.remaining.Load() <= 0 }

// take spends one unit of the budget; last reports that it was the final one.
// fire decides whether a matching rule acts on this occasion: its
// probability draw, then its "next N" budget. It counts a firing and reports
// whether that spent the budget (the rule is then retired).
func (ru *rule) fire(r *rand.Rand) (fired, last bool) {
	if ru.prob < 1 && unit(r) >= ru.prob {
		return false, false
	}
	if ru.limited {
		ok, l := ru.take()
		if !ok {
			return false, false
		}
		last = l
	}
	ru.fired.Add(1)
	return true, last
}

func (ru *rule) take() (ok, last bool) {
	for {
		n := ru.remaining.Load()
		if n <= 0 {
			return false, false
		}
		if ru.remaining.CompareAndSwap(n, n-1) {
			return true, n == 1
		}
	}
}

func (ru *rule) matches(from, to uint64, typ raftpb.MessageType) bool {
	if ru.types != 0 && (typ < 0 || typ >= 64 || ru.types&(1<<uint(typ)) == 0) {
		return false
	}
	if ru.kind == KindPartition {
		return ru.cuts(from, to)
	}
	return ru.link(from, to) || ru.both && ru.link(to, from)
}

func (ru *rule) link(from, to uint64) bool {
	return (ru.from == 0 || ru.from == from) && (ru.to == 0 || ru.to == to)
}

// cuts reports whether the partition separates from and to.
func (ru *rule) cuts(from, to uint64) bool {
	if ru.bridge[from] || ru.bridge[to] {
		return false
	}
	gf, okf := ru.groups[from]
	gt, okt := ru.groups[to]
	if !okf {
		if !ru.rest {
			return false
		}
		gf = -1
	}
	if !okt {
		if !ru.rest {
			return false
		}
		gt = -1
	}
	return gf != gt
}

// info reports the rule; the slices are copies, so a caller cannot change
// the installed rule.
func (ru *rule) info() Info {
	s := ru.spec
	s.Types = slices.Clone(s.Types)
	s.Bridge = slices.Clone(s.Bridge)
	if s.Groups != nil {
		gs := make([][]string, len(s.Groups))
		for i, g := range s.Groups {
			gs[i] = slices.Clone(g)
		}
		s.Groups = gs
	}
	if s.Probability != nil {
		v := *s.Probability
		s.Probability = &v
	}
	if s.Drift != nil {
		v := *s.Drift
		s.Drift = &v
	}
	info := Info{Spec: s, Created: ru.created, Fired: ru.fired.Load()}
	if !ru.expires.IsZero() {
		e := ru.expires
		info.Expires = &e
	}
	if ru.limited {
		n := max(ru.remaining.Load(), 0)
		info.Remaining = &n
	}
	return info
}

// compile resolves a checked Spec into a rule with a canonical Spec.
func compile(s Spec, c checked, rv *resolver, now time.Time) (*rule, error) {
	ru := &rule{kind: s.Kind, prob: c.prob, created: now, delay: time.Duration(s.Delay), jitter: time.Duration(s.Jitter)}
	canon := Spec{ID: s.ID, Kind: s.Kind, Types: typeNames(c.types), Duration: s.Duration, Next: s.Next}
	for _, t := range c.types {
		ru.types |= 1 << uint(t)
	}
	if s.Duration > 0 {
		ru.expires = now.Add(time.Duration(s.Duration))
	}
	if s.Next > 0 {
		ru.limited = true
		ru.remaining.Store(s.Next)
	}
	if s.Probability != nil {
		p := c.prob
		canon.Probability = &p
	}
	isolate := ""
	switch s.Kind {
	case KindPause, KindClock, KindDisk:
		if err := compileMember(ru, s, &canon, rv); err != nil {
			return nil, err
		}
	case KindDrop, KindDelay, KindDuplicate:
		l := c.link
		var err error
		if l.From != Any {
			if ru.from, l.From, err = rv.ref(l.From); err != nil {
				return nil, err
			}
		}
		if l.To != Any {
			if ru.to, l.To, err = rv.ref(l.To); err != nil {
				return nil, err
			}
		}
		ru.both = l.Both
		canon.Link = l.String()
		canon.Delay, canon.Jitter = s.Delay, s.Jitter
	case KindIsolateLeader:
		id, name, err := rv.ref(LeaderRef)
		if err != nil {
			return nil, err
		}
		ru.kind, canon.Kind = KindPartition, KindPartition
		ru.groups, ru.rest = map[uint64]int{id: 0}, true
		canon.Groups = [][]string{{name}}
		isolate = name
	case KindPartition:
		ru.groups = map[uint64]int{}
		for gi, g := range s.Groups {
			var names []string
			for _, ref := range g {
				id, name, err := rv.ref(ref)
				if err != nil {
					return nil, err
				}
				if prev, dup := ru.groups[id]; dup {
					if prev != gi {
						return nil, invalid("member %s is in partition groups %d and %d", name, prev+1, gi+1)
					}
					continue
				}
				ru.groups[id] = gi
				names = append(names, name)
			}
			canon.Groups = append(canon.Groups, names)
		}
		ru.rest = len(s.Groups) == 1
		for _, ref := range s.Bridge {
			id, name, err := rv.ref(ref)
			if err != nil {
				return nil, err
			}
			if ru.bridge == nil {
				ru.bridge = map[uint64]bool{}
			}
			if !ru.bridge[id] {
				ru.bridge[id] = true
				canon.Bridge = append(canon.Bridge, name)
			}
		}
	}
	canon.Description = s.Description
	if canon.Description == "" {
		canon.Description = describe(canon, isolate)
	}
	ru.spec = canon
	return ru, nil
}

// describe writes a rule for people: "drop MsgVote n1->n2 with probability
// 0.5, next 3", "delay all *->n3 by 50ms±10ms, expires after 30s",
// "partition n1,n2 | n3 (bridge n2)", "isolate leader n1 | rest".
func describe(s Spec, isolatedLeader string) string {
	var b strings.Builder
	types := "all"
	if len(s.Types) > 0 {
		types = strings.Join(s.Types, ",")
	}
	switch s.Kind {
	case KindPause, KindClock, KindDisk:
		describeMember(&b, s)
	case KindPartition:
		if isolatedLeader != "" {
			b.WriteString("isolate leader ")
		} else {
			b.WriteString("partition ")
		}
		for i, g := range s.Groups {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(strings.Join(g, ","))
		}
		if len(s.Groups) == 1 {
			b.WriteString(" | rest")
		}
		if len(s.Bridge) > 0 {
			fmt.Fprintf(&b, " (bridge %s)", strings.Join(s.Bridge, ","))
		}
		if len(s.Types) > 0 {
			fmt.Fprintf(&b, " (%s only)", types)
		}
	case KindDelay:
		fmt.Fprintf(&b, "delay %s %s by %s", types, s.Link, FormatDelay(time.Duration(s.Delay), time.Duration(s.Jitter)))
	default:
		fmt.Fprintf(&b, "%s %s %s", s.Kind, types, s.Link)
	}
	if s.Probability != nil && *s.Probability < 1 {
		fmt.Fprintf(&b, " with probability %s", formatProb(*s.Probability))
	}
	if s.Next > 0 {
		fmt.Fprintf(&b, ", next %d", s.Next)
	}
	if s.Duration > 0 && s.Kind != KindPause {
		fmt.Fprintf(&b, ", expires after %s", time.Duration(s.Duration))
	}
	return b.String()
}

// SortByID orders infos by id, numbers in ids compared as numbers ("f2"
// before "f10"), for stable output where install order is unknown.
func SortByID(infos []Info) {
	slices.SortFunc(infos, func(a, b Info) int { return compareIDs(a.ID, b.ID) })
}

func compareIDs(a, b string) int {
	pa, na := splitNum(a)
	pb, nb := splitNum(b)
	if c := cmp.Compare(pa, pb); c != 0 {
		return c
	}
	if c := cmp.Compare(na, nb); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// splitNum splits "f12" into "f" and 12 (-1 when there is no number).
func splitNum(s string) (string, int64) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) {
		return s, -1
	}
	n, err := strconv.ParseInt(s[i:], 10, 64)
	if err != nil {
		return s, -1
	}
	return s[:i], n
}
