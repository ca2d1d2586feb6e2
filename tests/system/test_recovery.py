"""Automated recovery against real failures: kill -9 and SIGSTOP of a primary,
an agent killed on a healthy primary, downtime, must_not, detection-only
clusters, a promotion step that fails, a dead intermediate master, a failing
pre_failover hook, and a replica with errant transactions reported lost. Real MariaDB servers, real agents,
real coordinators (orch-coordinator pool on the sandbox's backend)."""

import json
import signal
import time
from pathlib import Path

import pymysql

from orchtest import wait_until


def topology(sb, skip=()):
    """{name: (read_only, master port or None, io, sql)} read from the servers
    (but those in SKIP: a stopped server would block the client until its
    timeout)."""
    out = {}
    for s in sb.servers.values():
        if s.role == "backend" or s.name in skip or not s.is_alive():
            continue
        try:
            ro = s.value("SELECT @@read_only")
            st = s.slave_status()
        except pymysql.err.MySQLError:
            continue
        out[s.name] = (ro, int(st["Master_Port"]) if st else None,
                       st["Slave_IO_Running"] if st else None,
                       st["Slave_SQL_Running"] if st else None)
    return out


def failed_over(sb, dead):
    """The new master's name once a former replica is writable and every other
    live replica replicates from it; else None. DEAD: the failed server's name,
    or a set of names."""
    dead = {dead} if isinstance(dead, str) else set(dead)
    t = topology(sb, skip=dead)
    writable = [n for n, (ro, m, _, _) in t.items() if ro == 0 and m is None]
    if len(writable) != 1:
        return None
    new = writable[0]
    port = sb.servers[new].port
    others = [v for n, v in t.items() if n != new]
    if all(m == port and io == "Yes" and sql == "Yes" for _, m, io, sql in others):
        return new
    return None


def backend_rows(sb, sql):
    return sb.sql("backend", sql)


def recoveries(sb):
    return backend_rows(sb, "SELECT uid, state, successor_port, lost_replicas FROM orch.recovery "
                            "ORDER BY started_at")


def warm(orch, servers=4):
    """The leader sees all the servers and its warm-up (2 s) is over."""
    leader = orch.leader()
    wait_until(lambda: len(orch.instances(leader)) == servers, 15, f"{servers} instances")
    time.sleep(2.2)
    return leader


def app_rows(sb, n):
    """app.t with ids 0..N-1 on db1, replicated everywhere."""
    sb.sql("db1", "CREATE DATABASE IF NOT EXISTS app")
    sb.sql("db1", "CREATE TABLE app.t (id INT PRIMARY KEY)")
    for i in range(n):
        sb.sql("db1", f"INSERT INTO app.t VALUES ({i})")
    sb.wait_replication(timeout=10)


def start_lines(orch):
    return sum(orch.log_path(i).read_text().count("ORCH-FAILOVER-START") for i in range(orch.n))


def test_kill9_primary_fails_over_once_and_old_primary_is_fenced(sandbox, make_orch):
    orch = make_orch(sandbox)
    warm(orch)
    app_rows(sandbox, 50)
    t0 = time.monotonic()
    sandbox.kill("db1", signal.SIGKILL)
    new = wait_until(lambda: failed_over(sandbox, "db1"), 10, "a new primary with followers")
    print(f"kill -9 -> {new} writable with every replica following after "
          f"{(time.monotonic() - t0) * 1000:.0f} ms")
    assert sandbox.sql(new, "SELECT COUNT(*) AS n FROM app.t")[0]["n"] == 50
    sandbox.sql(new, "INSERT INTO app.t VALUES (1000)")
    others = [n for n in ("db2", "db3", "db4") if n != new]
    for n in others:
        wait_until(lambda n=n: sandbox.sql(n, "SELECT COUNT(*) AS n FROM app.t")[0]["n"] == 51,
                   10, f"{n} to get the row written on the new primary")
    wait_until(lambda: [r["state"] for r in recoveries(sandbox)] == ["succeeded"], 10,
               "one succeeded recovery recorded")
    time.sleep(1.0)  # nothing else happens afterwards
    assert len(recoveries(sandbox)) == 1 and start_lines(orch) == 1
    rec = recoveries(sandbox)[0]
    assert int(rec["successor_port"]) == sandbox.servers[new].port
    steps = backend_rows(sandbox, f"SELECT step FROM orch.recovery_step WHERE uid = "
                                  f"'{rec['uid']}' ORDER BY seq")
    names = [s["step"] for s in steps]
    for want in ("lock", "freeze", "choose", "promote", "repoint", "fence"):
        assert want in names, names
    # the old primary returns writable (a crash restart): fenced at once
    sandbox.start(["db1"])
    wait_until(lambda: sandbox.server("db1").value("SELECT @@read_only") == 1, 5,
               "the returning old primary to be fenced")
    assert failed_over(sandbox, "db1") == new  # still exactly one writable primary


def test_sigstop_primary_fails_over_and_resumed_primary_is_read_only(make_sandbox, make_orch):
    sb = make_sandbox("1+3", slave_net_timeout=30)
    orch = make_orch(sb)
    warm(orch)
    t0 = time.monotonic()
    sb.kill("db1", signal.SIGSTOP)
    try:
        new = wait_until(lambda: failed_over(sb, "db1"), 10, "a new primary while db1 hangs")
        print(f"SIGSTOP -> {new} writable with followers after "
              f"{(time.monotonic() - t0) * 1000:.0f} ms (witness timeout 500 ms)")
    finally:
        sb.kill("db1", signal.SIGCONT)
    # the resumed old primary must not stay a second writable primary
    wait_until(lambda: sb.server("db1").value("SELECT @@read_only") == 1, 5,
               "the resumed old primary to be read-only")
    analyses = [r["analysis"] for r in backend_rows(sb, "SELECT analysis FROM orch.recovery")]
    assert analyses == ["MasterHung"], analyses


def test_agent_killed_on_a_healthy_primary_no_failover(sandbox, make_orch):
    orch = make_orch(sandbox)
    warm(orch)
    orch.agents.stop_one("db1", sig=signal.SIGKILL)
    leader = orch.leader()
    wait_until(lambda: "AgentDown" in orch.log_path(leader).read_text(), 10,
               "the leader to see AgentDown")
    time.sleep(3)
    assert recoveries(sandbox) == []
    assert sandbox.server("db1").value("SELECT @@read_only") == 0
    assert start_lines(orch) == 0


def test_downtimed_primary_is_detected_not_recovered(sandbox, make_orch):
    orch = make_orch(sandbox)
    warm(orch)
    sandbox.sql("backend", "INSERT INTO orch.downtime (hostname, port, begun_at, expires_at, owner,"
                           f" reason) VALUES ('127.0.0.1', {sandbox.primary.port}, NOW(6), NOW(6) "
                           "+ INTERVAL 1 HOUR, 'test', 'maintenance window')")
    leader = orch.leader()
    wait_until(lambda: orch.instances(leader)[f"127.0.0.1:{sandbox.primary.port}"]["IsDowntimed"],
               10, "the downtime to reach the coordinators")
    sandbox.kill("db1", signal.SIGKILL)
    wait_until(lambda: "DeadMaster" in orch.log_path(leader).read_text(), 10, "the detection")
    time.sleep(2)
    assert recoveries(sandbox) == []
    assert failed_over(sandbox, "db1") is None


def test_detection_only_cluster_is_not_recovered(sandbox, make_orch):
    orch = make_orch(sandbox, recover_clusters=[])
    leader = warm(orch)
    sandbox.kill("db1", signal.SIGKILL)
    wait_until(lambda: "recover_clusters" in orch.log_path(leader).read_text(), 10,
               "the skip to be logged with its reason")
    time.sleep(1)
    assert recoveries(sandbox) == []


def test_must_not_and_prefer_are_respected(sandbox, make_orch):
    orch = make_orch(sandbox, start=False)
    for name, rule in (("db2", "must_not"), ("db3", "prefer_not"), ("db4", "prefer")):
        path = orch.agents.configs[name]
        cfg = json.loads(path.read_text())
        cfg["promotion_rule"] = rule
        path.write_text(json.dumps(cfg))
    orch.start()
    warm(orch)
    sandbox.kill("db1", signal.SIGKILL)
    new = wait_until(lambda: failed_over(sandbox, "db1"), 10, "a new primary")
    assert new == "db4"


def test_promotion_step_failure_is_reported_failed(sandbox, make_orch):
    # the agents' account loses READ_ONLY ADMIN on every replica: SetReadOnly(off)
    # cannot work, and the recovery must say failed, never succeeded
    for n in ("db2", "db3", "db4"):
        with sandbox.server(n).connect() as conn:  # one connection: not binlogged
            cur = conn.cursor()
            cur.execute("SET sql_log_bin = 0")
            for host in ("localhost", "127.0.0.1"):
                cur.execute(f"REVOKE READ_ONLY ADMIN ON *.* FROM 'orch_agent'@'{host}'")
    orch = make_orch(sandbox)
    leader = warm(orch)
    sandbox.kill("db1", signal.SIGKILL)
    wait_until(lambda: [r["state"] for r in recoveries(sandbox)] == ["failed"], 15,
               "the recovery to be recorded failed")
    log = orch.log_path(leader).read_text()
    assert "ORCH-FAILOVER-FAILED" in log and "read_only" in log.lower()
    assert failed_over(sandbox, "db1") is None


def test_dead_intermediate_master_its_replicas_move_up(make_sandbox, make_orch):
    """tree: db1 -> db2, db3; db3 -> db4, db5. kill -9 of db3, an intermediate
    master: its replicas move up a level, below db1, with every row; nothing
    is promoted and db1 stays the only writable server."""
    sb = make_sandbox("tree")
    orch = make_orch(sb)
    warm(orch, servers=5)
    app_rows(sb, 20)
    t0 = time.monotonic()
    sb.kill("db3", signal.SIGKILL)
    p1 = sb.servers["db1"].port

    def moved_up():
        return all((st := sb.servers[n].slave_status()) and int(st["Master_Port"]) == p1
                   and st["Slave_IO_Running"] == "Yes" and st["Slave_SQL_Running"] == "Yes"
                   for n in ("db4", "db5"))
    wait_until(moved_up, 15, "db4 and db5 below db1")
    print(f"kill -9 of the intermediate master -> its replicas below db1 after "
          f"{(time.monotonic() - t0) * 1000:.0f} ms")
    sb.sql("db1", "INSERT INTO app.t VALUES (100)")
    for n in ("db2", "db4", "db5"):
        wait_until(lambda n=n: sb.servers[n].value("SELECT COUNT(*) FROM app.t") == 21, 10,
                   f"{n} to have every row")
        assert sb.servers[n].value("SELECT @@read_only") == 1
    recs = recoveries(sb)
    assert len(recs) == 1 and recs[0]["state"] == "succeeded", recs
    assert start_lines(orch) == 1


def test_failing_pre_failover_hook_aborts_and_hooks_report(sandbox, make_orch, tmp_dir):
    """on_failure_detection runs at the detection; a failing pre_failover hook
    aborts the recovery before anything changes (recorded failed, nobody
    promoted) and post_unsuccessful_failover reports it."""
    d = Path(tmp_dir)
    orch = make_orch(sandbox,
                     on_failure_detection=[f"echo {{failureType}} {{failedPort}} >> {d}/detect.log"],
                     pre_failover=["echo refusing; exit 3"],
                     post_failover=[f"echo {{failureType}} >> {d}/post.log"],
                     post_unsuccessful_failover=[
                         f"echo $ORCH_FAILURE_TYPE {{isSuccessful}} >> {d}/unsuccessful.log"])
    warm(orch)
    sandbox.kill("db1", signal.SIGKILL)
    wait_until(lambda: [r["state"] for r in recoveries(sandbox)] == ["failed"], 15,
               "the recovery to be recorded failed")
    wait_until(lambda: (d / "unsuccessful.log").exists(), 5, "post_unsuccessful_failover")
    assert (d / "unsuccessful.log").read_text().split() == ["DeadMaster", "false"]
    assert not (d / "post.log").exists()
    detected = (d / "detect.log").read_text().splitlines()
    assert f"DeadMaster {sandbox.servers['db1'].port}" in detected, detected
    assert any("pre_failover" in orch.log_path(i).read_text() and
               "ORCH-FAILOVER-FAILED" in orch.log_path(i).read_text() for i in range(orch.n))
    for n in ("db2", "db3", "db4"):  # nothing changed: still read-only replicas of db1
        assert sandbox.servers[n].value("SELECT @@read_only") == 1
        assert int(sandbox.servers[n].slave_status()["Master_Port"]) == sandbox.servers["db1"].port
    assert start_lines(orch) == 1


def test_replica_with_errant_transactions_is_reported_lost_and_downtimed(sandbox, make_orch):
    """db4 holds a transaction written on it alone (errant): it cannot follow
    the new master without diverging, so the recovery promotes another,
    reports db4 lost and downtimes it."""
    orch = make_orch(sandbox)
    leader = warm(orch)
    app_rows(sandbox, 10)
    sandbox.sql("db4", "CREATE DATABASE local_only")  # binlogged on db4 only
    p4 = sandbox.servers["db4"].port

    def errant_seen():  # on the master's entry: its replicas with errant transactions
        body = orch.get(leader, "/api/replication-analysis")[1]
        return any(r["Key"]["Port"] == p4 for e in body.get("Details") or []
                   for r in (e.get("Orch") or {}).get("ErrantReplicas") or [])
    wait_until(errant_seen, 10, "db4's errant transaction in the analysis")
    sandbox.kill("db1", signal.SIGKILL)
    wait_until(lambda: [r["state"] for r in recoveries(sandbox)] == ["succeeded"], 15,
               "the recovery")
    rec = recoveries(sandbox)[0]
    assert rec["lost_replicas"] and f"127.0.0.1:{p4}" in rec["lost_replicas"], rec
    assert rec["successor_port"] != p4
    wait_until(lambda: orch.instances(leader)[f"127.0.0.1:{p4}"]["IsDowntimed"], 5,
               "db4 downtimed")
    inst = orch.instances(leader)[f"127.0.0.1:{p4}"]
    print(f"lost: {rec['lost_replicas']}; db4 downtimed by {inst.get('DowntimeOwner')}: "
          f"{inst.get('DowntimeReason')}")


def test_replicas_with_stopped_sql_threads_fail_over_with_every_row(sandbox, make_orch):
    """Every replica's SQL thread stopped by an operator: what they received
    from the primary is only in their relay logs when it dies. The recovery
    applies it (WaitForGtid starts the SQL thread, which keeps the relay log)
    and the new primary has every row."""
    orch = make_orch(sandbox)
    warm(orch)
    app_rows(sandbox, 5)
    for n in ("db2", "db3", "db4"):
        sandbox.sql(n, "STOP SLAVE SQL_THREAD")
    for i in range(5, 25):
        sandbox.sql("db1", f"INSERT INTO app.t VALUES ({i})")
    pos = sandbox.server("db1").value("SELECT @@gtid_binlog_pos")
    for n in ("db2", "db3", "db4"):
        wait_until(lambda n=n: sandbox.server(n).slave_status()["Gtid_IO_Pos"] == pos, 10,
                   f"{n} to receive everything")
        assert sandbox.server(n).value("SELECT COUNT(*) FROM app.t") == 5
    t0 = time.monotonic()
    sandbox.kill("db1", signal.SIGKILL)
    new = wait_until(lambda: failed_over(sandbox, "db1"), 15, "a new primary with followers")
    print(f"kill -9 -> {new} writable after {(time.monotonic() - t0) * 1000:.0f} ms")
    assert sandbox.server(new).value("SELECT COUNT(*) FROM app.t") == 25
    for n in ("db2", "db3", "db4"):
        wait_until(lambda n=n: sandbox.server(n).value("SELECT COUNT(*) FROM app.t") == 25, 10,
                   f"{n} to have every row")
