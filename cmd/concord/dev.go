package main

import (
	"bufio"
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
)

func init() { subcommands = append(subcommands, newDevCmd) }

// devClientPorts follows etcd's Procfile (2379, 22379, 32379, ...); a
// member's peer port is its client port + 1.
var devClientPorts = []int{2379, 22379, 32379, 42379, 52379, 62379, 12379}

func newDevCmd() *cobra.Command {
	var members int
	var dataDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster of real members on 127.0.0.1 until interrupted",
		Long: `Run a local cluster: N real "concord server" processes on 127.0.0.1, each with
its own data directory (WAL and snapshots) under --data-dir and its own ports
(clients 2379, 22379, 32379, ...; peers one above each). Data survives a
restart of "concord dev". Stop with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if members < 1 || members > len(devClientPorts) {
				return usagef("--members %d: want 1 to %d", members, len(devClientPorts))
			}
			return runDev(members, dataDir)
		},
	}
	cmd.Flags().IntVar(&members, "members", 3, "number of members")
	cmd.Flags().StringVar(&dataDir, "data-dir", filepath.Join("concord-data", "dev"), "parent directory of the members' data")
	return cmd
}

func runDev(n int, dataDir string) error {
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
	var procs []*exec.Cmd
	readyc := make(chan string, n)
	stop := func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
	}
	for i := 0; i < n; i++ {
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
			stop()
			return err
		}
		if err := c.Start(); err != nil {
			stop()
			return fmt.Errorf("start member %s: %w", name, err)
		}
		procs = append(procs, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			relay(out, name, readyc)
		}()
	}
	fmt.Printf("concord dev: %d members, data under %s\n", n, dataDir)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	exited := make(chan error, n)
	for _, p := range procs {
		go func() { exited <- p.Wait() }()
	}
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
		case err := <-exited:
			stop()
			for i := 1; i < n; i++ {
				<-exited
			}
			wg.Wait()
			return fmt.Errorf("a member exited: %v", err)
		case <-sigs:
			stop()
			for range procs {
				<-exited
			}
			wg.Wait()
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
			readyc <- name
		}
	}
}
