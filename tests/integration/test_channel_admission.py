# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Channel admission: each attack of issue 11 against a real coordinator, with bounds.

Every load is a bounded count of messages over one connection to 127.0.0.1 (chanprobe
--count). Database work is counted exactly, not timed: wgf_agent_identify(), which every
agent message that reaches the database runs first, is given a nextval() on a sequence
(sequences ignore rollbacks, so refused calls count too).
"""
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import Coordinator, binary, log_lines, run
from test_channel import PROBE, Agent, add_router, refusal_counts

# The coordinator's token bucket for answers to unauthenticated messages (channel.c).
ANSWERS_BURST, ANSWERS_PER_S = 20, 10
# Each connection's bucket of messages: twice the agent's default (200 a second, 400).
PIPE_BURST, PIPE_PER_S = 800, 400


def start_coordinator(tmp_path, conninfo, extra=""):
    coord = Coordinator(tmp_path, conninfo, extra="[channel]\nrefusal_log_interval = 1s\n" + extra)
    coord.admin_key = coord.create_admin_key()
    coord.start()
    try:
        return set_up(coord)
    except BaseException:
        coord.stop()  # a failed set-up leaves no coordinator running
        raise


def set_up(coord):
    # With a one-connection pool (test_a_stuck_api...), the channel's start-up reads may
    # still hold it: 503 then is the bound under test elsewhere, so ask again (bounded).
    for _ in range(20):
        status, _, _ = coord.request("POST", "/v1/tenants", coord.admin_key,
                                     {"slug": "acme", "name": "Acme", "router_quota": 50,
                                      "reservations_per_hour": 50})
        if status != 503:
            break
        time.sleep(0.1)
    assert status == 201
    coord.tenant_key = coord.request("POST", "/v1/tenants/acme/keys", coord.admin_key, {})[2]["key"]
    return coord


@pytest.fixture
def chan(tmp_path, migrated_db):
    coord = start_coordinator(tmp_path, migrated_db[1], "poll_wait = 20s\n")
    yield coord
    coord.stop()


class Counter:
    """Counts calls of wgf_agent_identify() in the test's database (every agent message
    that reaches the database runs it first, directly or through wgf_agent_begin())."""

    def __init__(self, pg, dbname):
        self.pg, self.dbname = pg, dbname
        src = "\n".join("|".join(r) for r in pg.psql(
            "SELECT prosrc FROM pg_proc WHERE proname = 'wgf_agent_identify'", dbname=dbname))
        assert "\nBEGIN\n" in src
        src = src.replace("\nBEGIN\n", "\nBEGIN\n\tPERFORM nextval('test_begin_calls');\n", 1)
        pg.psql("CREATE SEQUENCE test_begin_calls MINVALUE 0 START 0", dbname=dbname)
        pg.psql("CREATE OR REPLACE FUNCTION wgf_agent_identify(p_agent_key bytea, p_nonce bytea) "
                f"RETURNS servers LANGUAGE plpgsql AS $body${src}$body$", dbname=dbname)

    def calls(self):
        rows = self.pg.psql("SELECT CASE WHEN is_called THEN last_value + 1 ELSE 0 END "
                            "FROM test_begin_calls", dbname=self.dbname)
        return int(rows[0][0])

    def value(self, sql):
        return self.pg.psql(sql, dbname=self.dbname)


def stranger_key(tmp_path):
    conf = tmp_path / "stranger.conf"
    conf.write_text(f"[agent]\nstate_directory = {tmp_path / 'stranger'}\n")
    run([binary("wgfleet-agent"), "--config", str(conf), "init"], check=True)
    return os.path.join(str(tmp_path / "stranger"), "signing.key")


def flood(agent, *args, extra=(), timeout=2.0):
    """chanprobe --count: returns (seconds, {"sent": n, "answered": m, kind: count})."""
    start = time.monotonic()
    lines = agent.probe(*args, timeout=timeout, extra=list(extra))
    took = time.monotonic() - start
    out = {}
    for line in lines:
        f = line.split()
        out[f[1] if f[0] == "answer" else f[0]] = int(f[-1])
    return took, out


def peak_rss_kb(coord):
    with open(f"/proc/{coord.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def per_message_lines(coord):
    """Log lines about single agent messages at warning level or above (there should be none)."""
    return [line for line in log_lines(coord.read_log())
            if line.get("mod") == "channel" and line.get("msg") != "Refused agent messages"
            and line.get("level") in ("warning", "error")]


def test_unknown_sender_flood_costs_no_database_work(chan, tmp_path, pg, migrated_db):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    counter = Counter(pg, migrated_db[0])
    stranger = stranger_key(tmp_path)
    n = 3000
    took, out = flood(a, "--count", str(n), "report", "1", extra=["--key", stranger])
    assert out["sent"] == n
    # Dropped, with at most a rate-limited answer: the bucket's burst plus its rate.
    assert out["answered"] == out.get("error-3", 0)
    assert out["answered"] <= ANSWERS_BURST + ANSWERS_PER_S * took + 1, (out, took)
    # One oversized report from the stranger: dropped before anything is decoded.
    before = peak_rss_kb(chan)
    _, big = flood(a, "--count", "1", "--pad", "65000", "report", "1", extra=["--key", stranger])
    assert big["sent"] == 1
    counts = refused_in_all(chan, ("unknown_sender", "connection_rate_limited"), n + 1)
    assert counts["unknown_sender"] + counts.get("connection_rate_limited", 0) == n + 1
    # What the connection's bucket let through was looked up; the rest went unread.
    assert PIPE_BURST <= counts["unknown_sender"] <= PIPE_BURST + PIPE_PER_S * took + 2, \
        (counts, took)
    grew_mb = (peak_rss_kb(chan) - before) / 1024
    assert grew_mb < 40, grew_mb
    assert counter.calls() == 0
    assert counter.value("SELECT count(*) FROM agent_nonces") == [["0"]]
    assert counter.value("SELECT count(*) FROM servers WHERE last_seen_at IS NOT NULL") == [["0"]]
    assert per_message_lines(chan) == []
    # The registered agent is still served, from the database.
    assert a.probe("sync", "0")[0] == "sync vps-a 0 1"
    assert counter.calls() == 1


def test_replayed_envelope_costs_one_database_call(chan, tmp_path, pg, migrated_db):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    counter = Counter(pg, migrated_db[0])
    n = 3000
    took, out = flood(a, "--count", str(n), "--replay", "sync", "0")
    assert out["sent"] == n and out["sync"] == 1
    assert out["answered"] - 1 == out.get("error-5", 0)
    assert out.get("error-5", 0) <= ANSWERS_BURST + ANSWERS_PER_S * took + 1, (out, took)
    counts = refused_in_all(chan, ("replay", "connection_rate_limited"), n - 1)
    assert counts["replay"] + counts.get("connection_rate_limited", 0) == n - 1, counts
    assert PIPE_BURST - 1 <= counts["replay"] <= PIPE_BURST + PIPE_PER_S * took, (counts, took)
    assert counter.calls() == 1
    assert counter.value("SELECT count(*) FROM agent_nonces") == [["1"]]
    assert per_message_lines(chan) == []


def test_oversized_report_is_refused_before_unpacking(chan, tmp_path, pg, migrated_db):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    counter = Counter(pg, migrated_db[0])
    before = peak_rss_kb(chan)
    # About 4 MB: a Report for a /24 pool is capped near 700 KB (its peers and 1,000
    # unknown peers).
    out = a.probe("report", "0", extra=["--pad", "65000"])
    assert len(out) == 1 and out[0].startswith("error 7 the body is ") and \
        out[0].endswith(" its kind allows"), out
    grew_mb = (peak_rss_kb(chan) - before) / 1024
    assert grew_mb < 40, grew_mb
    assert counter.calls() == 0
    # A report of the pool's size still goes through.
    assert a.probe("report", "0", extra=["--pad", "254"]) == ["hint vps-a 0"]
    assert counter.calls() == 1


def test_one_parked_poll_per_server(chan, tmp_path):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    b = Agent(chan, tmp_path, "vps-b", "10.101.0.0/24")
    # Polls of the current epoch park; without it they are answered at once.
    assert a.probe("sync", "0")[0] == "sync vps-a 0 1"
    assert b.probe("sync", "0")[0] == "sync vps-b 0 1"
    other = subprocess.Popen([PROBE, "--url", chan.channel_url, "--coordinator",
                              chan.channel_public_key, "--key", b.key_file, "--server", "vps-b",
                              "--timeout", "30000", "hint", "0"],
                             stdout=subprocess.PIPE, text=True)
    try:
        # 300 polls from one agent at once (revision 0 and the epoch are current;
        # poll_wait 20 s): each either parks and answers the one parked before, or is
        # refused for asking too much at once; so all but the last parked are answered
        # at once.
        n = 300
        _, out = flood(a, "--count", str(n), "hint", "0", timeout=3.0)
        assert out["sent"] == n and out["answered"] == n - 1, out
        assert out["hint"] + out.get("error-8", 0) == n - 1, out
        assert out["hint"] >= 1, out
        # vps-b's poll is still parked and a change to it arrives at once.
        changed = time.monotonic()
        add_router(chan, "vps-b")
        got, _ = other.communicate(timeout=15)
        assert got.splitlines() == ["hint vps-b 1"]
        assert time.monotonic() - changed < 1.5
    finally:
        other.kill()


def refused_in_all(coord, reasons, total, timeout=10):
    """The refusal counts once those of reasons add up to total (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = refusal_counts(coord, {}, timeout=0)
        if sum(counts.get(r, 0) for r in reasons) >= total or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def test_agent_messages_past_the_rate_are_refused(tmp_path, pg, migrated_db):
    rate, burst = 10, 20
    coord = start_coordinator(tmp_path, migrated_db[1],
                              f"agent_messages_per_second = {rate}\nagent_message_burst = {burst}\n")
    try:
        a = Agent(coord, tmp_path, "vps-a", "10.100.0.0/24")
        b = Agent(coord, tmp_path, "vps-b", "10.101.0.0/24")
        add_router(coord, "vps-a")
        assert a.probe("sync", "0")[0] == "sync vps-a 1 1"
        counter = Counter(pg, migrated_db[0])
        # 300 resyncs at the current revision (each answered from memory when accepted).
        n = 300
        took, out = flood(a, "--count", str(n), "sync", "1")
        accepted = out.get("sync", 0)
        assert burst - 2 <= accepted <= burst + rate * took + 1, (out, took)
        assert out.get("error-8", 0) <= ANSWERS_BURST + ANSWERS_PER_S * took + 1, (out, took)
        # Past twice the burst, messages are dropped unread by the connection's bucket.
        counts = refused_in_all(coord, ("rate_limited", "connection_rate_limited"), n - accepted)
        assert counts.get("rate_limited", 0) + counts.get("connection_rate_limited", 0) == \
            n - accepted, counts
        assert 0 < counts["rate_limited"] <= burst + 2 * rate * took + 1, (counts, took)
        assert counts["connection_rate_limited"] >= n - 2 * burst - 2 * rate * took - 1, \
            (counts, took)
        limited = counts["rate_limited"]
        assert counter.calls() == 0
        # Another agent is not affected, and this one is heard again once refilled.
        assert b.probe("sync", "0")[0] == "sync vps-b 0 1"
        time.sleep(burst / rate + 0.2)
        # Envelopes that claim its key but do not verify are not charged to it: someone
        # who knows an agent's public key cannot spend its share.
        # (Its connection's bucket is charged for them: past it, they go unread.)
        before = counts.get("connection_rate_limited", 0)
        took, forged = flood(a, "--count", "200", "--tamper", "sync", "1", timeout=0.5)
        counts = refused_in_all(coord, ("bad_signature", "connection_rate_limited"),
                                200 + before)
        assert counts.get("bad_signature", 0) + counts["connection_rate_limited"] == \
            200 + before, counts
        assert 2 * burst - 2 <= counts["bad_signature"] <= 2 * burst + 2 * rate * took + 1, \
            (counts, took)
        assert counts["rate_limited"] == limited, counts
        _, out = flood(a, "--count", str(burst), "sync", "1", timeout=0.5)
        assert out.get("sync", 0) == burst, out
    finally:
        coord.stop()


def test_registry_follows_server_changes(chan, tmp_path, pg, migrated_db):
    a = Agent(chan, tmp_path, "vps-a", "10.100.0.0/24")
    assert a.probe("sync", "0")[0] == "sync vps-a 0 1"
    # A server registered after start is known at once (the wgf_servers notification).
    b = Agent(chan, tmp_path, "vps-b", "10.101.0.0/24")
    assert b.probe("sync", "0")[0] == "sync vps-b 0 1"
    # A removed server's agent is a stranger again.
    status, _, _ = chan.request("DELETE", "/v1/servers/vps-b", chan.admin_key)
    assert status in (200, 204)
    deadline = time.monotonic() + 10
    while b.probe("sync", "0")[0].startswith("sync") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b.probe("sync", "0", timeout=1)[0].startswith(("error 3", "no-answer"))


def test_nonces_are_kept_for_twice_the_skew(pg, migrated_db):
    name, _ = migrated_db
    pg.psql("INSERT INTO servers (name, endpoint, pool, gateway, agent_key) VALUES "
            "('vps-a', 'a:1', '10.9.0.0/24', '10.9.0.1', decode(repeat('ab', 32), 'hex'))",
            dbname=name)
    pg.psql("INSERT INTO agent_nonces (server_id, nonce, seen_at) SELECT id, "
            "decode(repeat('01', 16), 'hex'), now() - interval '30 minutes' FROM servers; "
            "INSERT INTO agent_nonces (server_id, nonce, seen_at) SELECT id, "
            "decode(repeat('02', 16), 'hex'), now() - interval '3 hours' FROM servers",
            dbname=name)
    # 1,000 calls prune with probability 1 - 0.99^1000; a skew of 1 h keeps 2 h of nonces.
    pg.psql("SET wgfleet.nonce_keep = '2h'; SELECT count(*) FROM generate_series(1, 1000) g, "
            "LATERAL wgf_agent_begin(decode(repeat('ab', 32), 'hex'), "
            "decode(md5(g::text), 'hex')) s", dbname=name)
    rows = pg.psql("SELECT encode(nonce, 'hex') FROM agent_nonces WHERE seen_at < now() - "
                   "interval '1 minute'", dbname=name)
    assert rows == [["01" * 16]]


SP_REQ0 = b"\x00SP\x00\x00\x30\x00\x00"  # the SP header of a req0 peer


def sp_connect(coord):
    """A TCP connection to the channel that completes nng's handshake as a req0 peer."""
    host, port = coord.channel_url[len("tcp://"):].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(SP_REQ0)
    got = b""
    while len(got) < 8:
        chunk = s.recv(8 - len(got))
        if not chunk:
            break
        got += chunk
    return s


def is_closed(s, wait):
    """Whether the coordinator closed s within wait seconds."""
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def test_idle_and_half_sent_connections_are_closed(tmp_path, migrated_db):
    coord = start_coordinator(tmp_path, migrated_db[1], "idle_timeout = 2s\npoll_wait = 20s\n")
    try:
        a = Agent(coord, tmp_path, "vps-a", "10.100.0.0/24")
        assert a.probe("sync", "0")[0] == "sync vps-a 0 1"  # the epoch, so that it parks
        poll = subprocess.Popen([PROBE, "--url", coord.channel_url, "--coordinator",
                                 coord.channel_public_key, "--key", a.key_file, "--server",
                                 "vps-a", "--timeout", "30000", "hint", "0"],
                                stdout=subprocess.PIPE, text=True)
        socks = [sp_connect(coord) for _ in range(10)]
        for s in socks[:5]:
            # A 3 MiB message, of which 1 MiB is ever sent.
            s.sendall(struct.pack(">Q", 3 << 20) + b"\0" * (1 << 20))
        start = time.monotonic()
        closed = [is_closed(s, max(0.1, 15 - (time.monotonic() - start))) for s in socks]
        assert all(closed), closed
        assert refusal_counts(coord, {"idle_connection": 10})["idle_connection"] >= 10
        # The agent's parked poll kept its connection past the idle timeout.
        time.sleep(max(0, 3 - (time.monotonic() - start)))
        add_router(coord, "vps-a")
        out, _ = poll.communicate(timeout=15)
        assert out.splitlines() == ["hint vps-a 1"]
        for s in socks:
            s.close()
    finally:
        poll.kill()
        coord.stop()


def test_connections_are_capped_per_address(tmp_path, migrated_db):
    coord = start_coordinator(tmp_path, migrated_db[1], "max_connections_per_address = 4\n")
    try:
        socks = [sp_connect(coord) for _ in range(10)]
        closed = [is_closed(s, 2) for s in socks]
        assert closed.count(False) == 4, closed
        assert refusal_counts(coord, {"too_many_connections": 6})["too_many_connections"] == 6
        for s in socks:
            s.close()
        # Closed connections free their places: an agent gets in again.
        a = Agent(coord, tmp_path, "vps-a", "10.100.0.0/24")
        deadline = time.monotonic() + 10
        while a.probe("sync", "0", timeout=1)[0] != "sync vps-a 0 1":
            assert time.monotonic() < deadline
    finally:
        coord.stop()


def test_a_stuck_api_does_not_starve_the_channel(tmp_path, pg, migrated_db):
    # One API connection and a queue of two: requests blocked on a lock fill them both.
    coord = start_coordinator(tmp_path, migrated_db[1], "[database]\nconnections = 1\n"
                              "queue_max = 2\n")
    name, _ = migrated_db
    try:
        a = Agent(coord, tmp_path, "vps-a", "10.100.0.0/24")
        lock = subprocess.Popen(["psql", pg.with_db(name), "-X", "-q", "-c",
                                 "BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE; "
                                 "SELECT pg_sleep(6); COMMIT;"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        statuses = []
        threads = [threading.Thread(target=lambda: statuses.append(
            coord.request("GET", "/v1/status", coord.admin_key, timeout=20)[0]))
            for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        start = time.monotonic()
        assert a.probe("sync", "0", timeout=5)[0] == "sync vps-a 0 1"
        assert time.monotonic() - start < 3
        assert 503 in statuses  # the API's own queue was full meanwhile
        lock.wait(timeout=20)
        for t in threads:
            t.join(timeout=20)
    finally:
        coord.stop()
