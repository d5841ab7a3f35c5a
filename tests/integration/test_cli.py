# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The command lines: configuration files, sample files, the agent's identity."""
import base64
import os
import shutil
import signal
import stat
import subprocess
import tempfile

import pytest

from conftest import TOP, binary, log_lines, log_messages, run
from wglib import wait_for

DAEMONS = ["wgfleet-coordinator", "wgfleet-agent"]


@pytest.mark.parametrize("daemon", DAEMONS)
def test_sample_config_is_the_shipped_file_and_loads(daemon):
    shipped = os.path.join(TOP, "deploy", daemon.split("-")[1] + ".conf")
    proc = run([binary(daemon), "sample-config"], check=True)
    with open(shipped) as f:
        assert proc.stdout == f.read(), f"regenerate {shipped} with '{daemon} sample-config'"
    check = run([binary(daemon), "--config", shipped, "check-config"])
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("daemon", DAEMONS)
def test_dump_config_round_trips(daemon, tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("[log]\nlevel = debug ; comment\n")
    dumped = run([binary(daemon), "--config", str(conf), "dump-config"], check=True).stdout
    assert "\nlevel = debug\n" in dumped
    again = tmp_path / "b.conf"
    again.write_text(dumped)
    assert run([binary(daemon), "--config", str(again), "dump-config"],
               check=True).stdout == dumped


@pytest.mark.parametrize("text,message", [
    ("[log]\nlevel = loud\n",
     "{f}:2: bad value for 'level' in section [log]: 'loud' is not one of: error, warning, "
     "notice, info, debug"),
    ("[log]\nlevel = info\nlevel = debug\n",
     "{f}:3: duplicate key 'level' in section [log]"),
    ("[logs]\nlevel = info\n", "{f}:2: unknown section [logs]"),
    ("[log]\nverbosity = 3\n", "{f}:2: unknown key 'verbosity' in section [log]"),
    ("[log]\njust words\n", "{f}:2: syntax error: expected '[section]' or 'key = value'"),
    ("[log]\n  level = info\n",
     "{f}:2: line starts with whitespace; keys and sections start in the first column"),
])
def test_bad_config_is_refused_with_file_and_line(tmp_path, text, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    for daemon in DAEMONS:
        proc = run([binary(daemon), "--config", str(conf), "check-config"])
        assert proc.returncode == 1
        assert log_messages(proc.stderr) == [
            "Invalid configuration: " + message.format(f=conf)]


def test_missing_named_config_is_an_error_but_missing_default_is_not(tmp_path):
    proc = run([binary("wgfleet-agent"), "--config", str(tmp_path / "none.conf"),
                "check-config"])
    assert proc.returncode == 1
    assert "none.conf: cannot open: No such file or directory" in proc.stderr
    # Without --config the default path is optional: the defaults stand.
    proc = run([binary("wgfleet-agent"), "check-config"])
    assert proc.returncode == 0, proc.stderr


def test_usage_errors_exit_2():
    assert run([binary("wgfleet-coordinator")]).returncode == 2
    proc = run([binary("wgfleet-coordinator"), "frobnicate"])
    assert proc.returncode == 2 and "unknown command 'frobnicate'" in proc.stderr
    assert run([binary("wgfleet-agent"), "--bogus", "version"]).returncode == 2
    ver = run([binary("wgfleet-agent"), "version"], check=True)
    assert ver.stdout.startswith("wgfleet-agent ")


def agent_init(state):
    conf = state.parent / "agent.conf"
    conf.write_text(f"[agent]\nstate_directory = {state}\n")
    return run([binary("wgfleet-agent"), "--config", str(conf), "init"])


def test_agent_init_creates_one_key_and_keeps_it(tmp_path):
    state = tmp_path / "state"
    first = agent_init(state)
    assert first.returncode == 0, first.stderr
    pk = base64.b64decode(first.stdout.strip(), validate=True)
    assert len(pk) == 32
    key = state / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(base64.b64decode(key.read_text().strip())) == 32
    # The secret never reaches the output or the log.
    assert key.read_text().strip() not in first.stdout + first.stderr
    lines = log_lines(first.stderr)
    assert lines[0]["msg"] == "Created the signing key" and lines[0]["level"] == "notice"
    second = agent_init(state)
    assert second.returncode == 0
    assert second.stdout == first.stdout
    assert log_messages(second.stderr) == ["Signing key exists"]


def test_agent_init_refuses_an_exposed_or_corrupt_key(tmp_path):
    state = tmp_path / "state"
    assert agent_init(state).returncode == 0
    key = state / "signing.key"
    key.chmod(0o644)
    proc = agent_init(state)
    assert proc.returncode == 1
    assert f"{key}: readable by other users (mode 644); chmod 600 it" in proc.stderr
    key.chmod(0o600)
    key.write_text("not a key\n")
    proc = agent_init(state)
    assert proc.returncode == 1
    assert f"{key}: not 32 bytes in base64" in proc.stderr
    assert key.read_text() == "not a key\n"


def test_coordinator_help_lists_every_subcommand_it_has():
    """Every command main.c dispatches is in --help's Commands list, and no other."""
    import re
    with open(os.path.join(TOP, "coordinator", "main.c")) as f:
        source = f.read()
    dispatched = set(re.findall(r'strcmp\(cmd, "([a-z-]+)"\) == 0', source))
    assert {"serve", "create-admin-key", "channel-key", "migrate"} <= dispatched
    out = run([binary("wgfleet-coordinator"), "--help"], check=True).stdout
    section = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^  ([a-z-]+)", section, re.M))
    assert listed == dispatched


@pytest.mark.parametrize("daemon", DAEMONS)
def test_version_option(daemon):
    for flag in ("--version", "-V"):
        proc = run([binary(daemon), flag], check=True)
        assert proc.stdout == run([binary(daemon), "version"], check=True).stdout
        assert proc.stdout.startswith(daemon + " ")


def other_user(path):
    """Gives path to uid/gid 65534 (nobody), as root can; the test needs root for that."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(path, 65534, 65534)


def test_agent_refuses_a_key_another_user_owns(tmp_path):
    state = tmp_path / "state"
    assert agent_init(state).returncode == 0
    key = state / "signing.key"
    before = key.read_text()
    other_user(key)
    proc = agent_init(state)
    assert proc.returncode == 1
    assert (f"{key}: owned by uid 65534, neither this daemon's uid {os.geteuid()} nor root; "
            "chown it") in proc.stderr
    assert before.strip() not in proc.stdout + proc.stderr
    assert key.read_text() == before


def test_coordinator_refuses_a_channel_key_another_user_owns(tmp_path):
    conf = tmp_path / "coordinator.conf"
    key = tmp_path / "coordinator.key"
    conf.write_text(f"[channel]\nsigning_key_file = {key}\n")
    first = run([binary("wgfleet-coordinator"), "--config", str(conf), "channel-key"])
    assert first.returncode == 0, first.stderr
    other_user(key)
    proc = run([binary("wgfleet-coordinator"), "--config", str(conf), "channel-key"])
    assert proc.returncode == 1
    assert f"{key}: owned by uid 65534" in proc.stderr
    assert proc.stdout == ""


OTHERS_MAY_CHANGE = [
    ("owner", "owned by uid 65534, neither this daemon's uid {uid} nor root; chown it"),
    ("mode", "writable by other users (mode 660); chmod 600 it"),
]


def give_away(path, change):
    """Makes path one that other users may change: another user's, or group-writable."""
    if change == "owner":
        other_user(path)
    else:
        path.chmod(0o660)


@pytest.mark.parametrize("file", ["desired.json", "desired.journal"])
@pytest.mark.parametrize("change,message", OTHERS_MAY_CHANGE)
def test_agent_refuses_a_cache_others_may_change(tmp_path, file, change, message):
    """The cache, and the journal whose records are replayed onto it."""
    state = tmp_path / "state"
    state.mkdir()
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nstate_directory = {state}\n"
                    "[wireguard]\nbackend = userspace\n"
                    f"uapi_socket_directory = {tmp_path}\n")
    (state / "desired.json").write_text('{"revision": 1, "peers": []}\n')
    (state / "desired.journal").write_text('{"revision": 2, "upsert": [], "remove": []}\n')
    for name in ("desired.json", "desired.journal"):
        (state / name).chmod(0o600)
    # Without an interface show fails, but only after it has read the cache.
    before = run([binary("wgfleet-agent"), "--config", str(conf), "show"])
    assert "cannot read interface 'wg0'" in before.stderr, before.stderr
    give_away(state / file, change)
    proc = run([binary("wgfleet-agent"), "--config", str(conf), "show"])
    assert proc.returncode == 1
    assert f"{state / file}: " + message.format(uid=os.geteuid()) in proc.stderr


@pytest.mark.parametrize("change,message", OTHERS_MAY_CHANGE)
def test_agent_refuses_a_static_peers_file_others_may_change(tmp_path, change, message):
    peers = tmp_path / "static.peers"
    peers.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    peers.chmod(0o644)
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nstate_directory = {tmp_path / 'state'}\n"
                    f"[wireguard]\nbackend = userspace\nstatic_peers_file = {peers}\n")
    check = [binary("wgfleet-agent"), "--config", str(conf), "check-config"]
    assert run(check).returncode == 0
    give_away(peers, change)
    proc = run(check)
    assert proc.returncode == 1
    assert f"{peers}: " + message.format(uid=os.geteuid()) in proc.stderr


def test_running_coordinator_makes_no_core_and_locks_its_secrets(coordinator):
    """The running daemon's limits (RLIMIT_CORE 0, set by the daemon itself, not by
    this test's environment) and the locked pages holding its signing key and its
    API-key hashing secret."""
    pid = coordinator.proc.pid
    with open(f"/proc/{pid}/limits") as f:
        core = [line.split() for line in f if line.startswith("Max core file size")][0]
    assert core[4:6] == ["0", "0"], core
    with open(binary("wgfleet-coordinator"), "rb") as f:
        if b"__asan_init" in f.read():
            return  # AddressSanitizer makes mlock() a no-op that succeeds
    with open(f"/proc/{pid}/status") as f:
        locked = [int(line.split()[1]) for line in f if line.startswith("VmLck:")][0]
    assert locked >= 4, f"VmLck {locked} kB"


def test_running_agent_makes_no_core_is_not_dumpable_and_locks_its_key():
    """The agent, run as uid 65534 as the shipped unit runs it as a user of its own,
    with a coordinator to dial (nothing listens there) so that its session holds the
    signing key. A process that is not dumpable has its /proc files owned by root,
    whatever its uid: that is what shows PR_SET_DUMPABLE 0 from outside."""
    if os.geteuid() != 0:
        pytest.skip("running the agent as another user needs root")
    with tempfile.TemporaryDirectory(prefix="wgf-agent-") as top:
        os.chmod(top, 0o755)
        # A copy where uid 65534 can run it, wherever the build directory is.
        agent = shutil.copy(binary("wgfleet-agent"), os.path.join(top, "wgfleet-agent"))
        state = os.path.join(top, "state")
        os.mkdir(state)
        os.chown(state, 65534, 65534)
        coord_conf = os.path.join(top, "coordinator.conf")
        with open(coord_conf, "w") as f:
            f.write(f"[channel]\nsigning_key_file = {top}/coordinator.key\n")
        public = run([binary("wgfleet-coordinator"), "--config", coord_conf, "channel-key"],
                     check=True).stdout.strip()
        conf = os.path.join(top, "agent.conf")
        with open(conf, "w") as f:
            f.write(f"[agent]\nstate_directory = {state}\n"
                    f"[wireguard]\nbackend = userspace\nuapi_socket_directory = {top}\n"
                    f"[coordinator]\nurls = tcp://127.0.0.1:9\npublic_key = {public}\n"
                    "server = vps1\n[metrics]\nlisten =\n")
        as_nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
        run([*as_nobody, agent, "--config", conf, "init"], check=True)
        log_path = os.path.join(top, "agent.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([*as_nobody, agent, "--config", conf, "run", "--foreground"],
                                    stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for("the agent to be ready", lambda: "Ready" in log_messages(
                open(log_path).read()) or proc.poll() is not None)
            assert proc.poll() is None, open(log_path).read()
            with open(f"/proc/{proc.pid}/status") as f:
                status = dict(line.rstrip("\n").split(":\t", 1) for line in f)
            assert status["Uid"].split()[1] == "65534", status["Uid"]
            assert os.stat(f"/proc/{proc.pid}/status").st_uid == 0, "the agent is dumpable"
            with open(f"/proc/{proc.pid}/limits") as f:
                core = [line.split() for line in f if line.startswith("Max core file size")][0]
            assert core[4:6] == ["0", "0"], core
            with open(agent, "rb") as f:
                asan = b"__asan_init" in f.read()
            if not asan:  # AddressSanitizer makes mlock() a no-op that succeeds
                locked = int(status["VmLck"].split()[0])
                assert locked >= 4, f"VmLck {locked} kB"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        assert proc.returncode == 0, open(log_path).read()
