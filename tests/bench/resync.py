#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""resync: one server with 100,000 peers resyncs from zero in snapshot pages (issue 13,
item 4).

Usage: tests/bench/resync.py [--quick] [--peers N] [--page N] [--build DIR]

  --quick     5,000 peers: the smoke run
  --peers N   keyed routers on the one server (default 100000, the most an agent takes)
  --page N    [channel] snapshot_page (default: the coordinator's default)
  --deadline S  give up waiting for the interface after S seconds (default 600)
  --build DIR the build to use (also $WGF_BENCH_BUILD)

Sets up a private PostgreSQL, the coordinator, a /15 pool and N keyed routers straight
into the database, then starts the real agent (userspace backend) on wireguard-go in a
network namespace, with no cache: its first sync is a snapshot from zero. Measures the
time until the interface holds exactly the desired set and until the database records
it applied, the pages it took (from the agent's log), and the peak RSS of the agent,
the coordinator and wireguard-go. A whole snapshot of 100,000 peers is about 10 MB
encoded, more than the 4 MiB envelope: before paging it could not be sent at all.

Exit status: 0 when the interface ended exactly equal to the desired set, 1 otherwise.
"""
import argparse
import calendar
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

NAME = "resync"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--peers", type=int)
    ap.add_argument("--page", type=int)
    ap.add_argument("--deadline", type=float, default=600)
    ap.add_argument("--build")
    args = ap.parse_args()
    n = args.peers or (5000 if args.quick else 100000)
    if os.geteuid() != 0:
        sys.exit("resync.py: needs root (network namespaces)")
    cleanup = B.Cleanup()
    build = B.find_build(args.build, ["coordinator/wgfleet-coordinator", "agent/wgfleet-agent"])
    tmp = B.tempdir(cleanup, "wgf-resync-")
    B.log(NAME, B.machine())
    pg = B.Postgres(cleanup, f"{tmp}/pg", True)
    # Adding a /15 pool inserts 131,070 addresses in one call: give it time.
    extra = "[database]\nstatement_timeout = 120s\n"
    extra += f"[channel]\nsnapshot_page = {args.page}\n" if args.page else ""
    coord = B.Coordinator(cleanup, build, tmp, pg.conninfo, extra=extra).start()
    wg = B.WireguardGo(cleanup, tmp)
    agent = B.Agent(cleanup, build, tmp, wg, coord, "vps1", "10.64.0.1/15",
                    extra="[log]\nlevel = debug\n")
    coord.expect(201, "POST", "/v1/servers", body={
        "name": "vps1", "endpoint": "192.0.2.1:51820", "pool": "10.64.0.0/15",
        "gateway": "10.64.0.1", "agent_key": agent.public_key})
    B.tenant(coord, "bench", n + 100)
    t0 = time.monotonic()
    B.add_routers(pg, "vps1", "bench", n, 0)
    B.log(NAME, f"{n} keyed routers in {time.monotonic() - t0:.1f} s")
    want = {bytes.fromhex(k[0]) for k in pg.sql(
        "SELECT encode(public_key, 'hex') FROM routers WHERE public_key IS NOT NULL")}
    peak = {"agent": 0, "coordinator": 0, "wireguard-go": 0}

    def sample():
        for name, pid in (("agent", agent.proc.pid), ("coordinator", coord.proc.pid),
                          ("wireguard-go", wg.proc.pid)):
            try:
                peak[name] = max(peak[name], B.proc_status(pid).get("VmHWM", 0))
            except OSError:
                pass

    start, start_wall = time.monotonic(), time.time()
    agent.start()
    on_vps = None
    deadline = start + args.deadline
    while time.monotonic() < deadline:
        sample()
        if on_vps is None and wg.n_peers() >= n:
            on_vps = time.monotonic() - start
        if on_vps is not None and pg.scalar(
                "SELECT applied_revision = revision FROM servers") == "t":
            break
        time.sleep(0.5)
    applied = time.monotonic() - start
    sample()
    got = set()
    for line in wg.get().split(b"\n"):
        if line.startswith(b"public_key="):
            got.add(bytes.fromhex(line[11:].decode()))
    with open(agent.log_path, "rb") as f:
        log = f.read()
    staged = log.count(b"New desired state")
    handed = None
    for line in log.split(b"\n"):
        if b"New desired state" in line:
            ts = line.split(b" ", 1)[0][3:].decode()
            handed = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
            handed += float("0" + ts[19:-1]) - start_wall
            break
    B.log(NAME, f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"peers {n}; page {args.page or 'default'}; whole snapshot handed to the "
          f"reconciler after {handed if handed is None else round(handed, 1)} s; "
          f"on the interface after "
          f"{on_vps if on_vps is None else round(on_vps, 1)} s; applied after "
          f"{applied:.1f} s; desired sets handed to the reconciler {staged}; "
          f"peak RSS KiB {peak}; interface == desired: {got == want} "
          f"({len(got)} vs {len(want)})")
    return 0 if got == want else 1


if __name__ == "__main__":
    B.run_main(main, NAME)
