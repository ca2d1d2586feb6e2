"""orch-coordinator pools against a real backend, real agents and real
MariaDB servers: election with epochs, the shared picture, backend loss,
forged and stale reports."""

import signal
import subprocess
import threading
import time


from orchcluster import SECRET
from orchtest import binary, wait_until


def topology_of(orch, i):
    """{instance: master or None} as coordinator I sees it."""
    return {k: (f'{v["MasterKey"]["Hostname"]}:{v["MasterKey"]["Port"]}'
                if v["MasterKey"]["Hostname"] else None)
            for k, v in orch.instances(i).items()}


def real_topology(sb):
    out = {}
    for s in sb.servers.values():
        if s.role == "backend":
            continue
        st = s.slave_status()
        out[f"127.0.0.1:{s.port}"] = f"127.0.0.1:{st['Master_Port']}" if st else None
    return out


def test_three_coordinators_elect_one_leader_and_share_the_picture(sandbox, make_orch):
    orch = make_orch(sandbox)
    leader = orch.leader()
    want = real_topology(sandbox)
    for i in range(3):
        wait_until(lambda: topology_of(orch, i) == want, 15,
                   f"coordinator c{i + 1} to see the sandbox's topology {want}")
        status, clusters = orch.get(i, "/api/clusters")
        assert status == 200 and clusters == [f"127.0.0.1:{sandbox.primary.port}"]
    epochs = {orch.get(i, "/api/status")[1]["Details"]["Orch"]["Epoch"] for i in range(3)
              if isinstance(orch.get(i, "/api/status")[1], dict)}
    assert len(epochs) == 1, epochs
    # followers answer 404 to leader-check, the leader 200
    for i in range(3):
        assert orch.get(i, "/api/leader-check")[0] == (200 if i == leader else 404)


def test_leader_killed_new_leader_higher_epoch_never_two(sandbox, make_orch):
    orch = make_orch(sandbox, agents=False)
    leader = orch.leader()
    epoch0 = orch.get(leader, "/api/status")[1]["Details"]["Orch"]["Epoch"]
    seen_two, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            up = [i for i in list(orch.procs) if orch.get(i, "/api/leader-check",
                                                          timeout=0.5)[0] == 200]
            if len(up) > 1:
                seen_two.append(up)
            time.sleep(0.02)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        orch.kill_coordinator(leader)
        new = orch.leader(10, other_than=leader)
        took = time.monotonic() - t0
        epoch1 = orch.get(new, "/api/status")[1]["Details"]["Orch"]["Epoch"]
        print(f"leader killed -> new leader c{new + 1} after {took:.2f} s "
              f"(lease 1.5 s + interval 0.3 s); epoch {epoch0} -> {epoch1}")
        assert epoch1 > epoch0
        assert took < 1.5 + 0.3 + 1.5, took  # lease + interval + slack for a busy machine
        orch.start_coordinator(leader)  # the old one comes back as a follower
        time.sleep(1.0)
    finally:
        stop.set()
        t.join()
    assert not seen_two, f"two leaders at once: {seen_two[:3]}"
    assert orch.leaders() == [new]


def test_backend_down_leader_steps_down_reads_continue(sandbox, make_orch):
    orch = make_orch(sandbox)
    orch.leader()
    for i in range(3):  # every node has heard every agent before the backend hangs
        wait_until(lambda i=i: len(orch.instances(i)) == 4, 15, f"four instances on c{i + 1}")
    sandbox.kill("backend", signal.SIGSTOP)   # a backend that hangs, the harder case
    try:
        t0 = time.monotonic()
        wait_until(lambda: orch.leaders() == [], 10, "the leader to step down")
        print(f"backend hung -> no leader after {time.monotonic() - t0:.2f} s "
              f"(lease 1.5 s - margin 0.4 s + interval 0.3 s)")
        for i in range(3):
            status, body = orch.get(i, "/api/clusters")
            assert status == 200 and len(body) == 1, (i, status, body)
            assert len(orch.instances(i)) == 4
            # each node notices once its own last good round is older than
            # lease - margin (followers' last rounds may be a little newer)
            wait_until(lambda: orch.get(i, "/api/health")[0] == 500, 5,
                       f"c{i + 1}'s /api/health to report the backend down")
        metrics = orch.get(0, "/metrics")[1]
        lines = set(metrics.splitlines())
        assert "orch_backend_up 0" in lines and "orch_leader 0" in lines, \
            [m for m in lines if m.startswith(("orch_backend_up", "orch_leader"))]
    finally:
        sandbox.kill("backend", signal.SIGCONT)
    orch.leader(15)
    wait_until(lambda: orch.get(0, "/api/health")[0] == 200, 10, "health to recover")


def test_forged_and_stale_reports_are_rejected_and_counted(sandbox, make_orch):
    orch = make_orch(sandbox, coordinators=1)
    orch.leader()
    wait_until(lambda: len(orch.instances(0)) == 4, 15, "four instances")
    # a fleet simulator with the wrong secret: every report fails authentication
    sim = subprocess.run([str(binary("orch-fleetsim")), "--url", orch.report_url(0),
                          "--secret", "not-the-fleet-secret", "--hosts", "20",
                          "--interval-ms", "200", "--seconds", "2", "--sockets", "1"],
                         capture_output=True, text=True, timeout=30)
    assert '"done":true' in sim.stdout, sim.stderr
    metrics = orch.get(0, "/metrics")[1]
    rejected = [l for l in metrics.splitlines()
                if l.startswith('orch_reports_rejected_total{reason="auth"}')]
    assert rejected and float(rejected[0].split()[-1]) >= 100, rejected
    assert "sim-" not in str(orch.get(0, "/api/all-instances")[1])
    # the right secret: 20 new instances in 5 clusters
    subprocess.run([str(binary("orch-fleetsim")), "--url", orch.report_url(0), "--secret", SECRET,
                    "--hosts", "20", "--interval-ms", "200", "--seconds", "2", "--sockets", "1"],
                   capture_output=True, text=True, timeout=30, check=True)
    wait_until(lambda: len(orch.instances(0)) == 24, 10, "the simulated instances")
    status, clusters = orch.get(0, "/api/clusters")
    assert len(clusters) == 6, clusters
    log = orch.log_path(0).read_text()
    assert "ORCH-REPORT-REJECTED" in log and "auth" in log
    # stale: the same agents (same boot ids) again, their sequences starting at
    # 1: every report is older than what the coordinator holds
    def counter(reason):
        for line in orch.get(0, "/metrics")[1].splitlines():
            if line.startswith(f'orch_reports_rejected_total{{reason="{reason}"}}'):
                return float(line.split()[-1])
        return 0.0
    args = [str(binary("orch-fleetsim")), "--url", orch.report_url(0), "--secret", SECRET,
            "--hosts", "8", "--interval-ms", "100", "--sockets", "1", "--prefix", "stale",
            "--boot-seed", "7"]
    subprocess.run(args + ["--seconds", "3"], capture_output=True, timeout=30, check=True)
    wait_until(lambda: len(orch.instances(0)) == 32, 10, "the 'stale-' instances")
    before = counter("replay")
    subprocess.run(args + ["--seconds", "1"], capture_output=True, timeout=30, check=True)
    wait_until(lambda: counter("replay") >= before + 50, 5, "replayed reports counted")
    assert orch.get(0, "/api/leader-check")[0] == 200  # nothing broke


def test_unknown_routes_and_bad_arguments(sandbox, make_orch):
    orch = make_orch(sandbox, coordinators=1, agents=False)
    orch.leader()
    assert orch.get(0, "/api/no-such-route")[0] == 404
    assert orch.get(0, "/api/instance/127.0.0.1/notaport")[0] == 400
    assert orch.get(0, "/api/instance/127.0.0.1/1")[0] == 404
    assert orch.get(0, "/api/cluster/nothing-like-this")[0] == 404
    assert orch.get(0, "/api/clusters/" + "x" * 5000)[0] == 414


def test_coordinator_config_errors_and_insecure_refusal(tmp_dir):
    path = f"{tmp_dir}/c.json"
    with open(path, "w") as f:
        f.write('{\n "lease_ms": 100,\n "auth_mode": "magic",\n "backend_port": 70000\n}\n')
    res = subprocess.run([str(binary("orch-coordinator")), "-c", path, "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 3, res
    for want in (f"{path}:2: key 'lease_ms'", f"{path}:3: key 'auth_mode'",
                 f"{path}:4: key 'backend_port'"):
        assert want in res.stderr, res.stderr
    # no fleet secret: refused, with the way out
    with open(path, "w") as f:
        f.write('{"backend_port": 3306}\n')
    res = subprocess.run([str(binary("orch-coordinator")), "-c", path, "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 3 and "fleet_secret" in res.stderr and "insecure" in res.stderr
    with open(path, "w") as f:
        f.write('{"insecure": true}\n')
    res = subprocess.run([str(binary("orch-coordinator")), "-c", path, "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
