package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/server"
)

type fakeMember struct {
	leader  uint64
	alarms  []*command.AlarmMember
	readErr error // for linearizable reads
	metrics server.Metrics
}

func (f *fakeMember) Leader() uint64                 { return f.leader }
func (f *fakeMember) Alarms() []*command.AlarmMember { return f.alarms }
func (f *fakeMember) Metrics() server.Metrics        { return f.metrics }
func (f *fakeMember) Range(_ context.Context, r *command.RangeRequest) (*command.RangeResponse, server.Header, error) {
	if !r.GetSerializable() && f.readErr != nil {
		return nil, server.Header{}, f.readErr
	}
	return &command.RangeResponse{}, server.Header{}, nil
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func newHandler(t *testing.T, m Member) *Handler {
	t.Helper()
	h, err := New(Config{Member: m})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHealth(t *testing.T) {
	nospace := []*command.AlarmMember{{MemberId: 1, Alarm: command.AlarmRequest_NOSPACE}}
	cases := []struct {
		name   string
		member fakeMember
		path   string
		code   int
		body   string
	}{
		{"healthy", fakeMember{leader: 1}, "/health", 200, `{"health":"true","reason":""}`},
		{"no leader", fakeMember{}, "/health", 503, `{"health":"false","reason":"RAFT NO LEADER"}`},
		{"alarm", fakeMember{leader: 1, alarms: nospace}, "/health", 503, `{"health":"false","reason":"ALARM NOSPACE"}`},
		{"alarm excluded", fakeMember{leader: 1, alarms: nospace}, "/health?exclude=NOSPACE", 200, `{"health":"true","reason":""}`},
		{"read fails", fakeMember{leader: 1, readErr: errors.New("boom")}, "/health", 503, `{"health":"false","reason":"QGET ERROR:boom"}`},
		{"serializable read", fakeMember{leader: 1, readErr: errors.New("boom")}, "/health?serializable=true", 200, `{"health":"true","reason":""}`},
	}
	for _, c := range cases {
		code, body := get(t, newHandler(t, &c.member), c.path)
		if code != c.code || body != c.body {
			t.Errorf("%s: GET %s = %d %s, want %d %s", c.name, c.path, code, body, c.code, c.body)
		}
	}
}

func TestLivezReadyz(t *testing.T) {
	corrupt := []*command.AlarmMember{{MemberId: 1, Alarm: command.AlarmRequest_CORRUPT}}
	cases := []struct {
		name   string
		member fakeMember
		path   string
		code   int
		body   string
	}{
		{"live", fakeMember{leader: 1}, "/livez", 200, "ok\n"},
		{"ready", fakeMember{leader: 1}, "/readyz", 200, "ok\n"},
		{"ready verbose", fakeMember{leader: 1}, "/readyz?verbose", 200,
			"[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n"},
		{"not ready: corrupt", fakeMember{leader: 1, alarms: corrupt}, "/readyz", 503,
			"[-]data_corruption failed: CORRUPT alarm active\n[+]serializable_read ok\n[+]linearizable_read ok\nreadyz check failed\n"},
		{"not ready: read", fakeMember{readErr: errors.New("no leader")}, "/readyz", 503,
			"[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: no leader\nreadyz check failed\n"},
		{"excluded", fakeMember{readErr: errors.New("no leader")}, "/readyz?exclude=linearizable_read", 200, "ok\n"},
		{"live without leader", fakeMember{readErr: errors.New("no leader")}, "/livez", 200, "ok\n"},
	}
	for _, c := range cases {
		code, body := get(t, newHandler(t, &c.member), c.path)
		if code != c.code || body != c.body {
			t.Errorf("%s: GET %s = %d %q, want %d %q", c.name, c.path, code, body, c.code, c.body)
		}
	}
}

func TestVersion(t *testing.T) {
	code, body := get(t, newHandler(t, &fakeMember{}), "/version")
	if code != 200 || !strings.HasPrefix(body, `{"etcdserver":"3.`) || !strings.Contains(body, `"etcdcluster":"3.`) || !strings.HasSuffix(body, `.0"}`) {
		t.Errorf("GET /version = %d %s, want etcd's {\"etcdserver\":\"3.x.y\",\"etcdcluster\":\"3.x.0\"}", code, body)
	}
}

func TestMetrics(t *testing.T) {
	m := &fakeMember{metrics: server.Metrics{
		MemberID: 0xabc, Leader: 7, Term: 4, LeaderChanges: 2, CommitIndex: 10, AppliedIndex: 9, ReadIndexRounds: 5,
		LogEntriesRead: 6, LogReadFailures: 1,
		DBSize: 1000, DBSizeInUse: 600, Quota: 2048, Keys: 3, Alarms: []string{"NOSPACE"},
		WALSync: server.Histogram{Bounds: []float64{0.001, 0.01}, Cumulative: []uint64{1, 2}, Count: 3, Sum: 0.5},
		Apply:   server.Histogram{Bounds: []float64{0.001}, Cumulative: []uint64{4}, Count: 4, Sum: 0.002},
	}}
	code, body := get(t, newHandler(t, m), "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		"etcd_server_has_leader 1",
		"etcd_server_is_leader 0",
		"etcd_server_leader_changes_seen_total 2",
		"concord_raft_term 4",
		"etcd_server_proposals_committed_total 10",
		"etcd_server_proposals_applied_total 9",
		"concord_raft_read_index_rounds_total 5",
		"concord_raft_log_entries_read_total 6",
		"concord_raft_log_read_failures_total 1",
		"etcd_mvcc_db_total_size_in_bytes 1000",
		"etcd_mvcc_db_total_size_in_use_in_bytes 600",
		"etcd_server_quota_backend_bytes 2048",
		"etcd_debugging_mvcc_keys_total 3",
		`etcd_disk_wal_fsync_duration_seconds_bucket{le="0.01"} 2`,
		"etcd_disk_wal_fsync_duration_seconds_count 3",
		"etcd_server_apply_duration_seconds_count 4",
		`concord_alarms_active{alarm="NOSPACE"} 1`,
		`concord_alarms_active{alarm="CORRUPT"} 0`,
		`etcd_server_id{server_id="abc"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New(Config{}) succeeded, want an error for the missing member")
	}
}

func TestPortMuxRoutesByPreface(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := NewPortMux(ln)
	serveDone := make(chan error, 1)
	go func() { serveDone <- mux.Serve() }()

	// The HTTP side: a real HTTP/1.1 server.
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "http:"+r.URL.Path) })}
	go hs.Serve(mux.HTTP())
	defer hs.Close()

	// The gRPC side: echo the first bytes back, to see the preface replayed.
	go func() {
		c, err := mux.GRPC().Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 24)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write(buf)
		}
	}()

	resp, err := http.Get("http://" + ln.Addr().String() + "/health")
	if err != nil {
		t.Fatalf("HTTP GET through the mux: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "http:/health" {
		t.Errorf("HTTP through the mux answered %q, want %q", body, "http:/health")
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	preface := "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	if _, err := io.WriteString(c, preface); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(preface))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != preface {
		t.Errorf("gRPC side read %q (%v), want the whole preface %q", got, err, preface)
	}

	mux.Close()
	if err := <-serveDone; err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
	if _, err := mux.GRPC().Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}

func TestIsHTTP2Preface(t *testing.T) {
	cases := map[string]bool{"PRI * HTTP/2.0": true, "PRI": true, "PR": false, "GET / HTTP/1.1": false, "POST /": false, "PUT /": false}
	for in, want := range cases {
		if got := IsHTTP2Preface([]byte(in)); got != want {
			t.Errorf("IsHTTP2Preface(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	if code, _ := get(t, newHandler(t, &fakeMember{}), "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without Pprof = %d, want 404", code)
	}
	h, err := New(Config{Member: &fakeMember{}, Pprof: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
		if code, body := get(t, h, path); code != 200 || len(body) == 0 {
			t.Errorf("GET %s with Pprof = %d (%d bytes), want 200 with a body", path, code, len(body))
		}
	}
}
