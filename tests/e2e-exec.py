#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests of va.exec.*, vactl exec, va.user.set_password and
va.ssh.keys.* (issue 15), against a real va-agent (on unix-listen:) and a
real va-proxy (on a unix socket), in a fresh temporary directory.

    BUILD=DIR tests/e2e-exec.py [--valgrind] [--quick]

Three agents: "on" (--enable-exec --enable-accounts), "off" (neither;
later enabled by its config file and SIGHUP, with exec-allow), and the
restarted one.  As root, where unshare(1) works, the "on" agent runs in a
mount namespace of its own whose /etc is a copy with a test user (vatest):
va.user.set_password and va.ssh.keys.* change that copy and that user's
home in the run directory, never the host's accounts; elsewhere those
checks are skipped (said so).  --valgrind runs the agents under
valgrind's memcheck (make check-valgrind) and wants every log empty;
--quick moves 16 MiB instead of 100 MiB through cat.

Prints one line per check and ends with "N passed, N failed"; exits 1
when a check failed, 77 (skipped) when a binary is missing.  The harness
(processes, counting) is tests/valib.py.
"""
import base64
import hashlib
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
import xmlrpc.client

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import valib  # noqa: E402
from valib import MiB, check, wait_for  # noqa: E402

BINS = valib.Binaries()
AGENT, PROXY, VACTL = BINS.agent, BINS.proxy, BINS.vactl
VALGRIND = "--valgrind" in sys.argv[1:]
QUICK = "--quick" in sys.argv[1:]
SLOW = 10 if VALGRIND else 1
FAULT_LIMIT = -509    # XMLRPC_LIMIT_EXCEEDED_ERROR
FAULT_REFUSED = -507  # XMLRPC_REQUEST_REFUSED_ERROR
FAULT_NO_METHOD = -506
TEST_UID = 4242
KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxJpbQmb4HTbCp3FP1Z6j3wVgq0oQ1B1d7ZyG2Sx3Qd one@host"
KEY2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDdJr6M2g7uQ2mZr0l3o1t9QhZbVd5pQ two@host"


class Proxy(valib.Proxy):
    binary = PROXY
    slow = SLOW


class Env(valib.RunDir):
    def __init__(self):
        super().__init__("va-e2e-exec-")
        self.vglogs = None
        if VALGRIND:
            self.vglogs = self.path("valgrind")
            os.mkdir(self.vglogs)
        self.ns = False
        self.etc = self.path("etc")
        self.home = self.path("home")

    def wrapper(self):
        if not VALGRIND:
            return []
        return ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                "--show-leak-kinds=definite", "--num-callers=30",
                "--log-file=" + os.path.join(self.vglogs, "vg.%p")]

    def make_etc(self):
        """A copy of /etc with the test users, and their homes: for the
        agent's own mount namespace."""
        shutil.copytree("/etc", self.etc, symlinks=True, ignore_dangling_symlinks=True,
                        ignore=shutil.ignore_patterns("ssl", "ssh", "shadow.lock", ".pwd.lock"))
        os.makedirs(self.home)
        users = [("vatest", TEST_UID), ("valink", TEST_UID + 1), ("vaother", TEST_UID + 2)]
        with open(os.path.join(self.etc, "passwd"), "a") as f:
            for name, uid in users:
                f.write("%s:x:%d:%d::%s:/bin/sh\n" % (name, uid, uid, os.path.join(self.home, name)))
        with open(os.path.join(self.etc, "group"), "a") as f:
            for name, uid in users:
                f.write("%s:x:%d:\n" % (name, uid))
        sh = os.path.join(self.etc, "shadow")
        if not os.path.exists(sh):
            open(sh, "w").close()
            os.chmod(sh, 0o640)
        with open(sh, "a") as f:
            for name, _ in users:
                f.write("%s:!:19000:0:99999:7:::\n" % name)
        for name, uid in users:
            d = os.path.join(self.home, name)
            os.mkdir(d, 0o755)
            os.chown(d, uid, uid)

    def start_agent(self, name, extra, ns=False, env=None):
        sock = self.path(name + ".sock")
        argv = self.wrapper() + [AGENT, "--config", self.path(name + ".conf"), "--channel",
                                 "unix-listen:" + sock, "--control", "none"] + list(extra)
        if not os.path.exists(self.path(name + ".conf")):
            open(self.path(name + ".conf"), "w").close()
        if ns:
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" /etc && exec "$@"', self.etc] + argv
        old = dict(os.environ)
        try:
            os.environ.update(env or {})
            d = valib.Daemon("agent " + name, argv, self.path(name + ".log"))
        finally:
            os.environ.clear()
            os.environ.update(old)
        d.sock = sock
        if not wait_for(lambda: os.path.exists(sock), 10 * SLOW):
            raise RuntimeError("agent %s did not start: %s" % (name, d.log()))
        return d

    def vactl(self, proxy, *args, stdin=None, timeout=120, **kw):
        return subprocess.run([VACTL, "--url", "unix:" + proxy.usock] + list(args), input=stdin,
                              capture_output=True, timeout=timeout * SLOW, **kw)


E = None
ON = OFF = None  # (agent, proxy)


def sp(p, timeout=60):
    return p.usp(timeout=timeout * SLOW)


def show(r):
    return "rc %d, stdout %r, stderr %r" % (r.returncode, r.stdout[:300], r.stderr[:500])


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def agent_pid(d):
    """The agent's own pid (the Daemon may be unshare, sh or valgrind in front of it)."""
    def find():
        for pid in valib.processes_naming(d.sock):
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read().strip()
            if comm in ("va-agent", "memcheck-amd64-"):
                return pid
        return None
    pid = None
    wait_for(lambda: find() is not None, 5)
    pid = find()
    return pid


def read_all(s, i, wait=5000, limit=60):
    """Reads command i to its end: (stdout, stderr, last answer)."""
    out, err = b"", b""
    end = time.monotonic() + limit * SLOW
    while time.monotonic() < end:
        r = s.va.exec.read(i, MiB, wait)
        out += r["stdout"].data
        err += r["stderr"].data
        if r["exited"] and r["stdout_eof"] and r["stderr_eof"]:
            return out, err, r
    raise RuntimeError("command %d did not end within %d s" % (i, limit))


def alive(pid):
    return valib.proc_state(pid) not in (None, "Z")


# ---- exec off ------------------------------------------------------------------

def test_disabled():
    agent, proxy = OFF
    s = sp(proxy)
    methods = s.va.capabilities()["methods"]
    check("exec off: no va.exec.* and no account method in va.capabilities",
          not [m for m in methods if m.startswith(("va.exec.", "va.user.", "va.ssh."))], methods)
    code, msg = valib.fault_of(s.va.exec.start, ["true"])
    check("exec off: va.exec.start answers a fault naming --enable-exec",
          code == FAULT_NO_METHOD and "--enable-exec" in msg and "exec = yes" in msg, (code, msg))
    code, msg = valib.fault_of(s.va.exec.read, 1)
    check("exec off: va.exec.read too", code == FAULT_NO_METHOD and "--enable-exec" in msg, msg)
    code, msg = valib.fault_of(s.va.user.set_password, "root", "x")
    check("accounts off: va.user.set_password answers a fault naming --enable-accounts",
          code == FAULT_NO_METHOD and "--enable-accounts" in msg, (code, msg))
    code, msg = valib.fault_of(s.va.ssh.keys.get, "root")
    check("accounts off: va.ssh.keys.get too", code == FAULT_NO_METHOD and "--enable-accounts" in msg,
          msg)
    r = E.vactl(proxy, "exec", "--", "true")
    check("exec off: vactl exec exits 255 and says how to turn exec on",
          r.returncode == 255 and b"--enable-exec" in r.stderr, show(r))


def test_enabled_by_config():
    """exec = yes and exec-allow in the config file, taken at SIGHUP."""
    agent, proxy = OFF
    with open(E.path("off.conf"), "w") as f:
        f.write("exec = yes\nexec-allow = /bin/echo, %s\n" % shutil.which("env"))
    since = os.path.getsize(agent.logpath)
    agent.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in open(agent.logpath, errors="replace").read()[since:], 10 * SLOW)
    s = sp(proxy)
    check("exec = yes + SIGHUP: va.exec.* listed",
          "va.exec.start" in s.va.capabilities()["methods"])
    r = E.vactl(proxy, "exec", "--", "/bin/echo", "allowed")
    check("exec-allow: a listed program runs", r.returncode == 0 and r.stdout == b"allowed\n", show(r))
    r = E.vactl(proxy, "exec", "--", "cat")
    check("exec-allow: another is refused, naming the list",
          r.returncode == 255 and b"exec-allow" in r.stderr, show(r))
    r = E.vactl(proxy, "exec", "--", "env", "/bin/sh", "-c", "true")
    check("exec-allow: compares the program's path (env runs, what it runs is its business)",
          r.returncode == 0, show(r))


# ---- exec on -------------------------------------------------------------------

def test_basics():
    _, proxy = ON
    r = E.vactl(proxy, "exec", "--", "cat", stdin=b"hi\n")
    check("echo hi | vactl exec -- cat prints hi", r.returncode == 0 and r.stdout == b"hi\n", show(r))
    r = E.vactl(proxy, "exec", "--", "sh", "-c", "exit 3")
    check("vactl exec -- sh -c 'exit 3' exits 3", r.returncode == 3, show(r))
    r = E.vactl(proxy, "exec", "--", "sh", "-c", "echo out; echo err >&2; kill -TERM $$")
    check("stdout and stderr apart; killed by SIGTERM: 143",
          r.returncode == 143 and r.stdout == b"out\n" and r.stderr == b"err\n", show(r))
    r = E.vactl(proxy, "exec", "--", "/no/such/program")
    check("a missing program: 255 and the reason",
          r.returncode == 255 and b"No such file" in r.stderr, show(r))
    r = E.vactl(proxy, "exec", "--", "sh", "-c", 'echo "$VA_E2E_AGENT_ONLY|$PATH|$HOME"')
    check("the environment is the command's own, not the agent's",
          r.returncode == 0 and r.stdout.startswith(b"|/usr/local/sbin:") and b"|/root" in r.stdout
          if os.geteuid() == 0 else r.stdout.startswith(b"|"), show(r))
    r = E.vactl(proxy, "exec", "-e", "FOO=bar baz", "--", "sh", "-c", 'echo "$FOO"')
    check("--env sets a variable", r.stdout == b"bar baz\n", show(r))
    r = E.vactl(proxy, "exec", "--", "sh", "-c", "ls /proc/$$/fd")
    fds = sorted(int(x) for x in r.stdout.split())
    check("the command gets fds 0, 1 and 2 only", fds == [0, 1, 2], show(r))
    r = E.vactl(proxy, "exec", "--", "sh", "-c", 'echo $$ $(cut -d" " -f5,6 /proc/$$/stat)')
    w = r.stdout.split()
    check("its own process group and session (pgid = sid = pid)",
          len(w) == 3 and w[0] == w[1] == w[2], show(r))
    r = E.vactl(proxy, "exec", "--cwd", "/tmp", "--", "pwd")
    check("--cwd", r.stdout == b"/tmp\n", show(r))
    r = E.vactl(proxy, "exec", "--", "sh", "-c", "echo argv: \"$0\" \"$1\"", "a b", "c;d")
    check("argv only: words reach the program as they are (no shell)",
          r.stdout == b"argv: a b c;d\n", show(r))
    test_text()


# Every plane and CR (common/text.h): what vactl exec sends is built with
# va_text_value, and what cannot be carried is refused before sending.
TEXT = "\U0001F600 \U0001F469\u200D\U0001F469\u200D\U0001F467 \U00020000 \U0001D538 e\u0301 a\r\nb\rc \ue000"


def test_text():
    _, proxy = ON
    r = E.vactl(proxy, "exec", "-e", "VA_TEXT=" + TEXT, "--cwd", "/", "--",
                "sh", "-c", 'printf "%s|%s" "$0" "$VA_TEXT"', TEXT)
    check("exec: emoji, CJK Ext B, math letters, a combining mark, CR and U+E000 reach the command "
          "as they are, in argv and --env",
          r.returncode == 0 and r.stdout == (TEXT + "|" + TEXT).encode(), show(r))
    d = E.path("d\U0001F600\r")
    os.mkdir(d)
    r = E.vactl(proxy, "exec", "--cwd", d, "--", "pwd")
    check("exec --cwd: a directory named with an emoji and CR",
          r.returncode == 0 and r.stdout == d.encode() + b"\n", show(r))
    r = E.vactl(proxy, "exec", "--", "echo", b"a\xffb")
    check("exec: invalid UTF-8 in an argument: exit 2 before sending, the argument named",
          r.returncode == 2 and b"ARG 1: invalid UTF-8 at byte 1" in r.stderr, show(r))
    r = E.vactl(proxy, "exec", "--user", b"\xed\xa0\x80", "--", "true")
    check("exec --user: a UTF-16 surrogate: exit 2",
          r.returncode == 2 and b"--user: a UTF-16 surrogate at byte 0" in r.stderr, show(r))
    r = E.vactl(proxy, "exec", "-e", "A=1", "-e", "B=x\x01", "--", "true")
    check("exec --env: a control character: exit 2, which --env said",
          r.returncode == 2 and b"--env (the 2nd): a control character XML cannot carry at byte 3"
          in r.stderr, show(r))


def test_streaming():
    """A line, a second of sleep, a line: the first reaches the host before
    the second is printed."""
    _, proxy = ON
    p = subprocess.Popen([VACTL, "--url", "unix:" + proxy.usock, "exec", "--", "sh", "-c",
                          "echo first; sleep 1; date +%s.%N; echo second"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    for _ in range(3):
        line = p.stdout.readline()
        lines.append((time.time(), line))
    p.wait(30)
    ok = len(lines) == 3 and lines[0][1] == b"first\n" and lines[2][1] == b"second\n"
    printed = float(lines[1][1]) if ok else 0
    check("streaming: the first line arrived %.2f s before the guest printed the second"
          % (printed - lines[0][0] if ok else 0),
          ok and lines[0][0] < printed - 0.5 and p.returncode == 0,
          "%r rc %r" % (lines, p.returncode))
    # The same with the API: a read returns as soon as the first line is there.
    s = sp(proxy)
    i = s.va.exec.start(["sh", "-c", "echo one; sleep 2; echo two"])
    t = time.monotonic()
    got = b""
    while b"one" not in got and time.monotonic() - t < 10:
        got += s.va.exec.read(i, 1024, 5000)["stdout"].data
    dt = time.monotonic() - t
    out, _, last = read_all(s, i)
    check("va.exec.read (wait_ms 5000) answers with the first line after %.2f s, the rest "
          "later" % dt, got == b"one\n" and dt < 1.5 and out == b"two\n" and last["exit_code"] == 0,
          (got, dt, out, last))


def test_example():
    """examples/python/exec_stream.py prints lines as they come."""
    _, proxy = ON
    ex = os.path.join(valib.TOP, "examples", "python", "exec_stream.py")
    r = subprocess.run([sys.executable, ex, "--url", "unix:" + proxy.usock, "--", "sh", "-c",
                        "echo a; sleep 1; echo b >&2; printf tail; exit 4"],
                       capture_output=True, text=True, timeout=60 * SLOW)
    lines = [ln.split(None, 1) for ln in r.stdout.splitlines()]
    # Each stream in its order; the two streams are not ordered with each other.
    ok = (r.returncode == 4 and len(lines) == 4 and lines[0][1] == "stdout: a"
          and float(lines[0][0]) < 0.9 and lines[3][1] == "exit 4"
          and sorted(ln[1] for ln in lines[1:3]) == ["stderr: b", "stdout: tail"]
          and all(float(ln[0]) >= 0.9 for ln in lines[1:]))
    check("examples/python/exec_stream.py streams lines with their times, exit 4", ok,
          "rc %d: %r %r" % (r.returncode, r.stdout, r.stderr))


def test_big_cat():
    _, proxy = ON
    size = (16 if QUICK else 100) * MiB
    src, dst = E.path("cat-in"), E.path("cat-out")
    with open(src, "wb") as f:
        seed = hashlib.sha256(b"exec").digest()
        block = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(256)) * 128
        for _ in range(size // len(block)):
            f.write(block)
    want = hashlib.sha256(open(src, "rb").read()).hexdigest()
    t = time.monotonic()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        r = subprocess.run([VACTL, "--url", "unix:" + proxy.usock, "exec", "--", "cat"],
                           stdin=fin, stdout=fout, stderr=subprocess.PIPE, timeout=600 * SLOW)
    dt = time.monotonic() - t
    got = hashlib.sha256(open(dst, "rb").read()).hexdigest()
    check("%d MiB through vactl exec -- cat both ways in %.1f s (%.0f MB/s), SHA-256 equal"
          % (size // MiB, dt, size / dt / 1e6), r.returncode == 0 and got == want,
          "rc %d, %s vs %s, stderr %r" % (r.returncode, got, want, r.stderr[-300:]))
    os.unlink(src)
    os.unlink(dst)


def test_stdin_close():
    _, proxy = ON
    r = E.vactl(proxy, "exec", "--", "sh", "-c", "cat; echo done", stdin=b"abc")
    check("stdin's end reaches the command (cat ends, then 'done')",
          r.returncode == 0 and r.stdout == b"abcdone\n", show(r))
    r = E.vactl(proxy, "exec", "--", "cat", stdin=b"")
    check("empty stdin: cat ends at once", r.returncode == 0 and r.stdout == b"", show(r))
    s = sp(proxy)
    i = s.va.exec.start(["wc", "-c"])
    n1 = s.va.exec.write(i, xmlrpc.client.Binary(b"x" * 1000))
    n2 = s.va.exec.write(i, xmlrpc.client.Binary(b"y" * 10), True)
    code, msg = valib.fault_of(s.va.exec.write, i, xmlrpc.client.Binary(b"z"))
    out, _, last = read_all(s, i)
    check("va.exec.write, close=true, then a write is refused; wc counts 1010",
          n1 == 1000 and n2 == 10 and code == FAULT_REFUSED and out.strip() == b"1010"
          and last["exit_code"] == 0, (n1, n2, code, msg, out, last))
    i = s.va.exec.start(["cat"], {"stdin": xmlrpc.client.Binary(b"given at start")})
    out, _, _ = read_all(s, i)
    check("opts.stdin: written, then closed", out == b"given at start", out)
    i = s.va.exec.start(["sh", "-c", "exec 0<&-; sleep 0.3; echo closed"])
    time.sleep(1)
    code, _ = valib.fault_of(s.va.exec.write, i, xmlrpc.client.Binary(b"late"))
    out, _, _ = read_all(s, i)
    check("a command that closed its stdin: the write says so (fault %r)" % code,
          code == FAULT_REFUSED and out == b"closed\n", (code, out))


def ps_marked(mark):
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if mark.encode() in f.read() and valib.proc_state(int(d)) not in (None, "Z"):
                        found.append(int(d))
            except OSError:
                pass
    return found


def test_timeout():
    _, proxy = ON
    mark = "31%d.25" % (os.getpid() % 1000)
    t = time.monotonic()
    r = E.vactl(proxy, "exec", "--timeout", "2", "--", "sh", "-c",
                "sleep %s & sleep %s & (sleep %s; echo never) ; wait" % (mark, mark, mark))
    dt = time.monotonic() - t
    gone = wait_for(lambda: not ps_marked(mark), 5)
    check("--timeout 2: a group of forked sleeps killed after %.1f s, exit 137, none left" % dt,
          r.returncode == 137 and 1.5 < dt < 6 * SLOW and gone and b"timeout" in r.stderr
          and b"never" not in r.stdout, "%s; left %r" % (show(r), ps_marked(mark)))
    s = sp(proxy)
    i = s.va.exec.start(["sleep", "30"], {"timeout_s": 1})
    _, _, last = read_all(s, i)
    check("opts.timeout_s: the read says signal 9 and timed_out",
          last.get("signal") == 9 and last["timed_out"], last)


def test_limits():
    _, proxy = ON
    s = sp(proxy)
    for c in s.va.exec.list():
        s.va.exec.kill(c["id"], "KILL")
        read_all(s, c["id"])
    ids = [s.va.exec.start(["sleep", "60"]) for _ in range(16)]
    code, msg = valib.fault_of(s.va.exec.start, ["true"])
    check("17 concurrent commands: the 17th gets a busy fault",
          code == FAULT_LIMIT and "busy" in msg and "16" in msg, (code, msg))
    lst = s.va.exec.list()
    check("va.exec.list shows the 16", len(lst) == 16 and all(not c["exited"] for c in lst),
          len(lst))
    for i in ids:
        s.va.exec.kill(i, "KILL")
    for i in ids:
        _, _, last = read_all(s, i)
    i = s.va.exec.start(["true"])
    _, _, last = read_all(s, i)
    check("after they ended and were read, a command runs again; a read forgets it",
          last["exit_code"] == 0 and s.va.exec.list() == [], last)
    code, msg = valib.fault_of(s.va.exec.read, i)
    check("a forgotten id: a clear fault", code == -502 and "no command" in msg, msg)
    for args, want in (([[]], "argv"), ([["true"], {"frob": 1}], "unknown option"),
                       ([["true"], {"cwd": "rel"}], "absolute"), ([["./x"]], "absolute path"),
                       ([["true"], {"timeout_s": -1}], "out of range")):
        code, msg = valib.fault_of(s.va.exec.start, *args)
        check("va.exec.start %r: fault %r" % (args, msg[:60] if msg else msg),
              code is not None and want in msg, msg)
    code, msg = valib.fault_of(s.va.exec.read, 1, 0)
    check("va.exec.read max_bytes 0: fault", code == -502, msg)
    code, msg = valib.fault_of(s.va.exec.kill, 1, "NOSUCH")
    check("va.exec.kill with an unknown signal: fault", code == -502, msg)


def test_memory_bounds():
    """A command that floods its output, one that never reads its input:
    the agent's memory stays within its buffers."""
    agent, proxy = ON
    pid = agent_pid(agent)
    s = sp(proxy)
    # ASan's quarantine and valgrind keep freed memory: wider bounds there.
    with open("/proc/%d/maps" % pid) as f:
        loose = VALGRIND or "libasan" in f.read()
    before = rss_kb(pid)
    flood = s.va.exec.start(["sh", "-c", "while :; do cat /proc/self/maps; done"])
    deaf = s.va.exec.start(["sleep", "60"])
    chunk = xmlrpc.client.Binary(b"z" * MiB)
    first = s.va.exec.write(deaf, chunk)
    t = time.monotonic()
    second = s.va.exec.write(deaf, chunk)  # waits 10 s for room that never comes
    waited = time.monotonic() - t
    time.sleep(1)
    after = rss_kb(pid)
    lst = {c["id"]: c for c in s.va.exec.list()}
    # 1 MiB of stdout and 1 MiB of stdin buffered, the waiting write's rest,
    # and what one 1 MiB write call costs on its way (frame, parse) and the
    # heap keeps: a bound, not a leak.
    check("flood + deaf reader: the agent's RSS %.1f -> %.1f MiB; the flood's stdout holds "
          "%d bytes (its buffer), the second write took %d bytes after %.1f s"
          % (before / 1024, after / 1024, lst[flood]["stdout_buffered"], second, waited),
          (after - before) / 1024 < (16 if not loose else 64)
          and lst[flood]["stdout_buffered"] == MiB
          and first == MiB and second < 128 * 1024 and 9 < waited < 30 * SLOW,
          (before, after, lst, first, second))
    data = b""
    while len(data) < 8 * MiB:
        data += s.va.exec.read(flood, MiB, 1000)["stdout"].data
    later = rss_kb(pid)
    check("8 MiB more of the flood read through its 1 MiB buffer, nothing dropped (lines "
          "whole): the RSS stays at %.1f MiB (%+.1f%s)" % (later / 1024, (later - after) / 1024,
                                                          ", not bounded under ASan/valgrind"
                                                          if loose else ""),
          data.count(b"\n") > 100 and all(b" " in ln for ln in data.split(b"\n")[1:-1][:1000])
          and (loose or (later - after) / 1024 < 2), (after, later))
    for i in (flood, deaf):
        s.va.exec.kill(i, "KILL")
        read_all(s, i)


def test_signals():
    _, proxy = ON
    p = subprocess.Popen([VACTL, "--url", "unix:" + proxy.usock, "exec", "--", "sh", "-c",
                          'trap "echo got INT; exit 5" INT; echo ready; while :; do sleep 0.1; done'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready = p.stdout.readline()
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=15 * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    check("Ctrl-C (SIGINT to vactl) reaches the guest's process group: the trap ran, exit 5",
          ready == b"ready\n" and out == b"got INT\n" and p.returncode == 5,
          (ready, out, err, p.returncode))


def run_pty(argv, inputs=(), timeout=30, signal_after=None):
    """Runs argv on a new pty; feeds inputs ((delay, bytes)...); returns
    (exit status, output, termios before, termios after)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    before = termios.tcgetattr(fd)
    out = b""
    end = time.monotonic() + timeout * SLOW
    pending = list(inputs)
    start = time.monotonic()
    sent_sig = False
    while time.monotonic() < end:
        if pending and time.monotonic() - start >= pending[0][0]:
            os.write(fd, pending.pop(0)[1])
        if signal_after and not sent_sig and time.monotonic() - start >= signal_after[0]:
            os.kill(pid, signal_after[1])
            sent_sig = True
        r, _, _ = select.select([fd], [], [], 0.1)
        eof = False
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            eof = not chunk
            out += chunk
        # At the pty's end (vactl closed it) vactl is exiting: wait for it.
        for _ in range(200 if eof else 1):
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if eof:
                time.sleep(0.05)
        if done:
            after = termios.tcgetattr(fd)
            os.close(fd)
            return os.waitstatus_to_exitcode(st), out, before, after
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(fd)
    return None, out, before, None


def test_tty():
    _, proxy = ON
    base = [VACTL, "--url", "unix:" + proxy.usock, "exec", "--tty", "--"]
    rc, out, before, after = run_pty(base + ["sh", "-c", "tty; stty size; echo ${TERM:-none}"])
    check("--tty: a pty in the guest with the local size and TERM; the terminal restored",
          rc == 0 and b"/dev/pts/" in out and before == after, (rc, out, before == after))
    rc, out, before, after = run_pty(base + ["sh", "-i"], [(1.0, b"echo hel''lo\r"), (2.0, b"exit 7\r")])
    check("--tty: an interactive shell: typed commands run, its exit status, terminal restored",
          rc == 7 and b"hello" in out and before == after, (rc, out[-300:]))
    rc, out, before, after = run_pty(base + ["sh", "-c", "sleep 0.5; cat"], [(1.5, b"\x03")])
    check("--tty: Ctrl-C is a byte for the guest's terminal, which kills cat (130)",
          rc == 130 and before == after, (rc, out))
    rc, out, before, after = run_pty(base + ["sleep", "30"], signal_after=(1.0, signal.SIGTERM))
    check("--tty: SIGTERM to vactl: exits 143 with the terminal restored",
          rc == 143 and before == after and after is not None, (rc, out))


def test_restart_kills():
    """The agent restarted while commands run: they are killed, not orphaned."""
    global ON
    agent, proxy = ON
    s = sp(proxy)
    mark = "42%d.5" % (os.getpid() % 1000)
    s.va.exec.start(["sh", "-c", "sleep %s & sleep %s; wait" % (mark, mark)])
    s.va.exec.start(["sleep", mark], {"pty": True})
    check("the commands run", wait_for(lambda: len(ps_marked(mark)) >= 3, 10 * SLOW),
          ps_marked(mark))
    rc, _ = agent.stop(20 * SLOW)
    gone = wait_for(lambda: not ps_marked(mark), 10)
    check("agent stopped (SIGTERM, exit %s): every command and its children killed" % rc,
          rc == 0 and gone, ps_marked(mark))
    new = E.start_agent("on", ["--enable-exec", "--enable-accounts"], ns=E.ns)
    ON = (new, proxy)
    ok = wait_for(lambda: sp(proxy, 5).va.ping(), 20 * SLOW)
    r = E.vactl(proxy, "exec", "--", "echo", "again")
    check("a new agent serves exec again", ok and r.stdout == b"again\n", show(r))


# ---- accounts (in the agent's mount namespace) ----------------------------------------

def shadow_hash(user):
    with open(os.path.join(E.etc, "shadow")) as f:
        for line in f:
            w = line.rstrip("\n").split(":")
            if w[0] == user:
                return w
    return None


def crypt_as_shadow(pw, w):
    """What another implementation makes of pw with the salt of the shadow
    fields w: (hash, its name)."""
    salt = w[1].split("$")[2] if w and w[1].startswith("$6$") else ""
    bb = shutil.which("busybox")
    if bb:
        made = subprocess.run([bb, "mkpasswd", "-m", "sha512", "-S", salt, pw.encode()],
                              capture_output=True).stdout.decode().strip()
        return made, "busybox mkpasswd"
    import crypt  # noqa: deprecated, still in Debian 12's Python
    return crypt.crypt(pw, "$6$" + salt), "Python crypt"


def test_accounts():
    if not E.ns:
        print("# skipped: accounts and --user (need root and unshare --mount for a private /etc)")
        return
    agent, proxy = ON
    s = sp(proxy)
    pw = "correct horse %d" % os.getpid()
    check("va.user.set_password", s.va.user.set_password("vatest", pw) is True)
    w = shadow_hash("vatest")
    made, tool = crypt_as_shadow(pw, w)
    days = int(time.time() // 86400)
    check("the shadow line holds a SHA-512 hash that %s makes from the password, "
          "and today as the day of the change" % tool,
          w and made == w[1] and int(w[2]) == days, (w, made))
    check("the password is not in the agent's log", pw not in agent.log() and "vatest" in agent.log())
    st = os.stat(os.path.join(E.etc, "shadow"))
    check("/etc/shadow kept its mode", (st.st_mode & 0o777) == 0o640, oct(st.st_mode))
    p = subprocess.run([VACTL, "--url", "unix:" + proxy.usock, "password", "vaother"],
                       input=("via vactl\n").encode(), capture_output=True, timeout=60)
    w2 = shadow_hash("vaother")
    check("vactl password USER (the password on stdin)", p.returncode == 0 and w2[1].startswith("$6$"),
          show(p))
    pw3 = "p\U0001F600 \u00e9\U00020000\u200d"
    p = subprocess.run([VACTL, "--url", "unix:" + proxy.usock, "password", "vaother"],
                       input=(pw3 + "\n").encode(), capture_output=True, timeout=60)
    w3 = shadow_hash("vaother")
    made3, _ = crypt_as_shadow(pw3, w3)
    check("vactl password: a password with an emoji and CJK Ext B is hashed as its UTF-8 bytes",
          p.returncode == 0 and w3 and w3[1] == made3 and w3[1] != w2[1], (show(p), w3, made3))
    h = "$6$abcdefgh$" + "x" * 86
    check("crypted: the hash is written as it is",
          s.va.user.set_password("vatest", h, True) is True and shadow_hash("vatest")[1] == h)
    code, msg = valib.fault_of(s.va.user.set_password, "nosuchuser", "x")
    check("an unknown user: fault", code == FAULT_REFUSED and "no user" in msg, msg)
    code, msg = valib.fault_of(s.va.user.set_password, "vatest", "a:b\n", True)
    check("a crypted value with ':' or a newline: fault", code == -501, msg)
    r = E.vactl(proxy, "exec", "--user", "vatest", "--", "sh", "-c", "id -u; id -g; pwd; echo $HOME")
    home = os.path.join(E.home, "vatest")
    check("exec --user: uid, gid, the home as working directory and HOME",
          r.stdout.decode().split() == [str(TEST_UID), str(TEST_UID), home, home], show(r))

    # SSH keys
    sshdir = os.path.join(home, ".ssh")
    keys = s.va.ssh.keys.set("vatest", [KEY1])
    st_d, st_f = os.stat(sshdir), os.stat(os.path.join(sshdir, "authorized_keys"))
    check("va.ssh.keys.set: .ssh 0700 and authorized_keys 0600, both the user's",
          keys == [KEY1] and (st_d.st_mode & 0o777) == 0o700 and st_d.st_uid == TEST_UID
          and (st_f.st_mode & 0o777) == 0o600 and st_f.st_uid == TEST_UID
          and st_f.st_gid == TEST_UID, (keys, oct(st_d.st_mode), st_d.st_uid, oct(st_f.st_mode)))
    keys = s.va.ssh.keys.add("vatest", [KEY2, KEY1.replace("one@host", "other comment")])
    check("add: a new key added, the same key with another comment not", keys == [KEY1, KEY2], keys)
    keys = s.va.ssh.keys.remove("vatest", [KEY1.rsplit(" ", 1)[0]])
    check("remove by type and blob", keys == [KEY2] and s.va.ssh.keys.get("vatest") == [KEY2], keys)
    left = [n for n in os.listdir(sshdir) if n != "authorized_keys"]
    check("no temporary file left in .ssh", not left, left)
    kf = E.path("keys.pub")
    with open(kf, "w") as f:
        f.write("# mine\n%s\n\n" % KEY1)
    r = E.vactl(proxy, "keys", "add", "vatest", kf)
    check("vactl keys add USER FILE", r.returncode == 0 and r.stdout.decode().split("\n")[:2] ==
          [KEY2, KEY1], show(r))
    key3 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA3w8Gf1sXk2u9ZQ0m4v7bT1yR5pL6cE8hN2jD4kW9aB " \
        "\U0001F511 \U00020000 \u00e9"
    with open(kf, "w", encoding="utf-8") as f:
        f.write(key3 + "\r\n")
    r = E.vactl(proxy, "keys", "add", "vatest", kf)
    check("vactl keys add/get: a comment with an emoji and CJK Ext B, kept and printed as it is "
          "(the CR of a CRLF line dropped)",
          r.returncode == 0 and r.stdout.decode().split("\n")[:3] == [KEY2, KEY1, key3]
          and s.va.ssh.keys.get("vatest")[2] == key3, show(r))
    with open(kf, "wb") as f:
        f.write(b"# ok\n" + KEY1.encode() + b" \xc0\x80\n")
    r = E.vactl(proxy, "keys", "add", "vatest", kf)
    check("vactl keys: an overlong UTF-8 form in a key file: exit 2, file and line named",
          r.returncode == 2 and (kf + ", line 2: an overlong UTF-8 form").encode() in r.stderr,
          show(r))
    with open(os.path.join(sshdir, "authorized_keys"), "ab") as f:
        f.write(KEY1.rsplit(" ", 1)[0].replace("AAAAI", "AAAAJ").encode() + b" bad\xff\x01ok\n")
    keys = s.va.ssh.keys.get("vatest")
    check("a key line of the guest's file with bytes XML cannot carry: read with '?' for them "
          "(the user's other keys still served)",
          keys[:3] == [KEY2, KEY1, key3] and len(keys) == 4 and keys[3].endswith(" bad??ok"), keys)
    p = subprocess.run([VACTL, "--url", "unix:" + proxy.usock, "password", "vaother"],
                       input=b"bad\xff\n", capture_output=True, timeout=60)
    check("vactl password: a password XML cannot carry: exit 2, not echoed",
          p.returncode == 2 and b"the password: invalid UTF-8 at byte 3" in p.stderr
          and b"bad" not in p.stderr, show(p))
    code, msg = valib.fault_of(s.va.ssh.keys.add, "vatest", ["not a key"])
    check("a line that is not a key: fault", code == -501, msg)
    code, msg = valib.fault_of(s.va.ssh.keys.add, "vatest", [KEY1 + "\n" + KEY2])
    check("a key with a line break: fault", code == -501 and "line break" in msg, msg)
    # Refusals: .ssh a symlink, .ssh of someone else, authorized_keys a symlink.
    target = E.path("elsewhere")
    os.mkdir(target)
    os.symlink(target, os.path.join(E.home, "valink", ".ssh"))
    code, msg = valib.fault_of(s.va.ssh.keys.add, "valink", [KEY1])
    check(".ssh a symlink: refused, nothing written where it points",
          code == FAULT_REFUSED and "symbolic link" in msg and not os.listdir(target), msg)
    other = os.path.join(E.home, "vaother", ".ssh")
    os.mkdir(other, 0o700)  # root's, in vaother's home
    code, msg = valib.fault_of(s.va.ssh.keys.set, "vaother", [KEY1])
    check(".ssh owned by someone else: refused", code == FAULT_REFUSED and "belongs to" in msg, msg)
    os.chown(other, TEST_UID + 2, TEST_UID + 2)
    os.symlink("/etc/passwd", os.path.join(other, "authorized_keys"))
    code, msg = valib.fault_of(s.va.ssh.keys.add, "vaother", [KEY1])
    check("authorized_keys a symlink: refused", code == FAULT_REFUSED and "symbolic link" in msg, msg)


def test_valgrind_logs():
    if not VALGRIND:
        return
    logs = sorted(os.listdir(E.vglogs))

    def errors(f):
        # valgrind 3.19 does not know pidfd_open (the agent then polls
        # waitpid instead): its warning about itself is not our error.
        with open(os.path.join(E.vglogs, f), errors="replace") as fh:
            text = fh.read()
        own = ("unhandled amd64-linux syscall: 434", "write your own handler",
               "README_MISSING_SYSCALL_OR_IOCTL", "consider this a bug", "valgrind.org/support")
        return [ln for ln in text.splitlines() if ln.strip() and not any(o in ln for o in own)]
    bad = [f for f in logs if errors(f)]
    detail = ""
    for f in bad[:3]:
        with open(os.path.join(E.vglogs, f), errors="replace") as fh:
            detail += "\n--- %s\n%s" % (f, fh.read()[-3000:])
    check("valgrind: no error in the %d logs of the agents" % len(logs), logs and not bad, detail)


def can_unshare():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                       capture_output=True)
    return r.returncode == 0


def main():
    global E, ON, OFF
    for b in BINS.missing(AGENT, PROXY, VACTL):
        return valib.skip_run("%s is not built" % b)
    if VALGRIND and not shutil.which("valgrind"):
        return valib.skip_run("valgrind is not installed")
    E = Env()
    try:
        E.ns = can_unshare()
        if E.ns:
            os.chmod(E.dir, 0o755)  # the test users' homes are inside
            E.make_etc()
        on = E.start_agent("on", ["--enable-exec", "--enable-accounts"], ns=E.ns,
                           env={"VA_E2E_AGENT_ONLY": "agent"})
        ON = (on, Proxy(E, "on", ["unix:" + on.sock], tcp=False))
        off = E.start_agent("off", [])
        OFF = (off, Proxy(E, "off", ["unix:" + off.sock], tcp=False))
        ready = wait_for(lambda: sp(ON[1], 5).va.ping() and sp(OFF[1], 5).va.ping(), 20 * SLOW)
        if check("the agents and proxies answer", ready, on.log()[-500:]):
            for t in (test_disabled, test_enabled_by_config, test_basics, test_streaming,
                      test_example, test_memory_bounds, test_big_cat, test_stdin_close, test_timeout,
                      test_limits, test_signals, test_tty, test_accounts,
                      test_restart_kills):
                valib.case(t)
        for d in (ON[0], OFF[0], ON[1].d, OFF[1].d):
            rc, _ = d.stop(20 * SLOW)
        check("the agents exit 0 on SIGTERM", ON[0].p.returncode == 0 and OFF[0].p.returncode == 0,
              (ON[0].p.returncode, OFF[0].p.returncode, ON[0].log()[-1500:]))
        valib.case(test_valgrind_logs)
    finally:
        valib.kill_all()
        E.finish(valib.RESULTS.failed == 0)
    return valib.summary()


if __name__ == "__main__":
    sys.exit(main())
