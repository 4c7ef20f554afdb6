package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bgCmd is a long-running client process whose stdout lines arrive on a
// channel.
type bgCmd struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan error
}

func startBG(t *testing.T, env []string, name string, args ...string) *bgCmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	b := &bgCmd{cmd: cmd, lines: make(chan string, 100), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		close(b.lines)
		b.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	return b
}

// next returns the next stdout line, failing the test after d.
func (b *bgCmd) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-b.lines:
		if !ok {
			t.Fatalf("%s exited before printing the expected line", b.cmd.Path)
		}
		return l
	case <-time.After(d):
		t.Fatalf("%s printed nothing within %v", b.cmd.Path, d)
	}
	return ""
}

// quiet asserts nothing is printed for d.
func (b *bgCmd) quiet(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case l, ok := <-b.lines:
		if ok {
			t.Fatalf("%s: printed %q", what, l)
		}
	case <-time.After(d):
	}
}

func (b *bgCmd) interrupt(t *testing.T) {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit after SIGINT", b.cmd.Path)
	}
}

// TestLockAndElectCLI checks etcdctl's and concord's lock and elect verbs
// against each other: mutual exclusion, the command form with its
// environment, and election campaign, observe and hand-over on resign.
func TestLockAndElectCLI(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	eps := strings.Join(c.Endpoints(), ",")
	haveEtcdctl := true
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Log("etcdctl not on PATH: checking concord's verbs against each other only")
		haveEtcdctl = false
	}
	etcdEnv := []string{"ETCDCTL_API=3"}
	bin := concordBin(t)

	// A holder prints the lock key and holds the lock.
	var holder *bgCmd
	if haveEtcdctl {
		holder = startBG(t, etcdEnv, "etcdctl", "--endpoints="+eps, "lock", "L")
	} else {
		holder = startBG(t, nil, bin, "lock", "L", "--endpoints", eps)
	}
	if key := holder.next(t, 10*time.Second); !strings.HasPrefix(key, "L/") {
		t.Fatalf("lock holder printed %q, want the lock key L/<lease>", key)
	}
	// A second locker runs its command only once the holder lets go.
	waiter := startBG(t, nil, bin, "lock", "L", "--endpoints", eps, "--", "sh", "-c", `echo "got $CONCORD_LOCK_KEY $ETCD_LOCK_REV"`)
	waiter.quiet(t, 1500*time.Millisecond, "second locker ran while the lock was held")
	holder.interrupt(t)
	got := waiter.next(t, 10*time.Second)
	f := strings.Fields(got)
	if len(f) != 3 || f[0] != "got" || !strings.HasPrefix(f[1], "L/") || f[2] == "" {
		t.Fatalf("second locker printed %q, want \"got L/<lease> <rev>\"", got)
	}
	select {
	case err := <-waiter.done:
		if err != nil {
			t.Fatalf("concord lock with a command: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("concord lock did not exit after its command")
	}
	if haveEtcdctl {
		r := etcdctlOK(t, c, "", "lock", "L", "--", "sh", "-c", `echo "$ETCD_LOCK_KEY"`)
		if !strings.HasPrefix(strings.TrimSpace(r), "L/") {
			t.Errorf("etcdctl lock with a command printed %q", r)
		}
	}

	// Election: a leader campaigns, observers (both tools) see its
	// proposal, a second candidate wins once the first resigns.
	var leader *bgCmd
	if haveEtcdctl {
		leader = startBG(t, etcdEnv, "etcdctl", "--endpoints="+eps, "elect", "E", "p1")
	} else {
		leader = startBG(t, nil, bin, "elect", "E", "p1", "--endpoints", eps)
	}
	if key := leader.next(t, 10*time.Second); !strings.HasPrefix(key, "E/") {
		t.Fatalf("elected candidate printed %q, want E/<lease>", key)
	}
	if v := leader.next(t, 5*time.Second); v != "p1" {
		t.Fatalf("elected candidate printed proposal %q, want p1", v)
	}
	observer := startBG(t, nil, bin, "elect", "E", "--endpoints", eps)
	observer.next(t, 10*time.Second) // key
	if v := observer.next(t, 5*time.Second); v != "p1" {
		t.Fatalf("concord elect observer saw %q, want p1", v)
	}
	if haveEtcdctl {
		eobs := startBG(t, etcdEnv, "etcdctl", "--endpoints="+eps, "elect", "-l", "E")
		eobs.next(t, 10*time.Second)
		if v := eobs.next(t, 5*time.Second); v != "p1" {
			t.Fatalf("etcdctl elect -l saw %q, want p1", v)
		}
		eobs.interrupt(t)
	}
	second := startBG(t, nil, bin, "elect", "E", "p2", "--endpoints", eps)
	second.quiet(t, 1500*time.Millisecond, "second candidate elected while the first leads")
	leader.interrupt(t) // resigns
	second.next(t, 10*time.Second)
	if v := second.next(t, 5*time.Second); v != "p2" {
		t.Fatalf("second candidate printed %q, want p2", v)
	}
	observer.next(t, 10*time.Second)
	if v := observer.next(t, 5*time.Second); v != "p2" {
		t.Fatalf("observer saw %q after the hand-over, want p2", v)
	}
	second.interrupt(t)
	observer.interrupt(t)
}
