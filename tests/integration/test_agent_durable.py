# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The agent never removes a peer on stale knowledge (issue 15 item 2).

Real parts: PostgreSQL, the coordinator, the agent on wireguard-go in a namespace (the
story's World, with a pool big enough for thousands of routers). Routers are written
straight into the database, a whole change at one revision, as test_snapshot_pages does.

- Killed in the middle of applying a big set and restarted with the coordinator down,
  the agent restarts from the newest desired set it was given: no desired peer missing,
  no deleted peer back, nothing removed that the set wants, no false drift.
- A state directory that is full (a small tmpfs) or read-only leaves the cache behind
  the database: the agent says so once, and a restart with the coordinator down keeps
  the newer peers the interface has until the coordinator answers.

Every wait has a deadline; the agent's own debug lines count what it removed.
"""
import json
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import log_lines, run
from test_story import World
from wglib import WG, WG_GO, new_key, wait_for

pytestmark = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces, mounts)")

BIG_POOL = "10.100.0.0/19"


def debug_world(tmp_path, conninfo, pool):
    """The story's World on `pool`, its agent logging at debug; a generator for fixtures."""
    w = World(tmp_path, conninfo, pool=pool)
    with open(w.agent_conf, "a") as f:
        f.write("[log]\nlevel = debug\n")
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def big(tmp_path, migrated_db):
    yield from debug_world(tmp_path, migrated_db[1], BIG_POOL)


def change(pg, name, release=0, add=0):
    """One new revision of vps1: its `release` lowest routers deleted and `add` keyed
    routers added. Returns the revision. (It locks the server's row, then routers, as
    the agent's report does: the report never waits for a router, so they cannot
    deadlock.)"""
    pg.psql(f"""
BEGIN;
UPDATE servers SET revision = revision + 1;
CREATE TEMP TABLE gone ON COMMIT DROP AS
SELECT id FROM routers WHERE released_at IS NULL ORDER BY vpn_ip LIMIT {release};
UPDATE routers SET status = 'deleted', released_at = now() WHERE id IN (SELECT id FROM gone);
CREATE TEMP TABLE plan ON COMMIT DROP AS
SELECT gen_random_uuid() AS id, p.server_id, p.ip FROM pool_addresses p
WHERE p.router_id IS NULL ORDER BY p.ip LIMIT {add};
INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, public_key, status,
	reservation_expires_at, configured_at, key_revision, persistent_keepalive)
SELECT p.id, (SELECT id FROM tenants WHERE slug = 'acme'), p.server_id, 'bulk', p.ip,
	decode(md5(p.id::text) || md5(random()::text), 'hex'), 'configured',
	now() + interval '1 day', now(), (SELECT revision FROM servers), 25
FROM plan p;
UPDATE pool_addresses a SET router_id = p.id FROM plan p WHERE a.ip = p.ip;
UPDATE tenants SET live_routers = live_routers + {add},
	router_quota = greatest(router_quota, live_routers + {add} + 100) WHERE slug = 'acme';
COMMIT""", dbname=name)
    return int(pg.psql("SELECT revision FROM servers", dbname=name)[0][0])


def desired(pg, name):
    return {r[0] for r in pg.psql(
        "SELECT encode(public_key, 'base64') FROM routers "
        "WHERE released_at IS NULL AND public_key IS NOT NULL", dbname=name)}


def drift_rows(pg, name):
    return int(pg.psql("SELECT count(*) FROM audit_log WHERE action = 'server.drift_repaired'",
                       dbname=name)[0][0])


def cache_revision(world):
    try:
        return json.loads((world.state / "desired.json").read_text())["revision"]
    except (OSError, ValueError):
        return None


def log_since(world, offset):
    with open(world.agent_log, "rb") as f:
        f.seek(offset)
        return log_lines(f.read().decode(errors="replace"))


def removed_keys(lines):
    return {m["peer"] for m in lines if m.get("msg") == "Removing peer"}


def restart_agent(world):
    """Starts the agent again; returns where its new log lines begin."""
    offset = world.agent_log.stat().st_size
    world.start_agent()
    return offset


def wait_ready(world, offset, timeout=60):
    wait_for("the agent's first pass", lambda: any(
        b'msg=Ready' in line for line in open(world.agent_log, "rb").read()[offset:].splitlines()),
        timeout=timeout)


def hold(world, want, seconds):
    """Samples the interface for `seconds`: it must hold exactly `want` throughout."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        have = world.vps_peers()
        assert not (want - have), f"{len(want - have)} desired peers missing"
        assert not (have - want), f"{len(have - want)} peers back that are not desired"
        time.sleep(0.2)


def test_kill_mid_apply_then_restart_without_coordinator(big, pg, migrated_db):
    name, _ = migrated_db
    world = big
    r1 = change(pg, name, add=1000)
    first = desired(pg, name)
    world.start_agent()
    wait_for("the first set", lambda: world.vps_peers() == first, timeout=60)
    wait_for("the cache at the first set", lambda: cache_revision(world) == r1, timeout=20)

    # One revision drops 500 peers and adds 3,000: removals go first, then the
    # additions in chunks. The kill lands while the additions are under way.
    r2 = change(pg, name, release=500, add=3000)
    second = desired(pg, name)
    deleted, added = first - second, second - first
    assert len(deleted) == 500 and len(added) == 3000
    deadline = time.monotonic() + 60
    while True:
        have = world.vps_peers()
        if 0 < len(have & added) < len(added):
            break
        assert len(have & added) < len(added), "the apply ended before the kill"
        assert time.monotonic() < deadline, "the apply never started"
    world.stop_agent(signal.SIGKILL)
    partial = world.vps_peers()
    assert not (partial & deleted) and 0 < len(partial & added) < len(added)

    # The coordinator is down: the agent has only its cache.
    world.coord.stop()
    offset = restart_agent(world)
    wait_ready(world, offset)
    hold(world, second, 3.0)
    assert cache_revision(world) == r2
    assert not (removed_keys(log_since(world, offset)) & second)

    # The coordinator comes back: its snapshot changes nothing, and nothing was drift.
    world.coord.start()
    wait_for("a report of the second set",
             lambda: world.server().get("applied_revision") == r2, timeout=30)
    hold(world, second, 1.0)
    lines = log_since(world, offset)
    assert not (removed_keys(lines) & second)
    assert [m for m in lines if m.get("msg") == "Reconciled" and m["drift"] != "0"] == []
    assert drift_rows(pg, name) == 0


def mount_tmpfs(path, size):
    """A tmpfs of `size` on path, holding what path held (the signing key)."""
    saved = {p: (p.read_bytes(), p.stat().st_mode) for p in path.iterdir() if p.is_file()}
    run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        check=True)
    for p, (data, mode) in saved.items():
        p.write_bytes(data)
        p.chmod(mode)


def fill(path):
    """Fills the file system of path to the last byte."""
    proc = run(["dd", "if=/dev/zero", f"of={path / 'filler'}", "bs=4k"], timeout=30)
    assert "No space left" in proc.stderr, proc.stderr


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_unwritable_cache_is_reported_and_restart_keeps_newer_peers(big, pg, migrated_db,
                                                                   fault):
    name, _ = migrated_db
    world = big
    world.state.mkdir(exist_ok=True)
    mount_tmpfs(world.state, "2m")
    try:
        r1 = change(pg, name, add=100)
        world.start_agent()
        wait_for("the first set", lambda: world.vps_peers() == desired(pg, name), timeout=30)
        wait_for("the cache at the first set", lambda: cache_revision(world) == r1, timeout=20)
        if fault == "full":
            fill(world.state)
        else:
            run(["mount", "-o", "remount,ro", str(world.state)], check=True)

        # Three more revisions reach the interface, but not the cache.
        for _ in range(3):
            rev = change(pg, name, add=100)
            want = desired(pg, name)
            wait_for("the new set", lambda: world.vps_peers() == want, timeout=30)
        assert cache_revision(world) == r1
        shown_error = wait_for("the cache error in GET /v1/servers",
                               lambda: world.server().get("cache_error"), timeout=15)
        status = world.api("GET", "/v1/status", world.coord.admin_key)[2]
        assert status["servers"][0]["cache_error"] == shown_error
        failing = wait_for("the cache error in the log", lambda: [
            m for m in log_since(world, 0)
            if m.get("msg", "").startswith("Cannot write the desired-state cache")])
        time.sleep(2.5)  # a pass or two more
        failing = [m for m in log_since(world, 0)
                   if m.get("msg", "").startswith("Cannot write the desired-state cache")]

        # Restarted with the coordinator down: the stale cache removes nothing.
        world.stop_agent(signal.SIGKILL)
        world.coord.stop()
        offset = restart_agent(world)
        wait_ready(world, offset)
        hold(world, want, 3.0)
        assert removed_keys(log_since(world, offset)) == set()
        # The cache error was said once, not once a pass, and reached the coordinator.
        assert len(failing) == 1, failing
        assert ("Read-only file system" if fault == "read-only" else "No space left") in \
            shown_error

        # The disk is fixed and the coordinator back: the cache catches up.
        if fault == "full":
            (world.state / "filler").unlink()
        else:
            # The running agent's mount namespace (ip netns exec made it) has its own
            # copy of the read-only mount.
            for pid in ("self", str(world.agent_proc.pid)):
                run(["nsenter", "-t", str(os.getpid()) if pid == "self" else pid, "-m",
                     "mount", "-o", "remount,rw", str(world.state)], check=True)
        world.coord.start()
        wait_for("the cache at the newest revision", lambda: cache_revision(world) == rev,
                 timeout=30)
        wait_for("the cache error cleared", lambda: world.server().get("cache_error") is None,
                 timeout=15)
        assert world.api("GET", "/v1/status", world.coord.admin_key)[2]["servers"][0][
            "cache_error"] is None
        hold(world, want, 1.0)
        lines = log_since(world, 0)
        assert removed_keys(lines) == set()
        assert [m for m in lines if m.get("msg") == "Reconciled" and m["drift"] != "0"] == []
        assert drift_rows(pg, name) == 0
    finally:
        world.stop_agent(signal.SIGKILL)
        subprocess.run(["umount", "-l", str(world.state)], capture_output=True, timeout=30)


def applied_revisions(lines):
    """(revision, added) of each pass that changed the interface, in order."""
    return [(int(m["revision"]), int(m["added"])) for m in lines
            if m.get("msg") == "Reconciled" and
            int(m["added"]) + int(m["updated"]) + int(m["removed"]) > 0]


def test_kills_during_applies_never_roll_back(big, pg, migrated_db):
    """SIGKILLs aimed at the apply window, the coordinator up: each restart goes forward
    from the newest set, never back to an older one and again forward."""
    name, _ = migrated_db
    world = big
    rounds, deadline = 5, time.monotonic() + 150
    change(pg, name, add=1000)
    world.start_agent()
    wait_for("the first set", lambda: world.vps_peers() == desired(pg, name), timeout=60)
    for i in range(rounds):
        assert time.monotonic() < deadline, f"round {i} out of time"
        before = desired(pg, name)
        change(pg, name, release=100, add=1200)
        want = desired(pg, name)
        added = want - before
        # Somewhere in the additions: a fifth of them, half, most, or after the end.
        share = (0.2, 0.5, 0.8, 0.95, 1.0)[i % 5]
        wait_for("the apply under way", lambda: len(world.vps_peers() & added) >=
                 share * len(added), timeout=60, interval=0.005)
        world.stop_agent(signal.SIGKILL)
        offset = restart_agent(world)
        wait_for("the newest set", lambda: world.vps_peers() == want, timeout=60)
        wait_for("a report of it", lambda: world.server().get("applied_revision") ==
                 int(pg.psql("SELECT revision FROM servers", dbname=name)[0][0]), timeout=30)
        lines = log_since(world, offset)
        assert not (removed_keys(lines) & want), f"round {i}: desired peers removed"
    lines = log_since(world, 0)
    revs = applied_revisions(lines)
    assert [r for r, _ in revs] == sorted(r for r, _ in revs), revs
    with_adds = [r for r, added in revs if added]
    assert len(with_adds) == len(set(with_adds)), revs
    assert [m for m in lines if m.get("msg") == "Reconciled" and m["drift"] != "0"] == []
    assert drift_rows(pg, name) == 0


KILL_PEERS = int(os.environ.get("WGF_KILL_PEERS", "1000"))


def api_call(world, method, path, body=None):
    """An API call with the tenant's key: (status, answer)."""
    status, _, answer = world.api(method, path, world.key, body)
    return status, answer


def api_deltas(world, rng, made):
    """1-4 routers reserved and keyed, and up to 2 of those made before deleted, through
    the API: each is a change the coordinator hands the agent as a delta."""
    for _ in range(rng.randint(1, 4)):
        status, r = api_call(world, "POST", "/v1/routers", {"name": "delta"})
        assert status == 201, r
        status, body = api_call(world, "PUT", f"/v1/routers/{r['id']}/public-key",
                                {"public_key": new_key()})
        assert status == 200, body
        made.append(r["id"])
    for _ in range(min(rng.randint(0, 2), len(made) - 1)):
        rid = made.pop(rng.randrange(len(made) - 1))
        assert api_call(world, "DELETE", f"/v1/routers/{rid}")[0] == 204


@pytest.fixture
def kill_world(tmp_path, migrated_db):
    """As `big`, with a pool for 30,000 routers when WGF_KILL_PEERS asks for more than
    the /19 holds."""
    yield from debug_world(tmp_path, migrated_db[1],
                           BIG_POOL if KILL_PEERS <= 4000 else "10.100.0.0/17")


def test_sigkill_at_random_points_keeps_every_peer_that_stays(kill_world, pg, migrated_db):
    """The agent SIGKILLed at random points of its applies (a big first set, then rounds
    that alternate a whole new set, written straight into the database so the agent
    gets it as a snapshot, and deltas made through the API, applied by delta passes;
    some restarts killed again during their first pass, when the coordinator's snapshot
    is applied): each restart reaches the desired set, and no peer that every set since
    wants is ever missing from the interface, sampled throughout. 20 rounds on 1,000
    peers here; WGF_KILL_PEERS=10000 (and WGF_KILL_ROUNDS) for the full-size run."""
    name, _ = migrated_db
    world = kill_world
    n_peers = KILL_PEERS
    rounds = int(os.environ.get("WGF_KILL_ROUNDS", "20"))
    rng = random.Random(int(os.environ.get("WGF_KILL_SEED", "14")))
    deadline = time.monotonic() + 60 + rounds * (10 + n_peers / 500)
    made = []  # routers this test made through the API: deltas delete some of them
    pg.psql("UPDATE tenants SET reservations_per_hour = 100000 WHERE slug = 'acme'",
            dbname=name)
    change(pg, name, add=n_peers)
    world.start_agent()
    # The first set, killed somewhere in its apply and started again.
    time.sleep(rng.uniform(0.05, 0.5))
    world.stop_agent(signal.SIGKILL)
    offsets = [restart_agent(world)]
    wait_for("the first set", lambda: world.vps_peers() == desired(pg, name), timeout=120)
    for i in range(rounds):
        assert time.monotonic() < deadline, f"round {i} out of time"
        before = desired(pg, name)
        if i % 2 == 0:
            change(pg, name, release=rng.randint(0, 50),
                   add=n_peers // 4 if i % 5 == 4 else rng.randint(1, 200))
        else:
            api_deltas(world, rng, made)
        want = desired(pg, name)
        stay = before & want
        time.sleep(rng.uniform(0.0, 0.3))
        world.stop_agent(signal.SIGKILL)
        offsets.append(restart_agent(world))
        if i % 2:
            # Killed again during the restart's first pass (the snapshot).
            time.sleep(rng.uniform(0.0, 0.4))
            world.stop_agent(signal.SIGKILL)
            offsets.append(restart_agent(world))

        def reached():
            have = world.vps_peers()
            missing = stay - have
            assert not missing, f"round {i}: {len(missing)} peers that stay were missing"
            return have == want
        wait_for(f"round {i}: the desired set", reached, timeout=60, interval=0.05)
        lines = log_since(world, offsets[-1 if i % 2 == 0 else -2])
        assert not (removed_keys(lines) & want), f"round {i}: desired peers removed"
    wait_for("a report of the last revision", lambda: world.server().get("applied_revision")
             == int(pg.psql("SELECT revision FROM servers", dbname=name)[0][0]), timeout=30)
    assert not (removed_keys(log_since(world, 0)) & desired(pg, name))
