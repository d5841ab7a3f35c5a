# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The Debian packages: built from a clean copy of the tree, installed, used, purged.

One test, in stages, because each stage needs the one before: dpkg-buildpackage builds
the binary packages (no tests inside the build, two jobs) from a copy of the files git
knows; lintian finds no error in them (its warnings and overridden tags are printed,
which pytest -s shows); dpkg installs them on this machine; the files, conffiles, manual pages, system
users and units are where they should be (wgfleetctl takes its installed ctl.conf, and
refuses it once the group may read it), nothing is enabled or started,
`systemd-analyze verify` accepts the installed units, and each binary prints its
version and accepts the installed sample configuration as its own service user; then
dpkg purges them. The test refuses to run on a machine that already has any of it (it
would not leave such a machine as it found it), and it removes the system users the
packages made (Debian packages keep them on purge, by policy).
"""
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time

import pytest

from conftest import TOP, run

# What each package must install. A daemon's package also has a system user, a unit
# and a sample configuration its binary accepts; a package of a plain tool needs only
# "binary" and "files".
PACKAGES = {
    "wgfleetctl": {
        "binary": "/usr/bin/wgfleetctl",
        "files": ["/usr/share/bash-completion/completions/wgfleetctl",
                  "/usr/share/man/man1/wgfleetctl.1.gz",
                  "/usr/share/doc/wgfleetctl/CLI.md"],
        "conffiles": ["/etc/wgfleet/ctl.conf"],
    },
    "wgfleet-coordinator": {
        "binary": "/usr/sbin/wgfleet-coordinator",
        "user": "wgfleet",
        "unit": "/lib/systemd/system/wgfleet-coordinator.service",
        "files": ["/usr/share/man/man8/wgfleet-coordinator.8.gz",
                  "/usr/share/doc/wgfleet-coordinator/OPERATIONS.md",
                  "/usr/share/doc/wgfleet-coordinator/grafana/wgfleet.json",
                  "/usr/share/doc/wgfleet-coordinator/copyright"],
        "conffiles": ["/etc/wgfleet/coordinator.conf"],
    },
    "wgfleet-agent": {
        "binary": "/usr/sbin/wgfleet-agent",
        "user": "wgfleet-agent",
        "unit": "/lib/systemd/system/wgfleet-agent.service",
        "files": ["/usr/share/man/man8/wgfleet-agent.8.gz",
                  "/usr/share/doc/wgfleet-agent/OPERATIONS.md",
                  "/usr/share/doc/wgfleet-agent/copyright"],
        "conffiles": ["/etc/wgfleet/agent.conf"],
    },
}


def paths(want):
    return ([want["binary"]] + want["files"] + want.get("conffiles", [])
            + ([want["unit"]] if "unit" in want else []))


ALL_PATHS = [p for want in PACKAGES.values() for p in paths(want)]
USERS = [want["user"] for want in PACKAGES.values() if "user" in want]


def installed(package):
    proc = run(["dpkg-query", "-W", "-f=${Status}", package])
    return proc.returncode == 0 and "installed" in proc.stdout.split()


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def dpkg(*args):
    """dpkg, waiting (bounded) while another dpkg or apt on the shared machine holds its lock."""
    for _ in range(40):
        proc = run(["dpkg", *args], timeout=300)
        if proc.returncode == 0 or "lock" not in proc.stderr:
            return proc
        time.sleep(3)
    return proc


def tree_copy(dest):
    """The files git knows (tracked, and new ones not ignored) as they are in the work tree."""
    files = run(["git", "-C", TOP, "ls-files", "-co", "--exclude-standard", "-z"],
                check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = os.path.join(TOP, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


def changelog_version():
    with open(os.path.join(TOP, "debian", "changelog")) as f:
        return re.match(r"wgfleet \(([^)]+)\)", f.readline()).group(1)


@pytest.fixture
def machine():
    for tool in ("dpkg-buildpackage", "dh", "lintian", "systemd-analyze"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (deploy/install-deps.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("installing packages with dpkg needs root")
    present = [p for p in PACKAGES if installed(p)] + [p for p in ALL_PATHS if os.path.exists(p)]
    if present or os.path.exists("/etc/wgfleet") or os.path.exists("/var/lib/wgfleet"):
        pytest.skip(f"this machine already has wgfleet installed ({present or '/etc/wgfleet'}); "
                    "the test would not leave it as it found it")
    users_before = {user: user_exists(user) for user in USERS}
    yield
    dpkg("--purge", *PACKAGES)
    for user, existed in users_before.items():
        if not existed and user_exists(user):
            run(["userdel", user], check=True)
            if run(["getent", "group", user]).returncode == 0:
                run(["groupdel", user], check=True)


def check_ctl_conf(tmp_path):
    """The installed /etc/wgfleet/ctl.conf: root's, mode 0600, and taken by wgfleetctl
    (its key_file, an admin key made here, is read; the URL given points at a port where
    nothing listens, so wgfleetctl exits 3, unreachable) until it is made readable by
    the group, when it is refused (exit 2)."""
    conf, key = "/etc/wgfleet/ctl.conf", "/etc/wgfleet/admin.key"
    st = os.stat(conf)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600), st
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGFLEET_")}
    env["HOME"] = str(tmp_path)  # no ~/.config/wgfleet/ctl.conf
    ctl = ["/usr/bin/wgfleetctl", "--url", f"http://127.0.0.1:{closed}", "--timeout", "2",
           "status"]
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"wgf_" + b"a" * 16 + b"_" + b"b" * 43 + b"\n")
        os.close(fd)
        taken = run(ctl, env=env)
        assert taken.returncode == 3, taken.stderr
        os.chmod(conf, 0o640)
        refused = run(ctl, env=env)
        assert refused.returncode == 2, refused.stderr
        assert f"{conf}: readable by other users (mode 640); chmod 600 it" in refused.stderr
    finally:
        os.chmod(conf, 0o600)
        os.unlink(key)


def test_packages_build_install_run_and_purge(machine, tmp_path):
    src = tmp_path / "src"
    tree_copy(str(src))
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2")
    start = time.monotonic()
    proc = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=str(src), env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"dpkg-buildpackage took {time.monotonic() - start:.1f} s")
    version = changelog_version()
    debs = [str(tmp_path / f"{p}_{version}_amd64.deb") for p in PACKAGES]
    for deb in debs:
        assert os.path.exists(deb), sorted(os.listdir(tmp_path))

    lint = run(["lintian", "--tag-display-limit", "0", "--show-overrides", *debs], timeout=300)
    errors = [line for line in lint.stdout.splitlines() if line.startswith("E:")]
    assert not errors, lint.stdout
    # Warnings and overridden tags are reported, not failed on (README, "Building
    # packages", lists them).
    shown = [line for line in lint.stdout.splitlines() if line.startswith(("W:", "O:"))]
    print(f"lintian: {sum(line.startswith('W:') for line in shown)} warnings, "
          f"{sum(line.startswith('O:') for line in shown)} overridden"
          + "".join("\n  " + line for line in shown))

    proc = dpkg("-i", *debs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for package, want in PACKAGES.items():
        assert installed(package)
        for path in paths(want):
            assert os.path.isfile(path), path
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", package], check=True).stdout
        assert sorted(line.split()[0] for line in conffiles.strip().splitlines()) \
            == want.get("conffiles", [])
        assert run([want["binary"], "--version"], check=True).stdout \
            == f"{os.path.basename(want['binary'])} {version}\n"
        if "unit" not in want:
            continue
        with open(want["unit"]) as f:
            docs = re.findall(r"^Documentation=file://(\S+)", f.read(), re.M)
        assert docs and all(os.path.isfile(d) for d in docs), docs
        user = pwd.getpwnam(want["user"])
        assert user.pw_uid < 1000 and user.pw_shell == "/usr/sbin/nologin", user
        # Installed, not enabled: no symlink in any .wants directory, nothing started.
        unit = os.path.basename(want["unit"])
        wants = run(["find", "/etc/systemd/system", "-name", unit], check=True).stdout
        assert wants == "", wants
        assert run(["pgrep", "-f", "^" + want["binary"]]).returncode == 1
        # The sample configuration, read as the service would read it.
        check = run(["runuser", "-u", want["user"], "--", want["binary"], "--config",
                     want["conffiles"][0], "check-config"])
        assert check.returncode == 0, check.stderr
    check_ctl_conf(tmp_path)
    units = [want["unit"] for want in PACKAGES.values() if "unit" in want]
    verify = run(["systemd-analyze", "verify", *units])
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", \
        verify.stdout + verify.stderr

    proc = dpkg("--purge", *PACKAGES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in ALL_PATHS + ["/etc/wgfleet", "/var/lib/wgfleet"]:
        assert not os.path.exists(path), path
    assert not any(installed(p) for p in PACKAGES)
