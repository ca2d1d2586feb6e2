"""No acknowledged write may be lost (DESIGN.md section 4): a writer commits on
a semi-sync (AFTER_SYNC) primary while it is killed or frozen; every commit the
writer saw return OK must be on the new primary, and a commit waiting on a
frozen primary must end with an error, never OK, once it resumes."""

import signal
import threading

import pymysql

from orchtest import wait_until
from test_recovery import failed_over, recoveries, warm


class Writer(threading.Thread):
    """Inserts 1, 2, 3, ... with autocommit until stopped or broken; remembers
    which inserts returned OK and what the one in flight at the end got."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.conn = server.connect(tcp=True, timeout=120)
        self.acked, self.failed, self.stop = [], [], threading.Event()
        self.last_ok_after_error = []

    def run(self):
        cur = self.conn.cursor()
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                cur.execute(f"INSERT INTO app.w VALUES ({i})")
                self.acked.append(i)
            except pymysql.err.MySQLError as e:
                self.failed.append((i, str(e)))
                return


def setup_table(sb):
    sb.sql("db1", "CREATE DATABASE IF NOT EXISTS app")
    sb.sql("db1", "CREATE TABLE app.w (id INT PRIMARY KEY)")
    sb.wait_replication(timeout=10)


def rows(sb, name):
    return {r["id"] for r in sb.sql(name, "SELECT id FROM app.w")}


def test_kill9_under_semi_sync_loses_no_acknowledged_write(make_sandbox, make_orch):
    sb = make_sandbox("1+3", semi_sync=True, semi_sync_timeout_ms=600000)
    orch = make_orch(sb)
    warm(orch)
    setup_table(sb)
    w = Writer(sb.server("db1"))
    w.start()
    wait_until(lambda: len(w.acked) >= 200, 20, "200 acknowledged inserts")
    sb.kill("db1", signal.SIGKILL)
    w.join(timeout=30)
    new = wait_until(lambda: failed_over(sb, "db1"), 15, "a new primary with followers")
    have = rows(sb, new)
    lost = [i for i in w.acked if i not in have]
    print(f"{len(w.acked)} acknowledged inserts, {len(lost)} missing on the new primary {new}")
    assert lost == [], f"acknowledged writes lost: {lost[:10]}"
    for n in ("db2", "db3", "db4"):
        if n != new:
            wait_until(lambda n=n: rows(sb, n) >= set(w.acked), 10, f"{n} to have every row")
    assert [r["state"] for r in recoveries(sb)] == ["succeeded"]


def test_commit_in_flight_on_a_frozen_primary_never_returns_ok(make_sandbox, make_orch):
    sb = make_sandbox("1+3", semi_sync=True, semi_sync_timeout_ms=600000, slave_net_timeout=30)
    orch = make_orch(sb)
    warm(orch)
    setup_table(sb)
    w = Writer(sb.server("db1"))
    w.start()
    wait_until(lambda: len(w.acked) >= 100, 20, "100 acknowledged inserts")
    sb.kill("db1", signal.SIGSTOP)
    try:
        frozen_at = len(w.acked)
        new = wait_until(lambda: failed_over(sb, "db1"), 15, "a new primary while db1 hangs")
    finally:
        sb.kill("db1", signal.SIGCONT)
    # the commit that was waiting must now fail (connection killed by the fence),
    # and the old primary must be read-only, never a second writable primary
    wait_until(lambda: w.failed or not w.is_alive(), 15, "the writer's commit in flight to end")
    w.stop.set()
    wait_until(lambda: sb.server("db1").value("SELECT @@read_only") == 1, 10,
               "the resumed old primary to be read-only")
    assert w.failed, "the in-flight commit returned OK on a fenced primary"
    acked_after_freeze = [i for i in w.acked if i > frozen_at]
    have = rows(sb, new)
    lost = [i for i in w.acked if i not in have]
    print(f"{len(w.acked)} acknowledged ({len(acked_after_freeze)} after the freeze), "
          f"in-flight commit ended with: {w.failed[0][1][:80]}; lost on {new}: {len(lost)}")
    assert lost == [], f"acknowledged writes lost: {lost[:10]}"


def test_master_that_lost_its_semi_sync_replicas_is_switched_to_async(make_sandbox, make_orch):
    """LockedSemiSyncMaster: the only replica dies, the legitimate master's
    commits hang on an acknowledgement that cannot come; the leader (not the
    master's own timeout) switches it to async and the writer goes on."""
    sb = make_sandbox("1+1", semi_sync=True, semi_sync_timeout_ms=600000)
    orch = make_orch(sb)
    warm(orch, servers=2)
    setup_table(sb)
    w = Writer(sb.server("db1"))
    w.start()
    wait_until(lambda: len(w.acked) >= 50, 20, "50 acknowledged inserts")
    sb.kill("db2", signal.SIGKILL)
    at_kill = len(w.acked)
    wait_until(lambda: len(w.acked) > at_kill + 50, 20,
               "the writer to go on after the leader switched db1 to async")
    w.stop.set()
    w.join(10)
    assert not w.failed, f"a commit failed: {w.failed}"
    assert sb.server("db1").value("SELECT @@rpl_semi_sync_master_enabled") == 0
    assert sb.server("db1").value("SELECT @@read_only") == 0, "the master must stay writable"
    assert recoveries(sb) == [], "no failover: the master is alive"
    print(f"{at_kill} acknowledged before db2 died, {len(w.acked) - at_kill} after")
    # the replica returns: the leader switches the master back to semi-sync,
    # and commits are acknowledged by the replica again
    sb.start(["db2"])
    wait_until(lambda: sb.server("db1").value("SELECT @@rpl_semi_sync_master_enabled") == 1, 15,
               "semi-sync switched back on once the replica is connected")
    yes = int(sb.sql("db1", "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_yes_tx'")[0]["Value"])
    sb.sql("db1", "INSERT INTO app.w VALUES (100000000)")
    after = int(sb.sql("db1", "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_yes_tx'")[0]["Value"])
    assert after == yes + 1, "the commit was acknowledged by the replica"
    assert any("ORCH-SEMI-SYNC-RESTORED" in orch.log_path(i).read_text() for i in range(orch.n))
