package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/concord-db/concord/internal/faults"
)

type fakeCluster struct{ leader uint64 }

func (fakeCluster) Members() []faults.Member {
	return []faults.Member{{ID: 1, Name: "n1"}, {ID: 2, Name: "n2"}, {ID: 3, Name: "n3"}}
}
func (c fakeCluster) Leader() uint64 { return c.leader }

func newFaultHandler(t *testing.T, leader uint64) (*Handler, *faults.Plane) {
	t.Helper()
	p, err := faults.New(faults.Config{Cluster: fakeCluster{leader}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Member: &fakeMember{leader: leader}, Faults: p})
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func do(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec
}

func TestFaultAPI(t *testing.T) {
	h, p := newFaultHandler(t, 2)
	steps := []struct {
		method, path, body string
		code               int
		want               []string // substrings of the body
	}{
		{"GET", "/v1/faults", "", 200, []string{`{"faults":[]}`}},
		{"POST", "/v1/faults", `{"kind":"drop","link":"n1->n2","types":["vote"],"next":2}`, 201,
			[]string{`"id":"f1"`, `"link":"n1->n2"`, `"types":["MsgVote"]`, `"description":"drop MsgVote n1->n2, next 2"`, `"remaining":2`, `"fired":0`}},
		{"POST", "/v1/faults", `{"id":"split","kind":"partition","groups":[["n1","n2"],["n3"]],"duration":"30s"}`, 201,
			[]string{`"id":"split"`, `"groups":[["n1","n2"],["n3"]]`, `"duration":"30s"`, `"expires":"`}},
		{"POST", "/v1/faults", `{"kind":"isolate-leader"}`, 201, []string{`"kind":"partition"`, `"groups":[["n2"]]`, `"description":"isolate leader n2 | rest"`}},
		{"POST", "/v1/faults", `{"id":"p","kind":"pause","member":"leader","duration":"5s"}`, 201,
			[]string{`"member":"n2"`, `"duration":"5s"`, `"description":"pause n2 for 5s"`}},
		{"POST", "/v1/faults", `{"id":"c","kind":"clock","member":"n3","offset":"-2s","drift":1.5}`, 201,
			[]string{`"member":"n3"`, `"offset":"-2s"`, `"drift":1.5`, `"description":"clock n3 -2s, drift 1.5x"`}},
		{"POST", "/v1/faults", `{"id":"d","kind":"disk","member":"n1","mode":"slow","delay":"200ms"}`, 201,
			[]string{`"mode":"slow"`, `"delay":"200ms"`, `"description":"disk n1 slow fsync by 200ms"`}},
		{"GET", "/v1/faults", "", 200, []string{`"id":"f1"`, `"id":"split"`, `"id":"f2"`, `"id":"p"`, `"id":"c"`, `"id":"d"`}},
		{"POST", "/v1/faults", `{"kind":"disk","member":"n1","mode":"melt"}`, 400, []string{`unknown disk mode \"melt\"`}},
		{"POST", "/v1/faults", `{"kind":"pause","member":"n7"}`, 400, []string{`unknown member \"n7\"`}},
		{"POST", "/v1/faults", `{"kind":"clock","member":"n1","link":"n1->n2","offset":"1s"}`, 400, []string{"not a link"}},

		{"POST", "/v1/faults", `{"kind":"drop"`, 400, []string{"bad fault rule JSON"}},
		{"POST", "/v1/faults", `{"kind":"drop","force":true}`, 400, []string{`unknown field \"force\"`}},
		{"POST", "/v1/faults", `{"kind":"drop","types":["MsgPing"]}`, 400, []string{`unknown message type \"MsgPing\"`}},
		{"POST", "/v1/faults", `{"kind":"drop","types":["MsgHup"]}`, 400, []string{"never leaves a member"}},
		{"POST", "/v1/faults", `{"kind":"drop","link":"n1->n7"}`, 400, []string{`unknown member \"n7\"`}},
		{"POST", "/v1/faults", `{"kind":"delay","delay":50}`, 400, []string{"bad fault rule JSON"}},
		{"POST", "/v1/faults", `{"kind":"delay","delay":"soon"}`, 400, []string{`bad duration \"soon\"`}},
		{"POST", "/v1/faults", `{"kind":"teleport"}`, 400, []string{`unknown kind \"teleport\"`}},
		{"POST", "/v1/faults", ``, 400, []string{"empty body"}},
		{"POST", "/v1/faults", `{"kind":"drop"} {"kind":"drop"}`, 400, []string{"more than one value"}},
		{"POST", "/v1/faults", `{"kind":"drop","description":"` + strings.Repeat("x", 70<<10) + `"}`, 400, []string{"exceeds"}},
		{"POST", "/v1/faults", `{"id":"split","kind":"drop"}`, 409, []string{"already in use"}},

		{"DELETE", "/v1/faults/nope", "", 404, []string{`no such rule: \"nope\"`}},
		{"DELETE", "/v1/faults/split", "", 200, []string{`"id":"split"`}},
		{"PUT", "/v1/faults", "", 405, nil},
		{"DELETE", "/v1/faults", "", 200, []string{`"removed":[{"id":"f1"`, `"id":"f2"`}},
		{"GET", "/v1/faults", "", 200, []string{`{"faults":[]}`}},
	}
	for _, s := range steps {
		rec := do(t, h, s.method, s.path, s.body)
		body := rec.Body.String()
		if rec.Code != s.code {
			t.Errorf("%s %s %.80s = %d %s, want %d", s.method, s.path, s.body, rec.Code, body, s.code)
			continue
		}
		for _, w := range s.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s %s %.80s = %s, want it to contain %s", s.method, s.path, s.body, body, w)
			}
		}
		if s.code != 405 && rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q", s.method, s.path, rec.Header().Get("Content-Type"))
		}
		if s.code >= 400 && s.code != 405 {
			var e APIError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.HasPrefix(e.Error, "admin: ") && !strings.HasPrefix(e.Error, "faults: ") {
				t.Errorf("%s %s: error body %s is not {\"error\":\"<pkg>: ...\"}", s.method, s.path, body)
			}
		}
	}
	if p.Active() {
		t.Errorf("rules left after DELETE /v1/faults: %+v", p.List())
	}
}

func TestFaultAPILocationAndDecode(t *testing.T) {
	h, _ := newFaultHandler(t, 1)
	rec := do(t, h, "POST", "/v1/faults", `{"kind":"delay","link":"*<->n3","delay":"50ms","jitter":"10ms"}`)
	if rec.Code != 201 || rec.Header().Get("Location") != "/v1/faults/f1" {
		t.Fatalf("POST = %d %s, Location %q", rec.Code, rec.Body, rec.Header().Get("Location"))
	}
	var info faults.Info
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if info.Link != "*<->n3" || info.Delay != faults.Duration(50e6) || info.Jitter != faults.Duration(10e6) || info.Created.IsZero() {
		t.Errorf("POST answered %+v", info)
	}
}

func TestFaultAPINoLeader(t *testing.T) {
	h, _ := newFaultHandler(t, 0)
	rec := do(t, h, "POST", "/v1/faults", `{"kind":"isolate-leader"}`)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "no leader") {
		t.Errorf("isolate-leader without a leader = %d %s, want 503", rec.Code, rec.Body)
	}
}

func TestFaultAPIDisabled(t *testing.T) {
	h := newHandler(t, &fakeMember{leader: 1})
	for _, s := range []struct{ method, path, body string }{
		{"GET", "/v1/faults", ""},
		{"POST", "/v1/faults", `{"kind":"drop"}`},
		{"DELETE", "/v1/faults", ""},
		{"DELETE", "/v1/faults/f1", ""},
	} {
		rec := do(t, h, s.method, s.path, s.body)
		if rec.Code != 403 || !strings.Contains(rec.Body.String(), "--fault-injection") {
			t.Errorf("%s %s with fault injection off = %d %s, want 403 naming --fault-injection", s.method, s.path, rec.Code, rec.Body)
		}
	}
}
