#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The installed va-proxy service, run as systemd would run it (issue 13).

usage: check-service.py [UNIT]   (default /lib/systemd/system/va-proxy.service)

Where systemd is not PID 1 (these machines, CI), this does what systemd
does with the unit's lines: RuntimeDirectory= and StateDirectory= made
with their modes and the unit's User= as owner, the process started from
the ExecStart= line as that User= and Group= with their supplementary
groups, NoNewPrivileges, the UMask= and a NOTIFY_SOCKET (Type=notify), and
ExecReload= run with $MAINPID.  The shipped config is the one ExecStart
names.  Then:

  - the proxy starts with no guest, says READY=1 once it listens on the
    config's listeners (the unix socket in the runtime directory, mode
    0600, and 127.0.0.1:8470), and makes its secret in the state
    directory, the user's, mode 0600;
  - vactl run by root with no options reaches it and is let in (the
    secret's default path is the one both use): 404, no guest yet;
  - a file in guests.d and ExecReload: RELOADING=1, READY=1, the guest (a
    va-agent run by the same user) answers vactl -g; the file removed and
    a reload: the guest is gone;
  - SIGTERM: STOPPING=1, exit 0, its sockets removed.

Runs as root (it changes /run, /var/lib and /etc/virtagent/guests.d of the
machine, and puts back what it found).  The last line is
"N passed, N failed".
"""
import os
import pwd
import grp
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import valib  # noqa: E402
from valib import check, wait_for  # noqa: E402


def unit_lines(path):
    """The [Service] keys of a unit file: {key: [values]}."""
    keys, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                k, v = line.split("=", 1)
                keys.setdefault(k.strip(), []).append(v.strip())
    return keys


def one(keys, k, default=None):
    return keys.get(k, [default])[-1]


class Notify:
    def __init__(self, path, uid):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        os.chown(path, uid, -1)
        self.s.settimeout(0.2)
        self.msgs = []

    def lines(self):
        try:
            while True:
                self.msgs.append(self.s.recv(4096).decode())
        except socket.timeout:
            pass
        return [line for m in self.msgs for line in m.split("\n")]

    def wait(self, word, timeout, after=0):
        return wait_for(lambda: word in self.lines()[after:], timeout, 0.05)


def run_as(user, argv, umask="0077", env=None, **kw):
    """argv as user with the user's groups (systemd's User=, Group=,
    NoNewPrivileges, UMask=)."""
    pw = pwd.getpwnam(user)
    pre = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--init-groups",
           "--no-new-privs", "--", "sh", "-c", 'umask %s; exec "$@"' % umask, "sh"]
    return subprocess.Popen(pre + argv, env=env, **kw)


def main():
    unit = sys.argv[1] if len(sys.argv) > 1 else "/lib/systemd/system/va-proxy.service"
    if os.geteuid() != 0:
        print("SKIP: run as root")
        print("0 passed, 0 failed")
        return 77
    keys = unit_lines(unit)
    user, group = one(keys, "User"), one(keys, "Group")
    exec_start = shlex.split(one(keys, "ExecStart"))
    check("%s: Type=notify, User=%s, Group=%s" % (unit, user, group),
          one(keys, "Type") == "notify" and user and group)
    try:
        pw = pwd.getpwnam(user)
        gr = grp.getgrnam(group)
    except KeyError as e:
        check("the user and group of the unit exist", False, e)
        return valib.summary()
    check("the user %s is a system user without a login shell" % user,
          pw.pw_uid < 1000 and pw.pw_shell in ("/usr/sbin/nologin", "/bin/false"),
          "uid %d shell %s" % (pw.pw_uid, pw.pw_shell))
    conf = exec_start[exec_start.index("--config") + 1]
    check("ExecStart names the shipped config %s" % conf, os.path.isfile(conf), exec_start)
    guests_d = None
    with open(conf) as f:
        for line in f:
            if line.strip().startswith("guests-dir"):
                guests_d = line.split("=", 1)[1].strip()
    check("the shipped config names a guests-dir that is installed (%s)" % guests_d,
          guests_d and os.path.isdir(guests_d))

    # What systemd makes before ExecStart.
    run_dir = "/run/" + one(keys, "RuntimeDirectory")
    state_dir = "/var/lib/" + one(keys, "StateDirectory")
    made_run = not os.path.exists(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    os.chmod(run_dir, int(one(keys, "RuntimeDirectoryMode", "0755"), 8))
    os.makedirs(state_dir, exist_ok=True)
    os.chmod(state_dir, int(one(keys, "StateDirectoryMode", "0755"), 8))
    for d in (run_dir, state_dir):
        for root, dirs, files in os.walk(d):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, pw.pw_uid, gr.gr_gid)
    secret = os.path.join(state_dir, "proxy.secret")
    had_secret = os.path.exists(secret)

    tmp = tempfile.mkdtemp(prefix="va-service-")
    os.chmod(tmp, 0o755)
    notify = Notify(os.path.join(tmp, "notify"), pw.pw_uid)
    env = dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, "notify"))
    log = open(os.path.join(tmp, "proxy.log"), "wb")
    proxy = run_as(user, exec_start, one(keys, "UMask", "0022"), env=env, stdout=log,
                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    agent = None
    gfile = os.path.join(guests_d or tmp, "va-service-check.conf")

    def proxy_log():
        with open(os.path.join(tmp, "proxy.log"), "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def vactl(*args):
        r = subprocess.run(["vactl", "-t", "10"] + list(args), capture_output=True, text=True,
                           timeout=30)
        return r.returncode, r.stdout + r.stderr

    try:
        usock = os.path.join(run_dir, "va-proxy.sock")
        ready = notify.wait("READY=1", 15)
        check("ExecStart as %s: READY=1 with no guest" % user,
              ready and proxy.poll() is None, proxy_log())
        st = os.stat(usock) if os.path.exists(usock) else None
        check("... listening on %s (mode 0600, owner %s) and on 127.0.0.1:8470" % (usock, user),
              st is not None and st.st_mode & 0o777 == 0o600 and st.st_uid == pw.pw_uid and
              valib.tcp_listening(8470), proxy_log())
        st = os.stat(secret) if os.path.exists(secret) else None
        check("... its secret %s%s: the user's, mode 0600" %
              (secret, " (kept from before)" if had_secret else " (made)"),
              st is not None and st.st_uid == pw.pw_uid and st.st_mode & 0o777 == 0o600)
        rc, out = vactl("-g", "nothing", "ping")
        check("vactl as root with no options: let in with the default secret, 404 (no guest)",
              "HTTP 404" in out and "401" not in out, out)

        # A guest: a va-agent run by the same user, its socket in the runtime directory.
        asock = os.path.join(run_dir, "check-agent.sock")
        alog = open(os.path.join(tmp, "agent.log"), "wb")
        agent = run_as(user, ["va-agent", "--config", "/dev/null", "--channel",
                              "unix-listen:" + asock, "--control", "none"],
                       stdout=alog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(asock), 10)
        with open(gfile, "w") as f:
            f.write("guest = svc1=unix:%s\n" % asock)
        n = len(notify.lines())
        reload = [w.replace("$MAINPID", str(proxy.pid)) for w in
                  shlex.split(one(keys, "ExecReload"))]
        subprocess.run(reload, check=False)
        check("ExecReload: RELOADING=1, then READY=1", notify.wait("RELOADING=1", 10, n) and
              notify.wait("READY=1", 10, n + 1), notify.lines()[n:])
        ok = wait_for(lambda: vactl("-g", "svc1", "ping")[0] == 0, 15, 0.2)
        rc, out = vactl("-g", "svc1", "info")
        check("a guest from guests.d answers vactl -g svc1 (as root, defaults)",
              ok and rc == 0 and "agent version" in out, out + proxy_log())
        os.unlink(gfile)
        subprocess.run(reload, check=False)
        check("its file removed, a reload: the guest is gone",
              wait_for(lambda: "HTTP 404" in vactl("-g", "svc1", "ping")[1], 10, 0.2),
              proxy_log())
        n = len(notify.lines())
        proxy.send_signal(signal.SIGTERM)
        try:
            code = proxy.wait(15)
        except subprocess.TimeoutExpired:
            code = None
        check("SIGTERM: STOPPING=1, exit 0, its sockets removed",
              code == 0 and "STOPPING=1" in notify.lines()[n:] and not os.path.exists(usock),
              "exit %s %s" % (code, proxy_log()))
    finally:
        for p in (proxy, agent):
            if p and p.poll() is None:
                p.kill()
                p.wait(5)
        if os.path.exists(gfile):
            os.unlink(gfile)
        # What systemd removes at the stop (RuntimeDirectory=).
        if made_run:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            for n in ("check-agent.sock",):
                if os.path.exists(os.path.join(run_dir, n)):
                    os.unlink(os.path.join(run_dir, n))
        if valib.RESULTS.failed == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("# files kept in " + tmp)
    return valib.summary()


if __name__ == "__main__":
    sys.exit(main())
