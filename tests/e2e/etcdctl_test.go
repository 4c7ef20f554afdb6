package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdctl runs the real etcdctl (v3 API) against the cluster's endpoints.
func etcdctl(t *testing.T, c *Cluster, stdin string, args ...string) cmdResult {
	t.Helper()
	args = append([]string{"--endpoints=" + strings.Join(c.Endpoints(), ",")}, args...)
	return runCmd(t, []string{"ETCDCTL_API=3"}, stdin, "etcdctl", args...)
}

// etcdctlOK runs etcdctl, requires exit 0 and returns stdout.
func etcdctlOK(t *testing.T, c *Cluster, stdin string, args ...string) string {
	t.Helper()
	r := etcdctl(t, c, stdin, args...)
	if r.code != 0 {
		t.Fatalf("etcdctl %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// lines splits output into its non-empty lines (etcdctl prints an empty
// value line for --keys-only, and blank separators in txn output).
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestEtcdctl drives the cluster with the real etcdctl and checks what it
// prints.
func TestEtcdctl(t *testing.T) {
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Skip("etcdctl is not on PATH; CI installs Debian's etcd-client (3.4.23) to run this test")
	}
	c := NewCluster(t, ClusterOptions{Size: 3})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)

	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("etcdctl %s printed:\n%q\nwant:\n%q", what, got, want)
		}
	}

	// put / get / get --rev.
	check("put foo bar", etcdctlOK(t, c, "", "put", "foo", "bar"), "OK\n")
	r1, err := c.All().Get(reqCtx(t), "foo")
	if err != nil || len(r1.Kvs) != 1 {
		t.Fatalf("clientv3 Get(foo) after etcdctl put = %v, %v", r1, err)
	}
	rev1 := r1.Kvs[0].ModRevision
	check("put foo bar2", etcdctlOK(t, c, "", "put", "foo", "bar2"), "OK\n")
	check("get foo", etcdctlOK(t, c, "", "get", "foo"), "foo\nbar2\n")
	check(fmt.Sprintf("get foo --rev=%d", rev1), etcdctlOK(t, c, "", "get", "foo", fmt.Sprintf("--rev=%d", rev1)), "foo\nbar\n")
	check("get missing", etcdctlOK(t, c, "", "get", "missing"), "")

	// Ranges over a prefix.
	for _, k := range []string{"p/a", "p/b", "p/c"} {
		etcdctlOK(t, c, "", "put", k, "val-"+k)
	}
	etcdctlOK(t, c, "", "put", "q/outside", "x")
	check("get p/ --prefix", etcdctlOK(t, c, "", "get", "p/", "--prefix"), "p/a\nval-p/a\np/b\nval-p/b\np/c\nval-p/c\n")
	check("get p/ --prefix --limit=2", etcdctlOK(t, c, "", "get", "p/", "--prefix", "--limit=2"), "p/a\nval-p/a\np/b\nval-p/b\n")
	check("get p/ --prefix --sort-by=KEY --order=DESCEND", etcdctlOK(t, c, "", "get", "p/", "--prefix", "--sort-by=KEY", "--order=DESCEND"), "p/c\nval-p/c\np/b\nval-p/b\np/a\nval-p/a\n")
	if got, want := lines(etcdctlOK(t, c, "", "get", "p/", "--prefix", "--keys-only")), []string{"p/a", "p/b", "p/c"}; !slices.Equal(got, want) {
		t.Errorf("etcdctl get p/ --prefix --keys-only printed lines %q, want %q", got, want)
	}
	var counted struct {
		Count int64             `json:"count"`
		Kvs   []json.RawMessage `json:"kvs"`
	}
	// --count-only arrived in etcdctl 3.5; 3.4 (Debian's) rejects the flag
	// before dialing, and the count is then checked through -w json below
	// and through clientv3's WithCountOnly.
	if r := etcdctl(t, c, "", "get", "p/", "--prefix", "--count-only", "-w", "json"); r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &counted); err != nil {
			t.Fatalf("etcdctl get --count-only -w json printed %q: %v", r.stdout, err)
		}
		if counted.Count != 3 || len(counted.Kvs) != 0 {
			t.Errorf("etcdctl get p/ --prefix --count-only: count %d with %d kvs, want count 3 and no kvs (%s)", counted.Count, len(counted.Kvs), r.stdout)
		}
	} else if !strings.Contains(r.stderr, "unknown flag: --count-only") {
		t.Errorf("etcdctl get --count-only: %s", r)
	} else {
		t.Log("this etcdctl has no --count-only; checking count via -w json and clientv3")
		resp, err := c.All().Get(reqCtx(t), "p/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatalf("clientv3 Get(p/*, count only): %v", err)
		}
		if resp.Count != 3 || len(resp.Kvs) != 0 {
			t.Errorf("clientv3 Get(p/*, count only): count %d with %d kvs, want 3 and none", resp.Count, len(resp.Kvs))
		}
	}
	out := etcdctlOK(t, c, "", "get", "p/", "--prefix", "-w", "json")
	counted.Kvs = nil
	if err := json.Unmarshal([]byte(out), &counted); err != nil {
		t.Fatalf("etcdctl get -w json printed %q: %v", out, err)
	}
	if counted.Count != 3 || len(counted.Kvs) != 3 {
		t.Errorf("etcdctl get p/ --prefix -w json: count %d with %d kvs, want 3 and 3", counted.Count, len(counted.Kvs))
	}
	// --limit does not change count (Kubernetes depends on it).
	out = etcdctlOK(t, c, "", "get", "p/", "--prefix", "--limit=1", "-w", "json")
	counted.Kvs = nil
	if err := json.Unmarshal([]byte(out), &counted); err != nil {
		t.Fatalf("etcdctl get --limit=1 -w json printed %q: %v", out, err)
	}
	if counted.Count != 3 || len(counted.Kvs) != 1 {
		t.Errorf("etcdctl get p/ --prefix --limit=1: count %d with %d kvs, want count 3 and 1 kv", counted.Count, len(counted.Kvs))
	}

	// del prints the number of deleted keys.
	check("del p/ --prefix", etcdctlOK(t, c, "", "del", "p/", "--prefix"), "3\n")
	check("del p/a", etcdctlOK(t, c, "", "del", "p/a"), "0\n")
	check("get p/ --prefix after del", etcdctlOK(t, c, "", "get", "p/", "--prefix"), "")
	check("get q/outside", etcdctlOK(t, c, "", "get", "q/outside"), "q/outside\nx\n")

	// txn from a script: compares, blank line, success ops, blank line,
	// failure ops.
	etcdctlOK(t, c, "", "put", "tx", "a")
	script := "value(\"tx\") = \"a\"\n\nput tx b\n\nget tx\n\n"
	check("txn (compare holds)", etcdctlOK(t, c, script, "txn"), "SUCCESS\n\nOK\n")
	check("get tx after txn", etcdctlOK(t, c, "", "get", "tx"), "tx\nb\n")
	check("txn (compare fails)", etcdctlOK(t, c, script, "txn"), "FAILURE\n\ntx\nb\n")

	// compaction, then reading below it fails.
	head, err := c.All().Get(reqCtx(t), "tx")
	if err != nil {
		t.Fatal(err)
	}
	compactAt := head.Header.Revision
	check(fmt.Sprintf("compaction %d", compactAt), etcdctlOK(t, c, "", "compaction", fmt.Sprint(compactAt)), fmt.Sprintf("compacted revision %d\n", compactAt))
	r := etcdctl(t, c, "", "get", "foo", fmt.Sprintf("--rev=%d", rev1))
	if r.code == 0 || !strings.Contains(r.stderr, "required revision has been compacted") {
		t.Errorf("etcdctl get foo --rev=%d after compaction at %d: want a failure saying \"required revision has been compacted\", got %s", rev1, compactAt, r)
	}

	// endpoint status --cluster -w table: 3 endpoints, exactly one leader.
	out = etcdctlOK(t, c, "", "endpoint", "status", "--cluster", "-w", "table")
	rows := parseTable(out)
	if len(rows) != 3 {
		t.Errorf("endpoint status --cluster -w table: %d rows, want 3:\n%s", len(rows), out)
	}
	leaders := 0
	var endpoints, ids []string
	for _, row := range rows {
		if row["IS LEADER"] == "true" {
			leaders++
		} else if row["IS LEADER"] != "false" {
			t.Errorf("endpoint status: IS LEADER = %q, want true or false", row["IS LEADER"])
		}
		endpoints = append(endpoints, row["ENDPOINT"])
		ids = append(ids, row["ID"])
	}
	if leaders != 1 {
		t.Errorf("endpoint status --cluster: %d leaders, want exactly 1:\n%s", leaders, out)
	}
	var want []string
	for _, m := range c.Members {
		want = append(want, "http://"+m.ClientAddr)
	}
	slices.Sort(endpoints)
	slices.Sort(want)
	if !slices.Equal(endpoints, want) {
		t.Errorf("endpoint status --cluster endpoints = %q, want %q", endpoints, want)
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != 3 {
		t.Errorf("endpoint status --cluster: member ids %q are not 3 distinct ids", ids)
	}

	// endpoint health --cluster: every member healthy.
	r = etcdctl(t, c, "", "endpoint", "health", "--cluster")
	healthy := 0
	for _, l := range lines(r.stdout + r.stderr) {
		if strings.Contains(l, " is healthy") {
			healthy++
		}
	}
	if r.code != 0 || healthy != 3 {
		t.Errorf("endpoint health --cluster: %d healthy, want 3; %s", healthy, r)
	}

	// member list: 3 started members with their names and URLs.
	out = etcdctlOK(t, c, "", "member", "list")
	ml := lines(out)
	if len(ml) != 3 {
		t.Fatalf("member list printed %d lines, want 3:\n%s", len(ml), out)
	}
	got := map[string][]string{}
	for _, l := range ml {
		// id, status, name, peer URLs, client URLs, is learner
		f := strings.Split(l, ", ")
		if len(f) != 6 {
			t.Fatalf("member list line %q: want 6 comma-separated fields", l)
		}
		got[f[2]] = f
	}
	for _, m := range c.Members {
		f, ok := got[m.Name]
		if !ok {
			t.Errorf("member list has no member named %s:\n%s", m.Name, out)
			continue
		}
		if f[1] != "started" || f[3] != m.PeerURL || f[4] != "http://"+m.ClientAddr || f[5] != "false" {
			t.Errorf("member list line for %s = %q, want started, peer %s, client http://%s, not a learner", m.Name, f, m.PeerURL, m.ClientAddr)
		}
	}
}

// parseTable parses an etcdctl -w table output into rows keyed by header.
func parseTable(s string) []map[string]string {
	var header []string
	var rows []map[string]string
	for _, l := range lines(s) {
		if !strings.HasPrefix(l, "|") {
			continue // +----+ borders
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if header == nil {
			header = cells
			continue
		}
		row := map[string]string{}
		for i, h := range header {
			if i < len(cells) {
				row[h] = cells[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}
