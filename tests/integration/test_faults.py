# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The fault suite (issue 15 item 4): each fault on real parts, bounded in time.

test_story.py's World (PostgreSQL, the coordinator, the agent on wireguard-go in a
namespace), the agent logging at debug so that every peer it removes is a line of its
own ("Removing peer"), beside the counts of its "Reconciled" lines. Each case asserts
what does not depend on the machine's speed:

- no desired peer removed during the fault, from the agent's own lines (a peer is only
  ever removed after the database released it, and a released key never comes back);
- no acknowledged change lost: every key answered 200 reaches the interface;
- revisions applied in order without a duplicate ("Reconciled" passes that added);
- no false drift: no "Reconciled" line with drift, no server.drift_repaired audit row;
- convergence within a deadline generous for a loaded CI machine (30-60 s),

and records its convergence time against the 5 s target (record_convergence, which
tests/bench/faults_report.py collects into a table). The other cases of the item live
beside their fixtures: the partition in test_partition.py, the state directory full or
read-only and the restart with the coordinator down in test_agent_durable.py, the
lagging standby in test_epoch.py, the coordinator's side of a lost database in
test_db_faults.py.

Sizes are small on purpose (CI runs every case every time, on 2 shared cores): 100 key
submissions give a kill with acknowledged keys on both sides of it and one in flight;
the agent-kill case uses the 1,000-peer snapshot the item names and deltas of 120
changes, so an apply lasts long enough (tenths of a second) for random kills to land in
it, and 20 rounds to land in every part of it.
"""
import os
import random
import shutil
import signal
import tempfile
import threading
import time

import pytest

from conftest import PG_SH, Coordinator, Postgres, binary, log_lines, record_convergence, run
from test_agent_durable import (BIG_POOL, applied_revisions, change, desired, drift_rows,
                                log_since, removed_keys, restart_agent)
from test_story import World
from wglib import WG, WG_GO, new_key, wait_for

pytestmark = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces)")

PGBIN = "/usr/lib/postgresql/15/bin"


def debug_world(tmp_path, conninfo, **kw):
    w = World(tmp_path, conninfo, **kw)
    with open(w.agent_conf, "a") as f:
        f.write("[log]\nlevel = debug\n")
    return w


def set_urls(world, urls):
    world.write_agent_conf(urls)
    with open(world.agent_conf, "a") as f:
        f.write("[log]\nlevel = debug\n")


@pytest.fixture
def fw(tmp_path, migrated_db):
    w = debug_world(tmp_path, migrated_db[1], pool=BIG_POOL)
    try:
        yield w
    finally:
        w.close()


def roomy_tenant(pg, name):
    """Lifts acme's quota and reservation rate: the cases reserve more than a tenant's
    default (5 reservations an hour)."""
    pg.psql("UPDATE tenants SET router_quota = 100000, reservations_per_hour = 100000 "
            "WHERE slug = 'acme'", dbname=name)


def reserve(world, coord=None):
    status, _, r = world.api("POST", "/v1/routers", world.key, {}, coord=coord)
    assert status == 201, r
    return r["id"]


def put_key(world, rid, key, coord=None, idem=None):
    """PUT a key; returns the status, or None when the coordinator did not answer."""
    headers = {"Idempotency-Key": idem} if idem else None
    try:
        status, _, body = (coord or world.coord).request(
            "PUT", f"/v1/routers/{rid}/public-key", world.key, {"public_key": key},
            headers=headers, timeout=20)
    except OSError:
        return None, None
    return status, body


def kill_coordinator(coord):
    coord.proc.kill()
    coord.proc.wait(timeout=10)
    coord.log.close()


def check_agent_lines(world, pg, dbname, want, since=0, released=frozenset()):
    """What every case asserts of the agent's own log: nothing desired removed (and
    nothing but released keys), revisions in order without a duplicate, no drift."""
    lines = log_since(world, since)
    removed = removed_keys(lines)
    assert not (removed & want), f"{len(removed & want)} desired peers removed"
    assert removed <= set(released), f"{len(removed - set(released))} unreleased removed"
    counted = sum(int(m.get("removed", 0)) for m in lines if m.get("msg") == "Reconciled")
    assert counted <= len(released), f"Reconciled lines count {counted} removals"
    revs = applied_revisions(lines)
    assert [r for r, _ in revs] == sorted(r for r, _ in revs), revs
    with_adds = [r for r, added in revs if added]
    assert len(with_adds) == len(set(with_adds)), revs
    assert [m for m in lines if m.get("msg") == "Reconciled" and m["drift"] != "0"] == []
    assert drift_rows(pg, dbname) == 0


def test_coordinator_killed_while_keys_are_submitted(fw, pg, migrated_db):
    """100 key submissions at a steady pace (one every 20 ms), the coordinator SIGKILLed
    after the 50th answer and started again 1 s later; the client retries each unanswered
    PUT with its Idempotency-Key until it is answered."""
    name, _ = migrated_db
    world = fw
    roomy_tenant(pg, name)
    world.start_agent()
    wait_for("the server's key", lambda: world.server()["public_key"], timeout=15)
    ids = [reserve(world) for _ in range(100)]
    keys = {rid: new_key() for rid in ids}
    acked = {}  # rid -> monotonic time of its 200
    failures = []
    deadline = time.monotonic() + 90

    def submit():
        for rid in ids:
            while time.monotonic() < deadline:
                status, body = put_key(world, rid, keys[rid], idem=f"fault-{rid}")
                if status == 200:
                    acked[rid] = time.monotonic()
                    break
                if status is not None and status < 500:
                    failures.append((rid, status, body))
                    return
                time.sleep(0.05)
            time.sleep(0.02)

    t = threading.Thread(target=submit)
    t.start()
    try:
        wait_for("50 answers", lambda: len(acked) >= 50, timeout=30, interval=0.005)
        kill_coordinator(world.coord)
        before_kill = set(acked)
        time.sleep(1.0)
        world.coord.start()
        restarted = time.monotonic()
        first = wait_for("an answer from the restarted coordinator", lambda: next(
            (rid for rid, at in acked.items() if at >= restarted), None), timeout=30,
            interval=0.005)
        wait_for("the first key acknowledged after the restart on the interface",
                 lambda: keys[first] in world.vps_peers(), timeout=30, interval=0.01)
        took = time.monotonic() - restarted
    finally:
        t.join(timeout=100)
    assert not failures, failures
    assert len(acked) == 100
    record_convergence("coordinator SIGKILLed during 100 key submissions",
                       "restart -> first key acknowledged after it on the interface", took)
    want = set(keys.values())
    wait_for("every acknowledged key on the interface", lambda: world.vps_peers() == want,
             timeout=30)
    assert before_kill <= set(acked)

    # Retries with the same Idempotency-Key change nothing: no second change row.
    for rid in ids[::10]:
        status, body = put_key(world, rid, keys[rid], idem=f"fault-{rid}")
        assert status == 200 and body["public_key"] == keys[rid], body
    dup = pg.psql("SELECT router_id, count(*) FROM changes WHERE op = 'upsert' "
                  "GROUP BY router_id HAVING count(*) > 1", dbname=name)
    assert dup == [], dup
    assert int(pg.psql("SELECT count(*) FROM changes", dbname=name)[0][0]) == 100
    assert desired(pg, name) == want
    check_agent_lines(world, pg, name, want)


@pytest.mark.parametrize("victim", ["first", "second"])
def test_the_coordinator_in_use_killed_the_other_carries_on(fw, pg, migrated_db, victim):
    """Two replicas on one database, the agent dialing both (it takes turns between
    them); one is SIGKILLed and changes keep arriving through the other."""
    name, _ = migrated_db
    world = fw
    roomy_tenant(pg, name)
    other_url = f"ipc://{world.tmp}/other.sock"
    other = Coordinator(world.tmp, world.conninfo, channel_listen=other_url,
                        extra="[channel]\npoll_wait = 20s\n")
    other.start()
    try:
        set_urls(world, f"{world.chan},{other_url}")
        world.start_agent()
        wait_for("the server's key", lambda: world.server()["public_key"], timeout=15)
        dead, live = (world.coord, other) if victim == "first" else (other, world.coord)
        keys = []
        for _ in range(5):  # both replicas serve the agent
            k = new_key()
            assert put_key(world, reserve(world, live), k, coord=live)[0] == 200
            keys.append(k)
        wait_for("five peers", lambda: world.vps_peers() == set(keys), timeout=15)
        time.sleep(0.5)

        kill_coordinator(dead)
        killed = time.monotonic()
        k = new_key()
        assert put_key(world, reserve(world, live), k, coord=live)[0] == 200
        keys.append(k)
        wait_for("the change through the live replica", lambda: k in world.vps_peers(),
                 timeout=30, interval=0.005)
        took = time.monotonic() - killed
        record_convergence(f"two coordinators, the {victim} SIGKILLed",
                           "kill -> a key made after it on the interface", took)
        for _ in range(5):  # and more after it
            k = new_key()
            assert put_key(world, reserve(world, live), k, coord=live)[0] == 200
            keys.append(k)
        wait_for("every key", lambda: world.vps_peers() == set(keys), timeout=30)
        check_agent_lines(world, pg, name, set(keys))
    finally:
        other.stop()  # the dead one is only reaped; World.close stops world.coord


def test_planned_failover_to_a_streaming_standby(tmp_path):
    """A pg_basebackup standby streaming from the primary, the primary stopped cleanly
    once the standby has caught up, the standby promoted and the coordinator pointed at
    it: every acknowledged key is still there, the agent keeps every peer, and new keys
    reach the interface."""
    top = tempfile.mkdtemp(prefix="wgf-pgp-", dir="/tmp")
    os.chmod(top, 0o755)
    primary = Postgres(os.path.join(top, "primary")).start()
    standby_dir = os.path.join(top, "standby")
    run([binary("wgfleet-coordinator"), "--database", primary.conninfo, "migrate"],
        check=True)
    w = debug_world(tmp_path, primary.conninfo)
    try:
        roomy_tenant(primary, None)
        w.start_agent()
        wait_for("the server's key", lambda: w.server()["public_key"], timeout=15)
        acked = []
        for _ in range(10):
            k = new_key()
            assert put_key(w, reserve(w), k)[0] == 200
            acked.append(k)
        proc = run(["bash", PG_SH, "standby", primary.dir, standby_dir])
        assert proc.returncode == 0, proc.stderr
        standby = Postgres(standby_dir)
        standby.conninfo = proc.stdout.strip().splitlines()[-1]
        for _ in range(10):  # written while the standby streams
            k = new_key()
            assert put_key(w, reserve(w), k)[0] == 200
            acked.append(k)
        wait_for("the peers", lambda: w.vps_peers() == set(acked), timeout=15)
        wait_for("the standby caught up", lambda: standby.psql(
            "SELECT revision FROM servers") == primary.psql("SELECT revision FROM servers"),
            timeout=15)

        run(["bash", PG_SH, "stop", primary.dir], check=True)
        stopped = time.monotonic()
        assert run(["bash", PG_SH, "promote", standby_dir]).returncode == 0
        w.coord.stop()
        with open(w.coord.config) as f:
            text = f.read()
        with open(w.coord.config, "w") as f:
            f.write(text.replace(primary.conninfo, standby.conninfo))
        w.coord.start()
        restarted = time.monotonic()
        assert set(acked) <= desired(standby, None), "an acknowledged key was lost"
        assert set(acked) <= w.vps_peers(), "a peer was removed"
        k = new_key()
        assert put_key(w, reserve(w), k)[0] == 200
        acked.append(k)
        wait_for("a new key on the interface", lambda: k in w.vps_peers(), timeout=30,
                 interval=0.005)
        took = time.monotonic() - restarted
        record_convergence("planned failover to a streaming standby",
                           "coordinator restarted on the promoted standby -> a new key on "
                           f"the interface (primary stopped {restarted - stopped:.1f} s "
                           "before)", took)
        wait_for("the VPS equal to the promoted standby's set",
                 lambda: w.vps_peers() == desired(standby, None) == set(acked), timeout=30)
        check_agent_lines(w, standby, None, set(acked))
    finally:
        w.close()
        run(["bash", PG_SH, "wipe", standby_dir])
        primary.stop()
        shutil.rmtree(top, ignore_errors=True)


def kill_agent(world):
    world.stop_agent(signal.SIGKILL)


def test_agent_killed_at_random_points_of_snapshots_and_deltas(fw, pg, migrated_db):
    """20 rounds, the coordinator up, each a SIGKILL at a random point of an apply:
    even rounds during a 1,000-peer snapshot (the agent started after a "reboot": its
    cache and applied marker gone, wireguard-go restarted empty), odd ones during a delta of 100
    additions and 20 removals. The kill lands after a random share of a window the
    first, unkilled, apply of each kind measured. Each restart converges to the newest
    set without removing a desired peer, without a rollback, a duplicate or drift."""
    name, _ = migrated_db
    world = fw
    seed = int(os.environ.get("WGF_FAULTS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"seed {seed}")
    rounds, deadline = 20, time.monotonic() + 150
    change(pg, name, add=1000)
    released = set()

    world.agent_log.touch()

    def reboot():
        kill_agent(world)
        # A new VPS (or its state lost): no cache and no applied marker. With the
        # marker kept, the empty interface would be drift (a wireguard-go restarted
        # under the agent is, daemon.c) and the case would test that instead.
        for f in ("desired.json", "applied.json"):
            (world.state / f).unlink(missing_ok=True)
        world.vps.restart_empty()
        offset = restart_agent(world)
        return offset, time.monotonic()

    # The windows: an unkilled snapshot from an empty interface, and an unkilled delta.
    segments = []
    offset, started = reboot()
    segments.append(offset)
    want = desired(pg, name)
    wait_for("the first snapshot", lambda: world.vps_peers() == want, timeout=60)
    snap_s = time.monotonic() - started
    before = want
    change(pg, name, release=20, add=100)
    t0 = time.monotonic()
    want = desired(pg, name)
    released |= before - want
    wait_for("the first delta", lambda: world.vps_peers() == want, timeout=30,
             interval=0.005)
    delta_s = time.monotonic() - t0
    print(f"windows: snapshot {snap_s:.2f} s, delta {delta_s:.2f} s")

    worst, short = 0.0, 0
    for i in range(rounds):
        assert time.monotonic() < deadline, f"round {i} out of time"
        if i % 2 == 0:
            offset, _ = reboot()
            segments.append(offset)
            time.sleep(rng.uniform(0.0, 1.2 * snap_s))
        else:
            before = want
            change(pg, name, release=20, add=100)
            time.sleep(rng.uniform(0.0, 1.5 * delta_s))
        want = desired(pg, name)
        released |= before - want
        kill_agent(world)
        partial = world.vps_peers()
        assert not (partial - want - released), "a peer that was never desired"
        short += partial != want  # the kill landed before the apply's end
        restart_agent(world)
        restarted = time.monotonic()
        wait_for(f"round {i}: the newest set", lambda: world.vps_peers() == want,
                 timeout=60)
        worst = max(worst, time.monotonic() - restarted)
    record_convergence(f"agent SIGKILLed in {rounds} applies (1,000-peer snapshots, "
                       "120-change deltas)", "restart -> the newest set (worst round; "
                       f"{short} of {rounds} kills left the interface short of it)", worst)
    assert short >= 1, "no kill landed in an apply"
    wait_for("a report of the newest set", lambda: world.server().get("applied_revision")
             == int(pg.psql("SELECT revision FROM servers", dbname=name)[0][0]), timeout=30)
    # A reboot empties the interface, so each segment between reboots is checked alone.
    ends = segments[1:] + [world.agent_log.stat().st_size]
    for start, end in zip(segments, ends):
        with open(world.agent_log, "rb") as f:
            f.seek(start)
            text = f.read(end - start).decode(errors="replace")
        revs = applied_revisions(log_lines(text))
        assert [r for r, _ in revs] == sorted(r for r, _ in revs), revs
        with_adds = [r for r, added in revs if added]
        assert len(with_adds) == len(set(with_adds)), revs
    lines = log_since(world, 0)
    removed = removed_keys(lines)
    assert not (removed & want), f"{len(removed & want)} desired peers removed"
    assert removed <= released, f"{len(removed - released)} never-released peers removed"
    # A removal is counted in the "Reconciled" line of the pass that finished (a killed
    # pass writes none): at most once for each released peer.
    counted = sum(int(m.get("removed", 0)) for m in lines if m.get("msg") == "Reconciled")
    assert counted <= len(released), f"Reconciled lines count {counted} removals"
    assert [m for m in lines if m.get("msg") == "Reconciled" and m["drift"] != "0"] == []
    assert drift_rows(pg, name) == 0


def pg_crash(server):
    run(["runuser", "-u", os.environ.get("WGF_PG_USER", "wgfleet-pg"), "--",
         f"{PGBIN}/pg_ctl", "-D", f"{server.dir}/data", "-m", "immediate", "-w", "stop"],
        check=True)


DB_DOWN_S = float(os.environ.get("WGF_FAULTS_DB_DOWN", "30"))


@pytest.mark.parametrize("start", ["any-time", "between-hint-and-sync"])
def test_database_down_30_s_under_api_load(tmp_path, start):
    """PostgreSQL (durable, of this test's own) crashed for 30 s while a client submits a
    key every 50 ms (retried until answered): the agent keeps every peer (from its own
    lines, and sampled), calls during the outage are refused, never acknowledged and
    lost, and after the restart the acknowledged keys and new ones reach the interface.
    The coordinator's side of the outage (503 at once, /readyz, its log lines) is
    test_db_faults.py's.

    between-hint-and-sync: the outage begins after the coordinator answered the agent's
    long poll with news and before the agent's sync (the agent frozen with SIGSTOP
    meanwhile), so the poll is held while the sync is refused (BENCHMARKS.md section 9,
    the finding)."""
    top = tempfile.mkdtemp(prefix="wgf-pgd-", dir="/tmp")
    os.chmod(top, 0o755)
    server = Postgres(os.path.join(top, "pg")).start(fast=False)
    run([binary("wgfleet-coordinator"), "--database", server.conninfo, "migrate"],
        check=True)
    w = debug_world(tmp_path, server.conninfo)
    stop = threading.Event()
    acked, refused, unanswered = [], [], []
    try:
        roomy_tenant(server, None)
        w.start_agent()
        wait_for("the server's key", lambda: w.server()["public_key"], timeout=15)
        # Reserved up front: reservations need the database too.
        ids = [reserve(w) for _ in range(120)]
        for rid in ids[:20]:
            k = new_key()
            assert put_key(w, rid, k)[0] == 200
            acked.append(k)
        wait_for("the first peers", lambda: w.vps_peers() == set(acked), timeout=15)
        pending = list(ids[20:])

        def load():
            # A client as a real one is: each key retried (same Idempotency-Key) until
            # it is answered 200, a read between calls.
            while not stop.is_set() and pending:
                rid, k = pending.pop(0), new_key()
                while not stop.is_set():
                    status, _ = put_key(w, rid, k, idem=f"load-{rid}")
                    if status == 200:
                        acked.append(k)
                        break
                    if status is None:
                        unanswered.append(rid)
                    else:
                        refused.append(status)
                    time.sleep(0.05)
                try:
                    w.api("GET", "/v1/routers?limit=10", w.key)
                except OSError:
                    pass
                time.sleep(0.05)

        t = threading.Thread(target=load)
        t.start()
        time.sleep(1.0)
        # What the interface holds when the database goes must stay (a key acknowledged
        # a moment ago may not be applied yet on a slow, sanitized build).
        held = set(acked) & w.vps_peers()
        if start == "between-hint-and-sync":
            os.killpg(w.agent_proc.pid, signal.SIGSTOP)
            k = new_key()
            assert put_key(w, pending.pop(), k)[0] == 200
            acked.append(k)
            time.sleep(0.5)  # the hint goes out to the frozen agent
            pg_crash(server)
            os.killpg(w.agent_proc.pid, signal.SIGCONT)
        else:
            pg_crash(server)
        down_at = time.monotonic()
        samples = 0
        while time.monotonic() < down_at + DB_DOWN_S:
            assert held <= w.vps_peers(), "a peer was removed with the database down"
            samples += 1
            time.sleep(1.0)
        server.start(fast=False)
        up = time.monotonic()
        n_at_up = len(acked)
        wait_for("a key acknowledged after the database is back",
                 lambda: len(acked) > n_at_up, timeout=30, interval=0.01)
        api_s = time.monotonic() - up
        k = acked[n_at_up]
        # Generous: the agent's requests refused during the outage back off up to 30 s
        # (session.c), so it may ask again only that long after the database is back.
        wait_for("it on the interface", lambda: k in w.vps_peers(), timeout=45,
                 interval=0.005)
        took = time.monotonic() - up
        stop.set()
        t.join(timeout=30)
        record_convergence(f"PostgreSQL crashed for {DB_DOWN_S:.0f} s under API load"
                           + (", from between a hint and its sync" if start != "any-time"
                              else ""),
                           "database started -> the first key acknowledged after it on "
                           f"the interface (acknowledged {api_s:.2f} s after the start)", took)
        assert samples >= 3
        assert refused and all(s == 503 for s in refused), refused
        assert not unanswered, unanswered
        wait_for("every acknowledged key", lambda: set(acked) <= w.vps_peers(), timeout=30)
        want = desired(server, None)
        assert set(acked) <= want
        wait_for("the interface equal to the database", lambda: w.vps_peers() == want,
                 timeout=30)
        check_agent_lines(w, server, None, want)
    finally:
        stop.set()
        w.close()
        server.stop()
        shutil.rmtree(top, ignore_errors=True)
