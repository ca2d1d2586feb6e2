"""A client that keeps writing across a planned master change: autocommit
INSERTs into app.w on one server until an INSERT fails (read-only, killed
connection), then on the next. Records every id whose INSERT returned OK and
the longest gap between two OKs: the write-unavailable window as a client sees
it. Used by test_operations and tests/bench/bench_takeover.py."""

import threading
import time

import pymysql

# An application account: read_only stops it (orch_test has ALL, which in
# MariaDB includes READ_ONLY ADMIN and so writes through read_only).
APP_USER, APP_PASSWORD = "app_writer", "app_writer_pw"


def create_app(sb, master="db1"):
    """app.w and the application account, replicated everywhere."""
    sb.sql(master, "CREATE DATABASE IF NOT EXISTS app")
    sb.sql(master, "CREATE TABLE app.w (id INT PRIMARY KEY)")
    sb.sql(master, f"CREATE USER '{APP_USER}'@'127.0.0.1' IDENTIFIED BY '{APP_PASSWORD}'")
    sb.sql(master, f"GRANT SELECT, INSERT, DELETE ON app.* TO '{APP_USER}'@'127.0.0.1'")
    sb.wait_replication(timeout=10)


class Writer(threading.Thread):
    """Writes on FIRST until it refuses, then on SECOND (both sandbox names)."""

    def __init__(self, sb, first, second, start_id=0):
        super().__init__(daemon=True)
        self.sb, self.targets = sb, [first, second]
        self.ok, self.stop = [], threading.Event()
        self.gap = 0.0
        self.next_id = start_id

    def run(self):
        i, t, last = self.next_id, 0, None
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    s = self.sb.servers[self.targets[t]]
                    conn = s.connect(user=APP_USER, password=APP_PASSWORD, tcp=True, timeout=2)
                with conn.cursor() as c:
                    c.execute("INSERT INTO app.w VALUES (%s)", (i,))
                now = time.monotonic()
                if last is not None:
                    self.gap = max(self.gap, now - last)
                last = now
                self.ok.append(i)
                i += 1
            except pymysql.err.MySQLError:
                i += 1
                if t == 0:
                    t = 1  # read-only (or killed): write on the new master
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.002)
        if conn is not None:
            conn.close()
        self.next_id = i
