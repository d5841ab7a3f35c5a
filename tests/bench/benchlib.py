# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Shared pieces of the channel benchmarks (propagation.py, footprint.py, fanout.py).

Everything a benchmark starts is registered with a Cleanup stack, undone in reverse
order on exit, on an exception and on SIGINT/SIGTERM: processes are stopped by their own
pid (SIGTERM, then SIGKILL), namespaces deleted, the private PostgreSQL wiped and the
temporary directory removed. Traffic goes only to 127.0.0.1, ipc:// sockets in the
temporary directory, the database's unix socket and the UAPI socket of a wireguard-go
in a namespace of its own. Every wait has a deadline.
"""
import atexit
import base64
import bisect
import http.client
import json
import os
import platform
import re
import select
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PG_SH = os.path.join(TOP, "deploy", "pg.sh")
SOCKET_DIR = "/var/run/wireguard"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(name, msg):
    print(f"{name}: {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    """A benchmark step failed outright (exit status 1)."""


def run(args, timeout=120, check=True, **kw):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise Failure(f"{shlex.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


# ---- cleanup ----

class Cleanup:
    """A stack of undo actions run once, in reverse, at exit or on SIGINT/SIGTERM."""

    def __init__(self):
        self.actions = []
        self.done = False
        atexit.register(self.run)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        raise SystemExit(128 + signum)

    def push(self, fn, *args):
        self.actions.append((fn, args))

    def run(self):
        if self.done:
            return
        self.done = True
        while self.actions:
            fn, args = self.actions.pop()
            try:
                fn(*args)
            except Exception as e:  # keep undoing the rest
                print(f"cleanup: {e}", file=sys.stderr)


def stop_process(proc, timeout=10, group=False):
    """SIGTERM to the process (or its own process group), then SIGKILL; waits for it."""
    if proc is None or proc.poll() is not None:
        return
    send = (lambda s: os.killpg(proc.pid, s)) if group else proc.send_signal
    try:
        send(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


# Logs of a failed run (or of every run with WGF_BENCH_KEEP_LOGS=1) are copied to
# <build>/bench-results/<temporary directory's name>-logs before the directory goes.
STATE = {"keep_logs": os.environ.get("WGF_BENCH_KEEP_LOGS") == "1", "results": None}


def _save_logs(d):
    if not STATE["keep_logs"] or not STATE["results"]:
        return
    dest = os.path.join(STATE["results"], os.path.basename(d) + "-logs")
    os.makedirs(dest, exist_ok=True)
    for name in os.listdir(d):
        if name.endswith((".log", ".out", ".conf")):
            shutil.copy(os.path.join(d, name), dest)
    print(f"logs kept in {os.path.relpath(dest, TOP)}", file=sys.stderr)


def tempdir(cleanup, prefix):
    # Short and under /tmp: unix socket paths are limited to 107 bytes.
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    cleanup.push(shutil.rmtree, d, True)
    cleanup.push(_save_logs, d)
    return d


def run_main(main, name):
    """Runs a benchmark's main(): exits with its status, 1 on a Failure; a failed run
    keeps its logs."""
    try:
        rc = main()
    except Failure as e:
        print(f"{name}: {e}", file=sys.stderr)
        rc = 1
    if rc == 1:
        STATE["keep_logs"] = True
    sys.exit(rc)


# ---- build ----

def find_build(arg, targets):
    """The build directory: --build, $WGF_BENCH_BUILD, or build/bench-channel, built now."""
    build = arg or os.environ.get("WGF_BENCH_BUILD")
    if not build:
        build = os.path.join(TOP, "build", "bench-channel")
        if not os.path.exists(os.path.join(build, "build.ninja")):
            log("bench", f"configuring {build} (release)")
            run(["meson", "setup", build, "--buildtype=release"], timeout=600)
        run(["ninja", "-C", build] + targets, timeout=1200)
    build = os.path.abspath(build)
    STATE["results"] = os.path.join(build, "bench-results")
    for t in targets:
        if not os.access(os.path.join(build, t), os.X_OK):
            raise Failure(f"{os.path.join(build, t)} is not built")
    return build


# ---- PostgreSQL ----

class Postgres:
    def __init__(self, cleanup, directory, fast):
        env = dict(os.environ, WGF_PG_FAST="1" if fast else "0")
        cleanup.push(run, ["bash", PG_SH, "wipe", directory], 120, False)
        proc = run(["bash", PG_SH, "start", directory], env=env, timeout=180)
        self.conninfo = proc.stdout.strip().splitlines()[-1]
        self.dir = directory
        self.fast = fast

    def sql(self, query, timeout=300):
        """Runs fixed benchmark SQL; returns the rows split on '|'."""
        proc = run(["psql", self.conninfo, "-X", "-v", "ON_ERROR_STOP=1", "-Atq", "-c", query],
                   timeout=timeout)
        return [line.split("|") for line in proc.stdout.splitlines()]

    def scalar(self, query):
        rows = self.sql(query)
        return rows[0][0] if rows else None

    def postmaster_pid(self):
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            return int(f.readline())

    def pids(self):
        """The postmaster and every process it forked (the backends and helpers)."""
        root = self.postmaster_pid()
        out = [root]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == root:
                        out.append(int(entry))
                except OSError:
                    pass
        return out


# ---- the coordinator ----

class Coordinator:
    """wgfleet-coordinator on 127.0.0.1 (a port the kernel picks) with an ipc:// channel,
    or with channel="tcp" a tcp:// one on 127.0.0.1 (a port the kernel picks, read from
    the log once started). channel_settings: {name: value} added to [channel]."""

    def __init__(self, cleanup, build, workdir, conninfo, extra="", db_connections=None,
                 channel="ipc", channel_settings=None):
        self.bin = os.path.join(build, "coordinator", "wgfleet-coordinator")
        self.workdir = workdir
        self.channel = channel
        if channel == "tcp":
            self.channel_url = "tcp://127.0.0.1:0"
        elif channel == "ipc":
            self.channel_url = f"ipc://{workdir}/channel.sock"
        else:
            raise ValueError(f"channel: ipc or tcp, not {channel!r}")
        chan_extra = "".join(f"{k} = {v}\n" for k, v in (channel_settings or {}).items())
        secret = os.path.join(workdir, "api-key.secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
        os.close(fd)
        self.config = os.path.join(workdir, "coordinator.conf")
        with open(self.config, "w") as f:
            conns = f"connections = {db_connections}\n" if db_connections else ""
            f.write(f"[database]\nconninfo = {conninfo}\n{conns}[http]\nlisten = 127.0.0.1:0\n"
                    f"[channel]\nlisten = {self.channel_url}\n{chan_extra}"
                    f"signing_key_file = {workdir}/coordinator.key\n"
                    f"[api]\nkey_hash_secret_file = {secret}\n{extra}")
        self.cli("migrate")
        self.public_key = self.cli("channel-key").stdout.strip()
        self.admin_key = self.cli("create-admin-key").stdout.strip()
        dump = self.cli("dump-config").stdout
        m = re.search(r"^connections = (\d+)", dump, re.M)
        self.db_connections = int(m.group(1)) if m else None
        self.log_path = os.path.join(workdir, "coordinator.log")
        self.proc = None
        self.port = None
        self.conn = None
        cleanup.push(self.stop)

    def cli(self, *args):
        return run([self.bin, "--config", self.config, *args])

    def start(self, timeout=20):
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.bin, "--config", self.config, "serve"],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = open(self.log_path).read()
            m = re.search(r"msg=Listening .*port=(\d+)", text)
            if m:
                self.port = int(m.group(1))
                if self.channel == "tcp":
                    u = re.search(r'msg="Listening for agents".*?url=(tcp://127\.0\.0\.1:\d+)',
                                  text)
                    if not u:
                        raise Failure("the coordinator did not log its channel's address")
                    self.channel_url = u.group(1)
                return self
            if self.proc.poll() is not None:
                raise Failure(f"the coordinator exited: {open(self.log_path).read()[-2000:]}")
            time.sleep(0.02)
        raise Failure(f"the coordinator did not listen within {timeout} s")

    def stop(self):
        stop_process(self.proc)
        if self.proc:
            self.logf.close()

    def request(self, method, path, key=None, body=None, timeout=30):
        """One HTTP request on a kept-alive connection: (status, parsed JSON or text)."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            data = None
            if body is not None:
                data = json.dumps(body)
                headers["Content-Type"] = "application/json"
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                text = resp.read().decode()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        ctype = resp.getheader("Content-Type", "")
        return resp.status, json.loads(text) if ctype.startswith("application/json") else text

    def expect(self, status, method, path, key=None, body=None):
        got, payload = self.request(method, path, key or self.admin_key, body)
        if got != status:
            raise Failure(f"{method} {path}: expected {status}, got {got}: {payload}")
        return payload


def tenant(coord, slug, capacity):
    """A tenant whose quota and rates a run cannot reach; returns its key."""
    coord.expect(201, "POST", "/v1/tenants", body={
        "slug": slug, "name": slug, "router_quota": capacity,
        "reservations_per_hour": capacity, "key_changes_per_hour": 4 * capacity,
        "router_key_changes_per_hour": 1000})
    return coord.expect(201, "POST", f"/v1/tenants/{slug}/keys", body={"label": "bench"})["key"]


def add_routers(pg, server_like, tenant_slug, per_server, pending, keepalive=25):
    """Routers straight into the database (setup speed): per_server on each server whose
    name is LIKE server_like, taking that server's lowest free addresses; `pending` of
    them, picked at random, have no key yet (the API submits theirs), the others have a
    random key and status vps_ready as if their agent had long applied them. Every
    server's revision becomes 1, as if one change had made all that. Returns the count."""
    pg.sql(f"""
BEGIN;
CREATE TEMP TABLE plan ON COMMIT DROP AS
WITH addr AS (
	SELECT p.server_id, p.ip, row_number() OVER (PARTITION BY p.server_id ORDER BY p.ip) AS k
	FROM pool_addresses p JOIN servers s ON s.id = p.server_id
	WHERE s.name LIKE '{server_like}' AND p.router_id IS NULL)
SELECT gen_random_uuid() AS id, server_id, ip, random() AS r FROM addr WHERE k <= {per_server};
CREATE TEMP TABLE ranked ON COMMIT DROP AS
SELECT *, row_number() OVER (ORDER BY r) <= {pending} AS is_pending FROM plan;
INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, public_key, status,
	reservation_expires_at, configured_at, key_revision, persistent_keepalive)
SELECT p.id, (SELECT id FROM tenants WHERE slug = '{tenant_slug}'), p.server_id,
	'bench', p.ip,
	CASE WHEN p.is_pending THEN NULL
		ELSE decode(md5(p.id::text || random()) || md5(random()::text || p.id), 'hex') END,
	CASE WHEN p.is_pending THEN 'pending' ELSE 'vps_ready' END::router_status,
	now() + interval '1 day',
	CASE WHEN p.is_pending THEN NULL ELSE now() END,
	CASE WHEN p.is_pending THEN NULL ELSE 1 END,
	CASE WHEN p.is_pending THEN NULL ELSE {keepalive} END
FROM ranked p;
UPDATE pool_addresses a SET router_id = p.id FROM plan p
WHERE a.server_id = p.server_id AND a.ip = p.ip;
UPDATE server_usage u SET used = x.n FROM
	(SELECT server_id, count(*) AS n FROM plan GROUP BY server_id) x
WHERE u.server_id = x.server_id AND u.shard = 0;
UPDATE servers SET revision = 1 WHERE name LIKE '{server_like}' AND revision = 0;
COMMIT;
ANALYZE routers;
ANALYZE pool_addresses;
""", timeout=600)
    return int(pg.scalar(f"SELECT count(*) FROM routers r JOIN servers s ON s.id = r.server_id "
                         f"WHERE s.name LIKE '{server_like}'"))


# ---- wireguard-go in a namespace, and the real agent ----

class WireguardGo:
    def __init__(self, cleanup, workdir):
        tag = secrets.token_hex(3)
        self.ns = f"wgf-b{tag}"
        self.ifname = f"wgb{tag}"
        self.sock = os.path.join(SOCKET_DIR, self.ifname + ".sock")
        self.log = open(os.path.join(workdir, "wireguard-go.log"), "ab")
        run(["ip", "netns", "add", self.ns])
        cleanup.push(run, ["ip", "netns", "del", self.ns], 60, False)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "wireguard-go", "-f",
                                      self.ifname], stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        cleanup.push(self.stop)
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise Failure("wireguard-go's UAPI socket did not appear")
            time.sleep(0.02)

    def answers(self):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(self.sock)
            return True
        except OSError:
            return False

    def stop(self):
        stop_process(self.proc, group=True)
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def get(self):
        """One UAPI get=1 on the socket, the whole answer (bytes)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.sock)
            s.sendall(b"get=1\n\n")
            chunks = []
            while True:
                b = s.recv(1 << 20)
                if not b:
                    break
                chunks.append(b)
                if b.endswith(b"\n\n"):
                    break
        return b"".join(chunks)

    def n_peers(self):
        return self.get().count(b"\npublic_key=")

    def settle(self, limit_s=300.0, window_s=2.0, share=0.05):
        """Waits until wireguard-go uses less than share of one CPU over window_s, at most
        limit_s; returns the seconds waited and the CPU share of the last window. Peers
        added with a persistent keepalive and no endpoint make it try handshakes for about
        90 s (at 10,000 peers half a core and several hundred MiB), which a measurement
        taken meanwhile would count as the system under test's."""
        hz = os.sysconf("SC_CLK_TCK")
        start = time.monotonic()
        while True:
            t0, c0 = time.monotonic(), cpu_ticks(self.proc.pid)
            time.sleep(window_s)
            used = (cpu_ticks(self.proc.pid) - c0) / hz / (time.monotonic() - t0)
            waited = time.monotonic() - start
            if used < share or waited >= limit_s:
                return waited, used


class Agent:
    """The real wgfleet-agent in wireguard-go's namespace, userspace backend."""

    def __init__(self, cleanup, build, workdir, wg, coord, server, address, extra=""):
        self.bin = os.path.join(build, "agent", "wgfleet-agent")
        self.conf = os.path.join(workdir, "agent.conf")
        self.log_path = os.path.join(workdir, "agent.log")
        with open(self.conf, "w") as f:
            f.write(f"[agent]\nstate_directory = {workdir}/agent-state\n"
                    f"[wireguard]\ninterface = {wg.ifname}\nbackend = userspace\n"
                    f"listen_port = 51820\naddress = {address}\n"
                    f"[coordinator]\nurls = {coord.channel_url}\n"
                    f"public_key = {coord.public_key}\nserver = {server}\n{extra}")
        self.public_key = run([self.bin, "--config", self.conf, "init"]).stdout.strip()
        self.ns = wg.ns
        self.proc = None
        cleanup.push(self.stop)

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, self.bin, "--config",
                                      self.conf, "run", "--foreground"],
                                     stdout=subprocess.DEVNULL, stderr=self.logf,
                                     start_new_session=True)

    def stop(self):
        stop_process(self.proc, timeout=30, group=True)
        if self.proc:
            self.logf.close()


def wait_for(what, predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---- fleetsim ----

def wait_ready_line(proc, timeout, what):
    """Waits at most timeout seconds for proc to print a line starting "ready" on its
    stdout; raises Failure("<what> within N s") when it does not, or exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.5)
        if r:
            line = proc.stdout.readline()
            if line.startswith("ready"):
                return True
            if not line:
                break
    raise Failure(f"{what} within {timeout} s")


def fleetsim_keys(build, n, prefix="sim"):
    out = run([os.path.join(build, "tests", "tools", "fleetsim"), "keys", "--agents", str(n),
               "--prefix", prefix]).stdout
    return [line.split()[1:] for line in out.splitlines()]


def register_sim_servers(coord, keys, routers_per_server, base="10.0.0.0"):
    """A server per simulated agent, each with a pool just large enough, in sequence."""
    prefix, plan = sim_server_plan(keys, routers_per_server, base)
    for name, agent_key, pool, gw in plan:
        coord.expect(201, "POST", "/v1/servers", body={
            "name": name, "endpoint": f"{name}.example.net:51820", "pool": pool,
            "gateway": gw, "agent_key": agent_key})
    return prefix


def sim_server_plan(keys, routers_per_server, base="10.0.0.0"):
    """(pool prefix length, [(name, agent_key, pool, gateway)]): a pool per simulated
    agent just large enough for routers_per_server, one after another from base."""
    need = routers_per_server + 3
    prefix = 32
    while (1 << (32 - prefix)) < need + 1:
        prefix -= 1
    size = 1 << (32 - prefix)
    start = int.from_bytes(socket.inet_aton(base), "big")
    plan = []
    for i, (name, agent_key) in enumerate(keys):
        net = start + i * size
        plan.append((name, agent_key, f"{socket.inet_ntoa(net.to_bytes(4, 'big'))}/{prefix}",
                     socket.inet_ntoa((net + 1).to_bytes(4, "big"))))
    return prefix, plan


def register_sim_servers_sql(pg, keys, routers_per_server, base="10.0.0.0", batch=400):
    """As register_sim_servers, in bulk (setup speed): the same SQL function the API's
    POST /v1/servers calls, wgf_api_create_server(), with the admin key's stored prefix
    and hash, for `batch` servers per transaction (one psql -c argument: the kernel
    holds an argument to 128 KiB). The servers, their pools and the audit
    rows are what the API would have made, and the coordinator learns of them as it does
    of any (the wgf_servers notification, then wgf_channel_registry()). The API's own
    input checks (name, pool, gateway) are not run: the plan meets them by construction."""
    prefix, plan = sim_server_plan(keys, routers_per_server, base)
    for at in range(0, len(plan), batch):
        rows = ",\n".join(
            f"('{name}', '{name}.example.net:51820', '{pool}', '{gw}', '{agent_key}')"
            for name, agent_key, pool, gw in plan[at:at + batch])
        made = pg.sql(f"""
SELECT count(wgf_api_create_server(k.prefix, k.hash, v.name, v.endpoint, NULL, v.pool::cidr,
	v.gateway::inet, decode(v.agent_key, 'base64'), NULL, NULL, 'bench-bulk-' || v.name))
FROM (VALUES {rows}) AS v(name, endpoint, pool, gateway, agent_key),
	(SELECT prefix, hash FROM api_keys WHERE scope = 'admin' AND revoked_at IS NULL
	 ORDER BY id LIMIT 1) AS k""", timeout=600)
        if int(made[0][0]) != len(plan[at:at + batch]):
            raise Failure(f"bulk registration made {made[0][0]} servers, not "
                          f"{len(plan[at:at + batch])}")
    return prefix


def registry_size(coord):
    """Servers in the coordinator's agent registry at its last load (its log), 0 before."""
    m = re.findall(r'msg="Agent registry loaded".*?servers=(\d+)', open(coord.log_path).read())
    return int(m[-1]) if m else 0


def loadavg():
    """/proc/loadavg's three load averages, as a string."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Fleetsim:
    def __init__(self, cleanup, build, workdir, coord, n, extra_args=()):
        self.out = os.path.join(workdir, "fleetsim.out")
        self.err = open(os.path.join(workdir, "fleetsim.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(build, "tests", "tools", "fleetsim"), "run", "--url",
             coord.channel_url, "--coordinator", coord.public_key, "--agents", str(n),
             "--out", self.out, *extra_args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.n = n
        self.summary = None
        cleanup.push(stop_process, self.proc)

    def wait_ready(self, timeout):
        return wait_ready_line(self.proc, timeout,
                               f"fleetsim's {self.n} agents were not all ready")

    def stop(self, timeout=120):
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        out, _ = self.proc.communicate(timeout=timeout)
        self.err.close()
        for line in out.splitlines():
            if line.startswith("done "):
                self.summary = dict(kv.split("=") for kv in line.split()[1:])
        return self.proc.returncode

    def results(self):
        """{idx: {"server", "revision", fields..., "peers": set, "changes": [...],
        "snapshots": [...]}} from the --out file."""
        agents = {}
        with open(self.out) as f:
            for line in f:
                w = line.split()
                if w[0] == "agent":
                    a = {"server": w[2], "revision": int(w[3]), "peers": set(),
                         "changes": [], "snapshots": []}
                    a.update(("n_" + k if k in ("peers", "snapshots", "changes") else k, int(v))
                             for k, v in (kv.split("=") for kv in w[4:]))
                    agents[int(w[1])] = a
                elif w[0] == "peer":
                    agents[int(w[1])]["peers"].add(w[2])
                elif w[0] == "snapshot":
                    agents[int(w[1])]["snapshots"].append((int(w[2]), int(w[3]), int(w[4])))
                elif w[0] == "change":
                    agents[int(w[1])]["changes"].append(
                        (int(w[2]), w[3], w[4], int(w[5]), int(w[6])))
        return agents


# ---- measuring ----

def proc_status(pid):
    """VmRSS, VmHWM and RssAnon/RssFile (private heap and stacks; mapped files such as
    the shared libraries) of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def runqueue_ns(pid):
    """Time the process's threads spent runnable but waiting for a CPU, in ns
    (/proc/PID/task/*/schedstat, second field; needs schedstats in the kernel)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total


class ProcMeter:
    """CPU time (utime + stime) and run-queue wait of named process groups over an
    interval. groups maps a name to a pid or a function returning pids (read at each
    sample, so children that come and go, such as PostgreSQL backends, count while
    they live)."""

    def __init__(self, groups):
        self.groups = groups
        self.start = self._sample()

    def _pids(self, g):
        return g() if callable(g) else [g]

    def _sample(self):
        out = {}
        for name, g in self.groups.items():
            cpu = wait = 0
            for pid in self._pids(g):
                try:
                    cpu += cpu_ticks(pid)
                    wait += runqueue_ns(pid)
                except OSError:
                    pass
            out[name] = (cpu, wait)
        return out

    def per(self, n):
        """{name: {"cpu_ms", "runqueue_ms"}} per unit of work (n units) since start."""
        end = self._sample()
        return {name: {"cpu_ms": round((end[name][0] - self.start[name][0]) * 1000 / CLK_TCK
                                       / max(n, 1), 2),
                       "runqueue_ms": round((end[name][1] - self.start[name][1]) / 1e6
                                            / max(n, 1), 2)}
                for name in self.groups}


def self_cpu_ticks():
    t = os.times()
    return int((t.user + t.system) * CLK_TCK)


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a list; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def summary_ms(values):
    """{"n", "p50", "p99", "max", "mean"} of millisecond samples, rounded."""
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50), 2),
            "p99": round(percentile(values, 99), 2), "max": round(max(values), 2),
            "mean": round(sum(values) / len(values), 2)}


def over(values, limit):
    return len(values) - bisect.bisect_right(sorted(values), limit)


def machine():
    """One line about the machine and the run, for the results."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {model}; "
            f"{os.cpu_count()} CPUs; {mem} MiB; Linux {platform.release()}; load {load}")


def timestamp_us(text):
    """A PostgreSQL timestamptz as printed with extract(epoch ...) * 1e6, to int."""
    return int(float(text))


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)


def results_path(build, name, quick):
    d = os.path.join(build, "bench-results")
    os.makedirs(d, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return os.path.join(d, f"{name}-{stamp}{'-quick' if quick else ''}.json")
