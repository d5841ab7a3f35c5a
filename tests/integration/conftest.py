# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Fixtures for the integration tests: the built binaries and a private PostgreSQL.

The cluster is started once per test session by deploy/pg.sh in a short directory
under /tmp (unix socket paths are limited to 107 bytes), with durability off for
speed, and wiped at the end. Each test that needs a database gets a fresh one of its
own, so tests never see each other's rows.
"""
import base64
import http.client
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("WGF_BUILD_DIR", os.path.join(TOP, "build", "ci-gcc"))
PG_SH = os.path.join(TOP, "deploy", "pg.sh")
_db_counter = itertools.count(1)
# The migrations the binary carries, in order ("0001_core", ...).
MIGRATIONS = sorted(f[:-4] for f in os.listdir(os.path.join(TOP, "coordinator", "sql"))
                    if f.endswith(".sql"))


def binary(name):
    if name.startswith("wgfleet-coordinator"):
        sub = "coordinator"
    elif name == "wgfleetctl":
        sub = "ctl"
    else:
        sub = "agent"
    path = os.path.join(BUILD, sub, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built; run tests/run or ninja -C {BUILD}")
    return path


def run(args, check=False, **kw):
    """Runs a command with a time bound; returns the CompletedProcess (text mode)."""
    kw.setdefault("timeout", 60)
    proc = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def log_lines(stderr):
    """Parses the daemons' logfmt lines into dicts (quotes and \\" undone by shlex)."""
    lines = []
    for line in stderr.splitlines():
        fields = {}
        for token in shlex.split(line):
            key, _, value = token.partition("=")
            fields[key] = value
        lines.append(fields)
    return lines


def log_messages(stderr):
    return [line.get("msg", "") for line in log_lines(stderr)]


class Postgres:
    def __init__(self, directory):
        self.dir = directory
        self.conninfo = None

    def start(self, fast=True):
        """fast: durability off, for speed; a test that crashes the server wants it on."""
        env = dict(os.environ, WGF_PG_FAST="1" if fast else "0")
        proc = run(["bash", PG_SH, "start", self.dir], env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        self.conninfo = proc.stdout.strip().splitlines()[-1]
        return self

    def stop(self):
        run(["bash", PG_SH, "wipe", self.dir], timeout=120)

    def psql(self, sql, dbname=None, check=True):
        """Runs fixed test SQL through psql; returns stdout rows split on '|'."""
        conninfo = self.conninfo if dbname is None else self.with_db(dbname)
        proc = run(["psql", conninfo, "-X", "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql])
        if check and proc.returncode != 0:
            raise AssertionError(f"psql failed: {proc.stderr}")
        if not check:
            return proc
        return [row.split("|") for row in proc.stdout.splitlines()]

    def with_db(self, dbname):
        parts = [p for p in self.conninfo.split() if not p.startswith("dbname=")]
        return " ".join(parts + [f"dbname={dbname}"])

    def create_db(self):
        name = f"t{os.getpid()}_{next(_db_counter)}"
        self.psql(f"CREATE DATABASE {name}", dbname="postgres")
        return name

    def drop_db(self, name):
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", dbname="postgres")


@pytest.fixture(scope="session")
def pg():
    directory = tempfile.mkdtemp(prefix="wgf-pg-", dir="/tmp")
    os.chmod(directory, 0o755)
    server = Postgres(directory).start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def db(pg):
    """A fresh, empty database: yields (name, conninfo)."""
    name = pg.create_db()
    yield name, pg.with_db(name)
    pg.drop_db(name)


@pytest.fixture
def migrated_db(pg, db):
    """A fresh database with the schema applied."""
    name, conninfo = db
    run([binary("wgfleet-coordinator"), "--database", conninfo, "migrate"], check=True)
    return name, conninfo


class Coordinator:
    """A wgfleet-coordinator serving on 127.0.0.1 (a port the kernel picks) for one test."""

    def __init__(self, workdir, conninfo, secret_file=None, extra="",
                 channel_listen="tcp://127.0.0.1:0"):
        self.workdir = str(workdir)
        self.conninfo = conninfo
        self.secret_file = secret_file or os.path.join(self.workdir, "api-key.secret")
        if not os.path.exists(self.secret_file):
            fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
            os.close(fd)
        self.channel_key_file = os.path.join(self.workdir, "coordinator.key")
        self.config = os.path.join(self.workdir, f"coordinator-{id(self)}.conf")
        with open(self.config, "w") as f:
            f.write(f"[database]\nconninfo = {conninfo}\n"
                    f"[http]\nlisten = 127.0.0.1:0\n"
                    f"[metrics]\nlisten = 127.0.0.1:0\n"
                    f"[channel]\nlisten = {channel_listen}\n"
                    f"signing_key_file = {self.channel_key_file}\n"
                    f"[api]\nkey_hash_secret_file = {self.secret_file}\n{extra}")
        # Replicas in one workdir share the key, as replicas must.
        self.channel_public_key = self.cli("channel-key").stdout.strip()
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.workdir, f"coordinator-{id(self)}.log")

    def cli(self, *args, check=True):
        return run([binary("wgfleet-coordinator"), "--config", self.config, *args], check=check)

    def create_admin_key(self):
        return self.cli("create-admin-key").stdout.strip()

    def start(self, timeout=15):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary("wgfleet-coordinator"), "--config", self.config,
                                      "serve"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                for line in log_lines(f.read()):
                    if line.get("msg") == "Listening for agents":
                        self.channel_url = line["url"]
                    if line.get("msg") == "Listening":
                        self.port = int(line["port"])
                        return self
            if self.proc.poll() is not None:
                raise AssertionError(f"coordinator exited: {self.read_log()}")
            time.sleep(0.02)
        raise AssertionError(f"coordinator did not listen within {timeout}s: {self.read_log()}")

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=5):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("coordinator did not stop within 5 s of SIGTERM")
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def request(self, method, path, key=None, body=None, headers=None, raw=None, timeout=30):
        """Returns (status, headers dict with lower-case names, parsed JSON or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = dict(headers or {})
        if key:
            hdrs["Authorization"] = f"Bearer {key}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read().decode()
            out_headers = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        ctype = out_headers.get("content-type", "")
        payload = json.loads(text) if ctype.startswith("application/json") else text
        return resp.status, out_headers, payload


@pytest.fixture
def coordinator(tmp_path, migrated_db):
    """A running coordinator on a fresh, migrated database, with its admin key."""
    _, conninfo = migrated_db
    coord = Coordinator(tmp_path, conninfo)
    coord.admin_key = coord.create_admin_key()
    coord.start()
    yield coord
    coord.stop()


def record_convergence(case, measured, seconds, target=5.0):
    """Records a fault case's convergence time with the load average beside it: printed
    (seen with pytest -s) and, when WGF_FAULTS_REPORT names a file, appended to it as a
    JSON line, which tests/bench/faults_report.py turns into a table."""
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    line = json.dumps({"case": case, "measured": measured, "seconds": round(seconds, 3),
                       "target": target, "load": load})
    print(f"WGF-FAULT {line}")
    path = os.environ.get("WGF_FAULTS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
