"""Real orch-coordinators (and their agents) on a sandbox.

    orch = OrchCluster(sandbox, tmp_dir, ports, coordinators=3)
    orch.start()                         # coordinators, then one agent per server
    orch.wait_topology(...)              # poll the API
    orch.get(0, "/api/clusters")         # (status, parsed JSON or text) from coordinator 0
    orch.leader()                        # index of the coordinator that says 200 to leader-check

Coordinators use the sandbox's backend and run with short intervals so tests
are quick; every process is stopped by PID at the end.
"""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from orchagents import AgentSet, stop_pid
from orchtest import CREDENTIALS, binary, wait_until

SECRET = "orch-test-fleet-secret"


def http_get(url, timeout=2.0, auth=None):
    """GET URL -> (status, body parsed as JSON when possible)."""
    req = urllib.request.Request(url)
    if auth:
        import base64
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class OrchCluster:
    """COORDINATORS coordinators on ports BASE+10.., reports on BASE+20..,
    agents' commands on BASE+40.. (a block of 100 from the test's range).
    REPORT_HOST: the address the report listeners (and the agents' receiver)
    listen on; agents in a network namespace need one they can route to."""

    def __init__(self, sandbox, tmp_dir, port_block, coordinators=3, agents=True,
                 report_host="127.0.0.1", **coord_opts):
        self.sb, self.dir, self.base = sandbox, Path(tmp_dir), port_block
        self.report_host = report_host
        self.n = coordinators
        self.procs = {}
        self.opts = dict(election_interval_ms=300, lease_ms=1500, lease_margin_ms=400,
                         stale_after_ms=2000, write_interval_ms=300, operator_refresh_ms=300,
                         warmup_ms=2000, log_level="debug")
        self.opts.update(coord_opts)
        self.configs = [self._write_config(i) for i in range(coordinators)]
        self.agents = None
        if agents:
            self.agents = AgentSet(sandbox, tmp_dir, port_block + 40, secret=SECRET,
                                   coordinators=[self.report_url(i) for i in range(coordinators)],
                                   report_host=report_host)

    def http_port(self, i):
        return self.base + 10 + i

    def report_port(self, i):
        return self.base + 20 + i

    def report_url(self, i):
        return f"tcp://{self.report_host}:{self.report_port(i)}"

    def url(self, i, path=""):
        return f"http://127.0.0.1:{self.http_port(i)}{path}"

    def _write_config(self, i):
        b = self.sb.backend
        cfg = {
            "node": f"c{i + 1}",
            "fleet_secret": SECRET,
            "report_listen": self.report_url(i),
            "http_listen": f"127.0.0.1:{self.http_port(i)}",
            "backend_host": "127.0.0.1",
            "backend_port": b.port,
            "backend_user": CREDENTIALS["coordinator"]["user"],
            "backend_password": CREDENTIALS["coordinator"]["password"],
            **self.opts,
        }
        path = self.dir / f"coordinator-{i + 1}.json"
        path.write_text(json.dumps(cfg, indent=1))
        path.chmod(0o600)
        return path

    def log_path(self, i):
        return self.dir / f"coordinator-{i + 1}.log"

    def start_coordinator(self, i):
        log = open(self.log_path(i), "a")
        self.procs[i] = subprocess.Popen([str(binary("orch-coordinator")), "-c",
                                          str(self.configs[i])],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        log.close()
        wait_until(lambda: self.get(i, "/api/health")[0] in (200, 500), 15,
                   f"coordinator c{i + 1}'s API")

    def stop_coordinator(self, i, sig=signal.SIGTERM, timeout=10):
        proc = self.procs.pop(i, None)
        return stop_pid(proc, timeout=timeout, sig=sig) if proc else None

    def kill_coordinator(self, i):
        proc = self.procs.pop(i)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def start(self):
        for i in range(self.n):
            self.start_coordinator(i)
        if self.agents:
            self.agents.start()
        return self

    def stop(self):
        if self.agents:
            self.agents.stop()
        codes = {i: self.stop_coordinator(i) for i in list(self.procs)}
        return codes

    def get(self, i, path, **kw):
        try:
            return http_get(self.url(i, path), **kw)
        except OSError as e:
            return None, str(e)

    def leaders(self):
        """Indexes of running coordinators whose leader-check answers 200."""
        return [i for i in self.procs if self.get(i, "/api/leader-check")[0] == 200]

    def leader(self, timeout=15, other_than=None):
        """Index of the one leader (waits for exactly one, not OTHER_THAN)."""
        def one():
            found = self.leaders()
            ok = len(found) == 1 and found[0] != other_than
            return [found[0]] if ok else None  # a list: index 0 must count as found
        return wait_until(one, timeout, "exactly one leader")[0]

    def instances(self, i):
        status, body = self.get(i, "/api/all-instances")
        assert status == 200, body
        return {f'{x["Key"]["Hostname"]}:{x["Key"]["Port"]}': x for x in body}

    def logs(self):
        out = []
        for i in range(self.n):
            p = self.log_path(i)
            if p.exists():
                out.append(f"--- {p}\n" + "".join(p.read_text().splitlines(True)[-60:]))
        return "\n".join(out)
