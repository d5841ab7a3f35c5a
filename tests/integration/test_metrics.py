# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Both daemons' /metrics after a known sequence of actions, checked against the API.

A coordinator and an agent on wireguard-go in a network namespace (test_story's World):
two reservations, a key submitted and applied by the agent, a wrong API key, a channel
message from an unregistered key. Then the coordinator's and the agent's scrapes must
say what the API, the database and the interface say, and promtool must accept both.
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import BUILD, Coordinator, binary, log_lines, run
from test_story import World
from wglib import wait_for

PROBE = os.path.join(BUILD, "tests", "tools", "chanprobe")
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMTOOL = shutil.which("promtool")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset of (label, value)): float} from the text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def logged_port(log_text):
    ports = [int(l["port"]) for l in log_lines(log_text) if l.get("msg") == "Serving metrics"]
    return ports[-1] if ports else None


def serving_port(read_log):
    """The metrics port a daemon logged (the line follows the API's "Listening")."""
    return wait_for("the Serving metrics line", lambda: logged_port(read_log()), timeout=5)


def get(port, path="/metrics", ns=None):
    """(status, content type, body) of a GET on 127.0.0.1:port, inside ns if given."""
    url = f"http://127.0.0.1:{port}{path}"
    if ns:
        proc = run(["ip", "netns", "exec", ns, "curl", "-sS", "-m", "10", "-o", "-", "-w",
                    "\\n%{http_code} %{content_type}", url], check=True)
        body, _, tail = proc.stdout.rpartition("\n")
        status, _, ctype = tail.partition(" ")
        return int(status), ctype, body
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def families(text):
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def check_docs_and_dashboard(names):
    """Every family is in docs/METRICS.md, and the dashboard uses no other name."""
    with open(os.path.join(TOP, "docs", "METRICS.md")) as f:
        documented = set(re.findall(r"`(wgfleet_[a-z_]+)`", f.read()))
    assert names - documented == set(), "families missing from docs/METRICS.md"
    assert documented - names == set(), "docs/METRICS.md names what no daemon serves"
    with open(os.path.join(TOP, "deploy", "grafana", "wgfleet.json")) as f:
        dash = json.load(f)
    used = {re.sub(r"_(bucket|sum|count)$", "", n) if n not in names else n
            for p in dash["panels"] for t in p.get("targets", [])
            for n in re.findall(r"wgfleet_[a-z_]+", t["expr"])}
    assert used and used - names == set(), "the dashboard uses names no daemon serves"


def promtool_check(text):
    assert PROMTOOL, "promtool is missing (Debian package prometheus; deploy/install-deps.sh)"
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    # Exit 0: valid; lint findings would be printed on stdout or stderr.
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), \
        proc.stdout + proc.stderr


@pytest.fixture
def world(tmp_path, migrated_db, pg):
    w = World(tmp_path, migrated_db[1], channel_extra="[metrics]\nrefresh_interval = 300ms\n")
    with open(w.agent_conf, "a") as f:
        f.write("[metrics]\nlisten = 127.0.0.1:0\n")
    w.pg, w.dbname = pg, migrated_db[0]
    try:
        yield w
    finally:
        w.close()



def test_answered_polls_stand_in_for_the_periodic_resync(tmp_path, migrated_db):
    # Polls held 500 ms, resyncs every 2 s (World's agent): an idle agent whose polls
    # come back without news has nothing to ask a resync for.
    w = World(tmp_path, migrated_db[1], poll_wait="500ms",
              channel_extra="[metrics]\nrefresh_interval = 300ms\n")
    try:
        mport = serving_port(w.coord.read_log)
        w.start_agent()
        wait_for("the server's WireGuard key", lambda: w.server()["public_key"], timeout=15)

        def accepted(kind):
            return value(parse(get(mport)[2]), "wgfleet_channel_messages_accepted_total",
                         kind=kind) or 0
        time.sleep(1)
        polls, syncs = accepted("hint"), accepted("sync_request")
        time.sleep(6.5)  # three resync intervals
        assert accepted("hint") - polls >= 6  # polls kept coming back
        assert accepted("sync_request") - syncs == 0
        # A change still arrives at once, through the poll.
        status, _, r = w.api("POST", "/v1/routers", w.key, {"name": "r1"})
        assert status == 201, r
        key = base64.b64encode(os.urandom(32)).decode()
        assert w.api("PUT", f"/v1/routers/{r['id']}/public-key", w.key,
                     {"public_key": key})[0] == 200
        wait_for("the peer on the VPS", lambda: key in w.vps_peers(), timeout=5)
    finally:
        w.close()

def stranger_report(world, tmp_path):
    """One Report signed by a key no server has: refused as unknown_sender."""
    conf = tmp_path / "stranger.conf"
    conf.write_text(f"[agent]\nstate_directory = {tmp_path / 'stranger'}\n")
    run([binary("wgfleet-agent"), "--config", str(conf), "init"], check=True)
    proc = subprocess.run([PROBE, "--url", world.chan, "--coordinator",
                           world.coord.channel_public_key, "--key",
                           str(tmp_path / "stranger" / "signing.key"), "--server", "vps1",
                           "--timeout", "3000", "report", "1"],
                          capture_output=True, text=True, timeout=15)
    assert proc.returncode in (0, 1), proc.stderr


def test_scrapes_match_the_api(world, tmp_path):
    coord = world.coord
    mport = serving_port(coord.read_log)
    assert mport and mport != coord.port
    world.start_agent()
    wait_for("the server's WireGuard key", lambda: world.server()["public_key"], timeout=15)

    # The known sequence: two reservations, one key, one wrong API key, one stranger.
    routers = [world.api("POST", "/v1/routers", world.key, {"name": f"r{i}"}) for i in (1, 2)]
    assert [r[0] for r in routers] == [201, 201], routers
    key = base64.b64encode(os.urandom(32)).decode()
    rid = routers[0][2]["id"]
    status, _, body = world.api("PUT", f"/v1/routers/{rid}/public-key", world.key,
                                {"public_key": key})
    assert status == 200, body
    wait_for("the peer on the VPS", lambda: key in world.vps_peers(), timeout=10)
    assert world.api("GET", "/v1/routers", "wgf_bogus_" + "x" * 40)[0] == 401
    stranger_report(world, tmp_path)

    # The coordinator: wait for a refresh that has seen the applied change.
    def applied():
        st = world.api("GET", "/v1/status", coord.admin_key)[2]
        server = st["servers"][0]
        if server["revision_lag"] != 0 or not server["online"]:
            return None
        status, ctype, text = get(mport)
        s = parse(text)
        if value(s, "wgfleet_server_revision_lag", server="vps1") != 0 or \
                value(s, "wgfleet_change_apply_seconds_count") != 1:
            return None
        return st, ctype, text, s
    st, ctype, text, s = wait_for("a refresh after the change was applied", applied,
                                  timeout=15, interval=0.2)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    server = st["servers"][0]
    assert value(s, "wgfleet_build_info", daemon="coordinator", version=run(
        [binary("wgfleet-coordinator"), "version"], check=True).stdout.split()[1]) == 1
    assert value(s, "wgfleet_agents_online") == 1
    assert value(s, "wgfleet_server_online", server="vps1") == 1
    assert value(s, "wgfleet_server_pool_addresses", server="vps1") == server["pool"]["size"]
    assert value(s, "wgfleet_server_pool_addresses_used", server="vps1") == \
        server["pool"]["used"] == 2
    for status_name in ("pending", "configured", "vps_ready", "connected"):
        assert value(s, "wgfleet_routers", status=status_name) == \
            st["routers"].get(status_name, 0), status_name
    assert sum(v for (n, _), v in s.items() if n == "wgfleet_routers") == 2
    req = "wgfleet_http_requests_total"
    assert value(s, req, method="POST", route="/v1/routers", status="201") == 2
    assert value(s, req, method="PUT", route="/v1/routers/{}/public-key", status="200") == 1
    assert value(s, req, method="GET", route="/v1/routers", status="401") == 1
    assert value(s, "wgfleet_http_auth_refused_total", reason="unauthorized") == 1
    assert value(s, "wgfleet_http_request_duration_seconds_count", method="POST",
                 route="/v1/routers") == 2
    assert value(s, "wgfleet_channel_refused_total", reason="unknown_sender") == 1
    assert value(s, "wgfleet_channel_messages_accepted_total", kind="report") >= 1
    assert value(s, "wgfleet_channel_messages_accepted_total", kind="sync_request") >= 1
    applied_in_db = world.pg.psql("SELECT count(*) FROM changes WHERE applied_at IS NOT NULL",
                                  dbname=world.dbname)
    assert int(applied_in_db[0][0]) == 1
    assert value(s, "wgfleet_db_pool_connections", pool="api") >= 1
    assert value(s, "wgfleet_db_pool_waiting", pool="channel") == 0
    assert value(s, "wgfleet_sweeps_total", result="ok") >= 1
    promtool_check(text)
    coord_text = text

    # The agent, inside the VPS's namespace.
    aport = serving_port(world.agent_log.read_text)
    peers = world.vps_peers()

    def monitored():
        # The monitor reads the interface every 300 ms (but not during a pass).
        status, ctype, text = get(aport, ns=world.vps.ns)
        a = parse(text)
        return value(a, "wgfleet_agent_peers_actual") == len(peers) and (status, ctype, text, a)
    status, ctype, text, a = wait_for("the monitor's read of the peer", monitored, timeout=10,
                                      interval=0.2)
    assert status == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8"
    assert value(a, "wgfleet_build_info", daemon="agent", version=run(
        [binary("wgfleet-agent"), "version"], check=True).stdout.split()[1]) == 1
    assert value(a, "wgfleet_agent_peers_desired") == len(peers) == 1
    assert value(a, "wgfleet_agent_peers_actual") == len(peers)
    assert value(a, "wgfleet_agent_peer_changes_total", kind="add") == 1
    assert value(a, "wgfleet_agent_peer_changes_total", kind="remove") == 0
    assert value(a, "wgfleet_agent_peers_refused") == 0
    assert value(a, "wgfleet_agent_applied_revision") == server["applied_revision"]
    assert value(a, "wgfleet_agent_coordinator_connected") == 1
    assert time.time() - 60 < value(a, "wgfleet_agent_last_sync_timestamp_seconds") <= time.time()
    assert value(a, "wgfleet_agent_passes_total", result="ok") >= 1
    assert value(a, "wgfleet_agent_pass_duration_seconds_count") == \
        value(a, "wgfleet_agent_passes_total", result="ok") + \
        value(a, "wgfleet_agent_passes_total", result="failed")
    by_age = {dict(l)["age"]: v for (n, l), v in a.items()
              if n == "wgfleet_agent_peers_by_handshake_age"}
    assert sum(by_age.values()) == len(peers) and by_age["never"] == len(peers)
    promtool_check(text)
    check_docs_and_dashboard(families(text) | families(coord_text))


def test_metrics_and_api_ports_are_apart(coordinator):
    mport = serving_port(coordinator.read_log)
    assert mport and mport != coordinator.port
    # The API does not serve /metrics, and the metrics listener serves nothing else.
    status, _, body = coordinator.request("GET", "/metrics")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert get(mport, "/v1/status")[0] == 404
    assert get(mport, "/metrics")[0] == 200
    req = urllib.request.Request(f"http://127.0.0.1:{mport}/metrics", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_metrics_on_the_api_address_is_refused(tmp_path, migrated_db):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[database]\nconninfo = {migrated_db[1]}\n[http]\nlisten = 127.0.0.1:8080\n"
                    "[metrics]\nlisten = 127.0.0.1:8080\n")
    proc = run([binary("wgfleet-coordinator"), "--config", str(conf), "check-config"])
    assert proc.returncode != 0
    assert "[metrics] listen '127.0.0.1:8080' is the API's address" in proc.stderr
    conf.write_text("[metrics]\nlisten = metrics.example.net:9469\n")
    proc = run([binary("wgfleet-coordinator"), "--config", str(conf), "check-config"])
    assert proc.returncode != 0 and "a listener needs an address" in proc.stderr


def test_refused_connections_counted_with_the_client(tmp_path, migrated_db):
    """#11 item 4: a refusal is a counter, and the log line names the last client."""
    coord = Coordinator(tmp_path, migrated_db[1],
                        extra="[http]\nmax_connections_per_client = 2\n")
    coord.start()
    try:
        held = [socket.create_connection(("127.0.0.1", coord.port), timeout=5) for _ in range(2)]
        extra = socket.create_connection(("127.0.0.1", coord.port), timeout=5)
        extra.settimeout(5)
        assert extra.recv(1) == b""  # closed as it was accepted
        extra.close()
        line = wait_for("the refusal's log line", lambda: next(
            (l for l in log_lines(coord.read_log()) if l.get("msg") == "Refused connections"),
            None), timeout=5)
        assert line["over_per_client"] == "1" and line["last_client"] == "127.0.0.1"
        s = parse(get(serving_port(coord.read_log))[2])
        assert value(s, "wgfleet_http_connections_refused_total",
                     reason="too_many_from_client") == 1
        assert value(s, "wgfleet_http_connections_refused_total",
                     reason="too_many_connections") == 0
        assert value(s, "wgfleet_http_connections") == 2
        for c in held:
            c.close()
    finally:
        coord.stop()
