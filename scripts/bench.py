#!/usr/bin/env python3
"""Run Concord's own load tool against fresh local clusters and regenerate
docs/BENCHMARKS.md.

    python3 scripts/bench.py            # full run (a few minutes)
    python3 scripts/bench.py --smoke    # tiny totals, to check the script works

It builds ./cmd/concord, starts 1 and then 3 real `concord server` processes on
127.0.0.1 (fresh data dirs, heartbeat 100ms, election 1000ms, fsync on), warms
each cluster up, runs every workload --runs times and reports the median with
the min-max range. Side-by-side figures against etcd belong to the benchmark
harness issue; this page records Concord alone.
"""
import argparse, json, os, platform, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

class Cluster:
    def __init__(self, binary, n, tmp):
        self.procs, self.endpoints = [], []
        ports = [(free_port(), free_port()) for _ in range(n)]
        initial = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(ports))
        self.logs = []
        for i, (c, p) in enumerate(ports):
            log = open(os.path.join(tmp, f"m{i}.log"), "w+")
            self.logs.append(log)
            self.procs.append(subprocess.Popen([binary, "server", "--name", f"m{i}",
                "--data-dir", os.path.join(tmp, f"m{i}"), "--initial-cluster", initial,
                "--listen-client", f"127.0.0.1:{c}", "--listen-peer", f"127.0.0.1:{p}",
                "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT))
            self.endpoints.append(f"127.0.0.1:{c}")

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

def bench(binary, args):
    out = subprocess.run([binary, "bench", "--format", "json"] + args, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"concord bench {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout)

def wait_ready(binary, cl):
    deadline = time.time() + 30
    while time.time() < deadline:
        r = subprocess.run([binary, "put", "bench-ready", "x", "--endpoints", ",".join(cl.endpoints)], capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit("cluster not ready after 30s")

def fsyncs_per_second(tmp, seconds=2.0):
    path = os.path.join(tmp, "fsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    buf, n, end = b"\0" * 4096, 0, time.time() + seconds
    while time.time() < end:
        os.pwrite(fd, buf, 0)
        os.fdatasync(fd)
        n += 1
    os.close(fd)
    return n / seconds

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    a = ap.parse_args()
    scale = 0.02 if a.smoke else 1.0
    runs = 1 if a.smoke else a.runs
    tmp = tempfile.mkdtemp(prefix="concord-bench-")
    binary = os.path.join(tmp, "concord")
    subprocess.run(["go", "build", "-o", binary, "./cmd/concord"], cwd=ROOT, check=True)

    def tot(n):
        return str(max(50, int(n * scale)))
    workloads = [
        ("put, 1 client", ["--target-leader", "--conns", "1", "--clients", "1", "put", "--total", tot(5000), "--key-size", "8", "--val-size", "256"]),
        ("put, 100 clients / 10 conns, leader", ["--target-leader", "--conns", "10", "--clients", "100", "put", "--total", tot(50000), "--key-size", "8", "--val-size", "256", "--sequential-keys", "--key-space-size", "100000"]),
        ("put, 100 clients / 10 conns, all members", ["--conns", "10", "--clients", "100", "put", "--total", tot(50000), "--key-size", "8", "--val-size", "256", "--sequential-keys", "--key-space-size", "100000"]),
        ("range linearizable, 100 clients / 10 conns", ["--conns", "10", "--clients", "100", "range", "foo", "--consistency", "l", "--total", tot(100000)]),
        ("range serializable, 100 clients / 10 conns", ["--conns", "10", "--clients", "100", "range", "foo", "--consistency", "s", "--total", tot(100000)]),
        ("txn-put (1 op), 100 clients / 10 conns", ["--conns", "10", "--clients", "100", "txn-put", "--total", tot(30000), "--key-size", "8", "--val-size", "256"]),
        ("lease keepalive, 100 clients / 10 conns", ["--conns", "10", "--clients", "100", "lease-keepalive", "--total", tot(50000)]),
        ("watch fan-out, 10 streams x 100 watchers (req/s = events/s)", ["--conns", "10", "watch", "--streams", "10", "--watchers-per-stream", "100", "--put-total", tot(2000)]),
        ("watch latency, 10 streams x 10 watchers, 100 puts/s", ["--conns", "10", "watch-latency", "--put-total", tot(500), "--put-rate", "100"]),
    ]
    fsync_rate = fsyncs_per_second(tmp)
    rows = []
    for members in (1, 3):
        d = tempfile.mkdtemp(prefix=f"m{members}-", dir=tmp)
        cl = Cluster(binary, members, d)
        try:
            wait_ready(binary, cl)
            ep = ",".join(cl.endpoints)
            subprocess.run([binary, "put", "foo", "x" * 256, "--endpoints", ep], check=True, capture_output=True)
            bench(binary, ["--endpoints", ep, "--conns", "10", "--clients", "100", "put", "--total", tot(5000), "--val-size", "256"])  # warm-up
            for name, args in workloads:
                results = [bench(binary, ["--endpoints", ep] + args) for _ in range(runs)]
                rps = [r["requests_per_sec"] for r in results]
                p50 = [r["latency_ms"]["p50"] for r in results]
                p99 = [r["latency_ms"]["p99"] for r in results]
                cmd = "concord bench --endpoints <" + str(members) + " endpoints> " + " ".join(args)
                rows.append((members, name, statistics.median(rps), min(rps), max(rps), statistics.median(p50), statistics.median(p99), cmd))
                print(f"{members} member(s) | {name}: {statistics.median(rps):.0f} req/s, p50 {statistics.median(p50):.2f} ms", file=sys.stderr)
        finally:
            cl.stop()
    write_page(a.out, rows, fsync_rate, runs, a.smoke)

def write_page(path, rows, fsync_rate, runs, smoke):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except Exception:
        pass
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python3 scripts/bench.py` — do not edit by hand; rerun it.",
        "",
        f"- machine: {os.cpu_count()} cores, {cpu}; {go}; commit {commit}",
        f"- data disk: {fsync_rate:.0f} fsyncs/s (4 KiB pwrite + fdatasync, measured in the same run)",
        f"- each cluster: real `concord server` processes on 127.0.0.1, fresh data dirs, heartbeat 100 ms, election 1000 ms, fsync on; load tool `concord bench` (clientv3) on the same machine",
        f"- each workload run {runs}× after a warm-up; median, with min–max of requests/s" + (" (SMOKE RUN: tiny totals, figures meaningless)" if smoke else ""),
        "",
        "| members | workload | req/s (median) | min–max | p50 ms | p99 ms |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for m, name, rps, lo, hi, p50, p99, _ in rows:
        lines.append(f"| {m} | {name} | {rps:.0f} | {lo:.0f}–{hi:.0f} | {p50:.2f} | {p99:.2f} |")
    lines += ["", "## Commands", "", "Each row ran:", ""]
    seen = set()
    for m, name, *_, cmd in rows:
        if (m, name) in seen:
            continue
        seen.add((m, name))
        lines.append(f"- {m} member(s), {name}: `{cmd}`")
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))

if __name__ == "__main__":
    main()
