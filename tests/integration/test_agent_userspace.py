# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The agent's userspace backend against a real wireguard-go in a private namespace.

Each test gets a network namespace of its own (wgf-XXXXXXXX) with a wireguard-go in it,
given a key and a port with `wg set`, and checks the interface with `wg show dump`.
The UAPI socket lives in the host's /var/run/wireguard (namespaces share the file
system), so interface names are unique per test. Every wait polls with a deadline.
"""
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import binary, log_lines, run
from wglib import SOCKET_DIR, WG, WG_GO, WireguardGo, new_key, wait_for

ZERO_KEY = base64.b64encode(bytes(32)).decode()
LOW_ORDER_KEY = base64.b64encode(bytes([1]) + bytes(31)).decode()

pytestmark = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces)")


def peer_ip(i):
    return f"10.100.{i >> 8}.{i & 255}/32"


@pytest.fixture
def wggo(tmp_path):
    w = WireguardGo(tmp_path)
    try:
        w.start()
        yield w
    finally:
        w.close()


class Agent:
    """The agent's configuration, one-shot commands and daemon for one wireguard-go."""

    def __init__(self, tmp_path, w):
        self.tmp = tmp_path
        self.w = w
        self.state = tmp_path / "state"
        self.conf = tmp_path / "agent.conf"
        self.cache = self.state / "desired.json"
        self.proc = None
        self.log_path = tmp_path / "agent.log"
        self.configure()

    def configure(self, **extra):
        opts = {
            ("agent", "state_directory"): str(self.state),
            ("agent", "reconcile_interval"): "300ms",
            ("wireguard", "interface"): self.w.ifname,
            ("wireguard", "backend"): "userspace",
            ("monitor", "interval"): "200ms",
            ("log", "level"): "info",
        }
        for k, v in extra.items():
            section, _, name = k.partition("__")
            opts[(section, name)] = v
        text = ""
        for section in ("agent", "wireguard", "monitor", "log"):
            text += f"[{section}]\n"
            text += "".join(f"{n} = {v}\n" for (s, n), v in opts.items() if s == section)
        self.conf.write_text(text)

    def write(self, name, revision, peers, routable=None):
        """Writes a desired-state file; peers is {key: (ips, keepalive)}."""
        path = self.tmp / name
        state = {"revision": revision}
        if routable is not None:
            state["routable"] = routable
        state["peers"] = [
            {"public_key": k, "allowed_ips": sorted(ips), "persistent_keepalive": ka}
            for k, (ips, ka) in peers.items()]
        path.write_text(json.dumps(state))
        return path

    def cmd(self, *args):
        return run(["ip", "netns", "exec", self.w.ns, binary("wgfleet-agent"),
                    "--config", str(self.conf)] + list(args), timeout=120)

    def start(self, env=None):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.w.ns, binary("wgfleet-agent"), "--config",
             str(self.conf), "run", "--foreground"],
            stdout=subprocess.DEVNULL, stderr=self.log, env=env, start_new_session=True)
        return self.proc

    def messages(self):
        return log_lines(self.log_path.read_text()) if self.log_path.exists() else []

    def wait_log(self, what, predicate, timeout=10.0):
        return wait_for(what, lambda: [m for m in self.messages() if predicate(m)], timeout)

    def stop(self, sig=signal.SIGTERM):
        """Signals the daemon and returns (exit status, seconds it took to exit)."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=10)
        took = time.monotonic() - start
        self.proc = None
        self.log.close()
        return code, took

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self.proc:
            self.log.close()
        self.proc = None


@pytest.fixture
def agent(tmp_path, wggo):
    a = Agent(tmp_path, wggo)
    try:
        yield a
    finally:
        a.kill()


def desired_set(first, count, keepalive=25):
    return {new_key(): (frozenset([peer_ip(i)]), keepalive) for i in range(first, first + count)}


def diff_lines(stdout):
    counts = {}
    for line in stdout.splitlines():
        counts[line[0]] = counts.get(line[0], 0) + 1
    return counts


def test_apply_scales_up_changes_a_subset_and_empties(agent, wggo):
    iface_before = wggo.dump()[0]
    want = desired_set(2, 1000)
    proc = agent.cmd("apply", str(agent.write("d1.json", 1, want)))
    assert proc.returncode == 0, proc.stderr
    assert diff_lines(proc.stdout) == {"+": 1000}
    assert wggo.peers() == want
    assert json.loads(agent.cache.read_text())["revision"] == 1

    # Nothing to do: show prints nothing.
    proc = agent.cmd("show")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""

    # 50 peers get another allowed IP, 50 lose their keepalive, 100 go, 100 come.
    keys = sorted(want)
    for k in keys[:50]:
        want[k] = (want[k][0] | {"fd00:100::%x/128" % (keys.index(k) + 1)}, 25)
    for k in keys[50:100]:
        want[k] = (want[k][0], 0)
    for k in keys[100:200]:
        del want[k]
    want.update(desired_set(2000, 100))
    proc = agent.cmd("apply", str(agent.write("d2.json", 2, want)))
    assert proc.returncode == 0, proc.stderr
    assert diff_lines(proc.stdout) == {"~": 100, "-": 100, "+": 100}
    changed = [l for l in proc.stdout.splitlines() if l.startswith("~ ")]
    line = next(l for l in changed if l.split()[1] == keys[60])
    assert line == f"~ {keys[60]} {next(iter(want[keys[60]][0]))} keepalive=0 " \
                   f"(was {next(iter(want[keys[60]][0]))} keepalive=25)"
    assert wggo.peers() == want

    proc = agent.cmd("apply", str(agent.write("d3.json", 3, {})))
    assert proc.returncode == 0, proc.stderr
    assert diff_lines(proc.stdout) == {"-": 1000}
    assert wggo.peers() == {}
    # The interface's own key and port were never touched.
    assert wggo.dump()[0] == iface_before


def test_show_changes_nothing(agent, wggo):
    first = desired_set(2, 3)
    assert agent.cmd("apply", str(agent.write("d1.json", 1, first))).returncode == 0
    cache = agent.cache.read_text()
    other = desired_set(10, 2)
    proc = agent.cmd("show", str(agent.write("d2.json", 2, other)))
    assert proc.returncode == 0, proc.stderr
    assert diff_lines(proc.stdout) == {"+": 2, "-": 3}
    assert wggo.peers() == first
    assert agent.cache.read_text() == cache
    # Without a file, show compares with the cache.
    wggo.wg("set", wggo.ifname, "peer", next(iter(first)), "remove")
    proc = agent.cmd("show")
    assert proc.stdout.startswith("+ " + next(iter(first)))
    assert len(wggo.peers()) == 2


def test_invalid_and_overlapping_peers_are_refused_and_the_rest_applied(agent, wggo):
    good = desired_set(2, 5)
    a, b = new_key(), new_key()
    bad = {
        ZERO_KEY: (frozenset(["10.101.0.1/32"]), 0),
        LOW_ORDER_KEY: (frozenset(["10.101.0.2/32"]), 0),
        a: (frozenset(["10.102.0.0/24"]), 0),
        b: (frozenset(["10.102.0.7/32"]), 0),
    }
    proc = agent.cmd("apply", str(agent.write("d.json", 1, {**good, **bad})))
    assert proc.returncode == 1
    refused = {l.split()[1]: l.split(" ", 2)[2] for l in proc.stdout.splitlines()
               if l.startswith("! ")}
    assert refused == {
        ZERO_KEY: "invalid public key: key is all zeros",
        LOW_ORDER_KEY: "invalid public key: key is a low-order point of Curve25519, which "
                       "no real WireGuard key is",
        a: "allowed IP 10.102.0.0/24 overlaps 10.102.0.7/32 of another peer",
        b: "allowed IP 10.102.0.7/32 overlaps 10.102.0.0/24 of another peer",
    }
    assert diff_lines(proc.stdout) == {"+": 5, "!": 4}
    assert wggo.peers() == good


def test_static_peer_is_left_alone(agent, wggo):
    static = new_key()
    wggo.wg("set", wggo.ifname, "peer", static, "allowed-ips", "10.200.0.1/32")
    agent.configure(wireguard__static_peers=static)
    want = desired_set(2, 3)
    proc = agent.cmd("apply", str(agent.write("d1.json", 1, want)))
    assert proc.returncode == 0, proc.stderr
    assert wggo.peers() == {**want, static: (frozenset(["10.200.0.1/32"]), 0)}
    # Asking for the static peer, or for its address, is refused.
    want2 = {**want, static: (frozenset(["10.200.0.9/32"]), 0), new_key():
             (frozenset(["10.200.0.0/24"]), 0)}
    proc = agent.cmd("apply", str(agent.write("d2.json", 2, want2)))
    assert proc.returncode == 1
    reasons = [l.split(" ", 2)[2] for l in proc.stdout.splitlines() if l.startswith("! ")]
    assert "public key is a static peer, which is left alone" in reasons
    assert "allowed IP 10.200.0.0/24 overlaps 10.200.0.1/32 of a static peer" in reasons
    assert wggo.peers() == {**want, static: (frozenset(["10.200.0.1/32"]), 0)}


def test_static_peers_file_keeps_many_peers_alone(agent, wggo, tmp_path):
    statics = [new_key() for _ in range(40)]  # far more than fit on a configuration line
    for i, key in enumerate(statics):
        wggo.wg("set", wggo.ifname, "peer", key, "allowed-ips", f"10.201.0.{i + 1}/32")
    listed = tmp_path / "static-peers"
    listed.write_text("# the admins' own devices\n\n" +
                      "".join(f"{k}  # device {i}\n" for i, k in enumerate(statics[1:])))
    agent.configure(wireguard__static_peers=statics[0],
                    wireguard__static_peers_file=str(listed))
    want = desired_set(2, 3)
    proc = agent.cmd("apply", str(agent.write("d1.json", 1, want)))
    assert proc.returncode == 0, proc.stderr
    kept = {k: (frozenset([f"10.201.0.{i + 1}/32"]), 0) for i, k in enumerate(statics)}
    assert wggo.peers() == {**want, **kept}
    # A line that is not a key stops the agent before it touches anything.
    listed.write_text(statics[1] + "\nnot-a-key\n")
    proc = agent.cmd("check-config")
    assert proc.returncode != 0
    assert f"static_peers_file {listed}: line 2: " in proc.stderr, proc.stderr
    proc = agent.cmd("apply", str(agent.write("d2.json", 2, {})))
    assert proc.returncode != 0
    assert wggo.peers() == {**want, **kept}


def refusals(stdout):
    return {l.split()[1]: l.split(" ", 2)[2] for l in stdout.splitlines() if l.startswith("! ")}


def test_allowed_ips_outside_routable_are_refused_alone(agent, wggo):
    good = desired_set(2, 3)  # inside 10.100.0.0/24
    everything, outside, mine, a, b = (new_key() for _ in range(5))
    want = {**good,
            everything: (frozenset(["0.0.0.0/0"]), 0),
            outside: (frozenset(["10.101.0.1/32"]), 0),
            mine: (frozenset(["10.200.0.1/32"]), 0)}
    # The file's networks (the coordinator's pool) and the configured ones count together.
    agent.configure(wireguard__routable="10.200.0.0/16, fd00::/64")
    proc = agent.cmd("apply", str(agent.write("d1.json", 1, want, ["10.100.0.0/24"])))
    assert proc.returncode == 1
    routes = "(10.100.0.0/24, 10.200.0.0/16)"
    assert refusals(proc.stdout) == {
        everything: f"allowed IP 0.0.0.0/0 is outside the networks this server may route {routes}",
        outside: f"allowed IP 10.101.0.1/32 is outside the networks this server may route "
                 f"{routes}",
    }
    # 0.0.0.0/0 took no one down with it.
    assert wggo.peers() == {**good, mine: want[mine]}
    # The cache keeps the file's networks, not the configured ones.
    assert json.loads(agent.cache.read_text())["routable"] == ["10.100.0.0/24"]

    # Two peers that overlap: neither reason names the other's key; the daemon's log does.
    want[a] = (frozenset(["10.100.0.128/25"]), 0)
    want[b] = (frozenset(["10.100.0.130/32"]), 0)
    proc = agent.cmd("apply", str(agent.write("d2.json", 2, want, ["10.100.0.0/24"])))
    assert proc.returncode == 1
    reasons = refusals(proc.stdout)
    assert reasons[a] == "allowed IP 10.100.0.128/25 overlaps 10.100.0.130/32 of another peer"
    assert reasons[b] == "allowed IP 10.100.0.130/32 overlaps 10.100.0.128/25 of another peer"
    agent.start()
    lines = wait_for("four refusals in the log", lambda: (lambda r: len(r) >= 4 and r)(
        [m for m in agent.messages() if m.get("msg") == "Peer refused, skipping it"]))
    by_peer = {m["peer"]: m for m in lines}
    assert by_peer[a]["other_peer"] == b and by_peer[b]["other_peer"] == a
    assert "other_peer" not in by_peer[everything]
    assert by_peer[a]["level"] == "warning"

    # A reload that widens the configured networks lets the outside peer in.
    agent.configure(wireguard__routable="10.200.0.0/16, 10.101.0.0/16")
    agent.proc.send_signal(signal.SIGHUP)
    wait_for("the newly routable peer", lambda: outside in wggo.peers())
    assert wggo.peers() == {**good, mine: want[mine], outside: want[outside]}
    code, _ = agent.stop()
    assert code == 0


def test_daemon_repairs_drift_and_stops_on_sigterm(agent, wggo):
    want = desired_set(2, 20)
    assert agent.cmd("apply", str(agent.write("d1.json", 1, want))).returncode == 0
    agent.start()
    agent.wait_log("readiness", lambda m: m.get("msg") == "Ready")
    keys = sorted(want)
    extra = new_key()
    wggo.wg("set", wggo.ifname, "peer", extra, "allowed-ips", "10.250.0.1/32")
    wggo.wg("set", wggo.ifname, "peer", keys[0], "remove")
    wggo.wg("set", wggo.ifname, "peer", keys[1], "allowed-ips", "10.250.0.2/32")
    wait_for("the drift to be repaired", lambda: wggo.peers() == want)
    lines = wait_for("three drift lines", lambda: (lambda d: len(d) >= 3 and d)(
        [m for m in agent.messages() if m.get("msg", "").startswith("Drift repaired")]))
    drift = {m["peer"]: m["drift"] for m in lines}
    assert drift == {extra: "added", keys[0]: "removed", keys[1]: "changed"}
    code, took = agent.stop(signal.SIGTERM)
    assert code == 0
    assert took < 1.0
    assert [m["msg"] for m in agent.messages()][-2:] == ["Stopping", "Stopped"]
    # What the daemon repaired it left in place.
    assert wggo.peers() == want


def test_restart_from_cache_without_coordinator(agent, wggo, tmp_path):
    want = desired_set(2, 200)
    assert agent.cmd("apply", str(agent.write("d1.json", 1, want))).returncode == 0
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    try:
        for round_ in range(2):
            # wireguard-go comes back empty and without a key, as after a reboot.
            wggo.restart_empty()
            assert wggo.peers() == {}
            agent.start(env=dict(os.environ, NOTIFY_SOCKET=notify_path))
            assert notify.recv(64) == b"READY=1"
            # The cache was applied before readiness was announced.
            assert wggo.peers() == want
            assert wggo.dump()[0][1] != "(none)"  # the interface got a key back
            if round_ == 0:
                agent.kill()  # no clean stop: the cache alone must do
            else:
                code, took = agent.stop(signal.SIGINT)
                assert code == 0 and took < 1.0
    finally:
        notify.close()
    restored = [m for m in agent.messages() if m.get("msg") == "Loaded the desired-state cache"]
    assert len(restored) == 2 and restored[0]["peers"] == "200"


def test_sighup_reloads_and_takes_a_newer_cache(agent, wggo):
    first = desired_set(2, 4)
    assert agent.cmd("apply", str(agent.write("d1.json", 1, first))).returncode == 0
    agent.start()
    agent.wait_log("readiness", lambda m: m.get("msg") == "Ready")
    # A newer set written to the cache (here by apply) is taken on SIGHUP, and so is a
    # new log level; the interface name waits for a restart.
    second = desired_set(10, 6)
    assert agent.cmd("apply", str(agent.write("d2.json", 2, second))).returncode == 0
    agent.configure(log__level="debug", wireguard__interface="wgother0")
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log("the reload", lambda m: m.get("msg") == "Configuration reloaded")
    agent.wait_log("the warning", lambda m: m.get("msg") ==
                   "Option [wireguard] interface changed, ignoring until restart")
    agent.wait_log("the new revision",
                   lambda m: m.get("msg") == "New desired state" and m["revision"] == "2")
    agent.wait_log("a debug line", lambda m: m.get("level") == "debug")
    wait_for("the second set", lambda: wggo.peers() == second)
    code, _ = agent.stop()
    assert code == 0


def test_interface_absent_is_retried(agent, wggo):
    want = desired_set(2, 3)
    assert agent.cmd("apply", str(agent.write("d1.json", 1, want))).returncode == 0
    wggo.stop()
    agent.start()
    agent.wait_log("the warning", lambda m: m.get("level") == "warning" and
                   "nothing listens on" in m.get("msg", ""))
    # The daemon is up and waits; once wireguard-go is there, the peers follow.
    wggo.start()
    wait_for("the peers", lambda: wggo.peers() == want)
    code, took = agent.stop()
    assert code == 0 and took < 1.0


def test_sigterm_during_a_big_restore_exits_within_a_second(agent, wggo):
    want = desired_set(2, 10000)
    assert agent.cmd("apply", str(agent.write("d1.json", 1, want))).returncode == 0
    wggo.restart_empty()
    agent.start()
    # The restore runs on the thread pool in chunks; stop it while it is under way.
    wait_for("the restore to start", lambda: len(wggo.peers()) > 0, timeout=30)
    code, took = agent.stop(signal.SIGTERM)
    assert code == 0
    assert took < 1.0
    assert 0 < len(wggo.peers()) < len(want)
    assert "Ready" not in [m.get("msg") for m in agent.messages()]
    # The next start finishes the job from the cache.
    agent.start()
    agent.wait_log("readiness", lambda m: m.get("msg") == "Ready", timeout=60)
    assert wggo.peers() == want
    # Thousands of drifted peers: twenty lines and a count, not thousands of lines.
    msgs = [m.get("msg", "") for m in agent.messages()]
    assert msgs.count("Drift repaired: peer changed outside the agent") == 20
    assert any(m.startswith("Drift repaired on ") and m.endswith(" more peers, not listed")
               for m in msgs)
    code, took = agent.stop(signal.SIGTERM)
    assert code == 0 and took < 1.0
