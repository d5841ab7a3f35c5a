# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The input layer's contract: what the API accepts and refuses before anything reaches the
database, and what it says about it - endpoints, placement, bytes that are not UTF-8 or are
control characters, HTTP framing, canonical ids and numbers, RFC 3339 timestamps, text
fields, the Authorization scheme, Content-Type, the Server header, slow clients, the client
address in the log, changing and deleting servers, and the route table.

Raw-HTTP cases go through raw_request() on a plain socket, because http.client would
normalise or refuse what they send.
"""
import http.client
import json
import os
import re
import socket
import time
import uuid
from urllib.parse import quote

import pytest
import yaml

from apiutil import (SERVER_WG_KEY, ZERO_KEY, expect, fleet, fleet_factory, poll, wg_key)
from conftest import TOP, binary, log_lines, run

assert fleet and fleet_factory  # fixtures, used by name

AGENT_KEY = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="  # RFC 8032 test vector 1


# ---- helpers ----

def raw_request(port, data, timeout=5.0):
    """Sends data byte for byte on a new connection to 127.0.0.1:port and reads the reply.

    Returns (status, headers, body): status is None when the server closed (or reset) the
    connection without a reply; headers maps lower-case names to values (repeats joined
    with ", "); body is bytes. Reads until the Content-Length is complete or the server
    closes; raises AssertionError when neither happens within timeout seconds.
    """
    deadline = time.monotonic() + timeout
    buf = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                status, headers = _parse_head(buf[:end])
                body = buf[end + 4:]
                length = headers.get("content-length")
                if length is not None and length.isdigit() and len(body) >= int(length):
                    return status, headers, body[:int(length)]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no complete reply within {timeout}s; got {buf!r}")
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                raise AssertionError(f"no complete reply within {timeout}s; got {buf!r}")
            if not chunk:
                break
            buf += chunk
    if not buf:
        return None, {}, b""
    end = buf.find(b"\r\n\r\n")
    assert end >= 0, f"the server closed in the middle of a reply head: {buf!r}"
    status, headers = _parse_head(buf[:end])
    return status, headers, buf[end + 4:]


def _parse_head(head):
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    assert m, f"not an HTTP status line: {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.decode("latin-1").strip().lower()
        value = value.decode("latin-1").strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(m.group(1)), headers


def http_bytes(method, target, headers=(), body=b""):
    """A request as bytes: the given header lines (name, value) in order, nothing added but
    Host and Connection: close. target and values may be bytes, to carry any byte."""
    def b(x):
        return x if isinstance(x, bytes) else x.encode()
    out = b(method) + b" " + b(target) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for name, value in headers:
        out += b(name) + b": " + b(value) + b"\r\n"
    return out + b"Connection: close\r\n\r\n" + b(body)


def raw_get(coord, target, key=None, request_id=None, extra=()):
    headers = list(extra)
    if key:
        headers.append(("Authorization", f"Bearer {key}"))
    if request_id:
        headers.append(("X-Request-Id", request_id))
    return raw_request(coord.port, http_bytes("GET", target, headers))


def raw_json_error(resp, status, code=None, what=""):
    """Asserts a raw reply is status with an error body {"error":{"code","message"}};
    returns the error object."""
    what = what or "reply"
    got, headers, body = resp
    assert got == status, f"{what}: expected {status}, got {got}: {body[:300]!r}"
    assert headers.get("content-type", "").startswith("application/json"), (
        f"{what}: expected an application/json error body, got {headers!r} {body[:300]!r}")
    try:
        payload = json.loads(body)
    except ValueError as e:
        raise AssertionError(f"{what}: the error body is not valid JSON ({e}): {body!r}")
    assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message"}, (
        f"{what}: expected {{'error': {{'code', 'message'}}}}, got {payload!r}")
    if code is not None:
        assert payload["error"]["code"] == code, f"{what}: expected code {code}: {payload!r}"
    return payload["error"]


def err_message(resp, status, code, prefix, what=""):
    """Asserts an API error and that its message starts with prefix; returns the message."""
    what = what or "reply"
    got, _, payload = resp
    assert got == status, f"{what}: expected {status} {code}, got {got}: {payload!r}"
    expect(resp, status, code)
    msg = payload["error"]["message"]
    assert msg.startswith(prefix), f"{what}: expected a message starting {prefix!r}: {msg!r}"
    return msg


class Cases:
    """Runs every case and fails once at the end, listing each case that went wrong."""

    def __init__(self):
        self.wrong = []

    def check(self, what, fn, *args):
        try:
            fn(*args)
        except AssertionError as e:
            self.wrong.append(f"{what}: {e}")

    def done(self):
        assert not self.wrong, f"{len(self.wrong)} case(s) wrong:\n" + "\n".join(self.wrong)


def set_online(f, name):
    # Tests make a server "online" by hand: what an agent's report does to the row
    # (0003_agents.sql sets servers.last_seen_at = now() on every report).
    f.sql(f"UPDATE servers SET last_seen_at = now() WHERE name = '{name}'")


def request_log(coord, request_id, timeout=5):
    """The "Request" log line for request_id: (raw bytes of the line, parsed fields).
    Callers pass the id the reply echoed in X-Request-Id, which is the one logged."""
    token = b"request_id=" + request_id.encode()

    def find():
        with open(coord.log_path, "rb") as fh:
            for raw in fh.read().split(b"\n"):
                if b"msg=Request" in raw and re.search(re.escape(token) + rb"(\s|$)", raw):
                    return raw
        return None
    raw = poll(find, timeout, what=f"the Request log line for {request_id}")
    return raw, log_lines(raw.decode("utf-8", "surrogateescape"))[0]


def request_ids():
    n = 0
    while True:
        n += 1
        yield f"t-{os.getpid()}-{n}-{uuid.uuid4().hex[:8]}"


RID = request_ids()


def servers_list(f):
    return expect(f.call("GET", "/v1/servers", f.admin_key), 200)["items"]


def tenants_list(f):
    return expect(f.call("GET", "/v1/tenants", f.admin_key), 200)["items"]


def reserve_on(f, key, server="vpn1", **body):
    return f.reserve(key, dict(body, server=server))


# ---- 1. endpoints: the same parser as the setup-text writer ----

BAD_ENDPOINTS = [
    "[2001:db8::1:51820", "vpn.example.net:+1", "vpn.example.net: 1", "vpn.example.net:0",
    "vpn.example.net:65536", "vpn.example.net:051820", "vpn.example.net:", ":51820",
    "a;b.example:51820", "a[b]:51820", 'a"b:51820', "[fe80::1%eth0]:51820",
    "[192.0.2.1]:51820", "-bad.example:51820", "a..b:51820", "::1:51820",
]
GOOD_ENDPOINTS = [
    # (endpoint, host as RouterOS gets it, port)
    ("vpn1.example.net:51820", "vpn1.example.net", "51820"),
    ("VPN1.Example.NET:1", "VPN1.Example.NET", "1"),
    ("192.0.2.1:65535", "192.0.2.1", "65535"),
    ("[2001:db8::1]:51820", "2001:db8::1", "51820"),
    ("[::1]:51820", "::1", "51820"),
    ("localhost:51820", "localhost", "51820"),
]


def test_bad_endpoints_are_400_and_create_nothing(fleet):
    f = fleet
    before, listed = f.counts(), servers_list(f)
    wrong = []
    for i, endpoint in enumerate(BAD_ENDPOINTS):
        body = {"name": f"bad{i}", "endpoint": endpoint, "pool": f"10.{150 + i}.0.0/24",
                "gateway": f"10.{150 + i}.0.1"}
        status, _, payload = f.call("POST", "/v1/servers", f.admin_key, body)
        ok = (status == 400 and isinstance(payload, dict)
              and payload.get("error", {}).get("code") == "invalid_request"
              and payload["error"].get("message", "").startswith("endpoint: "))
        if not ok:
            wrong.append((endpoint, status, payload))
    assert not wrong, ("expected 400 invalid_request 'endpoint: ...' for each; got: "
                       + "; ".join(f"{e!r} -> {s} {p!r}" for e, s, p in wrong))
    assert f.counts() == before, "a refused endpoint changed rows"
    assert servers_list(f) == listed, "a refused endpoint created a server"


def test_good_endpoints_make_setup_text_in_both_formats(fleet):
    f = fleet
    for i, (endpoint, host, port) in enumerate(GOOD_ENDPOINTS):
        name = f"good{i}"
        status, _, s = f.call("POST", "/v1/servers", f.admin_key, {
            "name": name, "endpoint": endpoint, "pool": f"10.{120 + i}.0.0/24",
            "gateway": f"10.{120 + i}.0.1", "public_key": SERVER_WG_KEY})
        assert status == 201, f"endpoint {endpoint!r}: expected 201, got {status}: {s!r}"
        r = reserve_on(f, f.acme, name)
        status, _, ros = f.call("GET", f"/v1/routers/{r['id']}/config?format=routeros", f.acme)
        assert status == 200, f"{endpoint!r}: routeros config: expected 200, got {status} {ros!r}"
        assert f'endpoint-address="{host}"' in ros, (
            f"{endpoint!r}: expected endpoint-address=\"{host}\" (quoted) in:\n{ros}")
        assert re.search(rf"endpoint-port={re.escape(port)}(\s|$)", ros), (
            f"{endpoint!r}: expected endpoint-port={port} in:\n{ros}")
        status, _, wgq = f.call("GET", f"/v1/routers/{r['id']}/config?format=wg-quick", f.acme)
        assert status == 200, f"{endpoint!r}: wg-quick config: expected 200, got {status} {wgq!r}"
        assert f"Endpoint = {endpoint}" in wgq.splitlines(), (
            f"{endpoint!r}: expected the line 'Endpoint = {endpoint}' in:\n{wgq}")


# ---- 2. placement: only servers whose agent reported recently ----

def test_unnamed_reservation_needs_an_online_server(fleet_factory):
    f = fleet_factory()
    f.server("vpn1", online=False)  # its agent never connected: last_seen_at is NULL
    key = f.tenant("acme")
    before = f.counts()
    expect(f.call("POST", "/v1/routers", key, {}), 409, "no_server_ready")
    assert f.counts() == before, "a refused reservation changed rows"
    assert f.reserve(key, {"server": "vpn1"})["server"] == "vpn1"


def test_placement_any_places_on_a_never_seen_server(fleet_factory):
    f = fleet_factory(extra="[api]\nplacement = any\n")
    f.server("vpn1", online=False)
    key = f.tenant("acme")
    assert f.reserve(key, {})["server"] == "vpn1"


def test_unnamed_reservations_go_only_to_the_online_server(fleet_factory):
    f = fleet_factory()
    # vpn1 never seen; the least-used rule alone would pick it.
    f.server("vpn1", "10.100.0.0/24", online=False)
    f.server("vpn2", "10.200.0.0/24", online=False)
    set_online(f, "vpn2")
    key = f.tenant("acme")
    got = [f.reserve(key, {})["server"] for _ in range(5)]
    assert got == ["vpn2"] * 5, f"expected all 5 on the online vpn2, got {got}"


# ---- 3. bytes that are not UTF-8, and control characters ----

def test_invalid_utf8_in_the_query_is_400_json_and_logged_as_400(fleet):
    f = fleet
    cases = Cases()

    def one(target):
        rid = next(RID)
        resp = raw_get(f.coord, target, f.acme, rid)
        raw_json_error(resp, 400, "invalid_request")
        _, line = request_log(f.coord, resp[1].get("x-request-id", rid))
        assert line.get("status") == "400", f"expected status=400 logged: {line!r}"
    for target in ["/v1/leases?ip=%FF", "/v1/routers?%FF=1", "/v1/routers?status=%C3%28"]:
        cases.check(target, one, target)
    cases.done()


def test_nul_in_path_or_query_is_400_and_not_logged_raw(fleet):
    f = fleet
    cases = Cases()

    def one(target):
        rid = next(RID)
        resp = raw_get(f.coord, target, f.acme, rid)
        raw_json_error(resp, 400)
        _, line = request_log(f.coord, resp[1].get("x-request-id", rid))
        assert line.get("status") == "400", f"expected status=400 logged: {line!r}"
        path = line.get("path", "")
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in path), (
            f"the logged path holds a raw control character: {path!r}")
    for target in ["/v1/routers/%00abc", "/v1/leases?ip=10.100.0.2%00x"]:
        cases.check(target, one, target)
    cases.done()


# ---- 4. duplicate or contradicting framing headers ----

def _tenant_body(slug):
    return json.dumps({"slug": slug, "name": "Framing"}).encode()


def _framing_refused(f, slug, resp, what):
    status, headers, body = resp
    assert status == 400, f"{what}: expected 400, got {status}: {body[:300]!r}"
    if headers.get("content-type", "").startswith("application/json"):
        raw_json_error(resp, 400, "invalid_request", what)
    assert slug not in [t["slug"] for t in tenants_list(f)], f"{what}: tenant {slug} made"


def test_two_content_lengths_are_400(fleet):
    f = fleet
    cases = Cases()
    auth = ("Authorization", f"Bearer {f.admin_key}")
    ctype = ("Content-Type", "application/json")

    def one(slug, delta):
        body = _tenant_body(slug)
        n = len(body)
        resp = raw_request(f.coord.port, http_bytes(
            "POST", "/v1/tenants", [auth, ctype, ("Content-Length", str(n)),
                                    ("Content-Length", str(n + delta))], body))
        _framing_refused(f, slug, resp, f"Content-Length: {n} and {n + delta}")
    cases.check("two equal Content-Length headers", one, "dupsame", 0)
    cases.check("two different Content-Length headers", one, "dupdiff", 3)
    cases.done()


def test_content_length_with_chunked_is_400(fleet):
    f = fleet
    body = _tenant_body("dupte")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    resp = raw_request(f.coord.port, http_bytes(
        "POST", "/v1/tenants", [("Authorization", f"Bearer {f.admin_key}"),
                                ("Content-Type", "application/json"),
                                ("Content-Length", str(len(body))),
                                ("Transfer-Encoding", "chunked")], chunked))
    _framing_refused(f, "dupte", resp, "Content-Length with Transfer-Encoding: chunked")


def test_a_single_content_length_works_on_a_raw_socket(fleet):
    # Already right on main: the control case for the framing tests above.
    f = fleet
    body = _tenant_body("single")
    status, headers, out = raw_request(f.coord.port, http_bytes(
        "POST", "/v1/tenants", [("Authorization", f"Bearer {f.admin_key}"),
                                ("Content-Type", "application/json"),
                                ("Content-Length", str(len(body)))], body))
    assert status == 201, f"expected 201, got {status}: {out!r}"
    assert json.loads(out)["slug"] == "single"


# ---- 5. ids are canonical or 400 ----

def test_key_ids_must_be_canonical(fleet):
    f = fleet
    key5 = None
    for _ in range(10):
        made = f.admin("POST", "/v1/tenants/acme/keys", {"label": "k"}, 201)
        if made["id"] == 5:
            key5 = made["key"]
            break
    assert key5, "could not make a key with id 5"
    cases = Cases()

    def one(spelling):
        f.sql("UPDATE api_keys SET revoked_at = NULL WHERE id = 5")  # undo an earlier case
        err_message(f.call("DELETE", f"/v1/keys/{spelling}", f.admin_key), 400,
                    "invalid_request", "id: ")
        assert f.scalar("SELECT revoked_at IS NULL FROM api_keys WHERE id = 5") == "t", (
            "key 5 was revoked")
    for spelling in ["%205", "+5", "05", "5x", "0"]:
        cases.check(f"DELETE /v1/keys/{spelling}", one, spelling)
    cases.done()
    expect(f.call("GET", "/v1/routers", key5), 200)


def test_router_ids_must_be_canonical_lower_case_uuids(fleet):
    f = fleet
    r = reserve_on(f, f.acme)
    before = f.counts()
    cases = Cases()
    for method in ("GET", "DELETE"):
        for spelling in ["not-a-uuid", "%20" + r["id"], r["id"].upper()]:
            cases.check(f"{method} /v1/routers/{spelling}", lambda m, p: expect(
                f.call(m, f"/v1/routers/{p}", f.acme), 400, "invalid_request"), method, spelling)
    cases.done()
    assert f.counts() == before, "a refused router id changed rows"
    expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 200)
    unknown = str(uuid.uuid4())
    for method in ("GET", "DELETE"):
        expect(f.call(method, f"/v1/routers/{unknown}", f.acme), 404, "router_not_found")


# ---- 6. limit ----

def test_limit_must_be_canonical(fleet):
    f = fleet
    cases = Cases()
    for route in ("/v1/routers", "/v1/audit"):
        for spelling in ["%205", "+5", "05", "5%20"]:
            cases.check(f"{route}?limit={spelling}", lambda p: err_message(
                f.call("GET", p, f.acme), 400, "invalid_request", "limit: "),
                f"{route}?limit={spelling}")
        expect(f.call("GET", f"{route}?limit=5", f.acme), 200)
    cases.done()


# ---- 7. RFC 3339 timestamps only ----

BAD_TIMES = ["now", "epoch", "infinity", "-infinity", "today", "2026-12-01",
             "2026-12-01 08:00:00", "2026-13-01T00:00:00Z", "2026-12-01T25:00:00Z",
             "2026-12-01T08:00:00"]
GOOD_TIMES = ["2026-12-01T08:00:00Z", "2026-12-01t08:00:00z",
              "2026-12-01T08:00:00.123456+01:00"]


def test_timestamps_are_rfc3339_only(fleet):
    f = fleet
    wrong = []
    for field, base in [("since", "/v1/audit?since="), ("at", "/v1/leases?ip=10.100.0.2&at=")]:
        for text in BAD_TIMES + GOOD_TIMES:
            status, _, payload = f.call("GET", base + quote(text, safe=""), f.acme)
            if text in GOOD_TIMES:
                if status != 200:
                    wrong.append(f"{field}={text!r}: expected 200, got {status} {payload!r}")
            elif not (status == 400 and isinstance(payload, dict)
                      and payload["error"]["code"] == "invalid_request"
                      and payload["error"]["message"].startswith(f"{field}: ")):
                wrong.append(f"{field}={text!r}: expected 400 invalid_request "
                             f"'{field}: ...', got {status} {payload!r}")
    assert not wrong, "\n".join(wrong)


# ---- 8. text fields ----

BAD_NAME_CHARS = ["\u2028", "\u2029", "\u202e", "\u200b", "\ufeff", "\u0085", "\u007f"] + \
    [chr(i) for i in range(0x20)]


def test_an_empty_tenant_name_is_a_name_error(fleet):
    f = fleet
    before = len(tenants_list(f))
    err_message(f.call("POST", "/v1/tenants", f.admin_key, {"slug": "empty", "name": ""}),
                400, "invalid_request", "name: ", "tenant name ''")
    assert len(tenants_list(f)) == before


def test_router_names_refuse_invisible_and_control_characters(fleet):
    f = fleet
    before = f.counts()
    wrong = []
    for ch in BAD_NAME_CHARS:
        status, _, payload = f.call("POST", "/v1/routers", f.acme,
                                    {"name": f"a{ch}b", "server": "vpn1"})
        if not (status == 400 and payload["error"]["code"] == "invalid_request"
                and payload["error"]["message"].startswith("name: ")):
            wrong.append(f"U+{ord(ch):04X}: {status} {payload!r}")
    assert not wrong, "expected 400 invalid_request 'name: ...' for each; got:\n" + \
        "\n".join(wrong)
    assert f.counts() == before, "a refused name changed rows"


def test_name_lengths_count_characters_not_bytes(fleet):
    f = fleet

    def post(path, body, key):
        return f.call("POST", path, key,
                      raw=json.dumps(body, ensure_ascii=False).encode("utf-8"))
    status, _, r = post("/v1/routers", {"name": "é" * 100, "server": "vpn1"}, f.acme)
    assert status == 201, f"100 characters (200 bytes): expected 201, got {status} {r!r}"
    assert r["name"] == "é" * 100
    before = f.counts()
    err_message(post("/v1/routers", {"name": "é" * 101, "server": "vpn1"}, f.acme), 400,
                "invalid_request", "name: ", "a router name of 101 characters")
    assert f.counts() == before
    status, _, t = post("/v1/tenants", {"slug": "umlaut", "name": "ü" * 200}, f.admin_key)
    assert status == 201, f"tenant name of 200 'ü' (400 bytes): expected 201, got {status} {t!r}"
    assert t["name"] == "ü" * 200


# ---- 9. the Authorization scheme is case-insensitive ----

def test_bearer_is_case_insensitive(fleet):
    f = fleet
    cases = Cases()

    def one(scheme):
        status, _, body = raw_request(f.coord.port, http_bytes(
            "GET", "/v1/routers", [("Authorization", f"{scheme} {f.acme}")]))
        assert status == 200, f"expected 200, got {status}: {body[:300]!r}"
    for scheme in ("bearer", "BEARER", "Bearer"):
        cases.check(f"'{scheme} KEY'", one, scheme)
    cases.check("Basic", lambda: raw_json_error(raw_request(f.coord.port, http_bytes(
        "GET", "/v1/routers", [("Authorization", "Basic YWRtaW46YWRtaW4=")])), 401,
        "unauthorized"))
    cases.done()


# ---- 10. Content-Type ----

def call_typed(coord, method, path, key, body, ctype):
    """A request with exactly this Content-Type (None: no Content-Type header at all)."""
    conn = http.client.HTTPConnection("127.0.0.1", coord.port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}
    if ctype is not None:
        headers["Content-Type"] = ctype
    try:
        conn.request(method, path, body=json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        out = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    payload = json.loads(text) if out.get("content-type", "").startswith(
        "application/json") else text
    return resp.status, out, payload


def test_body_routes_need_a_json_content_type(fleet):
    f = fleet
    r = reserve_on(f, f.acme)
    key_before = expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 200)["public_key"]

    def requests(n):
        return [
            ("POST", "/v1/routers", f.acme, {"server": "vpn1"}),
            ("POST", "/v1/tenants", f.admin_key, {"slug": f"ct{n}", "name": "Ct"}),
            ("PUT", f"/v1/routers/{r['id']}/public-key", f.acme, {"public_key": wg_key()}),
            ("PATCH", "/v1/tenants/globex", f.admin_key, {"router_quota": 7 + n}),
            ("POST", "/v1/servers", f.admin_key, {
                "name": f"ct{n}", "endpoint": "vpn9.example.net:51820",
                "pool": f"10.{60 + n}.0.0/24", "gateway": f"10.{60 + n}.0.1"}),
        ]
    before, servers, tenants = f.counts(), servers_list(f), tenants_list(f)
    wrong = []
    for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
        for method, path, key, body in requests(0):
            status, headers, payload = call_typed(f.coord, method, path, key, body, ctype)
            if not (status == 415 and isinstance(payload, dict)
                    and payload.get("error", {}).get("code") == "unsupported_media_type"):
                wrong.append(f"{method} {path} with Content-Type {ctype!r}: {status} {payload!r}")
    assert not wrong, "expected 415 unsupported_media_type for each; got:\n" + "\n".join(wrong)
    assert f.counts() == before, "a refused Content-Type changed rows"
    assert servers_list(f) == servers and tenants_list(f) == tenants
    assert expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 200)["public_key"] == \
        key_before
    for n, ctype in enumerate(("application/json; charset=utf-8", "Application/JSON"), 1):
        for method, path, key, body in requests(n):
            status, _, payload = call_typed(f.coord, method, path, key, body, ctype)
            assert status in (200, 201), (
                f"{method} {path} with Content-Type {ctype!r}: expected 200/201, got "
                f"{status} {payload!r}")


# ---- 11. no Server header naming h2o ----

def test_no_server_header_names_h2o(fleet):
    f = fleet
    replies = {
        "GET /healthz": f.call("GET", "/healthz"),
        "GET /v1/nope": f.call("GET", "/v1/nope", f.acme),
        "GET /v1/routers without a key": f.call("GET", "/v1/routers"),
        "GET /v1/routers": f.call("GET", "/v1/routers", f.acme),
    }
    raw = raw_request(f.coord.port, b"NOT AN HTTP REQUEST\r\n\r\n")
    if raw[0] is not None:  # h2o's own reply to garbage, if it sends one
        replies["a malformed request line"] = raw
    for what, (status, headers, _) in replies.items():
        assert "h2o" not in headers.get("server", "").lower(), (
            f"{what} ({status}): expected no Server header naming h2o, got "
            f"{headers.get('server')!r}")


# ---- 12. slow clients ----

def _half_a_head(coord, wait):
    """Sends half a request head, then waits; returns (bytes read, seconds until the server
    replied or closed). Fails when the server did neither within wait seconds."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", coord.port), timeout=wait) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        got = b""
        while True:
            left = wait - (time.monotonic() - start)
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return got, time.monotonic() - start
            except socket.timeout:
                break
            if not chunk:
                return got, time.monotonic() - start
            got += chunk
    raise AssertionError(f"the server neither replied 408 nor closed within {wait}s "
                         f"(request_timeout 1s + 2s); read {got!r}")


def test_a_slow_request_head_is_cut_off_in_time(fleet_factory):
    f = fleet_factory(extra="[http]\nrequest_timeout = 1s\n")
    got, elapsed = _half_a_head(f.coord, 3.0)
    assert got == b"" or got.startswith(b"HTTP/1.1 408"), (
        f"expected a 408 reply or a bare close, got {got[:200]!r}")
    assert elapsed < 3.0


def test_a_slow_request_head_gets_408(fleet_factory):
    # h2o 2.2.5 closes such a connection without a word; the coordinator's own deadline
    # answers first.
    f = fleet_factory(extra="[http]\nrequest_timeout = 1s\n")
    got, _ = _half_a_head(f.coord, 3.0)
    assert got.startswith(b"HTTP/1.1 408"), f"expected 'HTTP/1.1 408', got {got[:200]!r}"
    body = json.loads(got.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout", body


def test_an_idle_keep_alive_connection_is_closed_without_a_408(fleet_factory):
    # A 408 on a connection with no request started could cross the client's next
    # request and be read as its answer: such a connection is closed silently.
    f = fleet_factory(extra="[http]\nrequest_timeout = 1s\n")
    with socket.create_connection(("127.0.0.1", f.coord.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        deadline = time.monotonic() + 5
        while b'"ok"}' not in first and time.monotonic() < deadline:
            first += s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        start = time.monotonic()
        rest = b""
        while time.monotonic() - start < 4:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        assert rest == b"", f"an idle connection got {rest[:200]!r}"
        assert time.monotonic() - start < 4, "the idle connection was not closed"


# ---- 13. the client address on every request log line ----

def _client_logged(f, extra_headers=()):
    rid = next(RID)
    status, headers, _ = raw_get(f.coord, "/healthz", None, rid, extra_headers)
    assert status == 200, f"GET /healthz: expected 200, got {status}"
    return request_log(f.coord, headers.get("x-request-id", rid))[1].get("client")


def test_every_request_line_logs_the_client(fleet):
    f = fleet
    f.call("GET", "/healthz")
    f.call("GET", "/v1/routers", f.acme)
    f.call("GET", "/v1/nope", f.acme)
    f.call("GET", "/v1/routers")
    got = _client_logged(f)
    assert got == "127.0.0.1", f"expected client=127.0.0.1 on the Request line, got {got!r}"
    got = _client_logged(f, [("X-Forwarded-For", "198.51.100.7")])
    assert got == "127.0.0.1", (
        f"without trusted_proxies X-Forwarded-For is ignored: expected client=127.0.0.1, "
        f"got {got!r}")
    with open(f.coord.log_path, "rb") as fh:
        lines = [line for line in log_lines(fh.read().decode("utf-8", "replace"))
                 if line.get("msg") == "Request"]
    assert len(lines) >= 6
    missing = [line for line in lines if line.get("client") != "127.0.0.1"]
    assert not missing, f"expected client=127.0.0.1 on every Request line: {missing!r}"


def test_trusted_proxies_take_the_rightmost_untrusted_forwarded_address(fleet_factory):
    f = fleet_factory(extra="[http]\ntrusted_proxies = 127.0.0.1/32\n")
    for header, logged in [("198.51.100.7", "198.51.100.7"),
                           ("203.0.113.9, 198.51.100.7", "198.51.100.7"),
                           ("not an address", "127.0.0.1"),
                           ("300.1.2.3", "127.0.0.1")]:
        got = _client_logged(f, [("X-Forwarded-For", header)])
        assert got == logged, f"X-Forwarded-For {header!r}: expected client={logged}, got {got!r}"
    got = _client_logged(f)
    assert got == "127.0.0.1", f"no X-Forwarded-For: expected client=127.0.0.1, got {got!r}"


# ---- 14. changing and deleting servers ----

def test_patch_server_changes_fields_and_the_setup_text(fleet):
    f = fleet
    r = reserve_on(f, f.acme)
    new_key = wg_key()
    changes = {"endpoint": "vpn9.example.net:51999", "interface": "wgf9",
               "agent_key": AGENT_KEY, "public_key": new_key, "listen_port": 51999}
    for field, value in changes.items():
        s = expect(f.call("PATCH", "/v1/servers/vpn1", f.admin_key, {field: value}), 200)
        assert s["name"] == "vpn1" and s[field] == value, (
            f"PATCH {field}: expected the server json with {field}={value!r}, got {s!r}")
    listed = [s for s in servers_list(f) if s["name"] == "vpn1"][0]
    assert {k: listed[k] for k in changes} == changes
    text = expect(f.call("GET", f"/v1/routers/{r['id']}/config?format=wg-quick", f.acme), 200)
    assert "Endpoint = vpn9.example.net:51999" in text.splitlines(), text
    ros = expect(f.call("GET", f"/v1/routers/{r['id']}/config?format=routeros", f.acme), 200)
    assert "vpn9.example.net" in ros and "endpoint-port=51999" in ros, ros


def test_patch_server_checks_its_input(fleet):
    f = fleet
    listed = servers_list(f)
    for body, prefixes in [
            ({"pool": "10.99.0.0/24"}, ("pool: cannot be changed",)),
            ({"gateway": "10.100.0.2"}, ("pool: cannot be changed",
                                         "gateway: cannot be changed")),
            ({"endpoint": "vpn.example.net:0"}, ("endpoint: ",)),
            ({"endpoint": "a;b.example:51820"}, ("endpoint: ",)),
            ({"listen_port": 0}, ("listen_port: ",)),
            ({"agent_key": ZERO_KEY}, ("agent_key: ",)),
            ({"public_key": "c2hvcnQ="}, ("public_key: ",)),
            ({"interface": "x" * 16}, ("interface: ",)),
            ({"region": "eu"}, ("region: ",))]:
        err = expect(f.call("PATCH", "/v1/servers/vpn1", f.admin_key, body), 400,
                     "invalid_request")
        assert err["error"]["message"].startswith(prefixes), (
            f"PATCH {body!r}: expected a message starting {' or '.join(prefixes)!r}: {err!r}")
    assert servers_list(f) == listed, "a refused PATCH changed the server"
    expect(f.call("PATCH", "/v1/servers/nope", f.admin_key, {"listen_port": 51821}), 404,
           "server_not_found")
    expect(f.call("DELETE", "/v1/servers/nope", f.admin_key), 404, "server_not_found")


def test_delete_server_without_routers(fleet):
    f = fleet
    f.server("vpn2", "10.200.0.0/24")
    got = expect(f.call("DELETE", "/v1/servers/vpn2", f.admin_key), 200)
    assert (got.get("name"), got.get("released_routers")) == ("vpn2", 0), got
    assert [s["name"] for s in servers_list(f)] == ["vpn1"]


def test_delete_server_with_routers_needs_force(fleet):
    f = fleet
    mine = [reserve_on(f, f.acme), reserve_on(f, f.acme)]
    f.set_key(f.acme, mine[0]["id"], wg_key())
    theirs = reserve_on(f, f.globex)
    before, listed = f.counts(), servers_list(f)
    for path in ("/v1/servers/vpn1", "/v1/servers/vpn1?force=false"):
        expect(f.call("DELETE", path, f.admin_key), 409, "server_has_routers")
    err = expect(f.call("DELETE", "/v1/servers/vpn1?force=yes", f.admin_key), 400,
                 "invalid_request")
    assert "force" in err["error"]["message"], err
    assert f.counts() == before and servers_list(f) == listed, "a refused DELETE changed rows"
    for r, key in [(mine[0], f.acme), (mine[1], f.acme), (theirs, f.globex)]:
        expect(f.call("GET", f"/v1/routers/{r['id']}", key), 200)

    got = expect(f.call("DELETE", "/v1/servers/vpn1?force=true", f.admin_key), 200)
    assert (got.get("name"), got.get("released_routers")) == ("vpn1", 3), got
    for r, key in [(mine[0], f.acme), (mine[1], f.acme), (theirs, f.globex)]:
        expect(f.call("GET", f"/v1/routers/{r['id']}", key), 404, "router_not_found")
    assert "vpn1" not in [s["name"] for s in servers_list(f)]
    for key, routers in [(f.acme, mine), (f.globex, [theirs])]:
        items = expect(f.call("GET", "/v1/audit", key), 200)["items"]
        deleted = {i["router_id"] for i in items if i["action"] == "router.deleted"}
        assert {r["id"] for r in routers} <= deleted, (
            f"expected router.deleted in the tenant's audit for {[r['id'] for r in routers]}, "
            f"got {items!r}")
    f.server("vpn1", "10.101.0.0/24")  # the name is free again (201)


# ---- 15. public_key_in_use says nothing about whose ----

def test_public_key_in_use_names_no_router_or_tenant(fleet):
    f = fleet
    a1, a2 = reserve_on(f, f.acme, name="a-one"), reserve_on(f, f.acme, name="a-two")
    b1 = reserve_on(f, f.globex, name="b-one")
    key = wg_key()
    f.set_key(f.acme, a1["id"], key)
    other = expect(f.call("PUT", f"/v1/routers/{b1['id']}/public-key", f.globex,
                          {"public_key": key}), 409, "public_key_in_use")
    same = expect(f.call("PUT", f"/v1/routers/{a2['id']}/public-key", f.acme,
                         {"public_key": key}), 409, "public_key_in_use")
    assert other["error"]["message"].encode() == same["error"]["message"].encode(), (
        f"expected byte-identical messages: {other!r} vs {same!r}")
    msg = other["error"]["message"].lower()
    for secret in (a1["id"], a2["id"], b1["id"], "acme", "globex", "a-one", a1["vpn_ip"]):
        assert secret.lower() not in msg, f"the message names {secret!r}: {msg!r}"


# ---- 16. admin actions show in the tenant's audit ----

def test_admin_delete_shows_in_the_tenants_audit(fleet):
    f = fleet
    r = reserve_on(f, f.acme)
    status, _, body = f.call("DELETE", f"/v1/routers/{r['id']}", f.admin_key)
    assert status in (200, 204), f"admin DELETE: expected 200 or 204, got {status} {body!r}"
    items = expect(f.call("GET", "/v1/audit", f.acme), 200)["items"]
    assert any(i["action"] == "router.deleted" and i["router_id"] == r["id"] for i in items), (
        f"expected a router.deleted item for {r['id']} in acme's audit: {items!r}")


# ---- 17. the route table from the binary ----

def test_routes_command_prints_the_documented_routes():
    proc = run([binary("wgfleet-coordinator"), "routes"])
    assert proc.returncode == 0, f"expected exit 0, got {proc.returncode}: {proc.stderr}"
    lines = proc.stdout.splitlines()
    bad = [line for line in lines if not re.fullmatch(r"[A-Z]+ /\S*", line)]
    assert lines and not bad, f"expected 'METHOD /path' lines, got {bad or lines!r}"
    assert len(lines) == len(set(lines)), f"a route is printed twice: {lines!r}"
    with open(os.path.join(TOP, "docs", "openapi.yaml")) as fh:
        doc = yaml.safe_load(fh)
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    documented = {f"{m.upper()} {re.sub(r'{[^}/]+}', '{}', p)}"
                  for p, item in doc["paths"].items() for m in item if m in methods}
    served = set(lines)
    assert served == documented, (
        f"documented only: {sorted(documented - served)}; served only: "
        f"{sorted(served - documented)}")
    assert {"PATCH /v1/servers/{}", "DELETE /v1/servers/{}"} <= served
