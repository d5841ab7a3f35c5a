# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""deploy/pg.sh: a private cluster that starts, restarts with its data, and wipes."""
import os
import tempfile

from conftest import PG_SH, Postgres, run


def test_start_is_idempotent_and_data_survives_restart():
    directory = tempfile.mkdtemp(prefix="wgf-pgh-", dir="/tmp")
    os.chmod(directory, 0o755)
    server = Postgres(directory)
    try:
        server.start()
        first = server.conninfo
        assert first == f"host={directory}/sock port=5432 dbname=wgfleet user=wgfleet"
        assert run(["bash", PG_SH, "status", directory]).returncode == 0
        # A second start while it runs changes nothing and prints the same string.
        assert server.start().conninfo == first
        server.psql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        assert run(["bash", PG_SH, "stop", directory]).returncode == 0
        assert run(["bash", PG_SH, "status", directory]).returncode != 0
        server.start()
        assert server.psql("SELECT v FROM kept") == [["42"]]
        # The server does not run as root and listens on no TCP port.
        assert server.psql("SHOW listen_addresses") == [[""]]
        owner = os.stat(os.path.join(directory, "data")).st_uid
        assert owner != 0
    finally:
        server.stop()
    assert not os.path.exists(directory)


def test_wipe_refuses_a_directory_that_is_not_a_cluster():
    directory = tempfile.mkdtemp(prefix="wgf-pgh-", dir="/tmp")
    try:
        os.mkdir(os.path.join(directory, "data"))
        proc = run(["bash", PG_SH, "wipe", directory])
        assert proc.returncode != 0
        assert "does not look like a pg.sh cluster" in proc.stderr
        assert os.path.isdir(directory)
    finally:
        os.rmdir(os.path.join(directory, "data"))
        os.rmdir(directory)


def test_socket_path_too_long_is_refused():
    directory = "/tmp/" + "x" * 110
    proc = run(["bash", PG_SH, "start", directory])
    assert proc.returncode != 0
    assert "too long for a unix socket path" in proc.stderr
    assert not os.path.exists(directory)
