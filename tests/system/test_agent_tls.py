"""orch-agent over mutual TLS (tls+tcp://), with real certificates, and the
nng 1.5.2 hazards: TLS endpoints closing and restarting under a sender must
never hang or crash the agent, and the agent must stop promptly."""

import subprocess
import time

import pytest

from orchtest import require_binary, wait_until


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def pki(tmp_dir):
    """A CA, and one certificate for both sides with DNS SAN 'localhost'
    (mbedtls 2.28 matches DNS SANs only). ECDSA P-256 keeps handshakes cheap."""
    d = tmp_dir
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    openssl("req", "-x509", "-new", "-key", "ca.key", "-days", "2", "-subj", "/CN=orch-test-ca",
            "-out", "ca.pem", cwd=d)
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "node.key", cwd=d)
    openssl("req", "-new", "-key", "node.key", "-subj", "/CN=localhost", "-out", "node.csr", cwd=d)
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "node.pem", cwd=d)
    return {"ca": f"{d}/ca.pem", "cert": f"{d}/node.pem", "key": f"{d}/node.key"}


@pytest.fixture
def tls_agents(sandbox, make_agents, pki):
    require_binary("orch-agent")
    require_binary("orch-wiretool")
    return make_agents(sandbox, tls=pki, only=("db1", "db2"))


def test_reports_and_commands_over_mutual_tls(tls_agents, sandbox):
    agents = tls_agents
    r = agents.wait_report("db1", lambda r: r["state"] == "PROBE_UP", 15)
    assert r["command_listen"].startswith("tls+tcp://")
    assert all(d["verified"] for d in agents.receiver.all())
    reply = agents.command("db2", "STOP_REPLICA", 1, 1, io_only=True)
    assert reply["result"] == "OK", reply
    assert sandbox.server("db2").slave_status()["Slave_IO_Running"] == "No"
    assert agents.command("db2", "START_REPLICA", 1, 2)["result"] == "OK"
    # plain TCP to a TLS listener gets nothing, and the agent does not care
    reply = agents.command("db2", "PING", 1, 3, scheme="tcp", recv_timeout_ms=1500)
    assert reply["result"] in ("NO_REPLY", "ERROR", "UNREACHABLE"), reply
    assert agents.command("db2", "PING", 1, 4)["result"] == "OK"


def test_tls_receiver_restarts_never_hang_or_crash_the_agent(tls_agents):
    agents = tls_agents
    agents.wait_report("db1", lambda r: r["state"] == "PROBE_UP", 15)
    for i in range(12):
        agents.receiver.stop()          # the coordinator's TLS endpoint closes mid-stream
        agents.receiver.lines.clear()
        time.sleep(0.05 * (i % 4))      # at varied points of the agents' send cycle
        agents.receiver.start()
        if i % 4 == 3:
            agents.wait_report("db1", lambda r: r["state"] == "PROBE_UP", 15,
                               "TLS reports after a receiver restart")
    for name, proc in agents.procs.items():
        assert proc.poll() is None, f"agent {name} died: exit {proc.returncode}"


def test_agent_stops_promptly_while_sending_over_tls(tls_agents):
    """nng 1.5.2 can deadlock in nng_close of a TLS socket right after a send;
    the agent closes its dialers first. Stop it repeatedly mid-stream."""
    agents = tls_agents
    agents.wait_report("db1", lambda r: r["state"] == "PROBE_UP", 15)
    for i in range(6):
        t0 = time.monotonic()
        code = agents.stop_one("db1", timeout=10)
        took = time.monotonic() - t0
        assert code == 0, f"round {i}: agent did not exit cleanly within 10 s (code {code})"
        assert took < 5, f"round {i}: stopping took {took:.1f} s"
        agents.start_one("db1")
        time.sleep(0.3 + 0.1 * i)
        wait_until(lambda: agents.procs["db1"].poll() is None, 2, "the agent to keep running")
