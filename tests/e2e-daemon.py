#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests of --daemonize and --pidfile for va-agent and va-proxy
(common/daemon.c), with the real binaries.

What is checked: the command returns 0 only when the daemon is ready (its
sockets exist when the command returns, the pidfile holds the daemon's
pid), the daemon answers calls, SIGTERM stops it and removes the pidfile
and sockets; a second instance with the same pidfile, or a start that
fails (a missing virtio-serial port, a control socket or listener that a
running daemon holds), makes the command exit 1 at once with the reason on
stderr and leaves no process behind.

Binaries: $BUILD/agent/va-agent, $BUILD/agent/va-clip, $BUILD/host/proxy/va-proxy
(BUILD defaults to the current directory when it holds them, else to
_build beside this file's directory).

--valgrind runs every daemon under valgrind's memcheck (make
check-valgrind): each process (the daemons fork) logs to a file of its
own, and a last check wants every log empty (valgrind -q writes only
errors and definite leaks).  VA_DAEMON_WRAPPER puts any other command in
front of the daemons.  With either, timing bounds are relaxed and the
checks that need strace or run the init script are skipped.

Everything runs in a fresh mkdtemp directory; every process started here
is killed at the end, also on failure.  Each check prints one line ("ok" or
"FAIL"); the last line is "N passed, M failed"; the exit status is 1 when
a check failed.  The harness (counting, waiting, /proc) is tests/valib.py.
"""
import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import valib  # noqa: E402
from valib import case, check, wait_for  # noqa: E402
from valib import proc_cmdline as cmdline  # noqa: E402

BINS = valib.Binaries()
AGENT, CLIP, PROXY = BINS.agent, BINS.clip, BINS.proxy
WRAPPER = valib.wrapper_from_env("VA_DAEMON_WRAPPER")
VALGRIND = "--valgrind" in sys.argv[1:]
VGLOGS = ""  # set by main() with --valgrind
SLOW = 10 if WRAPPER or VALGRIND else 1
# A failed start must be reported at once: well under this.
QUICK = 3 * SLOW

RUN = None  # the valib.RunDir of this run, made by main()
TMP = None  # its path


def path(*p):
    return os.path.join(TMP, *p)


# ---- processes ------------------------------------------------------------

# As a subreaper, this script gets the daemons when their first parent
# exits, and can reap them and see their exit status (PID 1 here may not
# reap at all, which would leave zombies that look alive to kill(pid, 0)).
PR_SET_CHILD_SUBREAPER = 36
try:
    SUBREAPER = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
except Exception:  # noqa: BLE001
    SUBREAPER = False


def reap(pid):
    """Our child's exit status (as os.waitpid gives it) if it has ended, else None."""
    try:
        p, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if p == pid else None


exit_status = {}


def gone(pid):
    st = reap(pid)
    if st is not None:
        exit_status[pid] = st
    s = valib.proc_state(pid)
    return s is None or s == "Z" and not SUBREAPER


def ours():
    """Pids of the processes whose command line names our directory."""
    return RUN.processes()


def kill_all():
    """Every process of this run killed (valib.kill_all), our children reaped."""
    valib.kill_all()
    for pid in list(exit_status):
        reap(pid)


atexit.register(kill_all)


def run(argv, timeout=None):
    """Runs a command until it exits; returns (status, stdout, stderr, seconds).

    Output goes to files, not pipes: the result must not wait for a daemon
    to close the stdout and stderr it inherited, only for the command's exit.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.monotonic()
        p = subprocess.Popen(WRAPPER + argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            st = p.wait(timeout or 30 * SLOW)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise
        dt = time.monotonic() - t
        out.seek(0)
        err.seek(0)
        return (st, out.read().decode(errors="replace"), err.read().decode(errors="replace"), dt)


def read_pid(f):
    try:
        with open(f) as fh:
            text = fh.read()
    except OSError:
        return None
    return int(text) if text.endswith("\n") and text.strip().isdigit() else None


def stop(pid, timeout=10):
    """SIGTERM; True when the process has ended within timeout."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    return wait_for(lambda: gone(pid), timeout * SLOW)


def is_socket(p):
    try:
        return (os.lstat(p).st_mode & 0o170000) == 0o140000
    except OSError:
        return False


def connects(p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(p)
        return True
    except OSError:
        return False
    finally:
        s.close()


def agent_argv(name, pidfile=None, channel=None, control=None, extra=()):
    argv = [AGENT, "--config", path("empty.conf"), "--daemonize",
            "--channel", channel or "unix-listen:" + path(name + ".sock"),
            "--control", control or "unix:" + path(name + "-ctl.sock")]
    if pidfile:
        argv += ["--pidfile", pidfile]
    return argv + list(extra)


def proxy_argv(name, guest, pidfile=None, listen=None):
    argv = [PROXY, "--config", path("empty.conf"), "--daemonize",
            "--guest", "g=" + guest, "--listen", listen or "unix:" + path(name + ".sock")]
    if pidfile:
        argv += ["--pidfile", pidfile]
    return argv


def http_unix(sock, body, timeout=10):
    """POST /RPC2 over a unix socket; returns the response as text."""
    return valib.http_unix(sock, body, timeout * SLOW)


PING = b"<?xml version='1.0'?><methodCall><methodName>va.ping</methodName><params/></methodCall>"


# ---- the agent --------------------------------------------------------------

state = {}


def test_agent_starts_ready():
    pf = path("agent.pid")
    sock, ctl = path("a.sock"), path("a-ctl.sock")
    st, out, err, dt = run(agent_argv("a", pf))
    # Checked the moment the command has returned: no waiting.
    socks = (is_socket(sock), is_socket(ctl))
    pid = read_pid(pf)
    check("agent: --daemonize exits 0", st == 0, "status %d, stderr %r" % (st, err))
    check("agent: the channel and control sockets exist when the command returns",
          socks == (True, True), "channel %s, control %s" % socks)
    check("agent: nothing on stdout or stderr when the start succeeds", out == "" and err == "",
          "stdout %r, stderr %r" % (out, err))
    check("agent: the pidfile holds the daemon's pid", pid is not None and not gone(pid) and
          os.path.basename(AGENT).encode() in b" ".join(cmdline(pid)) and
          pf.encode() in cmdline(pid), "pid %r, cmdline %r" % (pid, pid and cmdline(pid)))
    state["agent"] = pid
    if pid is None:
        return
    # Detached: a session of its own but not its leader, / and /dev/null.
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        sid = int(fields[3])
        fds = [os.readlink("/proc/%d/fd/%d" % (pid, i)) for i in range(3)]
        cwd = os.readlink("/proc/%d/cwd" % pid)
        check("agent: the daemon is detached (new session, cwd /, stdio on /dev/null)",
              sid != os.getsid(0) and sid != pid and cwd == "/" and fds == ["/dev/null"] * 3,
              "sid %d (ours %d, pid %d), cwd %s, fds %r" % (sid, os.getsid(0), pid, cwd, fds))
    except OSError as e:
        check("agent: the daemon is detached", False, e)
    # It serves: its control socket answers va-clip.
    p = subprocess.run([CLIP, "--socket", ctl, "copy"], input=b"daemon-test",
                       capture_output=True, timeout=10 * SLOW)
    check("agent: the daemon answers on its control socket (va-clip copy)", p.returncode == 0,
          p.stderr.decode(errors="replace"))


def strace_works():
    if WRAPPER or not shutil.which("strace"):
        return False
    try:
        return subprocess.run(["strace", "-o", "/dev/null", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def slow_bind(name, argv, socks, pidfile):
    """The start made slow on purpose: every bind() waits 0.5 s (strace's
    fault injection; -D keeps strace out of the way of the exit status).
    The command must still return only when the sockets exist."""
    if not strace_works():
        print("# skipped (no strace, strace cannot trace here, or under a wrapper): %s" % name)
        return
    tracer = ["strace", "-D", "-f", "-o", "/dev/null", "-e", "trace=bind",
              "-e", "inject=bind:delay_enter=500000"]
    st, out, err, dt = run(tracer + argv)
    there = [is_socket(x) for x in socks]
    check(name, st == 0 and all(there) and dt >= 0.5,
          "status %d after %.2f s, sockets %r, stderr %r" % (st, dt, there, err))
    pid = read_pid(pidfile)
    if pid is not None:
        stop(pid)
    # strace leaves when its tracee has gone.
    wait_for(lambda: not [p for p in ours() if b"strace" in cmdline(p)[0]], 5)


def test_agent_ready_waits():
    pf = path("slow.pid")
    slow_bind("agent: with bind() slowed down, --daemonize still returns only when the "
              "channel and control sockets exist",
              agent_argv("slow", pf), [path("slow.sock"), path("slow-ctl.sock")], pf)


def test_agent_second_instance():
    pid = state.get("agent")
    if pid is None:
        check("agent: second instance (needs the first agent)", False)
        return
    pf = path("agent.pid")
    st, out, err, dt = run(agent_argv("a2", pf))
    check("agent: a second agent with the same pidfile exits 1 at once", st == 1 and dt < QUICK,
          "status %d after %.1f s" % (st, dt))
    check("agent: ... and says that another va-agent runs, with its pid",
          "another va-agent runs" in err and str(pid) in err and pf in err, repr(err))
    check("agent: ... without touching the first one's pidfile or opening its own sockets",
          read_pid(pf) == pid and not gone(pid) and not os.path.exists(path("a2.sock"))
          and not os.path.exists(path("a2-ctl.sock")),
          "pidfile %r, first alive %s, %r" % (read_pid(pf), not gone(pid), os.listdir(TMP)))
    check("agent: ... and leaves no process behind", wait_for(lambda: ours() == [pid], QUICK),
          "processes %r" % ours())


def test_agent_control_taken():
    """Another agent's live control socket: refused, not taken over."""
    pid = state.get("agent")
    if pid is None:
        check("agent: control socket taken (needs the first agent)", False)
        return
    ctl = path("a-ctl.sock")
    st, out, err, dt = run(agent_argv("a3", path("agent3.pid"), control="unix:" + ctl))
    check("agent: a control socket that a running agent holds: exit 1 at once",
          st == 1 and dt < QUICK, "status %d after %.1f s, stderr %r" % (st, dt, err))
    check("agent: ... the reason on stderr", ctl in err and "another process listens" in err,
          repr(err))
    check("agent: ... the first agent keeps its control socket", connects(ctl))
    check("agent: ... no pidfile, channel socket or process left",
          not os.path.exists(path("agent3.pid")) and not os.path.exists(path("a3.sock"))
          and wait_for(lambda: ours() == [pid], QUICK),
          "%r, processes %r" % (os.listdir(TMP), ours()))


def test_agent_missing_port():
    port = path("no-such-port")
    st, out, err, dt = run(agent_argv("a4", path("agent4.pid"), channel="virtio-serial:" + port,
                                      control="none"))
    check("agent: a missing virtio-serial port: --daemonize exits 1 at once",
          st == 1 and dt < QUICK, "status %d after %.1f s" % (st, dt))
    check("agent: ... the reason on stderr", port in err and "No such file or directory" in err,
          repr(err))
    check("agent: ... said once", err.count("error:") == 1, repr(err))
    check("agent: ... no pidfile and no process left",
          not os.path.exists(path("agent4.pid"))
          and wait_for(lambda: set(ours()) <= {state.get("agent")}, QUICK),
          "%r, processes %r" % (os.listdir(TMP), ours()))


def test_agent_stale_pidfile():
    """A pidfile left by an agent that was killed: the next start takes it."""
    pf = path("stale.pid")
    with open(pf, "w") as f:
        f.write("999999\n")
    st, out, err, dt = run(agent_argv("a5", pf))
    pid = read_pid(pf)
    check("agent: a stale pidfile (nobody holds its lock) does not stop the start",
          st == 0 and pid not in (None, 999999) and not gone(pid),
          "status %d, pid %r, stderr %r" % (st, pid, err))
    if pid and not gone(pid):
        check("agent: ... SIGTERM stops that agent and removes its pidfile",
              stop(pid) and not os.path.exists(pf), os.listdir(TMP))


def test_agent_sigterm():
    pid = state.get("agent")
    if pid is None:
        check("agent: SIGTERM (needs the first agent)", False)
        return
    ok = stop(pid)
    check("agent: SIGTERM stops the daemon", ok)
    if SUBREAPER and pid in exit_status:
        st = exit_status[pid]
        check("agent: ... with exit status 0", os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0,
              "wait status %#x" % st)
    check("agent: ... and removes its pidfile and sockets",
          ok and not any(os.path.exists(path(f)) for f in ("agent.pid", "a.sock", "a-ctl.sock")),
          os.listdir(TMP))


def test_agent_foreground_pidfile():
    """Without --daemonize the pidfile holds the process's own pid."""
    pf = path("fg.pid")
    argv = [a for a in agent_argv("fg", pf) if a != "--daemonize"]
    p = subprocess.Popen(WRAPPER + argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        ok = wait_for(lambda: read_pid(pf) is not None and is_socket(path("fg-ctl.sock")),
                      10 * SLOW)
        check("agent: in the foreground the pidfile holds the agent's own pid",
              ok and read_pid(pf) == p.pid, "pidfile %r, pid %d" % (read_pid(pf), p.pid))
        p.terminate()
        st = p.wait(10 * SLOW)
        check("agent: ... SIGTERM: exit 0 and the pidfile removed",
              st == 0 and not os.path.exists(pf), "status %r, %r" % (st, os.listdir(TMP)))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()


# ---- the proxy ----------------------------------------------------------------

def test_proxy():
    # An agent for the proxy to talk to.
    st, out, err, dt = run(agent_argv("pa", path("pa.pid")))
    apid = read_pid(path("pa.pid"))
    if not check("proxy: its agent started", st == 0 and apid is not None, err):
        return
    pf = path("proxy.pid")
    psock = path("p.sock")
    guest = "unix:" + path("pa.sock")
    st, out, err, dt = run(proxy_argv("p", guest, pf))
    listening = is_socket(psock)
    pid = read_pid(pf)
    check("proxy: --daemonize exits 0", st == 0, "status %d, stderr %r" % (st, err))
    check("proxy: the listener exists when the command returns", listening, os.listdir(TMP))
    check("proxy: the pidfile holds the daemon's pid", pid is not None and not gone(pid)
          and pf.encode() in cmdline(pid), "pid %r" % pid)
    if pid is None:
        return
    answers = []

    def pinged():
        try:
            answers.append(http_unix(psock, PING))
        except OSError as e:
            answers.append(repr(e))
        return "<boolean>1</boolean>" in answers[-1]
    check("proxy: the daemon forwards va.ping to the daemonized agent",
          wait_for(pinged, 10 * SLOW, 0.1), answers[-1:])

    st2, out2, err2, dt2 = run(proxy_argv("p2", guest, pf))
    check("proxy: a second proxy with the same pidfile exits 1 at once",
          st2 == 1 and dt2 < QUICK, "status %d after %.1f s" % (st2, dt2))
    check("proxy: ... and says that another va-proxy runs, with its pid",
          "another va-proxy runs" in err2 and str(pid) in err2, repr(err2))
    check("proxy: ... the first one's pidfile and listener untouched",
          read_pid(pf) == pid and connects(psock) and not os.path.exists(path("p2.sock")))

    st3, out3, err3, dt3 = run(proxy_argv("p3", guest, path("proxy3.pid"), "unix:" + psock))
    check("proxy: a listener that a running proxy holds: exit 1 at once with the reason",
          st3 == 1 and dt3 < QUICK and psock in err3 and "another process listens" in err3,
          "status %d after %.1f s, stderr %r" % (st3, dt3, err3))
    check("proxy: ... no pidfile and no process left",
          not os.path.exists(path("proxy3.pid"))
          and wait_for(lambda: set(ours()) == {pid, apid}, QUICK),
          "%r, processes %r" % (os.listdir(TMP), ours()))

    ok = stop(pid, 15)
    check("proxy: SIGTERM stops the daemon", ok)
    if SUBREAPER and pid in exit_status:
        st = exit_status[pid]
        check("proxy: ... with exit status 0", os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0,
              "wait status %#x" % st)
    check("proxy: ... and removes its pidfile and listener",
          ok and not os.path.exists(pf) and not os.path.exists(psock), os.listdir(TMP))
    check("proxy: its agent stops too", stop(apid) and not os.path.exists(path("pa.pid")))


def test_proxy_ready_waits():
    pf = path("pslow.pid")
    slow_bind("proxy: with bind() slowed down, --daemonize still returns only when the "
              "listener exists",
              proxy_argv("pslow", "unix:" + path("nobody.sock"), pf), [path("pslow.sock")], pf)


def test_init_script():
    """agent/va-agent.init start/status/stop, with the agent's exit status."""
    script = os.path.join(BINS.build, "agent", "va-agent.init")
    if WRAPPER or not os.access(script, os.X_OK) or os.path.exists("/etc/default/va-agent"):
        print("# skipped: the init script (not built, under a wrapper, or "
              "/etc/default/va-agent would override the test's settings)")
        return
    pf = path("init.pid")

    def sh(cmd, opts):
        env = dict(os.environ, VA_AGENT_BIN=AGENT, VA_AGENT_PIDFILE=pf,
                   VA_AGENT_OPTS="--config %s %s" % (path("empty.conf"), opts))
        p = subprocess.run([script, cmd], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return p.returncode, p.stdout.decode(errors="replace")

    port = path("init-no-port")
    st, out = sh("start", "--channel virtio-serial:%s --control none" % port)
    check("init script: start with a missing port exits 1 and prints why",
          st == 1 and port in out and "did not start" in out, "status %d: %r" % (st, out))
    good = "--channel unix-listen:%s --control none" % path("init.sock")
    st, out = sh("start", good)
    pid = read_pid(pf)
    check("init script: start exits 0 with the agent running",
          st == 0 and pid is not None and not gone(pid) and is_socket(path("init.sock")),
          "status %d: %r" % (st, out))
    st, out = sh("status", good)
    check("init script: status says running", st == 0 and str(pid) in out, out)
    st, out = sh("stop", good)
    check("init script: stop ends the agent and removes the pidfile",
          st == 0 and pid is not None and wait_for(lambda: gone(pid), 10)
          and not os.path.exists(pf), "status %d: %r" % (st, out))


def test_nothing_left():
    check("no process of this test is left", wait_for(lambda: not ours(), 5 * SLOW),
          "processes %r" % ours())


def test_valgrind_logs():
    if not VGLOGS:
        return
    logs = sorted(os.listdir(VGLOGS)) if os.path.isdir(VGLOGS) else []
    bad = [f for f in logs if os.path.getsize(os.path.join(VGLOGS, f)) > 0]
    detail = ""
    for f in bad[:3]:
        with open(os.path.join(VGLOGS, f), errors="replace") as fh:
            detail += "\n--- %s\n%s" % (f, fh.read()[-3000:])
    check("valgrind: no error in the %d logs of the daemons" % len(logs), logs and not bad,
          detail or "no logs in %s" % VGLOGS)


def main():
    global RUN, TMP, WRAPPER, VGLOGS
    for b in BINS.missing():
        return valib.skip_run("%s is not built" % b)
    if VALGRIND and not shutil.which("valgrind"):
        return valib.skip_run("valgrind is not installed")
    RUN = valib.RunDir("vadaemon-test-")
    TMP = RUN.dir
    if VALGRIND:
        VGLOGS = path("valgrind")
        os.mkdir(VGLOGS)
        WRAPPER = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                   "--show-leak-kinds=definite", "--num-callers=30",
                   "--log-file=" + os.path.join(VGLOGS, "vg.%p")]
    try:
        case(test_agent_starts_ready)
        case(test_agent_second_instance)
        case(test_agent_control_taken)
        case(test_agent_missing_port)
        case(test_agent_stale_pidfile)
        case(test_agent_ready_waits)
        case(test_agent_sigterm)
        case(test_agent_foreground_pidfile)
        case(test_proxy)
        case(test_proxy_ready_waits)
        case(test_init_script)
        case(test_nothing_left)
        kill_all()
        case(test_valgrind_logs)
    finally:
        kill_all()
        RUN.finish(valib.RESULTS.failed == 0)
    return valib.summary()


if __name__ == "__main__":
    sys.exit(main())
