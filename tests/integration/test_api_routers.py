# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The portal API for routers, against a real PostgreSQL and a real coordinator:
reservation, public keys and rotation, deletion, expiry, the pool, idempotency,
tenant isolation, listing, the audit log and leases."""
import base64
import re
import uuid
from datetime import datetime, timedelta

from apiutil import (ENDPOINT, LOW_ORDER_POINTS, SERVER_WG_KEY, ZERO_KEY, expect,
                     fleet, fleet_factory, hosts_of, low_order_key, poll, wg_key)

assert fleet and fleet_factory  # fixtures, used by name

B64_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


def ts(text):
    return datetime.fromisoformat(text)


def router_audit(f, router_id):
    return f.sql("SELECT a.actor, a.action, a.api_key_id, t.slug, host(a.vpn_ip), "
                 "a.request_id, a.server_id FROM audit_log a "
                 f"LEFT JOIN tenants t ON t.id = a.tenant_id WHERE a.router_id = '{router_id}' "
                 "ORDER BY a.id")


def router_changes(f, router_id):
    # What the agent is sent for each change: an upsert's allowed IP and keepalive come
    # from the router (stored once), a removal is the key alone.
    return f.sql("SELECT s.name, c.revision, c.op, encode(c.public_key, 'base64'), "
                 "CASE c.op WHEN 'upsert' THEN wgf_peer_ip(r.vpn_ip)::text ELSE '' END, "
                 "CASE c.op WHEN 'upsert' THEN r.persistent_keepalive::text ELSE '' END "
                 "FROM changes c JOIN servers s ON s.id = c.server_id "
                 f"JOIN routers r ON r.id = c.router_id WHERE c.router_id = '{router_id}' "
                 "ORDER BY c.revision")


# ---- reservation and setup text ----

def test_reserve_returns_a_pending_router_with_its_setup_and_audit_row(fleet):
    f = fleet
    status, headers, r = f.call("POST", "/v1/routers", f.acme, {"name": "shop-1"},
                                headers={"X-Request-Id": "req-reserve-1"})
    assert status == 201, r
    assert headers["x-request-id"] == "req-reserve-1"
    assert uuid.UUID(r["id"]) and r["name"] == "shop-1" and r["server"] == "vpn1"
    assert r["vpn_status"] == "pending" and r["public_key"] is None
    assert r["vpn_ip"] in hosts_of("10.100.0.0/24") - {"10.100.0.1"}
    assert ts(r["reservation_expires_at"]) - ts(r["created_at"]) == timedelta(hours=24)
    assert set(r["setup"]) == {"routeros", "wg_quick"} and "_server" not in r
    assert router_audit(f, r["id"]) == [
        ["api", "router.reserved", str(f.key_ids[f.acme]), "acme", r["vpn_ip"], "req-reserve-1",
         f.scalar("SELECT id FROM servers WHERE name = 'vpn1'")]]
    # Without a request id of its own the client gets one, and the audit row has it.
    status, headers, r2 = f.call("POST", "/v1/routers", f.acme, {})
    assert status == 201 and re.fullmatch(r"[0-9a-f]{24}", headers["x-request-id"])
    assert router_audit(f, r2["id"])[0][5] == headers["x-request-id"]
    assert r2["name"] is None and r2["vpn_ip"] != r["vpn_ip"]
    got = expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 200)
    assert got == r


def test_setup_text_holds_the_server_side_and_never_a_private_key(fleet):
    f = fleet
    r = f.reserve(f.acme, {"name": "shop-1"})
    ip = r["vpn_ip"]
    wgq, ros = r["setup"]["wg_quick"], r["setup"]["routeros"]
    for line in [f"Address = {ip}/24", f"PublicKey = {SERVER_WG_KEY}", f"Endpoint = {ENDPOINT}",
                 "AllowedIPs = 10.100.0.0/24", "PersistentKeepalive = 25",
                 "PrivateKey = <this router's private key>"]:
        assert line in wgq.splitlines(), (line, wgq)
    assert "wg pubkey" in wgq and r["id"] in wgq
    assert f'public-key="{SERVER_WG_KEY}"' in ros
    assert 'endpoint-address="vpn1.example.net" endpoint-port=51820' in ros
    assert "allowed-address=10.100.0.0/24" in ros and "persistent-keepalive=25s" in ros
    assert f"/ip address add address={ip}/24 interface=wgfleet" in ros.splitlines()
    assert ":put [/interface wireguard get [find name=wgfleet] public-key]" in ros
    # The only key in either text is the server's public key.
    assert B64_KEY.findall(wgq + ros) == [SERVER_WG_KEY, SERVER_WG_KEY]
    assert "private-key=" not in ros

    # A server whose agent has not reported its key yet: the text says so.
    f.server("vpn2", "10.200.0.0/24", public_key=None, endpoint="[2001:db8::1]:51821")
    r2 = f.reserve(f.acme, {"server": "vpn2"})
    assert "PublicKey = <pending: the server has not reported its public key yet>" in \
        r2["setup"]["wg_quick"]
    assert "Endpoint = [2001:db8::1]:51821" in r2["setup"]["wg_quick"]
    assert 'endpoint-address="2001:db8::1" endpoint-port=51821' in r2["setup"]["routeros"]
    assert B64_KEY.findall(r2["setup"]["wg_quick"] + r2["setup"]["routeros"]) == []


def test_config_is_text_plain_in_both_formats(fleet):
    f = fleet
    r = f.reserve(f.acme, {"name": "shop-1"})
    for fmt, query in [("routeros", "?format=routeros"), ("wg_quick", "?format=wg-quick"),
                       ("routeros", "")]:
        status, headers, text = f.call("GET", f"/v1/routers/{r['id']}/config{query}", f.acme)
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert text == r["setup"][fmt]
    err = expect(f.call("GET", f"/v1/routers/{r['id']}/config?format=ini", f.acme), 400,
                 "invalid_request")
    assert err["error"]["message"].startswith("format:")
    err = expect(f.call("GET", f"/v1/routers/{r['id']}/config?fmt=ini", f.acme), 400,
                 "invalid_request")
    assert err["error"]["message"].startswith("fmt:")


def test_reserve_on_a_named_server_and_unknown_server(fleet):
    f = fleet
    f.server("vpn2", "10.200.0.0/24")
    assert f.reserve(f.acme, {"server": "vpn2"})["vpn_ip"].startswith("10.200.0.")
    before = f.counts()
    err = expect(f.call("POST", "/v1/routers", f.acme, {"server": "nope"}), 404,
                 "server_not_found")
    assert "nope" in err["error"]["message"]
    assert f.counts() == before


def test_without_a_server_name_the_least_used_server_is_chosen(fleet):
    f = fleet
    f.server("vpn2", "10.200.0.0/24")
    servers = [f.reserve(f.acme)["server"] for _ in range(6)]
    assert sorted(servers) == ["vpn1"] * 3 + ["vpn2"] * 3


def test_pool_exhausted_without_any_server(fleet_factory):
    f = fleet_factory()
    key = f.tenant("acme")
    err = expect(f.call("POST", "/v1/routers", key, {}), 409, "pool_exhausted")
    assert "No server" in err["error"]["message"]


def test_pool_skips_network_gateway_broadcast_and_cools_released_addresses(fleet_factory):
    cooldown = 1.5
    f = fleet_factory(f"address_cooldown = {int(cooldown * 1000)}ms\n")
    f.server("tiny", "10.9.0.0/29", gateway="10.9.0.6")
    key = f.tenant("acme")
    got = {}
    for _ in range(10):
        status, _, r = f.call("POST", "/v1/routers", key, {})
        if status != 201:
            break
        got[r["vpn_ip"]] = r
    assert status == 409 and r["error"]["code"] == "pool_exhausted", r
    # .0 network, .6 gateway, .7 broadcast are never handed out; every other one is.
    assert set(got) == {"10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5"}

    victim = got["10.9.0.3"]
    expect(f.call("DELETE", f"/v1/routers/{victim['id']}", key), 204)
    # Inside the cool-down the released address is not handed out.
    expect(f.call("POST", "/v1/routers", key, {}), 409, "pool_exhausted")

    def again():
        status, _, r = f.call("POST", "/v1/routers", key, {})
        assert status in (201, 409), r
        return r if status == 201 else None
    reused = poll(again, cooldown + 5, interval=0.1, what="reuse after the cool-down")
    assert reused["vpn_ip"] == "10.9.0.3"
    rested = f.scalar("SELECT extract(epoch FROM n.created_at - o.released_at) FROM routers o, "
                      f"routers n WHERE o.id = '{victim['id']}' AND n.id = '{reused['id']}'")
    assert float(rested) >= cooldown


# ---- public keys ----

def test_public_key_configures_the_router_and_appends_a_change(fleet):
    f = fleet
    r = f.reserve(f.acme, {"name": "shop-1"})
    key = wg_key()
    status, headers, got = f.call("PUT", f"/v1/routers/{r['id']}/public-key", f.acme,
                                  {"public_key": key})
    assert status == 200, got
    assert got["vpn_status"] == "configured" and got["public_key"] == key
    assert got["configured_at"] is not None and got["reservation_expires_at"] is None
    assert got["setup"] == r["setup"]
    assert router_changes(f, r["id"]) == [
        ["vpn1", "1", "upsert", key, r["vpn_ip"] + "/32", "25"]]
    assert f.scalar("SELECT revision FROM servers WHERE name = 'vpn1'") == "1"
    assert f.scalar(f"SELECT key_revision FROM routers WHERE id = '{r['id']}'") == "1"
    assert router_audit(f, r["id"])[-1][:6] == [
        "api", "router.key_set", str(f.key_ids[f.acme]), "acme", r["vpn_ip"],
        headers["x-request-id"]]
    # The same key again is a no-op.
    before = f.counts()
    assert f.set_key(f.acme, r["id"], key)["vpn_status"] == "configured"
    assert f.counts() == before


BAD_KEYS = [
    ("not base64 at all, not base64 at all, not!!", "not base64"),
    (base64.b64encode(bytes(range(1, 32))).decode(), "31 bytes"),
    (base64.b64encode(bytes(range(1, 34))).decode(), "33 bytes"),
    ("", "empty"),
    (ZERO_KEY, "all zero"),
] + [(low_order_key(p), "low order") for p in LOW_ORDER_POINTS]


def test_invalid_public_keys_are_400_and_change_nothing(fleet):
    f = fleet
    r = f.reserve(f.acme)
    before = f.counts()
    for bad, why in BAD_KEYS:
        err = expect(f.call("PUT", f"/v1/routers/{r['id']}/public-key", f.acme,
                            {"public_key": bad}), 400, "invalid_public_key")
        assert err["error"]["message"].startswith("public_key:"), (why, err)
    for body, why in [({"public_key": 42}, "must be a string"), ({}, "is required"),
                      ({"public_key": None}, "public_key: must be a string"),
                      ({"public_key": wg_key(), "name": "x"}, "name: unknown field")]:
        err = expect(f.call("PUT", f"/v1/routers/{r['id']}/public-key", f.acme, body), 400,
                     "invalid_request")
        assert why in err["error"]["message"], (body, err)
    assert f.counts() == before
    assert expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 200)["vpn_status"] == \
        "pending"


def test_a_key_another_router_uses_is_409_for_any_tenant(fleet):
    f = fleet
    key = wg_key()
    a = f.reserve(f.acme)
    f.set_key(f.acme, a["id"], key)
    before = f.counts()
    for tenant in (f.acme, f.globex):
        b = f.reserve(tenant)
        before = f.counts()
        expect(f.call("PUT", f"/v1/routers/{b['id']}/public-key", tenant, {"public_key": key}),
               409, "public_key_in_use")
        assert f.counts() == before
    # Once the first router rotates away from it, the key is free again.
    f.set_key(f.acme, a["id"], wg_key())
    assert f.set_key(f.globex, b["id"], key)["public_key"] == key


def test_key_rotation_removes_the_old_peer_and_adds_the_new(fleet):
    f = fleet
    r = f.reserve(f.acme)
    k1, k2, k3 = wg_key(), wg_key(), wg_key()
    f.set_key(f.acme, r["id"], k1)
    got = f.set_key(f.acme, r["id"], k2)
    assert got["vpn_status"] == "configured" and got["public_key"] == k2
    allowed = r["vpn_ip"] + "/32"
    assert router_changes(f, r["id"]) == [
        ["vpn1", "1", "upsert", k1, allowed, "25"],
        ["vpn1", "2", "remove", k1, "", ""],
        ["vpn1", "3", "upsert", k2, allowed, "25"]]
    rotated = router_audit(f, r["id"])[-1]
    assert rotated[1] == "router.key_rotated"
    detail = f.scalar(f"SELECT detail::text FROM audit_log WHERE router_id = '{r['id']}' "
                      "ORDER BY id DESC LIMIT 1")
    assert k1 in detail and k2 in detail
    # A connected router that rotates goes back to configured.
    f.sql(f"UPDATE routers SET status = 'vps_ready' WHERE id = '{r['id']}';"
          f"UPDATE routers SET status = 'connected' WHERE id = '{r['id']}'")
    assert f.set_key(f.acme, r["id"], k3)["vpn_status"] == "configured"
    assert [c[1:3] for c in router_changes(f, r["id"])[3:]] == [["4", "remove"], ["5", "upsert"]]
    assert f.scalar(f"SELECT key_revision FROM routers WHERE id = '{r['id']}'") == "5"


# ---- deletion and expiry ----

def test_delete_releases_the_address_and_removes_the_peer(fleet):
    f = fleet
    r = f.reserve(f.acme)
    key = wg_key()
    f.set_key(f.acme, r["id"], key)
    status, headers, body = f.call("DELETE", f"/v1/routers/{r['id']}", f.acme)
    assert status == 204 and body == ""
    assert router_changes(f, r["id"])[-1] == ["vpn1", "2", "remove", key, "", ""]
    assert f.sql(f"SELECT router_id IS NULL, free_since > now() - interval '1 minute' "
                 f"FROM pool_addresses WHERE ip = '{r['vpn_ip']}'") == [["t", "t"]]
    assert f.scalar(f"SELECT status FROM routers WHERE id = '{r['id']}'") == "deleted"
    assert router_audit(f, r["id"])[-1][:6] == [
        "api", "router.deleted", str(f.key_ids[f.acme]), "acme", r["vpn_ip"],
        headers["x-request-id"]]
    expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 404, "router_not_found")
    expect(f.call("DELETE", f"/v1/routers/{r['id']}", f.acme), 404, "router_not_found")
    # The key is free for another router once its router is gone.
    other = f.reserve(f.acme)
    f.set_key(f.acme, other["id"], key)
    # A pending router has no peer: deleting it appends no change.
    p = f.reserve(f.acme)
    expect(f.call("DELETE", f"/v1/routers/{p['id']}", f.acme), 204)
    assert router_changes(f, p["id"]) == []


def test_expiry_by_the_sweeper(fleet_factory):
    extra = "reservation_ttl = 1s\naddress_cooldown = 0s\n[sweeper]\ninterval = 200ms\n"
    f = fleet_factory(extra)
    f.start(extra)  # two sweepers on one database: still one expiry per router
    f.server("tiny", "10.9.0.0/30")  # one address: 10.9.0.2
    key = f.tenant("acme")
    r = f.reserve(key, {"name": "late"})
    assert r["vpn_ip"] == "10.9.0.2"
    assert ts(r["reservation_expires_at"]) - ts(r["created_at"]) == timedelta(seconds=1)

    def expired():
        got = expect(f.call("GET", f"/v1/routers/{r['id']}", key), 200)
        return got if got["vpn_status"] == "expired" else None
    got = poll(expired, 10, what="expiry")
    assert got["released_at"] is not None and got["reservation_expires_at"] is None
    assert "expired" in got["status_reason"]
    assert router_audit(f, r["id"])[1:] == [["sweeper", "router.expired", "", "acme",
                                            "10.9.0.2", "", f.scalar("SELECT id FROM servers")]]
    assert f.scalar("SELECT count(*) FROM pool_addresses WHERE router_id IS NULL") == "1"
    before = f.counts()
    expect(f.call("PUT", f"/v1/routers/{r['id']}/public-key", key, {"public_key": wg_key()}),
           409, "reservation_expired")
    assert f.counts() == before
    # The address went back to the pool: the next reservation gets it.
    assert f.reserve(key)["vpn_ip"] == "10.9.0.2"
    # Expired routers are no longer counted in the quota, and can still be deleted.
    expect(f.call("DELETE", f"/v1/routers/{r['id']}", key), 204)
    expect(f.call("GET", f"/v1/routers/{r['id']}", key), 404, "router_not_found")


def test_a_key_after_the_expiry_but_before_the_sweep_is_409(fleet_factory):
    f = fleet_factory("reservation_ttl = 1s\n[sweeper]\ninterval = 1h\n")
    f.server()
    key = f.tenant("acme")
    r = f.reserve(key)
    expires = ts(r["reservation_expires_at"])

    def past_expiry():
        return f.scalar(f"SELECT now() > '{expires.isoformat()}'::timestamptz") == "t"
    poll(past_expiry, 5, what="the reservation's expiry")
    expect(f.call("PUT", f"/v1/routers/{r['id']}/public-key", key, {"public_key": wg_key()}),
           409, "reservation_expired")


# ---- limits ----

def test_quota_exceeded_is_403_and_counts_live_routers(fleet):
    f = fleet
    key = f.tenant("small", quota=2)
    a = f.reserve(key)
    f.reserve(key)
    before = f.counts()
    err = expect(f.call("POST", "/v1/routers", key, {}), 403, "quota_exceeded")
    assert "2" in err["error"]["message"]
    assert f.counts() == before
    expect(f.call("DELETE", f"/v1/routers/{a['id']}", key), 204)
    f.reserve(key)
    expect(f.call("POST", "/v1/routers", key, {}), 403, "quota_exceeded")
    f.admin("PATCH", "/v1/tenants/small", {"router_quota": 3})
    f.reserve(key)


def test_rate_limited_is_429_with_retry_after(fleet):
    f = fleet
    key = f.tenant("slow", rate=2)
    a = f.reserve(key)
    f.reserve(key)
    before = f.counts()
    status, headers, err = f.call("POST", "/v1/routers", key, {})
    expect((status, headers, err), 429, "rate_limited")
    assert 1 <= int(headers["retry-after"]) <= 3600
    assert f.counts() == before
    # Deleting does not give a reservation back: the limit counts what was made.
    expect(f.call("DELETE", f"/v1/routers/{a['id']}", key), 204)
    expect(f.call("POST", "/v1/routers", key, {}), 429, "rate_limited")
    f.admin("PATCH", "/v1/tenants/slow", {"reservations_per_hour": 3})
    f.reserve(key)


# ---- idempotency ----

def test_idempotent_reserve_replays_and_changes_nothing(fleet):
    f = fleet
    idem = {"Idempotency-Key": "order-17"}
    status, _, first = f.call("POST", "/v1/routers", f.acme, {"name": "a"}, headers=idem)
    assert status == 201
    before = f.counts()
    status, _, again = f.call("POST", "/v1/routers", f.acme, {"name": "a"}, headers=idem)
    assert status == 201 and again == first
    assert f.counts() == before
    expect(f.call("POST", "/v1/routers", f.acme, {"name": "b"}, headers=idem), 422,
           "idempotency_key_reused")
    assert f.counts() == before
    # Keys belong to the API key that sent them: another tenant's same key is its own.
    other = f.reserve(f.globex, {"name": "a"}, headers=idem)
    assert other["id"] != first["id"]
    err = expect(f.call("POST", "/v1/routers", f.acme, {},
                        headers={"Idempotency-Key": "x" * 201}), 400, "invalid_request")
    assert err["error"]["message"].startswith("Idempotency-Key:")


def test_idempotent_public_key_replays_and_changes_nothing(fleet):
    f = fleet
    r = f.reserve(f.acme)
    idem = {"Idempotency-Key": "key-1"}
    path = f"/v1/routers/{r['id']}/public-key"
    k1 = wg_key()
    first = expect(f.call("PUT", path, f.acme, {"public_key": k1}, headers=idem), 200)
    before = f.counts()
    assert expect(f.call("PUT", path, f.acme, {"public_key": k1}, headers=idem), 200) == first
    assert f.counts() == before
    expect(f.call("PUT", path, f.acme, {"public_key": wg_key()}, headers=idem), 422,
           "idempotency_key_reused")
    # The same key on another route is a different request too.
    expect(f.call("POST", "/v1/routers", f.acme, {}, headers=idem), 422,
           "idempotency_key_reused")
    assert f.counts() == before


# ---- tenant isolation ----

def test_another_tenants_router_is_404_on_every_route(fleet):
    f = fleet
    r = f.reserve(f.acme, {"name": "secret-shop"})
    key = wg_key()
    f.set_key(f.acme, r["id"], key)
    before = f.counts()
    stranger = str(uuid.uuid4())
    for rid in (r["id"], stranger):
        for method, path, body, headers in [
                ("GET", f"/v1/routers/{rid}", None, None),
                ("GET", f"/v1/routers/{rid}/config", None, None),
                ("GET", f"/v1/routers/{rid}/config?format=wg-quick", None, None),
                ("PUT", f"/v1/routers/{rid}/public-key", {"public_key": wg_key()}, None),
                ("PUT", f"/v1/routers/{rid}/public-key", {"public_key": wg_key()},
                 {"Idempotency-Key": "i1"}),
                ("DELETE", f"/v1/routers/{rid}", None, None)]:
            status, _, err = f.call(method, path, f.globex, body, headers=headers)
            assert status == 404, (method, path, status, err)
            assert err == {"error": {"code": "router_not_found", "message": "No such router."}}
    # Something that is not a router id at all is a 400 for everyone, the owner too.
    for key_text in (f.globex, f.acme):
        expect(f.call("GET", "/v1/routers/not-a-uuid", key_text), 400, "invalid_request")
    assert f.counts() == before
    assert expect(f.call("GET", f"/v1/routers/{r['id']}", f.acme), 200)["public_key"] == key
    # Nor does it show up in the other tenant's list, audit or leases.
    assert expect(f.call("GET", "/v1/routers", f.globex), 200)["items"] == []
    assert expect(f.call("GET", f"/v1/audit?router={r['id']}", f.globex), 200)["items"] == []
    assert expect(f.call("GET", f"/v1/leases?ip={r['vpn_ip']}", f.globex), 200)["items"] == []
    # The owner and an admin do see it.
    assert len(expect(f.call("GET", f"/v1/leases?ip={r['vpn_ip']}", f.acme), 200)["items"]) == 1
    assert expect(f.call("GET", f"/v1/routers/{r['id']}", f.admin_key), 200)["id"] == r["id"]


# ---- listing ----

def test_list_walks_every_page_with_keyset_pagination(fleet):
    f = fleet
    mine = [f.reserve(f.acme, {"name": f"r{i}"})["id"] for i in range(7)]
    f.reserve(f.globex)
    # Ties on created_at are broken by id, so pages still neither repeat nor skip.
    f.sql("UPDATE routers SET created_at = '2026-01-01 00:00:00+00' WHERE name IN "
          "('r2', 'r3', 'r4')")
    seen, pages, cursor = [], [], None
    for _ in range(10):
        path = "/v1/routers?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = expect(f.call("GET", path, f.acme), 200)
        pages.append(len(page["items"]))
        seen += [item["id"] for item in page["items"]]
        assert all("setup" not in i and "_server" not in i for i in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None and pages == [2, 2, 2, 1]
    assert len(seen) == len(set(seen)) == 7 and set(seen) == set(mine)
    # Exactly a full last page: one more (empty) page ends the walk.
    page = expect(f.call("GET", "/v1/routers?limit=7", f.acme), 200)
    assert len(page["items"]) == 7 and page["next_cursor"]
    last = expect(f.call("GET", f"/v1/routers?limit=7&cursor={page['next_cursor']}", f.acme),
                  200)
    assert last == {"items": [], "next_cursor": None}
    # The admin sees all tenants' routers.
    assert len(expect(f.call("GET", "/v1/routers", f.admin_key), 200)["items"]) == 8


def test_list_filters_by_status_and_server(fleet):
    f = fleet
    f.server("vpn2", "10.200.0.0/24")
    a = f.reserve(f.acme, {"server": "vpn1"})
    b = f.reserve(f.acme, {"server": "vpn2"})
    c = f.reserve(f.acme, {"server": "vpn2"})
    f.set_key(f.acme, b["id"], wg_key())
    d = f.reserve(f.acme)
    expect(f.call("DELETE", f"/v1/routers/{d['id']}", f.acme), 204)

    def ids(query):
        return {i["id"] for i in expect(f.call("GET", "/v1/routers" + query, f.acme),
                                        200)["items"]}
    assert ids("") == {a["id"], b["id"], c["id"]}
    assert ids("?status=pending") == {a["id"], c["id"]}
    assert ids("?status=configured") == {b["id"]}
    assert ids("?status=deleted") == set()
    assert ids("?server=vpn2") == {b["id"], c["id"]}
    assert ids("?server=vpn2&status=pending") == {c["id"]}
    assert ids("?server=nowhere") == set()


def test_list_rejects_bad_query_parameters_naming_them(fleet):
    for query, field in [
            ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=two", "limit"),
            ("limit=", "limit"), ("status=sleeping", "status"), ("cursor=bm9wZQ==", "cursor"),
            ("cursor=%%%", "cursor"), ("cursor=" + "A" * 201, "cursor"), ("sort=name", "sort"),
            ("limit=1&limit=2", "limit")]:
        err = expect(fleet.call("GET", f"/v1/routers?{query}", fleet.acme), 400,
                     "invalid_request")
        assert err["error"]["message"].startswith(f"{field}:"), (query, err)


# ---- audit and leases ----

def test_audit_lists_the_tenants_own_entries(fleet):
    f = fleet
    r = f.reserve(f.acme, headers={"X-Request-Id": "a-1"})
    f.set_key(f.acme, r["id"], wg_key())
    other = f.reserve(f.globex)
    items = expect(f.call("GET", "/v1/audit", f.acme), 200)["items"]
    assert [(i["action"], i["request_id"]) for i in items if i["router_id"]] == [
        ("router.reserved", "a-1"), ("router.key_set", items[-1]["request_id"])]
    assert {i["tenant"] for i in items} == {"acme"}
    assert all(i["router_id"] != other["id"] for i in items)
    # key.created for acme's key was the admin's doing, recorded against acme.
    assert [i["api_key_id"] for i in items if i["action"] == "key.created"] == [
        int(f.scalar("SELECT id FROM api_keys WHERE scope = 'admin'"))]
    assert expect(f.call("GET", "/v1/audit?limit=1", f.acme), 200)["items"] == items[:1]
    by_router = expect(f.call("GET", f"/v1/audit?router={r['id']}", f.acme), 200)["items"]
    assert [i["action"] for i in by_router] == ["router.reserved", "router.key_set"]
    assert all(i["vpn_ip"] == r["vpn_ip"] for i in by_router)
    since = by_router[1]["at"].replace("+", "%2B")
    later = expect(f.call("GET", f"/v1/audit?since={since}", f.acme), 200)["items"]
    assert [i["action"] for i in later] == ["router.key_set"]
    everyone = expect(f.call("GET", "/v1/audit", f.admin_key), 200)["items"]
    assert {"acme", "globex"} <= {i["tenant"] for i in everyone}
    assert other["id"] in {i["router_id"] for i in everyone}
    for query, field in [("since=yesterday-ish", "since"), ("router=42", "router"),
                         ("limit=-1", "limit"), ("who=me", "who")]:
        err = expect(f.call("GET", f"/v1/audit?{query}", f.acme), 400, "invalid_request")
        assert err["error"]["message"].startswith(f"{field}:"), err


def test_leases_answer_who_held_an_address_when(fleet_factory):
    f = fleet_factory("address_cooldown = 0s\n")
    f.server("tiny", "10.9.0.0/30")  # one address: 10.9.0.2
    acme, globex = f.tenant("acme"), f.tenant("globex")
    a = f.reserve(acme, {"name": "old"})
    f.set_key(acme, a["id"], wg_key())
    expect(f.call("DELETE", f"/v1/routers/{a['id']}", acme), 204)
    b = f.reserve(globex, {"name": "new"})
    assert a["vpn_ip"] == b["vpn_ip"] == "10.9.0.2"

    def leases(key, at=None):
        q = "/v1/leases?ip=10.9.0.2" + (f"&at={at.replace('+', '%2B')}" if at else "")
        return expect(f.call("GET", q, key), 200)["items"]
    everything = leases(f.admin_key)
    assert [(i["tenant"], i["router_id"], i["router_name"], i["server"]) for i in everything] == [
        ("acme", a["id"], "old", "tiny"), ("globex", b["id"], "new", "tiny")]
    assert everything[0]["from"] == a["created_at"] and everything[0]["until"] is not None
    assert everything[1]["until"] is None
    assert ts(everything[0]["until"]) <= ts(everything[1]["from"])
    during_a, during_b = a["created_at"], b["created_at"]
    assert [i["router_id"] for i in leases(f.admin_key, during_a)] == [a["id"]]
    assert [i["router_id"] for i in leases(f.admin_key, during_b)] == [b["id"]]
    assert [i["router_id"] for i in leases(f.admin_key, "2000-01-01T00:00:00Z")] == []
    # A tenant sees only its own leases.
    assert [i["router_id"] for i in leases(acme)] == [a["id"]]
    assert leases(acme, during_b) == [] and leases(globex, during_a) == []
    for query, field in [("", "ip"), ("ip=10.9.0.300", "ip"), ("ip=10.9.0.2&at=noon", "at"),
                         ("ip=10.9.0.2&when=now", "when")]:
        err = expect(f.call("GET", f"/v1/leases?{query}", acme), 400, "invalid_request")
        assert err["error"]["message"].startswith(f"{field}:"), err


# ---- bounded tenant writes ----

def test_key_changes_and_deletions_are_rate_limited_per_router_and_per_tenant(fleet):
    f = fleet
    made = f.admin("POST", "/v1/tenants", {"slug": "busy", "name": "Busy",
                                           "reservations_per_hour": 100,
                                           "key_changes_per_hour": 5,
                                           "router_key_changes_per_hour": 3}, 201)
    assert (made["key_changes_per_hour"], made["router_key_changes_per_hour"]) == (5, 3)
    key = f.admin("POST", "/v1/tenants/busy/keys", {}, 201)["key"]
    a, b, c = f.reserve(key), f.reserve(key), f.reserve(key)
    for _ in range(3):
        f.set_key(key, a["id"], wg_key())
    before = f.counts()
    status, headers, err = f.call("PUT", f"/v1/routers/{a['id']}/public-key", key,
                                  {"public_key": wg_key()})
    expect((status, headers, err), 429, "rate_limited")
    assert "one router" in err["error"]["message"]
    # 3 an hour: the next one drains in 20 minutes.
    assert 1100 <= int(headers["retry-after"]) <= 1200, headers
    assert f.counts() == before
    # The tenant's 5 an hour count key changes and deletions of all its routers.
    f.set_key(key, b["id"], wg_key())
    expect(f.call("DELETE", f"/v1/routers/{c['id']}", key), 204)
    before = f.counts()
    for method, path, body in [("PUT", f"/v1/routers/{b['id']}/public-key",
                                {"public_key": wg_key()}),
                               ("DELETE", f"/v1/routers/{b['id']}", None)]:
        status, headers, err = f.call(method, path, key, body)
        expect((status, headers, err), 429, "rate_limited")
        assert "for this tenant" in err["error"]["message"]
        assert 1 <= int(headers["retry-after"]) <= 720, headers
    assert f.counts() == before
    # A no-op is not counted, and other tenants are not affected.
    assert f.set_key(key, b["id"], f.scalar(
        f"SELECT encode(public_key, 'base64') FROM routers WHERE id = '{b['id']}'"))
    other = f.reserve(f.acme)
    f.set_key(f.acme, other["id"], wg_key())
    # The operator's key is not counted; a raised limit counts at once.
    f.set_key(f.admin_key, a["id"], wg_key())
    got = f.admin("PATCH", "/v1/tenants/busy", {"key_changes_per_hour": 100,
                                                "router_key_changes_per_hour": 100})
    assert (got["key_changes_per_hour"], got["router_key_changes_per_hour"]) == (100, 100)
    f.set_key(key, a["id"], wg_key())
    expect(f.call("DELETE", f"/v1/routers/{b['id']}", key), 204)
    # A tenant's defaults: 600 an hour, 10 a router.
    t = [i for i in f.admin("GET", "/v1/tenants")["items"] if i["slug"] == "acme"][0]
    assert (t["key_changes_per_hour"], t["router_key_changes_per_hour"]) == (600, 10)


def test_a_rotation_flood_is_bounded(fleet):
    # The report: one tenant made ~670 rotations a second on one router. Bounded in
    # count (40 requests) and time.
    f = fleet
    r = f.reserve(f.acme)
    statuses = [f.call("PUT", f"/v1/routers/{r['id']}/public-key", f.acme,
                       {"public_key": wg_key()})[0] for _ in range(40)]
    assert statuses == [200] * 10 + [429] * 30
    assert f.scalar(f"SELECT count(*) FROM changes WHERE router_id = '{r['id']}'") == "19"


def test_idempotency_rows_are_kept_only_for_work_done(fleet):
    f = fleet
    r = f.reserve(f.acme)
    k1 = wg_key()
    path = f"/v1/routers/{r['id']}/public-key"
    f.set_key(f.acme, r["id"], k1)
    before = f.counts()
    # The key the router already has: a success that did nothing, so nothing is kept.
    for i in range(5):
        got = expect(f.call("PUT", path, f.acme, {"public_key": k1},
                            headers={"Idempotency-Key": f"noop-{i}"}), 200)
        assert got["public_key"] == k1
    assert f.counts() == before
    # Refused requests keep nothing either.
    for i in range(3):
        expect(f.call("POST", "/v1/routers", f.acme, {"server": "nope"},
                      headers={"Idempotency-Key": f"refused-{i}"}), 404, "server_not_found")
    assert f.counts() == before
    expect(f.call("PUT", path, f.acme, {"public_key": wg_key()},
                  headers={"Idempotency-Key": "work"}), 200)
    assert f.scalar("SELECT count(*) FROM idempotency_keys") == "1"
