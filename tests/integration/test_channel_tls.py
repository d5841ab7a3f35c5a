# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The agent channel over TLS (tls+tcp://), with certificates made by openssl.

Each test makes, in its own directory, a CA, a coordinator certificate for localhost
and 127.0.0.1 signed by it, an agent certificate, and a second CA unrelated to the
first. The coordinator listens on tls+tcp://127.0.0.1 (a port the kernel picks); a real
agent in the host's namespace dials it and drives a wireguard-go in a namespace of its
own through the UAPI socket. Traffic stays on 127.0.0.1; every wait has a deadline.
"""
import os
import re
import shutil
import signal
import subprocess

import pytest

from conftest import Coordinator, binary, log_lines, log_messages, run
from wglib import WG, WG_GO, WireguardGo, new_key, wait_for

needs_wireguard = pytest.mark.skipif(
    WG_GO is None or WG is None or os.geteuid() != 0,
    reason="needs wireguard-go, wg and root (network namespaces)")
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="needs the openssl command line")

HANDSHAKE_FAILED = "TLS handshake with the coordinator failed, retrying"
CANNOT_CONNECT = "Cannot connect to the coordinator, retrying"


def openssl(cwd, *args):
    run(["openssl", *args], check=True, cwd=str(cwd))


def make_ca(d, name):
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-noenc", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN=wgfleet test {name}")


def make_cert(d, ca, name, extensions):
    (d / f"{name}.ext").write_text(extensions)
    openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
            "-out", f"{name}.crt", "-extfile", f"{name}.ext")
    (d / f"{name}.key").chmod(0o600)


@pytest.fixture
def pki(tmp_path):
    """ca.crt signs coordinator.crt (localhost, 127.0.0.1) and agent.crt; other.crt is a
    second, unrelated CA."""
    d = tmp_path / "pki"
    d.mkdir()
    make_ca(d, "ca")
    make_ca(d, "other")
    make_cert(d, "ca", "coordinator",
              "subjectAltName = DNS:localhost, IP:127.0.0.1\nbasicConstraints = CA:FALSE\n"
              "keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n")
    make_cert(d, "ca", "agent", "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n"
                                "extendedKeyUsage = clientAuth\n")
    return d


def tls_coordinator(tmp_path, conninfo, pki, extra=""):
    coord = Coordinator(tmp_path, conninfo, channel_listen="tls+tcp://127.0.0.1:0",
                        extra=f"[channel]\ntls_cert_file = {pki / 'coordinator.crt'}\n"
                              f"tls_key_file = {pki / 'coordinator.key'}\n{extra}")
    coord.admin_key = coord.create_admin_key()
    return coord


class Agent:
    """A registered server whose agent runs in the host's namespace (it reaches
    127.0.0.1) and drives a wireguard-go in a namespace through its UAPI socket."""

    def __init__(self, tmp_path, coord, wggo, name="vps1"):
        self.tmp, self.coord, self.w, self.name = tmp_path, coord, wggo, name
        self.conf = tmp_path / "agent.conf"
        self.log_path = tmp_path / "agent.log"
        self.proc = None
        self.configure(None)
        self.public = run([binary("wgfleet-agent"), "--config", str(self.conf), "init"],
                          check=True).stdout.strip()
        status, _, body = coord.request("POST", "/v1/servers", coord.admin_key, {
            "name": name, "endpoint": "192.0.2.1:51820", "pool": "10.100.0.0/24",
            "gateway": "10.100.0.1", "agent_key": self.public})
        assert status == 201, body

    def configure(self, tls):
        """tls: the [coordinator] tls_ lines; None leaves the coordinator out."""
        text = (f"[agent]\nstate_directory = {self.tmp / 'agent-state'}\n"
                f"reconcile_interval = 1s\n"
                f"[wireguard]\ninterface = {self.w.ifname}\nbackend = userspace\n"
                f"[monitor]\ninterval = 300ms\n")
        if tls is not None:
            text += (f"[coordinator]\nurls = {self.coord.channel_url}\n"
                     f"public_key = {self.coord.channel_public_key}\nserver = {self.name}\n"
                     f"resync_interval = 2s\nrequest_timeout = 3s\n{tls}")
        self.conf.write_text(text)

    def start(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary("wgfleet-agent"), "--config", str(self.conf), "run",
                                      "--foreground"],
                                     stdout=subprocess.DEVNULL, stderr=self.log,
                                     start_new_session=True)

    def messages(self):
        return log_lines(self.log_path.read_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout=10) == 0
            finally:
                if self.proc.poll() is None:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
        if self.proc:
            self.log.close()
        self.proc = None

    def server(self):
        items = self.coord.request("GET", "/v1/servers", self.coord.admin_key)[2]["items"]
        return next(s for s in items if s["name"] == self.name)


@pytest.fixture
def wggo(tmp_path):
    w = WireguardGo(tmp_path)
    try:
        w.start()
        yield w
    finally:
        w.close()


def add_router(coord, server):
    """A tenant's router on server with a key submitted: returns (id, public key)."""
    assert coord.request("POST", "/v1/tenants", coord.admin_key,
                         {"slug": "acme", "name": "Acme"})[0] == 201
    key = coord.request("POST", "/v1/tenants/acme/keys", coord.admin_key, {})[2]["key"]
    coord.tenant_key = key
    status, _, r = coord.request("POST", "/v1/routers", key, {"server": server})
    assert status == 201, r
    pub = new_key()
    status, _, r = coord.request("PUT", f"/v1/routers/{r['id']}/public-key", key,
                                 {"public_key": pub})
    assert status == 200, r
    return r["id"], pub


def router_status(coord, rid):
    return coord.request("GET", f"/v1/routers/{rid}", coord.tenant_key)[2]["vpn_status"]


@needs_wireguard
@pytest.mark.parametrize("client_certs", [False, True], ids=["server-cert", "client-certs"])
def test_agent_syncs_over_tls(tmp_path, migrated_db, pki, wggo, client_certs):
    extra = f"tls_client_ca_file = {pki / 'ca.crt'}\n" if client_certs else ""
    coord = tls_coordinator(tmp_path, migrated_db[1], pki, extra)
    # The private key is refused while others may read it, before anything listens.
    (pki / "coordinator.key").chmod(0o644)
    proc = run([binary("wgfleet-coordinator"), "--config", coord.config, "serve"], timeout=20)
    assert proc.returncode == 1
    assert f"{pki / 'coordinator.key'}: readable by other users (mode 644); chmod 600 it" \
        in proc.stderr
    (pki / "coordinator.key").chmod(0o600)
    coord.start()
    agent = None
    try:
        # The URL the coordinator reports keeps its scheme with the bound port.
        assert re.fullmatch(r"tls\+tcp://127\.0\.0\.1:[1-9][0-9]*", coord.channel_url), \
            coord.channel_url
        agent = Agent(tmp_path, coord, wggo)
        rid, pub = add_router(coord, "vps1")
        assert router_status(coord, rid) == "configured"
        tls = f"tls_ca_file = {pki / 'ca.crt'}\ntls_server_name = localhost\n"
        if client_certs:
            tls += f"tls_cert_file = {pki / 'agent.crt'}\ntls_key_file = {pki / 'agent.key'}\n"
        agent.configure(tls)
        agent.start()
        # Synced: the peer is on the interface, and the applied revision reached the
        # coordinator (the router is vps_ready), with the interface's key and port.
        wait_for("the peer on the interface", lambda: pub in wggo.peers(), timeout=15)
        wait_for("vps_ready", lambda: router_status(coord, rid) == "vps_ready", timeout=15)
        server = wait_for("the interface's key", lambda: agent.server()["public_key"] and
                          agent.server(), timeout=15)
        assert server["listen_port"] == 51820
        assert not {HANDSHAKE_FAILED, CANNOT_CONNECT} & {m.get("msg") for m in agent.messages()}
    finally:
        if agent:
            agent.stop()
        coord.stop()


@needs_wireguard
def test_agent_with_the_wrong_ca_never_syncs_and_says_why(tmp_path, migrated_db, pki, wggo):
    coord = tls_coordinator(tmp_path, migrated_db[1], pki)
    coord.start()
    agent = None
    try:
        agent = Agent(tmp_path, coord, wggo)
        rid, pub = add_router(coord, "vps1")
        agent.configure(f"tls_ca_file = {pki / 'other.crt'}\ntls_server_name = localhost\n")
        agent.start()
        line = wait_for("the agent's handshake warning", lambda: next(
            (m for m in agent.messages() if m.get("msg") == HANDSHAKE_FAILED), None),
            timeout=15)
        assert line["level"] == "warning" and line["url"] == coord.channel_url
        assert line["reason"].startswith("certificate verification failed")
        assert line["server_name"] == "localhost"
        assert line["tls_ca_file"] == str(pki / "other.crt")
        assert int(line["failures"]) >= 1
        # Nothing got through: no peer, no report, the router still waits.
        assert wggo.peers() == {}
        assert router_status(coord, rid) == "configured"
        assert agent.server()["public_key"] is None
        assert agent.proc.poll() is None  # it keeps trying
    finally:
        if agent:
            agent.stop()
        coord.stop()


@needs_wireguard
def test_required_client_certificate_keeps_an_agent_without_one_out(tmp_path, migrated_db, pki,
                                                                    wggo):
    coord = tls_coordinator(tmp_path, migrated_db[1], pki,
                            f"tls_client_ca_file = {pki / 'ca.crt'}\n")
    coord.start()
    agent = None
    try:
        agent = Agent(tmp_path, coord, wggo)
        rid, _ = add_router(coord, "vps1")
        agent.configure(f"tls_ca_file = {pki / 'ca.crt'}\ntls_server_name = localhost\n")
        agent.start()
        line = wait_for("the agent's connection warning", lambda: next(
            (m for m in agent.messages() if m.get("msg") == CANNOT_CONNECT), None),
            timeout=15)
        assert line["reason"].startswith("closed during the TLS handshake")
        assert line["tls_cert_file"] == "(none)" and int(line["failures"]) >= 1
        assert HANDSHAKE_FAILED not in [m.get("msg") for m in agent.messages()]
        assert wggo.peers() == {}
        assert router_status(coord, rid) == "configured"
        assert agent.server()["public_key"] is None
    finally:
        if agent:
            agent.stop()
        coord.stop()


@pytest.mark.parametrize("channel,message", [
    ("listen = tls+tcp://127.0.0.1:7800\n",
     "[channel] listen 'tls+tcp://127.0.0.1:7800' is a tls+tcp:// URL: set tls_cert_file and "
     "tls_key_file (its certificate chain and private key)"),
    ("listen = tls+tcp://127.0.0.1:7800\ntls_cert_file = /etc/c.crt\n",
     "[channel] listen 'tls+tcp://127.0.0.1:7800' is a tls+tcp:// URL: set tls_cert_file and "
     "tls_key_file (its certificate chain and private key)"),
    ("listen = tcp://127.0.0.1:7800\ntls_key_file = /etc/c.key\n",
     "[channel] tls_key_file is set, but listen 'tcp://127.0.0.1:7800' is not a tls+tcp:// "
     "URL (TLS settings apply only to tls+tcp://)"),
])
def test_coordinator_tls_settings_are_checked_at_load(tmp_path, channel, message):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[channel]\n{channel}")
    proc = run([binary("wgfleet-coordinator"), "--config", str(conf), "check-config"])
    assert proc.returncode == 1
    assert log_messages(proc.stderr) == [f"Invalid configuration: {conf}: {message}"]


@pytest.mark.parametrize("coordinator,message", [
    ("urls = tls+tcp://coord1.example.net:7800\n",
     "[coordinator] 'tls+tcp://coord1.example.net:7800' in urls is a tls+tcp:// URL: set "
     "tls_ca_file to verify the coordinator with"),
    ("urls = tls+tcp://c1:7800,tcp://c2:7800\ntls_ca_file = /etc/ca.crt\n",
     "[coordinator] tls_ca_file is set, but 'tcp://c2:7800' in urls is not a tls+tcp:// URL "
     "(TLS settings apply to every URL)"),
    ("urls = tls+tcp://c1:7800\ntls_ca_file = /etc/ca.crt\ntls_key_file = /etc/a.key\n",
     "[coordinator] tls_cert_file and tls_key_file go together"),
])
def test_agent_tls_settings_are_checked_at_load(tmp_path, coordinator, message):
    conf = tmp_path / "a.conf"
    conf.write_text(f"[coordinator]\n{coordinator}")
    proc = run([binary("wgfleet-agent"), "--config", str(conf), "check-config"])
    assert proc.returncode == 1
    assert log_messages(proc.stderr) == [f"Invalid configuration: {conf}: {message}"]
