"""Real orch-agents on a sandbox, and a real receiver of their reports.

    agents = AgentSet(sandbox, tmp_dir, port_block, secret="s3cret")
    agents.start()                       # one orch-agent per topology server
    r = agents.wait_report("db1", lambda r: r["state"] == "PROBE_UP")
    reply = agents.command("db2", "STOP_REPLICA", epoch=1, io_only=True)
    agents.stop()

The receiver is `orch-wiretool listen` (a sub socket, as a coordinator has): each
report arrives as one JSON line with the tool's verification verdict. Agents
and the receiver are processes started here and stopped by PID.

An agent of a server that runs in a network namespace (the sandbox's NETNS
option) runs in that namespace too, as on its own host: its identity is the
server's address, it takes commands on that address, and it reaches the
receiver and coordinators only if they listen on an address it can route to
(REPORT_HOST, e.g. the root end of the namespace's veth pair).
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from orchtest import CREDENTIALS, binary, sbx, wait_until
import hmac
import hashlib

AGENT_HOST = "127.0.0.1"


def up(report):
    """The agent says its server answers."""
    return report["state"] == "PROBE_UP"


def channel(report):
    """The report's first replication channel, or None."""
    chans = report.get("channels", [])
    return chans[0] if chans else None


def host_key(secret, host):
    """key(H) = HMAC-SHA256(fleet_secret, "orch-agent:" + H), as hex."""
    return hmac.new(secret.encode(), b"orch-agent:" + host.encode(), hashlib.sha256).hexdigest()


def tls_args(tls):
    """orch-wiretool options for a TLS dict {ca, cert, key} (server name localhost)."""
    if not tls:
        return []
    return ["--tls-ca", tls["ca"], "--tls-cert", tls["cert"], "--tls-key", tls["key"],
            "--tls-server-name", "localhost"]


def stop_pid(proc, timeout=10.0, sig=signal.SIGTERM):
    """Stops a Popen by its PID: SIG, wait up to TIMEOUT, then SIGKILL. Returns
    the exit code, or None when it had to be killed."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        dump_stacks(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def dump_stacks(pid):
    """Prints every thread's stack of a process that did not stop in time (when
    gdb is installed), so that a hang in a test run says where it was."""
    gdb = shutil.which("gdb")
    if gdb is None:
        print(f"pid {pid} did not stop in time (install gdb to see its stacks)")
        return
    r = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                       capture_output=True, text=True, timeout=60)
    print(f"pid {pid} did not stop in time; its threads:\n{r.stdout}")


class Receiver:
    """`orch-wiretool listen` in the background; collects reports by port."""

    def __init__(self, url, secret=None, tls=None):
        self.url, self.secret, self.tls = url, secret, tls
        self.lines, self.lock = [], threading.Lock()
        self.proc, self.thread = None, None

    def start(self):
        args = [str(binary("orch-wiretool")), "listen", "--url", self.url]
        args += ["--secret", self.secret] if self.secret else ["--insecure"]
        args += tls_args(self.tls)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            d["_t"] = time.monotonic()
            with self.lock:
                self.lines.append(d)

    def stop(self):
        if self.proc is not None:
            stop_pid(self.proc, timeout=5)
            self.thread.join(timeout=5)
            self.proc.stdout.close()
            self.proc.stderr.close()
            self.proc = None

    def all(self, port=None):
        with self.lock:
            return [d for d in self.lines
                    if port is None or d.get("report", {}).get("port") == port]

    def latest(self, port):
        got = self.all(port)
        return got[-1] if got else None


class AgentSet:
    """One orch-agent per sandbox topology server (not the backend)."""

    def __init__(self, sandbox, tmp_dir, port_block, secret="orch-test-secret", insecure=False,
                 probe_interval_ms=500, probe_timeout_ms=500, witness_timeout_ms=500,
                 report_interval_ms=1000, extra=None, tls=None, only=None, coordinators=None,
                 report_host="127.0.0.1"):
        """TLS: {ca, cert, key} makes every link tls+tcp:// (server name
        localhost). ONLY: start agents for these servers only. COORDINATORS:
        report URLs of real coordinators (the receiver then also listens, on
        its own port, for tests that read raw reports). REPORT_HOST: the
        address the receiver listens on."""
        self.sb, self.dir, self.tls = sandbox, Path(tmp_dir), tls
        self.scheme = "tls+tcp" if tls else "tcp"
        self.report_port = port_block
        self.report_url = f"{self.scheme}://{report_host}:{port_block}"
        self.secret = None if insecure else secret
        self.settings = dict(probe_interval_ms=probe_interval_ms,
                             probe_timeout_ms=probe_timeout_ms,
                             witness_timeout_ms=witness_timeout_ms,
                             report_interval_ms=report_interval_ms, **(extra or {}))
        self.coordinators = list(coordinators or [])
        self.procs, self.command_ports, self.configs = {}, {}, {}
        if tls:
            self.settings.update(tls_ca=tls["ca"], tls_cert=tls["cert"], tls_key=tls["key"],
                                 tls_server_name="localhost")
        self.receiver = Receiver(self.report_url, self.secret, tls)
        names = [s.name for s in self.sb.servers.values()
                 if s.role != "backend" and (only is None or s.name in only)]
        for i, name in enumerate(sorted(names)):
            self.command_ports[name] = port_block + 1 + i
            self.configs[name] = self._write_config(name)

    def host(self, name):
        """NAME's agent's identity: 127.0.0.1, or its server's address when the
        server runs in a network namespace (its own host)."""
        s = self.sb.servers[name]
        return s.host if s.netns else AGENT_HOST

    def _write_config(self, name):
        s = self.sb.servers[name]
        host = self.host(name)
        cfg = {
            "host": host,
            "mysql_socket": str(s.socket),
            "mysql_port": s.port,
            "mysql_user": CREDENTIALS["agent"]["user"],
            "mysql_password": CREDENTIALS["agent"]["password"],
            "replication_user": CREDENTIALS["repl"]["user"],
            "replication_password": CREDENTIALS["repl"]["password"],
            "coordinators": [self.report_url] + self.coordinators,
            "command_listen": f"{self.scheme}://{host}:{self.command_ports[name]}",
            "state_file": str(self.dir / f"agent-{name}.state"),
            "log_level": "debug",
            **self.settings,
        }
        if self.secret:
            cfg["host_key"] = host_key(self.secret, host)
        else:
            cfg["insecure"] = True
        path = self.dir / f"agent-{name}.json"
        path.write_text(json.dumps(cfg, indent=1))
        path.chmod(0o600)
        return path

    def log_path(self, name):
        return self.dir / f"agent-{name}.log"

    def start_one(self, name):
        log = open(self.log_path(name), "a")
        netns = self.sb.servers[name].netns
        # `ip netns exec` execs in place: the PID is the agent's
        prefix = [sbx.IP, "netns", "exec", netns] if netns else []
        self.procs[name] = subprocess.Popen(
            prefix + [str(binary("orch-agent")), "-c", str(self.configs[name])],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def start(self, receiver=True):
        if receiver:
            self.receiver.start()
        for name in self.configs:
            self.start_one(name)
        return self

    def stop_one(self, name, sig=signal.SIGTERM, timeout=10):
        proc = self.procs.pop(name, None)
        return stop_pid(proc, timeout=timeout, sig=sig) if proc else None

    def stop(self):
        codes = {name: self.stop_one(name) for name in list(self.procs)}
        self.receiver.stop()
        return codes

    def port(self, name):
        return self.sb.servers[name].port

    def latest(self, name):
        d = self.receiver.latest(self.port(name))
        return d["report"] if d else None

    def wait_report(self, name, pred, timeout=10, what=None):
        """Waits for a report from NAME's agent that satisfies PRED; returns it."""
        def check():
            d = self.receiver.latest(self.port(name))
            return d["report"] if d and pred(d["report"]) else None
        return wait_until(check, timeout, what or f"a report from {name} matching {pred}")

    def command(self, name, ctype, epoch, cid, secret=None, sign_host=None, target=None,
                timeout_ms=None, recv_timeout_ms=5000, scheme=None, **args):
        """Sends one signed command to NAME's agent; returns the parsed reply.
        SCHEME overrides the URL scheme (e.g. plain tcp against a TLS agent)."""
        scheme = scheme or self.scheme
        cmd = [str(binary("orch-wiretool")), "command",
               "--url", f"{scheme}://{self.host(name)}:{self.command_ports[name]}",
               "--host", self.host(name),
               "--epoch", str(epoch), "--id", str(cid), "--type", ctype,
               "--recv-timeout-ms", str(recv_timeout_ms)]
        s = secret if secret is not None else self.secret
        cmd += ["--secret", s] if s else ["--insecure"]
        if sign_host:
            cmd += ["--sign-host", sign_host]
        if target:
            cmd += ["--target", target]
        if scheme == "tls+tcp":
            cmd += tls_args(self.tls)
        if timeout_ms is not None:
            cmd += ["--timeout-ms", str(timeout_ms)]
        for k, v in args.items():
            flag = "--" + k.replace("_", "-")
            if v is True:
                cmd.append(flag)
            elif v is not False and v is not None:
                cmd += [flag, str(v)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.stdout, f"orch-wiretool printed nothing: {out.stderr}"
        return json.loads(out.stdout.splitlines()[-1])

    def logs(self):
        text = []
        for name in self.configs:
            p = self.log_path(name)
            if p.exists():
                text.append(f"--- {p}\n" + "".join(p.read_text().splitlines(True)[-40:]))
        return "\n".join(text)
