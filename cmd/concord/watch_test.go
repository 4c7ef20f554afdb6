package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestWatchUsageErrors(t *testing.T) {
	t.Setenv(endpointsEnv, "")
	for _, args := range [][]string{
		{"watch"},
		{"watch", "a", "b"},
		{"watch", ""},
		{"watch", "k", "--rev", "-1"},
	} {
		_, err := execute(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("concord %s: error %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

// fakeWatcher replays canned responses, then ends the channel.
type fakeWatcher struct {
	resps []clientv3.WatchResponse
	key   string
	opts  int
}

func (f *fakeWatcher) Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	f.key, f.opts = key, len(opts)
	ch := make(chan clientv3.WatchResponse, len(f.resps))
	for _, r := range f.resps {
		ch <- r
	}
	close(ch)
	return ch
}

func TestRunWatch(t *testing.T) {
	put := &mvccpb.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte("foo"), Value: []byte("bar"), ModRevision: 5},
		PrevKv: &mvccpb.KeyValue{Key: []byte("foo"), Value: []byte("old")}}
	del := &mvccpb.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte("foo"), ModRevision: 6}}
	f := &fakeWatcher{resps: []clientv3.WatchResponse{
		{Header: &pb.ResponseHeader{Revision: 5}, Events: []*clientv3.Event{put}},
		{Header: &pb.ResponseHeader{Revision: 6}, Events: []*clientv3.Event{del}},
		{Header: &pb.ResponseHeader{Revision: 7}},
		{Header: &pb.ResponseHeader{Revision: 7}, Canceled: true, CompactRevision: 4},
	}}
	var out bytes.Buffer
	err := runWatch(t.Context(), f, &out, "foo", watchCmdOptions{prefix: true, rev: 2, prevKV: true})
	want := "PUT\nfoo\nold\nfoo\nbar\nDELETE\nfoo\n\nprogress notify: 7\n"
	if out.String() != want {
		t.Errorf("printed:\n%q\nwant:\n%q", out.String(), want)
	}
	if !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("runWatch error = %v, want ErrCompacted", err)
	}
	if f.key != "foo" || f.opts != 3 {
		t.Errorf("Watch(%q, %d options), want foo with 3", f.key, f.opts)
	}
}
