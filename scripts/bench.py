#!/usr/bin/env python3
"""Kept so the old command still works: the benchmark harness is now the Go
program in bench/ (see bench/doc.go for why), which runs Concord, etcd 3.6.16
and Debian's etcd 3.4.23 side by side with both load tools and regenerates
docs/BENCHMARKS.md.

    python3 scripts/bench.py            # = go -C bench run .
    python3 scripts/bench.py --smoke    # = go -C bench run . --smoke

Every argument is passed through; paths given to --out, --json, --workdir and
--root are made absolute first (the harness runs with bench/ as its working
directory).
"""
import os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH_FLAGS = ("--out", "--json", "--workdir", "--root", "--etcd34")

def main():
    args, it = [], iter(sys.argv[1:])
    for a in it:
        name, eq, val = a.partition("=")
        if name in PATH_FLAGS:
            if not eq:
                val = next(it, "")
            a = f"{name}={os.path.abspath(val)}"
        args.append(a)
    os.execvp("go", ["go", "-C", os.path.join(ROOT, "bench"), "run", "."] + args)

if __name__ == "__main__":
    main()
