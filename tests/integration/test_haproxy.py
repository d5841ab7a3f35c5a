# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""deploy/haproxy.cfg in front of two coordinators on one database, all on loopback.

The shipped file runs as it is, with only its addresses and certificate path replaced
(and the health check's interval shortened, so the test is quick): haproxy ends TLS,
its health checks (GET /readyz) reach both coordinators, both answer requests made
through it, a change made through one is seen through the other, and when one
coordinator stops every request still succeeds.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import TOP, Coordinator, log_lines, run

CONFIG = os.path.join(TOP, "deploy", "haproxy.cfg")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haproxy_config(ports, pem):
    """The shipped file with the test's addresses: every other line is as shipped."""
    with open(CONFIG) as f:
        text = f.read()
    text, n = re.subn(r"bind :443 ssl crt \S+", f"bind 127.0.0.1:{ports[0]} ssl crt {pem}", text)
    assert n == 1
    servers = iter(ports[1:])
    text, n = re.subn(r"(server coord\d) \S+", lambda m: f"{m.group(1)} 127.0.0.1:{next(servers)}",
                      text)
    assert n == 2
    text, n = re.subn(r"check inter 2s", "check inter 500ms", text)
    assert n == 1
    return text


def request(port, method, path, key=None, body=None):
    ctx = ssl.create_default_context(cafile=request.ca)
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def served(coord, path="/v1/tenants"):
    """How many requests for path a coordinator's log shows it answered (the balancer's
    health checks, GET /readyz, are not counted)."""
    return sum(1 for line in log_lines(coord.read_log())
               if line.get("msg") == "Request" and line.get("path") == path)


@pytest.fixture
def balancer(tmp_path, migrated_db):
    if not shutil.which("haproxy"):
        pytest.skip("haproxy is not installed (deploy/install-deps.sh installs it)")
    _, conninfo = migrated_db
    pem, ca = tmp_path / "api.pem", tmp_path / "api.crt"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-noenc", "-keyout", str(tmp_path / "api.key"), "-out", str(ca), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"], check=True)
    pem.write_bytes(ca.read_bytes() + (tmp_path / "api.key").read_bytes())
    pem.chmod(0o600)
    request.ca = str(ca)
    coords = [Coordinator(tmp_path, conninfo) for _ in range(2)]
    for c in coords:
        c.start()
    admin = coords[0].create_admin_key()
    ports = [free_port()] + [c.port for c in coords]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config(ports, pem))
    check = run(["haproxy", "-c", "-f", str(cfg)])
    assert check.returncode == 0, check.stdout + check.stderr
    log = open(tmp_path / "haproxy.log", "w")
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        # Up when it answers through TLS (/healthz, so that every GET /readyz in the
        # coordinators' logs is one of haproxy's health checks) and its first health
        # check has reached each coordinator.
        deadline = time.monotonic() + 15
        while True:
            try:
                if (request(ports[0], "GET", "/healthz")[0] == 200
                        and all(served(c, "/readyz") > 0 for c in coords)):
                    break
            except (OSError, http.client.HTTPException):
                pass
            assert proc.poll() is None, (tmp_path / "haproxy.log").read_text()
            assert time.monotonic() < deadline, \
                "haproxy did not answer and check both coordinators within 15 s"
            time.sleep(0.1)
        yield ports[0], coords, admin
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for c in coords:
            c.stop()


def test_two_coordinators_behind_haproxy(balancer):
    port, coords, admin = balancer
    before = [served(c) for c in coords]
    status, body = request(port, "POST", "/v1/tenants", admin,
                           {"slug": "acme", "name": "Acme", "router_quota": 5,
                            "reservations_per_hour": 5})
    assert status == 201, body
    # Round robin: reads reach both coordinators, and each sees the tenant the other may
    # have written. (Bounded: a health check that times out on a loaded machine takes a
    # coordinator out of the rotation for a moment.)
    for _ in range(40):
        status, body = request(port, "GET", "/v1/tenants", admin)
        assert status == 200, body
        assert [t["slug"] for t in body["items"]] == ["acme"], body
        after = [served(c) for c in coords]
        if all(a - b >= 3 for a, b in zip(after, before)):
            break
    assert all(a - b >= 3 for a, b in zip(after, before)), (before, after)

    # One coordinator goes away: the balancer sends every request to the other, the
    # first ones through its retry and redispatch before the health check notices.
    coords[0].stop()
    for _ in range(8):
        status, body = request(port, "GET", "/v1/tenants", admin)
        assert status == 200, body
