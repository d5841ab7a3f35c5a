# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""wgfleetctl, the operators' command line, run as a program against a real
coordinator: every command in table and --json form, exit codes, where it finds the
URL and key, and that the key never shows in argv, output or errors."""
import base64
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from apiutil import SERVER_WG_KEY, fleet, fleet_factory, poll, wg_key
from conftest import binary

assert fleet and fleet_factory  # fixtures, used by name


def ctl_env(f, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGFLEET_")}
    env.update({"WGFLEET_URL": f"http://127.0.0.1:{f.coord.port}", "WGFLEET_KEY": f.admin_key,
                "HOME": f.workdir, "NO_COLOR": "1"})
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def ctl(f, *args, env=None, timeout=30):
    return subprocess.run([binary("wgfleetctl"), *args], capture_output=True, text=True,
                          env=env or ctl_env(f), timeout=timeout)


def ok(proc):
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def ok_json(f, *args):
    return json.loads(ok(ctl(f, *args, "--json")))


def table(text):
    """Rows of an aligned table as lists of cells (split on two or more spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def api(f, path):
    return f.admin("GET", path)


def schema_fields(name):
    """The members docs/openapi.yaml gives a schema (its allOf parts and $refs followed)."""
    import yaml
    from conftest import TOP
    with open(os.path.join(TOP, "docs", "openapi.yaml")) as fh:
        schemas = yaml.safe_load(fh)["components"]["schemas"]

    def fields(schema):
        if "$ref" in schema:
            return fields(schemas[schema["$ref"].rsplit("/", 1)[1]])
        got = set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            got |= fields(part)
        return got

    return fields(schemas[name])


# ---- reading: every read command, as a table and as JSON ----

def test_read_commands_show_what_the_api_holds(fleet):
    f = fleet
    r = f.reserve(f.acme, {"name": "branch-1"})
    f.set_key(f.acme, r["id"], wg_key())
    g = f.reserve(f.globex)
    ip = r["vpn_ip"]

    # status: table and JSON, exit 0 while every server is online and current enough
    # (no agent runs here: the key's change is not applied)
    rows = table(ok(ctl(f, "status", "--max-lag", "1")))
    assert rows[0][:3] == ["SERVER", "STATE", "LAST SEEN"]
    assert rows[1][:2] == ["vpn1", "online"] and rows[1][2] in ("now", "1s ago", "2s ago")
    assert rows[-1] == ["routers: pending 1, configured 1"] or \
        rows[-1] == ["routers: configured 1, pending 1"]
    assert ok_json(f, "status", "--max-lag", "1")["servers"] == api(f, "/v1/status")["servers"]

    # servers and tenants
    assert [row[0] for row in table(ok(ctl(f, "servers", "list")))] == ["NAME", "vpn1"]
    assert ok_json(f, "servers", "list") == api(f, "/v1/servers")
    shown = ok_json(f, "servers", "show", "vpn1")
    assert shown["routers"] == {"configured": 1, "pending": 1} and shown["pool"] == "10.100.0.0/24"
    assert "pool:" in ok(ctl(f, "servers", "show", "vpn1"))
    rows = table(ok(ctl(f, "tenants", "list")))
    assert [row[:3] for row in rows[1:]] == [["acme", "Acme", "1"], ["globex", "Globex", "1"]]
    assert ok_json(f, "tenants", "list") == api(f, "/v1/tenants")
    assert ok_json(f, "tenants", "show", "acme")["keys"] == 1
    assert re.search(r"^slug: +acme$", ok(ctl(f, "tenants", "show", "acme")), re.M)

    # keys: listed with their public prefix, never a secret
    out = ok(ctl(f, "keys", "list"))
    keys = ok_json(f, "keys", "list")["items"]
    assert [(k["scope"], k["tenant"]) for k in keys] == [("admin", None), ("tenant", "acme"),
                                                         ("tenant", "globex")]
    for secret in (f.admin_key, f.acme, f.globex):
        assert secret[:20] in out and secret[21:] not in out
    assert [k["tenant"] for k in ok_json(f, "keys", "list", "--tenant", "globex")["items"]] == \
        ["globex"]

    # routers across tenants, with filters
    rows = table(ok(ctl(f, "routers", "list")))
    assert rows[0] == ["ID", "TENANT", "NAME", "SERVER", "ADDRESS", "STATUS", "HANDSHAKE",
                       "CREATED"]
    assert {(row[0], row[1], row[5]) for row in rows[1:]} == {
        (r["id"], "acme", "configured"), (g["id"], "globex", "pending")}

    def ids(*args):
        return [x["id"] for x in ok_json(f, "routers", "list", *args)["items"]]

    assert ids("--tenant", "acme") == [r["id"]]
    assert ids("--tenant", "globex", "--status", "configured") == []
    assert ids("--address", ip) == [r["id"]]
    assert ids("--server", "vpn1", "--status", "pending") == [g["id"]]
    assert sorted(ids("--handshake-older-than", "5m")) == sorted([r["id"], g["id"]])
    f.sql(f"UPDATE routers SET last_handshake_at = now() - interval '10 minutes' "
          f"WHERE id = '{g['id']}'")
    f.sql(f"UPDATE routers SET last_handshake_at = now() WHERE id = '{r['id']}'")
    assert ids("--handshake-older-than", "5m") == [g["id"]]
    assert ids("--limit", "1") == [r["id"]]  # oldest first
    routers = ok_json(f, "routers", "list")["items"]
    assert {x["id"]: x["tenant"] for x in routers} == {r["id"]: "acme", g["id"]: "globex"}
    assert ok_json(f, "routers", "show", r["id"])["name"] == "branch-1"
    assert re.search(r"^name: +branch-1$", ok(ctl(f, "routers", "show", r["id"])), re.M)

    # setup text, leases, audit
    for fmt in ("routeros", "wg-quick"):
        text = f.call("GET", f"/v1/routers/{r['id']}/config?format={fmt}", f.admin_key)[2]
        assert ok(ctl(f, "config", r["id"], "--format", fmt)) == text
        assert ok_json(f, "config", r["id"], "--format", fmt)["text"] == text
    assert ok(ctl(f, "config", r["id"])) == \
        f.call("GET", f"/v1/routers/{r['id']}/config", f.admin_key)[2]
    rows = table(ok(ctl(f, "leases", ip)))
    assert rows[1][:2] == ["acme", r["id"]] and rows[1][-1] == "-"
    assert ok_json(f, "leases", ip, "--at", r["created_at"]) == api(f, f"/v1/leases?ip={ip}")
    assert ok_json(f, "leases", ip, "--at", "2020-01-01T00:00:00Z")["items"] == []

    actions = [e["action"] for e in ok_json(f, "audit", "--tenant", "acme")["items"]]
    assert actions == ["tenant.created", "key.created", "router.reserved", "router.key_set"]
    assert [e["router_id"] for e in
            ok_json(f, "audit", "--action", "router.reserved")["items"]] == [r["id"], g["id"]]
    assert [e["tenant"] for e in ok_json(f, "audit", "--address", ip)["items"]] == ["acme"] * 2
    assert len(ok_json(f, "audit", "--router", g["id"])["items"]) == 1
    assert ok_json(f, "audit", "--until", "2020-01-01T00:00:00Z")["items"] == []
    assert len(ok_json(f, "audit", "--since", "1h", "--limit", "3")["items"]) == 3
    rows = table(ok(ctl(f, "audit", "--action", "router.reserved")))
    assert [row[4] for row in rows] == ["ACTION", "router.reserved", "router.reserved"]


# ---- writing ----

def test_write_commands_change_the_fleet(fleet):
    f = fleet
    # servers add, set, show; remove refused with live routers, then forced
    made = ok_json(f, "servers", "add", "vpn2", "--endpoint", "vpn2.example.net:51820",
                   "--pool", "10.60.0.0/24", "--gateway", "10.60.0.1", "--public-key",
                   SERVER_WG_KEY, "--listen-port", "51821")
    assert (made["name"], made["pool"], made["listen_port"]) == ("vpn2", "10.60.0.0/24", 51821)
    out = ok(ctl(f, "servers", "set", "vpn2", "--endpoint", "other.example.net:51820"))
    assert re.search(r"^endpoint: +other.example.net:51820$", out, re.M)
    assert api(f, "/v1/servers/vpn2")["endpoint"] == "other.example.net:51820"
    got = ok_json(f, "servers", "set", "vpn2", "--listen-port", "51822")
    assert set(got) == schema_fields("Server")
    assert (got["name"], got["endpoint"], got["listen_port"]) == \
        ("vpn2", "other.example.net:51820", 51822)
    assert api(f, "/v1/servers/vpn2")["listen_port"] == 51822
    out = ok(ctl(f, "servers", "add", "vpn3", "--endpoint", "vpn3.example.net:51820", "--pool",
                 "10.62.0.0/24", "--gateway", "10.62.0.1"))
    assert re.search(r"^pool: +10.62.0.0/24$", out, re.M), out
    assert api(f, "/v1/servers/vpn3")["endpoint"] == "vpn3.example.net:51820"
    r = f.reserve(f.acme, {"server": "vpn2"})
    refused = ctl(f, "servers", "remove", "vpn2")
    assert refused.returncode == 1 and "server_has_routers" in refused.stderr
    assert "1 live router" in refused.stderr
    assert f.scalar("SELECT count(*) FROM servers WHERE name = 'vpn2' AND deleted_at IS NULL") == "1"
    out = ok(ctl(f, "servers", "remove", "vpn2", "--force"))
    assert out.splitlines()[0] == "removed server vpn2; released 1 router"
    assert r["id"] in out and r["vpn_ip"] in out
    assert f.call("GET", "/v1/servers/vpn2", f.admin_key)[0] == 404

    # tenants add, set
    t = ok_json(f, "tenants", "add", "initech", "--name", "Initech", "--router-quota", "7")
    assert (t["slug"], t["router_quota"]) == ("initech", 7)
    out = ok(ctl(f, "tenants", "set", "initech", "--reservations-per-hour", "9"))
    assert re.search(r"^reservations_per_hour: +9$", out, re.M)
    assert api(f, "/v1/tenants/initech")["reservations_per_hour"] == 9
    got = ok_json(f, "tenants", "set", "initech", "--router-quota", "8",
                  "--key-changes-per-hour", "5")
    assert set(got) == schema_fields("Tenant")
    assert (got["slug"], got["router_quota"], got["key_changes_per_hour"],
            got["reservations_per_hour"]) == ("initech", 8, 5, 9)
    shown = api(f, "/v1/tenants/initech")
    assert (shown["router_quota"], shown["key_changes_per_hour"]) == (8, 5)
    assert ctl(f, "tenants", "add", "initech", "--name", "Again").returncode == 1
    out = ok(ctl(f, "tenants", "add", "hooli", "--name", "Hooli", "--router-quota", "3"))
    assert re.search(r"^slug: +hooli$", out, re.M) and re.search(r"^router_quota: +3$", out, re.M)
    assert api(f, "/v1/tenants/hooli")["name"] == "Hooli"

    # keys create (printed once, alone on stdout), use, revoke
    p = ctl(f, "keys", "create", "--tenant", "initech", "--label", "portal")
    key = ok(p).strip()
    assert re.fullmatch(r"wgf_[a-z0-9]{16}_[A-Za-z0-9_-]{43}", key), key
    assert key not in p.stderr and "shown only this once" in p.stderr
    assert expect_status(f, "GET", "/v1/routers", key) == 200
    admin = ok_json(f, "keys", "create", "--admin", "--label", "ops")
    assert admin["scope"] == "admin" and admin["tenant"] is None
    env = ctl_env(f, WGFLEET_KEY=admin["key"])
    assert ctl(f, "tenants", "list", env=env).returncode == 0
    listed = {k["id"]: k for k in ok_json(f, "keys", "list")["items"]}
    assert listed[admin["id"]]["label"] == "ops" and listed[admin["id"]]["revoked_at"] is None
    assert admin["key"] not in ok(ctl(f, "keys", "list"))
    assert ok(ctl(f, "keys", "revoke", str(admin["id"]))).strip() == f"revoked key {admin['id']}"
    assert ctl(f, "tenants", "list", env=env).returncode == 1
    assert ok_json(f, "keys", "list")["items"][-1]["revoked_at"] is not None
    portal = [k for k in ok_json(f, "keys", "list", "--tenant", "initech")["items"]
              if k["label"] == "portal"]
    assert len(portal) == 1 and portal[0]["revoked_at"] is None
    assert ok_json(f, "keys", "revoke", str(portal[0]["id"])) == \
        {"id": str(portal[0]["id"]), "revoked": True}
    assert expect_status(f, "GET", "/v1/routers", key) == 401
    assert {k["id"]: k for k in api(f, "/v1/keys")["items"]}[portal[0]["id"]]["revoked_at"]

    # routers delete
    g = f.reserve(f.globex)
    assert ok(ctl(f, "routers", "delete", g["id"])).strip() == f"deleted router {g['id']}"
    assert f.call("GET", f"/v1/routers/{g['id']}", f.admin_key)[0] == 404
    again = ctl(f, "routers", "delete", g["id"])
    assert again.returncode == 1 and "router_not_found" in again.stderr
    h = f.reserve(f.acme)
    assert ok_json(f, "routers", "delete", h["id"]) == {"id": h["id"], "deleted": True}
    assert f.call("GET", f"/v1/routers/{h['id']}", f.admin_key)[0] == 404
    assert h["id"] not in {x["id"] for x in api(f, "/v1/routers")["items"]}
    assert ok_json(f, "servers", "remove", "vpn1") == {"name": "vpn1", "released_routers": 0}


def test_unknown_peers_listed_and_released(fleet):
    """servers unknown and servers release, as tables and as JSON. No agent runs here: the
    list an agent in adopt mode reports is written where its report would put it
    (test_adopt.py has the real agent do it)."""
    f = fleet
    keys = sorted((wg_key(), wg_key()), key=base64.b64decode)  # the API's order: by key
    for i, k in enumerate(keys):
        f.sql("INSERT INTO unknown_peers (server_id, public_key, allowed_ips, endpoint) "
              f"SELECT id, decode('{base64.b64decode(k).hex()}', 'hex'), "
              f"ARRAY['10.100.0.{70 + i}/32']::cidr[], '192.0.2.{7 + i}:4500' "
              "FROM servers WHERE name = 'vpn1'")
    f.sql("UPDATE servers SET unknown_total = 2 WHERE name = 'vpn1'")
    rows = table(ok(ctl(f, "servers", "unknown", "vpn1")))
    assert rows == [["PUBLIC KEY", "ALLOWED IPS", "HANDSHAKE", "ENDPOINT"],
                    [keys[0], "10.100.0.70/32", "-", "192.0.2.7:4500"],
                    [keys[1], "10.100.0.71/32", "-", "192.0.2.8:4500"],
                    ["2 of 2 unknown peers"]]
    listed = ok_json(f, "servers", "unknown", "vpn1", "--limit", "1")
    assert listed == api(f, "/v1/servers/vpn1/unknown-peers?limit=1")
    assert (listed["total"], [p["public_key"] for p in listed["items"]]) == (2, keys[:1])

    out = ok(ctl(f, "servers", "release", "vpn1", keys[0]))
    assert out.strip() == f"released peer {keys[0]} on vpn1"
    assert ok_json(f, "servers", "release", "vpn1", keys[1]) == \
        {"server": "vpn1", "public_key": keys[1], "released": True}
    assert api(f, "/v1/servers/vpn1/unknown-peers")["items"] == []
    assert [e["detail"]["public_key"] for e in
            api(f, "/v1/audit?action=peer.released")["items"]] == keys
    gone = ctl(f, "servers", "release", "vpn1", keys[0], "--json")
    assert gone.returncode == 1 and "peer_not_found" in gone.stderr and gone.stdout == ""


def test_webhooks_commands(fleet_factory):
    # deliver = false: the webhook's events wait in the outbox, and nothing is sent.
    f = fleet_factory("[webhooks]\ndeliver = false\n")
    f.server()
    acme = f.tenant("acme")
    p = ctl(f, "webhooks", "add", "https://hooks.example.com/ops", "--event",
            "router.reserved,router.deleted", "--description", "ops")
    secret = ok(p).strip()
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", secret), secret
    assert secret not in p.stderr and "shown only this once" in p.stderr
    hooks = ok_json(f, "webhooks", "list")["items"]
    assert [(h["url"], h["tenant"], h["events"]) for h in hooks] == [
        ("https://hooks.example.com/ops", None, ["router.reserved", "router.deleted"])]
    out = ok(ctl(f, "webhooks", "list"))
    assert secret not in out and "https://hooks.example.com/ops" in out
    hook_id = str(hooks[0]["id"])
    f.reserve(acme)
    rows = table(ok(ctl(f, "webhooks", "deliveries", hook_id)))
    assert rows[0][:4] == ["EVENT", "TYPE", "STATUS", "ATTEMPTS"]
    assert [r[1:4] for r in rows[1:]] == [["router.reserved", "pending", "0"]]
    assert ok_json(f, "webhooks", "deliveries", hook_id, "--status", "dead")["items"] == []
    bad = ctl(f, "webhooks", "add", "http://127.0.0.1/x")
    assert bad.returncode == 1 and "may not call" in bad.stderr
    assert ctl(f, "webhooks", "deliveries", hook_id, "--limit", "0").returncode == 2
    assert ok(ctl(f, "webhooks", "remove", hook_id)).strip() == f"removed webhook {hook_id}"
    assert ok_json(f, "webhooks", "list")["items"] == []
    # --json: the API's answer, the secret with it; removing says so as JSON
    made = ok_json(f, "webhooks", "add", "https://hooks.example.com/json", "--event",
                   "router.deleted")
    assert set(made) == schema_fields("WebhookWithSecret")
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", made["secret"]) and made["secret"] != secret
    assert [(h["id"], h["url"], h["events"]) for h in api(f, "/v1/webhooks")["items"]] == [
        (made["id"], "https://hooks.example.com/json", ["router.deleted"])]
    assert ok_json(f, "webhooks", "remove", str(made["id"])) == \
        {"id": str(made["id"]), "removed": True}
    assert api(f, "/v1/webhooks")["items"] == []
    gone = ctl(f, "webhooks", "remove", hook_id)
    assert gone.returncode == 1 and "webhook_not_found" in gone.stderr


def expect_status(f, method, path, key):
    return f.call(method, path, key)[0]


def test_status_exits_4_for_an_offline_or_lagging_server(fleet):
    f = fleet
    f.server("vpn2", pool="10.61.0.0/24")
    assert ctl(f, "status").returncode == 0
    f.sql("UPDATE servers SET last_seen_at = now() - interval '1 hour' WHERE name = 'vpn2'")
    p = ctl(f, "status")
    assert p.returncode == 4, p
    rows = {row[0]: row for row in table(p.stdout)}
    assert rows["vpn2"][1] == "offline" and rows["vpn2"][2] == "1h ago"
    assert rows["vpn1"][1] == "online"
    assert "1 server offline or lagging" in p.stdout
    assert ctl(f, "status", "--json").returncode == 4
    f.mark_online("vpn2")
    f.sql("UPDATE servers SET revision = applied_revision + 3 WHERE name = 'vpn1'")
    p = ctl(f, "status")
    assert p.returncode == 4 and {row[0]: row for row in table(p.stdout)}["vpn1"][1] == "lagging"
    assert ctl(f, "status", "--max-lag", "3").returncode == 0
    assert ctl(f, "status", "--max-lag", "2").returncode == 4


# ---- exit codes ----

def test_bad_command_lines_exit_2_and_change_nothing(fleet):
    f = fleet
    before = f.counts()
    for args in (["bogus"], ["servers"], ["servers", "bogus"], ["servers", "list", "--bogus"],
                 ["servers", "show"], ["servers", "show", "a", "b"], ["audit", "--since"],
                 ["audit", "--since", "yesterday"], ["audit", "--follow", "--until", "1h"],
                 ["audit", "--interval", "0.01", "--follow"], ["status", "--max-lag", "x"],
                 ["status", "--timeout", "0"], ["config", "x", "--format", "ini"],
                 ["servers", "add", "vpn9"], ["tenants", "set", "acme"],
                 ["tenants", "set", "acme", "--router-quota", "lots"], ["keys", "create"],
                 ["keys", "create", "--admin", "--tenant", "acme"],
                 ["routers", "list", "--limit", "0"], ["routers", "list", "--key", "x"], []):
        p = ctl(f, *args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stderr.strip() and f.admin_key not in p.stderr, args
    assert f.counts() == before
    # --help is not an error, for wgfleetctl and every command
    p = ctl(f, "--help")
    assert p.returncode == 0 and "Exit codes:\n  0  done\n  1  the API refused" in p.stdout
    for cmd in ("status", "servers add", "servers remove", "tenants add", "keys create",
                "routers list", "audit", "leases", "config"):
        p = ctl(f, *cmd.split(), "--help")
        assert p.returncode == 0 and p.stdout.startswith(f"Usage: wgfleetctl {cmd} "), cmd
        assert "Exit codes" in p.stdout


def test_refusals_exit_1_and_an_unreachable_coordinator_3(fleet):
    f = fleet
    wrong = "wgf_" + "a" * 16 + "_" + "B" * 43
    p = ctl(f, "servers", "list", env=ctl_env(f, WGFLEET_KEY=wrong))
    assert p.returncode == 1 and "401 unauthorized" in p.stderr and wrong not in p.stderr
    p = ctl(f, "servers", "list", env=ctl_env(f, WGFLEET_KEY=f.acme))
    assert p.returncode == 1 and "403 forbidden" in p.stderr
    p = ctl(f, "tenants", "show", "nobody")
    assert p.returncode == 1 and "404 tenant_not_found" in p.stderr
    p = ctl(f, "routers", "list", "--address", "not-an-ip")
    assert p.returncode == 1 and "400 invalid_request" in p.stderr

    # nothing listens: refused at once
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    started = time.monotonic()
    p = ctl(f, "status", env=ctl_env(f, WGFLEET_URL=f"http://127.0.0.1:{closed}"))
    assert p.returncode == 3 and "cannot reach the coordinator" in p.stderr
    assert time.monotonic() - started < 2
    # a listener that never answers: given up on at the timeout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        started = time.monotonic()
        p = ctl(f, "status", "--timeout", "1", env=ctl_env(f, WGFLEET_URL=f"http://127.0.0.1:{port}"))
        took = time.monotonic() - started
    assert p.returncode == 3 and "imeout" in p.stderr, p.stderr
    assert 0.9 <= took < 2.5, took
    assert f.admin_key not in p.stderr


# ---- audit --follow ----

def test_audit_follow_prints_entries_made_after_it_started(fleet):
    f = fleet
    for fmt in ([], ["--json"]):
        proc = subprocess.Popen([binary("wgfleetctl"), "audit", "--follow", "--interval", "0.2",
                                 "--action", "tenant.created", *fmt], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ctl_env(f))
        try:
            if not fmt:
                assert proc.stdout.readline().split()[:3] == ["ID", "AT", "TENANT"]
            slug = "late" + ("json" if fmt else "table")
            time.sleep(0.5)
            f.admin("POST", "/v1/tenants", {"slug": slug, "name": "Late"}, 201)
            f.admin("POST", f"/v1/tenants/{slug}/keys", {}, 201)  # another action: filtered
            line = read_line(proc, 10)
            if fmt:
                entry = json.loads(line)
                assert (entry["tenant"], entry["action"]) == (slug, "tenant.created")
            else:
                assert line.split()[2:5] == [slug, "api", "tenant.created"], line
            # earlier entries (acme's and globex's tenant.created) are not repeated
            assert "acme" not in line and "globex" not in line
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=5) == 0
            rest = proc.stdout.read()
            assert "key.created" not in rest and slug not in rest
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_audit_follow_misses_no_entry_that_commits_after_a_larger_id(fleet):
    from test_api_ctl import OpenTransaction
    f = fleet
    proc = subprocess.Popen([binary("wgfleetctl"), "audit", "--follow", "--json", "--interval",
                             "0.2", "--action", "test.late"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0, env=ctl_env(f))
    try:
        time.sleep(0.5)
        old = OpenTransaction(f, "test.late")
        try:
            f.sql("INSERT INTO audit_log (actor, action, detail) "
                  "VALUES ('cli', 'test.late', '{\"n\": 2}')")
            time.sleep(0.6)  # three polls while the older entry is not yet committed
        finally:
            old.commit()
        got = [json.loads(read_line(proc, 10)) for _ in range(2)]
        assert [e["id"] for e in got] == [old.id, old.id + 1], got
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def read_line(proc, timeout):
    """The next line of proc's stdout, waiting at most timeout seconds."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        assert sel.select(timeout), f"no line within {timeout}s"
        return proc.stdout.readline()
    finally:
        sel.close()


# ---- where the URL and key come from ----

def write_private(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def test_url_and_key_from_flags_environment_and_a_private_config_file(fleet):
    f = fleet
    url = f"http://127.0.0.1:{f.coord.port}"
    bare = ctl_env(f, WGFLEET_URL=None, WGFLEET_KEY=None)
    p = ctl(f, "status", env=bare)
    assert p.returncode == 2 and "no coordinator URL" in p.stderr

    # the config file in ~/.config/wgfleet/: refused while group or others may read it
    conf = os.path.join(f.workdir, ".config", "wgfleet", "ctl.conf")
    write_private(conf, f"[coordinator]\nurl = {url}\nkey = {f.admin_key}\ntimeout = 3s\n",
                  0o644)
    p = ctl(f, "tenants", "list", env=bare)
    assert p.returncode == 2 and "readable by other" in p.stderr, p.stderr
    assert f.admin_key not in p.stderr and f.admin_key[21:] not in p.stderr
    os.chmod(conf, 0o600)
    assert ctl(f, "tenants", "list", env=bare).returncode == 0
    # the environment comes before the file, and flags before the environment
    wrong = "wgf_" + "c" * 16 + "_" + "D" * 43
    assert ctl(f, "tenants", "list", env=ctl_env(f, WGFLEET_URL=None,
                                                 WGFLEET_KEY=wrong)).returncode == 1
    dead = ctl_env(f, WGFLEET_URL="http://127.0.0.1:1", WGFLEET_KEY=None)
    assert ctl(f, "tenants", "list", env=dead).returncode == 3
    assert ctl(f, "tenants", "list", "--url", url, env=dead).returncode == 0

    # key files: WGFLEET_KEY_FILE and --key-file, refused when others may read them
    key_file = os.path.join(f.workdir, "admin.key")
    write_private(key_file, f.admin_key + "\n", 0o640)
    other = ctl_env(f, WGFLEET_KEY=None, HOME="/nonexistent", WGFLEET_KEY_FILE=key_file)
    p = ctl(f, "tenants", "list", env=other)
    assert p.returncode == 2 and f.admin_key not in p.stderr
    assert ctl(f, "tenants", "list", "--key-file", key_file, env=other).returncode == 2
    os.chmod(key_file, 0o600)
    assert ctl(f, "tenants", "list", env=other).returncode == 0
    assert ctl(f, "tenants", "list", "--key-file", key_file,
               env=ctl_env(f, WGFLEET_KEY=wrong)).returncode == 0
    # a named config file
    named = os.path.join(f.workdir, "named.conf")
    write_private(named, f"[coordinator]\nurl = {url}\nkey_file = {key_file}\n")
    assert ctl(f, "tenants", "list", "--config", named,
               env=ctl_env(f, WGFLEET_URL=None, WGFLEET_KEY=None)).returncode == 0
    write_private(named, "[coordinator]\nbogus = 1\n")
    p = ctl(f, "tenants", "list", "--config", named, env=bare)
    assert p.returncode == 2 and "bogus" in p.stderr


@pytest.fixture
def system_conf():
    """The system-wide config file the binary reads last (its --help names it, after the
    build's confdir), free for the test: one that is there is moved aside and put back
    afterwards, and directories made for it are removed again."""
    if os.geteuid() != 0:
        pytest.skip("writing the system-wide config file needs root")
    usage = subprocess.run([binary("wgfleetctl"), "--help"], capture_output=True, text=True,
                           timeout=10).stdout
    path = re.search(r"then (/\S+/ctl\.conf)\)", usage).group(1)
    made = []  # directories this fixture creates, outermost first
    d = os.path.dirname(path)
    while not os.path.isdir(d):
        made.insert(0, d)
        d = os.path.dirname(d)
    backup = path + ".wgfleet-test-backup"
    assert not os.path.lexists(backup), f"{backup} is left from an earlier run: put it back"
    if os.path.lexists(path):
        os.rename(path, backup)
    try:
        for d in made:
            os.mkdir(d, 0o755)
        yield path
    finally:
        if os.path.lexists(path):
            os.unlink(path)
        if os.path.lexists(backup):
            os.rename(backup, path)
        for d in reversed(made):
            os.rmdir(d)


def test_the_system_config_file_comes_after_the_users(fleet, system_conf, tmp_path):
    f = fleet
    url = f"http://127.0.0.1:{f.coord.port}"
    home = tmp_path / "home"
    home.mkdir()
    env = ctl_env(f, WGFLEET_URL=None, WGFLEET_KEY=None, HOME=str(home))
    write_private(system_conf, f"[coordinator]\nurl = {url}\nkey = {f.admin_key}\n")
    slugs = [t["slug"] for t in json.loads(ok(ctl(f, "tenants", "list", "--json",
                                                  env=env)))["items"]]
    assert slugs == ["acme", "globex"]

    # refused while its group or others may read it, with the reason and no key
    for mode in (0o644, 0o640):
        os.chmod(system_conf, mode)
        p = ctl(f, "tenants", "list", env=env)
        assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stdout)
        assert p.stderr == (f"wgfleetctl: {system_conf}: readable by other users "
                            f"(mode {mode:03o}); chmod 600 it\n"), p.stderr
    os.chmod(system_conf, 0o600)
    assert ctl(f, "tenants", "list", env=env).returncode == 0

    # ~/.config/wgfleet/ctl.conf comes first, and alone: nothing is taken from the other
    user_conf = str(home / ".config" / "wgfleet" / "ctl.conf")
    wrong = "wgf_" + "e" * 16 + "_" + "F" * 43
    write_private(user_conf, f"[coordinator]\nurl = {url}\nkey = {wrong}\n")
    p = ctl(f, "tenants", "list", env=env)
    assert p.returncode == 1 and "401 unauthorized" in p.stderr, p.stderr
    write_private(user_conf, f"[coordinator]\nurl = {url}\n")
    p = ctl(f, "tenants", "list", env=env)
    assert p.returncode == 2 and "no API key" in p.stderr, p.stderr
    # and the environment before both
    assert ctl(f, "tenants", "list", env=dict(env, WGFLEET_KEY=f.admin_key)).returncode == 0


def test_the_key_is_never_in_argv(fleet):
    f = fleet
    key_file = os.path.join(f.workdir, "admin.key")
    write_private(key_file, f.admin_key + "\n")
    for args, env in (([], ctl_env(f)),
                      (["--key-file", key_file], ctl_env(f, WGFLEET_KEY=None))):
        proc = subprocess.Popen([binary("wgfleetctl"), "audit", "--follow", "--interval", "0.2",
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        try:
            assert read_line(proc, 10).startswith("ID")
            with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:
                argv = fh.read().decode()
            assert "audit" in argv and f.admin_key not in argv and f.admin_key[21:] not in argv
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=5)
            assert proc.returncode == 0 and f.admin_key not in out + err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # no option takes the key as a value
    assert "--key " not in ok(ctl(f, "--help")).replace("--key-file", "")


# ---- bash completion ----

COMMANDS = ["status", "servers list", "servers show", "servers add", "servers set",
            "servers remove", "servers unknown", "servers release", "tenants list", "tenants show", "tenants add", "tenants set",
            "keys list", "keys create", "keys revoke", "routers list", "routers show",
            "routers delete", "audit", "leases", "config", "import", "webhooks list",
            "webhooks add", "webhooks remove", "webhooks deliveries"]


def complete(words):
    """What deploy/wgfleetctl.bash-completion offers for the last of words (bash-completion's
    _init_completion stood in for by a few lines)."""
    from conftest import TOP
    script = ('_init_completion() { words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; '
              'cur=${words[cword]}; prev=${words[cword-1]}; }; _filedir() { :; }; '
              f'. {TOP}/deploy/wgfleetctl.bash-completion; '
              'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _wgfleetctl; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True,
                         text=True, check=True, timeout=10).stdout
    return sorted(out.split())


def test_bash_completion_offers_each_commands_options_as_its_help_lists_them():
    assert complete(["wgfleetctl", ""]) == sorted({c.split()[0] for c in COMMANDS})
    assert complete(["wgfleetctl", "servers", ""]) == ["add", "list", "release", "remove", "set",
                                                       "show", "unknown"]
    assert complete(["wgfleetctl", "--url", "x", "keys", ""]) == ["create", "list", "revoke"]
    assert complete(["wgfleetctl", "config", "id", "--format", ""]) == ["routeros", "wg-quick"]
    for cmd in COMMANDS:
        help_text = subprocess.run([binary("wgfleetctl"), *cmd.split(), "--help"],
                                   capture_output=True, text=True, timeout=10).stdout
        listed = sorted(set(re.findall(r"^  (--[a-z-]+)", help_text, re.M)))
        assert complete(["wgfleetctl", *cmd.split(), "--"]) == listed, cmd
    usage = subprocess.run([binary("wgfleetctl"), "--help"], capture_output=True, text=True,
                           timeout=10).stdout
    assert sorted(re.findall(r"^  ([a-z]+(?: [a-z]+)?)(?= [A-Z]| {2,})", usage, re.M)) == \
        sorted(COMMANDS)


def test_exit_codes_agree_in_every_help_the_readme_and_cli_md():
    from conftest import TOP

    def listed(*args):
        p = subprocess.run([binary("wgfleetctl"), *args, "--help"], capture_output=True,
                           text=True, timeout=10)
        assert p.returncode == 0, args
        block = p.stdout.split("\nExit codes:\n", 1)[1]
        return {int(c): t.replace("`", "") for c, t in re.findall(r"^  (\d)  (.*)$", block, re.M)}

    def documented(path):
        with open(os.path.join(TOP, path)) as fh:
            rows = re.findall(r"^\| (\d) \| (.*) \|$", fh.read(), re.M)
        return {int(c): t.replace("`", "") for c, t in rows}

    codes = listed()
    assert sorted(codes) == [0, 1, 2, 3, 4] and codes[0] == "done"
    for cmd in COMMANDS:
        assert listed(*cmd.split()) == codes, cmd
    # The documents say the same, and may add detail in brackets or after a semicolon.
    for path in ("README.md", "docs/CLI.md"):
        docs = documented(path)
        assert sorted(docs) == sorted(codes), path
        for code, text in codes.items():
            more = docs[code][len(text):]
            assert docs[code].startswith(text), (path, code, docs[code])
            assert more == "" or more.startswith((" (", "; ")), (path, code, docs[code])


def test_cli_md_documents_every_command_the_binary_has():
    from conftest import TOP
    with open(os.path.join(TOP, "docs", "CLI.md")) as fh:
        section = fh.read().split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            for span in re.findall(r"`([^`]+)`", line.split(" | ")[0]):
                words = span.split()
                sub = len(words) > 1 and re.fullmatch(r"[a-z]+", words[1])
                documented.add(" ".join(words[:2]) if sub else words[0])
    assert documented == set(COMMANDS)


def on_a_terminal(f, *args, env):
    """Runs wgfleetctl with its stdout on a pseudo-terminal; returns (exit code, output)."""
    import pty
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([binary("wgfleetctl"), *args], stdout=follower,
                                stderr=subprocess.PIPE, env=env)
        os.close(follower)
        follower = -1
        chunks = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal's other side closed
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(timeout=10), b"".join(chunks).decode()
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


def test_colour_only_on_a_terminal_and_never_with_no_color(fleet):
    f = fleet
    code, out = on_a_terminal(f, "status", env=ctl_env(f, NO_COLOR=None))
    assert code == 0 and "\033[32monline\033[0m" in out, repr(out)
    for no_color in ("1", "yes"):
        code, out = on_a_terminal(f, "status", env=ctl_env(f, NO_COLOR=no_color))
        assert code == 0 and "online" in out and "\033[" not in out, repr(out)
    code, out = on_a_terminal(f, "status", "--json", env=ctl_env(f, NO_COLOR=None))
    assert code == 0 and "\033[" not in out
    piped = ctl(f, "status", env=ctl_env(f, NO_COLOR=None))
    assert piped.returncode == 0 and "\033[" not in piped.stdout


# ---- import ----

def test_import_a_csv_file_dry_run_then_apply(fleet, tmp_path):
    f = fleet
    held = f.reserve(f.acme)
    a, b = wg_key(), wg_key()
    csv = tmp_path / "routers.csv"
    csv.write_text("tenant,name,address,public_key,persistent_keepalive\n"
                   f"acme,shop-1,10.100.0.20,{a},15\n"
                   f"globex,,{held['vpn_ip']},{b},\n")
    before = f.counts()
    # The dry run lists the router it would make and the conflicting line; exit 4.
    proc = ctl(f, "import", "vpn1", str(csv))
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    rows = table(proc.stdout)
    assert rows[0] == ["LINE", "TENANT", "NAME", "ADDRESS", "PUBLIC KEY"]
    assert rows[1] == ["1", "acme", "shop-1", "10.100.0.20", a]
    assert ["2", "address_in_use", f"{held['vpn_ip']} is held by another router."] in rows
    assert rows[-1] == ["1 router would be imported, 1 conflicting line (a dry run: --apply "
                        "imports them)"]
    assert f.counts() == before
    # --apply with a conflict: the API refuses it whole (exit 1), nothing changes.
    proc = ctl(f, "import", "vpn1", str(csv), "--apply")
    assert proc.returncode == 1 and "import_conflicts" in proc.stderr, proc.stderr
    assert f.counts() == before
    # Without the conflicting line, as JSON, applied.
    doc = tmp_path / "routers.json"
    doc.write_text(json.dumps([{"tenant": "acme", "name": "shop-1", "address": "10.100.0.20",
                                "public_key": a, "persistent_keepalive": 15}]))
    got = ok_json(f, "import", "vpn1", str(doc), "--apply")
    assert got["applied"] is True and got["conflicts"] == []
    made = f.admin("GET", f"/v1/routers/{got['routers'][0]['id']}")
    assert (made["vpn_ip"], made["vpn_status"], made["public_key"]) == ("10.100.0.20", "configured", a)
    # A file the API could not take, or cannot be read as its format says: exit 2.
    bad = tmp_path / "bad.csv"
    bad.write_text("tenant,colour\nacme,red\n")
    proc = ctl(f, "import", "vpn1", str(bad))
    assert proc.returncode == 2 and "unknown column 'colour'" in proc.stderr, proc.stderr
    big = tmp_path / "big.json"
    big.write_text(" " * (64 * 1024 + 1))
    proc = ctl(f, "import", "vpn1", str(big))
    assert proc.returncode == 2 and "split the file" in proc.stderr, proc.stderr


def test_import_the_peers_of_wg_showconf(fleet, tmp_path):
    f = fleet
    a, b = wg_key(), wg_key()
    conf = tmp_path / "wg0.conf"
    conf.touch(mode=0o644)
    os.chmod(conf, 0o644)
    conf.write_text("[Interface]\nListenPort = 51820\nPrivateKey = "
                    "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n\n"
                    f"[Peer]\nPublicKey = {a}\nAllowedIPs = 10.100.0.40/32\n"
                    "PersistentKeepalive = 21\n\n"
                    f"[Peer]\nPublicKey = {b}\nEndpoint = 192.0.2.9:4500\n"
                    "AllowedIPs = 10.100.0.41/32, 192.168.88.0/24\n")
    got = ok_json(f, "import", "vpn1", str(conf), "--tenant", "acme")
    assert got["conflicts"] == []
    assert [(r["address"], r["public_key"], r["tenant"]) for r in got["routers"]] == \
        [("10.100.0.40", a, "acme"), ("10.100.0.41", b, "acme")]
    assert ctl(f, "import", "vpn1", str(conf)).returncode == 2  # which tenant?
    proc = ctl(f, "import", "vpn1", str(conf), "--tenant", "acme", "--apply")
    assert proc.returncode == 0, proc.stderr
    assert "yAnz5TF" not in proc.stdout + proc.stderr
    # The second peer routes a LAN behind it: said, since wgfleet keeps the address only.
    assert "1 peer has more allowed IPs than an address" in proc.stderr
    # The file holds a private key and others may read it: said. A pipe touches no disk.
    assert "others can read it (mode 644)" in proc.stderr
    piped = subprocess.run([binary("wgfleetctl"), "import", "vpn1", "-", "--format", "wg",
                            "--tenant", "acme", "--json"], input=conf.read_text(),
                           capture_output=True, text=True, env=ctl_env(f), timeout=30)
    assert piped.returncode == 4, piped.stderr  # both lines are imported already
    assert {c["code"] for c in json.loads(piped.stdout)["conflicts"]} == {"address_in_use"}
    assert "others can read" not in piped.stderr
    keepalive = f.scalar("SELECT persistent_keepalive FROM routers WHERE vpn_ip = '10.100.0.40'")
    assert keepalive == "21"
    # Without PersistentKeepalive the peer has none: it stays so (not the API's default).
    keepalive = f.scalar("SELECT persistent_keepalive FROM routers WHERE vpn_ip = '10.100.0.41'")
    assert keepalive == "0"
