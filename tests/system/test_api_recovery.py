"""The recovery and operator-state routes of the HTTP API (coordinator/api.c)
against real coordinators, agents and MariaDB servers: replication-analysis
before and after a primary is killed, a recovery requested through the API
(of a follower, which forwards it to the leader), its audit, blocked-recoveries, downtime, maintenance, candidates,
aliases, the global switch and the acknowledgement that lifts the anti-flap
block."""

import signal
import time
import urllib.parse
import warnings

from orchtest import wait_until
from test_recovery import failed_over


def ok(orch, i, path, status=200):
    """GET PATH on coordinator I; asserts the status (and the envelope's Code) -> body."""
    got, body = orch.get(i, path, timeout=20)
    assert got == status, (path, got, body)
    if isinstance(body, dict) and "Code" in body:
        assert body["Code"] == ("OK" if status == 200 else "ERROR"), (path, body)
    return body


def key(sb, name):
    return f"127.0.0.1/{sb.servers[name].port}"


def name_of(sb, port):
    return next(n for n, s in sb.servers.items() if s.port == port)


def problems(orch, i, hint=None):
    """replication-analysis entries with a finding (orchestrator lists no NoProblem ones)."""
    body = ok(orch, i, "/api/replication-analysis" + (f"/{hint}" if hint else ""))
    assert body["Message"].startswith("Analysis"), body
    return [e for e in body["Details"] if e["Analysis"] != "NoProblem"]


def finding(orch, i, sb, name, analysis="DeadMaster"):
    """The analysis of server NAME on coordinator I if it is ANALYSIS, else None
    (UnreachableMaster comes first, until the replicas confirm)."""
    port = sb.servers[name].port
    for e in problems(orch, i):
        if e["AnalyzedInstanceKey"]["Port"] == port and e["Analysis"] == analysis:
            return e
    return None


def instance(orch, i, sb, name):
    return ok(orch, i, f"/api/instance/{key(sb, name)}")


def warm(orch):
    """The leader and a follower, once the leader sees all four servers and its
    warm-up (2 s) is over."""
    leader = orch.leader()
    wait_until(lambda: len(orch.instances(leader)) == 4, 15, "four instances")
    time.sleep(2.2)
    return leader, next(i for i in range(orch.n) if i != leader)


def q(s):
    return urllib.parse.quote(s, safe="")


def stop_clean(orch):
    """Stops the coordinators still running. Answers owed by the backend or a
    recovery must not leak or outlive the API: no sanitizer report may involve
    api.c or render.c. A report from elsewhere is a warning here (another
    module's test owns it), so that this file stays about the API."""
    for i in list(orch.procs):
        code = orch.stop_coordinator(i)
        log = orch.log_path(i).read_text()
        reports = [b for b in ("AddressSanitizer", "LeakSanitizer", "runtime error") if b in log]
        if not reports:
            assert code == 0, f"c{i + 1} exit {code}: {log[-3000:]}"
            continue
        tail = log[log.index(reports[0]):]
        assert "coordinator/api.c" not in tail and "coordinator/render.c" not in tail, tail[:6000]
        summary = [line for line in tail.splitlines() if "SUMMARY" in line]
        warnings.warn(f"c{i + 1} (exit {code}): a sanitizer report outside the API: "
                      f"{summary[0] if summary else tail[:300]}")


def test_analysis_operator_state_and_requested_recovery(sandbox, make_orch):
    orch = make_orch(sandbox, recover_clusters=[])  # detection only: the API recovers
    leader, follower = warm(orch)
    cluster = f"127.0.0.1:{sandbox.servers['db1'].port}"

    # healthy: nothing to say, on any coordinator; recoveries enabled
    for i in (leader, follower):
        assert problems(orch, i) == []
        assert problems(orch, i, cluster) == []
        body = ok(orch, i, "/api/check-global-recoveries")
        assert body["Details"] == "enabled" and body["Message"] == "Global recoveries enabled"
    ok(orch, follower, "/api/replication-analysis/nosuchcluster", 404)

    # downtime, written by a follower, seen by every coordinator; ended; expiring
    body = ok(orch, follower, f"/api/begin-downtime/{key(sandbox, 'db4')}/alice/disk%20swap/1h")
    assert body["Details"] == {"Hostname": "127.0.0.1", "Port": sandbox.servers["db4"].port}
    for i in (leader, follower):
        wait_until(lambda i=i: instance(orch, i, sandbox, "db4")["IsDowntimed"], 5,
                   "the downtime on every coordinator")
    inst = instance(orch, leader, sandbox, "db4")
    assert inst["DowntimeOwner"] == "alice" and inst["DowntimeReason"] == "disk swap"
    ok(orch, leader, f"/api/end-downtime/{key(sandbox, 'db4')}")
    wait_until(lambda: not instance(orch, follower, sandbox, "db4")["IsDowntimed"], 5,
               "the downtime to end")
    ok(orch, leader, f"/api/begin-downtime/{key(sandbox, 'db4')}/alice/short/2s")
    wait_until(lambda: instance(orch, leader, sandbox, "db4")["IsDowntimed"], 5, "a short downtime")
    wait_until(lambda: not instance(orch, leader, sandbox, "db4")["IsDowntimed"], 8,
               "the short downtime to expire")
    for path, status, want in (
            (f"/api/begin-downtime/{key(sandbox, 'db4')}/alice/x/3x", 400, "unknown unit"),
            (f"/api/begin-downtime/{key(sandbox, 'db4')}/alice/x/soon", 400, "not a duration"),
            ("/api/begin-downtime/127.0.0.1/1/alice/x", 404, "Cannot read instance"),
            ("/api/end-maintenance/127.0.0.1/1", 404, "Cannot read instance"),
            (f"/api/register-candidate/{key(sandbox, 'db3')}/best", 400, "promotion rule")):
        body = ok(orch, follower, path, status)
        assert want in body["Message"], (path, body)

    # maintenance, candidate, alias
    ok(orch, follower, f"/api/begin-maintenance/{key(sandbox, 'db2')}/bob/upgrade")
    wait_until(lambda: instance(orch, leader, sandbox, "db2")["Orch"]["InMaintenance"], 5,
               "the maintenance lock")
    ok(orch, follower, f"/api/end-maintenance/{key(sandbox, 'db2')}")
    wait_until(lambda: not instance(orch, leader, sandbox, "db2")["Orch"]["InMaintenance"], 5,
               "the maintenance lock to end")
    ok(orch, follower, f"/api/register-candidate/{key(sandbox, 'db3')}/prefer")
    wait_until(lambda: instance(orch, leader, sandbox, "db3")["PromotionRule"] == "prefer", 5,
               "the promotion rule")
    ok(orch, follower, f"/api/set-cluster-alias/{cluster}?alias=shop")
    wait_until(lambda: ok(orch, leader, "/api/cluster-info/shop")["ClusterName"] == cluster, 5,
               "the alias")

    # the primary dies: DeadMaster on every coordinator within seconds, nothing recovered
    t0 = time.monotonic()
    sandbox.kill("db1", signal.SIGKILL)
    for i in (leader, follower):
        e = wait_until(lambda i=i: finding(orch, i, sandbox, "db1"), 10, "DeadMaster in the analysis")
    print(f"kill -9 -> DeadMaster in replication-analysis after "
          f"{(time.monotonic() - t0) * 1000:.0f} ms")
    assert e["IsMaster"] and e["IsClusterMaster"] and not e["LastCheckValid"]
    assert e["ClusterDetails"]["ClusterName"] == cluster
    assert e["ClusterDetails"]["ClusterAlias"] == "shop"
    assert e["CountReplicas"] == 3 and e["CountValidReplicas"] == 3
    assert e["Orch"]["CountConfirmingReplicas"] == 3  # the holistic rule: every fresh replica
    wait_until(lambda: finding(orch, leader, sandbox, "db1")["CountReplicasFailingToConnectToMaster"]
               == 3, 10, "every IO thread to report its connection error")
    assert len(e["Replicas"]) == 3 and e["SlaveHosts"] == e["Replicas"]
    assert e["Orch"]["Recoverable"] and e["Orch"]["AgentState"] == "DOWN"
    assert problems(orch, leader, "shop")[0]["Analysis"] == "DeadMaster"
    assert ok(orch, leader, "/api/audit-recovery") == []  # detection only: nothing recovered

    # asked of a follower, which forwards it: the leader recovers, and the
    # answer comes when it is over: db4, the candidate named in the request,
    # over db3, the registered one
    t0 = time.monotonic()
    body = ok(orch, follower,
              f"/api/recover/{key(sandbox, 'db1')}/{key(sandbox, 'db4')}")
    assert logged(orch, follower, "ORCH-API-FORWARD")
    print(f"recover answered after {(time.monotonic() - t0) * 1000:.0f} ms: {body['Message']}")
    assert body["Details"] == {"Hostname": "127.0.0.1", "Port": sandbox.servers["db4"].port}
    new = wait_until(lambda: failed_over(sandbox, {"db1"}), 10, "db4 writable, db2 and db3 following")
    assert new == "db4"
    sandbox.sql("db4", "CREATE DATABASE IF NOT EXISTS app")
    sandbox.sql("db4", "CREATE TABLE app.t (id INT PRIMARY KEY)")
    sandbox.sql("db4", "INSERT INTO app.t VALUES (1)")
    sandbox.wait_replication(timeout=10, names=["db2", "db3"])

    # the audit: one succeeded recovery, its steps, the detection
    recs = ok(orch, follower, "/api/audit-recovery")
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["IsSuccessful"] and not rec["IsActive"] and not rec["Acknowledged"]
    assert rec["SuccessorKey"]["Port"] == sandbox.servers["db4"].port
    assert rec["AnalysisEntry"]["AnalyzedInstanceKey"]["Port"] == sandbox.servers["db1"].port
    assert rec["AnalysisEntry"]["ClusterDetails"] == {"ClusterName": cluster, "ClusterAlias": "shop",
                                                      "ClusterDomain": ""}
    assert rec["AnalysisEntry"]["Analysis"] == "Recover"
    assert rec["RecoveryStartTimestamp"] and rec["RecoveryEndTimestamp"]
    assert rec["ProcessingNodeHostname"] == f"c{leader + 1}"
    assert sorted(k["Port"] for k in rec["ParticipatingInstanceKeys"]) == sorted(
        sandbox.servers[n].port for n in ("db2", "db3", "db4"))
    assert rec["LostReplicas"] == [] and rec["Orch"]["State"] == "succeeded"
    uid = rec["UID"]
    assert uid in body["Message"]
    for path in ("/api/audit-recovery/alias/shop", f"/api/audit-recovery/cluster/{cluster}",
                 f"/api/audit-recovery/uid/{uid}", "/api/audit-recovery/0",
                 f"/api/audit-recovery/{q('127.0.0.1:' + str(sandbox.servers['db4'].port))}"):
        assert [r["UID"] for r in ok(orch, leader, path)] == [uid], path
    assert ok(orch, leader, "/api/audit-recovery/1") == []
    assert ok(orch, leader, "/api/audit-recovery?page=1") == []
    steps = ok(orch, leader, f"/api/audit-recovery-steps/{uid}")
    assert [s["Id"] for s in steps] == list(range(1, len(steps) + 1))
    assert all(s["RecoveryUID"] == uid and s["AuditAt"] for s in steps)
    names = [s["Orch"]["Step"] for s in steps]
    for want in ("lock", "freeze", "choose", "promote", "repoint", "fence"):
        assert want in names, names
    assert ok(orch, leader, "/api/audit-recovery-steps/nosuch") == []
    dets = ok(orch, leader, "/api/audit-failure-detection")
    dead = [d for d in dets if d["AnalysisEntry"]["Analysis"] == "DeadMaster"]
    assert dead and dead[0]["AnalysisEntry"]["AnalyzedInstanceKey"]["Port"] == \
        sandbox.servers["db1"].port
    assert ok(orch, leader, f"/api/audit-failure-detection/id/{dead[0]['Id']}")[0]["Id"] == \
        dead[0]["Id"]
    ok(orch, leader, "/api/audit-failure-detection/x", 400)

    # the chosen one was the designated one; the cluster's alias followed it
    choose = [s["Message"] for s in steps if s["Orch"]["Step"] == "choose"]
    assert "designated by the operator" in choose[0], choose
    wait_until(lambda: ok(orch, leader, "/api/cluster-info/alias/shop")["ClusterName"]
               == f"127.0.0.1:{sandbox.servers['db4'].port}", 5, "the alias on db4's cluster")
    # the new topology has nothing to say about db4's cluster
    new_cluster = f"127.0.0.1:{sandbox.servers['db4'].port}"
    wait_until(lambda: problems(orch, leader, new_cluster) == [], 10,
               "a healthy cluster under db4")
    stop_clean(orch)


def audit(orch, i, n=1):
    """audit-recovery of coordinator I, once it lists N recoveries and none runs."""
    def done():
        recs = ok(orch, i, "/api/audit-recovery")
        return recs if len(recs) == n and not any(r["IsActive"] for r in recs) else None
    return wait_until(done, 10, f"{n} finished recoveries")


def logged(orch, i, text):
    return text in orch.log_path(i).read_text()


def test_global_switch_refusal_block_and_acknowledgement(sandbox, make_orch):
    orch = make_orch(sandbox)  # every cluster recovered automatically
    leader, follower = warm(orch)
    cluster = f"127.0.0.1:{sandbox.servers['db1'].port}"

    # disabled (by a follower) and every replica must_not: nothing can be promoted
    body = ok(orch, follower, "/api/disable-global-recoveries")
    assert body["Details"] == "disabled" and body["Message"] == "Globally disabled recoveries"
    for n in ("db2", "db3", "db4"):
        ok(orch, follower, f"/api/register-candidate/{key(sandbox, n)}/must_not")
    for i in (leader, follower):
        wait_until(lambda i=i: ok(orch, i, "/api/check-global-recoveries")["Details"] == "disabled",
                   5, "every coordinator to see the switch")
    wait_until(lambda: all(instance(orch, leader, sandbox, n)["PromotionRule"] == "must_not"
                           for n in ("db2", "db3", "db4")), 5, "the promotion rules")

    # the primary dies: detected, not recovered while disabled
    sandbox.kill("db1", signal.SIGKILL)
    wait_until(lambda: finding(orch, leader, sandbox, "db1"), 10, "DeadMaster")
    wait_until(lambda: logged(orch, leader, "recoveries are disabled globally"), 10,
               "the skip to be logged")
    time.sleep(1.0)
    assert ok(orch, leader, "/api/audit-recovery") == []

    # enabled: the finding that lasts is taken up, and refused (no candidate)
    assert ok(orch, leader, "/api/enable-global-recoveries")["Details"] == "enabled"
    recs = audit(orch, follower)
    assert len(recs) == 1 and not recs[0]["IsSuccessful"], recs
    assert recs[0]["Orch"]["State"] == "refused" and recs[0]["AllErrors"], recs
    assert recs[0]["SuccessorKey"] is None
    assert failed_over(sandbox, {"db1"}) is None

    # the operator allows db3; a new leader judges again and is blocked (anti-flap)
    ok(orch, follower, f"/api/register-candidate/{key(sandbox, 'db3')}/prefer")
    wait_until(lambda: instance(orch, follower, sandbox, "db3")["PromotionRule"] == "prefer", 5,
               "the new rule")
    orch.stop_coordinator(leader)
    second = orch.leader(other_than=leader)
    wait_until(lambda: logged(orch, second, "ORCH-FAILOVER-BLOCKED"), 10,
               "the new leader to be blocked")
    assert len(ok(orch, second, "/api/audit-recovery")) == 1
    assert failed_over(sandbox, {"db1"}) is None
    # what blocks it, on any node
    blocking = ok(orch, follower, f"/api/blocked-recoveries/cluster/{cluster}")
    assert [b["UID"] for b in blocking] == [recs[0]["UID"]], blocking
    assert ok(orch, second, "/api/blocked-recoveries/cluster/nosuchcluster") == []

    # acknowledged (a comment is required) ...
    ok(orch, second, f"/api/ack-recovery/cluster/{cluster}", 400)
    body = ok(orch, second, f"/api/ack-recovery/cluster/{cluster}?comment={q('db3 is fine')}")
    assert body["Details"] == 1, body
    rec = ok(orch, second, "/api/audit-recovery")[0]
    assert rec["Acknowledged"] and rec["AcknowledgedBy"] == "orch" and rec["AcknowledgedAt"]
    assert rec["AcknowledgedComment"] == "db3 is fine"
    assert ok(orch, second, "/api/ack-all-recoveries?comment=again")["Details"] == 0
    assert ok(orch, second, "/api/blocked-recoveries") == []

    # ... the next judgement recovers onto db3
    orch.stop_coordinator(second)
    third = orch.leader(other_than=second)
    new = wait_until(lambda: failed_over(sandbox, {"db1"}), 15, "the recovery once acknowledged")
    assert new == "db3"
    recs = audit(orch, third, 2)
    assert [r["Orch"]["State"] for r in recs] == ["succeeded", "refused"], recs
    stop_clean(orch)


def test_new_primary_killed_right_after_a_failover_is_blocked(sandbox, make_orch):
    orch = make_orch(sandbox)
    leader, _ = warm(orch)
    sandbox.kill("db1", signal.SIGKILL)
    first = wait_until(lambda: failed_over(sandbox, {"db1"}), 10, "the first recovery")
    assert len(audit(orch, leader)) == 1
    sandbox.kill(first, signal.SIGKILL)
    wait_until(lambda: logged(orch, leader, "ORCH-FAILOVER-BLOCKED")
               or len(ok(orch, leader, "/api/audit-recovery")) > 1, 10, "the second failure handled")
    assert logged(orch, leader, "ORCH-FAILOVER-BLOCKED")
    assert len(ok(orch, leader, "/api/audit-recovery")) == 1
    # acknowledging the cluster as it is named now (after its master) lifts it
    now = f"127.0.0.1:{sandbox.servers[first].port}"
    assert ok(orch, leader, f"/api/ack-recovery/cluster/{now}?comment=ok")["Details"] == 1
