"""Snapshots in pages (issue 13 item 4): the union of the pages and the last page's
changes is exactly the desired set, however the set changes between pages, and the
real agent applies nothing of a snapshot before its last page.

Pages are made small ([channel] snapshot_page = 16) so a few hundred routers take many
pages; the full-size run (100,000 peers) is tests/bench/resync.py's.
"""
import base64
import os

import pytest

from test_story import POOL, World, keyed_router_via_api  # noqa: F401
from wglib import wait_for

PAGE = 16


@pytest.fixture
def paged(tmp_path, migrated_db):
    w = World(tmp_path, migrated_db[1], channel_extra=f"snapshot_page = {PAGE}\n")
    try:
        yield w
    finally:
        w.close()


def add_keyed(pg, name, n):
    """n keyed routers of tenant acme on vps1, straight into the database, at one new
    revision (as one change would)."""
    pg.psql(f"""
BEGIN;
CREATE TEMP TABLE plan ON COMMIT DROP AS
SELECT gen_random_uuid() AS id, p.server_id, p.ip FROM pool_addresses p
WHERE p.router_id IS NULL ORDER BY p.ip LIMIT {n};
UPDATE servers SET revision = revision + 1;
INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, public_key, status,
	reservation_expires_at, configured_at, key_revision, persistent_keepalive)
SELECT p.id, (SELECT id FROM tenants WHERE slug = 'acme'), p.server_id, 'paged', p.ip,
	decode(md5(p.id::text) || md5(random()::text), 'hex'), 'configured',
	now() + interval '1 day', now(), (SELECT revision FROM servers), 25
FROM plan p;
UPDATE pool_addresses a SET router_id = p.id FROM plan p WHERE a.ip = p.ip;
UPDATE server_usage SET used = used + {n} WHERE shard = 0;
UPDATE tenants SET live_routers = live_routers + {n},
	router_quota = greatest(router_quota, live_routers + {n} + 100) WHERE slug = 'acme';
COMMIT""", dbname=name)


def desired(pg, name):
    return {r[0] for r in pg.psql(
        "SELECT encode(public_key, 'base64') FROM routers "
        "WHERE released_at IS NULL AND public_key IS NOT NULL", dbname=name)}


def page(pg, name, base, after):
    """One wgf_agent_sync call as the channel makes it, for the next page after `after`."""
    after_sql = "NULL" if after is None else f"'\\x{after.hex()}'::bytea"
    rows = pg.psql(
        "SELECT snapshot, page_base, more, op, change_revision, encode(public_key, 'hex') "
        "FROM wgf_agent_sync((SELECT agent_key FROM servers), "
        f"'\\x{os.urandom(16).hex()}'::bytea, wgf_epoch(), 0, false, 1000, {base}, "
        f"{after_sql}, {PAGE})", dbname=name)
    head = rows[0]
    peers = [bytes.fromhex(r[5]) for r in rows[1:] if not r[3]]
    changes = [(r[3], int(r[4]), bytes.fromhex(r[5])) for r in rows[1:] if r[3]]
    return head[0] == "t", int(head[1]), head[2] == "t", peers, changes


def test_pages_and_their_changes_give_the_set_at_the_last_revision(paged, pg, migrated_db):
    name, _ = migrated_db
    add_keyed(pg, name, 200)
    have, base, after, rounds = {}, 0, None, 0
    while True:
        snapshot, got_base, more, peers, changes = page(pg, name, base, after)
        assert snapshot
        if got_base != base:
            have, base = {}, got_base  # a first page
        assert peers == sorted(peers) and len(set(peers)) == len(peers) <= PAGE
        assert after is None or not peers or peers[0] > after
        for k in peers:
            have[k] = True
        if not more:
            break
        after = peers[-1]
        rounds += 1
        # The set changes between pages: keys before and after the cursor go, new ones
        # come (anywhere in key order), and a key is replaced.
        if rounds in (2, 5):
            victims = pg.psql("SELECT id FROM routers WHERE released_at IS NULL "
                              "ORDER BY public_key LIMIT 2", dbname=name)
            for (rid,) in victims:
                assert paged.api("DELETE", f"/v1/routers/{rid}", paged.key)[0] == 204
            keyed_router_via_api(paged)
            last = pg.psql("SELECT id FROM routers WHERE released_at IS NULL "
                           "AND public_key IS NOT NULL ORDER BY public_key DESC LIMIT 1",
                           dbname=name)[0][0]
            new = base64.b64encode(os.urandom(32)).decode()
            assert paged.api("PUT", f"/v1/routers/{last}/public-key", paged.key,
                             {"public_key": new})[0] == 200
        assert rounds < 100
    assert rounds >= 12 and changes, (rounds, changes)
    assert [c[1] for c in changes] == sorted(c[1] for c in changes)
    for op, _, k in changes:
        if op == "1":
            have[k] = True
        else:
            have.pop(k, None)
    assert {base64.b64encode(k).decode() for k in have} == desired(pg, name)


def test_the_agent_resyncs_from_zero_in_pages(paged, pg, migrated_db):
    name, _ = migrated_db
    add_keyed(pg, name, 240)
    paged.start_agent()
    want = desired(pg, name)
    assert len(want) == 240
    wait_for("every peer on the VPS", lambda: paged.vps_peers() == want, timeout=30)
    wait_for("applied", lambda: pg.psql("SELECT applied_revision = revision FROM servers",
                                        dbname=name)[0][0] == "t", timeout=10)
    # A restart syncs from zero again (the session starts without a revision) and ends
    # with the same set, never a part of it.
    paged.stop_agent()
    keyed_router_via_api(paged)
    want = desired(pg, name)
    paged.start_agent()
    wait_for("every peer again", lambda: paged.vps_peers() == want, timeout=30)
