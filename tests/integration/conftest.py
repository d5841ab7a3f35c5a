# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""Fixtures for the integration tests: the built binaries and a private PostgreSQL.

The cluster is started once per test session by deploy/pg.sh in a short directory
under /tmp (unix socket paths are limited to 107 bytes), with durability off for
speed, and wiped at the end. Each test that needs a database gets a fresh one of its
own, so tests never see each other's rows.
"""
import itertools
import os
import shlex
import shutil
import subprocess
import tempfile

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("WGF_BUILD_DIR", os.path.join(TOP, "build", "ci-gcc"))
PG_SH = os.path.join(TOP, "deploy", "pg.sh")
_db_counter = itertools.count(1)


def binary(name):
    sub = "coordinator" if name.startswith("wgfleet-coordinator") else "agent"
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

    def start(self):
        env = dict(os.environ, WGF_PG_FAST="1")
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
