package main

// concord check: the members it starts (or finds), their processes and health.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// checkMember is one member: its name, client address and, with --start,
// its process. mu guards the process fields.
type checkMember struct {
	name       string
	clientAddr string
	args       []string
	logPath    string

	mu     sync.Mutex
	proc   *exec.Cmd
	exited chan struct{}
	paused bool
}

// serverHasFlag reports whether this binary's server verb has flag name.
func serverHasFlag(name string) bool {
	c, _, err := newRootCmd().Find([]string{"server"})
	return err == nil && c.Flags().Lookup(name) != nil
}

func newCheckClient(ep string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            []string{ep},
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
	})
}

// findMembers lists a running cluster's members (names and first client
// URLs) for --endpoints.
func (r *checkRun) findMembers(ctx context.Context) error {
	eps := strings.Split(r.f.endpoints, ",")
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer cli.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.MemberList(cctx)
	if err != nil {
		return fmt.Errorf("check: listing members: %w", err)
	}
	targets, _, err := faultTargets(resp.Members, false)
	if err != nil {
		return err
	}
	for _, t := range targets {
		addr := strings.TrimPrefix(strings.TrimPrefix(t.base, "http://"), "https://")
		r.members = append(r.members, &checkMember{name: t.name, clientAddr: addr})
	}
	return nil
}

// freeLocalPorts returns n distinct free ports on 127.0.0.1 (held open
// until all are chosen; another process may still take one).
func freeLocalPorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (r *checkRun) startCluster() error {
	n := r.f.start
	ports, err := freeLocalPorts(2 * n)
	if err != nil {
		return fmt.Errorf("check: ports: %w", err)
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("n%d=http://127.0.0.1:%d", i+1, ports[2*i+1]))
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		m := &checkMember{name: name, clientAddr: fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			logPath: filepath.Join(r.dir, "data", name+".log")}
		m.args = []string{"server", "--name", name,
			"--data-dir", filepath.Join(r.dir, "data", name),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--listen-client", m.clientAddr,
			"--listen-peer", fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			"--fault-injection"}
		if r.f.unsafeLocalReads {
			m.args = append(m.args, "--unsafe-local-reads")
		}
		r.members = append(r.members, m)
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "data"), 0o755); err != nil {
		return err
	}
	for _, m := range r.members {
		if err := r.launch(m); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.errw, "check: started %d members: %s\n", n, r.describeMembers())
	return nil
}

func (r *checkRun) describeMembers() string {
	var s []string
	for _, m := range r.members {
		s = append(s, m.name+"="+m.clientAddr)
	}
	return strings.Join(s, " ")
}

// launch starts m's process, its log appended to m.logPath.
func (r *checkRun) launch(m *checkMember) error {
	lf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	c := exec.Command(r.self, m.args...)
	c.Stdout, c.Stderr = lf, lf
	if err := c.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("check: start member %s: %w", m.name, err)
	}
	exited := make(chan struct{})
	go func() {
		c.Wait()
		lf.Close()
		close(exited)
	}()
	m.mu.Lock()
	m.proc, m.exited, m.paused = c, exited, false
	m.mu.Unlock()
	return nil
}

// kill stops m's process with SIGKILL and waits for it.
func (m *checkMember) kill() {
	m.mu.Lock()
	p, exited := m.proc, m.exited
	m.mu.Unlock()
	if p == nil {
		return
	}
	p.Process.Signal(syscall.SIGKILL)
	<-exited
}

// signal sends sig to m's process if it runs.
func (m *checkMember) signal(sig syscall.Signal) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
	}
	m.paused = sig == syscall.SIGSTOP
	return m.proc.Process.Signal(sig) == nil
}

func (m *checkMember) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// stopCluster stops every process check started: SIGCONT, SIGTERM, and
// SIGKILL after 10 s.
func (r *checkRun) stopCluster() {
	for _, m := range r.members {
		m.signal(syscall.SIGCONT)
		m.signal(syscall.SIGTERM)
	}
	for _, m := range r.members {
		m.mu.Lock()
		exited := m.exited
		m.mu.Unlock()
		if exited == nil {
			continue
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			m.kill()
		}
	}
}

// memberStatus asks m for its status; leader is 0 when it knows none.
func memberStatus(ctx context.Context, cli *clientv3.Client, ep string) (id, leader, term uint64, err error) {
	sctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	defer cancel()
	st, err := cli.Status(sctx, ep)
	if err != nil {
		return 0, 0, 0, err
	}
	return st.Header.MemberId, st.Leader, st.RaftTerm, nil
}

// waitHealthy waits until every member answers and they agree on a
// leader, and a linearizable read through each succeeds.
func (r *checkRun) waitHealthy(ctx context.Context, clis []*clientv3.Client, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		leaders := map[uint64]bool{}
		ok := true
		for i, m := range r.members {
			_, l, _, err := memberStatus(ctx, clis[i], m.clientAddr)
			if err != nil || l == 0 {
				ok = false
				break
			}
			leaders[l] = true
			gctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = clis[i].Get(gctx, r.guard)
			cancel()
			if err != nil {
				ok = false
				break
			}
		}
		if ok && len(leaders) == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("check: cluster not healthy after %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
