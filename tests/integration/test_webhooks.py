# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Webhooks: events from the outbox reach a real HTTP receiver on 127.0.0.1, signed, in
order, once per event id, with retries, a tenant's webhook hearing only its tenant, and
two coordinators on one database sending each event once."""
import hashlib
import hmac
import http.server
import json
import threading
import time

import pytest

from apiutil import expect, fleet_factory, poll, wg_key  # noqa: F401 (fixtures)
from test_metrics import get, parse, serving_port, value

# Quick retries for the tests; loopback allowed, as it must be explicitly.
FAST = ("[webhooks]\npoll_interval = 50ms\nretry_min = 100ms\nretry_max = 300ms\n"
        "connect_timeout = 1s\ntimeout = 2s\nallowed_networks = 127.0.0.1/32\n")


# The admin webhooks of the router tests leave out the server.* and pool events.
ROUTER_EVENTS = ["router.reserved", "router.configured", "router.key_rotated",
                 "router.vps_ready", "router.connected", "router.disconnected", "router.failed",
                 "router.expired", "router.deleted"]


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread. Answers 500 to the first `fail_first`
    attempts of each event id (per path), 200 after; records every request."""

    def __init__(self, fail_first=0, always_fail=False):
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.lock = threading.Lock()
        self.requests = []  # (path, headers dict, body bytes, answered status)
        self.tries = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = (self.path, self.headers["Wgfleet-Event-Id"])
                with outer.lock:
                    outer.tries[key] = outer.tries.get(key, 0) + 1
                    ok = not outer.always_fail and outer.tries[key] > outer.fail_first
                    status = 200 if ok else 500
                    outer.requests.append((self.path, dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def delivered(self, path):
        """The events answered 200 on path, in arrival order: (id, event, headers, body)."""
        with self.lock:
            return [(json.loads(b)["id"], json.loads(b), h, b)
                    for p, h, b, s in self.requests if p == path and s == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kw):
        r = Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def verify(secret, headers, body, max_age=300):
    """What a receiver does (docs/WEBHOOKS.md): check the signature and its age."""
    parts = dict(p.split("=", 1) for p in headers["Wgfleet-Signature"].split(","))
    t = int(parts["t"])
    want = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"]) and abs(time.time() - t) <= max_age


def add_hook(f, key, url, status=201, **body):
    return expect(f.call("POST", "/v1/webhooks", key, {"url": url, **body}), status)


def wait_types(rcv, path, n, timeout=15):
    return poll(lambda: (lambda d: d if len(d) >= n else None)(rcv.delivered(path)), timeout,
                what=f"{n} deliveries on {path}")


def test_router_events_signed_in_order_once_each_despite_failures(fleet_factory, receiver):
    f = fleet_factory(FAST)
    f.server()
    acme, globex = f.tenant("acme"), f.tenant("globex")
    rcv = receiver(fail_first=2)
    admin_hook = add_hook(f, f.admin_key, rcv.url("/admin"), events=ROUTER_EVENTS)
    acme_hook = add_hook(f, acme, rcv.url("/acme"), events=["router.configured",
                                                             "router.deleted"])
    globex_hook = add_hook(f, globex, rcv.url("/globex"))
    assert admin_hook["tenant"] is None and acme_hook["tenant"] == "acme"
    assert admin_hook["secret"].startswith("whsec_") and len(admin_hook["secret"]) == 70
    r = f.reserve(acme)
    f.set_key(acme, r["id"], wg_key())
    expect(f.call("DELETE", f"/v1/routers/{r['id']}", acme), 204)
    got = wait_types(rcv, "/admin", 3)
    assert [e["type"] for _, e, _, _ in got] == ["router.reserved", "router.configured",
                                                   "router.deleted"]
    ids = [i for i, _, _, _ in got]
    assert ids == sorted(ids) and len(set(ids)) == 3
    for i, e, h, b in got:
        assert verify(admin_hook["secret"], h, b)
        assert not verify(acme_hook["secret"], h, b)
        assert h["Wgfleet-Event-Id"] == str(i)
        assert e["tenant"] == "acme" and e["data"]["router"]["id"] == r["id"]
        assert e["data"]["router"]["server"] == "vpn1"
        assert "public_key" not in json.dumps(e)
        assert rcv.tries[("/admin", str(i))] == 3  # two 500s, then delivered once
    assert [e["data"]["router"]["status"] for _, e, _, _ in got] == ["pending", "configured",
                                                                      "deleted"]
    # The tenant's filter: only the two types it asked for, signed with its own secret.
    acme_got = wait_types(rcv, "/acme", 2)
    assert [e["type"] for _, e, _, _ in acme_got] == ["router.configured", "router.deleted"]
    assert all(verify(acme_hook["secret"], h, b) for _, _, h, b in acme_got)
    # The delivery log says the same.
    log = expect(f.call("GET", f"/v1/webhooks/{admin_hook['id']}/deliveries", f.admin_key),
                 200)["items"]
    assert [(d["event_id"], d["status"], d["attempts"]) for d in log] == [
        (i, "delivered", 3) for i in ids]
    assert log[0]["last_http_status"] == 200 and log[0]["last_error"] is None
    # The coordinator's counters: 5 deliveries (3 + 2), each after two 500s.
    port = serving_port(f.coord.read_log)
    samples = poll(lambda: (lambda s: s if value(s, "wgfleet_webhook_attempts_total",
                                                 outcome="delivered") == 5 else None)(
        parse(get(port)[2])), 5, what="5 deliveries counted")
    assert value(samples, "wgfleet_webhook_attempts_total", outcome="failed") == 10
    assert value(samples, "wgfleet_webhook_deliveries_dead_total") == 0
    # globex heard nothing of acme's routers, and its log is empty.
    time.sleep(0.3)
    assert rcv.delivered("/globex") == []
    assert expect(f.call("GET", f"/v1/webhooks/{globex_hook['id']}/deliveries", globex),
                  200)["items"] == []


def test_status_moves_committed_are_announced_rolled_back_are_not(fleet_factory, receiver):
    f = fleet_factory(FAST)
    f.server()
    acme = f.tenant("acme")
    rcv = receiver()
    add_hook(f, f.admin_key, rcv.url("/h"), events=["router.vps_ready", "router.failed"])
    r = f.reserve(acme)
    f.set_key(acme, r["id"], wg_key())
    # The moves an agent's report makes, through the same SQL function: one rolled back,
    # then one committed.
    move = (f"SELECT wgf_router_move(r, '{{to}}', 'test', 'router.{{to}}') FROM routers r "
            f"WHERE id = '{r['id']}'")
    f.sql(f"BEGIN; {move.format(to='failed')}; ROLLBACK")
    f.sql(move.format(to="vps_ready"))
    got = wait_types(rcv, "/h", 1)
    time.sleep(0.3)
    got = rcv.delivered("/h")
    assert [(e["type"], e["data"]["router"]["status"]) for _, e, _, _ in got] == [
        ("router.vps_ready", "vps_ready")]
    assert f.scalar("SELECT count(*) FROM webhook_events WHERE type = 'router.failed'") == "0"
    # An API call that fails changes nothing and announces nothing.
    n = f.scalar("SELECT count(*) FROM webhook_events")
    expect(f.call("DELETE", f"/v1/routers/{r['id']}", f.tenant("globex")), 404)
    assert f.scalar("SELECT count(*) FROM webhook_events") == n


def test_a_dead_receiver_ends_in_dead_after_retry_for(fleet_factory, receiver):
    f = fleet_factory(FAST + "retry_for = 1500ms\n")
    f.server()
    acme = f.tenant("acme")
    rcv = receiver(always_fail=True)
    hook = add_hook(f, acme, rcv.url("/down"))
    f.reserve(acme)
    path = f"/v1/webhooks/{hook['id']}/deliveries"
    log = poll(lambda: (lambda i: i if i and i[0]["status"] == "dead" else None)(
        expect(f.call("GET", path, acme), 200)["items"]), 10, interval=0.1, what="dead")
    assert log[0]["attempts"] >= 3 and log[0]["last_http_status"] == 500
    assert "500" in log[0]["last_error"] and log[0]["finished_at"]
    n = len(rcv.requests)
    time.sleep(0.5)
    assert len(rcv.requests) == n  # given up: no more attempts
    assert expect(f.call("GET", path + "?status=dead", acme), 200)["items"] == log
    # The log keeps a finished delivery for [webhooks] keep, then it goes with its event.
    assert f.scalar("SELECT wgf_webhook_prune('7 days', 1000)") == "0"
    f.sql("UPDATE webhook_deliveries SET finished_at = now() - interval '8 days'; "
          "UPDATE webhook_events SET at = now() - interval '8 days'")
    assert f.scalar("SELECT wgf_webhook_prune('7 days', 1000)") == "1"
    assert f.sql("SELECT (SELECT count(*) FROM webhook_deliveries), "
                 "(SELECT count(*) FROM webhook_events)") == [["0", "0"]]


def test_two_coordinators_deliver_each_event_once(fleet_factory, receiver):
    f = fleet_factory(FAST)
    f.start(FAST)
    f.server()
    acme = f.tenant("acme")
    rcv = receiver()
    add_hook(f, f.admin_key, rcv.url("/both"), events=ROUTER_EVENTS)
    for i in range(12):
        f.reserve(acme, coord=f.coordinators[i % 2])
    got = wait_types(rcv, "/both", 12)
    time.sleep(0.5)
    with rcv.lock:
        ids = [json.loads(b)["id"] for p, _, b, _ in rcv.requests]
    assert len(ids) == 12 and len(set(ids)) == 12 and ids == sorted(ids)
    assert [e["type"] for _, e, _, _ in got] == ["router.reserved"] * 12


def test_targets_are_checked_and_secrets_stay_with_their_owner(fleet_factory, receiver):
    f = fleet_factory()  # no allowed_networks: loopback and private ranges are refused
    acme, globex = f.tenant("acme"), f.tenant("globex")
    for url, why in [("http://127.0.0.1:9/x", "may not call"), ("http://[::1]/x", "may not call"),
                     ("https://10.1.2.3/x", "may not call"), ("http://169.254.169.254/",
                                                              "may not call"),
                     ("ftp://example.com/x", "http or https"),
                     ("https://u:p@example.com/x", "user name"), ("https:///x", "")]:
        err = expect(f.call("POST", "/v1/webhooks", acme, {"url": url}), 400, "invalid_request")
        assert err["error"]["message"].startswith("url: ") and why in err["error"]["message"]
    err = expect(f.call("POST", "/v1/webhooks", acme, {"url": "https://example.com/",
                                                        "events": ["router.nope"]}), 400)
    assert "router.nope" in err["error"]["message"]
    for body, field in [({"url": 5}, "url"), ({"url": "https://a.example/", "events": "x"},
                                              "events"),
                        ({"url": "https://a.example/", "events": ["Router.Deleted"]}, "events"),
                        ({"url": "https://a.example/", "events": ["a"] * 17}, "events"),
                        ({"url": "https://a.example/", "secret": "mine"}, "secret"),
                        ({"events": []}, "url")]:
        err = expect(f.call("POST", "/v1/webhooks", acme, body), 400, "invalid_request")
        assert err["error"]["message"].startswith(f"{field}: "), (body, err)
    assert f.scalar("SELECT count(*) FROM webhooks") == "0"
    admin_hook = add_hook(f, f.admin_key, "https://hooks.example.com/fleet")
    mine = add_hook(f, acme, "https://hooks.example.com/acme")
    # A tenant sees, changes and removes only its own; no list shows a secret.
    listed = expect(f.call("GET", "/v1/webhooks", acme), 200)["items"]
    assert [w["id"] for w in listed] == [mine["id"]]
    assert "secret" not in json.dumps(listed)
    assert [w["id"] for w in expect(f.call("GET", "/v1/webhooks", globex), 200)["items"]] == []
    assert len(expect(f.call("GET", "/v1/webhooks", f.admin_key), 200)["items"]) == 2
    for method, path in [("PATCH", ""), ("DELETE", ""), ("POST", "/rotate-secret"),
                         ("POST", "/test"), ("GET", "/deliveries")]:
        body = {"active": False} if method == "PATCH" else None
        expect(f.call(method, f"/v1/webhooks/{admin_hook['id']}{path}", acme, body), 404,
               "webhook_not_found")
    for body in ({"active": "no"}, {"url": "http://10.0.0.1/"}, {"tenant": "globex"}):
        expect(f.call("PATCH", f"/v1/webhooks/{mine['id']}", acme, body), 400,
               "invalid_request")
    assert expect(f.call("GET", "/v1/webhooks", acme), 200)["items"] == listed
    changed = expect(f.call("PATCH", f"/v1/webhooks/{mine['id']}", acme,
                            {"active": False, "events": ["router.deleted"]}), 200)
    assert changed["active"] is False and changed["events"] == ["router.deleted"]
    expect(f.call("DELETE", f"/v1/webhooks/{mine['id']}", acme), 204)
    assert f.scalar("SELECT count(*) FROM webhooks") == "1"
    assert "whsec_" not in f.coord.read_log()


def test_rotated_secret_signs_the_test_event(fleet_factory, receiver):
    f = fleet_factory(FAST)
    acme = f.tenant("acme")
    rcv = receiver()
    hook = add_hook(f, acme, rcv.url("/t"))
    rotated = expect(f.call("POST", f"/v1/webhooks/{hook['id']}/rotate-secret", acme), 200)
    assert rotated["secret"] != hook["secret"] and rotated["id"] == hook["id"]
    sent = expect(f.call("POST", f"/v1/webhooks/{hook['id']}/test", acme), 202)
    (i, e, h, b), = wait_types(rcv, "/t", 1)
    assert i == sent["event_id"] and e["type"] == "webhook.test" and e["tenant"] == "acme"
    assert verify(rotated["secret"], h, b) and not verify(hook["secret"], h, b)


def test_the_outbox_outlives_a_killed_coordinator(fleet_factory, receiver):
    # Events committed while no coordinator delivers, then the coordinator killed: the
    # next one to start sends the whole backlog, in order.
    f = fleet_factory(FAST + "deliver = false\n")
    f.server()
    acme = f.tenant("acme")
    rcv = receiver()
    add_hook(f, acme, rcv.url("/later"))
    made = [f.reserve(acme)["id"] for _ in range(4)]
    time.sleep(0.3)
    assert rcv.requests == []
    f.coord.proc.kill()
    f.coord.proc.wait()
    f.start(FAST)  # the fixture's stop() closes both
    got = wait_types(rcv, "/later", 4)
    assert [e["data"]["router"]["id"] for _, e, _, _ in got] == made
    assert [i for i, _, _, _ in got] == sorted(i for i, _, _, _ in got)


def test_pool_threshold_crossings_up_and_down(fleet_factory, receiver):
    f = fleet_factory(FAST)
    f.server(pool="10.100.0.0/27")
    acme = f.tenant("acme")
    rcv = receiver()
    add_hook(f, f.admin_key, rcv.url("/pool"), events=["pool.threshold"])
    tenant_hook = add_hook(f, acme, rcv.url("/tenant"))  # pool events are the fleet's
    size = int(f.scalar("SELECT count(*) FROM pool_addresses"))
    made = [f.reserve(acme)["id"] for _ in range(size * 9 // 10 + 1)]  # past 90 %
    for router_id in made[:len(made) - size * 8 // 10 + 1]:  # back under 80 %
        expect(f.call("DELETE", f"/v1/routers/{router_id}", acme), 204)
    got = wait_types(rcv, "/pool", 4)
    levels = [(e["data"]["previous_level"], e["data"]["level"]) for _, e, _, _ in got]
    assert levels == [(0, 80), (80, 90), (90, 80), (80, 0)]
    for _, e, _, _ in got:
        d = e["data"]
        assert e["tenant"] is None and d["server"] == {"name": "vpn1"} and d["size"] == size
        assert (d["used"] * 100 >= size * d["level"]) and (
            d["level"] == 90 or d["used"] * 100 < size * (d["level"] + 10 if d["level"] else 80))
    time.sleep(0.3)
    assert "pool.threshold" not in [e["type"] for _, e, _, _ in rcv.delivered("/tenant")]
    assert tenant_hook["events"] == []


def test_server_online_and_offline_are_announced_once_each(fleet_factory, receiver):
    f = fleet_factory(FAST + "offline_confirm = 500ms\n[api]\nserver_online_within = 2s\n")
    f.server(online=False)
    rcv = receiver()
    add_hook(f, f.admin_key, rcv.url("/servers"), events=["server.online", "server.offline"])
    f.mark_online("vpn1")  # as an agent's report does
    got = wait_types(rcv, "/servers", 1)
    assert (got[0][1]["type"], got[0][1]["data"]["server"]["online"]) == ("server.online", True)
    # No report for longer than server_online_within, still none offline_confirm later:
    # offline, announced once.
    got = wait_types(rcv, "/servers", 2, timeout=10)
    assert got[1][1]["type"] == "server.offline"
    assert got[1][1]["data"]["server"]["name"] == "vpn1" and got[1][1]["tenant"] is None
    time.sleep(0.5)
    assert len(rcv.delivered("/servers")) == 2


class ServerChecks:
    """Drives wgf_servers_watch() by hand, as a delivering coordinator's poll does, with
    short intervals: the test's coordinator delivers nothing, so it never checks."""

    WITHIN, CONFIRM = "1 second", 0.3

    def __init__(self, f, name="vpn1"):
        self.f, self.name = f, name

    def check(self, confirm=CONFIRM):
        return int(self.f.scalar(f"SELECT wgf_servers_watch('{self.WITHIN}', "
                                 f"'{confirm} seconds')"))

    def heard(self):
        self.f.mark_online(self.name)

    def unheard(self):
        self.f.sql("UPDATE servers SET last_seen_at = now() - interval '5 seconds' "
                   f"WHERE name = '{self.name}'")

    def announced(self):
        return [r[0] for r in self.f.sql("SELECT type FROM webhook_events "
                                         "WHERE type LIKE 'server.%' ORDER BY id")]


@pytest.fixture
def checks(fleet_factory):
    f = fleet_factory("[webhooks]\ndeliver = false\nallowed_networks = 127.0.0.1/32\n")
    f.server()
    add_hook(f, f.admin_key, "http://127.0.0.1:9/servers",
             events=["server.online", "server.offline"])
    c = ServerChecks(f)
    assert (c.check(), c.announced()) == (1, ["server.online"])
    return c


def test_one_late_check_does_not_announce_the_server_offline(checks):
    c = checks
    c.unheard()
    assert c.check() == 0  # suspected, not announced
    time.sleep(c.CONFIRM + 0.1)
    c.heard()
    assert c.check() == 0  # heard again: the suspicion is gone, and no online either
    c.unheard()
    assert c.check() == 0  # a new suspicion: the old one (older than CONFIRM) is not used
    # A second check sooner than the confirm time after the first: still not (a long
    # confirm time, so that a slow machine cannot make the two checks that far apart).
    assert c.check(confirm=60) == 0
    assert c.announced() == ["server.online"]


def test_two_late_checks_a_confirm_apart_announce_offline_once(checks):
    c = checks
    c.unheard()
    assert c.check() == 0
    time.sleep(c.CONFIRM + 0.1)
    assert c.check() == 1
    assert c.check() == 0
    assert c.announced() == ["server.online", "server.offline"]
    # With no confirm time it still takes two checks.
    c.heard()
    assert c.check(confirm=0) == 1
    c.unheard()
    assert (c.check(confirm=0), c.check(confirm=0)) == (0, 1)
    assert c.announced() == ["server.online", "server.offline"] * 2


def test_coming_back_after_offline_announces_online_once_at_once(checks):
    c = checks
    c.unheard()
    c.check()
    time.sleep(c.CONFIRM + 0.1)
    assert c.check() == 1
    c.heard()
    assert (c.check(), c.check(), c.check()) == (1, 0, 0)
    assert c.announced() == ["server.online", "server.offline", "server.online"]
    got = c.f.sql("SELECT payload->'data'->'server'->>'online' FROM webhook_events "
                  "WHERE type LIKE 'server.%' ORDER BY id")
    assert [r[0] for r in got] == ["true", "false", "true"]


def test_every_router_event_type_arrives_signed_and_a_changed_byte_fails(fleet_factory,
                                                                        receiver):
    f = fleet_factory(FAST)
    f.server()
    acme = f.tenant("acme")
    rcv = receiver()
    hook = add_hook(f, f.admin_key, rcv.url("/all"), events=ROUTER_EVENTS)
    move = ("SELECT wgf_router_move(r, '{to}', 'test', 'router.{to}') FROM routers r "
            "WHERE id = '{id}'")
    # One router through every move a report makes (the agent's own SQL function),
    # a rotation, a deletion; a second one failed; a third one expired by the sweeper.
    a = f.reserve(acme)
    f.set_key(acme, a["id"], wg_key())
    f.set_key(acme, a["id"], wg_key())
    for to in ("vps_ready", "connected", "disconnected"):
        f.sql(move.format(to=to, id=a["id"]))
    expect(f.call("DELETE", f"/v1/routers/{a['id']}", acme), 204)
    b = f.reserve(acme)
    f.set_key(acme, b["id"], wg_key())
    f.sql(move.format(to="failed", id=b["id"]))
    c = f.reserve(acme)
    f.sql(f"UPDATE routers SET reservation_expires_at = now() - interval '1 second' "
          f"WHERE id = '{c['id']}'")
    f.sql("SELECT wgf_sweep(100)")
    got = wait_types(rcv, "/all", 12)
    types = {e["type"] for _, e, _, _ in got}
    assert types == set(ROUTER_EVENTS), sorted(set(ROUTER_EVENTS) - types)
    status = {e["type"]: e["data"]["router"]["status"] for _, e, _, _ in got}
    assert status["router.failed"] == "failed" and status["router.expired"] == "expired"
    for _, _, headers, body in got:
        assert verify(hook["secret"], headers, body)
        # One byte changed, or the signature's time moved: the receiver refuses it.
        changed = body.replace(b'"router.', b'"routeR.', 1)
        assert changed != body and not verify(hook["secret"], headers, changed)
        t, v1 = headers["Wgfleet-Signature"].split(",")
        later = dict(headers, **{"Wgfleet-Signature": f"t={int(t[2:]) + 1},{v1}"})
        assert not verify(hook["secret"], later, body)


def test_an_event_no_webhook_hears_leaves_no_outbox_row(fleet_factory):
    f = fleet_factory("[webhooks]\ndeliver = false\nallowed_networks = 127.0.0.1/32\n")
    f.server()
    acme = f.tenant("acme")
    r = f.reserve(acme)  # no webhook at all
    add_hook(f, f.admin_key, "http://127.0.0.1:9/deleted", events=["router.deleted"])
    f.set_key(acme, r["id"], wg_key())  # router.configured: left out by the filter
    expect(f.call("DELETE", f"/v1/routers/{r['id']}", acme), 204)
    assert f.sql("SELECT type FROM webhook_events ORDER BY id") == [["router.deleted"]]
    assert f.scalar("SELECT count(*) FROM webhook_deliveries") == "1"
