# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Shared pieces of the API tests: a fleet (coordinators on one database, an admin key,
tenants, servers), WireGuard test keys and small assertions.

Imported by test_api_*.py; the fixtures defined here are picked up by pytest in the
modules that import them.
"""
import base64
import ipaddress
import os
import re
import time

import pytest

from conftest import TOP, Coordinator, binary, run

# Curve25519 points of small order (their product with any scalar is the identity),
# which no real WireGuard key is, besides the all-zero one.
LOW_ORDER_POINTS = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]
ZERO_KEY = base64.b64encode(bytes(32)).decode()
SERVER_WG_KEY = base64.b64encode(bytes(range(1, 33))).decode()
ENDPOINT = "vpn1.example.net:51820"


def wg_key():
    """A WireGuard public key: 32 random bytes are a valid point (with overwhelming odds)."""
    return base64.b64encode(os.urandom(32)).decode()


def low_order_key(hex_text):
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


def expect(resp, status, code=None):
    """Asserts an API reply's status (and error code); returns its payload."""
    got, headers, payload = resp
    assert got == status, f"expected {status}, got {got}: {payload!r}"
    if code is not None:
        assert payload == {"error": {"code": code, "message": payload["error"]["message"]}}
    if status >= 400:
        assert headers["content-type"].startswith("application/json")
        assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message"}
    return payload


def poll(fn, timeout, interval=0.05, what="condition"):
    """Calls fn until it returns something truthy, at most timeout seconds; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(interval)


def hosts_of(pool):
    return {str(ip) for ip in ipaddress.ip_network(pool).hosts()}


class Fleet:
    """Coordinators on one migrated database, an admin key, and helpers to fill it."""

    def __init__(self, pg, dbname, conninfo, workdir):
        self.pg = pg
        self.dbname = dbname
        self.conninfo = conninfo
        self.workdir = str(workdir)
        self.coordinators = []
        self.admin_key = None
        self.key_ids = {}  # key text -> api_keys.id

    def start(self, extra=""):
        coord = Coordinator(self.workdir, self.conninfo, extra=extra)
        if self.admin_key is None:
            self.admin_key = coord.create_admin_key()
        coord.admin_key = self.admin_key
        coord.start()
        self.coordinators.append(coord)
        return coord

    @property
    def coord(self):
        return self.coordinators[0]

    def stop(self):
        for coord in self.coordinators:
            coord.stop()

    def sql(self, query):
        return self.pg.psql(query, dbname=self.dbname)

    def scalar(self, query):
        rows = self.sql(query)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def counts(self):
        """Row counts that a request which changes nothing must leave alone."""
        return self.sql("SELECT (SELECT count(*) FROM routers), (SELECT count(*) FROM audit_log),"
                        " (SELECT count(*) FROM changes),"
                        " (SELECT count(*) FROM pool_addresses WHERE router_id IS NOT NULL),"
                        " (SELECT coalesce(sum(revision), 0) FROM servers),"
                        " (SELECT count(*) FROM idempotency_keys)")[0]

    def call(self, method, path, key=None, body=None, coord=None, **kw):
        return (coord or self.coord).request(method, path, key=key, body=body, **kw)

    def admin(self, method, path, body=None, status=200, coord=None):
        return expect(self.call(method, path, self.admin_key, body, coord=coord), status)

    def tenant(self, slug, quota=100, rate=1000):
        """Creates a tenant and one key for it; returns the key text."""
        self.admin("POST", "/v1/tenants", {"slug": slug, "name": slug.title(),
                                           "router_quota": quota,
                                           "reservations_per_hour": rate}, 201)
        made = self.admin("POST", f"/v1/tenants/{slug}/keys", {"label": "test"}, 201)
        self.key_ids[made["key"]] = made["id"]
        return made["key"]

    def server(self, name="vpn1", pool="10.100.0.0/24", gateway=None, public_key=SERVER_WG_KEY,
               endpoint=ENDPOINT, online=True):
        """Registers a server. online: mark it as if its agent had just reported (these
        API tests run no agent), so reservations naming no server may go to it."""
        net = ipaddress.ip_network(pool)
        body = {"name": name, "endpoint": endpoint, "pool": pool,
                "gateway": gateway or str(net.network_address + 1)}
        if public_key:
            body["public_key"] = public_key
        made = self.admin("POST", "/v1/servers", body, 201)
        if online:
            self.mark_online(name)
        return made

    def mark_online(self, name):
        self.sql(f"UPDATE servers SET last_seen_at = now() WHERE name = '{name}' "
                 "AND deleted_at IS NULL")

    def reserve(self, key, body=None, coord=None, headers=None):
        return expect(self.call("POST", "/v1/routers", key, body if body is not None else {},
                                coord=coord, headers=headers), 201)

    def set_key(self, key, router_id, public_key, coord=None):
        return expect(self.call("PUT", f"/v1/routers/{router_id}/public-key", key,
                                {"public_key": public_key}, coord=coord), 200)


@pytest.fixture
def fleet_factory(pg, migrated_db, tmp_path):
    """fleet_factory(extra="") -> a Fleet with one coordinator started with that config."""
    name, conninfo = migrated_db
    fleets = []

    def make(extra=""):
        f = Fleet(pg, name, conninfo, tmp_path)
        f.start(extra)
        fleets.append(f)
        return f

    yield make
    for f in fleets:
        f.stop()


@pytest.fixture
def fleet(fleet_factory):
    """A coordinator, a server vpn1 (10.100.0.0/24) and tenants acme and globex."""
    f = fleet_factory()
    f.server()
    f.acme = f.tenant("acme")
    f.globex = f.tenant("globex")
    return f


def api_routes():
    """The server's routes, "METHOD /path/{}", as the binary's own table prints them."""
    proc = run([binary("wgfleet-coordinator"), "routes"], check=True)
    return proc.stdout.split("\n")[:-1]


# Every route with a concrete path and a body that passes the input checks.
ADMIN_ONLY = {"POST /v1/tenants", "GET /v1/tenants", "PATCH /v1/tenants/{}",
              "POST /v1/tenants/{}/keys", "DELETE /v1/keys/{}", "POST /v1/servers",
              "GET /v1/servers", "PATCH /v1/servers/{}", "DELETE /v1/servers/{}",
              "GET /v1/status", "GET /v1/tenants/{}", "GET /v1/keys", "POST /v1/keys",
              "GET /v1/servers/{}", "POST /v1/servers/{}/import"}
UNAUTHENTICATED = {"GET /healthz", "GET /readyz", "GET /dashboard", "GET /dashboard/{}"}


def concrete_request(route, router_id, slug="acme", key_id=1):
    """(method, path, body) exercising route, for the auth tests."""
    method, pattern = route.split(" ", 1)
    arg = {"/v1/tenants/{}": slug, "/v1/keys/{}": str(key_id), "/v1/servers/{}": "vpn1",
           "/dashboard/{}": "dashboard.js", "/v1/webhooks/{}": "1"}
    for prefix, value in arg.items():
        if pattern.startswith(prefix):
            pattern = pattern.replace("{}", value, 1)
    # A peer's key in a path is in URL-safe base64.
    pattern = pattern.replace("/unknown-peers/{}", "/unknown-peers/" +
                              wg_key().replace("+", "-").replace("/", "_"))
    path = pattern.replace("{}", router_id)
    bodies = {
        "POST /v1/routers": {},
        "PUT /v1/routers/{}/public-key": {"public_key": wg_key()},
        "POST /v1/tenants": {"slug": "newco", "name": "Newco"},
        "PATCH /v1/tenants/{}": {"router_quota": 1},
        "POST /v1/tenants/{}/keys": {},
        "POST /v1/keys": {},
        "POST /v1/servers": {"name": "vpn9", "endpoint": ENDPOINT, "pool": "10.50.0.0/24",
                             "gateway": "10.50.0.1"},
        "PATCH /v1/servers/{}": {"endpoint": ENDPOINT},
        "POST /v1/servers/{}/import": {"routers": [{"tenant": slug, "address": "10.100.0.9",
                                                    "public_key": wg_key()}]},
        "POST /v1/webhooks": {"url": "https://hooks.example.com/wgfleet"},
        "PATCH /v1/webhooks/{}": {"active": False},
    }
    if route == "GET /v1/leases":
        path += "?ip=10.100.0.2"
    return method, path, bodies.get(route)
