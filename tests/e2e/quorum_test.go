package e2e

import (
	"context"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// TestQuorumLossHasLeader kills two of three members. The survivor must
// serve the gRPC health service, answer serializable reads from its own
// state, fail requests marked "hasleader" fast with etcd's no-leader error
// once it has noticed (CheckQuorum), and refuse to acknowledge writes.
func TestQuorumLossHasLeader(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	et := c.Opts.ElectionTimeout
	c.WaitLeader(10 * et)
	if _, err := c.All().Put(context.Background(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	survivor := 0
	conn, err := grpc.NewClient(c.Endpoints()[survivor], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	cancel()
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check = %v, %v; want SERVING", hr, err)
	}

	// Let the survivor hold the value, then take quorum away.
	cl := c.Client(survivor)
	pollUntil(5*time.Second, func() bool {
		r, err := cl.Get(context.Background(), "k", clientv3.WithSerializable())
		return err == nil && len(r.Kvs) == 1
	})
	c.Kill(1)
	c.Kill(2)

	// Within a few election timeouts the survivor knows it has no leader:
	// requests carrying "hasleader" fail at once with etcd's no-leader
	// error. (The raw KV client is used because clientv3 retries
	// Unavailable reads until its deadline.)
	kv := pb.NewKVClient(conn)
	requireLeader := func(d time.Duration) (context.Context, context.CancelFunc) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), rpctypes.MetadataRequireLeaderKey, rpctypes.MetadataHasLeader)
		return context.WithTimeout(ctx, d)
	}
	var lastErr error
	ok := pollUntil(5*et+2*time.Second, func() bool {
		ctx, cancel := requireLeader(et)
		defer cancel()
		_, lastErr = kv.Range(ctx, &pb.RangeRequest{Key: []byte("k")})
		return lastErr != nil && lastErr.Error() == rpctypes.ErrGRPCNoLeader.Error()
	})
	if !ok {
		t.Fatalf("hasleader Range on a member without quorum: last error %v, want %v", lastErr, rpctypes.ErrGRPCNoLeader)
	}
	start := time.Now()
	ctx, cancel = requireLeader(5 * time.Second)
	_, err = kv.Range(ctx, &pb.RangeRequest{Key: []byte("k")})
	cancel()
	if err == nil || err.Error() != rpctypes.ErrGRPCNoLeader.Error() || time.Since(start) > et {
		t.Errorf("hasleader Range = %v after %v, want %v at once", err, time.Since(start), rpctypes.ErrGRPCNoLeader)
	}

	// Serializable reads still answer from local state.
	r, err := cl.Get(context.Background(), "k", clientv3.WithSerializable())
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v" {
		t.Errorf("serializable Get without quorum = %v, %v; want k=v", r, err)
	}
	// A write cannot be acknowledged without a quorum.
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	_, err = cl.Put(ctx, "k", "lost")
	cancel()
	if err == nil {
		t.Fatal("a write was acknowledged by a member without quorum")
	}
}
