# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The seed's whole story, end to end, on real parts.

PostgreSQL, the coordinator, the agent on a "VPS" (wireguard-go in a network
namespace) and a simulated router (a second wireguard-go in a second namespace, joined
to the first by a veth pair and configured from the setup text the API hands out).
The agent talks to the coordinator over an ipc:// socket, which crosses namespaces
through the file system. Traffic stays inside the namespaces and loopback.
"""
import base64
import os
import re
import secrets
import signal
import subprocess
import time

import pytest

from conftest import Coordinator, binary, log_lines, run
from wglib import WG, WG_GO, WireguardGo, wait_for

pytestmark = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces)")

POOL = "10.100.0.0/24"
GATEWAY = "10.100.0.1"


class World:
    """Coordinator(s), a VPS with its agent, and a router, wired together."""

    def __init__(self, tmp_path, conninfo, channel_extra="", chan=None, pool=POOL,
                 poll_wait="20s"):
        """chan: the channel's listen URL (default an ipc:// socket); a tcp:// one with
        port 0 gets the port the kernel picks, which the agent then dials. pool: the
        server's address pool. poll_wait: the coordinator's [channel] poll_wait."""
        self.tmp = tmp_path
        self.conninfo = conninfo
        self.coord = Coordinator(tmp_path, conninfo,
                                 channel_listen=chan or f"ipc://{tmp_path}/channel.sock",
                                 extra=f"[channel]\npoll_wait = {poll_wait}\n" + channel_extra)
        self.coord.admin_key = self.coord.create_admin_key()
        self.coord.start()
        self.chan = self.coord.channel_url
        self.vps = WireguardGo(tmp_path, "vps")
        self.rtr = WireguardGo(tmp_path, "rtr")
        n = secrets.randbelow(200) + 20
        self.vps_ip, self.rtr_ip = f"172.30.{n}.1", f"172.30.{n}.2"
        va, vb = f"va{secrets.token_hex(3)}", f"vb{secrets.token_hex(3)}"
        run(["ip", "link", "add", va, "type", "veth", "peer", "name", vb], check=True)
        run(["ip", "link", "set", va, "netns", self.vps.ns], check=True)
        run(["ip", "link", "set", vb, "netns", self.rtr.ns], check=True)
        for w, dev, ip in ((self.vps, va, self.vps_ip), (self.rtr, vb, self.rtr_ip)):
            ns = ["ip", "netns", "exec", w.ns]
            run(ns + ["ip", "addr", "add", f"{ip}/24", "dev", dev], check=True)
            run(ns + ["ip", "link", "set", dev, "up"], check=True)
            run(ns + ["ip", "link", "set", "lo", "up"], check=True)
        self.vps.start(configure=False)
        self.rtr.start(configure=False)
        self.agent_proc = None
        self.agent_log = tmp_path / "agent.log"
        self.state = tmp_path / "agent-state"
        self.agent_conf = tmp_path / "agent.conf"
        self.write_agent_conf(self.chan)
        self.agent_key = run([binary("wgfleet-agent"), "--config", str(self.agent_conf), "init"],
                             check=True).stdout.strip()
        status, _, body = self.api("POST", "/v1/servers", self.coord.admin_key, {
            "name": "vps1", "endpoint": f"{self.vps_ip}:51820", "pool": pool,
            "gateway": GATEWAY, "agent_key": self.agent_key})
        assert status == 201, body
        assert self.api("POST", "/v1/tenants", self.coord.admin_key,
                        {"slug": "acme", "name": "Acme"})[0] == 201
        self.key = self.api("POST", "/v1/tenants/acme/keys", self.coord.admin_key, {})[2]["key"]

    def write_agent_conf(self, urls):
        self.agent_conf.write_text(
            f"[agent]\nstate_directory = {self.state}\nreconcile_interval = 2s\n"
            f"[wireguard]\ninterface = {self.vps.ifname}\nbackend = userspace\n"
            f"listen_port = 51820\naddress = {GATEWAY}/24\n"
            f"[monitor]\ninterval = 300ms\n"
            f"[coordinator]\nurls = {urls}\npublic_key = {self.coord.channel_public_key}\n"
            f"server = vps1\nresync_interval = 2s\nrequest_timeout = 3s\n")

    def api(self, method, path, key=None, body=None, coord=None):
        return (coord or self.coord).request(method, path, key, body)

    def start_agent(self):
        self.log = open(self.agent_log, "ab")
        self.agent_proc = subprocess.Popen(
            ["ip", "netns", "exec", self.vps.ns, binary("wgfleet-agent"), "--config",
             str(self.agent_conf), "run", "--foreground"],
            stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)

    def stop_agent(self, sig=signal.SIGTERM):
        if self.agent_proc and self.agent_proc.poll() is None:
            os.killpg(self.agent_proc.pid, sig)
            self.agent_proc.wait(timeout=10)
            self.log.close()
        self.agent_proc = None

    def close(self):
        self.stop_agent(signal.SIGKILL)
        self.coord.stop()
        self.vps.close()
        self.rtr.close()

    def vps_peers(self):
        return set(self.vps.wg("show", self.vps.ifname, "peers").split())

    def server(self):
        items = self.api("GET", "/v1/servers", self.coord.admin_key)[2]["items"]
        return next(s for s in items if s["name"] == "vps1")

    def router(self, rid):
        return self.api("GET", f"/v1/routers/{rid}", self.key)[2]

    def configure_router(self, wg_quick):
        """Sets the router's wireguard-go up from the wg-quick text, with its own key."""
        conf = dict(re.findall(r"^(\w+) = (.+)$", wg_quick, re.M))
        private = run([WG, "genkey"], check=True).stdout.strip()
        key_file = self.tmp / f"router-{secrets.token_hex(2)}.key"
        key_file.write_text(private + "\n")
        key_file.chmod(0o600)
        ns = ["ip", "netns", "exec", self.rtr.ns]
        run(ns + ["ip", "addr", "flush", "dev", self.rtr.ifname], check=True)
        run(ns + ["ip", "addr", "add", conf["Address"], "dev", self.rtr.ifname], check=True)
        run(ns + ["ip", "link", "set", self.rtr.ifname, "up"], check=True)
        for old in self.rtr.wg("show", self.rtr.ifname, "peers").split():
            self.rtr.wg("set", self.rtr.ifname, "peer", old, "remove")
        self.rtr.wg("set", self.rtr.ifname, "private-key", str(key_file), "peer",
                    conf["PublicKey"], "endpoint", conf["Endpoint"], "allowed-ips",
                    conf["AllowedIPs"], "persistent-keepalive", conf["PersistentKeepalive"])
        return run([WG, "pubkey"], input=private, check=True).stdout.strip()

    def ping_gateway(self):
        return run(["ip", "netns", "exec", self.rtr.ns, "ping", "-c", "1", "-W", "1",
                    GATEWAY]).returncode == 0


@pytest.fixture
def world(tmp_path, migrated_db):
    w = World(tmp_path, migrated_db[1])
    try:
        yield w
    finally:
        w.close()


def reserve(world):
    status, _, r = world.api("POST", "/v1/routers", world.key, {"name": "shop-1"})
    assert status == 201, r
    return r


def keyed_router_via_api(world):
    """A router reserved and given a fresh key through the API: (id, key)."""
    r = reserve(world)
    k = base64.b64encode(os.urandom(32)).decode()
    status, _, body = world.api("PUT", f"/v1/routers/{r['id']}/public-key", world.key,
                                {"public_key": k})
    assert status == 200, body
    return r["id"], k


def test_reservation_to_connected_and_back(world):
    world.start_agent()
    # The agent creates nothing by hand: it gives the interface its key and address,
    # and reports its public key and port, which the setup text then carries.
    server = wait_for("the server's WireGuard key", lambda: world.server()["public_key"] and
                      world.server(), timeout=15)
    assert server["listen_port"] == 51820
    r = reserve(world)
    assert r["vpn_status"] == "pending" and r["vpn_ip"] == "10.100.0.2"
    text = world.api("GET", f"/v1/routers/{r['id']}/config?format=wg-quick", world.key)[2]
    assert f"PublicKey = {server['public_key']}" in text
    router_key = world.configure_router(text)

    submitted = time.monotonic()
    status, _, body = world.api("PUT", f"/v1/routers/{r['id']}/public-key", world.key,
                                {"public_key": router_key})
    assert status == 200 and body["vpn_status"] == "configured", body
    wait_for("the peer on the VPS", lambda: router_key in world.vps_peers(), timeout=5,
             interval=0.005)
    propagation = time.monotonic() - submitted
    assert propagation < 2.0, propagation
    allowed = world.vps.wg("show", world.vps.ifname, "allowed-ips").split()
    assert allowed == [router_key, "10.100.0.2/32"]

    wait_for("a ping through the tunnel", world.ping_gateway, timeout=15, interval=0.2)
    routed = wait_for("connected", lambda: world.router(r["id"])["vpn_status"] == "connected"
                      and world.router(r["id"]), timeout=15)
    assert routed["last_handshake_at"] and routed["endpoint"].startswith(world.rtr_ip)
    audit = world.api("GET", f"/v1/audit?router={r['id']}", world.key)[2]["items"]
    assert [e["action"] for e in audit] == ["router.reserved", "router.key_set",
                                            "router.vps_ready", "router.connected"]

    # Rotation: the router makes a new key; the old peer goes, the new one comes.
    new_key = world.configure_router(text)
    assert world.api("PUT", f"/v1/routers/{r['id']}/public-key", world.key,
                     {"public_key": new_key})[0] == 200
    wait_for("the rotated peer", lambda: world.vps_peers() == {new_key}, timeout=5)
    wait_for("connected again", lambda: world.router(r["id"])["vpn_status"] == "connected",
             timeout=20)

    # DELETE: the peer is gone from the interface.
    assert world.api("DELETE", f"/v1/routers/{r['id']}", world.key)[0] == 204
    wait_for("the peer removed", lambda: world.vps_peers() == set(), timeout=5)


def test_agent_restart_coordinator_restart_and_lost_hint(world, pg, migrated_db):
    world.start_agent()
    wait_for("the server's key", lambda: world.server()["public_key"], timeout=15)
    r = reserve(world)
    k1 = base64.b64encode(os.urandom(32)).decode()
    assert world.api("PUT", f"/v1/routers/{r['id']}/public-key", world.key,
                     {"public_key": k1})[0] == 200
    wait_for("peer 1", lambda: k1 in world.vps_peers(), timeout=5)

    # The agent killed and restarted: the peer stays, and it picks up where it was.
    world.stop_agent(signal.SIGKILL)
    assert k1 in world.vps_peers()
    world.start_agent()
    r2 = reserve(world)
    k2 = base64.b64encode(os.urandom(32)).decode()
    assert world.api("PUT", f"/v1/routers/{r2['id']}/public-key", world.key,
                     {"public_key": k2})[0] == 200
    wait_for("peer 2 after the agent's restart", lambda: {k1, k2} <= world.vps_peers(),
             timeout=10)

    # The coordinator restarted: the agent redials, and a new change still arrives.
    world.coord.stop()
    assert {k1, k2} <= world.vps_peers()  # losing the coordinator removes nothing
    world.coord.start()
    r3 = reserve(world)
    k3 = base64.b64encode(os.urandom(32)).decode()
    assert world.api("PUT", f"/v1/routers/{r3['id']}/public-key", world.key,
                     {"public_key": k3})[0] == 200
    wait_for("peer 3 after the coordinator's restart", lambda: k3 in world.vps_peers(),
             timeout=15)

    # A lost hint: a change committed without NOTIFY still reaches the agent, through
    # the level-triggered paths (the periodic resync every 2 s, or the revision in the
    # answer to its next report), within a few seconds.
    name, _ = migrated_db
    r4 = reserve(world)
    k4 = os.urandom(32).hex()
    pg.psql("BEGIN;"
            "UPDATE servers SET revision = revision + 1 WHERE name = 'vps1';"
            f"UPDATE routers SET public_key = '\\x{k4}', status = 'configured', "
            f"configured_at = now(), persistent_keepalive = 25, key_revision = (SELECT "
            f"revision FROM servers WHERE name = 'vps1') WHERE id = '{r4['id']}';"
            "INSERT INTO changes (server_id, revision, op, router_id, public_key) "
            "SELECT s.id, s.revision, 'upsert', r.id, r.public_key FROM servers s, routers r "
            f"WHERE s.name = 'vps1' AND r.id = '{r4['id']}';"
            "COMMIT", dbname=name)
    k4_b64 = base64.b64encode(bytes.fromhex(k4)).decode()
    start = time.monotonic()
    wait_for("peer 4 without a hint", lambda: k4_b64 in world.vps_peers(), timeout=10)
    assert time.monotonic() - start <= 6.0
    wait_for("vps_ready from the agent's report",
             lambda: world.router(r4["id"])["vpn_status"] == "vps_ready", timeout=10)


def test_change_through_another_coordinator_reaches_the_agent(world):
    # A second coordinator on the same database; the agent only talks to the first.
    other = Coordinator(world.tmp, world.conninfo,
                        channel_listen=f"ipc://{world.tmp}/other.sock")
    other.start()
    try:
        world.start_agent()
        wait_for("the server's key", lambda: world.server()["public_key"], timeout=15)
        status, _, r = other.request("POST", "/v1/routers", world.key, {})
        assert status == 201, r
        k = base64.b64encode(os.urandom(32)).decode()
        start = time.monotonic()
        assert other.request("PUT", f"/v1/routers/{r['id']}/public-key", world.key,
                             {"public_key": k})[0] == 200
        wait_for("the peer, through the first coordinator",
                 lambda: k in world.vps_peers(), timeout=5, interval=0.005)
        # Faster than the agent's 2 s resync: the hint came through LISTEN/NOTIFY.
        assert time.monotonic() - start < 1.5
        hints = [line for line in log_lines((world.tmp / "agent.log").read_text())
                 if line.get("msg") == "New desired state"]
        assert hints
    finally:
        other.stop()
