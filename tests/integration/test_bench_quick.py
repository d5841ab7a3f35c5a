# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The reservation benchmark's smoke test: tests/bench/reserve.sh --quick.

The script starts its own PostgreSQL and coordinator, reserves through HTTP (wrk) and
through pgbench, and prints a table; --quick makes no timing assertion. This checks that
it finishes in time, exits 0 (no non-201 answer, no pgbench error) and measured
something on both sides of every row. It uses the coordinator this test run built.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, TOP, binary

SCRIPT = os.path.join(TOP, "tests", "bench", "reserve.sh")
ROW = re.compile(r"^(\d+)\s+(\d+)\s+/(\d+)\s+(\d+)\s+\|\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+\|"
                 r"\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+\|\s+([\d.]+)\s")


def test_reserve_bench_quick():
    for tool in ("wrk", "pgbench"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (deploy/install-deps.sh installs it)")
    binary("wgfleet-coordinator")
    env = dict(os.environ, WGF_BENCH_BUILD=BUILD, WGF_PG_FAST="1")
    proc = subprocess.run(["bash", SCRIPT, "--quick"], capture_output=True, text=True,
                          timeout=89, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    rows = [m.groups() for m in map(ROW.match, proc.stdout.splitlines()) if m]
    assert len(rows) == 2, out
    for row in rows:
        http_rps, http_errors = int(row[4]), int(row[7])
        pgbench_tps, pgbench_errors = int(row[8]), int(row[11])
        assert http_rps > 0 and pgbench_tps > 0, out
        assert http_errors == 0 and pgbench_errors == 0, out
        assert float(row[12]) > 0, out
    assert "quick run: no timing verdict" in proc.stdout, out
