package main

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStatTicks(t *testing.T) {
	tests := []struct {
		line string
		want uint64
		ok   bool
	}{
		{"4242 (etcd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 12 0 100 0 0", 175, true},
		// The command name may hold spaces and parentheses.
		{"7 (a b) (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 0 0", 7, true},
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 3", 0, false},
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 a 4 0", 0, false},
		{"no parenthesis", 0, false},
	}
	for _, tc := range tests {
		got, err := parseProcStatTicks(tc.line)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseProcStatTicks(%q) = %d, %v, want %d, ok %v", tc.line, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseStatSteal(t *testing.T) {
	tests := []struct {
		stat string
		want uint64
		ok   bool
	}{
		{"cpu  402509 0 131033 283966 24645 0 31952 12240 0 0\ncpu0 204958 0 64039 145803 10058 0 13207 6189 0 0\n", 12240, true},
		{"cpu 1 2 3 4 5 6 7 8\n", 8, true},
		{"cpu 1 2 3 4 5 6 7\n", 0, false}, // a kernel without the steal column
		{"cpu0 1 2 3 4 5 6 7 8\n", 0, false},
		{"cpu 1 2 3 4 5 6 7 x\n", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := parseStatSteal(tc.stat)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStatSteal(%q) = %d, %v, want %d, ok %v", tc.stat, got, err, tc.want, tc.ok)
		}
	}
}

func TestAuxvValue(t *testing.T) {
	for _, size := range []int{4, 8} {
		var b []byte
		put := func(v uint64) {
			w := make([]byte, size)
			if size == 4 {
				binary.NativeEndian.PutUint32(w, uint32(v))
			} else {
				binary.NativeEndian.PutUint64(w, v)
			}
			b = append(b, w...)
		}
		for _, kv := range [][2]uint64{{6, 4096}, {atClkTck, 100}, {0, 0}, {99, 1}} {
			put(kv[0])
			put(kv[1])
		}
		if v, ok := auxvValue(b, atClkTck, size); !ok || v != 100 {
			t.Errorf("size %d: auxvValue(AT_CLKTCK) = %d, %v, want 100, true", size, v, ok)
		}
		if _, ok := auxvValue(b, 99, size); ok {
			t.Errorf("size %d: auxvValue found a key past AT_NULL", size)
		}
	}
}

// The harness's own CPU grows while it works, in the unit the kernel uses.
func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if c := clkTck(); c <= 0 {
		t.Fatalf("clkTck() = %v", c)
	}
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0.0
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		x += math.Sqrt(x + 1)
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("procCPU did not grow over 300 ms of work: %v → %v (x=%v)", before, after, x)
	}
}

func TestCPUOf(t *testing.T) {
	c := &cell{Runs: []sample{
		{RPS: 1000, CPU: &cpuUse{Server: 1.0, Tool: 0.5, Requests: 10000, Wall: 1, Steal: 0.1}}, // 100 + 50 µs
		{RPS: 1200, CPU: &cpuUse{Server: 1.2, Tool: 0.4, Requests: 10000, Wall: 1, Steal: 0.4}}, // 120 + 40 µs
		{RPS: 800, CPU: &cpuUse{Server: 0.8, Tool: 0.6, Requests: 10000, Wall: 1}},              // 80 + 60 µs
		{RPS: 5, CPUErr: "member gone"},
	}}
	s, ok := cpuOf(c, 2)
	if !ok {
		t.Fatal("no summary")
	}
	if s.ServerUS != 100 || s.ToolUS != 50 || s.Runs != 3 || s.RPS != 1000 || s.Busy != 0.75 {
		t.Errorf("summary %+v, want server 100 µs, tool 50 µs, 3 runs, 1000 req/s, 75%% busy", s)
	}
	if math.Abs(s.Steal-0.05) > 1e-12 { // the median of 0.05, 0.2 and 0 of two cores
		t.Errorf("steal %v, want 0.05", s.Steal)
	}
	if math.Abs(s.CeilingRPS-2e6/150) > 1e-9 || math.Abs(s.OfCeiling-1000/(2e6/150)) > 1e-12 {
		t.Errorf("ceiling %v (of %v), want %v", s.CeilingRPS, s.OfCeiling, 2e6/150)
	}
	if _, ok := cpuOf(&cell{Runs: []sample{{RPS: 1}}}, 2); ok {
		t.Error("a cell without CPU figures has a summary")
	}
	if got := missingCPU(map[string]*cell{"a": c, "b": {Runs: []sample{{RPS: 1, CPU: &cpuUse{}}}}, "c": {Err: "x"}}); len(got) != 1 || got[0] != "a" {
		t.Errorf("missingCPU = %v, want [a]", got)
	}
}

func TestRenderCPU(t *testing.T) {
	e := &env{
		opts:      options{Runs: 1, Secs: 2, Members: []int{3}, Commands: "go -C bench run ."},
		systems:   []system{{Key: "concord", Name: "Concord"}, {Key: "etcd36", Name: "etcd 3.6"}},
		toolVers:  map[toolKind]string{},
		workloads: []workload{*findWorkload(workloads(), "put-100-leader"), *findWorkload(workloads(), "watch-latency")},
		cells:     map[string]*cell{},
	}
	for _, tk := range tools {
		e.cells[cellKey(3, "concord", "put-100-leader", tk)] = &cell{Runs: []sample{{RPS: 10000, CPU: &cpuUse{Server: 2, Tool: 1, Requests: 20000, Wall: 2}}}}
		e.cells[cellKey(3, "etcd36", "put-100-leader", tk)] = &cell{Runs: []sample{{RPS: 8000, CPU: &cpuUse{Server: 3, Tool: 1, Requests: 20000, Wall: 2.5, Steal: 1}}}}
	}
	s := renderCPU(e, []int{3}, 2)
	for _, want := range []string{
		"## CPU per request", "### 3 members",
		// Concord: 100 + 50 µs/req → ceiling 2e6/150 = 13333; etcd: 150 + 50 → 10000.
		// etcd 3.6's run lost 1 s of 2 × 2.5 s to other guests: 20%.
		"| put 8 B/256 B, 100 clients/10 conns, leader | etcd benchmark | 100 / 50.0 | 150 / 50.0 | 0.67× | 13333 | 10000 (75%) | 10000 | 8000 (80%) | 0% / 20% |",
		"| workload | tool | Concord server / tool µs/req | etcd 3.6 server / tool µs/req | server CPU Concord ÷ etcd 3.6 | Concord CPU-bound ceiling, req/s | Concord req/s (of ceiling) | etcd 3.6 CPU-bound ceiling, req/s | etcd 3.6 req/s (of ceiling) | stolen: Concord / etcd 3.6 |",
		// 2 × 8000 = 16000 req/s → 125 µs in all, 50 for the tool, 75 left.
		"2.0× is 16000 req/s, 125 µs of CPU per request for servers and tool together; the tool takes 50.0, leaving 75.0 µs",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("CPU section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "watch latency") {
		t.Error("the paced workload is listed")
	}
	if page := renderPage(e); !strings.Contains(page, "## CPU per request") {
		t.Error("the page lacks the CPU section")
	}
}

func TestCPUModelFrom(t *testing.T) {
	tests := []struct{ name, info, arch, want string }{
		{"x86 under a hypervisor",
			"processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\nstepping\t: 2\nflags\t\t: fpu sse hypervisor avx\n\nprocessor\t: 1\nmodel name\t: other\n",
			"amd64", "Intel(R) Xeon(R) Processor, family 6 model 207 stepping 2, virtualized"},
		{"x86 bare", "model name\t: AMD EPYC 7B13 64-Core Processor\ncpu family\t: 25\nmodel\t\t: 1\nflags\t: fpu\n",
			"amd64", "AMD EPYC 7B13 64-Core Processor, family 25 model 1"},
		{"arm64 without a name", "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n\n", "arm64",
			"arm64, implementer 0x41 part 0xd0c"},
		{"nothing", "", "riscv64", "riscv64"},
	}
	for _, tc := range tests {
		if got := cpuModelFrom(tc.info, tc.arch); got != tc.want {
			t.Errorf("%s: cpuModelFrom = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestStolenShare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		s      sample
		cores  int
		want   float64
		wantOK bool
	}{
		{"none stolen", sample{CPU: &cpuUse{Wall: 2}}, 2, 0, true},
		{"a quarter", sample{CPU: &cpuUse{Wall: 2, Steal: 1}}, 2, 0.25, true},
		{"all", sample{CPU: &cpuUse{Wall: 1, Steal: 2}}, 2, 1, true},
		{"no CPU figures", sample{}, 2, 0, false},
		{"no wall time", sample{CPU: &cpuUse{Steal: 1}}, 2, 0, false},
	} {
		got, ok := stolenShare(tc.s, tc.cores)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: stolenShare = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
	if maxStolen <= 0 || maxStolen >= 1 || maxStealRepeats < 1 {
		t.Errorf("maxStolen %v, maxStealRepeats %d: a run must be repeatable, and not for any steal", maxStolen, maxStealRepeats)
	}
}

// TestWaitForCalm checks the wait before a repeat against a fake steal
// counter advancing by the given seconds per window.
func TestWaitForCalm(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perWin   []float64 // stolen seconds in each window, 2 cores
		failAt   int       // the read that fails (0: none)
		canceled bool
		want     time.Duration
	}{
		{"calm at once", []float64{0}, 0, false, calmWindow},
		{"exactly the limit is calm", []float64{2 * maxStolen}, 0, false, calmWindow},
		{"calm after three windows", []float64{1.5, 0.9, 0.3, 0.05}, 0, false, 4 * calmWindow},
		{"never calm", []float64{1}, 0, false, maxCalmWait},
		{"unreadable", []float64{1}, 1, false, 0},
		{"canceled", []float64{1}, 0, true, 0},
	} {
		var now float64 // the counter
		reads, win := 0, 0
		steal := func() (float64, error) {
			reads++
			if reads == tc.failAt {
				return 0, errProcStat
			}
			return now, nil
		}
		sleep := func(time.Duration) {
			now += tc.perWin[min(win, len(tc.perWin)-1)]
			win++
		}
		ctx, cancel := context.WithCancel(context.Background())
		if tc.canceled {
			cancel()
		}
		if got := waitForCalm(ctx, 2, steal, sleep); got != tc.want {
			t.Errorf("%s: waited %v, want %v", tc.name, got, tc.want)
		}
		cancel()
	}
}
