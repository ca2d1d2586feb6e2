#!/usr/bin/python3
"""orch's sandbox: real MariaDB servers on 127.0.0.1, started and stopped by PID.

A sandbox is one directory holding a BACKEND server (orch's own database, not
replicated) and a replication TOPOLOGY of servers using MariaDB GTID replication.
System tests (tests/system) and the demo (tests/sandbox/demo) both use it, as a
library (class Sandbox) or through the command line (`sandbox.py --help`).

Ports: a sandbox created with base port B uses B..B+99 and nothing else:

    B            backend
    B+1..B+N     the topology's servers, in breadth-first order from the primary

so sandboxes given bases 100 apart run side by side, and a caller may hand B+100..
to agents and coordinators of its own.

Directory layout (DIR is the sandbox directory):

    DIR/sandbox.json         state: servers, ports, pids, roles, masters,
                             credentials, paths, command lines
    DIR/<name>/data/         datadir (a copy of a cached template)
    DIR/<name>/mysqld.sock   unix socket (root@localhost, no password)
    DIR/<name>/mysqld.pid    pid file
    DIR/<name>/error.log     mariadbd's error log
    DIR/<name>/tmp/          tmpdir

Processes are found by the PID in the state file and are signalled only after
/proc/PID/cmdline shows they run on our datadir (through a pidfd, so a recycled
PID is never hit); liveness comes from /proc/PID/stat (gone or zombie = dead).

The datadir template is built once per MariaDB version and account recipe under
/var/tmp/orch-sandbox-template-<version>-<recipe hash> (override the parent with
ORCH_SANDBOX_TEMPLATE_ROOT), atomically: built in a temporary directory, then
renamed, so concurrent sandboxes never see a half-built one.

Must run under Debian's /usr/bin/python3 (python3-pymysql).
"""

import argparse
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import pymysql
    import pymysql.cursors
except ImportError as _e:  # pragma: no cover - depends on the interpreter
    raise ImportError(
        f"{_e}: the orch sandbox needs PyMySQL; run it with /usr/bin/python3 "
        "(Debian's python3-pymysql, installed by packaging/install-deps.sh)") from None

# ---------------------------------------------------------------------------
# Constants: credentials and layout. Tests and agent/coordinator configs take
# them from here (or from the "credentials" key of the state file).
# ---------------------------------------------------------------------------

#: Every account that exists on every sandbox server. root is reachable only over
#: the unix socket; the others from 'localhost' (socket) and '127.0.0.1' (TCP).
CREDENTIALS = {
    # root@localhost, no password, unix socket only.
    "root": {"user": "root", "password": ""},
    # Replicas connect to their master with this one (REPLICATION SLAVE).
    "repl": {"user": "orch_repl", "password": "orch_repl_pw"},
    # orch-agent's local account: what probes and recoveries need on 10.11.
    "agent": {"user": "orch_agent", "password": "orch_agent_pw"},
    # The coordinators' account on the backend: ALL on the `orch` schema.
    "coordinator": {"user": "orch", "password": "orch_pw", "database": "orch"},
    # Test and demo clients: ALL on everything.
    "test": {"user": "orch_test", "password": "orch_test_pw"},
}

#: Privileges of the agent account. On 10.11 SUPER no longer covers SET GLOBAL
#: read_only (READ_ONLY ADMIN) nor SHOW SLAVE HOSTS (REPLICATION MASTER ADMIN);
#: CONNECTION ADMIN lets fencing kill client connections; BINLOG ADMIN lets a
#: recovery purge or reset binary logs.
AGENT_PRIVILEGES = ("SUPER, READ_ONLY ADMIN, REPLICATION MASTER ADMIN, "
                    "REPLICATION SLAVE ADMIN, BINLOG MONITOR, BINLOG ADMIN, "
                    "SLAVE MONITOR, PROCESS, CONNECTION ADMIN, RELOAD")

BACKEND = "backend"             # reserved server name of the backend
COORDINATOR_SCHEMA = "orch"     # created on the backend
PORTS_PER_SANDBOX = 100         # a sandbox uses base..base+99
MAX_SERVERS = PORTS_PER_SANDBOX - 1
STATE_FILE = "sandbox.json"
STATE_VERSION = 1
DEFAULT_SLAVE_NET_TIMEOUT = 10  # seconds; MariaDB's own default is 60
DEFAULT_SEMI_SYNC_TIMEOUT_MS = 10000
START_TIMEOUT = 60.0            # per start() call, all servers in parallel
STOP_TIMEOUT = 60.0             # SIGTERM -> SIGKILL
SOCKET_PATH_MAX = 107           # sun_path is 108 bytes with the NUL

MARIADBD = shutil.which("mariadbd", path="/usr/sbin:/usr/bin:/usr/local/sbin:" +
                        os.environ.get("PATH", "")) or "/usr/sbin/mariadbd"
IP = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin:" +
                 os.environ.get("PATH", "")) or "/usr/sbin/ip"
INSTALL_DB = shutil.which("mariadb-install-db", path="/usr/bin:/usr/local/bin:" +
                          os.environ.get("PATH", "")) or "/usr/bin/mariadb-install-db"
TEMPLATE_ROOT = os.environ.get("ORCH_SANDBOX_TEMPLATE_ROOT", "/var/tmp")

# Options every server gets, besides paths, port and identity. Small and fast:
# a 16M redo log keeps a datadir near 34 MB; flush_log_at_trx_commit=2 survives
# kill -9 of mariadbd (the OS still holds the writes), which is what tests do.
COMMON_OPTIONS = [
    "--bind-address=127.0.0.1",
    "--skip-name-resolve",
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=16M",
    "--innodb-flush-log-at-trx-commit=2",
    "--innodb-use-native-aio=0",          # many servers would exhaust fs.aio-max-nr
    "--innodb-buffer-pool-load-at-startup=0",
    "--innodb-buffer-pool-dump-at-shutdown=0",
    "--performance-schema=0",
    "--max-connections=200",
    "--table-open-cache=400",
    "--open-files-limit=4096",
]

# Bump when the template recipe changes in a way the hash below cannot see.
_TEMPLATE_RECIPE = 1


class SandboxError(Exception):
    """A sandbox operation failed; the message says what to do next."""


# ---------------------------------------------------------------------------
# Processes, by PID
# ---------------------------------------------------------------------------

def proc_state(pid):
    """State letter of PID from /proc/PID/stat ('R', 'S', 'T', 'Z', ...), or None
    when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    # comm may contain spaces and parentheses: the state follows the last ')'.
    rest = data[data.rfind(")") + 2:]
    return rest[:1] or None


def proc_cmdline(pid):
    """argv of PID as a list (empty for zombies, kernel threads, or gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def pid_is_live(pid):
    """True if PID exists and is not a zombie (after kill -9 a zombie still
    answers kill -0 until its parent reaps it)."""
    if not pid:
        return False
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X", "x")


def pid_runs_datadir(pid, datadir):
    """True if PID is a live process whose command line has --datadir=DATADIR."""
    if not pid_is_live(pid):
        return False
    return f"--datadir={datadir}" in proc_cmdline(pid)


def _signal_if_ours(pid, datadir, sig):
    """Send SIG to PID only if it runs on DATADIR. Uses a pidfd so the check and
    the signal address the same process even if the PID is recycled meanwhile.
    Returns True if the signal was sent."""
    if not pid:
        return False
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:
            pidfd = None
    try:
        if not pid_runs_datadir(pid, datadir):
            return False
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True
    finally:
        if pidfd is not None:
            os.close(pidfd)


def pids_with_datadir_under(directory):
    """PIDs of live processes whose command line has --datadir=DIRECTORY/...
    (stragglers a stale state file may not know about)."""
    prefix = f"--datadir={directory.rstrip('/')}/"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == os.getpid():
            continue
        if any(a.startswith(prefix) for a in proc_cmdline(pid)) and pid_is_live(pid):
            found.append(pid)
    return found


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

def port_is_free(port):
    """True if nothing listens on 127.0.0.1:PORT (nor on a wildcard address).
    SO_REUSEADDR makes TIME_WAIT leftovers of a previous sandbox count as free,
    as they are for mariadbd, which sets it too."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def listening_ports():
    """Set of TCP ports in LISTEN state on any address (from /proc/net/tcp{,6})."""
    ports = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue
    return ports


def port_holder(port):
    """Who listens on PORT, as 'name (pid N): cmdline', or None if unknown."""
    try:
        out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'users:\(\("([^"]+)",pid=(\d+)', out)
    if not m:
        return None
    name, pid = m.group(1), int(m.group(2))
    cmd = " ".join(proc_cmdline(pid))
    if len(cmd) > 160:
        cmd = cmd[:157] + "..."
    return f"{name} (pid {pid}: {cmd})" if cmd else f"{name} (pid {pid})"


# ---------------------------------------------------------------------------
# GTID positions
# ---------------------------------------------------------------------------

def parse_gtid_pos(text):
    """MariaDB GTID position 'D-S-N,D-S-N' -> {domain: (server_id, seq_no)}."""
    pos = {}
    for item in (text or "").replace("\n", "").split(","):
        item = item.strip()
        if not item:
            continue
        d, s, n = item.split("-")
        pos[int(d)] = (int(s), int(n))
    return pos


def gtid_pos_reached(have, want):
    """True if position HAVE contains WANT: for each domain of WANT, HAVE has a
    seq_no at least as high (both strings or parsed dicts)."""
    if isinstance(have, str):
        have = parse_gtid_pos(have)
    if isinstance(want, str):
        want = parse_gtid_pos(want)
    return all(d in have and have[d][1] >= n for d, (_, n) in want.items())


# ---------------------------------------------------------------------------
# Topologies
# ---------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


def parse_topology(spec):
    """Topology spec -> ordered {name: master or None}, primaries first, then
    breadth-first.

    SPEC is one of:
      '1+N' (or 'N' for N replicas): db1 with replicas db2..db(N+1)
      'chain:N'   db1 -> db2 -> ... -> dbN (each replicates from the previous)
      'tree'      db1 with db2 and db3; db3 with db4 and db5
      'b:a,c:a,d:b'   name:master pairs; a bare name (or one only named as a
                  master) is a primary
      a dict {name: master or None}
    Raises SandboxError on malformed specs, unknown masters or cycles."""
    if isinstance(spec, dict):
        raw = dict(spec)
    else:
        text = str(spec).strip()
        m_star = re.fullmatch(r"(?:1\+)?(\d+)", text)
        m_chain = re.fullmatch(r"chain:(\d+)", text)
        if m_star:
            n = int(m_star.group(1))
            raw = {"db1": None}
            raw.update({f"db{i}": "db1" for i in range(2, n + 2)})
        elif m_chain:
            n = int(m_chain.group(1))
            if n < 1:
                raise SandboxError("chain:N needs N >= 1")
            raw = {"db1": None}
            raw.update({f"db{i}": f"db{i - 1}" for i in range(2, n + 1)})
        elif text == "tree":
            raw = {"db1": None, "db2": "db1", "db3": "db1", "db4": "db3", "db5": "db3"}
        else:
            raw = {}
            for item in text.split(","):
                item = item.strip()
                if not item:
                    continue
                name, _, master = item.partition(":")
                name, master = name.strip(), master.strip() or None
                if name in raw and raw[name] != master:
                    raise SandboxError(f"topology {text!r}: {name} given two masters")
                raw[name] = master
    # Masters only named as masters are primaries.
    for master in list(raw.values()):
        if master is not None and master not in raw:
            raw[master] = None
    for name, master in raw.items():
        if not _NAME_RE.match(name):
            raise SandboxError(f"bad server name {name!r}: use letters, digits, _ and -, "
                               "starting with a letter, at most 32 characters")
        if name == BACKEND:
            raise SandboxError(f"'{BACKEND}' is reserved for the backend server")
        if master == name:
            raise SandboxError(f"{name} cannot replicate from itself")
    roots = [n for n, m in raw.items() if m is None]
    if not roots:
        raise SandboxError(f"topology {spec!r} has no primary (it is a cycle)")
    order = []
    queue = list(roots)
    while queue:
        n = queue.pop(0)
        order.append(n)
        queue.extend(c for c, m in raw.items() if m == n)
    if len(order) != len(raw):
        stuck = sorted(set(raw) - set(order))
        raise SandboxError(f"topology {spec!r}: {', '.join(stuck)} form a replication cycle")
    if len(order) > MAX_SERVERS:
        raise SandboxError(f"at most {MAX_SERVERS} servers per sandbox (ports base+1..base+99)")
    return {n: raw[n] for n in order}


# ---------------------------------------------------------------------------
# Template datadir
# ---------------------------------------------------------------------------

_version_cache = None


def mariadb_version():
    """Version of the installed mariadbd, e.g. '10.11.19'."""
    global _version_cache
    if _version_cache is None:
        try:
            out = subprocess.run([MARIADBD, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
        except OSError as e:
            raise SandboxError(f"cannot run {MARIADBD}: {e}; install mariadb-server "
                               "(packaging/install-deps.sh)") from None
        m = re.search(r"Ver\s+(\d+\.\d+\.\d+)", out)
        if not m:
            raise SandboxError(f"cannot parse the version of {MARIADBD} from {out!r}")
        _version_cache = m.group(1)
    return _version_cache


def _accounts_sql():
    """Statements run once in the template: every sandbox server has these."""
    c = CREDENTIALS
    stmts = [
        # mariadb-install-db's extra root accounts: keep root socket-only.
        "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'%s', ''@'localhost'"
        % socket.gethostname().replace("'", ""),
    ]
    for host in ("localhost", "127.0.0.1"):
        stmts += [
            f"CREATE USER '{c['repl']['user']}'@'{host}' IDENTIFIED BY '{c['repl']['password']}'",
            f"GRANT REPLICATION SLAVE, SLAVE MONITOR ON *.* TO '{c['repl']['user']}'@'{host}'",
            f"CREATE USER '{c['agent']['user']}'@'{host}' IDENTIFIED BY '{c['agent']['password']}'",
            f"GRANT {AGENT_PRIVILEGES} ON *.* TO '{c['agent']['user']}'@'{host}'",
            f"CREATE USER '{c['coordinator']['user']}'@'{host}' "
            f"IDENTIFIED BY '{c['coordinator']['password']}'",
            f"GRANT ALL ON `{COORDINATOR_SCHEMA}`.* TO '{c['coordinator']['user']}'@'{host}'",
            f"CREATE USER '{c['test']['user']}'@'{host}' IDENTIFIED BY '{c['test']['password']}'",
            f"GRANT ALL ON *.* TO '{c['test']['user']}'@'{host}' WITH GRANT OPTION",
        ]
    return stmts


def template_path():
    """Directory of the cached template for this MariaDB version and recipe."""
    recipe = json.dumps([_TEMPLATE_RECIPE, _accounts_sql(), COMMON_OPTIONS])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:10]
    return os.path.join(TEMPLATE_ROOT, f"orch-sandbox-template-{mariadb_version()}-{key}")


def _tail(path, lines=25, offset=0):
    """Last LINES lines of PATH from byte OFFSET on, as one string."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data.splitlines()[-lines:]) or "(empty)"


def _die_with(parent_pid):
    """preexec_fn: SIGKILL the child when PARENT_PID's thread dies."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec():
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:   # the parent died before prctl
            os._exit(1)
    return preexec


def _run_as_root_option():
    return ["--user=root"] if os.geteuid() == 0 else []


def ensure_template(log=None):
    """Return the template datadir, building it first if it is not cached.
    Safe to call from concurrent processes: one builds while the others wait on
    a lock file, and the build happens in a private directory that is renamed
    into place, so nobody ever sees a half-built template."""
    final = template_path()
    data = os.path.join(final, "data")
    if os.path.isdir(data):
        return data
    os.makedirs(TEMPLATE_ROOT, exist_ok=True)

    with open(final + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(data):
            return data   # built while we waited
        _clean_stale_template_builds()
        _build_template_into(final, log)
    return data


def _build_template_into(final, log):
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix=os.path.basename(final) + ".build-", dir=TEMPLATE_ROOT)
    try:
        _build_template(tmp)
        try:
            os.rename(tmp, final)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
        else:
            if log:
                log(f"built template {final} in {time.monotonic() - t0:.2f} s")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _clean_stale_template_builds():
    """Remove build directories left by crashed builds (older than an hour)."""
    now = time.time()
    for entry in os.listdir(TEMPLATE_ROOT):
        if entry.startswith("orch-sandbox-template-") and ".build-" in entry:
            path = os.path.join(TEMPLATE_ROOT, entry)
            try:
                if now - os.stat(path).st_mtime > 3600:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass


def _build_template(tmp):
    data = os.path.join(tmp, "data")
    install_log = os.path.join(tmp, "install.log")
    # A private tmpdir: concurrent bootstraps sharing /tmp trip over each other's
    # temporary tables ("Unknown table 'mysql.tmp_user_sys'").
    tmpdir = os.path.join(tmp, "tmp")
    os.mkdir(tmpdir)
    with open(install_log, "wb") as out:
        try:
            rc = subprocess.run(
                [INSTALL_DB, "--no-defaults", f"--datadir={data}",
                 "--auth-root-authentication-method=normal", "--skip-test-db",
                 "--skip-name-resolve", "--innodb-log-file-size=16M", f"--tmpdir={tmpdir}"]
                + _run_as_root_option(),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                timeout=300).returncode
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SandboxError(f"template: cannot run {INSTALL_DB}: {e}; install "
                               "mariadb-server (packaging/install-deps.sh)") from None
    if rc != 0:
        raise SandboxError(f"template: {INSTALL_DB} failed (exit {rc}); its log "
                           f"{install_log}:\n{_tail(install_log, 40)}")
    sock = os.path.join(tmp, "s.sock")
    err = os.path.join(tmp, "error.log")
    argv = ([MARIADBD, "--no-defaults"] + _run_as_root_option() +
            [f"--datadir={data}", "--skip-networking", f"--socket={sock}",
             f"--pid-file={os.path.join(tmp, 'mysqld.pid')}", f"--log-error={err}",
             f"--tmpdir={tmpdir}", "--skip-log-bin"] + COMMON_OPTIONS)
    with open(os.path.join(tmp, "mariadbd.out"), "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        conn = None
        while conn is None:
            if proc.poll() is not None:
                raise SandboxError(f"template: mariadbd exited at start (status "
                                   f"{proc.returncode}); {err}:\n{_tail(err)}")
            try:
                conn = pymysql.connect(unix_socket=sock, user="root", password="",
                                       connect_timeout=2, autocommit=True)
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise SandboxError(f"template: mariadbd not ready after "
                                       f"{START_TIMEOUT:.0f} s; {err}:\n{_tail(err)}")
                time.sleep(0.05)
        with conn:
            with conn.cursor() as cur:
                for stmt in _accounts_sql():
                    cur.execute(stmt)
                cur.execute("SHUTDOWN")
        try:
            rc = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SandboxError(f"template: mariadbd did not shut down within "
                               f"{STOP_TIMEOUT:.0f} s; {err}:\n{_tail(err)}") from None
        if rc != 0:
            raise SandboxError(f"template: mariadbd shut down with status {rc}; "
                               f"{err}:\n{_tail(err)}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------
# Servers and sandboxes
# ---------------------------------------------------------------------------

class Server:
    """One mariadbd of a sandbox. Attributes come from the sandbox's state:
    name, port, server_id, role ('backend', 'primary', 'intermediate',
    'replica'), master (configured master's name or None), dir, datadir,
    socket, pid_file, error_log, read_only (the value it starts with)."""

    def __init__(self, sandbox, name):
        self._sb = sandbox
        self.name = name

    @property
    def _spec(self):
        return self._sb._state["servers"][self.name]

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        try:
            return self._sb._state["servers"][self.name][attr]
        except KeyError:
            raise AttributeError(f"Server has no attribute {attr!r}") from None

    @property
    def pid(self):
        """PID of the running mariadbd, or of the last one started (may be dead)."""
        return self._spec.get("pid")

    @property
    def host(self):
        """The address the server listens on: 127.0.0.1, or its network
        namespace's address (see Sandbox's NETNS)."""
        return self._spec.get("host") or "127.0.0.1"

    @property
    def netns(self):
        """Name of the network namespace the server runs in, or None."""
        return self._spec.get("netns")

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def label(self):
        """'name (host:port)', for messages."""
        return f"{self.name} ({self.address})"

    def is_alive(self):
        """True if our mariadbd runs (a SIGSTOPped one counts as alive)."""
        return self._sb._alive(self)

    def proc_state(self):
        """/proc state letter of the server process, or None if it is not running."""
        return proc_state(self.pid) if self.is_alive() else None

    def connect(self, user=None, password=None, database=None, tcp=None, timeout=10,
                **kwargs):
        """A new pymysql connection (autocommit, DictCursor). Default: root over the
        unix socket. tcp=True (or a USER other than root) connects to
        host:port, as the test account unless USER is given. TIMEOUT bounds
        connect, reads and writes (a SIGSTOPped server must not hang a test).
        The caller owns the connection (use it as a context manager)."""
        if tcp is None:
            tcp = user is not None and user != "root"
        if user is None:
            user = CREDENTIALS["test"]["user"] if tcp else "root"
        if password is None:
            password = next((c["password"] for c in CREDENTIALS.values()
                             if c["user"] == user), "")
        params = dict(user=user, password=password, database=database, autocommit=True,
                      cursorclass=pymysql.cursors.DictCursor, connect_timeout=timeout,
                      read_timeout=timeout, write_timeout=timeout)
        if tcp:
            params.update(host=self.host, port=self.port)
        else:
            params.update(unix_socket=self.socket)
        params.update(kwargs)
        return pymysql.connect(**params)

    def sql(self, query, args=None, **connect_kwargs):
        """Run one statement on a fresh connection (root over the socket unless
        CONNECT_KWARGS say otherwise); returns its rows as a list of dicts
        (empty for statements without a result)."""
        with self.connect(**connect_kwargs) as conn:
            with conn.cursor() as cur:
                cur.execute(query, args)
                return list(cur.fetchall())

    def value(self, query, args=None, **connect_kwargs):
        """First column of the first row of QUERY, or None if there is no row."""
        rows = self.sql(query, args, **connect_kwargs)
        return next(iter(rows[0].values())) if rows else None

    def slave_status(self, **connect_kwargs):
        """SHOW SLAVE STATUS as a dict, or None if the server is not a replica."""
        rows = self.sql("SHOW SLAVE STATUS", **connect_kwargs)
        return rows[0] if rows else None

    def __repr__(self):
        return f"<Server {self.name} {self.address} pid={self.pid}>"


class Sandbox:
    """A set of MariaDB servers in DIR on ports BASE_PORT..BASE_PORT+99.

    Sandbox(dir, base_port, topology='1+3', ...) describes a new sandbox;
    create() builds and starts it (replication running, ready for writes);
    Sandbox.load(dir) attaches to one created by any process. Use it as a
    context manager to create on entry and destroy on exit.

    Parameters of a new sandbox:
      topology           see parse_topology() ('1+3', 'chain:3', 'tree', 'b:a,c:a', dict)
      semi_sync          enable semi-sync (AFTER_SYNC): master side on every server
                         with replicas, slave side on every server
      semi_sync_timeout_ms  rpl_semi_sync_master_timeout
      slave_net_timeout  seconds (heartbeat period is half of it)
      options            extra mariadbd options for every topology server
      server_options     {name: [options]} extra options per server ('backend' too)
      netns              {name: {"netns": NS, "host": ADDRESS, "peer": PEER}}: run
                         topology server NAME in the existing network namespace NS
                         (`ip netns exec`, as root), listening on ADDRESS instead of
                         127.0.0.1; its replicas use MASTER_HOST=ADDRESS, and the
                         repl and test accounts also exist for PEER, the address the
                         other servers connect from (e.g. the root end of a veth
                         pair). For partition tests; the caller owns the namespace
      log                callable(str) for progress lines (the CLI prints them)
      die_with_parent    servers this object starts get SIGKILL when this process
                         dies (PR_SET_PDEATHSIG), so a test run killed by a timeout
                         leaves no server behind; not stored in the state file

    Not thread-safe; one process should change a sandbox at a time."""

    def __init__(self, dir, base_port=None, topology="1+3", *, semi_sync=False,
                 semi_sync_timeout_ms=DEFAULT_SEMI_SYNC_TIMEOUT_MS,
                 slave_net_timeout=DEFAULT_SLAVE_NET_TIMEOUT, options=(),
                 server_options=None, netns=None, log=None, die_with_parent=False):
        self.dir = os.path.abspath(dir)
        self.log = log or (lambda msg: None)
        self.die_with_parent = die_with_parent
        self._children = {}    # pid -> Popen of servers this process started
        self._state = None
        if base_port is None:
            return             # load() fills the state
        base_port = int(base_port)
        if base_port < 1024 or base_port + PORTS_PER_SANDBOX - 1 > 65535:
            raise SandboxError(f"base port {base_port}: the sandbox needs "
                               f"{base_port}..{base_port + PORTS_PER_SANDBOX - 1} "
                               "within 1024..65535")
        topo = parse_topology(topology)
        server_options = dict(server_options or {})
        unknown = set(server_options) - set(topo) - {BACKEND}
        if unknown:
            raise SandboxError(f"server_options for unknown servers: {', '.join(sorted(unknown))}")
        netns = dict(netns or {})
        unknown = set(netns) - set(topo)
        if unknown:
            raise SandboxError(f"netns for unknown servers: {', '.join(sorted(unknown))} "
                               "(only topology servers can run in a namespace)")
        for name, ns in netns.items():
            if not all(ns.get(k) for k in ("netns", "host", "peer")):
                raise SandboxError(f"netns for {name}: expected netns, host and peer, got {ns!r}")
        self._state = {
            "version": STATE_VERSION,
            "dir": self.dir,
            "base_port": base_port,
            "port_range": [base_port, base_port + PORTS_PER_SANDBOX - 1],
            "mariadb_version": None,
            "topology": topo,
            "semi_sync": bool(semi_sync),
            "semi_sync_timeout_ms": int(semi_sync_timeout_ms),
            "slave_net_timeout": int(slave_net_timeout),
            "credentials": CREDENTIALS,
            "coordinator_schema": COORDINATOR_SCHEMA,
            "servers": {},
        }
        names = [BACKEND] + list(topo)
        for i, name in enumerate(names):
            port = base_port + i
            d = os.path.join(self.dir, name)
            if name == BACKEND:
                role, master = "backend", None
            else:
                master = topo[name]
                has_replicas = any(m == name for m in topo.values())
                role = ("primary" if master is None else
                        "intermediate" if has_replicas else "replica")
            spec = {
                "name": name, "port": port, "server_id": port, "role": role,
                "master": master, "read_only": role in ("intermediate", "replica"),
                "dir": d, "datadir": os.path.join(d, "data"),
                "socket": os.path.join(d, "mysqld.sock"),
                "pid_file": os.path.join(d, "mysqld.pid"),
                "error_log": os.path.join(d, "error.log"),
                "pid": None,
            }
            if name in netns:
                spec.update(netns=netns[name]["netns"], host=netns[name]["host"],
                            peer=netns[name]["peer"])
            if len(spec["socket"]) > SOCKET_PATH_MAX:
                raise SandboxError(f"socket path {spec['socket']} is longer than "
                                   f"{SOCKET_PATH_MAX} bytes: use a shorter sandbox directory")
            extra = list(server_options.get(name, ()))
            if name != BACKEND:
                extra = list(options) + extra
            spec["argv"] = self._argv(spec, topo, extra)
            self._state["servers"][name] = spec

    # -- construction helpers ------------------------------------------------

    def _argv(self, spec, topo, extra):
        s = self._state
        host = spec.get("host") or "127.0.0.1"
        common = [f"--bind-address={host}" if o == "--bind-address=127.0.0.1" else o
                  for o in COMMON_OPTIONS]
        argv = [MARIADBD, "--no-defaults"] + _run_as_root_option() + [
            f"--datadir={spec['datadir']}",
            f"--socket={spec['socket']}",
            f"--pid-file={spec['pid_file']}",
            f"--log-error={spec['error_log']}",
            f"--tmpdir={os.path.join(spec['dir'], 'tmp')}",
            f"--port={spec['port']}",
            f"--server-id={spec['server_id']}",
        ] + common + [f"--slave-net-timeout={s['slave_net_timeout']}"]
        if spec["role"] == "backend":
            argv += ["--skip-log-bin"]
        else:
            name = spec["name"]
            argv += [
                "--log-bin=mysql-bin", "--relay-log=relay-bin", "--log-slave-updates",
                "--gtid-strict-mode=1", "--binlog-format=ROW",
                f"--report-host={host}", f"--report-port={spec['port']}",
                f"--read-only={1 if spec['read_only'] else 0}",
            ]
            if s["semi_sync"]:
                argv += ["--rpl-semi-sync-slave-enabled=ON"]
                if any(m == name for m in topo.values()):
                    argv += ["--rpl-semi-sync-master-enabled=ON",
                             f"--rpl-semi-sync-master-timeout={s['semi_sync_timeout_ms']}",
                             "--rpl-semi-sync-master-wait-point=AFTER_SYNC"]
        return argv + list(extra)

    @classmethod
    def load(cls, dir, log=None, die_with_parent=False):
        """Attach to the sandbox in DIR (created by this or another process)."""
        sb = cls(dir, log=log, die_with_parent=die_with_parent)
        path = os.path.join(sb.dir, STATE_FILE)
        try:
            with open(path) as f:
                sb._state = json.load(f)
        except FileNotFoundError:
            raise SandboxError(
                f"no sandbox in {sb.dir} ({STATE_FILE} missing): create one with "
                "`sandbox.py create --dir DIR --base-port P`") from None
        except (OSError, ValueError) as e:
            raise SandboxError(f"cannot read {path}: {e}") from None
        if sb._state.get("version") != STATE_VERSION:
            raise SandboxError(f"{path}: state version {sb._state.get('version')} is not "
                               f"{STATE_VERSION}; destroy it and create it again")
        return sb

    def _save(self):
        path = os.path.join(self.dir, STATE_FILE)
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self._state, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)

    # -- accessors -------------------------------------------------------------

    @property
    def state(self):
        """The state (as in sandbox.json); read-only by convention."""
        return self._state

    @property
    def base_port(self):
        return self._state["base_port"]

    @property
    def credentials(self):
        return self._state["credentials"]

    @property
    def all_servers(self):
        """{name: Server}, the backend first, then the topology."""
        return {n: Server(self, n) for n in self._state["servers"]}

    @property
    def servers(self):
        """{name: Server} of the replication topology (not the backend)."""
        return {n: Server(self, n) for n in self._state["servers"] if n != BACKEND}

    @property
    def backend(self):
        return Server(self, BACKEND)

    @property
    def primaries(self):
        """Servers configured without a master."""
        return [s for s in self.servers.values() if s.master is None]

    @property
    def primary(self):
        """The configured primary (the topology must have exactly one)."""
        p = self.primaries
        if len(p) != 1:
            raise SandboxError(f"topology has {len(p)} primaries: use .primaries")
        return p[0]

    @property
    def replicas(self):
        """Servers configured with a master (intermediates included), in port order."""
        return [s for s in self.servers.values() if s.master is not None]

    def server(self, name):
        """Server NAME ('backend' included); SandboxError naming the known ones."""
        if isinstance(name, Server):
            return name
        if name not in self._state["servers"]:
            raise SandboxError(f"no server {name!r} in {self.dir}; servers: "
                               f"{', '.join(self._state['servers'])}")
        return Server(self, name)

    def __getitem__(self, name):
        return self.server(name)

    def sql(self, name, query, args=None, **connect_kwargs):
        """Server(name).sql(...): run QUERY, return rows as dicts."""
        return self.server(name).sql(query, args, **connect_kwargs)

    def _names(self, names):
        if names is None:
            return list(self._state["servers"])
        if isinstance(names, (str, Server)):
            names = [names]
        return [self.server(n).name for n in names]

    # -- liveness ------------------------------------------------------------

    def _reap(self):
        """Collect exit statuses of servers this process started (no zombies)."""
        for pid, p in list(self._children.items()):
            if p.poll() is not None:
                del self._children[pid]

    def _alive(self, s):
        self._reap()
        if pid_runs_datadir(s.pid, s.datadir):
            return True
        # Started by someone who did not update the state? Trust the pid file only
        # if that process runs on our datadir.
        try:
            with open(s.pid_file) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return False
        if pid and pid != s.pid and pid_runs_datadir(pid, s.datadir):
            self._state["servers"][s.name]["pid"] = pid
            return True
        return False

    # -- lifecycle -------------------------------------------------------------

    def create(self):
        """Build the sandbox: check ports and directory, copy the template datadir
        for every server, start them all, set up replication, wait until every
        replica's IO and SQL threads run, create the `orch` schema on the
        backend. On any failure (Ctrl-C included) everything it did is undone
        and the exception propagates. Blocks up to about a minute."""
        if self._state is None:
            raise SandboxError("create() needs a new Sandbox(dir, base_port, ...)")
        t0 = time.monotonic()
        if os.path.exists(self.dir) and (not os.path.isdir(self.dir) or os.listdir(self.dir)):
            raise SandboxError(f"{self.dir} already exists: destroy it first "
                               f"(sandbox.py destroy --dir {self.dir}) or choose another directory")
        self._check_ports()
        template = ensure_template(self.log)
        self._state["mariadb_version"] = mariadb_version()
        t_template = time.monotonic()
        made_dir = not os.path.exists(self.dir)
        try:
            os.makedirs(self.dir, exist_ok=True)
            self._save()   # from here on, destroy() can clean up
            servers = list(self.all_servers.values())

            def copy(s):
                os.makedirs(os.path.join(s.dir, "tmp"))
                shutil.copytree(template, s.datadir, symlinks=True)

            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(copy, servers))
            t_copy = time.monotonic()
            self._start(servers)
            t_start = time.monotonic()
            self._add_peer_accounts()
            self._setup_replication()
            self.backend.sql(f"CREATE DATABASE IF NOT EXISTS `{COORDINATOR_SCHEMA}`")
            self.wait_replication_running()
            self._save()
        except BaseException:
            try:
                self._teardown(remove_dir=True, keep_top=not made_dir)
            except Exception as e:  # report, but keep the original failure
                print(f"sandbox: cleanup after failed create also failed: {e}",
                      file=sys.stderr)
            raise
        self.log(f"sandbox {self.dir}: {len(servers)} servers up on ports "
                 f"{self.base_port}..{self.base_port + len(servers) - 1} in "
                 f"{time.monotonic() - t0:.2f} s (template {t_template - t0:.2f} s, copy "
                 f"{t_copy - t_template:.2f} s, start "
                 f"{t_start - t_copy:.2f} s, replication {time.monotonic() - t_start:.2f} s)")
        return self

    def _check_ports(self):
        for s in self.all_servers.values():
            if not port_is_free(s.port):
                holder = port_holder(s.port)
                who = f"by {holder}" if holder else \
                    f"by another process (see: ss -ltnp 'sport = :{s.port}')"
                raise SandboxError(
                    f"port {s.port} (for {s.name}) is already in use {who}; choose "
                    f"another base port (a sandbox uses base..base+{PORTS_PER_SANDBOX - 1}) "
                    "or stop that process")

    def _add_peer_accounts(self):
        """The repl and test accounts for the PEER of every server in a network
        namespace (not binlogged: only that server needs them)."""
        for s in self.servers.values():
            peer = s._spec.get("peer")
            if not peer:
                continue
            with s.connect() as conn, conn.cursor() as cur:
                cur.execute("SET sql_log_bin = 0")
                for key, grant in (("repl", "REPLICATION SLAVE, SLAVE MONITOR"),
                                   ("test", "ALL")):
                    c = CREDENTIALS[key]
                    cur.execute(f"CREATE USER '{c['user']}'@'{peer}' "
                                f"IDENTIFIED BY '{c['password']}'")
                    cur.execute(f"GRANT {grant} ON *.* TO '{c['user']}'@'{peer}'")

    def _setup_replication(self):
        repl = CREDENTIALS["repl"]
        for s in self.replicas:
            master = self.server(s.master)
            s.sql("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, "
                  "MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, "
                  "MASTER_CONNECT_RETRY=1",
                  (master.host, master.port, repl["user"], repl["password"]))
            s.sql("START SLAVE")

    def wait_replication_running(self, timeout=30.0, names=None):
        """Wait until every configured replica (or those in NAMES) has its IO and
        SQL threads running."""
        deadline = time.monotonic() + timeout
        pending = [s for s in self.replicas if names is None or s.name in names]
        last = {}
        while pending:
            still = []
            for s in pending:
                try:
                    st = s.slave_status(timeout=5)
                except pymysql.MySQLError as e:
                    last[s.name] = f"cannot query: {e}"
                    still.append(s)
                    continue
                if st and st["Slave_IO_Running"] == "Yes" and st["Slave_SQL_Running"] == "Yes":
                    continue
                last[s.name] = (f"IO={st['Slave_IO_Running']} SQL={st['Slave_SQL_Running']} "
                                f"{st['Last_IO_Error'] or st['Last_SQL_Error']}".strip()
                                if st else "not a replica")
                still.append(s)
            pending = still
            if pending and time.monotonic() > deadline:
                raise SandboxError(f"replication not running after {timeout:.0f} s: " +
                                   "; ".join(f"{s.name}: {last[s.name]}" for s in pending))
            if pending:
                time.sleep(0.05)

    def start(self, names=None, timeout=START_TIMEOUT):
        """Start the named servers (default: all) that are not running, with the
        same datadir and options as before, in parallel; wait until each accepts
        connections. Replicas resume replication by themselves. Raises
        SandboxError with the tail of the error log of a server that dies or
        does not become ready."""
        servers = [self.server(n) for n in self._names(names)]
        self._start([s for s in servers if not s.is_alive()], timeout)
        return self

    def _start(self, servers, timeout=START_TIMEOUT):
        offsets = {}
        for s in servers:
            try:
                offsets[s.name] = os.path.getsize(s.error_log)
            except OSError:
                offsets[s.name] = 0
            with contextlib.suppress(FileNotFoundError):
                os.unlink(s.pid_file)
            # `ip netns exec` execs in place: the PID is mariadbd's
            argv = [IP, "netns", "exec", s.netns] + s.argv if s.netns else s.argv
            with open(os.path.join(s.dir, "mariadbd.out"), "ab") as out:
                p = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, cwd=s.dir,
                    preexec_fn=_die_with(os.getpid()) if self.die_with_parent else None)
            self._children[p.pid] = p
            self._state["servers"][s.name]["pid"] = p.pid
        if servers:
            self._save()
        deadline = time.monotonic() + timeout
        for s in servers:
            self._wait_ready(s, deadline, timeout, offsets[s.name])

    def _wait_ready(self, s, deadline, timeout, log_offset):
        last = None
        while True:
            p = self._children.get(s.pid)
            if (p is not None and p.poll() is not None) or not pid_is_live(s.pid):
                status = f"exit status {p.returncode}" if p is not None else "gone"
                raise SandboxError(
                    f"{s.label}: mariadbd died during startup ({status}); last lines "
                    f"of {s.error_log}:\n{_tail(s.error_log, offset=log_offset)}")
            try:
                pymysql.connect(unix_socket=s.socket, user="root", password="",
                                connect_timeout=2).close()
                return
            except pymysql.MySQLError as e:
                last = e
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{s.label}: not accepting connections after {timeout:.0f} s (last "
                    f"error: {last}); last lines of {s.error_log}:\n"
                    f"{_tail(s.error_log, offset=log_offset)}")
            time.sleep(0.03)

    def stop(self, names=None, timeout=STOP_TIMEOUT):
        """Stop the named servers (default: all) cleanly and wait: SIGTERM (and
        SIGCONT, in case one is SIGSTOPped), then SIGKILL after TIMEOUT seconds."""
        servers = [self.server(n) for n in self._names(names)]
        self._terminate(servers, signal.SIGTERM, timeout)
        return self

    def _terminate(self, servers, sig, timeout):
        live = [s for s in servers if s.is_alive()]
        for s in live:
            _signal_if_ours(s.pid, s.datadir, sig)
            if sig != signal.SIGKILL:
                _signal_if_ours(s.pid, s.datadir, signal.SIGCONT)
        left = self._wait_dead(live, timeout)
        if left:
            for s in left:
                self.log(f"{s.label}: still running {timeout:.0f} s after signal "
                         f"{sig}; sending SIGKILL")
                _signal_if_ours(s.pid, s.datadir, signal.SIGKILL)
            left = self._wait_dead(left, 10)
            if left:
                raise SandboxError("still running after SIGKILL: " +
                                   ", ".join(f"{s.name} pid {s.pid}" for s in left))

    def _wait_dead(self, servers, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = [s for s in servers if s.is_alive()]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.02)

    def kill(self, name, sig=signal.SIGKILL, wait=False, timeout=10.0):
        """Send SIG (default SIGKILL; SIGSTOP/SIGCONT for freezes) to server NAME if
        its PID still runs our datadir. With WAIT and a fatal signal, wait until
        /proc says it is dead. Returns the PID signalled. Raises SandboxError if
        the server is not running."""
        s = self.server(name)
        if isinstance(sig, str):
            sig = parse_signal(sig)
        if not s.is_alive() or not _signal_if_ours(s.pid, s.datadir, sig):
            raise SandboxError(f"{s.label} is not running")
        if wait and sig in (signal.SIGKILL, signal.SIGTERM):
            if self._wait_dead([s], timeout):
                raise SandboxError(f"{s.label}: pid {s.pid} still alive {timeout:.0f} s "
                                   f"after signal {sig}")
        return s.pid

    def wait_dead(self, name, timeout=10.0):
        """Wait until server NAME's process is gone or a zombie."""
        s = self.server(name)
        if self._wait_dead([s], timeout):
            raise SandboxError(f"{s.label}: pid {s.pid} still alive after {timeout:.0f} s")

    def destroy(self):
        """Kill every server of the sandbox (SIGKILL: its data goes anyway), and
        any other process running on a datadir under DIR, wait until /proc says
        they are dead, and remove DIR. Afterwards no process, listening port or
        directory of the sandbox is left. Safe to call more than once."""
        if self._state is None and os.path.isdir(self.dir):
            if not os.path.exists(os.path.join(self.dir, STATE_FILE)) and os.listdir(self.dir):
                raise SandboxError(f"{self.dir} has no {STATE_FILE}: not a sandbox, "
                                   "refusing to remove it")
        self._teardown(remove_dir=True)

    def _teardown(self, remove_dir, keep_top=False):
        if self._state is not None:
            servers = list(self.all_servers.values())
            for s in servers:
                if s.is_alive():
                    _signal_if_ours(s.pid, s.datadir, signal.SIGKILL)
            left = self._wait_dead(servers, 10)
            if left:
                raise SandboxError("still running after SIGKILL: " +
                                   ", ".join(f"{s.name} pid {s.pid}" for s in left))
        if os.path.isdir(self.dir):
            strays = pids_with_datadir_under(self.dir)
            for pid in strays:
                for a in proc_cmdline(pid):
                    if a.startswith("--datadir="):
                        _signal_if_ours(pid, a[len("--datadir="):], signal.SIGKILL)
            deadline = time.monotonic() + 10
            while strays and time.monotonic() < deadline:
                self._reap()
                strays = [p for p in strays if pid_is_live(p)]
                time.sleep(0.02)
            if strays:
                raise SandboxError(f"processes on {self.dir} survive SIGKILL: {strays}")
        self._reap()
        if remove_dir and os.path.isdir(self.dir):
            if keep_top:
                for entry in os.listdir(self.dir):
                    p = os.path.join(self.dir, entry)
                    if os.path.isdir(p) and not os.path.islink(p):
                        shutil.rmtree(p)
                    else:
                        os.unlink(p)
            else:
                shutil.rmtree(self.dir)

    def __enter__(self):
        if not os.path.exists(os.path.join(self.dir, STATE_FILE)):
            self.create()
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False

    # -- replication -------------------------------------------------------------

    def live_topology(self, timeout=5):
        """{name: master name} as the running servers report it (SHOW SLAVE
        STATUS Master_Port mapped back to names; None for a server that is not
        a replica, '?' for one that cannot be queried, '127.0.0.1:P' for a
        master outside the sandbox)."""
        by_port = {s.port: s.name for s in self.servers.values()}
        topo = {}
        for s in self.servers.values():
            try:
                st = s.slave_status(timeout=timeout)
            except pymysql.MySQLError:
                topo[s.name] = "?"
                continue
            topo[s.name] = None if st is None else by_port.get(
                st["Master_Port"], f"{st['Master_Host']}:{st['Master_Port']}")
        return topo

    def replication_lag(self, names=None, timeout=5):
        """What keeps replication from being caught up, as a list of strings (empty
        when every replica's gtid_slave_pos has reached its current master's
        gtid_binlog_pos). Masters come from the live SHOW SLAVE STATUS, so this
        follows failovers. Servers in NAMES (default: all topology servers) that
        are down are reported."""
        names = [n for n in self._names(names) if n != BACKEND]
        by_port = {s.port: s for s in self.servers.values()}
        problems = []
        for name in names:
            s = self.server(name)
            if not s.is_alive():
                problems.append(f"{name} is not running")
                continue
            try:
                st = s.slave_status(timeout=timeout)
            except pymysql.MySQLError as e:
                problems.append(f"{name}: cannot query: {e}")
                continue
            if st is None:
                continue
            master = by_port.get(st["Master_Port"])
            if master is None:
                continue   # replicates from outside the sandbox: not ours to judge
            if not master.is_alive():
                problems.append(f"{name}: its master {master.name} is not running")
                continue
            try:
                want = master.value("SELECT @@gtid_binlog_pos", timeout=timeout)
            except pymysql.MySQLError as e:
                problems.append(f"{name}: cannot query its master {master.name}: {e}")
                continue
            try:
                # Read after the master's position, so that under a steady write
                # load "reached" means caught up with a recent past, and converges.
                have = s.value("SELECT @@gtid_slave_pos", timeout=timeout)
            except pymysql.MySQLError as e:
                problems.append(f"{name}: cannot query: {e}")
                continue
            if not gtid_pos_reached(have, want):
                err = st["Last_IO_Error"] or st["Last_SQL_Error"]
                problems.append(
                    f"{name} at gtid_slave_pos '{have}' < {master.name}'s gtid_binlog_pos "
                    f"'{want}' (IO={st['Slave_IO_Running']} SQL={st['Slave_SQL_Running']}"
                    + (f", error: {err}" if err else "") + ")")
        return problems

    def wait_replication(self, timeout=30.0, names=None):
        """Wait until every replica (or those in NAMES) has applied everything its
        master has in its binary log; SandboxError saying who is behind and why
        after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        while True:
            problems = self.replication_lag(names)
            if not problems:
                return
            if time.monotonic() > deadline:
                raise SandboxError(f"replication not caught up after {timeout:.0f} s: " +
                                   "; ".join(problems))
            time.sleep(0.05)

    # -- reporting -------------------------------------------------------------

    def footprint(self):
        """What the sandbox occupies, to check later that nothing is left:
        {'dir', 'ports' (the whole base..base+99 range), 'pids' {name: pid},
        'datadirs' {name: datadir}}."""
        return {
            "dir": self.dir,
            "ports": list(range(self.base_port, self.base_port + PORTS_PER_SANDBOX)),
            "pids": {s.name: s.pid for s in self.all_servers.values() if s.pid},
            "datadirs": {s.name: s.datadir for s in self.all_servers.values()},
        }

    def status(self, timeout=2):
        """One dict per server (backend first): name, port, pid, alive ('yes',
        'no', 'stopped' for SIGSTOP), role, master (live when known, else the
        configured one), read_only, io, sql, gtid_current_pos, error."""
        rows = []
        by_port = {s.port: s.name for s in self.servers.values()}
        for s in self.all_servers.values():
            row = {"name": s.name, "port": s.port, "pid": s.pid or "-", "alive": "no",
                   "role": s.role, "master": s.master or "-", "read_only": "-",
                   "io": "-", "sql": "-", "gtid_current_pos": "-", "error": ""}
            rows.append(row)
            if not s.is_alive():
                continue
            if proc_state(s.pid) == "T":
                row["alive"] = "stopped"
                continue
            row["alive"] = "yes"
            try:
                with s.connect(timeout=timeout) as conn, conn.cursor() as cur:
                    cur.execute("SELECT @@read_only AS ro, @@gtid_current_pos AS gtid")
                    r = cur.fetchone()
                    row["read_only"] = r["ro"]
                    if s.role != "backend":
                        row["gtid_current_pos"] = r["gtid"] or "''"
                    cur.execute("SHOW SLAVE STATUS")
                    st = cur.fetchone()
            except pymysql.MySQLError as e:
                row["error"] = f"cannot query: {e}"
                continue
            if st:
                row["master"] = by_port.get(st["Master_Port"],
                                            f"{st['Master_Host']}:{st['Master_Port']}")
                row["io"], row["sql"] = st["Slave_IO_Running"], st["Slave_SQL_Running"]
                row["error"] = st["Last_IO_Error"] or st["Last_SQL_Error"] or ""
            elif s.role != "backend":
                row["master"] = "-"
        return rows

    def format_status(self, timeout=2):
        """status() as a readable table (errors listed below it)."""
        rows = self.status(timeout)
        cols = ["name", "port", "pid", "alive", "role", "master", "read_only", "io", "sql",
                "gtid_current_pos"]
        table = [cols] + [[str(r[c]) for c in cols] for r in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
        out = [f"sandbox {self.dir} (ports {self.base_port}..{self.base_port + 99}, "
               f"MariaDB {self._state.get('mariadb_version')})"]
        out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table]
        out += [f"{r['name']}: {r['error']}" for r in rows if r["error"]]
        return "\n".join(out)

    def diagnostics(self, lines=15):
        """Status table plus the last LINES of every error log (for test failures)."""
        parts = []
        try:
            parts.append(self.format_status())
        except Exception as e:  # diagnostics must never raise
            parts.append(f"(status failed: {e})")
        for s in self.all_servers.values():
            parts.append(f"--- {s.error_log} (last {lines} lines)\n{_tail(s.error_log, lines)}")
        return "\n".join(parts)

    def __repr__(self):
        n = len(self._state["servers"]) if self._state else "?"
        return f"<Sandbox {self.dir} base={self._state and self.base_port} servers={n}>"


def parse_signal(text):
    """'KILL', 'SIGKILL', '9' -> signal.SIGKILL."""
    t = str(text).strip().upper()
    if t.isdigit():
        return signal.Signals(int(t))
    if not t.startswith("SIG"):
        t = "SIG" + t
    try:
        return signal.Signals[t]
    except KeyError:
        raise SandboxError(f"unknown signal {text!r}") from None


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def _stderr(msg):
    print(f"sandbox: {msg}", file=sys.stderr, flush=True)


def _cmd_create(args):
    topology = args.topology or args.shape
    server_options = {}
    for item in args.server_option:
        name, sep, opt = item.partition("=")
        if not sep or not opt:
            raise SandboxError(f"--server-option {item!r}: expected NAME=--option[=value]")
        server_options.setdefault(name, []).append(opt)
    sb = Sandbox(args.dir, args.base_port, topology, semi_sync=args.semi_sync,
                 semi_sync_timeout_ms=args.semi_sync_timeout_ms,
                 slave_net_timeout=args.slave_net_timeout, options=args.option,
                 server_options=server_options, log=_stderr)
    sb.create()
    print(sb.format_status())


def _cmd_start(args):
    sb = Sandbox.load(args.dir, log=_stderr)
    t0 = time.monotonic()
    sb.start(args.names or None)
    _stderr(f"started in {time.monotonic() - t0:.2f} s")


def _cmd_stop(args):
    Sandbox.load(args.dir, log=_stderr).stop(args.names or None)


def _cmd_destroy(args):
    d = os.path.abspath(args.dir)
    if not os.path.exists(d):
        _stderr(f"{d} does not exist: nothing to destroy")
        return
    if os.path.exists(os.path.join(d, STATE_FILE)):
        sb = Sandbox.load(d, log=_stderr)
    else:
        sb = Sandbox(d, log=_stderr)
    sb.destroy()
    _stderr(f"destroyed {d}")


def _cmd_status(args):
    print(Sandbox.load(args.dir).format_status())


def _cmd_kill(args):
    pid = Sandbox.load(args.dir).kill(args.name, parse_signal(args.signal), wait=args.wait)
    _stderr(f"sent SIG{parse_signal(args.signal).name[3:]} to {args.name} (pid {pid})")


def _cmd_sql(args):
    sb = Sandbox.load(args.dir)
    kw = {}
    if args.user:
        kw["user"] = args.user
    rows = sb.sql(args.name, args.query, **kw)
    if rows:
        cols = list(rows[0])
        print("\t".join(cols))
        for r in rows:
            print("\t".join("NULL" if r[c] is None else str(r[c]) for c in cols))


def _cmd_wait_replication(args):
    sb = Sandbox.load(args.dir)
    t0 = time.monotonic()
    sb.wait_replication(args.timeout, args.names or None)
    _stderr(f"replication caught up ({time.monotonic() - t0:.2f} s)")


def _cmd_info(args):
    print(json.dumps(Sandbox.load(args.dir).state, indent=2))


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt   # unwinds through create()'s cleanup, like Ctrl-C


def main(argv=None):
    # --dir is accepted before or after the command; the subcommands' copy has no
    # default so that it does not overwrite one given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", default=argparse.SUPPRESS,
                        help="sandbox directory (default: $ORCH_SANDBOX_DIR)")
    p = argparse.ArgumentParser(
        prog="sandbox.py", parents=[common],
        description="Real MariaDB servers on 127.0.0.1 for orch's tests and demo. "
                    "Backend on BASE, topology servers on BASE+1.., at most BASE+99.",
        epilog="Examples:\n"
               "  sandbox.py create --dir /tmp/sb --base-port 23300\n"
               "  sandbox.py create --dir /tmp/sb --base-port 23300 --topology 'b:a,c:a,d:b'\n"
               "  sandbox.py status --dir /tmp/sb\n"
               "  sandbox.py sql --dir /tmp/sb db1 'SELECT @@gtid_binlog_pos'\n"
               "  sandbox.py kill --dir /tmp/sb db1 --signal KILL\n"
               "  sandbox.py destroy --dir /tmp/sb\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("create", parents=[common], help="create and start a sandbox")
    c.add_argument("--base-port", type=int, required=True,
                   help="backend port; servers get the next ports (uses BASE..BASE+99)")
    c.add_argument("--shape", default="1+3",
                   help="1+N (primary with N replicas), chain:N, or tree (default 1+3)")
    c.add_argument("--topology", help="name:master pairs, e.g. 'b:a,c:a,d:b' (overrides --shape)")
    c.add_argument("--semi-sync", action="store_true", help="enable semi-sync (AFTER_SYNC)")
    c.add_argument("--semi-sync-timeout-ms", type=int, default=DEFAULT_SEMI_SYNC_TIMEOUT_MS)
    c.add_argument("--slave-net-timeout", type=int, default=DEFAULT_SLAVE_NET_TIMEOUT,
                   help=f"seconds (default {DEFAULT_SLAVE_NET_TIMEOUT})")
    c.add_argument("--option", action="append", default=[], metavar="OPT",
                   help="extra mariadbd option for every topology server (repeatable)")
    c.add_argument("--server-option", action="append", default=[], metavar="NAME=OPT",
                   help="extra mariadbd option for one server, e.g. db2=--skip-slave-start")
    c.set_defaults(func=_cmd_create)

    for name, func, hlp in (("start", _cmd_start, "start stopped servers (default: all)"),
                            ("stop", _cmd_stop, "stop servers cleanly (default: all)")):
        c = sub.add_parser(name, parents=[common], help=hlp)
        c.add_argument("names", nargs="*", metavar="NAME")
        c.set_defaults(func=func)

    c = sub.add_parser("destroy", parents=[common],
                       help="kill every server and remove the directory")
    c.set_defaults(func=_cmd_destroy)
    c = sub.add_parser("status", parents=[common], help="print the servers as a table")
    c.set_defaults(func=_cmd_status)
    c = sub.add_parser("info", parents=[common], help="print the state file (JSON)")
    c.set_defaults(func=_cmd_info)

    c = sub.add_parser("kill", parents=[common], help="send a signal to one server")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--signal", default="KILL", help="KILL (default), TERM, STOP, CONT, ...")
    c.add_argument("--wait", action="store_true", help="wait until it is dead (KILL/TERM)")
    c.set_defaults(func=_cmd_kill)

    c = sub.add_parser("sql", parents=[common], help="run one statement as root over the socket")
    c.add_argument("name", metavar="NAME")
    c.add_argument("query", metavar="QUERY")
    c.add_argument("--user", help="connect over TCP as this sandbox account instead")
    c.set_defaults(func=_cmd_sql)

    c = sub.add_parser("wait-replication", parents=[common],
                       help="wait until every replica has applied its master's binlog")
    c.add_argument("names", nargs="*", metavar="NAME")
    c.add_argument("--timeout", type=float, default=30.0)
    c.set_defaults(func=_cmd_wait_replication)

    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    args.dir = getattr(args, "dir", None) or os.environ.get("ORCH_SANDBOX_DIR")
    if not args.dir:
        p.error("--dir is required (or set ORCH_SANDBOX_DIR)")
    try:
        args.func(args)
    except SandboxError as e:
        _stderr(f"error: {e}")
        return 1
    except pymysql.MySQLError as e:
        _stderr(f"error: MariaDB: {e}")
        return 1
    except KeyboardInterrupt:
        _stderr("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
