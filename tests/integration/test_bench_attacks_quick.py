# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The attack benchmark's smoke test: tests/bench/attacks.py --quick.

The script starts its own PostgreSQL, coordinator and tests/tools/fleetsim agents,
runs each attack for a few seconds beside its HTTP and agent probes and prints a
"result {json}" line. --quick makes no timing verdict, and neither does this: it checks
that every attack ran, that it did what it says (counts sent, connections held) and
that both probes were answered in every window, within a generous bound.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import BUILD, TOP, binary

NAMES = ["forged-key flood", "replayed envelope", "partial holders", "idle pipes",
         "parked polls", "body senders", "wrong-key flood"]


def test_attacks_quick():
    binary("wgfleet-coordinator")
    binary("wgfleet-agent")
    for tool in ("fleetsim", "chanprobe"):
        if not os.access(os.path.join(BUILD, "tests", "tools", tool), os.X_OK):
            pytest.fail(f"{tool} is not built")
    env = dict(os.environ, WGF_BENCH_BUILD=BUILD, WGF_PG_FAST="1")
    proc = subprocess.run([sys.executable, os.path.join(TOP, "tests", "bench", "attacks.py"),
                           "--quick"], capture_output=True, text=True, timeout=150, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    lines = [line for line in proc.stdout.splitlines() if line.startswith("result ")]
    assert len(lines) == 1, out
    assert "quick run: no timing verdict" in proc.stdout, out
    res = json.loads(lines[0][len("result "):])
    assert res["problems"] == [], out
    rows = {r["attack"]: r for r in res["attacks"]}
    assert list(rows) == NAMES, out
    for r in rows.values():
        for phase in ("idle", "during"):
            assert r[phase]["http_ms"]["n"] > 0 and r[phase]["agent_ms"]["n"] > 0, (r, out)
            assert r[phase]["statuses"].get("GET 200", 0) > 0, (r, out)
    a = {name: r["attacker"] for name, r in rows.items()}
    for name in ("forged-key flood", "replayed envelope", "parked polls"):
        assert a[name]["sent"] >= rows[name]["count"], (name, a[name])
    # A replay is served once per run of chanprobe, the copies refused.
    assert a["replayed envelope"].get("answer sync", 0) == a["replayed envelope"]["runs"], out
    # The stranger never gets anything but a refusal.
    assert set(a["forged-key flood"]) <= {"runs", "sent", "answered", "answer error-3"}, out
    for name in ("partial holders", "idle pipes"):
        assert a[name]["opened"] == rows[name]["count"], (name, a[name])
    assert a["body senders"]["opened"] >= rows["body senders"]["count"], out
    assert a["wrong-key flood"]["answered"] > 0, out
    assert set(a["wrong-key flood"]["statuses"]) <= {"401", "429"}, out
    assert res["fleetsim"]["foreign"] == "0", out
