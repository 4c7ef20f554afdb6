package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMemberVerbUsageErrors(t *testing.T) {
	t.Setenv(endpointsEnv, "")
	// Each must fail as a usage error before dialing.
	tests := [][]string{
		{"member"},
		{"member", "add"},
		{"member", "add", "n4"},
		{"member", "add", "n4", "--peer-urls", " , "},
		{"member", "add", "a", "b", "--peer-urls", "http://h:1"},
		{"member", "remove"},
		{"member", "remove", "xyz"},
		{"member", "remove", "0"},
		{"member", "promote", "1", "2"},
		{"member", "update", "1f"},
		{"member", "update", "nothex", "--peer-urls", "http://h:1"},
		{"member", "list", "extra"},
	}
	for _, args := range tests {
		_, err := execute(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("concord %q = %v, want a usage error", args, err)
		}
	}
}

func TestParseMemberID(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"8e9e05c52164694d", 0x8e9e05c52164694d, true},
		{"0x1f", 0x1f, true},
		{"1F", 0x1f, true},
		{"0", 0, false},
		{"", 0, false},
		{"g", 0, false},
		{"1ffffffffffffffff", 0, false},
	}
	for _, tt := range tests {
		got, err := parseMemberID(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseMemberID(%q) = %x, %v; want %x, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// fakeMembers answers the member verbs from a fixed cluster.
type fakeMembers struct {
	added   []string
	learner bool
	err     error
}

func (f *fakeMembers) add(urls []string, learner bool) (*clientv3.MemberAddResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.added, f.learner = urls, learner
	return &clientv3.MemberAddResponse{
		Header: &pb.ResponseHeader{ClusterId: 0xc1},
		Member: &pb.Member{ID: 0xa4, PeerURLs: urls, IsLearner: learner},
		Members: []*pb.Member{
			{ID: 0xa1, Name: "n1", PeerURLs: []string{"http://h:1"}},
			{ID: 0xa4, PeerURLs: urls, IsLearner: learner},
		},
	}, nil
}

func (f *fakeMembers) MemberAdd(_ context.Context, urls []string) (*clientv3.MemberAddResponse, error) {
	return f.add(urls, false)
}

func (f *fakeMembers) MemberAddAsLearner(_ context.Context, urls []string) (*clientv3.MemberAddResponse, error) {
	return f.add(urls, true)
}

func (f *fakeMembers) MemberRemove(context.Context, uint64) (*clientv3.MemberRemoveResponse, error) {
	return &clientv3.MemberRemoveResponse{Header: &pb.ResponseHeader{ClusterId: 0xc1}}, f.err
}

func (f *fakeMembers) MemberUpdate(context.Context, uint64, []string) (*clientv3.MemberUpdateResponse, error) {
	return &clientv3.MemberUpdateResponse{Header: &pb.ResponseHeader{ClusterId: 0xc1}}, f.err
}

func (f *fakeMembers) MemberPromote(context.Context, uint64) (*clientv3.MemberPromoteResponse, error) {
	return &clientv3.MemberPromoteResponse{Header: &pb.ResponseHeader{ClusterId: 0xc1}}, f.err
}

func TestRunMemberVerbs(t *testing.T) {
	ctx := context.Background()
	f := &fakeMembers{}
	var out bytes.Buffer
	if err := runMemberAdd(ctx, f, &out, "n4", []string{"http://h:4"}, true); err != nil {
		t.Fatal(err)
	}
	want := `Member a4 added to cluster c1

CONCORD_NAME="n4"
CONCORD_INITIAL_CLUSTER="n1=http://h:1,n4=http://h:4"
CONCORD_ADVERTISE_PEER="http://h:4"
CONCORD_INITIAL_CLUSTER_STATE="existing"
`
	if out.String() != want || !f.learner {
		t.Errorf("member add --learner printed:\n%s\nwant:\n%s(learner=%v)", out.String(), want, f.learner)
	}
	for _, tt := range []struct {
		run  func() error
		want string
	}{
		{func() error { return runMemberRemove(ctx, f, &out, 0xa4) }, "Member a4 removed from cluster c1\n"},
		{func() error { return runMemberPromote(ctx, f, &out, 0xa4) }, "Member a4 promoted in cluster c1\n"},
		{func() error { return runMemberUpdate(ctx, f, &out, 0xa4, []string{"http://h:5"}) }, "Member a4 updated in cluster c1\n"},
	} {
		out.Reset()
		if err := tt.run(); err != nil || out.String() != tt.want {
			t.Errorf("printed %q, %v; want %q", out.String(), err, tt.want)
		}
	}
	f.err = errors.New("etcdserver: member not found")
	if err := runMemberRemove(ctx, f, &out, 0xa4); err == nil || err.Error() != "member remove: etcdserver: member not found" {
		t.Errorf("member remove error = %v", err)
	}
}
