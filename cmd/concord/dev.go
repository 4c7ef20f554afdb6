package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/concord-db/concord/internal/faults"
)

func init() { subcommands = append(subcommands, newDevCmd) }

// devClientPorts follows etcd's Procfile (2379, 22379, 32379, ...); a
// member's peer port is its client port + 1.
var devClientPorts = []int{2379, 22379, 32379, 42379, 52379, 62379, 12379}

func newDevCmd() *cobra.Command {
	var members int
	var dataDir string
	var restartAfter time.Duration
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster of real members on 127.0.0.1 until interrupted",
		Long: `Run a local cluster: N real "concord server" processes on 127.0.0.1, each with
its own data directory (WAL and snapshots) under --data-dir and its own ports
(clients 2379, 22379, 32379, ...; peers one above each). Data survives a
restart of "concord dev". Stop with Ctrl-C.

Members run with --fault-injection. A member that exits with status 137
(killed by "concord fault kill", or by kill -9) is started again after
--restart-after, with the same flags and data; any other exit stops the
cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if members < 1 || members > len(devClientPorts) {
				return usagef("--members %d: want 1 to %d", members, len(devClientPorts))
			}
			if restartAfter < 0 {
				return usagef("--restart-after must not be negative, got %v", restartAfter)
			}
			return runDev(members, dataDir, restartAfter)
		},
	}
	cmd.Flags().IntVar(&members, "members", 3, "number of members")
	cmd.Flags().StringVar(&dataDir, "data-dir", filepath.Join("concord-data", "dev"), "parent directory of the members' data")
	cmd.Flags().DurationVar(&restartAfter, "restart-after", 2*time.Second, "restart a member killed (exit status 137) after this long")
	return cmd
}

// devExit is one member process's end.
type devExit struct {
	i   int
	err error
}

// killedExit reports whether err is the exit of a process killed by a kill
// rule or by SIGKILL: both are crashes dev restarts.
func killedExit(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	if ee.ExitCode() == faults.KillExitStatus {
		return true
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func runDev(n int, dataDir string, restartAfter time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var initial, endpoints []string
	for i := 0; i < n; i++ {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i+1, devClientPorts[i]+1))
		endpoints = append(endpoints, fmt.Sprintf("127.0.0.1:%d", devClientPorts[i]))
	}
	var wg sync.WaitGroup
	procs := make([]*exec.Cmd, n) // nil: not running
	running := 0
	readyc := make(chan string, 2*n)
	exited := make(chan devExit, n)
	stop := func() {
		for _, p := range procs {
			if p != nil {
				p.Process.Signal(syscall.SIGTERM)
			}
		}
	}
	waitAll := func() {
		for ; running > 0; running-- {
			<-exited
		}
		wg.Wait()
	}
	start := func(i int) error {
		name := fmt.Sprintf("m%d", i+1)
		c := exec.Command(self, "server",
			"--name", name,
			"--data-dir", filepath.Join(dataDir, name),
			"--initial-cluster", strings.Join(initial, ","),
			"--listen-client", endpoints[i],
			"--listen-peer", fmt.Sprintf("127.0.0.1:%d", devClientPorts[i]+1),
			// A dev cluster is for trying things: `concord fault` works.
			"--fault-injection",
		)
		c.Stdout = os.Stdout
		out, err := c.StderrPipe()
		if err != nil {
			return err
		}
		if err := c.Start(); err != nil {
			return fmt.Errorf("start member %s: %w", name, err)
		}
		procs[i] = c
		running++
		wg.Add(1)
		go func() {
			defer wg.Done()
			relay(out, name, readyc)
			// Wait after the pipe is drained, as exec.Cmd requires.
			exited <- devExit{i, c.Wait()}
		}()
		return nil
	}
	for i := 0; i < n; i++ {
		if err := start(i); err != nil {
			stop()
			waitAll()
			return err
		}
	}
	fmt.Printf("concord dev: %d members, data under %s\n", n, dataDir)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	restartc := make(chan int, n)
	var timers []*time.Timer
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	ready := 0
	timeout := time.After(30 * time.Second)
	for {
		select {
		case <-readyc:
			ready++
			if ready == n {
				fmt.Printf("\nconcord dev: ready. Client endpoints: %s\n", strings.Join(endpoints, ","))
				fmt.Printf("  etcdctl --endpoints=%s endpoint status -w table\n", strings.Join(endpoints, ","))
				fmt.Printf("  go run ./cmd/concord status --endpoints=%s\n", strings.Join(endpoints, ","))
				fmt.Printf("  go run ./cmd/concord fault isolate-leader --duration 10s --endpoints=%s\n", strings.Join(endpoints, ","))
				fmt.Printf("Press Ctrl-C to stop.\n\n")
			}
		case <-timeout:
			if ready < n {
				fmt.Fprintf(os.Stderr, "concord dev: only %d of %d members ready after 30s; still waiting\n", ready, n)
			}
		case e := <-exited:
			running--
			procs[e.i] = nil
			if killedExit(e.err) {
				fmt.Fprintf(os.Stderr, "concord dev: m%d was killed (%v); restarting it in %v\n", e.i+1, e.err, restartAfter)
				i := e.i
				timers = append(timers, time.AfterFunc(restartAfter, func() { restartc <- i }))
				continue
			}
			stop()
			waitAll()
			return fmt.Errorf("member m%d exited: %v", e.i+1, e.err)
		case i := <-restartc:
			fmt.Fprintf(os.Stderr, "concord dev: restarting m%d\n", i+1)
			if err := start(i); err != nil {
				stop()
				waitAll()
				return err
			}
		case <-sigs:
			stop()
			waitAll()
			return nil
		}
	}
}

// relay copies a member's log to stderr, prefixed by its name, and reports
// when it is ready.
func relay(r io.Reader, name string, readyc chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(os.Stderr, "%-3s | %s\n", name, line)
		if strings.Contains(line, "ready to serve client requests") {
			// Never block the log on it: dev may be stopping.
			select {
			case readyc <- name:
			default:
			}
		}
	}
}
