# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The coordinator's end of the agent channel, driven by chanprobe over real nng."""
import base64
import os
import signal
import subprocess
import time

import pytest

from conftest import BUILD, Coordinator, binary, log_lines, run

PROBE = os.path.join(BUILD, "tests", "tools", "chanprobe")


def wg_pub():
    return base64.b64encode(os.urandom(31) + b"\x40").decode()


class Agent:
    """A server registered with the coordinator and a key file for chanprobe."""

    def __init__(self, coord, workdir, name, pool):
        self.coord = coord
        self.name = name
        state = os.path.join(str(workdir), f"agent-{name}")
        conf = os.path.join(str(workdir), f"agent-{name}.conf")
        with open(conf, "w") as f:
            f.write(f"[agent]\nstate_directory = {state}\n")
        self.public = run([binary("wgfleet-agent"), "--config", conf, "init"],
                          check=True).stdout.strip()
        self.key_file = os.path.join(state, "signing.key")
        status, _, body = coord.request("POST", "/v1/servers", coord.admin_key, {
            "name": name, "endpoint": f"{name}.example.net:51820", "pool": pool,
            "gateway": pool.replace("0/24", "1"), "agent_key": self.public})
        assert status == 201, body
        # The channel learns of new servers from a notification: wait until it has.
        coord.n_agents = getattr(coord, "n_agents", 0) + 1
        deadline = time.monotonic() + 10
        while not any(line.get("msg") == "Agent registry loaded" and
                      int(line["servers"]) >= coord.n_agents
                      for line in log_lines(coord.read_log())):
            assert time.monotonic() < deadline, "the registry did not reload"
            time.sleep(0.05)

    def epoch(self):
        """The epoch chanprobe learned from the coordinator's answers (hex), or None."""
        try:
            with open(self.key_file + ".epoch") as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def probe(self, *args, timeout=10, extra=()):
        cmd = [PROBE, "--url", self.coord.channel_url, "--coordinator",
               self.coord.channel_public_key, "--key", self.key_file, "--server", self.name,
               "--timeout", str(int(timeout * 1000)), *extra, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
        assert proc.returncode in (0, 1), proc.stderr
        return proc.stdout.splitlines()


def start_channel(tmp_path, conninfo, extra=""):
    coord = Coordinator(tmp_path, conninfo, extra="[channel]\npoll_wait = 1500ms\n"
                                                      "refusal_log_interval = 1s\n" + extra)
    coord.admin_key = coord.create_admin_key()
    coord.start()
    status, _, _ = coord.request("POST", "/v1/tenants", coord.admin_key,
                                 {"slug": "acme", "name": "Acme", "router_quota": 50,
                                  "reservations_per_hour": 50})
    assert status == 201
    _, _, key = coord.request("POST", "/v1/tenants/acme/keys", coord.admin_key, {})
    coord.tenant_key = key["key"]
    return coord


@pytest.fixture
def chan(tmp_path, migrated_db):
    coord = start_channel(tmp_path, migrated_db[1])
    yield coord
    coord.stop()


def add_router(coord, server, pub=None):
    status, _, r = coord.request("POST", "/v1/routers", coord.tenant_key, {"server": server})
    assert status == 201, r
    pub = pub or wg_pub()
    status, _, r = coord.request("PUT", f"/v1/routers/{r['id']}/public-key", coord.tenant_key,
                                 {"public_key": pub})
    assert status == 200, r
    return r["id"], pub, r["vpn_ip"]


def router_status(coord, rid):
    return coord.request("GET", f"/v1/routers/{rid}", coord.tenant_key)[2]["vpn_status"]


def db_epoch(pg, migrated_db):
    return pg.psql("SELECT encode(wgf_epoch(), 'hex')", dbname=migrated_db[0])[0][0]


def test_sync_gives_snapshot_then_deltas_and_only_own_peers(chan, tmp_path, pg, migrated_db):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    b = Agent(chan, tmp_path, "vps-b", "10.101.0.0/24")
    _, pub_a, ip_a = add_router(chan, "vps-a")
    _, pub_b, _ = add_router(chan, "vps-b")
    lines = a.probe("sync", "0")
    assert lines == ["sync vps-a 1 1", f"peer {pub_a} {ip_a}/32 keepalive=25"]
    assert pub_b not in "\n".join(lines)
    # The snapshot named the database's epoch; deltas are given within it only.
    assert a.epoch() == db_epoch(pg, migrated_db)
    assert a.probe("sync", "1") == ["sync vps-a 1 0"]
    assert a.probe("sync", "1", extra=["--epoch", "none"])[0] == "sync vps-a 1 1"
    assert a.probe("sync", "1", extra=["--epoch", "ab" * 16])[0] == "sync vps-a 1 1"
    # Rotation: a remove of the old key and an upsert of the new, in revision order.
    rid, _, _ = add_router(chan, "vps-a")
    new = wg_pub()
    status, _, _ = chan.request("PUT", f"/v1/routers/{rid}/public-key", chan.tenant_key,
                                {"public_key": new})
    assert status == 200
    # Until the coordinator's notification of revision 4 is in (milliseconds), a resync
    # at the revision it knows is answered from memory with nothing new.
    deadline = time.monotonic() + 5
    while (lines := a.probe("sync", "1"))[0] != "sync vps-a 4 0" and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert lines[0] == "sync vps-a 4 0"
    assert [line.split()[1:3] for line in lines[1:]] == [
        ["upsert", "2"], ["remove", "3"], ["upsert", "4"]]
    assert lines[-1].split()[3] == new
    assert b.probe("sync", "0")[0] == "sync vps-b 1 1"


def test_snapshot_comes_in_pages(tmp_path, migrated_db):
    coord = start_channel(tmp_path, migrated_db[1], "snapshot_page = 16\n")
    try:
        a = Agent(coord, tmp_path, "vps-a", "10.100.0.0/24")
        keys = [add_router(coord, "vps-a")[1] for _ in range(20)]
        by_bytes = sorted(keys, key=base64.b64decode)
        lines = a.probe("sync", "0")
        # The first page: 16 peers in key order, read at revision 20, more to come.
        assert lines[0] == "sync vps-a 20 1" and lines[-1] == "more 20", lines
        first = [line.split()[1] for line in lines[1:-1]]
        assert first == by_bytes[:16]
        # A change between pages comes with the last page, to apply over the pages
        # (which are read at the revision of their own request).
        _, late, _ = add_router(coord, "vps-a")
        rest = [k for k in sorted(keys + [late], key=base64.b64decode)
                if base64.b64decode(k) > base64.b64decode(first[-1])]
        lines = a.probe("sync", "0", extra=["--page", f"20,{first[-1]}"])
        assert lines[0] == "sync vps-a 21 1", lines
        assert [line.split()[1] for line in lines[1:-1]] == rest
        assert lines[-1].split()[:4] == ["change", "upsert", "21", late]
        # The next page of a snapshot of another epoch: a first page again.
        lines = a.probe("sync", "0", extra=["--page", f"20,{first[-1]}", "--epoch", "ab" * 16])
        assert lines[0] == "sync vps-a 21 1" and lines[-1] == "more 21", lines
        assert [line.split()[1] for line in lines[1:-1]] == \
            sorted(keys + [late], key=base64.b64decode)[:16]
    finally:
        coord.stop()


def test_long_poll_answers_on_change_and_times_out_otherwise(chan, tmp_path):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    # A poll that names no epoch (or another) learns the current one at once.
    start = time.monotonic()
    assert a.probe("hint", "0") == ["hint vps-a 0"]
    assert time.monotonic() - start < 1.0
    assert a.epoch() is not None
    start = time.monotonic()
    assert a.probe("hint", "0") == ["hint vps-a 0"]
    waited = time.monotonic() - start
    assert 1.0 <= waited < 4.0, waited
    poll = subprocess.Popen([PROBE, "--url", chan.channel_url, "--coordinator",
                             chan.channel_public_key, "--key", a.key_file, "--server", "vps-a",
                             "--timeout", "10000", "hint", "0"],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # let the poll park; the answer must come from the change
    _, _, _ = add_router(chan, "vps-a")
    changed = time.monotonic()
    out, _ = poll.communicate(timeout=15)
    latency = time.monotonic() - changed
    assert out.splitlines() == ["hint vps-a 1"]
    assert latency < 1.0, latency


def test_long_poll_parks_from_memory_and_wakes_on_the_notification(chan, tmp_path, pg,
                                                                   migrated_db):
    # A poll at the revision the coordinator holds in memory parks without asking the
    # database (here made to take 0.8 s, which the answer would show), and the change's
    # notification answers it.
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    add_router(chan, "vps-a")
    assert a.probe("sync", "0")[0] == "sync vps-a 1 1"  # the epoch, so that polls park
    name, _ = migrated_db
    pg.psql("""CREATE OR REPLACE FUNCTION wgf_agent_wait(p_agent_key bytea, p_nonce bytea)
        RETURNS TABLE (server_id bigint, server text, epoch bytea, revision bigint)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        DECLARE s servers;
        BEGIN
            SELECT * INTO s FROM servers WHERE agent_key = p_agent_key;
            PERFORM pg_sleep(0.8);
            RETURN QUERY SELECT s.id, s.name, wgf_epoch(), s.revision;
        END $$""", dbname=name)
    cmd = [PROBE, "--url", chan.channel_url, "--coordinator", chan.channel_public_key,
           "--key", a.key_file, "--server", "vps-a", "--timeout", "10000", "hint", "1"]
    probe = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # the poll is parked
        start = time.monotonic()
        add_router(chan, "vps-a")  # revision 2, committed and notified
        out, _ = probe.communicate(timeout=15)
    finally:
        probe.kill()
    assert out.splitlines() == ["hint vps-a 2"], out
    assert time.monotonic() - start < 0.7
    # A poll from an agent ahead of what the coordinator knows asks the database, which
    # says where the server really is.
    out = a.probe("hint", "7")
    assert out == ["hint vps-a 2"], out


def test_reports_move_routers_along_statuses(chan, tmp_path, pg, migrated_db):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    rid, pub, _ = add_router(chan, "vps-a")
    bad_rid, bad_pub, _ = add_router(chan, "vps-a")
    assert router_status(chan, rid) == "configured"
    # A report of no epoch (or another) applies nothing, but is answered.
    assert a.probe("report", "2") == ["hint vps-a 2"]
    assert router_status(chan, rid) == "configured"
    assert a.probe("sync", "0")[0] == "sync vps-a 2 1"
    wg_key = wg_pub()
    out = a.probe("report", "2", extra=["--error", f"{bad_pub},allowed IPs overlap",
                                        "--wg-key", wg_key, "--port", "51820"])
    assert out == ["hint vps-a 2"]
    assert router_status(chan, rid) == "vps_ready"
    assert router_status(chan, bad_rid) == "failed"
    router = chan.request("GET", f"/v1/routers/{bad_rid}", chan.tenant_key)[2]
    assert router["status_reason"] == "allowed IPs overlap"
    assert f"PublicKey = {wg_key}" in router["setup"]["wg_quick"]
    now_ms = int(time.time() * 1000)
    a.probe("report", "2", extra=["--fact", f"{pub},{now_ms},192.0.2.7:4242,100,200"])
    r = chan.request("GET", f"/v1/routers/{rid}", chan.tenant_key)[2]
    assert (r["vpn_status"], r["endpoint"], r["rx_bytes"], r["tx_bytes"]) == \
        ("connected", "192.0.2.7:4242", 100, 200)
    stale = now_ms - 200_000
    a.probe("report", "2", extra=["--fact", f"{pub},{stale},192.0.2.7:4242,100,200"])
    assert router_status(chan, rid) == "connected"  # one stale report is not enough
    a.probe("report", "2", extra=["--fact", f"{pub},{stale},192.0.2.7:4242,100,200"])
    assert router_status(chan, rid) == "disconnected"
    a.probe("report", "2", extra=["--fact", f"{pub},{now_ms},192.0.2.7:4242,300,400"])
    assert router_status(chan, rid) == "connected"
    name, _ = migrated_db
    moves = pg.psql(f"SELECT action FROM audit_log WHERE router_id = '{rid}' AND actor = 'agent' "
                    "ORDER BY id", dbname=name)
    assert [m[0] for m in moves] == ["router.vps_ready", "router.connected",
                                     "router.disconnected", "router.connected"]
    a.probe("report", "2", extra=["--drift", f"{wg_pub()},1"])
    status = chan.request("GET", "/v1/status", chan.admin_key)[2]
    server = status["servers"][0]
    assert server["drift_repairs"] == 1 and server["applied_revision"] == 2
    assert server["apply_latency"]["samples"] == 2


def test_forged_tampered_replayed_and_misaddressed_are_rejected(chan, tmp_path, pg, migrated_db):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    b = Agent(chan, tmp_path, "vps-b", "10.101.0.0/24")
    add_router(chan, "vps-a")
    stranger_conf = tmp_path / "stranger.conf"
    stranger_conf.write_text(f"[agent]\nstate_directory = {tmp_path / 'stranger'}\n")
    run([binary("wgfleet-agent"), "--config", str(stranger_conf), "init"], check=True)
    stranger = os.path.join(str(tmp_path / "stranger"), "signing.key")
    cases = {
        "tampered": (a, ["--tamper"], "error 2 bad signature"),
        "claims another sender": (a, ["--claim", b.public], "error 2 bad signature"),
        "unregistered key": (a, ["--key", stranger],
                             "error 3 the sender's key is not one this side knows"),
        "misaddressed": (a, ["--to", b.public], "error 6 envelope is addressed to another key"),
        "stale": (a, ["--skew", "-120000"], "error 4 envelope is "),
        "from the future": (a, ["--skew", "120000"], "error 4 envelope is dated"),
        "other version": (a, ["--version", "2"], "error 1 protocol version 2 is not supported"),
    }
    for what, (agent, extra, expect) in cases.items():
        out = agent.probe("report", "1", extra=extra)
        assert out and out[0].startswith(expect), (what, out)
    # Another server's name with a valid key: refused, and nothing of it is applied.
    out = b.probe("report", "1", extra=["--server", "vps-a"])
    assert out[0].startswith("error 6 this key belongs to server 'vps-b', not 'vps-a'"), out
    replay = a.probe("hint", "5", extra=["--replay"])
    assert replay[0] == "hint vps-a 1" and replay[1].startswith("error 5 this message was seen")
    name, _ = migrated_db
    assert pg.psql("SELECT name, applied_revision FROM servers ORDER BY name", dbname=name) == \
        [["vps-a", "0"], ["vps-b", "0"]]
    # Refusals are logged as counts per reason, not a line a message.
    expect = {"bad_signature": 2, "unknown_sender": 1, "misaddressed": 1, "stale": 2,
              "unsupported_version": 1, "wrong_server": 1, "replay": 1}
    assert refusal_counts(chan, expect) == expect


def refusal_counts(coord, expect, timeout=10):
    """The coordinator's refusal counts per reason, once they reach expect (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {}
        for line in log_lines(coord.read_log()):
            if line.get("msg") == "Refused agent messages":
                counts[line["reason"]] = counts.get(line["reason"], 0) + int(line["count"])
        if all(counts.get(k, 0) >= v for k, v in expect.items()) or \
                time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def test_polls_answered_from_memory_still_mark_the_server_seen(chan, tmp_path, pg, migrated_db):
    # Placement and status read servers.last_seen_at; a poll that never reaches the
    # database is written there in the channel's once-a-second batch.
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    add_router(chan, "vps-a")
    assert a.probe("sync", "0")[0] == "sync vps-a 1 1"
    name, _ = migrated_db
    pg.psql("UPDATE servers SET last_seen_at = now() - interval '1 hour'", dbname=name)
    assert a.probe("hint", "0") == ["hint vps-a 1"]  # behind: answered at once, from memory
    deadline = time.monotonic() + 5
    while pg.psql("SELECT last_seen_at > now() - interval '1 minute' FROM servers "
                  "WHERE name = 'vps-a'", dbname=name)[0][0] != "t":
        assert time.monotonic() < deadline, "never marked seen"
        time.sleep(0.1)


def test_one_keepalive_for_deltas_and_snapshots_across_a_reload(chan, tmp_path):
    # A peer's keepalive is the one stored when its key was submitted, whichever way the
    # agent syncs. Before, a snapshot said the channel's value from its start (which
    # SIGHUP never changed) while a delta said the value at PUT time.
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    _, old, ip_old = add_router(chan, "vps-a")
    assert a.probe("sync", "0")[0] == "sync vps-a 1 1"
    with open(chan.config) as f:
        text = f.read()
    with open(chan.config, "w") as f:
        f.write(text + "[api]\npersistent_keepalive = 40\n")
    chan.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not any(line.get("msg") == "Configuration reloaded"
                  for line in log_lines(chan.read_log())):
        assert time.monotonic() < deadline, "no reload"
        time.sleep(0.05)
    _, new, ip_new = add_router(chan, "vps-a")
    assert a.probe("sync", "1") == ["sync vps-a 2 0",
                                    f"change upsert 2 {new} {ip_new}/32 keepalive=40"]
    snapshot = a.probe("sync", "0")
    assert snapshot[0] == "sync vps-a 2 1"
    assert sorted(snapshot[1:]) == sorted([f"peer {old} {ip_old}/32 keepalive=25",
                                           f"peer {new} {ip_new}/32 keepalive=40"])


def test_a_renamed_column_is_an_error_not_a_zero(chan, tmp_path, pg, migrated_db):
    # The channel reads the database's rows by name and type: a function whose answer
    # changed shape makes the call fail loudly. (The JSON it read before took a renamed
    # key for 0 and answered with revision 0.)
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    add_router(chan, "vps-a")
    assert a.probe("sync", "0")[0] == "sync vps-a 1 1"
    name, _ = migrated_db
    pg.psql("""DROP FUNCTION wgf_agent_wait(bytea, bytea);
        CREATE FUNCTION wgf_agent_wait(p_agent_key bytea, p_nonce bytea)
        RETURNS TABLE (server_id bigint, server text, epoch bytea, rev bigint)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        DECLARE s servers := wgf_agent_begin(p_agent_key, p_nonce);
        BEGIN
            RETURN QUERY SELECT s.id, s.name, wgf_epoch(), s.revision;
        END $$""", dbname=name)
    # A poll ahead of what the coordinator knows asks wgf_agent_wait.
    assert a.probe("hint", "7") == ["error 8 unexpected database answer"]
    assert any("column 3 is rev" in line.get("error", "") + line.get("msg", "")
               for line in log_lines(chan.read_log())), chan.read_log()[-2000:]
