"""A database restored from a backup: no ghost peer, no false vps_ready (issue 13 item 3).

The backup is a real pg_dump of the coordinator's database, restored with pg_restore
into the same database name while the coordinator is down; the agent runs throughout
on a wireguard-go "VPS" in a network namespace, holding peers the backup never saw.
Revisions repeat after the restore, so without epochs the agent ignored every desired
set below its own revision, kept routers the database had forgotten as ghost peers,
and reported its old revision as applied: routers created after the restore went
vps_ready without being on the VPS.
"""
import time

import os
import shutil
import signal
import tempfile

import pytest

from conftest import PG_SH, Postgres, binary, run
from test_story import World, keyed_router_via_api as keyed_router, world  # noqa: F401
from wglib import wait_for


def restore(pg, name, dump):
    pg.psql(f'DROP DATABASE "{name}" WITH (FORCE)')
    pg.psql(f'CREATE DATABASE "{name}"')
    proc = run(["pg_restore", "--no-owner", "-d", pg.with_db(name), str(dump)])
    assert proc.returncode == 0, proc.stderr


def desired_keys(pg, name):
    rows = pg.psql("SELECT encode(public_key, 'base64') FROM routers "
                   "WHERE released_at IS NULL AND public_key IS NOT NULL", dbname=name)
    return {r[0] for r in rows}


@pytest.mark.parametrize("new_epoch", [True, False], ids=["new-epoch", "forgotten"])
def test_restore_leaves_no_ghost_peer_and_no_false_vps_ready(world, pg, migrated_db,
                                                            tmp_path, new_epoch):
    name, conninfo = migrated_db
    world.start_agent()
    wait_for("the server's key", lambda: world.server()["public_key"], timeout=15)
    a_id, a = keyed_router(world)
    _, b = keyed_router(world)
    wait_for("a and b on the VPS", lambda: world.vps_peers() == {a, b}, timeout=10)

    dump = tmp_path / "backup.dump"
    proc = run(["pg_dump", "-Fc", "-f", str(dump), conninfo])
    assert proc.returncode == 0, proc.stderr

    # After the backup: c is added and a deleted, so the VPS runs ahead of the backup.
    _, c = keyed_router(world)
    assert world.api("DELETE", f"/v1/routers/{a_id}", world.key)[0] == 204
    _, e = keyed_router(world)
    wait_for("b, c and e only", lambda: world.vps_peers() == {b, c, e}, timeout=10)
    ahead = int(pg.psql("SELECT revision FROM servers", dbname=name)[0][0])

    world.coord.stop()
    restore(pg, name, dump)
    if new_epoch:
        out = run([binary("wgfleet-coordinator"), "--database", conninfo, "new-epoch"])
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.strip()) == 32
    assert int(pg.psql("SELECT revision FROM servers", dbname=name)[0][0]) < ahead
    world.coord.start()

    # The restored database knows a and b: c and e go (they would be ghosts), a returns.
    assert desired_keys(pg, name) == {a, b}
    wait_for("the VPS equal to the restored database",
             lambda: world.vps_peers() == {a, b}, timeout=15)

    # Routers made after the restore reuse revisions the agent saw before it: each is
    # vps_ready only once its peer is on the interface, never before.
    for _ in range(3):
        rid, k = keyed_router(world)
        deadline = time.monotonic() + 15
        while True:
            status = world.router(rid)["vpn_status"]
            on_vps = k in world.vps_peers()
            if status in ("vps_ready", "connected"):
                assert on_vps, f"{rid} went {status} before its peer reached the VPS"
                break
            assert status == "configured", status
            assert time.monotonic() < deadline, "never vps_ready"
            time.sleep(0.02)
    assert world.vps_peers() == desired_keys(pg, name)
    wait_for("the applied revision caught up",
             lambda: pg.psql("SELECT applied_revision = revision FROM servers",
                             dbname=name)[0][0] == "t", timeout=10)
    if new_epoch:
        assert len(pg.psql("SELECT epoch FROM wgf_epochs", dbname=name)) == 2


def test_a_promoted_lagging_standby_starts_a_new_epoch(tmp_path):
    """Failover to a standby that missed the last changes, which then makes changes of
    its own under the same revision numbers the agent already applied. The database
    sees it runs on a new timeline and starts a new epoch by itself, so the running
    agent (it never restarted, its revision equals the database's) takes a snapshot:
    the changes the standby missed leave the VPS, its own arrive."""
    top = tempfile.mkdtemp(prefix="wgf-pgs-", dir="/tmp")
    os.chmod(top, 0o755)
    primary = Postgres(os.path.join(top, "primary")).start()
    standby_dir = os.path.join(top, "standby")
    run([binary("wgfleet-coordinator"), "--database", primary.conninfo, "migrate"],
        check=True)
    w = World(tmp_path, primary.conninfo)
    try:
        w.start_agent()
        wait_for("the server's key", lambda: w.server()["public_key"], timeout=15)
        _, a = keyed_router(w)
        _, b = keyed_router(w)
        wait_for("a and b", lambda: w.vps_peers() == {a, b}, timeout=10)
        proc = run(["bash", PG_SH, "standby", primary.dir, standby_dir])
        assert proc.returncode == 0, proc.stderr
        standby = Postgres(standby_dir)
        standby.conninfo = proc.stdout.strip().splitlines()[-1]
        wait_for("the standby caught up", lambda: standby.psql(
            "SELECT revision FROM servers") == primary.psql("SELECT revision FROM servers"),
            timeout=15)
        run(["bash", PG_SH, "stop", standby_dir], check=True)

        # The primary goes on without its standby: c and d reach the VPS.
        _, c = keyed_router(w)
        _, d = keyed_router(w)
        wait_for("c and d", lambda: w.vps_peers() == {a, b, c, d}, timeout=10)
        lost = int(primary.psql("SELECT revision FROM servers")[0][0])

        # The primary is lost; the agent is frozen meanwhile, so it cannot ask before
        # the promoted standby has reused the revisions of c and d.
        os.killpg(w.agent_proc.pid, signal.SIGSTOP)
        w.coord.stop()
        run(["bash", PG_SH, "stop", primary.dir], check=True)
        assert run(["bash", PG_SH, "start", standby_dir]).returncode == 0
        assert run(["bash", PG_SH, "promote", standby_dir]).returncode == 0
        with open(w.coord.config) as f:
            text = f.read()
        with open(w.coord.config, "w") as f:
            f.write(text.replace(primary.conninfo, standby.conninfo))
        w.coord.start()
        _, e = keyed_router(w)
        _, f2 = keyed_router(w)
        assert int(standby.psql("SELECT revision FROM servers")[0][0]) == lost
        os.killpg(w.agent_proc.pid, signal.SIGCONT)

        wait_for("the VPS equal to the promoted standby's set",
                 lambda: w.vps_peers() == {a, b, e, f2}, timeout=15)
        epochs = standby.psql("SELECT reason FROM wgf_epochs ORDER BY id")
        assert len(epochs) == 2 and "timeline 2" in epochs[1][0], epochs
        wait_for("applied", lambda: standby.psql(
            "SELECT applied_revision = revision FROM servers")[0][0] == "t", timeout=10)
        assert w.vps_peers() == {a, b, e, f2}
    finally:
        w.close()
        run(["bash", PG_SH, "wipe", standby_dir])
        primary.stop()
        shutil.rmtree(top, ignore_errors=True)
