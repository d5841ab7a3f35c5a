#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Times the dashboard in Debian's headless chromium (selenium, chromium-driver): from
the start of the page's navigation to its first complete render (every list's first
page shown), and each API request it made for it (Resource Timing), RUNS times, each a
fresh load. Prints one line a run. Only the coordinator on 127.0.0.1 is asked.

Usage: dashboard_render.py BASE_URL KEY_FILE [RUNS]   (BASE_URL: http://127.0.0.1:PORT)
"""
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def first_render(drv, base, key):
    drv.get(base + "/dashboard")
    drv.execute_script("sessionStorage.setItem('wgfleet.admin_key', arguments[0]);", key)
    drv.get(base + "/dashboard")  # a fresh load, the key already in the tab
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = drv.execute_script(
            "const b = document.getElementById('board');"
            "if (!b || !b.dataset.refreshed) return null;"
            "return {render: Number(b.dataset.refreshed) - performance.timeOrigin,"
            " requests: performance.getEntriesByType('resource')"
            "  .filter((e) => e.name.includes('/v1/'))"
            "  .map((e) => [new URL(e.name).pathname + new URL(e.name).search, e.duration])};")
        if got:
            return got
        time.sleep(0.05)
    raise SystemExit("dashboard_render: no render within 60 s")


def main():
    base, key_file = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with open(key_file) as f:
        key = f.read().strip()
    profile = tempfile.mkdtemp(prefix="wgf-chromium.")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", f"--user-data-dir={profile}", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        for i in range(runs):
            got = first_render(drv, base, key)
            reqs = ", ".join(f"{p} {d:.0f} ms" for p, d in got["requests"])
            print(f"render {i + 1}: first render {got['render']:.0f} ms; requests: {reqs}",
                  flush=True)
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
