package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseURLs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{"http://localhost:2379", []string{"http://localhost:2379"}, ""},
		{"http://127.0.0.1:2379, http://10.0.0.1:2379/", []string{"http://127.0.0.1:2379", "http://10.0.0.1:2379"}, ""},
		{"https://127.0.0.1:2379", []string{"https://127.0.0.1:2379"}, ""},
		{"http://127.0.0.1:1,https://127.0.0.1:2", []string{"http://127.0.0.1:1", "https://127.0.0.1:2"}, ""},
		{"unix://x:1", nil, "unix socket URLs are not supported"},
		{"unixs://x:1", nil, "unix socket URLs are not supported"},
		{"ftp://127.0.0.1:1", nil, "want http://host:port or https://host:port"},
		{"127.0.0.1:2379", nil, "want http://host:port"},
		{"http://127.0.0.1", nil, "host:port"},
		{"http://127.0.0.1:2379/v3", nil, "no path"},
		{",", nil, "no URL"},
	}
	for _, c := range cases {
		got, err := parseURLs("f", c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseURLs(%q) err = %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseURLs(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestListenAddrsExpandsLocalhost(t *testing.T) {
	req, opt := listenAddrs("localhost:2379")
	if req != "127.0.0.1:2379" || !slices.Equal(opt, []string{"[::1]:2379"}) {
		t.Errorf("listenAddrs(localhost:2379) = %q, %q", req, opt)
	}
	if req, opt := listenAddrs("0.0.0.0:2379"); req != "0.0.0.0:2379" || opt != nil {
		t.Errorf("listenAddrs(0.0.0.0:2379) = %q, %q", req, opt)
	}
}

// etcdCommandLine is an etcd member's command line (with localhost URLs,
// several client URLs and flags Concord accepts and ignores).
var etcdCommandLine = []string{
	"--name", "infra1",
	"--data-dir", "/tmp/infra1",
	"--listen-client-urls", "http://localhost:2379,http://127.0.0.2:2379",
	"--advertise-client-urls", "http://localhost:2379",
	"--listen-peer-urls", "http://localhost:2380",
	"--initial-advertise-peer-urls", "http://localhost:2380",
	"--initial-cluster", "infra1=http://localhost:2380,infra2=http://localhost:12380",
	"--initial-cluster-token", "tok",
	"--initial-cluster-state", "new",
	"--listen-metrics-urls", "http://localhost:2381",
	"--heartbeat-interval", "50",
	"--election-timeout", "500",
	"--snapshot-count", "5000",
	"--quota-backend-bytes", "8589934592",
	"--auto-compaction-mode", "revision",
	"--auto-compaction-retention", "1000",
	"--max-request-bytes", "2097152",
	"--max-txn-ops", "256",
	"--strict-reconfig-check=false",
	"--experimental-corrupt-check-time", "1m",
	"--logger", "zap",
	"--log-outputs", "stderr",
	"--enable-v2=false",
	"--experimental-initial-corrupt-check=true",
}

func TestEtcdCommandLineParses(t *testing.T) {
	if err := newServerCmd().Flags().Parse(etcdCommandLine); err != nil {
		t.Fatalf("parsing an etcd command line: %v", err)
	}
}

// TestEtcdFlagsConfig checks what the etcd command line above becomes.
func TestEtcdFlagsConfig(t *testing.T) {
	f := serverFlags{
		name: "infra1", dataDir: "/tmp/infra1",
		listenClient: "127.0.0.1:2379", listenPeer: "127.0.0.1:2380", // Concord's defaults, overridden
		listenClientURLs:         "http://localhost:2379,http://127.0.0.2:2379",
		advertiseClientURLs:      "http://localhost:2379",
		listenPeerURLs:           "http://localhost:2380",
		initialAdvertisePeerURLs: "http://localhost:2380",
		initialCluster:           "infra1=http://localhost:2380,infra2=http://localhost:12380",
		clusterToken:             "tok", clusterState: "new",
		listenMetricsURLs: "http://localhost:2381",
		heartbeat:         50 * time.Millisecond, election: 500 * time.Millisecond,
		snapshotCount: 5000, catchUpEntries: 5000,
		quotaBackendBytes:  8 << 30,
		autoCompactionMode: "revision", autoCompactionRetention: "1000",
		maxRequestBytes: 2 << 20, maxTxnOps: 256,
		strictReconfigCheck: false,
		logLevel:            "info",
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if cfg.Name != "infra1" || cfg.DataDir != "/tmp/infra1" || cfg.ClusterToken != "tok" || len(cfg.InitialCluster) != 2 {
		t.Errorf("identity = %q %q %q %v", cfg.Name, cfg.DataDir, cfg.ClusterToken, cfg.InitialCluster)
	}
	if !slices.Equal(cfg.ClientURLs, []string{"http://localhost:2379"}) {
		t.Errorf("ClientURLs = %v", cfg.ClientURLs)
	}
	if cfg.QuotaBackendBytes != 8<<30 || cfg.MaxRequestBytes != 2<<20 || cfg.MaxTxnOps != 256 || cfg.StrictReconfigCheck {
		t.Errorf("limits = %d %d %d %v", cfg.QuotaBackendBytes, cfg.MaxRequestBytes, cfg.MaxTxnOps, cfg.StrictReconfigCheck)
	}
	if cfg.AutoCompaction.Mode != "revision" || cfg.AutoCompaction.Revisions != 1000 {
		t.Errorf("AutoCompaction = %+v", cfg.AutoCompaction)
	}
	a, err := f.addrs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.listenClient, []string{"localhost:2379", "127.0.0.2:2379"}) || !slices.Equal(a.listenPeer, []string{"localhost:2380"}) ||
		!slices.Equal(a.listenMetrics, []string{"localhost:2381"}) || a.advertisePeer != "http://localhost:2380" {
		t.Errorf("addrs = %+v", a)
	}

	// Without the URL flags, Concord's host:port flags decide.
	f = serverFlags{listenClient: "127.0.0.1:1", listenPeer: "127.0.0.1:2", advertiseClient: "10.0.0.1:1"}
	if a, err := f.addrs(); err != nil || !slices.Equal(a.listenClient, []string{"127.0.0.1:1"}) ||
		!slices.Equal(a.advertiseClient, []string{"http://10.0.0.1:1"}) || a.advertisePeer != "http://127.0.0.1:2" {
		t.Errorf("addrs from Concord flags = %+v, %v", a, err)
	}
}

func TestServerFlagErrors(t *testing.T) {
	base := func() serverFlags {
		return serverFlags{name: "a", listenClient: "127.0.0.1:1", listenPeer: "127.0.0.1:2", clusterState: "new",
			clusterToken: "t", heartbeat: 100 * time.Millisecond, election: time.Second, snapshotCount: 10,
			maxRequestBytes: 1, maxTxnOps: 1, logLevel: "info", autoCompactionMode: "periodic", autoCompactionRetention: "0"}
	}
	cases := []struct {
		want string
		mod  func(*serverFlags)
	}{
		{"advertised peer URL", func(f *serverFlags) {
			f.initialCluster, f.initialAdvertisePeerURLs = "a=http://127.0.0.1:1", "http://127.0.0.1:2"
		}},
		{"TLS key/cert (--cert-file, --key-file) must be provided", func(f *serverFlags) { f.listenClientURLs = "https://127.0.0.1:2379" }},
		{"auto-compaction", func(f *serverFlags) { f.autoCompactionMode, f.autoCompactionRetention = "revision", "1h" }},
		{"corrupt-check-time", func(f *serverFlags) { f.corruptCheckTime = -time.Second }},
	}
	if _, err := base().config(); err != nil {
		t.Fatalf("base config: %v", err)
	}
	for _, c := range cases {
		f := base()
		c.mod(&f)
		if _, err := f.config(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config err = %v, want one mentioning %q", err, c.want)
		}
	}
}
