"""The README's first command: the demo runs to completion (a live failover
included) and its teardown leaves no process, port or directory behind."""

import os
import subprocess
import tempfile

from orchtest import PORTS, REPO, build_dir, listening_ports


def test_demo_runs_and_teardown_leaves_nothing():
    first = PORTS.acquire()
    second = PORTS.acquire()  # the demo uses base..base+143: two blocks
    try:
        assert second == first + 100, "need two adjacent port blocks"
        demo_dir = tempfile.mkdtemp(prefix="orch-demo-test-", dir="/tmp")
        os.rmdir(demo_dir)  # the demo creates it (and refuses a foreign directory)
        env = dict(os.environ, ORCH_DEMO_DIR=demo_dir, ORCH_DEMO_PORT=str(first),
                   ORCH_BUILD_DIR=str(build_dir()))
        demo = str(REPO / "tests" / "sandbox" / "demo")
        try:
            run = subprocess.run([demo], env=env, capture_output=True, text=True, timeout=300)
            out = run.stdout + run.stderr
            assert run.returncode == 0, out[-3000:]
            for want in ("FAILOVER-START", "FAILOVER-CHOSEN", "FAILOVER-PROMOTED",
                         "FAILOVER-REPOINTED", "FAILOVER-FENCED", "failover:",
                         "tests/sandbox/demo --destroy"):
                assert want in out, f"'{want}' missing from the demo's output:\n{out[-3000:]}"
            assert "succeeded in" in out
        finally:
            down = subprocess.run([demo, "--destroy"], env=env, capture_output=True, text=True,
                                  timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not os.path.exists(demo_dir)
        ours = [p for p in listening_ports() if first <= p < first + 200]
        assert ours == [], f"ports still listening: {ours}"
        left = subprocess.run(["pgrep", "-f", demo_dir], capture_output=True, text=True)
        assert left.stdout.strip() == "", f"processes left: {left.stdout}"
    finally:
        PORTS.release(second)
        PORTS.release(first)
