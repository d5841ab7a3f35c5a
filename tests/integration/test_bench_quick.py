# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The reservation benchmark's smoke test: tests/bench/reserve.sh --quick.

The script starts its own PostgreSQL and coordinator, reserves through HTTP (wrk),
through pgbench calling wgf_api_reserve, and through pgbench calling the lean reference
function it creates, and prints a table; --quick makes no timing assertion. This checks
that it finishes in time, exits 0 (no non-201 answer, no pgbench error) and measured
something on all three sides of every row. It uses the coordinator this test run built.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, TOP, binary

SCRIPT = os.path.join(TOP, "tests", "bench", "reserve.sh")
SIDE = r"\s+\|\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)"
ROW = re.compile(r"^(\d+)\s+(\d+)\s+/(\d+)\s+(\d+)" + SIDE * 3 +
                 r"\s+\|\s+([\d.]+)\s+[\d.-]+\s+\|\s+([\d.]+)\s")


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
        lean_tps, lean_errors = int(row[12]), int(row[15])
        assert http_rps > 0 and pgbench_tps > 0 and lean_tps > 0, out
        assert http_errors == 0 and pgbench_errors == 0 and lean_errors == 0, out
        assert float(row[16]) > 0 and float(row[17]) > 0, out
    assert "quick run: no timing verdict" in proc.stdout, out
