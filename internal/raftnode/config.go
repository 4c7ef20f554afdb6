package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults applied to zero-valued Config fields.
const (
	DefaultElectionTicks          = 10
	DefaultHeartbeatTicks         = 1
	DefaultSnapshotCount          = 10000
	DefaultSnapshotCatchUpEntries = 5000
	DefaultMemoryLogEntries       = 5000
	DefaultSnapshotLogRatio       = 0.25
	DefaultSnapshotLogFloor       = 64 << 20
	DefaultMaxSizePerMsg          = 1 << 20
	DefaultMaxInflightMsgs        = 512
	DefaultTickInterval           = 100 * time.Millisecond
)

// Config configures a Core. Zero-valued fields take the defaults above, so a
// Config with only ID set is valid.
type Config struct {
	// ID is this member's raft id: non-zero and unique for all time (a
	// removed member's id is never reused).
	ID uint64
	// ElectionTicks is the election timeout in ticks; it must exceed
	// HeartbeatTicks. raft randomises the real timeout in [E, 2E).
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks.
	HeartbeatTicks int
	// SnapshotCount: a snapshot is taken once this many entries were applied
	// since the last one (and SnapshotLogRatio agrees).
	SnapshotCount uint64
	// SnapshotLogRatio makes a snapshot also wait until the entries applied
	// since the last one hold at least this fraction of that snapshot's
	// size in bytes (0: DefaultSnapshotLogRatio; negative: SnapshotCount
	// alone decides). A snapshot is the whole state, not a delta: with a
	// fixed entry count, a store of millions of keys would be rewritten
	// every SnapshotCount small writes, and loading it would cost time
	// quadratic in its size. The ratio bounds the bytes written for
	// snapshots to a constant multiple of the bytes written to the log,
	// and the log kept on disk to that fraction of the state (in memory
	// too when the Storage is not a LogReader).
	SnapshotLogRatio float64
	// SnapshotLogFloor lets the log since the last snapshot grow to the
	// snapshot's own size, up to this many bytes, before the ratio is
	// consulted (0: DefaultSnapshotLogFloor; ignored when the ratio is
	// negative). A state of tens of megabytes under steady writes would
	// otherwise be serialized whenever a quarter of it had been rewritten:
	// every couple of seconds, a tenth of a member's CPU, where keeping
	// that much more log costs only memory bounded by the floor. Once the
	// ratio's share of the state exceeds the floor, the ratio alone decides.
	SnapshotLogFloor uint64
	// SnapshotCatchUpEntries entries are kept in the in-memory log behind a
	// snapshot so a slightly slow follower catches up with MsgApp instead of
	// a whole snapshot.
	SnapshotCatchUpEntries uint64
	// MemoryLogEntries is how many applied entries the in-memory log keeps
	// when the Storage can read older ones back (LogReader); older entries
	// are read from storage when raft needs them, which is only to catch a
	// lagging member up.
	MemoryLogEntries uint64
	// MaxSizePerMsg bounds the bytes of entries in one MsgApp (and the bytes
	// of committed entries handed to apply in one Ready).
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds unacknowledged MsgApp per follower.
	MaxInflightMsgs int
	// MaxUncommittedEntriesSize bounds the leader's uncommitted tail in
	// bytes; proposals beyond it are dropped. 0 means unlimited.
	MaxUncommittedEntriesSize uint64
	// Logger receives raft's and the core's logs; nil discards them.
	Logger *slog.Logger
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.ElectionTicks == 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.SnapshotLogRatio == 0 {
		c.SnapshotLogRatio = DefaultSnapshotLogRatio
	}
	if c.SnapshotLogFloor == 0 {
		c.SnapshotLogFloor = DefaultSnapshotLogFloor
	}
	if c.SnapshotCatchUpEntries == 0 {
		c.SnapshotCatchUpEntries = DefaultSnapshotCatchUpEntries
	}
	if c.MemoryLogEntries == 0 {
		c.MemoryLogEntries = DefaultMemoryLogEntries
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = DefaultMaxSizePerMsg
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("raftnode: invalid config")

// Validate reports whether c (after defaults) can start a Core. raft itself
// panics on a bad config; Validate catches every case it would panic on.
func (c Config) Validate() error {
	d := c.withDefaults()
	switch {
	case d.ID == 0:
		return fmt.Errorf("%w: ID must be non-zero", ErrInvalidConfig)
	case d.ID >= math.MaxUint64-1:
		// raft reserves the two highest ids for its local storage threads.
		return fmt.Errorf("%w: ID %d is reserved by raft", ErrInvalidConfig, d.ID)
	case d.HeartbeatTicks < 0:
		return fmt.Errorf("%w: HeartbeatTicks %d < 0", ErrInvalidConfig, d.HeartbeatTicks)
	case d.ElectionTicks <= d.HeartbeatTicks:
		return fmt.Errorf("%w: ElectionTicks %d must exceed HeartbeatTicks %d", ErrInvalidConfig, d.ElectionTicks, d.HeartbeatTicks)
	case d.MaxInflightMsgs < 0:
		return fmt.Errorf("%w: MaxInflightMsgs %d < 0", ErrInvalidConfig, d.MaxInflightMsgs)
	}
	return nil
}

// NodeConfig configures a Node: the Core plus the real clock that ticks it.
type NodeConfig struct {
	Core Config
	// TickInterval is the wall-clock length of one tick, i.e. the heartbeat
	// interval when Core.HeartbeatTicks is 1. Default 100ms.
	TickInterval time.Duration
	// Logger is used by the shell, and by the core when Core.Logger is nil.
	Logger *slog.Logger
}

func (c NodeConfig) withDefaults() NodeConfig {
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.Logger == nil {
		c.Logger = c.Core.Logger
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Core.Logger == nil {
		c.Core.Logger = c.Logger
	}
	c.Core = c.Core.withDefaults()
	return c
}

// Validate reports whether c (after defaults) can start a Node.
func (c NodeConfig) Validate() error {
	if c.TickInterval < 0 {
		return fmt.Errorf("%w: TickInterval %v < 0", ErrInvalidConfig, c.TickInterval)
	}
	return c.Core.Validate()
}
