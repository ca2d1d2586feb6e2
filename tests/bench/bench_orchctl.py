#!/usr/bin/python3
"""orchctl's wall time per call (a benchmark: it prints figures).

Starts a 1+3 MariaDB sandbox, three orch-coordinators and one agent per server
(as the system tests do), waits until the API shows the topology, then runs
each case N times in a row and prints the median, p90 and max wall time of a
whole call (fork, exec, dynamic linking, the HTTP requests, rendering, exit):

  clusters            with ORCH_API = the leader's URL (one request)
  clusters            with ORCH_API = three URLs, leader last (leader checks + one request)
  topology -a ...     with one URL and with three URLs

plus /bin/true run the same way, which is what Python's subprocess costs
before orchctl does anything. Goal: median <= 20 ms per call.

    ORCH_BUILD_DIR=build /usr/bin/python3 tests/bench/bench_orchctl.py \\
        [-n 200] [--base-port 28800] [--api 'URL ...' --alias CLUSTER]

With --api the cases run against coordinators already running (nothing is
started; --alias names the cluster for topology, default: the first one).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "sandbox"))
sys.path.insert(0, str(REPO / "tests" / "system"))

GOAL_MS = 20.0


def build_dir():
    return Path(os.environ.get("ORCH_BUILD_DIR", REPO / "build")).resolve()


def pct(values, p):
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def measure(argv, env, n):
    """Wall times (ms) of N runs of ARGV; raises if one fails."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append((time.perf_counter() - t0) * 1000.0)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.decode()}")
    return times


def run_cases(orchctl, one_url, three_urls, alias, n):
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    base_env["NO_COLOR"] = "1"
    cases = [
        ("/bin/true (subprocess baseline)", ["/bin/true"], one_url),
        ("clusters, 1 URL", [orchctl, "clusters"], one_url),
        ("clusters, 3 URLs", [orchctl, "clusters"], three_urls),
        (f"topology -a {alias}, 1 URL", [orchctl, "topology", "-a", alias], one_url),
        (f"topology -a {alias}, 3 URLs", [orchctl, "topology", "-a", alias], three_urls),
    ]
    print(f"\n{'case':<48} {'n':>5} {'median':>9} {'p90':>9} {'max':>9}  goal")
    ok = True
    for name, argv, api in cases:
        env = dict(base_env, ORCH_API=api)
        measure(argv, env, min(10, n))  # warm the page cache and the coordinators
        t = measure(argv, env, n)
        med = statistics.median(t)
        verdict = ""
        if argv[0] != "/bin/true":
            verdict = "PASS" if med <= GOAL_MS else "MISS"
            ok = ok and med <= GOAL_MS
        print(f"{name:<48} {n:>5} {med:>7.2f}ms {pct(t, 90):>7.2f}ms {max(t):>7.2f}ms  {verdict}")
    print(f"\ngoal: median <= {GOAL_MS:.0f} ms per call: {'PASS' if ok else 'MISS'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200, help="calls per case (200)")
    ap.add_argument("--base-port", type=int, default=28800,
                    help="sandbox on BASE..BASE+99, coordinators and agents on BASE+100.. (28800)")
    ap.add_argument("--api", help="use these running coordinators instead of starting any")
    ap.add_argument("--alias", help="the cluster for topology (with --api)")
    args = ap.parse_args()

    orchctl = build_dir() / "cli" / "orchctl"
    if not orchctl.is_file():
        print(f"bench_orchctl: {orchctl} not built (cmake --build {build_dir()})", file=sys.stderr)
        return 1
    orchctl = str(orchctl)
    print(f"orchctl: {orchctl}")

    if args.api:
        urls = args.api.split()
        alias = args.alias
        if alias is None:
            out = subprocess.run([orchctl, "clusters", "--api", args.api], capture_output=True,
                                 text=True, check=True).stdout.split()
            alias = out[0]
        run_cases(orchctl, urls[0], " ".join(urls), alias, args.n)
        return 0

    os.environ.setdefault("ORCH_BUILD_DIR", str(build_dir()))
    from orchcluster import OrchCluster  # noqa: E402  (needs the paths above)
    from sandbox import Sandbox  # noqa: E402
    from orchtest import wait_until  # noqa: E402

    d = tempfile.mkdtemp(prefix="orch-bench-ctl-", dir="/tmp")
    sb = orch = None
    try:
        sb = Sandbox(os.path.join(d, "sb"), args.base_port, "1+3", die_with_parent=True)
        sb.create()
        os.makedirs(os.path.join(d, "orch"))
        orch = OrchCluster(sb, os.path.join(d, "orch"), args.base_port + 100, coordinators=3,
                           log_level="info")
        orch.start()
        leader = orch.leader()
        primary = f"127.0.0.1:{sb.primary.port}"
        wait_until(lambda: len(orch.instances(leader)) == 4, 30, "the API to show 4 instances")
        others = [orch.url(i) for i in range(3) if i != leader]
        print(f"coordinators: {[orch.url(i) for i in range(3)]}, leader c{leader + 1}; "
              f"cluster {primary} (1+3)")
        run_cases(orchctl, orch.url(leader), " ".join(others + [orch.url(leader)]), primary,
                  args.n)
    finally:
        if orch is not None:
            orch.stop()
        if sb is not None:
            sb.destroy()
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
