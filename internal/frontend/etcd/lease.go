package etcd

// The Lease service. Grant, Revoke and Leases are served by any member
// (raft forwards the proposals). Renewals (LeaseKeepAlive) and TTL queries
// (LeaseTimeToLive) are answered by the leader only: on another member the
// server returns a *server.NotLeaderError naming the leader's client URLs,
// and this file forwards the call there over gRPC, on one cached connection
// per leader URL. A TTL query goes as LeaseTimeToLive; renewals go in
// batches, as unary calls of an internal method (renew.go), not on a
// keepalive stream: clients such as etcd's benchmark open a stream per
// renewal (clientv3's KeepAliveOnce), and a forwarding stream per client
// stream cost a stream set-up on both members for every renewal. (etcd
// forwards each renewal as one request of its own to the leader's peer URL.)
// A forwarded call carries forwardedKey metadata, so a member that is no
// longer the leader answers it with "not leader" instead of forwarding it
// again; the member that forwarded retries until the new leader answers or
// forwardBudget runs out. As in etcd, a keepalive response carries the
// header of the member the client talks to, taken before the renewal.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/concord-db/concord/internal/server"
)

const (
	// forwardedKey marks a call one member forwarded to the leader.
	forwardedKey = "concord-lease-forwarded"
	// forwardBudget bounds how long one renewal or TTL query keeps looking
	// for a leader (elections included) before the client gets an error.
	forwardBudget = 5 * time.Second
	// forwardTimeout bounds one forwarded call.
	forwardTimeout = 3 * time.Second
	// retryDelay is the pause between attempts while there is no leader.
	retryDelay = 50 * time.Millisecond
)

type leaseService struct {
	pb.UnimplementedLeaseServer
	s        *server.Server
	conns    *leaderConns
	epochs   leaderEpochs
	renewals renewForwarder
}

func newLeaseService(s *server.Server, cfg Config) *leaseService {
	l := &leaseService{s: s, conns: &leaderConns{tls: cfg.MemberTLS, conns: make(map[string]*grpc.ClientConn)}}
	l.renewals = renewForwarder{call: l.callRenewBatch, lanes: make(map[renewLane]*renewBatch)}
	return l
}

// leaderConns caches one client connection per leader URL; members are few
// and the connections live as long as the process.
type leaderConns struct {
	tls   *tls.Config
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (c *leaderConns) get(rawURL string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[rawURL]; ok {
		return cc, nil
	}
	cc, err := dialMember(rawURL, c.tls)
	if err != nil {
		return nil, err
	}
	c.conns[rawURL] = cc
	return cc, nil
}

// leaderEpochs turns the server's leader-change channel into a context that
// ends when the leader changes, one per channel, so that a forwarded call
// gives up on a leader this member no longer follows without a goroutine of
// its own per call.
type leaderEpochs struct {
	mu      sync.Mutex
	changed <-chan struct{}
	ctx     context.Context
}

func (e *leaderEpochs) get(changed <-chan struct{}) context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.changed != changed {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-changed
			cancel()
		}()
		e.changed, e.ctx = changed, ctx
	}
	return e.ctx
}

// forwardCtx is the context of one call forwarded to the leader on behalf
// of a client whose token is token (see forwardContext): marked as
// forwarded, bounded by forwardTimeout, and cancelled when changed closes.
func (l *leaseService) forwardCtx(ctx context.Context, token string, changed <-chan struct{}) (context.Context, context.CancelFunc) {
	fctx, cancel := context.WithTimeout(forwardContext(ctx, token), forwardTimeout)
	stop := context.AfterFunc(l.epochs.get(changed), cancel)
	return fctx, func() {
		stop()
		cancel()
	}
}

func isForwarded(ctx context.Context) bool {
	return len(metadata.ValueFromIncomingContext(ctx, forwardedKey)) > 0
}

// forwardContext marks a call as forwarded and passes the client's token
// on, so the leader checks the permissions of the client, not of the member
// forwarding it. (An identity from a client certificate cannot be passed
// on: such clients get their TTL queries with keys answered only by the
// leader they are connected to.)
func forwardContext(ctx context.Context, token string) context.Context {
	if token == "" {
		return metadata.AppendToOutgoingContext(ctx, forwardedKey, "1")
	}
	return metadata.AppendToOutgoingContext(ctx, forwardedKey, "1", rpctypes.TokenFieldNameGRPC, token)
}

// leaderCall runs local (a leader-only server call) and, while it says
// another member leads, forward against that leader's client URL; while
// there is no leader it waits and retries, up to forwardBudget. forward gets
// a channel that closes when this member learns of another leader: it must
// then give up on the one it is talking to (it may be frozen or cut off).
func leaderCall(ctx context.Context, s *server.Server, local func() error, forward func(leaderURL string, changed <-chan struct{}) error) error {
	deadline := time.Now().Add(forwardBudget)
	for {
		changed := s.LeaderChanges()
		err := local()
		var nl *server.NotLeaderError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &nl) && isForwarded(ctx):
			return err // the member that forwarded retries
		case errors.As(err, &nl) && len(nl.ClientURLs) > 0:
			if err = forward(nl.ClientURLs[0], changed); err == nil {
				return nil
			}
		case errors.Is(err, server.ErrNotLeader), errors.Is(err, server.ErrNoLeader):
			// The leader has not published its URLs yet, or none is known.
		default:
			return err
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryDelay):
		}
	}
}

// Every lease call needs an authenticated caller when auth is on (etcd
// 3.6); revoking also needs WRITE on the lease's keys, checked at apply.

func (l *leaseService) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := l.s.RequireAuthenticated(ctx); err != nil {
		return nil, toGRPC(err)
	}
	resp, h, err := l.s.LeaseGrant(ctx, r.ID, r.TTL)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseGrantResponse{Header: header(h), ID: resp.Id, TTL: resp.Ttl}, nil
}

func (l *leaseService) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := l.s.RequireAuthenticated(ctx); err != nil {
		return nil, toGRPC(err)
	}
	h, err := l.s.LeaseRevoke(ctx, r.ID)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseRevokeResponse{Header: header(h)}, nil
}

func (l *leaseService) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := l.s.RequireAuthenticated(ctx); err != nil {
		return nil, toGRPC(err)
	}
	ids, h, err := l.s.LeaseLeases(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.LeaseLeasesResponse{Header: header(h), Leases: make([]*pb.LeaseStatus, len(ids))}
	for i, id := range ids {
		out.Leases[i] = &pb.LeaseStatus{ID: id}
	}
	return out, nil
}

func (l *leaseService) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := l.s.RequireAuthenticated(ctx); err != nil {
		return nil, toGRPC(err)
	}
	var out *pb.LeaseTimeToLiveResponse
	var hdr *pb.ResponseHeader
	err := leaderCall(ctx, l.s, func() error {
		st, h, err := l.s.LeaseTimeToLive(ctx, r.ID, r.Keys)
		if hdr == nil && h.MemberID != 0 {
			hdr = header(h)
		}
		// The keys are the keys' names: READ on each, as etcd checks.
		for _, k := range st.Keys {
			if err == nil {
				err = l.s.RequireRead(ctx, k, nil)
			}
		}
		if err == nil {
			out = &pb.LeaseTimeToLiveResponse{ID: st.ID, TTL: st.TTL, GrantedTTL: st.GrantedTTL, Keys: st.Keys}
		}
		return err
	}, func(leaderURL string, changed <-chan struct{}) error {
		cc, err := l.conns.get(leaderURL)
		if err != nil {
			return err
		}
		token, _ := tokenFromContext(ctx)
		fctx, cancel := l.forwardCtx(ctx, token, changed)
		defer cancel()
		resp, err := pb.NewLeaseClient(cc).LeaseTimeToLive(fctx, r)
		if err == nil {
			out = resp
		}
		return err
	})
	if err != nil {
		return nil, toGRPC(err)
	}
	out.Header = hdr
	return out, nil
}

// LeaseKeepAlive answers each {ID} with {header, ID, TTL}: TTL is the
// granted TTL, or 0 for an unknown or expired lease.
func (l *leaseService) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	if err := l.s.RequireAuthenticated(ctx); err != nil {
		return toGRPC(err)
	}
	token, _ := tokenFromContext(ctx)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &pb.LeaseKeepAliveResponse{ID: req.ID}
		err = leaderCall(ctx, l.s, func() error {
			ttl, h, err := l.s.LeaseRenew(ctx, req.ID)
			if resp.Header == nil && h.MemberID != 0 {
				resp.Header = header(h)
			}
			resp.TTL = ttl
			return err
		}, func(leaderURL string, changed <-chan struct{}) error {
			ttl, err := l.renewals.renew(ctx, renewLane{leaderURL, token}, changed, req.ID)
			resp.TTL = ttl
			return err
		})
		if err != nil {
			return toGRPC(err)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
