"""pytest fixtures for orch's system tests.

    def test_x(sandbox):                 # a fresh 1+3 sandbox (db1 -> db2, db3, db4)
        sandbox.sql("db1", "CREATE DATABASE t")

    def test_y(make_sandbox):            # other shapes and options
        sb = make_sandbox("chain:3", slave_net_timeout=2)

    def test_z(tmp_dir, port_block):     # a /tmp directory and 100 free ports

Every sandbox is destroyed when its test ends, whatever the outcome, and the
teardown fails the test if it left a process, a listening port or a directory.
When a test fails, its report gets each sandbox's status table and the tails of
the error logs.
"""

import shutil
import tempfile

import pytest

from orchtest import PORTS, Sandbox, assert_nothing_left


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach sandbox diagnostics to the report of a failed test, while the
    servers are still up (fixture teardown comes after)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for sb in getattr(item, "_orch_sandboxes", []):
            rep.sections.append((f"sandbox {sb.dir}", sb.diagnostics()))
        for agents in getattr(item, "_orch_agents", []):
            rep.sections.append(("agent logs", agents.logs()))
        for orch in getattr(item, "_orch_clusters", []):
            rep.sections.append(("coordinator logs", orch.logs()))
            if orch.agents:
                rep.sections.append(("agent logs", orch.agents.logs()))


@pytest.fixture
def tmp_dir():
    """A fresh directory under /tmp (short paths: unix sockets live there),
    removed after the test."""
    d = tempfile.mkdtemp(prefix="orch-test-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def port_block():
    """First port of a block of 100 free ports from this file's range."""
    start = PORTS.acquire()
    yield start
    PORTS.release(start)


@pytest.fixture
def make_sandbox(request):
    """Factory: make_sandbox(topology='1+3', **Sandbox options) -> a created,
    replicating Sandbox on its own block of ports in its own /tmp directory.
    All of them are destroyed at teardown, and checked to leave nothing; their
    servers die with the test process even if it is SIGKILLed (ctest timeout)."""
    made = []
    request.node._orch_sandboxes = []

    def make(topology="1+3", **kwargs):
        base = PORTS.acquire()
        try:
            d = tempfile.mkdtemp(prefix="orch-sb-", dir="/tmp")
            kwargs.setdefault("die_with_parent", True)
            sb = Sandbox(d, base, topology, **kwargs)
        except BaseException:
            PORTS.release(base)
            raise
        made.append((sb, base))
        sb.create()
        request.node._orch_sandboxes.append(sb)
        return sb

    yield make

    problems = []
    for sb, base in reversed(made):
        footprint = sb.footprint()
        try:
            sb.destroy()
            assert_nothing_left(footprint)
        except Exception as e:  # noqa: BLE001 - report every sandbox's problem
            problems.append(f"{sb.dir}: {e}")
        finally:
            PORTS.release(base)
    if problems:
        pytest.fail("sandbox teardown: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def sandbox(make_sandbox):
    """A fresh 1+3 sandbox: db1 (primary) with replicas db2, db3, db4."""
    return make_sandbox("1+3")


@pytest.fixture
def agent_binaries():
    """Skips (with the build command) unless orch-agent and orch-wiretool are built."""
    from orchtest import require_binary
    require_binary("orch-agent")
    require_binary("orch-wiretool")


@pytest.fixture
def make_agents(request, tmp_dir, agent_binaries):
    """Factory: make_agents(sandbox, **AgentSet options) -> started AgentSet with
    its receiver, on a fresh block of ports. Everything is stopped by PID at
    teardown; agent logs are attached to a failed test's report."""
    from orchagents import AgentSet

    made, blocks = [], []
    request.node._orch_agents = made

    def make(sb, start=True, **kwargs):
        block = PORTS.acquire()
        blocks.append(block)
        agents = AgentSet(sb, tmp_dir, block, **kwargs)
        made.append(agents)
        return agents.start() if start else agents

    yield make
    for agents in made:
        agents.stop()
    for block in blocks:
        PORTS.release(block)


@pytest.fixture
def make_orch(request, tmp_dir, agent_binaries):
    """Factory: make_orch(sandbox, coordinators=3, agents=True, **coordinator
    config) -> a started OrchCluster (coordinators on the sandbox's backend,
    one agent per server reporting to all of them). Stopped by PID at teardown."""
    from orchcluster import OrchCluster
    from orchtest import require_binary

    require_binary("orch-coordinator")
    made, blocks = [], []
    request.node._orch_clusters = made

    def make(sb, start=True, **kwargs):
        block = PORTS.acquire()
        blocks.append(block)
        orch = OrchCluster(sb, tmp_dir, block, **kwargs)
        made.append(orch)
        return orch.start() if start else orch

    yield make
    for orch in made:
        orch.stop()
    for block in blocks:
        PORTS.release(block)
