"""orch-agent operations: self-fencing when isolated, SIGHUP reload, what it
reports about semi-sync and about missing privileges."""

import json
import signal
import time


from orchagents import up
from orchtest import wait_until


def test_isolated_writable_primary_fences_itself(make_sandbox, make_agents):
    sb = make_sandbox("1+0")
    agents = make_agents(sb, extra={"fence_when_isolated": True, "isolation_timeout_ms": 3000})
    agents.wait_report("db1", up)
    # heard from a coordinator (pings) within the timeout: stays writable
    for i in range(8):
        assert agents.command("db1", "PING", 1, i + 1)["result"] == "OK"
        time.sleep(0.5)
    assert sb.server("db1").value("SELECT @@read_only") == 0
    # silence: read-only after the isolation timeout, said in log and report
    t0 = time.monotonic()
    wait_until(lambda: sb.server("db1").value("SELECT @@read_only") == 1, 8,
               "db1 to fence itself")
    print(f"self-fenced {time.monotonic() - t0:.2f} s after the last ping (timeout 3.0 s)")
    agents.wait_report("db1", lambda r: r.get("self_fenced") is True and
                       r["server"]["read_only"] is True)
    assert "ORCH-SELF-FENCED" in agents.log_path("db1").read_text()
    # a leader clears it by making the server writable
    assert agents.command("db1", "SET_READ_ONLY", 1, 20, read_only=0)["result"] == "OK"
    agents.wait_report("db1", lambda r: r.get("self_fenced") is False)


def test_primary_with_replicas_never_fences_itself(sandbox, make_agents):
    agents = make_agents(sandbox, only=("db1",),
                         extra={"fence_when_isolated": True, "isolation_timeout_ms": 1000})
    agents.wait_report("db1", lambda r: up(r) and len(r["replicas"]) == 3)
    time.sleep(2.5)  # well past the isolation timeout without any coordinator contact
    assert sandbox.server("db1").value("SELECT @@read_only") == 0
    assert "ORCH-SELF-FENCED" not in agents.log_path("db1").read_text()


def test_sighup_reloads_what_is_reloadable(sandbox, make_agents):
    agents = make_agents(sandbox, only=("db2",))
    r = agents.wait_report("db2", up)
    assert r["promotion_rule"] == "PROMOTION_NEUTRAL" and "data_center" not in r
    path = agents.configs["db2"]
    cfg = json.loads(path.read_text())
    cfg.update(promotion_rule="must_not", data_center="dc-east", mysql_user="someone_else")
    path.write_text(json.dumps(cfg))
    agents.procs["db2"].send_signal(signal.SIGHUP)
    r = agents.wait_report("db2", lambda r: r["promotion_rule"] == "PROMOTION_MUST_NOT")
    assert r["data_center"] == "dc-east"
    log = agents.log_path("db2")
    wait_until(lambda: "mysql_user changed but needs a restart" in log.read_text(), 5,
               "the restart-needed warning")
    # a broken file on reload: refused, the agent keeps running on the old config
    path.write_text('{"probe_interval_ms": "fast"}')
    agents.procs["db2"].send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in log.read_text(), 5, "the refused reload")
    seq = agents.latest("db2")["seq"]
    agents.wait_report("db2", lambda r: r["seq"] > seq + 1 and
                       r["promotion_rule"] == "PROMOTION_MUST_NOT")


def test_semi_sync_state_is_reported(make_sandbox, make_agents):
    sb = make_sandbox("1+2", semi_sync=True)
    agents = make_agents(sb)
    r = agents.wait_report("db1", lambda r: up(r) and
                           r["server"].get("semi_sync_master_clients") == 2)
    assert r["server"]["semi_sync_master_enabled"] and r["server"]["semi_sync_master_status"]
    r = agents.wait_report("db2", lambda r: up(r) and r["server"].get("semi_sync_slave_status"))
    assert r["server"]["semi_sync_slave_enabled"]


def test_missing_privileges_are_reported_in_every_report(sandbox, make_agents):
    sandbox.sql("db2", "CREATE USER 'weak'@'localhost' IDENTIFIED BY 'weak_pw'")
    sandbox.sql("db2", "GRANT SUPER, SLAVE MONITOR, BINLOG MONITOR, PROCESS ON *.* "
                       "TO 'weak'@'localhost'")
    agents = make_agents(sandbox, only=("db2",), start=False)
    cfg = json.loads(agents.configs["db2"].read_text())
    cfg.update(mysql_user="weak", mysql_password="weak_pw")
    agents.configs["db2"].write_text(json.dumps(cfg))
    agents.start()
    r = agents.wait_report("db2", up)
    text = " | ".join(r["problems"])
    assert "READ_ONLY ADMIN" in text, text
    seq = r["seq"]
    r = agents.wait_report("db2", lambda r: r["seq"] > seq)
    assert any("READ_ONLY ADMIN" in p for p in r["problems"])  # in every report
    # and the command that needs it fails loudly instead of "succeeding"
    reply = agents.command("db2", "SET_READ_ONLY", 1, 1, read_only=0)
    assert reply["result"] == "FAILED" and "READ_ONLY ADMIN" in reply["error"] + text, reply
    assert sandbox.server("db2").value("SELECT @@read_only") == 1


def test_wrong_password_is_reported_as_auth_error(sandbox, make_agents):
    agents = make_agents(sandbox, only=("db3",), start=False)
    cfg = json.loads(agents.configs["db3"].read_text())
    cfg.update(mysql_password="wrong-password")
    agents.configs["db3"].write_text(json.dumps(cfg))
    agents.start()
    r = agents.wait_report("db3", lambda r: r["state"] == "PROBE_AUTH_ERROR")
    assert "Access denied" in r["probe_error"]
