package main

// A bare etcd v3 gRPC client for the measurements a load tool cannot take:
// when exactly a put was acknowledged (the write gap after kill -9), when a
// restarted member first serves (restart to ready), which member leads, and
// how many keys a load left. It speaks the generated etcdserverpb stubs,
// without clientv3, so that no client-side balancing or retry stands between
// a request and the member it was sent to: each rpcMember is one member's
// client URL, nothing else.

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// rpcMember is a connection to one member's client URL.
type rpcMember struct {
	ep   string
	conn *grpc.ClientConn
	kv   pb.KVClient
	mt   pb.MaintenanceClient
}

// dialMembers opens one connection per endpoint (plain http endpoints
// "127.0.0.1:port" only). Reconnection backs off from 10 ms to 100 ms at
// most, instead of gRPC's default of 1 s up to 2 min, so a member that comes
// back is seen within 100 ms, the same for every system.
func dialMembers(eps []string) ([]*rpcMember, func(), error) {
	var ms []*rpcMember
	closeAll := func() {
		for _, m := range ms {
			m.conn.Close()
		}
	}
	for _, ep := range eps {
		conn, err := grpc.NewClient("passthrough:///"+ep,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
				MinConnectTimeout: time.Second,
			}))
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("bench: dial %s: %w", ep, err)
		}
		ms = append(ms, &rpcMember{ep: ep, conn: conn, kv: pb.NewKVClient(conn), mt: pb.NewMaintenanceClient(conn)})
	}
	return ms, closeAll, nil
}

// put writes key through this member, within timeout.
func (m *rpcMember) put(ctx context.Context, key, val []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := m.kv.Put(ctx, &pb.PutRequest{Key: key, Value: val})
	return err
}

// count is a linearizable count-only range over [key, end) through this
// member.
func (m *rpcMember) count(ctx context.Context, key, end []byte, timeout time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := m.kv.Range(ctx, &pb.RangeRequest{Key: key, RangeEnd: end, CountOnly: true})
	if err != nil {
		return 0, err
	}
	return r.Count, nil
}

// memberStatus is one member's answer to Maintenance.Status.
type memberStatus struct {
	id, leader uint64
	err        error
}

// pickLeader returns the index of the member that reports itself as leader,
// provided every member that answered names that same leader (right after
// an election, members may briefly disagree).
func pickLeader(st []memberStatus) (int, bool) {
	idx, leader := -1, uint64(0)
	for i, s := range st {
		if s.err != nil {
			continue
		}
		if s.leader == 0 || (leader != 0 && s.leader != leader) {
			return -1, false
		}
		leader = s.leader
		if s.id == s.leader {
			idx = i
		}
	}
	return idx, idx >= 0
}

var errNoAgreedLeader = errors.New("bench: the members do not agree on a leader")

// findLeader polls every member's status until they agree on a leader that
// answered, or timeout passes.
func findLeader(ctx context.Context, ms []*rpcMember, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		st := make([]memberStatus, len(ms))
		for i, m := range ms {
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			r, err := m.mt.Status(cctx, &pb.StatusRequest{})
			cancel()
			st[i].err = err
			if err == nil && r.Header != nil {
				st[i].id, st[i].leader = r.Header.MemberId, r.Leader
			}
		}
		if i, ok := pickLeader(st); ok {
			return i, nil
		}
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("%w after %v", errNoAgreedLeader, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readyKey is the key the readiness probe writes.
var readyKey = []byte("bench-ready")

// serves reports whether the member answers, through its own client URL, a
// linearizable range and then a put, each within a second.
func (m *rpcMember) serves(ctx context.Context) error {
	if _, err := m.count(ctx, readyKey, nil, time.Second); err != nil {
		return fmt.Errorf("range: %w", err)
	}
	if err := m.put(ctx, readyKey, []byte("x"), time.Second); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	return nil
}

// pollInterval is how often the readiness probe tries again.
const pollInterval = 10 * time.Millisecond

// waitServes polls m.serves every pollInterval until it succeeds (returning
// the moment it did) or timeout passes.
func (m *rpcMember) waitServes(ctx context.Context, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		err := m.serves(ctx)
		if err == nil {
			return time.Now(), nil
		}
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("bench: %s does not serve after %v: %w", m.ep, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// waitAllServe polls every member at once and returns when each has
// served: the moment the last one did.
func waitAllServe(ctx context.Context, ms []*rpcMember, timeout time.Duration) (time.Time, error) {
	type res struct {
		at  time.Time
		err error
	}
	ch := make(chan res, len(ms))
	for _, m := range ms {
		go func() {
			at, err := m.waitServes(ctx, timeout)
			ch <- res{at, err}
		}()
	}
	var last time.Time
	var errs []error
	for range ms {
		r := <-ch
		if r.err != nil {
			errs = append(errs, r.err)
		} else if r.at.After(last) {
			last = r.at
		}
	}
	return last, errors.Join(errs...)
}
