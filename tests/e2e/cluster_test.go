package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// readyLine is what a member logs once it serves clients (the CLI contract).
const readyLine = "ready to serve client requests"

// Deadlines of the harness. They are upper bounds for polling, not sleeps:
// every wait returns as soon as its condition holds.
const (
	readyTimeout   = 20 * time.Second
	stopTimeout    = 15 * time.Second
	requestTimeout = 5 * time.Second
	pollInterval   = 10 * time.Millisecond
)

// concordBin returns the path of the built binary, failing t when the build
// failed (every test needs it, so each reports the build error).
func concordBin(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("go build ./cmd/concord failed: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that are free now.
// They are picked at random below the kernel's ephemeral range when it is
// known: a member restarted on its port must find it free, and a port of
// that range can meanwhile become the local end of any outgoing connection
// on the machine (bind then fails with "address already in use"; seen with
// e2e runs in parallel). All listeners are held open until every port is
// chosen, so the n ports differ; another test process could still take one
// before the member binds it, the accepted race of this technique.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	lo, hi := portsBelowEphemeral()
	ports := make([]int, 0, n)
	for taken := 0; len(ports) < n; {
		addr := "127.0.0.1:0"
		if hi > lo && taken < 100 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if addr != "127.0.0.1:0" && errors.Is(err, syscall.EADDRINUSE) {
				taken++ // draw again; after 100 such, let the kernel pick
				continue
			}
			t.Fatalf("allocating a port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// portsBelowEphemeral returns the range [lo, hi) freePorts draws from: up
// to the start of Linux's ephemeral range, from 10000 (clear of the
// well-known and registered service ports most likely to be in use here,
// such as etcd's 2379). It is empty when the ephemeral range is unknown or
// leaves too little room, and freePorts then asks the kernel for any port.
func portsBelowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start < 10000+1000 {
		return 0, 0
	}
	return 10000, start
}

// memberLog collects everything a member wrote to stderr across all its
// runs, in memory and in a file, and recognises the ready line per run.
type memberLog struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	file *os.File
}

func (l *memberLog) write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if l.file != nil {
		l.file.Write(p)
	}
}

func (l *memberLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *memberLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}

// runOutput is the stderr of one run of a member: it tees into the member's
// log, keeps this run's text, and closes ready at the first ready line.
type runOutput struct {
	log   *memberLog
	ready chan struct{}

	mu      sync.Mutex
	text    bytes.Buffer
	pending []byte // an incomplete last line
	isReady bool
}

func (o *runOutput) Write(p []byte) (int, error) {
	o.log.write(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.text.Write(p)
	o.pending = append(o.pending, p...)
	for {
		i := bytes.IndexByte(o.pending, '\n')
		if i < 0 {
			break
		}
		line := o.pending[:i]
		if !o.isReady && bytes.Contains(line, []byte(readyLine)) {
			o.isReady = true
			close(o.ready)
		}
		o.pending = o.pending[i+1:]
	}
	return len(p), nil
}

func (o *runOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text.String()
}

// process is one run of a member.
type process struct {
	cmd   *exec.Cmd
	out   *runOutput
	done  chan struct{} // closed when the process has exited and been reaped
	state *os.ProcessState
	err   error // from Wait; valid after done
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit status after done (-1 when killed by a signal).
func (p *process) exitCode() int {
	if p.state == nil {
		return -1
	}
	return p.state.ExitCode()
}

// Member is one concord server of a Cluster.
type Member struct {
	Name       string
	PeerURL    string // http://127.0.0.1:port, as in --initial-cluster
	ClientAddr string // 127.0.0.1:port
	DataDir    string
	LogPath    string

	args []string
	log  *memberLog

	mu   sync.Mutex
	proc *process
	id   uint64 // raft member id, learned from a Status header
}

func (m *Member) current() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// Running reports whether the member's latest process is alive.
func (m *Member) Running() bool {
	p := m.current()
	return p != nil && !p.exited()
}

// Log returns everything the member wrote to stderr over all its runs.
func (m *Member) Log() string { return m.log.String() }

// RunLog returns what the member's latest run wrote to stderr.
func (m *Member) RunLog() string {
	if p := m.current(); p != nil {
		return p.out.String()
	}
	return ""
}

// ClusterOptions configures NewCluster. Zero values pick the suite's fast
// timings and the server's own defaults.
type ClusterOptions struct {
	Size              int
	HeartbeatInterval time.Duration // default 50ms
	ElectionTimeout   time.Duration // default 500ms
	SnapshotCount     int           // 0: server default
	MaxRequestBytes   int           // 0: server default
	ExtraArgs         []string
}

// Cluster is a set of real concord processes on loopback plus clientv3
// clients: one per member endpoint and one over all endpoints.
type Cluster struct {
	t       *testing.T
	Opts    ClusterOptions
	Members []*Member

	// clientTLS, when set before launch, is the TLS every client of the
	// harness uses (members serving https client URLs).
	clientTLS *tls.Config

	mu      sync.Mutex
	clients []*clientv3.Client
	all     *clientv3.Client
}

// NewCluster starts opts.Size members, waits until every one logs the ready
// line, and connects the clients. Everything is stopped in t.Cleanup; member
// logs are printed when t failed.
func NewCluster(t *testing.T, opts ClusterOptions) *Cluster {
	t.Helper()
	concordBin(t)
	if opts.Size == 0 {
		opts.Size = 3
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 50 * time.Millisecond
	}
	if opts.ElectionTimeout == 0 {
		opts.ElectionTimeout = 500 * time.Millisecond
	}
	// Directories first: their removal is registered now and therefore runs
	// after the processes are killed (cleanups run last-in first-out).
	dataRoot := t.TempDir()
	logRoot := t.ArtifactDir()

	c := &Cluster{t: t, Opts: opts, clients: make([]*clientv3.Client, opts.Size)}
	ports := freePorts(t, 2*opts.Size)
	var initial []string
	for i := range opts.Size {
		m := &Member{
			Name:       fmt.Sprintf("n%d", i+1),
			PeerURL:    fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			ClientAddr: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
		}
		m.DataDir = filepath.Join(dataRoot, m.Name)
		m.LogPath = filepath.Join(logRoot, m.Name+".log")
		f, err := os.Create(m.LogPath)
		if err != nil {
			t.Fatalf("creating member log: %v", err)
		}
		m.log = &memberLog{file: f}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		m.args = []string{"server",
			"--name", m.Name,
			"--data-dir", m.DataDir,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--listen-peer", strings.TrimPrefix(m.PeerURL, "http://"),
			"--listen-client", m.ClientAddr,
			"--heartbeat-interval", opts.HeartbeatInterval.String(),
			"--election-timeout", opts.ElectionTimeout.String(),
		}
		if opts.SnapshotCount > 0 {
			m.args = append(m.args, "--snapshot-count", strconv.Itoa(opts.SnapshotCount))
		}
		if opts.MaxRequestBytes > 0 {
			m.args = append(m.args, "--max-request-bytes", strconv.Itoa(opts.MaxRequestBytes))
		}
		m.args = append(m.args, opts.ExtraArgs...)
	}

	c.launch(t)
	return c
}

// launch registers the cleanups (logs on failure, kill, close clients),
// starts every member, waits until each serves and connects the clients.
func (c *Cluster) launch(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("==== the members' last warnings and errors, in time order ====\n%s", c.warnings(40))
			for _, m := range c.Members {
				t.Logf("==== stderr of member %s, all runs (full log %s, kept with go test -artifacts) ====\n%s", m.Name, m.LogPath, tail(m.Log(), 200))
			}
		}
		for _, m := range c.Members {
			m.log.close()
		}
	})
	t.Cleanup(func() {
		for i := range c.Members {
			c.killQuietly(i)
		}
	})
	t.Cleanup(c.closeClients)

	for i := range c.Members {
		c.Start(i)
	}
	for i := range c.Members {
		c.WaitReady(i)
	}
	for i := range c.Members {
		c.connect(i)
	}
	all, err := newClientTLS(c.Endpoints(), c.clientTLS)
	if err != nil {
		t.Fatalf("connecting to all endpoints: %v", err)
	}
	c.all = all
}

// warnings returns the last n warning and error lines of all members'
// logs, merged in time order, each prefixed with its member's name. A
// failure most often turns on one of them, and they come first in the
// output: a tracker that keeps only the head and the tail of a long output
// keeps them (the full logs after them can run to hundreds of lines).
func (c *Cluster) warnings(n int) string {
	type line struct{ at, text string }
	var all []line
	for _, m := range c.Members {
		for l := range strings.Lines(m.Log()) {
			if !strings.Contains(l, " level=WARN ") && !strings.Contains(l, " level=ERROR ") && !strings.HasPrefix(l, "panic: ") {
				continue
			}
			at, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
			all = append(all, line{at, m.Name + ": " + l})
		}
	}
	slices.SortStableFunc(all, func(a, b line) int { return strings.Compare(a.at, b.at) })
	var b strings.Builder
	if len(all) > n {
		fmt.Fprintf(&b, "[... %d earlier lines ...]\n", len(all)-n)
		all = all[len(all)-n:]
	}
	for _, l := range all {
		b.WriteString(l.text)
	}
	return b.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[... %d earlier lines ...]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}

func newClient(endpoints []string) (*clientv3.Client, error) {
	return newClientTLS(endpoints, nil)
}

// newClientTLS is newClient over TLS when tc is non-nil.
func newClientTLS(endpoints []string, tc *tls.Config) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         tc,
		Logger:      zap.NewNop(),
	})
}

// Endpoints returns every member's client address.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientAddr
	}
	return eps
}

// Client returns the clientv3 client bound to member i's endpoint only.
func (c *Cluster) Client(i int) *clientv3.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clients[i]
}

// All returns the clientv3 client over every endpoint.
func (c *Cluster) All() *clientv3.Client { return c.all }

func (c *Cluster) connect(i int) {
	c.t.Helper()
	cli, err := newClientTLS([]string{c.Members[i].ClientAddr}, c.clientTLS)
	if err != nil {
		c.t.Fatalf("connecting to %s: %v", c.Members[i].Name, err)
	}
	c.mu.Lock()
	old := c.clients[i]
	c.clients[i] = cli
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (c *Cluster) closeClients() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, cli := range c.clients {
		if cli != nil {
			cli.Close()
			c.clients[i] = nil
		}
	}
	if c.all != nil {
		c.all.Close()
		c.all = nil
	}
}

// Start launches member i's process with its flags and data dir and returns
// at once; use WaitReady or WaitExit next.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	m := c.Members[i]
	if m.Running() {
		c.t.Fatalf("start %s: already running", m.Name)
	}
	out := &runOutput{log: m.log, ready: make(chan struct{})}
	m.log.write([]byte(fmt.Sprintf("==== e2e: starting %s at %s ====\n", m.Name, time.Now().Format(time.RFC3339Nano))))
	cmd := exec.Command(concordBin(c.t), m.args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", m.Name, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.state = cmd.ProcessState
		m.log.write([]byte(fmt.Sprintf("==== e2e: %s (pid %d) exited: %v ====\n", m.Name, cmd.Process.Pid, p.err)))
		close(p.done)
	}()
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
}

// WaitReady waits until member i's current run logs the ready line; it
// fails the test when the process exits first or the deadline passes.
func (c *Cluster) WaitReady(i int) {
	c.t.Helper()
	m := c.Members[i]
	p := m.current()
	if p == nil {
		c.t.Fatalf("%s was never started", m.Name)
	}
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-p.out.ready:
	case <-p.done:
		c.t.Fatalf("%s exited before it was ready: %v\n%s", m.Name, p.err, tail(p.out.String(), 50))
	case <-timer.C:
		c.t.Fatalf("%s not ready after %v", m.Name, readyTimeout)
	}
}

// WaitExit waits up to d for member i's current run to end and returns its
// exit code and this run's stderr. ok is false when it is still running.
func (c *Cluster) WaitExit(i int, d time.Duration) (code int, stderr string, ok bool) {
	p := c.Members[i].current()
	if p == nil {
		return 0, "", false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.exitCode(), p.out.String(), true
	case <-timer.C:
		return 0, p.out.String(), false
	}
}

// Kill sends SIGKILL to member i's process (by its PID) and waits for it.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	m := c.Members[i]
	p := m.current()
	if p == nil || p.exited() {
		c.t.Fatalf("kill %s: not running", m.Name)
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.t.Fatalf("kill %s: %v", m.Name, err)
	}
	if _, _, ok := c.WaitExit(i, stopTimeout); !ok {
		c.t.Fatalf("%s still running %v after SIGKILL", m.Name, stopTimeout)
	}
}

func (c *Cluster) killQuietly(i int) {
	p := c.Members[i].current()
	if p == nil || p.exited() {
		return
	}
	p.cmd.Process.Kill()
	c.WaitExit(i, stopTimeout)
}

// Signal sends SIGTERM to member i and returns without waiting.
func (c *Cluster) Signal(i int) {
	c.t.Helper()
	m := c.Members[i]
	p := m.current()
	if p == nil || p.exited() {
		c.t.Fatalf("signal %s: not running", m.Name)
	}
	if err := p.cmd.Process.Signal(terminateSignal); err != nil {
		c.t.Fatalf("signal %s: %v", m.Name, err)
	}
}

// Stop sends SIGTERM to member i, waits for it to exit and returns the exit
// code. It fails the test when the member does not exit in time.
func (c *Cluster) Stop(i int) int {
	c.t.Helper()
	c.Signal(i)
	code, _, ok := c.WaitExit(i, stopTimeout)
	if !ok {
		c.t.Fatalf("%s still running %v after SIGTERM", c.Members[i].Name, stopTimeout)
	}
	return code
}

// Restart starts member i again with the same flags and data dir, waits
// until it is ready and reconnects its client.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Start(i)
	c.WaitReady(i)
	c.connect(i)
}

// Status asks member i for its Maintenance.Status on its own connection.
func (c *Cluster) Status(ctx context.Context, i int) (*pb.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := pb.NewMaintenanceClient(c.Client(i).ActiveConnection()).Status(ctx, &pb.StatusRequest{})
	if err != nil {
		return nil, err
	}
	if resp.Header != nil {
		m := c.Members[i]
		m.mu.Lock()
		m.id = resp.Header.MemberId
		m.mu.Unlock()
	}
	return resp, nil
}

// MemberID returns member i's raft id as learned from a Status call (0 if
// it never answered one).
func (c *Cluster) MemberID(i int) uint64 {
	m := c.Members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// Leader returns the index of the running member that reports itself leader
// (its Status.leader equals its own header member id), or -1.
func (c *Cluster) Leader(ctx context.Context) int {
	for i, m := range c.Members {
		if !m.Running() {
			continue
		}
		st, err := c.Status(ctx, i)
		if err != nil || st.Header == nil {
			continue
		}
		if st.Leader != 0 && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}

// WaitLeader polls until some running member is leader and every running
// member agrees on it, and returns its index.
func (c *Cluster) WaitLeader(d time.Duration) int {
	c.t.Helper()
	var last string
	leader := -1
	ok := pollUntil(d, func() bool {
		l := c.Leader(context.Background())
		if l < 0 {
			last = "no member reports itself leader"
			return false
		}
		want := c.MemberID(l)
		for i, m := range c.Members {
			if !m.Running() {
				continue
			}
			st, err := c.Status(context.Background(), i)
			if err != nil {
				last = fmt.Sprintf("status of %s: %v", m.Name, err)
				return false
			}
			if st.Leader != want {
				last = fmt.Sprintf("%s reports leader %x, %s is leader %x", m.Name, st.Leader, c.Members[l].Name, want)
				return false
			}
		}
		leader = l
		return true
	})
	if !ok {
		c.t.Fatalf("no agreed leader within %v: %s", d, last)
	}
	return leader
}

// pollUntil calls cond every pollInterval until it returns true (→ true) or
// d passes (→ false).
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// reqCtx is a per-request context with the suite's request timeout.
func reqCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// cmdResult is the outcome of running a CLI (concord or etcdctl).
type cmdResult struct {
	stdout, stderr string
	code           int // exit code; -1 when it did not exit normally
}

func (r cmdResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCmd runs name with args (and optional stdin), with a deadline, in dir
// (empty: a fresh temp dir, so a misbehaving command cannot litter the
// module).
func runCmd(t testing.TB, env []string, stdin string, name string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = 2 * time.Second
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err := cmd.Run()
	res := cmdResult{stdout: out.String(), stderr: errb.String(), code: -1}
	if cmd.ProcessState != nil {
		res.code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within 20s:\n%s", name, strings.Join(args, " "), res)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s: %v", name, err)
	}
	return res
}
