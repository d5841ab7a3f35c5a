# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The admin routes wgfleetctl needs (migration 0009): one tenant, one server, the key
list, admin keys through the API, and the router and audit filters; tenant keys keep
seeing only their own rows whatever the filters say."""
import subprocess
import urllib.parse

from apiutil import expect, fleet, fleet_factory, wg_key

assert fleet and fleet_factory  # fixtures, used by name


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


def test_one_tenant_and_one_server(fleet):
    f = fleet
    t = f.admin("GET", "/v1/tenants/acme")
    assert (t["slug"], t["name"], t["keys"], t["routers"]) == ("acme", "Acme", 1, 0)
    assert {k: v for k, v in t.items() if k != "keys"} == \
        [x for x in f.admin("GET", "/v1/tenants")["items"] if x["slug"] == "acme"][0]
    expect(f.call("GET", "/v1/tenants/nobody", f.admin_key), 404, "tenant_not_found")
    expect(f.call("GET", "/v1/tenants/Not_A_Slug", f.admin_key), 400, "invalid_request")

    f.reserve(f.acme)
    r = f.reserve(f.globex)
    f.set_key(f.globex, r["id"], wg_key())
    s = f.admin("GET", "/v1/servers/vpn1")
    assert s["routers"] == {"pending": 1, "configured": 1}
    listed = f.admin("GET", "/v1/servers")["items"][0]
    # The one server's view adds its routers by status and its unknown peers' count.
    assert s["unknown_peers"] == 0
    assert {k: v for k, v in s.items() if k not in ("routers", "unknown_peers")} == listed
    expect(f.call("GET", "/v1/servers/vpn9", f.admin_key), 404, "server_not_found")
    f.admin("DELETE", "/v1/servers/vpn1?force=true")
    expect(f.call("GET", "/v1/servers/vpn1", f.admin_key), 404, "server_not_found")


def test_keys_are_listed_without_secrets_and_admin_keys_are_made_through_the_api(fleet):
    f = fleet
    before = f.scalar("SELECT count(*) FROM audit_log")
    made = f.admin("POST", "/v1/keys", {"label": "oncall"}, 201)
    assert (made["scope"], made["tenant"], made["label"]) == ("admin", None, "oncall")
    assert int(f.scalar("SELECT count(*) FROM audit_log")) == int(before) + 1
    assert f.sql("SELECT action, detail->>'scope', detail->>'label' FROM audit_log "
                 "ORDER BY id DESC LIMIT 1") == [["key.created", "admin", "oncall"]]
    # the new key is an admin key
    expect(f.call("GET", "/v1/status", made["key"]), 200)
    expect(f.call("POST", "/v1/keys", made["key"], {"bogus": 1}), 400, "invalid_request")

    items = f.admin("GET", "/v1/keys")["items"]
    assert [(k["scope"], k["tenant"], k["label"]) for k in items] == [
        ("admin", None, "create-admin-key"), ("tenant", "acme", "test"),
        ("tenant", "globex", "test"), ("admin", None, "oncall")]
    assert set(items[0]) == {"id", "scope", "tenant", "prefix", "label", "created_at",
                             "revoked_at"}
    text = repr(items)
    for key in (f.admin_key, f.acme, f.globex, made["key"]):
        assert key[:20] in text and key[21:] not in text
    assert [k["tenant"] for k in f.admin("GET", "/v1/keys?tenant=acme")["items"]] == ["acme"]
    expect(f.call("GET", "/v1/keys?tenant=nobody", f.admin_key), 404, "tenant_not_found")
    expect(f.call("GET", "/v1/keys?tenant=UPPER", f.admin_key), 400, "invalid_request")
    f.admin("DELETE", f"/v1/keys/{made['id']}", status=204)
    assert f.admin("GET", "/v1/keys")["items"][-1]["revoked_at"] is not None
    expect(f.call("GET", "/v1/status", made["key"]), 401, "unauthorized")


def test_router_filters_and_tenant_isolation(fleet):
    f = fleet
    a = f.reserve(f.acme, {"name": "shop"})
    b = f.reserve(f.acme)
    g = f.reserve(f.globex, {"name": "shop"})
    f.sql(f"UPDATE routers SET last_handshake_at = '2026-01-01T00:00:00Z' WHERE id = '{a['id']}'")
    f.sql(f"UPDATE routers SET last_handshake_at = now() WHERE id = '{b['id']}'")

    def ids(key, **params):
        return [x["id"] for x in expect(f.call("GET", q("/v1/routers", **params), key), 200)["items"]]

    assert ids(f.admin_key) == [a["id"], b["id"], g["id"]]
    assert [x["tenant"] for x in f.admin("GET", "/v1/routers")["items"]] == \
        ["acme", "acme", "globex"]
    assert ids(f.admin_key, tenant="globex") == [g["id"]]
    assert ids(f.admin_key, address=b["vpn_ip"]) == [b["id"]]
    # names are per tenant: one name, a router of each
    assert ids(f.admin_key, name="shop") == [a["id"], g["id"]]
    assert ids(f.admin_key, name="shop", tenant="globex") == [g["id"]]
    assert ids(f.admin_key, name="sho") == []
    assert ids(f.admin_key, handshake_before="2026-06-01T00:00:00Z") == [a["id"], g["id"]]
    assert ids(f.admin_key, tenant="acme", handshake_before="2026-06-01T00:00:00Z") == [a["id"]]
    assert ids(f.admin_key, tenant="nobody") == []
    # paging keeps the filters
    page = f.admin("GET", "/v1/routers?tenant=acme&limit=1")
    assert [x["id"] for x in page["items"]] == [a["id"]] and page["next_cursor"]
    rest = f.admin("GET", q("/v1/routers", tenant="acme", limit=1, cursor=page["next_cursor"]))
    assert [x["id"] for x in rest["items"]] == [b["id"]]
    # a tenant key sees its own routers only, whatever it asks for
    assert ids(f.globex) == [g["id"]]
    assert ids(f.globex, tenant="acme") == []
    assert ids(f.globex, address=a["vpn_ip"]) == []
    assert ids(f.globex, name="shop") == [g["id"]]
    assert ids(f.acme, tenant="acme") == [a["id"], b["id"]]
    for bad in ({"address": "10.0.0.0/24"}, {"address": "x"}, {"tenant": "A"},
                {"handshake_before": "yesterday"}, {"handshake_before": "2026-13-01T00:00:00Z"},
                {"name": "x" * 101}, {"name": "a\tb"}):
        expect(f.call("GET", q("/v1/routers", **bad), f.admin_key), 400, "invalid_request")


def test_audit_filters_the_after_cursor_and_tenant_isolation(fleet):
    f = fleet
    a = f.reserve(f.acme)
    g = f.reserve(f.globex)
    f.set_key(f.acme, a["id"], wg_key())

    def entries(key, **params):
        return expect(f.call("GET", q("/v1/audit", **params), key), 200)["items"]

    everything = entries(f.admin_key)
    assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)
    assert [e["action"] for e in entries(f.admin_key, tenant="acme")] == [
        "tenant.created", "key.created", "router.reserved", "router.key_set"]
    assert [e["router_id"] for e in entries(f.admin_key, action="router.reserved")] == \
        [a["id"], g["id"]]
    assert {e["router_id"] for e in entries(f.admin_key, address=g["vpn_ip"])} == {g["id"]}
    middle = everything[len(everything) // 2]["id"]
    assert [e["id"] for e in entries(f.admin_key, after=middle)] == \
        [e["id"] for e in everything if e["id"] > middle]
    assert entries(f.admin_key, until="2020-01-01T00:00:00Z") == []
    assert len(entries(f.admin_key, since="2020-01-01T00:00:00Z",
                       until="2100-01-01T00:00:00Z")) == len(everything)
    expect(f.call("GET", "/v1/audit?tenant=nobody", f.admin_key), 404, "tenant_not_found")
    # a tenant key: its own entries only, and no word on other tenants' slugs
    own = entries(f.globex)
    assert own and {e["tenant"] for e in own} == {"globex"}
    assert entries(f.globex, tenant="acme") == []
    assert entries(f.globex, tenant="nobody") == []
    assert entries(f.globex, address=a["vpn_ip"]) == []
    assert entries(f.globex, action="router.key_set") == []
    for bad in ({"after": "0"}, {"after": "01"}, {"after": "x"}, {"until": "now"},
                {"address": "10.0.0.1/32"}, {"action": "a\tb"}, {"action": "x" * 65},
                {"tenant": "-x"}):
        expect(f.call("GET", q("/v1/audit", **bad), f.admin_key), 400, "invalid_request")


def test_audit_pages_from_the_newest_back(fleet):
    f = fleet
    for _ in range(3):
        f.reserve(f.acme)

    def entries(key, **params):
        return expect(f.call("GET", q("/v1/audit", **params), key), 200)["items"]

    everything = [e["id"] for e in entries(f.admin_key, limit=1000)]
    assert len(everything) >= 7
    pages, before = [], None
    for _ in range(len(everything)):  # bounded: a page holds at least one entry
        cursor = {"before": before} if before else {}
        page = entries(f.admin_key, order="newest", limit=3, **cursor)
        pages.append([e["id"] for e in page])
        if len(page) < 3:
            break
        before = page[-1]["id"]
    assert [i for p in pages for i in p] == everything[::-1]
    assert all(len(p) == 3 for p in pages[:-1]) and len(pages[-1]) < 3
    assert [e["id"] for e in entries(f.admin_key, order="oldest", before=everything[2])] == \
        everything[:2]
    own = entries(f.globex, order="newest")
    assert own and {e["tenant"] for e in own} == {"globex"}
    for bad in ({"order": "desc"}, {"before": "0"}, {"before": "x"},
                {"order": "newest", "follow": ""}, {"before": "5", "follow": ""}):
        expect(f.call("GET", q("/v1/audit", **bad), f.admin_key), 400, "invalid_request")


def test_status_pages_servers_by_name_and_keeps_the_whole_answer_without_limit(fleet):
    f = fleet
    for name in ("vpn3", "vpn2", "vpn4"):
        f.server(name, pool=f"10.10{name[-1]}.0.0/24")
    f.reserve(f.acme, {"server": "vpn3"})
    whole = f.admin("GET", "/v1/status")
    assert set(whole) == {"servers", "routers"}
    assert [s["name"] for s in whole["servers"]] == ["vpn1", "vpn2", "vpn3", "vpn4"]
    first = f.admin("GET", "/v1/status?limit=3")
    assert first["servers"] == whole["servers"][:3] and first["routers"] == whole["routers"]
    assert (first["servers_total"], first["next_cursor"]) == (4, "vpn3")
    last = f.admin("GET", "/v1/status?limit=3&cursor=vpn3")
    assert last["servers"] == whole["servers"][3:] and last["next_cursor"] is None
    exact = f.admin("GET", "/v1/status?limit=2&cursor=vpn2")
    assert [s["name"] for s in exact["servers"]] == ["vpn3", "vpn4"]
    assert exact["next_cursor"] is None  # a full last page says there is no next
    for bad in ("limit=0", "limit=1001", "limit=x", "cursor=vpn2", "limit=2&cursor=Bad_Name"):
        expect(f.call("GET", "/v1/status?" + bad, f.admin_key), 400, "invalid_request")
    expect(f.call("GET", "/v1/status?limit=2", f.acme), 403)


class OpenTransaction:
    """A psql session holding a transaction that wrote an audit entry, until commit()."""

    def __init__(self, f, action):
        self.proc = subprocess.Popen(
            ["psql", f.pg.with_db(f.dbname), "-X", "-Atq", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write("BEGIN;\nINSERT INTO audit_log (actor, action) VALUES "
                              f"('cli', '{action}') RETURNING id;\n")
        self.proc.stdin.flush()
        self.id = int(self.proc.stdout.readline())

    def commit(self):
        self.proc.communicate("COMMIT;\n", timeout=10)
        assert self.proc.returncode == 0


def test_follow_misses_no_entry_that_commits_after_a_larger_id(fleet):
    f = fleet

    def page(cursor, **params):
        return expect(f.call("GET", q("/v1/audit", follow=cursor, **params), f.admin_key), 200)

    start = page("", action="test.first")
    assert start["items"] == [] and start["follow_cursor"]
    old = OpenTransaction(f, "test.first")
    try:
        # A later transaction takes a larger id and commits first.
        f.sql("INSERT INTO audit_log (actor, action) VALUES ('cli', 'test.second')")
        newer = expect(f.call("GET", q("/v1/audit", action="test.second"), f.admin_key), 200)
        assert len(newer["items"]) == 1 and newer["items"][0]["id"] > old.id
        # Following, it waits behind the open one, which could still commit.
        held = page(start["follow_cursor"])
        assert [e["action"] for e in held["items"]
                if e["action"].startswith("test.")] == []
    finally:
        old.commit()
    got = page(held["follow_cursor"])
    assert [e["action"] for e in got["items"] if e["action"].startswith("test.")] == \
        ["test.first", "test.second"]
    # The cursor moved past them: asked again, nothing comes twice.
    assert page(got["follow_cursor"])["items"] == []
    # Full pages hand out the cursor of their last entry.
    f.sql("INSERT INTO audit_log (actor, action) SELECT 'cli', 'test.many' "
          "FROM generate_series(1, 5)")
    seen, cursor = [], got["follow_cursor"]
    for _ in range(5):
        p = page(cursor, limit="2")
        seen += [e["id"] for e in p["items"]]
        cursor = p["follow_cursor"]
        if len(p["items"]) < 2:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    for bad in ({"follow": "1"}, {"follow": "x.1"}, {"follow": "1.-1"}, {"follow": ".1"},
                {"follow": "1.1", "after": "3"}):
        expect(f.call("GET", q("/v1/audit", **bad), f.admin_key), 400, "invalid_request")
