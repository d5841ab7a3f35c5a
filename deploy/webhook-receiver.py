#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""A webhook receiver to try wgfleet's webhooks with (the quickstart runs it): listens on
127.0.0.1:PORT, checks each POST's Wgfleet-Signature with the secret in SECRET_FILE
(rejecting bodies signed more than 5 minutes ago), and prints one line an event:
"ok|BAD <type> event=<id> router=<id> status=<new state>".

Usage: webhook-receiver.py PORT SECRET_FILE
"""
import hashlib
import hmac
import http.server
import json
import sys
import time


def verify(secret, header, body, max_age=300):
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - t) > max_age:
        return False
    want = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts.get("v1", ""))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 20))
        good = verify(self.server.secret, self.headers.get("Wgfleet-Signature", ""), body)
        self.send_response(200 if good else 401)
        self.end_headers()
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        router = (event.get("data") or {}).get("router") or {}
        print(f"{'ok' if good else 'BAD'} {event.get('type')} event={event.get('id')} "
              f"router={router.get('id', '-')} status={router.get('status', '-')}", flush=True)

    def log_message(self, *args):
        pass


def main():
    port, secret_file = int(sys.argv[1]), sys.argv[2]
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    with open(secret_file) as f:
        server.secret = f.read().strip()
    server.serve_forever()


if __name__ == "__main__":
    main()
