#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""attacks: each attack of issue 11 beside two probes, against the probes' idle figures
from the same run (issue 11, item 6).

Usage: tests/bench/attacks.py [--quick] [--seconds S] [--only NAME,...] [--build DIR]
                              [--attacker-nice N]

  --quick        small counts, a few seconds a window, no verdict: exits 0 when every
                 attack ran and both probes were answered in every window (the smoke
                 test CI runs, tests/integration/test_bench_attacks_quick.py)
  --seconds S    length of each probe window (default 20; --quick 1.5)
  --only NAMES   run only these attacks (comma-separated names, as in the table)
  --build DIR    the build to use (also $WGF_BENCH_BUILD); default build/bench-channel
  --attacker-nice N  run the attackers at this nice value (default 0). On a real
                 deployment the attacker's CPU is on its own machines; here it shares
                 two cores with the coordinator and the probes, and N = 19 gives them
                 the CPU first while the attacker still takes all that is left (the
                 attackers' own counts say how hard it pushed).

Environment: WGF_PG_FAST=1 turns PostgreSQL's durability off (default: durable).

Sets up, in a temporary directory: a private PostgreSQL, the coordinator (HTTP on
127.0.0.1, the agent channel on tcp://127.0.0.1 so that raw connections can reach it),
a tenant with 200 keyed routers on 4 servers played by tests/tools/fleetsim, a fifth
server whose agent key the attacker holds (a compromised agent) and a key no server
has (a stranger).

Two probes run in this process, one tick every 200 ms, sequentially:
  - HTTP probe: GET /v1/routers?limit=50 with the tenant's key, timed (round trip);
  - agent probe: PUT /v1/routers/{id}/public-key on a random router of the simulated
    servers; the figure is change committed (the database's changes.committed_at) ->
    the SyncReply carrying it arrived at fleetsim's agent (fleetsim's clock), as
    fanout.py measures it.

For each attack: a window of S seconds with no attack (its idle baseline), then the
attacker is started in a process of its own (so it does not share this interpreter),
the probes run S seconds once it says it is in place, and it is stopped. Ratios are
each attack window's p99 over the idle window just before it; the one-minute load
average is printed beside each window. Attacks (all to 127.0.0.1; the connection
attacks come from other loopback source addresses, 127.0.x.y, since both services cap
connections per address and the agents and probes use 127.0.0.1):

  forged-key flood   chanprobe --count, reports signed by a key no server has
  replayed envelope  chanprobe --count --replay, one sync sealed once, sent N times,
                     by the compromised agent
  partial holders    raw TCP pipes that finish nng's handshake, announce a 3 MiB
                     message and send 256 KiB of it, then hold
  idle pipes         1,000 raw TCP pipes that finish the handshake and send nothing
  parked polls       chanprobe --count 10000 hint REV by the compromised agent (its
                     revision and epoch are current, so each poll parks)
  body senders       2,000 HTTP connections, each a POST with Content-Length 60000 and
                     a wrong key whose body trickles in (10 bytes a second); one that
                     is closed is opened again
  wrong-key flood    GET /v1/routers with a wrong key, back to back on one kept-alive
                     connection from 127.0.0.2

Target (full run): each probe's p99 during an attack <= 3x its idle p99.
Exit status: 0 done and (full run) every target met, 2 a target missed, 1 a step failed.
The soft limit on open files is raised to min(hard limit, 16384) at start (the
coordinator inherits it): the connection attacks need more than the usual 1,024.
"""
import argparse
import base64
import http.client
import json
import os
import random
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

NAME = "attacks"
TARGET_RATIO = 3.0
TICK_S = 0.2
WRONG_KEY = "wgf_" + "a" * 16 + "_" + "A" * 43
SP_REQ0 = b"\x00SP\x00\x00\x30\x00\x00"
N_SIM = 4
ROUTERS_PER_SERVER = 50

# name -> (full count, quick count); the count's meaning is per attack (see above).
ATTACKS = [
    ("forged-key flood", 3000, 200),
    ("replayed envelope", 3000, 200),
    ("partial holders", 200, 10),
    ("idle pipes", 1000, 50),
    ("parked polls", 10000, 300),
    ("body senders", 2000, 100),
    ("wrong-key flood", 200000, 2000),
]


# ---- the attackers (run as `attacks.py --attacker KIND`, a process each) ----

def src_addr(block, i, per):
    """Loopback source address number i // per in 127.0.<block>.x (x from 1)."""
    return f"127.0.{block}.{i // per + 1}"


def stop_requested(deadline):
    """True once the parent wrote a line (or closed stdin), or at the hard deadline."""
    import select
    if time.monotonic() > deadline:
        return True
    r, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(r)


def wait_stop(deadline, step=0.2):
    while not stop_requested(deadline):
        time.sleep(step)


def attacker_chanprobe(a, deadline):
    """Runs chanprobe --count again and again until told to stop; sums its counts."""
    args = [a.chanprobe, "--url", a.url, "--coordinator", a.coordinator, "--key", a.key,
            "--timeout", "1000"]
    if a.server:
        args += ["--server", a.server]
    if a.epoch:
        args += ["--epoch", a.epoch]
    cmd = {"forged": ["--count", str(a.count), "report", "1"],
           "replay": ["--count", str(a.count), "--replay", "sync", "0"],
           "parked": ["--count", str(a.count), "hint", str(a.revision)]}[a.mode]
    tot = {"runs": 0, "sent": 0, "answered": 0}
    print("ready", flush=True)
    while not stop_requested(deadline):
        proc = subprocess.run(args + cmd, capture_output=True, text=True, timeout=60)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"chanprobe: {proc.stderr.strip()}")
        tot["runs"] += 1
        for line in proc.stdout.splitlines():
            f = line.split()
            k = "answer " + f[1] if f[0] == "answer" else f[0]
            tot[k] = tot.get(k, 0) + int(f[-1])
    return tot


def sp_connect(port, src):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    s.sendall(SP_REQ0)
    got = b""
    while len(got) < 8:
        chunk = s.recv(8 - len(got))
        if not chunk:
            break
        got += chunk
    return s, len(got) == 8


def attacker_pipes(a, deadline):
    """Raw channel pipes held open: idle (nothing after the handshake) or holding part
    of a 3 MiB message. Counts those the coordinator closed."""
    port = int(a.url.rsplit(":", 1)[1])
    socks, refused = [], 0
    for i in range(a.count):
        try:
            s, ok = sp_connect(port, src_addr(a.block, i, 15))
        except OSError:
            refused += 1
            continue
        if not ok:
            refused += 1
            s.close()
            continue
        if a.mode == "partial":
            try:
                s.sendall((3 << 20).to_bytes(8, "big") + b"\0" * (256 << 10))
            except OSError:
                refused += 1
                s.close()
                continue
        socks.append(s)
        if time.monotonic() > deadline:
            break
    print("ready", flush=True)
    wait_stop(deadline)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    return {"opened": len(socks), "refused_at_open": refused, "closed_by_coordinator": closed,
            "held_to_the_end": len(socks) - closed}


def attacker_bodies(a, deadline):
    """HTTP connections each sending a POST whose body trickles in; reopened when closed."""
    head = (b"POST /v1/routers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            b"\r\nAuthorization: Bearer " + WRONG_KEY.encode() + b"\r\nContent-Length: 60000"
            b"\r\n\r\n")
    sel = selectors.DefaultSelector()
    st = {"opened": 0, "closed_by_coordinator": 0, "answers": {}, "body_bytes": 0,
          "open_failed": 0, "closed_after_s": {"<1": 0, "1-9": 0, ">=9": 0}}
    conns = {}

    def open_one(i):
        s = socket.socket()
        try:
            s.bind((src_addr(a.block, i, 50), 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", a.port))
            s.sendall(head)
            s.setblocking(False)
        except OSError:
            st["open_failed"] += 1
            s.close()
            return
        conns[s.fileno()] = (s, i, time.monotonic())
        sel.register(s, selectors.EVENT_READ, i)
        st["opened"] += 1

    for i in range(a.count):
        open_one(i)
        if time.monotonic() > deadline:
            break
    print("ready", flush=True)
    next_send = time.monotonic()
    while not stop_requested(deadline):
        for key, _ in sel.select(timeout=0.1):
            s, i, opened = conns.pop(key.fd)
            sel.unregister(s)
            life = time.monotonic() - opened
            st["closed_after_s"]["<1" if life < 1 else "1-9" if life < 9 else ">=9"] += 1
            try:
                data = s.recv(200)
            except OSError:
                data = b""
            code = data[9:12].decode(errors="replace") if data.startswith(b"HTTP/") else "close"
            st["answers"][code] = st["answers"].get(code, 0) + 1
            st["closed_by_coordinator"] += 1
            s.close()
            if st["opened"] < 20 * a.count:  # bounded reopening
                open_one(i)
        if time.monotonic() >= next_send:
            next_send += 1.0
            for s, _, _ in list(conns.values()):
                try:
                    s.send(b"          ")
                    st["body_bytes"] += 10
                except OSError:
                    pass
    st["held_at_the_end"] = len(conns)
    for s, _, _ in conns.values():
        s.close()
    return st


def attacker_wrongkey(a, deadline):
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10,
                                      source_address=("127.0.0.2", 0))
    st = {"sent": 0, "answered": 0, "statuses": {}}
    print("ready", flush=True)
    while st["sent"] < a.count and not stop_requested(deadline):
        st["sent"] += 1
        try:
            conn.request("GET", "/v1/routers", headers={"Authorization": f"Bearer {WRONG_KEY}"})
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            continue
        st["answered"] += 1
        st["statuses"][str(resp.status)] = st["statuses"].get(str(resp.status), 0) + 1
    return st


def attacker_main(a):
    deadline = time.monotonic() + a.max_seconds
    fn = {"forged": attacker_chanprobe, "replay": attacker_chanprobe,
          "parked": attacker_chanprobe, "idle": attacker_pipes, "partial": attacker_pipes,
          "bodies": attacker_bodies, "wrongkey": attacker_wrongkey}[a.mode]
    res = fn(a, deadline)
    print("attack " + json.dumps(res, sort_keys=True), flush=True)


# ---- the benchmark ----

def setrlimit_nofile(want=16384):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = want if hard == resource.RLIM_INFINITY else min(hard, want)
    if soft < new:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def agent_key(build, workdir, name):
    conf = os.path.join(workdir, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"[agent]\nstate_directory = {workdir}/{name}\n")
    pub = B.run([os.path.join(build, "agent", "wgfleet-agent"), "--config", conf,
                 "init"]).stdout.strip()
    return pub, os.path.join(workdir, name, "signing.key")


def registry_size(coord):
    m = re.findall(r'msg="Agent registry loaded".*?servers=(\d+)', open(coord.log_path).read())
    return int(m[-1]) if m else 0


class Attacker:
    def __init__(self, tmp, name, args, timeout, nice=0):
        self.log = open(os.path.join(tmp, f"attacker-{name.replace(' ', '-')}.log"), "w")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--attacker",
                                      *args, "--max-seconds", str(timeout)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True,
                                     preexec_fn=(lambda: os.nice(nice)) if nice else None)
        self.timeout = timeout

    def wait_ready(self, timeout):
        B.wait_ready_line(self.proc, timeout, "an attacker was not in place")

    def stop(self):
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        try:
            out, _ = self.proc.communicate(timeout=self.timeout + 30)
        except subprocess.TimeoutExpired:
            B.stop_process(self.proc)
            raise B.Failure("an attacker did not stop")
        self.log.close()
        for line in out.splitlines():
            if line.startswith("attack "):
                return json.loads(line[len("attack "):])
        raise B.Failure(f"an attacker exited {self.proc.returncode} without its counts")


class Probe:
    """GET /v1/routers and PUT public-key, one of each a tick, in this thread."""

    def __init__(self, coord, key, routers):
        self.coord, self.key, self.routers = coord, key, routers
        self.conn = None
        self.puts = {}  # public key -> window name

    def request(self, method, path, body=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.coord.port, timeout=15)
            headers = {"Authorization": f"Bearer {self.key}"}
            data = None
            if body is not None:
                data = json.dumps(body)
                headers["Content-Type"] = "application/json"
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                resp.read()
                return resp.status
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    return 0

    def window(self, name, seconds):
        get_ms, statuses = [], {}
        load0 = os.getloadavg()[0]
        meter = B.ProcMeter({"coordinator": self.coord.proc.pid})
        t0 = time.monotonic()
        n = int(seconds / TICK_S)
        for i in range(n):
            wait = t0 + i * TICK_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            a = time.perf_counter()
            s = self.request("GET", "/v1/routers?limit=50")
            get_ms.append((time.perf_counter() - a) * 1000)
            statuses[f"GET {s}"] = statuses.get(f"GET {s}", 0) + 1
            key = base64.b64encode(os.urandom(32)).decode()
            s = self.request("PUT", f"/v1/routers/{random.choice(self.routers)}/public-key",
                             {"public_key": key})
            statuses[f"PUT {s}"] = statuses.get(f"PUT {s}", 0) + 1
            if s == 200:
                self.puts[key] = name
        cpu = meter.per(1)["coordinator"]
        return {"get_ms": get_ms, "statuses": statuses, "ticks": n,
                "load": [round(load0, 2), round(os.getloadavg()[0], 2)],
                "coordinator_cpu_ms": cpu["cpu_ms"],
                "coordinator_kib": B.proc_status(self.coord.proc.pid)}


def attacker_args(kind, count, coord, stranger, evil, evil_rev, epoch, chanprobe):
    chan = ["--url", coord.channel_url, "--coordinator", coord.public_key,
            "--chanprobe", chanprobe, "--count", str(count)]
    return {
        "forged-key flood": ["forged", *chan, "--key", stranger, "--server", "stranger"],
        "replayed envelope": ["replay", *chan, "--key", evil[1], "--server", "evil"],
        "partial holders": ["partial", *chan, "--block", "10"],
        "idle pipes": ["idle", *chan, "--block", "20"],
        "parked polls": ["parked", *chan, "--key", evil[1], "--server", "evil",
                         "--revision", str(evil_rev), "--epoch", epoch],
        "body senders": ["bodies", "--port", str(coord.port), "--count", str(count),
                         "--block", "30"],
        "wrong-key flood": ["wrongkey", "--port", str(coord.port), "--count", str(count)],
    }[kind]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--only")
    ap.add_argument("--build")
    ap.add_argument("--attacker-nice", type=int, default=0)
    args = ap.parse_args()
    q = args.quick
    seconds = args.seconds or (1.5 if q else 20.0)
    attacks = [(n, qc if q else fc) for n, fc, qc in ATTACKS]
    if args.only:
        want = [w.strip() for w in args.only.split(",")]
        unknown = set(want) - {n for n, _ in attacks}
        if unknown:
            sys.exit(f"attacks.py: unknown attacks {sorted(unknown)}")
        attacks = [(n, c) for n, c in attacks if n in want]
    nofile = setrlimit_nofile()

    cleanup = B.Cleanup()
    build = B.find_build(args.build, ["coordinator/wgfleet-coordinator", "agent/wgfleet-agent",
                                      "tests/tools/fleetsim", "tests/tools/chanprobe"])
    chanprobe = os.path.join(build, "tests", "tools", "chanprobe")
    tmp = B.tempdir(cleanup, "wgf-att-")
    fast = os.environ.get("WGF_PG_FAST") == "1"
    B.log(NAME, f"PostgreSQL in {tmp}/pg ({'fast' if fast else 'durable'}); "
          f"open files soft limit {nofile}")
    pg = B.Postgres(cleanup, f"{tmp}/pg", fast)
    coord = B.Coordinator(cleanup, build, tmp, pg.conninfo)
    with open(coord.config) as f:
        conf = f.read()
    conf = conf.replace(f"listen = {coord.channel_url}\n", "listen = tcp://127.0.0.1:0\n")
    with open(coord.config, "w") as f:
        f.write(conf)
    coord.start()
    m = B.wait_for("the channel's address", lambda: re.search(
        r'msg="Listening for agents".*?url=(tcp://127\.0\.0\.1:\d+)',
        open(coord.log_path).read()), 10)
    coord.channel_url = m.group(1)
    tkey = B.tenant(coord, "bench", 100000)
    keys = B.fleetsim_keys(build, N_SIM)
    B.register_sim_servers(coord, keys, ROUTERS_PER_SERVER)
    evil = agent_key(build, tmp, "evil")
    _, stranger = agent_key(build, tmp, "stranger")
    coord.expect(201, "POST", "/v1/servers", body={
        "name": "evil", "endpoint": "evil.example.net:51820", "pool": "10.200.0.0/24",
        "gateway": "10.200.0.1", "agent_key": evil[0]})
    made = B.add_routers(pg, "sim%", "bench", ROUTERS_PER_SERVER, 0)
    routers = [r[0] for r in pg.sql("SELECT id FROM routers")]
    B.wait_for("the registry to hold 5 servers", lambda: registry_size(coord) >= N_SIM + 1, 20)
    evil_rev = int(pg.scalar("SELECT revision FROM servers WHERE name = 'evil'"))
    epoch = pg.scalar("SELECT encode(wgf_epoch(), 'hex')")
    sim = B.Fleetsim(cleanup, build, tmp, coord, N_SIM)
    sim.wait_ready(60)
    B.log(NAME, f"{made} routers on {N_SIM} fleetsim servers; channel {coord.channel_url}")

    probe = Probe(coord, tkey, routers)
    probe.window("warm-up", min(seconds, 2.0))
    windows = []
    for name, count in attacks:
        B.log(NAME, f"{name}: idle window ({os.getloadavg()[0]:.2f} load)")
        idle = probe.window(f"{name}/idle", seconds)
        att = Attacker(tmp, name, attacker_args(name, count, coord, stranger, evil, evil_rev,
                                                epoch, chanprobe), seconds + 120,
                       args.attacker_nice)
        try:
            att.wait_ready(90)
            B.log(NAME, f"{name}: attack window")
            during = probe.window(f"{name}/attack", seconds)
        finally:
            counts = att.stop()
        windows.append({"attack": name, "count": count, "idle": idle, "during": during,
                        "attacker": counts})
        time.sleep(1.0 if q else 3.0)  # let the coordinator close what the attacker left

    B.wait_for("every server's change applied", lambda: pg.scalar(
        "SELECT count(*) FROM servers WHERE name LIKE 'sim%' AND "
        "applied_revision <> revision") == "0", 60, 0.2)
    rc_sim = sim.stop()
    agents = sim.results()
    rows = pg.sql("SELECT s.name, c.revision, extract(epoch FROM c.committed_at) * 1e6 "
                  "FROM changes c JOIN servers s ON s.id = c.server_id")
    committed = {(r[0], int(r[1])): B.timestamp_us(r[2]) for r in rows}
    recv = {}
    for a in agents.values():
        for rev, op, key, t_recv, _ in a["changes"]:
            # The upsert of a key this probe put (its remove comes with a later PUT).
            w = probe.puts.get(key) if op == "upsert" else None
            c = committed.get((a["server"], rev))
            if w and c:
                recv.setdefault(w, []).append((t_recv - c) / 1000)

    problems = []
    if rc_sim != 0:
        problems.append(f"fleetsim exited {rc_sim}")
    if sim.summary and sim.summary.get("foreign", "0") != "0":
        problems.append(f"fleetsim saw foreign keys: {sim.summary}")
    table = []
    all_met = True
    for w in windows:
        row = {"attack": w["attack"], "count": w["count"], "attacker": w["attacker"]}
        for phase in ("idle", "during"):
            p = w[phase]
            ok_gets = p["statuses"].get("GET 200", 0)
            if ok_gets == 0:
                problems.append(f"{w['attack']} ({phase}): the HTTP probe got no answer 200")
            agent = recv.get(f"{w['attack']}/{'idle' if phase == 'idle' else 'attack'}", [])
            if not agent:
                problems.append(f"{w['attack']} ({phase}): no change reached an agent")
            row[phase] = {"http_ms": B.summary_ms(p["get_ms"]), "agent_ms": B.summary_ms(agent),
                          "statuses": p["statuses"], "load": p["load"],
                          "coordinator_cpu_ms": p["coordinator_cpu_ms"],
                          "coordinator_rss_kib": p["coordinator_kib"]["VmRSS"]}
        for k in ("http_ms", "agent_ms"):
            i, d = row["idle"][k].get("p99"), row["during"][k].get("p99")
            row[k + "_ratio"] = round(d / i, 2) if i and d is not None else None
            met = row[k + "_ratio"] is not None and row[k + "_ratio"] <= TARGET_RATIO
            row[k + "_met"] = met
            all_met = all_met and met
        table.append(row)

    res = {"machine": B.machine(), "quick": q, "seconds_per_window": seconds,
           "tick_s": TICK_S, "durability": "fast" if fast else "durable",
           "open_files_soft_limit": nofile, "attacker_nice": args.attacker_nice,
           "fleetsim": sim.summary, "attacks": table,
           "problems": problems}
    path = B.results_path(build, NAME, q)
    raw = dict(res, raw={w["attack"]: {"idle_get_ms": w["idle"]["get_ms"],
                                       "attack_get_ms": w["during"]["get_ms"]}
                         for w in windows}, agent_ms=recv)
    B.write_json(path, raw)

    print("wgfleet attack benchmark: each attack beside an HTTP probe and an agent probe")
    print(f"machine   {res['machine']}")
    print(f"run       {seconds:g} s windows, a probe tick every {TICK_S * 1000:g} ms, "
          f"{res['durability']} PostgreSQL, {N_SIM} fleetsim agents, {made} routers, "
          f"attackers at nice {args.attacker_nice}")
    print(f"{'attack':18s} {'load idle/att':>13s} {'HTTP p99 idle':>13s} {'att':>8s} "
          f"{'ratio':>6s} {'agent p99 idle':>14s} {'att':>8s} {'ratio':>6s}  attacker")
    for r in table:
        i, d = r["idle"], r["during"]
        print(f"{r['attack']:18s} {i['load'][0]:>6.2f}/{d['load'][0]:<6.2f} "
              f"{i['http_ms'].get('p99', 0):>13g} {d['http_ms'].get('p99', 0):>8g} "
              f"{r['http_ms_ratio'] or 0:>6.2f} {i['agent_ms'].get('p99', 0):>14g} "
              f"{d['agent_ms'].get('p99', 0):>8g} {r['agent_ms_ratio'] or 0:>6.2f}  "
              f"{json.dumps(r['attacker'], sort_keys=True)}")
    for p in problems:
        print(f"problem: {p}")
    print(f"raw: {os.path.relpath(path, B.TOP)}")
    print("result " + json.dumps(res, sort_keys=True))
    if problems:
        print("FAILED: a probe went unanswered or a step failed")
        return 1
    if q:
        print("quick run: no timing verdict")
        return 0
    for r in table:
        print(f"target {r['attack']}: HTTP p99 {r['http_ms_ratio']}x idle "
              f"({'met' if r['http_ms_met'] else 'NOT met'}), agent p99 {r['agent_ms_ratio']}x "
              f"idle ({'met' if r['agent_ms_met'] else 'NOT met'})")
    return 0 if all_met else 2


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--attacker":
        ap = argparse.ArgumentParser()
        ap.add_argument("--attacker", dest="ignored", action="store_true")
        ap.add_argument("mode")
        ap.add_argument("--url")
        ap.add_argument("--coordinator")
        ap.add_argument("--chanprobe")
        ap.add_argument("--key")
        ap.add_argument("--server")
        ap.add_argument("--revision", type=int, default=0)
        ap.add_argument("--epoch")
        ap.add_argument("--count", type=int, required=True)
        ap.add_argument("--block", type=int, default=10)
        ap.add_argument("--port", type=int)
        ap.add_argument("--max-seconds", type=float, default=120)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        attacker_main(ap.parse_args())
    else:
        B.run_main(main, "attacks.py")
