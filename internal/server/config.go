package server

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Peer is one entry of the initial cluster: a member name and the URL other
// members reach it at.
type Peer struct {
	Name string
	URL  string // http://host:port
}

// Config describes one member. Fields left zero take the defaults of
// DefaultConfig where noted.
type Config struct {
	// Name is this member's name; it must appear in InitialCluster.
	Name string
	// DataDir holds member/wal and member/snap.
	DataDir string
	// InitialCluster lists every founding member (name and peer URL). It is
	// read only when the data directory holds no WAL yet.
	InitialCluster []Peer
	// ClusterState is "new" (bootstrap a cluster) or "existing" (join one
	// whose members already know this member).
	ClusterState string
	// ClusterToken is mixed into the cluster id so two clusters built from
	// the same member list stay distinct.
	ClusterToken string
	// ClientURLs are the URLs clients use to reach this member; they are
	// published to the replicated member table.
	ClientURLs []string
	// HeartbeatInterval is one raft tick; ElectionTimeout must be a multiple
	// of at least 5 ticks.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// SnapshotCount is the number of applied entries between snapshots.
	SnapshotCount uint64
	// SnapshotLogRatio: a snapshot also waits until the log since the last
	// one holds this fraction of its size, or its whole size up to
	// raftnode.DefaultSnapshotLogFloor, whichever is more (raftnode.Config;
	// 0: the default, negative: SnapshotCount alone). Not a flag; tests and
	// benchmarks set it.
	SnapshotLogRatio float64
	// SnapshotCatchUpEntries are kept in the log behind each snapshot so a
	// slightly slow follower catches up without a snapshot.
	SnapshotCatchUpEntries uint64
	// MaxRequestBytes bounds one encoded request (etcd: --max-request-bytes).
	MaxRequestBytes int
	// MaxTxnOps bounds the operations of one txn (etcd: --max-txn-ops).
	MaxTxnOps int
	// QuotaBackendBytes is the store size above which writes are refused
	// and the NOSPACE alarm raised (etcd: --quota-backend-bytes; 0 means
	// DefaultQuotaBackendBytes, negative means no quota). The size is
	// mvcc.Store.Size's estimate.
	QuotaBackendBytes int64
	// AutoCompaction makes the leader compact history automatically (etcd:
	// --auto-compaction-mode and --auto-compaction-retention; see
	// ParseAutoCompaction). The zero value is off.
	AutoCompaction AutoCompaction
	// StrictReconfigCheck refuses membership changes that could cost the
	// cluster its quorum (etcd: --strict-reconfig-check, default true).
	StrictReconfigCheck bool
	// AutoPromote makes the leader promote a learner as soon as it has
	// caught up (beyond etcd, where an operator promotes).
	AutoPromote bool
	// WatchProgressNotifyInterval is the period of progress notifications for
	// watchers that asked for them (etcd:
	// --experimental-watch-progress-notify-interval; 0 means 10 minutes).
	WatchProgressNotifyInterval time.Duration
	// WatchBatchInterval is the least time between the starts of two rounds
	// of responses of a watch stream that is not keeping up with the writes
	// (see the etcd front end's watch stream); 0 sends each round at once.
	WatchBatchInterval time.Duration
	// WatchBufferEvents bounds the events a watcher buffers for a slow
	// consumer before it falls back to catching up from history (0: the
	// watch package default). Tests shrink it so catch-up runs often.
	WatchBufferEvents int
	// WALSegmentBytes is the preallocated size of a WAL segment (0: the wal
	// package default). Tests shrink it so rollover runs often.
	WALSegmentBytes int64
	// PeerTLS, when non-nil, is the client side of TLS on links to other
	// members (etcd: --peer-cert-file, --peer-trusted-ca-file, ...). The
	// peer listener handed to Start is already a TLS listener then.
	PeerTLS *tls.Config
	// AuthToken selects the auth token provider (etcd: --auth-token):
	// "simple" (the default when empty) or
	// "jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m".
	AuthToken string
	// AuthTokenTTL is how long a simple token lives after its last use
	// (etcd: --auth-token-ttl; 0 means 300 s).
	AuthTokenTTL time.Duration
	// BcryptCost is the cost of stored password hashes (etcd: --bcrypt-cost;
	// 0 means bcrypt's default, 10).
	BcryptCost int
	// FaultInjection gives the member a fault plane (package faults): rules
	// installed through Faults() drop, delay, duplicate or partition the
	// raft messages it sends, pause its raft loop, skew its Clock (lease
	// expiry and auth token lifetimes; raft ticks stay real) and slow or
	// fail its FS (fsync and write, the WAL's and the snapshots'). New wraps
	// FS and Clock for that. Off by default: whoever reaches the admin API
	// could otherwise cut the cluster apart or stop the member.
	FaultInjection bool
	// Unsafe switches break one guarantee on purpose, so the checkers
	// (internal/sim, concord check) can be seen to catch it. Off by default;
	// a member with one on says so loudly in its log.
	//
	// UnsafeLocalReads serves linearizable reads from local state without a
	// ReadIndex round (stale reads on a partitioned member).
	UnsafeLocalReads bool
	// UnsafeNoFsync acknowledges writes without fsyncing the WAL (a power
	// loss loses acknowledged writes).
	UnsafeNoFsync bool
	// UnsafeLeaseExpiryWithoutQuorum lets the leader revoke expired leases
	// without first confirming it still leads (a deposed leader whose clock
	// runs fast revokes leases the new leader still honours).
	UnsafeLeaseExpiryWithoutQuorum bool
	// FS is the filesystem (vfs.Default in production).
	FS vfs.FS
	// Clock times lease expiry on this member (nil: the system clock).
	Clock Clock
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a fresh Config with etcd's defaults.
func DefaultConfig() Config {
	return Config{
		ClusterState:                "new",
		ClusterToken:                "concord-cluster",
		HeartbeatInterval:           100 * time.Millisecond,
		ElectionTimeout:             1000 * time.Millisecond,
		SnapshotCount:               10000,
		SnapshotCatchUpEntries:      5000,
		MaxRequestBytes:             1536 * 1024,
		MaxTxnOps:                   128,
		StrictReconfigCheck:         true,
		WatchProgressNotifyInterval: DefaultWatchProgressNotifyInterval,
		WatchBatchInterval:          DefaultWatchBatchInterval,
		FS:                          vfs.Default,
	}
}

// Validate reports the first problem with c, in terms of the flags a user set.
func (c Config) Validate() error {
	if c.Name == "" {
		return errors.New("server: member name is empty")
	}
	if c.DataDir == "" {
		return errors.New("server: data dir is empty")
	}
	if c.FS == nil {
		return errors.New("server: no filesystem")
	}
	switch c.ClusterState {
	case "new", "existing":
	default:
		return fmt.Errorf("server: initial cluster state %q is not \"new\" or \"existing\"", c.ClusterState)
	}
	if len(c.InitialCluster) == 0 {
		return errors.New("server: initial cluster is empty")
	}
	names := map[string]bool{}
	urls := map[string]bool{}
	found := false
	for _, p := range c.InitialCluster {
		if p.Name == "" {
			return errors.New("server: initial cluster has a member without a name")
		}
		if names[p.Name] {
			return fmt.Errorf("server: initial cluster names member %q twice", p.Name)
		}
		names[p.Name] = true
		if _, err := PeerAddr(p.URL); err != nil {
			return fmt.Errorf("server: initial cluster member %q: %w", p.Name, err)
		}
		if urls[p.URL] {
			return fmt.Errorf("server: initial cluster uses peer URL %q twice", p.URL)
		}
		urls[p.URL] = true
		if p.Name == c.Name {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("server: member %q is not in the initial cluster", c.Name)
	}
	if c.HeartbeatInterval <= 0 {
		return errors.New("server: heartbeat interval must be positive")
	}
	if c.ElectionTimeout < 5*c.HeartbeatInterval {
		return fmt.Errorf("server: election timeout %v must be at least 5 heartbeat intervals (%v)", c.ElectionTimeout, 5*c.HeartbeatInterval)
	}
	if c.SnapshotCount == 0 {
		return errors.New("server: snapshot count must be positive")
	}
	if c.MaxRequestBytes <= 0 {
		return errors.New("server: max request bytes must be positive")
	}
	if c.MaxTxnOps <= 0 {
		return errors.New("server: max txn ops must be positive")
	}
	if err := c.AutoCompaction.validate(); err != nil {
		return err
	}
	if c.WatchProgressNotifyInterval < 0 {
		return errors.New("server: watch progress notify interval must not be negative")
	}
	if c.WatchBatchInterval < 0 {
		return errors.New("server: watch batch interval must not be negative")
	}
	if c.WatchBufferEvents < 0 {
		return errors.New("server: watch buffer events must not be negative")
	}
	return nil
}

// PeerAddr returns the host:port of a peer URL such as http://127.0.0.1:2380
// or https://10.0.0.1:2380 (https: the link is TLS; see Config.PeerTLS).
func PeerAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bad peer URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("bad peer URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("bad peer URL %q: want http://host:port or https://host:port", raw)
	}
	return u.Host, nil
}

// ParseInitialCluster parses "name=http://host:port,name2=..." (https URLs
// too).
func ParseInitialCluster(s string) ([]Peer, error) {
	var peers []Peer
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("bad initial cluster entry %q: want name=http://host:port", part)
		}
		if _, err := PeerAddr(u); err != nil {
			return nil, err
		}
		peers = append(peers, Peer{Name: name, URL: u})
	}
	if len(peers) == 0 {
		return nil, errors.New("initial cluster is empty")
	}
	return peers, nil
}

// MemberID derives a member's id from its name, peer URL and the cluster
// token, so every founding member computes the same ids independently.
func MemberID(name, peerURL, token string) uint64 {
	h := sha256.Sum256([]byte(name + "\x00" + peerURL + "\x00" + token))
	id := binary.BigEndian.Uint64(h[:8])
	if id == 0 {
		id = 1 // raft reserves 0 for "none"
	}
	return id
}

// ClusterID derives the cluster id from the founding members' ids and the
// token.
func ClusterID(memberIDs []uint64, token string) uint64 {
	ids := append([]uint64(nil), memberIDs...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 0, 8*len(ids)+len(token))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	b = append(b, token...)
	h := sha256.Sum256(b)
	return binary.BigEndian.Uint64(h[:8])
}
