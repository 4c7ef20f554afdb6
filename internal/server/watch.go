package server

import (
	"time"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/watch"
)

// Watches: the member's watch hub is fed by the apply path (stateMachine
// Apply and Restore) and drained by front-end streams. Watches are served
// from this member's applied state, like etcd's: they are ordered, gap-free
// and resumable, not linearizable.
//
// Restore: a snapshot from the leader jumps the store revision without the
// revisions in between ever being notified. Every synced watcher that could
// have missed one of them becomes unsynced from its first unseen revision and
// catches up from the restored store's history; if that history was compacted
// (the snapshot's compaction revision is above what the watcher needs), the
// watcher is cancelled with compact_revision, exactly as a watch that falls
// behind a compaction: the client sees ErrCompacted, never a gap.

// DefaultWatchProgressNotifyInterval is etcd's
// --experimental-watch-progress-notify-interval default.
const DefaultWatchProgressNotifyInterval = 10 * time.Minute

// DefaultWatchBatchInterval is how often a congested watch stream sends a
// round of responses (etcd catches its unsynced watchers up every 100 ms).
const DefaultWatchBatchInterval = 100 * time.Millisecond

// noLeaderElections is how many election timeouts without a leader end the
// watch streams that asked for a leader (etcd's maxNoLeaderCnt).
const noLeaderElections = 3

// watchState is the member's watch hub.
type watchState struct {
	hub *watch.Hub
}

// initWatch creates the hub over the applier's store. Called by New.
func (s *Server) initWatch() error {
	cfg := watch.DefaultConfig()
	if s.cfg.WatchBufferEvents > 0 {
		cfg.BufferEvents = s.cfg.WatchBufferEvents
	}
	cfg.Logger = s.logger.With("component", "watch")
	st := s.applier.Store()
	hub, err := watch.New(cfg, st, st.Rev())
	if err != nil {
		return err
	}
	s.wt.hub = hub
	return nil
}

// notifyWatchers hands an applied command's events to the hub. Called on the
// raft goroutine before the proposer is woken, so a client that saw its
// write acknowledged and then watches from "now" on this member starts after
// it. Never blocks.
func (s *Server) notifyWatchers(res apply.Result) {
	if len(res.Events) > 0 {
		s.wt.hub.Notify(res.Rev, res.Events)
	}
}

// restoreWatchers tells the hub the store was replaced by a snapshot.
func (s *Server) restoreWatchers() {
	s.wt.hub.Restore(s.applier.Store().Rev())
}

// NewWatchStream opens a watch stream: a set of watchers one goroutine
// drains (see package watch). The caller must Close it.
func (s *Server) NewWatchStream() *watch.Stream { return s.wt.hub.NewStream() }

// WatchRev returns the last revision the watch hub has seen; CompactRev the
// store's compaction revision.
func (s *Server) WatchRev() int64   { return s.wt.hub.Rev() }
func (s *Server) CompactRev() int64 { return s.applier.Store().CompactRev() }

// WatchStats reports the number of watchers and how many catch up from
// history.
func (s *Server) WatchStats() (watchers, unsynced int) { return s.wt.hub.Stats() }

// ResponseHeader returns the header of an answer at revision rev.
func (s *Server) ResponseHeader(rev int64) Header { return s.header(rev) }

// WatchProgressNotifyInterval is the period of progress notifications for
// watchers that asked for them.
func (s *Server) WatchProgressNotifyInterval() time.Duration {
	if s.cfg.WatchProgressNotifyInterval > 0 {
		return s.cfg.WatchProgressNotifyInterval
	}
	return DefaultWatchProgressNotifyInterval
}

// WatchBatchInterval is the least time between the starts of two rounds of
// a watch stream that is not keeping up with the writes; 0 sends each round
// at once.
func (s *Server) WatchBatchInterval() time.Duration { return s.cfg.WatchBatchInterval }

// LeaderLossCheck returns how often a stream that requires a leader should
// check Leader, and after how many consecutive checks without one it must end
// (etcd: every election timeout, 3 times).
func (s *Server) LeaderLossCheck() (every time.Duration, times int) {
	return s.cfg.ElectionTimeout, noLeaderElections
}
