#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""footprint: memory and idle CPU of the agent and the coordinator (issue 6, item 4).

Usage (as root): tests/bench/footprint.py [--quick] [--peers N] [--agents N]
                                          [--idle S] [--build DIR]

  --quick             1,000 peers, 50 simulated agents, 5 s idle windows, no verdict:
                      the smoke test CI runs
                      (tests/integration/test_bench_channel_quick.py)
  --peers N           routers (peers) of the real agent's server (default 10000)
  --agents N          simulated agents (tests/tools/fleetsim) connected in phase B
                      (default 1000)
  --idle S            length of each idle window in seconds (default 60)
  --db-connections N  the coordinator's [database] connections (default: its default)
  --build DIR         the build to use (also $WGF_BENCH_BUILD); default
                      build/bench-channel

Environment: WGF_PG_FAST=1 turns PostgreSQL's durability off (default: durable).

Sets up, in a temporary directory: a private PostgreSQL, the coordinator (HTTP on
127.0.0.1, the agent channel on an ipc:// socket), wireguard-go in a network namespace
of its own and the real wgfleet-agent in it with the default intervals (reconcile 30 s,
monitor 5 s, resync 30 s) and a server whose N routers (keyed, put straight into the
database) reach the agent as one snapshot over the channel; the agent applies them to
wireguard-go. Once the interface lists N peers and the server's applied revision is
its revision:

  phase A  the real agent alone: an idle window; CPU (utime + stime from
           /proc/PID/stat, all threads) of the agent, the coordinator, wireguard-go and
           PostgreSQL (the postmaster and its children); RSS (VmRSS, VmHWM from
           /proc/PID/status) of the agent and the coordinator;
  phase B  fleetsim's agents connected as well (each long-polls and resyncs every 30 s,
           as the real agent): the same window and readings again.

Targets: agent RSS <= 10 MiB with 10,000 peers; coordinator RSS <= 64 MiB with 1,000
simulated agents connected; idle CPU of both ~0 (reported as a percentage of one CPU).

Exit status: 0 done (and, in a full run, both memory targets met), 2 a target missed,
1 failure.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

AGENT_TARGET_KIB = 10 * 1024
COORD_TARGET_KIB = 64 * 1024
NAME = "footprint"


def idle_window(seconds, pids):
    """CPU seconds of each named process (a pid or a function returning pids) over a window."""
    def ticks(p):
        ids = p() if callable(p) else [p]
        total = 0
        for pid in ids:
            try:
                total += B.cpu_ticks(pid)
            except OSError:
                pass
        return total
    before = {name: ticks(p) for name, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    out = {}
    for name, p in pids.items():
        cpu_s = (ticks(p) - before[name]) / B.CLK_TCK
        out[name] = {"cpu_s": round(cpu_s, 3), "pct_of_one_cpu": round(100 * cpu_s / wall, 3)}
    return out, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--peers", type=int)
    ap.add_argument("--agents", type=int)
    ap.add_argument("--idle", type=float)
    ap.add_argument("--build")
    ap.add_argument("--db-connections", type=int)
    args = ap.parse_args()
    q = args.quick
    n_peers = args.peers or (1000 if q else 10000)
    n_agents = args.agents or (50 if q else 1000)
    idle = args.idle or (5.0 if q else 60.0)
    if os.geteuid() != 0:
        sys.exit("footprint.py: needs root (network namespaces)")
    if n_peers > 16000:
        sys.exit("footprint.py: at most 16000 peers (a /18 pool)")

    cleanup = B.Cleanup()
    build = B.find_build(args.build, ["coordinator/wgfleet-coordinator", "agent/wgfleet-agent",
                                      "tests/tools/fleetsim"])
    tmp = B.tempdir(cleanup, "wgf-foot-")
    fast = os.environ.get("WGF_PG_FAST") == "1"
    B.log(NAME, f"PostgreSQL in {tmp}/pg ({'fast' if fast else 'durable'})")
    pg = B.Postgres(cleanup, f"{tmp}/pg", fast)
    coord = B.Coordinator(cleanup, build, tmp, pg.conninfo,
                          db_connections=args.db_connections).start()
    wg = B.WireguardGo(cleanup, tmp)
    agent = B.Agent(cleanup, build, tmp, wg, coord, "vps1", "10.64.0.1/18")
    coord.expect(201, "POST", "/v1/servers", body={
        "name": "vps1", "endpoint": "192.0.2.1:51820", "pool": "10.64.0.0/18",
        "gateway": "10.64.0.1", "agent_key": agent.public_key})
    B.tenant(coord, "bench", n_peers + 100)
    made = B.add_routers(pg, "vps1", "bench", n_peers, 0)
    B.log(NAME, f"{made} keyed routers on vps1; starting the agent")
    t = time.monotonic()
    agent.start()
    B.wait_for(f"{n_peers} peers on the interface", lambda: wg.n_peers() >= n_peers, 600, 1.0)
    B.wait_for("the agent's report of revision 1", lambda: pg.scalar(
        "SELECT applied_revision = revision FROM servers WHERE name = 'vps1'") == "t", 120, 0.5)
    apply_s = time.monotonic() - t
    B.log(NAME, f"the agent applied {n_peers} peers {apply_s:.1f} s after its start; "
          f"settling 5 s")
    time.sleep(5)

    def procs():
        return {"agent": agent.proc.pid, "coordinator": coord.proc.pid,
                "wireguard-go": wg.proc.pid, "postgres": pg.pids}

    B.log(NAME, f"phase A: the real agent alone, {idle:g} s idle")
    cpu_a, wall_a = idle_window(idle, procs())
    agent_a = B.proc_status(agent.proc.pid)
    coord_a = B.proc_status(coord.proc.pid)

    keys = B.fleetsim_keys(build, n_agents)
    B.register_sim_servers(coord, keys, 0, base="10.128.0.0")
    sim = B.Fleetsim(cleanup, build, tmp, coord, n_agents)
    sim.wait_ready(120 + n_agents // 10)
    B.log(NAME, f"phase B: {n_agents} simulated agents connected too; settling 5 s, then "
          f"{idle:g} s idle")
    time.sleep(5)
    p = procs()
    p["fleetsim"] = sim.proc.pid
    cpu_b, wall_b = idle_window(idle, p)
    agent_b = B.proc_status(agent.proc.pid)
    coord_b = B.proc_status(coord.proc.pid)
    rc = sim.stop()
    peers_end = wg.n_peers()

    res = {
        "machine": B.machine(), "db_connections": coord.db_connections,
        "peers": n_peers, "sim_agents": n_agents, "idle_s": idle,
        "durability": "fast" if fast else "durable", "agent_apply_s": round(apply_s, 1),
        "peers_on_interface": peers_end,
        "phase_a": {"cpu": cpu_a, "wall_s": round(wall_a, 2), "agent_kib": agent_a,
                    "coordinator_kib": coord_a},
        "phase_b": {"cpu": cpu_b, "wall_s": round(wall_b, 2), "agent_kib": agent_b,
                    "coordinator_kib": coord_b, "fleetsim": sim.summary},
    }
    path = B.results_path(build, NAME, q)
    B.write_json(path, res)

    agent_hwm = max(agent_a["VmHWM"], agent_b["VmHWM"])
    agent_rss = agent_b["VmRSS"]
    coord_rss, coord_hwm = coord_b["VmRSS"], coord_b["VmHWM"]
    print("wgfleet footprint benchmark: RSS and idle CPU of the agent and the coordinator")
    print(f"machine   {res['machine']}")
    print(f"run       {n_peers} peers on the real agent (applied {apply_s:.1f} s after its "
          f"start), {n_agents} simulated agents in phase B, {idle:g} s windows, "
          f"{res['durability']} PostgreSQL, "
          f"coordinator [database] connections = {coord.db_connections}")
    print(f"agent       VmRSS {agent_a['VmRSS']} KiB (A) {agent_b['VmRSS']} KiB (B), "
          f"VmHWM {agent_hwm} KiB; of VmRSS (B): RssAnon {agent_b.get('RssAnon')} KiB, "
          f"RssFile {agent_b.get('RssFile')} KiB")
    print(f"coordinator VmRSS {coord_a['VmRSS']} KiB (A, 1 agent) {coord_rss} KiB "
          f"(B, {n_agents + 1} agents), VmHWM {coord_hwm} KiB; of VmRSS (B): RssAnon "
          f"{coord_b.get('RssAnon')} KiB, RssFile {coord_b.get('RssFile')} KiB")
    for label, cpu, wall in (("A", cpu_a, wall_a), ("B", cpu_b, wall_b)):
        print(f"idle CPU {label} ({wall:.1f} s): " + ", ".join(
            f"{k} {v['cpu_s']:g} s ({v['pct_of_one_cpu']:g}%)" for k, v in cpu.items()))
    print(f"fleetsim: {sim.summary}")
    print(f"raw: {os.path.relpath(path, B.TOP)}")
    print("result " + json.dumps(res, sort_keys=True))
    if rc != 0 or peers_end != n_peers:
        print(f"FAILED: fleetsim exited {rc}; {peers_end} peers on the interface")
        return 1
    if q:
        print("quick run: no verdict")
        return 0
    a_ok = agent_hwm <= AGENT_TARGET_KIB
    c_ok = coord_hwm <= COORD_TARGET_KIB
    print(f"target agent RSS <= 10 MiB with {n_peers} peers: {'met' if a_ok else 'NOT met'}, "
          f"VmHWM {agent_hwm} KiB = {agent_hwm / 1024:.2f} MiB "
          f"({agent_hwm / AGENT_TARGET_KIB:.2f}x), VmRSS {agent_rss} KiB")
    print(f"target coordinator RSS <= 64 MiB with {n_agents} agents: "
          f"{'met' if c_ok else 'NOT met'}, VmHWM {coord_hwm} KiB = {coord_hwm / 1024:.2f} MiB "
          f"({coord_hwm / COORD_TARGET_KIB:.2f}x), VmRSS {coord_rss} KiB")
    return 0 if a_ok and c_ok else 2


if __name__ == "__main__":
    B.run_main(main, "footprint.py")
