#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""faults_report: runs the fault suite and prints its convergence times as a table (issue
15, item 4).

Usage: tests/bench/faults_report.py [--report] [--build DIR] [--with-partition]
                                    [--runs N] [pytest args...]

  --report          print the markdown table for docs/BENCHMARKS.md ("Faults")
                    (the default; kept so the call reads as the issue names it)
  --build DIR       the build to use (default $WGF_BUILD_DIR, else build/dev)
  --with-partition  also run test_partition.py (a 30 s cut and more)
  --runs N          run the suite N times, one row per case and run (default 1)

Each case of tests/integration/test_faults.py (and test_partition.py) calls
conftest.record_convergence, which appends a JSON line to the file named by
$WGF_FAULTS_REPORT: the case, what was measured, the seconds, the target and
/proc/loadavg at that moment. This script points that at a temporary file, runs pytest
(as root: the cases need namespaces), and turns the lines into one table. A failed case
still prints the rows the others recorded; the exit status is pytest's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def table(rows):
    out = ["| case | measured | time | target | met | load (1, 5, 15 min) |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        met = "yes" if r["seconds"] <= r["target"] else "**no**"
        out.append(f"| {r['case']} | {r['measured']} | {r['seconds']:.2f} s | "
                   f"{r['target']:.0f} s | {met} | {r['load']} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--build", default=os.environ.get("WGF_BUILD_DIR",
                                                      os.path.join(TOP, "build", "dev")))
    ap.add_argument("--with-partition", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    args, rest = ap.parse_known_args()
    files = [os.path.join(TOP, "tests", "integration", "test_faults.py")]
    if args.with_partition:
        files.append(os.path.join(TOP, "tests", "integration", "test_partition.py"))
    fd, path = tempfile.mkstemp(prefix="wgf-faults-", suffix=".jsonl")
    os.close(fd)
    rc = 0
    try:
        env = dict(os.environ, WGF_BUILD_DIR=os.path.abspath(args.build),
                   WGF_FAULTS_REPORT=path)
        for _ in range(max(1, args.runs)):
            proc = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q",
                                   "-p", "no:cacheprovider", *files, *rest],
                                  cwd=TOP, env=env, timeout=1800)
            rc = rc or proc.returncode
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    finally:
        os.unlink(path)
    print()
    print(table(rows))
    return rc


if __name__ == "__main__":
    sys.exit(main())
