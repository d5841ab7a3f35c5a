# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The dashboard in a real browser: Debian's chromium, headless, driven by selenium
through chromium-driver, against a real coordinator with real data (issue 10).

It shows what the API says (servers, routers per status, routers that need attention,
recent audit entries), updates by itself after a router changes status, finds a router
by id or address with its history, never puts the key in a URL, and a screenshot is
saved under the build directory for people to look at."""
import os
import shutil
import time

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
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in drv.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")]


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
    attention = cells(browser, "attention")
    assert [(r[0], r[1], r[3]) for r in attention] == [("failed", "shop-1", failed["vpn_ip"])]
    assert "overlapping allowed IPs" in attention[0][4]
    audit = f.admin("GET", "/v1/audit?limit=100")["items"]
    shown = cells(browser, "audit")
    assert [r[2] for r in shown] == [a["action"] for a in reversed(audit)][:len(shown)]

    # It updates by itself: a router disconnects and another is deleted.
    f.sql(f"UPDATE routers SET status = 'vps_ready' WHERE id = '{routers[0]['id']}'")
    f.sql(f"UPDATE routers SET status = 'connected' WHERE id = '{routers[0]['id']}'")
    f.sql("UPDATE routers SET status = 'disconnected', status_reason = 'last handshake at "
          f"noon' WHERE id = '{routers[0]['id']}'")
    expect(f.call("DELETE", f"/v1/routers/{routers[2]['id']}", f.acme), 204)
    wait_until("the disconnected router", lambda: any(
        r[0] == "disconnected" and r[1] == "shop-0" for r in cells(browser, "attention")))
    wait_until("the deletion in the activity", lambda: any(
        r[2] == "router.deleted" for r in cells(browser, "audit")))
    assert counts(browser) == f.admin("GET", "/v1/status")["routers"]

    # Search by address and by id, each with the router's history.
    for q in (failed["vpn_ip"], failed["id"]):
        box = browser.find_element(By.ID, "search")
        box.clear()
        box.send_keys(q)
        browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
        wait_until(f"router {q}", lambda: "shop-1" in browser.find_element(By.ID, "found").text)
        history = browser.find_element(By.CSS_SELECTOR, "#found ol").text
        assert "router.reserved" in history and "router.key_set" in history

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
