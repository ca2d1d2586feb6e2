"""Topology operations through the leader's API (orchestrator's routes):
relocate and back, move-up from a chain, a refusal explained in words (a
cycle), move-below, take-master, repoint, a takeover naming no replica,
relocate-replicas, move-up-replicas, start/restart-replica answering once the
threads run, the same sent to a follower (forwarded to the leader), and a
graceful master takeover under a writer: zero rows lost, the old
master replicating from the new one, the write-unavailable window printed.
Real MariaDB servers, real agents, real coordinators."""

import re
import signal
import statistics
import threading
import time
from pathlib import Path

from orchtest import wait_until
from orchwriter import Writer, create_app


def route(orch, i, path, status=200, timeout=30):
    got, body = orch.get(i, path, timeout=timeout)
    assert got == status, (path, got, body)
    return body


def stop_clean(orch):
    """Stops the coordinators: each exits 0 with no sanitizer report (when built
    with ORCH_SANITIZE; the fixture stops them again harmlessly)."""
    for i in list(orch.procs):
        code = orch.stop_coordinator(i)
        log = orch.log_path(i).read_text()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error"):
            assert bad not in log, log[log.index(bad):][:6000]
        assert code == 0, f"c{i + 1} exit {code}: {log[-3000:]}"


def k(sb, name):
    return f"127.0.0.1/{sb.servers[name].port}"


def master_port(sb, name):
    st = sb.servers[name].slave_status()
    if not st or st["Slave_IO_Running"] != "Yes" or st["Slave_SQL_Running"] != "Yes":
        return None
    return int(st["Master_Port"])


def ready(orch, n=4):
    leader = orch.leader()
    wait_until(lambda: len(orch.instances(leader)) == n, 15, f"{n} instances")
    time.sleep(2.2)
    return leader


def follows(orch, leader, sb, name, master):
    """The leader's registry shows NAME below MASTER (so the next operation plans on it)."""
    want = sb.servers[master].port
    def check():
        inst = orch.instances(leader).get(f"127.0.0.1:{sb.servers[name].port}")
        return inst is not None and inst["MasterKey"]["Port"] == want
    wait_until(check, 10, f"{name} below {master} in the registry")


def test_relocate_and_back_move_up_and_cycle_refused(sandbox, make_orch):
    orch = make_orch(sandbox)
    leader = ready(orch)
    sb = sandbox
    body = route(orch, leader, f"/api/relocate/{k(sb, 'db4')}/{k(sb, 'db3')}")
    assert master_port(sb, "db4") == sb.servers["db3"].port
    assert body["Details"]["Key"]["Port"] == sb.servers["db4"].port, body
    assert body["Details"]["MasterKey"]["Port"] == sb.servers["db3"].port, body
    follows(orch, leader, sb, "db4", "db3")
    # a cycle: db3 below its own replica db4
    body = route(orch, leader, f"/api/relocate/{k(sb, 'db3')}/{k(sb, 'db4')}", status=409)
    assert "cannot replicate from" in str(body) and "cycle" in str(body), body
    # move-up from the chain db1 -> db3 -> db4
    route(orch, leader, f"/api/move-up/{k(sb, 'db4')}")
    assert master_port(sb, "db4") == sb.servers["db1"].port
    follows(orch, leader, sb, "db4", "db1")
    route(orch, leader, f"/api/relocate/{k(sb, 'db4')}/{k(sb, 'db3')}")
    follows(orch, leader, sb, "db4", "db3")
    route(orch, leader, f"/api/relocate/{k(sb, 'db4')}/{k(sb, 'db1')}")
    assert master_port(sb, "db4") == sb.servers["db1"].port
    assert "ORCH-OPERATION-END" in orch.log_path(leader).read_text()
    stop_clean(orch)


def test_move_below_take_master_repoint_and_takeover_without_designation(sandbox, make_orch):
    orch = make_orch(sandbox)
    leader = ready(orch)
    sb = sandbox
    port = {n: sb.servers[n].port for n in ("db1", "db2", "db3", "db4")}
    # move-below: db4 below its sibling db3
    route(orch, leader, f"/api/move-below/{k(sb, 'db4')}/{k(sb, 'db3')}")
    wait_until(lambda: master_port(sb, "db4") == port["db3"], 10, "db4 below db3")
    follows(orch, leader, sb, "db4", "db3")
    # take-master: db4 swaps places with db3 (db1 -> db4 -> db3)
    route(orch, leader, f"/api/take-master/{k(sb, 'db4')}")
    wait_until(lambda: master_port(sb, "db4") == port["db1"], 10, "db4 below db1")
    wait_until(lambda: master_port(sb, "db3") == port["db4"], 10, "db3 below db4")
    follows(orch, leader, sb, "db3", "db4")
    follows(orch, leader, sb, "db4", "db1")
    # repoint: db3 back below db1
    route(orch, leader, f"/api/repoint/{k(sb, 'db3')}/{k(sb, 'db1')}")
    wait_until(lambda: master_port(sb, "db3") == port["db1"], 10, "db3 below db1")
    follows(orch, leader, sb, "db3", "db1")
    # a write made before the takeover is on the new master after it
    sb.sql("db1", "CREATE DATABASE IF NOT EXISTS app")
    sb.sql("db1", "CREATE TABLE app.t (id INT PRIMARY KEY)")
    sb.sql("db1", "INSERT INTO app.t VALUES (1), (2), (3)")
    # graceful takeover naming no replica: the plain route wants one named
    # when the master has several, the -auto route lets orch pick
    body = route(orch, leader, f"/api/graceful-master-takeover/127.0.0.1:{port['db1']}",
                 status=409)
    assert "graceful-master-takeover-auto" in str(body), body
    route(orch, leader, f"/api/graceful-master-takeover-auto/127.0.0.1:{port['db1']}")
    new = wait_until(lambda: next((n for n in ("db2", "db3", "db4")
                                   if sb.servers[n].value("SELECT @@read_only") == 0), None),
                     10, "a writable new master")
    wait_until(lambda: master_port(sb, "db1") == port[new], 10, "db1 below the new master")
    assert sb.servers["db1"].value("SELECT @@read_only") == 1
    assert {r["id"] for r in sb.sql(new, "SELECT id FROM app.t")} == {1, 2, 3}
    print(f"takeover without designation chose {new}")
    stop_clean(orch)


def test_replica_groups_restarts_and_a_follower_forwards(sandbox, make_orch):
    orch = make_orch(sandbox)
    leader = ready(orch)
    sb = sandbox
    port = {n: sb.servers[n].port for n in ("db1", "db2", "db3", "db4")}
    f = next(i for i in sorted(orch.procs) if i != leader)  # every request goes to a follower

    def moved(body):
        return {d["Key"]["Port"] for d in body["Details"]}

    # relocate-replicas: db1's replicas other than db2 go below db2
    body = route(orch, f, f"/api/relocate-replicas/{k(sb, 'db1')}/{k(sb, 'db2')}")
    assert moved(body) == {port["db3"], port["db4"]}, body
    assert master_port(sb, "db3") == port["db2"] and master_port(sb, "db4") == port["db2"]
    assert "ORCH-API-FORWARD" in orch.log_path(f).read_text()
    assert "relocate-replicas" in orch.log_path(leader).read_text()
    follows(orch, leader, sb, "db3", "db2")
    follows(orch, leader, sb, "db4", "db2")
    # move-up-replicas: db2's replicas back below db1; db1 has no level above
    body = route(orch, f, f"/api/move-up-replicas/{k(sb, 'db2')}")
    assert moved(body) == {port["db3"], port["db4"]}, body
    assert master_port(sb, "db3") == port["db1"] and master_port(sb, "db4") == port["db1"]
    follows(orch, leader, sb, "db3", "db1")
    follows(orch, leader, sb, "db4", "db1")
    body = route(orch, f, f"/api/move-up-replicas/{k(sb, 'db1')}", status=409)
    assert "no level above" in str(body), body
    # start-replica answers once both threads run: no wait needed after it
    route(orch, f, f"/api/stop-replica/{k(sb, 'db4')}")
    assert master_port(sb, "db4") is None
    route(orch, f, f"/api/start-replica/{k(sb, 'db4')}")
    assert master_port(sb, "db4") == port["db1"]
    route(orch, f, f"/api/restart-replica/{k(sb, 'db3')}")
    assert master_port(sb, "db3") == port["db1"]
    # a start whose IO thread cannot connect fails, saying why
    sb.sql("db4", "STOP SLAVE")
    sb.sql("db4", f"CHANGE MASTER TO MASTER_PORT = {orch.base + 99}, MASTER_CONNECT_RETRY = 1")
    wait_until(lambda: orch.instances(leader)[f"127.0.0.1:{port['db4']}"]["MasterKey"]["Port"]
               == orch.base + 99, 10, "db4's new master port in the registry")
    body = route(orch, f, f"/api/start-replica/{k(sb, 'db4')}", status=500)
    assert "IO error" in str(body) and "start-replica failed" in str(body), body
    route(orch, f, f"/api/repoint/{k(sb, 'db4')}/{k(sb, 'db1')}")
    assert master_port(sb, "db4") == port["db1"]
    stop_clean(orch)


def test_takeover_hooks_pre_aborts_and_post_reports(sandbox, make_orch, tmp_dir):
    """pre_graceful_takeover runs before anything changes and a failing one
    aborts the takeover (the old master keeps its writes); post_graceful_takeover
    runs after a successful one, with orchestrator's placeholders and ORCH_*."""
    d = Path(tmp_dir)
    gate, log = d / "allow", d / "hooks.log"
    pre = (f"echo pre {{failureType}} {{failedPort}} {{successorPort}} {{command}} >> {log}; "
           f"test -e {gate}")
    post = (f"echo post $ORCH_FAILED_PORT $ORCH_SUCCESSOR_PORT {{isSuccessful}} "
            f"{{countReplicas}} >> {log}")
    orch = make_orch(sandbox, pre_graceful_takeover=[pre], post_graceful_takeover=[post])
    leader = ready(orch)
    sb = sandbox
    p1, p2 = sb.servers["db1"].port, sb.servers["db2"].port
    body = route(orch, leader, f"/api/graceful-master-takeover/127.0.0.1:{p1}/{k(sb, 'db2')}",
                 status=500)
    assert "pre_graceful_takeover hook failed" in str(body), body
    assert sb.servers["db1"].value("SELECT @@read_only") == 0
    assert master_port(sb, "db2") == p1
    follows(orch, leader, sb, "db2", "db1")
    gate.touch()
    route(orch, leader, f"/api/graceful-master-takeover/127.0.0.1:{p1}/{k(sb, 'db2')}")
    assert master_port(sb, "db1") == p2
    wait_until(lambda: log.exists() and "post" in log.read_text(), 10, "the post hook")
    pre_line = f"pre GracefulMasterTakeover {p1} {p2} graceful-master-takeover"
    assert log.read_text().splitlines() == [pre_line, pre_line, f"post {p1} {p2} true 3"]
    stop_clean(orch)


def test_graceful_takeover_under_writer(sandbox, make_orch):
    orch = make_orch(sandbox)
    leader = ready(orch)
    sb = sandbox
    create_app(sb)
    windows = []
    old, new = "db1", "db2"
    # the cluster's alias follows each new master
    route(orch, leader, f"/api/set-cluster-alias/127.0.0.1:{sb.servers[old].port}?alias=shop")
    for run in range(3):
        w = Writer(sb, old, new)
        w.start()
        time.sleep(1.0)
        hint = f"127.0.0.1:{sb.servers[old].port}"
        body = route(orch, leader, f"/api/graceful-master-takeover/{hint}/{k(sb, new)}")
        time.sleep(1.0)
        w.stop.set()
        w.join(10)
        assert w.ok, "the writer wrote nothing"
        rows = {r["id"] for r in sb.sql(new, "SELECT id FROM app.w")}
        lost = [i for i in w.ok if i not in rows]
        assert not lost, f"rows lost: {lost[:10]}"
        assert master_port(sb, old) == sb.servers[new].port
        assert sb.servers[old].value("SELECT @@read_only") == 1
        assert body["Details"]["SuccessorKey"]["Port"] == sb.servers[new].port, body
        msg = str(body)
        m = re.search(r"window ([0-9.]+) ms", msg)
        assert m, msg
        windows.append(float(m.group(1)))
        print(f"run {run}: window {m.group(1)} ms (writer's longest gap {w.gap * 1000:.1f} ms)")
        sb.sql(new, "DELETE FROM app.w")
        follows(orch, leader, sb, old, new)
        wait_until(lambda: orch.get(leader, "/api/cluster-info/alias/shop")[1].get("ClusterName")
                   == f"127.0.0.1:{sb.servers[new].port}", 5, "the alias on the new master")
        old, new = new, old
    print(f"graceful takeover write-unavailable window: median {statistics.median(windows):.1f} ms")
    stop_clean(orch)


def test_replica_switches_and_leader_stopping_mid_operation(sandbox, make_orch):
    """stop/start-replica, set-read-only, set-writeable refused on a replica (409),
    an unknown instance (404); then the leader stops while an operation waits on
    a frozen agent: it exits cleanly, and the client is let go."""
    orch = make_orch(sandbox)
    leader = ready(orch)
    sb = sandbox
    route(orch, leader, f"/api/stop-replica/{k(sb, 'db4')}")
    st = sb.servers["db4"].slave_status()
    assert st["Slave_IO_Running"] == "No" and st["Slave_SQL_Running"] == "No", st
    route(orch, leader, f"/api/start-slave/{k(sb, 'db4')}")
    assert master_port(sb, "db4") == sb.servers["db1"].port  # answered once both threads run
    route(orch, leader, f"/api/set-read-only/{k(sb, 'db4')}")
    assert sb.servers["db4"].value("SELECT @@read_only") == 1
    body = route(orch, leader, f"/api/set-writeable/{k(sb, 'db4')}", status=409)
    assert "set-writeable refused" in str(body), body
    route(orch, leader, "/api/move-up/127.0.0.1/1", status=404)

    agent = orch.agents.procs["db4"]
    agent.send_signal(signal.SIGSTOP)
    try:
        got = {}
        t = threading.Thread(target=lambda: got.update(
            r=orch.get(leader, f"/api/stop-replica/{k(sb, 'db4')}", timeout=20)))
        t.start()
        time.sleep(1.0)
        assert t.is_alive(), got  # the operation waits on the frozen agent
        code = orch.stop_coordinator(leader)
        t.join(20)
        assert not t.is_alive()
        print(f"client after the leader stopped: {got.get('r')}")
        # let go without a success: no answer (connection closed) or an error
        assert "r" in got and got["r"][0] != 200, got
        log = orch.log_path(leader).read_text()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error"):
            assert bad not in log, log[log.index(bad):][:6000]
        assert code == 0, log[-3000:]
    finally:
        agent.send_signal(signal.SIGCONT)
    stop_clean(orch)
