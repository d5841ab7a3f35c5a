#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Measures the agent's full apply of N peers against `wg setconf` on wireguard-go.

Usage (as root): tests/bench/agent_userspace.py [BUILD_DIR] [--peers N] [--rounds R]
                                                [--keepalive S]

Each round starts from a fresh, empty wireguard-go in a private namespace and times
`wg setconf` with N peers, then restarts it empty and times `wgfleet-agent apply` with
the same peers (which reads the interface, diffs, sets, re-reads to verify and writes
its cache); rounds alternate which of the two goes first, and each round's ratio and
the load average are printed. wireguard-go holds at most 65,536 peers (MaxPeers in its
device/constants.go). It also reports the agent's peak RSS (VmHWM) for the one-shot apply and for
the daemon holding the N peers after a few passes. Numbers only: nothing is asserted.
--keepalive S is every peer's PersistentKeepalive (default 25): on wireguard-go each
peer with one and no endpoint starts handshake retries as it is added, about half a
core at 10,000 peers, which the agent's verifying read (after its set) runs beside
and `wg setconf` (done when its set is) does not; 0 leaves them out.
"""
import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SOCKET_DIR = "/var/run/wireguard"


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def wait_socket(path, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{path} did not appear")


class WgGo:
    def __init__(self, ns, ifname, key_file, log):
        self.ns, self.ifname, self.key_file, self.log = ns, ifname, key_file, log
        self.sock = os.path.join(SOCKET_DIR, ifname + ".sock")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "wireguard-go", "-f",
                                      self.ifname], stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        wait_socket(self.sock)
        self.wg("set", self.ifname, "private-key", self.key_file, "listen-port", "51820")
        # Up, as in production (the agent sets it up too): wireguard-go starts each peer
        # it is given on an interface that is up, which costs it more than on one down.
        sh(["ip", "-n", self.ns, "link", "set", self.ifname, "up"])

    def stop(self):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
            self.proc = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def wg(self, *args):
        return sh(["ip", "netns", "exec", self.ns, "wg"] + list(args)).stdout

    def n_peers(self):
        return len(self.wg("show", self.ifname, "dump").splitlines()) - 1


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build/ci-gcc")
    ap.add_argument("--peers", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keepalive", type=int, default=25)
    args = ap.parse_args()
    agent = os.path.abspath(os.path.join(args.build, "agent", "wgfleet-agent"))
    tmp = tempfile.mkdtemp(prefix="wgf-bench-")
    tag = secrets.token_hex(3)
    ns, ifname = f"wgf-b{tag}", f"wgb{tag}"
    log = open(os.path.join(tmp, "wireguard-go.log"), "ab")
    key_file = os.path.join(tmp, "if.key")
    with open(key_file, "w") as f:
        f.write(sh(["wg", "genkey"]).stdout)
    os.chmod(key_file, 0o600)

    peers = [(base64.b64encode(secrets.token_bytes(32)).decode(),
              f"10.{100 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32") for i in range(args.peers)]
    setconf = os.path.join(tmp, "wg.conf")
    with open(setconf, "w") as f:
        f.write(f"[Interface]\nPrivateKey = {open(key_file).read().strip()}\n"
                "ListenPort = 51820\n")
        for k, ip in peers:
            f.write(f"\n[Peer]\nPublicKey = {k}\nAllowedIPs = {ip}\n"
                    f"PersistentKeepalive = {args.keepalive}\n")
    desired = os.path.join(tmp, "desired.json")
    with open(desired, "w") as f:
        json.dump({"revision": 1, "peers": [{"public_key": k, "allowed_ips": [ip],
                                             "persistent_keepalive": args.keepalive}
                                            for k, ip in peers]}, f)
    state = os.path.join(tmp, "state")
    conf = os.path.join(tmp, "agent.conf")
    with open(conf, "w") as f:
        f.write(f"[agent]\nstate_directory = {state}\nreconcile_interval = 2s\n"
                f"[wireguard]\ninterface = {ifname}\nbackend = userspace\n"
                "[monitor]\ninterval = 1s\n[log]\nlevel = notice\n")

    sh(["ip", "netns", "add", ns])
    w = WgGo(ns, ifname, key_file, log)
    t_setconf, t_agent, hwm_apply = [], [], []

    def time_setconf():
        w.start()
        t0 = time.monotonic()
        w.wg("setconf", ifname, setconf)
        t_setconf.append(time.monotonic() - t0)
        assert w.n_peers() == args.peers
        w.stop()

    def time_agent():
        w.start()
        shutil.rmtree(state, ignore_errors=True)
        t0 = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "ip", "netns", "exec", ns,
                               agent, "--config", conf, "apply", desired],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t_agent.append(time.monotonic() - t0)
        if proc.returncode != 0:
            sys.exit(f"apply failed:\n{proc.stderr}")
        hwm_apply.append(int(proc.stderr.strip().splitlines()[-1]))
        assert w.n_peers() == args.peers
        w.stop()

    try:
        for i in range(args.rounds):
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            for step in ((time_setconf, time_agent) if i % 2 == 0 else
                         (time_agent, time_setconf)):
                step()
            print(f"round {i + 1}: {'setconf first' if i % 2 == 0 else 'agent first  '} "
                  f"setconf {t_setconf[-1]:.3f} s, agent {t_agent[-1]:.3f} s, "
                  f"ratio {t_agent[-1] / t_setconf[-1]:.2f}, load {load}", flush=True)

        # The daemon holding the peers: restore from the cache, a few passes and reads.
        w.start()
        d = subprocess.Popen(["ip", "netns", "exec", ns, agent, "--config", conf, "run",
                              "--foreground"], stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while w.n_peers() != args.peers and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(7)  # three reconcile passes, seven monitor reads
        hwm_daemon = vm_hwm_kib(d.pid)
        with open(f"/proc/{d.pid}/status") as f:
            rss_daemon = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=30)
        t_stop = time.monotonic() - t0
        w.stop()
    finally:
        w.stop()
        sh(["ip", "netns", "del", ns])
        shutil.rmtree(tmp, ignore_errors=True)

    med_s, med_a = statistics.median(t_setconf), statistics.median(t_agent)
    print(f"peers                    {args.peers}")
    print("wg setconf (s)           " + " ".join(f"{t:.3f}" for t in t_setconf))
    print("wgfleet-agent apply (s)  " + " ".join(f"{t:.3f}" for t in t_agent))
    ratios = sorted(a / s for a, s in zip(t_agent, t_setconf))
    print(f"ratio agent/setconf      {med_a / med_s:.2f} (medians); per round "
          + " ".join(f"{r:.2f}" for r in ratios) + f", median {statistics.median(ratios):.2f}")
    print("apply VmHWM (KiB)        " + " ".join(str(h) for h in hwm_apply))
    print(f"daemon VmHWM (KiB)       {hwm_daemon}")
    print(f"daemon VmRSS (KiB)       {rss_daemon}")
    print(f"daemon SIGTERM exit (s)  {t_stop:.3f}")


if __name__ == "__main__":
    main()
