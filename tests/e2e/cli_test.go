package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestBadFlags checks that bad flags and arguments exit with status 2 and
// say what is wrong, before any server starts.
func TestBadFlags(t *testing.T) {
	bin := concordBin(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	ports := freePorts(t, 2)
	peer := fmt.Sprintf("127.0.0.1:%d", ports[0])
	client := fmt.Sprintf("127.0.0.1:%d", ports[1])
	// A valid base, so each case has exactly one problem; if a case were
	// accepted it would serve on free ports in a temp dir, and runCmd's
	// deadline ends it.
	base := []string{"server", "--name", "n1", "--data-dir", dataDir,
		"--initial-cluster", "n1=http://" + peer, "--listen-peer", peer, "--listen-client", client}
	// with returns base with flag/value pairs replaced or added.
	with := func(kv ...string) []string {
		args := slices.Clone(base)
		for j := 0; j+1 < len(kv); j += 2 {
			if i := slices.Index(args, kv[j]); i >= 0 {
				args[i+1] = kv[j+1]
			} else {
				args = append(args, kv[j], kv[j+1])
			}
		}
		return args
	}
	for _, tc := range []struct {
		name string
		args []string
		// Each group needs one of its words in stderr (case-insensitive):
		// the message must name the flag or the problem.
		want [][]string
	}{
		{"election timeout not a duration", with("--election-timeout", "abc"), [][]string{{"election-timeout"}, {"abc"}}},
		{"listen client without a port", with("--listen-client", "nohost"), [][]string{{"listen-client"}, {"nohost"}}},
		{"unknown cluster state", with("--initial-cluster-state", "bogus"), [][]string{{"bogus"}, {"initial-cluster-state", "initial cluster state"}}},
		{"member not in initial cluster", with("--name", "x", "--initial-cluster", "y=http://127.0.0.1:1"), [][]string{{"initial-cluster", "initial cluster"}, {`"x"`, " x ", "'x'"}}},
		{"unknown flag", with("--no-such-flag", "1"), [][]string{{"no-such-flag"}}},
		{"get without a key", []string{"get", "--endpoints", client}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, nil, "", bin, tc.args...)
			if r.code != 2 {
				t.Fatalf("concord %s: want exit status 2, got %s", strings.Join(tc.args, " "), r)
			}
			if strings.TrimSpace(r.stderr) == "" {
				t.Errorf("concord %s: exit 2 with nothing on stderr", strings.Join(tc.args, " "))
			}
			for _, group := range tc.want {
				if !slices.ContainsFunc(group, func(w string) bool {
					return strings.Contains(strings.ToLower(r.stderr), strings.ToLower(w))
				}) {
					t.Errorf("concord %s: stderr %q mentions none of %q", strings.Join(tc.args, " "), r.stderr, group)
				}
			}
			if strings.Contains(r.stderr, readyLine) {
				t.Errorf("concord %s: started serving despite the bad input", strings.Join(tc.args, " "))
			}
		})
	}
}

// concordCLI runs a client verb of the binary against the cluster.
func concordCLI(t *testing.T, c *Cluster, args ...string) cmdResult {
	t.Helper()
	args = append(args, "--endpoints", strings.Join(c.Endpoints(), ","))
	return runCmd(t, nil, "", concordBin(t), args...)
}

func concordCLIOK(t *testing.T, c *Cluster, args ...string) string {
	t.Helper()
	r := concordCLI(t, c, args...)
	if r.code != 0 {
		t.Fatalf("concord %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// TestCLIVerbs checks the output of concord's own client verbs.
func TestCLIVerbs(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)

	if out := concordCLIOK(t, c, "put", "cli/a", "one"); out != "OK\n" {
		t.Errorf("concord put printed %q, want %q", out, "OK\n")
	}
	r1, err := c.All().Get(reqCtx(t), "cli/a")
	if err != nil || len(r1.Kvs) != 1 || string(r1.Kvs[0].Value) != "one" {
		t.Fatalf("clientv3 Get(cli/a) after concord put = %v, %v; want one", r1, err)
	}
	rev1 := r1.Kvs[0].ModRevision
	concordCLIOK(t, c, "put", "cli/a", "two")
	concordCLIOK(t, c, "put", "cli/b", "three")

	if out := concordCLIOK(t, c, "get", "cli/a"); out != "cli/a\ntwo\n" {
		t.Errorf("concord get cli/a printed %q, want %q", out, "cli/a\ntwo\n")
	}
	if out := concordCLIOK(t, c, "get", "cli/a", "--rev", fmt.Sprint(rev1)); out != "cli/a\none\n" {
		t.Errorf("concord get cli/a --rev %d printed %q, want %q", rev1, out, "cli/a\none\n")
	}
	if out := concordCLIOK(t, c, "get", "cli/", "--prefix"); out != "cli/a\ntwo\ncli/b\nthree\n" {
		t.Errorf("concord get cli/ --prefix printed %q, want %q", out, "cli/a\ntwo\ncli/b\nthree\n")
	}
	if out := concordCLIOK(t, c, "get", "cli/missing"); out != "" {
		t.Errorf("concord get cli/missing printed %q, want nothing", out)
	}
	if out := concordCLIOK(t, c, "del", "cli/", "--prefix"); out != "2\n" {
		t.Errorf("concord del cli/ --prefix printed %q, want %q", out, "2\n")
	}
	if got, err := c.All().Get(reqCtx(t), "cli/", clientv3.WithPrefix()); err != nil || len(got.Kvs) != 0 {
		t.Errorf("after concord del, Get(cli/*) = %v, %v; want nothing", got, err)
	}

	// members: one line per member naming it and its URLs.
	out := concordCLIOK(t, c, "members")
	for _, m := range c.Members {
		found := false
		for _, l := range lines(out) {
			if containsField(l, m.Name) && strings.Contains(l, m.ClientAddr) && strings.Contains(l, m.PeerURL) {
				found = true
			}
		}
		if !found {
			t.Errorf("concord members has no line with %s, %s and %s:\n%s", m.Name, m.PeerURL, m.ClientAddr, out)
		}
	}

	// status: a row per endpoint, exactly one leader.
	out = concordCLIOK(t, c, "status")
	leaders := 0
	for _, m := range c.Members {
		var row string
		for _, l := range lines(out) {
			if strings.Contains(l, m.ClientAddr) {
				if row != "" {
					t.Errorf("concord status: two rows for %s:\n%s", m.ClientAddr, out)
				}
				row = l
			}
		}
		if row == "" {
			t.Errorf("concord status: no row for %s:\n%s", m.ClientAddr, out)
			continue
		}
		switch {
		case containsField(row, "true") && !containsField(row, "false"):
			leaders++
		case containsField(row, "false") && !containsField(row, "true"):
		default:
			t.Errorf("concord status row %q: want exactly one of true/false in the leader column", row)
		}
	}
	if leaders != 1 {
		t.Errorf("concord status: %d leaders, want 1:\n%s", leaders, out)
	}
}

// containsField reports whether line has word as a whole field (fields are
// separated by spaces, commas or table bars).
func containsField(line, word string) bool {
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' || r == '|' || r == '\t' })
	return slices.Contains(f, word)
}
