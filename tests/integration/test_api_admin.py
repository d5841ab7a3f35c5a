# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The admin API and what every route shares: authentication and scopes, tenants, keys,
servers, fleet status, input checks, the OpenAPI description, and reloading on SIGHUP."""
import json
import os
import re
import signal
import uuid

import yaml

from apiutil import (ADMIN_ONLY, ENDPOINT, LOW_ORDER_POINTS, SERVER_WG_KEY, UNAUTHENTICATED,
                     ZERO_KEY, api_routes, concrete_request, expect, fleet, fleet_factory,
                     low_order_key, poll, wg_key)
from conftest import TOP, log_messages

assert fleet and fleet_factory  # fixtures, used by name


def audit_rows(f, action):
    return f.sql("SELECT a.actor, a.api_key_id, t.slug, a.request_id, a.detail::text "
                 "FROM audit_log a LEFT JOIN tenants t ON t.id = a.tenant_id "
                 f"WHERE a.action = '{action}' ORDER BY a.id")


# ---- authentication and scopes ----

def test_every_route_needs_a_valid_unrevoked_key(fleet_factory):
    # Hundreds of failures from one address: without the failed-authentication limit
    # (test_admission.py tests it), so that every one is answered with its 401.
    f = fleet_factory("[api]\nfailed_auth_per_minute = 0\n")
    f.server()
    f.acme = f.tenant("acme")
    f.globex = f.tenant("globex")
    r = f.reserve(f.acme)
    revoked = f.tenant("gone")
    gone_id = f.key_ids[revoked]
    expect(f.call("DELETE", f"/v1/keys/{gone_id}", f.admin_key), 204)
    prefix = f.acme[:21]
    wrong_secret = prefix + ("A" * 43 if f.acme[21:] != "A" * 43 else "B" * 43)
    bad_headers = [
        {},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Token " + f.acme},
        {"Authorization": "Bearer:" + f.acme},
        {"Authorization": "Bearer wgf_" + "a" * 16 + "_" + "A" * 43},  # unknown prefix
        {"Authorization": "Bearer " + wrong_secret},  # known prefix, wrong secret
        {"Authorization": "Bearer " + f.acme + "x"},
        {"Authorization": "Bearer " + revoked},
    ]
    routes = api_routes()
    assert len(routes) >= 18
    before = f.counts()
    for route in routes:
        method, path, body = concrete_request(route, r["id"], key_id=f.key_ids[f.globex])
        for headers in bad_headers:
            status, _, payload = f.call(method, path, body=body, headers=headers)
            if route in UNAUTHENTICATED:
                assert status == 200, (route, payload)
                continue
            assert status == 401, (route, headers, status, payload)
            assert payload["error"]["code"] == "unauthorized", (route, payload)
    assert f.counts() == before
    # The valid keys still work, and a revocation through the API is immediate.
    expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 200)
    expect(f.call("DELETE", f"/v1/keys/{f.key_ids[f.acme]}", f.admin_key), 204)
    expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 401, "unauthorized")


def pg_log_errors(f):
    """The ERROR lines PostgreSQL has logged so far (deploy/pg.sh's server.log)."""
    with open(os.path.join(f.pg.dir, "server.log"), errors="replace") as log:
        return [line for line in log if "ERROR:" in line]


def test_a_wrong_key_flood_adds_no_error_to_the_database_log(fleet_factory):
    # Every wrong key reaches the database (no failed-authentication limit), and each is
    # answered 401 as before; none may cost a line in PostgreSQL's log, which the
    # coordinator cannot silence (log_min_messages is for superusers).
    f = fleet_factory("[api]\nfailed_auth_per_minute = 0\n")
    f.server()
    acme = f.tenant("acme")
    r = f.reserve(acme)
    revoked = f.tenant("gone")
    expect(f.call("DELETE", f"/v1/keys/{f.key_ids[revoked]}", f.admin_key), 204)
    wrong_secret = acme[:21] + ("A" * 43 if acme[21:] != "A" * 43 else "B" * 43)
    unknown_prefix = "wgf_" + "a" * 16 + "_" + "A" * 43
    requests = [("GET", f"/v1/routers/{r['id']}", None), ("GET", "/v1/routers", None),
                ("DELETE", f"/v1/routers/{r['id']}", None),
                ("PUT", f"/v1/routers/{r['id']}/public-key", {"public_key": wg_key()}),
                ("POST", "/v1/routers", {}), ("GET", "/v1/tenants", None),
                ("GET", "/v1/status", None)]
    n = 60
    before, counts = len(pg_log_errors(f)), f.counts()
    for i in range(n):
        method, path, body = requests[i % len(requests)]
        key = (wrong_secret, unknown_prefix, revoked)[i % 3]
        err = expect(f.call(method, path, key, body), 401, "unauthorized")
        assert err["error"]["message"] == "The API key is missing, wrong or revoked."
    assert f.counts() == counts
    assert pg_log_errors(f)[before:] == []
    # A key the coordinator cannot parse never reaches the database, and says how.
    err = expect(f.call("GET", "/v1/routers", "not-a-key"), 401, "unauthorized")
    assert err["error"]["message"] == "Send a valid API key as 'Authorization: Bearer <key>'."
    # Other refusals still come from the database as errors: a tenant key on an admin route.
    expect(f.call("GET", "/v1/tenants", acme), 403, "forbidden")
    assert len(pg_log_errors(f)) == before + 1


def test_admin_routes_refuse_a_tenant_key_and_routers_refuse_an_admin_key(fleet):
    f = fleet
    r = f.reserve(f.acme)
    before = f.counts()
    for route in sorted(ADMIN_ONLY):
        method, path, body = concrete_request(route, r["id"], key_id=f.key_ids[f.globex])
        err = expect(f.call(method, path, f.acme, body), 403, "forbidden")
        assert "admin" in err["error"]["message"]
    # Reservations belong to tenants: an admin key cannot make one.
    expect(f.call("POST", "/v1/routers", f.admin_key, {}), 403, "forbidden")
    assert f.counts() == before
    expect(f.call("GET", "/v1/routers", f.globex), 200)  # globex's key was not revoked


# ---- tenants and keys ----

def test_tenants_create_list_update(fleet):
    f = fleet
    status, headers, t = f.call("POST", "/v1/tenants", f.admin_key,
                                {"slug": "initech", "name": "Initech"},
                                headers={"X-Request-Id": "new-tenant"})
    assert status == 201
    assert {k: t[k] for k in ("slug", "name", "router_quota", "reservations_per_hour",
                              "routers")} == {"slug": "initech", "name": "Initech",
                                              "router_quota": 100, "reservations_per_hour": 5,
                                              "routers": 0}
    admin_id = f.scalar("SELECT id FROM api_keys WHERE scope = 'admin'")
    assert audit_rows(f, "tenant.created")[-1][:4] == ["api", admin_id, "initech", "new-tenant"]
    f.reserve(f.acme)
    items = expect(f.call("GET", "/v1/tenants", f.admin_key), 200)["items"]
    assert [(i["slug"], i["routers"]) for i in items] == [("acme", 1), ("globex", 0),
                                                         ("initech", 0)]
    expect(f.call("POST", "/v1/tenants", f.admin_key, {"slug": "initech", "name": "Again"}),
           409, "tenant_exists")
    u = f.admin("PATCH", "/v1/tenants/initech", {"router_quota": 7,
                                                 "reservations_per_hour": 0})
    assert (u["router_quota"], u["reservations_per_hour"]) == (7, 0)
    u = f.admin("PATCH", "/v1/tenants/initech", {"router_quota": 8})
    assert (u["router_quota"], u["reservations_per_hour"]) == (8, 0)
    assert audit_rows(f, "tenant.updated")[0][2] == "initech"
    expect(f.call("PATCH", "/v1/tenants/nobody", f.admin_key, {"router_quota": 1}), 404,
           "tenant_not_found")
    before = f.counts()
    for method, path, body, field in [
            ("POST", "/v1/tenants", {"slug": "Upper", "name": "X"}, "slug"),
            ("POST", "/v1/tenants", {"slug": "-dash", "name": "X"}, "slug"),
            ("POST", "/v1/tenants", {"slug": "ok"}, "name"),
            ("POST", "/v1/tenants", {"slug": "ok", "name": "x" * 201}, "name"),
            ("POST", "/v1/tenants", {"slug": "ok", "name": "X", "router_quota": -1},
             "router_quota"),
            ("POST", "/v1/tenants", {"slug": "ok", "name": "X", "router_quota": 1.5},
             "router_quota"),
            ("POST", "/v1/tenants", {"slug": "ok", "name": "X", "owner": "me"}, "owner"),
            ("PATCH", "/v1/tenants/initech", {"slug": "renamed"}, "slug"),
            ("PATCH", "/v1/tenants/initech", {"reservations_per_hour": "5"},
             "reservations_per_hour"),
            ("PATCH", "/v1/tenants/initech", {"router_quota": 1000001}, "router_quota")]:
        err = expect(f.call(method, path, f.admin_key, body), 400, "invalid_request")
        assert err["error"]["message"].startswith(f"{field}:"), (body, err)
    assert f.counts() == before


def test_keys_are_shown_once_stored_hashed_and_revocable(fleet):
    f = fleet
    made = f.admin("POST", "/v1/tenants/acme/keys", {"label": "ci"}, 201)
    assert set(made) == {"id", "tenant", "label", "scope", "key"}
    assert (made["tenant"], made["label"], made["scope"]) == ("acme", "ci", "tenant")
    key = made["key"]
    assert re.fullmatch(r"wgf_[a-z0-9]{16}_[A-Za-z0-9_-]{43}", key)
    # Only the prefix and a keyed hash are stored; the secret part is nowhere.
    rows = f.sql(f"SELECT prefix, length(hash), encode(hash, 'hex') FROM api_keys "
                 f"WHERE id = {made['id']}")
    assert rows[0][:2] == [key[:20], "32"]
    dump = json.dumps(f.sql("SELECT * FROM api_keys") + f.sql("SELECT * FROM audit_log"))
    assert key[21:] not in dump and key not in dump
    assert key not in json.dumps(expect(f.call("GET", "/v1/tenants", f.admin_key), 200))
    expect(f.call("GET", "/v1/routers", key), 200)
    created = audit_rows(f, "key.created")[-1]
    assert created[2] == "acme" and f'"key_id": {made["id"]}' in created[4]
    expect(f.call("POST", "/v1/tenants/nobody/keys", f.admin_key, {}), 404, "tenant_not_found")
    expect(f.call("POST", "/v1/tenants/acme/keys", f.admin_key, {"label": 5}), 400,
           "invalid_request")

    status, _, body = f.call("DELETE", f"/v1/keys/{made['id']}", f.admin_key)
    assert status == 204 and body == ""
    expect(f.call("GET", "/v1/routers", key), 401, "unauthorized")
    expect(f.call("GET", "/v1/routers", f.acme), 200)  # the tenant's other key still works
    assert audit_rows(f, "key.revoked")[-1][2] == "acme"
    expect(f.call("DELETE", "/v1/keys/999999", f.admin_key), 404, "key_not_found")
    for bad in ("abc", "-1", "0"):
        expect(f.call("DELETE", f"/v1/keys/{bad}", f.admin_key), 400, "invalid_request")


# ---- servers and status ----

def test_servers_create_list_and_input_checks(fleet):
    f = fleet
    agent = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="  # RFC 8032 test vector 1
    s = f.admin("POST", "/v1/servers", {
        "name": "vpn6", "endpoint": "[2001:db8::1]:51820", "interface": "wgf6",
        "pool": "fd00:100::/120", "gateway": "fd00:100::1", "agent_key": agent,
        "public_key": SERVER_WG_KEY, "listen_port": 51820}, 201)
    assert {k: s[k] for k in ("name", "endpoint", "interface", "pool", "gateway", "agent_key",
                              "public_key", "listen_port", "revision", "applied_revision",
                              "last_seen_at")} == {
        "name": "vpn6", "endpoint": "[2001:db8::1]:51820", "interface": "wgf6",
        "pool": "fd00:100::/120", "gateway": "fd00:100::1", "agent_key": agent,
        "public_key": SERVER_WG_KEY, "listen_port": 51820, "revision": 0,
        "applied_revision": 0, "last_seen_at": None}
    # The free list: every address but the network and the gateway (IPv4: and broadcast).
    assert f.sql("SELECT s.name, count(*), bool_or(p.ip = s.gateway), "
                 "bool_or(host(p.ip) = host(network(s.pool))), "
                 "bool_or(host(p.ip) = host(broadcast(s.pool))) "
                 "FROM pool_addresses p JOIN servers s ON s.id = p.server_id "
                 "GROUP BY s.name ORDER BY s.name") == [
        ["vpn1", "253", "f", "f", "f"], ["vpn6", "254", "f", "f", "t"]]
    assert [i["name"] for i in expect(f.call("GET", "/v1/servers", f.admin_key),
                                      200)["items"]] == ["vpn1", "vpn6"]
    assert f.reserve(f.acme, {"server": "vpn6"})["vpn_ip"].startswith("fd00:100::")
    expect(f.call("POST", "/v1/servers", f.admin_key, {
        "name": "vpn6", "endpoint": ENDPOINT, "pool": "10.60.0.0/24", "gateway": "10.60.0.1"}),
        409, "server_exists")
    expect(f.call("POST", "/v1/servers", f.admin_key, {
        "name": "vpn7", "endpoint": ENDPOINT, "pool": "10.60.0.0/24", "gateway": "10.60.0.1",
        "agent_key": agent}), 409, "server_exists")
    good = {"name": "vpn8", "endpoint": ENDPOINT, "pool": "10.70.0.0/24",
            "gateway": "10.70.0.1"}
    before = f.counts()
    for change, field in [
            ({"endpoint": "vpn.example.net"}, "endpoint"),
            ({"endpoint": "vpn.example.net:70000"}, "endpoint"),
            ({"pool": "10.70.0.0/33"}, "pool"), ({"pool": "not a pool"}, "pool"),
            ({"pool": "10.70.0.0/31", "gateway": "10.70.0.1"}, "pool"),
            ({"pool": "10.0.0.0/8", "gateway": "10.0.0.1"}, "pool"),
            ({"gateway": "10.71.0.1"}, "gateway"), ({"gateway": "10.70.0.0"}, "gateway"),
            ({"gateway": "10.70.0.255"}, "gateway"),
            ({"public_key": low_order_key(LOW_ORDER_POINTS[1])}, "public_key"),
            ({"public_key": "c2hvcnQ="}, "public_key"),
            ({"agent_key": ZERO_KEY}, "agent_key"), ({"agent_key": "AAAA"}, "agent_key"),
            ({"listen_port": 0}, "listen_port"), ({"listen_port": "51820"}, "listen_port"),
            ({"name": "UPPER"}, "name"), ({"interface": "x" * 16}, "interface"),
            ({"region": "eu"}, "region")]:
        body = dict(good, **change)
        err = expect(f.call("POST", "/v1/servers", f.admin_key, body), 400, "invalid_request")
        assert err["error"]["message"].startswith(f"{field}:"), (change, err)
    assert f.counts() == before
    assert audit_rows(f, "server.created")[-1][0] == "api"


def test_status_counts_servers_routers_and_pool_use(fleet):
    f = fleet
    f.server("vpn2", "10.200.0.0/29")
    a = f.reserve(f.acme, {"server": "vpn1"})
    b = f.reserve(f.acme, {"server": "vpn1"})
    c = f.reserve(f.globex, {"server": "vpn1"})
    d = f.reserve(f.globex, {"server": "vpn2"})
    for r in (a, b, c):
        f.set_key(f.acme if r is not c else f.globex, r["id"], wg_key())
    expect(f.call("DELETE", f"/v1/routers/{c['id']}", f.globex), 204)
    f.sql(f"UPDATE routers SET status = 'vps_ready' WHERE id = '{b['id']}';"
          f"UPDATE routers SET status = 'connected' WHERE id = '{b['id']}';"
          "UPDATE servers SET last_seen_at = now(), applied_revision = 2 WHERE name = 'vpn1';"
          "UPDATE servers SET last_seen_at = now() - interval '1 hour' WHERE name = 'vpn2'")
    st = f.admin("GET", "/v1/status")
    assert set(st) == {"servers", "routers"}
    assert st["routers"] == {"configured": 1, "connected": 1, "pending": 1}
    v1, v2 = st["servers"]
    assert (v1["name"], v1["online"], v1["revision"], v1["applied_revision"],
            v1["revision_lag"], v1["peers"], v1["connected"]) == ("vpn1", True, 4, 2, 2, 2, 1)
    assert v1["pool"] == {"cidr": "10.100.0.0/24", "size": 253, "used": 2}
    assert v1["last_seen_at"] is not None
    assert (v2["name"], v2["online"], v2["revision"], v2["revision_lag"], v2["peers"],
            v2["connected"]) == ("vpn2", False, 0, 0, 0, 0)
    assert v2["pool"] == {"cidr": "10.200.0.0/29", "size": 5, "used": 1}
    assert d["server"] == "vpn2"
    err = expect(f.call("GET", "/v1/status?verbose=1", f.admin_key), 400, "invalid_request")
    assert err["error"]["message"].startswith("verbose:")


# ---- input checks shared by every route ----

def test_bodies_are_bounded_and_checked_field_by_field(fleet):
    f = fleet
    limit = 64 * 1024
    pad = limit - len('{"name": "x"}')
    exact = '{"name": "x"' + " " * pad + "}"
    assert len(exact) == limit
    status, _, r = f.call("POST", "/v1/routers", f.acme, raw=exact)
    assert status == 201 and r["name"] == "x"
    before = f.counts()
    # One byte more is refused by the HTTP layer before the body is read (h2o's own
    # plain-text 413), so no sender can make the coordinator buffer more than this.
    too_big = '{"name": "x"' + " " * (pad + 1) + "}"
    assert f.call("POST", "/v1/routers", f.acme, raw=too_big)[0] == 413
    assert f.call("PUT", f"/v1/routers/{r['id']}/public-key", f.acme, raw=too_big)[0] == 413
    for raw, field, words in [
            ('{"name": "x"', "body", "not valid JSON"), ("", "body", "not valid JSON"),
            ('{"name": "a", "name": "b"}', "body", "not valid JSON"),
            ("[]", "body", "must be a JSON object"), ('"x"', "body", "not valid JSON"),
            ('{"nam": "x"}', "nam", "unknown field"), ('{"name": 5}', "name", "must be a string"),
            ('{"server": ["vpn1"]}', "server", "must be a string"),
            (json.dumps({"name": "x" * 101}), "name", "longer than 100"),
            (json.dumps({"name": "a\nb"}), "name", "control or formatting characters"),
            (json.dumps({"name": 'say "hi"'}), "name", "quotes"),
            (json.dumps({"server": "s" * 64}), "server", "longer than 63")]:
        err = expect(f.call("POST", "/v1/routers", f.acme, raw=raw), 400, "invalid_request")
        assert err["error"]["message"].startswith(f"{field}: "), (raw, err)
        assert words in err["error"]["message"], (raw, err)
    assert f.counts() == before
    assert f.reserve(f.acme, {"name": "x" * 100, "server": None})["name"] == "x" * 100


def test_unknown_routes_are_404_and_wrong_methods_405(fleet):
    f = fleet
    rid = str(uuid.uuid4())
    for method, path in [("GET", "/v1/nope"), ("GET", "/v1/routers/x/y"), ("GET", "/"),
                         ("GET", "/v2/routers"), ("GET", f"/v1/routers/{rid}/config/x")]:
        expect(f.call(method, path, f.acme), 404, "not_found")
    for method, path in [("PATCH", "/v1/routers"), ("POST", f"/v1/routers/{rid}"),
                         ("GET", f"/v1/routers/{rid}/public-key"), ("DELETE", "/v1/tenants"),
                         ("POST", "/healthz"), ("PUT", "/v1/status")]:
        for key in (f.acme, None):  # the method is checked before the key
            err = expect(f.call(method, path, key), 405, "method_not_allowed")
            assert method in err["error"]["message"]


def test_request_ids_are_echoed_or_made(fleet):
    f = fleet
    for sent, echoed in [("abc-123.X_y", True), ("has space", False), ("x" * 64, True),
                         ("x" * 65, False), ("", False), ("a/b", False)]:
        _, headers, _ = f.call("GET", "/healthz", headers={"X-Request-Id": sent})
        if echoed:
            assert headers["x-request-id"] == sent
        else:
            assert re.fullmatch(r"[0-9a-f]{24}", headers["x-request-id"]), (sent, headers)


# ---- the OpenAPI description ----

def test_openapi_documents_exactly_the_routes_the_server_has(fleet):
    f = fleet
    served = api_routes()
    path = os.path.join(TOP, "docs", "openapi.yaml")
    assert os.path.exists(path), "docs/openapi.yaml is missing"
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    assert str(doc["openapi"]).startswith("3.")
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    documented = []
    for p, item in doc["paths"].items():
        for m in item:
            if m in methods:
                documented.append(f"{m.upper()} {re.sub(r'{[^}/]+}', '{}', p)}")
                assert item[m].get("responses"), f"{m.upper()} {p} documents no responses"
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(served), (
        f"documented only: {sorted(set(documented) - set(served))}; "
        f"served only: {sorted(set(served) - set(documented))}")
    # And each documented route is there on the running server: never 404 or 405.
    for route in documented:
        method, p, body = concrete_request(route, str(uuid.uuid4()))
        status, _, payload = f.call(method, p, body=body)
        assert status == (200 if route in UNAUTHENTICATED else 401), (route, status, payload)


# ---- reloading ----

def test_sighup_reloads_the_reloadable_options(fleet):
    f = fleet
    coord = f.coord
    r = f.reserve(f.acme)
    assert "PersistentKeepalive = 25" in r["setup"]["wg_quick"]
    with open(coord.config) as fh:
        original = fh.read()
    with open(coord.config, "w") as fh:
        fh.write(original + "persistent_keepalive = 40\nreservation_ttl = 2h\n"
                 "[log]\nlevel = debug\n")
    coord.proc.send_signal(signal.SIGHUP)
    poll(lambda: "Configuration reloaded" in log_messages(coord.read_log()), 5,
         what="the reload")
    r2 = f.reserve(f.acme)
    assert "PersistentKeepalive = 40" in r2["setup"]["wg_quick"]
    assert "persistent-keepalive=40s" in r2["setup"]["routeros"]
    created, expires = r2["created_at"], r2["reservation_expires_at"]
    assert f.scalar(f"SELECT '{expires}'::timestamptz - '{created}'::timestamptz") == "02:00:00"
    f.set_key(f.acme, r2["id"], wg_key())
    assert f.scalar(f"SELECT persistent_keepalive FROM routers WHERE id = '{r2['id']}'") \
        == "40"
    # A broken file on reload keeps the running configuration.
    with open(coord.config, "w") as fh:
        fh.write(original + "persistent_keepalive = lots\n")
    coord.proc.send_signal(signal.SIGHUP)
    poll(lambda: any(m.startswith("Reload failed") for m in log_messages(coord.read_log())), 5,
         what="the failed reload")
    assert "PersistentKeepalive = 40" in f.reserve(f.acme)["setup"]["wg_quick"]
    assert coord.proc.poll() is None
