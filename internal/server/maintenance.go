package server

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/mvcc"
)

// Maintenance: the space quota and its NOSPACE alarm, alarms in general,
// defragmentation, snapshots for operators, auto-compaction and the
// counters behind Metrics. Alarms are replicated state (package apply);
// everything else here is local to the member.

// DefaultQuotaBackendBytes is etcd's default --quota-backend-bytes (2 GiB).
const DefaultQuotaBackendBytes int64 = 2 << 30

// Auto-compaction modes (etcd's --auto-compaction-mode).
const (
	CompactionPeriodic = "periodic"
	CompactionRevision = "revision"
)

// defaultRevisionCompactionInterval is how often etcd's revision compactor
// looks at the revision.
const defaultRevisionCompactionInterval = 5 * time.Minute

// AutoCompaction configures the leader's automatic compactions. The zero
// value disables them.
type AutoCompaction struct {
	// Mode is CompactionPeriodic, CompactionRevision or "" (off).
	Mode string
	// Period is the history a periodic compaction keeps: the leader compacts
	// every min(Period, 1h) to the revision it saw about Period ago.
	Period time.Duration
	// Revisions is the history a revision compaction keeps: the leader
	// compacts to (current revision - Revisions).
	Revisions int64
	// Interval is how often revision mode looks (0: 5 minutes, as etcd).
	// Periodic mode samples every min(Period, 1h)/10, as etcd.
	Interval time.Duration
}

// ParseAutoCompaction reads etcd's --auto-compaction-mode and
// --auto-compaction-retention: periodic retention is a duration ("1h30m")
// or an integer number of hours; revision retention is a revision count;
// "0" (or "") disables.
func ParseAutoCompaction(mode, retention string) (AutoCompaction, error) {
	if retention == "" || retention == "0" {
		return AutoCompaction{}, nil
	}
	switch mode {
	case CompactionPeriodic, "":
		if h, err := strconv.ParseInt(retention, 10, 64); err == nil {
			if h < 0 {
				return AutoCompaction{}, fmt.Errorf("auto-compaction retention %q must not be negative", retention)
			}
			return AutoCompaction{Mode: CompactionPeriodic, Period: time.Duration(h) * time.Hour}, nil
		}
		d, err := time.ParseDuration(retention)
		if err != nil || d < 0 {
			return AutoCompaction{}, fmt.Errorf("auto-compaction retention %q: want a duration like 1h or a number of hours", retention)
		}
		if d == 0 {
			return AutoCompaction{}, nil
		}
		return AutoCompaction{Mode: CompactionPeriodic, Period: d}, nil
	case CompactionRevision:
		n, err := strconv.ParseInt(retention, 10, 64)
		if err != nil || n < 0 {
			return AutoCompaction{}, fmt.Errorf("auto-compaction retention %q: want a number of revisions", retention)
		}
		return AutoCompaction{Mode: CompactionRevision, Revisions: n}, nil
	}
	return AutoCompaction{}, fmt.Errorf("auto-compaction mode %q: want periodic or revision", mode)
}

func (a AutoCompaction) validate() error {
	switch a.Mode {
	case "":
		return nil
	case CompactionPeriodic:
		if a.Period <= 0 {
			return errors.New("server: periodic auto-compaction needs a positive period")
		}
	case CompactionRevision:
		if a.Revisions <= 0 {
			return errors.New("server: revision auto-compaction needs a positive revision count")
		}
	default:
		return fmt.Errorf("server: auto-compaction mode %q is not periodic or revision", a.Mode)
	}
	if a.Interval < 0 {
		return errors.New("server: auto-compaction interval must not be negative")
	}
	return nil
}

// compactor decides when the leader compacts and to which revision. It is
// pure: the maintenance loop feeds it the time, the revision and whether
// this member leads, and reports back the compactions that succeeded.
type compactor struct {
	cfg AutoCompaction

	started    bool
	next       time.Time // next sample (periodic) or check (revision)
	samples    []int64   // periodic: revisions sampled every sampleEvery, oldest first
	lastRun    time.Time // periodic: start, then last successful compaction
	lastTarget int64     // revision: last compacted target
}

func (c *compactor) window() time.Duration { return min(c.cfg.Period, time.Hour) }

// step returns the revision to compact to now, if any.
func (c *compactor) step(now time.Time, rev int64, leader bool) (int64, bool) {
	if c.cfg.Mode == "" {
		return 0, false
	}
	if !c.started {
		c.started, c.lastRun = true, now
		switch c.cfg.Mode {
		case CompactionPeriodic:
			c.next = now
		case CompactionRevision:
			c.next = now.Add(c.interval())
		}
	}
	if now.Before(c.next) {
		return 0, false
	}
	switch c.cfg.Mode {
	case CompactionPeriodic:
		every := c.window() / 10
		keep := int(c.cfg.Period/every) + 1
		c.samples = append(c.samples, rev)
		if len(c.samples) > keep {
			c.samples = c.samples[len(c.samples)-keep:]
		}
		c.next = now.Add(every)
		if leader && now.Sub(c.lastRun) >= c.window() {
			return c.samples[0], true
		}
	case CompactionRevision:
		c.next = now.Add(c.interval())
		if target := rev - c.cfg.Revisions; leader && target > 0 && target != c.lastTarget {
			return target, true
		}
	}
	return 0, false
}

func (c *compactor) interval() time.Duration {
	if c.cfg.Interval > 0 {
		return c.cfg.Interval
	}
	return defaultRevisionCompactionInterval
}

// done records that the compaction to target succeeded (or was already
// covered by an earlier one).
func (c *compactor) done(now time.Time, target int64) {
	c.lastRun, c.lastTarget = now, target
}

// minPutCost is what the quota charges for the smallest put (an empty key
// and value).
var minPutCost = apply.QuotaCost(&command.Command{Op: &command.Command_Put{Put: &command.PutRequest{}}})

// maintState is the member-local maintenance state; its zero value is
// ready to use.
type maintState struct {
	// dbSizeHigh is the largest store size seen since start or the last
	// defragmentation: Concord's analogue of etcd's db file size, which
	// compaction does not shrink and defragmentation does.
	dbSizeHigh      atomic.Int64
	leaderChanges   atomic.Uint64
	proposalsFailed atomic.Uint64
	raisingNoSpace  atomic.Bool
	// refusedCost is the largest quota cost of a write this member refused
	// under a NOSPACE alarm while the store was over its quota for it
	// (admit); the maintenance loop raises NOSPACE again if that alarm is
	// then disarmed while the store is still too full for such a write.
	refusedCost atomic.Int64
	defragMu    sync.Mutex
	walSync     durationHistogram
	apply       durationHistogram
}

// QuotaBytes returns the space quota in force: Config.QuotaBackendBytes, its
// default for 0, and 0 (no quota) for a negative setting, as etcd.
func (s *Server) QuotaBytes() int64 {
	switch q := s.cfg.QuotaBackendBytes; {
	case q == 0:
		return DefaultQuotaBackendBytes
	case q < 0:
		return 0
	default:
		return q
	}
}

// dbSize returns the high-water mark of the store size (see maintState).
func (s *Server) dbSize() int64 { return raiseTo(&s.mt.dbSizeHigh, s.applier.Store().Size()) }

// DBSizeInUse returns the store's current size estimate (mvcc.Store.Size).
func (s *Server) DBSizeInUse() int64 { return s.applier.Store().Size() }

// admit refuses, before anything is proposed, a command the alarms or the
// quota would refuse: a refused write costs no log entry. Crossing the quota
// raises the NOSPACE alarm cluster-wide, as etcd. The apply-time check
// (apply.Applier.Admit) stays the authority: this one may race an alarm
// change either way.
//
// A write refused because this member still has a NOSPACE alarm that the
// cluster has just disarmed (its apply is on its way) must still re-arm it,
// as etcd's would: admit records its cost, and the maintenance loop raises
// the alarm once the local table shows it disarmed and the write still
// would not fit.
func (s *Server) admit(cmd *command.Command) error {
	cost := apply.QuotaCost(cmd)
	q := s.QuotaBytes()
	over := cost > 0 && q > 0 && s.applier.Store().Size()+cost >= q
	if err := s.applier.Admit(cmd); err != nil {
		if over && errors.Is(err, apply.ErrNoSpace) {
			raiseTo(&s.mt.refusedCost, cost)
		}
		return err
	}
	if over {
		s.raiseNoSpace()
		return apply.ErrNoSpace
	}
	return nil
}

// raiseTo sets a to v if v is larger and returns a's value.
func raiseTo(a *atomic.Int64, v int64) int64 {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return max(old, v)
		}
	}
}

// raiseNoSpace proposes this member's NOSPACE alarm in the background, at
// most one proposal at a time.
func (s *Server) raiseNoSpace() {
	if s.applier.HasAlarm(command.AlarmRequest_NOSPACE) || !s.mt.raisingNoSpace.CompareAndSwap(false, true) {
		return
	}
	// Client goroutines get here at any time: bgMu orders this Add before
	// Stop's Wait, or makes it see that Stop has begun.
	s.bgMu.Lock()
	select {
	case <-s.stopped:
		s.bgMu.Unlock()
		s.mt.raisingNoSpace.Store(false)
		return
	default:
	}
	s.bg.Add(1)
	s.bgMu.Unlock()
	s.logger.Warn("store is over its space quota; raising the NOSPACE alarm",
		"size", s.applier.Store().Size(), "quota", s.QuotaBytes())
	go func() {
		defer s.bg.Done()
		defer s.mt.raisingNoSpace.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimeout)
		defer cancel()
		go func() {
			select {
			case <-s.stopped:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, _, err := s.Alarm(ctx, &command.AlarmRequest{
			Action: command.AlarmRequest_ACTIVATE, MemberId: s.id, Alarm: command.AlarmRequest_NOSPACE,
		})
		if err != nil {
			s.logger.Warn("raising the NOSPACE alarm failed", "err", err)
		}
	}()
}

// Alarm gets, activates or deactivates an alarm (etcd's Maintenance.Alarm).
// GET is a linearizable read of the replicated alarm table; the others are
// proposed. Deactivating NOSPACE while the store is still over its quota is
// allowed: the next write refused by the quota raises it again.
func (s *Server) Alarm(ctx context.Context, r *command.AlarmRequest) (*command.AlarmResponse, Header, error) {
	if r.GetAction() == command.AlarmRequest_GET {
		if err := s.linearize(ctx); err != nil {
			return nil, Header{}, err
		}
		return &command.AlarmResponse{Alarms: s.applier.Alarms()}, s.header(s.applier.Store().Rev()), nil
	}
	res, err := s.propose(ctx, &command.Command{Op: &command.Command_Alarm{Alarm: r}})
	if err := firstErr(err, res.Err); err != nil {
		return nil, Header{}, err
	}
	return res.Resp.(*command.AlarmResponse), s.header(res.Rev), nil
}

// Alarms returns the active alarms as this member applied them (no
// ReadIndex). Safe from any goroutine.
func (s *Server) Alarms() []*command.AlarmMember { return s.applier.Alarms() }

// Defragment releases the memory the store holds beyond what it needs
// (mvcc.Store.Defragment, then the Go heap's free pages back to the OS) and
// resets DBSize to the size in use. Member-local, like etcd's; reads and
// writes continue while it runs. Concurrent calls run one after the other.
func (s *Server) Defragment(ctx context.Context) (Header, error) {
	if err := ctx.Err(); err != nil {
		return Header{}, err
	}
	s.mt.defragMu.Lock()
	defer s.mt.defragMu.Unlock()
	start := time.Now()
	before := s.dbSize()
	released := s.applier.Store().Defragment(mvcc.DefaultDefragBatch)
	debug.FreeOSMemory()
	s.mt.dbSizeHigh.Store(s.applier.Store().Size())
	s.logger.Info("defragmented", "db-size-before", before, "db-size-after", s.dbSize(),
		"index-bytes-released", released, "took", time.Since(start))
	return s.header(s.applier.Store().Rev()), nil
}

// Snapshot returns this member's current state as a snapshot file (see
// EncodeSnapshotFile): a consistent point-in-time copy of the keyspace,
// leases, member and alarm tables. Member-local, no ReadIndex, like etcd's.
func (s *Server) Snapshot(ctx context.Context) ([]byte, Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, Header{}, err
	}
	blob, err := s.applier.Snapshot()
	if err != nil {
		return nil, Header{}, err
	}
	return EncodeSnapshotFile(blob), s.header(s.applier.Store().Rev()), nil
}

// IsLeader reports whether this member currently leads.
func (s *Server) IsLeader() bool {
	n := s.nodeRef.Load()
	return n != nil && n.Status().IsLeader
}

// startMaintenance wires the metric hooks and starts the maintenance loop;
// Start calls it before the raft node exists.
func (s *Server) startMaintenance() {
	s.storage.observeSync = s.mt.walSync.observe
	s.bg.Add(1)
	go s.maintenanceLoop()
}

// maintenanceLoop counts leader changes, tracks the db size high-water
// mark, re-raises NOSPACE while the store stays over its quota, and runs
// auto-compaction on the leader.
func (s *Server) maintenanceLoop() {
	defer s.bg.Done()
	tick := time.NewTicker(max(s.cfg.HeartbeatInterval, 100*time.Millisecond))
	defer tick.Stop()
	comp := compactor{cfg: s.cfg.AutoCompaction}
	var (
		changes    <-chan struct{}
		lastLeader uint64
		lastSweep  time.Time
	)
	for {
		n := s.nodeRef.Load()
		if n != nil && changes == nil {
			changes = n.LeaderChanges()
			if l := n.Leader(); l != 0 { // elected before the loop looked
				s.mt.leaderChanges.Add(1)
				lastLeader = l
			}
		}
		select {
		case <-s.stopped:
			return
		case <-changes:
			changes = n.LeaderChanges()
			// Counted as etcd's leader_changes_seen: every new leader,
			// the first one included.
			if l := n.Leader(); l != 0 && l != lastLeader {
				s.mt.leaderChanges.Add(1)
				lastLeader = l
			}
		case now := <-tick.C:
			if n == nil {
				continue
			}
			s.dbSize()
			if now.Sub(lastSweep) >= time.Second {
				s.au.simple.Sweep()
				lastSweep = now
			}
			leader := n.Status().IsLeader
			// Re-arm: after a disarm, a member whose alarm table is not yet
			// updated refuses writes without raising anything, so the
			// leader raises NOSPACE while not even the smallest put fits.
			if q := s.QuotaBytes(); leader && q > 0 && s.applier.Store().Size()+minPutCost >= q {
				s.raiseNoSpace()
			}
			// Re-arm for a write this member refused under an alarm that
			// has since been disarmed (admit).
			if !s.applier.HasAlarm(command.AlarmRequest_NOSPACE) {
				if cost := s.mt.refusedCost.Swap(0); cost > 0 {
					if q := s.QuotaBytes(); q > 0 && s.applier.Store().Size()+cost >= q {
						s.raiseNoSpace()
					}
				}
			}
			if target, ok := comp.step(now, s.applier.Store().Rev(), leader); ok {
				if s.autoCompact(target) {
					comp.done(now, target)
				}
			}
		}
	}
}

// autoCompact proposes a compaction to target; true when it is done (now or
// by an earlier compaction).
func (s *Server) autoCompact(target int64) bool {
	// The leader compacts on its own behalf: root's right when auth is on.
	ctx, cancel := context.WithTimeout(WithSubject(context.Background(), systemSubject), s.reqTimeout)
	defer cancel()
	_, err := s.Compact(ctx, &command.CompactionRequest{Revision: target})
	switch {
	case err == nil:
		s.logger.Info("auto-compacted", "revision", target, "mode", s.cfg.AutoCompaction.Mode)
		return true
	case errors.Is(err, mvcc.ErrCompacted):
		return true
	default:
		s.logger.Warn("auto-compaction failed", "revision", target, "err", err)
		return false
	}
}
