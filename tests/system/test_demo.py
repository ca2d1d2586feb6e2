"""The README's first command: the demo runs to completion (a live failover
included), the operations its closing guide suggests work as printed, running
it a second time in a row works, Ctrl-C tears it down, and every teardown
leaves no process, port or directory behind."""

import os
import re
import signal
import subprocess
import tempfile

from orchtest import PORTS, REPO, build_dir, listening_ports, wait_until

DEMO = str(REPO / "tests" / "sandbox" / "demo")


def nothing_left(first, demo_dir):
    assert not os.path.exists(demo_dir)
    ours = [p for p in listening_ports() if first <= p < first + 200]
    assert ours == [], f"ports still listening: {ours}"
    left = subprocess.run(["pgrep", "-f", demo_dir], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"processes left: {left.stdout}"


def run_demo(env):
    run = subprocess.run([DEMO], env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    for want in ("FAILOVER-START", "FAILOVER-CHOSEN", "FAILOVER-PROMOTED",
                 "FAILOVER-REPOINTED", "FAILOVER-FENCED", "failover:",
                 "tests/sandbox/demo --destroy"):
        assert want in out, f"'{want}' missing from the demo's output:\n{out[-3000:]}"
    assert "succeeded in" in out
    return out


def guide_commands(out, verbs):
    """The orchctl lines of the closing guide for VERBS, comments removed."""
    cmds = {}
    for line in out.splitlines():
        m = re.match(r"\s+(\S+/orchctl) ([a-z-]+)(.*?)(#.*)?$", line)
        if m and m.group(2) in verbs:
            cmds[m.group(2)] = f"{m.group(1)} {m.group(2)}{m.group(3)}".strip()
    return [cmds[v] for v in verbs]


def test_demo_runs_twice_its_guide_works_and_teardown_leaves_nothing():
    first = PORTS.acquire()
    second = PORTS.acquire()  # the demo uses base..base+143: two blocks
    try:
        assert second == first + 100, "need two adjacent port blocks"
        demo_dir = tempfile.mkdtemp(prefix="orch-demo-test-", dir="/tmp")
        os.rmdir(demo_dir)  # the demo creates it (and refuses a foreign directory)
        env = dict(os.environ, ORCH_DEMO_DIR=demo_dir, ORCH_DEMO_PORT=str(first),
                   ORCH_BUILD_DIR=str(build_dir()))
        try:
            out = run_demo(env)
            api = re.search(r'export ORCH_API="([^"]+)"', out).group(1)
            for cmd in guide_commands(out, ["relocate", "move-up", "graceful-master-takeover"]):
                r = subprocess.run(["bash", "-c", cmd], env=dict(env, ORCH_API=api),
                                   capture_output=True, text=True, timeout=60)
                assert r.returncode == 0, (cmd, r.stdout, r.stderr)
                print(f"{cmd}\n  -> {r.stdout.strip()}")
            run_demo(env)  # again, the first still running: it starts over
        finally:
            down = subprocess.run([DEMO, "--destroy"], env=env, capture_output=True, text=True,
                                  timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        nothing_left(first, demo_dir)
    finally:
        PORTS.release(second)
        PORTS.release(first)


def test_ctrl_c_during_the_demo_tears_it_down():
    first = PORTS.acquire()
    second = PORTS.acquire()
    try:
        assert second == first + 100, "need two adjacent port blocks"
        demo_dir = tempfile.mkdtemp(prefix="orch-demo-test-", dir="/tmp")
        os.rmdir(demo_dir)
        env = dict(os.environ, ORCH_DEMO_DIR=demo_dir, ORCH_DEMO_PORT=str(first),
                   ORCH_BUILD_DIR=str(build_dir()))
        log = tempfile.NamedTemporaryFile(prefix="orch-demo-out-", dir="/tmp", delete=False)
        proc = subprocess.Popen([DEMO], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            # interrupted once agents and coordinators run: the most to clean up
            wait_until(lambda: "Starting an orch-agent" in open(log.name).read()
                       and os.path.exists(os.path.join(demo_dir, "orch", "coordinator-3.pid")),
                       180, "the demo to start agents and coordinators")
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
            assert proc.wait(120) == 130, open(log.name).read()[-3000:]
            assert "interrupted, tearing down" in open(log.name).read()
            nothing_left(first, demo_dir)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            subprocess.run([DEMO, "--destroy"], env=env, capture_output=True, timeout=120)
            os.unlink(log.name)
    finally:
        PORTS.release(second)
        PORTS.release(first)
