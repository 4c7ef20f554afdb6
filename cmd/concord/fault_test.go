package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concord-db/concord/internal/admin"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/faults"
	"github.com/concord-db/concord/internal/server"
)

func executeFault(t *testing.T, args ...string) (string, error) {
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

func TestFaultUsageErrors(t *testing.T) {
	t.Setenv(endpointsEnv, "")
	// Every case must fail as a usage error (exit status 2) before dialing;
	// the endpoint does not exist.
	dead := []string{"--endpoints", "127.0.0.1:1", "--dial-timeout", "100ms"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"fault"}, "needs a subcommand"},
		{[]string{"fault", "explode"}, `unknown subcommand "explode"`},
		{[]string{"fault", "partition"}, "at least one group"},
		{[]string{"fault", "partition", "n1,,|"}, "empty group"},
		{[]string{"fault", "partition", "n1", "--duration", "-1s"}, "--duration"},
		{[]string{"fault", "partition", "n1", "*"}, "wildcards"},
		{[]string{"fault", "isolate-leader", "extra"}, "wrong number of arguments"},
		{[]string{"fault", "delay"}, "wrong number of arguments"},
		{[]string{"fault", "delay", "n1->n2", "fast"}, `delay "fast"`},
		{[]string{"fault", "delay", "n1>n2", "50ms"}, `link "n1>n2"`},
		{[]string{"fault", "delay", "n1->n2", "50ms", "extra"}, "wrong number of arguments"},
		{[]string{"fault", "drop", "n1->n2", "2"}, "probability 2"},
		{[]string{"fault", "drop", "0.5", "0.7"}, "two probabilities"},
		{[]string{"fault", "drop", "n1->n2", "n2->n1"}, "two links"},
		{[]string{"fault", "drop", "--type", "MsgHup"}, "never leaves a member"},
		{[]string{"fault", "drop", "--type", "MsgPing"}, "unknown message type"},
		{[]string{"fault", "duplicate", "--next", "-1"}, "next -1"},
		{[]string{"fault", "drop", "--id", "a b"}, `id "a b"`},
		{[]string{"fault", "pause"}, "wrong number of arguments"},
		{[]string{"fault", "pause", "n1", "soon"}, `bad duration "soon"`},
		{[]string{"fault", "pause", "*", "1s"}, "not a member"},
		{[]string{"fault", "pause", "n1", "--duration", "1s"}, "unknown flag: --duration"},
		{[]string{"fault", "clock", "n1"}, "needs an offset or a drift"},
		{[]string{"fault", "clock", "n1", "ahead"}, `bad offset "ahead"`},
		{[]string{"fault", "clock", "n1", "--drift", "0"}, "clock drift 0"},
		{[]string{"fault", "clock", "n1", "+48h"}, "exceeds"},
		{[]string{"fault", "disk", "n1"}, "wrong number of arguments"},
		{[]string{"fault", "disk", "n1", "melt"}, `unknown disk mode "melt"`},
		{[]string{"fault", "disk", "n1", "slow"}, "needs a DELAY"},
		{[]string{"fault", "disk", "n1", "slow", "fast"}, `bad delay "fast"`},
		{[]string{"fault", "disk", "n1", "fail", "1s"}, "takes no third argument"},
		{[]string{"fault", "disk", "n1", "fail", "--next", "-2"}, "next -2"},
		{[]string{"fault", "kill"}, "wrong number of arguments"},
		{[]string{"fault", "kill", "n1", "n2"}, "wrong number of arguments"},
		{[]string{"fault", "kill", "*"}, "not a member"},
		{[]string{"fault", "kill", "n1", "--duration", "1s"}, "unknown flag: --duration"},
		{[]string{"fault", "list", "extra"}, "wrong number of arguments"},
		{[]string{"fault", "list", "--no-such-flag"}, "no-such-flag"},
	}
	for _, tt := range tests {
		_, err := executeFault(t, append(slices.Clone(tt.args), dead...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("concord %q: error %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestParseGroups(t *testing.T) {
	tests := []struct {
		args []string
		want string
		ok   bool
	}{
		{[]string{"n1,n2", "n3"}, "[[n1 n2] [n3]]", true},
		{[]string{"n1,n2|n3"}, "[[n1 n2] [n3]]", true},
		{[]string{" n1 , n2 ", "n3,"}, "[[n1 n2] [n3]]", true},
		{[]string{"leader"}, "[[leader]]", true},
		{nil, "", false},
		{[]string{""}, "", false},
		{[]string{"n1||n2"}, "", false},
	}
	for _, tt := range tests {
		got, err := parseGroups(tt.args)
		if (err == nil) != tt.ok || (tt.ok && fmt.Sprint(got) != tt.want) {
			t.Errorf("parseGroups(%q) = %v, %v; want %s, ok %t", tt.args, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseLinkAndProbability(t *testing.T) {
	tests := []struct {
		args []string
		link string
		p    string // "" = none
		ok   bool
	}{
		{nil, "", "", true},
		{[]string{"1.0"}, "", "1", true},
		{[]string{"n1->n2"}, "n1->n2", "", true},
		{[]string{"n1->n2", "0.5"}, "n1->n2", "0.5", true},
		{[]string{"0.5", "*->n3"}, "*->n3", "0.5", true},
		{[]string{"1", "1"}, "", "", false},
		{[]string{"a->b", "c->d"}, "", "", false},
	}
	for _, tt := range tests {
		link, p, err := parseLinkAndProbability("drop", tt.args)
		ps := ""
		if p != nil {
			ps = fmt.Sprint(*p)
		}
		if (err == nil) != tt.ok || tt.ok && (link != tt.link || ps != tt.p) {
			t.Errorf("parseLinkAndProbability(%q) = %q, %s, %v; want %q, %s, ok %t", tt.args, link, ps, err, tt.link, tt.p, tt.ok)
		}
	}
}

func TestFaultTargets(t *testing.T) {
	members := []*pb.Member{
		{ID: 3, Name: "n3", ClientURLs: []string{"http://127.0.0.1:3/"}},
		{ID: 1, Name: "n1", ClientURLs: []string{"http://127.0.0.1:1", "http://10.0.0.1:1"}},
		{ID: 0xab, Name: "", ClientURLs: nil},
	}
	targets, skipped, err := faultTargets(members, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []faultTarget{{"n1", "http://127.0.0.1:1"}, {"n3", "http://127.0.0.1:3"}}; !slices.Equal(targets, want) {
		t.Errorf("faultTargets = %v, want %v", targets, want)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "member ab") {
		t.Errorf("skipped = %q, want member ab", skipped)
	}
	tlsMember := []*pb.Member{{ID: 1, Name: "n1", ClientURLs: []string{"https://127.0.0.1:1"}}}
	var ue usageError
	if _, _, err := faultTargets(tlsMember, false); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--cacert") {
		t.Errorf("https member without TLS flags: %v, want a usage error naming --cacert", err)
	}
	if got, _, err := faultTargets(tlsMember, true); err != nil || got[0].base != "https://127.0.0.1:1" {
		t.Errorf("https member with TLS flags = %v, %v", got, err)
	}
	if _, _, err := faultTargets([]*pb.Member{{ID: 1, Name: "n1", ClientURLs: []string{"unix:///tmp/s"}}}, false); err == nil {
		t.Error("unix client URL accepted")
	}
	if _, _, err := faultTargets(members[2:], false); err == nil {
		t.Error("no member with a client URL accepted")
	}
}

// fakeAdminMember is the minimum admin.Member for the fault API.
type fakeAdminMember struct{}

func (fakeAdminMember) Leader() uint64                 { return 1 }
func (fakeAdminMember) Alarms() []*command.AlarmMember { return nil }
func (fakeAdminMember) Metrics() server.Metrics        { return server.Metrics{} }
func (fakeAdminMember) Range(context.Context, *command.RangeRequest) (*command.RangeResponse, server.Header, error) {
	return &command.RangeResponse{}, server.Header{}, nil
}

// planeCluster is three members, each of which believes in its own leader.
type planeCluster struct{ leader uint64 }

func (planeCluster) Members() []faults.Member {
	return []faults.Member{{ID: 1, Name: "n1"}, {ID: 2, Name: "n2"}, {ID: 3, Name: "n3"}}
}
func (c planeCluster) Leader() uint64 { return c.leader }

// apiCluster serves a real admin fault API per member over httptest.
type apiCluster struct {
	planes  []*faults.Plane
	servers []*httptest.Server
	sess    *faultSession
}

func newAPICluster(t *testing.T) *apiCluster {
	t.Helper()
	c := &apiCluster{sess: &faultSession{hc: faultHTTPClient(nil), timeout: 2 * time.Second}}
	for i := range 3 {
		// Member i believes member i+1 leads: only a canonical rule makes
		// them agree on "the leader".
		p, err := faults.New(faults.Config{Cluster: planeCluster{uint64(i + 1)}})
		if err != nil {
			t.Fatal(err)
		}
		h, err := admin.New(admin.Config{Member: fakeAdminMember{}, Faults: p})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		c.planes = append(c.planes, p)
		c.servers = append(c.servers, srv)
		c.sess.targets = append(c.sess.targets, faultTarget{name: fmt.Sprintf("n%d", i+1), base: srv.URL})
	}
	return c
}

func TestFaultInstallEverywhere(t *testing.T) {
	c := newAPICluster(t)
	var out, errw bytes.Buffer
	if err := runFaultInstall(t.Context(), c.sess, faults.Spec{Kind: faults.KindIsolateLeader, Duration: faults.Duration(time.Minute)}, &out, &errw); err != nil {
		t.Fatalf("install: %v (stderr %s)", err, errw.String())
	}
	if want := "f1 installed on n1,n2,n3: isolate leader n1 | rest, expires after 1m0s\n"; out.String() != want {
		t.Errorf("install printed %q, want %q", out.String(), want)
	}
	for i, p := range c.planes {
		l := p.List()
		if len(l) != 1 || l[0].ID != "f1" || fmt.Sprint(l[0].Groups) != "[[n1]]" {
			t.Errorf("member n%d holds %+v, want f1 isolating n1", i+1, l)
		}
	}

	// A rule the first member refuses is refused at once, installed nowhere.
	out.Reset()
	err := runFaultInstall(t.Context(), c.sess, faults.Spec{Kind: faults.KindDrop, Link: "n1->n9"}, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), `unknown member "n9"`) {
		t.Errorf("install of a bad rule: %v", err)
	}
	for i, p := range c.planes {
		if n := len(p.List()); n != 1 {
			t.Errorf("member n%d holds %d rules after a refused install", i+1, n)
		}
	}

	// A member that cannot be reached fails the command; the others get it.
	c.servers[1].Close()
	out.Reset()
	errw.Reset()
	err = runFaultInstall(t.Context(), c.sess, faults.Spec{Kind: faults.KindDrop, Link: "n1->n2", Next: 5}, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "not installed on n2") || !strings.Contains(errw.String(), "n2:") {
		t.Errorf("install with n2 down: %v; stderr %q", err, errw.String())
	}
	if !strings.HasPrefix(out.String(), "f2 installed on n1,n3") {
		t.Errorf("install with n2 down printed %q", out.String())
	}
	if l := c.planes[2].List(); len(l) != 2 || l[1].ID != "f2" {
		t.Errorf("n3 holds %+v, want f1 and f2", l)
	}
}

func TestFaultListAndHeal(t *testing.T) {
	c := newAPICluster(t)
	var out, errw bytes.Buffer
	for _, s := range []faults.Spec{
		{Kind: faults.KindPartition, Groups: [][]string{{"n1", "n2"}, {"n3"}}, Duration: faults.Duration(30 * time.Second)},
		{Kind: faults.KindDelay, Link: "*->n3", Delay: faults.Duration(50 * time.Millisecond), Jitter: faults.Duration(10 * time.Millisecond)},
	} {
		if err := runFaultInstall(t.Context(), c.sess, s, &out, &errw); err != nil {
			t.Fatal(err)
		}
	}
	// Members act on what they send: n1 cuts its messages to n3.
	for range 3 {
		c.planes[0].Intercept(1, 3, 3)
	}
	out.Reset()
	if err := runFaultList(t.Context(), c.sess, false, time.Now(), &out, &errw); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ID  RULE                          EXPIRES  ON        FIRED",
		"f1  partition n1,n2 | n3, expires after 30s  in 30s   n1,n2,n3  3",
		"f2  delay all *->n3 by 50ms±10ms  never    n1,n2,n3  0",
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(got) != 3 || !strings.HasPrefix(got[0], "ID") || !strings.Contains(got[1], "partition n1,n2 | n3") ||
		!strings.Contains(got[1], "in 30s") || !strings.HasSuffix(got[1], "n1,n2,n3  3") ||
		!strings.Contains(got[2], "delay all *->n3 by 50ms±10ms") || !strings.Contains(got[2], "never") {
		t.Errorf("list printed\n%s\nwant lines like\n%s", out.String(), strings.Join(want, "\n"))
	}

	out.Reset()
	if err := runFaultHeal(t.Context(), c.sess, []string{"f2", "f9"}, &out, &errw); err != nil {
		t.Fatal(err)
	}
	if want := "n1: removed f2\nn2: removed f2\nn3: removed f2\n"; out.String() != want {
		t.Errorf("heal f2 f9 printed %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := runFaultHeal(t.Context(), c.sess, nil, &out, &errw); err != nil {
		t.Fatal(err)
	}
	if want := "n1: removed f1\nn2: removed f1\nn3: removed f1\n"; out.String() != want {
		t.Errorf("heal printed %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := runFaultList(t.Context(), c.sess, false, time.Now(), &out, &errw); err != nil || out.String() != "no fault rules installed\n" {
		t.Errorf("list after heal = %q, %v", out.String(), err)
	}
}

func TestFaultAPIDisabledMessage(t *testing.T) {
	h, err := admin.New(admin.Config{Member: fakeAdminMember{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	sess := &faultSession{hc: faultHTTPClient(nil), timeout: 2 * time.Second, targets: []faultTarget{{"n1", srv.URL}}}
	err = runFaultInstall(t.Context(), sess, faults.Spec{Kind: faults.KindDrop}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--fault-injection") {
		t.Errorf("install on a member without fault injection: %v", err)
	}
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusForbidden {
		t.Errorf("error %v is not the API's 403", err)
	}
}

// TestFaultMemberRules installs a pause, a clock and a disk rule on every
// member and lists them like the network rules.
func TestFaultMemberRules(t *testing.T) {
	c := newAPICluster(t)
	drift := 1.5
	specs := []faults.Spec{
		{Kind: faults.KindPause, Member: "leader", Duration: faults.Duration(5 * time.Second)},
		{Kind: faults.KindClock, Member: "n3", Offset: faults.Duration(2 * time.Second), Drift: &drift},
		{Kind: faults.KindDisk, Member: "n2", Mode: faults.DiskSlow, Delay: faults.Duration(200 * time.Millisecond)},
		{Kind: faults.KindDisk, Member: "n2", Mode: faults.DiskFail, Next: 1},
	}
	var out, errw bytes.Buffer
	for _, s := range specs {
		if err := runFaultInstall(t.Context(), c.sess, s, &out, &errw); err != nil {
			t.Fatalf("install %+v: %v (stderr %s)", s, err, errw.String())
		}
	}
	want := "f1 installed on n1,n2,n3: pause n1 for 5s\n" +
		"f2 installed on n1,n2,n3: clock n3 +2s, drift 1.5x\n" +
		"f3 installed on n1,n2,n3: disk n2 slow fsync by 200ms\n" +
		"f4 installed on n1,n2,n3: disk n2 fail fsync, next 1\n"
	if out.String() != want {
		t.Errorf("install printed\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := runFaultList(t.Context(), c.sess, false, time.Now(), &out, &errw); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"pause n1 for 5s", "clock n3 +2s, drift 1.5x", "disk n2 fail fsync, next 1"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("list lacks %q:\n%s", row, out.String())
		}
	}
	out.Reset()
	if err := runFaultHeal(t.Context(), c.sess, nil, &out, &errw); err != nil {
		t.Fatal(err)
	}
	for i, p := range c.planes {
		if paused, _ := p.Paused(1, time.Now()); paused || len(p.List()) != 0 {
			t.Errorf("member n%d after heal: paused %v, rules %+v", i+1, paused, p.List())
		}
	}
}

// crashAdminMember is member self; its crash records instead of exiting.
type crashAdminMember struct {
	fakeAdminMember
	self    uint64
	crashes chan uint64
}

func (m crashAdminMember) FaultCrash(member uint64) (func(), bool) {
	if member != m.self {
		return nil, false
	}
	return func() { m.crashes <- m.self }, true
}

// TestFaultKill resolves a kill on the first member and sends it to the
// member named, which alone crashes; nothing is listed afterwards.
func TestFaultKill(t *testing.T) {
	crashes := make(chan uint64, 8)
	sess := &faultSession{hc: faultHTTPClient(nil), timeout: 2 * time.Second}
	var planes []*faults.Plane
	for i := range 3 {
		// Member i believes it leads itself.
		p, err := faults.New(faults.Config{Cluster: planeCluster{uint64(i + 1)}})
		if err != nil {
			t.Fatal(err)
		}
		h, err := admin.New(admin.Config{Member: crashAdminMember{self: uint64(i + 1), crashes: crashes}, Faults: p})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		planes = append(planes, p)
		sess.targets = append(sess.targets, faultTarget{name: fmt.Sprintf("n%d", i+1), base: srv.URL})
	}
	// crashed waits for one crash, then takes any others already there.
	crashed := func() []uint64 {
		var got []uint64
		select {
		case id := <-crashes:
			got = append(got, id)
		case <-time.After(5 * time.Second):
			return nil
		}
		for {
			select {
			case id := <-crashes:
				got = append(got, id)
			default:
				return got
			}
		}
	}
	tests := []struct {
		member string
		want   uint64
		out    string
	}{
		{"n3", 3, "n3 killed: kill n3 (exit 137)\n"},     // n1 resolves, n3 crashes
		{"leader", 1, "n1 killed: kill n1 (exit 137)\n"}, // n1 resolves "leader" to itself
		{"2", 2, "n2 killed: kill n2 (exit 137)\n"},      // a hexadecimal id
	}
	for _, tt := range tests {
		var out, errw bytes.Buffer
		if err := runFaultKill(t.Context(), sess, faults.Spec{Kind: faults.KindKill, Member: tt.member}, &out, &errw); err != nil {
			t.Fatalf("kill %s: %v (stderr %s)", tt.member, err, errw.String())
		}
		if out.String() != tt.out {
			t.Errorf("kill %s printed %q, want %q", tt.member, out.String(), tt.out)
		}
		if got := crashed(); !slices.Equal(got, []uint64{tt.want}) {
			t.Errorf("kill %s crashed %v, want [%d]", tt.member, got, tt.want)
		}
	}
	for i, p := range planes {
		if l := p.List(); len(l) != 0 {
			t.Errorf("n%d lists %+v after kills, want nothing", i+1, l)
		}
	}
	err := runFaultKill(t.Context(), sess, faults.Spec{Kind: faults.KindKill, Member: "n9"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown member "n9"`) {
		t.Errorf("kill n9: %v", err)
	}
}
