# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The kernel backend against a real kernel, in a small VM.

tests/vm/run.sh boots the Debian kernel in qemu (TCG) with an initramfs that runs
tests/vm/scenario.sh; qemu exits 0 whatever happens inside, so everything here is read
from the WGF-* markers the scenario prints on the serial console. The VM boots once for
the whole module (about 40 s, most of it the 10,000-peer benchmark).
"""
import os
import re
import shutil

import pytest

from conftest import BUILD, TOP, run

VM_SH = os.path.join(TOP, "tests", "vm", "run.sh")
MARKER = re.compile(r"^(WGF-OK|WGF-FAIL) (\S+) ?(.*)$")


def parse_markers(console):
    """{step: (ok, {key: value})} from the WGF-OK/WGF-FAIL lines of the console."""
    steps = {}
    for line in console.splitlines():
        m = MARKER.match(line.strip())
        if m:
            fields = dict(w.split("=", 1) for w in m.group(3).split() if "=" in w)
            steps[m.group(2)] = (m.group(1) == "WGF-OK", fields)
    return steps


@pytest.fixture(scope="module")
def vm():
    missing = [t for t in ("qemu-system-x86_64", "cpio", "depmod", "dpkg-deb", "wg")
               if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing; run deploy/install-deps.sh")
    driver = os.path.join(BUILD, "tests", "vm", "wgf-vmtest")
    if not os.access(driver, os.X_OK):
        pytest.fail(f"{driver} is not built")
    proc = run(["bash", VM_SH, BUILD], timeout=330, errors="replace",
               env=dict(os.environ, WGF_VM_TIMEOUT="300"))
    assert proc.returncode == 0, f"{proc.stderr}\n{proc.stdout[-4000:]}"
    return parse_markers(proc.stdout), proc.stdout


def step(vm, name):
    steps, console = vm
    assert name in steps, f"step {name} never ran:\n{console[-4000:]}"
    ok, fields = steps[name]
    assert ok, f"step {name} failed:\n{console[-4000:]}"
    return fields


def test_vm_ran_the_whole_scenario(vm):
    steps, console = vm
    assert "WGF-VM-TIMEOUT" not in console
    assert "WGF-FAIL insmod" not in console
    assert re.search(r"^WGF-END ", console, re.M), console[-4000:]
    failed = [name for name, (ok, _) in steps.items() if not ok]
    assert not failed, f"failed steps {failed}:\n{console[-4000:]}"


def test_agent_creates_the_interface_and_keeps_its_key(vm):
    step(vm, "ensure")
    assert step(vm, "ensure-facts")["facts"] == "ok"
    # Again on the live interface: nothing changes; after the link is gone (a reboot),
    # the same key comes back from the key file.
    step(vm, "ensure-again")
    pub = step(vm, "ensure-again-key")["pub"]
    step(vm, "ensure-recreate")
    assert step(vm, "ensure-recreate-key")["pub"] == pub
    assert step(vm, "ensure-recreate-facts")["facts"] == "ok"


@pytest.mark.parametrize("name,set_,removed,peers", [
    ("empty", 0, 0, 0),
    ("1000", 1000, 0, 1000),
    ("one", 1, 0, 1000),
    # From "one": 100 removed, 100 new, 100 new allowed IPs, 50 new keepalives, and
    # peer 500 back to what it was.
    ("changed", 251, 100, 1000),
    # A managed peer changed and a stranger added with `wg set`: both repaired.
    ("drift", 1, 1, 1000),
    ("zero", 0, 1000, 0),
])
def test_apply_writes_only_the_difference(vm, name, set_, removed, peers):
    applied = step(vm, f"apply-{name}")
    assert (int(applied["set"]), int(applied["removed"])) == (set_, removed)
    assert step(vm, f"check-{name}")["peers"] == str(peers)


def test_unchanged_set_writes_nothing(vm):
    applied = step(vm, "apply-1000-again")
    assert (applied["set"], applied["removed"]) == ("0", "0")


def test_benchmark_against_wg_setconf(vm):
    """Timed, not asserted: the numbers go to BUILD/vm/bench.txt."""
    steps, _ = vm
    if "bench-gen" not in steps:
        pytest.skip("the benchmark was turned off (WGF_VM_BENCH_PEERS=0)")
    rounds = sorted({int(n.rsplit("-", 1)[1]) for n in steps
                     if n.startswith("bench-apply-") and n.rsplit("-", 1)[1].isdigit()})
    assert rounds, "no benchmark round ran"
    lines = []
    agent_total = setconf_total = 0.0
    for r in rounds:
        applied = step(vm, f"bench-apply-{r}")
        assert int(applied["added"]) > 0
        step(vm, f"bench-check-{r}")
        setconf = step(vm, f"bench-setconf-{r}")
        step(vm, f"bench-setconf-check-{r}")
        assert step(vm, f"bench-setconf-key-{r}")["facts"] == "ok"
        agent_total += float(applied["ms"])
        setconf_total += float(setconf["ms"])
        lines.append(
            f"round {r}, {applied['added']} peers: agent apply {applied['ms']} ms "
            f"(in the kernel {applied['sys_ms']} ms, peak RSS {applied['maxrss_kib']} KiB), "
            f"wg setconf {setconf['ms']} ms (in the kernel {setconf['sys_ms']} ms); "
            f"unchanged: agent {step(vm, f'bench-apply-unchanged-{r}')['ms']} ms, "
            f"wg syncconf {step(vm, f'bench-syncconf-unchanged-{r}')['ms']} ms; "
            f"remove all: agent {step(vm, f'bench-remove-{r}')['ms']} ms, "
            f"wg setconf {step(vm, f'bench-setconf-remove-{r}')['ms']} ms")
    if "bench-daemon" in steps:  # WGF_VM_BENCH_DAEMON
        daemon = step(vm, "bench-daemon")
        lines.append(f"daemon holding them (cache-only): ready after {daemon['ready_s']} s, "
                     f"VmHWM {daemon['hwm_kib']} KiB, VmRSS {daemon['rss_kib']} KiB")
    backend = step(vm, "bench-backend-apply")
    step(vm, "bench-backend-check")
    lines.append(f"backend alone (wgf-vmtest apply): {backend['total_ms']} ms, "
                 f"of which reading the device {backend['read_ms']} ms")
    lines.append(f"agent apply / wg setconf, full apply: {agent_total / setconf_total:.2f}")
    os.makedirs(os.path.join(BUILD, "vm"), exist_ok=True)
    with open(os.path.join(BUILD, "vm", "bench.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
