# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Bringing an existing fleet under wgfleet (issue 16, item 1): POST
/v1/servers/{name}/import, a dry run by default, all or nothing with ?apply=true."""
import base64
import json
import subprocess
import threading
import time

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


def test_lease_history_stays_true(fleet_factory):
    f = fleet_factory()
    f.server()
    acme = f.tenant("acme")
    f.tenant("globex")
    gone = f.reserve(acme)
    expect(f.call("DELETE", f"/v1/routers/{gone['id']}", acme), 204)
    cases = [(line("globex", gone["vpn_ip"], created_at="2020-01-01T00:00:00Z"), "lease_overlap"),
             (line("globex", "10.100.0.50", created_at="2999-01-01T00:00:00Z"),
              "created_in_future")]
    for ln, code in cases:
        got = imported(f, {"routers": [ln]})
        assert [c["code"] for c in got["conflicts"]] == [code], got
    # Without a created_at (now), the address's next lease starts after the last one.
    assert imported(f, {"routers": [line("globex", gone["vpn_ip"])]}, apply=True)["applied"]
    leases = f.admin("GET", f"/v1/leases?ip={gone['vpn_ip']}")["items"]
    assert len(leases) == 2 and leases[0]["until"] is not None


def test_a_reservation_meanwhile_never_takes_a_line_s_address(fleet_factory):
    f = fleet_factory()
    f.server()
    f.tenant("acme")
    globex = f.tenant("globex")
    # The import stops 2 s at its first router (10.100.0.3) with 10.100.0.2 still to
    # come; a reservation meanwhile would be given .2, the lowest free address.
    f.sql("CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
          "IF NEW.status_reason = 'imported' AND NEW.vpn_ip = '10.100.0.3' THEN "
          "PERFORM pg_sleep(2); END IF; RETURN NEW; END $$; "
          "CREATE TRIGGER test_slow BEFORE INSERT ON routers FOR EACH ROW "
          "EXECUTE FUNCTION test_slow()")
    got = {}
    body = {"routers": [line("acme", "10.100.0.3"), line("acme", "10.100.0.2")]}
    t = threading.Thread(target=lambda: got.update(
        r=f.call("POST", "/v1/servers/vpn1/import?apply=true", f.admin_key, body)))
    t.start()
    time.sleep(0.7)
    r = f.reserve(globex)
    t.join(timeout=20)
    status, _, answer = got["r"]
    assert status == 200 and answer["applied"], answer
    assert r["vpn_ip"] not in ("10.100.0.2", "10.100.0.3"), r


def test_one_key_imported_to_two_servers_at_once_is_a_conflict(fleet_factory, pg, migrated_db):
    f = fleet_factory()
    f.server()
    f.server("vpn2", pool="10.101.0.0/24")
    f.tenant("acme")
    f.tenant("globex")
    key = wg_key()
    f.sql("SELECT wgf_create_admin_key('test-admin-1', decode(repeat('cd', 32), 'hex'), 't')")
    holder = subprocess.Popen(["psql", pg.with_db(migrated_db[0]), "-X", "-q"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        lines = json.dumps([line("acme", "10.100.0.9", key)])
        holder.stdin.write("BEGIN;\nSELECT wgf_api_import('test-admin-1', decode(repeat('cd', "
                           f"32), 'hex'), 'vpn1', '{lines}'::jsonb, true, 't');\n")
        holder.stdin.flush()
        deadline = time.monotonic() + 10
        while f.scalar("SELECT count(*) FROM pg_stat_activity WHERE state = "
                       "'idle in transaction' AND backend_type = 'client backend'") != "1":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        got = {}
        t = threading.Thread(target=lambda: got.update(r=f.call(
            "POST", "/v1/servers/vpn2/import?apply=true", f.admin_key,
            {"routers": [line("globex", "10.101.0.9", key)]})))
        t.start()
        time.sleep(1.0)
        holder.stdin.write("COMMIT;\n\\q\n")
        holder.stdin.flush()
        holder.wait(timeout=20)
        t.join(timeout=20)
    finally:
        if holder.poll() is None:
            holder.kill()
    status, _, answer = got["r"]
    assert (status, answer["error"]["code"]) == (409, "import_conflicts"), answer
    assert f.scalar(f"SELECT count(*) FROM routers WHERE public_key = "
                    f"decode('{base64.b64decode(key).hex()}', 'hex')") == "1"
