package main

// CPU accounting of the measured runs. On a machine of two cores that
// carries three members and the load tool at once, a run may be bounded by
// the CPU rather than by either system's design; the page then has to say
// so, or a ratio reads as a property of the server when it is one of the
// machine. Every measured run (not the calibration run, not the warm-up)
// records the CPU the members spent between just before the tool started
// and just after it exited, and the CPU the tool itself spent; the page
// turns both into µs per request and into the rate at which the two cores
// would be saturated.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuUse is what one measured run cost in CPU.
type cpuUse struct {
	// Server is the CPU of every member together, in seconds: the growth of
	// utime+stime in /proc/<pid>/stat across the run, summed over members.
	Server float64 `json:"server_cpu_s"`
	// Tool is the load tool's own CPU, user+system, from wait4's rusage.
	Tool float64 `json:"tool_cpu_s"`
	// Requests is what the tool completed in the run (events for watch
	// fan-out): its reported rate × its reported elapsed time.
	Requests float64 `json:"requests"`
	// Wall is how long the tool's process ran, start to exit, in seconds:
	// the span both CPU figures cover (the tool's own elapsed time, behind
	// its rate, leaves out its start, connections and watch creation).
	Wall float64 `json:"tool_wall_s"`
	// Steal is the CPU time the hypervisor gave to other guests while this
	// machine's processes were ready to run, over all cores, in seconds:
	// the growth of /proc/stat's steal column across the run. On a shared
	// virtual machine it is what makes one system's runs slower than
	// another's through no fault of either.
	Steal float64 `json:"steal_s"`
}

// perReq is seconds over requests in µs; ok is false without requests.
func perReq(secs, requests float64) (float64, bool) {
	if requests <= 0 {
		return 0, false
	}
	return secs * 1e6 / requests, true
}

var errProcStat = errors.New("bench: malformed /proc/<pid>/stat")

// parseProcStatTicks returns utime+stime (fields 14 and 15 of proc(5)'s
// stat line) in clock ticks. The second field, the command name in
// parentheses, may hold spaces and parentheses itself, so the fields are
// counted from the last ')'.
func parseProcStatTicks(s string) (uint64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errProcStat
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, errProcStat
	}
	u, err1 := strconv.ParseUint(f[14-3], 10, 64)
	k, err2 := strconv.ParseUint(f[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errProcStat
	}
	return u + k, nil
}

// atClkTck is the auxiliary vector's entry for the clock tick rate, the
// value sysconf(_SC_CLK_TCK) returns.
const atClkTck = 17

// clkTck is the unit of /proc/<pid>/stat's times, read once from the
// auxiliary vector the kernel gave this process (Go has no sysconf without
// cgo); 100, USER_HZ on every Linux architecture Go runs on, if it cannot
// be read.
var clkTck = sync.OnceValue(func() float64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if v, ok := auxvValue(b, atClkTck, strconv.IntSize/8); ok && v > 0 {
		return float64(v)
	}
	return 100
})

// auxvValue finds key in an auxiliary vector of native-endian words of
// size bytes each, laid out as key, value pairs.
func auxvValue(b []byte, key uint64, size int) (uint64, bool) {
	word := func(p []byte) uint64 {
		if size == 4 {
			return uint64(binary.NativeEndian.Uint32(p))
		}
		return binary.NativeEndian.Uint64(p)
	}
	for i := 0; i+2*size <= len(b); i += 2 * size {
		k := word(b[i:])
		if k == 0 { // AT_NULL ends the vector
			break
		}
		if k == key {
			return word(b[i+size:]), true
		}
	}
	return 0, false
}

// procCPU is a running process's utime+stime so far, in seconds.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	t, err := parseProcStatTicks(string(b))
	if err != nil {
		return 0, fmt.Errorf("%w (pid %d)", err, pid)
	}
	return float64(t) / clkTck(), nil
}

// A measured run whose stolen share is above maxStolen is run again, at
// most maxStealRepeats times (see measure). On the shared machines this
// harness runs on, steal comes in bursts of seconds to minutes that took up
// to 80% of the machine from single runs, while most runs see none.
// Bursts last long enough that a repeat started at once often meets the
// same one, so a repeat first waits, up to maxCalmWait, for a calmWindow in
// which no more than maxStolen of the machine was stolen.
const (
	maxStolen       = 0.10
	maxStealRepeats = 2
	calmWindow      = time.Second
	maxCalmWait     = 20 * time.Second
)

// waitForCalm waits until a calmWindow passes with at most maxStolen of the
// machine stolen, or maxCalmWait has passed, and returns how long it
// waited. steal is machineSteal; sleep is time.Sleep (both replaced in
// tests). A machine whose steal cannot be read is taken as calm.
func waitForCalm(ctx context.Context, cores int, steal func() (float64, error), sleep func(time.Duration)) time.Duration {
	var waited time.Duration
	for waited < maxCalmWait && ctx.Err() == nil {
		a, err := steal()
		if err != nil {
			return waited
		}
		sleep(calmWindow)
		waited += calmWindow
		b, err := steal()
		if err != nil || (b-a)/(float64(cores)*calmWindow.Seconds()) <= maxStolen {
			return waited
		}
	}
	return waited
}

// stolenShare is the share of the machine's CPU (cores × the tool's wall
// time) the hypervisor gave to other guests during the run; false when the
// run has no CPU figures.
func stolenShare(s sample, cores int) (float64, bool) {
	if s.CPU == nil || s.CPU.Wall <= 0 || cores < 1 {
		return 0, false
	}
	return s.CPU.Steal / (float64(cores) * s.CPU.Wall), true
}

// parseStatSteal returns the steal time, in clock ticks, of the first
// line of /proc/stat ("cpu" followed by user, nice, system, idle, iowait,
// irq, softirq, steal, ...: the whole machine's times).
func parseStatSteal(s string) (uint64, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errProcStat
	}
	v, err := strconv.ParseUint(f[8], 10, 64)
	if err != nil {
		return 0, errProcStat
	}
	return v, nil
}

// machineSteal is the machine's steal time so far, all cores together, in
// seconds.
func machineSteal() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	t, err := parseStatSteal(string(b))
	if err != nil {
		return 0, fmt.Errorf("%w (/proc/stat)", err)
	}
	return float64(t) / clkTck(), nil
}

// cpuSeconds is the CPU every member has used so far, together. A member
// that is not running makes it fail: the sum would not be the cluster's.
func (cl *cluster) cpuSeconds() (float64, error) {
	var sum float64
	for i, p := range cl.procs {
		if p == nil {
			return 0, fmt.Errorf("bench: member m%d of %s is not running", i, cl.sys.Name)
		}
		s, err := procCPU(p.Process.Pid)
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// cpuSummary is one cell's CPU per request: medians over its runs, and
// the rate at which servers and tool together would use every core.
type cpuSummary struct {
	ServerUS float64 `json:"server_us_per_req"`
	ToolUS   float64 `json:"tool_us_per_req"`
	// CeilingRPS is cores × 1e6 ÷ (ServerUS + ToolUS).
	CeilingRPS float64 `json:"cpu_bound_ceiling_rps"`
	RPS        float64 `json:"rps"`
	// OfCeiling is RPS ÷ CeilingRPS: near 1, the run was CPU-bound.
	OfCeiling float64 `json:"of_ceiling"`
	// Busy is (server + tool CPU) ÷ (cores × the tool's wall time): the
	// share of the machine the run used while the tool ran, which does not
	// depend on how the tool times itself.
	Busy float64 `json:"busy"`
	// Steal is the hypervisor's steal time ÷ (cores × the tool's wall
	// time): the share of the machine other guests took while the tool ran.
	Steal float64 `json:"steal"`
	Runs  int     `json:"runs"`
}

// cpuOf summarizes a cell's runs that carry CPU figures; ok is false when
// none does. cores is the machine's.
func cpuOf(c *cell, cores int) (cpuSummary, bool) {
	if c == nil || !c.ok() {
		return cpuSummary{}, false
	}
	var srv, tool, rps, busy, steal []float64
	for _, r := range c.Runs {
		if r.CPU == nil {
			continue
		}
		s, ok1 := perReq(r.CPU.Server, r.CPU.Requests)
		t, ok2 := perReq(r.CPU.Tool, r.CPU.Requests)
		if !ok1 || !ok2 {
			continue
		}
		srv, tool, rps = append(srv, s), append(tool, t), append(rps, r.RPS)
		if sh, ok := stolenShare(r, cores); ok {
			busy = append(busy, (r.CPU.Server+r.CPU.Tool)/(float64(cores)*r.CPU.Wall))
			steal = append(steal, sh)
		}
	}
	if len(srv) == 0 {
		return cpuSummary{}, false
	}
	s := cpuSummary{ServerUS: spreadOf(srv).Med, ToolUS: spreadOf(tool).Med, RPS: spreadOf(rps).Med,
		Busy: spreadOf(busy).Med, Steal: spreadOf(steal).Med, Runs: len(srv)}
	if sum := s.ServerUS + s.ToolUS; sum > 0 {
		s.CeilingRPS = float64(cores) * 1e6 / sum
		s.OfCeiling = s.RPS / s.CeilingRPS
	}
	return s, true
}

// missingCPU names the successful cells of which a run has no CPU figures.
func missingCPU(cells map[string]*cell) []string {
	var out []string
	for k, c := range cells {
		if !c.ok() {
			continue
		}
		for _, r := range c.Runs {
			if r.CPU == nil {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// cpuWorkloads are the workloads the CPU section lists: all but the paced
// ones, whose rate the tool sets (CPU per put there is mostly idle time's).
func cpuWorkloads(ws []workload) []workload {
	var out []workload
	for _, w := range ws {
		if !w.ByLatency {
			out = append(out, w)
		}
	}
	return out
}

// cpuSummaries is cpuOf for every cell that has CPU figures, by cell key,
// for the JSON output.
func cpuSummaries(cells map[string]*cell, cores int) map[string]cpuSummary {
	out := map[string]cpuSummary{}
	for k, c := range cells {
		if s, ok := cpuOf(c, cores); ok {
			out[k] = s
		}
	}
	return out
}

// renderCPU is the page's "CPU per request" section, for the cluster sizes
// in members (in the page's order).
func renderCPU(e *env, members []int, cores int) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("## CPU per request")
	p("")
	p("Every measured run (not the calibration run, not the warm-up) reads the CPU time of every member (utime + stime from `/proc/<pid>/stat`, in ticks of 1/%.0f s) just before the load tool starts and just after it exits, and takes the tool's own CPU (user + system) from the kernel when the harness reaps it. Each is divided by what the tool completed in the run (its req/s × its elapsed time); for watch fan-out that is watch events, so its figures are per event. Watch latency is left out: it is paced at %d puts/s, so its CPU per put would measure the pacing. Figures are medians over the runs; server is all members together. The CPU-bound ceiling is the rate at which servers and tool together would keep all %d cores busy: %d × 10⁶ ÷ (server µs/req + tool µs/req).",
		clkTck(), watchLatencyRate(), cores, cores)
	p("")
	p("What it means: a measured rate close to its ceiling (say 80%% or more) means the run was CPU-bound — the machine, not the server's design, set the rate. A server that spends S µs per request beside a tool that spends T can then only gain in proportion to its share of the CPU: halving S raises the ceiling by (S + T) ÷ (S/2 + T), never 2×, and no server can beat %d × 10⁶ ÷ T. CPU that no process is charged for (interrupts, the harness itself) is in neither column. Both columns cover the tool's whole process (its start, connections and watch creation too) while its rate covers only the part it times, so a short run, or watch fan-out with its 1,000 watches to create, can show more than 100%% of its ceiling; over runs of a few seconds of puts or ranges the difference is small. The JSON output (`--json`) also has each run's CPU seconds, requests and the tool's wall time, and per cell the share of the cores used while the tool ran (`busy`).", cores)
	p("")
	p("Stolen is the share of the machine's CPU time that the hypervisor gave to other guests while the tool ran (the growth of the steal column of /proc/stat over the run ÷ (cores × the tool's wall time), median of the runs), for each system in turn. On a shared virtual machine a system whose runs met more of it was slowed by its neighbours, not by its design: its CPU per request rises with it, the tool's as much as the members', so ratios between cells that differ in it are not the systems' alone.")
	p("")
	concord, rival := e.hasSys("concord"), e.hasSys("etcd36")
	wls := cpuWorkloads(e.workloads)
	for _, n := range members {
		p("### %d member%s", n, plural(n))
		p("")
		head, sep := "| workload | tool |", "|---|---|"
		for _, s := range e.systems {
			head += fmt.Sprintf(" %s server / tool µs/req |", s.Name)
			sep += "---:|"
		}
		if concord && rival {
			head += " server CPU Concord ÷ etcd 3.6 |"
			sep += "---:|"
		}
		if concord {
			head += " Concord CPU-bound ceiling, req/s | Concord req/s (of ceiling) |"
			sep += "---:|---:|"
		}
		if rival {
			head += " etcd 3.6 CPU-bound ceiling, req/s | etcd 3.6 req/s (of ceiling) |"
			sep += "---:|---:|"
		}
		head += " stolen:"
		for i, s := range e.systems {
			if i > 0 {
				head += " /"
			}
			head += " " + s.Name
		}
		head += " |"
		sep += "---:|"
		p("%s", head)
		p("%s", sep)
		for _, w := range wls {
			for _, t := range tools {
				row := fmt.Sprintf("| %s | %s |", w.Name, t)
				sums := map[string]cpuSummary{}
				for _, s := range e.systems {
					if c, ok := cpuOf(e.cell(n, s.Key, w.ID, t), cores); ok {
						sums[s.Key] = c
						row += fmt.Sprintf(" %s / %s |", us(c.ServerUS), us(c.ToolUS))
					} else {
						row += " — |"
					}
				}
				c, okC := sums["concord"]
				r, okR := sums["etcd36"]
				if concord && rival {
					if okC && okR && r.ServerUS > 0 {
						row += fmt.Sprintf(" %.2f× |", c.ServerUS/r.ServerUS)
					} else {
						row += " — |"
					}
				}
				for _, x := range []struct {
					on, ok bool
					s      cpuSummary
				}{{concord, okC, c}, {rival, okR, r}} {
					switch {
					case !x.on:
					case x.ok && x.s.CeilingRPS > 0:
						row += fmt.Sprintf(" %.0f | %.0f (%.0f%%) |", x.s.CeilingRPS, x.s.RPS, 100*x.s.OfCeiling)
					default:
						row += " — | — |"
					}
				}
				var stolen []string
				for _, s := range e.systems {
					if c, ok := sums[s.Key]; ok {
						stolen = append(stolen, fmt.Sprintf("%.0f%%", 100*c.Steal))
					} else {
						stolen = append(stolen, "—")
					}
				}
				row += " " + strings.Join(stolen, " / ") + " |"
				p("%s", row)
			}
		}
		p("")
	}
	if concord && rival && containsInt(members, 3) && findWorkload(e.workloads, "put-100-leader") != nil {
		p("What the put target (≥ 2.0× etcd 3.6's req/s at 100 clients, 3 members, leader) asks of the CPU, at this run's figures:")
		p("")
		for _, t := range tools {
			c, okC := cpuOf(e.cell(3, "concord", "put-100-leader", t), cores)
			r, okR := cpuOf(e.cell(3, "etcd36", "put-100-leader", t), cores)
			if !okC || !okR {
				p("- %s: no figures", t)
				continue
			}
			p("- %s", putBudget(t, cores, c, r))
		}
		p("")
	}
	return b.String()
}

// putBudget says what 2× the rival's rate leaves the servers per request
// once the tool has taken its share of the cores.
func putBudget(t toolKind, cores int, c, r cpuSummary) string {
	want := 2 * r.RPS
	all := float64(cores) * 1e6 / want
	left := all - c.ToolUS
	s := fmt.Sprintf("%s: 2.0× is %.0f req/s, %s µs of CPU per request for servers and tool together; the tool takes %s",
		t, want, us(all), us(c.ToolUS))
	if left <= 0 {
		return s + ", the whole budget: out of reach with this tool on this machine, whatever the server does."
	}
	return s + fmt.Sprintf(", leaving %s µs for the three members; Concord's take %s now (%.2f× the budget), etcd 3.6's %s.",
		us(left), us(c.ServerUS), c.ServerUS/left, us(r.ServerUS))
}

// us writes a µs figure with sensible precision.
func us(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// watchLatencyRate is the paced workload's put rate, for the page.
func watchLatencyRate() int {
	if w := findWorkload(workloads(), "watch-latency"); w != nil {
		return w.RatePerSec
	}
	return 0
}

// firstCPUErr is why the first run of cell key without CPU figures has none.
func (e *env) firstCPUErr(key string) string {
	if c := e.cells[key]; c != nil {
		for _, r := range c.Runs {
			if r.CPU == nil {
				return r.CPUErr
			}
		}
	}
	return "?"
}
