"""Helpers shared by orch's system tests (tests/system/test_*.py).

    from orchtest import wait_until, Sandbox, SandboxError, PORTS

- wait_until(): poll a condition with a deadline; never sleep-and-hope.
- PORTS: ctest gives each test file ORCH_PORT_BASE and 400 ports from it
  (21000 when run by hand); PORTS.acquire() hands out free blocks of 100 (one
  sandbox each; a test may take extra blocks for agents and coordinators).
- build_dir(), binary(): where the orch binaries under test are.
- assert_nothing_left(): a destroyed sandbox left no process, port or directory.

The sandbox library itself is tests/sandbox/sandbox.py; it is importable as
`sandbox` once this module is imported. Fixtures live in conftest.py.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SANDBOX_DIR = REPO / "tests" / "sandbox"
SANDBOX_CLI = SANDBOX_DIR / "sandbox.py"
if str(SANDBOX_DIR) not in sys.path:
    sys.path.insert(0, str(SANDBOX_DIR))

import sandbox as sbx  # noqa: E402  (needs the path above)
from sandbox import (  # noqa: E402,F401  (re-exported for tests)
    CREDENTIALS, BACKEND, PORTS_PER_SANDBOX, Sandbox, SandboxError, Server,
    gtid_pos_reached, listening_ports, parse_gtid_pos, pid_is_live, port_is_free,
    proc_state)

__all__ = [
    # from tests/sandbox/sandbox.py
    "CREDENTIALS", "BACKEND", "PORTS_PER_SANDBOX", "Sandbox", "SandboxError", "Server",
    "gtid_pos_reached", "listening_ports", "parse_gtid_pos", "pid_is_live", "port_is_free",
    "proc_state",
    # defined here
    "wait_until", "port_base", "PortBlocks", "PORTS", "build_dir", "binary",
    "require_binary", "run", "sandbox_cli", "leftovers", "assert_nothing_left", "REPO",
]

PORT_SPAN = 400           # ports each test file may use from ORCH_PORT_BASE
PORT_BLOCK = PORTS_PER_SANDBOX
DEFAULT_PORT_BASE = 21000


# ---------------------------------------------------------------------------
# Polling
# ---------------------------------------------------------------------------

def wait_until(predicate, timeout=30.0, what=None, interval=0.05):
    """Call PREDICATE until it returns something truthy, and return that.

    An exception from PREDICATE counts as "not yet" (a server that is still
    starting refuses connections). After TIMEOUT seconds, raise AssertionError
    saying WHAT we waited for (default: the predicate's name), how long, and the
    last value or exception seen."""
    what = what or getattr(predicate, "__name__", repr(predicate))
    start = time.monotonic()
    deadline = start + timeout
    last_value, last_exc, calls = None, None, 0
    while True:
        calls += 1
        try:
            value = predicate()
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last_exc, last_value = e, None
        else:
            if value:
                return value
            last_exc, last_value = None, value
        if time.monotonic() >= deadline:
            seen = (f"last exception: {type(last_exc).__name__}: {last_exc}" if last_exc
                    else f"last value: {last_value!r}")
            raise AssertionError(f"timed out after {time.monotonic() - start:.1f} s "
                                 f"({calls} tries) waiting for {what}; {seen}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

def port_base():
    """First port this test file may use: $ORCH_PORT_BASE (set by ctest) or 21000."""
    try:
        return int(os.environ.get("ORCH_PORT_BASE", DEFAULT_PORT_BASE))
    except ValueError:
        raise RuntimeError(f"ORCH_PORT_BASE={os.environ['ORCH_PORT_BASE']!r} is not a port") \
            from None


class PortBlocks:
    """Hands out blocks of BLOCK ports within BASE..BASE+SPAN-1, each free of
    listeners when handed out. One per process (PORTS below); not thread-safe."""

    def __init__(self, base=None, span=PORT_SPAN, block=PORT_BLOCK):
        self.base = port_base() if base is None else base
        self.span, self.block = span, block
        self.in_use = set()

    def acquire(self):
        """First port of a free block; RuntimeError if none is left."""
        busy = {}
        for start in range(self.base, self.base + self.span, self.block):
            if start in self.in_use:
                continue
            taken = [p for p in range(start, start + self.block) if not port_is_free(p)]
            if taken:
                busy[start] = taken
                continue
            self.in_use.add(start)
            return start
        raise RuntimeError(
            f"no free block of {self.block} ports in {self.base}..{self.base + self.span - 1} "
            f"(ORCH_PORT_BASE={self.base}): blocks held by this test: "
            f"{sorted(self.in_use) or 'none'}; ports busy elsewhere: "
            + "; ".join(f"{s}: {v[:5]}" for s, v in busy.items()))

    def release(self, start):
        self.in_use.discard(start)


PORTS = PortBlocks()


# ---------------------------------------------------------------------------
# Build directory and binaries
# ---------------------------------------------------------------------------

def build_dir():
    """orch's build directory: $ORCH_BUILD_DIR (set by ctest) or <repo>/build."""
    return Path(os.environ.get("ORCH_BUILD_DIR") or REPO / "build")


def binary(name):
    """Path of the built executable NAME (e.g. 'orch-agent') under build_dir(),
    or None. Looks in the usual places first, then anywhere in the tree."""
    root = build_dir()
    for sub in ("", "agent", "coordinator", "cli", "bin"):
        p = root / sub / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    if root.is_dir():
        for p in root.rglob(name):
            if p.is_file() and os.access(p, os.X_OK) and "CMakeFiles" not in p.parts:
                return p
    return None


def require_binary(name):
    """binary(NAME), or skip the test saying how to build it."""
    import pytest
    p = binary(name)
    if p is None:
        pytest.skip(f"{name} not built in {build_dir()}: run "
                    f"cmake -S {REPO} -B {build_dir()} && cmake --build {build_dir()}")
    return p


# ---------------------------------------------------------------------------
# Processes and leftovers
# ---------------------------------------------------------------------------

def run(args, timeout=60, check=True, **kwargs):
    """subprocess.run with text output captured; on failure (CHECK) an
    AssertionError carrying the command, exit status, stdout and stderr."""
    args = [str(a) for a in args]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(args)}: no exit after {timeout} s; "
                             f"stdout: {e.stdout!r}; stderr: {e.stderr!r}") from None
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {r.returncode}\nstdout:\n{r.stdout}\n"
                             f"stderr:\n{r.stderr}")
    return r


def sandbox_cli(*args, **kwargs):
    """Run tests/sandbox/sandbox.py ARGS under /usr/bin/python3 (see run())."""
    return run([sys.executable, SANDBOX_CLI, *args], **kwargs)


def leftovers(footprint):
    """What of FOOTPRINT (Sandbox.footprint(), taken before destroy) is still
    there: a list of strings, empty when nothing is left."""
    found = []
    for name, pid in footprint["pids"].items():
        datadir = footprint["datadirs"][name]
        if sbx.pid_runs_datadir(pid, datadir):
            found.append(f"process {name} pid {pid} (state {proc_state(pid)})")
    for pid in (sbx.pids_with_datadir_under(footprint["dir"])
                if os.path.isdir(footprint["dir"]) else []):
        found.append(f"process pid {pid} on a datadir under {footprint['dir']}")
    listening = listening_ports() & set(footprint["ports"])
    if listening:
        found.append(f"listening ports {sorted(listening)}")
    if os.path.exists(footprint["dir"]):
        found.append(f"directory {footprint['dir']}")
    return found


def assert_nothing_left(footprint, timeout=5.0):
    """Assert that no process, listening port in the sandbox's range or
    directory of FOOTPRINT remains (waiting up to TIMEOUT for sockets to close)."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(footprint)
        if not left:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"sandbox {footprint['dir']} left behind after "
                                 f"{timeout:.0f} s: {'; '.join(left)}")
        time.sleep(0.05)
