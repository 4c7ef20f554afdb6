package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// ratio is Concord's figure over a rival's on one workload with one tool:
// throughput over throughput, or for paced workloads the rival's p50 over
// Concord's. Above 1 means Concord is better. ok is false when either side
// has no figure.
func ratio(w workload, concord, rival *cell) (float64, bool) {
	if concord == nil || rival == nil || !concord.ok() || !rival.ok() {
		return 0, false
	}
	if w.ByLatency {
		if concord.p50() <= 0 {
			return 0, false
		}
		return rival.p50() / concord.p50(), true
	}
	r := rival.rps().Med
	if r <= 0 {
		return 0, false
	}
	return concord.rps().Med / r, true
}

func fmtRate(c *cell) string {
	if c == nil {
		return "—"
	}
	if !c.ok() {
		return "failed"
	}
	r := c.rps()
	s := fmt.Sprintf("%.0f (%.0f–%.0f)", r.Med, r.Min, r.Max)
	if f := c.failed(); f > 0 {
		s += fmt.Sprintf(" ⚠ %d errors", f)
	}
	return s
}

func fmtLat(c *cell) string {
	if c == nil || !c.ok() {
		return "—"
	}
	return fmt.Sprintf("%s / %s", ms(c.p50()), ms(c.p99()))
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// cpuModel is the machine's CPU as /proc/cpuinfo names it (cpuModelFrom).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	return cpuModelFrom(string(b), runtime.GOARCH)
}

// cpuModelFrom names the first processor of a /proc/cpuinfo text. A
// hypervisor often shows a generic name ("Intel(R) Xeon(R) Processor"), so
// x86's family, model and stepping follow it (they tell the generation
// apart), arm64's implementer and part stand in for the name it lacks, and
// a virtual machine says so.
func cpuModelFrom(cpuinfo, arch string) string {
	first := map[string]string{}
	for _, l := range strings.Split(cpuinfo, "\n") {
		if strings.TrimSpace(l) == "" && len(first) > 0 {
			break // the first processor's block ends
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			k = strings.TrimSpace(k)
			if _, seen := first[k]; !seen {
				first[k] = strings.TrimSpace(v)
			}
		}
	}
	var parts []string
	if n := first["model name"]; n != "" {
		parts = append(parts, n)
	} else {
		parts = append(parts, arch)
	}
	if f, m := first["cpu family"], first["model"]; f != "" && m != "" {
		id := "family " + f + " model " + m
		if st := first["stepping"]; st != "" {
			id += " stepping " + st
		}
		parts = append(parts, id)
	}
	if i, pt := first["CPU implementer"], first["CPU part"]; i != "" && pt != "" {
		parts = append(parts, "implementer "+i+" part "+pt)
	}
	if slices.Contains(strings.Fields(first["flags"]), "hypervisor") {
		parts = append(parts, "virtualized")
	}
	return strings.Join(parts, ", ")
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			var kb float64
			fmt.Sscan(f[1], &kb)
			return fmt.Sprintf("%.0f GiB", kb/1024/1024)
		}
	}
	return "?"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// target is one line of issue 5's table that this harness measures.
type target struct {
	what  string
	check func(e *env, t toolKind) string
}

func (e *env) cell(n int, sys, wl string, t toolKind) *cell { return e.cells[cellKey(n, sys, wl, t)] }

func (e *env) targets() []target {
	ratioCheck := func(wl string, want float64) func(*env, toolKind) string {
		return func(e *env, t toolKind) string {
			w := findWorkload(e.workloads, wl)
			if w == nil {
				return "not run"
			}
			r, ok := ratio(*w, e.cell(3, "concord", wl, t), e.cell(3, "etcd36", wl, t))
			if !ok {
				return "no figure"
			}
			return verdict(r >= want, fmt.Sprintf("%.2f×", r))
		}
	}
	return []target{
		{"put, 100 clients (leader): ≥ 2.0× etcd 3.6 req/s, p99 ≤ etcd's", func(e *env, t toolKind) string {
			c, r := e.cell(3, "concord", "put-100-leader", t), e.cell(3, "etcd36", "put-100-leader", t)
			w := findWorkload(e.workloads, "put-100-leader")
			if w == nil {
				return "not run"
			}
			x, ok := ratio(*w, c, r)
			if !ok {
				return "no figure"
			}
			return verdict(x >= 2 && c.p99() <= r.p99(), fmt.Sprintf("%.2f×, p99 %s vs %s ms", x, ms(c.p99()), ms(r.p99())))
		}},
		{"put, 1 client: p50 ≤ 0.5 ms", func(e *env, t toolKind) string {
			c := e.cell(3, "concord", "put-1", t)
			if c == nil || !c.ok() {
				return "no figure"
			}
			return verdict(c.p50() <= 0.5, ms(c.p50())+" ms")
		}},
		{"range linearizable, 100 clients: ≥ 1.5× etcd 3.6", func(e *env, t toolKind) string { return ratioCheck("range-l-100", 1.5)(e, t) }},
		{"range serializable, 100 clients: ≥ 1.5× etcd 3.6", func(e *env, t toolKind) string { return ratioCheck("range-s-100", 1.5)(e, t) }},
		{"lease keepalive, 100 clients: ≥ 1.5× etcd 3.6", func(e *env, t toolKind) string { return ratioCheck("lease-100", 1.5)(e, t) }},
		{"watch fan-out: ≥ 1.5× etcd 3.6", func(e *env, t toolKind) string { return ratioCheck("watch-fanout", 1.5)(e, t) }},
	}
}

func verdict(ok bool, fig string) string {
	if ok {
		return "met (" + fig + ")"
	}
	return "**missed** (" + fig + ")"
}

func findWorkload(ws []workload, id string) *workload {
	for i := range ws {
		if ws[i].ID == id {
			return &ws[i]
		}
	}
	return nil
}

func (e *env) sysName(key string) string {
	for _, s := range e.systems {
		if s.Key == key {
			return s.Name
		}
	}
	return key
}

func (e *env) hasSys(key string) bool {
	for _, s := range e.systems {
		if s.Key == key {
			return true
		}
	}
	return false
}

// renderPage writes docs/BENCHMARKS.md.
func renderPage(e *env) string {
	o := e.opts
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Benchmarks")
	p("")
	p("Generated by `%s` (the harness in `bench/`, issue 5) — do not edit by hand; rerun it.", strings.TrimSpace(o.Commands))
	p("")
	if o.Smoke {
		p("> **SMOKE RUN**: tiny totals, one run each. It checks that the harness works and every server answers; the figures mean nothing.")
		p("")
	}
	p("## Setup")
	p("")
	p("- machine: %d cores (%s), %s RAM, Linux %s; %s", runtime.NumCPU(), cpuModel(), memTotal(), kernel(), e.goVersion)
	p("- run: %s, took %v%s", e.started.UTC().Format("2006-01-02 15:04 MST"), e.finished.Sub(e.started).Round(time.Second), phasesText(e.phases))
	p("- systems:")
	for _, s := range e.systems {
		p("  - **%s**: %s", s.Name, s.Version)
	}
	p("- load tools, both run against every system:")
	for _, t := range tools {
		p("  - **%s**: %s", t, e.toolVers[t])
	}
	p("- every member, of every system, started as `<binary> %s` (Concord: `concord server` with the same flags, which it accepts as etcd does): heartbeat 100 ms, election 1000 ms, snapshot every 10,000 entries, fsync on, a fresh data dir on the disk probed below, on 127.0.0.1; as 1 and as 3 members, the clusters of every system of one size running at once, each idle but while it is measured", memberFlagsTemplate())
	p("- per cluster: wait until a put succeeds and every member serves a linearizable read, put `foo` (256 B, the key the range workloads read), warm up with `concord bench --endpoints <all> --conns 10 --clients 100 put --key-size 8 --val-size 256 --total 2000`")
	if o.Smoke {
		p("- per workload and tool: one run at the smoke total")
	} else {
		p("- per workload and tool: one calibration run (also a warm-up) per system sizes its total N to about %.3g s of load, then %d runs of N, interleaved across the systems (run 1 of every system, then run 2 of every system, …), so that the runs a ratio compares are seconds apart and the machine's drift falls on every system alike; figures are the median with min–max of the runs; latencies are medians of the runs' p50 and p99", o.Secs, o.Runs)
	}
	p("- CPU: each measured run also records the CPU its members and its load tool used (see CPU per request)")
	if !o.Smoke {
		p("- steal: a measured run during which the hypervisor gave more than %.0f%% of the machine's CPU to other guests (the growth of /proc/stat's steal column ÷ (cores × the tool's wall time)) measured its neighbours, and only the system it happened to; it is run again, at most %d times, each time once a %s passes with no more than that stolen (or after %s at most), and the last attempt stands. Every repeat is listed under Runs with the share stolen from the attempt it replaced and the wait before it. The same holds in the sections at scale and in the TLS and auth section", 100*maxStolen, maxStealRepeats, calmWindow, maxCalmWait)
	}
	p("- ratios: Concord's median req/s ÷ the rival's, with the same tool (for watch latency: the rival's p50 ÷ Concord's); above 1 means Concord is ahead")
	p("")

	p("## Machine ceilings (same run)")
	p("")
	p("Measured before the side-by-side tables, which use these figures, and again after them: a shared disk or host that changed while the tables ran shows in the difference.")
	p("")
	p("| ceiling | median | min–max | p50 / p99 ms | after the tables: median | min–max | p50 / p99 ms |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	after := func(c *cell) string {
		if c == nil || !c.ok() {
			return "not measured | |"
		}
		r := c.rps()
		return fmt.Sprintf("%.0f | %.0f–%.0f | %s", r.Med, r.Min, r.Max, fmtLat(c))
	}
	for _, w := range fsyncWriters {
		c := e.fsync[w]
		if c == nil || !c.ok() {
			continue
		}
		f := c.rps()
		what := "data disk: 4 KiB write + fdatasync, per second"
		if w > 1 {
			what = fmt.Sprintf("data disk: the same in %d files at once (a cluster's WALs on one disk), per second per file", w)
		}
		p("| %s | %.0f | %.0f–%.0f | %s | %s |", what, f.Med, f.Min, f.Max, fmtLat(c), after(e.fsyncAfter[w]))
	}
	for _, shape := range []string{ceil1, ceil100} {
		c := e.noop[shape]
		conns, clients, _ := strings.Cut(shape, "/")
		if c == nil {
			continue
		}
		r := c.rps()
		p("| no-op gRPC unary (264 B request), %s conns / %s clients, calls/s | %.0f | %.0f–%.0f | %s | %s |", conns, clients, r.Med, r.Min, r.Max, fmtLat(c), after(e.noopAfter[shape]))
	}
	p("")

	if len(o.Members) > 0 {
		p("## Targets of issue 5 (3 members, ratios to etcd 3.6 in this run)")
		p("")
		if !containsInt(o.Members, 3) || !e.hasSys("etcd36") {
			p("Not evaluated: this run had no 3-member etcd 3.6 cluster.")
		} else {
			p("| target | with etcd benchmark | with concord bench |")
			p("|---|---|---|")
			for _, t := range e.targets() {
				p("| %s | %s | %s |", t.what, t.check(e, toolEtcd), t.check(e, toolConcord))
			}
			p("")
			b.WriteString(renderScaleTargets(e, ""))
		}
		p("")
	}

	members := append([]int{}, o.Members...)
	// 3 members first: the targets are stated for 3.
	for i, j := 0, len(members)-1; i < j; i, j = i+1, j-1 {
		members[i], members[j] = members[j], members[i]
	}
	for _, n := range members {
		p("## Results, %d member%s", n, plural(n))
		p("")
		renderResults(e, p, e.workloads, func(sys string, w workload, t toolKind) *cell { return e.cell(n, sys, w.ID, t) })
		p("")
		p("Watch fan-out: the rate is watch events delivered per second; etcd benchmark's latencies there are its own hand-off times, not delivery latencies (concord bench measures from each put's acknowledgement). Watch latency: from the put's acknowledgement to each watcher's receipt, 0 when the event beats the reply.")
		p("")
	}

	if e.hasSys("concord") {
		p("## Concord against the no-op gRPC ceiling")
		p("")
		p("Concord's median rate as a fraction of the no-op unary service's at the same connection and client counts (the ceiling of this machine's gRPC stack, with no work behind it).")
		p("")
		p("| members | workload | tool | Concord req/s | no-op calls/s | fraction |")
		p("|---:|---|---|---:|---:|---:|")
		for _, n := range members {
			for _, w := range e.workloads {
				if w.Ceiling == "" || e.noop[w.Ceiling] == nil {
					continue
				}
				for _, t := range tools {
					c := e.cell(n, "concord", w.ID, t)
					if c == nil || !c.ok() {
						continue
					}
					nr := e.noop[w.Ceiling].rps().Med
					p("| %d | %s | %s | %.0f | %.0f | %.1f%% |", n, w.Name, t, c.rps().Med, nr, 100*c.rps().Med/nr)
				}
			}
		}
		p("")
	}

	b.WriteString(renderCPU(e, members, runtime.NumCPU()))

	p("## Server memory after the workloads")
	p("")
	p("Resident set of each member, read from /proc after the last workload (not the 1M-key measurement of issue 5).")
	p("")
	p("| members | system | RSS per member, MiB |")
	p("|---:|---|---|")
	for _, n := range members {
		for _, s := range e.systems {
			r := e.rss[fmt.Sprintf("%d|%s", n, s.Key)]
			if r == nil {
				continue
			}
			parts := make([]string, len(r))
			for i, v := range r {
				parts[i] = fmt.Sprintf("%.0f", v)
			}
			p("| %d | %s | %s |", n, s.Name, strings.Join(parts, ", "))
		}
	}
	p("")

	for _, id := range scaleIDs {
		if e.scale[id] {
			b.WriteString(renderScaleSection(e, id))
			p("")
		}
	}
	if e.tlsAuth {
		b.WriteString(renderTLSAuth(e))
		p("")
	}

	p("## Commands")
	p("")
	p("`<endpoints>` is every member's client URL (`127.0.0.1:<port>,...`); `--target-leader` makes both tools send to the leader only. `<N>` is the total of each run, listed under Runs.")
	p("")
	for _, w := range e.workloads {
		p("- %s:", w.Name)
		for _, t := range tools {
			w := w
			p("  - `%s`", e.template(t, w))
		}
	}
	p("- no-op gRPC ceiling: `bench noop-server` (prints its address), then for each shape `bench noop-load --addr <address> --conns C --clients K --seconds S` (the harness binary re-executed; source in bench/noop.go)")
	p("- fsync probe: bench/fsync.go, 4 KiB `pwrite` at offset 0 + `fdatasync` in a loop, in the work directory that holds the data dirs; alone, then in %d files by as many goroutines at once; latencies are each write + fdatasync", fsyncWriters[len(fsyncWriters)-1])
	p("")
	p("## Runs")
	p("")
	p("Every measured run's req/s, in order (after the calibration run).")
	p("")
	p("| members | system | workload | tool | N | req/s per run | error or retry |")
	p("|---:|---|---|---|---:|---|---|")
	for _, n := range members {
		for _, s := range e.systems {
			for _, w := range e.workloads {
				for _, t := range tools {
					c := e.cell(n, s.Key, w.ID, t)
					if c == nil {
						continue
					}
					rs := make([]string, len(c.Runs))
					for i, r := range c.Runs {
						rs[i] = fmt.Sprintf("%.0f", r.RPS)
					}
					msg := firstOf(c.Err)
					if c.Retried > 0 {
						msg = strings.TrimSpace(fmt.Sprintf("%s (%d run(s) retried after: %s)", msg, c.Retried, strings.Join(c.Errors, "; ")))
					}
					p("| %d | %s | %s | %s | %d | %s | %s |", n, s.Name, w.ID, t, c.Total, strings.Join(rs, ", "),
						strings.ReplaceAll(msg, "|", "\\|"))
				}
			}
		}
	}
	p("")
	for _, note := range e.notes {
		p("%s", note)
	}
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// renderResults writes a results table: per workload and tool, each
// system's median rate and latencies, then Concord's ratio to each rival.
// cellOf finds a system's cell.
func renderResults(e *env, p func(string, ...any), wls []workload, cellOf func(sys string, w workload, t toolKind) *cell) {
	head, sep := "| workload | tool |", "|---|---|"
	for _, s := range e.systems {
		head += fmt.Sprintf(" %s req/s (min–max) | %s p50 / p99 ms |", s.Name, s.Name)
		sep += "---:|---:|"
	}
	for _, s := range e.systems {
		if s.Key != "concord" && e.hasSys("concord") {
			head += fmt.Sprintf(" Concord ÷ %s |", s.Name)
			sep += "---:|"
		}
	}
	p("%s", head)
	p("%s", sep)
	for _, w := range wls {
		for _, t := range tools {
			row := fmt.Sprintf("| %s | %s |", w.Name, t)
			for _, s := range e.systems {
				c := cellOf(s.Key, w, t)
				rate := fmtRate(c)
				if w.ByLatency && c != nil && c.ok() {
					rate = fmt.Sprintf("paced: %d puts/s", w.RatePerSec)
				}
				row += fmt.Sprintf(" %s | %s |", rate, fmtLat(c))
			}
			for _, s := range e.systems {
				if s.Key != "concord" && e.hasSys("concord") {
					if r, ok := ratio(w, cellOf("concord", w, t), cellOf(s.Key, w, t)); ok {
						row += fmt.Sprintf(" %.2f× |", r)
					} else {
						row += " — |"
					}
				}
			}
			p("%s", row)
		}
	}
}

// phasesText lists where a run's time went, as " (build 9s, machine
// ceilings 24s, ...)"; empty when nothing was recorded.
func phasesText(ps []phase) string {
	if len(ps) == 0 {
		return ""
	}
	parts := make([]string, len(ps))
	for i, ph := range ps {
		parts[i] = fmt.Sprintf("%s %v", ph.Name, ph.Took.Round(time.Second))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
