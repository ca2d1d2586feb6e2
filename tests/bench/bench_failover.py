#!/usr/bin/python3
"""Benchmark: automated failover time after kill -9 of the primary (not a test; it prints figures).

Each trial builds a fresh 1+3 MariaDB sandbox (tests/sandbox), starts
--coordinators real orch-coordinators on its backend and one real orch-agent
per server (tests/system/orchcluster.py, recovery_block_seconds 0), waits until
every coordinator has heard from all four servers and the warm-up is over, waits
a random 0..--kill-jitter-ms more (so that the kill falls at any phase of the
agents' 500 ms probe cycle, not always at the same one), then kill -9s the
primary and measures from the kill, polling the surviving servers themselves
every --poll-ms over connections opened beforehand:

  detection  the recovering coordinator's ORCH-DETECTED line for the analysis
             its ORCH-FAILOVER-START names (DeadMaster, or MasterHung when the
             agent caught its server mid-query): log timestamp minus the kill's
             wall time, ms resolution;
  writable   the first poll where some former replica has read_only=0;
  failover   the first poll where some former replica has read_only=0 AND
             every other replica shows Master_Port = its port with
             Slave_IO_Running = Yes and Slave_SQL_Running = Yes;
  orch       the leader's own ORCH-FAILOVER-END "succeeded in N ms".

A trial fails (the run goes on) unless exactly one ORCH-FAILOVER-START is
logged across the coordinators, it ends in success, and the failover condition
is reached within --timeout. A failed trial's coordinator and agent logs, the
servers' error logs and a notes file are kept under
/tmp/orch-bench-failover-logs-*/trial-NN/ (every trial's with --keep-logs).

With --writer a thread inserts rows into a table on the primary (autocommit,
as fast as it can, or one every --writer-pause-ms) from before the kill until
its connection breaks; after the failover, every row whose INSERT returned OK
must be on the new primary. With --semi-sync (AFTER_SYNC) a lost row is a
failure of the trial; without it, async replication may lose the last commits
by design and the count is information only.

    ORCH_BUILD_DIR=build-fo /usr/bin/python3 tests/bench/bench_failover.py \
        [--trials 20] [--base-port 28700] [--coordinators 3] [--writer [--semi-sync]]

Use a normal (non-sanitizer) build. Ports: the sandbox takes BASE..BASE+99, the
coordinators and agents BASE+100..BASE+199. Everything started here (servers,
coordinators, agents, the agents' receiver) is stopped by PID on every path,
including Ctrl-C and SIGTERM, and every sandbox directory is removed.
Exit status: 0 figures printed (goals met or not), 1 could not measure, 2 usage,
130 interrupted.
"""

import argparse
import datetime
import math
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "system"))   # orchtest, orchagents, orchcluster
sys.path.insert(0, str(REPO / "tests" / "sandbox"))  # sandbox

GOAL_MEDIAN_S = 0.5
GOAL_MAX_S = 1.0
ORCHESTRATOR_NOTE = ("orchestrator, measured on the same kind of sandbox at its fastest poll "
                     "setting: median 2.78 s, max 5.07 s")

# 2026-11-22T23:13:20.123Z orch-coordinator[123] WARN ORCH-DETECTED 127.0.0.1:28701: DeadMaster ...
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z \S+ (\w+) (ORCH-[A-Z-]+) (.*)$")
START_OF = re.compile(r"\] (\w+) of (\S+) \(")
END_MS = re.compile(r"\] (succeeded|failed|refused) in (\d+) ms")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=20, help="kill -9 trials (default 20)")
    p.add_argument("--base-port", type=int, default=28700,
                   help="first port (default 28700; uses BASE..BASE+199)")
    p.add_argument("--coordinators", type=int, default=3, help="coordinators (default 3)")
    p.add_argument("--writer", action="store_true",
                   help="insert rows on the primary before and during the kill; count lost rows")
    p.add_argument("--writer-pause-ms", type=float, default=0.0,
                   help="pause between the writer's INSERTs (default 0: as fast as it can)")
    p.add_argument("--semi-sync", action="store_true",
                   help="sandbox with semi-sync (AFTER_SYNC): lost acknowledged rows fail a trial")
    p.add_argument("--poll-ms", type=float, default=5.0,
                   help="poll period of the servers after the kill (default 5)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds a trial may take to fail over (default 30)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds to watch for a second recovery after the first ends (default 2)")
    p.add_argument("--kill-jitter-ms", type=int, default=1000,
                   help="kill at a uniformly random 0..N ms after readiness, so that it falls "
                        "at any phase of the agents' probe and report cycles (default 1000)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random kill offsets")
    p.add_argument("--warmup-ms", type=int, default=2000, help="coordinators' warmup_ms (2000)")
    p.add_argument("--keep-logs", action="store_true",
                   help="keep every trial's logs under /tmp/orch-bench-failover-logs-* "
                        "(default: only failed trials')")
    p.add_argument("--log-level", default="info",
                   help="coordinators' log_level (default info; debug for diagnosis)")
    p.add_argument("--coord-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="extra coordinator setting (JSON value or string), repeatable")
    p.add_argument("--agent-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="extra agent setting (JSON value or string), repeatable, "
                        "e.g. probe_interval_ms=250")
    a = p.parse_args()
    if a.trials < 1 or a.coordinators < 1 or a.poll_ms <= 0 or a.timeout <= 0:
        p.error("--trials, --coordinators, --poll-ms and --timeout must be positive")
    for kv in a.coord_opt + a.agent_opt:
        if "=" not in kv or not kv.split("=", 1)[0]:
            p.error(f"{kv!r}: expected KEY=VALUE")
    return a


def kv_dict(items):
    import json
    out = {}
    for kv in items:
        k, v = kv.split("=", 1)
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


# ---- logs --------------------------------------------------------------------------

def log_events(path):
    """[(wall seconds, level, tag, rest)] of the ORCH-* lines of a log file."""
    out = []
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        ts = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
        wall = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
        out.append((wall, m.group(2), m.group(3), m.group(4)))
    return out


def all_events(orch):
    """{coordinator index: events} for every coordinator's log."""
    return {i: log_events(orch.log_path(i)) for i in range(orch.n)}


def tagged(events, tag, since=None):
    return [e for e in events if e[2] == tag and (since is None or e[0] >= since)]


# ---- servers -----------------------------------------------------------------------

class Poller:
    """Connections to the replicas, opened before the kill; one poll reads each
    one's read_only and SHOW SLAVE STATUS."""

    def __init__(self, servers, timeout=1):
        self.servers = servers
        self.timeout = timeout
        self.conns = {}
        for s in servers:
            self.conns[s.name] = self._connect(s)

    def _connect(self, s):
        return s.connect(timeout=self.timeout)

    def read(self, s):
        """(read_only, slave status dict or None) of S; reconnects once on error."""
        for attempt in (0, 1):
            try:
                conn = self.conns.get(s.name)
                if conn is None:
                    conn = self.conns[s.name] = self._connect(s)
                with conn.cursor() as cur:
                    cur.execute("SELECT @@global.read_only AS ro")
                    ro = cur.fetchone()["ro"]
                    cur.execute("SHOW SLAVE STATUS")
                    st = cur.fetchone()
                return int(ro), st
            except Exception:  # noqa: BLE001 - a broken connection: one fresh try
                old = self.conns.pop(s.name, None)
                if old is not None:
                    try:
                        old.close()
                    except Exception:  # noqa: BLE001
                        pass
                if attempt:
                    return None, None
        return None, None

    def close(self):
        for c in self.conns.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self.conns = {}


def converged(poller):
    """(new master Server or None, any_writable, snapshot) from one poll of every replica."""
    snap = {s.name: poller.read(s) for s in poller.servers}
    writable = [s for s in poller.servers if snap[s.name][0] == 0]
    for w in writable:
        ok = True
        for s in poller.servers:
            if s is w:
                continue
            ro, st = snap[s.name]
            if (st is None or int(st.get("Master_Port") or 0) != w.port
                    or st.get("Slave_IO_Running") != "Yes"
                    or st.get("Slave_SQL_Running") != "Yes"):
                ok = False
                break
        if ok:
            return w, True, snap
    return None, bool(writable), snap


def describe_snapshot(snap):
    parts = []
    for name, (ro, st) in sorted(snap.items()):
        if ro is None:
            parts.append(f"{name}: unreachable")
        elif st is None:
            parts.append(f"{name}: read_only={ro}, no replication")
        else:
            parts.append(f"{name}: read_only={ro}, master port {st.get('Master_Port')}, "
                         f"IO {st.get('Slave_IO_Running')}, SQL {st.get('Slave_SQL_Running')}"
                         + (f", IO error {st.get('Last_IO_Error')!r}"
                            if st.get("Last_IO_Error") else "")
                         + (f", SQL error {st.get('Last_SQL_Error')!r}"
                            if st.get("Last_SQL_Error") else ""))
    return "; ".join(parts)


class Writer(threading.Thread):
    """INSERTs into bench.w on the primary until its connection breaks; keeps the
    ids whose INSERT returned OK (autocommit: acknowledged commits)."""

    def __init__(self, server, pause_s):
        super().__init__(daemon=True)
        self.server, self.pause_s = server, pause_s
        self.acked, self.error, self.attempts = [], None, 0
        self.stop_flag = threading.Event()
        self.conn = server.connect(timeout=5, database="bench")

    def run(self):
        try:
            with self.conn.cursor() as cur:
                while not self.stop_flag.is_set():
                    self.attempts += 1
                    cur.execute("INSERT INTO w (t) VALUES (%s)", (time.time(),))
                    self.acked.append(cur.lastrowid)
                    if self.pause_s:
                        time.sleep(self.pause_s)
        except Exception as e:  # noqa: BLE001 - the kill ends it
            self.error = f"{type(e).__name__}: {e}"
        finally:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass


# ---- one trial -----------------------------------------------------------------------

class Stop(Exception):
    pass


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def on_signal(signum, frame):
    raise Stop(f"signal {signum}")


def wait_ready(orch, sb, warmup_ms, started_mono, wait_until):
    """Leader elected, every coordinator lists all four servers with the replicas
    under the primary, and the warm-up of the last coordinator is over."""
    leader = orch.leader(timeout=20)
    ports = {s.port for s in sb.servers.values() if s.role != "backend"}
    primary_port = sb.primary.port

    def sees_all(i):
        inst = orch.instances(i)
        got = {x["Key"]["Port"]: x for x in inst.values() if x["Key"]["Port"] in ports}
        if set(got) != ports:
            return False
        return all(x.get("MasterKey", {}).get("Port") == primary_port
                   for p, x in got.items() if p != primary_port)

    for i in range(orch.n):
        wait_until(lambda: sees_all(i), 20, f"coordinator c{i + 1} to see the 1+3 topology")
    left = started_mono + (warmup_ms + 500) / 1000.0 - time.monotonic()
    if left > 0:
        time.sleep(left)
    return leader


def save_logs(orch, sb, work, log_root, trial, notes):
    """Coordinator and agent logs, the servers' error logs and NOTES into
    LOG_ROOT/trial-NN; returns that directory."""
    d = Path(log_root) / f"trial-{trial:02d}"
    d.mkdir(parents=True, exist_ok=True)
    for p in Path(work).glob("*.log"):
        shutil.copy(p, d / p.name)
    if sb is not None:
        for s in sb.all_servers.values():
            try:
                shutil.copy(s.error_log, d / f"mariadb-{s.name}.err")
            except OSError:
                pass
    (d / "notes.txt").write_text("\n".join(notes) + "\n")
    return d


def run_trial(n, args, tools, log_root, rng):
    """Returns a dict of figures and problems for trial N."""
    Sandbox, OrchCluster, wait_until = tools
    res = {"trial": n, "problems": [], "detect": None, "start": None, "writable": None,
           "full": None, "orch_ms": None, "starts": None, "lost": None, "extra": None,
           "acked": None, "new_master": None, "code": None,
           "anomalies": []}
    work = tempfile.mkdtemp(prefix=f"orch-bfo{n}-", dir="/tmp")
    sb_dir = os.path.join(work, "sb")
    sb, orch, poller, writer = None, None, None, None
    notes = []
    try:
        sb = Sandbox(sb_dir, args.base_port, "1+3", semi_sync=args.semi_sync,
                     die_with_parent=True)
        sb.create()
        if args.writer:
            sb.sql("db1", "CREATE DATABASE bench")
            sb.sql("db1", "CREATE TABLE bench.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                          "t DOUBLE NOT NULL) ENGINE=InnoDB")
            sb.wait_replication(timeout=10)
        opts = dict(recovery_block_seconds=0, warmup_ms=args.warmup_ms, log_level=args.log_level)
        opts.update(kv_dict(args.coord_opt))
        orch = OrchCluster(sb, work, args.base_port + 100, coordinators=args.coordinators,
                           **opts)
        if orch.agents is not None:
            orch.agents.settings.update(kv_dict(args.agent_opt))
            for name in list(orch.agents.configs):
                orch.agents.configs[name] = orch.agents._write_config(name)
        orch.start()
        started = time.monotonic()
        leader0 = wait_ready(orch, sb, opts["warmup_ms"], started, wait_until)
        before = all_events(orch)
        early = [(i, e) for i, ev in before.items() for e in ev
                 if e[2] in ("ORCH-DETECTED", "ORCH-FAILOVER-START")]
        if early:
            res["problems"].append("before the kill: " + "; ".join(
                f"c{i + 1} {e[2]} {e[3]}" for i, e in early[:3]))

        primary = sb.primary
        replicas = sorted(sb.replicas, key=lambda s: s.name)
        poller = Poller(replicas)
        if args.writer:
            writer = Writer(primary, args.writer_pause_ms / 1000.0)
            writer.start()
            time.sleep(1.0)   # load before the kill
        # The agents probe (and witness) on a fixed period from their start, and
        # the coordinators analyse on a 500 ms beat: without a random offset the
        # kill would always fall at the same phase of those cycles (for the
        # sandbox's timings: just before the agents' next probe, the luckiest).
        res["jitter"] = rng.uniform(0, args.kill_jitter_ms / 1000.0)
        time.sleep(res["jitter"])
        res["leader_before"] = f"c{leader0 + 1}"

        t_kill = time.time()
        m_kill = time.monotonic()
        sb.kill(primary.name, signal.SIGKILL)

        period = args.poll_ms / 1000.0
        deadline = m_kill + args.timeout
        snap = None
        next_poll = time.monotonic()
        while True:
            w, anyw, snap = converged(poller)
            now = time.monotonic()
            if anyw and res["writable"] is None:
                res["writable"] = now - m_kill
            if w is not None:
                res["full"] = now - m_kill
                res["new_master"] = w
                break
            if now >= deadline:
                break
            next_poll += period
            delay = next_poll - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_poll = time.monotonic()
        if res["full"] is None:
            res["problems"].append(f"no failover within {args.timeout:.0f} s; last poll: "
                                   f"{describe_snapshot(snap)}")

        # The recovery's own end, then a settle period to catch a second one.
        def ended():
            return [e for ev in all_events(orch).values()
                    for e in tagged(ev, "ORCH-FAILOVER-END", t_kill - 0.005)]
        try:
            wait_until(ended, 10 if res["full"] is not None else 1, "ORCH-FAILOVER-END",
                       interval=0.02)
        except AssertionError:
            pass
        time.sleep(args.settle)
        if writer is not None:
            writer.stop_flag.set()
            writer.join(timeout=10)

        dead = [s for s in replicas if not s.is_alive()]
        if dead:
            res["problems"].append("mariadbd died during the trial: " + ", ".join(
                f"{s.label} (its error log is kept as mariadb-{s.name}.err)" for s in dead))
        after = all_events(orch)
        starts = {i: tagged(ev, "ORCH-FAILOVER-START", t_kill - 0.005) for i, ev in after.items()}
        nstart = sum(len(v) for v in starts.values())
        res["starts"] = nstart
        if nstart != 1:
            res["problems"].append(f"{nstart} ORCH-FAILOVER-START lines across coordinators "
                                   f"(expected 1): " + "; ".join(
                                       f"c{i + 1}: {e[3]}" for i, v in starts.items() for e in v))
        rec = [i for i, v in starts.items() if v]
        li = rec[0] if rec else leader0
        res["leader"] = f"c{li + 1}"
        ev = after[li]
        # The detection the recovery acted on: the ORCH-DETECTED line of the
        # instance and analysis code its ORCH-FAILOVER-START names.
        m = START_OF.search(starts[li][0][3]) if starts.get(li) else None
        failed, code = (m.group(2), m.group(1)) if m else (primary.address, None)
        wanted = re.compile(rf"{re.escape(code)} in cluster" if code
                            else r"(DeadMaster\w*|MasterHung) in cluster")
        det = [e for e in tagged(ev, "ORCH-DETECTED", t_kill - 0.005)
               if e[3].startswith(f"{failed}: ") and wanted.match(e[3][len(failed) + 2:])]
        if det:
            res["detect"] = det[0][0] - t_kill
            res["code"] = re.match(r"(\w+)", det[0][3][len(failed) + 2:]).group(1)
        else:
            res["problems"].append(f"no ORCH-DETECTED {code or 'DeadMaster*/MasterHung'} line "
                                   f"for {failed} in c{li + 1}'s log")
        if starts.get(li):
            res["start"] = starts[li][0][0] - t_kill
            if det and det[0][0] > starts[li][0][0]:
                res["anomalies"].append(f"ORCH-DETECTED {det[0][3][:120]} is later than "
                                        f"ORCH-FAILOVER-START {starts[li][0][3][:120]}")
        ends = tagged(ev, "ORCH-FAILOVER-END", t_kill - 0.005)
        if ends:
            m = END_MS.search(ends[0][3])
            if m:
                res["orch_ms"] = int(m.group(2))
                if m.group(1) != "succeeded":
                    res["problems"].append(f"ORCH-FAILOVER-END: {ends[0][3]}")
        elif nstart:
            res["problems"].append(f"no ORCH-FAILOVER-END in c{li + 1}'s log")
        for e in (e for evs in after.values() for e in evs if e[0] >= t_kill - 0.005):
            if e[2] in ("ORCH-FAILOVER-FAILED", "ORCH-FAILOVER-LOST", "ORCH-FAILOVER-BLOCKED",
                        "ORCH-FAILOVER-SKIPPED",
                        "ORCH-FAILOVER-ABANDONED"):
                res["problems"].append(f"{e[2]} {e[3]}")

        if writer is not None:
            res["acked"] = len(writer.acked)
            res["writer_error"] = writer.error
            if res["new_master"] is not None and writer.acked:
                nm = res["new_master"]
                rows = nm.sql("SELECT id FROM bench.w WHERE id >= %s", (min(writer.acked),))
                present = {r["id"] for r in rows}
                acked = set(writer.acked)
                res["lost"] = len(acked - present)
                res["extra"] = len(present - acked)
                if res["lost"] and args.semi_sync:
                    lost = sorted(acked - present)
                    res["problems"].append(f"{res['lost']} acknowledged rows lost with semi-sync "
                                           f"(ids {lost[:10]}{'...' if len(lost) > 10 else ''})")
        if res["problems"] or res["anomalies"] or args.keep_logs:
            notes = [f"trial {n}: kill -9 of {primary.label} at {t_kill:.3f} "
                     f"(random offset {res['jitter'] * 1000:.0f} ms) "
                     f"({datetime.datetime.fromtimestamp(t_kill, datetime.timezone.utc).isoformat()})",
                     f"figures: detect {fmt_s(res['detect'])} s, start {fmt_s(res['start'])} s, "
                     f"writable {fmt_s(res['writable'])} s, failover {fmt_s(res['full'])} s, "
                     f"orch {res['orch_ms']} ms",
                     *res["problems"], *res["anomalies"], "", "servers after the trial:", sb.format_status()]
    except Stop:
        raise
    except Exception as e:  # noqa: BLE001 - a trial that could not run is a failed trial
        res["problems"].append(f"{type(e).__name__}: {e}")
        notes = [f"trial {n}: {type(e).__name__}: {e}"]
    finally:
        # Cleanup is not interrupted: Ctrl-C or SIGTERM now waits until it is done.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            if poller is not None:
                poller.close()
            if writer is not None:
                writer.stop_flag.set()
            try:
                if orch is not None:
                    if res["problems"] or res["anomalies"] or args.keep_logs:
                        res["logs"] = str(save_logs(orch, sb, work, log_root, n, notes))
                    orch.stop()
            finally:
                try:
                    if sb is not None:
                        sb.destroy()
                finally:
                    shutil.rmtree(work, ignore_errors=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return res


# ---- report --------------------------------------------------------------------------

def fmt_s(v):
    return "-" if v is None else f"{v:.3f}"


def pct(values, p):
    """Nearest-rank percentile P of VALUES (sorted or not)."""
    v = sorted(values)
    k = max(0, math.ceil(p / 100.0 * len(v)) - 1)
    return v[k]


def summary_line(name, values):
    if not values:
        return f"{name:<38} no figures"
    return (f"{name:<38} min {min(values):.3f}  median {statistics.median(values):.3f}  "
            f"p90 {pct(values, 90):.3f}  max {max(values):.3f}  (n={len(values)})")


def trial_line(r, writer):
    off = "-" if r.get("jitter") is None else f"{r['jitter'] * 1000:.0f}"
    s = (f"{r['trial']:>5} {off:>6} {r.get('leader', '-'):>6} {fmt_s(r['detect']):>9} {fmt_s(r['start']):>9} "
         f"{fmt_s(r['writable']):>9} {fmt_s(r['full']):>9} "
         f"{('-' if r['orch_ms'] is None else str(r['orch_ms'])):>8} "
         f"{('-' if r['starts'] is None else str(r['starts'])):>7} "
         f"{(r['new_master'].name if r['new_master'] is not None else '-'):>6}")
    if writer:
        s += (f" {('-' if r['acked'] is None else str(r['acked'])):>7}"
              f" {('-' if r['lost'] is None else str(r['lost'])):>5}"
              f" {('-' if r['extra'] is None else str(r['extra'])):>6}")
    s += "  " + ("ok" if not r["problems"] else "FAILED") + (" (see notes)" if r["anomalies"] else "")
    return s


def header(writer):
    h = (f"{'trial':>5} {'offset':>6} {'leader':>6} {'detect s':>9} {'start s':>9} {'writable':>9} "
         f"{'failover':>9} {'orch ms':>8} {'starts':>7} {'new':>6}")
    if writer:
        h += f" {'acked':>7} {'lost':>5} {'extra':>6}"
    return h + "  result"


def report(results, args):
    print()
    print(f"failover after kill -9 of the primary: 1+3 sandbox, {args.coordinators} coordinators, "
          f"{len(results)} trials, servers polled every {args.poll_ms:g} ms"
          + ("; writer" if args.writer else "") + ("; semi-sync" if args.semi_sync else ""))
    print("offset = ms between readiness and the kill (random); "
          "seconds from the kill: detect = ORCH-DETECTED in the recovering coordinator's log, "
          "start = ORCH-FAILOVER-START, writable = a former replica read_only=0, failover = "
          "that plus every other replica following it (IO and SQL Yes); orch ms = the "
          "recovery's own ORCH-FAILOVER-END")
    print()
    h = header(args.writer)
    print(h)
    print("-" * len(h))
    for r in results:
        print(trial_line(r, args.writer))
    ok = [r for r in results if not r["problems"]]
    failed = [r for r in results if r["problems"]]
    measured = [r for r in results if r["full"] is not None]
    print()
    print(f"trials: {len(results)}, succeeded {len(ok)}, failed {len(failed)}")
    print(summary_line("detection (ORCH-DETECTED), s", [r["detect"] for r in ok
                                                         if r["detect"] is not None]))
    print(summary_line("recovery start, s", [r["start"] for r in ok if r["start"] is not None]))
    print(summary_line("new primary writable, s", [r["writable"] for r in ok
                                                    if r["writable"] is not None]))
    full = [r["full"] for r in ok]
    print(summary_line("writable + all replicas following, s", full))
    print(summary_line("orch's ORCH-FAILOVER-END, s", [r["orch_ms"] / 1000.0 for r in ok
                                                       if r["orch_ms"] is not None]))
    codes = sorted({r["code"] for r in ok if r["code"]})
    if codes:
        print(f"analysis codes: {', '.join(codes)}")
    if args.writer:
        lost = [r["lost"] for r in results if r["lost"] is not None]
        acked = [r["acked"] for r in results if r["acked"] is not None]
        print(f"writer: {sum(acked)} acknowledged rows over {len(acked)} trials; lost "
              f"{sum(lost)} (per trial max {max(lost) if lost else '-'}); "
              + ("semi-sync: must be 0" if args.semi_sync else
                 "async replication: information only (the last commits may be lost by design)"))
    print()
    # A failed trial counts as an infinitely slow failover for the goals.
    goal_vals = [r["full"] if not r["problems"] else math.inf for r in results]
    med = statistics.median(goal_vals)
    mx = max(goal_vals)
    print(f"goal: failover median <= {GOAL_MEDIAN_S} s: "
          f"{'PASS' if med <= GOAL_MEDIAN_S else 'MISS'} ({med:.3f} s)")
    print(f"goal: failover max <= {GOAL_MAX_S} s: {'PASS' if mx <= GOAL_MAX_S else 'MISS'} "
          f"({mx:.3f} s" + (f"; {len(failed)} failed trial(s) count as infinite" if failed else "")
          + ")")
    print(f"note: {ORCHESTRATOR_NOTE}")
    if failed:
        print()
        print("failed trials:")
        for r in failed:
            print(f"  trial {r['trial']}: " + " | ".join(r["problems"]))
            if r.get("logs"):
                print(f"    logs: {r['logs']}")
    odd = [r for r in results if r["anomalies"]]
    if odd:
        print()
        print("notes:")
        for r in odd:
            print(f"  trial {r['trial']}: " + " | ".join(r["anomalies"])
                  + (f"\n    logs: {r['logs']}" if r.get("logs") else ""))
    if len(measured) != len(results):
        print(f"({len(results) - len(measured)} trial(s) never reached the failover condition)")


# ---- main ----------------------------------------------------------------------------

def main():
    args = parse_args()
    bdir = os.environ.get("ORCH_BUILD_DIR") or str(REPO / "build")
    if not os.path.isabs(bdir):
        bdir = os.path.abspath(bdir) if os.path.isdir(bdir) else str(REPO / bdir)
    os.environ["ORCH_BUILD_DIR"] = bdir

    from orchtest import binary, wait_until  # noqa: E402  (needs ORCH_BUILD_DIR)
    from orchcluster import OrchCluster  # noqa: E402
    from sandbox import Sandbox, SandboxError  # noqa: E402

    for b in ("orch-agent", "orch-coordinator", "orch-wiretool"):
        if binary(b) is None:
            print(f"bench_failover: {b} not found under {bdir}; build first "
                  f"(cmake -S . -B {bdir} && cmake --build {bdir} -j)", file=sys.stderr)
            return 1
    print(f"bench_failover: {binary('orch-coordinator')}, {binary('orch-agent')}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    print(f"bench_failover: kill at a random offset of 0..{args.kill_jitter_ms} ms after "
          f"readiness (seed {seed}; --seed {seed} repeats the offsets)")
    log_root = f"/tmp/orch-bench-failover-logs-{stamp}"
    results = []
    rc = 0
    try:
        for n in range(1, args.trials + 1):
            t0 = time.monotonic()
            r = run_trial(n, args, (Sandbox, OrchCluster, wait_until), log_root, rng)
            results.append(r)
            print(f"trial {n:>2}: detect {fmt_s(r['detect'])} s, writable {fmt_s(r['writable'])} s, "
                  f"failover {fmt_s(r['full'])} s, orch {r['orch_ms'] if r['orch_ms'] is not None else '-'} ms, "
                  f"starts {r['starts'] if r['starts'] is not None else '-'}"
                  + (f", acked {r['acked']}, lost {r['lost']}" if args.writer else "")
                  + (f"  FAILED: {' | '.join(r['problems'])}" if r["problems"] else "")
                  + (f"  NOTE: {' | '.join(r['anomalies'])}" if r["anomalies"] else "")
                  + f"  ({time.monotonic() - t0:.1f} s)", flush=True)
    except (Stop, KeyboardInterrupt) as e:
        print(f"bench_failover: interrupted ({str(e) or 'Ctrl-C'}); cleaned up", file=sys.stderr)
        rc = 130
    except SandboxError as e:
        print(f"bench_failover: {e}", file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if results:
        report(results, args)
    elif rc == 0:
        rc = 1
    if all(r["full"] is None for r in results) and results and rc == 0:
        rc = 1   # could not measure a single failover
    return rc


if __name__ == "__main__":
    sys.exit(main())
