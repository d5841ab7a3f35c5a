# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Bringing an existing fleet under wgfleet (issue 16, item 1): POST
/v1/servers/{name}/import, a dry run by default, all or nothing with ?apply=true."""
import json

from apiutil import LOW_ORDER_POINTS, expect, fleet_factory, low_order_key, wg_key

assert fleet_factory  # a fixture, used by name


def line(tenant, address, key=None, **extra):
    return {"tenant": tenant, "address": address, "public_key": key or wg_key(), **extra}


def imported(f, body, apply=False, status=200):
    path = "/v1/servers/vpn1/import" + ("?apply=true" if apply else "")
    return expect(f.call("POST", path, f.admin_key, body), status)


def test_a_dry_run_lists_what_would_be_made_and_every_conflict(fleet_factory):
    f = fleet_factory()
    f.server()
    acme = f.tenant("acme", quota=5)
    f.tenant("globex", quota=1)
    held = f.reserve(acme)  # an address already held
    key_in_use = wg_key()
    f.set_key(acme, held["id"], key_in_use)
    dup_key = wg_key()
    body = {"routers": [
        line("acme", "10.100.0.20", name="shop-1", persistent_keepalive=15,
             created_at="2025-06-01T10:00:00Z"),
        line("nobody", "10.100.0.21"),
        line("acme", "10.101.0.5"),
        line("acme", "10.100.0.1"),  # the gateway
        line("acme", "10.100.0.255"),  # broadcast
        line("acme", held["vpn_ip"]),
        line("acme", "10.100.0.22", key_in_use),
        line("acme", "10.100.0.20"),  # the first line's address again
        line("acme", "10.100.0.23", dup_key),
        line("acme", "10.100.0.24", dup_key),
        line("globex", "10.100.0.30"),
        line("globex", "10.100.0.31"),  # globex's quota is 1: both would make 2
    ]}
    before = f.counts()
    got = imported(f, body)
    assert got["applied"] is False
    codes = {c["line"]: c["code"] for c in got["conflicts"]}
    assert codes == {2: "tenant_not_found", 3: "address_outside_pool", 4: "address_reserved",
                     5: "address_reserved", 6: "address_in_use", 7: "public_key_in_use",
                     8: "duplicate_address", 10: "duplicate_public_key",
                     11: "quota_exceeded", 12: "quota_exceeded"}, got["conflicts"]
    assert all(c["message"] for c in got["conflicts"])
    assert [r["line"] for r in got["routers"]] == [1, 9]
    assert got["routers"][0] == {"line": 1, "tenant": "acme", "name": "shop-1",
                                 "address": "10.100.0.20",
                                 "public_key": body["routers"][0]["public_key"]}
    assert f.counts() == before
    # Applying it is refused whole, and changes nothing either.
    err = imported(f, body, apply=True, status=409)
    assert err["error"]["code"] == "import_conflicts"
    assert f.counts() == before


def test_apply_creates_configured_routers_with_their_peers_in_one_go(fleet_factory):
    f = fleet_factory()
    f.server()
    acme = f.tenant("acme", quota=10)
    f.tenant("globex", quota=10)
    body = {"routers": [line("acme", "10.100.0.20", name="shop-1", persistent_keepalive=15,
                             created_at="2025-06-01T10:00:00Z"),
                        line("globex", "10.100.0.21")]}
    rev = int(f.scalar("SELECT revision FROM servers"))
    got = imported(f, body, apply=True)
    assert got["applied"] is True and got["conflicts"] == []
    ids = [r["id"] for r in got["routers"]]
    rows = f.sql("SELECT r.name, host(r.vpn_ip), r.status, encode(r.public_key, 'base64'), "
                 "r.persistent_keepalive, r.created_at = '2025-06-01T10:00:00Z', t.slug, "
                 "r.key_revision > %d FROM routers r JOIN tenants t ON t.id = r.tenant_id "
                 "ORDER BY r.vpn_ip" % rev)
    assert rows == [["shop-1", "10.100.0.20", "configured", body["routers"][0]["public_key"],
                     "15", "t", "acme", "t"],
                    ["", "10.100.0.21", "configured", body["routers"][1]["public_key"],
                     "25", "f", "globex", "t"]]
    # Each peer is a change the agent will get; each router is audited to its tenant.
    assert int(f.scalar("SELECT revision FROM servers")) == rev + 2
    assert f.sql("SELECT t.slug FROM audit_log a JOIN tenants t ON t.id = a.tenant_id "
                 "WHERE a.action = 'router.imported' ORDER BY a.id") == [["acme"], ["globex"]]
    # Addresses are held and counted: the tenant sees its router, the pool lost two.
    mine = expect(f.call("GET", "/v1/routers", acme), 200)["items"]
    assert [r["id"] for r in mine] == [ids[0]]
    assert f.scalar("SELECT count(*) FROM pool_addresses WHERE router_id IS NOT NULL") == "2"
    assert f.scalar("SELECT live_routers FROM tenants WHERE slug = 'acme'") == "1"
    # The same file again conflicts on every line (addresses and keys are taken).
    again = imported(f, body)
    assert {c["code"] for c in again["conflicts"]} == {"address_in_use"}


def test_bad_lines_are_refused_with_the_field_named(fleet_factory):
    f = fleet_factory()
    f.server()
    f.tenant("acme")
    before = f.counts()
    cases = [
        ({"routers": []}, "routers"),
        ({"routers": [{"tenant": "acme", "address": "10.100.0.9"}]}, "routers[1].public_key"),
        ({"routers": [line("acme", "10.100.0.9", extra=1)]}, "routers[1].extra"),
        ({"routers": [line("acme", "10.100.0.9"), line("acme", "banana")]},
         "routers[2].address"),
        ({"routers": [line("acme", "10.100.0.9", low_order_key(LOW_ORDER_POINTS[0]))]},
         "routers[1].public_key"),
        ({"routers": [line("Not A Slug", "10.100.0.9")]}, "routers[1].tenant"),
        ({"routers": [line("acme", "10.100.0.9", created_at="yesterday")]},
         "routers[1].created_at"),
        ({"routers": "all of them"}, "routers"),
    ]
    for body, field in cases:
        err = imported(f, body, status=400)["error"]
        assert err["code"] == "invalid_request" and err["message"].startswith(field), (body, err)
    err = expect(f.call("POST", "/v1/servers/vpn1/import?apply=maybe", f.admin_key,
                        {"routers": [line("acme", "10.100.0.9")]}), 400)["error"]
    assert err["message"].startswith("apply"), err
    assert expect(f.call("POST", "/v1/servers/nope/import", f.admin_key,
                         {"routers": [line("acme", "10.100.0.9")]}), 404)
    assert f.counts() == before
    json.dumps(before)
