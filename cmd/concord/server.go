package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/concord-db/concord/internal/admin"
	etcdfe "github.com/concord-db/concord/internal/frontend/etcd"
	"github.com/concord-db/concord/internal/server"
)

func init() { subcommands = append(subcommands, newServerCmd) }

// msDuration is a duration flag that also takes etcd's plain integer
// milliseconds ("100" means 100ms), so etcd's flag values keep working.
type msDuration struct{ d *time.Duration }

func (m msDuration) String() string {
	if m.d == nil {
		return ""
	}
	return m.d.String()
}

func (m msDuration) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return fmt.Errorf("%q must be positive", s)
		}
		*m.d = time.Duration(n) * time.Millisecond
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither milliseconds nor a duration like 100ms", s)
	}
	if d <= 0 {
		return fmt.Errorf("%q must be positive", s)
	}
	*m.d = d
	return nil
}

func (m msDuration) Type() string { return "duration" }

type serverFlags struct {
	name, dataDir, initialCluster, clusterState, clusterToken string
	listenPeer, listenClient, advertiseClient, advertisePeer  string
	heartbeat, election                                       time.Duration
	snapshotCount, catchUpEntries                             uint64
	maxRequestBytes, maxTxnOps                                int
	logLevel                                                  string

	// etcd's flags (server_urls.go resolves them against the ones above).
	listenClientURLs, advertiseClientURLs, listenPeerURLs    string
	initialAdvertisePeerURLs, listenMetricsURLs, adminListen string
	quotaBackendBytes                                        int64
	autoCompactionMode, autoCompactionRetention              string
	autoCompactionInterval, corruptCheckTime                 time.Duration
	strictReconfigCheck                                      bool
	autoPromote                                              bool

	watchProgressNotifyInterval time.Duration // watch.go's server side
	watchBufferEvents           int
	watchBatchInterval          time.Duration

	faultInjection bool // serve the fault API (fault.go is its CLI)
	enablePprof    bool

	// The unsafe switches (server.Config.Unsafe*): each breaks one
	// guarantee so the checkers can be seen to catch it.
	unsafeLocalReads, unsafeNoFsync, unsafeLeaseExpiry bool

	tls serverTLSFlags // server_tls.go

	// etcd's auth flags; server.New checks their content.
	authToken    string
	authTokenTTL uint // seconds
	bcryptCost   int
}

func newServerCmd() *cobra.Command {
	f := serverFlags{
		heartbeat: 100 * time.Millisecond,
		election:  1000 * time.Millisecond,
	}
	def := server.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run one Concord member",
		Long: `Run one Concord member. Every flag can also be set through an environment
variable CONCORD_<FLAG> (upper case, dashes as underscores), e.g.
CONCORD_INITIAL_CLUSTER. A flag given on the command line wins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			cfg, err := f.config()
			if err != nil {
				return usageError{err}
			}
			return runServer(cmd.Context(), cfg, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "default", "human-readable name of this member")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the WAL and snapshots (default ./concord-data/<name>)")
	fl.StringVar(&f.initialCluster, "initial-cluster", "", "founding members: name=http://host:port,... (https://: TLS peer links; default <name>=<advertise-peer>)")
	fl.StringVar(&f.clusterState, "initial-cluster-state", "new", "new (bootstrap) or existing (join a running cluster)")
	fl.StringVar(&f.clusterToken, "initial-cluster-token", def.ClusterToken, "token that makes this cluster's ids unique")
	fl.StringVar(&f.listenPeer, "listen-peer", "127.0.0.1:2380", "host:port for peer (raft) traffic")
	fl.StringVar(&f.listenClient, "listen-client", "127.0.0.1:2379", "host:port for etcd gRPC clients")
	fl.StringVar(&f.advertiseClient, "advertise-client", "", "host:port clients should use (default --listen-client)")
	fl.StringVar(&f.advertisePeer, "advertise-peer", "", "URL other members use, as in --initial-cluster (default http://<listen-peer>)")
	fl.Var(msDuration{&f.heartbeat}, "heartbeat-interval", "raft heartbeat interval (100ms; a plain number is milliseconds)")
	fl.Var(msDuration{&f.election}, "election-timeout", "raft election timeout (1000ms; a plain number is milliseconds)")
	fl.Uint64Var(&f.snapshotCount, "snapshot-count", def.SnapshotCount, "applied entries between snapshots")
	fl.Uint64Var(&f.catchUpEntries, "snapshot-catchup-entries", def.SnapshotCatchUpEntries, "entries kept in the log behind a snapshot for slow followers")
	fl.IntVar(&f.maxRequestBytes, "max-request-bytes", def.MaxRequestBytes, "largest client request in bytes")
	fl.IntVar(&f.maxTxnOps, "max-txn-ops", def.MaxTxnOps, "most operations in one txn")
	fl.DurationVar(&f.watchProgressNotifyInterval, "watch-progress-notify-interval", def.WatchProgressNotifyInterval, "period of progress notifications for watchers that ask for them")
	fl.DurationVar(&f.watchBatchInterval, "watch-batch-interval", def.WatchBatchInterval, "least time between rounds of responses of a watch stream that falls behind the writes, so each watcher gets its events of the interval in one response (0: no wait)")
	fl.IntVar(&f.watchBufferEvents, "watch-buffer-events", 1024, "events buffered per watcher for a slow client before it catches up from history")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")

	// etcd's flag names, so an etcd command line starts Concord. Each URL
	// list flag wins over its Concord host:port twin above.
	fl.StringVar(&f.listenClientURLs, "listen-client-urls", "", "URLs to serve clients on, http://host:port or https://host:port (TLS),... (etcd; overrides --listen-client)")
	fl.StringVar(&f.advertiseClientURLs, "advertise-client-urls", "", "client URLs published to the member list (etcd; default the listen URLs)")
	fl.StringVar(&f.listenPeerURLs, "listen-peer-urls", "", "URLs to serve peers on; https:// serves TLS (etcd; overrides --listen-peer)")
	fl.StringVar(&f.initialAdvertisePeerURLs, "initial-advertise-peer-urls", "", "this member's peer URL as in --initial-cluster (etcd; overrides --advertise-peer)")
	fl.StringVar(&f.listenMetricsURLs, "listen-metrics-urls", "", "URLs to serve /metrics, /health, /livez, /readyz and /version on (etcd); the client port serves them too")
	fl.StringVar(&f.adminListen, "admin-listen", "", "host:port for the admin HTTP endpoints (like --listen-metrics-urls)")
	fl.Int64Var(&f.quotaBackendBytes, "quota-backend-bytes", 0, "store size in bytes that raises the NOSPACE alarm and refuses writes (0: 2 GiB; negative: no quota)")
	fl.StringVar(&f.autoCompactionMode, "auto-compaction-mode", server.CompactionPeriodic, "periodic (retention is a duration or hours) or revision (retention is a revision count)")
	fl.StringVar(&f.autoCompactionRetention, "auto-compaction-retention", "0", "history the leader keeps when it auto-compacts; 0 disables")
	fl.DurationVar(&f.autoCompactionInterval, "auto-compaction-interval", 0, "how often revision-mode auto-compaction runs (0: 5m, as etcd)")
	fl.DurationVar(&f.corruptCheckTime, "experimental-corrupt-check-time", 0, "interval of the leader's cross-member HashKV check that raises the CORRUPT alarm (0: off)")
	fl.DurationVar(&f.corruptCheckTime, "corrupt-check-time", 0, "same as --experimental-corrupt-check-time")
	fl.BoolVar(&f.strictReconfigCheck, "strict-reconfig-check", def.StrictReconfigCheck, "refuse membership changes that could cost the cluster its quorum")
	// Accepted for compatibility with etcd command lines; they change nothing.
	for _, name := range []string{"logger", "log-outputs"} {
		fl.String(name, "", "accepted for etcd compatibility; ignored")
		fl.MarkHidden(name)
	}
	fl.BoolVar(&f.enablePprof, "enable-pprof", false, "serve Go's runtime profiles under /debug/pprof/ on the client and metrics URLs (etcd)")
	for _, name := range []string{"enable-v2", "experimental-initial-corrupt-check"} {
		fl.Bool(name, false, "accepted for etcd compatibility; ignored")
		fl.MarkHidden(name)
	}
	fl.BoolVar(&f.faultInjection, "fault-injection", false, "serve the fault API (/v1/faults on the client and metrics ports) that drops, delays and partitions this member's peer traffic; for testing, never on a cluster you need")
	fl.BoolVar(&f.unsafeLocalReads, "unsafe-local-reads", false, "UNSAFE, for testing checkers: serve linearizable reads from local state without ReadIndex (a partitioned member returns stale data)")
	fl.BoolVar(&f.unsafeNoFsync, "unsafe-no-fsync", false, "UNSAFE, for testing checkers: acknowledge writes without fsyncing the WAL (a power loss loses acknowledged writes)")
	fl.BoolVar(&f.unsafeLeaseExpiry, "unsafe-lease-expiry-without-quorum", false, "UNSAFE, for testing checkers: revoke expired leases without first confirming leadership (a deposed leader can revoke a live lease)")
	fl.BoolVar(&f.autoPromote, "auto-promote", false, "as leader, promote a learner as soon as it has caught up (etcd needs member promote)")
	f.tls.register(fl)
	fl.StringVar(&f.authToken, "auth-token", "simple", "auth token type and options: simple, or jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m (etcd)")
	fl.UintVar(&f.authTokenTTL, "auth-token-ttl", 300, "seconds a simple auth token lives after its last use")
	fl.IntVar(&f.bcryptCost, "bcrypt-cost", 10, "cost of the bcrypt hashes of auth passwords (4 to 31)")
	return cmd
}

// applyEnv fills every flag not set on the command line from CONCORD_<FLAG>.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed {
			return
		}
		key := "CONCORD_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if e := fs.Set(fl.Name, v); e != nil {
				err = usagef("invalid value %q for %s: %v", v, key, e)
			}
		}
	})
	return err
}

func checkHostPort(flag, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("--%s %q: want host:port", flag, v)
	}
	if host == "" {
		return fmt.Errorf("--%s %q: host is empty", flag, v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("--%s %q: bad port", flag, v)
	}
	return nil
}

func (f serverFlags) config() (server.Config, error) {
	cfg := server.DefaultConfig()
	addrs, err := f.addrs()
	if err != nil {
		return cfg, err
	}
	advPeer := addrs.advertisePeer
	if _, err := server.PeerAddr(advPeer); err != nil {
		return cfg, fmt.Errorf("--advertise-peer: %w", err)
	}
	ac, err := server.ParseAutoCompaction(f.autoCompactionMode, f.autoCompactionRetention)
	if err != nil {
		return cfg, fmt.Errorf("--auto-compaction-retention: %w", err)
	}
	ac.Interval = f.autoCompactionInterval
	if f.corruptCheckTime < 0 {
		return cfg, fmt.Errorf("--experimental-corrupt-check-time must not be negative, got %v", f.corruptCheckTime)
	}
	ic := f.initialCluster
	if ic == "" {
		ic = f.name + "=" + advPeer
	}
	peers, err := server.ParseInitialCluster(ic)
	if err != nil {
		return cfg, fmt.Errorf("--initial-cluster: %w", err)
	}
	if err := f.tls.check(addrs, peers); err != nil {
		return cfg, err
	}
	if f.clusterState != "new" && f.clusterState != "existing" {
		return cfg, fmt.Errorf("--initial-cluster-state %q: want new or existing", f.clusterState)
	}
	if _, err := parseLevel(f.logLevel); err != nil {
		return cfg, err
	}
	cfg.Name = f.name
	cfg.DataDir = f.dataDir
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join("concord-data", f.name)
	}
	cfg.InitialCluster = peers
	cfg.ClusterState = f.clusterState
	cfg.ClusterToken = f.clusterToken
	cfg.ClientURLs = addrs.advertiseClient
	cfg.QuotaBackendBytes = f.quotaBackendBytes
	cfg.AutoCompaction = ac
	cfg.StrictReconfigCheck = f.strictReconfigCheck
	cfg.HeartbeatInterval = f.heartbeat
	cfg.ElectionTimeout = f.election
	cfg.SnapshotCount = f.snapshotCount
	cfg.SnapshotCatchUpEntries = f.catchUpEntries
	cfg.MaxRequestBytes = f.maxRequestBytes
	cfg.MaxTxnOps = f.maxTxnOps
	cfg.WatchProgressNotifyInterval = f.watchProgressNotifyInterval
	cfg.WatchBufferEvents = f.watchBufferEvents
	cfg.WatchBatchInterval = f.watchBatchInterval
	cfg.AutoPromote = f.autoPromote
	cfg.FaultInjection = f.faultInjection
	cfg.UnsafeLocalReads = f.unsafeLocalReads
	cfg.UnsafeNoFsync = f.unsafeNoFsync
	cfg.UnsafeLeaseExpiryWithoutQuorum = f.unsafeLeaseExpiry
	cfg.AuthToken = f.authToken
	cfg.AuthTokenTTL = time.Duration(f.authTokenTTL) * time.Second
	cfg.BcryptCost = f.bcryptCost
	for _, p := range peers {
		if p.Name == f.name && p.URL != advPeer {
			return cfg, fmt.Errorf("--initial-cluster gives %s the peer URL %s but its advertised peer URL (--initial-advertise-peer-urls or --advertise-peer) is %s", f.name, p.URL, advPeer)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, errors.New(strings.TrimPrefix(err.Error(), "server: "))
	}
	return cfg, nil
}

// warnUnsafe logs one WARN line for every unsafe switch that is on, naming
// the guarantee it breaks, so nobody runs one by accident unnoticed.
func warnUnsafe(logger *slog.Logger, cfg server.Config) {
	for _, u := range []struct {
		on          bool
		flag, broke string
	}{
		{cfg.UnsafeLocalReads, "--unsafe-local-reads", "linearizable reads are served from local state without ReadIndex: a partitioned or lagging member returns stale data"},
		{cfg.UnsafeNoFsync, "--unsafe-no-fsync", "the WAL is never fsynced: a power loss or kernel crash loses acknowledged writes"},
		{cfg.UnsafeLeaseExpiryWithoutQuorum, "--unsafe-lease-expiry-without-quorum", "expired leases are revoked without confirming leadership: a deposed leader can revoke a lease the cluster still honours"},
	} {
		if u.on {
			logger.Warn("UNSAFE MODE: "+u.flag+" is on; never use it on a cluster you need", "breaks", u.broke)
		}
	}
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func runServer(ctx context.Context, cfg server.Config, f serverFlags) error {
	level, _ := parseLevel(f.logLevel)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("member", cfg.Name)
	cfg.Logger = logger
	warnUnsafe(logger, cfg)
	tuneGC(ctx, logger)
	addrs, err := f.addrs()
	if err != nil {
		return err
	}
	mt, err := f.tls.build(addrs, cfg.DataDir, time.Now(), logger)
	if err != nil {
		return err
	}
	cfg.PeerTLS = mt.peerClient

	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	var lns []net.Listener
	fail := func(err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		srv.Stop()
		return err
	}
	peerLns, err := listenAll("peers", addrs.listenPeer, addrs.peerTLS, mt.peerServer)
	if err != nil {
		return fail(err)
	}
	lns = append(lns, peerLns...)
	clientLns, err := listenAll("clients", addrs.listenClient, addrs.clientTLS, mt.client)
	if err != nil {
		return fail(err)
	}
	lns = append(lns, clientLns...)
	metricsLns, err := listenAll("metrics", addrs.listenMetrics, addrs.metricsTLS, mt.client)
	if err != nil {
		return fail(err)
	}
	lns = append(lns, metricsLns...)
	adminHandler, err := admin.New(admin.Config{Member: srv, Faults: srv.Faults(), Pprof: f.enablePprof, Logger: logger.With("component", "admin")})
	if err != nil {
		return fail(err)
	}
	if err := srv.Start(mergeListeners(peerLns)); err != nil {
		return fail(err)
	}
	feCfg := etcdfe.Config{MaxRequestBytes: cfg.MaxRequestBytes, MemberTLS: mt.memberClient}
	// One gRPC server serves the plain and the TLS client listeners alike:
	// TLS ends under the port mux, and these credentials read each
	// connection's own TLS state (none on a plain listener).
	if mt.client != nil {
		feCfg.Creds = etcdfe.TLSInfoCredsWithoutIdentity()
		if mt.clientCertAuth {
			feCfg.Creds = etcdfe.TLSInfoCreds()
		}
	}
	g := etcdfe.NewGRPCServer(srv, feCfg)
	httpSrv := &http.Server{Handler: adminHandler, ReadHeaderTimeout: 10 * time.Second}
	// Every client port serves gRPC and, for operators, HTTP/1.1 (package
	// admin explains why it sniffs rather than routing through h2c).
	serveErr := make(chan error, 1)
	var muxes []*admin.PortMux
	for _, ln := range clientLns {
		mux := admin.NewPortMux(ln)
		muxes = append(muxes, mux)
		go mux.Serve()
		go func() {
			if err := g.Serve(mux.GRPC()); err != nil {
				select {
				case serveErr <- err:
				default:
				}
			}
		}()
		go httpSrv.Serve(mux.HTTP())
	}
	for _, ln := range metricsLns {
		go httpSrv.Serve(ln)
	}
	var checker *etcdfe.CorruptChecker
	if f.corruptCheckTime > 0 {
		checker, err = etcdfe.StartCorruptChecker(srv, etcdfe.CorruptCheckConfig{
			Interval: f.corruptCheckTime, TLS: mt.memberClient, Logger: logger.With("component", "corrupt-check"),
		})
		if err != nil {
			g.Stop()
			return fail(err)
		}
	}
	var clientAddrs, metricsAddrs []string
	for _, ln := range clientLns {
		clientAddrs = append(clientAddrs, ln.Addr().String())
	}
	for _, ln := range metricsLns {
		metricsAddrs = append(metricsAddrs, ln.Addr().String())
	}
	logger.Info("serving", "member-id", fmt.Sprintf("%x", srv.ID()), "cluster-id", fmt.Sprintf("%x", srv.ClusterID()),
		"client", strings.Join(clientAddrs, ","), "peer", strings.Join(addrs.listenPeer, ","),
		"metrics", strings.Join(metricsAddrs, ","), "data-dir", cfg.DataDir,
		"client-tls", mt.client != nil, "peer-tls", mt.peerServer != nil || mt.peerClient != nil)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	ready := time.NewTicker(cfg.HeartbeatInterval / 2)
	defer ready.Stop()
	announced := false
	var runErr error
loop:
	for {
		select {
		case <-ready.C:
			if !announced && srv.Ready() {
				announced = true
				logger.Info("ready to serve client requests")
				ready.Stop()
			}
		case sig := <-sigs:
			logger.Info("received signal; stopping", "signal", sig.String())
			break loop
		case <-srv.Done():
			runErr = srv.Err()
			break loop
		case err := <-serveErr:
			runErr = fmt.Errorf("serving clients: %w", err)
			break loop
		}
	}
	if checker != nil {
		checker.Close()
	}
	// Hand leadership over before refusing clients, so the cluster stays
	// writable through a rolling restart.
	srv.Stop()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Second):
		g.Stop()
	}
	httpSrv.Close()
	for _, m := range muxes {
		m.Close()
	}
	for _, ln := range lns {
		ln.Close()
	}
	if runErr != nil {
		return runErr
	}
	logger.Info("stopped")
	return nil
}
