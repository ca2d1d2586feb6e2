"""Network partitions, with real network namespaces.

The primary's host cut from the coordinators only: no failover.

db1, the primary of a 1+3 sandbox, runs with its orch-agent in a network
namespace of its own, standing for its own host: a veth pair joins it to the
root namespace, where the replicas (db2, db3, db4), their agents and three
coordinators run. The replicas replicate from db1 at the namespace's address;
the coordinators listen for reports on the root end of the veth pair, so every
agent, db1's included, reaches them.

The partition is built inside db1's namespace with policy routing: `ip rule`
entries that blackhole TCP between the primary's host and the coordinators'
address on the coordinators' report ports (db1's agent -> coordinators) and on
db1's agent's command port (leader -> agent), both directions. Packets
arriving at the primary's host are dropped on arrival (as an iptables INPUT
DROP would); packets leaving it fail their route lookup (as with an OUTPUT
DROP: the agent's established connections stall while TCP retries, its new
dials fail locally at once). The coordinators see
what a silent partition shows: no report, no RST, no ICMP; established
connections go quiet, new ones time out. MySQL replication (db1's port) and the
test's own report receiver are untouched. iptables would do the same, but its
userspace is not installed on our machines (the kernel has it); `ip rule`
needs only iproute2, which orch already depends on, and everything it changes
lives in the namespace, so it disappears with it. The namespace's `local` rule
is moved behind the partition's rules so that packets to the namespace's own
address are matched too (it comes first by default).

Expected (DESIGN.md section 4, holistic rule): the leader sees db1's agent
silent, but every replica's agent still reports its IO thread running and its
witness getting db1's greeting, so the replicas veto: the analysis says
AgentDown (agent silent, replicas fine), not recoverable, and no recovery
starts; db1 stays the writable master. By the code (analysis.c
decide_master), the leader does not even send its direct ReportNow when
replicas veto, since its answer could not change the finding; the test sends a
ReportNow of its own (epoch 0, harmless) to show the command path is cut.
After the partition heals, db1's agent is heard again and the analysis
returns to NoProblem (no entry).

Needs root and `ip netns`; skips otherwise.
"""

import os
import signal
import time

import pytest

from orchtest import PORTS, run, sbx, wait_until

HOLD_S = 10.0            # how long AgentDown is held, well past failover detection (~3-5 s)
DEAD = {"DeadMaster", "DeadMasterAndSomeReplicas", "DeadMasterAndReplicas",
        "DeadMasterWithoutReplicas", "MasterHung", "DeadCoMaster",
        "DeadCoMasterAndSomeReplicas"}


# ---------------------------------------------------------------------------
# The primary's host: a network namespace and a veth pair
# ---------------------------------------------------------------------------

def ip(*args, check=True):
    return run([sbx.IP, *args], timeout=20, check=check)


class HostNamespace:
    """Network namespace orch-part-N joined to the root namespace by the veth
    pair orptNo (root end, 10.239.x.y+1/30) / orptNi (inside, +2/30). N comes
    from the test file's port range (ORCH_PORT_BASE / 100: ctest gives every
    file its own), and is claimed atomically (`ip netns add` refuses an
    existing name; the next N is tried), so concurrent tests never share one."""

    def __init__(self, idx):
        self.idx = idx
        self.ns = f"orch-part-{idx}"
        self.outer_if, self.inner_if = f"orpt{idx}o", f"orpt{idx}i"
        third, quad = divmod(idx, 64)
        self.outer = f"10.239.{third}.{quad * 4 + 1}"   # root end: coordinators, replicas
        self.inner = f"10.239.{third}.{quad * 4 + 2}"   # the primary's host
        self.cut_prefs = []

    @classmethod
    def claim(cls, first_idx, tries=32):
        """Creates the first free namespace from FIRST_IDX on whose subnet
        this machine does not use; skips the test when namespaces, veth pairs
        or port-matching ip rules do not work."""
        clash = None
        for k in range(tries):
            host = cls((first_idx + k) % 656)
            r = ip("netns", "add", host.ns, check=False)
            if r.returncode != 0:
                if "exists" in r.stderr:
                    continue
                pytest.skip(f"ip netns unavailable: ip netns add {host.ns}: {r.stderr.strip()}")
            used = ip("-o", "-4", "addr", "show", "to", f"{host.outer}/30").stdout.strip() or \
                "\n".join(line for line in ip("-4", "route", "show", "match", host.outer)
                          .stdout.splitlines() if not line.startswith("default"))
            if used:
                clash = f"{host.outer}/30: {used}"
                ip("netns", "del", host.ns, check=False)
                continue
            # namespaces work here: a setup that fails is a failure, not a skip
            try:
                host._setup()
            except AssertionError as e:
                left = host.destroy()
                pytest.fail(f"cannot build the primary's namespace: {e}"
                            + (f" (cleanup: {left})" if left else ""))
            try:
                host._probe_port_rules()
            except AssertionError as e:
                left = host.destroy()
                pytest.skip(f"ip rules with port selectors unsupported (Linux and iproute2 4.17 "
                            f"needed): {e}" + (f" (cleanup: {left})" if left else ""))
            return host
        if clash:
            pytest.skip(f"no free subnet for the primary's host in 10.239.0.0/16 ({clash})")
        raise AssertionError(f"no free namespace among orch-part-{first_idx}.. ({tries} tried)")

    def _setup(self):
        ip("link", "add", self.outer_if, "type", "veth", "peer", "name", self.inner_if,
           "netns", self.ns)
        ip("addr", "add", f"{self.outer}/30", "dev", self.outer_if)
        ip("link", "set", self.outer_if, "up")
        ip("-n", self.ns, "link", "set", "lo", "up")
        ip("-n", self.ns, "addr", "add", f"{self.inner}/30", "dev", self.inner_if)
        ip("-n", self.ns, "link", "set", self.inner_if, "up")
        # Rule 0 ("lookup local") delivers every packet for a local address
        # before any other rule is consulted: move it behind the partition's.
        ip("-n", self.ns, "rule", "add", "pref", "1000", "lookup", "local")
        ip("-n", self.ns, "rule", "del", "pref", "0")

    def _probe_port_rules(self):
        """Port selectors in ip rules (Linux 4.17, iproute2 4.17): try one."""
        ip("-n", self.ns, "rule", "add", "pref", "9", "ipproto", "tcp", "dport", "9", "blackhole")
        ip("-n", self.ns, "rule", "del", "pref", "9")

    def sandbox_netns(self):
        """The sandbox's NETNS entry for the server that runs here."""
        return {"netns": self.ns, "host": self.inner, "peer": self.outer}

    def cut(self, peer_ports, local_ports):
        """Drops TCP between this host and the root end's address on
        PEER_PORTS (ranges 'a-b' or ports listening on the root end) and
        LOCAL_PORTS (listening here), in both directions."""
        rules = []
        for p in peer_ports:
            rules += [("to", self.outer, "dport", p), ("from", self.outer, "sport", p)]
        for p in local_ports:
            rules += [("from", self.outer, "dport", p), ("to", self.outer, "sport", p)]
        for n, (direction, addr, which, port) in enumerate(rules):
            pref = str(10 + n)
            ip("-n", self.ns, "rule", "add", "pref", pref, direction, f"{addr}/32",
               "ipproto", "tcp", which, str(port), "blackhole")
            self.cut_prefs.append(pref)

    def heal(self):
        while self.cut_prefs:
            ip("-n", self.ns, "rule", "del", "pref", self.cut_prefs.pop())

    def rules(self):
        return ip("-n", self.ns, "rule", "show", check=False).stdout

    def destroy(self):
        """Removes the veth pair and the namespace (its rules go with it).
        Processes still in the namespace are ours (only this test starts any
        there): they are killed by PID and reported. Returns the problems."""
        problems = []
        r = ip("netns", "pids", self.ns, check=False)
        pids = [int(p) for p in r.stdout.split()] if r.returncode == 0 else []
        for pid in pids:
            problems.append(f"pid {pid} still ran in {self.ns}: "
                            f"{' '.join(sbx.proc_cmdline(pid))[:200]}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pids:
            wait_until(lambda: not any(sbx.pid_is_live(p) for p in pids), 10,
                       f"the processes left in {self.ns} to die")
        if ip("link", "show", self.outer_if, check=False).returncode == 0:
            r = ip("link", "del", self.outer_if, check=False)
            if r.returncode != 0:
                problems.append(f"ip link del {self.outer_if}: {r.stderr.strip()}")
        r = ip("netns", "del", self.ns, check=False)
        if r.returncode != 0 and "No such file" not in r.stderr:
            problems.append(f"ip netns del {self.ns}: {r.stderr.strip()}")
        return problems


@pytest.fixture
def primary_host():
    """The primary's host (HostNamespace), removed after the sandbox and the
    orch processes (request this fixture before make_sandbox and make_orch)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, veth pairs and ip rules")
    if not os.access(sbx.IP, os.X_OK):
        pytest.skip(f"ip (iproute2) not found at {sbx.IP}")
    host = HostNamespace.claim(PORTS.base // 100)
    yield host
    problems = host.destroy()
    if problems:
        pytest.fail("primary's namespace teardown: " + "; ".join(problems), pytrace=False)


# ---------------------------------------------------------------------------
# What the coordinators and the servers say
# ---------------------------------------------------------------------------

def details(body):
    """Rows of a reply: the envelope's Details, or a bare array."""
    return (body.get("Details") or []) if isinstance(body, dict) else body


def analysis_of(orch, i, key):
    """Coordinator I's analysis entries for instance KEY ('host:port')."""
    status, body = orch.get(i, "/api/replication-analysis")
    assert status == 200, body
    return [e for e in details(body)
            if f'{e["AnalyzedInstanceKey"]["Hostname"]}:{e["AnalyzedInstanceKey"]["Port"]}' == key]


def audit_recoveries(orch, i):
    status, body = orch.get(i, "/api/audit-recovery")
    assert status == 200, body
    return details(body)


def backend_recoveries(sb):
    return sb.sql("backend", "SELECT uid, analysis, state FROM orch.recovery")


def failover_lines(orch):
    return sum(orch.log_path(i).read_text().count("ORCH-FAILOVER-START") for i in range(orch.n))


def replicas_follow(sb, host, port):
    """Every replica's IO and SQL threads run, replicating from HOST:PORT."""
    for r in sb.replicas:
        st = r.slave_status(timeout=5)
        if not (st and st["Master_Host"] == host and int(st["Master_Port"]) == port
                and st["Slave_IO_Running"] == "Yes" and st["Slave_SQL_Running"] == "Yes"):
            return False
    return True


def rows_everywhere(sb, n):
    return all(s.value("SELECT COUNT(*) FROM part.t", timeout=5) == n
               for s in sb.servers.values())


def warm(orch, servers=4):
    """The leader sees every server and its warm-up (2 s) is over."""
    leader = orch.leader()
    wait_until(lambda: len(orch.instances(leader)) == servers, 15, f"{servers} instances")
    time.sleep(2.2)
    return leader


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------

def test_primary_cut_from_coordinators_only_no_failover(primary_host, make_sandbox, make_orch):
    host = primary_host
    sb = make_sandbox("1+3", netns={"db1": host.sandbox_netns()})
    db1 = sb.server("db1")
    key = f"{host.inner}:{db1.port}"
    assert replicas_follow(sb, host.inner, db1.port), sb.format_status()
    sb.sql("db1", "CREATE DATABASE part")
    sb.sql("db1", "CREATE TABLE part.t (id INT PRIMARY KEY)")
    sb.sql("db1", "INSERT INTO part.t VALUES (0)")
    sb.wait_replication(timeout=10)

    orch = make_orch(sb, report_host=host.outer)
    agents = orch.agents
    leader = warm(orch)
    inst = wait_until(lambda: orch.instances(leader).get(key), 10, f"{key} in the registry")
    assert inst["IsUpToDate"] and inst["ReadOnly"] is False, inst
    assert {orch.instances(leader)[f"127.0.0.1:{r.port}"]["MasterKey"]["Hostname"]
            for r in sb.replicas} == {host.inner}
    wait_until(lambda: analysis_of(orch, leader, key) == [], 10, "no finding about db1 yet")
    # the command path works before the cut: a ReportNow (epoch 0, id 1) is answered
    assert agents.command("db1", "REPORT_NOW", 0, 1, recv_timeout_ms=3000)["result"] != "NO_REPLY"

    report_ports = f"{orch.report_port(0)}-{orch.report_port(orch.n - 1)}"
    command_port = agents.command_ports["db1"]
    host.cut(peer_ports=[report_ports], local_ports=[command_port])
    t_cut = time.monotonic()
    print(f"partition: {host.ns} ({host.inner}) cut from {host.outer} on tcp {report_ports} "
          f"(reports) and {command_port} (commands)\n{host.rules()}")

    seen = {i: set() for i in range(orch.n)}   # analysis codes each coordinator gave db1
    agent_down, first_agent_down, wrote, n_rows = None, None, False, 1
    while True:
        now = time.monotonic()
        for i in range(orch.n):
            for e in analysis_of(orch, i, key):
                seen[i].add(e["Analysis"])
                assert e["Analysis"] not in DEAD, (i, e["Analysis"], e["Description"])
                assert e["IsActionableRecovery"] is False, (i, e["Description"])
                if i == leader and e["Analysis"] == "AgentDown":
                    agent_down = e
                    first_agent_down = first_agent_down or now
        assert audit_recoveries(orch, leader) == []
        assert backend_recoveries(sb) == []
        assert failover_lines(orch) == 0
        assert db1.value("SELECT @@read_only", timeout=5) == 0, "db1 was made read-only"
        assert replicas_follow(sb, host.inner, db1.port), sb.format_status()
        # db1's agent is alive and sees its server: its reports still reach the
        # test's receiver, which listens outside the cut ports
        latest = agents.receiver.latest(db1.port)
        assert latest and time.monotonic() - latest["_t"] < 3.0 and \
            latest["report"]["state"] == "PROBE_UP", latest
        if first_agent_down is None:
            assert now - t_cut < 10, f"no AgentDown {now - t_cut:.1f} s into the partition; " \
                                     f"seen: {seen}"
        elif not wrote:
            # the control: a write on db1 during the partition reaches the replicas
            for n in range(1, 21):
                sb.sql("db1", f"INSERT INTO part.t VALUES ({n})")
            n_rows, wrote = 21, True
            wait_until(lambda: rows_everywhere(sb, n_rows), 10,
                       "the rows written on db1 during the partition on every replica")
            # the command path is cut: the agent does not answer a ReportNow
            r = agents.command("db1", "REPORT_NOW", 0, 2, recv_timeout_ms=2000)
            assert r["result"] == "NO_REPLY", r
        elif now - first_agent_down >= HOLD_S:
            break
        time.sleep(0.2)

    held = time.monotonic() - t_cut
    print(f"partition held {held:.1f} s; AgentDown after {first_agent_down - t_cut:.1f} s; "
          f"codes seen per coordinator: {seen}")
    print(f"leader c{leader + 1} said: {agent_down['Analysis']}: {agent_down['Description']}")
    orch_part = agent_down["Orch"]
    assert orch_part["Stale"] is True and orch_part["AgentState"], orch_part
    assert orch_part["CountVetoingReplicas"] == 3 and orch_part["CountConfirmingReplicas"] == 0, \
        orch_part
    # the direct check could not change the finding (the replicas veto): not sent
    assert orch_part["DirectCheck"]["Wanted"] is False, orch_part
    assert agent_down["CountValidReplicatingReplicas"] == 3, agent_down
    assert "silent" in agent_down["Description"] and "veto" in agent_down["Description"], \
        agent_down["Description"]
    log = orch.log_path(leader).read_text().splitlines()
    said = [line for line in log if key in line and ("AgentDown" in line or "DIRECT" in line)]
    print(f"leader's log about {key} during the partition ({len(said)} lines):\n  "
          + "\n  ".join(said[:6]))
    print("failure detections audited:", orch.get(leader, "/api/audit-failure-detection")[1])
    for i in range(orch.n):
        assert seen[i] <= {"AgentDown"}, (i, seen[i])

    # heal: db1's agent is heard again and the analysis has nothing to say
    host.heal()
    t_heal = time.monotonic()
    wait_until(lambda: orch.instances(leader)[key]["IsUpToDate"], 40,
               "the leader to hear db1's agent again")
    wait_until(lambda: all(analysis_of(orch, i, key) == [] for i in range(orch.n)), 20,
               "every coordinator's analysis of db1 back to NoProblem")
    print(f"healed: db1 reported and judged fine again after {time.monotonic() - t_heal:.1f} s")
    wait_until(lambda: agents.command("db1", "REPORT_NOW", 0, 3, recv_timeout_ms=2000)["result"]
               != "NO_REPLY", 20, "db1's agent to answer a ReportNow again")
    assert audit_recoveries(orch, leader) == [] and backend_recoveries(sb) == []
    assert failover_lines(orch) == 0
    assert db1.value("SELECT @@read_only") == 0
    assert replicas_follow(sb, host.inner, db1.port)
    sb.sql("db1", "INSERT INTO part.t VALUES (100)")
    wait_until(lambda: rows_everywhere(sb, n_rows + 1), 10, "a write after the heal everywhere")
