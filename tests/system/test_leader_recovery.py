"""The leader coordinator lost in the middle of a recovery (issue fault matrix:
"Leader coordinator killed in the middle of a recovery: another leader completes
or safely redoes it; still exactly one promotion. A deposed leader's commands
are refused by the agents.").

Real MariaDB servers, agents and three coordinators; real signals. A recovery
is held at a known step, then its leader is killed (SIGKILL) or frozen
(SIGSTOP):

- before anything changed: a pre_failover hook that sleeps. The next leader
  marks the recovery interrupted and redoes it from the start;
- after the successor was recorded: app.t is locked on every replica before
  the primary's last writes, so the chosen one's WaitForGtid (apply the relay
  log before promotion) cannot finish. The next leader marks the recovery
  interrupted and promotes the same successor;
- after the promotion, before the others were repointed (their agents are
  gone, so the repoint waits): the next leader completes the recovery with the
  promoted successor (no second promotion) and fences the old primary;
- after every replica was repointed, while the fence waits on the old
  primary's silent agent: the next leader marks the recovery interrupted and
  sends the fence recorded with the successor when that agent returns;
- a frozen leader resumed after its successor finished: it steps down,
  abandons its recovery without recording or sending anything, and a command
  at its epoch is refused by every agent.

Every case ends with exactly one promotion, counted on the servers (one
writable former replica without replication, the others following it), in the
agents' logs (one RESET_REPLICA) and in the audit."""

import os
import re
import signal
import time
from pathlib import Path

from orchtest import wait_until
from test_recovery import failed_over, warm

REPLICAS = ("db2", "db3", "db4")


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def api(orch, i, path, status=200):
    got, body = orch.get(i, path, timeout=10)
    assert got == status, (path, got, body)
    return body


def audit(orch, i):
    """audit-recovery of coordinator I, oldest first."""
    return sorted(api(orch, i, "/api/audit-recovery"), key=lambda r: r["Id"])


def steps(orch, i, uid):
    return api(orch, i, f"/api/audit-recovery-steps/{uid}")


def backend_recoveries(sb):
    return sb.sql("backend", "SELECT uid, state, node, epoch, successor_host, successor_port "
                             "FROM orch.recovery ORDER BY started_at")


def leader_row(sb):
    return sb.sql("backend", "SELECT node, epoch FROM orch.leader WHERE id = 1")[0]


def name_of_port(sb, port):
    return next(n for n, s in sb.servers.items() if s.port == int(port))


def leader_among(orch, idxs, timeout=15):
    """The one coordinator of IDXS whose leader-check answers 200 (a frozen
    coordinator must not be asked: its API hangs)."""
    def one():
        found = [i for i in idxs if orch.get(i, "/api/leader-check", timeout=1)[0] == 200]
        return [found[0]] if len(found) == 1 else None
    return wait_until(one, timeout, f"exactly one leader among {idxs}")[0]


CMD_LINE = re.compile(r"ORCH-CMD (?:\S+: )?(\w+) epoch=(\d+) id=(\d+) from (\S+): (\w+)")


def agent_commands(orch, name):
    """[(type, epoch, id, leader, result)] the agent of NAME executed (its log)."""
    p = orch.agents.log_path(name)
    text = p.read_text() if p.exists() else ""
    return [(m[1], int(m[2]), int(m[3]), m[4], m[5]) for m in CMD_LINE.finditer(text)]


def promotions(orch):
    """{agent: n} RESET_REPLICA executed successfully, over every agent."""
    out = {}
    for name in orch.agents.configs:
        n = sum(1 for t, _, _, _, res in agent_commands(orch, name)
                if t == "RESET_REPLICA" and res == "OK")
        if n:
            out[name] = n
    return out


def writable_without_master(sb):
    """Live former replicas that are writable and replicate from nobody."""
    out = []
    for n in REPLICAS:
        s = sb.server(n)
        if s.value("SELECT @@read_only") == 0 and not s.slave_status():
            out.append(n)
    return out


def fill(sb, rows):
    sb.sql("db1", "CREATE DATABASE IF NOT EXISTS app")
    sb.sql("db1", "CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY)")
    start = sb.server("db1").value("SELECT COUNT(*) FROM app.t")
    for i in range(start, start + rows):
        sb.sql("db1", f"INSERT INTO app.t VALUES ({i})")


def hold_at_apply(sb, rows=20):
    """Holds app.t locked (LOCK TABLES ... WRITE) on every replica and writes ROWS
    more on the primary, until every replica has received them: their SQL
    threads keep running but wait for the lock, so a recovery's chosen successor
    cannot apply its relay log (WaitForGtid), which holds the recovery right
    after its successor is recorded. Returns the connections holding the locks
    (release_apply() closes them).

    Not STOP SLAVE SQL_THREAD: once the freeze has stopped the IO thread too,
    MariaDB (GTID mode) discards the relay log at the next START SLAVE, and what
    the replicas received from the dead primary would be gone."""
    held = []
    try:
        for n in REPLICAS:
            conn = sb.server(n).connect()
            conn.cursor().execute("LOCK TABLES app.t WRITE")
            held.append(conn)
        fill(sb, rows)
        pos = sb.server("db1").value("SELECT @@gtid_binlog_pos")
        for n in REPLICAS:
            wait_until(lambda n=n: sb.server(n).slave_status()["Gtid_IO_Pos"] == pos, 10,
                       f"{n} to receive {pos}")
            assert sb.server(n).value("SELECT @@gtid_slave_pos") != pos
    except BaseException:
        release_apply(held)
        raise
    return held


def release_apply(held):
    while held:
        held.pop().close()  # UNLOCK TABLES: the SQL threads apply what they received


def gtid_waits(sb, name):
    """Ids of the connections on NAME running MASTER_GTID_WAIT (an agent's WaitForGtid)."""
    rows = sb.sql(name, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                        "AND INFO LIKE 'SELECT MASTER\\_GTID\\_WAIT(%'")
    return [r["ID"] for r in rows]


def successor_recorded(sb, node):
    """The running recovery of coordinator NODE once it recorded its successor."""
    rows = [r for r in backend_recoveries(sb)
            if r["state"] == "running" and r["node"] == node and int(r["successor_port"]) > 0]
    return rows[0] if rows else None


def finished(orch, i, n):
    """audit-recovery of coordinator I once it lists N recoveries, none running."""
    def done():
        recs = audit(orch, i)
        return recs if len(recs) == n and not any(r["IsActive"] for r in recs) else None
    return wait_until(done, 15, f"{n} finished recoveries")


def check_one_promotion(orch, sb, new, rows):
    """NEW is the only writable former replica, every other follows it with every
    row, and exactly one RESET_REPLICA was executed (on NEW)."""
    assert writable_without_master(sb) == [new]
    assert promotions(orch) == {new: 1}, promotions(orch)
    assert sb.server(new).value("SELECT COUNT(*) FROM app.t") == rows
    sb.sql(new, f"INSERT INTO app.t VALUES ({rows + 1000})")
    for n in REPLICAS:
        if n != new:
            wait_until(lambda n=n: sb.server(n).value("SELECT COUNT(*) FROM app.t") == rows + 1,
                       10, f"{n} to follow {new}")


def check_old_primary_fenced(sb, new):
    sb.start(["db1"])
    wait_until(lambda: sb.server("db1").value("SELECT @@read_only") == 1, 10,
               "the returning old primary to be fenced")
    assert failed_over(sb, "db1") == new  # still exactly one writable primary


def pid_is_ours_sleep(pid):
    try:
        return b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def kill_hook(pid):
    """Kills the process group of the paused hook (orphaned by its coordinator)."""
    if pid and pid_is_ours_sleep(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def post_hooks(d):
    """post_failover and post_unsuccessful_failover hooks that append "node uid
    successor-port" to D/post.log and D/post-failed.log."""
    post = f'echo "$ORCH_HOST $ORCH_RECOVERY_UID $ORCH_SUCCESSOR_PORT" >> {d}/post.log'
    return dict(post_failover=[post],
                post_unsuccessful_failover=[post.replace("post.log", "post-failed.log")])


def held_at_apply_after_writes(sb):
    """30 rows replicated everywhere, then hold_at_apply() with 20 more."""
    fill(sb, 30)
    sb.wait_replication(timeout=10)
    return hold_at_apply(sb, 20)


def log_of(orch, i):
    return orch.log_path(i).read_text()


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

def test_leader_killed_before_any_change_next_leader_redoes_it(sandbox, make_orch, tmp_dir):
    d = Path(tmp_dir)
    # The first pre_failover hook to run holds its recovery (exec sleep: its pid
    # is its process group); any later one passes at once.
    hook = (f'echo "$ORCH_HOST $ORCH_RECOVERY_UID" >> {d}/pre.log; '
            f'if mkdir {d}/held 2>/dev/null; then echo $$ > {d}/held/pid.tmp; '
            f'mv {d}/held/pid.tmp {d}/held/pid; exec sleep 120; fi')
    orch = make_orch(sandbox, pre_failover=[hook], hook_timeout_ms=300000, **post_hooks(d))
    leader = warm(orch)
    fill(sandbox, 30)
    sandbox.wait_replication(timeout=10)
    hook_pid = None
    try:
        t0 = time.monotonic()
        sandbox.kill("db1", signal.SIGKILL)
        pid_file = d / "held" / "pid"
        wait_until(pid_file.exists, 15, "the pre_failover hook to hold the recovery")
        hook_pid = int(pid_file.read_text())
        held_by = (d / "pre.log").read_text().split()
        assert held_by[0] == f"c{leader + 1}", held_by
        first = successor_recorded(sandbox, held_by[0])
        assert first is None  # nothing chosen yet
        (rec1,) = backend_recoveries(sandbox)
        assert rec1["state"] == "running" and rec1["uid"] == held_by[1]
        e1 = int(rec1["epoch"])
        print(f"kill -9 db1 -> recovery {rec1['uid']} held in pre_failover by c{leader + 1} "
              f"(epoch {e1}) after {(time.monotonic() - t0) * 1000:.0f} ms")
        assert promotions(orch) == {}
        assert all(t != "STOP_REPLICA" for n in REPLICAS for t, *_ in agent_commands(orch, n))

        t1 = time.monotonic()
        orch.kill_coordinator(leader)
        kill_hook(hook_pid)
        second = orch.leader(other_than=leader)
        new = wait_until(lambda: failed_over(sandbox, "db1"), 20,
                         "the next leader to redo the recovery")
        print(f"leader c{leader + 1} killed -> c{second + 1} leads, {new} writable with every "
              f"replica following after {(time.monotonic() - t1) * 1000:.0f} ms")
    finally:
        kill_hook(hook_pid)

    recs = finished(orch, second, 2)
    for r in recs:
        print(f"audit: {r['UID']} {r['Orch']['State']} by {r['ProcessingNodeHostname']} epoch "
              f"{r['Orch']['Epoch']} successor {r['SuccessorKey']} "
              f"{r['RecoveryStartTimestamp']} .. {r['RecoveryEndTimestamp']}")
    old, redo = recs
    assert old["UID"] == rec1["uid"] and old["Orch"]["State"] == "interrupted", old
    assert not old["IsSuccessful"] and old["SuccessorKey"] is None
    assert old["ProcessingNodeHostname"] == f"c{leader + 1}"
    assert redo["Orch"]["State"] == "succeeded" and redo["IsSuccessful"], redo
    assert redo["ProcessingNodeHostname"] == f"c{second + 1}"
    assert redo["Orch"]["Epoch"] > e1
    assert redo["SuccessorKey"]["Port"] == sandbox.servers[new].port
    assert [s["Orch"]["Step"] for s in steps(orch, second, old["UID"])] == ["lock"]
    names = [s["Orch"]["Step"] for s in steps(orch, second, redo["UID"])]
    print(f"steps of {redo['UID']}: {names}")
    for want in ("lock", "hooks", "freeze", "choose", "promote", "repoint", "fence"):
        assert want in names, names
    choose = next(s["Message"] for s in steps(orch, second, redo["UID"])
                  if s["Orch"]["Step"] == "choose")
    assert "interrupted" not in choose, choose  # chosen afresh: nothing had been recorded
    assert "ORCH-FAILOVER-RESUME" not in log_of(orch, second)
    # the hooks: held once by the dead leader, passed once by the next; one post_failover
    pre = [line.split() for line in (d / "pre.log").read_text().splitlines()]
    assert pre == [[f"c{leader + 1}", old["UID"]], [f"c{second + 1}", redo["UID"]]], pre
    post_lines = (d / "post.log").read_text().splitlines()
    assert post_lines == [f"c{second + 1} {redo['UID']} {sandbox.servers[new].port}"], post_lines
    assert not (d / "post-failed.log").exists()

    check_one_promotion(orch, sandbox, new, 30)
    assert len(audit(orch, second)) == 2
    check_old_primary_fenced(sandbox, new)


def test_leader_killed_after_recording_successor_next_leader_promotes_it(sandbox, make_orch,
                                                                        tmp_dir):
    d = Path(tmp_dir)
    orch = make_orch(sandbox, **post_hooks(d))
    leader = warm(orch)
    held = held_at_apply_after_writes(sandbox)
    try:
        t0 = time.monotonic()
        sandbox.kill("db1", signal.SIGKILL)
        rec1 = wait_until(lambda: successor_recorded(sandbox, f"c{leader + 1}"), 15,
                          "the leader to record its successor")
        chosen = name_of_port(sandbox, rec1["successor_port"])
        wait_until(lambda: gtid_waits(sandbox, chosen), 10,
                   f"{chosen} to be waited for (WaitForGtid)")
        e1 = int(rec1["epoch"])
        print(f"kill -9 db1 -> recovery {rec1['uid']} (c{leader + 1}, epoch {e1}) recorded "
              f"{chosen} and waits for it to apply its relay log after "
              f"{(time.monotonic() - t0) * 1000:.0f} ms")
        assert promotions(orch) == {}

        t1 = time.monotonic()
        orch.kill_coordinator(leader)
    finally:
        release_apply(held)  # the relay logs may now be applied
    second = orch.leader(other_than=leader)
    new = wait_until(lambda: failed_over(sandbox, "db1"), 20,
                     "the next leader to finish the recovery")
    print(f"leader c{leader + 1} killed -> c{second + 1} leads, {new} writable with every "
          f"replica following after {(time.monotonic() - t1) * 1000:.0f} ms")
    assert new == chosen  # the same successor: never a second, different promotion

    recs = finished(orch, second, 2)
    for r in recs:
        print(f"audit: {r['UID']} {r['Orch']['State']} by {r['ProcessingNodeHostname']} epoch "
              f"{r['Orch']['Epoch']} successor {r['SuccessorKey']} "
              f"{r['RecoveryStartTimestamp']} .. {r['RecoveryEndTimestamp']}")
    old, resumed = recs
    assert old["UID"] == rec1["uid"] and old["Orch"]["State"] == "interrupted", old
    assert old["SuccessorKey"]["Port"] == sandbox.servers[chosen].port
    assert resumed["Orch"]["State"] == "succeeded" and resumed["IsSuccessful"], resumed
    assert resumed["ProcessingNodeHostname"] == f"c{second + 1}"
    assert resumed["Orch"]["Epoch"] > e1
    assert resumed["SuccessorKey"]["Port"] == sandbox.servers[chosen].port
    st = steps(orch, second, resumed["UID"])
    print(f"steps of {resumed['UID']}: {[(s['Orch']['Step'], s['Message']) for s in st]}")
    choose = [s["Message"] for s in st if s["Orch"]["Step"] == "choose"]
    assert len(choose) == 1 and "recorded by the interrupted recovery" in choose[0], choose
    assert not any(s["Orch"]["Step"] == "rank" for s in st)  # no fresh choice
    assert "ORCH-FAILOVER-RESUME" in log_of(orch, second)
    old_steps = [s["Orch"]["Step"] for s in steps(orch, second, old["UID"])]
    assert "choose" in old_steps and "promote" not in old_steps, old_steps
    post_lines = (d / "post.log").read_text().splitlines()
    assert post_lines == [f"c{second + 1} {resumed['UID']} {sandbox.servers[chosen].port}"]

    check_one_promotion(orch, sandbox, new, 50)
    check_old_primary_fenced(sandbox, new)


def test_leader_killed_after_promotion_next_leader_completes_it(sandbox, make_orch, tmp_dir):
    d = Path(tmp_dir)
    orch = make_orch(sandbox, **post_hooks(d))
    leader = warm(orch)
    held = held_at_apply_after_writes(sandbox)
    dead_agents = []
    try:
        sandbox.kill("db1", signal.SIGKILL)
        rec1 = wait_until(lambda: successor_recorded(sandbox, f"c{leader + 1}"), 15,
                          "the leader to record its successor")
        chosen = name_of_port(sandbox, rec1["successor_port"])
        wait_until(lambda: gtid_waits(sandbox, chosen), 10,
                   f"{chosen} to be waited for (WaitForGtid)")
        e1 = int(rec1["epoch"])
        # the other replicas' agents die (already frozen): the leader's repoint
        # commands wait for them (command_timeout_ms, 2 s) once it has promoted
        for n in REPLICAS:
            if n != chosen:
                orch.agents.stop_one(n, sig=signal.SIGKILL)
                dead_agents.append(n)
        release_apply(held)
        wait_until(lambda: writable_without_master(sandbox) == [chosen], 10,
                   f"{chosen} to be promoted (replication reset, writable)")
        t1 = time.monotonic()
        orch.kill_coordinator(leader)
        print(f"recovery {rec1['uid']} (c{leader + 1}, epoch {e1}) promoted {chosen}; leader "
              f"killed before repointing {dead_agents}")
    finally:
        release_apply(held)
        for n in dead_agents:
            orch.agents.start_one(n)
    assert promotions(orch) == {chosen: 1}
    second = orch.leader(other_than=leader)
    new = wait_until(lambda: failed_over(sandbox, "db1"), 20,
                     "the next leader to complete the recovery")
    print(f"leader c{leader + 1} killed -> c{second + 1} leads, {new} writable with every "
          f"replica following after {(time.monotonic() - t1) * 1000:.0f} ms")
    assert new == chosen

    recs = finished(orch, second, 2)
    for r in recs:
        print(f"audit: {r['UID']} {r['Orch']['State']} by {r['ProcessingNodeHostname']} epoch "
              f"{r['Orch']['Epoch']} successor {r['SuccessorKey']} "
              f"{r['RecoveryStartTimestamp']} .. {r['RecoveryEndTimestamp']}")
    old, completed = recs
    assert old["UID"] == rec1["uid"] and old["Orch"]["State"] == "interrupted", old
    assert "promote" in [s["Orch"]["Step"] for s in steps(orch, second, old["UID"])]
    assert completed["Orch"]["State"] == "succeeded" and completed["IsSuccessful"], completed
    assert completed["Orch"]["Epoch"] > e1
    assert completed["SuccessorKey"]["Port"] == sandbox.servers[chosen].port
    st = steps(orch, second, completed["UID"])
    print(f"steps of {completed['UID']}: {[(s['Orch']['Step'], s['Message']) for s in st]}")
    choose = [s["Message"] for s in st if s["Orch"]["Step"] == "choose"]
    assert len(choose) == 1 and "already promoted by the interrupted recovery" in choose[0], st
    names = [s["Orch"]["Step"] for s in st]
    for want in ("lock", "freeze", "choose", "promote", "repoint", "fence"):
        assert want in names, names
    assert not (d / "post-failed.log").exists()
    assert (d / "post.log").read_text().splitlines() == [
        f"c{second + 1} {completed['UID']} {sandbox.servers[chosen].port}"]

    check_one_promotion(orch, sandbox, new, 50)
    check_old_primary_fenced(sandbox, new)


def test_deposed_leader_resumed_after_the_failover_is_refused(sandbox, make_orch, tmp_dir):
    d = Path(tmp_dir)
    orch = make_orch(sandbox, **post_hooks(d))
    leader = warm(orch)
    others = [i for i in range(orch.n) if i != leader]
    held = held_at_apply_after_writes(sandbox)
    stopped = False
    try:
        sandbox.kill("db1", signal.SIGKILL)
        rec1 = wait_until(lambda: successor_recorded(sandbox, f"c{leader + 1}"), 15,
                          "the leader to record its successor")
        chosen = name_of_port(sandbox, rec1["successor_port"])
        waits = wait_until(lambda: gtid_waits(sandbox, chosen), 10,
                           f"{chosen} to be waited for (WaitForGtid)")
        e1 = int(rec1["epoch"])
        t0 = time.monotonic()
        os.kill(orch.procs[leader].pid, signal.SIGSTOP)
        stopped = True
        # the frozen leader's command in flight ends with an error it has not read yet
        for conn in waits:
            sandbox.sql(chosen, f"KILL {conn}")
        wait_until(lambda: any(t == "WAIT_FOR_GTID" and e == e1 and res != "OK"
                               for t, e, _, _, res in agent_commands(orch, chosen)), 10,
                   "the frozen leader's WaitForGtid to end with an error")
        release_apply(held)
        second = leader_among(orch, others)
        new = wait_until(lambda: failed_over(sandbox, "db1"), 20,
                         "the next leader to finish the recovery")
        e2 = int(leader_row(sandbox)["epoch"])
        print(f"c{leader + 1} frozen (epoch {e1}) -> c{second + 1} leads at epoch {e2}, {new} "
              f"writable with every replica following after "
              f"{(time.monotonic() - t0) * 1000:.0f} ms")
        assert new == chosen and e2 > e1
        recs = finished(orch, second, 2)
        assert [r["Orch"]["State"] for r in recs] == ["interrupted", "succeeded"], recs
        before = {n: agent_commands(orch, n) for n in orch.agents.configs}
        log_size = len(log_of(orch, leader))
    finally:
        release_apply(held)
        if stopped:
            os.kill(orch.procs[leader].pid, signal.SIGCONT)

    # the deposed leader wakes up: it steps down and abandons its recovery
    wait_until(lambda: "ORCH-FAILOVER-ABANDONED" in log_of(orch, leader)[log_size:], 15,
               "the deposed leader to abandon its recovery")
    wait_until(lambda: orch.get(leader, "/api/leader-check")[0] == 404, 5,
               "the deposed leader to say it does not lead")
    assert orch.leaders() == [second]
    woke = log_of(orch, leader)[log_size:]
    print("deposed leader after SIGCONT:\n" + "\n".join(
        line for line in woke.splitlines()
        if re.search(r"ORCH-(LEADER|FAILOVER|CMD)|not sent|epoch", line))[:4000])
    assert "ORCH-LEADER-LOST" in woke
    assert rec1["uid"] in woke.split("ORCH-FAILOVER-ABANDONED", 1)[1].splitlines()[0]
    # it neither recorded nor ran anything for its recovery ...
    recs = finished(orch, second, 2)
    for r in recs:
        print(f"audit: {r['UID']} {r['Orch']['State']} by {r['ProcessingNodeHostname']} epoch "
              f"{r['Orch']['Epoch']} successor {r['SuccessorKey']} "
              f"{r['RecoveryStartTimestamp']} .. {r['RecoveryEndTimestamp']}")
    old, resumed = recs
    assert old["UID"] == rec1["uid"] and old["Orch"]["State"] == "interrupted", old
    assert resumed["Orch"]["State"] == "succeeded" and resumed["Orch"]["Epoch"] == e2
    assert resumed["SuccessorKey"]["Port"] == sandbox.servers[chosen].port
    old_steps = [s["Orch"]["Step"] for s in steps(orch, second, old["UID"])]
    assert "failed" not in old_steps and "promote" not in old_steps, old_steps
    assert not (d / "post-failed.log").exists()
    assert (d / "post.log").read_text().splitlines() == [
        f"c{second + 1} {resumed['UID']} {sandbox.servers[chosen].port}"]
    # ... and no agent executed anything at its epoch since it woke up
    for n in orch.agents.configs:
        now = agent_commands(orch, n)
        late = [c for c in now[len(before[n]):] if c[1] < e2]
        assert now[:len(before[n])] == before[n] and late == [], (n, late)
    # every agent obeyed the new leader: a command at the deposed epoch is refused
    agents = orch.agents
    for k, n in enumerate(sorted(agents.configs)):
        if n == new:
            r = agents.command(n, "SET_READ_ONLY", e1, 9000 + k, read_only=1)
        elif n == "db1":
            r = agents.command(n, "SET_READ_ONLY", e1, 9000 + k, read_only=0)
        else:
            r = agents.command(n, "STOP_REPLICA", e1, 9000 + k, io_only=True)
        assert r["result"] == "STALE_EPOCH", (n, r)
        assert f"below {e2}" in r["error"], (n, r)
        # and not executed (the refusal's log line is rate-limited: not a proof)
        assert not [c for c in agent_commands(orch, n) if c[2] == 9000 + k], (n, r)
    print(f"a command at the deposed epoch {e1}: STALE_EPOCH from all {len(agents.configs)} agents")

    check_one_promotion(orch, sandbox, new, 50)
    assert orch.leaders() == [second]
    assert len(audit(orch, second)) == 2


def test_leader_killed_before_the_fence_next_leader_fences_on_return(sandbox, make_orch):
    """The leader dies once every replica follows the new primary, while its
    fence waits on the old primary's silent agent: nothing is left to fail
    over. The next leader marks the recovery interrupted, and the fence
    recorded with the successor goes out when the old primary's agent reports
    again: the old primary returns read-only, never a second writable one."""
    orch = make_orch(sandbox)
    leader = warm(orch)
    fill(sandbox, 10)
    sandbox.wait_replication(timeout=10)
    # the old primary's agent goes first (AgentDown: replicas replicate, no
    # failover), then its server: the fence will wait command_timeout_ms
    orch.agents.stop_one("db1", sig=signal.SIGKILL)
    sandbox.kill("db1", signal.SIGKILL)

    def repointed():
        rows = sandbox.sql("backend", "SELECT r.uid, COUNT(*) AS n FROM orch.recovery r "
                                      "JOIN orch.recovery_step s ON s.uid = r.uid "
                                      "WHERE r.state = 'running' AND s.step = 'repoint' "
                                      "GROUP BY r.uid")
        return rows[0]["uid"] if rows and rows[0]["n"] >= 2 else None
    uid = wait_until(repointed, 15, "a recovery with both other replicas repointed")
    orch.kill_coordinator(leader)
    t1 = time.monotonic()
    new = failed_over(sandbox, "db1")
    assert new is not None, "every replica follows the new primary before the fence"
    second = orch.leader(other_than=leader)

    def state():
        return {r["uid"]: r["state"] for r in backend_recoveries(sandbox)}.get(uid)
    wait_until(lambda: state() == "interrupted", 10, "the next leader to mark it interrupted")
    fences = sandbox.sql("backend", "SELECT recovery_uid FROM orch.pending_fence")
    assert [f["recovery_uid"] for f in fences] == [uid], fences
    print(f"leader c{leader + 1} killed before its fence; c{second + 1} leads "
          f"{(time.monotonic() - t1) * 1000:.0f} ms later, recovery {uid} interrupted")

    # the old primary and its agent return: fenced by the new leader
    sandbox.start(["db1"])
    orch.agents.start_one("db1")
    wait_until(lambda: sandbox.server("db1").value("SELECT @@read_only") == 1, 15,
               "the returning old primary to be fenced")
    assert failed_over(sandbox, "db1") == new
    wait_until(lambda: "ORCH-FENCED" in log_of(orch, second), 5,
               "the new leader to log the fence's answer")
    wait_until(lambda: sandbox.sql("backend", "SELECT COUNT(*) AS n FROM orch.pending_fence")[0]["n"]
               == 0, 10, "the pending fence to be dropped")
    assert promotions(orch) == {new: 1}
