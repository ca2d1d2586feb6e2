"""System tests of the coordinator's backend store and leader election
(coordinator/store.c, coordinator/election.c) against a real MariaDB backend
from the sandbox, driven through orch-backendcheck.

Every elector prints one JSON line per --print-ms with its monotonic time "t"
and, when leading, "valid_until": the moment its leadership ends by its own
clock unless renewed. All processes run on this machine, so CLOCK_MONOTONIC
(time.monotonic() here) is shared and leadership windows of different processes
can be compared directly: two windows must never overlap.
"""

import json
import os
import signal
import subprocess
import threading
import time

import pymysql
import pytest

import sandbox as sbx
from orchtest import CREDENTIALS, require_binary, wait_until

LEASE, INTERVAL, MARGIN = 3000, 500, 1000   # ms
SLACK = 1000                                 # ms of scheduling slack on a loaded 2-core box


@pytest.fixture(autouse=True)
def _binary():
    require_binary("orch-backendcheck")


def now_ms():
    return time.monotonic() * 1000.0


def backend_args(sb):
    c = CREDENTIALS["coordinator"]
    return ["--host", "127.0.0.1", "--port", str(sb.backend.port),
            "--user", c["user"], "--password", c["password"]]


def backend_sql(sb, query, args=None):
    c = CREDENTIALS["coordinator"]
    conn = pymysql.connect(host="127.0.0.1", port=sb.backend.port, user=c["user"],
                           password=c["password"], database="orch", connect_timeout=5,
                           autocommit=True, cursorclass=pymysql.cursors.DictCursor)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall()
    finally:
        conn.close()


class Proc:
    """One orch-backendcheck process; stdout JSON lines are collected with the
    monotonic time they arrived; stderr (the log) goes to a file."""

    def __init__(self, name, args, log_dir):
        self.name = name
        self.args = [str(require_binary("orch-backendcheck"))] + [str(a) for a in args]
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.lines = []            # (arrival ms, dict)
        self._lock = threading.Lock()
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, preexec_fn=sbx._die_with(os.getpid()))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                d = {"event": "garbage", "text": line}
            with self._lock:
                self.lines.append((now_ms(), d))

    def all(self):
        with self._lock:
            return [d for _, d in self.lines]

    def last(self):
        with self._lock:
            return self.lines[-1][1] if self.lines else None

    def since(self, t_ms):
        """Lines whose own time "t" is at or after t_ms."""
        return [d for d in self.all() if d.get("t", 0) >= t_ms]

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=30):
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def stop(self, timeout=10):
        """SIGCONT + SIGTERM by PID, then SIGKILL if it does not exit."""
        if self.proc.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    os.kill(self.proc.pid, sig)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def procs(request, tmp_dir):
    """Factory: procs(name, args) -> a started Proc; all are stopped by PID at
    teardown, and their logs attached to a failed test's report."""
    made = []

    def make(name, args):
        p = Proc(name, args, tmp_dir)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for p in made:
            print(f"---- {p.name} (exit {p.proc.returncode}) log:\n{p.log()[-4000:]}")


def elector(procs, sb, node, lease=LEASE, interval=INTERVAL, margin=MARGIN, print_ms=50):
    return procs(node, ["elect", "--node", node, "--api-url", f"http://{node}.test:3000",
                        "--lease-ms", lease, "--interval-ms", interval, "--margin-ms", margin,
                        "--print-ms", print_ms] + backend_args(sb))


def leaders(electors):
    """Electors whose newest line says they lead."""
    return [e for e in electors if (e.last() or {}).get("leader")]


def the_leader(electors, min_epoch=0, exclude=()):
    ls = [e for e in leaders(electors) if e not in exclude and e.last()["my_epoch"] >= min_epoch]
    return ls[0] if len(ls) == 1 else None


def windows(p):
    """Leadership windows of one elector: [(first t leading, last valid_until)],
    one per run of consecutive leading lines."""
    out, cur = [], None
    for d in p.all():
        if "t" not in d or d.get("event") in ("stopped", "error"):
            continue
        if d.get("leader"):
            if cur is None:
                cur = [d["t"], d["valid_until"], d["my_epoch"]]
            else:
                cur[1] = max(cur[1], d["valid_until"])
        elif cur is not None:
            out.append(tuple(cur))
            cur = None
    if cur is not None:
        out.append(tuple(cur))
    return out


def assert_no_overlap(electors):
    """No two electors ever claimed leadership windows that overlap in time."""
    ws = [(e.name, w) for e in electors for w in windows(e)]
    for i, (na, a) in enumerate(ws):
        for nb, b in ws[i + 1:]:
            if na == nb:
                continue
            assert a[1] <= b[0] or b[1] <= a[0], \
                f"overlapping leadership: {na} {a} and {nb} {b}"
    return ws


def stop_all(ps):
    """Stop by PID; each must exit 0 (a clean stop, no sanitizer report)."""
    for p in ps:
        assert p.stop() == 0, f"{p.name}: exit {p.proc.returncode}\n{p.log()[-3000:]}"
    assert_clean_logs(*ps)


def assert_clean_logs(*ps):
    for p in ps:
        log = p.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error"):
            assert bad not in log, log[-3000:]


# ---------------------------------------------------------------------------
# election
# ---------------------------------------------------------------------------

def test_three_electors_exactly_one_leader_never_two(make_sandbox, procs):
    sb = make_sandbox("db1")
    es = [elector(procs, sb, f"n{i}") for i in (1, 2, 3)]
    leader = wait_until(lambda: the_leader(es), 10, "one leader among three")
    # everyone agrees on who leads, at which epoch, and where its API is
    wait_until(lambda: all(e.last()["leader_node"] == leader.name and
                           e.last()["epoch"] == leader.last()["my_epoch"] and
                           e.last()["leader_api_url"] == f"http://{leader.name}.test:3000"
                           for e in es), 5, "followers agree on the leader")
    wait_until(lambda: all(len(e.last()["nodes"]) == 3 for e in es), 5, "three nodes seen")
    start = now_ms()
    samples = 0
    while now_ms() - start < 10000:
        lead = [e.name for e in es if (e.last() or {}).get("leader")]
        assert len(lead) <= 1, f"two leaders at once: {lead}"
        samples += 1
        time.sleep(0.05)
    assert samples >= 150
    assert [e.name for e in leaders(es)] == [leader.name]
    ws = assert_no_overlap(es)
    assert len(ws) == 1, ws       # one stable term, no flapping
    stop_all(es)
    # the clean stop released the lease
    row = backend_sql(sb, "SELECT node, epoch, renewed_at FROM leader")[0]
    assert row["renewed_at"].year == 2000, row


def test_kill9_leader_successor_takes_over_with_higher_epoch(make_sandbox, procs):
    sb = make_sandbox("db1")
    es = [elector(procs, sb, f"n{i}") for i in (1, 2, 3)]
    old = wait_until(lambda: the_leader(es), 10, "one leader")
    epoch = old.last()["my_epoch"]
    t_kill = now_ms()
    old.signal(signal.SIGKILL)
    old.wait_exit(10)
    rest = [e for e in es if e is not old]
    new = wait_until(lambda: the_leader(rest, epoch + 1), (LEASE + INTERVAL + SLACK) / 1000 + 2,
                     "a successor with a higher epoch")
    first = next(d for d in new.all() if d.get("leader") and d["my_epoch"] > epoch)
    takeover = first["t"] - t_kill
    print(f"kill -9 of the leader -> successor {new.name} at epoch {first['my_epoch']} "
          f"after {takeover:.0f} ms (lease {LEASE} ms, interval {INTERVAL} ms)")
    assert first["my_epoch"] == epoch + 1
    assert takeover <= LEASE + INTERVAL + SLACK, takeover
    # the dead leader's last claim ended before the successor's began
    assert_no_overlap(es)
    wait_until(lambda: all(e.last()["leader_node"] == new.name for e in rest), 5,
               "the survivor follows the successor")
    assert "ORCH-LEADER-ELECTED" in new.log()
    stop_all(rest)


def test_sigstop_leader_steps_down_by_its_own_clock(make_sandbox, procs):
    sb = make_sandbox("db1")
    es = [elector(procs, sb, f"n{i}") for i in (1, 2, 3)]
    old = wait_until(lambda: the_leader(es), 10, "one leader")
    epoch = old.last()["my_epoch"]
    old.signal(signal.SIGSTOP)
    t_stop = now_ms()
    try:
        rest = [e for e in es if e is not old]
        new = wait_until(lambda: the_leader(rest, epoch + 1),
                         (LEASE + INTERVAL + SLACK) / 1000 + 2, "a successor")
        first = next(d for d in new.all() if d.get("leader") and d["my_epoch"] > epoch)
        # the frozen leader's own claim: valid until at most t_stop + lease - margin
        last_claim = max(d["valid_until"] for d in old.all() if d.get("leader"))
        step_down = last_claim - t_stop
        print(f"SIGSTOP of the leader: it steps down by its own clock {step_down:.0f} ms after "
              f"the freeze (lease - margin = {LEASE - MARGIN} ms); {new.name} leads at epoch "
              f"{first['my_epoch']} {first['t'] - t_stop:.0f} ms after the freeze, "
              f"{first['t'] - last_claim:.0f} ms after the old claim ended")
        assert step_down <= LEASE - MARGIN
        assert first["t"] >= last_claim
        # hold it frozen a little longer, then let it run again
        wait_until(lambda: now_ms() - t_stop > LEASE + 1000, 10, "a while frozen")
    finally:
        old.signal(signal.SIGCONT)
    t_cont = now_ms()
    wait_until(lambda: old.since(t_cont), 5, "output after SIGCONT")
    after = old.since(t_cont)
    assert not any(d.get("leader") for d in after), after[:3]
    wait_until(lambda: old.last()["leader_node"] == new.name and
               old.last()["epoch"] == first["my_epoch"], 5, "the old leader follows")
    assert not any(d.get("leader") for d in old.since(t_cont))
    assert_no_overlap(es)
    assert "ORCH-LEADER-LOST" in old.log()
    stop_all(es)


@pytest.mark.parametrize("how", ["kill", "freeze"])
def test_backend_down_leader_steps_down_and_election_resumes(make_sandbox, procs, how):
    sb = make_sandbox("db1")
    es = [elector(procs, sb, f"n{i}") for i in (1, 2)]
    old = wait_until(lambda: the_leader(es), 10, "one leader")
    epoch = old.last()["my_epoch"]
    t_down = now_ms()
    if how == "kill":
        sb.kill("backend", signal.SIGKILL, wait=True)
    else:
        sb.kill("backend", signal.SIGSTOP)
    try:
        wait_until(lambda: not leaders(es), (LEASE - MARGIN + INTERVAL + SLACK) / 1000,
                   "no leader while the backend is away")
        stepped = next(d for d in old.since(t_down) if not d.get("leader"))
        gone = stepped["t"] - t_down
        print(f"backend {how}: leader stepped down {gone:.0f} ms later "
              f"(lease - margin + interval = {LEASE - MARGIN + INTERVAL} ms)")
        assert gone <= LEASE - MARGIN + INTERVAL + 300
        wait_until(lambda: not old.last()["backend_ok"], 5, "backend_ok false")
        # nobody leads for as long as the backend is away
        t_hold = now_ms()
        while now_ms() - t_hold < 2 * LEASE:
            assert not leaders(es), [e.last() for e in es]
            time.sleep(0.05)
    finally:
        if how == "kill":
            sb.start(["backend"])
        else:
            sb.kill("backend", signal.SIGCONT)
    t_up = now_ms()
    back = wait_until(lambda: the_leader(es, epoch + 1), 15, "a leader again")
    first = next(d for d in back.all() if d.get("leader") and d["my_epoch"] > epoch)
    print(f"backend back: {back.name} leads at epoch {first['my_epoch']} "
          f"{first['t'] - t_up:.0f} ms later")
    assert_no_overlap(es)
    for e in es:
        wait_until(lambda: e.last()["backend_ok"], 10, f"{e.name} backend_ok again")
        assert "ORCH-BACKEND-DOWN" in e.log() and "ORCH-BACKEND-UP" in e.log()
    assert "ORCH-LEADER-LOST" in old.log()
    stop_all(es)


def test_stop_is_prompt_when_the_backend_never_answers(make_sandbox, procs):
    sb = make_sandbox("db1")
    e = elector(procs, sb, "n1")
    wait_until(lambda: the_leader([e]), 10, "leading")
    w = procs("writer", ["write-instances", "--count", "200", "--write-interval-ms", "100",
                         "--hold-ms", "1500", "--timeout-s", "120"] + backend_args(sb))
    wait_until(lambda: "store: schema version" in w.log(), 10, "store started")
    sb.kill("backend", signal.SIGSTOP)
    try:
        wait_until(lambda: any(d.get("event") == "submitted" for d in w.all()), 10, "submitted")
        wait_until(lambda: not e.last()["leader"], 5, "stepped down")
        time.sleep(1.0)   # let both be blocked on the frozen backend
        for p in (e, w):
            t0 = time.monotonic()
            p.signal(signal.SIGTERM)
            p.wait_exit(10)
            took = time.monotonic() - t0
            print(f"{p.name}: stopped {took * 1000:.0f} ms after SIGTERM with a frozen backend")
            assert took < 4.0
    finally:
        sb.kill("backend", signal.SIGCONT)
    assert_clean_logs(e, w)


# ---------------------------------------------------------------------------
# store
# ---------------------------------------------------------------------------

def test_concurrent_migrations_apply_each_once(make_sandbox, procs):
    sb = make_sandbox("db1")
    ps = [procs(f"m{i}", ["migrate", "--node", f"m{i}"] + backend_args(sb)) for i in (1, 2, 3)]
    for p in ps:
        assert p.wait_exit(60) == 0, p.log()
    out = [p.all()[-1] for p in ps]
    latest = out[0]["latest"]
    assert all(o["event"] == "migrated" and o["schema_version"] == latest for o in out), out
    assert sum(o["applied"] for o in out) == latest, out
    rows = backend_sql(sb, "SELECT version, applied_by FROM schema_version ORDER BY version")
    assert [r["version"] for r in rows] == list(range(1, latest + 1)), rows
    for p in ps:
        assert "ERROR" not in p.log(), p.log()
    # and once more: nothing to do
    again = procs("m4", ["migrate"] + backend_args(sb))
    assert again.wait_exit(30) == 0
    assert again.all()[-1]["applied"] == 0
    tables = {r["t"] for r in backend_sql(
        sb, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'orch'")}
    assert {"leader", "node", "instance", "downtime", "maintenance", "candidate",
            "cluster_alias", "global_settings", "schema_version"} <= tables


def test_write_behind_10000_rows_coalesces(make_sandbox, procs):
    sb = make_sandbox("db1")
    w = procs("writer", ["write-instances", "--count", "10000", "--rounds", "3",
                         "--write-interval-ms", "500", "--timeout-s", "120"] + backend_args(sb))
    assert w.wait_exit(150) == 0, w.log()
    r = w.all()[-1]
    print(f"write-behind: 3 x 10000 rows submitted, {r['written']} written, "
          f"{r['coalesced']} coalesced, in {r['elapsed_ms']} ms")
    assert r["drained"] and r["written"] == 10000 and r["coalesced"] == 20000, r
    assert r["dropped"] == 0 and r["write_failures"] == 0, r
    rows = backend_sql(sb, "SELECT COUNT(*) AS n, MIN(state) AS lo, MAX(state) AS hi, "
                           "SUM(report LIKE '{\"round\":3,%%') AS r3 FROM instance")[0]
    assert rows["n"] == 10000 and rows["lo"] == rows["hi"] == "round-3" and rows["r3"] == 10000

    # last-seen updates touch existing rows only
    ls = procs("seen", ["write-instances", "--count", "10000", "--only-last-seen"] +
               backend_args(sb))
    assert ls.wait_exit(60) == 0, ls.log()
    stray = procs("stray", ["write-instances", "--count", "50", "--only-last-seen",
                            "--host-prefix", "unknown"] + backend_args(sb))
    assert stray.wait_exit(60) == 0, stray.log()
    rows = backend_sql(sb, "SELECT COUNT(*) AS n, SUM(last_seen > first_seen) AS later "
                           "FROM instance")[0]
    assert rows["n"] == 10000 and rows["later"] == 10000, rows

    # the queue is bounded: new keys beyond it are dropped and counted
    capped = procs("capped", ["write-instances", "--count", "1000", "--queue-max", "400",
                              "--host-prefix", "capped"] + backend_args(sb))
    assert capped.wait_exit(60) == 0, capped.log()
    r = capped.all()[-1]
    assert r["written"] == 400 and r["dropped"] == 600, r

    # a node that does not lead writes nothing: its queue is discarded
    gated = procs("gated", ["write-instances", "--count", "100", "--gate-closed",
                            "--host-prefix", "gated"] + backend_args(sb))
    assert gated.wait_exit(60) == 0, gated.log()
    r = gated.all()[-1]
    assert r["written"] == 0 and r["discarded"] == 100, r
    n = backend_sql(sb, "SELECT COUNT(*) AS n FROM instance WHERE hostname LIKE 'gated%%'")
    assert n[0]["n"] == 0
    assert_clean_logs(w, ls, stray, capped, gated)


def test_write_behind_catches_up_after_backend_outage(make_sandbox, procs):
    sb = make_sandbox("db1")
    w = procs("writer", ["write-instances", "--count", "3000", "--write-interval-ms", "2000",
                         "--timeout-s", "120"] + backend_args(sb))
    wait_until(lambda: any(d.get("event") == "submitted" for d in w.all()), 10, "submitted")
    sb.stop(["backend"])
    wait_until(lambda: "ORCH-BACKEND-DOWN" in w.log(), 10, "the store sees the backend down")
    wait_until(lambda: any(d.get("write_failures", 0) >= 2 and d["queue_depth"] == 3000
                           for d in w.all()), 20, "write attempts failing, rows kept")
    assert w.proc.poll() is None
    sb.start(["backend"])
    assert w.wait_exit(60) == 0, w.log()
    r = w.all()[-1]
    assert r["written"] == 3000 and r["write_failures"] >= 1 and r["dropped"] == 0, r
    assert "ORCH-BACKEND-UP" in w.log()
    n = backend_sql(sb, "SELECT COUNT(*) AS n FROM instance")[0]["n"]
    assert n == 3000


def op(procs, sb, name, *args):
    p = procs(name, ["op", *args] + backend_args(sb))
    rc = p.wait_exit(30)
    return rc, p.all()[-1]


def snapshot(procs, sb, *args):
    p = procs(f"state-{time.monotonic_ns()}", ["operator-state", *args] + backend_args(sb))
    assert p.wait_exit(30) == 0, p.log()
    d = p.all()[-1]
    assert d["event"] == "snapshot"
    return d


def test_operator_writes_appear_in_the_snapshot_and_expire(make_sandbox, procs):
    sb = make_sandbox("db1")
    assert op(procs, sb, "dt", "begin-downtime", "--instance", "DB9.example:3306",
              "--duration-s", "3", "--owner", "alice", "--reason", "disk swap")[0] == 0
    rc, d = op(procs, sb, "mt", "begin-maintenance", "--instance", "db9.example:3306",
               "--duration-s", "600", "--owner", "bob", "--reason", "upgrade")
    assert rc == 0 and d["result"] == "success" and d["on_loop_thread"], d
    assert op(procs, sb, "cand", "register-candidate", "--instance", "db8.example",
              "--rule", "prefer_not", "--duration-s", "600")[0] == 0
    assert op(procs, sb, "alias", "set-alias", "--cluster", "db1.example:3306",
              "--alias", "main")[0] == 0
    assert op(procs, sb, "set", "set-setting", "--name", "recovery", "--value", "off")[0] == 0
    rc, d = op(procs, sb, "bad", "register-candidate", "--instance", "db8.example",
               "--rule", "sometimes")
    assert rc == 2 and d["event"] == "refused", d

    s = snapshot(procs, sb, "--setting", "recovery")
    by = {i["key"]: i for i in s["instances"]}
    assert set(by) == {"db8.example:3306", "db9.example:3306"}, s
    db9 = by["db9.example:3306"]
    assert db9["downtime_owner"] == "alice" and db9["downtime_reason"] == "disk swap"
    assert 0 < db9["downtime_until"] - s["wall_ms"] <= 3500
    assert db9["maintenance_owner"] == "bob" and db9["maintenance_until"] > s["wall_ms"]
    assert by["db8.example:3306"]["promotion_override"] == "prefer_not"
    assert by["db8.example:3306"]["downtime_until"] == 0
    assert s["aliases"] == [{"cluster": "db1.example:3306", "alias": "main"}]
    assert s["settings"] == {"recovery": "off"}

    # the alias moves when given to another cluster (it is unique)
    assert op(procs, sb, "alias2", "set-alias", "--cluster", "db2.example:3306",
              "--alias", "main")[0] == 0
    assert snapshot(procs, sb)["aliases"] == [{"cluster": "db2.example:3306", "alias": "main"}]

    # the downtime expires by itself; the maintenance is ended by hand
    wait_until(lambda: snapshot(procs, sb)["instances"] and not any(
        i["downtime_until"] for i in snapshot(procs, sb)["instances"]), 10, "downtime expired")
    assert op(procs, sb, "endmt", "end-maintenance", "--instance", "db9.example:3306")[0] == 0
    s = snapshot(procs, sb)
    assert [i["key"] for i in s["instances"]] == ["db8.example:3306"], s
    assert op(procs, sb, "endc", "end-candidate", "--instance", "db8.example")[0] == 0
    assert snapshot(procs, sb)["instances"] == []
