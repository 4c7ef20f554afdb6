package main

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestParseProcStatus(t *testing.T) {
	status := "Name:\tetcd\nVmPeak:\t 2000000 kB\nVmHWM:\t  300000 kB\nVmRSS:\t  250000 kB\nRssAnon:\t  200000 kB\nRssFile:\t   50000 kB\nThreads:\t12\n"
	got, err := parseProcStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := (procMem{RSS: 250000, HWM: 300000, Anon: 200000, File: 50000}); got != want {
		t.Errorf("parseProcStatus = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "Name:\tx\n", "VmRSS:\tlots kB\n"} {
		if _, err := parseProcStatus(bad); err == nil {
			t.Errorf("parseProcStatus(%q) = nil error, want one", bad)
		}
	}
}

func TestPerKeyBytes(t *testing.T) {
	tests := []struct {
		rssKiB    int64
		keys, raw int
		want      float64
	}{
		{1, 1, 0, 1024},
		{1_000_000, 1_000_000, 264, 1024 - 264},
		{1000, 1000, 2048, -1024}, // less resident than the raw data: the figure says so
		{1000, 0, 264, 0},
	}
	for _, tt := range tests {
		if got := perKeyBytes(tt.rssKiB, tt.keys, tt.raw); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("perKeyBytes(%d KiB, %d keys, %d B) = %v, want %v", tt.rssKiB, tt.keys, tt.raw, got, tt.want)
		}
	}
	m := memResult{loadResult: loadResult{Keys: 1000}, Mem: []procMem{{RSS: 1000}, {RSS: 2000}}}
	if got := m.perKey(); len(got) != 2 || got[0] != 1024-264 || got[1] != 2048-264 {
		t.Errorf("perKey = %v", got)
	}
}

func TestFirstAckAfter(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	acks := []ack{
		{issued: at(-10), acked: at(5)},     // in flight at t0: does not count
		{issued: at(0), acked: at(1500)},    // sent at t0
		{issued: at(100), acked: at(1200)},  // the first answer to a put sent after t0
		{issued: at(1300), acked: at(1301)}, // later
	}
	got, ok := firstAckAfter(acks, t0)
	if !ok || !got.Equal(at(1200)) {
		t.Errorf("firstAckAfter = %v, %t; want %v", got, ok, at(1200))
	}
	if _, ok := firstAckAfter(acks[:1], t0); ok {
		t.Error("firstAckAfter counted a put sent before t")
	}
	if _, ok := firstAckAfter(nil, t0); ok {
		t.Error("firstAckAfter(nil) found an ack")
	}
}

func TestAckLog(t *testing.T) {
	var l ackLog
	l.record(time.Unix(1, 0), time.Unix(2, 0), nil, false)
	l.record(time.Unix(1, 0), time.Unix(3, 0), status.Error(codes.Unavailable, "etcdserver: no leader"), false)
	l.record(time.Unix(1, 0), time.Unix(3, 0), context.Canceled, true)
	acks, failed := l.snapshot()
	if len(acks) != 1 || failed != 1 || l.unanswered != 1 || l.failedBy["Unavailable: etcdserver: no leader"] != 1 {
		t.Errorf("ackLog = %d acks, %d failed %v, %d unanswered; want 1, 1 no leader, 1", len(acks), failed, l.failedBy, l.unanswered)
	}
}

func TestErrorClass(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, "etcdserver: no leader"), "Unavailable: etcdserver: no leader"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:4242: connect: connection refused"`),
			"Unavailable: connection error: desc = \"transport: Error while dialing: dial tcp: connect: connection refused\""},
		{errors.New("plain"), "plain"},
	}
	for _, tt := range tests {
		if got := errorClass(tt.err); got != tt.want {
			t.Errorf("errorClass(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestPickLeader(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name string
		st   []memberStatus
		want int
		ok   bool
	}{
		{"agreed", []memberStatus{{id: 1, leader: 2}, {id: 2, leader: 2}, {id: 3, leader: 2}}, 1, true},
		{"one down", []memberStatus{{err: down}, {id: 2, leader: 3}, {id: 3, leader: 3}}, 2, true},
		{"leader down", []memberStatus{{id: 1, leader: 2}, {err: down}, {id: 3, leader: 2}}, -1, false},
		{"disagree", []memberStatus{{id: 1, leader: 1}, {id: 2, leader: 3}, {id: 3, leader: 3}}, -1, false},
		{"no leader yet", []memberStatus{{id: 1, leader: 0}, {id: 2, leader: 2}}, -1, false},
		{"all down", []memberStatus{{err: down}, {err: down}}, -1, false},
	}
	for _, tt := range tests {
		if got, ok := pickLeader(tt.st); got != tt.want || ok != tt.ok {
			t.Errorf("%s: pickLeader = %d, %t; want %d, %t", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCommasAndHuman(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1000000: "1,000,000", -12345: "-12,345"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{5 * time.Millisecond: "5 ms", time.Second: "1 s", 1500 * time.Millisecond: "1.5 s"} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestLoadArgs(t *testing.T) {
	got := strings.Join(loadArgs("a:1,b:2", 100000, "r/"), " ")
	want := "bench --format json --endpoints a:1,b:2 --target-leader --conns 50 --clients 1000 put --key-size 8 --val-size 256 --sequential-keys --key-space-size 100000 --key-prefix r/ --total 100000"
	if got != want {
		t.Errorf("loadArgs = %q, want %q", got, want)
	}
	if s := sizesFor(false); s.RangeKeys != 100_000 || s.MemKeys != 1_000_000 || s.Trials < 3 {
		t.Errorf("full sizes %+v are not issue 5's", s)
	}
	// The keys must sort under the prefix and before the end, so the
	// ranges cover exactly the loaded keys.
	for _, pe := range [][2]string{{rangePrefix, rangeEnd}, {memPrefix, memEnd}} {
		if !(pe[0] < pe[1]) || len(pe[0]) != len(pe[1]) || pe[1][len(pe[1])-1] != pe[0][len(pe[0])-1]+1 {
			t.Errorf("range [%q, %q) is not the prefix's", pe[0], pe[1])
		}
	}
}

// scaleEnv is a fabricated run of the sections at scale: Concord ahead on
// ranges and memory, behind on restart, and a failed failover for etcd 3.4.
func scaleEnv(sectionOnly bool) *env {
	e := &env{
		opts:    options{Runs: 3, Secs: 2, Members: []int{3}, Commands: "go -C bench run . --only range-big,mem-1m,failover"},
		started: time.Unix(0, 0), finished: time.Unix(600, 0), sectionOnly: sectionOnly,
		systems: []system{{Key: "concord", Name: "Concord", Version: "commit x"},
			{Key: "etcd36", Name: "etcd 3.6", Version: "3.6.16"}, {Key: "etcd34", Name: "etcd 3.4", Version: "3.4.23"}},
		tools: map[toolKind]string{}, toolVers: map[toolKind]string{},
		cells: map[string]*cell{}, noop: map[string]*cell{}, rss: map[string][]float64{},
		scale:    map[string]bool{rangeBigID: true, mem1mID: true, failoverID: true},
		bigCells: map[string]*cell{}, rangeLoads: map[string]*loadResult{},
		mem: map[string]*memResult{}, failover: map[string]*failoverResult{},
	}
	for _, w := range rangeBigWorkloads() {
		for _, tl := range tools {
			e.bigCells[bigCellKey("concord", w.ID, tl)] = &cell{Total: 100, Runs: []sample{{RPS: 20000, P50: 1, P99: 2}}}
			e.bigCells[bigCellKey("etcd36", w.ID, tl)] = &cell{Total: 100, Runs: []sample{{RPS: 1000, P50: 10, P99: 20}}}
			e.bigCells[bigCellKey("etcd34", w.ID, tl)] = &cell{Total: 100, Err: "boom | bang"}
		}
	}
	for _, s := range []string{"concord", "etcd36", "etcd34"} {
		e.rangeLoads[s] = &loadResult{Keys: 100000, Load: sample{RPS: 10000, Elapsed: 10}, Counted: []int64{100000, 100000, 100000}}
	}
	mem := func(rssKiB int64, ready float64) *memResult {
		return &memResult{loadResult: loadResult{Keys: 1000000, Counted: []int64{1000000, 1000000, 1000000}},
			Mem:       []procMem{{RSS: rssKiB, HWM: rssKiB, Anon: rssKiB / 2, File: rssKiB / 2}, {RSS: rssKiB}, {RSS: rssKiB}},
			ReadySecs: ready, CountedAfter: []int64{1000000, 1000000, 1000000}, MemAfter: []procMem{{RSS: 1}, {RSS: 1}, {RSS: 1}}}
	}
	// (RSS KiB·1024 − 264e6) / 1e6: 400,000 KiB → 145.6 B/key; 800,000 KiB → 555.2 B/key.
	e.mem["concord"], e.mem["etcd36"], e.mem["etcd34"] = mem(400000, 3), mem(800000, 2), mem(700000, 2.5)
	e.failover["concord"] = &failoverResult{Trials: []failTrial{{"m0", 1100, 300}, {"m1", 1000, 300}, {"m2", 1300, 300}}}
	e.failover["etcd36"] = &failoverResult{Trials: []failTrial{{"m0", 1200, 100}, {"m1", 1250, 100}, {"m2", 1150, 100}},
		FailedBy: map[string]int{"Unavailable: etcdserver: no leader": 2, "Canceled: x": 1}}
	e.failover["etcd34"] = &failoverResult{Err: "bench: no put acknowledged"}
	return e
}

func TestRenderScaleTargets(t *testing.T) {
	e := scaleEnv(false)
	got := renderScaleTargets(e, "")
	for _, want := range []string{
		"| range `--limit 100` over 100,000 keys, 100 clients: ≥ 10× etcd 3.6 req/s | etcd benchmark: met (20.00×); concord bench: met (20.00×) |",
		"| memory with 1M keys, (RSS − key and value bytes) per key: ≤ 0.5× etcd 3.6's | met (0.26×: 146 vs 555 B/key, median member) |",
		"| restart to ready with 1M keys: ≤ etcd 3.6 | **missed** (3.00 s vs 2.00 s) |",
		"| write gap after `kill -9` of the leader: ≤ etcd 3.6 (median of the trials) | met (1100 ms (1000–1300) vs 1200 ms (1150–1250)) |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("targets lack %q:\n%s", want, got)
		}
	}
	if !strings.HasPrefix(got, scaleTargetsBegin+"\n") || !strings.HasSuffix(got, scaleTargetsEnd+"\n") {
		t.Error("targets not between their markers")
	}

	// A run of range-big alone keeps the other rows as the page had them.
	alone := scaleEnv(true)
	alone.scale = map[string]bool{rangeBigID: true}
	alone.bigCells[bigCellKey("concord", "range-count-100", toolEtcd)].Runs[0].RPS = 5000
	next := renderScaleTargets(alone, "# page\n\n"+got)
	if !strings.Contains(next, "etcd benchmark: **missed** (5.00×)") {
		t.Errorf("the new range figure is missing:\n%s", next)
	}
	if !strings.Contains(next, "met (0.26×: 146 vs 555 B/key, median member)") {
		t.Errorf("the memory row of the earlier run was lost:\n%s", next)
	}
	// Without an earlier row, the target says it was not measured.
	fresh := renderScaleTargets(alone, "")
	if !strings.Contains(fresh, "not measured yet (`go -C bench run . --only failover`)") {
		t.Errorf("no 'not measured yet' row:\n%s", fresh)
	}
}

func TestSpliceScaleTargets(t *testing.T) {
	region := scaleTargetsBegin + "\n\n| t | r | s |\n\n" + scaleTargetsEnd + "\n"
	tests := []struct{ name, page, want string }{
		{"replaces its region", "a\n" + scaleTargetsBegin + "\nold\n" + scaleTargetsEnd + "\nb\n", "a\n" + region + "b\n"},
		{"replaces the old line", "| x |\n\nNot measured yet: range, RSS.\n\n## Results, 3 members\n", "| x |\n\n" + region + "\n## Results, 3 members\n"},
		{"before the results", "top\n## Results, 3 members\n", "top\n" + region + "\n## Results, 3 members\n"},
		{"at the end", "top\n", "top\n\n" + region},
	}
	for _, tt := range tests {
		got := spliceScaleTargets(tt.page, region)
		if got != tt.want {
			t.Errorf("%s: got\n%q\nwant\n%q", tt.name, got, tt.want)
		}
		if again := spliceScaleTargets(got, region); again != got {
			t.Errorf("%s: not idempotent:\n%q", tt.name, again)
		}
	}
}

func TestRenderScaleSections(t *testing.T) {
	e := scaleEnv(true)
	page := "# Benchmarks\n\n## Commands\n"
	for _, id := range scaleIDs {
		page = spliceSectionID(page, id, renderScaleSection(e, id))
	}
	for _, want := range []string{
		"## Range over 100,000 keys: `--limit 100` and `--count-only` (3 members)",
		"concord bench --format json --endpoints <endpoints> --target-leader --conns 50 --clients 1000 put --key-size 8 --val-size 256 --sequential-keys --key-space-size 100000 --key-prefix r/ --total 100000",
		"`benchmark --precise --endpoints <endpoints> --conns 10 --clients 100 range r/ r0 --consistency l --count-only --total <N>`",
		"`concord bench --format json --endpoints <endpoints> --conns 1 --clients 1 range r/ r0 --consistency l --limit 100 --total <N>`",
		"| 20000 (20000–20000) |", "| 20.00× |", "boom \\| bang", "| 100,000, 100,000, 100,000 |",
		"## Memory and restart with 1,000,000 keys (3 members)", "--key-space-size 1000000 --key-prefix m/ --total 1000000",
		"| Concord | 391, 391, 391 | 391, 0, 0 | 195 / 195, 0 / 0, 0 / 0 | 146, 146, 146 | 146 | 0.26× |",
		"| Concord | 0.00 (0) | 3.00 | 1.50× | 1,000,000, 1,000,000, 1,000,000 | 0, 0, 0 | -264 |",
		"## Write gap after `kill -9` of the leader (3 members)",
		"| Concord | 1100 (1000–1300) | 0.92× | 1100 (m0), 1000 (m1), 1300 (m2) | 300, 300, 300 | 0 / 0 / 0 |",
		"- etcd 3.6: `Canceled: x` ×1; `Unavailable: etcdserver: no leader` ×2",
		"| etcd 3.4 | failed: bench: no put acknowledged |",
		"Measured on its own by `go -C bench run . --only range-big,mem-1m,failover`",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("sections lack %q", want)
		}
	}
	if !strings.HasSuffix(page, "## Commands\n") {
		t.Error("the sections should go before ## Commands")
	}
	// Rewriting one section leaves the others alone.
	e.failover["concord"].Trials[0].GapMS = 4242
	again := spliceSectionID(page, failoverID, renderScaleSection(e, failoverID))
	if !strings.Contains(again, "4242 (m0)") || strings.Count(again, "## Write gap") != 1 {
		t.Errorf("failover section not replaced in place:\n%s", again)
	}
	begin, _ := sectionMarkers(failoverID)
	i, j := strings.Index(page, begin), strings.Index(again, begin)
	if page[:i] != again[:j] {
		t.Error("splicing the failover section changed what precedes it")
	}
}

// A whole run's page has the targets at scale under the main targets and
// the sections before the TLS and auth one.
func TestRenderPageWithScale(t *testing.T) {
	e := scaleEnv(false)
	e.opts.Commands = "go -C bench run ."
	e.workloads = workloads()[:1]
	page := renderPage(e)
	ti, si := strings.Index(page, scaleTargetsBegin), strings.Index(page, "## Results, 3 members")
	if ti < 0 || si < 0 || ti > si {
		t.Errorf("targets at scale missing or after the results (%d, %d)", ti, si)
	}
	if strings.Contains(page, "Not measured yet:") {
		t.Error("the page still says 'Not measured yet:'")
	}
	prev := -1
	for _, id := range scaleIDs {
		begin, _ := sectionMarkers(id)
		k := strings.Index(page, begin)
		if k < prev {
			t.Errorf("section %s missing or out of order", id)
		}
		prev = k
	}
	if !strings.Contains(page, "Measured in the same run as the rest of this page") {
		t.Error("sections of a whole run should say so")
	}
}
