# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The API's SQL functions called directly through psql, without the coordinator.

These pin down what the database promises on its own (migration 0004_api_v2): reply
bodies without status codes, one answer for a public key in use, router actions audited
under the router's tenant, placement on servers whose agent reports, changing and
removing servers, exact quota and rate counters under concurrency, and a pinned
search_path on every function.
"""
import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import MIGRATIONS, TOP, binary, run

IN_USE = "This public key is already registered; generate a new key pair on the router."
PINNED = "search_path=pg_catalog, public, pg_temp"


def hexkey():
    return os.urandom(32).hex()


def bytea(hex_text):
    return "NULL" if hex_text is None else f"'\\x{hex_text}'::bytea"


def lit(text):
    """A SQL literal for test-made text (names, intervals): no quotes inside."""
    if text is None:
        return "NULL"
    assert "'" not in text and "\\" not in text, text
    return f"'{text}'"


class Key:
    def __init__(self, prefix):
        self.prefix = prefix
        self.hash = hexkey()

    @property
    def args(self):
        return f"{lit(self.prefix)}, {bytea(self.hash)}"


class SqlError(Exception):
    def __init__(self, fields):
        super().__init__(fields)
        self.state = fields.get("state")
        self.code = fields.get("code")
        self.detail = fields.get("detail")
        self.hint = fields.get("hint")

    @property
    def answer(self):
        return (self.state, self.code, self.detail, self.hint)


def parse_error(stderr):
    """The first error in psql's verbose output: SQLSTATE, message, detail, hint."""
    fields = {}
    for line in stderr.splitlines():
        tag, _, value = line.partition(":  ")
        if tag.endswith("ERROR") and "state" not in fields:
            fields["state"], _, fields["code"] = value.partition(": ")
        elif tag.endswith("DETAIL") and "detail" not in fields:
            fields["detail"] = value
        elif tag.endswith("HINT") and "hint" not in fields:
            fields["hint"] = value
    return fields


class Api:
    """A migrated database, an admin key, and the API functions as Python calls."""

    def __init__(self, pg, name, admin=None):
        self.pg = pg
        self.name = name
        self.conninfo = pg.with_db(name)
        self.agent_keys = {}
        self.admin = admin
        if admin is None:
            self.admin = Key("admin-key-1")
            self.one(f"SELECT wgf_create_admin_key({self.admin.args}, 'test')")

    def psql_args(self, sql=None):
        args = ["psql", self.conninfo, "-X", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
                "-Atq"]
        return args + ["-c", sql] if sql is not None else args

    def session(self, app):
        """A psql session fed statements on its stdin, named app in pg_stat_activity."""
        return subprocess.Popen(self.psql_args(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PGAPPNAME=app))

    def wait_activity(self, app, condition, timeout=20):
        deadline = time.monotonic() + timeout
        while self.one(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                       f"{lit(app)} AND {condition}") != "1":
            assert time.monotonic() < deadline, f"{app}: {condition} not within {timeout}s"
            time.sleep(0.05)

    def rows(self, sql):
        proc = run(self.psql_args(sql))
        if proc.returncode != 0:
            raise SqlError(parse_error(proc.stderr))
        return [row.split("|") for row in proc.stdout.splitlines()]

    def one(self, sql):
        rows = self.rows(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def json(self, sql):
        return json.loads(self.one(sql))

    def error(self, sql):
        with pytest.raises(SqlError) as info:
            self.rows(sql)
        return info.value

    # ---- the API ----

    def tenant(self, slug, quota=100, rate=1000):
        self.json(f"SELECT wgf_api_create_tenant({self.admin.args}, {lit(slug)}, {lit(slug)}, "
                  f"{quota}, {rate}, NULL, NULL, 'test')")
        key = Key(f"tenant-key-{slug}")
        self.json(f"SELECT wgf_api_create_key({self.admin.args}, {lit(slug)}, {lit(key.prefix)}, "
                  f"{bytea(key.hash)}, 'test', 'test')")
        return key

    def server(self, name, pool="10.100.0.0/24", agent_key=True):
        gateway = pool.rsplit(".", 1)[0] + ".1"
        akey = hexkey() if agent_key else None
        self.agent_keys[name] = akey
        return self.json(f"SELECT wgf_api_create_server({self.admin.args}, {lit(name)}, "
                         f"{lit(name + '.example.net:51820')}, NULL, {lit(pool)}, "
                         f"{lit(gateway)}, {bytea(akey)}, {bytea(hexkey())}, 51820, 'test')")

    def reserve_sql(self, key, server=None, name=None, online=None, idem=None, nine=False):
        tail = "" if nine else f", {lit(online)}"
        return (f"SELECT wgf_api_reserve({key.args}, {lit(name)}, {lit(server)}, '1 day', "
                f"'0 seconds', 'test', {lit(idem)}, {bytea('00' * 32)}{tail})")

    def reserve(self, key, **kw):
        return self.json(self.reserve_sql(key, **kw))

    def set_key_sql(self, key, router_id, public_key, idem=None):
        return (f"SELECT wgf_api_set_public_key({key.args}, {lit(router_id)}, "
                f"{bytea(public_key)}, 25, 'test', {lit(idem)}, {bytea('11' * 32)})")

    def set_key(self, key, router_id, public_key, idem=None):
        return self.json(self.set_key_sql(key, router_id, public_key, idem))

    def delete(self, key, router_id):
        return self.json(f"SELECT wgf_api_delete_router({key.args}, {lit(router_id)}, 'test')")

    def report(self, server):
        """The server's agent says hello (any agent message marks the server seen)."""
        return self.rows(f"SELECT * FROM wgf_agent_wait({bytea(self.agent_keys[server])}, "
                         f"{bytea(os.urandom(16).hex())})")

    def delete_server_sql(self, name, force=False):
        return (f"SELECT wgf_api_delete_server({self.admin.args}, {lit(name)}, "
                f"{'true' if force else 'false'}, 'test')")

    def counters(self, slug):
        """(live_routers counter, live routers in the table)."""
        row = self.rows(f"SELECT t.live_routers, (SELECT count(*) FROM routers r WHERE "
                        f"r.tenant_id = t.id AND r.released_at IS NULL) FROM tenants t "
                        f"WHERE t.slug = {lit(slug)}")[0]
        return int(row[0]), int(row[1])


@pytest.fixture
def api(pg, migrated_db):
    name, _ = migrated_db
    return Api(pg, name)


class Barrier:
    """Holds an advisory lock that concurrent psql sessions wait for, to start them
    together: each runs BEGIN; pg_advisory_xact_lock_shared; its statement; COMMIT."""

    LOCK = 4242

    def __init__(self, api):
        self.api = api
        self.proc = subprocess.Popen(["psql", api.conninfo, "-X", "-Atq"], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.proc.stdin.write(f"SELECT pg_advisory_lock({self.LOCK});\n")
        self.proc.stdin.flush()
        self.wait_for(1, granted=True)

    def wait_for(self, n, granted, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = int(self.api.one(f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                   f"AND objid = {self.LOCK} AND granted = {granted}"))
            if got >= n:
                return
            time.sleep(0.05)
        raise AssertionError(f"{n} sessions did not reach the barrier within {timeout}s")

    def run(self, statements, timeout=60):
        """Runs each statement in its own session, all released at once; returns
        (outputs of those that succeeded, SqlErrors of those that failed)."""
        procs = [subprocess.Popen(self.api.psql_args(
            f"BEGIN; SELECT pg_advisory_xact_lock_shared({self.LOCK}); {sql}; COMMIT"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for sql in statements]
        try:
            self.wait_for(len(procs), granted=False, timeout=timeout)
        finally:
            self.proc.stdin.write(f"SELECT pg_advisory_unlock({self.LOCK});\n\\q\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=timeout)
        ok, errors = [], []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            if p.returncode == 0:
                ok.append(json.loads(out.splitlines()[-1]))
            else:
                errors.append(SqlError(parse_error(err)))
        return ok, errors


# ---- search_path ----

def test_every_function_pins_its_search_path(api):
    rows = api.rows("SELECT p.oid::regprocedure, coalesce(array_to_string(p.proconfig, ';'), '') "
                    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p') AND NOT EXISTS ("
                    "SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
                    "AND d.objid = p.oid AND d.deptype = 'e') ORDER BY 1")
    names = {r[0].split("(")[0] for r in rows}
    assert {"wgf_raise", "routers_check_transition", "wgf_api_reserve",
            "wgf_api_delete_server", "wgf_agent_begin"} <= names
    assert [r[0] for r in rows if PINNED not in r[1].split(";")] == []


def test_a_temporary_table_cannot_stand_in_for_a_schema_table(api):
    # Without a pinned search_path, pg_temp comes first for tables: a session's own
    # api_keys would decide who is an admin.
    fake = Key("fake-admin")
    err = api.error(f"CREATE TEMP TABLE api_keys AS SELECT * FROM public.api_keys LIMIT 0; "
                    f"INSERT INTO api_keys (id, tenant_id, scope, prefix, hash, created_at) "
                    f"VALUES (999, NULL, 'admin', {lit(fake.prefix)}, {bytea(fake.hash)}, now()); "
                    f"SELECT wgf_api_list_tenants({fake.args})")
    assert (err.state, err.code) == ("WG401", "unauthorized")


# ---- replies are bodies ----

def test_replies_are_bodies_and_replays_return_the_stored_body(api):
    acme = api.tenant("acme")
    api.server("vpn1")
    r = api.reserve(acme, name="r1", idem="idem-1")
    assert "status" not in r and "body" not in r
    assert r["name"] == "r1" and r["vpn_status"] == "pending"
    assert r["_server"]["endpoint"] == "vpn1.example.net:51820"
    assert api.reserve(acme, name="r1", idem="idem-1") == r
    assert api.one("SELECT count(*) FROM routers") == "1"

    key = hexkey()
    s = api.set_key(acme, r["id"], key, idem="idem-2")
    assert "status" not in s and s["vpn_status"] == "configured" and "_server" in s
    assert api.set_key(acme, r["id"], key, idem="idem-2") == s
    # Setting the key the router already has is a success with the same body.
    assert api.set_key(acme, r["id"], key)["public_key"] == s["public_key"]

    assert api.delete(acme, r["id"]) == {}
    made = api.json(f"SELECT wgf_api_create_key({api.admin.args}, 'acme', 'spare-key', "
                    f"{bytea(hexkey())}, NULL, 'test')")
    assert api.json(f"SELECT wgf_api_revoke_key({api.admin.args}, {made['id']}, 'test')") == {}


# ---- a key in use ----

def test_a_key_in_use_gets_one_answer_whoever_holds_it(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    api.server("vpn1")
    held, own, other = (api.reserve(acme)["id"], api.reserve(acme)["id"],
                        api.reserve(globex)["id"])
    key = hexkey()
    api.set_key(acme, held, key)
    mine = api.error(api.set_key_sql(acme, own, key))
    theirs = api.error(api.set_key_sql(globex, other, key))
    assert mine.answer == theirs.answer
    assert (mine.state, mine.code, mine.detail) == ("WG409", "public_key_in_use", IN_USE)
    for value in (mine.detail, mine.hint or ""):
        assert held not in value and "acme" not in value
    # Nothing moved.
    assert api.one(f"SELECT count(*) FROM routers WHERE public_key = {bytea(key)}") == "1"


def test_a_key_taken_while_waiting_gets_the_same_answer(api):
    # The check finds the key free; the other transaction commits it before the update:
    # the unique index's violation must give the same answer as the check.
    acme, globex = api.tenant("acme"), api.tenant("globex")
    api.server("vpn1")
    first, second = api.reserve(acme)["id"], api.reserve(globex)["id"]
    key = hexkey()
    holder = api.session("holder")
    try:
        holder.stdin.write(f"BEGIN;\n{api.set_key_sql(acme, first, key)};\n")
        holder.stdin.flush()
        api.wait_activity("holder", "state = 'idle in transaction'")
        late = subprocess.Popen(api.psql_args(api.set_key_sql(globex, second, key)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PGAPPNAME="late"))
        api.wait_activity("late", "wait_event_type = 'Lock'")
        holder.stdin.write("COMMIT;\n\\q\n")
        holder.stdin.flush()
        holder.wait(timeout=20)
        _, err = late.communicate(timeout=20)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert late.returncode != 0
    got = SqlError(parse_error(err))
    assert (got.state, got.code, got.detail) == ("WG409", "public_key_in_use", IN_USE)
    assert api.one(f"SELECT r.id FROM routers r WHERE public_key = {bytea(key)}") == first


# ---- audit under the router's tenant ----

def test_admin_actions_on_a_router_are_audited_under_its_tenant(api):
    acme = api.tenant("acme")
    api.server("vpn1")
    r = api.reserve(acme)["id"]
    api.set_key(api.admin, r, hexkey())
    api.set_key(api.admin, r, hexkey())
    api.delete(api.admin, r)
    rows = api.rows(f"SELECT a.action, t.slug, a.api_key_id = k.id FROM audit_log a "
                    f"LEFT JOIN tenants t ON t.id = a.tenant_id "
                    f"LEFT JOIN api_keys k ON k.scope = 'admin' "
                    f"WHERE a.router_id = {lit(r)} ORDER BY a.id")
    assert rows == [["router.reserved", "acme", "f"], ["router.key_set", "acme", "t"],
                    ["router.key_rotated", "acme", "t"], ["router.deleted", "acme", "t"]]
    seen = api.json(f"SELECT wgf_api_audit({acme.args}, {lit(r)}, NULL, NULL, NULL, NULL, NULL, "
                    "NULL, NULL, false, NULL, 100)")
    assert [i["action"] for i in seen["items"]] == ["router.reserved", "router.key_set",
                                                    "router.key_rotated", "router.deleted"]


# ---- placement ----

def test_placement_takes_only_servers_whose_agent_reported(api):
    acme = api.tenant("acme")
    api.server("vpn1", "10.1.0.0/24")
    api.server("vpn2", "10.2.0.0/24")
    api.report("vpn2")
    # vpn1 is less used but silent: only vpn2 is a candidate.
    assert [api.reserve(acme, online="60 seconds")["server"] for _ in range(3)] == ["vpn2"] * 3
    # Without the condition (and through the 9-argument call), the least used wins.
    assert api.reserve(acme)["server"] == "vpn1"
    assert api.json(api.reserve_sql(acme, nine=True))["server"] == "vpn1"
    # A named server is used whether or not its agent reports.
    assert api.reserve(acme, server="vpn1", online="60 seconds")["server"] == "vpn1"

    api.rows("UPDATE servers SET last_seen_at = now() - interval '2 minutes'")
    err = api.error(api.reserve_sql(acme, online="60 seconds"))
    assert (err.state, err.code, err.detail) == (
        "WG409", "no_server_ready",
        "No server's agent has reported in the last 60 seconds; name a server or start its agent.")
    assert api.reserve(acme, online="3 minutes")["server"] == "vpn1"

    # A reporting server with no address left is the pool's problem, as before.
    api.server("vpn3", "10.3.0.0/30")
    api.report("vpn3")
    assert api.reserve(acme, online="60 seconds")["server"] == "vpn3"
    err = api.error(api.reserve_sql(acme, online="60 seconds"))
    assert (err.state, err.code, err.detail) == ("WG409", "pool_exhausted",
                                                 "No free address is left in the pool.")


# ---- changing and removing servers ----

def test_update_server_changes_only_what_it_is_given(api):
    api.server("vpn1")
    api.server("vpn2")
    agent2 = api.agent_keys["vpn2"]
    before = api.json(f"SELECT wgf_server_json(s) FROM servers s WHERE name = 'vpn1'")
    got = api.json(f"SELECT wgf_api_update_server({api.admin.args}, 'vpn1', "
                   f"'vpn1.example.org:51000', NULL, NULL, NULL, 51000, NULL, false, 'req-u')")
    assert got == dict(before, endpoint="vpn1.example.org:51000", listen_port=51000)
    assert api.json("SELECT detail FROM audit_log WHERE action = 'server.updated'") == \
        {"endpoint": "vpn1.example.org:51000", "listen_port": 51000}

    err = api.error(f"SELECT wgf_api_update_server({api.admin.args}, 'vpn1', NULL, NULL, "
                    f"{bytea(agent2)}, NULL, NULL, NULL, false, 'req-u')")
    assert (err.state, err.code) == ("WG409", "server_exists")
    err = api.error(f"SELECT wgf_api_update_server({api.admin.args}, 'nope', NULL, NULL, NULL, "
                    f"NULL, NULL, NULL, false, 'req-u')")
    assert (err.state, err.code) == ("WG404", "server_not_found")
    tenant = api.tenant("acme")
    err = api.error(f"SELECT wgf_api_update_server({tenant.args}, 'vpn1', NULL, NULL, NULL, "
                    f"NULL, NULL, NULL, false, 'req-u')")
    assert (err.state, err.code) == ("WG403", "forbidden")
    # A new agent key takes effect at once: the old one is refused, the new one known.
    new_agent = hexkey()
    old_agent, api.agent_keys["vpn1"] = api.agent_keys["vpn1"], new_agent
    api.json(f"SELECT wgf_api_update_server({api.admin.args}, 'vpn1', NULL, NULL, "
             f"{bytea(new_agent)}, NULL, NULL, NULL, false, 'req-u')")
    assert api.report("vpn1")[0][1] == "vpn1"
    err = api.error(f"SELECT wgf_agent_wait({bytea(old_agent)}, {bytea(os.urandom(16).hex())})")
    assert (err.state, err.code) == ("WG401", "unknown_sender")


def test_delete_server_refuses_while_routers_live_then_force_releases_them(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    api.server("vpn1")
    api.server("vpn2", "10.2.0.0/24")
    a1 = api.reserve(acme, server="vpn1")
    a2 = api.reserve(acme, server="vpn1")
    api.set_key(acme, a2["id"], hexkey())
    g1 = api.reserve(globex, server="vpn1")
    other = api.reserve(acme, server="vpn2")
    gone = api.reserve(globex, server="vpn1")
    api.one(f"UPDATE routers SET reservation_expires_at = now() - interval '1 second' "
            f"WHERE id = {lit(gone['id'])} RETURNING 1")
    assert api.one("SELECT wgf_sweep(100)") == "1"

    err = api.error(api.delete_server_sql("vpn1"))
    assert (err.state, err.code, err.detail) == (
        "WG409", "server_has_routers",
        "Server 'vpn1' has 3 live routers; delete them first, or remove it with force to "
        "release them.")
    assert api.one("SELECT count(*) FROM servers WHERE deleted_at IS NOT NULL") == "0"

    assert api.json(api.delete_server_sql("vpn1", force=True)) == \
        {"name": "vpn1", "released_routers": 3}
    assert api.rows("SELECT r.id, r.status, r.released_at IS NOT NULL FROM routers r "
                    "JOIN servers s ON s.id = r.server_id WHERE s.name = 'vpn1' ORDER BY r.id") == \
        sorted([[a1["id"], "deleted", "t"], [a2["id"], "deleted", "t"],
                [g1["id"], "deleted", "t"], [gone["id"], "expired", "t"]])
    assert api.rows("SELECT t.slug, a.detail::text FROM audit_log a JOIN tenants t "
                    "ON t.id = a.tenant_id WHERE a.action = 'router.deleted' ORDER BY a.vpn_ip") == \
        [["acme", '{"reason": "server removed"}'], ["acme", '{"reason": "server removed"}'],
         ["globex", '{"reason": "server removed"}']]
    assert api.json("SELECT detail FROM audit_log WHERE action = 'server.deleted'") == \
        {"released_routers": 3}
    assert api.counters("acme") == (1, 1) and api.counters("globex") == (0, 0)
    assert api.rows("SELECT count(*) FROM pool_addresses p JOIN servers s ON s.id = p.server_id "
                    "WHERE s.name = 'vpn1' UNION ALL SELECT count(*) FROM server_usage u "
                    "JOIN servers s ON s.id = u.server_id WHERE s.name = 'vpn1'") == [["0"], ["0"]]
    assert api.rows("SELECT agent_key IS NULL FROM servers WHERE name = 'vpn1'") == [["t"]]

    # The removed server is gone for every reader, and its agent is refused...
    names = [s["name"] for s in api.json(f"SELECT wgf_api_list_servers({api.admin.args})")["items"]]
    assert names == ["vpn2"]
    status = api.json(f"SELECT wgf_api_status({api.admin.args}, '1 minute', NULL, NULL)")
    assert [s["name"] for s in status["servers"]] == ["vpn2"]
    err = api.error(api.reserve_sql(acme, server="vpn1"))
    assert (err.state, err.code) == ("WG404", "server_not_found")
    assert api.reserve(acme)["server"] == "vpn2"
    err = api.error(f"SELECT wgf_agent_wait({bytea(api.agent_keys['vpn1'])}, "
                    f"{bytea(os.urandom(16).hex())})")
    assert (err.state, err.code) == ("WG401", "unknown_sender")
    err = api.error(api.delete_server_sql("vpn1", force=True))
    assert (err.state, err.code) == ("WG404", "server_not_found")
    # ...but history keeps its name.
    leases = api.json(f"SELECT wgf_api_leases({api.admin.args}, {lit(a1['vpn_ip'])}, NULL)")
    assert [i["server"] for i in leases["items"]] == ["vpn1"]
    assert api.json(f"SELECT wgf_api_get_router({globex.args}, {lit(gone['id'])})")["server"] == \
        "vpn1"

    # The name and the agent key can be registered again.
    old_agent = api.agent_keys["vpn1"]
    again = api.json(f"SELECT wgf_api_create_server({api.admin.args}, 'vpn1', "
                     f"'vpn1.example.net:51820', NULL, '10.100.0.0/24', '10.100.0.1', "
                     f"{bytea(old_agent)}, NULL, NULL, 'test')")
    assert again["name"] == "vpn1"
    assert api.report("vpn1")[0][1] == "vpn1"
    assert api.reserve(acme, server="vpn1")["server"] == "vpn1"
    assert api.one("SELECT count(*) FROM servers WHERE name = 'vpn1'") == "2"
    # Among live servers the name is still unique.
    err = api.error(f"SELECT wgf_api_create_server({api.admin.args}, 'vpn1', "
                    f"'vpn1.example.net:51820', NULL, '10.101.0.0/24', '10.101.0.1', NULL, NULL, "
                    f"NULL, 'test')")
    assert (err.state, err.code) == ("WG409", "server_exists")
    assert other["server"] == "vpn2"


def test_delete_server_without_routers_and_by_a_tenant(api):
    acme = api.tenant("acme")
    api.server("vpn1")
    err = api.error(f"SELECT wgf_api_delete_server({acme.args}, 'vpn1', true, 'test')")
    assert (err.state, err.code) == ("WG403", "forbidden")
    r = api.reserve(acme)
    err = api.error(api.delete_server_sql("vpn1"))
    assert err.detail.startswith("Server 'vpn1' has 1 live router;")
    api.delete(acme, r["id"])
    assert api.json(api.delete_server_sql("vpn1")) == {"name": "vpn1", "released_routers": 0}


def test_every_router_move_of_a_forced_delete_is_legal(api):
    # A router in each live status; the transition trigger would refuse an illegal move.
    acme = api.tenant("acme")
    api.server("vpn1")
    paths = [[], ["configured"], ["vps_ready"], ["vps_ready", "connected"],
             ["vps_ready", "connected", "disconnected"], ["failed"]]
    for path in paths:
        r = api.reserve(acme)
        if path:
            api.set_key(acme, r["id"], hexkey())
        for status in path[1:] if path[:1] == ["configured"] else path:
            api.one(f"UPDATE routers SET status = {lit(status)} WHERE id = {lit(r['id'])} "
                    f"RETURNING 1")
    assert api.rows("SELECT status FROM routers ORDER BY created_at, id") == \
        [["pending"], ["configured"], ["vps_ready"], ["connected"], ["disconnected"], ["failed"]]
    assert api.json(api.delete_server_sql("vpn1", force=True))["released_routers"] == 6
    assert api.counters("acme") == (0, 0)


# ---- quota and rate ----

def test_quota_is_exact_under_concurrency_and_counters_follow_every_release(api):
    acme = api.tenant("acme", quota=10, rate=1000)
    api.server("vpn1")
    api.server("vpn2", "10.2.0.0/24")
    ok, errors = Barrier(api).run([api.reserve_sql(acme, server="vpn1")] * 20)
    assert len(ok) == 10 and len(errors) == 10
    assert {(e.state, e.code) for e in errors} == {("WG403", "quota_exceeded")}
    assert api.counters("acme") == (10, 10)

    api.delete(acme, ok[0]["id"])
    assert api.counters("acme") == (9, 9)
    api.one(f"UPDATE routers SET reservation_expires_at = now() - interval '1 second' "
            f"WHERE id = {lit(ok[1]['id'])} RETURNING 1")
    assert api.one("SELECT wgf_sweep(100)") == "1"
    assert api.counters("acme") == (8, 8)
    # Deleting an expired router releases nothing a second time.
    api.delete(acme, ok[1]["id"])
    assert api.counters("acme") == (8, 8)
    api.reserve(acme, server="vpn2")
    api.reserve(acme, server="vpn2")
    assert api.counters("acme") == (10, 10)
    err = api.error(api.reserve_sql(acme, server="vpn2"))
    assert err.code == "quota_exceeded"
    assert api.json(api.delete_server_sql("vpn1", force=True))["released_routers"] == 8
    assert api.counters("acme") == (2, 2)
    # The admin's view reads the counter.
    tenants = api.json(f"SELECT wgf_api_list_tenants({api.admin.args})")["items"]
    assert [t["routers"] for t in tenants] == [2]


def test_rate_is_exact_under_concurrency_and_across_a_change_of_the_limit(api):
    acme = api.tenant("acme", quota=100, rate=7)
    api.server("vpn1")
    ok, errors = Barrier(api).run([api.reserve_sql(acme)] * 20)
    assert len(ok) == 7 and len(errors) == 13
    assert {(e.state, e.code) for e in errors} == {("WG429", "rate_limited")}
    assert all(3500 <= int(e.hint) <= 3600 for e in errors), [e.hint for e in errors]
    # Deleted reservations still count.
    for r in ok[:3]:
        api.delete(acme, r["id"])
    assert api.error(api.reserve_sql(acme)).code == "rate_limited"

    def patch(rate):
        api.json(f"SELECT wgf_api_update_tenant({api.admin.args}, 'acme', NULL, {rate}, NULL, "
                 "NULL, 'test')")

    patch(9)
    api.reserve(acme)
    api.reserve(acme)
    assert api.error(api.reserve_sql(acme)).code == "rate_limited"
    patch(5)
    assert api.error(api.reserve_sql(acme)).code == "rate_limited"
    # The window slides: the two oldest of nine leave the hour, which makes room for two.
    patch(9)
    api.rows("UPDATE routers SET created_at = created_at - interval '61 minutes' WHERE id IN "
             "(SELECT id FROM routers ORDER BY tenant_seq LIMIT 2)")
    api.reserve(acme)
    api.reserve(acme)
    err = api.error(api.reserve_sql(acme))
    assert err.code == "rate_limited" and 3500 <= int(err.hint) <= 3600
    assert api.one("SELECT count(*) FROM routers WHERE created_at > now() - interval '1 hour'") \
        == "9"
    patch(0)
    assert api.error(api.reserve_sql(acme)).code == "rate_limited"


def test_rate_and_quota_across_tenants_under_concurrency(api):
    # Tenants do not count against each other, and their counters stay exact.
    keys = {slug: api.tenant(slug, quota=3, rate=4) for slug in ("t1", "t2", "t3")}
    api.server("vpn1")
    statements = [api.reserve_sql(k) for k in keys.values() for _ in range(5)]
    ok, errors = Barrier(api).run(statements)
    assert len(ok) == 9 and sorted(e.code for e in errors) == ["quota_exceeded"] * 6
    for slug in keys:
        assert api.counters(slug) == (3, 3)
    # t1 frees one: quota allows it, the rate (4 an hour) allows one more, then not.
    first = api.rows("SELECT r.id FROM routers r JOIN tenants t ON t.id = r.tenant_id "
                     "WHERE t.slug = 't1' ORDER BY r.tenant_seq LIMIT 2")
    api.delete(keys["t1"], first[0][0])
    api.reserve(keys["t1"])
    api.delete(keys["t1"], first[1][0])
    assert api.error(api.reserve_sql(keys["t1"])).code == "rate_limited"
    assert api.counters("t1") == (2, 2)


# ---- the migration's backfill ----

def blake2b(text):
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


def test_migration_counts_routers_made_before_it(pg, db):
    # The migrator has no "up to version N": apply 0001-0003 as it would (one
    # transaction each, recorded with its checksum), make routers with the API of then,
    # and let the migrator apply the rest.
    name, conninfo = db

    def sql(text):
        return pg.psql(text, dbname=name)

    sql("CREATE TABLE wgf_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    old = [m for m in MIGRATIONS if m < "0004"]
    assert old == ["0001_core", "0002_api", "0003_agents"]
    for version, step in enumerate(old, start=1):
        path = os.path.join(TOP, "coordinator", "sql", step + ".sql")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        run(["psql", conninfo, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", path], check=True)
        sql(f"INSERT INTO wgf_schema_migrations (version, name, checksum) "
            f"VALUES ({version}, '{step}', '{blake2b(text)}')")
    admin, acme, globex = Key("admin-key-1"), Key("key-acme"), Key("key-globex")
    sql(f"SELECT wgf_create_admin_key({admin.args}, 'test')")
    for slug, key, rate in (("acme", acme, 5), ("globex", globex, 100)):
        sql(f"SELECT wgf_api_create_tenant({admin.args}, '{slug}', '{slug}', 100, {rate}, 't')")
        sql(f"SELECT wgf_api_create_key({admin.args}, '{slug}', {lit(key.prefix)}, "
            f"{bytea(key.hash)}, 't', 't')")
    sql(f"SELECT wgf_api_create_server({admin.args}, 'vpn1', 'vpn1.example.net:51820', NULL, "
        f"'10.100.0.0/24', '10.100.0.1', NULL, NULL, NULL, 't')")

    def reserve(key):
        # The reply of then: {"status": 201, "body": router}.
        return json.loads(sql(f"SELECT wgf_api_reserve({key.args}, NULL, NULL, '1 day', "
                              f"'0 seconds', 't', NULL, {bytea('00' * 32)})")[0][0])["body"]

    made = [reserve(acme)["id"] for _ in range(4)]
    reserve(globex)
    sql(f"SELECT wgf_api_delete_router({acme.args}, '{made[0]}', 't')")

    proc = run([binary("wgfleet-coordinator"), "--database", conninfo, "migrate"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"schema migrated from version 3 to {len(MIGRATIONS)}\n"
    api = Api(pg, name, admin)
    assert api.rows("SELECT slug, live_routers, reservations FROM tenants ORDER BY slug") == \
        [["acme", "3", "4"], ["globex", "1", "1"]]
    assert api.rows("SELECT tenant_seq FROM routers r JOIN tenants t ON t.id = r.tenant_id "
                    "WHERE t.slug = 'acme' ORDER BY r.created_at, r.id") == \
        [["1"], ["2"], ["3"], ["4"]]
    # Acme made four of its five this hour: one more, then the limit.
    api.reserve(acme)
    assert api.error(api.reserve_sql(acme)).code == "rate_limited"
    assert api.counters("acme") == (4, 4)
    # Running the recount again changes nothing.
    assert api.one("SELECT wgf_recount_tenants()") == "0"


# ---- bounded tenant writes (0005_tenant_writes) ----

def pin(api, name, value):
    """Replaces a constant function of the schema, pinned as the migrations pin it."""
    api.one(f"CREATE OR REPLACE FUNCTION {name}() RETURNS integer LANGUAGE sql IMMUTABLE "
            f"SET search_path = pg_catalog, public, pg_temp AS $$ SELECT {value} $$; SELECT 1")


def test_idempotency_replies_are_capped_per_api_key_the_oldest_going(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    api.server("vpn1")
    pin(api, "wgf_idem_kept", 3)
    made = [api.reserve(acme, name=f"r{i}", idem=f"i{i}") for i in range(5)]
    api.reserve(globex, idem="g0")

    def kept(slug):
        return api.rows(f"SELECT i.key FROM idempotency_keys i JOIN api_keys k ON "
                        f"k.id = i.api_key_id WHERE k.prefix = 'tenant-key-{slug}' ORDER BY seq")
    assert kept("acme") == [["i2"], ["i3"], ["i4"]] and kept("globex") == [["g0"]]
    assert api.reserve(acme, name="r4", idem="i4") == made[4]
    # A retry of a request older than the newest 3 is a new request.
    again = api.reserve(acme, name="r0", idem="i0")
    assert again["id"] != made[0]["id"]
    assert kept("acme") == [["i3"], ["i4"], ["i0"]]
    assert api.one("SELECT count(*) FROM routers") == "7"


def test_the_sweeper_compacts_the_change_log_below_what_agents_can_ask_for(api):
    acme = api.tenant("acme")
    api.server("vpn1")
    api.server("vpn2", "10.200.0.0/24")
    agent = api.agent_keys["vpn1"]
    api.json(f"SELECT wgf_api_update_tenant({api.admin.args}, 'acme', NULL, NULL, 1000, "
             "1000, 'test')")
    pin(api, "wgf_changes_kept", 2)
    r = api.reserve(acme, server="vpn1")
    for _ in range(4):
        api.set_key(acme, r["id"], hexkey())  # revisions 1, then 2-3, 4-5, 6-7
    other = api.reserve(acme, server="vpn2")
    api.set_key(acme, other["id"], hexkey())

    def revisions(server="vpn1"):
        return [int(x[0]) for x in api.rows(
            f"SELECT c.revision FROM changes c JOIN servers s ON s.id = c.server_id "
            f"WHERE s.name = '{server}' ORDER BY 1")]

    epoch = api.one("SELECT encode(wgf_epoch(), 'hex')")

    def sync(since):
        rows = api.rows(f"SELECT snapshot, op, change_revision, encode(public_key, 'hex') "
                        f"FROM wgf_agent_sync({bytea(agent)}, {bytea(os.urandom(16).hex())}, "
                        f"{bytea(epoch)}, {since}, false, 1000, 0, NULL, 8192)")
        return {"snapshot": rows[0][0] == "t",
                "changes": [int(x[2]) for x in rows[1:] if x[1]],
                "peers": [x[3] for x in rows[1:] if not x[1]]}
    # Nothing the agent has not applied goes.
    api.one("SELECT wgf_sweep(1000)")
    assert revisions() == [1, 2, 3, 4, 5, 6, 7]
    api.rows(f"SELECT * FROM wgf_agent_report({bytea(agent)}, {bytea(os.urandom(16).hex())}, "
             f"{bytea(epoch)}, 5, NULL, '{{}}', NULL, '{{}}', '{{}}', '{{}}', '{{}}', NULL, NULL, "
             "NULL, '{}', '3 minutes')")
    # Bounded per run: two rows, then the rest below min(applied 5, 7 - 2 kept).
    api.one("SELECT wgf_sweep(2)")
    assert revisions() == [3, 4, 5, 6, 7]
    api.one("SELECT wgf_sweep(1000)")
    assert revisions() == [6, 7] and revisions("vpn2") == [1]
    # An agent at 5 gets its deltas; one behind the compacted log gets a snapshot, never
    # a delta list with a hole; one up to date gets nothing.
    got = sync(5)
    assert got["snapshot"] is False and got["changes"] == [6, 7]
    for since in (1, 3, 4):
        got = sync(since)
        assert got["snapshot"] is True and got["changes"] == [], since
        assert got["peers"] == [api.one(f"SELECT encode(public_key, 'hex') FROM routers "
                                        f"WHERE id = '{r['id']}'")]
    got = sync(7)
    assert got["snapshot"] is False and got["changes"] == []
    # A removed server's log goes entirely.
    api.rows(api.delete_server_sql("vpn2", force=True))
    api.one("SELECT wgf_sweep(1000)")
    assert revisions("vpn2") == []


# ---- lock order between agents' reports and the API ----

def report_sql(api, server, fact_keys):
    """wgf_agent_report() with a handshake fact for each key (as the channel calls it)."""
    n = len(fact_keys)
    arr = lambda v, t: f"ARRAY[{', '.join([v] * n)}]::{t}[]" if n else f"'{{}}'::{t}[]"
    return (f"SELECT server FROM wgf_agent_report({bytea(api.agent_keys[server])}, "
            f"{bytea(os.urandom(16).hex())}, wgf_epoch(), 0, NULL, '{{}}'::text[], "
            f"{bytea(''.join(fact_keys))}, {arr('1', 'bigint')}, {arr(lit('192.0.2.1:1'), 'text')}, "
            f"{arr('0', 'bigint')}, {arr('0', 'bigint')}, NULL, NULL, NULL, '{{}}'::smallint[], "
            f"'180 seconds', '')")


def keyed_routers(api, n):
    """n routers of tenant acme on server vpn1, each with a key; their keys (hex)."""
    acme = api.tenant("acme")
    api.server("vpn1")
    keys = []
    for _ in range(n):
        r = api.reserve(acme)["id"]
        keys.append(hexkey())
        api.set_key(acme, r, keys[-1])
    return keys


def test_a_report_writes_only_the_routers_whose_facts_changed(api):
    # A periodic full report names every peer; unchanged ones must not be locked or
    # written (each row version costs, and the report holds its server's row meanwhile).
    keys = keyed_routers(api, 3)

    def versions():
        return api.rows("SELECT encode(public_key, 'hex'), xmin::text, xmax::text "
                        "FROM routers ORDER BY public_key")
    assert api.rows(report_sql(api, "vpn1", keys)) == [["vpn1"]]
    before = versions()
    assert api.rows(report_sql(api, "vpn1", keys)) == [["vpn1"]]
    assert versions() == before
    # A changed fact is written, and only that router's row.
    changed = report_sql(api, "vpn1", keys).replace(
        "ARRAY[1, 1, 1]::bigint[]", "ARRAY[1, 2000, 1]::bigint[]", 1)
    assert changed != report_sql(api, "vpn1", keys)
    assert api.rows(changed) == [["vpn1"]]
    after = versions()
    moved = [a[0] for a, b in zip(after, before) if a != b]
    assert moved == [keys[1]]
    assert api.one(f"SELECT extract(epoch FROM last_handshake_at)::int FROM routers "
                   f"WHERE public_key = {bytea(keys[1])}") == "2"


def test_a_report_writes_its_facts_as_hot_updates(api):
    # A fact (handshake, endpoint, counters) is in no index: with room left on each page
    # of routers, its update is a HOT one, the row alone and none of the table's indexes
    # (with full pages every router cost a write to each index: 50,000 took 4.7 s).
    keys = keyed_routers(api, 90)
    api.rows("VACUUM routers")
    # One transaction: the counters of this transaction's own writes.
    got = api.rows(report_sql(api, "vpn1", keys) + "; SELECT n_tup_upd, n_tup_hot_upd "
                   "FROM pg_stat_xact_user_tables WHERE relname = 'routers'")
    assert got[-1] == [str(len(keys)), str(len(keys))]
    assert api.one("SELECT count(*) FROM routers WHERE endpoint = '192.0.2.1:1'") == "90"


def test_a_report_moves_many_routers_in_one_statement_each_audited(api):
    # More than a few moves go through one statement (wgf_routers_move): each router
    # still moves and gets its audit entry, with the status it came from.
    keys = keyed_routers(api, 20)
    rev = api.one("SELECT revision FROM servers WHERE name = 'vpn1'")
    now_ms = int(time.time() * 1000)
    fresh = report_sql(api, "vpn1", keys).replace(
        "wgf_epoch(), 0,", f"wgf_epoch(), {rev},", 1).replace(
        f"ARRAY[{', '.join(['1'] * 20)}]::bigint[]",
        f"ARRAY[{', '.join([str(now_ms)] * 20)}]::bigint[]", 1)
    assert api.rows(fresh) == [["vpn1"]]
    assert api.rows("SELECT status, count(*) FROM routers GROUP BY 1") == [["connected", "20"]]
    assert api.rows("SELECT action, detail ->> 'from', count(*) FROM audit_log "
                    "WHERE actor = 'agent' GROUP BY 1, 2 ORDER BY 1") == [
        ["router.connected", "vps_ready", "20"], ["router.vps_ready", "configured", "20"]]


def plan_nodes(plan):
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def test_a_report_after_a_bulk_import_is_linear_without_statistics(api):
    # Routers added faster than autovacuum analyzes the table (an import, a fleet's
    # first keys): with statistics older than the rows, PostgreSQL estimated one router
    # for each side of a join of two row sets and nested them, so a report of 10,000
    # facts took 43.9 s instead of 0.3 s, was cancelled at the statement timeout while it
    # held its server's row, and key changes on that server timed out behind it. The
    # plans of every statement the report runs are taken from auto_explain: no node may
    # handle more rows (rows times loops) than a few for each router.
    n = 2000
    api.tenant("acme", quota=n)
    api.server("vpn1", pool="10.100.0.0/20")
    # Straight into the table, as an import's reservations and keys would leave them.
    api.rows(f"INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, public_key, "
             f"status, reservation_expires_at, configured_at, key_revision) "
             f"SELECT gen_random_uuid(), t.id, s.id, 'bulk', p.ip, sha256(p.ip::text::bytea), "
             f"'configured', now() + interval '1 day', now(), 1 FROM servers s "
             f"JOIN pool_addresses p ON p.server_id = s.id, tenants t "
             f"WHERE s.name = 'vpn1' AND t.slug = 'acme' ORDER BY p.ip LIMIT {n}; "
             f"UPDATE servers SET revision = 1 WHERE name = 'vpn1'")
    # As if autovacuum had not looked at the table since it was empty.
    api.rows("DELETE FROM pg_statistic WHERE starelid = 'routers'::regclass; "
             "UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE relname = 'routers'")
    # Every router applied, each with a fact (as an agent's first full report has).
    facts = lambda v, t: f"(SELECT array_agg({v}::{t} ORDER BY id) FROM routers)"
    report = (f"SELECT server FROM wgf_agent_report({bytea(api.agent_keys['vpn1'])}, "
              f"{bytea(os.urandom(16).hex())}, wgf_epoch(), 1, NULL, '{{}}'::text[], "
              f"(SELECT string_agg(public_key, ''::bytea ORDER BY id) FROM routers), "
              f"{facts('1', 'bigint')}, {facts(lit('192.0.2.1:1'), 'text')}, "
              f"{facts('0', 'bigint')}, {facts('0', 'bigint')}, NULL, NULL, NULL, "
              f"'{{}}'::smallint[], '180 seconds', '')")
    explain = ("LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
               "SET auto_explain.log_analyze = on; SET auto_explain.log_timing = off; "
               "SET auto_explain.log_nested_statements = on; "
               "SET auto_explain.log_format = json; SET auto_explain.log_level = notice; ")
    proc = run(api.psql_args(explain + report), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["vpn1"]
    decoder, plans, at = json.JSONDecoder(), [], 0
    while (at := proc.stderr.find("plan:", at)) >= 0:
        start = proc.stderr.index("{", at)
        plan, at = decoder.raw_decode(proc.stderr, start)
        plans.append(plan)
    assert len(plans) > 3, proc.stderr[:2000]
    worst = max((node.get("Actual Rows", 0) * node.get("Actual Loops", 1), node["Node Type"])
                for plan in plans for node in plan_nodes(plan["Plan"]))
    assert worst[0] <= 4 * n, f"a plan node handled {worst[0]} rows ({worst[1]})"
    assert api.rows("SELECT status, count(*) FROM routers GROUP BY 1") == [["vps_ready", str(n)]]
    assert api.one("SELECT count(*) FROM routers WHERE endpoint = '192.0.2.1:1'") == str(n)


def test_a_report_and_a_deletion_of_its_router_do_not_deadlock(api):
    # The API locks a router, then its server (the change's revision); a report holds
    # the server's row and must not wait for that router, or the two deadlock (40P01).
    # It skips the router and finishes while the deletion still holds it.
    acme = api.tenant("acme")
    api.server("vpn1")
    r = api.reserve(acme)["id"]
    key = hexkey()
    api.set_key(acme, r, key)
    deleter = api.session("deleter")
    try:
        deleter.stdin.write(f"BEGIN;\nSELECT 1 FROM routers WHERE id = {lit(r)} FOR UPDATE;\n")
        deleter.stdin.flush()
        api.wait_activity("deleter", "state = 'idle in transaction'")
        reporter = subprocess.Popen(api.psql_args(report_sql(api, "vpn1", [key])),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=dict(os.environ, PGAPPNAME="reporter"))
        out, rerr = reporter.communicate(timeout=20)
        deleter.stdin.write(f"SELECT wgf_api_delete_router({acme.args}, {lit(r)}, 'test');\n"
                            "COMMIT;\n\\q\n")
        deleter.stdin.flush()
        _, derr = deleter.communicate(timeout=20)
    finally:
        for p in (deleter,):
            if p.poll() is None:
                p.kill()
    assert deleter.returncode == 0, derr
    assert reporter.returncode == 0, rerr
    assert out.split() == ["vpn1"]
    assert api.one(f"SELECT status FROM routers WHERE id = {lit(r)}") == "deleted"
