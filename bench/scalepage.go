package main

// The page's parts for the sections at scale (scale.go): the targets rows,
// between markers of their own right under the main targets table, and one
// marker-delimited section per id. A run of some of the sections alone
// (--only) rewrites those sections and their rows and keeps every other row
// as the page had it.

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"
)

// sectionMarkers are the comment lines around a section the harness can
// rewrite alone; the tls-auth section's are sectionBegin and sectionEnd.
func sectionMarkers(id string) (begin, end string) {
	return "<!-- bench section " + id + ": written by the harness, replaced whole by `go -C bench run . --only " + id + "` -->",
		"<!-- /bench section " + id + " -->"
}

// The markers around the targets at scale.
const (
	scaleTargetsBegin = "<!-- bench targets at scale: each row is rewritten by the run of the section it names -->"
	scaleTargetsEnd   = "<!-- /bench targets at scale -->"
)

// sectionTitle is each section's heading, without the size in smoke runs.
func sectionTitle(id string, sz scaleSizes) string {
	switch id {
	case rangeBigID:
		return fmt.Sprintf("Range over %s keys: `--limit 100` and `--count-only` (3 members)", commas(sz.RangeKeys))
	case mem1mID:
		return fmt.Sprintf("Memory and restart with %s keys (3 members)", commas(sz.MemKeys))
	case failoverID:
		return "Write gap after `kill -9` of the leader (3 members)"
	}
	return id
}

// commas writes n with thousands separators: 100000 → "100,000".
func commas(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// human writes a duration for prose: 5 ms, 3 s, 1.5 s.
func human(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%g ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%g s", d.Seconds())
}

// scaleTarget is one row of the targets at scale; id is the section that
// measures it.
type scaleTarget struct {
	id, what string
	check    func(e *env) string
}

func scaleTargets() []scaleTarget {
	rangeRow := func(wl string) func(*env) string {
		return func(e *env) string {
			var parts []string
			for _, t := range tools {
				w := findWorkload(rangeBigWorkloads(), wl)
				fig := "no figure"
				if r, ok := ratio(*w, e.bigCells[bigCellKey("concord", wl, t)], e.bigCells[bigCellKey("etcd36", wl, t)]); ok {
					fig = verdict(r >= 10, fmt.Sprintf("%.2f×", r))
				}
				parts = append(parts, fmt.Sprintf("%s: %s", t, fig))
			}
			return strings.Join(parts, "; ")
		}
	}
	return []scaleTarget{
		{rangeBigID, "range `--limit 100` over 100,000 keys, 100 clients: ≥ 10× etcd 3.6 req/s", rangeRow("range-limit-100")},
		{rangeBigID, "range `--count-only` over 100,000 keys, 100 clients: ≥ 10× etcd 3.6 req/s", rangeRow("range-count-100")},
		{rangeBigID, "range `--limit 100` over 100,000 keys, 1 client: ≥ 10× etcd 3.6 req/s", rangeRow("range-limit-1")},
		{rangeBigID, "range `--count-only` over 100,000 keys, 1 client: ≥ 10× etcd 3.6 req/s", rangeRow("range-count-1")},
		{mem1mID, "memory with 1M keys, (RSS − key and value bytes) per key: ≤ 0.5× etcd 3.6's", func(e *env) string {
			c, r := e.mem["concord"], e.mem["etcd36"]
			if c == nil || r == nil || c.Err != "" || r.Err != "" || len(c.Mem) == 0 || len(r.Mem) == 0 {
				return "no figure"
			}
			cb, rb := spreadOf(c.perKey()).Med, spreadOf(r.perKey()).Med
			if rb <= 0 {
				return fmt.Sprintf("no ratio (etcd 3.6: %.0f B/key)", rb)
			}
			return verdict(cb <= 0.5*rb, fmt.Sprintf("%.2f×: %.0f vs %.0f B/key, median member", cb/rb, cb, rb))
		}},
		{mem1mID, "restart to ready with 1M keys: ≤ etcd 3.6", func(e *env) string {
			c, r := e.mem["concord"], e.mem["etcd36"]
			if c == nil || r == nil || c.Err != "" || r.Err != "" || c.ReadySecs <= 0 || r.ReadySecs <= 0 {
				return "no figure"
			}
			return verdict(c.ReadySecs <= r.ReadySecs, fmt.Sprintf("%.2f s vs %.2f s", c.ReadySecs, r.ReadySecs))
		}},
		{failoverID, "write gap after `kill -9` of the leader: ≤ etcd 3.6 (median of the trials)", func(e *env) string {
			c, r := e.failover["concord"], e.failover["etcd36"]
			if c == nil || r == nil || c.Err != "" || r.Err != "" || len(c.Trials) == 0 || len(r.Trials) == 0 {
				return "no figure"
			}
			cg, rg := c.gaps(), r.gaps()
			return verdict(cg.Med <= rg.Med, fmt.Sprintf("%.0f ms (%.0f–%.0f) vs %.0f ms (%.0f–%.0f)", cg.Med, cg.Min, cg.Max, rg.Med, rg.Min, rg.Max))
		}},
	}
}

// scaleTargetRowPrefix is how a target's row starts, which identifies it.
func scaleTargetRowPrefix(what string) string { return "| " + what + " |" }

// renderScaleTargets is the targets at scale, markers included: the rows of
// the sections this run measured from its figures, the others as old (the
// page before this run) had them, or "not measured yet".
func renderScaleTargets(e *env, old string) string {
	oldRegion := ""
	if i := strings.Index(old, scaleTargetsBegin); i >= 0 {
		if j := strings.Index(old[i:], scaleTargetsEnd); j >= 0 {
			oldRegion = old[i : i+j]
		}
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("%s", scaleTargetsBegin)
	p("")
	p("| target at scale (3 members) | result | measured in |")
	p("|---|---|---|")
	for _, t := range scaleTargets() {
		where := "§ " + sectionTitle(t.id, sizesFor(false))
		if e.scale[t.id] {
			res := "not evaluated: no etcd 3.6 in this run"
			if e.hasSys("etcd36") && e.hasSys("concord") {
				res = t.check(e)
			}
			p("| %s | %s | %s |", t.what, res, where)
			continue
		}
		if row, ok := findLine(oldRegion, scaleTargetRowPrefix(t.what)); ok {
			p("%s", row)
			continue
		}
		p("| %s | not measured yet (`go -C bench run . --only %s`) | %s |", t.what, t.id, where)
	}
	p("")
	p("%s", scaleTargetsEnd)
	return b.String()
}

// findLine returns the first line of s that starts with prefix.
func findLine(s, prefix string) (string, bool) {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l, true
		}
	}
	return "", false
}

// spliceScaleTargets puts region (markers included, ending in a newline)
// into page in place of the previous one; a page without it gets it in
// place of the old "Not measured yet" paragraph, else before the first
// "## Results", else at the end.
func spliceScaleTargets(page, region string) string {
	if out, ok := replaceBetween(page, scaleTargetsBegin, scaleTargetsEnd, region); ok {
		return out
	}
	if i := strings.Index(page, "\nNot measured yet:"); i >= 0 {
		end := len(page)
		if j := strings.Index(page[i+1:], "\n"); j >= 0 {
			end = i + 1 + j + 1
		}
		return page[:i+1] + region + page[end:]
	}
	if i := strings.Index(page, "\n## Results"); i >= 0 {
		return page[:i+1] + region + "\n" + page[i+1:]
	}
	return strings.TrimRight(page, "\n") + "\n\n" + region
}

// runLine says where a section's figures come from.
func (e *env) runLine() string {
	o := e.opts
	if !e.sectionOnly {
		return "Measured in the same run as the rest of this page, after the side-by-side clusters."
	}
	var sys []string
	for _, s := range e.systems {
		sys = append(sys, fmt.Sprintf("%s: %s", s.Name, s.Version))
	}
	return fmt.Sprintf("Measured on its own by `%s` (%s, commit %s, took %v, on %d cores (%s), %s; %s) and written into this page in place of this section's previous version; the rest of the page is from the runs named at the top and in the other sections.",
		strings.TrimSpace(o.Commands), e.started.UTC().Format("2006-01-02 15:04 MST"), e.commit,
		e.finished.Sub(e.started).Round(time.Second), runtime.NumCPU(), cpuModel(), e.goVersion, strings.Join(sys, "; "))
}

// renderScaleSection is one section at scale, markers included.
func renderScaleSection(e *env, id string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	begin, end := sectionMarkers(id)
	sz := sizesFor(e.opts.Smoke)
	p("%s", begin)
	p("## %s", sectionTitle(id, sz))
	p("")
	if e.opts.Smoke {
		p("> **SMOKE RUN**: tiny sizes, one run or trial each; the figures mean nothing.")
		p("")
	}
	p("%s", e.runLine())
	p("")
	switch id {
	case rangeBigID:
		renderRangeBig(e, p, sz)
	case mem1mID:
		renderMem(e, p, sz)
	case failoverID:
		renderFailover(e, p, sz)
	}
	p("%s", end)
	return b.String()
}

// fresh is how every section at scale starts its clusters.
const fresh = "Per system, in turn and alone on the machine, a fresh 3-member cluster started with the member flags under Setup and waited for as there"

func renderLoads(e *env, p func(string, ...any), loads map[string]*loadResult) {
	p("| system | load: puts/s (s) | failed puts | keys counted through each member |")
	p("|---|---:|---:|---|")
	for _, s := range e.systems {
		l := loads[s.Key]
		if l == nil {
			continue
		}
		counted := make([]string, len(l.Counted))
		for i, c := range l.Counted {
			counted[i] = commas(int(c))
		}
		p("| %s | %.0f (%.1f s) | %d | %s |", s.Name, l.Load.RPS, l.Load.Elapsed, l.Load.Failed, strings.Join(counted, ", "))
	}
	p("")
}

func renderRangeBig(e *env, p func(string, ...any), sz scaleSizes) {
	o := e.opts
	wls := rangeBigWorkloads()
	measured := fmt.Sprintf("one calibration run sizes the total N to about %.3g s of load, then %d runs of N; figures are the median with min–max of the runs, latencies the medians of the runs' p50 and p99", o.Secs, o.Runs)
	if o.Smoke {
		measured = "one run at the smoke total"
	}
	p("%s, then loaded with `%s`: %s keys of 8 B (`%s` and a 6-byte big-endian number) with 256 B values, each put once through the leader; then a linearizable count-only range over [`%s`, `%s`) through each member must count every key. Then every workload ranges over the whole of [`%s`, `%s`), linearizably, with both tools: %s. Ratios: Concord's median req/s ÷ the rival's with the same tool; above 1 means Concord is ahead.",
		fresh, loadTemplate(sz.RangeKeys, rangePrefix), commas(sz.RangeKeys), rangePrefix, rangePrefix, rangeEnd, rangePrefix, rangeEnd, measured)
	p("")
	renderLoads(e, p, e.rangeLoads)
	renderResults(e, p, wls, func(sys string, w workload, t toolKind) *cell { return e.bigCells[bigCellKey(sys, w.ID, t)] })
	p("")
	p("Commands (`<endpoints>`: every member's client URL; `<N>`: each run's total, under Runs):")
	p("")
	p("- load: `%s`", loadTemplate(sz.RangeKeys, rangePrefix))
	for _, w := range wls {
		p("- %s:", w.Name)
		for _, t := range tools {
			p("  - `%s`", e.template(t, w))
		}
	}
	p("")
	p("| system | workload | tool | N | req/s per run | error or retry |")
	p("|---|---|---|---:|---|---|")
	for _, s := range e.systems {
		for _, w := range wls {
			for _, t := range tools {
				c := e.bigCells[bigCellKey(s.Key, w.ID, t)]
				if c == nil {
					continue
				}
				p("| %s | %s | %s | %d | %s | %s |", s.Name, w.ID, t, c.Total, runsOf(c), cellMessage(c))
			}
		}
	}
	p("")
}

// runsOf is a cell's req/s per run.
func runsOf(c *cell) string {
	rs := make([]string, len(c.Runs))
	for i, r := range c.Runs {
		rs[i] = fmt.Sprintf("%.0f", r.RPS)
	}
	return strings.Join(rs, ", ")
}

// cellMessage is a cell's error and retries, for a table cell.
func cellMessage(c *cell) string {
	msg := firstOf(c.Err)
	if c.Retried > 0 {
		msg = strings.TrimSpace(fmt.Sprintf("%s (%d run(s) retried after: %s)", msg, c.Retried, strings.Join(c.Errors, "; ")))
	}
	return strings.ReplaceAll(msg, "|", "\\|")
}

func renderMem(e *env, p func(string, ...any), sz scaleSizes) {
	raw := bigKeySize + bigValSize
	p("%s, then loaded with `%s`: %s keys of 8 B (`%s` and a 6-byte big-endian number) with 256 B values, each put once through the leader by 1,000 clients on 50 connections (more in flight than the tables' 100 clients, so every system loads faster, in bigger raft batches; every key is still its own put); then a linearizable count-only range over [`%s`, `%s`) through each member must count every key. %s later, each member's VmRSS, VmHWM (peak), RssAnon and RssFile are read from /proc/<pid>/status. Bytes per key = (VmRSS − %s × %d B of keys and values) ÷ %s, per member; the target compares the median member's. No system compacts (none does by default and none is asked to); the member flags are the same for all, so etcd's bbolt file pages count in its RSS as Concord's heap does in its.",
		fresh, loadTemplate(sz.MemKeys, memPrefix), commas(sz.MemKeys), memPrefix, memPrefix, memEnd, human(settle), commas(sz.MemKeys), raw, commas(sz.MemKeys))
	p("")
	loads := map[string]*loadResult{}
	for k, m := range e.mem {
		loads[k] = &m.loadResult
	}
	renderLoads(e, p, loads)
	p("| system | VmRSS MiB per member | VmHWM MiB | RssAnon / RssFile MiB | B/key per member | B/key, median member | ÷ etcd 3.6 |")
	p("|---|---|---|---|---|---:|---:|")
	etcdPK := 0.0
	if r := e.mem["etcd36"]; r != nil && len(r.Mem) > 0 {
		etcdPK = spreadOf(r.perKey()).Med
	}
	for _, s := range e.systems {
		m := e.mem[s.Key]
		if m == nil {
			continue
		}
		if len(m.Mem) == 0 {
			p("| %s | failed: %s | | | | | |", s.Name, strings.ReplaceAll(firstOf(m.Err), "|", "\\|"))
			continue
		}
		af := make([]string, len(m.Mem))
		for i, x := range m.Mem {
			af[i] = fmt.Sprintf("%.0f / %.0f", float64(x.Anon)/1024, float64(x.File)/1024)
		}
		pk := spreadOf(m.perKey()).Med
		p("| %s | %s | %s | %s | %s | %.0f | %s |", s.Name,
			joinF(mibs(m.Mem, func(x procMem) int64 { return x.RSS }), "%.0f"),
			joinF(mibs(m.Mem, func(x procMem) int64 { return x.HWM }), "%.0f"),
			strings.Join(af, ", "), joinF(m.perKey(), "%.0f"), pk, fmtRatio(pk, etcdPK))
	}
	p("")
	p("Restart: then SIGTERM to every member at once, waiting until all have exited (SIGKILL after 60 s, counted below), then every member started again with the same command line on the same data dir. **Ready** (the same for every system): every member has answered, through its own client URL, a linearizable range and then a put, each with a 1 s deadline, polled every %s per member by the harness's own gRPC client (bench/etcdrpc.go, which reconnects within 10–100 ms). Restart to ready runs from starting the first member to the moment the last member was ready. Then the keys are counted again through each member, and the memory read again (the same figure as above, after the restart: what a member holds when it has rebuilt its state from disk rather than grown it under load; the target uses the figure after the load).", human(pollInterval))
	p("")
	p("| system | stop: SIGTERM → all exited, s (SIGKILLed) | restart to ready, s | ÷ etcd 3.6 | keys counted after | VmRSS MiB after restart | B/key after restart, median member |")
	p("|---|---:|---:|---:|---|---|---:|")
	etcdReady := 0.0
	if r := e.mem["etcd36"]; r != nil {
		etcdReady = r.ReadySecs
	}
	for _, s := range e.systems {
		m := e.mem[s.Key]
		if m == nil || len(m.Mem) == 0 {
			continue
		}
		if m.ReadySecs <= 0 {
			p("| %s | %.2f (%d) | failed: %s | | | | |", s.Name, m.StopSecs, m.Killed, strings.ReplaceAll(firstOf(m.Err), "|", "\\|"))
			continue
		}
		counted := make([]string, len(m.CountedAfter))
		for i, c := range m.CountedAfter {
			counted[i] = commas(int(c))
		}
		after := make([]float64, len(m.MemAfter))
		for i, x := range m.MemAfter {
			after[i] = perKeyBytes(x.RSS, m.Keys, raw)
		}
		p("| %s | %.2f (%d) | %.2f | %s | %s | %s | %.0f |", s.Name, m.StopSecs, m.Killed, m.ReadySecs, fmtRatio(m.ReadySecs, etcdReady),
			strings.Join(counted, ", "), joinF(mibs(m.MemAfter, func(x procMem) int64 { return x.RSS }), "%.0f"), spreadOf(after).Med)
	}
	p("")
	for _, s := range e.systems {
		if m := e.mem[s.Key]; m != nil && m.Err != "" && len(m.Mem) > 0 {
			p("%s: %s", s.Name, strings.ReplaceAll(firstOf(m.Err), "|", "\\|"))
			p("")
		}
	}
}

func renderFailover(e *env, p func(string, ...any), sz scaleSizes) {
	p("%s. Then a steady put load from the harness's own gRPC client (bench/scale.go, bench/etcdrpc.go): every %s, through each member's own client URL, a put of an 8-byte key and a 256-byte value, each with a %s deadline and without waiting for the earlier ones (%d puts/s in all). Each trial: find the leader (Maintenance.Status on every member until they agree), %s of load, `kill -9` of the leader (SIGKILL to its process group), wait until the process is reaped; the **write gap** runs from the kill to the first acknowledgement of a put sent after the process was gone. Then the killed member is started again on its data dir and waited for until it serves (a linearizable range and a put through it) before the next trial. %d trial(s) per system.",
		fresh, human(putEvery), human(putTimeout), 3*int(time.Second/putEvery), human(steadyBeforeKill), sz.Trials)
	p("")
	p("| system | write gap, ms: median (min–max) | ÷ etcd 3.6 | per trial, ms (member killed) | killed member serving again after, ms | puts acked / failed / unanswered at the end |")
	p("|---|---:|---:|---|---|---:|")
	etcdGap := 0.0
	if r := e.failover["etcd36"]; r != nil && len(r.Trials) > 0 {
		etcdGap = r.gaps().Med
	}
	for _, s := range e.systems {
		f := e.failover[s.Key]
		if f == nil {
			continue
		}
		if len(f.Trials) == 0 {
			p("| %s | failed: %s | | | | |", s.Name, strings.ReplaceAll(firstOf(f.Err), "|", "\\|"))
			continue
		}
		g := f.gaps()
		per := make([]string, len(f.Trials))
		rejoin := make([]string, len(f.Trials))
		for i, t := range f.Trials {
			per[i] = fmt.Sprintf("%.0f (%s)", t.GapMS, t.Killed)
			rejoin[i] = fmt.Sprintf("%.0f", t.RejoinMS)
		}
		p("| %s | %.0f (%.0f–%.0f) | %s | %s | %s | %d / %d / %d |", s.Name, g.Med, g.Min, g.Max, fmtRatio(g.Med, etcdGap),
			strings.Join(per, ", "), strings.Join(rejoin, ", "), f.Acked, f.Failed, f.Unanswered)
	}
	p("")
	p("Failed puts by error (puts through the killed member fail until it is back; puts through a follower that still forwards to the dead leader wait for their deadline):")
	p("")
	for _, s := range e.systems {
		f := e.failover[s.Key]
		if f == nil || len(f.FailedBy) == 0 {
			continue
		}
		classes := slices.Sorted(maps.Keys(f.FailedBy))
		parts := make([]string, len(classes))
		for i, c := range classes {
			parts[i] = fmt.Sprintf("`%s` ×%d", strings.ReplaceAll(c, "`", "'"), f.FailedBy[c])
		}
		p("- %s: %s", s.Name, strings.ReplaceAll(strings.Join(parts, "; "), "|", "\\|"))
	}
	p("")
	for _, s := range e.systems {
		if f := e.failover[s.Key]; f != nil && f.Err != "" && len(f.Trials) > 0 {
			p("%s: %s", s.Name, strings.ReplaceAll(firstOf(f.Err), "|", "\\|"))
			p("")
		}
	}
}
