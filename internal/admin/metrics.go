package admin

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/server"
)

// metric is one exported series family: its descriptor and how to read its
// value(s) from a server.Metrics.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(m *server.Metrics) float64
}

// collector exports server.Metrics. Names are etcd's where etcd has the
// metric, so existing dashboards and alerts keep working.
type collector struct {
	member   Member
	scalars  []metric
	walSync  *prometheus.Desc
	apply    *prometheus.Desc
	alarms   *prometheus.Desc
	serverID *prometheus.Desc
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func newCollector(m Member) *collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &collector{
		member: m,
		scalars: []metric{
			{d("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return b2f(m.Leader != 0) }},
			{d("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return b2f(m.IsLeader) }},
			{d("etcd_server_leader_changes_seen_total", "The number of leader changes seen."), prometheus.CounterValue,
				func(m *server.Metrics) float64 { return float64(m.LeaderChanges) }},
			{d("concord_raft_term", "The raft term this member is in."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.Term) }},
			{d("etcd_server_proposals_committed_total", "The total number of consensus proposals committed (the raft commit index)."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.CommitIndex) }},
			{d("etcd_server_proposals_applied_total", "The total number of consensus proposals applied (the applied index)."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.AppliedIndex) }},
			{d("etcd_server_proposals_pending", "The current number of pending proposals to commit."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.ProposalsPending) }},
			{d("etcd_server_proposals_failed_total", "The total number of failed proposals seen."), prometheus.CounterValue,
				func(m *server.Metrics) float64 { return float64(m.ProposalsFailed) }},
			{d("concord_raft_read_index_rounds_total", "The total number of raft ReadIndex rounds this member started; each serves every linearizable read waiting when it starts."), prometheus.CounterValue,
				func(m *server.Metrics) float64 { return float64(m.ReadIndexRounds) }},
			{d("concord_raft_log_entries_read_total", "The total number of raft entries read back from the WAL because the in-memory log no longer held them, to catch a lagging member up."), prometheus.CounterValue,
				func(m *server.Metrics) float64 { return float64(m.LogEntriesRead) }},
			{d("concord_raft_log_read_failures_total", "The total number of reads of raft entries from the WAL that failed; the member that needed them is sent a snapshot instead."), prometheus.CounterValue,
				func(m *server.Metrics) float64 { return float64(m.LogReadFailures) }},
			{d("etcd_mvcc_db_total_size_in_bytes", "Total size of the store in bytes (high-water mark since the last defragmentation)."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.DBSize) }},
			{d("etcd_mvcc_db_total_size_in_use_in_bytes", "Size of the store in use in bytes."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.DBSizeInUse) }},
			{d("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes (0: no quota)."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.Quota) }},
			{d("etcd_debugging_mvcc_keys_total", "Total number of keys."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.Keys) }},
			{d("etcd_debugging_mvcc_current_revision", "The current revision of the store."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.Revision) }},
			{d("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in the store."), prometheus.GaugeValue,
				func(m *server.Metrics) float64 { return float64(m.CompactRevision) }},
		},
		walSync: d("etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL: the fdatasync of each batch the raft loop appends."),
		apply:   d("etcd_server_apply_duration_seconds", "The latency distributions of applying one committed entry."),
		alarms: prometheus.NewDesc("concord_alarms_active", "The number of members with an active alarm of each type.",
			[]string{"alarm"}, nil),
		serverID: prometheus.NewDesc("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
			[]string{"server_id"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.scalars {
		ch <- s.desc
	}
	ch <- c.walSync
	ch <- c.apply
	ch <- c.alarms
	ch <- c.serverID
}

// Collect implements prometheus.Collector: one server.Metrics per scrape.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.member.Metrics()
	for _, s := range c.scalars {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(&m))
	}
	ch <- histogram(c.walSync, m.WALSync)
	ch <- histogram(c.apply, m.Apply)
	counts := map[string]int{}
	for _, a := range m.Alarms {
		counts[a]++
	}
	for _, t := range []command.AlarmRequest_AlarmType{command.AlarmRequest_NOSPACE, command.AlarmRequest_CORRUPT} {
		ch <- prometheus.MustNewConstMetric(c.alarms, prometheus.GaugeValue, float64(counts[t.String()]), t.String())
	}
	ch <- prometheus.MustNewConstMetric(c.serverID, prometheus.GaugeValue, 1, fmt.Sprintf("%x", m.MemberID))
}

func histogram(d *prometheus.Desc, h server.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Cumulative[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets)
}
