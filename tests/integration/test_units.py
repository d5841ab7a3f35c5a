# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The shipped systemd units are hardened: systemd-analyze rates their exposure.

`systemd-analyze security --offline=true` reads a unit file without a running systemd
(systemd is not PID 1 in the test containers) and scores what the service could do if
it were taken over; 0 is fully locked down, 10 is an unconfined root service. The
limits are those the project promises (docs/OPERATIONS.md). `systemd-analyze verify`
needs the binaries at the units' ExecStart paths, so it runs in test_packages.py on
the installed units.
"""
import os
import re
import shutil

import pytest

from conftest import TOP, run

DEPLOY = os.path.join(TOP, "deploy")
LIMITS = {"wgfleet-coordinator.service": 2.0, "wgfleet-agent.service": 3.5}


def exposure(unit_path):
    """The overall exposure systemd-analyze prints for a unit file, as a float."""
    proc = run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit_path],
               timeout=60)
    name = re.escape(os.path.basename(unit_path))
    m = re.search(r"Overall exposure level for %s: (\d+\.\d+)" % name, proc.stdout)
    assert m, f"no overall exposure in:\n{proc.stdout}\n{proc.stderr}"
    return float(m.group(1)), proc.stdout


@pytest.fixture(scope="module")
def analyze():
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")


@pytest.mark.parametrize("unit", sorted(LIMITS))
def test_unit_exposure_within_limit(analyze, unit):
    score, text = exposure(os.path.join(DEPLOY, unit))
    assert score <= LIMITS[unit], f"{unit} rates {score}, above {LIMITS[unit]}:\n{text}"


def test_exposure_check_can_fail(analyze, tmp_path):
    """The same measurement of a unit with its hardening removed is far above the limits,
    so the check above is not one that passes whatever the file says."""
    bare = tmp_path / "wgfleet-coordinator.service"
    lines = []
    with open(os.path.join(DEPLOY, "wgfleet-coordinator.service")) as f:
        for line in f:
            if line.startswith("[") or line.startswith(("Description=", "ExecStart=", "Type=")):
                lines.append(line)
    bare.write_text("".join(lines))
    score, _ = exposure(str(bare))
    assert score > LIMITS["wgfleet-coordinator.service"] + 5


@pytest.mark.parametrize("unit", sorted(LIMITS))
def test_unit_settings(unit):
    """What the exposure score does not show on its own: no core dumps, a private umask,
    a dedicated user, the agent's optional wireguard-go directory, CAP_NET_ADMIN only."""
    with open(os.path.join(DEPLOY, unit)) as f:
        settings = {}
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                settings.setdefault(key, []).append(value)
    assert settings["LimitCORE"] == ["0"]
    assert settings["UMask"] == ["0077"]
    assert settings["NoNewPrivileges"] == ["yes"]
    assert settings["User"][0] not in ("", "root", "0")
    if unit == "wgfleet-agent.service":
        assert settings["CapabilityBoundingSet"] == ["CAP_NET_ADMIN"]
        assert settings["AmbientCapabilities"] == ["CAP_NET_ADMIN"]
        assert settings["ReadWritePaths"] == ["-/var/run/wireguard"]
        assert settings["StateDirectory"] == ["wgfleet"]
    else:
        assert settings["CapabilityBoundingSet"] == [""]
