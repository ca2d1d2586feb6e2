"""System tests of orch-agent against real MariaDB servers (sandbox), with a
real receiver of its reports (orch-wiretool listen) and real signals."""

import json
import os
import signal
import subprocess
import time

import pymysql
import pytest

from orchagents import channel, up
from orchtest import binary, wait_until

def test_reports_are_signed_complete_and_heartbeat(sandbox, make_agents):
    agents = make_agents(sandbox)
    primary = agents.wait_report("db1", lambda r: up(r) and len(r.get("replicas", [])) == 3)
    assert primary["server"]["read_only"] is False
    assert primary["server"]["log_bin"] and primary["server"]["gtid_strict_mode"]
    assert {x["port"] for x in primary["replicas"]} == {sandbox.servers[n].port
                                                        for n in ("db2", "db3", "db4")}
    assert "127.0.0.1" in primary["aliases"]
    assert primary["problems"] == [], primary["problems"]
    for name in ("db2", "db3", "db4"):
        r = agents.wait_report(name, lambda r: up(r) and channel(r) and
                               channel(r).get("witness") == "WITNESS_GREETING")
        ch = channel(r)
        assert ch["master_port"] == sandbox.primary.port
        assert ch["io_thread"] == "THREAD_YES" and ch["sql_thread"] == "THREAD_YES"
        assert ch["seconds_behind_master"] == 0
        assert r["server"]["read_only"] is True
    # every report verified under key(127.0.0.1); heartbeats keep coming with
    # growing sequence numbers although nothing changes
    first = len(agents.receiver.all(sandbox.primary.port))
    wait_until(lambda: len(agents.receiver.all(sandbox.primary.port)) >= first + 2, 5,
               "two heartbeats from db1")
    reports = agents.receiver.all(sandbox.primary.port)
    assert all(d["verified"] for d in agents.receiver.all())
    seqs = [d["report"]["seq"] for d in reports]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    gaps = [b["_t"] - a["_t"] for a, b in zip(reports[-3:], reports[-2:])]
    assert all(g < 1.6 for g in gaps), gaps


def test_wrong_fleet_secret_fails_verification(sandbox, make_agents):
    agents = make_agents(sandbox, start=False)
    agents.receiver.secret = "not-the-fleet-secret"
    agents.start()
    wait_until(lambda: len(agents.receiver.all()) >= 4, 10, "reports from four agents")
    assert not any(d["verified"] for d in agents.receiver.all())


def test_kill9_primary_is_reported_down_within_a_probe_interval(sandbox, make_agents):
    agents = make_agents(sandbox, probe_interval_ms=500)
    agents.wait_report("db1", up)
    t0 = time.monotonic()
    sandbox.kill("db1", signal.SIGKILL)
    r = agents.wait_report("db1", lambda r: r["state"] == "PROBE_DOWN", 5)
    d = [x for x in agents.receiver.all(sandbox.primary.port)
         if x["report"]["state"] == "PROBE_DOWN"][0]
    elapsed = d["_t"] - t0
    print(f"kill -9 -> DOWN report after {elapsed * 1000:.0f} ms")
    # one probe interval plus scheduling slack on a loaded 2-core machine
    assert elapsed < 0.5 + 0.4, elapsed
    assert "connect" in r["probe_error"].lower() or "gone" in r["probe_error"].lower()
    # replicas see the master gone: IO thread connecting, witness refused
    for name in ("db2", "db3", "db4"):
        agents.wait_report(name, lambda r: channel(r) and
                           channel(r).get("witness") == "WITNESS_REFUSED", 5)


def test_sigstop_primary_unresponsive_and_witnesses_time_out(make_sandbox, make_agents):
    sb = make_sandbox("1+3", slave_net_timeout=30)
    agents = make_agents(sb, probe_timeout_ms=400, witness_timeout_ms=400)
    agents.wait_report("db2", lambda r: channel(r) and channel(r).get("witness") ==
                       "WITNESS_GREETING")
    sb.kill("db1", signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        agents.wait_report("db1", lambda r: r["state"] == "PROBE_UNRESPONSIVE", 5)
        print(f"SIGSTOP -> UNRESPONSIVE after {(time.monotonic() - t0) * 1000:.0f} ms")
        for name in ("db2", "db3", "db4"):
            r = agents.wait_report(name, lambda r: channel(r) and channel(r).get("witness") ==
                                   "WITNESS_TIMEOUT", 5)
            # the hole the witness closes: the replica itself still looks fine
            assert channel(r)["io_thread"] == "THREAD_YES"
            assert up(r), "a replica's own state must not turn UNRESPONSIVE"
    finally:
        sb.kill("db1", signal.SIGCONT)
    agents.wait_report("db1", up, 10)
    agents.wait_report("db2", lambda r: channel(r).get("witness") == "WITNESS_GREETING", 10)


def slave_status(sb, name):
    return sb.server(name).slave_status()


def test_commands_really_change_the_servers(sandbox, make_agents):
    agents = make_agents(sandbox)
    agents.wait_report("db2", up)
    r = agents.command("db2", "STOP_REPLICA", 1, 1, io_only=True)
    assert r["result"] == "OK" and r["verified"], r
    st = slave_status(sandbox, "db2")
    assert st["Slave_IO_Running"] == "No" and st["Slave_SQL_Running"] == "Yes"
    assert channel(r["reply"]["state"])["io_thread"] == "THREAD_NO"  # state afterwards

    assert agents.command("db2", "START_REPLICA", 1, 2)["result"] == "OK"
    wait_until(lambda: slave_status(sandbox, "db2")["Slave_IO_Running"] == "Yes", 10,
               "db2 IO thread running again")

    # db4 moves below db3 (GTID), then back below db1
    r = agents.command("db4", "CHANGE_MASTER", 1, 3, master_host="127.0.0.1",
                       master_port=sandbox.servers["db3"].port, start=True)
    assert r["result"] == "OK", r
    st = slave_status(sandbox, "db4")
    assert int(st["Master_Port"]) == sandbox.servers["db3"].port
    assert st["Using_Gtid"] == "Slave_Pos" and int(st["Connect_Retry"]) == 1
    sandbox.sql("db1", "CREATE DATABASE IF NOT EXISTS agenttest")
    sandbox.sql("db1", "CREATE TABLE agenttest.t (id INT PRIMARY KEY)")
    sandbox.sql("db1", "INSERT INTO agenttest.t VALUES (1)")
    wait_until(lambda: sandbox.sql("db4", "SELECT COUNT(*) AS n FROM agenttest.t")[0]["n"] == 1,
               10, "the row on db4 through db3")

    # read_only off and on, verified on the server
    assert agents.command("db4", "SET_READ_ONLY", 1, 4, read_only=0)["result"] == "OK"
    assert sandbox.server("db4").value("SELECT @@read_only") == 0
    assert agents.command("db4", "SET_READ_ONLY", 1, 5, read_only=1)["result"] == "OK"
    assert sandbox.server("db4").value("SELECT @@read_only") == 1

    # WaitForGtid: reached at once; a position far ahead times out
    pos = sandbox.server("db1").value("SELECT @@gtid_binlog_pos")
    r = agents.command("db4", "WAIT_FOR_GTID", 1, 6, gtid_set=pos, timeout_ms=5000)
    assert r["result"] == "OK", r
    domain, server, seq = pos.split(",")[0].split("-")
    r = agents.command("db4", "WAIT_FOR_GTID", 1, 7, gtid_set=f"{domain}-{server}-{int(seq) + 99}",
                       timeout_ms=300)
    assert r["result"] == "TIMEOUT", r

    # bad arguments are refused with a reason, not executed
    r = agents.command("db4", "CHANGE_MASTER", 1, 8, master_host="db'; DROP", master_port=1)
    assert r["result"] == "BAD_REQUEST" and "invalid character" in r["error"], r


def test_epoch_rule_holds_across_agent_restart(sandbox, make_agents):
    agents = make_agents(sandbox)
    agents.wait_report("db3", up)
    assert agents.command("db3", "PING", 7, 1)["result"] == "OK"
    r = agents.command("db3", "STOP_REPLICA", 6, 1)
    assert r["result"] == "STALE_EPOCH" and "7" in r["error"], r
    assert slave_status(sandbox, "db3")["Slave_SQL_Running"] == "Yes"  # not executed
    state = json.loads((agents.dir / "agent-db3.state").read_text())
    assert state["epoch"] == 7

    boot = agents.latest("db3")["boot_id"]
    assert agents.stop_one("db3") == 0  # clean SIGTERM exit
    agents.start_one("db3")
    agents.wait_report("db3", lambda r: up(r) and r["boot_id"] != boot, 10,
                       "a report from the restarted agent")
    assert agents.latest("db3")["obeyed_epoch"] == 7
    r = agents.command("db3", "STOP_REPLICA", 6, 2)
    assert r["result"] == "STALE_EPOCH", r
    r = agents.command("db3", "PING", 7, 2)
    assert r["result"] == "OK", r


def test_forged_replayed_and_malformed_commands_are_refused(sandbox, make_agents):
    agents = make_agents(sandbox)
    agents.wait_report("db2", up)
    r = agents.command("db2", "STOP_REPLICA", 3, 1, secret="forged-secret")
    assert r["result"] == "BAD_REQUEST" and "authentication" in r["error"], r
    r = agents.command("db2", "STOP_REPLICA", 3, 1, sign_host="10.9.9.9", target="10.9.9.9")
    assert r["result"] == "NOT_FOR_ME", r
    assert agents.command("db2", "PING", 3, 5)["result"] == "OK"
    r = agents.command("db2", "PING", 3, 5)
    assert r["result"] == "REPLAY", r
    for hexbytes in ("00", "deadbeef" * 8, "0a0568656c6c6f"):
        res = subprocess.run([str(binary("orch-wiretool")), "raw", "--url",
                              f"tcp://127.0.0.1:{agents.command_ports['db2']}", "--hex", hexbytes],
                             capture_output=True, text=True, timeout=30)
        d = json.loads(res.stdout)
        assert d["result"] == "BAD_REQUEST", d
    assert slave_status(sandbox, "db2")["Slave_IO_Running"] == "Yes"  # nothing executed
    agents.wait_report("db2", up)  # and the agent still reports
    assert "ORCH-CMD-REJECTED" in agents.log_path("db2").read_text()


def test_receiver_restarts_never_hang_the_agent(sandbox, make_agents):
    agents = make_agents(sandbox)
    agents.wait_report("db1", up)
    for i in range(15):
        agents.receiver.stop()
        agents.receiver.lines.clear()
        agents.receiver.start()
        if i % 5 == 4:
            agents.wait_report("db1", up, 10, "reports after a receiver restart")
    agents.wait_report("db1", up, 10)
    for name in list(agents.procs):
        assert agents.stop_one(name, timeout=5) == 0, f"{name} did not stop cleanly"


def test_fence_applies_now_and_again_when_the_server_turns_writable(sandbox, make_agents):
    agents = make_agents(sandbox)
    agents.wait_report("db1", up)
    client = sandbox.server("db1").connect(tcp=True)
    r = agents.command("db1", "FENCE", 2, 1)
    assert r["result"] == "OK", r
    assert sandbox.server("db1").value("SELECT @@read_only") == 1
    with pytest.raises(pymysql.err.OperationalError):
        client.cursor().execute("SELECT 1")  # killed by the fence
    assert json.loads((agents.dir / "agent-db1.state").read_text())["fenced"] is True
    agents.wait_report("db1", lambda r: r.get("fenced") is True)

    # someone makes it writable again: the agent fences it at its next probe
    sandbox.sql("db1", "SET GLOBAL read_only = 0")
    wait_until(lambda: sandbox.server("db1").value("SELECT @@read_only") == 1, 5,
               "the agent to re-apply the fence")
    # a leader (same or newer epoch) lifts it by making the server writable
    assert agents.command("db1", "SET_READ_ONLY", 2, 2, read_only=0)["result"] == "OK"
    assert json.loads((agents.dir / "agent-db1.state").read_text())["fenced"] is False
    time.sleep(1.2)  # two probe intervals: the agent must not fence it again
    assert sandbox.server("db1").value("SELECT @@read_only") == 0


def test_fence_of_a_dead_server_is_applied_when_it_returns(sandbox, make_agents):
    agents = make_agents(sandbox)
    agents.wait_report("db1", up)
    sandbox.kill("db1", signal.SIGKILL)
    agents.wait_report("db1", lambda r: r["state"] == "PROBE_DOWN", 5)
    r = agents.command("db1", "FENCE", 4, 1)
    assert r["result"] == "DEFERRED" and "the moment it does" in r["error"], r
    # the old primary comes back writable (as after a crash restart)
    sandbox.start(["db1"])
    sandbox.sql("db1", "SET GLOBAL read_only = 0")
    wait_until(lambda: sandbox.server("db1").value("SELECT @@read_only") == 1, 5,
               "the recorded fence to be applied")
    assert "ORCH-FENCED" in agents.log_path("db1").read_text()


def test_bad_config_is_reported_with_keys_and_exit_code(tmp_dir):
    import subprocess
    from orchtest import binary
    path = os.path.join(tmp_dir, "bad.json")
    with open(path, "w") as f:
        f.write('{\n "probe_interval_ms": 10,\n "promotion_rule": "always",\n'
                ' "coordinators": ["http://x"],\n "nonsense": 1\n}\n')
    res = subprocess.run([str(binary("orch-agent")), "-c", path, "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 3, res
    err = res.stderr
    assert f"{path}:2: key 'probe_interval_ms'" in err
    assert f"{path}:3: key 'promotion_rule'" in err and "must_not" in err
    assert f"{path}:5: key 'nonsense'" in err
    # once the fields are valid, the cross-field checks speak: no host key
    with open(path, "w") as f:
        f.write('{"coordinators": ["tcp://127.0.0.1:1"]}\n')
    res = subprocess.run([str(binary("orch-agent")), "-c", path, "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 3 and "key 'host_key'" in res.stderr, res
    assert "orchctl agent-key" in res.stderr
    res = subprocess.run([str(binary("orch-agent")), "--bogus"], capture_output=True, text=True)
    assert res.returncode == 2
