# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The API under concurrency: many tenants reserving at once through two coordinator
processes on one database, exact quota and rate limits, races on one public key and
one Idempotency-Key, and slow or idle clients that must not hold anything."""
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from apiutil import expect, fleet, fleet_factory, poll, wg_key

assert fleet and fleet_factory  # fixtures, used by name


def run_all(calls, workers):
    """Runs the zero-argument calls at once (released together by a barrier, in batches
    of `workers`); returns their results in order. Bounded: each call has its own HTTP
    timeout and the whole run at most 120 s."""
    barrier = threading.Barrier(min(workers, len(calls)))

    def start(i):
        if i < barrier.parties:
            barrier.wait(timeout=30)
        return calls[i]()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(start, i) for i in range(len(calls))]
        return [fut.result(timeout=120) for fut in futures]


def test_500_concurrent_reservations_from_20_tenants_through_two_coordinators(fleet_factory):
    f = fleet_factory()
    b = f.start()  # a second coordinator process on the same database
    f.server("vpn1", "10.100.0.0/23")
    f.server("vpn2", "10.102.0.0/23")
    tenants, quota, extra = 20, 25, 3
    keys = [f.tenant(f"t{i:02d}", quota=quota, rate=30) for i in range(tenants)]
    calls = []
    for attempt in range(quota + extra):
        for i, key in enumerate(keys):
            coord = f.coord if (attempt + i) % 2 == 0 else b
            calls.append(lambda key=key, coord=coord, i=i: (
                i, coord.request("POST", "/v1/routers", key=key, body={}, timeout=60)))
    started = time.monotonic()
    results = run_all(calls, workers=40)
    elapsed = time.monotonic() - started
    assert len(results) == tenants * (quota + extra) == 560

    made = {i: [] for i in range(tenants)}
    refused = Counter()
    for i, (status, headers, body) in results:
        if status == 201:
            made[i].append(body)
        else:
            assert (status, body["error"]["code"]) == (403, "quota_exceeded"), (status, body)
            refused[i] += 1
    # Exact quota: every tenant got exactly its quota; every extra attempt was a 403.
    assert {i: len(m) for i, m in made.items()} == {i: quota for i in range(tenants)}
    assert refused == {i: extra for i in range(tenants)}
    # Zero duplicate addresses, in the replies and in the database.
    addresses = [(r["server"], r["vpn_ip"]) for m in made.values() for r in m]
    assert len(addresses) == len(set(addresses)) == 500
    assert f.sql("SELECT count(*), count(DISTINCT (server_id, vpn_ip)) FROM routers "
                 "WHERE released_at IS NULL") == [["500", "500"]]
    assert f.sql("SELECT count(*) FROM routers GROUP BY tenant_id") == [["25"]] * tenants
    # The free list agrees: each live router holds exactly its own address, and no
    # network, gateway or broadcast address was handed out.
    assert f.scalar("SELECT count(*) FROM routers r JOIN pool_addresses p ON p.router_id = r.id "
                    "AND p.server_id = r.server_id AND p.ip = r.vpn_ip") == "500"
    assert f.scalar("SELECT count(*) FROM pool_addresses WHERE router_id IS NOT NULL") == "500"
    assert f.scalar("SELECT count(*) FROM routers r JOIN servers s ON s.id = r.server_id WHERE "
                    "host(r.vpn_ip) IN (host(s.gateway), host(network(s.pool)), "
                    "host(broadcast(s.pool)))") == "0"
    assert f.scalar("SELECT sum(used) FROM server_usage") == "500"
    assert f.scalar("SELECT count(*) FROM audit_log WHERE action = 'router.reserved'") == "500"
    # Both servers took a share (least used first).
    per_server = Counter(server for server, _ in addresses)
    assert set(per_server) == {"vpn1", "vpn2"} and min(per_server.values()) >= 100
    assert elapsed < 90, f"560 reservations took {elapsed:.1f}s"


def test_rate_limit_is_exact_under_concurrency(fleet_factory):
    f = fleet_factory()
    b = f.start()
    f.server()
    key = f.tenant("burst", quota=100, rate=5)
    calls = [lambda coord=(f.coord if i % 2 else b): coord.request(
        "POST", "/v1/routers", key=key, body={}, timeout=30) for i in range(10)]
    results = run_all(calls, workers=10)
    statuses = Counter(status for status, _, _ in results)
    assert statuses == {201: 5, 429: 5}, statuses
    for status, headers, body in results:
        if status == 429:
            assert body["error"]["code"] == "rate_limited"
            assert 3590 <= int(headers["retry-after"]) <= 3600, headers
    assert f.scalar("SELECT count(*) FROM routers") == "5"


def test_one_public_key_raced_onto_many_routers_lands_once(fleet):
    f = fleet
    routers = [f.reserve(f.acme if i % 2 else f.globex) for i in range(8)]
    key = wg_key()
    calls = [lambda r=r, i=i: f.call("PUT", f"/v1/routers/{r['id']}/public-key",
                                     f.acme if i % 2 else f.globex, {"public_key": key})
             for i, r in enumerate(routers)]
    results = run_all(calls, workers=8)
    assert Counter(status for status, _, _ in results) == {200: 1, 409: 7}
    assert {body["error"]["code"] for status, _, body in results if status == 409} == \
        {"public_key_in_use"}
    assert f.sql("SELECT count(*) FROM routers WHERE status = 'configured'") == [["1"]]
    assert f.sql("SELECT op, count(*) FROM changes GROUP BY op") == [["upsert", "1"]]
    assert f.scalar("SELECT count(*) FROM audit_log WHERE action = 'router.key_set'") == "1"


def test_concurrent_retries_with_one_idempotency_key_make_one_router(fleet):
    f = fleet
    b = f.start()
    headers = {"Idempotency-Key": "retry-storm"}
    calls = [lambda coord=(f.coord if i % 2 else b): coord.request(
        "POST", "/v1/routers", key=f.acme, body={"name": "once"}, headers=headers, timeout=30)
        for i in range(8)]
    results = run_all(calls, workers=8)
    assert {status for status, _, _ in results} == {201}
    assert len({body["id"] for _, _, body in results}) == 1
    assert f.scalar("SELECT count(*) FROM routers") == "1"
    assert f.scalar("SELECT count(*) FROM audit_log WHERE action = 'router.reserved'") == "1"


def test_two_coordinators_on_one_database_give_the_same_answers(fleet):
    f = fleet
    a = f.coord
    b = f.start()
    assert a.port != b.port and a.proc.pid != b.proc.pid
    r = f.reserve(f.acme, {"name": "via-a"}, coord=a)
    f.set_key(f.acme, r["id"], wg_key(), coord=b)
    paths = [f"/v1/routers/{r['id']}", f"/v1/routers/{r['id']}/config?format=wg-quick",
             "/v1/routers", f"/v1/audit?router={r['id']}", f"/v1/leases?ip={r['vpn_ip']}"]
    admin_paths = ["/v1/tenants", "/v1/servers", "/v1/status", "/v1/audit"]
    for path, key in [(p, f.acme) for p in paths] + [(p, f.admin_key) for p in admin_paths]:
        got_a, got_b = a.request("GET", path, key=key), b.request("GET", path, key=key)
        assert got_a[0] == got_b[0] == 200, (path, got_a, got_b)
        assert got_a[2] == got_b[2], path
    assert expect(a.request("GET", f"/v1/routers/{r['id']}", key=f.acme), 200)["vpn_status"] \
        == "configured"
    # Limits, deletions and revocations made through one hold at once on the other.
    f.admin("PATCH", "/v1/tenants/globex", {"router_quota": 1}, coord=a)
    f.reserve(f.globex, coord=a)
    expect(b.request("POST", "/v1/routers", key=f.globex, body={}), 403, "quota_exceeded")
    expect(b.request("DELETE", f"/v1/routers/{r['id']}", key=f.acme), 204)
    expect(a.request("GET", f"/v1/routers/{r['id']}", key=f.acme), 404, "router_not_found")
    expect(a.request("DELETE", f"/v1/keys/{f.key_ids[f.acme]}", key=f.admin_key), 204)
    expect(b.request("GET", "/v1/routers", key=f.acme), 401, "unauthorized")
    # An Idempotency-Key used through one replays through the other.
    hdr = {"Idempotency-Key": "k1"}
    key = f.tenant("initech")
    one = expect(a.request("POST", "/v1/routers", key=key, body={}, headers=hdr), 201)
    assert expect(b.request("POST", "/v1/routers", key=key, body={}, headers=hdr), 201) == one


def read_until_closed(sock, timeout):
    """Reads until the peer closes; returns (bytes read, seconds it took) or fails."""
    sock.settimeout(0.2)
    data, started = b"", time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, time.monotonic() - started
        if not chunk:
            return data, time.monotonic() - started
        data += chunk
    raise AssertionError(f"the server kept the connection open for {timeout}s: {data!r}")


def test_slow_and_idle_clients_time_out_without_blocking_others(fleet_factory):
    f = fleet_factory("[http]\nrequest_timeout = 1s\n")
    f.server()
    key = f.tenant("acme")
    before = f.counts()
    port = f.coord.port
    partial = [
        b"",  # connected, says nothing
        b"GET /v1/routers HTTP/1.1\r\nHost: x\r\n",  # half a header
        b"POST /v1/routers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() +
        b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"na",  # half a body
    ]
    socks = []
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(partial[i % len(partial)])
        socks.append(s)
    opened = time.monotonic()
    try:
        # While they dawdle, everyone else is served at once.
        for _ in range(5):
            t = time.monotonic()
            f.reserve(key)
            assert time.monotonic() - t < 0.5
        assert time.monotonic() - opened < 0.9, "the checks ran past the timeout"
        for s in socks:
            data, _ = read_until_closed(s, timeout=5)
            assert b"201" not in data.split(b"\r\n", 1)[0]
        waited = time.monotonic() - opened
        assert 0.9 <= waited < 5, waited
    finally:
        for s in socks:
            s.close()
    # The half-sent reservations made nothing; the five whole ones did.
    assert int(f.counts()[0]) == int(before[0]) + 5
    # And the server is still well.
    expect(f.call("GET", "/healthz"), 200)
    assert poll(lambda: f.coord.proc.poll() is None, 1)
