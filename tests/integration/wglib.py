# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""WireGuard helpers for the integration tests: wireguard-go in a namespace, waiting.

A WireguardGo runs in a network namespace of its own (wgf-XXXXXXXX). Its UAPI socket
lives in the host's /var/run/wireguard (namespaces share the file system), so interface
names are unique per use. Every wait polls with a deadline.
"""
import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

from conftest import run

WG_GO = shutil.which("wireguard-go")
WG = shutil.which("wg")
SOCKET_DIR = "/var/run/wireguard"


def wait_for(what, predicate, timeout=10.0, interval=0.02):
    """Polls predicate until it returns something true; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def new_key():
    """A random public key: any 32 bytes outside the low-order list are one."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


class WireguardGo:
    """A wireguard-go in a namespace of its own."""

    def __init__(self, tmp_path, name="wg"):
        tag = secrets.token_hex(4)
        self.ns = f"wgf-{tag}"
        self.ifname = f"wgt{tag}"
        self.sock = os.path.join(SOCKET_DIR, self.ifname + ".sock")
        self.log = open(tmp_path / f"{name}-wireguard-go.log", "ab")
        self.proc = None
        self.key_file = tmp_path / f"{name}-interface.key"
        self.key_file.write_text(run([WG, "genkey"], check=True).stdout)
        self.key_file.chmod(0o600)
        run(["ip", "netns", "add", self.ns], check=True)

    def start(self, configure=True):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, WG_GO, "-f", self.ifname],
            stdout=self.log, stderr=self.log, start_new_session=True)
        wait_for("the UAPI socket", lambda: self.socket_answers(), timeout=10)
        if configure:
            self.wg("set", self.ifname, "private-key", str(self.key_file),
                    "listen-port", "51820")

    def socket_answers(self):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(self.sock)
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def restart_empty(self):
        """Restarts wireguard-go: it comes back with no key and no peers."""
        self.stop()
        self.start(configure=False)

    def close(self):
        self.stop()
        run(["ip", "netns", "del", self.ns])
        self.log.close()

    def wg(self, *args):
        return run(["ip", "netns", "exec", self.ns, WG] + list(args), check=True).stdout

    def dump(self):
        """(interface line, {public key: (frozenset of allowed IPs, keepalive)})."""
        lines = self.wg("show", self.ifname, "dump").splitlines()
        peers = {}
        for line in lines[1:]:
            f = line.split("\t")
            ips = frozenset() if f[3] == "(none)" else frozenset(f[3].split(","))
            peers[f[0]] = (ips, 0 if f[7] == "off" else int(f[7]))
        return lines[0].split("\t"), peers

    def peers(self):
        return self.dump()[1]
