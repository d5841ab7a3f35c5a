# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""One changed peer on a large interface writes one peer (issue 14, item 4).

Real parts: PostgreSQL, the coordinator, the agent on wireguard-go in a namespace. The
agent reaches wireguard-go through a UAPI relay of this test's (a unix socket that passes
every byte both ways between the agent and wireguard-go's own socket) that counts the
peers each `set=1` request names. With 2,000 peers on the interface, one router added
and one removed must each be one set naming one peer (a removal is a set with
remove=true); the periodic full passes in between (every 2 s) write nothing. And full
passes that run on a read taken on another thread while deltas were written write none
of those deltas' peers again and report no drift.
"""
import os
import socket
import threading
import time

import pytest

from conftest import log_lines
from test_agent_durable import BIG_POOL, change, desired, drift_rows
from test_story import World
from wglib import WG, WG_GO, new_key, wait_for

pytestmark = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces)")


class Relay:
    """A UAPI socket at dir/<ifname>.sock that forwards to `target` and records, per set
    request, how many peers (public_key= lines) it names."""

    def __init__(self, directory, ifname, target):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, ifname + ".sock")
        self.target = target
        self.sets = []  # peers named by each set request, in order
        self.get_delay = 0.0  # seconds each get's reply is held back before it is passed on
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.relay, args=(conn,), daemon=True).start()

    def relay(self, conn):
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(self.target)
        conn.settimeout(30)
        up.settimeout(30)
        hold = [0.0]  # monotonic time before which no reply byte goes on

        def down():
            try:
                while (data := up.recv(65536)):
                    wait = hold[0] - time.monotonic()
                    if wait > 0:
                        time.sleep(min(wait, 10))
                    conn.sendall(data)
            except OSError:
                pass
            finally:
                conn.close()
        threading.Thread(target=down, daemon=True).start()
        pending = b""
        try:
            while (data := conn.recv(65536)):
                up.sendall(data)
                pending += data
                # A request ends with an empty line.
                while b"\n\n" in pending:
                    request, pending = pending.split(b"\n\n", 1)
                    if request.startswith(b"set=1"):
                        with self.lock:
                            self.sets.append(request.count(b"\npublic_key="))
                    elif request.startswith(b"get=1") and self.get_delay:
                        hold[0] = time.monotonic() + self.get_delay
        except OSError:
            pass
        finally:
            up.close()

    def take(self):
        with self.lock:
            sets, self.sets = self.sets, []
        return sets

    def close(self):
        self.stopping = True
        self.srv.close()
        self.thread.join(timeout=5)


@pytest.fixture
def relayed(tmp_path, migrated_db):
    w = World(tmp_path, migrated_db[1], pool=BIG_POOL)
    relay = Relay(str(tmp_path / "uapi"), w.vps.ifname, w.vps.sock)
    with open(w.agent_conf, "a") as f:
        f.write(f"[wireguard]\nuapi_socket_directory = {tmp_path / 'uapi'}\n")
    try:
        yield w, relay
    finally:
        w.close()
        relay.close()


def test_one_changed_peer_writes_one_peer(relayed, pg, migrated_db):
    name, _ = migrated_db
    world, relay = relayed
    change(pg, name, add=2000)
    world.start_agent()
    wait_for("2,000 peers", lambda: world.vps_peers() == desired(pg, name), timeout=60)
    wait_for("their report", lambda: world.server().get("applied_revision") == int(
        pg.psql("SELECT revision FROM servers", dbname=name)[0][0]), timeout=30)
    assert sum(relay.take()) == 2000

    # One router through the API (a delta to the agent): reserved, keyed, deleted.
    status, _, r = world.api("POST", "/v1/routers", world.key, {"name": "one"})
    assert status == 201, r
    key = new_key()
    for what, call in (
            ("one added", lambda: world.api("PUT", f"/v1/routers/{r['id']}/public-key",
                                            world.key, {"public_key": key})),
            ("one removed", lambda: world.api("DELETE", f"/v1/routers/{r['id']}", world.key))):
        assert call()[0] in (200, 204), what
        want = desired(pg, name)
        wait_for(what, lambda: world.vps_peers() == want, timeout=10)
        # Two periodic full passes go by: they find nothing to write.
        time.sleep(4.5)
        assert relay.take() == [1], what
        assert world.vps_peers() == want
    # Both were delta passes (nothing read), not full passes that found one difference.
    lines = log_lines(world.agent_log.read_text(errors="replace"))
    passes = [(m["added"], m["removed"]) for m in lines
              if m.get("msg") == "Reconciled" and m.get("pass") == "delta"]
    assert passes == [("1", "0"), ("0", "1")], passes


def test_deltas_during_a_full_pass_read_are_written_once_and_not_drift(relayed, pg, migrated_db):
    """Full passes read the interface on another thread while deltas are written; the
    pass then skips the peers those deltas changed. The relay holds each get's reply
    back for 3 s (wireguard-go itself is free meanwhile, so sets go through), full
    passes are due every 250 ms, and 40 keys are submitted 200 ms apart: a pass runs on
    a read the deltas overlapped (the agent says so at debug); still every new peer is
    written exactly once (a pass on the older read would write it again and call it
    drift), no drift is reported, and the interface ends as the desired set."""
    name, _ = migrated_db
    world, relay = relayed
    conf = world.agent_conf.read_text().replace("reconcile_interval = 2s",
                                                "reconcile_interval = 250ms")
    world.agent_conf.write_text(conf + "[log]\nlevel = debug\n")
    change(pg, name, add=2000)
    world.start_agent()
    wait_for("2,000 peers", lambda: world.vps_peers() == desired(pg, name), timeout=60)
    wait_for("their report", lambda: world.server().get("applied_revision") == int(
        pg.psql("SELECT revision FROM servers", dbname=name)[0][0]), timeout=30)
    relay.take()
    relay.get_delay = 3.0
    pg.psql("UPDATE tenants SET reservations_per_hour = 100", dbname=name)
    ids = []
    for i in range(40):
        status, _, r = world.api("POST", "/v1/routers", world.key, {"name": f"r{i}"})
        assert status == 201, r
        ids.append(r["id"])
    for rid in ids:
        key = new_key()
        for _ in range(3):  # the API asks for a retry when the database is slow (503)
            status, _, r = world.api("PUT", f"/v1/routers/{rid}/public-key", world.key,
                                     {"public_key": key})
            if status != 503:
                break
        assert status == 200 or (status == 409 and _ > 0), r
        time.sleep(0.2)
    want = desired(pg, name)
    wait_for("the 40 new peers", lambda: world.vps_peers() == want, timeout=15)
    wait_for("a full pass on an overlapped read", lambda: "Full pass on a read that deltas "
             "overlapped" in world.agent_log.read_text(errors="replace"), timeout=15)
    time.sleep(0.5)  # that pass ends
    assert world.vps_peers() == want
    assert sum(relay.take()) == 40
    text = world.agent_log.read_text(errors="replace")
    assert "Drift repaired" not in text
    assert drift_rows(pg, name) == 0
