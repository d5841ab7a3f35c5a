#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Fills a benchmark database through the coordinator's own admin API (for reserve.sh).

  reserve_setup.py --port P --tenants N --keys-out FILE --pool PREFIX:COUNT ... [--fill N]

The admin key comes in the environment (WGF_ADMIN_KEY). Makes N tenants with the
largest quota and reservation rate the API accepts (so no limit triggers during a run),
one tenant key each (written to FILE, one a line), and for each --pool COUNT servers
whose pools are /PREFIX. Servers are named by number, PREFIX * 10000 + i (i = 1..COUNT:
160001, 160002, ... for /16), so that pgbench can pick one with \\set; their pools do
not overlap: /16s from 10.0.0.0, /20s from 10.64.0.0, /24s from 10.128.0.0. --fill N
adds N more /16 servers, named 900001, 900002, ..., from 100.64.0.0 (at most 64): they
only hold the routers reserve.sh --routers-per-tenant pre-fills.
"""
import argparse
import base64
import http.client
import ipaddress
import json
import os
import sys

LIMIT_MAX = 1000000  # the API's bound for router_quota and reservations_per_hour
BASES = {16: "10.0.0.0", 20: "10.64.0.0", 24: "10.128.0.0"}
FILL_BASE = "100.64.0.0"
SERVER_WG_KEY = base64.b64encode(bytes(range(1, 33))).decode()


class Api:
    def __init__(self, port, key):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.key = key

    def post(self, path, body, want=201):
        self.conn.request("POST", path, body=json.dumps(body),
                          headers={"Authorization": f"Bearer {self.key}",
                                   "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read().decode()
        if resp.status != want:
            sys.exit(f"reserve_setup: POST {path} {body}: HTTP {resp.status}: {data}")
        return json.loads(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tenants", type=int, required=True)
    ap.add_argument("--keys-out", required=True)
    ap.add_argument("--pool", action="append", default=[], metavar="PREFIX:COUNT")
    ap.add_argument("--fill", type=int, default=0, choices=range(0, 65), metavar="N")
    args = ap.parse_args()

    api = Api(args.port, os.environ["WGF_ADMIN_KEY"])
    keys = []
    for t in range(1, args.tenants + 1):
        slug = f"bench-{t:04d}"
        api.post("/v1/tenants", {"slug": slug, "name": f"Bench {t}",
                                 "router_quota": LIMIT_MAX,
                                 "reservations_per_hour": LIMIT_MAX})
        keys.append(api.post(f"/v1/tenants/{slug}/keys", {"label": "bench"})["key"])
    with open(args.keys_out, "w") as f:
        f.write("".join(k + "\n" for k in keys))

    specs = [(int(p), int(n), BASES[int(p)], int(p) * 10000)
             for p, n in (spec.split(":") for spec in args.pool)]
    if args.fill:
        specs.append((16, args.fill, FILL_BASE, 900000))
    for prefix, count, base_ip, first_name in specs:
        base = int(ipaddress.ip_address(base_ip))
        size = 1 << (32 - prefix)
        for i in range(count):
            net = ipaddress.ip_network((base + i * size, prefix))
            api.post("/v1/servers", {"name": str(first_name + i + 1),
                                     "endpoint": "vpn.bench.example:51820",
                                     "pool": str(net),
                                     "gateway": str(net.network_address + 1),
                                     "public_key": SERVER_WG_KEY})


if __name__ == "__main__":
    main()
