# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Admission before work on the HTTP side: what a stranger can make the coordinator
spend is bounded (connections, body bytes, failed keys, log lines)."""
import socket
import time

from apiutil import expect, fleet, fleet_factory  # noqa: F401 (fixtures)
from conftest import log_lines

WRONG_KEY = "wgf_" + "a" * 16 + "_" + "A" * 43


def request_lines(coord):
    return [line for line in log_lines(coord.read_log()) if line.get("msg") == "Request"]


def test_failed_keys_are_throttled_per_address_without_database_work(fleet_factory):
    f = fleet_factory("[api]\nfailed_auth_per_minute = 20\n")
    f.server()
    acme = f.tenant("acme")
    before_lines = len(f.coord.read_log().splitlines())
    statuses = []
    for _ in range(300):
        status, headers, payload = f.call("GET", "/v1/routers", WRONG_KEY)
        statuses.append(status)
        if status == 429:
            assert payload["error"]["code"] == "too_many_failures", payload
            assert 1 <= int(headers["retry-after"]) <= 60, headers
    # The first 20 reach the database and are refused there; then the address waits.
    assert statuses[:20] == [401] * 20, statuses[:25]
    assert statuses.count(429) >= 270, statuses.count(429)
    # Refusals are counted, not logged one by one: a handful of lines for 300 of them.
    grown = f.coord.read_log().splitlines()[before_lines:]
    assert len(grown) <= 5, grown
    refused = [line for line in log_lines("\n".join(grown))
               if line.get("msg") == "Refused requests"]
    assert all(line["last_client"] == "127.0.0.1" for line in refused), refused
    # The throttle is per address: the database saw no query for the throttled ones, so
    # the API still answers everyone else at once (here: the readiness probe, which
    # needs no key, and a tenant from the same address once it waited).
    assert f.call("GET", "/readyz")[0] == 200
    status, headers, _ = f.call("GET", "/v1/routers", acme)
    assert status == 429  # the same address, still waiting
    time.sleep(int(headers["retry-after"]) + 0.2)
    expect(f.call("GET", "/v1/routers", acme), 200)


def test_connections_are_capped_per_address_and_in_all(fleet_factory):
    f = fleet_factory("[http]\nmax_connections_per_client = 8\nmax_connections = 12\n")
    held = []
    try:
        for _ in range(8):
            held.append(socket.create_connection(("127.0.0.1", f.coord.port), timeout=5))
        # The ninth from the same address is closed as soon as it is accepted.
        extra = socket.create_connection(("127.0.0.1", f.coord.port), timeout=5)
        extra.settimeout(5)
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = extra.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        extra.close()
        assert got == b"", got
        # Those admitted are served.
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held[0].recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for s in held:
            s.close()
    # Once they close, the address is admitted again.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if f.call("GET", "/healthz")[0] == 200:
            break
        time.sleep(0.05)
    assert f.call("GET", "/healthz")[0] == 200


def test_a_body_past_the_limit_is_refused_before_it_is_read(fleet):
    f = fleet
    before = f.counts()
    with socket.create_connection(("127.0.0.1", f.coord.port), timeout=5) as s:
        s.sendall(b"POST /v1/routers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + f.acme.encode() + b"\r\n"
                  b"Content-Length: 200000\r\n\r\n{")
        got = s.recv(200)
    # 200 KB (past the API's 64 KiB, within h2o's default) were not waited for: the
    # answer came with one byte of the body sent.
    assert got.startswith(b"HTTP/1.1 413"), got
    assert f.counts() == before
