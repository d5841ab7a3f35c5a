# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The coordinator's database layer under faults, on a private cluster of its own: a
database that is gone makes the API answer 503 at once (not after request_deadline),
/readyz within a second, one log line when it is lost and one when it is back; and a
multi-host conninfo, whose socket libpq changes while connecting, is followed."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from apiutil import Fleet, expect
from conftest import PG_SH, Postgres, binary, log_messages, run

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
