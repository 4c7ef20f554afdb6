package etcd

import (
	"context"
	"crypto/tls"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/concord-db/concord/internal/server"
)

// grpcOverheadBytes is allowed on top of the request limit for the gRPC
// envelope, as etcd does, so the server's own check (with etcd's error) is
// the one a client meets.
const grpcOverheadBytes = 512 * 1024

// Config tunes the gRPC front-end.
type Config struct {
	// MaxRequestBytes is the largest request accepted (etcd:
	// --max-request-bytes).
	MaxRequestBytes int
	// Creds, when non-nil, are the server's transport credentials. TLS on
	// the client port is terminated before the port is split between gRPC
	// and HTTP, so these expose the already-negotiated TLS state to gRPC
	// (for client certificate identities) rather than handshaking.
	Creds credentials.TransportCredentials
	// MemberTLS is the client side of TLS for reaching other members' https
	// client URLs (lease renewals forwarded to the leader).
	MemberTLS *tls.Config
}

// streamWorkers is the number of goroutines gRPC keeps to run calls on
// (grpc.NumStreamWorkers, experimental in grpc-go). Without them every call
// starts a fresh goroutine whose stack then grows, copy by copy, to the
// depth of gRPC plus a handler: runtime.copystack was 8% of a member's CPU
// under 100 clients' puts and 10-16% under serializable ranges. A worker
// keeps its grown stack from call to call. Handlers here block (a put waits
// for its commit, a watch stream for the client), so the pool is sized for
// concurrent calls, not cores; a call that finds every worker busy gets a
// goroutine of its own, as without the pool.
const streamWorkers = 128

// NewGRPCServer returns a gRPC server with etcd's KV, Cluster, Maintenance
// and health services registered over s.
func NewGRPCServer(s *server.Server, cfg Config) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes + grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		// clientv3 pings every 5 s at most when configured to; allow it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
		grpc.UnaryInterceptor(checkUnary(s)),
		grpc.StreamInterceptor(checkStream(s)),
		grpc.NumStreamWorkers(streamWorkers),
		// Experimental in grpc-go, like NumStreamWorkers: the proto codec
		// plus watch responses encoded without etcd's message types
		// (watchwire.go).
		grpc.ForceServerCodecV2(newCodec()),
	}
	if cfg.Creds != nil {
		opts = append(opts, grpc.Creds(cfg.Creds))
	}
	g := grpc.NewServer(opts...)
	g.RegisterService(kvServiceDesc(), &kvService{s: s})
	etcdserverpb.RegisterWatchServer(g, newWatchService(s, cfg))
	leases := newLeaseService(s, cfg)
	etcdserverpb.RegisterLeaseServer(g, leases)
	registerLeaseForward(g, leases)
	etcdserverpb.RegisterClusterServer(g, &clusterService{s: s})
	etcdserverpb.RegisterMaintenanceServer(g, &maintenanceService{s: s})
	etcdserverpb.RegisterAuthServer(g, &authService{s: s})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	return g
}

// requiresLeader reports whether the client asked to fail fast without a
// leader (clientv3.WithRequireLeader sets "hasleader: true").
//
// ValueFromIncomingContext copies one key's values; FromIncomingContext would
// copy every header of every call (7 allocations per Range).
func requiresLeader(ctx context.Context) bool {
	for _, v := range metadata.ValueFromIncomingContext(ctx, rpctypes.MetadataRequireLeaderKey) {
		if v == rpctypes.MetadataHasLeader {
			return true
		}
	}
	return false
}

// checkUnary runs what every unary call passes before its handler: a
// leader if the client requires one, a learner serving only what etcd's
// learners serve, then the caller's identity (auth.go). One interceptor, not
// a chain of three: gRPC's chain builds a closure per link and call.
func checkUnary(s *server.Server) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if requiresLeader(ctx) && s.Leader() == 0 {
			return nil, rpctypes.ErrGRPCNoLeader
		}
		if !supportedForLearner(req) && s.IsLearner() {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		if info.FullMethod != authenticateMethod {
			var err error
			if ctx, err = withSubject(ctx, s); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// checkStream is checkUnary for streams; a learner serves only snapshots.
func checkStream(s *server.Server) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		if requiresLeader(ctx) && s.Leader() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		if info.FullMethod != snapshotMethod && s.IsLearner() {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		ctx, err := withSubject(ctx, s)
		if err != nil {
			return err
		}
		return handler(srv, subjectStream{ServerStream: ss, ctx: ctx})
	}
}

func header(h server.Header) *etcdserverpb.ResponseHeader {
	return &etcdserverpb.ResponseHeader{ClusterId: h.ClusterID, MemberId: h.MemberID, Revision: h.Revision, RaftTerm: h.RaftTerm}
}
