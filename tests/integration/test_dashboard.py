# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The dashboard in a real browser: Debian's chromium, headless, driven by selenium
through chromium-driver, against a real coordinator with real data (issue 10).

It shows what the API says (servers, routers per status, routers that need attention,
recent audit entries), updates by itself after a router changes status, finds a router
by id or address with its history, never puts the key in a URL, and a screenshot is
saved under the build directory for people to look at. With more servers than a page
it shows one page at a time, equal to the API's pages, and no request it makes asks for
an unbounded list (the requests are read from chromium's performance log)."""
import json
import os
import shutil
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from apiutil import expect, fleet, fleet_factory, wg_key

assert fleet and fleet_factory  # fixtures, used by name

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="python3-selenium is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM or not DRIVER,
                                reason="chromium and chromium-driver are not installed")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium'}",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"):
        opts.add_argument(arg)
    # Every request the page makes, for requests_made().
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


def wait_until(what, fn, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = fn()
            if got:
                return got
        except Exception:  # an element not there yet, or stale
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def cells(drv, table):
    """The table's cell texts, read in one script (a refresh between element look-ups
    would leave stale elements)."""
    return drv.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), (tr) =>"
        " Array.from(tr.cells, (td) => td.innerText.trim()));", f"#{table} tbody tr")


def requests_made(drv):
    """The URLs of the requests the page made since the last call (DevTools log)."""
    urls = []
    for entry in drv.get_log("performance"):
        m = json.loads(entry["message"])["message"]
        if m["method"] == "Network.requestWillBeSent":
            urls.append(m["params"]["request"]["url"])
    return urls


# The most a list route may be asked for by the dashboard (its largest page).
PAGE_MAX = 50


def assert_bounded(urls):
    """Every API request asks for one object or one page of at most PAGE_MAX; returns
    the paths asked for."""
    paths = set()
    for url in urls:
        u = urlsplit(url)
        if not u.path.startswith("/v1/"):
            continue
        paths.add(u.path)
        q = parse_qs(u.query)
        if u.path in ("/v1/status", "/v1/routers", "/v1/audit"):
            assert "limit" in q and 1 <= int(q["limit"][0]) <= PAGE_MAX, url
        else:
            assert u.path.startswith("/v1/routers/") and u.path.count("/") == 3, url
    return paths


def log_in(drv, base, key):
    drv.get(base + "/dashboard")
    drv.find_element(By.ID, "key").send_keys(key)
    drv.find_element(By.CSS_SELECTOR, "#login-form button").click()
    return wait_until("the board", lambda: drv.find_element(By.ID, "board")
                      .get_attribute("data-refreshed"))


def page_shown(drv, name):
    return int(drv.find_element(By.ID, f"{name}-pager").get_attribute("data-page") or 0)


def counts(drv):
    return {li.get_attribute("data-status"): int(li.text.split()[-1])
            for li in drv.find_elements(By.CSS_SELECTOR, "#counts li")}


def test_the_dashboard_shows_the_api_and_follows_it(fleet, browser):
    f = fleet
    f.server("vpn2", pool="10.101.0.0/24", online=False)
    routers = [f.reserve(f.acme, {"name": f"shop-{i}"}) for i in range(3)]
    for r in routers[:2]:
        f.set_key(f.acme, r["id"], wg_key())
    failed = routers[1]
    f.sql("UPDATE routers SET status = 'failed', status_reason = 'the agent refused the peer: "
          f"overlapping allowed IPs' WHERE id = '{failed['id']}'")
    base = f"http://127.0.0.1:{f.coord.port}"

    browser.get(base + "/dashboard")
    assert browser.find_element(By.ID, "login").is_displayed()
    browser.find_element(By.ID, "key").send_keys(f.admin_key)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait_until("the board", lambda: browser.find_element(By.ID, "board")
               .get_attribute("data-refreshed"))
    # The key is in the tab's session storage, not in any URL.
    assert f.admin_key not in browser.current_url
    assert browser.execute_script("return sessionStorage.getItem('wgfleet.admin_key')") \
        == f.admin_key

    status = f.admin("GET", "/v1/status")
    assert counts(browser) == status["routers"]
    rows = {row[0]: row for row in cells(browser, "servers")}
    for s in status["servers"]:
        row = rows[s["name"]]
        assert row[1] == ("online" if s["online"] else "offline")
        assert row[3:6] == [str(s["revision_lag"]), str(s["peers"]), str(s["connected"])]
        assert row[6].endswith(f"{s['pool']['used']} / {s['pool']['size']}")
    attention = cells(browser, "failed")
    assert [(r[0], r[1], r[3]) for r in attention] == [("failed", "shop-1", failed["vpn_ip"])]
    assert "overlapping allowed IPs" in attention[0][4]
    assert cells(browser, "disconnected") == []
    audit = f.admin("GET", "/v1/audit?order=newest&limit=50")["items"]
    shown = cells(browser, "audit")
    assert [r[2] for r in shown] == [a["action"] for a in audit]

    # It updates by itself: a router disconnects and another is deleted.
    f.sql(f"UPDATE routers SET status = 'vps_ready' WHERE id = '{routers[0]['id']}'")
    f.sql(f"UPDATE routers SET status = 'connected' WHERE id = '{routers[0]['id']}'")
    f.sql("UPDATE routers SET status = 'disconnected', status_reason = 'last handshake at "
          f"noon' WHERE id = '{routers[0]['id']}'")
    expect(f.call("DELETE", f"/v1/routers/{routers[2]['id']}", f.acme), 204)
    wait_until("the disconnected router", lambda: any(
        r[0] == "disconnected" and r[1] == "shop-0" for r in cells(browser, "disconnected")))
    wait_until("the deletion in the activity", lambda: any(
        r[2] == "router.deleted" for r in cells(browser, "audit")))
    assert counts(browser) == f.admin("GET", "/v1/status")["routers"]

    # Search by name (first: the results are empty before it), address and id, each
    # with the router's history.
    for q in (failed["name"], failed["vpn_ip"], failed["id"]):
        box = browser.find_element(By.ID, "search")
        box.clear()
        box.send_keys(q)
        browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
        wait_until(f"router {q}", lambda: "shop-1" in browser.find_element(By.ID, "found").text)
        history = browser.find_element(By.CSS_SELECTOR, "#found ol").text
        assert "router.reserved" in history and "router.key_set" in history

    assert {"/v1/status", "/v1/routers", "/v1/audit"} <= assert_bounded(requests_made(browser))

    shot = os.path.join(os.environ.get("WGF_BUILD_DIR", "build"), "dashboard.png")
    browser.save_screenshot(shot)
    assert os.path.getsize(shot) > 10000

    # A key that is not an admin's is turned away and forgotten.
    browser.find_element(By.ID, "forget").click()
    browser.find_element(By.ID, "key").send_keys(f.acme)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait_until("the refusal", lambda: "not an admin key" in
               browser.find_element(By.ID, "login-error").text)
    assert browser.execute_script("return sessionStorage.getItem('wgfleet.admin_key')") is None


def test_more_servers_than_a_page_are_shown_a_page_at_a_time(fleet, browser):
    f = fleet
    # 60 more servers (vps01..vps60, with their pools), made the way the API makes them
    # but in one statement each: the page holds 50.
    f.sql("INSERT INTO servers (name, endpoint, pool, gateway, wg_public_key, last_seen_at) "
          "SELECT 'vps' || lpad(g::text, 2, '0'), 'vps' || g || '.example.net:51820', "
          "('10.200.' || g || '.0/24')::cidr, ('10.200.' || g || '.1')::inet, "
          "decode(md5(g::text) || md5('k' || g), 'hex'), now() FROM generate_series(1, 60) g")
    f.sql("INSERT INTO pool_addresses (server_id, ip) SELECT s.id, host(s.pool)::inet + n "
          "FROM servers s, generate_series(2, 254) n WHERE s.name LIKE 'vps%'")
    f.sql("INSERT INTO server_usage (server_id, shard) SELECT s.id, g FROM servers s, "
          "generate_series(0, 15) g WHERE s.name LIKE 'vps%'")
    for i in range(3):
        f.reserve(f.acme, {"server": "vps55", "name": f"far-{i}"})
    first = f.admin("GET", "/v1/status?limit=50")
    second = f.admin("GET", f"/v1/status?limit=50&cursor={first['next_cursor']}")
    assert first["servers_total"] == 61 and second["next_cursor"] is None
    assert len(first["servers"]) == 50 and len(second["servers"]) == 11

    log_in(browser, f"http://127.0.0.1:{f.coord.port}", f.admin_key)

    def rows():
        return [(r[0], r[3], r[4], r[6].split()[-3]) for r in cells(browser, "servers")]

    def api_rows(page):
        return [(s["name"], str(s["revision_lag"]), str(s["peers"]), str(s["pool"]["used"]))
                for s in page["servers"]]

    assert page_shown(browser, "servers") == 1
    assert rows() == api_rows(first)
    assert browser.find_element(By.ID, "server-count").text == "(61)"
    browser.find_element(By.ID, "servers-next").click()
    wait_until("page 2", lambda: page_shown(browser, "servers") == 2)
    wait_until("page 2's rows", lambda: rows() == api_rows(second))
    assert ("vps55", "0", "0", "3") in rows()
    assert not browser.find_element(By.ID, "servers-next").is_enabled()
    # It stays on page 2 as it refreshes, and previous goes back to page 1.
    refreshed = browser.find_element(By.ID, "board").get_attribute("data-refreshed")
    wait_until("a refresh", lambda: browser.find_element(By.ID, "board")
               .get_attribute("data-refreshed") != refreshed, timeout=15)
    assert page_shown(browser, "servers") == 2 and rows() == api_rows(second)
    browser.find_element(By.ID, "servers-prev").click()
    wait_until("page 1 again", lambda: page_shown(browser, "servers") == 1
               and rows() == api_rows(first))
    paths = assert_bounded(requests_made(browser))
    assert {"/v1/status", "/v1/routers", "/v1/audit"} <= paths


def test_the_page_is_served_with_a_strict_policy(fleet):
    f = fleet
    for path, kind in (("/dashboard", "text/html"), ("/dashboard/dashboard.js", "text/javascript"),
                       ("/dashboard/dashboard.css", "text/css")):
        status, headers, _ = f.coord.request("GET", path)
        assert status == 200, path
        assert headers["content-type"].startswith(kind), headers
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
    assert f.coord.request("GET", "/dashboard/../api-key.secret")[0] == 404
    assert f.coord.request("GET", "/dashboard/nope.js")[0] == 404
