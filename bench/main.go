package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	Smoke    bool
	Runs     int
	Secs     float64
	Out      string
	Root     string
	Etcd34   string
	Systems  []string
	Members  []int
	Only     string
	Keep     bool
	WorkDir  string
	Raw      string
	Commands string
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.Smoke, "smoke", false, "tiny totals, one run each: checks the harness and that every server answers (for CI)")
	fs.IntVar(&o.Runs, "runs", 3, "measured runs per workload, tool and system (median, min–max)")
	// 1.5 s: a full run measures about 200 cells three times each, and
	// must stay within issue 5's 30 minutes from a clean clone.
	fs.Float64Var(&o.Secs, "secs", 1.5, "target length of one measured run, in seconds (full mode)")
	fs.StringVar(&o.Out, "out", "", "page to write (default <root>/docs/BENCHMARKS.md; smoke: <workdir>/BENCHMARKS.md)")
	fs.StringVar(&o.Root, "root", "", "Concord's repository (default: found upward from the working directory)")
	fs.StringVar(&o.Etcd34, "etcd34", "/usr/bin/etcd", "Debian's etcd-server 3.4 binary")
	systems := fs.String("systems", "concord,etcd36,etcd34", "systems to run, in order")
	members := fs.String("members", "1,3", "cluster sizes")
	fs.StringVar(&o.Only, "only", "", "comma-separated workload ids to run (default all); "+tlsAuthID+
		" (the TLS and auth section) and "+strings.Join(scaleIDs, ", ")+" (the targets at scale) are sections: "+
		"named without workloads, they run alone and are written into the existing page")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory (data dirs, logs, binaries)")
	fs.StringVar(&o.WorkDir, "workdir", "", "work directory (default: a new temporary one)")
	fs.StringVar(&o.Raw, "json", "", "also write every measurement as JSON here")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.Commands = "go -C bench run . " + strings.Join(args, " ")
	o.Systems = strings.Split(*systems, ",")
	for _, s := range strings.Split(*members, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 7 {
			return o, fmt.Errorf("bench: bad --members %q", *members)
		}
		o.Members = append(o.Members, n)
	}
	for _, s := range o.Systems {
		if s != "concord" && s != "etcd36" && s != "etcd34" {
			return o, fmt.Errorf("bench: unknown system %q (concord, etcd36, etcd34)", s)
		}
	}
	if o.Runs < 1 || o.Secs <= 0 {
		return o, errors.New("bench: --runs must be ≥ 1 and --secs > 0")
	}
	if o.Smoke {
		o.Runs = 1
	}
	return o, nil
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "noop-server":
			exitOn(noopServerMain())
			return
		case "noop-load":
			exitOn(noopLoadMain(os.Args[2:]))
			return
		}
	}
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	exitOn(run(o))
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// findRoot walks up from the working directory to Concord's repository.
func findRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "cmd", "concord", "main.go")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("bench: cannot find Concord's repository above the working directory (use --root)")
		}
		d = up
	}
}

// build compiles one binary with the go command, in dir.
func build(dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: go build %s (in %s): %w\n%s", pkg, dir, err, b)
	}
	return nil
}

func firstLine(bin string, args ...string) string {
	b, _ := exec.Command(bin, args...).CombinedOutput()
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// versionOf runs `bin --version` and returns "etcd Version: 3.4.23 (Go go1.19.8)".
func versionOf(bin string) string {
	b, _ := exec.Command(bin, "--version").CombinedOutput()
	var v, g string
	for _, line := range strings.Split(string(b), "\n") {
		if k, val, ok := strings.Cut(line, ":"); ok {
			switch strings.TrimSpace(k) {
			case "etcd Version":
				v = strings.TrimSpace(val)
			case "Go Version":
				g = strings.TrimSpace(val)
			}
		}
	}
	return strings.TrimSpace(v + " (" + g + ")")
}

// env is everything a run produced, for the page.
type env struct {
	opts      options
	started   time.Time
	finished  time.Time
	systems   []system
	tools     map[toolKind]string // binary
	toolVers  map[toolKind]string
	workloads []workload
	cells     map[string]*cell // key: members|system|workload|tool
	fsync     map[int]*cell    // key: writers at once (fsyncWriters)
	noop      map[string]*cell // key: ceiling shape
	// fsyncAfter and noopAfter are the same ceilings measured again after
	// the side-by-side tables, so that a machine that changed during the
	// run (a shared disk or host) shows it on the page.
	fsyncAfter map[int]*cell
	noopAfter  map[string]*cell
	rss        map[string][]float64
	notes      []string
	goVersion  string
	commit     string

	// The TLS and auth section (tlsauth.go): whether it runs, whether it
	// runs alone (spliced into the existing page), Concord, its cells
	// (key: variant|workload|tool), and the passwords to keep out of
	// every message.
	tlsAuth     bool
	sectionOnly bool
	concord     system
	tlsCells    map[string]*cell
	secrets     []string

	// The sections at scale (scale.go): which run, and their figures by
	// system key (bigCells: system|workload|tool).
	scale      map[string]bool
	bigCells   map[string]*cell
	rangeLoads map[string]*loadResult
	mem        map[string]*memResult
	failover   map[string]*failoverResult

	// phases is where the run's time went, in order, for the page: the
	// full run must stay within the 30 minutes issue 5 allows.
	phases []phase
}

// phase is one part of a run and its wall time.
type phase struct {
	Name string
	Took time.Duration
}

// anyScale reports whether a section at scale runs.
func (e *env) anyScale() bool {
	for _, id := range scaleIDs {
		if e.scale[id] {
			return true
		}
	}
	return false
}

func cellKey(members int, sys, wl string, t toolKind) string {
	return fmt.Sprintf("%d|%s|%s|%s", members, sys, wl, t)
}

func run(o options) error {
	root := o.Root
	if root == "" {
		var err error
		if root, err = findRoot(); err != nil {
			return err
		}
	}
	root, _ = filepath.Abs(root)
	benchDir := filepath.Join(root, "bench")
	work := o.WorkDir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "concord-bench-"); err != nil {
			return err
		}
	}
	if !o.Keep {
		defer os.RemoveAll(work)
	}
	if o.Out == "" {
		o.Out = filepath.Join(root, "docs", "BENCHMARKS.md")
		if o.Smoke {
			// A smoke run's figures mean nothing; it must not overwrite the page.
			o.Out = filepath.Join(work, "BENCHMARKS.md")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e := &env{opts: o, started: time.Now(), cells: map[string]*cell{}, noop: map[string]*cell{}, fsync: map[int]*cell{},
		rss: map[string][]float64{}, tools: map[toolKind]string{}, toolVers: map[toolKind]string{},
		tlsCells: map[string]*cell{}, scale: map[string]bool{}, bigCells: map[string]*cell{},
		rangeLoads: map[string]*loadResult{}, mem: map[string]*memResult{}, failover: map[string]*failoverResult{}}
	e.goVersion = firstLine("go", "version")
	if b, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.commit = strings.TrimSpace(string(b))
		if b, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(b) > 0 {
			e.commit += " (with uncommitted changes)"
		}
	}
	selected := func(id string) bool { return o.Only == "" || strings.Contains(","+o.Only+",", ","+id+",") }
	for _, w := range workloads() {
		if selected(w.ID) {
			e.workloads = append(e.workloads, w)
		}
	}
	e.tlsAuth = selected(tlsAuthID) && slices.Contains(o.Systems, "concord")
	for _, id := range scaleIDs {
		e.scale[id] = selected(id)
	}
	if len(e.workloads) == 0 && !e.tlsAuth && !e.anyScale() {
		return fmt.Errorf("bench: --only %q matches no workload (nor a section: %s, %s, which needs concord among --systems)",
			o.Only, strings.Join(scaleIDs, ", "), tlsAuthID)
	}
	e.sectionOnly = len(e.workloads) == 0

	// ---- binaries ----
	fmt.Fprintf(os.Stderr, "bench: building Concord, the rivals and etcd's benchmark tool in %s\n", work)
	t0 := time.Now()
	concordBin := filepath.Join(work, "concord")
	if err := build(root, concordBin, "./cmd/concord"); err != nil {
		return err
	}
	e.concord = system{Key: "concord", Name: "Concord", Bin: concordBin, Prefix: []string{"server"},
		Version: "commit " + e.commit}
	bySys := map[string]system{"concord": e.concord}
	for _, s := range o.Systems {
		if e.sectionOnly && !e.anyScale() {
			break // the TLS and auth section is Concord's alone
		}
		switch s {
		case "etcd36":
			bin := filepath.Join(work, "etcd-3.6")
			if err := build(filepath.Join(benchDir, "etcd36"), bin, "."); err != nil {
				return err
			}
			bySys[s] = system{Key: s, Name: "etcd 3.6", Bin: bin,
				Version: versionOf(bin) + ", go.etcd.io/etcd/server/v3 built by bench/etcd36"}
		case "etcd34":
			v := versionOf(o.Etcd34)
			if !strings.HasPrefix(v, "3.4.") {
				return fmt.Errorf("bench: %s is not etcd 3.4 (got %q); install Debian's etcd-server "+
					"(apt-get install -y etcd-server), pass --etcd34 PATH, or leave it out with --systems concord,etcd36", o.Etcd34, v)
			}
			bySys[s] = system{Key: s, Name: "etcd 3.4", Bin: o.Etcd34, Version: v + ", Debian etcd-server, " + o.Etcd34}
		}
	}
	for _, s := range o.Systems {
		if !e.sectionOnly || e.anyScale() {
			e.systems = append(e.systems, bySys[s])
		}
	}
	benchBin := filepath.Join(work, "benchmark")
	if err := build(filepath.Join(benchDir, "etcdbench"), benchBin, "go.etcd.io/etcd/v3/tools/benchmark"); err != nil {
		return err
	}
	e.tools[toolEtcd], e.tools[toolConcord] = benchBin, concordBin
	e.toolVers[toolEtcd] = "tools/benchmark of go.etcd.io/etcd/v3 v3.6.8, built by bench/etcdbench"
	e.toolVers[toolConcord] = "`concord bench`, commit " + e.commit
	built := time.Since(t0)
	e.phases = append(e.phases, phase{"build", built})
	fmt.Fprintf(os.Stderr, "bench: built in %v\n", built.Round(100*time.Millisecond))

	self, err := os.Executable()
	if err != nil {
		return err
	}

	// ---- progress accounting: a step is a cluster start, a workload×tool, or a ceiling ----
	perCell := float64(o.Runs)*o.Secs + 2
	if o.Smoke {
		perCell = 1
	}
	steps, units := 0, 0.0
	if !e.sectionOnly {
		ceilings := 2 * (len(fsyncWriters) + 1) // the fsync probes and the no-op service, before and after the tables
		steps = ceilings + len(o.Members)*(len(e.systems)+len(e.workloads)*len(tools))
		units = float64(ceilings)*perCell + float64(len(o.Members)*len(e.systems))*(5+float64(len(e.workloads)*len(tools))*perCell)
	}
	if e.anyScale() {
		s, u := e.scaleSteps(perCell)
		steps, units = steps+s, units+u
	}
	if e.tlsAuth {
		s, u := e.tlsAuthSteps(perCell)
		steps, units = steps+s, units+u
	}
	p := newProgress(os.Stderr, steps, units)
	runTimeout := 60 * time.Second
	if !o.Smoke {
		runTimeout = max(2*time.Minute, time.Duration(o.Secs*10*float64(time.Second)))
	}
	if !e.sectionOnly {
		if err := e.measureSystems(ctx, p, self, work, perCell, runTimeout); err != nil {
			return err
		}
	}
	if miss := missingCPU(e.cells); len(miss) > 0 {
		slices.Sort(miss)
		msg := fmt.Sprintf("bench: no CPU figures for some runs of %s (first: %s)", strings.Join(miss, ", "), e.firstCPUErr(miss[0]))
		if o.Smoke {
			// CI runs the smoke run: there, the accounting must work.
			return errors.New(msg)
		}
		e.notes = append(e.notes, msg)
	}
	if e.anyScale() {
		if err := e.measureScale(ctx, p, work, perCell, runTimeout); err != nil {
			return err
		}
	}
	if e.tlsAuth {
		t0 := time.Now()
		if err := e.measureTLSAuth(ctx, p, work, perCell, runTimeout); err != nil {
			return err
		}
		e.phases = append(e.phases, phase{tlsAuthID, time.Since(t0)})
	}
	e.finished = time.Now()
	var page string
	if e.sectionOnly {
		old, err := os.ReadFile(o.Out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		page = string(old)
		for _, id := range scaleIDs {
			if e.scale[id] {
				page = spliceSectionID(page, id, renderScaleSection(e, id))
			}
		}
		if e.anyScale() {
			page = spliceScaleTargets(page, renderScaleTargets(e, page))
		}
		if e.tlsAuth {
			page = spliceSection(page, renderTLSAuth(e))
		}
	} else {
		page = renderPage(e)
	}
	page = spliceSteps(page, renderSteps(readSteps(filepath.Join(benchDir, stepsFile))))
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.Out, []byte(page), 0o644); err != nil {
		return err
	}
	if o.Raw != "" {
		b, _ := json.MarshalIndent(map[string]any{"cells": e.cells, "noop": e.noop, "fsync": e.fsync,
			"noop_after_tables": e.noopAfter, "fsync_after_tables": e.fsyncAfter, "rss_mib": e.rss,
			"tls_auth": e.tlsCells, "range_big": e.bigCells, "range_big_loads": e.rangeLoads, "mem_1m": e.mem,
			"failover": e.failover, "cores": runtime.NumCPU(), "clk_tck": clkTck(),
			"cpu_per_request": cpuSummaries(e.cells, runtime.NumCPU())}, "", "  ")
		if err := os.WriteFile(o.Raw, b, 0o644); err != nil {
			return err
		}
	}
	where := o.Out
	if e.sectionOnly {
		where += " (its sections " + o.Only + " only)"
	}
	if o.Smoke && !o.Keep && strings.HasPrefix(o.Out, work) {
		where += " (removed with the work directory; --keep keeps it)"
	}
	p.note("bench: done in %v; wrote %s", e.finished.Sub(e.started).Round(time.Second), where)
	failed := 0
	for _, cs := range []map[string]*cell{e.cells, e.tlsCells, e.bigCells} {
		for _, c := range cs {
			if !c.ok() {
				failed++
			}
		}
	}
	for _, m := range e.mem {
		if m.Err != "" {
			failed++
		}
	}
	for _, f := range e.failover {
		if f.Err != "" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("bench: %d workload runs failed (see the page)", failed)
	}
	return nil
}

// tools are the load tools, in the order the page lists them.
var tools = []toolKind{toolEtcd, toolConcord}

// measureSystems takes the machine's ceilings, then runs every workload
// with both tools on every system at every cluster size.
func (e *env) measureSystems(ctx context.Context, p *progress, self, work string, perCell float64, runTimeout time.Duration) error {
	o := e.opts
	concordBin := e.concord.Bin

	// ---- ceilings ----
	t0 := time.Now()
	var err error
	if e.fsync, e.noop, err = e.measureCeilings(ctx, p, self, work, perCell, ""); err != nil {
		return err
	}
	e.phases = append(e.phases, phase{"machine ceilings", time.Since(t0)})

	// ---- clusters ----
	// Every system's cluster of one size runs at once, idle but for the
	// one being measured, so that each cell can interleave the systems'
	// runs (measureAcross).
	val := strings.Repeat("v", 256)
	for _, n := range o.Members {
		t0 := time.Now()
		err := func() error {
			var cls []*cluster
			defer func() {
				for _, cl := range cls {
					cl.stop()
				}
			}()
			for _, sys := range e.systems {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				p.step(5, "%s × %d: starting", sys.Name, n)
				dir := filepath.Join(work, fmt.Sprintf("%s-%d", sys.Key, n))
				cl, err := startCluster(sys, n, dir, nil)
				if err != nil {
					return err
				}
				cls = append(cls, cl)
				if err := cl.waitReady(concordBin, 60*time.Second); err != nil {
					return err
				}
				eps := strings.Join(cl.Endpoints, ",")
				if _, se, err := runCmd(ctx, concordBin, []string{"put", "foo", val, "--endpoints", eps}, ""); err != nil {
					return fmt.Errorf("bench: put foo: %w: %s", err, se)
				}
				warm := []string{"bench", "--endpoints", eps, "--conns", "10", "--clients", "100",
					"put", "--key-size", "8", "--val-size", "256", "--total", "2000"}
				if _, se, err := runCmd(ctx, concordBin, warm, ""); err != nil {
					return fmt.Errorf("bench: warm-up: %w: %s", err, se)
				}
			}
			for _, w := range e.workloads {
				for _, t := range tools {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					e.measureAcross(ctx, p, perCell, n, t, w, cls, runTimeout)
				}
			}
			for _, cl := range cls {
				e.rss[fmt.Sprintf("%d|%s", n, cl.sys.Key)] = cl.rssMiB()
			}
			return nil
		}()
		if err != nil {
			return err
		}
		e.phases = append(e.phases, phase{fmt.Sprintf("%d-member tables", n), time.Since(t0)})
	}
	t0 = time.Now()
	if e.fsyncAfter, e.noopAfter, err = e.measureCeilings(ctx, p, self, work, perCell, " again, after the tables"); err != nil {
		return err
	}
	e.phases = append(e.phases, phase{"machine ceilings again", time.Since(t0)})
	return nil
}

// measureCeilings runs the fsync probes and the no-op gRPC service, each
// o.Runs times; when says which time it is, for the progress line.
func (e *env) measureCeilings(ctx context.Context, p *progress, self, work string, perCell float64, when string) (map[int]*cell, map[string]*cell, error) {
	probeSecs := 2 * time.Second
	if e.opts.Smoke {
		probeSecs = 500 * time.Millisecond
	}
	fsync := map[int]*cell{}
	for _, w := range fsyncWriters {
		p.step(perCell, "fsync probe (4 KiB write + fdatasync), %d file(s) at once, in %s%s", w, work, when)
		c := &cell{Command: fmt.Sprintf("bench/fsync.go: fsyncProbe(<work dir>, %d, %v)", w, probeSecs)}
		for range e.opts.Runs {
			s, err := fsyncProbe(work, w, probeSecs)
			if err != nil {
				return nil, nil, fmt.Errorf("bench: fsync probe: %w", err)
			}
			c.Runs = append(c.Runs, s)
		}
		fsync[w] = c
		p.note("fsync, %d at once: %.0f/s each, p50 %.2f ms (median of %d)", w, c.rps().Med, c.p50(), len(c.Runs))
	}
	p.step(perCell, "no-op gRPC unary ceiling%s", when)
	noop, err := e.measureNoop(ctx, self, probeSecs)
	if err != nil {
		return nil, nil, err
	}
	return fsync, noop, nil
}

func firstOf(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return l
}

// runTool runs one load tool once and parses its report. Its errors carry
// the command line and the tool's output with the run's passwords hidden.
// It also returns the tool's own CPU, user and system, in seconds.
func (e *env) runTool(ctx context.Context, t toolKind, args []string, timeout time.Duration) (sample, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmdline := e.redact(strings.Join(args, " "))
	out, errOut, cpu, err := runCmdCPU(ctx, e.tools[t], args, "")
	if err != nil {
		return sample{}, 0, fmt.Errorf("%s %s: %w\n%s\n%s", t, cmdline, err, e.redactedTail(out), e.redactedTail(errOut))
	}
	var s sample
	if t == toolConcord {
		s, err = parseConcord(out)
	} else {
		s, err = parseEtcd(out)
	}
	if err != nil {
		return sample{}, 0, fmt.Errorf("%s %s: %w\n%s", t, cmdline, err, e.redactedTail(out))
	}
	return s, cpu, nil
}

// runMeasured is one measured run: runTool, with the members' CPU read
// just before the tool starts and just after it has exited. A run whose
// CPU cannot be read keeps its figures, with CPUErr instead of CPU.
func (e *env) runMeasured(ctx context.Context, t toolKind, w workload, cl *cluster, total int, timeout time.Duration) (sample, error) {
	before, errBefore := cl.cpuSeconds()
	stealBefore, errSteal := machineSteal()
	t0 := time.Now()
	s, toolCPU, err := e.runTool(ctx, t, w.args(t, cl.Endpoints, total), timeout)
	wall := time.Since(t0).Seconds()
	if err != nil {
		return s, err
	}
	after, errAfter := cl.cpuSeconds()
	stealAfter, errStealAfter := machineSteal()
	switch {
	case errBefore != nil:
		s.CPUErr = errBefore.Error()
	case errAfter != nil:
		s.CPUErr = errAfter.Error()
	case errSteal != nil:
		s.CPUErr = errSteal.Error()
	case errStealAfter != nil:
		s.CPUErr = errStealAfter.Error()
	default:
		s.CPU = &cpuUse{Server: after - before, Tool: toolCPU, Requests: s.RPS * s.Elapsed, Wall: wall,
			Steal: stealAfter - stealBefore}
	}
	return s, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "…" + s[len(s)-1500:]
	}
	return s
}

// measureNoted is measure with its progress step and its result line, label
// naming the system and its size (and variant).
func (e *env) measureNoted(ctx context.Context, p *progress, perCell float64, label string, t toolKind, w workload, cl *cluster, timeout time.Duration) *cell {
	p.step(perCell, "%s: %s, %s", label, w.Name, t)
	c := e.measure(ctx, t, w, []*cluster{cl}, timeout)[0]
	e.noteCell(p, label, t, w, c)
	return c
}

// measureAcross measures w with t on the n-member cluster of every system,
// interleaved: each system's calibration run in turn, then the first
// measured run of every system before the second of any. Measured one
// system after another, a workload's runs on two systems were minutes
// apart; interleaved they are seconds apart, and the machine's drift (a
// busy neighbour, the host) falls on every system alike.
func (e *env) measureAcross(ctx context.Context, p *progress, perCell float64, n int, t toolKind, w workload, cls []*cluster, timeout time.Duration) {
	p.step(perCell*float64(len(cls)), "×%d: %s, %s", n, w.Name, t)
	cells := e.measure(ctx, t, w, cls, timeout)
	for i, cl := range cls {
		e.cells[cellKey(n, cl.sys.Key, w.ID, t)] = cells[i]
		e.noteCell(p, fmt.Sprintf("%s ×%d", cl.sys.Name, n), t, w, cells[i])
	}
}

// noteCell prints a measured cell's result line.
func (e *env) noteCell(p *progress, label string, t toolKind, w workload, c *cell) {
	if !c.ok() {
		p.note("  %s | %-55s | %-14s | FAILED: %s", label, w.Name, t, firstOf(c.Err))
		return
	}
	r := c.rps()
	cpu := ""
	if u, ok := cpuOf(c, runtime.NumCPU()); ok {
		cpu = fmt.Sprintf(" | cpu µs/req server %s tool %s, %.0f%% of ceiling, cores %.0f%% busy, %.0f%% stolen",
			us(u.ServerUS), us(u.ToolUS), 100*u.OfCeiling, 100*u.Busy, 100*u.Steal)
	}
	p.note("  %s | %-55s | %-14s | %8.0f/s (%.0f–%.0f) p50 %.2f ms p99 %.2f ms%s",
		label, w.Name, t, r.Med, r.Min, r.Max, c.p50(), c.p99(), cpu)
}

// measure sizes the workload on each cluster (one calibration run, which
// also warms it up), then runs it opts.Runs times on each, run i of every
// cluster before run i+1 of any. It returns a cell per cluster.
func (e *env) measure(ctx context.Context, t toolKind, w workload, cls []*cluster, timeout time.Duration) []*cell {
	cells := make([]*cell, len(cls))
	for i, cl := range cls {
		cells[i] = e.calibrate(ctx, t, w, cl, timeout)
	}
	for range e.opts.Runs {
		for i, cl := range cls {
			if cells[i].Err == "" && ctx.Err() == nil {
				e.runOnce(ctx, t, w, cl, cells[i], timeout)
			}
		}
	}
	return cells
}

// calibrate returns the cell for w with t on cl, its total sized by one
// calibration run (also a warm-up) to about opts.Secs of load, or the
// workload's own rate or smoke total; Err is set if the calibration failed.
func (e *env) calibrate(ctx context.Context, t toolKind, w workload, cl *cluster, timeout time.Duration) *cell {
	eps := cl.Endpoints
	total, retried := w.Smoke, 0
	if !e.opts.Smoke {
		if w.RatePerSec > 0 {
			total = max(w.Smoke, int(float64(w.RatePerSec)*e.opts.Secs))
		} else {
			s, _, err := e.runTool(ctx, t, w.args(t, eps, total), timeout)
			if err != nil {
				retried++
				s, _, err = e.runTool(ctx, t, w.args(t, eps, total), timeout)
			}
			if err != nil {
				return &cell{Total: total, Err: "calibration: " + err.Error(), Command: e.template(t, w), Retried: retried}
			}
			total = scaledTotal(total, s.Elapsed, e.opts.Secs, w.Smoke*1000)
		}
	}
	return &cell{Total: total, Command: e.template(t, w), Retried: retried}
}

// runOnce adds one measured run of c's total to c, or sets c.Err.
func (e *env) runOnce(ctx context.Context, t toolKind, w workload, cl *cluster, c *cell, timeout time.Duration) {
	s, err := e.runMeasured(ctx, t, w, cl, c.Total, timeout)
	if err != nil && ctx.Err() == nil {
		// One retry: etcd's watch tools start putting without waiting for
		// their watches to be created, so now and then a watcher misses an
		// event and the tool waits for it forever (our timeout ends it).
		c.Retried++
		c.Errors = append(c.Errors, firstOf(err.Error()))
		s, err = e.runMeasured(ctx, t, w, cl, c.Total, timeout)
	}
	if err != nil {
		c.Err = err.Error()
		return
	}
	// A run the hypervisor took much of the machine from measures the
	// neighbours, and only the system it happened to: run it again
	// (the page lists each repeat; the last attempt stands).
	for tries := 0; tries < maxStealRepeats && !e.opts.Smoke && ctx.Err() == nil; tries++ {
		share, ok := stolenShare(s, runtime.NumCPU())
		if !ok || share <= maxStolen {
			break
		}
		waited := waitForCalm(ctx, runtime.NumCPU(), machineSteal, time.Sleep)
		again, err := e.runMeasured(ctx, t, w, cl, c.Total, timeout)
		if err != nil {
			break // keep the run we have
		}
		c.Retried++
		c.Errors = append(c.Errors, fmt.Sprintf("%.0f%% of the machine stolen by the hypervisor (repeated after %s)", 100*share, waited))
		s = again
	}
	c.Runs = append(c.Runs, s)
}

// template is the command as the page shows it.
func (e *env) template(t toolKind, w workload) string {
	bin := "benchmark"
	if t == toolConcord {
		bin = "concord"
	}
	w.Conn = w.ConnShown
	a := w.args(t, []string{"<endpoints>"}, 0)
	a[len(a)-1] = "<N>"
	return bin + " " + strings.Join(a, " ")
}

// measureNoop starts the no-op server as a child process and loads it at each
// workload shape, opts.Runs times.
func (e *env) measureNoop(ctx context.Context, self string, d time.Duration) (map[string]*cell, error) {
	srv := exec.Command(self, "noop-server")
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := srv.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer func() {
		stdin.Close()
		_ = syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
		_ = srv.Wait()
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("bench: no-op server: %w", err)
	}
	addr = strings.TrimSpace(addr)
	noop := map[string]*cell{}
	for _, shape := range []string{ceil1, ceil100} {
		conns, clients, _ := strings.Cut(shape, "/")
		args := []string{"noop-load", "--addr", addr, "--conns", conns, "--clients", clients,
			"--seconds", strconv.FormatFloat(d.Seconds(), 'f', -1, 64)}
		c := &cell{Command: "bench noop-load --addr <no-op server> --conns " + conns + " --clients " + clients +
			" --seconds " + strconv.FormatFloat(d.Seconds(), 'f', -1, 64)}
		for range e.opts.Runs {
			cctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
			out, errOut, err := runCmd(cctx, self, args, "")
			cancel()
			if err != nil {
				return nil, fmt.Errorf("bench: no-op load: %w: %s", err, errOut)
			}
			var s sample
			if err := json.Unmarshal(out, &s); err != nil {
				return nil, fmt.Errorf("bench: no-op load output: %w", err)
			}
			c.Runs = append(c.Runs, s)
		}
		noop[shape] = c
	}
	return noop, nil
}
