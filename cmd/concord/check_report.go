package main

// concord check: reading the final state back, judging it, the report directory.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concord-db/concord/internal/check"
)

// finalReads reads every key through every member (a linearizable get each,
// recorded in the history) and returns the highest revision seen.
func (r *checkRun) finalReads(ctx context.Context, clis []*clientv3.Client, keys []string, rev int64) int64 {
	for i, m := range r.members {
		client := r.f.clients + 2 + i
		for _, k := range keys {
			op := check.Op{Client: client, Kind: check.Get, Key: k, Member: m.name}
			h := r.rec.Call(op, r.now())
			gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			out, err := doKV(gctx, clis[i], op)
			cancel()
			if err != nil {
				r.rec.Fail(h, true, r.now())
				r.note("final read of %s on %s: %v", k, m.name, err)
				continue
			}
			r.rec.Return(h, out, r.now())
			rev = max(rev, out.Rev)
		}
	}
	return rev
}

// readCommitted reads the run's committed history back: every change under
// the run's prefix from firstRev to the store's current revision, through a
// watch from firstRev on the first member that answers.
func (r *checkRun) readCommitted(ctx context.Context, clis []*clientv3.Client, firstRev, minRev int64) (*check.Committed, error) {
	var lastErr error
	for i := range clis {
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := clis[i].Get(gctx, r.guard)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		end := max(resp.Header.Revision, minRev)
		c := &check.Committed{Rev: end, CompactRev: firstRev}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		reached := firstRev - 1
		for wr := range clis[i].Watch(wctx, r.prefix, clientv3.WithPrefix(), clientv3.WithRev(firstRev), clientv3.WithProgressNotify()) {
			if err := wr.Err(); err != nil {
				lastErr = err
				break
			}
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				if ev.Kv.ModRevision <= end && (strings.HasPrefix(k, r.kvPre) || k == r.guard) {
					c.Changes = append(c.Changes, check.Change{Rev: ev.Kv.ModRevision, Key: k,
						Value: string(ev.Kv.Value), Delete: ev.Type == clientv3.EventTypeDelete})
				}
				reached = max(reached, ev.Kv.ModRevision)
			}
			if wr.IsProgressNotify() || len(wr.Events) == 0 {
				reached = max(reached, wr.Header.Revision)
			}
			if reached >= end {
				break
			}
			if len(wr.Events) > 0 && reached < end {
				// Ask for progress so a tail of changes outside the prefix
				// does not leave us waiting for an event that never comes.
				clis[i].RequestProgress(wctx)
			}
		}
		cancel()
		if reached >= end {
			return c, nil
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("watch stopped at revision %d of %d", reached, end)
		}
	}
	return nil, fmt.Errorf("check: reading the committed history back: %w", lastErr)
}

// checkResult holds every checker's report.
type checkResult struct {
	lin     check.Linearization
	reports []check.Report
	verdict check.Verdict
	took    time.Duration
	judged  []check.Op
	// stale are the reads StaleReads names, in call order.
	stale []check.Op
}

// judge runs every checker over rec.
func judge(rec *check.Recording, timeout time.Duration) checkResult {
	start := time.Now()
	var res checkResult
	c := rec.Committed
	res.judged = check.ResolveAmbiguous(rec.Ops, c)
	res.lin = check.Linearizable(res.judged, timeout)
	staleReport, stale := check.StaleReads(res.judged, c)
	res.stale = stale
	res.reports = []check.Report{
		res.lin.Report,
		staleReport,
		check.Reads(res.judged, c),
		check.Durability(res.judged, c),
		check.Revisions(res.judged),
		check.AppliedOnce(c),
		check.Watch(rec.Watches, c),
		check.Fencing(rec.Fenced, c, rec.GuardKey),
	}
	var vs []check.Verdict
	for _, rp := range res.reports {
		vs = append(vs, rp.Verdict)
	}
	res.verdict = check.Worst(vs...)
	res.took = time.Since(start)
	return res
}

func exitCode(v check.Verdict) int {
	switch v {
	case check.Valid:
		return checkExitValid
	case check.Invalid:
		return checkExitInvalid
	}
	return checkExitUnknown
}

// writeReport writes history.json, report.html and summary.txt and prints
// the summary.
func (r *checkRun) writeReport(rec *check.Recording, res checkResult, w io.Writer) (int, error) {
	hf, err := os.Create(filepath.Join(r.dir, "history.json"))
	if err != nil {
		return 0, err
	}
	err = rec.WriteJSON(hf)
	if cerr := hf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("check: history.json: %w", err)
	}
	htmlStart := time.Now()
	html, err := os.Create(filepath.Join(r.dir, "report.html"))
	if err != nil {
		return 0, err
	}
	anns := slices.Clone(rec.Annotations)
	for i, o := range res.stale {
		if i == maxStaleAnnotations {
			break
		}
		anns = append(anns, check.Annotation{Client: o.Client, Start: o.Call, End: o.Return,
			Description: check.DescribeAnomaly(o), Details: fmt.Sprintf("on %s; see summary.txt", o.Member), Color: "#ff9a9a"})
	}
	err = res.lin.VisualizeAnnotated(html, anns, check.DescribeAnomaly)
	if cerr := html.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("check: report.html: %w", err)
	}
	r.mu.Lock()
	info := summaryInfo{
		Seed: r.f.seed, Duration: r.f.duration, Cluster: r.describeMembers(), Started: r.f.start > 0,
		UnsafeLocalReads: r.f.unsafeLocalReads, Nemesis: r.f.nemesis, Faults: slices.Clone(r.faultLog),
		LeaderChanges: r.changes, Locks: r.locks.Load(), Notes: slices.Clone(r.notes),
		HTMLTook: time.Since(htmlStart),
	}
	r.mu.Unlock()
	var b strings.Builder
	writeSummary(&b, info, rec, res)
	if err := os.WriteFile(filepath.Join(r.dir, "summary.txt"), []byte(b.String()), 0o644); err != nil {
		return 0, fmt.Errorf("check: summary.txt: %w", err)
	}
	fmt.Fprint(w, b.String())
	return exitCode(res.verdict), nil
}

// summaryInfo is what the summary says about the run besides the history.
type summaryInfo struct {
	Seed             int64
	Duration         time.Duration
	Cluster          string
	Started          bool
	UnsafeLocalReads bool
	Nemesis          []string
	Faults           []string
	LeaderChanges    int
	Locks            int64
	Notes            []string
	HTMLTook         time.Duration
}

// writeSummary writes summary.txt: the verdict, operations by kind and
// status, faults, leader changes, each checker's verdict, and the first
// anomaly in words.
func writeSummary(w io.Writer, info summaryInfo, rec *check.Recording, res checkResult) {
	fmt.Fprintf(w, "concord check: %s\n", strings.ToUpper(res.verdict.String()))
	how := "targeted"
	if info.Started {
		how = "started"
	}
	fmt.Fprintf(w, "cluster (%s): %s\n", how, info.Cluster)
	nem := strings.Join(info.Nemesis, ",")
	if nem == "" {
		nem = "none"
	}
	fmt.Fprintf(w, "seed %d, duration %v, nemesis %s, unsafe-local-reads %t\n", info.Seed, info.Duration, nem, info.UnsafeLocalReads)
	counts := map[string]int{}
	for i := range rec.Ops {
		o := &rec.Ops[i]
		counts[o.Kind.String()+" "+o.Status.String()]++
	}
	total := len(rec.Ops) + len(rec.Fenced)
	fmt.Fprintf(w, "operations: %d (%.0f/s): %d key-value, %d fenced writes, %d lock acquisitions\n",
		total, float64(total)/max(info.Duration.Seconds(), 1), len(rec.Ops), len(rec.Fenced), info.Locks)
	for _, k := range []check.Kind{check.Get, check.Put, check.CAS, check.Delete} {
		var parts []string
		for _, s := range []check.Status{check.OK, check.Failed, check.Ambiguous, check.Pending} {
			if n := counts[k.String()+" "+s.String()]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, n))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "  %-6s %s\n", k, strings.Join(parts, ", "))
		}
	}
	var acc, ref, amb int
	for _, f := range rec.Fenced {
		switch {
		case f.Status != check.OK:
			amb++
		case f.Accepted:
			acc++
		default:
			ref++
		}
	}
	fmt.Fprintf(w, "  fenced accepted %d, refused %d, ambiguous %d\n", acc, ref, amb)
	resolved := 0
	for i := range rec.Ops {
		if rec.Ops[i].Status != res.judged[i].Status {
			resolved++
		}
	}
	fmt.Fprintf(w, "  %d unanswered writes never took effect (their values are not in the committed history)\n", resolved)
	events := 0
	for _, s := range rec.Watches {
		events += len(s.Events)
	}
	fmt.Fprintf(w, "watch: %d streams, %d events\n", len(rec.Watches), events)
	if rec.Committed != nil {
		fmt.Fprintf(w, "committed history: %d changes, revisions %d..%d\n", len(rec.Committed.Changes), rec.Committed.CompactRev, rec.Committed.Rev)
	}
	fmt.Fprintf(w, "faults: %d\n", len(info.Faults))
	for _, f := range info.Faults {
		fmt.Fprintf(w, "  %s\n", f)
	}
	fmt.Fprintf(w, "leader changes: %d\n", info.LeaderChanges)
	judged := 0
	for _, k := range res.lin.Keys {
		judged += k.Ops
	}
	rate := float64(judged) / max(res.took.Seconds(), 1e-3)
	fmt.Fprintf(w, "checkers (%v, linearizability over %d operations in %d keys, %.0f ops/s; visualization %v):\n",
		res.took.Round(time.Millisecond), judged, len(res.lin.Keys), rate, info.HTMLTook.Round(time.Millisecond))
	for _, rp := range res.reports {
		fmt.Fprintf(w, "  %s: %s", rp.Checker, rp.Verdict)
		if rp.Count > 0 {
			fmt.Fprintf(w, " (%d violations)", rp.Count)
		}
		fmt.Fprintln(w)
		for i, p := range rp.Problems {
			if i == summaryProblems {
				fmt.Fprintf(w, "    ... %d more\n", max(rp.Count, len(rp.Problems))-i)
				break
			}
			fmt.Fprintf(w, "    %s\n", p)
		}
	}
	if len(res.stale) > 0 {
		o := res.stale[0]
		fmt.Fprintf(w, "first anomaly: %s (client %d on %s, called at +%.3fs); %d stale reads in all, drawn in report.html\n",
			check.DescribeAnomaly(o), o.Client, o.Member, time.Duration(o.Call).Seconds(), len(res.stale))
	} else if len(res.lin.Anomalies) > 0 {
		o := res.lin.Anomalies[0]
		fmt.Fprintf(w, "first anomaly: %s (client %d on %s, called at +%.3fs); see report.html\n",
			check.DescribeAnomaly(o), o.Client, o.Member, time.Duration(o.Call).Seconds())
	} else {
		for _, rp := range res.reports {
			if rp.Verdict == check.Invalid && len(rp.Problems) > 0 {
				fmt.Fprintf(w, "first anomaly: %s: %s\n", rp.Checker, rp.Problems[0])
				break
			}
		}
	}
	for _, n := range info.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "exit status: %d (0 valid, 1 invalid, 2 unknown)\n", exitCode(res.verdict))
}
