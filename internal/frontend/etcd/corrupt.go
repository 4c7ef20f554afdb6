package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/server"
)

// CorruptCheckConfig configures the leader's periodic cross-member hash
// check (etcd: --experimental-corrupt-check-time).
type CorruptCheckConfig struct {
	// Interval between checks; must be positive.
	Interval time.Duration
	// Timeout bounds each member's HashKV call (0: 5s).
	Timeout time.Duration
	// TLS is the client side of TLS for members' https client URLs.
	TLS *tls.Config
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Validate reports the first problem with c.
func (c CorruptCheckConfig) Validate() error {
	if c.Interval <= 0 {
		return errors.New("etcd: corrupt check interval must be positive")
	}
	if c.Timeout < 0 {
		return errors.New("etcd: corrupt check timeout must not be negative")
	}
	return nil
}

// CorruptChecker runs, on whichever member leads, a periodic comparison of
// HashKV at one revision across every member, reached over the client URLs
// of the replicated member table, and raises the CORRUPT alarm for each
// member whose hash differs from the leader's at the same compaction
// revision. It lives in the front-end because it needs a gRPC client; the
// server package knows nothing of it.
//
// Concurrency: one goroutine owned by the checker; Close stops it and
// waits. CheckOnce may be called from any goroutine.
type CorruptChecker struct {
	s      *server.Server
	cfg    CorruptCheckConfig
	logger *slog.Logger

	mu      sync.Mutex // guards conns, token, tokenAt
	conns   map[string]*grpc.ClientConn
	token   string // system root token, when auth is on
	tokenAt time.Time

	stop chan struct{}
	done chan struct{}
}

// StartCorruptChecker starts the periodic check over s.
func StartCorruptChecker(s *server.Server, cfg CorruptCheckConfig) (*CorruptChecker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &CorruptChecker{
		s: s, cfg: cfg, logger: logger,
		conns: make(map[string]*grpc.ClientConn),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go c.run()
	return c, nil
}

func (c *CorruptChecker) run() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Interval+c.cfg.Timeout)
			go func() {
				select {
				case <-c.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			if _, err := c.CheckOnce(ctx); err != nil {
				c.logger.Warn("corruption check failed", "err", err)
			}
			cancel()
		}
	}
}

// Close stops the checker and closes its connections.
func (c *CorruptChecker) Close() {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	for u, cc := range c.conns {
		cc.Close()
		delete(c.conns, u)
	}
}

// Mismatch is one member whose hash differs from the leader's.
type Mismatch struct {
	MemberID   uint64
	Revision   int64
	Hash, Want uint32
}

// CheckOnce runs one check when this member leads (otherwise it does
// nothing) and returns the members found to differ, for each of which the
// CORRUPT alarm was raised. Members that have not applied the revision yet,
// compacted differently, or could not be reached are skipped this round.
func (c *CorruptChecker) CheckOnce(ctx context.Context) ([]Mismatch, error) {
	if !c.s.IsLeader() {
		return nil, nil
	}
	rev := c.s.Status().Revision
	want, compactRev, _, err := c.s.Hash(rev)
	if err != nil {
		return nil, err
	}
	members, _, err := c.s.Members(ctx, false)
	if err != nil {
		return nil, err
	}
	var peers []peerHash
	for _, m := range members {
		if m.GetId() == c.s.ID() || len(m.GetClientUrls()) == 0 {
			continue
		}
		resp, err := c.hashKV(ctx, m.GetClientUrls()[0], rev)
		if err != nil {
			c.logger.Debug("corruption check: member skipped", "member", fmt.Sprintf("%x", m.GetId()), "err", err)
			continue
		}
		peers = append(peers, peerHash{id: m.GetId(), hash: resp.GetHash(), compactRev: resp.GetCompactRevision()})
	}
	out := mismatches(rev, want, compactRev, peers)
	if len(out) == 0 {
		c.logger.Debug("corruption check: hashes agree", "revision", rev, "members-checked", len(peers))
	}
	for _, mm := range out {
		c.logger.Error("corruption check: member's hash differs from the leader's; raising CORRUPT",
			"member", fmt.Sprintf("%x", mm.MemberID), "revision", rev, "hash", mm.Hash, "leader-hash", want)
		if _, _, err := c.s.Alarm(ctx, &command.AlarmRequest{
			Action: command.AlarmRequest_ACTIVATE, MemberId: mm.MemberID, Alarm: command.AlarmRequest_CORRUPT,
		}); err != nil {
			return out, fmt.Errorf("raising CORRUPT for %x: %w", mm.MemberID, err)
		}
	}
	return out, nil
}

// peerHash is one member's HashKV answer at the checked revision.
type peerHash struct {
	id         uint64
	hash       uint32
	compactRev int64
}

// mismatches returns the members whose hash at rev differs from the
// leader's. Only hashes taken over the same history compare: a member that
// compacted differently (a compaction applied between the two hashes) is
// skipped, as etcd does.
func mismatches(rev int64, want uint32, compactRev int64, peers []peerHash) []Mismatch {
	var out []Mismatch
	for _, p := range peers {
		if p.compactRev == compactRev && p.hash != want {
			out = append(out, Mismatch{MemberID: p.id, Revision: rev, Hash: p.hash, Want: want})
		}
	}
	return out
}

func (c *CorruptChecker) hashKV(ctx context.Context, clientURL string, rev int64) (*etcdserverpb.HashKVResponse, error) {
	cc, err := c.conn(clientURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if c.s.AuthEnabled() {
		// HashKV is root's: ask as this member's system root login.
		tok, err := c.systemToken(ctx)
		if err != nil {
			return nil, err
		}
		ctx = metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, tok)
	}
	resp, err := etcdserverpb.NewMaintenanceClient(cc).HashKV(ctx, &etcdserverpb.HashKVRequest{Revision: rev})
	if errors.Is(err, rpctypes.ErrGRPCInvalidAuthToken) || errors.Is(err, rpctypes.ErrGRPCAuthOldRevision) {
		c.mu.Lock()
		c.token = "" // mint a fresh one next time
		c.mu.Unlock()
	}
	return resp, err
}

// systemToken returns the cached system token, minting one when there is
// none or it is older than half the shortest token lifetime.
func (c *CorruptChecker) systemToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok, minted := c.token, c.tokenAt
	c.mu.Unlock()
	if tok != "" && time.Since(minted) < tokenRefresh {
		return tok, nil
	}
	tok, err := c.s.SystemToken(ctx)
	if err != nil {
		return "", fmt.Errorf("system login: %w", err)
	}
	c.mu.Lock()
	c.token, c.tokenAt = tok, time.Now()
	c.mu.Unlock()
	return tok, nil
}

// tokenRefresh is well inside the default simple token TTL (300 s) and JWT
// lifetime (5 m), so a cached token is rarely found dead.
const tokenRefresh = time.Minute

// conn returns a cached client connection to a member's client URL.
func (c *CorruptChecker) conn(clientURL string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[clientURL]; ok {
		return cc, nil
	}
	cc, err := dialMember(clientURL, c.cfg.TLS)
	if err != nil {
		return nil, err
	}
	c.conns[clientURL] = cc
	return cc, nil
}
