package server

import (
	"sync/atomic"
	"time"
)

// durationBuckets are the upper bounds (seconds) of the duration histograms:
// 100µs doubling to ~6.5s, covering etcd's WAL fsync buckets (1ms..8s) and
// its apply buckets.
var durationBuckets = func() []float64 {
	b := make([]float64, 17)
	for i := range b {
		b[i] = 0.0001 * float64(uint64(1)<<i)
	}
	return b
}()

// durationHistogram is a lock-free histogram over durationBuckets; the zero
// value is ready to use.
type durationHistogram struct {
	counts   [17 + 1]atomic.Uint64 // the last slot counts values above every bound
	sumNanos atomic.Int64
}

func (h *durationHistogram) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(durationBuckets) && sec > durationBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(int64(d))
}

func (h *durationHistogram) snapshot() Histogram {
	out := Histogram{Bounds: durationBuckets, Cumulative: make([]uint64, len(durationBuckets))}
	var n uint64
	for i := range durationBuckets {
		n += h.counts[i].Load()
		out.Cumulative[i] = n
	}
	out.Count = n + h.counts[len(durationBuckets)].Load()
	out.Sum = time.Duration(h.sumNanos.Load()).Seconds()
	return out
}

// Histogram is a point-in-time copy of a duration histogram in Prometheus'
// shape: Cumulative[i] counts observations <= Bounds[i] seconds.
type Histogram struct {
	Bounds     []float64 // shared, read-only
	Cumulative []uint64
	Count      uint64
	Sum        float64 // seconds
}

// Metrics is a point-in-time view of one member for monitoring.
type Metrics struct {
	MemberID, ClusterID uint64
	Term                uint64
	Leader              uint64 // 0: none known
	IsLeader            bool
	LeaderChanges       uint64 // changes of the known leader since start
	CommitIndex         uint64
	AppliedIndex        uint64
	ProposalsPending    int
	ProposalsFailed     uint64 // proposals that ended in an error of the node (timeout, no leader, stopped)
	ReadIndexRounds     uint64 // raft ReadIndex rounds started, each serving a batch of linearizable reads
	LogEntriesRead      uint64 // raft entries read back from the WAL to catch a member up
	LogReadFailures     uint64 // such reads that failed (the member is sent a snapshot instead)
	Revision            int64
	CompactRevision     int64
	Keys                int
	DBSize              int64 // see Status.DBSize
	DBSizeInUse         int64
	Quota               int64 // 0: no quota
	Alarms              []string
	// WALSync times the fdatasync of each WAL batch, the syncs raft's
	// writes wait for: etcd's wal_fsync_duration.
	WALSync Histogram
	// Apply times the application of each committed entry.
	Apply Histogram
}

// Metrics returns the member's current metrics. Safe from any goroutine.
func (s *Server) Metrics() Metrics {
	st := s.node.Status()
	s.waitMu.Lock()
	pending := len(s.waiters)
	s.waitMu.Unlock()
	store := s.applier.Store()
	m := Metrics{
		MemberID:         s.id,
		ClusterID:        s.clusterID,
		Term:             st.Term,
		Leader:           st.Leader,
		IsLeader:         st.IsLeader,
		LeaderChanges:    s.mt.leaderChanges.Load(),
		CommitIndex:      st.CommitIndex,
		AppliedIndex:     st.AppliedIndex,
		ProposalsPending: pending,
		ProposalsFailed:  s.mt.proposalsFailed.Load(),
		ReadIndexRounds:  st.ReadIndexRounds,
		LogEntriesRead:   st.LogEntriesRead,
		LogReadFailures:  st.LogReadFailures,
		Revision:         store.Rev(),
		CompactRevision:  store.CompactRev(),
		Keys:             store.Len(),
		DBSize:           s.dbSize(),
		DBSizeInUse:      store.Size(),
		Quota:            s.QuotaBytes(),
		WALSync:          s.mt.walSync.snapshot(),
		Apply:            s.mt.apply.snapshot(),
	}
	for _, a := range s.applier.Alarms() {
		m.Alarms = append(m.Alarms, a.GetAlarm().String())
	}
	return m
}
