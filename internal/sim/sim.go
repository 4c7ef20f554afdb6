package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/concord-db/concord/internal/check"
)

// Defaults for zero Config fields.
const (
	DefaultDuration     = 12 * time.Second
	DefaultClients      = 5
	DefaultKeys         = 4
	DefaultCheckTimeout = 20 * time.Second
)

// Virtual time constants. One tick is the heartbeat interval; the election
// timeout is raft's randomized [10, 20) ticks.
const (
	tickInterval   = int64(100 * time.Millisecond)
	electionTicks  = 10
	clientTimeout  = int64(2 * time.Second)
	settleLimit    = int64(30 * time.Second)
	finalReadLimit = int64(20 * time.Second)
)

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("sim: invalid config")

// Config describes one simulated run. Everything else the run does is drawn
// from Seed.
type Config struct {
	// Seed determines the whole run: cluster size (when Members is 0), the
	// fault schedule, the workload, message latencies and losses.
	Seed uint64
	// Members is the cluster size, 3 or 5; 0 draws it from the seed (3 most
	// of the time).
	Members int
	// Duration is the virtual length of the phase with faults and client
	// load; healing, settling and the final reads come after it.
	Duration time.Duration
	// Clients issue one operation at a time each; Keys is the number of keys
	// they share.
	Clients, Keys int
	// NoFaults runs the workload without a nemesis.
	NoFaults bool
	// UnsafeLocalReads serves linearizable reads from the member's local
	// state without ReadIndex: a partitioned member answers stale values.
	UnsafeLocalReads bool
	// UnsafeNoFsync makes every member's WAL skip its fsyncs (the kernel
	// writes back now and then): a crash takes back acknowledged appends,
	// votes and writes.
	UnsafeNoFsync bool
	// CheckTimeout bounds the linearizability search in wall time; a search
	// it cuts short is a failure (Unknown), never a pass.
	CheckTimeout time.Duration

	// dupProposals lets duplication faults copy forwarded proposals too
	// (tests: apply does not deduplicate, so the checkers must notice).
	dupProposals bool
	// leaseClockRate, when above 1, runs every member's lease clock that
	// much faster than the virtual clock (tests: leases expire early, which
	// the lease invariant must notice).
	leaseClockRate float64
}

func (c Config) withDefaults() Config {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	return c
}

// Validate reports whether c can run.
func (c Config) Validate() error {
	d := c.withDefaults()
	switch {
	case d.Members != 0 && d.Members != 3 && d.Members != 5:
		return fmt.Errorf("%w: Members %d (want 0, 3 or 5)", ErrInvalidConfig, d.Members)
	case d.Duration < 2*time.Second:
		return fmt.Errorf("%w: Duration %v under 2s", ErrInvalidConfig, d.Duration)
	case d.Clients < 1 || d.Clients > 64:
		return fmt.Errorf("%w: Clients %d (want 1..64)", ErrInvalidConfig, d.Clients)
	case d.Keys < 1 || d.Keys > 1000:
		return fmt.Errorf("%w: Keys %d (want 1..1000)", ErrInvalidConfig, d.Keys)
	case d.CheckTimeout < 0:
		return fmt.Errorf("%w: CheckTimeout %v < 0", ErrInvalidConfig, d.CheckTimeout)
	}
	return nil
}

// Violation kinds: the invariants checked while the run goes, and the
// checkers run on the history afterwards.
const (
	KindLeader      = "one-leader-per-term"
	KindLogMatching = "log-matching"
	KindCommitted   = "committed-entry"
	KindState       = "applied-state"
	KindRevision    = "revision-monotonic"
	KindPanic       = "panic"
	KindStorage     = "storage"
	KindRestart     = "restart"
	KindLiveness    = "liveness"
	KindUnknown     = "checker-unknown"
	KindWatch       = "watch"
	// The history checkers report under their own names: "linearizable",
	// "reads", "durability", "revisions", "watch" and "applied-once".
)

// Violation is one broken guarantee.
type Violation struct {
	// At is the virtual time it was detected (the end of the run for the
	// history checkers).
	At     time.Duration
	Kind   string
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s: %s", fmtTime(int64(v.At)), v.Kind, v.Detail)
}

// Stats summarize a run.
type Stats struct {
	Members                           int
	Events                            int
	Ops, OpsOK, OpsFailed, OpsUnknown int
	Acknowledged                      int
	Faults                            int
	Crashes                           int
	Elections                         int // distinct terms with a leader
	MaxTerm                           uint64
	Messages, Dropped                 int
	Snapshots, SnapshotsSent          int
	LeasesGranted, LeasesExpired      int // grants called; expiry revocations applied
	DiskFaults                        int // members stopped by an injected disk error
	SlowReadies                       int // Readies handled on a slow disk
	BatchedProposals                  int // raft proposals of several held writes, on resume
	CommittedIndex                    uint64
	FinalRev                          int64
	VirtualTime                       time.Duration
}

// Result is everything a run produced.
type Result struct {
	Seed       uint64
	Violations []Violation
	// Reports are the history checkers' reports.
	Reports []check.Report
	// Trace is the readable log of the run: every event with its virtual
	// time. The same Config always produces the same Trace.
	Trace []byte
	// TraceHash is the SHA-256 of Trace, hex.
	TraceHash string
	// Ops is the client history.
	Ops   []check.Op
	Stats Stats
	// Panics holds the stack of every recovered panic (not part of Trace:
	// stacks carry addresses).
	Panics []string
}

// Failed reports whether the run broke any guarantee.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

// Has reports whether a violation of kind was found.
func (r *Result) Has(kind string) bool {
	for _, v := range r.Violations {
		if v.Kind == kind {
			return true
		}
	}
	return false
}

// Summary is a few lines describing the outcome.
func (r *Result) Summary() string {
	var b strings.Builder
	st := r.Stats
	fmt.Fprintf(&b, "seed %d: %d members, %v virtual, %d events, %d ops (%d ok, %d failed, %d indefinite, %d acknowledged writes), %d faults, %d crashes, %d leases granted (%d expired), %d disk faults, %d slow readies, %d batched proposals, %d leaders up to term %d, %d/%d messages dropped, %d snapshots (%d sent), commit index %d, revision %d",
		r.Seed, st.Members, st.VirtualTime, st.Events, st.Ops, st.OpsOK, st.OpsFailed, st.OpsUnknown, st.Acknowledged,
		st.Faults, st.Crashes, st.LeasesGranted, st.LeasesExpired, st.DiskFaults, st.SlowReadies, st.BatchedProposals, st.Elections, st.MaxTerm, st.Dropped, st.Messages, st.Snapshots, st.SnapshotsSent,
		st.CommittedIndex, st.FinalRev)
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "\n  VIOLATION %s", v)
	}
	return b.String()
}

// maxViolations bounds how many violations a run records.
const maxViolations = 50

// Run simulates one cluster under cfg and checks it. The error is for a
// config that cannot run; broken guarantees are in Result.Violations.
//
// Run is deterministic given cfg except for one input it cannot inject:
// go.etcd.io/raft draws its randomized election timeouts from crypto/rand.
// For a replay that matches byte for byte, the caller makes crypto/rand
// deterministic first (testing/cryptotest.SetGlobalRandom in tests) and
// nothing else in the process reads crypto/rand while Run runs.
func Run(cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := newSim(cfg)
	s.run()
	return s.result(), nil
}

// simulation is one run's state. Everything happens on the goroutine that called
// Run; nothing in it is iterated in map order.
type simulation struct {
	cfg Config
	now int64
	ag  agenda

	// Independent streams, so that e.g. a change in how many messages are
	// sent does not reshuffle the fault schedule.
	netRng  *rand.Rand
	workRng *rand.Rand
	nemRng  *rand.Rand

	members  []*member
	clients  []*client
	watchers []*watcher
	rules    []*rule
	faults   []*fault
	phase    phase

	rec      check.Recorder
	ops      []*opState // every operation, by seq-1
	nextCmd  uint64
	nextRctx uint64

	// Leases: the next id a grant uses, what the lease invariant knows of
	// each, the command ids of expiry revocations, how many were proposed.
	nextLease  int64
	leases     map[int64]*leaseInfo
	expiryCmds map[uint64]bool
	nExpiry    int

	trace      bytes.Buffer
	scratch    []byte
	aborted    bool
	final      *check.Committed
	finalWatch []check.WatchStream
	violations []Violation
	nViolation int
	panics     []string
	stats      Stats

	inv invariants
}

type phase uint8

const (
	phaseRun    phase = iota // faults and client load
	phaseSettle              // healed, waiting for the cluster to converge
	phaseFinal               // final reads
	phaseDone
)

func newSim(cfg Config) *simulation {
	s := &simulation{
		cfg:     cfg,
		netRng:  rand.New(rand.NewPCG(cfg.Seed, 0x6e6574)),   // "net"
		workRng: rand.New(rand.NewPCG(cfg.Seed, 0x776f726b)), // "work"
		nemRng:  rand.New(rand.NewPCG(cfg.Seed, 0x6e656d)),   // "nem"

		leases:     map[int64]*leaseInfo{},
		expiryCmds: map[uint64]bool{},
	}
	s.inv.s = s
	s.inv.init()
	if s.cfg.Members == 0 {
		s.cfg.Members = 3
		if s.nemRng.IntN(5) == 0 {
			s.cfg.Members = 5
		}
	}
	return s
}

func (s *simulation) run() {
	s.tracef("sim seed=%d members=%d duration=%v clients=%d keys=%d unsafe-local-reads=%t unsafe-no-fsync=%t",
		s.cfg.Seed, s.cfg.Members, s.cfg.Duration, s.cfg.Clients, s.cfg.Keys, s.cfg.UnsafeLocalReads, s.cfg.UnsafeNoFsync)
	for i := range s.cfg.Members {
		s.members = append(s.members, newMember(s, i))
	}
	for _, m := range s.members {
		s.bootFresh(m)
	}
	if !s.cfg.NoFaults {
		s.planFaults()
	}
	s.startClients()
	s.startWatchers()

	end := int64(s.cfg.Duration)
	s.loop(end, nil)

	s.phase = phaseSettle
	s.heal()
	settled := s.loop(s.now+settleLimit, s.converged)
	if !settled {
		s.violate(KindLiveness, "the healed cluster did not converge within %s: %s", fmtDur(settleLimit), s.describeCluster())
	}

	s.phase = phaseFinal
	if settled {
		s.finalReads()
	}
	// Let every member apply what the final reads committed, then compare.
	s.loop(s.now+int64(time.Second), nil)
	if settled {
		// That second may have started work of its own (an expired lease's
		// revocation proposed just before its end): let it reach every member
		// too, or the comparison sees replication in flight, not a fault.
		s.loop(s.now+settleLimit, s.converged)
	}
	s.phase = phaseDone
	s.finalCompare()
}

// maxEvents bounds a run. A healthy run needs a few tens of thousands of
// events; a message storm (members whose logs diverged ping-pong appends
// forever, which only the unsafe switches provoke) would otherwise run
// for minutes.
const maxEvents = 250_000

// loop runs events until the agenda passes until, or done reports true
// (checked after every event). It returns whether done was satisfied.
func (s *simulation) loop(until int64, done func() bool) bool {
	for s.ag.len() > 0 && !s.aborted {
		if done != nil && done() {
			return true
		}
		if s.ag.evs[0].at > until {
			break
		}
		if s.stats.Events >= maxEvents {
			s.aborted = true
			s.violate(KindLiveness, "event budget of %d exhausted (a message storm?): %s", maxEvents, s.describeCluster())
			break
		}
		ev := s.ag.pop()
		s.now = ev.at
		s.stats.Events++
		s.handle(ev)
	}
	if s.now < until {
		s.now = until
	}
	return done != nil && done()
}

func (s *simulation) at(t int64, e *event) {
	e.at = t
	s.ag.push(e)
}

func (s *simulation) handle(ev *event) {
	switch ev.kind {
	case evTick:
		s.onTick(ev)
	case evDeliver:
		s.onDeliver(ev)
	case evReport:
		s.onReport(ev)
	case evClient:
		s.onClient(ev)
	case evTimeout:
		s.onTimeout(ev)
	case evFault:
		s.startFault(ev.fault)
	case evUndo:
		s.undoFault(ev.fault)
	case evWriteback:
		s.onWriteback(ev)
	case evWatch:
		s.onWatch(ev)
	case evPromote:
		s.onPromote(ev)
	case evSlowReady:
		s.onSlowReady(ev)
	case evSnapshot:
		s.onSnapshot(ev)
	}
}

// violate records a broken guarantee.
func (s *simulation) violate(kind, format string, args ...any) {
	s.nViolation++
	detail := fmt.Sprintf(format, args...)
	s.tracef("!! VIOLATION %s: %s", kind, detail)
	if len(s.violations) < maxViolations {
		s.violations = append(s.violations, Violation{At: time.Duration(s.now), Kind: kind, Detail: detail})
	}
}

func (s *simulation) result() *Result {
	r := &Result{
		Seed:       s.cfg.Seed,
		Violations: s.violations,
		Panics:     s.panics,
		Stats:      s.stats,
	}
	r.Stats.Members = s.cfg.Members
	r.Stats.VirtualTime = time.Duration(s.now)
	r.Stats.Faults = len(s.faults)
	r.Stats.LeasesGranted = len(s.leases)
	r.Ops = s.rec.Ops()
	for i := range r.Ops {
		o := &r.Ops[i]
		r.Stats.Ops++
		switch o.Status {
		case check.OK:
			r.Stats.OpsOK++
		case check.Failed:
			r.Stats.OpsFailed++
		default:
			r.Stats.OpsUnknown++
		}
		if o.Acknowledged() {
			r.Stats.Acknowledged++
		}
	}
	r.Stats.Elections = len(s.inv.leaders)
	for term := range s.inv.leaders {
		r.Stats.MaxTerm = max(r.Stats.MaxTerm, term)
	}
	r.Stats.CommittedIndex = uint64(len(s.inv.committed)) - 1

	// The trace so far is the run; the checkers' verdicts follow it but are
	// not hashed (a checker budget is wall time).
	sum := sha256.Sum256(s.trace.Bytes())
	r.TraceHash = hex.EncodeToString(sum[:])
	s.checkHistory(r)
	r.Trace = s.trace.Bytes()
	return r
}

// fmtTime renders virtual nanoseconds as seconds with microseconds.
func fmtTime(t int64) string {
	return fmt.Sprintf("%4d.%06d", t/1e9, (t%1e9)/1e3)
}

func fmtDur(d int64) string { return time.Duration(d).String() }
