package transport

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// memberHandler is a recorder that also answers requests and knows removed
// members.
type memberHandler struct {
	*recorder
	mu        sync.Mutex
	removed   map[uint64]bool
	removedBy chan uint64
}

func (h *memberHandler) ServeRequest(_ context.Context, req []byte) ([]byte, error) {
	if string(req) == "fail" {
		return nil, errors.New("server: asked to fail")
	}
	return append([]byte("echo:"), req...), nil
}

func (h *memberHandler) IsRemoved(id uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.removed[id]
}

func (h *memberHandler) ReportRemoved(by uint64) {
	select {
	case h.removedBy <- by:
	default:
	}
}

func (h *memberHandler) remove(id uint64) {
	h.mu.Lock()
	h.removed[id] = true
	h.mu.Unlock()
}

func startHandled(t *testing.T, id uint64) (*Transport, *memberHandler, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &memberHandler{recorder: newRecorder(), removed: map[uint64]bool{}, removedBy: make(chan uint64, 16)}
	tr, err := New(Config{
		ID: id, ClusterID: 0xC0C0, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	tr.Serve(ln)
	t.Cleanup(func() { tr.Close() })
	return tr, h, ln.Addr().String()
}

func TestRequest(t *testing.T) {
	_, _, addr := startHandled(t, 1)
	plain := startMember(t, 2) // its Handler answers no requests
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	tests := []struct {
		name      string
		addr      string
		clusterID uint64
		body      string
		want      string
		wantErr   string
	}{
		{"answered", addr, 0xC0C0, "hi", "echo:hi", ""},
		{"unknown cluster id", addr, 0, "x", "echo:x", ""},
		{"empty body", addr, 0, "", "echo:", ""},
		{"handler error", addr, 0, "fail", "", "server: asked to fail"},
		{"other cluster", addr, 0xBAD, "x", "", "cluster id mismatch"},
		{"no request handler", plain.addr, 0, "x", "", "answers no requests"},
	}
	for _, tt := range tests {
		got, err := Request(ctx, tt.addr, nil, tt.clusterID, []byte(tt.body))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Request(%s) = %q, %v; want error containing %q", tt.name, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("Request(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	var re *RemoteError
	if _, err := Request(ctx, addr, nil, 0, []byte("fail")); !errors.As(err, &re) {
		t.Errorf("a handler's error is %T, want *RemoteError", err)
	}
	if _, err := Request(ctx, deadAddr(t), nil, 0, nil); err == nil {
		t.Error("Request to a dead address succeeded")
	}
}

// TestRemovedMemberIsRefused: a member marked removed loses its inbound
// stream when RemovePeer runs, and when it redials it is refused and hears
// ReportRemoved.
func TestRemovedMemberIsRefused(t *testing.T) {
	a, ha, addrA := startHandled(t, 1)
	b, hb, addrB := startHandled(t, 2)
	a.AddPeer(2, addrB)
	b.AddPeer(1, addrA)
	b.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 2, 1, 0)})
	ha.next(t)

	ha.remove(2)
	a.RemovePeer(2)
	select {
	case by := <-hb.removedBy:
		if by != 1 {
			t.Errorf("ReportRemoved(%d), want 1", by)
		}
	case <-time.After(waitLimit):
		t.Fatal("removed member never heard it was removed")
	}
}
