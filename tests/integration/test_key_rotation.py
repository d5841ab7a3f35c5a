# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Rotating the channel's keys without downtime (issue 17, item 3).

Real parts: PostgreSQL, coordinators, the agent on wireguard-go in a namespace (the
story's World). The coordinator's key: agents first pin the old and the new key, the
coordinators then sign with the new one while still taking requests addressed to the
old one, and at last agents pin the new key alone. Every step keeps changes flowing.
"""
import os
import shutil
import time

import pytest

from apiutil import fleet_factory
from conftest import Coordinator, binary, run
from test_channel import PROBE, refusal_counts
from test_story import World, keyed_router_via_api
from wglib import WG, WG_GO, wait_for

assert fleet_factory  # a fixture, used by name

pytestmark = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces)")


@pytest.fixture
def world(tmp_path, migrated_db):
    w = World(tmp_path, migrated_db[1])
    try:
        yield w
    finally:
        w.close()


def pin(world, keys):
    """The agent's configuration with these coordinator keys pinned, and a restart."""
    text = world.agent_conf.read_text()
    line = next(l for l in text.splitlines() if l.startswith("public_key = "))
    world.agent_conf.write_text(text.replace(line, "public_key = " + ", ".join(keys)))
    world.stop_agent()
    world.start_agent()


def probe(url, coordinator, key_file, *args):
    proc = run([PROBE, "--url", url, "--coordinator", coordinator, "--key", key_file,
                "--server", "vps1", "--timeout", "3000", *args])
    return proc.stdout.splitlines()


def test_the_coordinator_key_is_rotated_without_downtime(world, tmp_path, migrated_db):
    old = world.coord.channel_public_key
    world.start_agent()
    wait_for("the agent seen", lambda: world.server()["last_seen_at"] is not None, timeout=15)
    _, a = keyed_router_via_api(world)
    wait_for("a on the VPS", lambda: a in world.vps_peers(), timeout=15)

    # A new key, made by the coordinator that will sign with it.
    (tmp_path / "c2").mkdir()
    c2 = Coordinator(tmp_path / "c2", migrated_db[1], secret_file=world.coord.secret_file,
                     channel_listen=world.chan,
                     extra=f"[channel]\npoll_wait = 20s\nrefusal_log_interval = 1s\n"
                           f"previous_public_keys = {old}\n")
    new = c2.channel_public_key
    assert new != old

    # 1. Agents pin both keys; the old coordinator still answers.
    pin(world, [old, new])
    _, b = keyed_router_via_api(world)
    wait_for("b on the VPS", lambda: b in world.vps_peers(), timeout=15)

    # 2. The coordinators sign with the new key. The agent's next request is still
    #    addressed to the old key (the one that answered last) and is taken.
    world.coord.stop()
    c2.admin_key = world.coord.admin_key
    c2.start()
    world.coord = c2
    _, c = keyed_router_via_api(world)
    wait_for("c on the VPS", lambda: c in world.vps_peers(), timeout=15)
    # Not one request was refused on the way: requests to the old key were taken (at
    # a fleet's scale, refusals are answered a few a second, so that matters).
    time.sleep(1.5)
    assert refusal_counts(c2, {}, timeout=0) == {}
    # An agent that pins only the old key refuses the new coordinator's answers.
    key_file = str(world.state / "signing.key")
    assert probe(world.chan, old, key_file, "sync", "0")[0].startswith("bad-answer")
    assert probe(world.chan, new, key_file, "sync", "0")[0].startswith("sync vps1")
    # Requests addressed to a key the coordinator never had are refused.
    stranger = run([PROBE, "--url", world.chan, "--coordinator", new, "--key", key_file,
                    "--server", "vps1", "--to", old[:-4] + "AAA=", "sync", "0"]).stdout
    assert stranger.startswith(("error 6", "bad-answer")) or "misaddressed" in stranger, stranger

    # 3. Agents pin the new key alone; the old one can be forgotten everywhere.
    pin(world, [new])
    _, d = keyed_router_via_api(world)
    wait_for("d on the VPS", lambda: d in world.vps_peers(), timeout=15)
    assert {a, b, c, d} <= world.vps_peers()


def new_agent_key(tmp_path, name):
    """A signing key made by `wgfleet-agent init` in a state directory of its own:
    (public key, key file)."""
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f"[agent]\nstate_directory = {tmp_path / name}\n")
    pub = run([binary("wgfleet-agent"), "--config", str(conf), "init"], check=True)
    return pub.stdout.strip(), str(tmp_path / name / "signing.key")


def test_the_agent_key_is_rotated_without_downtime(world, tmp_path):
    admin = world.coord.admin_key
    old_file = str(world.state / "signing.key")
    saved_old = str(tmp_path / "old.key")
    shutil.copy(old_file, saved_old)
    world.start_agent()
    wait_for("the agent seen", lambda: world.server()["last_seen_at"] is not None, timeout=15)
    new, new_file = new_agent_key(tmp_path, "next")
    other, _ = new_agent_key(tmp_path, "other")
    assert world.api("POST", "/v1/servers", admin, {
        "name": "vps2", "endpoint": "192.0.2.7:51820", "pool": "10.120.0.0/24",
        "gateway": "10.120.0.1", "agent_key": other})[0] == 201

    # Refused: a key another server has, the server's own key, a key that is no key.
    for body, want in (({"next_agent_key": other}, (409, "server_exists")),
                       ({"next_agent_key": world.agent_key}, (400, "invalid_request")),
                       ({"next_agent_key": "bm90IGEga2V5"}, (400, "invalid_request"))):
        status, _, got = world.api("PATCH", "/v1/servers/vps1", admin, body)
        assert (status, got["error"]["code"]) == want, (body, got)
    assert world.server()["next_agent_key"] is None

    # 1. The new key is registered beside the old one: both are heard.
    status, _, got = world.api("PATCH", "/v1/servers/vps1", admin, {"next_agent_key": new})
    assert status == 200 and got["next_agent_key"] == new, got
    chan, coord = world.chan, world.coord.channel_public_key
    wait_for("the new key heard", lambda: probe(chan, coord, new_file, "sync", "0")[0]
             .startswith("sync vps1"), timeout=10)
    assert probe(chan, coord, old_file, "sync", "0")[0].startswith("sync vps1")

    # 2. The agent restarts with its new key; changes keep arriving.
    world.stop_agent()
    with open(new_file, "rb") as src, open(old_file, "wb") as dst:
        dst.write(src.read())
    world.start_agent()
    _, a = keyed_router_via_api(world)
    wait_for("a on the VPS", lambda: a in world.vps_peers(), timeout=15)

    # 3. The new key becomes the server's key; the old one is refused from then on.
    status, _, got = world.api("PATCH", "/v1/servers/vps1", admin, {"agent_key": new})
    assert status == 200 and got["agent_key"] == new and got["next_agent_key"] is None, got
    wait_for("the old key refused",
             lambda: not probe(chan, coord, saved_old, "sync", "0")[0].startswith("sync"),
             timeout=10)
    _, b = keyed_router_via_api(world)
    wait_for("b on the VPS", lambda: b in world.vps_peers(), timeout=15)
    rows = world.api("GET", "/v1/audit?limit=50", admin)[2]["items"]
    assert any(r["action"] == "server.updated" and r.get("detail", {}).get("next_agent_key") == new
               for r in rows), rows


def test_a_deleted_server_gives_its_next_key_back(fleet_factory, tmp_path):
    f = fleet_factory()
    (k1, _), (k2, _) = new_agent_key(tmp_path, "k1"), new_agent_key(tmp_path, "k2")
    f.admin("POST", "/v1/servers", {"name": "a", "endpoint": "192.0.2.1:51820",
                                    "pool": "10.100.0.0/24", "gateway": "10.100.0.1",
                                    "agent_key": k1}, 201)
    f.admin("PATCH", "/v1/servers/a", {"next_agent_key": k2})
    f.admin("DELETE", "/v1/servers/a?force=true")
    assert f.scalar("SELECT count(*) FROM servers WHERE next_agent_key IS NOT NULL") == "0"
    f.admin("POST", "/v1/servers", {"name": "b", "endpoint": "192.0.2.2:51820",
                                    "pool": "10.101.0.0/24", "gateway": "10.101.0.1",
                                    "agent_key": k1}, 201)
    assert f.admin("PATCH", "/v1/servers/b", {"next_agent_key": k2})["next_agent_key"] == k2

