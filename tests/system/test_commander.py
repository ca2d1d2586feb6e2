"""The coordinator's command client (coordinator/commander.c) against real
agents on a real sandbox, driven through orch-cmdtool (tests/tools/cmdtool.c):
one commander per tool process, living across a test's steps (--stdin rounds),
so socket reuse, reconnection and timeouts are those the coordinator gets.

Forged replies (bad HMAC, wrong command id or epoch, another host, garbage)
are covered by tests/unit/test_commander.c with fake agents."""

import json
import os
import queue
import signal
import statistics
import subprocess
import threading
import time

import pytest

from orchagents import AGENT_HOST, stop_pid, up
from orchtest import binary, require_binary, wait_until


@pytest.fixture(autouse=True)
def _cmdtool():
    require_binary("orch-cmdtool")


class CmdTool:
    """orch-cmdtool --stdin in the background: round(specs) submits them at once
    and returns (answers by spec index, the round's done line)."""

    def __init__(self, tmp_dir, secret, epoch, timeout_ms=2000, extra=(), name="cmdtool"):
        args = [str(binary("orch-cmdtool")), "--stdin", "--stats", "--epoch", str(epoch),
                "--timeout-ms", str(timeout_ms), "--log-level", "debug", *extra]
        args += ["--secret", secret] if secret else ["--insecure"]
        self.err_path = os.path.join(tmp_dir, f"{name}.log")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, start_new_session=True)
        self.lines = queue.Queue()
        self.rounds = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"unparsed": line})
        self.lines.put(None)

    def submit(self, specs):
        self.rounds += 1
        self.proc.stdin.write(" ".join(specs) + "\n")
        self.proc.stdin.flush()
        return self.rounds

    def collect(self, round_no, timeout=30):
        got, deadline = {}, time.monotonic() + timeout
        while True:
            d = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert d is not None, f"orch-cmdtool exited: {self.log()}"
            if d.get("round") != round_no:
                continue
            if d.get("done"):
                return got, d
            got[d["index"]] = d

    def round(self, specs, timeout=30):
        return self.collect(self.submit(specs), timeout)

    def stop(self, sig=signal.SIGTERM):
        """Stops the tool; returns (exit code, the lines it printed since)."""
        code = stop_pid(self.proc, timeout=10, sig=sig)
        self.thread.join(timeout=5)
        rest = []
        while True:
            try:
                d = self.lines.get_nowait()
            except queue.Empty:
                break
            if d is not None:
                rest.append(d)
        self.proc.stdout.close()
        self.proc.stdin.close()
        self.err.close()
        log = self.log()
        assert "Sanitizer" not in log and "runtime error" not in log, log
        return code, rest

    def log(self):
        with open(self.err_path) as f:
            return f.read()


@pytest.fixture
def make_tool(tmp_dir):
    made = []

    def make(secret, epoch, **kwargs):
        t = CmdTool(tmp_dir, secret, epoch, name=f"cmdtool{len(made)}", **kwargs)
        made.append(t)
        return t

    yield make
    for t in made:
        if t.proc.poll() is None:
            t.stop()


def spec(agents, name, ctype, scheme=None, **kw):
    scheme = scheme or agents.scheme
    s = f"host={AGENT_HOST},url={scheme}://127.0.0.1:{agents.command_ports[name]},type={ctype}"
    return s + "".join(f",{k}={v}" for k, v in kw.items())


def ok(d):
    return d["status"] == "REPLIED" and d["result"] == "OK"


def all_up(agents):
    for name in agents.configs:
        agents.wait_report(name, up, 20)


def pause(agents, name):
    os.kill(agents.procs[name].pid, signal.SIGSTOP)


def resume(agents, name):
    os.kill(agents.procs[name].pid, signal.SIGCONT)


def test_ping_and_report_now_to_four_agents_in_parallel(sandbox, make_agents, make_tool):
    agents = make_agents(sandbox)
    all_up(agents)
    names = sorted(agents.configs)
    tool = make_tool(agents.secret, epoch=1)

    got, done = tool.round([spec(agents, n, "PING") for n in names])
    assert len(got) == 4 and all(ok(d) for d in got.values()), got
    assert all("state" not in d and d["obeyed_epoch"] == 1 for d in got.values()), got

    got, done = tool.round([spec(agents, n, "REPORT_NOW") for n in names])
    for i, n in enumerate(names):
        d = got[i]
        assert ok(d), d
        st = d["state"]
        assert st["state"] == "PROBE_UP" and st["port"] == agents.port(n), d
        assert st["host"] == AGENT_HOST and st["obeyed_epoch"] == 1
        assert bool(st.get("channels")) == (n != "db1"), st  # replicas replicate

    # Round trips over kept sockets: 4 agents at once, 25 rounds.
    rtts, rounds = [], []
    for _ in range(25):
        got, done = tool.round([spec(agents, n, "PING") for n in names])
        assert all(ok(d) for d in got.values()), got
        rtts += [d["rtt_us"] for d in got.values()]
        rounds.append(done["elapsed_us"])
    med, p90 = statistics.median(rtts), sorted(rtts)[int(len(rtts) * 0.9)]
    print(f"PING rtt over {len(rtts)} commands: median {med / 1000:.2f} ms, p90 "
          f"{p90 / 1000:.2f} ms, max {max(rtts) / 1000:.2f} ms; round of 4 median "
          f"{statistics.median(rounds) / 1000:.2f} ms")
    assert med < 50_000, rtts

    code, rest = tool.stop()
    assert code == 0, (code, rest, tool.log())
    stats = [d["stats"] for d in rest if "stats" in d][0]
    assert stats["sockets_opened"] == 4, stats  # one per agent, kept across rounds
    assert stats["by_status"]["REPLIED"] == 27 * 4 and stats["pending"] == 0, stats


def test_stop_and_start_replica_are_really_applied(sandbox, make_agents, make_tool):
    agents = make_agents(sandbox)
    all_up(agents)
    tool = make_tool(agents.secret, epoch=2)

    got, _ = tool.round([spec(agents, "db2", "STOP_REPLICA", io_only=1),
                         spec(agents, "db3", "STOP_REPLICA")])
    assert ok(got[0]) and ok(got[1]), got
    st2 = sandbox.server("db2").slave_status()
    st3 = sandbox.server("db3").slave_status()
    assert st2["Slave_IO_Running"] == "No" and st2["Slave_SQL_Running"] == "Yes", st2
    assert st3["Slave_IO_Running"] == "No" and st3["Slave_SQL_Running"] == "No", st3
    # the state in the reply is the instance after the command
    assert got[0]["state"]["channels"][0]["io_thread"] == "THREAD_NO", got[0]
    assert got[1]["state"]["channels"][0]["sql_thread"] == "THREAD_NO", got[1]

    got, _ = tool.round([spec(agents, "db2", "START_REPLICA"),
                         spec(agents, "db3", "START_REPLICA")])
    assert ok(got[0]) and ok(got[1]), got
    for n in ("db2", "db3"):
        wait_until(lambda: sandbox.server(n).slave_status()["Slave_IO_Running"] == "Yes"
                   and sandbox.server(n).slave_status()["Slave_SQL_Running"] == "Yes",
                   10, f"{n} replicating again")

    # read-only off and on, applied on the server
    got, _ = tool.round([spec(agents, "db4", "SET_READ_ONLY", read_only=0)])
    assert ok(got[0]) and sandbox.server("db4").value("SELECT @@read_only") == 0, got
    got, _ = tool.round([spec(agents, "db4", "SET_READ_ONLY", read_only=1)])
    assert ok(got[0]) and sandbox.server("db4").value("SELECT @@read_only") == 1, got

    # WaitForGtid with a GTID set that holds commas (continuation in the spec)
    pos = sandbox.server("db1").value("SELECT @@gtid_binlog_pos")
    got, _ = tool.round([spec(agents, "db4", "WAIT_FOR_GTID", gtid_set=pos, timeout_ms=5000,
                              deadline_ms=8000)])
    assert ok(got[0]), got


def test_stale_epoch_is_surfaced_as_such(sandbox, make_agents, make_tool):
    agents = make_agents(sandbox, only=("db2",))
    all_up(agents)
    tool = make_tool(agents.secret, epoch=5)
    got, _ = tool.round([spec(agents, "db2", "PING")])
    assert ok(got[0]) and got[0]["obeyed_epoch"] == 5, got
    # a deposed leader (epoch 4) is refused, and nothing runs
    got, _ = tool.round([spec(agents, "db2", "STOP_REPLICA", epoch=4)])
    d = got[0]
    assert d["status"] == "REPLIED" and d["result"] == "STALE_EPOCH", d
    assert d["obeyed_epoch"] == 5 and "no longer the leader" in d["error"], d
    assert d["epoch"] == 4
    assert sandbox.server("db2").slave_status()["Slave_IO_Running"] == "Yes"
    assert "ORCH-CMD-STALE-EPOCH" in tool.log()
    # the current leader still is obeyed
    got, _ = tool.round([spec(agents, "db2", "PING")])
    assert ok(got[0]), got
    code, rest = tool.stop()
    assert code == 3  # not every command was OK


def test_wrong_secret_is_refused_and_reported(sandbox, make_agents, make_tool):
    agents = make_agents(sandbox, only=("db2",))
    all_up(agents)
    tool = make_tool("not-the-fleet-secret", epoch=1)
    got, _ = tool.round([spec(agents, "db2", "STOP_REPLICA")])
    d = got[0]
    assert d["status"] == "BAD_SIGNATURE" and d["result"] is None, d
    assert "unverified reply says: BAD_REQUEST" in d["error"], d
    assert "authentication failed" in d["error"], d
    assert sandbox.server("db2").slave_status()["Slave_IO_Running"] == "Yes"  # not executed
    assert "ORCH-CMD-REJECTED" in agents.log_path("db2").read_text()
    assert "ORCH-CMD-BAD-REPLY" in tool.log()


def test_frozen_agent_costs_its_timeout_and_delays_nobody(sandbox, make_agents, make_tool):
    agents = make_agents(sandbox)
    all_up(agents)
    names = sorted(agents.configs)
    timeout_ms = 1500
    tool = make_tool(agents.secret, epoch=1, timeout_ms=timeout_ms)
    got, _ = tool.round([spec(agents, n, "PING") for n in names])  # connect everyone
    assert all(ok(d) for d in got.values()), got

    pause(agents, "db3")
    try:
        for ctype in ("PING", "REPORT_NOW"):
            got, done = tool.round([spec(agents, n, ctype) for n in names])
            frozen = got[names.index("db3")]
            others = [got[i] for i, n in enumerate(names) if n != "db3"]
            assert frozen["status"] == "TIMEOUT" and frozen["sent"], frozen
            took = frozen["since_round_us"] / 1000
            assert timeout_ms - 50 <= took <= timeout_ms + 500, frozen
            assert all(ok(d) for d in others), others
            # parallelism: the others answered while db3 was still pending
            slowest = max(d["since_round_us"] for d in others) / 1000
            print(f"{ctype}: frozen agent answered TIMEOUT after {took:.0f} ms "
                  f"(timeout {timeout_ms}); the other three within {slowest:.1f} ms")
            assert slowest < 300, others
            assert done["elapsed_us"] / 1000 < timeout_ms + 500
    finally:
        resume(agents, "db3")
    # back: the abandoned requests do not confuse the next ones
    got, _ = tool.round([spec(agents, n, "PING") for n in names])
    assert all(ok(d) for d in got.values()), got
    assert "ORCH-CMD-TIMEOUT" in tool.log()


def test_killed_agent_fails_fast_and_a_restarted_one_is_reached(sandbox, make_agents,
                                                               make_tool):
    agents = make_agents(sandbox, only=("db1", "db2"))
    all_up(agents)
    tool = make_tool(agents.secret, epoch=1, timeout_ms=2000)
    got, _ = tool.round([spec(agents, "db1", "PING"), spec(agents, "db2", "PING")])
    assert ok(got[0]) and ok(got[1]), got

    # A: killed, restarted, and only then commanded: the kept socket reconnects.
    boot = agents.latest("db1")["boot_id"]
    agents.stop_one("db1", sig=signal.SIGKILL)
    agents.start_one("db1")
    agents.wait_report("db1", lambda r: up(r) and r["boot_id"] != boot, 20)
    got, _ = tool.round([spec(agents, "db1", "PING")])
    assert ok(got[0]), got
    print(f"restarted agent answered {got[0]['rtt_us'] / 1000:.1f} ms after the send")

    # B: killed and commanded while dead: no hang, an error within the timeout.
    agents.stop_one("db1", sig=signal.SIGKILL)
    got, done = tool.round([spec(agents, "db1", "REPORT_NOW"), spec(agents, "db2", "PING")])
    dead = got[0]
    assert dead["status"] == "UNREACHABLE" and not dead["sent"], dead
    assert 2000 - 50 <= dead["since_round_us"] / 1000 <= 2000 + 500, dead
    assert ok(got[1]) and got[1]["since_round_us"] < 300_000, got[1]
    print(f"dead agent: {dead['status']} after {dead['since_round_us'] / 1000:.0f} ms: "
          f"{dead['error']}")

    # ...then restarted: the next command succeeds.
    agents.start_one("db1")
    agents.wait_report("db1", up, 20)
    got, _ = tool.round([spec(agents, "db1", "PING")])
    assert ok(got[0]), (got, tool.log())

    # C: killed with a command in hand (frozen first, so that it cannot answer):
    # answered as soon as the connection drops, not at the timeout, and marked
    # sent (the outcome is unknown).
    pause(agents, "db1")
    n = tool.submit([spec(agents, "db1", "STOP_REPLICA", deadline_ms=10000)])
    time.sleep(0.3)
    t0 = time.monotonic()
    agents.stop_one("db1", sig=signal.SIGKILL)
    got, _ = tool.collect(n)
    lost = got[0]
    took = time.monotonic() - t0
    assert lost["status"] == "UNREACHABLE" and lost["sent"], lost
    assert took < 1.5, (took, lost)
    print(f"agent killed with a command in hand: {lost['status']} {took * 1000:.0f} ms later: "
          f"{lost['error']}")
    agents.start_one("db1")
    agents.wait_report("db1", up, 20)
    got, _ = tool.round([spec(agents, "db1", "PING")])
    assert ok(got[0]), (got, tool.log())

    code, rest = tool.stop()
    assert code == 3, (code, rest)  # clean exit; not every command was OK
    stats = [d["stats"] for d in rest if "stats" in d][0]
    assert stats["sockets_closed_unreachable"] >= 1, stats


def test_stop_answers_commands_in_flight_as_closed(sandbox, make_agents, make_tool):
    agents = make_agents(sandbox, only=("db1", "db2"))
    all_up(agents)
    tool = make_tool(agents.secret, epoch=1, timeout_ms=30000)
    got, _ = tool.round([spec(agents, "db1", "PING")])
    assert ok(got[0]), got
    pause(agents, "db1")
    try:
        n = tool.submit([spec(agents, "db1", "PING"), spec(agents, "db1", "REPORT_NOW"),
                         spec(agents, "db2", "PING")])
        first = tool.lines.get(timeout=10)  # db2 answers; db1's two stay pending
        assert first["index"] == 2 and ok(first), first
        t0 = time.monotonic()
        code, rest = tool.stop()
        took = time.monotonic() - t0
    finally:
        resume(agents, "db1")
    assert code == 3, (code, rest)  # answered (CLOSED), cleanly, not all OK
    closed = [d for d in rest if d.get("round") == n and "index" in d]
    assert sorted(d["index"] for d in closed) == [0, 1], rest
    assert all(d["status"] == "CLOSED" for d in closed), closed
    assert closed[0]["sent"] or closed[1]["sent"]  # one was on the wire
    assert took < 3, took
    print(f"tool stopped {took * 1000:.0f} ms after SIGTERM with 2 commands pending")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def pki(tmp_dir):
    """A CA and one certificate (DNS SAN localhost) for both sides, ECDSA P-256."""
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


def test_commands_over_mutual_tls_check_the_server_name(sandbox, make_agents, make_tool, pki):
    agents = make_agents(sandbox, tls=pki, only=("db1", "db2"))
    all_up(agents)
    tls = ["--tls-ca", pki["ca"], "--tls-cert", pki["cert"], "--tls-key", pki["key"]]
    tool = make_tool(agents.secret, epoch=1, timeout_ms=3000,
                     extra=tls + ["--tls-server-name", "localhost"])
    got, _ = tool.round([spec(agents, "db1", "PING"), spec(agents, "db2", "REPORT_NOW")])
    assert ok(got[0]) and ok(got[1]), (got, tool.log())
    assert got[1]["state"]["command_listen"].startswith("tls+tcp://")
    got, _ = tool.round([spec(agents, "db1", "STOP_REPLICA", io_only=1)])
    assert ok(got[0]), got  # db1 is the primary: nothing to stop, still OK (idempotent)

    # stopping with a command on the wire to a frozen agent: no hang in nng_close
    pause(agents, "db2")
    try:
        tool.submit([spec(agents, "db2", "PING", deadline_ms=20000)])
        time.sleep(0.3)
        t0 = time.monotonic()
        code, rest = tool.stop()
        took = time.monotonic() - t0
    finally:
        resume(agents, "db2")
    assert code == 3 and took < 3, (code, took, rest)
    assert [d["status"] for d in rest if "index" in d] == ["CLOSED"], rest

    # the agent certificate does not name this host: no connection, nothing sent
    wrong = make_tool(agents.secret, epoch=1, timeout_ms=1500,
                      extra=tls + ["--tls-server-name", "db9.example"])
    got, _ = wrong.round([spec(agents, "db1", "PING")])
    assert got[0]["status"] == "UNREACHABLE" and not got[0]["sent"], got
    # the name rule: host + suffix ("127.0.0.1" + suffix never matches "localhost")
    suffixed = make_tool(agents.secret, epoch=1, timeout_ms=1500,
                         extra=tls + ["--tls-server-name-suffix", ".example"])
    got, _ = suffixed.round([spec(agents, "db1", "PING")])
    assert got[0]["status"] == "UNREACHABLE", got
