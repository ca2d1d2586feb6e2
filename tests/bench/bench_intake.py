#!/usr/bin/python3
"""Intake capacity of one orch-coordinator (a benchmark: it prints figures).

A simulated fleet (orch-fleetsim) sends correctly signed reports for K hosts
at one report per host per second to one coordinator (a real one, leader on a
real MariaDB backend, writing behind). For each K in --steps it measures, over
a --window after a warm-up:

  - the coordinator's CPU (utime+stime of all its threads) as a share of a core,
    and per accepted report (µs);
  - reports accepted per second (from /metrics) against the K sent;
  - API latency meanwhile (an instance or a cluster every 200 ms, and
    /api/clusters-info of the whole fleet every 2 s): median, p99, max;
  - RSS, and RSS per instance above the empty coordinator.

Goal (DESIGN.md, the coordinator issue): at least 10,000 hosts at 1 report/s
within half a core. nng's own cost here is ~40-120 µs per message at that rate.

    ORCH_BUILD_DIR=build /usr/bin/python3 tests/bench/bench_intake.py \
        [--steps 1000,2500,5000,10000,15000,20000] [--window 10] [--base-port 28500]
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "sandbox"))
sys.path.insert(0, str(REPO / "tests" / "system"))
from sandbox import CREDENTIALS, Sandbox  # noqa: E402

SECRET = "bench-fleet-secret"
TICK = os.sysconf("SC_CLK_TCK")


def build_dir():
    return Path(os.environ.get("ORCH_BUILD_DIR", REPO / "build")).resolve()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def get(url, timeout=5):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return time.monotonic() - t0, body


def accepted(api):
    _, body = get(api + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("orch_reports_accepted_total "):
            return float(line.split()[-1])
    return 0.0


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default="1000,2500,5000,10000,15000,20000")
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--base-port", type=int, default=28500)
    args = ap.parse_args()
    steps = [int(x) for x in args.steps.split(",")]
    bd = build_dir()
    coord_bin, sim_bin = bd / "coordinator" / "orch-coordinator", bd / "tests" / "orch-fleetsim"
    for b in (coord_bin, sim_bin):
        if not b.exists():
            sys.exit(f"{b} missing: build first (cmake -S . -B build && cmake --build build)")

    tmp = tempfile.mkdtemp(prefix="orch-bench-intake-", dir="/tmp")
    sb = Sandbox(os.path.join(tmp, "sb"), args.base_port, "1+0", die_with_parent=True)
    coord, procs = None, []
    try:
        sb.create()
        report_url = f"tcp://127.0.0.1:{args.base_port + 100}"
        http = args.base_port + 101
        api = f"http://127.0.0.1:{http}"
        cfg = {"node": "bench", "fleet_secret": SECRET, "report_listen": report_url,
               "http_listen": f"127.0.0.1:{http}", "backend_host": "127.0.0.1",
               "backend_port": sb.backend.port,
               "backend_user": CREDENTIALS["coordinator"]["user"],
               "backend_password": CREDENTIALS["coordinator"]["password"], "log_level": "warn"}
        cfg_path = Path(tmp) / "coordinator.json"
        cfg_path.write_text(json.dumps(cfg))
        cfg_path.chmod(0o600)
        log = open(Path(tmp) / "coordinator.log", "w")
        coord = subprocess.Popen([str(coord_bin), "-c", str(cfg_path)], stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                if get(api + "/api/leader-check")[1]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or coord.poll() is not None:
                sys.exit("the coordinator did not come up; see " + str(Path(tmp) / "coordinator.log"))
            time.sleep(0.1)
        time.sleep(1)
        base_rss = rss_mb(coord.pid)
        print(f"machine: {os.cpu_count()} cores; coordinator pid {coord.pid}, empty RSS "
              f"{base_rss:.1f} MB; window {args.window:.0f} s after {args.warmup:.0f} s warm-up")
        print(f"{'hosts':>7} {'sent/s':>8} {'accepted/s':>10} {'cpu%core':>9} {'us/report':>9} "
              f"{'api p50 ms':>10} {'p99 ms':>7} {'max ms':>7} {'RSS MB':>7} {'KB/inst':>8}")
        results = []
        for k in steps:
            sim = subprocess.Popen([str(sim_bin), "--url", report_url, "--secret", SECRET,
                                    "--hosts", str(k), "--interval-ms", "1000", "--seconds",
                                    str(int(args.warmup + args.window + 3)), "--sockets", "4",
                                    "--prefix", f"k{k}"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, start_new_session=True)
            procs.append(sim)
            time.sleep(args.warmup)
            lat, stop = [], threading.Event()

            def poll_api():
                # what dashboards and orchestrator-client do: an instance or a
                # cluster five times a second, the whole fleet every 2 s
                n = 0
                while not stop.is_set():
                    try:
                        if n % 10 == 9:
                            lat.append(get(api + "/api/clusters-info")[0])
                        elif n % 2:
                            lat.append(get(api + f"/api/cluster/k{k}-{n % 50}-0:3306")[0])
                        else:
                            lat.append(get(api + f"/api/instance/k{k}-{n % 50}-1/3306")[0])
                    except OSError:
                        pass
                    n += 1
                    time.sleep(0.2)
            t = threading.Thread(target=poll_api, daemon=True)
            c0, a0, w0 = cpu_seconds(coord.pid), accepted(api), time.monotonic()
            t.start()
            time.sleep(args.window)
            stop.set()
            t.join()
            c1, a1, w1 = cpu_seconds(coord.pid), accepted(api), time.monotonic()
            sim.wait(timeout=60)
            procs.remove(sim)
            dt = w1 - w0
            rate, cpu = (a1 - a0) / dt, (c1 - c0) / dt
            rss = rss_mb(coord.pid)
            per_inst_kb = (rss - base_rss) * 1024 / max(1, sum(steps[:steps.index(k) + 1]))
            lat_ms = [x * 1000 for x in lat]
            row = dict(hosts=k, accepted=rate, cpu=cpu, us=cpu / rate * 1e6 if rate else 0,
                       p50=statistics.median(lat_ms) if lat_ms else float("nan"),
                       p99=pct(lat_ms, 99), max=max(lat_ms) if lat_ms else float("nan"),
                       rss=rss, per_inst_kb=per_inst_kb)
            results.append(row)
            print(f"{k:>7} {k:>8} {rate:>10.0f} {cpu * 100:>8.1f}% {row['us']:>9.1f} "
                  f"{row['p50']:>10.2f} {row['p99']:>7.2f} {row['max']:>7.1f} {rss:>7.1f} "
                  f"{per_inst_kb:>8.2f}")
            sys.stdout.flush()
            if cpu > 0.9:
                print(f"(stopping: {cpu * 100:.0f}% of a core)")
                break
        ok = [r for r in results if r["cpu"] <= 0.5 and r["accepted"] >= 0.97 * r["hosts"]]
        best = max((r["hosts"] for r in ok), default=0)
        print(f"largest K sustained within half a core (>= 97% of reports accepted): {best}")
        print(f"goal >= 10000 hosts at 1 report/s within half a core: "
              f"{'PASS' if best >= 10000 else 'MISS'}")
        instances = sum(r["hosts"] for r in results)
        print(f"RSS per instance: {(results[-1]['rss'] - base_rss) * 1024 / instances:.2f} KB "
              f"({instances} instances registered in the end)")
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if coord is not None and coord.poll() is None:
            os.kill(coord.pid, signal.SIGTERM)
            try:
                coord.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(coord.pid, signal.SIGKILL)
                coord.wait()
        sb.destroy()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
