package transport

import (
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// countingHandler counts deliveries and wakes the benchmark as they land.
type countingHandler struct {
	n    atomic.Int64
	wake chan struct{}
}

func (h *countingHandler) Process(*raftpb.Message) {
	h.n.Add(1)
	select {
	case h.wake <- struct{}{}:
	default:
	}
}
func (h *countingHandler) ReportUnreachable(uint64)    {}
func (h *countingHandler) ReportSnapshot(uint64, bool) {}
func (h *countingHandler) ReportDown(uint64)           {}

// BenchmarkSendBatch measures MsgApp throughput over loopback: one 256-byte
// entry per message, handed to Send in batches of 64, with at most half a
// queue in flight so that nothing is dropped.
func BenchmarkSendBatch(b *testing.B) {
	const (
		batchSize = 64
		queueSize = 4096
		window    = queueSize / 2
	)
	newTr := func(id uint64, h Handler) (*Transport, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		tr, err := New(Config{ID: id, ClusterID: 1, QueueSize: queueSize, Logger: slog.New(slog.DiscardHandler)}, h)
		if err != nil {
			b.Fatal(err)
		}
		tr.Serve(ln)
		b.Cleanup(func() { tr.Close() })
		return tr, ln.Addr().String()
	}
	recv := &countingHandler{wake: make(chan struct{}, 1)}
	sender, _ := newTr(1, &countingHandler{wake: make(chan struct{}, 1)})
	_, addr := newTr(2, recv)
	sender.AddPeer(2, addr)

	// Build a pool of messages up front: the benchmark measures the
	// transport, not message construction. Resending the same pointers is
	// fine because neither side modifies them.
	pool := make([]*raftpb.Message, batchSize)
	for i := range pool {
		pool[i] = appMsg(1, 2, uint64(i), make([]byte, 256))
	}
	// Warm up: the stream must be up before timing starts.
	sender.Send(pool[:1])
	for recv.n.Load() < 1 {
		<-recv.wake
	}
	recv.n.Store(0)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for sent < b.N {
		k := min(batchSize, b.N-sent)
		for int64(sent)-recv.n.Load() > window {
			<-recv.wake
		}
		sender.Send(pool[:k])
		sent += k
	}
	for recv.n.Load() < int64(b.N) {
		select {
		case <-recv.wake:
		case <-time.After(waitLimit):
			s, _ := sender.PeerStatus(2)
			b.Fatalf("received %d of %d; sender %+v", recv.n.Load(), b.N, s)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	if s, _ := sender.PeerStatus(2); s.Batches > 0 {
		b.ReportMetric(float64(s.Sent)/float64(s.Batches), "msgs/batch")
	}
}
