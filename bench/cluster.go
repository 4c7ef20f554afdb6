package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// system is one server under test.
type system struct {
	Key     string // "concord", "etcd36", "etcd34"
	Name    string // as shown in the page, with its version
	Bin     string
	Version string
	Prefix  []string // arguments before the flags ("server" for Concord)
}

// memberFlags is the command line every system gets: etcd's flag names,
// which Concord accepts unchanged, so the settings are identical by
// construction (heartbeat 100 ms, election 1000 ms, snapshot every 10,000
// entries, fsync on — neither etcd's --unsafe-no-fsync nor anything like it).
// clientScheme is "http", or "https" for the TLS variants of the TLS and
// auth section, whose certificate flags startCluster adds.
func memberFlags(name, dir, clientScheme string, client, peer int, initial string) []string {
	c := fmt.Sprintf("%s://127.0.0.1:%d", clientScheme, client)
	p := fmt.Sprintf("http://127.0.0.1:%d", peer)
	return []string{
		"--name", name, "--data-dir", dir,
		"--listen-client-urls", c, "--advertise-client-urls", c,
		"--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
		"--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "bench",
		"--heartbeat-interval", "100", "--election-timeout", "1000", "--snapshot-count", "10000",
		"--log-level", "warn",
	}
}

// memberFlagsTemplate is memberFlags as the page shows it.
func memberFlagsTemplate() string {
	return strings.Join(memberFlags("m<i>", "<fresh dir>", "http", 0, 0, "m0=http://127.0.0.1:<peer0>,..."), " ")
}

type cluster struct {
	sys       system
	procs     []*exec.Cmd
	exited    []chan struct{} // closed when the member's process has been reaped
	Endpoints []string
	// Conn is the connection flags Concord's CLI needs to reach the
	// members (--cacert when they serve TLS), after --endpoints.
	Conn []string
	dir  string
	// args and logs are each member's command line and log file, kept so
	// that a member can be started again on its data dir (restart, kill -9).
	args [][]string
	logs []string
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startCluster starts n members of sys under dir (fresh: it must not exist).
// With clientTLS the members serve https:// client URLs with its server
// certificate (peers stay on http://: the section measures what a client
// pays).
func startCluster(sys system, n int, dir string, clientTLS *tlsFiles) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	type ports struct{ c, p int }
	ps := make([]ports, n)
	var initial []string
	seen := map[int]bool{}
	for i := range ps {
		for _, dst := range []*int{&ps[i].c, &ps[i].p} {
			for {
				p, err := freePort()
				if err != nil {
					return nil, err
				}
				if !seen[p] {
					seen[p] = true
					*dst = p
					break
				}
			}
		}
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ps[i].p))
	}
	cl := &cluster{sys: sys, dir: dir}
	scheme := "http"
	var tlsArgs []string
	if clientTLS != nil {
		scheme = "https"
		tlsArgs = []string{"--cert-file", clientTLS.Cert, "--key-file", clientTLS.Key}
		cl.Conn = []string{"--cacert", clientTLS.CA}
	}
	for i, p := range ps {
		name := fmt.Sprintf("m%d", i)
		args := append(append([]string{}, sys.Prefix...),
			memberFlags(name, filepath.Join(dir, name), scheme, p.c, p.p, strings.Join(initial, ","))...)
		cl.args = append(cl.args, append(args, tlsArgs...))
		cl.logs = append(cl.logs, filepath.Join(dir, name+".log"))
		cl.procs = append(cl.procs, nil)
		cl.exited = append(cl.exited, nil)
		ep := fmt.Sprintf("127.0.0.1:%d", p.c)
		if clientTLS != nil {
			ep = "https://" + ep
		}
		cl.Endpoints = append(cl.Endpoints, ep)
	}
	for i := range ps {
		if err := cl.startMember(i); err != nil {
			cl.stop()
			return nil, err
		}
	}
	return cl, nil
}

// startMember starts member i (again) with its command line, appending to
// its log: on a fresh data dir the first time, on the one it left after.
func (cl *cluster) startMember(i int) error {
	log, err := os.OpenFile(cl.logs[i], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(cl.sys.Bin, cl.args[i]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("bench: start %s m%d: %w", cl.sys.Name, i, err)
	}
	log.Close() // the child holds its own descriptor
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	cl.procs[i], cl.exited[i] = cmd, exited
	return nil
}

// kill9 sends SIGKILL to member i's process group and waits until the
// process has been reaped.
func (cl *cluster) kill9(i int) {
	if cl.procs[i] == nil {
		return
	}
	_ = syscall.Kill(-cl.procs[i].Process.Pid, syscall.SIGKILL)
	<-cl.exited[i]
	cl.procs[i], cl.exited[i] = nil, nil
}

// terminate sends SIGTERM to every member at once and waits for each to
// exit, up to grace; a member still running then gets SIGKILL and is
// counted in killed. It returns how long the members took to exit.
func (cl *cluster) terminate(grace time.Duration) (took time.Duration, killed int) {
	t0 := time.Now()
	for _, p := range cl.procs {
		if p != nil {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.After(grace)
	for i, p := range cl.procs {
		if p == nil {
			continue
		}
		select {
		case <-cl.exited[i]:
		case <-deadline:
			killed++
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-cl.exited[i]
		}
		cl.procs[i], cl.exited[i] = nil, nil
	}
	return time.Since(t0), killed
}

// waitReady waits until a put through any endpoint succeeds and every member
// then serves a linearizable read of it on its own, using Concord's CLI
// (a plain etcd v3 client).
func (cl *cluster) waitReady(ctl string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	try := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, ctl, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	var last error
	for _, eps := range append([]string{strings.Join(cl.Endpoints, ",")}, cl.Endpoints...) {
		for {
			for _, e := range cl.exited {
				if e == nil {
					continue
				}
				select {
				case <-e:
					return fmt.Errorf("bench: a member of %s exited; see the logs in %s", cl.sys.Name, cl.dir)
				default:
				}
			}
			if last = try(append([]string{"put", "bench-ready", "x", "--endpoints", eps, "--dial-timeout", "2s"}, cl.Conn...)...); last == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bench: %s not ready after %v (logs in %s): %w", cl.sys.Name, timeout, cl.dir, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// rssMiB is the resident set of each member, read from /proc.
func (cl *cluster) rssMiB() []float64 {
	out := make([]float64, 0, len(cl.procs))
	for _, p := range cl.procs {
		if p == nil {
			out = append(out, 0)
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Process.Pid))
		if err != nil {
			out = append(out, 0)
			continue
		}
		v := 0.0
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				v = kb / 1024
			}
		}
		out = append(out, v)
	}
	return out
}

// stop sends SIGTERM to every member, then SIGKILL to any still running
// after 10 s. Each member leads its own process group, which is signalled
// whole, so nothing it started survives it.
func (cl *cluster) stop() {
	for _, p := range cl.procs {
		if p != nil {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		}
	}
	for i, p := range cl.procs {
		if p == nil {
			continue
		}
		select {
		case <-cl.exited[i]:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-cl.exited[i]
		}
	}
	cl.procs, cl.exited = nil, nil
}

// runCmd runs a command in its own process group and kills the group when
// ctx ends, returning stdout (stderr goes to errOut when not nil).
func runCmd(ctx context.Context, bin string, args []string, dir string) ([]byte, []byte, error) {
	out, errOut, _, err := runCmdCPU(ctx, bin, args, dir)
	return out, errOut, err
}

// runCmdCPU is runCmd that also returns the CPU the process used, user and
// system, in seconds, as wait4 reported it when the process was reaped.
func runCmdCPU(ctx context.Context, bin string, args []string, dir string) ([]byte, []byte, float64, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out: %w", ctx.Err())
	}
	var cpu float64
	if ps := cmd.ProcessState; ps != nil {
		cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	return []byte(stdout.String()), []byte(stderr.String()), cpu, err
}
