# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The channel benchmarks' smoke tests: tests/bench/{propagation,footprint,fanout}.py --quick.

Each script starts its own PostgreSQL, coordinator and (propagation, footprint) real
agent with wireguard-go in a namespace, or (fanout, footprint) tests/tools/fleetsim's
simulated agents, and prints a "result {json}" line. --quick makes no timing or memory
verdict, and neither does this: it checks that each finishes within its bound, exits 0
and measured what it says, with the binaries this test run built.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import BUILD, TOP, binary
from wglib import WG, WG_GO

BENCH = os.path.join(TOP, "tests", "bench")
needs_wireguard = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces)")


def run_quick(script, timeout):
    binary("wgfleet-coordinator")
    binary("wgfleet-agent")
    fleetsim = os.path.join(BUILD, "tests", "tools", "fleetsim")
    if not os.access(fleetsim, os.X_OK):
        pytest.fail(f"{fleetsim} is not built")
    env = dict(os.environ, WGF_BENCH_BUILD=BUILD, WGF_PG_FAST="1")
    proc = subprocess.run([sys.executable, os.path.join(BENCH, script), "--quick"],
                          capture_output=True, text=True, timeout=timeout, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    lines = [line for line in proc.stdout.splitlines() if line.startswith("result ")]
    assert len(lines) == 1, out
    assert "quick run: no" in proc.stdout, out
    return json.loads(lines[0][len("result "):]), out


@needs_wireguard
def test_propagation_quick():
    res, out = run_quick("propagation.py", 120)
    assert res["submissions"] == 20 and res["never_visible"] == 0, out
    assert res["visible_ms"]["n"] == 20, out
    assert res["reply_to_agent_adding_ms"]["n"] == 20, out
    assert res["db_commit_to_applied_ms"]["n"] == 20, out
    assert res["peers_on_interface_at_end"] == 20, out


@needs_wireguard
def test_footprint_quick():
    res, out = run_quick("footprint.py", 150)
    assert res["peers_on_interface"] == res["peers"] == 1000, out
    for phase in ("phase_a", "phase_b"):
        assert res[phase]["agent_kib"]["VmHWM"] > 0, out
        assert res[phase]["coordinator_kib"]["VmRSS"] > 0, out
        assert set(res[phase]["cpu"]) >= {"agent", "coordinator"}, out
    assert res["phase_b"]["fleetsim"]["ready"] == "50", out


def test_fanout_quick():
    res, out = run_quick("fanout.py", 150)
    assert res["problems"] == [], out
    assert res["checks"]["agents_checked"] == 50, out
    assert res["checks"]["changes_received"] == res["checks"]["changes_in_db"] == 70, out
    assert res["fleetsim"]["foreign"] == "0" and res["fleetsim"]["ready"] == "50", out
    assert res["db_commit_to_applied_ms"]["n"] == 70, out
