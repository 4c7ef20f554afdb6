package etcd

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/concord-db/concord/internal/server"
)

// startMember starts one member on an in-memory file system with etcd's
// gRPC services on a loopback port, and returns a KV client over one
// connection to it. Everything stops at the test's end.
func startMember(b testing.TB) pb.KVClient {
	b.Helper()
	cfg := server.DefaultConfig()
	cfg.Name = "solo"
	cfg.DataDir = "data"
	cfg.InitialCluster = []server.Peer{{Name: "solo", URL: "http://127.0.0.1:1"}}
	cfg.HeartbeatInterval = 10 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.FS = vfs.NewMem()
	s, err := server.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	peerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(peerLn); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	for deadline := time.Now().Add(10 * time.Second); !s.Ready(); {
		if time.Now().After(deadline) {
			b.Fatal("member not ready after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := NewGRPCServer(s, Config{MaxRequestBytes: 1 << 20})
	go g.Serve(ln)
	b.Cleanup(g.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return pb.NewKVClient(cc)
}

// BenchmarkGRPCRange is a serializable one-key Range through gRPC on
// loopback from 100 concurrent callers on one connection, the shape of the
// harness's range workload at one member: client and server share the
// CPU, so ns/op and allocs/op count both sides.
func BenchmarkGRPCRange(b *testing.B) {
	kv := startMember(b)
	ctx := context.Background()
	if _, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("foo"), Value: make([]byte, 256)}); err != nil {
		b.Fatal(err)
	}
	req := &pb.RangeRequest{Key: []byte("foo"), Serializable: true}
	b.ReportAllocs()
	b.SetParallelism(50) // 100 callers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			resp, err := kv.Range(ctx, req)
			if err != nil {
				b.Error(err)
				return
			}
			if len(resp.Kvs) != 1 {
				b.Errorf("got %d keys", len(resp.Kvs))
				return
			}
		}
	})
}

// BenchmarkGRPCPut is a Put of 8-byte keys and 256-byte values through
// gRPC from 100 concurrent callers on one connection; the member's WAL is
// in memory, so this is the request path without the disk.
func BenchmarkGRPCPut(b *testing.B) {
	kv := startMember(b)
	ctx := context.Background()
	val := make([]byte, 256)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(50)
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			key := []byte(fmt.Sprintf("k%07d", n.Add(1)%100000))
			if _, err := kv.Put(ctx, &pb.PutRequest{Key: key, Value: val}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
