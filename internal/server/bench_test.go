package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/command"
)

// BenchmarkPutSequential measures one member's write path without gRPC: a
// Put waits for its WAL fsync and apply before the next starts.
func BenchmarkPutSequential(b *testing.B) {
	cfg := testConfig(b, vfs.Default)
	cfg.DataDir = b.TempDir()
	cfg.SnapshotCount = 10000
	cfg.WALSegmentBytes = 0
	s := startTestServer(b, cfg)
	defer s.Stop()
	val := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Put(context.Background(), &command.PutRequest{Key: []byte(fmt.Sprintf("k%07d", i)), Value: val}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRangeLinearizable measures a linearizable single-key read
// (ReadIndex round + local read) on one member.
func BenchmarkRangeLinearizable(b *testing.B) {
	cfg := testConfig(b, vfs.NewMem())
	s := startTestServer(b, cfg)
	defer s.Stop()
	if _, _, err := s.Put(context.Background(), &command.PutRequest{Key: []byte("foo"), Value: make([]byte, 256)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Range(context.Background(), &command.RangeRequest{Key: []byte("foo")}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutConcurrent measures group commit: 100 writers share each
// Ready's fsync.
func BenchmarkPutConcurrent(b *testing.B) {
	cfg := testConfig(b, vfs.Default)
	cfg.DataDir = b.TempDir()
	cfg.SnapshotCount = 100000
	cfg.WALSegmentBytes = 0
	s := startTestServer(b, cfg)
	defer s.Stop()
	val := make([]byte, 256)
	b.ReportAllocs()
	b.SetParallelism(50)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := []byte(fmt.Sprintf("k%07d", n.Add(1)))
			if _, _, err := s.Put(context.Background(), &command.PutRequest{Key: key, Value: val}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPutConcurrentAuth is BenchmarkPutConcurrent with auth on and a
// non-root user whose role grants every key: each put resolves its simple
// token (as the front-end does per request), is checked before proposing
// and again at apply. Compare with BenchmarkPutConcurrent in the same run.
func BenchmarkPutConcurrentAuth(b *testing.B) {
	cfg := testConfig(b, vfs.Default)
	cfg.DataDir = b.TempDir()
	cfg.SnapshotCount = 100000
	cfg.WALSegmentBytes = 0
	cfg.BcryptCost = 4
	s := startTestServer(b, cfg)
	defer s.Stop()
	bg := context.Background()
	for _, step := range []func() (Header, error){
		func() (Header, error) { return s.UserAdd(bg, "root", "pw", false) },
		func() (Header, error) { return s.UserGrantRole(bg, "root", "root") },
		func() (Header, error) { return s.RoleAdd(bg, "rw") },
		func() (Header, error) {
			return s.RoleGrantPermission(bg, "rw", &command.Permission{PermType: command.Permission_READWRITE, Key: []byte{0}, RangeEnd: []byte{0}})
		},
		func() (Header, error) { return s.UserAdd(bg, "u", "pw", false) },
		func() (Header, error) { return s.UserGrantRole(bg, "u", "rw") },
		func() (Header, error) { return s.AuthEnable(bg) },
	} {
		if _, err := step(); err != nil {
			b.Fatal(err)
		}
	}
	tok, _, err := s.Authenticate(bg, "u", "pw")
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 256)
	b.ReportAllocs()
	b.SetParallelism(50)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sub, err := s.SubjectFromToken(bg, tok)
			if err != nil {
				b.Error(err)
				return
			}
			key := []byte(fmt.Sprintf("k%07d", n.Add(1)))
			if _, _, err := s.Put(WithSubject(bg, sub), &command.PutRequest{Key: key, Value: val}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
