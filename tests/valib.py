# SPDX-License-Identifier: GPL-2.0-or-later
"""The shared harness of virtagent's end-to-end suites (python3 stdlib only).

tests/e2e-proxy.py, tests/e2e-vactl.py and tests/e2e-daemon.py import it
from their own folder; tests/vm/vmlib.py (and so tests/vm/run-tests.py)
imports it from the folder above its own.  What it holds:

  the build     find_build(), Binaries: where va-agent, va-clip, va-proxy
                and vactl are ($BUILD, the current directory, _build;
                VA_AGENT, VA_CLIP, VA_PROXY and VACTL override single paths)
  results       Results (and the module-level check(), case(), summary()):
                one line a check, the last line "N passed, N failed"
  waiting       wait_for(), free_port(), tcp_listening(), unique()
  processes     RunDir (a fresh mkdtemp directory), Daemon (a process with
                its log in it), start_agent(), Proxy, proc_state(),
                kill_all() (at exit, whatever happened: nothing outlives
                the suite)
  clients       TimeoutTransport, UnixTransport, server_proxy(), curl(),
                recv_all(), http_unix(), call_xml(), fault_of(),
                newest_event_id(), wait_event(); the proxy's fault codes
                (FAULT_*)

Nothing here runs at import but the registration of kill_all() at exit.
"""
import atexit
import http.client
import os
import random
import re
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import traceback
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))  # tests/
TOP = os.path.dirname(HERE)                        # the source tree
MiB = 1 << 20

# The fault codes va-proxy answers with itself: host/contract.h (the
# numbers are the contract with every client, so the tests spell them out).
FAULT_NOT_CONNECTED = 1001
FAULT_NOT_ANSWERING = 1002
FAULT_TIMEOUT = 1003
FAULT_LOST = 1004
FAULT_BLOCKED = 1006
FAULT_EVENTS_LOST = 1007


# ---- the build ------------------------------------------------------------

def find_build():
    """The build directory: $BUILD when set; else the current directory
    when it holds agent/va-agent and host/proxy/va-proxy (make check runs
    the suites there); else _build at the top of the source tree."""
    if os.environ.get("BUILD"):
        return os.environ["BUILD"]
    if os.path.exists("host/proxy/va-proxy") and os.path.exists("agent/va-agent"):
        return os.getcwd()
    return os.path.join(TOP, "_build")


class Binaries:
    """The paths of the programs under test in one build directory.

    With environ (default: the process environment), VA_AGENT, VA_CLIP,
    VA_PROXY and VACTL replace single paths; pass environ={} to take the
    build's own programs whatever the environment says."""

    def __init__(self, build=None, environ=None):
        env = os.environ if environ is None else environ
        self.build = build or find_build()
        self.agent = env.get("VA_AGENT") or os.path.join(self.build, "agent", "va-agent")
        self.clip = env.get("VA_CLIP") or os.path.join(self.build, "agent", "va-clip")
        self.proxy = env.get("VA_PROXY") or os.path.join(self.build, "host", "proxy", "va-proxy")
        self.vactl = env.get("VACTL") or os.path.join(self.build, "host", "vactl", "vactl")

    def missing(self, *paths):
        """Those of paths (default: agent, clip and proxy) that are not
        executable files, in order."""
        return [p for p in (paths or (self.agent, self.clip, self.proxy))
                if not os.access(p, os.X_OK)]


def wrapper_from_env(name):
    """The command words in environment variable name (e.g. VA_PROXY_WRAPPER,
    put in front of a daemon's command, such as valgrind); [] when unset."""
    return shlex.split(os.environ.get(name, ""))


def skip_run(reason):
    """Prints that the suite is skipped and the zero count; returns 77
    (automake's SKIP) for the caller to exit with."""
    print("skipped: " + reason)
    print("0 passed, 0 failed")
    return 77


# ---- results --------------------------------------------------------------

class Results:
    """Counts checks.  check() prints one line a check at once ("ok   NAME"
    or "FAIL NAME: DETAIL"), summary() the last line "N passed, N failed"
    that tools/summarize reads."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def count(self, name, ok):
        """Counts one result without printing anything (for suites that
        print their own lines); returns ok."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(name)
        return ok

    def check(self, name, ok, detail=""):
        """Counts and prints one check; returns ok (truth value as given)."""
        self.count(name, ok)
        if ok:
            print("ok   " + name)
        else:
            print("FAIL " + name + (": " + str(detail) if detail != "" else ""))
        sys.stdout.flush()
        return ok

    def case(self, fn):
        """Runs fn(), one group of checks; an exception it raises is one
        failed check named after fn, with the traceback as detail."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - any error is a failure
            self.check(fn.__name__, False, "%s: %s\n%s" % (type(e).__name__, e,
                                                          traceback.format_exc(limit=4)))

    def summary(self, list_failures=False):
        """Prints (with list_failures, first a line "failed: NAME" a failed
        check, then) "N passed, N failed"; returns the exit status: 0 when
        nothing failed, else 1."""
        if list_failures:
            for name in self.failures:
                print("failed: " + name)
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0


# One Results for the whole suite: most suites need no other.
RESULTS = Results()
check = RESULTS.check
case = RESULTS.case
summary = RESULTS.summary


# ---- waiting --------------------------------------------------------------

def wait_for(pred, timeout, step=0.05):
    """Calls pred() every step seconds until it returns a true value, for at
    most timeout seconds, and once more at the end; an exception pred raises
    counts as "not yet".  Returns True when pred held, else False."""
    end = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except Exception:  # noqa: BLE001 - not yet
            pass
        if time.monotonic() >= end:
            return False
        time.sleep(max(0.0, min(step, end - time.monotonic())))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tcp_listening(port, host="127.0.0.1", timeout=1):
    """True when a TCP connection to host:port succeeds (it is closed at once)."""
    try:
        socket.create_connection((host, port), timeout).close()
        return True
    except OSError:
        return False


def unique(n=12):
    """n random letters and digits (to tell one call's data from another's)."""
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


# ---- processes ------------------------------------------------------------

DAEMONS = []    # every Daemon started, for kill_all()
RUN_DIRS = []   # every RunDir made, for kill_all()


def proc_state(pid):
    """The state letter of process pid from /proc/PID/stat ("R", "S", "Z",
    ...), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError, ValueError):
        return None


def proc_cmdline(pid):
    """The command line of process pid as a list of bytes ([] when gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def processes_naming(text):
    """The pids of the live processes (not zombies, not this one) whose
    command line holds text."""
    found = []
    key = text.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if key in cmd and proc_state(int(d)) not in (None, "Z"):
            found.append(int(d))
    return found


class RunDir:
    """A fresh mkdtemp directory for one suite's sockets, logs and files,
    with an empty configuration file in it (empty.conf, self.empty), so
    that no daemon reads the host's own."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.empty = self.path("empty.conf")
        open(self.empty, "w").close()
        RUN_DIRS.append(self)

    def path(self, *p):
        """A path inside the directory."""
        return os.path.join(self.dir, *p)

    def processes(self):
        """The pids of the live processes whose command line names the directory."""
        return processes_naming(self.dir)

    def finish(self, ok):
        """Removes the directory when ok and VA_E2E_KEEP is not set; else
        keeps it and prints "# files kept in DIR"."""
        if ok and not os.environ.get("VA_E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("# files kept in " + self.dir, flush=True)


class Daemon:
    """A long-running process in a session of its own, its stdout and stderr
    appended to the file logpath, its stdin /dev/null.  Registered for
    kill_all(), so that it cannot outlive the suite."""

    def __init__(self, name, argv, logpath):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.logf = open(logpath, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        DAEMONS.append(self)

    def alive(self):
        """True while the process has not exited."""
        return self.p.poll() is None

    def signal(self, sig):
        """Sends sig while the process is alive (never to a reused pid)."""
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=10):
        """SIGCONT and SIGTERM, then SIGKILL after timeout seconds; returns
        (exit code, seconds it took).  Closes the log."""
        t = time.monotonic()
        if self.alive():
            self.p.send_signal(signal.SIGCONT)
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        self.logf.close()
        return self.p.returncode, time.monotonic() - t

    def log(self):
        """What the process wrote so far, as text."""
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(no log: %s)" % e


def kill_all():
    """The last resort (registered at exit): SIGKILL to every Daemon still
    running and to every process whose command line names a RunDir."""
    for d in DAEMONS:
        try:
            if d.p.poll() is None:
                d.p.kill()
                d.p.wait(5)
        except Exception:  # noqa: BLE001 - kill the others all the same
            pass
    for r in RUN_DIRS:
        for pid in r.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wait_for(lambda: not r.processes(), 5)


atexit.register(kill_all)


def start_agent(run, name, agent, extra=(), shutdown_command=None, timeout=10):
    """Starts the va-agent binary agent as a Daemon in RunDir run: channel
    unix-listen:DIR/NAME.sock (d.sock), control unix:DIR/NAME-ctl.sock
    (d.ctl), the empty config, log DIR/NAME.log, and a shutdown command
    (default: touch DIR/NAME-shutdown-ran), then extra.  Returns when both
    sockets exist; raises RuntimeError (with the log) after timeout s."""
    sock = run.path(name + ".sock")
    ctl = run.path(name + "-ctl.sock")
    if shutdown_command is None:
        shutdown_command = "touch " + shlex.quote(run.path(name + "-shutdown-ran"))
    argv = [agent, "--config", run.empty, "--channel", "unix-listen:" + sock,
            "--control", "unix:" + ctl, "--shutdown-command", shutdown_command]
    d = Daemon("agent " + name, argv + list(extra), run.path(name + ".log"))
    d.sock = sock
    d.ctl = ctl
    if not wait_for(lambda: os.path.exists(sock) and os.path.exists(ctl), timeout):
        raise RuntimeError("agent %s did not start: %s" % (name, d.log()))
    return d


class Proxy:
    """A va-proxy (the binary self.binary) as a Daemon in RunDir run, serving
    guests (--guest values), listening on tcp:127.0.0.1:PORT (a free port;
    0.0.0.0 with --allow-remote in extra) and/or unix:DIR/proxy-TAG.sock,
    with --auth-file (default DIR/secret), the empty config, then extra.

    Returns when it listens; raises RuntimeError (with the log) when it
    exited or did not listen within 10 * slow seconds.  self.secret is the
    auth file's secret (None without tcp).  Subclasses set binary, and
    wrapper (words put in front of the command) and slow (the factor of
    every timing bound) when the suite runs the proxy under valgrind.
    Every Proxy is listed in Proxy.started."""

    binary = None
    wrapper = []
    slow = 1
    started = []

    def __init__(self, run, tag, guests, extra=(), tcp=True, unix=True, auth_file=None):
        self.run = run
        self.tag = tag
        self.port = free_port()
        self.usock = run.path("proxy-%s.sock" % tag)
        self.secret_file = auth_file or run.path("secret")
        argv = list(self.wrapper) + [self.binary, "--config", run.empty]
        for g in guests:
            argv += ["--guest", g]
        host = "0.0.0.0" if "--allow-remote" in extra else "127.0.0.1"
        if tcp:
            argv += ["--listen", "tcp:%s:%d" % (host, self.port)]
        if unix:
            argv += ["--listen", "unix:" + self.usock]
        argv += ["--auth-file", self.secret_file] + list(extra)
        self.argv = argv
        self.d = Daemon("proxy " + tag, argv, run.path("proxy-%s.log" % tag))
        Proxy.started.append(self)

        def up():
            if not self.d.alive():
                return True  # no use waiting: it exited
            if unix and not os.path.exists(self.usock):
                return False
            return not tcp or tcp_listening(self.port)
        if not wait_for(up, 10 * self.slow, 0.1) or not self.d.alive():
            raise RuntimeError("proxy %s did not start: %s" % (tag, self.d.log()))
        self.secret = open(self.secret_file).read().strip() if tcp else None

    def url(self, path="/RPC2", auth=True):
        """The TCP URL of path, with the credentials unless auth is false."""
        cred = "va:%s@" % self.secret if auth else ""
        return "http://%s127.0.0.1:%d%s" % (cred, self.port, path)

    def sp(self, path="/RPC2", timeout=60):
        """An xmlrpc.client.ServerProxy over TCP with Basic auth."""
        return server_proxy(self.url(path), timeout)

    def usp(self, path="/RPC2", timeout=60):
        """An xmlrpc.client.ServerProxy over the unix listener."""
        return server_proxy("http://localhost" + path, timeout, unix_path=self.usock)

    def stop(self):
        """SIGTERM (SIGKILL after 15 * slow s); returns (exit code, seconds)."""
        return self.d.stop(15 * self.slow)


# ---- clients --------------------------------------------------------------

class TimeoutTransport(xmlrpc.client.Transport):
    """xmlrpc.client's HTTP transport with a socket timeout (seconds).

    With resend=False a request is never sent a second time: xmlrpc.client
    resends once when a kept-alive connection was dropped, which would
    hide from a test that the connection broke."""

    def __init__(self, timeout, use_builtin_types=False, resend=True):
        super().__init__(use_builtin_types=use_builtin_types)
        self.timeout = timeout
        self.resend = resend

    def request(self, host, handler, request_body, verbose=False):
        if self.resend:
            return super().request(host, handler, request_body, verbose)
        return self.single_request(host, handler, request_body, verbose)

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection over the unix socket at path."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class UnixTransport(TimeoutTransport):
    """TimeoutTransport over the unix socket at path (the URL's host is
    not used); one kept-alive connection."""

    def __init__(self, path, timeout, **kw):
        super().__init__(timeout, **kw)
        self.unix_path = path

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        self._connection = host, UnixHTTPConnection(self.unix_path, self.timeout)
        return self._connection[1]


def server_proxy(url, timeout=60, unix_path=None, allow_none=True, use_builtin_types=False,
                 resend=True):
    """An xmlrpc.client.ServerProxy for url whose calls time out after
    timeout seconds; over the unix socket unix_path when given.  The other
    options are xmlrpc.client's, and TimeoutTransport's resend."""
    kw = {"use_builtin_types": use_builtin_types, "resend": resend}
    if unix_path:
        transport = UnixTransport(unix_path, timeout, **kw)
    else:
        transport = TimeoutTransport(timeout, **kw)
    return xmlrpc.client.ServerProxy(url, transport=transport, allow_none=allow_none,
                                     use_builtin_types=use_builtin_types)


def fault_of(fn, *args):
    """(code, message) of the xmlrpc.client.Fault fn(*args) raised, or
    (None, None) when it returned.  Other exceptions pass through."""
    try:
        fn(*args)
    except xmlrpc.client.Fault as f:
        return f.faultCode, f.faultString
    return None, None


def call_xml(method, *params):
    """The XML-RPC call of method with params, as bytes."""
    return xmlrpc.client.dumps(params, method).encode()


def curl(args, timeout=30):
    """Runs curl -sS --max-time timeout ARGS; returns (exit status, stdout,
    stderr) as text."""
    r = subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + args,
                       capture_output=True, timeout=timeout + 5)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def recv_all(s):
    """Everything socket s receives until the peer closes, as bytes (each
    recv bounded by the socket's own timeout)."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def http_unix(sock, body, timeout=10, path="/RPC2"):
    """POSTs body to path over the unix socket sock with Connection: close
    and reads until the server closes; returns the whole response (head
    and body) as text.  Each socket operation times out after timeout s."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        s.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
                   "Content-Length: %d\r\nConnection: close\r\n\r\n" % (path, len(body))).encode()
                  + body)
        return recv_all(s).decode(errors="replace")
    finally:
        s.close()


def newest_event_id(sp):
    """The id of the newest event in proxy.events of ServerProxy sp (0: none
    yet), also when the queue holds more than one answer's 256 events or
    the oldest have fallen off it."""
    try:
        evs = sp.proxy.events(0, 0)
    except xmlrpc.client.Fault as f:
        m = re.search(r"kept is \d+, the newest (\d+)", f.faultString)
        if f.faultCode != FAULT_EVENTS_LOST or not m:
            raise
        return int(m.group(1))
    while len(evs) == 256:
        evs = sp.proxy.events(evs[-1]["id"], 0)
    return evs[-1]["id"] if evs else 0


def wait_event(sp, since, pred, timeout):
    """Reads proxy.events of ServerProxy sp after id since, in long polls of
    at most 5 s, until pred(event) holds or timeout seconds have passed.
    Returns (the event, or None after the timeout; the last id read)."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None, since
        for e in sp.proxy.events(since, max(1, min(5, int(left + 0.5)))):
            since = max(since, e["id"])
            if pred(e):
                return e, since
