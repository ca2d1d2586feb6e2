"""orchctl against real coordinators, agents and MariaDB servers: every read
command checked against the sandbox's real topology, leader discovery with
three URLs (and with the leader killed or stopped), authentication, and the
error paths with their exit codes."""

import hashlib
import hmac
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from orchcluster import OrchCluster
from orchtest import REPO, require_binary, wait_until

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_UNREACHABLE, EXIT_NOTFOUND, EXIT_REFUSED, EXIT_AUTH = 4, 5, 6, 7

COMPLETION = REPO / "packaging" / "orchctl.bash-completion"


@pytest.fixture
def orchctl():
    return require_binary("orchctl")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ORCH_") or k in ("ORCH_BUILD_DIR", "ORCH_PORT_BASE")}
    env.pop("NO_COLOR", None)
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def run(orchctl, *args, api=None, env=None, timeout=30):
    """orchctl ARGS with ORCH_API=API -> (exit code, stdout, stderr, seconds)."""
    e = clean_env(ORCH_API=api)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([str(orchctl), *args], capture_output=True, text=True, env=e,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def lines(text):
    return [x for x in text.splitlines() if x]


def key(server):
    return f"127.0.0.1:{server.port}"


def apis(orch):
    return " ".join(orch.url(i) for i in range(orch.n))


def wait_sees(orch, sb, i=0):
    """Until coordinator I sees every server of SB replicating as configured."""
    want = {key(s): (f"127.0.0.1:{sb.server(s.master).port}" if s.master else None)
            for s in sb.servers.values()}

    def seen():
        got = {}
        for k, v in orch.instances(i).items():
            m = v["MasterKey"]
            got[k] = f'{m["Hostname"]}:{m["Port"]}' if m["Hostname"] else None
        ok = got == want and all(v["IsUpToDate"] for v in orch.instances(i).values())
        return ok
    wait_until(seen, 30, f"coordinator c{i + 1} to see {want}")


# ---- without a coordinator -------------------------------------------------------


def test_usage_errors_and_help(orchctl):
    cases = [
        (["which-master"], "which-master needs -i HOST[:PORT]"),
        (["topology"], "topology needs a cluster"),
        (["relocate", "-i", "db3"], "relocate needs -d"),
        (["which-master", "-i", "db1:99999"], "bad -i 'db1:99999'"),
        (["which-master", "-i", "db1:http"], "bad -i"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["-c", "frobnicate", "-i", "db1"], "unknown command 'frobnicate'"),
        (["clusters", "--frob"], "unknown flag '--frob'"),
        (["clusters", "-d", "db2"], "clusters does not take -d"),
        (["begin-downtime", "-i", "db3", "--reason", "x", "--duration", "soon"],
         "bad --duration"),
        (["register-candidate", "-i", "db3", "--promotion-rule", "maybe"],
         "bad --promotion-rule"),
        ([], "no command given"),
    ]
    for args, msg in cases:
        rc, out, err, took = run(orchctl, *args, api="http://127.0.0.1:1")
        assert rc == EXIT_USAGE, (args, rc, err)
        assert msg in err, (args, err)
        assert out == "", (args, out)
        assert took < 1.0  # no network for a usage error
    rc, _, err, _ = run(orchctl, "clusters", api="https://orch:3000")
    assert rc == EXIT_USAGE and "https is not supported" in err, err

    # help: the list of commands, and every command's own help, two ways
    rc, out, _, _ = run(orchctl, "help")
    assert rc == 0
    commands = re.findall(r"^  ([a-z][a-z-]+)  +\S", out.split("\nFlags:")[0], re.M)
    for name in ("clusters", "topology", "which-master", "relocate", "begin-downtime",
                 "graceful-master-takeover", "agent-key", "replication-analysis"):
        assert name in commands, name
    for section in ("Flags:", "Environment:", "Exit codes:", "Examples:", "ORCH_API"):
        assert section in out
    for name in commands:
        rc1, out1, _, _ = run(orchctl, name, "--help")
        rc2, out2, _, _ = run(orchctl, "help", name)
        assert rc1 == rc2 == 0 and out1 == out2 and out1.startswith("Usage: orchctl " + name)
    # the bash completion knows the same commands, and parses
    text = COMPLETION.read_text()
    listed = re.search(r'_orchctl_commands="([^"]*)"', text).group(1).split()
    assert set(commands) <= set(listed), set(commands) - set(listed)
    assert set(listed) - set(commands) <= {"which-instance"}
    subprocess.run(["bash", "-n", str(COMPLETION)], check=True)
    rc, out, _, _ = run(orchctl, "version")
    assert rc == 0 and out.startswith("orchctl ")


def test_no_api_reachable(orchctl, port_block):
    closed = [port_block + k for k in range(3)]
    rc, out, err, took = run(orchctl, "clusters", api=f"http://127.0.0.1:{closed[0]}")
    assert rc == EXIT_UNREACHABLE, err
    assert "cannot reach the API" in err and "Connection refused" in err, err
    assert out == ""
    three = " ".join(f"http://127.0.0.1:{p}" for p in closed)
    rc, _, err, took = run(orchctl, "topology", "-a", "x", api=three)
    assert rc == EXIT_UNREACHABLE and "no coordinator reachable" in err, err
    for p in closed:
        assert f"127.0.0.1:{p}" in err
    assert took < 1.0, took

    # a listener that never answers: the timeout ends the wait
    with socket.socket() as s:
        s.bind(("127.0.0.1", port_block + 5))
        s.listen(8)
        rc, _, err, took = run(orchctl, "clusters", "--timeout", "400ms",
                               api=f"http://127.0.0.1:{port_block + 5}")
        assert rc == EXIT_UNREACHABLE and "no answer within 400 ms" in err, err
        assert 0.35 < took < 2.0, took
        # as one of several, it costs the leader check's 300 ms at most
        silent_and_closed = f"http://127.0.0.1:{port_block + 5} http://127.0.0.1:{closed[0]}"
        rc, _, err, took = run(orchctl, "clusters", "--timeout", "5s", api=silent_and_closed)
        assert rc == EXIT_UNREACHABLE and "no coordinator reachable" in err, err
        assert "no answer within 300 ms" in err, err
        assert took < 1.5, took


def test_agent_key_matches_hmac(orchctl, tmp_dir):
    secret = "s3cret fleet-secret with spaces"
    for host in ("db1.example.com", "127.0.0.1", "h", "DB-2"):
        want = hmac.new(secret.encode(), b"orch-agent:" + host.encode(),
                        hashlib.sha256).hexdigest()
        rc, out, err, _ = run(orchctl, "agent-key", host, env={"ORCH_FLEET_SECRET": secret})
        assert rc == 0 and out == want + "\n", (host, out, err)
        assert err == ""
    # from a file: one trailing newline is not part of the secret, as for the coordinator
    f = Path(tmp_dir) / "fleet.secret"
    f.write_text(secret + "\n")
    f.chmod(0o600)
    want = hmac.new(secret.encode(), b"orch-agent:db9", hashlib.sha256).hexdigest()
    rc, out, err, _ = run(orchctl, "agent-key", "db9", "--fleet-secret-file", str(f))
    assert rc == 0 and out.strip() == want and err == "", err
    f.chmod(0o644)
    rc, out, err, _ = run(orchctl, "agent-key", "db9", "--fleet-secret-file", str(f))
    assert rc == 0 and out.strip() == want
    assert "may be read by group or others" in err, err
    rc, _, err, _ = run(orchctl, "agent-key", "db9")
    assert rc == EXIT_USAGE and "needs the fleet secret" in err
    rc, _, err, _ = run(orchctl, "agent-key", "db9", "--fleet-secret-file", "/nonexistent")
    assert rc == EXIT_USAGE and "cannot open" in err


# ---- against real coordinators ---------------------------------------------------


def test_read_commands_against_the_sandbox(orchctl, sandbox, make_orch):
    orch = make_orch(sandbox)
    leader = orch.leader()
    api = apis(orch)
    wait_sees(orch, sandbox, leader)
    primary = key(sandbox.primary)
    replicas = sorted(key(s) for s in sandbox.replicas)
    everyone = sorted([primary] + replicas)

    def ok(*args, **kw):
        rc, out, err, _ = run(orchctl, *args, api=kw.get("api", api))
        assert rc == 0, (args, rc, err)
        assert err == "", (args, err)
        return out

    assert lines(ok("clusters")) == [primary]
    assert lines(ok("clusters-alias")) == [f"{primary},{primary}"]
    assert lines(ok("-c", "clusters")) == [primary]
    assert lines(ok("clusters", "--api", orch.url(leader), api="http://127.0.0.1:1")) == [primary]

    # the tree: the master first, then every replica under it, all healthy
    topo = lines(ok("topology", "-i", primary))
    assert topo[0].startswith(primary + " ") and "ok" in topo[0] and ",rw," in topo[0]
    assert sorted(t.split()[1] for t in topo[1:]) == replicas
    for t in topo[1:]:
        assert t.startswith("+ ") and ",ro," in t and "GTID" in t, t
    assert "\033[" not in "".join(topo)  # piped: no colour
    assert lines(ok("topology", "-a", primary)) == topo
    assert lines(ok("-c", "topology", "-i", replicas[0])) == topo  # any member names it
    tab = lines(ok("topology-tabulated", "-a", primary))
    assert tab[0].split()[:3] == ["INSTANCE", "AGENT", "LAG"]
    assert tab[1].split()[:2] == [primary, "UP"]
    assert sorted(r.split()[1] for r in tab[2:]) == replicas

    assert lines(ok("instance", "-i", primary)) == [primary]
    assert lines(ok("which-instance", "-i", primary)) == [primary]
    for r in replicas:
        assert lines(ok("which-master", "-i", r)) == [primary]
    assert ok("which-master", "-i", primary) == ""
    assert sorted(lines(ok("which-replicas", "-i", primary))) == replicas
    assert ok("which-replicas", "-i", replicas[0]) == ""
    assert ok("which-broken-replicas", "-i", primary) == ""
    assert lines(ok("which-cluster", "-i", replicas[1])) == [primary]
    assert lines(ok("which-cluster-alias", "-i", replicas[1])) == [primary]
    assert lines(ok("which-cluster-master", "-a", primary)) == [primary]
    assert sorted(lines(ok("which-cluster-instances", "-i", primary))) == everyone
    assert sorted(lines(ok("all-instances"))) == everyone
    assert lines(ok("all-clusters-masters")) == [primary]
    assert sorted(lines(ok("search", "-i", "127.0.0"))) == everyone
    assert ok("problems") == ""
    name = f"c{leader + 1}"
    assert ok("leader").split()[:2] == [name, orch.url(leader)]
    assert lines(ok("which-api")) == [orch.url(leader)]
    assert json.loads(ok("api", "clusters")) == [primary]
    assert "orch_api_requests_total" in ok("api", "/metrics")

    # --json: what the API said, parseable, the same facts
    assert [c["ClusterName"] for c in json.loads(ok("clusters", "--json"))] == [primary]
    inst = json.loads(ok("instance", "-i", replicas[0], "--json"))
    assert inst["MasterKey"] == {"Hostname": "127.0.0.1", "Port": sandbox.primary.port}
    members = json.loads(ok("topology", "-a", primary, "--json"))
    assert sorted(f'{m["Key"]["Hostname"]}:{m["Key"]["Port"]}' for m in members) == everyone
    for args in (["which-replicas", "-i", primary], ["all-instances"], ["leader"],
                 ["which-cluster", "-i", primary], ["topology-tabulated", "-a", primary]):
        json.loads(ok(*args, "--json"))

    # not found: exit 5 with the API's message
    rc, out, err, _ = run(orchctl, "which-master", "-i", "127.0.0.1:1", api=api)
    assert rc == EXIT_NOTFOUND and "Cannot read instance: 127.0.0.1:1" in err and out == ""
    rc, _, err, _ = run(orchctl, "topology", "-a", "nosuchcluster", api=api)
    assert rc == EXIT_NOTFOUND and "Unable to determine cluster name" in err, err
    rc, _, err, _ = run(orchctl, "api", "instance/127.0.0.1/1", api=api)
    assert rc == EXIT_NOTFOUND

    # write commands, carried out by the leader on the real servers
    assert json.loads(ok("replication-analysis", "--json"))["Code"] == "OK"
    ok("begin-downtime", "-i", replicas[0], "--reason", "disk swap", "--duration", "1h")
    wait_until(lambda: json.loads(ok("instance", "-i", replicas[0], "--json"))["IsDowntimed"], 5,
               "the downtime to show")
    ok("end-downtime", "-i", replicas[0])
    wait_until(lambda: not json.loads(ok("instance", "-i", replicas[0], "--json"))["IsDowntimed"],
               5, "the downtime to end")
    assert lines(ok("relocate", "-i", replicas[0], "-d", replicas[1])) == [
        f"{replicas[0]}<{replicas[1]}"]
    wait_until(lambda: lines(ok("which-master", "-i", replicas[0])) == [replicas[1]], 10,
               "the relocated replica below its sibling")
    ok("relocate", "-i", replicas[0], "-d", primary)
    wait_until(lambda: lines(ok("which-master", "-i", replicas[0])) == [primary], 10,
               "the replica back below the primary")

    # every replica of the primary but one below that one, and back up
    moved = sorted(lines(ok("relocate-replicas", "-i", primary, "-d", replicas[0])))
    assert moved == sorted(replicas[1:]), moved
    wait_until(lambda: sorted(lines(ok("which-replicas", "-i", replicas[0]))) == moved, 10,
               "the replicas below replicas[0]")
    assert sorted(lines(ok("move-up-replicas", "-i", replicas[0]))) == moved
    wait_until(lambda: sorted(lines(ok("which-replicas", "-i", primary))) == sorted(replicas), 10,
               "every replica back below the primary")
    # refused by the leader: exit 6 with its reason
    rc, out, err, _ = run(orchctl, "move-up-replicas", "-i", replicas[0], api=api)
    assert rc == EXIT_REFUSED and out == "" and "has no replicas to move" in err, err
    rc, out, err, _ = run(orchctl, "relocate", "-i", primary, "-d", replicas[0], api=api)
    assert rc == EXIT_REFUSED and "cycle" in err, err
    r0 = replicas[0].split(":")
    # --dry-run says what would be sent, to the leader, and sends nothing
    rc, out, err, _ = run(orchctl, "graceful-master-takeover", "-a", primary, "-d", replicas[0],
                          "--dry-run", api=api)
    assert rc == 0 and out.strip() == (f"GET {orch.url(leader)}/api/graceful-master-takeover/"
                                       f"127.0.0.1%3A{sandbox.primary.port}/{r0[0]}/{r0[1]}")

    # a replica broken by a duplicate key: which-broken-replicas, problems and the tree say so
    sandbox.sql("db1", "CREATE DATABASE orchctl_t")
    sandbox.sql("db1", "CREATE TABLE orchctl_t.t (id INT PRIMARY KEY)")
    victim = sandbox.replicas[-1]
    wait_until(lambda: victim.value("SELECT COUNT(*) FROM information_schema.tables "
                                    "WHERE table_schema = 'orchctl_t'") == 1, 10, "the table")
    conn = victim.connect()
    try:
        with conn.cursor() as c:
            c.execute("SET SESSION sql_log_bin = 0")
            c.execute("INSERT INTO orchctl_t.t VALUES (1)")
        conn.commit()
    finally:
        conn.close()
    sandbox.sql("db1", "INSERT INTO orchctl_t.t VALUES (1)")
    wait_until(lambda: lines(ok("which-broken-replicas", "-i", primary)) == [key(victim)], 15,
               "the broken replica to show")
    assert lines(ok("problems")) == [f"{key(victim)}: not_replicating"]
    bad = [t for t in lines(ok("topology", "-a", primary)) if key(victim) in t]
    assert bad[0].startswith("- ") and "nonreplicating" in bad[0]

    # colour on a terminal, none with NO_COLOR, none when piped (above)
    def on_tty(extra_env):
        master, slave = pty.openpty()
        env = clean_env(ORCH_API=api, TERM="xterm", **extra_env)
        p = subprocess.Popen([str(orchctl), "topology", "-a", primary], stdout=slave,
                             stderr=subprocess.PIPE, env=env)
        os.close(slave)
        data = b""
        while True:
            r, _, _ = select.select([master], [], [], 5)
            if not r:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        p.wait(10)
        os.close(master)
        assert p.returncode == 0
        return data.decode()
    coloured = on_tty({})
    assert "\033[31m- \033[0m" in coloured and "\033[32mok\033[0m" in coloured, coloured
    assert "\033[" not in on_tty({"NO_COLOR": "1"})


def test_write_command_families(orchctl, sandbox, make_orch):
    """Each family of write commands through orchctl, checked on the real
    servers: topology operations, replication switches, downtime, maintenance
    and candidates, recoveries (switch, takeovers, a failover, its audit and
    acknowledgement). Some go to a follower alone, which forwards them."""
    orch = make_orch(sandbox)
    leader = orch.leader()
    api = apis(orch)
    follower = orch.url(next(i for i in sorted(orch.procs) if i != leader))
    wait_sees(orch, sandbox, leader)
    db = {n: key(sandbox.servers[n]) for n in ("db1", "db2", "db3", "db4")}

    def ok(*args, at=api):
        rc, out, err, _ = run(orchctl, *args, api=at)
        assert rc == 0 and err == "", (args, rc, err)
        return lines(out)

    def refused(*args, want):
        rc, out, err, _ = run(orchctl, *args, api=api)
        assert rc == EXIT_REFUSED and out == "" and want in err, (args, rc, err)

    def below(name, master):
        wait_until(lambda: ok("which-master", "-i", db[name]) == [db[master]], 10,
                   f"{name} below {master}")

    def replicating(name):
        st = sandbox.servers[name].slave_status()
        return st and st["Slave_IO_Running"] == "Yes" and st["Slave_SQL_Running"] == "Yes"

    # topology operations: each prints "instance<its new master"
    assert ok("relocate", "-i", db["db4"], "-d", db["db3"]) == [f'{db["db4"]}<{db["db3"]}']
    below("db4", "db3")
    assert ok("move-up", "-i", db["db4"], at=follower) == [f'{db["db4"]}<{db["db1"]}']
    below("db4", "db1")
    assert ok("move-below", "-i", db["db4"], "-d", db["db3"]) == [f'{db["db4"]}<{db["db3"]}']
    below("db4", "db3")
    assert ok("take-master", "-i", db["db4"]) == [f'{db["db4"]}<{db["db1"]}']
    below("db3", "db4")
    assert ok("repoint", "-i", db["db3"], "-d", db["db1"]) == [f'{db["db3"]}<{db["db1"]}']
    below("db3", "db1")
    refused("move-below", "-i", db["db2"], "-d", db["db2"], want="it is the instance itself")

    # replication switches
    assert ok("stop-replica", "-i", db["db2"], at=follower) == [db["db2"]]
    assert not replicating("db2")
    assert ok("start-replica", "-i", db["db2"]) == [db["db2"]]
    assert replicating("db2")  # answered once both threads run
    assert ok("restart-replica", "-i", db["db2"]) == [db["db2"]]
    assert replicating("db2")
    assert ok("set-read-only", "-i", db["db1"]) == [db["db1"]]
    assert sandbox.servers["db1"].value("SELECT @@read_only") == 1
    assert ok("set-writeable", "-i", db["db1"]) == [db["db1"]]
    assert sandbox.servers["db1"].value("SELECT @@read_only") == 0
    refused("set-writeable", "-i", db["db2"], want="only a cluster's top is made writable")

    # downtime, maintenance, candidates
    def inst(name):
        return json.loads("".join(ok("instance", "-i", db[name], "--json")))

    ok("begin-maintenance", "-i", db["db2"], "--reason", "kernel upgrade", "--owner", "ops")
    # an operation refuses the instance, in the registry or (not seen yet) in the backend
    rc, out, err, _ = run(orchctl, "relocate", "-i", db["db2"], "-d", db["db3"], api=api)
    assert rc == EXIT_REFUSED and out == "", (rc, err)
    assert "is in maintenance by ops" in err or "another owner holds the lock" in err, err
    wait_until(lambda: inst("db2")["Orch"]["MaintenanceOwner"] == "ops", 5, "the lock to show")
    refused("relocate", "-i", db["db2"], "-d", db["db3"], want="is in maintenance by ops")
    refused("begin-maintenance", "-i", db["db2"], "--reason", "mine", "--owner", "dev",
            want="another owner holds the lock")
    ok("end-maintenance", "-i", db["db2"])
    wait_until(lambda: not inst("db2")["Orch"]["InMaintenance"], 5, "the lock released")
    ok("register-candidate", "-i", db["db3"], "--promotion-rule", "prefer", at=follower)
    wait_until(lambda: inst("db3")["PromotionRule"] == "prefer", 5, "the rule to show")
    ok("begin-downtime", "-i", db["db4"], "--reason", "reimage", "--duration", "30m")
    wait_until(lambda: inst("db4")["IsDowntimed"], 5, "the downtime to show")
    ok("end-downtime", "-i", db["db4"])

    # recoveries: the global switch
    assert ok("check-global-recoveries") == ["enabled"]
    ok("disable-global-recoveries")
    assert ok("check-global-recoveries") == ["disabled"]
    ok("enable-global-recoveries")
    assert ok("check-global-recoveries") == ["enabled"]
    # planned takeovers: orch picks the registered candidate, then back to db1
    cluster = db["db1"]
    refused("graceful-master-takeover", "-a", cluster, want="graceful-master-takeover-auto")
    assert ok("graceful-master-takeover-auto", "-a", cluster) == [db["db3"]]
    below("db1", "db3")
    assert ok("graceful-master-takeover", "-a", db["db3"], "-d", db["db1"]) == [db["db1"]]
    below("db3", "db1")
    # an unplanned failover: kill -9 of the primary, then its audit and acknowledgement
    for n in ("db2", "db3", "db4"):
        below(n, "db1")
    sandbox.kill("db1", signal.SIGKILL)
    wait_until(lambda: any(r.endswith("ok") for r in ok("audit-recovery")
                           if "DeadMaster" in r), 15, "the failover in audit-recovery")
    assert ok("which-cluster-master", "-i", db["db2"]) == [db["db3"]]
    dead = [r for r in ok("audit-recovery") if "DeadMaster" in r]
    assert len(dead) == 1 and f'{db["db1"]} -> {db["db3"]}' in dead[0], dead
    assert ok("ack-cluster-recoveries", "-i", db["db3"], "--reason", "db1 disk died") == ["1"]
    assert ok("ack-all-recoveries", "--reason", "all seen") == ["0"]
    assert [r for r in ok("audit-recovery") if "DeadMaster" in r][0].endswith("ok acked")
    # force-master-takeover: the healthy master db3 hands over to db2 now; db3 is fenced
    assert ok("force-master-takeover", "-a", db["db3"], "-d", db["db2"]) == [db["db2"]]
    wait_until(lambda: ok("which-cluster-master", "-i", db["db4"]) == [db["db2"]], 10,
               "db4 in db2's cluster")
    assert sandbox.servers["db2"].value("SELECT @@read_only") == 0
    assert sandbox.servers["db3"].value("SELECT @@read_only") == 1
    assert any("ForceMasterTakeover" in r and r.endswith("ok") for r in ok("audit-recovery"))
    refused("force-master-takeover", "-a", db["db2"], "-d", db["db3"],
            want="is not a direct replica")

    # forget: db3 (fenced, out of replication) is decommissioned: its agent stops,
    # every coordinator drops it; an agent reporting again brings it back
    orch.agents.stop_one("db3")
    assert ok("forget", "-i", db["db3"], at=follower) == [db["db3"]]
    wait_until(lambda: all(db["db3"] not in orch.instances(i) for i in orch.procs), 5,
               "every coordinator to drop db3")
    rc, _, err, _ = run(orchctl, "instance", "-i", db["db3"], api=api)
    assert rc == EXIT_NOTFOUND, err
    orch.agents.start_one("db3")
    wait_until(lambda: all(db["db3"] in orch.instances(i) for i in orch.procs), 10,
               "db3 back once its agent reports")


def test_three_urls_find_the_leader_and_survive_its_loss(orchctl, sandbox, make_orch):
    orch = make_orch(sandbox)
    leader = orch.leader()
    wait_sees(orch, sandbox, leader)
    primary = key(sandbox.primary)
    # the leader is found wherever it is in the list
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        api = " ".join(orch.url(i) for i in order)
        rc, out, err, took = run(orchctl, "which-api", api=api)
        assert rc == 0 and out.strip() == orch.url(leader), (order, out, err)
        assert took < 1.0

    api = apis(orch)
    want_topo = run(orchctl, "topology", "-a", primary, api=api)[1]

    # the leader stopped (SIGSTOP): connects, never answers; reads go to a follower
    # after the 300 ms leader check
    orch.procs[leader].send_signal(signal.SIGSTOP)
    try:
        rc, out, err, took = run(orchctl, "clusters", api=api)
        assert rc == 0 and lines(out) == [primary], err
        assert took < 2.0, took
        rc, out, err, _ = run(orchctl, "which-api", api=api)
        assert out.strip() != orch.url(leader)
        # a write needs the leader: with none answering, exit 4 before anything is sent
        rc, out, err, _ = run(orchctl, "recover", "-i", primary, api=api)
        if rc == EXIT_UNREACHABLE:  # unless a follower has taken over by now
            assert "no coordinator says it is the leader" in err, err
    finally:
        orch.procs[leader].send_signal(signal.SIGCONT)

    # the leader killed: reads keep working through the followers at once
    orch.kill_coordinator(leader)
    t_kill = time.monotonic()
    rc, out, err, took = run(orchctl, "topology", "-a", primary, api=api)
    assert rc == 0, err
    assert out == want_topo
    assert lines(run(orchctl, "clusters", api=api)[1]) == [primary]
    assert took < 1.5, took  # refused at once: no wait for the dead one
    # ... and a new leader is found once elected
    new = orch.leader(15, other_than=leader)
    rc, out, _, _ = run(orchctl, "which-api", api=api)
    assert out.strip() == orch.url(new)
    rc, out, _, _ = run(orchctl, "leader", api=api)
    assert out.split()[:2] == [f"c{new + 1}", orch.url(new)]
    print(f"new leader c{new + 1} {time.monotonic() - t_kill:.2f} s after the kill")


def test_credentials(orchctl, sandbox, make_orch, tmp_dir):
    user, password = "ops", "hunter2"
    orch = make_orch(sandbox, start=False, coordinators=1, agents=False, auth_mode="basic",
                     auth_user=user, auth_password=password)
    # OrchCluster waits for /api/health without credentials; give it ours
    orch.get = lambda i, path, **kw: OrchCluster.get(orch, i, path, auth=(user, password), **kw)
    orch.start()
    api = orch.url(0)

    rc, out, err, _ = run(orchctl, "clusters", api=api)
    assert rc == EXIT_AUTH and out == ""
    assert "credentials needed" in err and "ORCH_AUTH_USER" in err, err
    rc, _, err, _ = run(orchctl, "clusters", api=api,
                        env={"ORCH_AUTH_USER": user, "ORCH_AUTH_PASSWORD": "wrong"})
    assert rc == EXIT_AUTH and "Unauthorized" in err, err
    rc, out, err, _ = run(orchctl, "leader", api=api,
                          env={"ORCH_AUTH_USER": user, "ORCH_AUTH_PASSWORD": password})
    assert rc == 0 and out.startswith("c1 "), err
    # with several URLs the leader check carries the credentials too
    rc, _, err, _ = run(orchctl, "clusters", api=f"{api} {api}",
                        env={"ORCH_AUTH_USER": user, "ORCH_AUTH_PASSWORD": "wrong"})
    assert rc == EXIT_AUTH and "credentials refused" in err, err
    rc, _, err, _ = run(orchctl, "clusters", api=f"{api} {api}",
                        env={"ORCH_AUTH_USER": user, "ORCH_AUTH_PASSWORD": password})
    assert rc == 0, err

    f = Path(tmp_dir) / "orchctl.auth"
    f.write_text(f"{user}:{password}\n")
    f.chmod(0o600)
    rc, out, err, _ = run(orchctl, "which-api", "--auth-file", str(f), api=f"{api} {api}")
    assert rc == 0 and err == "", err
    rc, out, err, _ = run(orchctl, "api", "health", "--auth-file", str(f), api=api)
    assert rc == 0 and json.loads(out)["Code"] == "OK" and err == ""
    # the file wins over the environment
    rc, _, err, _ = run(orchctl, "leader", "--auth-file", str(f), api=api,
                        env={"ORCH_AUTH_USER": "nobody", "ORCH_AUTH_PASSWORD": "x"})
    assert rc == 0, err
    f.chmod(0o644)
    rc, _, err, _ = run(orchctl, "leader", "--auth-file", str(f), api=api)
    assert rc == 0 and "may be read by group or others" in err, err
    f.write_text("no colon here\n")
    f.chmod(0o600)
    rc, _, err, _ = run(orchctl, "leader", "--auth-file", str(f), api=api)
    assert rc == EXIT_USAGE and "user:password" in err, err
