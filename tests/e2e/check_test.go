//go:build unix

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runCheckVerb runs `concord check` with args and a report directory, in a
// process group of its own so that a check killed on timeout takes the
// members it started with it. It returns the exit status and the report
// directory.
func runCheckVerb(t *testing.T, limit time.Duration, args ...string) (int, string, string) {
	t.Helper()
	bin := concordBin(t)
	report := filepath.Join(t.TempDir(), "report")
	args = append([]string{"check", "--report", report}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		// The group of the check started above, by its id: members left
		// behind by a check that died must not outlive the test.
		syscall.Kill(-pid, syscall.SIGKILL)
	})
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		t.Fatalf("concord %s: no verdict within %v: %v\nstderr tail:\n%s", strings.Join(args, " "), limit, err, tail(stderr.String(), 30))
	}
	return code, report, stdout.String() + "\n--- stderr tail ---\n" + tail(stderr.String(), 30)
}

func readReport(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("report %s: %v", name, err)
	}
	return string(b)
}

var (
	opsLine    = regexp.MustCompile(`(?m)^operations: (\d+) `)
	fencedLine = regexp.MustCompile(`fenced accepted \d+, refused (\d+)`)
)

// TestCheckValid: a 3-member cluster under partitions, leader kills,
// pauses and clock skew for 60 s must be judged valid (exit 0) over at
// least 5,000 operations, with a complete report.
func TestCheckValid(t *testing.T) {
	code, dir, out := runCheckVerb(t, 150*time.Second, "--start", "3", "--duration", "60s",
		"--nemesis", "partition,kill,pause,clock", "--seed", "20261125")
	if code != 0 {
		t.Fatalf("concord check on a healthy build: exit %d, want 0 (valid)\n%s", code, out)
	}
	summary := readReport(t, dir, "summary.txt")
	m := opsLine.FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("summary.txt has no operations line:\n%s", summary)
	}
	if n, _ := strconv.Atoi(m[1]); n < 5000 {
		t.Errorf("summary.txt: %d operations, want at least 5000\n%s", n, summary)
	}
	// Every fifth lock hold stalls past its lease: the guard must have
	// refused some stale holder's writes, or the fence was never tested.
	if m := fencedLine.FindStringSubmatch(summary); m == nil || m[1] == "0" {
		t.Errorf("summary.txt: no fenced write refused; the lock checker judged nothing interesting\n%s", summary)
	}
	for _, want := range []string{"concord check: VALID", "partition n", "kill -9 n", "(the leader)", "pause n",
		"linearizable: valid", "watch: valid", "fencing: valid", "durability: valid"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary.txt lacks %q:\n%s", want, summary)
		}
	}
	if !strings.Contains(summary, "clock n") {
		t.Errorf("summary.txt shows no clock skew; this seed's schedule draws one:\n%s", summary)
	}
	for _, f := range []string{"history.json", "report.html"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("report %s missing or empty: %v", f, err)
		}
	}
	t.Logf("summary:\n%s", summary)
}

// TestCheckUnsafeLocalReads: the same with members serving linearizable
// reads from local state must be judged invalid (exit 1), and report.html
// must show the stale read.
func TestCheckUnsafeLocalReads(t *testing.T) {
	code, dir, out := runCheckVerb(t, 150*time.Second, "--start", "3", "--duration", "60s",
		"--nemesis", "partition,kill,pause,clock", "--seed", "20261125", "--unsafe-local-reads")
	if code != 1 {
		t.Fatalf("concord check --unsafe-local-reads: exit %d, want 1 (invalid)\n%s", code, out)
	}
	summary := readReport(t, dir, "summary.txt")
	for _, want := range []string{"concord check: INVALID", "linearizable: invalid", "first anomaly: stale read: get("} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary.txt lacks %q:\n%s", want, summary)
		}
	}
	html := readReport(t, dir, "report.html")
	if !strings.Contains(html, "stale read: get(") {
		t.Errorf("report.html does not mention the stale read")
	}
}
