# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Moving a live wg0 to wgfleet (issue 16, items 3 and 4), on real parts.

A "VPS" (wireguard-go in a namespace) set up by hand as the seed's admin did: a key, a
port, an address and 200 peers from `wg set`. Two of them are real routers (wireguard-go
in namespaces of their own, joined to the VPS by veth pairs) with traffic. The portal's
file is imported (five lines conflict, five different ways), then the agent starts in
adopt mode: it removes nothing, the routers reach `connected`, the five conflicting peers
stay and are listed as unknown, and releasing one removes it.
"""
import base64
import json
import os
import secrets
import signal
import subprocess

import pytest

from conftest import Coordinator, binary, run
from test_sql_api import api
from wglib import WG, WG_GO, WireguardGo, wait_for

assert api  # a fixture, used by name

pytestmark = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces)")

GATEWAY = "10.100.0.1"
N_PEERS = 200


def veth(a, b, a_ip, b_ip):
    """A veth pair between the namespaces of a and b, with a /24 of its own."""
    va, vb = f"va{secrets.token_hex(3)}", f"vb{secrets.token_hex(3)}"
    run(["ip", "link", "add", va, "type", "veth", "peer", "name", vb], check=True)
    for w, dev, ip in ((a, va, a_ip), (b, vb, b_ip)):
        run(["ip", "link", "set", dev, "netns", w.ns], check=True)
        ns = ["ip", "netns", "exec", w.ns]
        run(ns + ["ip", "addr", "add", f"{ip}/24", "dev", dev], check=True)
        run(ns + ["ip", "link", "set", dev, "up"], check=True)
        run(ns + ["ip", "link", "set", "lo", "up"], check=True)


class Migration:
    """The coordinator, the hand-made VPS with its 200 peers, two routers, the agent."""

    def __init__(self, tmp_path, conninfo):
        self.tmp = tmp_path
        self.conninfo = conninfo
        self.coord = Coordinator(tmp_path, conninfo,
                                 channel_listen=f"ipc://{tmp_path}/channel.sock")
        self.admin = self.coord.create_admin_key()
        self.coord.start()
        self.vps = WireguardGo(tmp_path, "vps")
        self.routers = [WireguardGo(tmp_path, f"rtr{i}") for i in range(2)]
        self.agent_proc = None
        n = secrets.randbelow(100) + 20
        self.vps_ips = []
        for i, rtr in enumerate(self.routers):
            self.vps_ips.append(f"172.30.{n + i}.1")
            veth(self.vps, rtr, f"172.30.{n + i}.1", f"172.30.{n + i}.2")
        self.vps.start()  # a key and port 51820, as the admin set it up
        self.vps_ns = ["ip", "netns", "exec", self.vps.ns]
        run(self.vps_ns + ["ip", "addr", "add", f"{GATEWAY}/24", "dev", self.vps.ifname],
            check=True)
        run(self.vps_ns + ["ip", "link", "set", self.vps.ifname, "up"], check=True)
        self.vps_key = self.vps.wg("show", self.vps.ifname, "public-key").strip()

    def hand_made_peers(self):
        """200 peers as the admin added them: the two routers at .2 and .3, the rest
        random keys at .4 to .201. Returns {key: address}."""
        peers = {}
        for i, rtr in enumerate(self.routers):
            peers[self.start_router(rtr, i)] = f"10.100.0.{2 + i}"
        while len(peers) < N_PEERS:
            peers[base64.b64encode(secrets.token_bytes(32)).decode()] = \
                f"10.100.0.{2 + len(peers)}"
        items = list(peers.items())
        for at in range(0, len(items), 50):
            args = []
            for key, ip in items[at:at + 50]:
                args += ["peer", key, "allowed-ips", f"{ip}/32"]
            self.vps.wg("set", self.vps.ifname, *args)
        return peers

    def start_router(self, rtr, i):
        """A router's wireguard-go with its own key, pointed at the VPS; its key."""
        rtr.start(configure=False)
        private = run([WG, "genkey"], check=True).stdout.strip()
        key_file = self.tmp / f"router{i}.key"
        key_file.write_text(private + "\n")
        key_file.chmod(0o600)
        ns = ["ip", "netns", "exec", rtr.ns]
        run(ns + ["ip", "addr", "add", f"10.100.0.{2 + i}/24", "dev", rtr.ifname], check=True)
        run(ns + ["ip", "link", "set", rtr.ifname, "up"], check=True)
        rtr.wg("set", rtr.ifname, "private-key", str(key_file), "peer", self.vps_key,
               "endpoint", f"{self.vps_ips[i]}:51820", "allowed-ips", f"{GATEWAY}/32",
               "persistent-keepalive", "1")
        return run([WG, "pubkey"], input=private, check=True).stdout.strip()

    def ping(self, i):
        return run(["ip", "netns", "exec", self.routers[i].ns, "ping", "-c", "1", "-W", "1",
                    GATEWAY]).returncode == 0

    def interface(self):
        """{key: frozenset of allowed IPs}, as wg show dump reads the VPS."""
        return {k: ips for k, (ips, _) in self.vps.peers().items()}

    def api(self, method, path, body=None, status=200):
        got, _, reply = self.coord.request(method, path, self.admin, body)
        assert got == status, (method, path, got, reply)
        return reply

    def init_agent(self):
        """Writes the agent's configuration and makes its signing key; the key."""
        conf = self.conf = self.tmp / "agent.conf"
        conf.write_text(
            f"[agent]\nstate_directory = {self.tmp}/agent-state\nreconcile_interval = 1s\n"
            f"[wireguard]\ninterface = {self.vps.ifname}\nbackend = userspace\n"
            f"adopt = true\n"
            f"[monitor]\ninterval = 300ms\n"
            f"[metrics]\nlisten = 127.0.0.1:9470\n"
            f"[coordinator]\nurls = {self.coord.channel_url}\n"
            f"public_key = {self.coord.channel_public_key}\n"
            f"server = vps1\nresync_interval = 2s\nrequest_timeout = 3s\n")
        return run([binary("wgfleet-agent"), "--config", str(conf), "init"],
                   check=True).stdout.strip()

    def db(self, sql):
        return run(["psql", self.conninfo, "-X", "-Atq", "-c", sql], check=True).stdout.strip()

    def adopt_notices(self):
        """How many times the agent said how many unknown peers it keeps."""
        with open(self.tmp / "agent.log") as f:
            return f.read().count('msg="Unknown peers kept (adopt mode)"')

    def stop_agent(self):
        os.killpg(self.agent_proc.pid, signal.SIGTERM)
        self.agent_proc.wait(timeout=10)
        self.agent_log.close()

    def start_agent(self):
        self.agent_log = open(self.tmp / "agent.log", "ab")
        self.agent_proc = subprocess.Popen(
            ["ip", "netns", "exec", self.vps.ns, binary("wgfleet-agent"), "--config",
             str(self.conf), "run", "--foreground"],
            stdout=subprocess.DEVNULL, stderr=self.agent_log, start_new_session=True)

    def close(self):
        if self.agent_proc and self.agent_proc.poll() is None:
            os.killpg(self.agent_proc.pid, signal.SIGKILL)
            self.agent_proc.wait(timeout=10)
            self.agent_log.close()
        self.coord.stop()
        self.vps.close()
        for rtr in self.routers:
            rtr.close()


@pytest.fixture
def migration(tmp_path, migrated_db):
    m = Migration(tmp_path, migrated_db[1])
    try:
        yield m
    finally:
        m.close()


def ctl(m, *args):
    env = dict(os.environ, WGFLEET_URL=f"http://127.0.0.1:{m.coord.port}", NO_COLOR="1")
    key_file = m.tmp / "ctl.key"
    if not key_file.exists():
        key_file.write_text(m.admin + "\n")
        key_file.chmod(0o600)
    return run([binary("wgfleetctl"), "--key-file", str(key_file), *args], env=env)


def test_a_hand_made_wg0_moves_to_wgfleet_in_adopt_mode(migration):
    m = migration
    peers = m.hand_made_peers()
    before = m.interface()
    assert len(before) == N_PEERS
    assert before == {k: frozenset({f"{ip}/32"}) for k, ip in peers.items()}
    # The routers talk to the VPS as they did before wgfleet.
    for i in range(2):
        wait_for(f"router {i} to reach the VPS", lambda i=i: m.ping(i), timeout=20)

    # The server as the admin registers it, with the agent's key.
    agent_key = m.init_agent()
    m.api("POST", "/v1/servers", {"name": "vps1", "endpoint": f"{m.vps_ips[0]}:51820",
                                  "pool": "10.100.0.0/24", "gateway": GATEWAY,
                                  "agent_key": agent_key}, status=201)
    m.api("POST", "/v1/tenants", {"slug": "acme", "name": "Acme", "router_quota": 1000},
          status=201)
    m.api("POST", "/v1/tenants", {"slug": "globex", "name": "Globex", "router_quota": 0},
          status=201)

    # The portal's file: every peer, five of them wrong in five ways (line numbers from
    # 1; line 14 repeats line 6's address, and the earlier line keeps it).
    keys = list(peers)
    lines = [{"tenant": "acme", "address": peers[k], "public_key": k} for k in keys]
    wrong = {9: {"tenant": "nobody"}, 10: {"address": "10.101.0.11"},
             11: {"address": GATEWAY}, 13: {"address": peers[keys[5]]},
             15: {"tenant": "globex"}}
    codes = {10: "tenant_not_found", 11: "address_outside_pool", 12: "address_reserved",
             14: "duplicate_address", 16: "quota_exceeded"}
    for i, change in wrong.items():
        lines[i].update(change)
    conflicting = {keys[i] for i in wrong}
    dry = m.api("POST", "/v1/servers/vps1/import", {"routers": lines})
    assert dry["applied"] is False
    assert {c["line"]: c["code"] for c in dry["conflicts"]} == codes, dry["conflicts"]
    assert len(dry["routers"]) == N_PEERS - 5
    applied = m.api("POST", "/v1/servers/vps1/import?apply=true",
                    {"routers": [ln for i, ln in enumerate(lines) if i not in wrong]})
    assert applied["applied"] is True and len(applied["routers"]) == N_PEERS - 5

    # Only now does the agent start, in adopt mode.
    m.start_agent()

    # The agent applies the imported set and removes nothing.
    def server():
        return m.api("GET", "/v1/servers/vps1")

    def applied_all():
        s = server()
        return s["revision"] > 0 and s["applied_revision"] == s["revision"]

    wait_for("the agent to apply the import", applied_all, timeout=30)
    wait_for("the unknown peers reported", lambda: server()["unknown_peers"] == 5, timeout=15)
    assert m.interface() == before

    # The real routers reach connected, and carry traffic.
    by_key = {r["public_key"]: r["id"] for r in applied["routers"]}
    for i in range(2):
        rid = by_key[keys[i]]
        wait_for(f"router {i} connected", lambda rid=rid: m.api(
            "GET", f"/v1/routers/{rid}")["vpn_status"] == "connected", timeout=30)
        assert m.ping(i)

    # The five conflicting peers are listed as unknown, by the API and wgfleetctl.
    unknown = m.api("GET", "/v1/servers/vps1/unknown-peers")
    assert unknown["total"] == 5 and unknown["next_after"] is None
    assert {p["public_key"] for p in unknown["items"]} == conflicting
    assert all(p["allowed_ips"] == [f"{peers[p['public_key']]}/32"] for p in unknown["items"])
    page = m.api("GET", "/v1/servers/vps1/unknown-peers?limit=2")
    assert len(page["items"]) == 2 and page["next_after"]
    rest = m.api("GET", "/v1/servers/vps1/unknown-peers?after=" + page["next_after"])
    assert [p["public_key"] for p in page["items"] + rest["items"]] == \
        [p["public_key"] for p in unknown["items"]]
    status = m.api("GET", "/v1/status")
    assert status["servers"][0]["unknown_peers"] == 5
    metrics = run(m.vps_ns + ["curl", "-sf", "http://127.0.0.1:9470/metrics"], check=True)
    assert "\nwgfleet_agent_peers_unknown 5\n" in metrics.stdout
    shown = ctl(m, "status")
    assert "UNKNOWN" in shown.stdout, shown.stdout
    header, row = shown.stdout.splitlines()[:2]
    assert row[header.index("UNKNOWN"):].split()[0] == "5", shown.stdout
    listed = ctl(m, "servers", "unknown", "vps1")
    assert listed.returncode == 0 and "5 of 5 unknown peers" in listed.stdout, listed.stdout
    as_json = json.loads(ctl(m, "servers", "unknown", "vps1", "--json").stdout)
    assert as_json["total"] == 5 and len(as_json["items"]) == 5

    # Releasing one removes it from the interface and from the list; nothing else moves.
    gone = sorted(conflicting - {keys[9]})[0]  # keys[9] is imported below
    assert ctl(m, "servers", "release", "vps1", gone).returncode == 0
    wait_for("the released peer removed", lambda: gone not in m.interface(), timeout=15)
    wait_for("the list to drop it", lambda: server()["unknown_peers"] == 4, timeout=15)
    assert {p["public_key"] for p in m.api("GET", "/v1/servers/vps1/unknown-peers")["items"]} \
        == conflicting - {gone}
    assert m.interface() == {k: v for k, v in before.items() if k != gone}
    audit = m.api("GET", "/v1/audit?action=peer.released")["items"]
    assert [a["detail"]["public_key"] for a in audit] == [gone]
    # A key no longer listed cannot be released again.
    again = gone.replace("+", "-").replace("/", "_")
    m.api("DELETE", f"/v1/servers/vps1/unknown-peers/{again}", status=404)
    # A key that is no key is refused as such.
    bad = m.api("DELETE", "/v1/servers/vps1/unknown-peers/AAAA", status=400)
    assert bad["error"]["code"] == "invalid_request", bad
    # Once the agent's whole list lacks the released key, the coordinator forgets it.
    wait_for("the released key forgotten",
             lambda: m.db("SELECT count(*) FROM released_peers") == "0", timeout=15)

    # A corrected line makes an unknown peer a router: no longer listed, and kept.
    fixed = dict(lines[9], tenant="acme")
    m.api("POST", "/v1/servers/vps1/import?apply=true", {"routers": [fixed]})
    assert keys[9] not in {p["public_key"] for p in
                           m.api("GET", "/v1/servers/vps1/unknown-peers")["items"]}
    wait_for("the agent to take it over", applied_all, timeout=15)
    wait_for("three unknown peers", lambda: server()["unknown_peers"] == 3, timeout=15)
    after = {k: v for k, v in before.items() if k != gone}
    assert m.interface() == after

    # A restart (the cache first, then the coordinator's set) removes nothing either.
    m.stop_agent()
    said = m.adopt_notices()
    m.start_agent()
    wait_for("a full pass of the restarted agent", lambda: m.adopt_notices() > said,
             timeout=20)
    assert m.interface() == after
    assert server()["unknown_peers"] == 3


def test_show_interface_writes_the_live_peers_as_an_import_file(tmp_path):
    vps = WireguardGo(tmp_path, "live")
    try:
        vps.start()
        plain, wide, static, bare = (base64.b64encode(secrets.token_bytes(32)).decode()
                                     for _ in range(4))
        vps.wg("set", vps.ifname, "peer", plain, "allowed-ips", "10.100.0.7/32",
               "persistent-keepalive", "25", "peer", wide, "allowed-ips",
               "10.100.0.8/32,192.168.8.0/24", "peer", static, "allowed-ips", "10.100.0.9/32",
               "peer", bare)
        conf = tmp_path / "agent.conf"
        conf.write_text(f"[agent]\nstate_directory = {tmp_path}/state\n"
                        f"[wireguard]\ninterface = {vps.ifname}\nbackend = userspace\n"
                        f"static_peers = {static}\n")
        show = ["ip", "netns", "exec", vps.ns, binary("wgfleet-agent"), "--config", str(conf),
                "show-interface"]
        proc = run(show + ["acme"], check=True)
        rows = sorted(proc.stdout.splitlines()[1:])
        assert proc.stdout.splitlines()[0] == "tenant,address,public_key,persistent_keepalive"
        assert rows == sorted([f"acme,10.100.0.7,{plain},25", f"acme,10.100.0.8,{wide},0",
                               f"acme,,{bare},0"]), proc.stdout
        # The peers that do not fit a router's one address are named.
        assert wide in proc.stderr and bare in proc.stderr and plain not in proc.stderr
        # A tenant that is no slug would break the file: refused, nothing written.
        bad = run(show + ["Acme,x"])
        assert bad.returncode != 0 and bad.stdout == "" and "slug" in bad.stderr
    finally:
        vps.close()


# ---- the coordinator's side, in SQL ----

def unknown_report(api, peers, total=None, listed=True):
    """The answer (released keys, hex) to a report listing peers [(key hex, ips)]."""
    from test_sql_api import bytea, lit
    n = len(peers)

    def arr(values, kind):
        return f"ARRAY[{', '.join(values)}]::{kind}[]" if n else f"'{{}}'::{kind}[]"

    return api.one(
        f"SELECT encode(released, 'hex') FROM wgf_agent_report("
        f"{bytea(api.agent_keys['vpn1'])}, {bytea(os.urandom(16).hex())}, wgf_epoch(), 0, "
        f"NULL, '{{}}'::text[], NULL, '{{}}'::bigint[], '{{}}'::text[], '{{}}'::bigint[], "
        f"'{{}}'::bigint[], NULL, NULL, NULL, '{{}}'::smallint[], '180 seconds', '', "
        f"{'true' if listed else 'false'}, {n if total is None else total}, "
        f"{bytea(''.join(k for k, _ in peers)) if n else 'NULL'}, "
        f"{arr([lit(ips) for _, ips in peers], 'text')}, {arr(['1795000000000'] * n, 'bigint')}, "
        f"{arr([lit('192.0.2.1:51820')] * n, 'text')})")


def test_a_report_replaces_the_unknown_peers_only_when_they_differ(api):
    from test_sql_api import bytea
    api.server("vpn1")
    a, b, c = sorted(os.urandom(32).hex() for _ in range(3))

    def stored():
        return api.rows("SELECT encode(public_key, 'hex'), allowed_ips::text, xmin::text "
                        "FROM unknown_peers ORDER BY public_key")

    def count():
        return int(api.one("SELECT wgf_unknown_count(s) FROM servers s WHERE name = 'vpn1'"))

    assert unknown_report(api, [(a, "10.100.0.7/32"), (b, "10.100.0.8/32,fd00::/64")]) == ""
    first = stored()
    assert [r[:2] for r in first] == [[a, "{10.100.0.7/32}"], [b, "{10.100.0.8/32,fd00::/64}"]]
    # The same list again, or a report without one, writes nothing.
    unknown_report(api, [(a, "10.100.0.7/32"), (b, "10.100.0.8/32,fd00::/64")])
    unknown_report(api, [], listed=False)
    assert stored() == first and count() == 2
    # A list that differs replaces it; the total counts the peers beyond the listed ones.
    unknown_report(api, [(a, "10.100.0.7/32"), (c, "10.100.0.9/32")], total=1500)
    assert [r[0] for r in stored()] == [a, c] and count() == 1500
    # A released key leaves the list and goes back with every answer, even while a list
    # that is not whole (1,500 peers, 2 listed) still has it.
    api.json(f"SELECT wgf_api_release_peer({api.admin.args}, 'vpn1', {bytea(c)}, 'test')")
    assert [r[0] for r in stored()] == [a] and count() == 1499
    assert unknown_report(api, [(a, "10.100.0.7/32"), (c, "10.100.0.9/32")], total=1501) == c
    assert [r[0] for r in stored()] == [a] and count() == 1500
    # A whole list without it: forgotten, and no longer sent.
    assert unknown_report(api, [(a, "10.100.0.7/32")]) == ""
    assert api.one("SELECT count(*) FROM released_peers") == "0"
    # A key that is a live router on the server is not an unknown peer there.
    acme = api.tenant("acme")
    r = api.reserve(acme, server="vpn1")
    api.set_key(acme, r["id"], a)
    assert count() == 0
    assert api.json(f"SELECT wgf_api_unknown_peers({api.admin.args}, 'vpn1', NULL, 100)") == \
        {"items": [], "total": 0, "next_after": None}
