# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Admission before work on the HTTP side: what a stranger can make the coordinator
spend is bounded (connections, body bytes, failed keys, log lines)."""
import resource
import socket
import time

import pytest

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


def memory_kb(pid):
    """VmRSS and RssAnon of a process, in kB, from /proc/PID/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon"):
                fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["RssAnon"]


BURST = 2000
BODY = 65000  # just under the API's 64 KiB, so h2o waits for all of it
BURST_HEAD = (b"POST /v1/routers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n" % BODY)


@pytest.mark.parametrize("trickle", [0, 4096], ids=["whole", "trickled"])
def test_unauthenticated_bodies_are_bounded_in_memory_and_given_back(fleet_factory, trickle):
    """Issue 11: 2,000 connections with a wrong or no key, each sending a body of almost
    64 KiB, took a coordinator from 216 MB to 2,037 MB and 1.6 GB stayed after they
    closed. Here: 2,000 from 127.0.0.1 (so the per-address cap is raised to let them
    in), each body sent but its last byte (at once, or trickled: 4 KiB from each
    connection in turn), RSS read while all are held, then the last byte (the 401s or
    429s read), then all closed and RSS read again."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = BURST + 512
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"open files are limited to {hard}; {want} are needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    f = fleet_factory("[http]\nmax_connections_per_client = 4096\nmax_connections = 4096\n"
                      "request_timeout = 60s\n")
    pid = f.coord.proc.pid
    body = b"{" + b" " * (BODY - 2) + b"}"
    # Warm up: one request of each kind, so the baseline includes what any first request
    # allocates once (pools, the database connection, the failure throttle's table).
    expect(f.call("POST", "/v1/routers", WRONG_KEY, raw=body.decode()), 401)
    expect(f.call("POST", "/v1/routers", raw=body.decode()), 401)
    time.sleep(0.5)
    base_rss, base_anon = memory_kb(pid)
    socks = []
    peak_rss = peak_anon = 0
    try:
        for i in range(BURST):
            s = socket.create_connection(("127.0.0.1", f.coord.port), timeout=30)
            socks.append(s)
            # Half give a wrong key, half none at all.
            auth = b"Authorization: Bearer " + WRONG_KEY.encode() + b"\r\n" if i % 2 else b""
            s.sendall(BURST_HEAD + auth + b"\r\n" + (body[:trickle] if trickle else body[:-1]))
            if i % 100 == 0:
                rss, anon = memory_kb(pid)
                peak_rss, peak_anon = max(peak_rss, rss), max(peak_anon, anon)
        for start in range(trickle, BODY - 1, trickle) if trickle else ():
            for s in socks:
                s.sendall(body[start:min(start + trickle, BODY - 1)])
            rss, anon = memory_kb(pid)
            peak_rss, peak_anon = max(peak_rss, rss), max(peak_anon, anon)
        # Every body is held but its last byte: wait (bounded) until the coordinator has
        # read what it will read, taking the highest RSS seen.
        deadline = time.monotonic() + 20
        last, steady_since = 0, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - steady_since < 2:
            rss, anon = memory_kb(pid)
            peak_rss, peak_anon = max(peak_rss, rss), max(peak_anon, anon)
            if rss > last + 1024:
                last, steady_since = rss, time.monotonic()
            time.sleep(0.1)
        assert f.coord.proc.poll() is None, f.coord.read_log()[-2000:]
        # The last byte: each is answered without a look at the database.
        for s in socks:
            s.sendall(body[-1:])
        statuses = {}
        for s in socks:
            got = s.recv(64)
            status = got[9:12].decode() if got.startswith(b"HTTP/1.1 ") else repr(got[:20])
            statuses[status] = statuses.get(status, 0) + 1
        rss, anon = memory_kb(pid)
        peak_rss, peak_anon = max(peak_rss, rss), max(peak_anon, anon)
    finally:
        for s in socks:
            s.close()
    # After: RSS read until it stops falling (bounded).
    deadline = time.monotonic() + 10
    after_rss, after_anon = memory_kb(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        rss, anon = memory_kb(pid)
        if rss >= after_rss - 256:
            after_rss, after_anon = min(after_rss, rss), min(after_anon, anon)
            break
        after_rss, after_anon = rss, anon
    print(f"\nRSS kB (VmRSS/RssAnon): before {base_rss}/{base_anon} "
          f"peak {peak_rss}/{peak_anon} after {after_rss}/{after_anon}; answers {statuses}")
    assert set(statuses) <= {"401", "429"}, statuses
    assert sum(statuses.values()) == BURST, statuses
    # While all are held: h2o's input buffer doubles as a body arrives, so a connection
    # may hold up to twice its 64 KiB; allow that and a quarter more over the baseline
    # (2,000 x 128 KiB x 1.25, about 312 MiB; the old 1 MiB limit made it 2 GB).
    ceiling = base_rss + BURST * 128 * 5 // 4
    assert peak_rss <= ceiling, (base_rss, peak_rss, ceiling)
    # After they close: back within 64 MiB of the baseline. Before the HTTP layer
    # called malloc_trim() after a burst (5ddc974) the whole-body case kept ~136 MiB:
    # freed memory glibc kept in the middle of its heap, not a leak.
    assert after_rss <= base_rss + 64 * 1024, (base_rss, after_rss)
    assert f.coord.proc.poll() is None
