#!/usr/bin/python3
"""Benchmark: orch-agent's CPU and memory at rest (not a test; it prints figures).

Creates a 1+3 MariaDB sandbox (tests/sandbox), starts one orch-agent on the
primary (db1) and one on a replica (db2) probing at 2 Hz (probe_interval_ms
500), reporting to an `orch-wiretool listen` receiver as a coordinator would,
waits for steady state, then samples each agent every second for --seconds:

  CPU   utime+stime from /proc/PID/stat, as a share of one core, over the whole
        window and per 10-second window (median, max);
  RSS   VmRSS (median, max) and VmHWM (peak) from /proc/PID/status;
  rate  reports received per second by the receiver.

It ends with the goal lines (RSS <= 4 MB, CPU <= 0.5 % of a core) marked PASS or
MISS, and with where each agent's resident memory is (/proc/PID/smaps grouped:
thread stacks, malloc arenas, heap, libraries), which says what to shrink.

    ORCH_BUILD_DIR=build-bench /usr/bin/python3 tests/bench/bench_agent.py \
        [--base-port 28000] [--seconds 60] [--warmup 10] [--dir /tmp/orch-bench]

Use a normal (non-sanitizer) build. Ports: the sandbox takes BASE..BASE+99, the
receiver and the agents' command sockets BASE+100.. . Everything started here
(servers, agents, receiver) is stopped by PID on every path, including Ctrl-C
and SIGTERM, and the sandbox directory is removed.
Exit status: 0 figures printed (goals met or not), 1 setup failed, 2 usage.
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "system"))   # orchtest, orchagents
sys.path.insert(0, str(REPO / "tests" / "sandbox"))  # sandbox

GOAL_RSS_MB = 4.0
GOAL_CPU_PCT = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
AGENTS = ("db1", "db2")  # the primary and one replica


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base-port", type=int, default=28000,
                   help="first port of the sandbox (default 28000; uses BASE..BASE+110)")
    p.add_argument("--seconds", type=int, default=60, help="sampling window (default 60)")
    p.add_argument("--warmup", type=int, default=10,
                   help="seconds to run after the first UP reports before sampling (default 10)")
    p.add_argument("--dir", default=None, help="sandbox directory (default: a new /tmp dir)")
    p.add_argument("--probe-interval-ms", type=int, default=500)
    p.add_argument("--command-workers", type=int, default=None,
                   help="command_workers for the agents (default: the agent's default)")
    p.add_argument("--agent-env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment for the agents, e.g. MALLOC_ARENA_MAX=2 (repeatable)")
    a = p.parse_args()
    if a.seconds < 10 or a.warmup < 0:
        p.error("--seconds must be >= 10 and --warmup >= 0")
    for kv in a.agent_env:
        if "=" not in kv or not kv.split("=", 1)[0]:
            p.error(f"--agent-env {kv!r}: expected NAME=VALUE")
    return a


# ---- /proc -------------------------------------------------------------------

def cpu_ticks(pid):
    """utime + stime of PID in clock ticks (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def status_kb(pid):
    """{'VmRSS': kB, 'VmHWM': kB, 'Threads': n, ...} from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            parts = val.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0])
    return out


def thread_ticks(pid):
    """{tid: (name, utime+stime ticks, context switches)} for every thread of PID."""
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (t / "comm").read_text().strip()
            fields = (t / "stat").read_text().rsplit(")", 1)[1].split()
            switches = sum(int(line.split()[1]) for line in (t / "status").read_text().splitlines()
                           if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")))
        except OSError:
            continue
        tid = int(t.name)
        if tid == pid:
            name += " (main: event loop)"
        out[tid] = (name, int(fields[11]) + int(fields[12]), switches)
    return out


def cpu_by_thread(before, after, seconds):
    """'name 0.20 % (21 wakeups/s), ...': CPU share of one core and context
    switches per second, per thread name, over the window."""
    by = {}
    for tid, (name, ticks, switches) in after.items():
        _, t0, s0 = before.get(tid, (name, 0, 0))
        cur = by.setdefault(name, [0, 0])
        cur[0] += ticks - t0
        cur[1] += switches - s0
    rows = sorted(by.items(), key=lambda x: (-x[1][0], -x[1][1]))
    return ", ".join(f"{n} {100.0 * t / CLK_TCK / seconds:.2f} % ({sw / seconds:.0f} wakeups/s)"
                     for n, (t, sw) in rows if t > 0 or sw > 0)


def thread_names(pid):
    """'6 orch-agent, 4 nng:task, ...': the threads of PID by name."""
    names = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            n = (t / "comm").read_text().strip()
        except OSError:
            continue
        names[n] = names.get(n, 0) + 1
    return ", ".join(f"{c} {n}" for n, c in sorted(names.items(), key=lambda x: (-x[1], x[0])))


def smaps_breakdown(pid):
    """Resident memory of PID by kind of mapping: [(what, rss, pss, private, n)] in kB,
    largest RSS first. private = Private_Clean + Private_Dirty (what only this
    process uses); pss = its proportional share of what it shares."""
    maps, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"size": (hi - lo) // 1024, "perms": head[1],
                       "path": head[5] if len(head) > 5 else "", "rss": 0, "pss": 0, "priv": 0}
                maps.append(cur)
            elif cur is not None and head:
                if head[0] == "Rss:":
                    cur["rss"] = int(head[1])
                elif head[0] == "Pss:":
                    cur["pss"] = int(head[1])
                elif head[0] in ("Private_Clean:", "Private_Dirty:"):
                    cur["priv"] += int(head[1])
    groups = {}
    for i, m in enumerate(maps):
        path, perms = m["path"], m["perms"]
        prev = maps[i - 1] if i > 0 else None
        nxt = maps[i + 1] if i + 1 < len(maps) else None
        anon_prev = prev is not None and prev["path"] == "" and prev["perms"] == "---p"
        anon_next = nxt is not None and nxt["path"] == "" and nxt["perms"] == "---p"
        if path == "[heap]":
            what = "[heap] (main malloc arena, brk)"
        elif path == "[stack]":
            what = "[stack] (main thread)"
        elif path.startswith("["):
            what = path
        elif path:
            kind = "text" if "x" in perms else ("data (rw)" if "w" in perms else "read-only")
            what = f"{os.path.basename(path)} {kind}"
        elif perms == "---p":
            what = "guard pages and reserved arena space"
        elif perms.startswith("rw") and anon_next and m["size"] + nxt["size"] == 65536:
            what = "malloc arenas of threads (used part of a 64 MB reservation)"
        elif perms.startswith("rw") and anon_prev and prev["size"] <= 64 and m["size"] >= 1024:
            what = f"thread stacks ({m['size']} kB mappings after a guard page)"
        else:
            what = "other anonymous (malloc mmap, nng, libevent, TLS)"
        g = groups.setdefault(what, [0, 0, 0, 0])
        g[0] += m["rss"]
        g[1] += m["pss"]
        g[2] += m["priv"]
        g[3] += 1
    return sorted(((w, *v) for w, v in groups.items()), key=lambda x: -x[1])


# ---- measurement ---------------------------------------------------------------

def sample(agents, names, seconds):
    """Samples every second; returns {name: {"t": [...], "ticks": [...], "rss": [...],
    "hwm": [...], "threads": [...], "by_thread": str}} and reports/s per agent."""
    data = {n: {"t": [], "ticks": [], "rss": [], "hwm": [], "threads": []} for n in names}
    counts0 = {n: len(agents.receiver.all(agents.port(n))) for n in names}
    threads0 = {n: thread_ticks(agents.procs[n].pid) for n in names}
    start = time.monotonic()
    for i in range(seconds + 1):
        target = start + i
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        for n in names:
            pid = agents.procs[n].pid
            if agents.procs[n].poll() is not None:
                raise RuntimeError(f"the agent on {n} exited (code {agents.procs[n].returncode}) "
                                   f"during the benchmark; see {agents.log_path(n)}")
            st = status_kb(pid)
            d = data[n]
            d["t"].append(now)
            d["ticks"].append(cpu_ticks(pid))
            d["rss"].append(st.get("VmRSS", 0))
            d["hwm"].append(st.get("VmHWM", 0))
            d["threads"].append(st.get("Threads", 0))
    elapsed = time.monotonic() - start
    rates = {n: (len(agents.receiver.all(agents.port(n))) - counts0[n]) / elapsed for n in names}
    for n in names:
        data[n]["by_thread"] = cpu_by_thread(threads0[n], thread_ticks(agents.procs[n].pid),
                                             elapsed)
    return data, rates


def cpu_pct(ticks0, ticks1, t0, t1):
    return 100.0 * (ticks1 - ticks0) / CLK_TCK / (t1 - t0)


def summarize(name, role, d, rate):
    t, ticks = d["t"], d["ticks"]
    whole = cpu_pct(ticks[0], ticks[-1], t[0], t[-1])
    windows = [cpu_pct(ticks[i], ticks[i + 10], t[i], t[i + 10])
               for i in range(0, len(t) - 10, 10)]
    rss_mb = [k / 1024 for k in d["rss"]]
    return {
        "name": name, "role": role,
        "rss_med": statistics.median(rss_mb), "rss_max": max(rss_mb),
        "hwm": max(d["hwm"]) / 1024,
        "cpu": whole, "cpu_w_med": statistics.median(windows), "cpu_w_max": max(windows),
        "nwin": len(windows), "rate": rate, "threads": max(d["threads"]),
        "cpu_seconds": (ticks[-1] - ticks[0]) / CLK_TCK, "by_thread": d["by_thread"],
    }


def report(rows, seconds, probe_ms, breakdowns, env):
    print()
    print(f"orch-agent at rest: probe every {probe_ms} ms, {seconds} s window, samples every 1 s"
          + (f"; agent environment {' '.join(env)}" if env else ""))
    print(f"CPU from utime+stime ({CLK_TCK} ticks/s: one tick over 10 s is 0.1 %)")
    print()
    hdr = (f"{'agent':<14}{'RSS med':>9}{'RSS max':>9}{'VmHWM':>8}{'CPU':>8}"
           f"{'CPU/10s med':>13}{'max':>7}{'reports/s':>11}{'threads':>9}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['name'] + ' (' + r['role'] + ')':<14}{r['rss_med']:>7.2f}MB{r['rss_max']:>7.2f}MB"
              f"{r['hwm']:>6.2f}MB{r['cpu']:>7.3f}%{r['cpu_w_med']:>12.3f}%{r['cpu_w_max']:>6.3f}%"
              f"{r['rate']:>11.2f}{r['threads']:>9}")
    print()
    for r in rows:
        rss_ok = r["rss_max"] <= GOAL_RSS_MB
        cpu_ok = r["cpu"] <= GOAL_CPU_PCT
        print(f"goal {r['name']}: RSS <= {GOAL_RSS_MB:.0f} MB: {'PASS' if rss_ok else 'MISS'} "
              f"(max {r['rss_max']:.2f} MB)")
        print(f"goal {r['name']}: CPU <= {GOAL_CPU_PCT} % of a core: "
              f"{'PASS' if cpu_ok else 'MISS'} ({r['cpu']:.3f} %, "
              f"{r['cpu_seconds']:.2f} s of CPU in {seconds} s)")
    for r in rows:
        print(f"CPU of {r['name']} by thread: {r['by_thread'] or 'none measurable'}")
    for name, (rows_kb, threads) in breakdowns.items():
        rss = sum(r[1] for r in rows_kb)
        pss = sum(r[2] for r in rows_kb)
        priv = sum(r[3] for r in rows_kb)
        libs = sum(r[1] for r in rows_kb if not r[0].startswith(("[", "guard", "malloc",
                                                                   "thread", "other")))
        print()
        print(f"where {name}'s memory is (/proc/PID/smaps at the end): RSS {rss / 1024:.2f} MB "
              f"({libs / 1024:.2f} MB of it mapped files), PSS {pss / 1024:.2f} MB, "
              f"private (USS) {priv / 1024:.2f} MB")
        print(f"  threads: {threads}")
        print(f"  {'RSS kB':>7} {'PSS kB':>7} {'priv kB':>7}  mapping")
        for what, r, p, v, n in rows_kb:
            if r < 40:
                continue
            print(f"  {r:>7} {p:>7} {v:>7}  {what}" + (f"  [{n} mappings]" if n > 1 else ""))


# ---- main ---------------------------------------------------------------------

class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop(f"signal {signum}")


def main():
    args = parse_args()
    bdir = os.environ.get("ORCH_BUILD_DIR") or str(REPO / "build")
    if not os.path.isabs(bdir):
        bdir = os.path.abspath(bdir) if os.path.isdir(bdir) else str(REPO / bdir)
    os.environ["ORCH_BUILD_DIR"] = bdir

    from orchtest import binary  # noqa: E402  (needs ORCH_BUILD_DIR)
    from orchagents import AgentSet  # noqa: E402
    from sandbox import Sandbox, SandboxError  # noqa: E402

    for b in ("orch-agent", "orch-wiretool"):
        if binary(b) is None:
            print(f"bench_agent: {b} not found under {bdir}; build first "
                  f"(cmake -S . -B {bdir} && cmake --build {bdir} -j)", file=sys.stderr)
            return 1
    agent_bin = binary("orch-agent")
    print(f"bench_agent: {agent_bin}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    own_dir = args.dir is None
    sb_dir = args.dir or tempfile.mkdtemp(prefix="orch-bench-", dir="/tmp")
    work = tempfile.mkdtemp(prefix="orch-bench-agents-", dir="/tmp")
    sb, agents = None, None
    rc = 0
    try:
        sb = Sandbox(sb_dir, args.base_port, "1+3", die_with_parent=True,
                     log=lambda m: print(f"sandbox: {m}"))
        t0 = time.monotonic()
        sb.create()
        print(f"bench_agent: 1+3 sandbox up in {time.monotonic() - t0:.1f} s "
              f"(ports {args.base_port}..{args.base_port + 4})")
        extra = {"log_level": "info"}
        if args.command_workers is not None:
            extra["command_workers"] = args.command_workers
        agents = AgentSet(sb, work, args.base_port + 100, probe_interval_ms=args.probe_interval_ms,
                          extra=extra)
        agents.receiver.start()
        for kv in args.agent_env:  # inherited by the agents started below
            k, v = kv.split("=", 1)
            os.environ[k] = v
        for n in AGENTS:
            agents.start_one(n)
        print(f"bench_agent: agents on {', '.join(AGENTS)} (pids "
              f"{', '.join(str(agents.procs[n].pid) for n in AGENTS)}), receiver "
              f"{agents.report_url}")
        agents.wait_report("db1", lambda r: r["state"] == "PROBE_UP"
                           and len(r.get("replicas", [])) == 3, timeout=30)
        agents.wait_report("db2", lambda r: r["state"] == "PROBE_UP" and r.get("channels")
                           and r["channels"][0].get("witness") == "WITNESS_GREETING", timeout=30)
        print(f"bench_agent: both agents report UP; warming up {args.warmup} s, "
              f"then sampling {args.seconds} s")
        time.sleep(args.warmup)
        data, rates = sample(agents, AGENTS, args.seconds)
        breakdowns = {n: (smaps_breakdown(agents.procs[n].pid),
                          thread_names(agents.procs[n].pid)) for n in AGENTS}
        rows = [summarize(n, "primary" if n == "db1" else "replica", data[n], rates[n])
                for n in AGENTS]
        report(rows, args.seconds, args.probe_interval_ms, breakdowns, args.agent_env)
    except (Stop, KeyboardInterrupt) as e:
        print(f"bench_agent: interrupted ({e or 'Ctrl-C'}); cleaning up", file=sys.stderr)
        rc = 130
    except (SandboxError, AssertionError, RuntimeError, OSError) as e:
        print(f"bench_agent: {e}", file=sys.stderr)
        if agents is not None:
            print(agents.logs(), file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if agents is not None:
            codes = agents.stop()  # by PID: SIGTERM, then SIGKILL after 10 s
            bad = {n: c for n, c in codes.items() if c not in (0,)}
            if bad and rc == 0:
                print(f"bench_agent: agents did not stop cleanly: {bad} "
                      f"(None: needed SIGKILL)", file=sys.stderr)
        if sb is not None:
            try:
                sb.destroy()
            except SandboxError as e:
                print(f"bench_agent: destroying the sandbox: {e}", file=sys.stderr)
                rc = rc or 1
        elif own_dir:
            os.rmdir(sb_dir)
        for p in Path(work).glob("*"):
            p.unlink()
        os.rmdir(work)
    return rc


if __name__ == "__main__":
    sys.exit(main())
