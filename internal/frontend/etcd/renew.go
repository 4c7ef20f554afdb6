package etcd

// Renewals that reach a follower are forwarded to the leader in batches.
// Each (leader URL, client token) pair is a lane with at most one call in
// flight: a renewal that finds its lane idle is sent at once, alone, so an
// idle cluster adds no delay; renewals arriving while a call is in flight
// join the lane's next batch, which goes as one call when the current one
// returns. Under load a follower so makes one call per round trip to the
// leader instead of one per renewal, and the leader renews the batch under
// one lock (server.LeaseRenewMany). The token is part of the lane because
// the leader checks the client's authentication once per call. A batch
// holds at most one renewal per concurrent keepalive stream on this member
// (each stream waits for its answer before reading the next request), so
// its size is bounded by the streams, not by a constant.
//
// The call is an internal unary method whose request and response are
// google.protobuf.BytesValue: the lease IDs, and then the TTLs in the same
// order, as consecutive protobuf varints. A generated message would need a
// .proto and protoc for two lists of integers.

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The internal method a batch of renewals is forwarded with. Only members
// call it, but like every call on the client port it passes the auth
// interceptor and needs an authenticated caller: the forwarding member
// passes the client's token on.
const (
	leaseForwardService = "concord.internal.LeaseForward"
	renewBatchMethod    = "/" + leaseForwardService + "/RenewBatch"
)

// renewLane is what renewals must share to go in one call.
type renewLane struct {
	leaderURL string
	token     string // the client's auth token, "" if none
}

// renewBatch is the renewals of one lane sent in one call.
type renewBatch struct {
	lane    renewLane
	changed <-chan struct{} // closes when the leader changes
	ids     []int64
	// Set before done closes.
	ttls []int64
	err  error
	done chan struct{}
}

// renewForwarder batches the renewals this member forwards.
type renewForwarder struct {
	call func(*renewBatch) ([]int64, error)

	mu sync.Mutex
	// lanes holds the lanes with a call in flight, each with the batch
	// waiting to go next (nil while none is).
	lanes map[renewLane]*renewBatch
}

// renew forwards one renewal on lane and returns its TTL. It returns early
// with ctx's error if ctx ends first; the renewal may still be sent.
func (f *renewForwarder) renew(ctx context.Context, lane renewLane, changed <-chan struct{}, id int64) (int64, error) {
	f.mu.Lock()
	b, busy := f.lanes[lane]
	idle := !busy
	if b == nil {
		b = &renewBatch{lane: lane, changed: changed, done: make(chan struct{})}
		if !idle {
			f.lanes[lane] = b // the first to wait for the call in flight
		} else {
			f.lanes[lane] = nil // b goes now, alone
		}
	}
	i := len(b.ids)
	b.ids = append(b.ids, id)
	f.mu.Unlock()
	if idle {
		go f.run(b)
	}
	select {
	case <-b.done:
		if b.err != nil {
			return 0, b.err
		}
		return b.ttls[i], nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run sends b, answers its renewals, and hands the lane to the batch that
// gathered meanwhile or marks the lane idle. Each batch runs on a goroutine
// of its own, so its callers can give up on it when their streams end.
func (f *renewForwarder) run(b *renewBatch) {
	ttls, err := f.call(b)
	if err == nil && len(ttls) != len(b.ids) {
		err = status.Errorf(codes.Internal, "concord: leader answered %d renewals with %d TTLs", len(b.ids), len(ttls))
	}
	b.ttls, b.err = ttls, err
	close(b.done)

	f.mu.Lock()
	next := f.lanes[b.lane]
	if next == nil {
		delete(f.lanes, b.lane)
	} else {
		f.lanes[b.lane] = nil
	}
	f.mu.Unlock()
	if next != nil {
		go f.run(next)
	}
}

// callRenewBatch is the renewForwarder's call: b as one RenewBatch call to
// the leader. It gives up when the leader changes or after forwardTimeout,
// whether it is still connecting (a frozen leader accepts TCP connections
// but never completes the HTTP/2 handshake) or waiting for the answer.
func (l *leaseService) callRenewBatch(b *renewBatch) ([]int64, error) {
	cc, err := l.conns.get(b.lane.leaderURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := l.forwardCtx(context.Background(), b.lane.token, b.changed)
	defer cancel()
	resp := new(wrapperspb.BytesValue)
	if err := cc.Invoke(ctx, renewBatchMethod, wrapperspb.Bytes(appendVarints(nil, b.ids)), resp); err != nil {
		return nil, err
	}
	ttls, err := decodeVarints(resp.GetValue())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "concord: renewal batch answer: %v", err)
	}
	return ttls, nil
}

// registerLeaseForward registers renewBatchMethod, served by l, on g.
func registerLeaseForward(g *grpc.Server, l *leaseService) {
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: leaseForwardService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "RenewBatch",
			Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				req := new(wrapperspb.BytesValue)
				if err := dec(req); err != nil {
					return nil, err
				}
				if icpt == nil {
					return l.renewBatchForwarded(ctx, req)
				}
				info := &grpc.UnaryServerInfo{Server: srv, FullMethod: renewBatchMethod}
				return icpt(ctx, req, info, func(ctx context.Context, r any) (any, error) {
					return l.renewBatchForwarded(ctx, r.(*wrapperspb.BytesValue))
				})
			},
		}},
	}, l)
}

// renewBatchForwarded answers a batch another member forwarded. Only the
// leader renews; any other member says it is not the leader, and the member
// that forwarded looks for the leader again.
func (l *leaseService) renewBatchForwarded(ctx context.Context, req *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	if err := l.s.RequireAuthenticated(ctx); err != nil {
		return nil, toGRPC(err)
	}
	ids, err := decodeVarints(req.GetValue())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "concord: renewal batch: %v", err)
	}
	ttls, _, err := l.s.LeaseRenewMany(ctx, ids)
	if err != nil {
		return nil, toGRPC(err)
	}
	return wrapperspb.Bytes(appendVarints(make([]byte, 0, 2*len(ttls)), ttls)), nil
}

// appendVarints appends vs to b as protobuf varints (an int64 as its two's
// complement, as protobuf's int64).
func appendVarints(b []byte, vs []int64) []byte {
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}

var errBadVarint = errors.New("malformed varint")

// decodeVarints reads what appendVarints wrote.
func decodeVarints(b []byte) ([]int64, error) {
	var vs []int64
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, errBadVarint
		}
		vs = append(vs, int64(v))
		b = b[n:]
	}
	return vs, nil
}
