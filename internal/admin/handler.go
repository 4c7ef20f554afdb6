package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.etcd.io/etcd/api/v3/version"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/faults"
	"github.com/concord-db/concord/internal/server"
)

// Member is what the handler needs of a member; *server.Server implements
// it. Tests substitute a fake.
type Member interface {
	Leader() uint64
	Alarms() []*command.AlarmMember
	Range(ctx context.Context, req *command.RangeRequest) (*command.RangeResponse, server.Header, error)
	Metrics() server.Metrics
}

// Config configures a Handler.
type Config struct {
	// Member is the member reported on; required.
	Member Member
	// HealthTimeout bounds the read each health check makes (0: 2s).
	HealthTimeout time.Duration
	// Faults is the member's fault plane, served under /v1/faults (nil:
	// fault injection is off and those endpoints answer 403).
	Faults *faults.Plane
	// Pprof serves Go's runtime profiles under /debug/pprof/ (etcd's
	// --enable-pprof). Off by default: a CPU profile costs the member CPU
	// and the endpoints are unauthenticated.
	Pprof bool
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if c.Member == nil {
		return errors.New("admin: no member")
	}
	if c.HealthTimeout < 0 {
		return errors.New("admin: health timeout must not be negative")
	}
	return nil
}

// Handler serves /health, /livez, /readyz, /version, /metrics, the fault
// API under /v1/faults and, when asked, /debug/pprof/.
type Handler struct {
	m       Member
	faults  *faults.Plane
	timeout time.Duration
	logger  *slog.Logger
	mux     *http.ServeMux
}

// New returns a Handler for cfg.Member with its own Prometheus registry.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{m: cfg.Member, faults: cfg.Faults, timeout: cfg.HealthTimeout, logger: cfg.Logger, mux: http.NewServeMux()}
	if h.timeout == 0 {
		h.timeout = 2 * time.Second
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(newCollector(cfg.Member)); err != nil {
		return nil, fmt.Errorf("admin: register metrics: %w", err)
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("admin: register metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("admin: register metrics: %w", err)
	}
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("GET /health", h.health)
	h.mux.HandleFunc("GET /livez", h.probe(livezChecks))
	h.mux.HandleFunc("GET /readyz", h.probe(readyzChecks))
	h.mux.HandleFunc("GET /version", h.version)
	h.registerFaults()
	if cfg.Pprof {
		h.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		h.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		h.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		h.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Versions is etcd's /version body.
type Versions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
}

// clusterVersion is major.minor.0 of the etcd release Concord speaks, as
// etcd reports its cluster version.
func clusterVersion() string {
	parts := strings.SplitN(version.Version, ".", 3)
	if len(parts) < 2 {
		return version.Version
	}
	return parts[0] + "." + parts[1] + ".0"
}

func (h *Handler) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Versions{Server: version.Version, Cluster: clusterVersion()})
}

// Health is etcd's /health body; both fields are strings, as etcd's.
type Health struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// health follows etcd's /health: unhealthy on an active alarm (unless
// ?exclude=<ALARM> names it), on no leader, or when a linearizable read
// (?serializable=true: a local one) of the key "health" fails.
func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	excluded := q["exclude"]
	for _, a := range h.m.Alarms() {
		name := a.GetAlarm().String()
		if slices.Contains(excluded, name) {
			continue
		}
		h.unhealthy(w, "ALARM "+name)
		return
	}
	if h.m.Leader() == 0 {
		h.unhealthy(w, "RAFT NO LEADER")
		return
	}
	if err := h.read(r.Context(), q.Get("serializable") == "true"); err != nil {
		h.unhealthy(w, "QGET ERROR:"+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, Health{Health: "true"})
}

func (h *Handler) unhealthy(w http.ResponseWriter, reason string) {
	h.logger.Warn("serving /health false", "reason", reason)
	writeJSON(w, http.StatusServiceUnavailable, Health{Health: "false", Reason: reason})
}

func (h *Handler) read(ctx context.Context, serializable bool) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	_, _, err := h.m.Range(ctx, &command.RangeRequest{Key: []byte("health"), Serializable: serializable})
	return err
}

// check is one named probe of /livez or /readyz; nil means it passed.
type check struct {
	name string
	run  func(h *Handler, ctx context.Context) error
}

var (
	checkSerializableRead = check{"serializable_read", func(h *Handler, ctx context.Context) error { return h.read(ctx, true) }}
	checkLinearizableRead = check{"linearizable_read", func(h *Handler, ctx context.Context) error { return h.read(ctx, false) }}
	checkDataCorruption   = check{"data_corruption", func(h *Handler, _ context.Context) error {
		for _, a := range h.m.Alarms() {
			if a.GetAlarm() == command.AlarmRequest_CORRUPT {
				return errors.New("CORRUPT alarm active")
			}
		}
		return nil
	}}
	// etcd's split: alive means the process serves local reads; ready means
	// it also is not corrupt and can serve linearizable reads.
	livezChecks  = []check{checkSerializableRead}
	readyzChecks = []check{checkDataCorruption, checkSerializableRead, checkLinearizableRead}
)

// probe serves /livez or /readyz as etcd does: "ok" when every check not
// excluded (?exclude=name) passes, otherwise 503 with one line per check;
// ?verbose lists the checks on success too.
func (h *Handler) probe(checks []check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_, verbose := q["verbose"]
		excluded := q["exclude"]
		var b strings.Builder
		failed := false
		for _, c := range checks {
			if slices.Contains(excluded, c.name) {
				fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.name)
				continue
			}
			if err := c.run(h, r.Context()); err != nil {
				failed = true
				fmt.Fprintf(&b, "[-]%s failed: %v\n", c.name, err)
				continue
			}
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if failed {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "%s%s check failed\n", b.String(), strings.TrimPrefix(r.URL.Path, "/"))
			return
		}
		if verbose {
			fmt.Fprintf(w, "%sok\n", b.String())
			return
		}
		fmt.Fprint(w, "ok\n")
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}
