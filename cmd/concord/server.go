package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	fl.StringVar(&f.initialCluster, "initial-cluster", "", "founding members: name=http://host:port,... (default <name>=<advertise-peer>)")
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
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
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
	if err := checkHostPort("listen-peer", f.listenPeer); err != nil {
		return cfg, err
	}
	if err := checkHostPort("listen-client", f.listenClient); err != nil {
		return cfg, err
	}
	advClient := f.advertiseClient
	if advClient == "" {
		advClient = f.listenClient
	}
	if err := checkHostPort("advertise-client", advClient); err != nil {
		return cfg, err
	}
	advPeer := f.advertisePeer
	if advPeer == "" {
		advPeer = "http://" + f.listenPeer
	}
	if _, err := server.PeerAddr(advPeer); err != nil {
		return cfg, fmt.Errorf("--advertise-peer: %w", err)
	}
	ic := f.initialCluster
	if ic == "" {
		ic = f.name + "=" + advPeer
	}
	peers, err := server.ParseInitialCluster(ic)
	if err != nil {
		return cfg, fmt.Errorf("--initial-cluster: %w", err)
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
	cfg.ClientURLs = []string{"http://" + advClient}
	cfg.HeartbeatInterval = f.heartbeat
	cfg.ElectionTimeout = f.election
	cfg.SnapshotCount = f.snapshotCount
	cfg.SnapshotCatchUpEntries = f.catchUpEntries
	cfg.MaxRequestBytes = f.maxRequestBytes
	cfg.MaxTxnOps = f.maxTxnOps
	for _, p := range peers {
		if p.Name == f.name && p.URL != advPeer {
			return cfg, fmt.Errorf("--initial-cluster gives %s the peer URL %s but --advertise-peer is %s", f.name, p.URL, advPeer)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, errors.New(strings.TrimPrefix(err.Error(), "server: "))
	}
	return cfg, nil
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

	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	peerLn, err := net.Listen("tcp", f.listenPeer)
	if err != nil {
		srv.Stop()
		return fmt.Errorf("listen for peers: %w", err)
	}
	clientLn, err := net.Listen("tcp", f.listenClient)
	if err != nil {
		peerLn.Close()
		srv.Stop()
		return fmt.Errorf("listen for clients: %w", err)
	}
	if err := srv.Start(peerLn); err != nil {
		clientLn.Close()
		srv.Stop()
		return err
	}
	g := etcdfe.NewGRPCServer(srv, etcdfe.Config{MaxRequestBytes: cfg.MaxRequestBytes})
	serveErr := make(chan error, 1)
	go func() { serveErr <- g.Serve(clientLn) }()
	logger.Info("serving", "member-id", fmt.Sprintf("%x", srv.ID()), "cluster-id", fmt.Sprintf("%x", srv.ClusterID()),
		"client", clientLn.Addr().String(), "peer", peerLn.Addr().String(), "data-dir", cfg.DataDir)

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
	// Hand leadership over before refusing clients, so the cluster stays
	// writable through a rolling restart.
	srv.Stop()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		g.Stop()
	}
	if runErr != nil {
		return runErr
	}
	logger.Info("stopped")
	return nil
}
