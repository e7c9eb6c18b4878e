#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests of vactl and of the Python examples, against a real
va-agent (on unix-listen:) and a real va-proxy (on TCP and on a unix
socket), in a fresh temporary directory.

    BUILD=DIR tests/e2e-vactl.py

The binaries are $BUILD/agent/va-agent, $BUILD/agent/va-clip,
$BUILD/host/proxy/va-proxy and $BUILD/host/vactl/vactl (BUILD defaults to
the current directory when it holds them, else to _build beside this
file's directory); VA_AGENT, VA_CLIP, VA_PROXY and VACTL override each.
Prints one line per check and ends with "N passed, N failed"; exits 1 when
a check failed, 77 (skipped) when a binary is missing.  The harness
(processes, counting) is tests/valib.py.

test_text: text of every plane and CR through vactl (common/text.h): the
clipboard, va.echo (readable and --json), guest paths with emoji for
push, pull and stat, faults naming them, what vactl writes on the wire
and reads from it (a small HTTP server of this file records the call),
and text XML cannot carry refused before anything is sent (exit 2, the
argument named).

test_hostile_answers: the guest's operations (net, fs, users, ...)
answered by a fake agent with wrong types, missing members, INT64_MIN and
INT64_MAX, large arrays: vactl exits 0 or 1, the sanitizers say nothing.
"""
import hashlib
import http.server
import json
import os
import pty
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import valib  # noqa: E402
from valib import MiB, check, free_port  # noqa: E402

BINS = valib.Binaries()
AGENT, CLIP, PROXY, VACTL = BINS.agent, BINS.clip, BINS.proxy, BINS.vactl
EXAMPLES = os.path.join(valib.TOP, "examples/python")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


class Proxy(valib.Proxy):
    binary = PROXY


class Env(valib.RunDir):
    """The agent, the proxy and their files in a temporary directory."""

    def __init__(self):
        super().__init__("va-e2e-vactl-")
        self.guest = self.path("guest")  # what the agent is asked to touch
        self.host = self.path("host")    # what vactl writes locally
        os.mkdir(self.guest)
        os.mkdir(self.host)
        self.conf = self.empty
        self.secret_file = self.path("secret")
        with open(self.secret_file, "w") as f:
            f.write("e2e-secret-%d\n" % os.getpid())
        os.chmod(self.secret_file, 0o600)
        self.shutdown_ran = self.path("shutdown-ran")
        self.agent = self.proxy = None

    def start(self):
        """Starts the agent, then the proxy (TCP and unix listeners, the
        secret above); raises RuntimeError when either does not start."""
        self.agent = valib.start_agent(
            self, "agent", AGENT, shutdown_command='echo "$VA_SHUTDOWN_MODE $VA_SHUTDOWN_DELAY" > '
            + shlex.quote(self.shutdown_ran))
        self.agent_sock, self.control = self.agent.sock, self.agent.ctl
        self.proxy = Proxy(self, "vactl", ["unix:" + self.agent_sock], auth_file=self.secret_file)
        self.proxy_sock = self.proxy.usock
        self.port = self.proxy.port
        self.url = f"http://127.0.0.1:{self.port}/RPC2"

    def kill_agent(self):
        if self.agent and self.agent.alive():
            self.agent.signal(signal.SIGKILL)
            self.agent.p.wait()

    def stop(self):
        for d in (self.proxy and self.proxy.d, self.agent):
            if d:
                d.stop(5)

    def vactl(self, *args, url=None, auth=True, stdin=None, timeout=120):
        cmd = [VACTL, "--url", url or self.url]
        if auth and not (url or "").startswith("unix:"):
            cmd += ["--auth-file", self.secret_file]
        cmd += list(args)
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)

    def example(self, script, *args, timeout=120):
        return subprocess.run(
            [sys.executable, os.path.join(EXAMPLES, script), "--url", self.url,
             "--secret-file", self.secret_file] + list(args),
            capture_output=True, text=True, timeout=timeout)

    def wait_ready(self):
        """True when vactl ping succeeds within 15 s."""
        return valib.wait_for(lambda: self.vactl("ping").returncode == 0, 15, 0.2)


def out(r):
    return r.stdout.decode(errors="replace") if isinstance(r.stdout, bytes) else r.stdout


def err(r):
    return r.stderr.decode(errors="replace") if isinstance(r.stderr, bytes) else r.stderr


def show(r):
    return f"rc {r.returncode}, stdout {out(r)[:300]!r}, stderr {err(r)[:300]!r}"


def run_in_pty(argv, timeout=120):
    """Runs argv with stdout and stderr on a pseudo-terminal; returns (rc, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        else:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        status = 0
    os.close(fd)
    return os.waitstatus_to_exitcode(status), data.decode(errors="replace")


def make_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n


def test_basics(e):
    r = subprocess.run([VACTL, "--version"], capture_output=True, text=True)
    check("--version", r.returncode == 0 and "vactl" in r.stdout, show(r))
    r = subprocess.run([VACTL, "--help"], capture_output=True, text=True)
    check("--help lists the commands", r.returncode == 0 and "pull REMOTE LOCAL" in r.stdout,
          show(r))
    for c in ("ping", "info", "capabilities", "status", "shutdown", "dmesg", "clipboard",
              "events", "push", "pull", "stat", "call"):
        r = subprocess.run([VACTL, c, "--help"], capture_output=True, text=True)
        check(f"{c} --help", r.returncode == 0 and r.stdout.startswith("usage: vactl")
              and c in r.stdout, show(r))
    r = subprocess.run([VACTL, "help", "push"], capture_output=True, text=True)
    check("help push", r.returncode == 0 and "--chunk-size" in r.stdout, show(r))


def test_commands(e):
    r = e.vactl("ping")
    check("ping", r.returncode == 0 and "answered" in out(r), show(r))
    r = e.vactl("--json", "ping")
    check("ping --json", r.returncode == 0 and json.loads(out(r)) is True, show(r))
    r = e.vactl("info")
    check("info", r.returncode == 0 and "hostname:" in out(r) and "kernel:" in out(r), show(r))
    r = e.vactl("info", "--json")
    ok = r.returncode == 0
    if ok:
        info = json.loads(out(r))
        ok = info["hostname"] == socket.gethostname() and "agent_version" in info
    check("info --json (options after the command)", ok, show(r))
    r = e.vactl("capabilities", "--json")
    ok = r.returncode == 0 and "va.file.read" in json.loads(out(r))["methods"]
    check("capabilities", ok, show(r))
    r = e.vactl("status", "--json")
    ok = r.returncode == 0
    if ok:
        st = json.loads(out(r))
        ok = st["connected"] is True and st["answered"] is True
    check("status", ok, show(r))
    r = e.vactl("status")
    check("status readable", r.returncode == 0 and "connected:" in out(r), show(r))

    r = e.vactl("dmesg", "--max", "4K")
    # klogctl is refused in some containers: then a clear fault (exit 1).
    check("dmesg", (r.returncode == 0 and len(r.stdout) <= 4096) or
          (r.returncode == 1 and "cannot read the kernel log" in err(r)), show(r))

    path = os.path.join(e.guest, "stat-me")
    with open(path, "wb") as f:
        f.write(b"12345")
    os.chmod(path, 0o640)
    r = e.vactl("stat", path)
    check("stat", r.returncode == 0 and "size:  5" in out(r) and "mode:  0640" in out(r)
          and "type:  file" in out(r), show(r))
    r = e.vactl("--json", "stat", path)
    ok = r.returncode == 0 and json.loads(out(r))["size"] == 5
    check("stat --json", ok, show(r))

    r = e.vactl("clipboard", "set", "from the host")
    check("clipboard set TEXT", r.returncode == 0 and "serial" in out(r), show(r))
    r = e.vactl("clipboard", "get")
    check("clipboard get", r.returncode == 0 and out(r) == "from the host", show(r))
    r = e.vactl("clipboard", "set", "-", stdin="line 1\nline 2 ünïcode\n".encode())
    check("clipboard set - (stdin)", r.returncode == 0, show(r))
    r = e.vactl("clipboard", "get")
    check("clipboard get after stdin", out(r) == "line 1\nline 2 ünïcode\n", show(r))
    r = e.vactl("--json", "clipboard", "get")
    ok = r.returncode == 0 and json.loads(out(r))["origin"] == "host"
    check("clipboard get --json", ok, show(r))

    r = subprocess.run([CLIP, "--socket", e.control, "copy"], input=b"copied in the guest",
                       capture_output=True)
    check("va-clip copy in the guest", r.returncode == 0, show(r))
    ok = False
    for _ in range(50):
        r = e.vactl("clipboard", "guest")
        if out(r) == "copied in the guest":
            ok = True
            break
        time.sleep(0.1)
    check("clipboard guest", ok and r.returncode == 0, show(r))

    r = e.vactl("events")
    check("events lists hello and clipboard", r.returncode == 0 and " hello " in out(r)
          and " clipboard " in out(r), show(r))
    r = e.vactl("--json", "events")
    ok = r.returncode == 0
    if ok:
        evs = [json.loads(line) for line in out(r).splitlines()]
        ok = any(ev["type"] == "clipboard" and ev["data"].get("text") == "copied in the guest"
                 for ev in evs)
    check("events --json (one object a line)", ok, show(r))

    # --follow prints what comes after it started, and nothing older.
    f = subprocess.Popen([VACTL, "--url", e.url, "--auth-file", e.secret_file, "events",
                          "--follow", "--wait", "2"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(1.0)
    subprocess.run([CLIP, "--socket", e.control, "copy"], input=b"followed", check=False)
    line = b""
    deadline = time.time() + 10
    while time.time() < deadline and b"followed" not in line:
        rl, _, _ = select.select([f.stdout], [], [], 0.5)
        if rl:
            line += os.read(f.stdout.fileno(), 65536)
    f.terminate()
    f.wait()
    check("events --follow", b"clipboard" in line and b"followed" in line
          and b" hello " not in line, repr(line[:300]))

    r = e.vactl("shutdown", "--mode", "reboot", "--delay", "0")
    ok = r.returncode == 0
    ran = ""
    for _ in range(50):
        if os.path.exists(e.shutdown_ran):
            ran = open(e.shutdown_ran).read()
            if ran:
                break
        time.sleep(0.1)
    check("shutdown runs the configured command", ok and ran.startswith("reboot 0"),
          show(r) + f", ran {ran!r}")
    r = e.vactl("events", "--since", "0")
    check("shutdown notice is an event", " shutdown " in out(r), show(r))

    r = e.vactl("--json", "call", "va.echo", "i:42", "i8:8589934592", "s:text", "b:true",
                "d:1.5", "n:", 'j:{"a": [1, "x"]}', "@" + path, "plain")
    ok = r.returncode == 0 and json.loads(out(r)) == [
        42, 8589934592, "text", True, 1.5, None, {"a": [1, "x"]}, "MTIzNDU=", "plain"]
    check("call with typed arguments (--json)", ok, show(r))
    r = e.vactl("call", "va.echo", "i:7", "s:two words")
    check("call readable", r.returncode == 0 and out(r) == "- 7\n- two words\n", show(r))
    r = e.vactl("call", "system.listMethods")
    check("call system.listMethods", r.returncode == 0 and "proxy.events" in out(r)
          and "va.ping" in out(r), show(r))

    r = e.vactl("ping", url="unix:" + e.proxy_sock)
    check("unix socket URL", r.returncode == 0, show(r))
    r = subprocess.run([VACTL, "ping"], capture_output=True,
                       env=dict(os.environ, VA_URL="unix:" + e.proxy_sock))
    check("VA_URL", r.returncode == 0, show(r))
    secret = open(e.secret_file).read().strip()
    r = e.vactl("ping", url=f"http://va:{secret}@127.0.0.1:{e.port}/RPC2", auth=False)
    check("credentials in the URL", r.returncode == 0, show(r))
    r = e.vactl("--guest", "guest0", "ping")
    check("--guest NAME", r.returncode == 0, show(r))


def test_exit_codes(e):
    for args, what in ((["frobnicate"], "unknown command"), (["ping", "--bogus"], "bad option"),
                       (["stat"], "missing argument"), (["ping", "extra"], "extra argument"),
                       (["call", "va.echo", "i:notanumber"], "bad typed argument"),
                       (["shutdown", "--mode", "sideways"], "bad mode"),
                       (["push", "a", "relative/path"], "relative remote path"),
                       (["--timeout", "soon", "ping"], "bad timeout"), ([], "no command")):
        r = e.vactl(*args)
        check(f"exit 2: {what}", r.returncode == 2 and "vactl" in err(r), show(r))

    r = e.vactl("ping", url=f"http://127.0.0.1:{free_port()}/RPC2")
    check("exit 3: proxy not listening", r.returncode == 3 and "cannot reach the proxy"
          in err(r), show(r))
    r = e.vactl("ping", url="unix:" + os.path.join(e.dir, "nothing.sock"))
    check("exit 3: no unix socket", r.returncode == 3 and "cannot reach" in err(r), show(r))
    wrong = os.path.join(e.dir, "wrong-secret")
    with open(wrong, "w") as f:
        f.write("not the secret\n")
    r = subprocess.run([VACTL, "--url", e.url, "--auth-file", wrong, "ping"],
                       capture_output=True)
    check("exit 3: wrong secret (401)", r.returncode == 3 and "401" in err(r), show(r))
    r = e.vactl("ping", url=e.url, auth=False)
    check("exit 3: no secret (401) explains", r.returncode == 3 and "--auth-file" in err(r),
          show(r))
    r = e.vactl("--guest", "nosuchguest", "ping")
    check("exit 3: unknown guest (404)", r.returncode == 3 and "404" in err(r), show(r))

    r = e.vactl("stat", "/nonexistent/file")
    check("exit 1: guest fault (no such file)", r.returncode == 1 and
          "No such file" in err(r), show(r))
    r = e.vactl("call", "va.nosuchmethod")
    check("exit 1: no such method", r.returncode == 1 and "no such method" in err(r), show(r))
    r = e.vactl("pull", "/nonexistent/file", os.path.join(e.host, "x"))
    check("exit 1: pull of a missing file", r.returncode == 1 and
          not os.path.exists(os.path.join(e.host, "x")), show(r))
    r = e.vactl("pull", e.guest, os.path.join(e.host, "x"))
    check("exit 1: pull of a directory", r.returncode == 1 and "directory" in err(r), show(r))


def round_trip(e, size, name, *opts, url=None):
    src = os.path.join(e.host, name)
    make_file(src, size)
    remote = os.path.join(e.guest, name)
    back = os.path.join(e.host, name + ".back")
    digest = sha256_file(src)
    t0 = time.time()
    r = e.vactl("push", *opts, src, remote, url=url, timeout=600)
    ok = r.returncode == 0 and os.path.getsize(remote) == size and sha256_file(remote) == digest
    check(f"push {name} ({size} bytes)", ok and "SHA-256 verified" in out(r), show(r))
    r = e.vactl("pull", *opts, remote, back, url=url, timeout=600)
    ok = r.returncode == 0 and os.path.getsize(back) == size and sha256_file(back) == digest
    check(f"pull {name} ({size} bytes)", ok, show(r))
    leftovers = [f for f in os.listdir(e.host) if ".vactl-" in f]
    check(f"pull {name} left no temporary file", not leftovers, str(leftovers))
    for p in (src, remote, back):
        os.unlink(p)
    return time.time() - t0


def test_transfers(e):
    round_trip(e, 0, "empty")
    round_trip(e, 1, "one-byte")
    round_trip(e, MiB, "one-chunk")                        # the default chunk, exactly
    round_trip(e, 4 * MiB, "four-chunks")
    round_trip(e, 65536, "one-small-chunk", "--chunk-size", "64K")
    round_trip(e, 65537, "chunk-plus-one", "--chunk-size", "64K", "--jobs", "3")
    round_trip(e, 3 * MiB + 17, "over-unix", "--chunk-size", "1M", url="unix:" + e.proxy_sock)
    secs = round_trip(e, 100 * MiB, "hundred-mib")
    print(f"# 100 MiB pushed and pulled in {secs:.1f} s", flush=True)

    # Standard input and output, and a directory as the target.
    src = os.path.join(e.host, "piped")
    make_file(src, 1000000)
    data = open(src, "rb").read()
    r = e.vactl("push", "-", os.path.join(e.guest, "piped"), stdin=data)
    check("push - (standard input)", r.returncode == 0 and
          open(os.path.join(e.guest, "piped"), "rb").read() == data, show(r))
    r = e.vactl("pull", os.path.join(e.guest, "piped"), "-")
    check("pull to - (standard output)", r.returncode == 0 and r.stdout == data,
          f"rc {r.returncode}, {len(r.stdout)} bytes, {err(r)[:200]!r}")
    os.unlink(os.path.join(e.guest, "piped"))
    r = e.vactl("push", src, e.guest + "/")
    check("push into a directory keeps the name", r.returncode == 0 and
          os.path.exists(os.path.join(e.guest, "piped")), show(r))
    os.unlink(src)
    r = e.vactl("pull", os.path.join(e.guest, "piped"), e.host)
    check("pull into a directory keeps the name", r.returncode == 0 and
          open(os.path.join(e.host, "piped"), "rb").read() == data, show(r))


def test_progress(e):
    src = os.path.join(e.guest, "progress")
    make_file(src, 24 * MiB)
    dst = os.path.join(e.host, "progress")
    rc, text = run_in_pty([VACTL, "--url", e.url, "--auth-file", e.secret_file, "pull",
                           "--chunk-size", "1M", "--jobs", "2", src, dst])
    check("progress bar on a terminal", rc == 0 and "\r" in text and "%" in text
          and "/s" in text and "24.0 MiB" in text, repr(text[-300:]))
    r = e.vactl("pull", "--chunk-size", "1M", src, dst)
    check("no progress bar in a pipe", r.returncode == 0 and r.stderr == b"", show(r))
    for p in (src, dst):
        os.unlink(p)


def test_examples(e):
    r = e.example("guest_info.py")
    check("examples/python/guest_info.py", r.returncode == 0 and
          f"hostname: {socket.gethostname()}" in r.stdout and "va.file.read" in r.stdout,
          show(r))
    src = os.path.join(e.host, "example-src")
    make_file(src, 3 * MiB + 5)
    remote = os.path.join(e.guest, "example")
    back = os.path.join(e.host, "example-back")
    r = e.example("copy_file.py", "--chunk", "1000000", "to-guest", src, remote)
    check("examples/python/copy_file.py to-guest", r.returncode == 0 and "verified" in r.stdout
          and sha256_file(remote) == sha256_file(src), show(r))
    r = e.example("copy_file.py", "from-guest", remote, back)
    check("examples/python/copy_file.py from-guest", r.returncode == 0 and
          sha256_file(back) == sha256_file(src), show(r))
    r = e.example("copy_file.py", "from-guest", "/nonexistent/file", back + "2")
    check("examples/python/copy_file.py failure", r.returncode == 1 and
          not os.path.exists(back + "2") and "No such file" in r.stderr, show(r))
    r = e.example("set_clipboard.py", "set by python")
    check("examples/python/set_clipboard.py", r.returncode == 0 and "serial" in r.stdout and
          out(e.vactl("clipboard", "get")) == "set by python", show(r))
    w = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, "watch_events.py"),
                          "--url", e.url, "--secret-file", e.secret_file, "--count", "1",
                          "--wait", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.0)
    subprocess.run([CLIP, "--socket", e.control, "copy"], input=b"watched", check=False)
    try:
        o, er = w.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        w.kill()
        o, er = w.communicate()
    check("examples/python/watch_events.py", w.returncode == 0 and " clipboard " in o and
          "watched" in o, f"rc {w.returncode}, {o!r}, {er!r}")
    for p in (src, remote, back):
        os.unlink(p)


# Text that xmlrpc-c alone cannot hold (the corpus of tests/e2e-text.py).
CORPUS = [
    "see you \U0001F600",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467",             # ZWJ family
    "\U0001F1EB\U0001F1F7 \U0001F3F3\uFE0F\u200D\U0001F308",   # flags
    "\U00020000\U0002A6D6",                                   # CJK Extension B
    "\U0001D400\U0001D56B",                                   # math alphanumerics
    "e\u0301 a\u030A\u0301",                                  # combining marks
    "a\r\nb\rc",                                              # CRLF, lone CR
    "a\r\nb\rc\nd\r\r\n\n",
    "\r",
    "\U0010FFFF",
    "\uE000",                                                 # the value form's escape
    "\uE0001F600;",                                           # looks like an escape
    "<&>\"' &amp; &#13; ]]>",
    "tab\there \uFFFD",
]


def mixed_mib():
    """1 MiB (cut at a character) of the corpus, repeated, as UTF-8."""
    one = "".join(CORPUS).encode()
    data = (one * (MiB // len(one) + 1))[:MiB]
    while True:
        try:
            data.decode()
            return data
        except UnicodeDecodeError:
            data = data[:-1]


def readable_items(text):
    """The strings of vactl's readable list ("- item" lines, a JSON literal
    for an item with a line break)."""
    items = []
    for line in text.split("\n")[:-1]:
        item = line[2:]
        items.append(json.loads(item) if item.startswith('"') else item)
    return items


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records the body of each call and answers with self.server.answer."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(self.server.answer)))
        self.end_headers()
        self.wfile.write(self.server.answer)

    def log_message(self, *args):
        pass


def test_text(e):
    # The clipboard: TEXT as an argument, then get (as it is) and --json.
    for text in CORPUS:
        r = e.vactl("clipboard", "set", text.encode())
        g = e.vactl("clipboard", "get")
        j = e.vactl("--json", "clipboard", "get")
        ok = (r.returncode == 0 and g.returncode == 0 and g.stdout == text.encode() and
              j.returncode == 0 and json.loads(j.stdout)["text"] == text)
        check(f"clipboard set/get/--json {text[:12]!r} exactly", ok,
              f"{show(r)}; get {g.stdout[:80]!r}; json {j.stdout[:120]!r}")
    big = mixed_mib()
    r = e.vactl("clipboard", "set", "-", stdin=big)
    g = e.vactl("clipboard", "get")
    j = e.vactl("--json", "clipboard", "get")
    ok = (r.returncode == 0 and g.stdout == big and j.returncode == 0 and
          json.loads(j.stdout)["text"].encode() == big)
    check(f"clipboard set - of {len(big)} bytes of mixed text, get and --json exactly", ok,
          f"{show(r)}; get {len(g.stdout)} bytes, {err(g)[:200]!r}")
    # JSON output: UTF-8 as it is, only what JSON requires escaped.
    check("--json writes emoji as UTF-8 and CR as \\r", b"see you \xf0\x9f\x98\x80" in
          e.vactl("--json", "call", "va.echo", CORPUS[0]).stdout and b'"a\\r\\nb\\rc"' in
          e.vactl("--json", "call", "va.echo", "a\r\nb\rc").stdout)

    # va.echo: every word, plain and s:, comes back (readable and --json).
    args = [t.encode() for t in CORPUS]
    r = e.vactl("call", "va.echo", *args)
    ok = r.returncode == 0 and readable_items(out(r)) == CORPUS
    check("call va.echo of the corpus, readable", ok, show(r))
    r = e.vactl("--json", "call", "va.echo", *args)
    ok = r.returncode == 0 and json.loads(out(r)) == CORPUS
    check("call va.echo of the corpus, --json", ok, show(r))
    r = e.vactl("--json", "call", "va.echo", *[b"s:" + a for a in args])
    ok = r.returncode == 0 and json.loads(out(r)) == CORPUS
    check("call va.echo of the corpus as s: words, --json", ok, show(r))
    r = e.vactl("--json", "call", "va.echo",
                'j:["\\ud83d\\ude00", "\U0001F600", "a\\r\\nb\\rc", "\\ue000", '
                '{"k\U0001F1EB\U0001F1F7": "\U00020000"}]'.encode())
    ok = r.returncode == 0 and json.loads(out(r)) == [
        ["\U0001F600", "\U0001F600", "a\r\nb\rc", "\uE000",
         {"k\U0001F1EB\U0001F1F7": "\U00020000"}]]
    check("call va.echo j: with surrogate pairs, raw emoji, \\r, a struct key", ok, show(r))
    r = e.vactl("call", "va.echo", "x\U0001F600\r\ny".encode(), url="unix:" + e.proxy_sock)
    check("call va.echo over the unix socket", r.returncode == 0 and
          readable_items(out(r)) == ["x\U0001F600\r\ny"], show(r))

    # Guest paths with emoji: push into a directory, stat, pull, a fault naming one.
    gdir = os.path.join(e.guest, "d\U0001F600")
    os.mkdir(gdir)
    src = os.path.join(e.host, "n\u00e9\U0001F1EB\U0001F1F7.bin")
    make_file(src, 3 * MiB + 5)
    digest = sha256_file(src)
    remote = os.path.join(gdir, os.path.basename(src))
    r = e.vactl("push", src, gdir + "/")
    ok = r.returncode == 0 and os.path.exists(remote) and sha256_file(remote) == digest
    check("push into a guest directory with an emoji keeps the emoji name", ok, show(r))
    r = e.vactl("--json", "stat", remote)
    ok = r.returncode == 0 and json.loads(out(r))["size"] == 3 * MiB + 5
    check("stat of a guest path with emoji", ok, show(r))
    back = os.path.join(e.host, "back\U0001F600")
    r = e.vactl("--json", "pull", remote, back)
    ok = (r.returncode == 0 and sha256_file(back) == digest and
          json.loads(out(r))["remote"] == remote and json.loads(out(r))["local"] == back)
    check("pull of a guest path with emoji (--json names both exactly)", ok, show(r))
    r = e.vactl("push", src, remote + ".2", "--jobs", "1")
    ok = r.returncode == 0 and sha256_file(remote + ".2") == digest
    check("push to a guest path with emoji", ok, show(r))
    r = e.vactl("stat", remote + "\U0001F308")
    check("a fault names a guest path with emoji exactly", r.returncode == 1 and
          (remote + "\U0001F308").encode() in r.stderr, show(r))
    for p in (src, remote, remote + ".2", back):
        if os.path.exists(p):  # what a failed check did not make
            os.unlink(p)

    # Guest -> host: va-clip copy, then clipboard guest and events.
    text = "copied \U0001F600 in the guest\r\nsecond\rthird \U00020000"
    subprocess.run([CLIP, "--socket", e.control, "copy"], input=text.encode(), check=False)
    got = b""
    for _ in range(50):
        got = e.vactl("clipboard", "guest").stdout
        if got == text.encode():
            break
        time.sleep(0.1)
    check("clipboard guest of emoji and CRLF exactly", got == text.encode(), repr(got[:120]))
    r = e.vactl("--json", "events", "--since", "0")
    evs = [json.loads(line) for line in out(r).splitlines()] if r.returncode == 0 else []
    check("events --json carries the guest's text exactly", any(
        ev["type"] == "clipboard" and ev["data"].get("text") == text for ev in evs), show(r))

    # The wire: vactl writes real UTF-8 and CR as &#13;, and reads both
    # forms back (through the gate).
    srv = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    srv.bodies = []
    srv.answer = ("<?xml version=\"1.0\"?><methodResponse><params><param><value><string>"
                  "a&#13;b\U0001F600&#x1F600;&#128512;\U00020000\uE000"
                  "</string></value></param></params></methodResponse>").encode()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        r = e.vactl("call", "va.echo", "x\r\ny\U0001F600", auth=False,
                    url=f"http://127.0.0.1:{srv.server_address[1]}/RPC2")
    finally:
        srv.shutdown()
        srv.server_close()
    body = srv.bodies[0] if srv.bodies else b""
    check("vactl writes CR as &#13; and the emoji as UTF-8", b"x&#13;\ny\xf0\x9f\x98\x80"
          in body and b"\r" not in body.replace(b"\r\n", b""), repr(body[:400]))
    check("vactl reads &#13;, raw and referenced emoji, U+E000 exactly", r.returncode == 0 and
          r.stdout == ("a\rb" + "\U0001F600" * 3 + "\U00020000\uE000\n").encode(), show(r))

    # Refused before anything is sent: exit 2, the argument named, and why.
    before = e.vactl("clipboard", "get").stdout
    bad = os.path.join(e.host, "bad-utf8")
    with open(bad, "wb") as f:
        f.write(b"valid, then \xfe")
    with open(bad, "rb") as f:
        r = subprocess.run([VACTL, "--url", e.url, "--auth-file", e.secret_file, "clipboard",
                            "set", "-"], stdin=f, capture_output=True, timeout=60)
    check("clipboard set - of invalid UTF-8: exit 2, standard input named", r.returncode == 2
          and "standard input: invalid UTF-8 at byte 12" in err(r), show(r))
    r = e.vactl("clipboard", "set", b"bell \x07")
    check("clipboard set of a control character: exit 2, TEXT named", r.returncode == 2 and
          "TEXT: a control character" in err(r), show(r))
    check("... and the clipboard did not change", e.vactl("clipboard", "get").stdout == before)
    for word, why in ((b"\xc0\xaf", "an overlong UTF-8 form at byte 0"),
                      (b"ab\xed\xa0\x80", "a UTF-16 surrogate at byte 2"),
                      (b"s:x\xef\xbf\xbe", "U+FFFE or U+FFFF, which are not characters at byte 3"),
                      (b"nul\x01", "a control character XML cannot carry at byte 3"),
                      (b'j:["ok", "\\ud800"]', "a UTF-16 surrogate without its pair at byte 10"),
                      (b'j:["\\u0007"]', "a control character XML cannot carry at byte 4")):
        r = e.vactl("call", "va.echo", "fine", word)
        check(f"call argument {word!r} refused: exit 2, argument 2 named",
              r.returncode == 2 and f"call: argument 2: {why}" in err(r), show(r))
    r = e.vactl("push", bad, b"/tmp/x\x1by")
    check("push to a REMOTE with a control character: exit 2, REMOTE named",
          r.returncode == 2 and "REMOTE: a control character" in err(r), show(r))
    r = e.vactl("stat", b"/tmp/\xff")
    check("stat of invalid UTF-8: exit 2", r.returncode == 2 and "REMOTE: invalid UTF-8" in err(r),
          show(r))
    latin1 = os.path.join(e.host.encode(), b"caf\xe9 latin-1")
    with open(latin1, "wb") as f:
        f.write(b"x")
    r = e.vactl("push", latin1, (e.guest + "/").encode())
    check("push of a local name that is not UTF-8 into a directory: exit 2", r.returncode == 2
          and "LOCAL's name: invalid UTF-8 at byte 3" in err(r), show(r))
    for p in (bad, latin1):
        os.unlink(p)


def test_interrupts(e):
    # 4 KiB chunks keep each pull running for seconds: in 64 KiB chunks the
    # 64 MiB took under 0.5 s once vactl and the agent got faster, and the
    # pull ended before the signal or the kill.
    src = os.path.join(e.guest, "slow")
    make_file(src, 64 * MiB)
    dst = os.path.join(e.host, "interrupted")
    # SIGINT in the middle of a pull.
    p = subprocess.Popen([VACTL, "--url", e.url, "--auth-file", e.secret_file, "pull",
                          "--chunk-size", "4K", "--jobs", "1", src, dst],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    o, er = p.communicate(timeout=60)
    left = [f for f in os.listdir(e.host) if "interrupted" in f]
    check("SIGINT during pull: exit 1, no partial file", p.returncode == 1 and not left,
          f"rc {p.returncode}, {er!r}, left {left}")
    # The agent killed in the middle of a pull.
    p = subprocess.Popen([VACTL, "--url", e.url, "--auth-file", e.secret_file, "pull",
                          "--chunk-size", "4K", "--jobs", "2", src, dst],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    running = p.poll() is None
    e.kill_agent()
    o, er = p.communicate(timeout=120)
    left = [f for f in os.listdir(e.host) if "interrupted" in f]
    check("agent killed during pull: exit 1, no partial file", running and
          p.returncode == 1 and not left, f"running {running}, rc {p.returncode}, "
          f"{er.decode(errors='replace')!r}, left {left}")
    r = e.vactl("ping")
    check("exit 1: guest agent not connected", r.returncode == 1 and "not connected" in err(r),
          show(r))
    os.unlink(src)


def xml_value(v):
    """An XML-RPC value of any Python value, i8 and <nil/> included
    (xmlrpc.client refuses integers past 32 bits)."""
    from xml.sax.saxutils import escape
    if v is None:
        return "<nil/>"
    if v is True or v is False:
        return "<boolean>%d</boolean>" % v
    if isinstance(v, int):
        return ("<i4>%d</i4>" if -(1 << 31) <= v < (1 << 31) else "<i8>%d</i8>") % v
    if isinstance(v, float):
        return "<double>%r</double>" % v
    if isinstance(v, str):
        return "<string>%s</string>" % escape(v)
    if isinstance(v, list):
        return "<array><data>%s</data></array>" % "".join(
            "<value>%s</value>" % xml_value(x) for x in v)
    return "<struct>%s</struct>" % "".join(
        "<member><name>%s</name><value>%s</value></member>" % (escape(k), xml_value(x))
        for k, x in v.items())


def test_hostile_answers(e):
    """The guest's operations answered by a hostile guest (a fake agent
    behind the proxy): wrong types, missing members, extreme numbers,
    large arrays.  vactl runs on the host: it says what it can and never
    crashes (exit 0 or 1, nothing from the sanitizers)."""
    from fakeguest import FakeGuest, response
    methods = ["va.ping", "va.net.interfaces", "va.net.routes", "va.time.get", "va.timezone",
               "va.os.info", "va.hostname", "va.users", "va.fs.info", "va.fs.status",
               "va.fs.thaw", "va.fs.trim", "va.disks", "va.cpu.list", "va.stats"]
    cmds = [["net"], ["net", "routes"], ["time"], ["timezone"], ["os"], ["hostname"],
            ["users"], ["fs"], ["fs", "status"], ["fs", "thaw"], ["fs", "trim"], ["disks"],
            ["cpu"], ["stats"]]
    imin, imax = -(1 << 63), (1 << 63) - 1
    keys = ["name", "mac", "addresses", "stats", "family", "address", "prefix", "mtu",
            "gateway", "dev", "metric", "ns", "offset_s", "user", "login_time", "pid",
            "mountpoint", "type", "used_bytes", "free_bytes", "total_bytes", "disks", "error",
            "mountpoints", "status", "since", "size_bytes", "serial", "cpu", "online", "load",
            "memory", "hostname", "kernel"]
    shapes = [None, imin, "text", [], {}, [1, "a", None, []],
              {k: imin for k in keys}, [{k: imax for k in keys}],
              [{k: [imin, {"x": None}] for k in keys}], [{k: {"a": []} for k in keys}],
              [{"name": "n", "addresses": [{}] * 500, "disks": [{"name": "d" * 300}] * 100}] * 40]
    g = FakeGuest(e.path("hostile.sock"))
    g.caps_body = response({"version": "9", "protocol": 1, "methods": methods,
                            "max_frame": 16 << 20})
    p = Proxy(e, "hostile", ["hostile=unix:" + e.path("hostile.sock")], tcp=False)
    cur = [b""]
    g.answer_fn = lambda method, body: cur[0]
    bad = []
    runs = 0
    try:
        g.wait_session()
        for sh in shapes:
            cur[0] = ('<?xml version="1.0"?><methodResponse><params><param><value>%s</value>'
                      '</param></params></methodResponse>' % xml_value(sh)).encode()
            for c in cmds:
                for js in ([], ["--json"]):
                    r = e.vactl(*js, *c, url="unix:" + p.usock, timeout=60)
                    runs += 1
                    if r.returncode not in (0, 1) or b"Sanitizer" in r.stderr or \
                            b"runtime error" in r.stderr:
                        bad.append((c, js, repr(sh)[:60], show(r)))
        check("vactl on %d hostile answers of the guest's operations: exit 0 or 1, no "
              "sanitizer report" % runs, not bad, bad[:3])
        cur[0] = ('<?xml version="1.0"?><methodResponse><params><param><value>%s</value>'
                  '</param></params></methodResponse>' % xml_value(
                      [{"mountpoint": "/", "type": "ext4", "used_bytes": imax,
                        "free_bytes": imax, "total_bytes": imax}])).encode()
        r = e.vactl("fs", url="unix:" + p.usock)
        check("vactl fs: used and free of INT64_MAX each: 50 %", r.returncode == 0 and
              " 50%" in out(r), show(r))
        cur[0] = ('<?xml version="1.0"?><methodResponse><params><param><value>%s</value>'
                  '</param></params></methodResponse>' % xml_value(
                      {"name": "Evil/Zone", "abbreviation": "EVL", "offset_s": imin,
                       "dst": False, "source": "x"})).encode()
        r = e.vactl("timezone", url="unix:" + p.usock)
        check("vactl timezone: an offset of INT64_MIN s, said as it is",
              r.returncode == 0 and "UTC-2562047788015215:30" in out(r), show(r))
    finally:
        p.stop()
        g.close()


def main():
    for b in BINS.missing(AGENT, CLIP, PROXY, VACTL):
        return valib.skip_run(f"{b} is not built")
    e = Env()
    try:
        try:
            e.start()
            ready, why = e.wait_ready(), ""
        except RuntimeError as ex:
            ready, why = False, str(ex)
        if check("the proxy and the agent answer", ready,
                 why or (e.proxy and e.proxy.d.log()[-500:])):
            test_basics(e)
            test_commands(e)
            test_exit_codes(e)
            test_transfers(e)
            test_progress(e)
            test_examples(e)
            test_text(e)
            test_hostile_answers(e)
            test_interrupts(e)   # last: it kills the agent
    finally:
        e.stop()
        e.finish(valib.RESULTS.failed == 0)
    return valib.summary()


if __name__ == "__main__":
    sys.exit(main())
