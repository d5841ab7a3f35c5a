# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The coordinator's database layer under faults, on a private cluster of its own: a
database that is gone makes the API answer 503 at once (not after request_deadline),
/readyz within a second, one log line when it is lost and one when it is back; a
multi-host conninfo, whose socket libpq changes while connecting, is followed; and the
statements it prepares are prepared again on new connections, and survive a function
redefined under them."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from apiutil import Fleet, expect, fleet_factory  # noqa: F401 (fixtures)
from conftest import PG_SH, Postgres, binary, log_messages, run
from test_channel import Agent, add_router, router_status, start_channel

PGBIN = "/usr/lib/postgresql/15/bin"


@pytest.fixture
def own_pg():
    """A cluster of this test's own, which it may crash and start: durable, so that a
    crash loses no committed row."""
    directory = tempfile.mkdtemp(prefix="wgf-pgf-", dir="/tmp")
    os.chmod(directory, 0o755)
    server = Postgres(directory).start(fast=False)
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


def crash(pg):
    """Stops the server the hard way: no shutdown, as a killed host would."""
    run(["runuser", "-u", os.environ.get("WGF_PG_USER", "wgfleet-pg"), "--",
         f"{PGBIN}/pg_ctl", "-D", f"{pg.dir}/data", "-m", "immediate", "-w", "stop"],
        check=True)


def timed(fn):
    start = time.monotonic()
    value = fn()
    return value, time.monotonic() - start


def test_a_lost_database_is_503_at_once_and_logged_once(own_pg, tmp_path):
    name = own_pg.create_db()
    conninfo = own_pg.with_db(name)
    run([binary("wgfleet-coordinator"), "--database", conninfo, "migrate"], check=True)
    f = Fleet(own_pg, name, conninfo, tmp_path)
    f.start("[http]\nrequest_deadline = 10s\n")
    try:
        f.server()
        key = f.tenant("acme")
        expect(f.call("GET", "/v1/routers", key), 200)
        crash(own_pg)
        # Connections notice the loss at their next read; give them a moment.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if f.call("GET", "/readyz")[0] == 503:
                break
            time.sleep(0.1)
        # While it is down: every call answers 503 well before request_deadline.
        for _ in range(5):
            (status, _, payload), took = timed(lambda: f.call("GET", "/v1/routers", key))
            assert status == 503 and payload["error"]["code"] in ("unavailable", "timeout"), \
                payload
            assert took < 3, f"a call took {took:.1f}s with the database gone"
            (status, _, payload), took = timed(lambda: f.call("GET", "/readyz"))
            assert status == 503 and payload["error"]["code"] == "not_ready", payload
            assert took < 1.5, f"/readyz took {took:.1f}s"
            time.sleep(0.3)
        own_pg.start(fast=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if f.call("GET", "/v1/routers", key)[0] == 200:
                break
            time.sleep(0.1)
        expect(f.call("GET", "/v1/routers", key), 200)
        expect(f.call("GET", "/readyz"), 200)
        # One line each per pool (the API's, the channel's and the listener's), not one
        # per attempt; an idle pool may take its reconnect backoff (at most 5 s) to be back.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msgs = log_messages(f.coord.read_log())
            if msgs.count("Database is back") >= 3:
                break
            time.sleep(0.2)
        assert msgs.count("Database connection lost") == 3, msgs
        assert msgs.count("Database is back") == 3, msgs
    finally:
        f.stop()


def test_a_multi_host_conninfo_is_followed_as_the_socket_changes(own_pg, tmp_path):
    name = own_pg.create_db()
    conninfo = own_pg.with_db(name)
    run([binary("wgfleet-coordinator"), "--database", conninfo, "migrate"], check=True)
    # The first host is a socket directory where nothing listens: every connection
    # libpq makes tries it, fails, and moves to the second host on a new socket.
    missing = tempfile.mkdtemp(prefix="wgf-nohost-", dir="/tmp")
    parts = dict(p.split("=", 1) for p in conninfo.split())
    parts["host"] = f"{missing},{parts['host']}"
    multi = " ".join(f"{k}={v}" for k, v in parts.items())
    f = Fleet(own_pg, name, multi, tmp_path)
    f.start()
    try:
        f.server()
        key = f.tenant("acme")
        for _ in range(3):
            expect(f.call("GET", "/v1/routers", key), 200)
            crash(own_pg)
            own_pg.start(fast=False)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and f.coord.proc.poll() is None:
                if f.call("GET", "/v1/routers", key)[0] == 200:
                    break
                time.sleep(0.1)
            assert f.coord.proc.poll() is None, f.coord.read_log()[-2000:]
        expect(f.call("GET", "/v1/routers", key), 200)
    finally:
        f.stop()
        shutil.rmtree(missing, ignore_errors=True)


def test_a_multi_host_conninfo_follows_a_failover(tmp_path):
    """host=primary,standby target_session_attrs=read-write: the coordinator keeps
    running when the primary goes and the standby is promoted, and writes go on to the
    new primary (libpq moves to the next host's socket; once, the coordinator aborted
    there, watching a socket libpq had closed)."""
    from conftest import Coordinator
    top = tempfile.mkdtemp(prefix="wgf-pgm-", dir="/tmp")
    os.chmod(top, 0o755)
    primary = Postgres(os.path.join(top, "primary")).start()
    standby_dir = os.path.join(top, "standby")
    coord = None
    try:
        run([binary("wgfleet-coordinator"), "--database", primary.conninfo, "migrate"],
            check=True)
        proc = run(["bash", PG_SH, "standby", primary.dir, standby_dir])
        assert proc.returncode == 0, proc.stderr
        hosts = f"{primary.dir}/sock,{standby_dir}/sock"
        conninfo = " ".join([f"host={hosts}"] + [p for p in primary.conninfo.split()
                                                  if not p.startswith("host=")] +
                            ["target_session_attrs=read-write"])
        coord = Coordinator(str(tmp_path), conninfo)
        admin = coord.create_admin_key()
        coord.start()
        assert coord.request("POST", "/v1/tenants", admin,
                             {"slug": "before", "name": "Before"})[0] == 201
        standby = Postgres(standby_dir)
        standby.conninfo = proc.stdout.strip().splitlines()[-1]
        deadline = time.monotonic() + 15
        while standby.psql("SELECT count(*) FROM tenants WHERE slug = 'before'") != [["1"]]:
            assert time.monotonic() < deadline, "the standby never caught up"
            time.sleep(0.1)
        run(["bash", PG_SH, "stop", primary.dir], check=True)
        assert run(["bash", PG_SH, "promote", standby_dir]).returncode == 0
        start = time.monotonic()
        for _ in range(300):  # about 30 s at most
            status = coord.request("POST", "/v1/tenants", admin,
                                   {"slug": "after", "name": "After"})[0]
            assert coord.proc.poll() is None, "the coordinator exited"
            if status == 201:
                break
            assert status in (503,), status
            time.sleep(0.1)
        assert status == 201, "no write reached the promoted standby"
        print(f"multi-host failover: first write {time.monotonic() - start:.2f} s after "
              f"the promote")
        assert standby.psql("SELECT slug FROM tenants ORDER BY slug") == [["after"], ["before"]]
    finally:
        if coord:
            coord.stop()
        run(["bash", PG_SH, "wipe", standby_dir])
        primary.stop()
        shutil.rmtree(top, ignore_errors=True)


def test_a_restarted_database_serves_the_api_and_the_channel_again(own_pg, tmp_path):
    """Every connection after the restart is new and has nothing prepared: the API's
    calls and the agent's sync and report are prepared again and answered."""
    name = own_pg.create_db()
    conninfo = own_pg.with_db(name)
    run([binary("wgfleet-coordinator"), "--database", conninfo, "migrate"], check=True)
    coord = start_channel(tmp_path, conninfo)
    try:
        a = Agent(coord, tmp_path, "vps-a", "10.100.0.0/24")
        first, _, _ = add_router(coord, "vps-a")
        assert a.probe("sync", "0")[0] == "sync vps-a 1 1"
        assert a.probe("report", "1") == ["hint vps-a 1"]
        assert router_status(coord, first) == "vps_ready"
        crash(own_pg)
        own_pg.start(fast=False)
        deadline = time.monotonic() + 20
        while coord.request("GET", f"/v1/routers/{first}", coord.tenant_key)[0] != 200:
            assert time.monotonic() < deadline, "the API did not come back"
            time.sleep(0.1)
        second, pub, _ = add_router(coord, "vps-a")
        # The channel's pool may still be in its reconnect backoff (at most 5 s).
        deadline = time.monotonic() + 20
        while (lines := a.probe("sync", "1"))[0] != "sync vps-a 2 0":
            assert time.monotonic() < deadline, lines
            time.sleep(0.2)
        assert [line.split()[1:4] for line in lines[1:]] == [["upsert", "2", pub]]
        assert a.probe("report", "2") == ["hint vps-a 2"]
        assert router_status(coord, second) == "vps_ready"
    finally:
        coord.stop()


def test_a_function_redefined_under_a_running_coordinator_answers_as_before(fleet_factory):
    """A prepared statement whose function now returns another type is refused by
    PostgreSQL ("cached plan must not change result type"); the call is sent again
    unnamed and answered, as it was before statements were prepared."""
    f = fleet_factory("[database]\nconnections = 1\n")  # the next call finds it prepared
    f.tenant("acme")
    before = f.admin("GET", "/v1/tenants")
    f.sql("ALTER FUNCTION wgf_api_list_tenants(text, bytea) "
          "RENAME TO wgf_api_list_tenants_old; "
          "CREATE FUNCTION wgf_api_list_tenants(p text, h bytea) RETURNS json "
          "LANGUAGE sql AS 'SELECT wgf_api_list_tenants_old(p, h)::json'")
    for _ in range(2):  # the retry, then the statement sent unnamed
        assert f.admin("GET", "/v1/tenants") == before
    f.tenant("globex")
    assert [t["slug"] for t in f.admin("GET", "/v1/tenants")["items"]] == ["acme", "globex"]
