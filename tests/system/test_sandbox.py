"""The sandbox itself: real MariaDB servers replicate, die, restart and vanish
the way orch's system tests will rely on."""

import os
import signal
import socket

import pytest

from orchtest import (BACKEND, CREDENTIALS, Sandbox, SandboxError, assert_nothing_left,
                      listening_ports, pid_is_live, proc_state, sandbox_cli, wait_until)
import sandbox as sbx


def write_rows(sb, table="t.rows", n=3, server=None):
    """Create TABLE on the primary (or SERVER) and insert N rows; return N."""
    server = server or sb.primary.name
    db = table.split(".")[0]
    sb.sql(server, f"CREATE DATABASE IF NOT EXISTS {db}")
    sb.sql(server, f"CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY, v VARCHAR(20))")
    for i in range(n):
        sb.sql(server, f"INSERT INTO {table} (id, v) VALUES (%s, %s)", (i, f"row {i}"))
    return n


def row_count(sb, name, table="t.rows"):
    return sb.server(name).value(f"SELECT COUNT(*) FROM {table}")


def wait_rows(sb, name, n, table="t.rows", timeout=20):
    wait_until(lambda: row_count(sb, name, table) == n, timeout,
               f"{n} rows of {table} on {name}")


def test_one_plus_three_replicates_and_leaves_nothing(sandbox):
    sb = sandbox
    assert [s.name for s in sb.servers.values()] == ["db1", "db2", "db3", "db4"]
    assert sb.primary.name == "db1"
    assert sb.backend.port == sb.base_port
    assert [s.port for s in sb.servers.values()] == [sb.base_port + i for i in range(1, 5)]

    n = write_rows(sb)
    for r in sb.replicas:
        wait_rows(sb, r.name, n)
    sb.wait_replication(timeout=10)

    assert sb.primary.value("SELECT @@read_only") == 0
    for r in sb.replicas:
        assert r.value("SELECT @@read_only") == 1, r.name
        st = r.slave_status()
        assert st["Master_Port"] == sb.primary.port, r.name
        assert st["Master_Host"] == "127.0.0.1"
        assert st["Using_Gtid"] == "Slave_Pos"
        assert (st["Slave_IO_Running"], st["Slave_SQL_Running"]) == ("Yes", "Yes")
    assert sb.live_topology() == {"db1": None, "db2": "db1", "db3": "db1", "db4": "db1"}
    assert sb.primary.slave_status() is None

    # Replication identity orch relies on.
    for s in sb.servers.values():
        v = s.sql("SELECT @@server_id AS id, @@report_host AS h, @@report_port AS p, "
                  "@@gtid_strict_mode AS strict, @@log_slave_updates AS lsu, "
                  "@@binlog_format AS fmt")[0]
        assert v == {"id": s.port, "h": "127.0.0.1", "p": s.port, "strict": 1, "lsu": 1,
                     "fmt": "ROW"}, s.name

    # Accounts: the agent over TCP, the coordinator on the backend's schema.
    agent = CREDENTIALS["agent"]
    assert sb.replicas[0].value("SELECT CURRENT_USER()", user=agent["user"]) == \
        f"{agent['user']}@127.0.0.1"
    with sb.primary.connect(user=agent["user"]) as c, c.cursor() as cur:
        cur.execute("SHOW GRANTS")
        text = " ".join(next(iter(r.values())) for r in cur.fetchall())
    for priv in ("READ_ONLY ADMIN", "REPLICATION MASTER ADMIN", "SLAVE MONITOR",
                 "CONNECTION ADMIN", "BINLOG MONITOR"):
        assert priv in text
    coord = CREDENTIALS["coordinator"]
    sb.backend.sql("CREATE TABLE probe (id INT)", user=coord["user"], database="orch")
    assert sb.backend.value("SELECT COUNT(*) FROM orch.probe") == 0

    footprint = sb.footprint()
    assert all(pid_is_live(p) for p in footprint["pids"].values())
    assert set(range(sb.base_port, sb.base_port + 5)) <= listening_ports()
    sb.destroy()
    assert_nothing_left(footprint)
    for pid in footprint["pids"].values():
        assert proc_state(pid) in (None, "Z")


def test_chain_replicates_end_to_end(make_sandbox):
    sb = make_sandbox("chain:3")
    assert sb.live_topology() == {"db1": None, "db2": "db1", "db3": "db2"}
    n = write_rows(sb)
    wait_rows(sb, "db3", n)
    sb.wait_replication(timeout=10)
    assert [sb.server(x).value("SELECT @@read_only") for x in ("db1", "db2", "db3")] == [0, 1, 1]
    assert sb.server("db2").role == "intermediate"
    assert sb.server("db3").slave_status()["Master_Port"] == sb.server("db2").port
    # db3's transactions came through db2's binary log with db1's server_id.
    gtid = sb.server("db3").value("SELECT @@gtid_slave_pos")
    assert sb.server("db1").value("SELECT @@gtid_binlog_pos") == gtid
    assert gtid.startswith(f"0-{sb.server('db1').server_id}-")


def test_tree_with_semi_sync(make_sandbox):
    sb = make_sandbox("tree", semi_sync=True)
    assert sb.live_topology() == {"db1": None, "db2": "db1", "db3": "db1",
                                  "db4": "db3", "db5": "db3"}
    for master in ("db1", "db3"):
        s = sb.server(master)
        wait_until(lambda: s.value("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                                   " WHERE VARIABLE_NAME='Rpl_semi_sync_master_clients'") == "2",
                   10, f"2 semi-sync replicas on {master}")
        assert s.value("SELECT @@rpl_semi_sync_master_wait_point") == "AFTER_SYNC"
    n = write_rows(sb)
    assert sb.primary.value("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                            "WHERE VARIABLE_NAME='Rpl_semi_sync_master_yes_tx'") == str(n + 2)
    for leaf in ("db2", "db4", "db5"):
        wait_rows(sb, leaf, n)
    sb.wait_replication(timeout=10)


def test_kill9_is_seen_dead_and_restart_recovers(sandbox):
    sb = sandbox
    n = write_rows(sb)
    sb.wait_replication(timeout=10)
    victim = sb.server("db2")
    pid = victim.pid
    sb.kill("db2", signal.SIGKILL)
    wait_until(lambda: proc_state(pid) in (None, "Z"), 10, f"pid {pid} dead in /proc/{pid}/stat")
    assert not victim.is_alive()
    wait_until(lambda: victim.port not in listening_ports(), 5, f"port {victim.port} closed")
    with pytest.raises(SandboxError, match="not running"):
        sb.kill("db2", signal.SIGKILL)

    # SIGSTOP freezes a server without killing it; status says so.
    frozen = sb.server("db3")
    sb.kill("db3", signal.SIGSTOP)
    wait_until(lambda: frozen.proc_state() == "T", 5, "db3 in state T")
    assert frozen.is_alive()
    assert {r["name"]: r["alive"] for r in sb.status()}["db3"] == "stopped"
    sb.kill("db3", signal.SIGCONT)
    wait_until(lambda: frozen.proc_state() in ("S", "R"), 5, "db3 running again")

    # The primary writes on; the crashed replica restarts and catches up.
    sb.sql("db1", "INSERT INTO t.rows VALUES (100, 'after crash')")
    sb.start("db2")
    assert victim.is_alive() and victim.pid != pid
    wait_rows(sb, "db2", n + 1)
    sb.wait_replication(timeout=20)


def test_stop_start_replica_resumes_replication(sandbox):
    sb = sandbox
    n = write_rows(sb)
    sb.wait_replication(timeout=10)
    r = sb.server("db3")
    sb.stop("db3")
    assert not r.is_alive()
    assert r.port not in listening_ports()
    assert any("db3 is not running" in p for p in sb.replication_lag())
    sb.sql("db1", "INSERT INTO t.rows VALUES (100, 'while db3 was down')")
    wait_rows(sb, "db2", n + 1)
    assert r.datadir in " ".join(r.argv)
    sb.start("db3")
    wait_rows(sb, "db3", n + 1)
    st = r.slave_status()
    assert (st["Slave_IO_Running"], st["Slave_SQL_Running"]) == ("Yes", "Yes")
    assert st["Master_Port"] == sb.primary.port
    assert r.value("SELECT @@read_only") == 1


def test_two_sandboxes_side_by_side(make_sandbox):
    a = make_sandbox("1+1")
    b = make_sandbox("1+1")
    assert abs(a.base_port - b.base_port) >= 100
    write_rows(a, table="only_a.rows", n=2)
    write_rows(b, table="only_b.rows", n=5)
    a.wait_replication(timeout=10)
    b.wait_replication(timeout=10)
    assert row_count(a, "db2", "only_a.rows") == 2
    assert row_count(b, "db2", "only_b.rows") == 5
    assert a.sql("db2", "SHOW DATABASES LIKE 'only_b'") == []
    assert b.sql("db2", "SHOW DATABASES LIKE 'only_a'") == []
    assert a.server("db2").slave_status()["Master_Port"] == a.primary.port
    assert b.server("db2").slave_status()["Master_Port"] == b.primary.port

    footprint = a.footprint()
    a.destroy()
    assert_nothing_left(footprint)
    b.sql("db1", "INSERT INTO only_b.rows VALUES (99, 'b lives on')")
    wait_rows(b, "db2", 6, "only_b.rows")


def test_port_in_use_error_is_clear(tmp_dir, port_block):
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of earlier tests
    squatter.bind(("127.0.0.1", port_block + 2))
    squatter.listen()
    try:
        sb = Sandbox(f"{tmp_dir}/sb", port_block, "1+3")
        with pytest.raises(SandboxError) as e:
            sb.create()
    finally:
        squatter.close()
    msg = str(e.value)
    assert f"port {port_block + 2} (for db2) is already in use" in msg
    assert "base port" in msg
    assert not any(p in listening_ports() for p in range(port_block, port_block + 5))
    assert not os.path.exists(f"{tmp_dir}/sb")


def test_existing_directory_is_refused(tmp_dir, port_block):
    with open(f"{tmp_dir}/precious", "w") as f:
        f.write("keep me")
    with pytest.raises(SandboxError, match="already exists: destroy it first"):
        Sandbox(tmp_dir, port_block).create()
    with pytest.raises(SandboxError, match="not a sandbox, refusing"):
        Sandbox(tmp_dir).destroy()
    assert open(f"{tmp_dir}/precious").read() == "keep me"


def test_cli_works_on_a_sandbox_of_another_process(tmp_dir, port_block):
    d = f"{tmp_dir}/sb"
    out = sandbox_cli("create", "--dir", d, "--base-port", port_block,
                      "--topology", "b:a,c:a,d:b", "--slave-net-timeout", "3").stdout
    assert "a " in out and "primary" in out
    sb = Sandbox.load(d)
    assert sb.state["slave_net_timeout"] == 3
    assert [(s.name, s.port, s.master) for s in sb.servers.values()] == \
        [("a", port_block + 1, None), ("b", port_block + 2, "a"),
         ("c", port_block + 3, "a"), ("d", port_block + 4, "b")]
    footprint = sb.footprint()
    try:
        sandbox_cli("sql", "--dir", d, "a", "CREATE TABLE mysql.cli_probe (id INT)")
        sandbox_cli("wait-replication", "--dir", d, "--timeout", "10")
        out = sandbox_cli("sql", "--dir", d, "d", "SHOW TABLES FROM mysql LIKE 'cli_probe'").stdout
        assert "cli_probe" in out
        status = sandbox_cli("status", "--dir", d).stdout
        rows = {line.split()[0]: line.split() for line in status.splitlines()[2:]}
        assert rows["d"][5] == "b" and rows["d"][7:9] == ["Yes", "Yes"]
        assert rows[BACKEND][4] == "backend"
        sandbox_cli("kill", "--dir", d, "c", "--wait")
        assert not sb.server("c").is_alive()
        r = sandbox_cli("kill", "--dir", d, "c", check=False)
        assert r.returncode == 1 and "c (127.0.0.1:" in r.stderr and "not running" in r.stderr
        sandbox_cli("start", "--dir", d, "c")
        sandbox_cli("wait-replication", "--dir", d, "--timeout", "10")
        r = sandbox_cli("create", "--dir", d, "--base-port", port_block + 50, check=False)
        assert r.returncode == 1 and "already exists" in r.stderr
    finally:
        sandbox_cli("destroy", "--dir", d)
    assert_nothing_left(footprint)
    r = sandbox_cli("destroy", "--dir", d)
    assert "nothing to destroy" in r.stderr


@pytest.mark.parametrize("spec, expected", [
    ("1+2", {"db1": None, "db2": "db1", "db3": "db1"}),
    ("2", {"db1": None, "db2": "db1", "db3": "db1"}),
    ("chain:3", {"db1": None, "db2": "db1", "db3": "db2"}),
    ("tree", {"db1": None, "db2": "db1", "db3": "db1", "db4": "db3", "db5": "db3"}),
    ("c:b,b:a", {"a": None, "b": "a", "c": "b"}),
    ({"x": None, "y": "x"}, {"x": None, "y": "x"}),
])
def test_parse_topology(spec, expected):
    got = sbx.parse_topology(spec)
    assert got == expected and list(got) == list(expected)


@pytest.mark.parametrize("spec, error", [
    ("a:b,b:a", "no primary"),
    ("a,b:c,c:b", "cycle"),
    ("backend:a", "reserved"),
    ("a:a", "itself"),
    ("1+99", "at most 99"),
])
def test_parse_topology_errors(spec, error):
    with pytest.raises(SandboxError, match=error):
        sbx.parse_topology(spec)


def test_wait_until_says_what_it_waited_for():
    values = iter(range(1000000))
    with pytest.raises(AssertionError) as e:
        wait_until(lambda: next(values) < 0, 0.2, "a negative number")
    msg = str(e.value)
    assert "waiting for a negative number" in msg and "last value: False" in msg
    with pytest.raises(AssertionError, match="last exception: ZeroDivisionError"):
        wait_until(lambda: 1 / 0, 0.1, "division")
    assert wait_until(lambda: 42, 1, "the answer") == 42
