# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The README's first command, deploy/quickstart.sh, run twice in a row as a person would
run it again: the second run, with the first one's daemons still up and no `clean`
between, tells the whole story again and ends with `wgfleetctl status`.

It runs on the build under test (WGF_QUICKSTART_BUILD), in a run directory and under a
name of its own (WGF_QUICKSTART_NAME), so a person's quickstart left running beside it
is not touched, and `clean` removes all of it afterwards."""
import os
import re
import subprocess
import tempfile

import pytest

from conftest import BUILD, TOP, binary

QUICKSTART = os.path.join(TOP, "deploy", "quickstart.sh")
NAME = "wgfqt"


def namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         timeout=10).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture
def quickstart():
    if os.geteuid() != 0:
        pytest.skip("the quickstart makes network namespaces and installs packages: root")
    binary("wgfleet-coordinator")  # the build it uses must be there
    # Its PostgreSQL runs as another user, who must reach the directory (pytest's are 0700).
    top = tempfile.mkdtemp(prefix="wgf-qs-", dir="/tmp")
    os.chmod(top, 0o755)
    run_dir = os.path.join(top, "qs")
    env = dict(os.environ, WGF_QUICKSTART_DIR=run_dir,
               WGF_QUICKSTART_BUILD=BUILD, WGF_QUICKSTART_NAME=NAME, NO_COLOR="1")
    for k in [k for k in env if k.startswith("WGFLEET_")]:
        del env[k]

    def run(*args):
        return subprocess.run(["bash", QUICKSTART, *args], capture_output=True, text=True,
                              env=env, timeout=300)

    try:
        yield run, run_dir
    finally:
        cleaned = run("clean")
        assert cleaned.returncode == 0, cleaned.stderr
        assert not {f"{NAME}-vps", f"{NAME}-rtr"} & namespaces()
        os.rmdir(top)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_quickstart_runs_twice_and_ends_with_the_status(quickstart):
    run, run_dir = quickstart
    first = run()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    with open(os.path.join(run_dir, "coordinator.pid")) as fh:
        first_coordinator = int(fh.read())
    assert alive(first_coordinator)  # "Everything still runs"
    assert {f"{NAME}-vps", f"{NAME}-rtr"} <= namespaces()

    second = run()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert not alive(first_coordinator)  # the first run's daemons made way
    # It ends with the status: every server online and current, the router connected.
    steps = re.split(r"^\[\d+\] ", second.stdout, flags=re.M)
    last = steps[-1].strip().splitlines()
    assert last[0] == "The fleet at a glance (wgfleetctl status)", steps[-1]
    header, row = (re.split(r"\s{2,}", line.strip()) for line in last[1:3])
    assert header[:3] == ["SERVER", "STATE", "LAST SEEN"], last
    assert row[:2] == ["vps1", "online"] and row[header.index("LAG")] == "0", last
    assert last[3:] == ["", "routers: connected 1"], last
    # The demo tenant was made again (the first run's database went with it), not refused.
    assert "tenant 'demo', portal key: wgf_" in second.stdout
