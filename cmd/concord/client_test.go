package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spf13/pflag"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// execute runs the root command with args and returns stdout and the error.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	root.SetContext(t.Context())
	err := root.Execute()
	return out.String(), err
}

func TestClientVerbUsageErrors(t *testing.T) {
	t.Setenv(endpointsEnv, "")
	// None of these may reach the network: each must fail as a usage error
	// (exit status 2) before dialing.
	tests := [][]string{
		{"get"},
		{"get", "a", "b"},
		{"get", ""},
		{"get", "k", "--rev", "-1"},
		{"get", "k", "--rev", "abc"},
		{"get", "k", "--limit", "-1"},
		{"get", "k", "--keys-only", "--print-value-only"},
		{"get", "k", "--no-such-flag"},
		{"get", "k", "--endpoints", " , "},
		{"get", "k", "--dial-timeout", "0s"},
		{"get", "k", "--command-timeout", "-1s"},
		{"put"},
		{"put", "k"},
		{"put", "k", "v", "extra"},
		{"put", "", "v"},
		{"del"},
		{"del", ""},
		{"del", "a", "b"},
		{"members", "extra"},
		{"members", "--endpoints", ""},
		{"status", "extra"},
		{"status", "--dial-timeout", "-5s"},
	}
	for _, args := range tests {
		_, err := execute(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("concord %q: error %v, want a usage error", args, err)
		}
	}
}

func TestResolveEndpoints(t *testing.T) {
	tests := []struct {
		name, env string
		args      []string
		want      []string
	}{
		{"default", "", nil, []string{"127.0.0.1:2379"}},
		{"env", "a:1, b:2", nil, []string{"a:1", "b:2"}},
		{"flag beats env", "a:1", []string{"--endpoints=c:3,,d:4"}, []string{"c:3", "d:4"}},
		{"flag equal to default still beats env", "a:1", []string{"--endpoints=127.0.0.1:2379"}, []string{"127.0.0.1:2379"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(endpointsEnv, tt.env)
			var f connFlags
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := f.resolve(fs)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("resolve() = %q, %v; want %q, nil", got, err, tt.want)
			}
		})
	}
}

func TestGetOpOptions(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		o         getOptions
		wantKey   string
		wantEnd   string
		wantRev   int64
		wantLimit int64
		keysOnly  bool
	}{
		{name: "single key", key: "k", wantKey: "k"},
		{name: "prefix", key: "foo", o: getOptions{prefix: true}, wantKey: "foo", wantEnd: "fop"},
		{name: "all keys", key: "", o: getOptions{prefix: true}, wantKey: "\x00", wantEnd: "\x00"},
		{name: "rev limit keys-only", key: "k", o: getOptions{rev: 7, limit: 3, keysOnly: true},
			wantKey: "k", wantRev: 7, wantLimit: 3, keysOnly: true},
		{name: "value-only changes printing, not the request", key: "k", o: getOptions{printValueOnly: true}, wantKey: "k"},
	}
	for _, tt := range tests {
		op := clientv3.OpGet(tt.key, tt.o.opOptions()...)
		if string(op.KeyBytes()) != tt.wantKey || string(op.RangeBytes()) != tt.wantEnd || op.Rev() != tt.wantRev ||
			op.Limit() != tt.wantLimit || op.IsKeysOnly() != tt.keysOnly {
			t.Errorf("%s: op key=%q end=%q rev=%d limit=%d keysOnly=%t; want %q %q %d %d %t", tt.name,
				op.KeyBytes(), op.RangeBytes(), op.Rev(), op.Limit(), op.IsKeysOnly(),
				tt.wantKey, tt.wantEnd, tt.wantRev, tt.wantLimit, tt.keysOnly)
		}
	}
	if op := clientv3.OpDelete("foo", delOpOptions(true)...); string(op.RangeBytes()) != "fop" {
		t.Errorf("del --prefix: range end %q, want %q", op.RangeBytes(), "fop")
	}
	if op := clientv3.OpDelete("foo", delOpOptions(false)...); op.RangeBytes() != nil {
		t.Errorf("del: range end %q, want none", op.RangeBytes())
	}
}

func kvs(pairs ...string) []*mvccpb.KeyValue {
	var out []*mvccpb.KeyValue
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, &mvccpb.KeyValue{Key: []byte(pairs[i]), Value: []byte(pairs[i+1])})
	}
	return out
}

func TestWriteKVs(t *testing.T) {
	tests := []struct {
		name string
		kvs  []*mvccpb.KeyValue
		o    getOptions
		want string
	}{
		{"none", nil, getOptions{}, ""},
		{"simple", kvs("a", "1", "b", "two words"), getOptions{}, "a\n1\nb\ntwo words\n"},
		{"empty value", kvs("a", ""), getOptions{}, "a\n\n"},
		{"keys only", kvs("a", "", "b", ""), getOptions{keysOnly: true}, "a\nb\n"},
		{"values only", kvs("a", "1", "b", "2"), getOptions{printValueOnly: true}, "1\n2\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := writeKVs(&buf, tt.kvs, tt.o); err != nil || buf.String() != tt.want {
			t.Errorf("%s: writeKVs = %q, %v; want %q, nil", tt.name, buf.String(), err, tt.want)
		}
	}
}

// fakeKV answers Get, Put and Delete from canned responses and records the
// operations it was asked for.
type fakeKV struct {
	ops []clientv3.Op
	get *clientv3.GetResponse
	del *clientv3.DeleteResponse
	err error
}

func (f *fakeKV) Get(_ context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	f.ops = append(f.ops, clientv3.OpGet(key, opts...))
	return f.get, f.err
}

func (f *fakeKV) Put(_ context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	f.ops = append(f.ops, clientv3.OpPut(key, val, opts...))
	return &clientv3.PutResponse{}, f.err
}

func (f *fakeKV) Delete(_ context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	f.ops = append(f.ops, clientv3.OpDelete(key, opts...))
	return f.del, f.err
}

func TestRunKVVerbs(t *testing.T) {
	ctx := t.Context()
	kv := &fakeKV{get: &clientv3.GetResponse{Kvs: kvs("k", "v")}, del: &clientv3.DeleteResponse{Deleted: 3}}
	var out bytes.Buffer
	if err := runGet(ctx, kv, &out, "k", getOptions{}); err != nil {
		t.Fatalf("runGet: %v", err)
	}
	if err := runPut(ctx, kv, &out, "k", "v2"); err != nil {
		t.Fatalf("runPut: %v", err)
	}
	if err := runDel(ctx, kv, &out, "k", true); err != nil {
		t.Fatalf("runDel: %v", err)
	}
	if got, want := out.String(), "k\nv\nOK\n3\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if len(kv.ops) != 3 || !kv.ops[0].IsGet() || !kv.ops[1].IsPut() || string(kv.ops[1].ValueBytes()) != "v2" || !kv.ops[2].IsDelete() {
		t.Errorf("ops = %+v, want get, put v2, delete", kv.ops)
	}

	failing := &fakeKV{err: errors.New("etcdserver: no leader")}
	for name, err := range map[string]error{
		"get": runGet(ctx, failing, io.Discard, "k", getOptions{}),
		"put": runPut(ctx, failing, io.Discard, "k", "v"),
		"del": runDel(ctx, failing, io.Discard, "k", false),
	} {
		if !errors.Is(err, failing.err) || !strings.HasPrefix(err.Error(), name+` "k": `) {
			t.Errorf("%s: error %v, want %q wrapping %v", name, err, name+` "k": ...`, failing.err)
		}
	}
}

func threeMembers() []*pb.Member {
	return []*pb.Member{
		{ID: 0x8e9e05c52164694d, Name: "n1", PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379", "http://10.0.0.1:2379"}},
		{ID: 0x91bc3c398fb3c146, Name: "n2", PeerURLs: []string{"http://127.0.0.1:2480"}, ClientURLs: []string{"http://127.0.0.1:2479"}},
		{ID: 0xfd422379fda50e48, PeerURLs: []string{"http://127.0.0.1:2580"}, IsLearner: true},
	}
}

func TestWriteMembers(t *testing.T) {
	var buf bytes.Buffer
	if err := writeMembers(&buf, threeMembers()); err != nil {
		t.Fatalf("writeMembers: %v", err)
	}
	want := `ID                NAME         PEER ADDRS             CLIENT ADDRS                                IS LEARNER
8e9e05c52164694d  n1           http://127.0.0.1:2380  http://127.0.0.1:2379,http://10.0.0.1:2379  false
91bc3c398fb3c146  n2           http://127.0.0.1:2480  http://127.0.0.1:2479                       false
fd422379fda50e48  (unstarted)  http://127.0.0.1:2580                                              true
`
	if got := buf.String(); got != want {
		t.Errorf("writeMembers:\n%s\nwant:\n%s", got, want)
	}
}

// fakeCluster answers MemberList and per-endpoint Status.
type fakeCluster struct {
	members    []*pb.Member
	membersErr error
	status     map[string]*clientv3.StatusResponse // endpoint → answer; missing = unreachable
	asked      []string
}

func (f *fakeCluster) MemberList(context.Context, ...clientv3.OpOption) (*clientv3.MemberListResponse, error) {
	if f.membersErr != nil {
		return nil, f.membersErr
	}
	return &clientv3.MemberListResponse{Members: f.members}, nil
}

func (f *fakeCluster) Status(ctx context.Context, ep string) (*clientv3.StatusResponse, error) {
	if s, ok := f.status[ep]; ok {
		return s, nil
	}
	<-ctx.Done() // an unreachable member: clientv3 waits for the connection until the deadline
	return nil, ctx.Err()
}

func statusOf(member, leader, term, applied uint64, rev int64, alarms ...string) *clientv3.StatusResponse {
	return &clientv3.StatusResponse{
		Header:           &pb.ResponseHeader{MemberId: member, Revision: rev, RaftTerm: term},
		Leader:           leader,
		RaftTerm:         term,
		RaftAppliedIndex: applied,
		Version:          "3.7.3",
		Errors:           alarms,
	}
}

func TestRunStatus(t *testing.T) {
	ms := threeMembers()
	tests := []struct {
		name    string
		cluster *fakeCluster
		eps     []string
		want    string
		wantErr string
	}{
		{
			name: "from member list, one unstarted",
			cluster: &fakeCluster{members: ms, status: map[string]*clientv3.StatusResponse{
				"http://127.0.0.1:2379": statusOf(ms[0].ID, ms[1].ID, 4, 120, 57),
				"http://127.0.0.1:2479": statusOf(ms[1].ID, ms[1].ID, 4, 121, 57, "NOSPACE"),
			}},
			want: `ID                NAME         ENDPOINT               LEADER  TERM  APPLIED  REVISION  VERSION  ERRORS
8e9e05c52164694d  n1           http://127.0.0.1:2379  false   4     120      57        3.7.3
91bc3c398fb3c146  n2           http://127.0.0.1:2479  true    4     121      57        3.7.3    NOSPACE
fd422379fda50e48  (unstarted)  -                      -       -     -        -         -        member has not started: no client URL
`,
			wantErr: "status: 1 of 3 endpoints failed",
		},
		{
			name: "member list fails: fall back to endpoints, one unreachable",
			cluster: &fakeCluster{membersErr: errors.New("etcdserver: request timed out"), status: map[string]*clientv3.StatusResponse{
				"a:1": statusOf(1, 0, 2, 9, 3),
			}},
			eps: []string{"a:1", "b:2"},
			want: `ID  NAME  ENDPOINT  LEADER  TERM  APPLIED  REVISION  VERSION  ERRORS
1   -     a:1       false   2     9        3         3.7.3
-   -     b:2       -       -     -        -         -        context deadline exceeded
`,
			wantErr: "status: 1 of 2 endpoints failed",
		},
		{
			name: "healthy",
			cluster: &fakeCluster{members: ms[:1], status: map[string]*clientv3.StatusResponse{
				"http://127.0.0.1:2379": statusOf(ms[0].ID, ms[0].ID, 2, 5, 1),
			}},
			want: `ID                NAME  ENDPOINT               LEADER  TERM  APPLIED  REVISION  VERSION  ERRORS
8e9e05c52164694d  n1    http://127.0.0.1:2379  true    2     5        1         3.7.3
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// In a synctest bubble the unreachable member's timeout passes in
			// virtual time.
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				err := runStatus(t.Context(), tt.cluster, &buf, tt.eps, 5*time.Second)
				if got := buf.String(); got != tt.want {
					t.Errorf("table:\n%s\nwant:\n%s", got, tt.want)
				}
				if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && got != tt.wantErr) {
					t.Errorf("runStatus error = %v, want %q", err, tt.wantErr)
				}
			})
		})
	}
}

func TestStatusTargetsTakeFirstClientURL(t *testing.T) {
	ts := statusTargets(threeMembers(), []string{"ignored:1"})
	got := []string{ts[0].endpoint, ts[1].endpoint, ts[2].endpoint}
	if want := []string{"http://127.0.0.1:2379", "http://127.0.0.1:2479", ""}; !slices.Equal(got, want) {
		t.Errorf("endpoints %q, want %q", got, want)
	}
	if !errors.Is(ts[2].cannotAsk, errNoClientURL) {
		t.Errorf("unstarted member err = %v, want %v", ts[2].cannotAsk, errNoClientURL)
	}
	if ts := statusTargets([]*pb.Member{}, []string{"x:1"}); len(ts) != 0 {
		t.Errorf("empty member list gave %d targets, want 0 (fallback is only for a failed list)", len(ts))
	}
}
