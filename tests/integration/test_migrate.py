# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""wgfleet-coordinator migrate against a real PostgreSQL."""
import subprocess

import pytest

from conftest import MIGRATIONS, binary, log_messages, run

N = len(MIGRATIONS)

TABLES = {"tenants", "api_keys", "servers", "pool_addresses", "routers",
          "router_transitions", "changes", "audit_log", "wgf_schema_migrations",
          "server_usage", "idempotency_keys", "agent_nonces", "wgf_epochs",
          "webhooks", "webhook_events", "webhook_deliveries", "webhook_pool_levels",
          "unknown_peers", "released_peers"}


def migrate(conninfo, *extra):
    return run([binary("wgfleet-coordinator"), "--database", conninfo, *extra, "migrate"])


def tables(pg, name):
    rows = pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", dbname=name)
    return {r[0] for r in rows}


def test_fresh_database_is_migrated_once(pg, db):
    name, conninfo = db
    first = migrate(conninfo)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"schema migrated from version 0 to {N}\n"
    assert tables(pg, name) == TABLES
    rows = pg.psql("SELECT version, name, length(checksum) FROM wgf_schema_migrations",
                   dbname=name)
    assert rows == [[str(i + 1), m, "64"] for i, m in enumerate(MIGRATIONS)]
    second = migrate(conninfo)
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"schema is current at version {N}\n"
    assert pg.psql("SELECT count(*) FROM wgf_schema_migrations", dbname=name) == [[str(N)]]


def test_concurrent_migrators_apply_each_step_once(pg, db):
    name, conninfo = db
    procs = [subprocess.Popen([binary("wgfleet-coordinator"), "--database", conninfo,
                               "migrate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(6)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    migrated = [o for o, _ in outputs if o.startswith("schema migrated")]
    current = [o for o, _ in outputs if o.startswith("schema is current")]
    assert len(migrated) == 1 and len(current) == 5, outputs
    assert pg.psql("SELECT count(*) FROM wgf_schema_migrations", dbname=name) == [[str(N)]]


def test_refuses_a_schema_newer_than_the_binary(pg, migrated_db):
    name, conninfo = migrated_db
    pg.psql("INSERT INTO wgf_schema_migrations (version, name, checksum) "
            f"VALUES ({N + 1}, '{N + 1:04d}_future', 'x')", dbname=name)
    proc = migrate(conninfo)
    assert proc.returncode == 1
    assert (f"the database schema is at version {N + 1}, newer than this wgfleet-coordinator "
            f"knows ({N}); run a newer binary") in proc.stderr
    status = run([binary("wgfleet-coordinator"), "--database", conninfo, "migrate-status"])
    assert status.returncode == 1
    assert f"{N + 1:04d} {N + 1:04d}_future applied" in status.stdout


def test_refuses_an_applied_migration_that_was_edited(pg, migrated_db):
    name, conninfo = migrated_db
    pg.psql("UPDATE wgf_schema_migrations SET checksum = repeat('0', 64) WHERE version = 1",
            dbname=name)
    proc = migrate(conninfo)
    assert proc.returncode == 1
    assert "applied migration 0001_core differs from this binary's 0001_core" in proc.stderr


def test_failed_step_rolls_back_completely(pg, db):
    name, conninfo = db
    # A table in the way makes 0001 fail part-way through.
    pg.psql("CREATE TABLE routers (x int)", dbname=name)
    proc = migrate(conninfo)
    assert proc.returncode == 1
    assert log_messages(proc.stderr) == [
        'Migration failed: migration 0001_core failed: relation "routers" already exists']
    # Nothing of the step remains: not the tables made before the failure, not its row.
    assert tables(pg, name) == {"routers", "wgf_schema_migrations"}
    assert pg.psql("SELECT count(*) FROM wgf_schema_migrations", dbname=name) == [["0"]]


def test_status_lists_applied_and_pending(pg, db):
    _, conninfo = db
    before = run([binary("wgfleet-coordinator"), "--database", conninfo, "migrate-status"])
    assert before.returncode == 1
    assert before.stdout == "".join(f"{i + 1:04d} {m} pending\n"
                                    for i, m in enumerate(MIGRATIONS))
    assert "run 'wgfleet-coordinator migrate'" in before.stderr
    migrate(conninfo)
    after = run([binary("wgfleet-coordinator"), "--database", conninfo, "migrate-status"])
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("0001 0001_core applied 20")
    assert after.stdout.count(" applied 20") == N


def test_unreachable_database_is_a_clear_error():
    proc = migrate("host=/nonexistent/wgf port=5432 dbname=x connect_timeout=2")
    assert proc.returncode == 1
    assert "cannot connect to the database" in proc.stderr


def test_password_in_conninfo_is_refused_and_not_logged():
    proc = migrate("host=/tmp dbname=x password=hunter2")
    assert proc.returncode == 1
    assert "holds a password; put it in a passfile" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("start,end,ok", [
    ("pending", "configured", True),
    ("pending", "connected", False),
    ("configured", "vps_ready", True),
    ("vps_ready", "pending", False),
    ("connected", "disconnected", True),
    ("expired", "configured", False),
])
def test_database_enforces_status_transitions(pg, migrated_db, start, end, ok):
    name, _ = migrated_db
    released = "now()" if start in ("expired", "deleted") else "NULL"
    pg.psql("INSERT INTO tenants (slug, name) VALUES ('t', 'T');"
            "INSERT INTO servers (name, endpoint, pool, gateway) "
            "VALUES ('s1', 'vps.example:51820', '10.100.0.0/24', '10.100.0.1');"
            "ALTER TABLE routers DISABLE TRIGGER routers_transition;"
            "INSERT INTO routers (tenant_id, server_id, vpn_ip, public_key, status, "
            "released_at, reservation_expires_at) VALUES (1, 1, '10.100.0.2', "
            f"decode(repeat('ab', 32), 'hex'), '{start}', {released}, "
            "now() + interval '1 day');"
            "ALTER TABLE routers ENABLE TRIGGER routers_transition", dbname=name)
    proc = pg.psql(f"UPDATE routers SET status = '{end}'", dbname=name, check=False)
    if ok:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0
        assert f"illegal router status transition {start} -> {end}" in proc.stderr


def test_database_requires_a_key_past_pending(pg, migrated_db):
    name, _ = migrated_db
    pg.psql("INSERT INTO tenants (slug, name) VALUES ('t', 'T');"
            "INSERT INTO servers (name, endpoint, pool, gateway) "
            "VALUES ('s1', 'vps.example:51820', '10.100.0.0/24', '10.100.0.1');"
            "INSERT INTO routers (tenant_id, server_id, vpn_ip, reservation_expires_at) "
            "VALUES (1, 1, '10.100.0.2', now() + interval '1 day')", dbname=name)
    proc = pg.psql("UPDATE routers SET status = 'configured'", dbname=name, check=False)
    assert proc.returncode != 0 and "routers_check" in proc.stderr
    proc = pg.psql("INSERT INTO routers (tenant_id, server_id, vpn_ip, "
                   "reservation_expires_at) VALUES (1, 1, '10.100.0.2', now())",
                   dbname=name, check=False)
    assert proc.returncode != 0 and "routers_live_ip" in proc.stderr
