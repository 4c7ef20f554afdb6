package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-db/concord/internal/faults"
)

// crashMember is member self of a cluster; crash records instead of
// exiting.
type crashMember struct {
	fakeMember
	self    uint64
	crashed atomic.Int32
	crashes chan struct{}
}

func (m *crashMember) FaultCrash(member uint64) (func(), bool) {
	if member != m.self {
		return nil, false
	}
	return func() {
		m.crashed.Add(1)
		m.crashes <- struct{}{}
	}, true
}

func TestFaultAPIKill(t *testing.T) {
	p, err := faults.New(faults.Config{Cluster: fakeCluster{leader: 2}})
	if err != nil {
		t.Fatal(err)
	}
	m := &crashMember{fakeMember: fakeMember{leader: 2}, self: 2, crashes: make(chan struct{}, 4)}
	h, err := New(Config{Member: m, Faults: p})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	post := func(body string) (int, KillResult, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the answer to %s: %v", body, err)
		}
		var kr KillResult
		json.Unmarshal(data, &kr)
		return resp.StatusCode, kr, string(data)
	}

	// Another member: resolved, answered, nothing happens.
	code, kr, raw := post(`{"kind":"kill","member":"n3"}`)
	if code != http.StatusOK || kr.Killed || kr.Member != "n3" || kr.ID != "kill" || m.crashed.Load() != 0 {
		t.Errorf("kill n3 on n2: %d %s, crashed %d; want 200, not killed", code, raw, m.crashed.Load())
	}
	// This member, through "leader": answered 202 in full, then crashed.
	code, kr, raw = post(`{"kind":"kill","member":"leader"}`)
	if code != http.StatusAccepted || !kr.Killed || kr.Member != "n2" || kr.Description != "kill n2 (exit 137)" {
		t.Errorf("kill leader on n2: %d %s; want 202, killed n2", code, raw)
	}
	select {
	case <-m.crashes:
	case <-time.After(5 * time.Second):
		t.Fatal("kill leader on n2 answered but did not crash")
	}
	// One-shot: nothing listed.
	if l := p.List(); len(l) != 0 {
		t.Errorf("List after kill = %+v", l)
	}
	for _, tt := range []struct {
		body string
		code int
		want string
	}{
		{`{"kind":"kill","member":"n9"}`, 400, `unknown member \"n9\"`},
		{`{"kind":"kill","member":"n1","duration":"2s"}`, 400, "one-shot"},
		{`{"kind":"kill"}`, 400, "empty member"},
	} {
		if code, _, raw := post(tt.body); code != tt.code || !strings.Contains(raw, tt.want) {
			t.Errorf("POST %s = %d %s; want %d containing %s", tt.body, code, raw, tt.code, tt.want)
		}
	}
	if n := m.crashed.Load(); n != 1 {
		t.Errorf("crashed %d times, want 1", n)
	}

	// A member that cannot crash says so.
	h2, _ := newFaultHandler(t, 1)
	if rec := do(t, h2, "POST", "/v1/faults", `{"kind":"kill","member":"n1"}`); rec.Code != http.StatusNotImplemented {
		t.Errorf("kill on a member without the hook = %d %s, want 501", rec.Code, rec.Body.String())
	}
}
