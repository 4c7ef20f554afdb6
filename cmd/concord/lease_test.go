package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLeaseWriters pins etcdctl's simple output format.
func TestLeaseWriters(t *testing.T) {
	cases := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  string
	}{
		{"grant", func(b *bytes.Buffer) error {
			return writeGrant(b, &clientv3.LeaseGrantResponse{ID: 0x694d5765fc71500b, TTL: 10})
		}, "lease 694d5765fc71500b granted with TTL(10s)\n"},
		{"revoke", func(b *bytes.Buffer) error { return writeRevoke(b, 0x1f) }, "lease 000000000000001f revoked\n"},
		{"keepalive", func(b *bytes.Buffer) error {
			return writeKeepAlive(b, &clientv3.LeaseKeepAliveResponse{ID: 0x1f, TTL: 5})
		}, "lease 000000000000001f keepalived with TTL(5)\n"},
		{"keepalive end", func(b *bytes.Buffer) error { return writeKeepAliveEnd(b, 0x1f) }, "lease 000000000000001f expired or revoked.\n"},
		{"ttl", func(b *bytes.Buffer) error {
			return writeTimeToLive(b, &clientv3.LeaseTimeToLiveResponse{ID: 0x1f, TTL: 7, GrantedTTL: 10, Keys: [][]byte{[]byte("a"), []byte("b")}}, false)
		}, "lease 000000000000001f granted with TTL(10s), remaining(7s)\n"},
		{"ttl keys", func(b *bytes.Buffer) error {
			return writeTimeToLive(b, &clientv3.LeaseTimeToLiveResponse{ID: 0x1f, TTL: 7, GrantedTTL: 10, Keys: [][]byte{[]byte("a"), []byte("b")}}, true)
		}, "lease 000000000000001f granted with TTL(10s), remaining(7s), attached keys([a b])\n"},
		{"ttl expired", func(b *bytes.Buffer) error {
			return writeTimeToLive(b, &clientv3.LeaseTimeToLiveResponse{ID: 0x1f, TTL: -1}, true)
		}, "lease 000000000000001f already expired\n"},
		{"list", func(b *bytes.Buffer) error {
			return writeLeases(b, &clientv3.LeaseLeasesResponse{Leases: []clientv3.LeaseStatus{{ID: 1}, {ID: 0xabc}}})
		}, "found 2 leases\n0000000000000001\n0000000000000abc\n"},
	}
	for _, c := range cases {
		var b bytes.Buffer
		if err := c.write(&b); err != nil || b.String() != c.want {
			t.Errorf("%s printed %q (%v), want %q", c.name, b.String(), err, c.want)
		}
	}
}

func TestParseLeaseID(t *testing.T) {
	cases := []struct {
		in   string
		want clientv3.LeaseID
		ok   bool
	}{
		{"694d5765fc71500b", 0x694d5765fc71500b, true},
		{"1F", 0x1f, true},
		{"xyz", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		got, err := parseLeaseID(c.in)
		var ue usageError
		if got != c.want || (err == nil) != c.ok || (err != nil && !errors.As(err, &ue)) {
			t.Errorf("parseLeaseID(%q) = %x, %v", c.in, got, err)
		}
	}
}

type fakeKeepAliver struct {
	resps []*clientv3.LeaseKeepAliveResponse
}

func (f fakeKeepAliver) KeepAlive(ctx context.Context, id clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	ch := make(chan *clientv3.LeaseKeepAliveResponse, len(f.resps))
	for _, r := range f.resps {
		ch <- r
	}
	close(ch)
	return ch, nil
}

func (f fakeKeepAliver) KeepAliveOnce(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	if len(f.resps) == 0 {
		return nil, errors.New("lease not found")
	}
	return f.resps[0], nil
}

func TestRunKeepAlive(t *testing.T) {
	r := &clientv3.LeaseKeepAliveResponse{ResponseHeader: &pb.ResponseHeader{}, ID: 0x1f, TTL: 5}
	var b bytes.Buffer
	if err := runKeepAlive(context.Background(), fakeKeepAliver{[]*clientv3.LeaseKeepAliveResponse{r, r}}, &b, 0x1f, false); err != nil {
		t.Fatal(err)
	}
	want := "lease 000000000000001f keepalived with TTL(5)\nlease 000000000000001f keepalived with TTL(5)\nlease 000000000000001f expired or revoked.\n"
	if b.String() != want {
		t.Errorf("keepalive printed %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := runKeepAlive(context.Background(), fakeKeepAliver{[]*clientv3.LeaseKeepAliveResponse{r}}, &b, 0x1f, true); err != nil || b.String() != "lease 000000000000001f keepalived with TTL(5)\n" {
		t.Errorf("keepalive --once printed %q, %v", b.String(), err)
	}
	if err := runKeepAlive(context.Background(), fakeKeepAliver{}, &b, 0x1f, true); err == nil {
		t.Errorf("keepalive --once of a missing lease succeeded")
	}
}
