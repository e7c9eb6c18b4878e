#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests of va-proxy as a service (issue 13): the real va-proxy
and va-agents, Python's xmlrpc.client and vactl.

What is checked:
  - a config with no guest starts and waits; systemd's readiness protocol
    (NOTIFY_SOCKET): READY=1 once it listens, RELOADING=1 and READY=1
    around a reload, STOPPING=1 at the stop;
  - SIGHUP with guests in the config file and in guests-dir: a guest added,
    one removed (its call in flight fails with fault 1001 naming the
    removal), one whose channel changed (a new session), and one that did
    not change keeps its session nonce, its reset count and its call in
    flight, answered after the reload;
  - a reload with errors (a bad line, an unnamed guest in guests-dir, two
    guests of one name) changes nothing; files of guests-dir not named
    *.conf are not read; a guest that cannot be added is logged, the rest
    is applied, and the next reload adds it; a changed listener is kept
    with a warning;
  - --libvirt with libvirt's test driver (test:///NODE.xml: domains in a
    file, no libvirtd): the domains with a virtagent channel are guests
    under their names and answer; one without, one whose channel cannot
    be used and one whose name is no guest name are left out; a
    configured guest of the same name wins; a URI that does not connect
    is retried and the proxy serves its other guests; a libvirtd that
    accepts and never answers does not hold the HTTP side nor the stop
    (exit 0 within the stop's bound of 5 s).

Binaries: $BUILD/agent/va-agent, $BUILD/host/proxy/va-proxy,
$BUILD/host/vactl/vactl (valib.Binaries).  VA_PROXY_WRAPPER is put in
front of every va-proxy command (valgrind); timing bounds are relaxed then.
Everything runs in a fresh mkdtemp directory; every process is stopped at
the end.  One line a check; the last line is "N passed, M failed".
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import valib  # noqa: E402
from valib import FAULT_NOT_CONNECTED, case, check, wait_for  # noqa: E402

BINS = valib.Binaries()
AGENT, PROXY, VACTL = BINS.agent, BINS.proxy, BINS.vactl
WRAPPER = valib.wrapper_from_env("VA_PROXY_WRAPPER")
SLOW = 8 if WRAPPER else 1


class Proxy(valib.Proxy):
    binary = PROXY
    wrapper = WRAPPER
    slow = SLOW


class Notify:
    """A NOTIFY_SOCKET as systemd has it: a datagram socket whose messages
    are kept in order."""

    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.settimeout(0.2)
        self.msgs = []

    def read(self):
        try:
            while True:
                self.msgs.append(self.s.recv(4096).decode())
        except socket.timeout:
            pass
        return self.msgs

    def wait(self, word, timeout):
        """Waits until a message holds the line word; returns its index or None."""
        end = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.read()):
                if word in m.split("\n"):
                    return i
            if time.monotonic() > end:
                return None


def start_proxy(run, tag, conf, notify=None, extra=()):
    """A Proxy reading config file conf (no --guest), its unix listener only
    (with NOTIFY_SOCKET=notify.path when given)."""
    if notify:
        os.environ["NOTIFY_SOCKET"] = notify.path
    try:
        return Proxy(run, tag, [], ["--config", conf] + list(extra), tcp=False)
    finally:
        os.environ.pop("NOTIFY_SOCKET", None)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def guests_of(p):
    """The names in proxy.guests(), through the first guest's URL; [] when
    there is none (404)."""
    try:
        names = [g["guest"] for g in p.usp("/RPC2/" + first_guest(p)).proxy.guests()]
        return sorted(names)
    except (xmlrpc.client.ProtocolError, LookupError):
        return []


def first_guest(p):
    """The first guest a 404 of /RPC2/- lists ("the guests are: a, b")."""
    r = valib.http_unix(p.usock, valib.call_xml("va.ping"), path="/RPC2/-")
    names = r.split("the guests are: ", 1)[1].strip()
    if not names:
        raise LookupError("no guest")
    return names.split(", ")[0]


def status(p, name):
    return p.usp("/RPC2/" + name, timeout=10).proxy.status()


def answered(p, name):
    try:
        return status(p, name)["answered"]
    except Exception:  # noqa: BLE001 - not yet
        return False


class Call(threading.Thread):
    """One call in a thread of its own: self.result or self.fault (code, text)."""

    def __init__(self, p, name, method="va.ping"):
        super().__init__(daemon=True)
        self.sp = p.usp("/RPC2/" + name, timeout=60 * SLOW)
        self.method = method
        self.result = self.fault = self.error = None
        self.start()

    def run(self):
        try:
            self.result = getattr(self.sp, self.method)()
        except xmlrpc.client.Fault as f:
            self.fault = (f.faultCode, f.faultString)
        except Exception as e:  # noqa: BLE001
            self.error = e


def hup(p, notify=None):
    """SIGHUP; with notify, waits for READY=1 after the RELOADING=1 it sends."""
    before = len(notify.read()) if notify else 0
    p.d.signal(signal.SIGHUP)
    if notify:
        def reloaded():
            msgs = notify.read()[before:]
            r = [i for i, m in enumerate(msgs) if "RELOADING=1" in m.split("\n")]
            return r and any("READY=1" in m.split("\n") for m in msgs[r[0] + 1:])
        return wait_for(reloaded, 10 * SLOW)
    return True


def log_has(p, text, timeout=5):
    return wait_for(lambda: text in p.d.log(), timeout * SLOW)


# ---- the tests --------------------------------------------------------------

def t_zero_guests(run):
    conf = run.path("zero.conf")
    write(conf, "# no guest\nlog-level = info\n")
    notify = Notify(run.path("notify-zero.sock"))
    p = start_proxy(run, "zero", conf, notify)
    i = notify.wait("READY=1", 10 * SLOW)
    check("no guest: READY=1 on NOTIFY_SOCKET once it listens", i is not None and
          os.path.exists(p.usock), notify.msgs)
    check("... with STATUS=0 configured guests",
          i is not None and "STATUS=0 configured guests" in notify.msgs[i], notify.msgs)
    time.sleep(0.5 * SLOW)
    check("no guest: the proxy runs and waits", p.d.alive(), p.d.log())
    r = valib.http_unix(p.usock, valib.call_xml("va.ping"))
    # (http.c words it as for several guests: "NAME one of: " and no name.)
    check("no guest: POST /RPC2 answers 404, no guest listed",
          r.startswith("HTTP/1.1 404") and r.rstrip().endswith(":"), r)
    code, secs = p.stop()
    check("SIGTERM: STOPPING=1, exit 0", code == 0 and notify.wait("STOPPING=1", 5) is not None,
          "exit %s, %r" % (code, notify.msgs))
    p.stopped = True


def t_reload(run, agents):
    a1, a2, a3, a4, a5 = agents
    gd = run.path("guests.d")
    os.mkdir(gd)
    conf = run.path("reload.conf")
    write(conf, "guests-dir = %s\nguest = vm1=unix:%s\n" % (gd, a1.sock))
    write(os.path.join(gd, "vm2.conf"), "# a guest a file\nguest = vm2=unix:%s\n" % a2.sock)
    write(os.path.join(gd, "vm3.conf"), "guest = vm3=unix:%s\n" % a3.sock)
    notify = Notify(run.path("notify-reload.sock"))
    p = start_proxy(run, "reload", conf, notify)
    check("guests from the config file and from guests-dir",
          guests_of(p) == ["vm1", "vm2", "vm3"], guests_of(p))
    check("... all three answer", wait_for(lambda: all(answered(p, n) for n in
                                                       ("vm1", "vm2", "vm3")), 10 * SLOW))
    st1 = status(p, "vm1")
    st3 = status(p, "vm3")

    # A call in flight to vm1 (stays) and to vm2 (goes): their agents stopped.
    a1.signal(signal.SIGSTOP)
    a2.signal(signal.SIGSTOP)
    c1 = Call(p, "vm1")
    c2 = Call(p, "vm2")
    in_flight = wait_for(lambda: status(p, "vm1")["calls_in_flight"] == 1 and
                         status(p, "vm2")["calls_in_flight"] == 1, 5 * SLOW)
    check("calls in flight to vm1 and vm2 (their agents stopped)", in_flight)

    os.unlink(os.path.join(gd, "vm2.conf"))
    write(os.path.join(gd, "vm3.conf"), "guest = vm3=unix:%s\n" % a4.sock)
    write(os.path.join(gd, "vm5.conf"), "guest = vm5=unix:%s\n" % a5.sock)
    t0 = time.monotonic()
    check("SIGHUP: RELOADING=1, then READY=1", hup(p, notify), notify.msgs)
    check("... the proxy says what it did",
          log_has(p, "guests 1 added, 1 removed, 1 changed, 1 unchanged"), p.d.log()[-2000:])
    c2.join(10 * SLOW)
    check("the removed guest's call in flight fails at once with fault 1001, naming the removal",
          c2.fault is not None and c2.fault[0] == FAULT_NOT_CONNECTED and
          "vm2 was removed" in c2.fault[1] and time.monotonic() - t0 < 5 * SLOW,
          "%r %r" % (c2.fault, c2.error))
    check("proxy.guests: vm1, vm3, vm5", guests_of(p) == ["vm1", "vm3", "vm5"], guests_of(p))

    a1.signal(signal.SIGCONT)
    c1.join(20 * SLOW)
    check("the unchanged guest's call in flight is answered after the reload",
          c1.result is True, "%r %r %r" % (c1.result, c1.fault, c1.error))
    st1b = status(p, "vm1")
    check("the unchanged guest keeps its session nonce and its resets",
          st1b["session"] == st1["session"] and st1b["resets"] == st1["resets"] and
          st1["session"] != "", "%s/%s -> %s/%s" % (st1["session"], st1["resets"],
                                                    st1b["session"], st1b["resets"]))
    ok = wait_for(lambda: answered(p, "vm3"), 10 * SLOW)
    st3b = status(p, "vm3")
    check("the changed guest: its new channel, a new session",
          ok and st3b["channel"] == "unix:" + a4.sock and st3b["session"] != st3["session"],
          "%r -> %r" % (st3, st3b))
    check("the added guest answers", wait_for(lambda: answered(p, "vm5"), 10 * SLOW) and
          p.usp("/RPC2/vm5").va.ping() is True)
    r = valib.http_unix(p.usock, valib.call_xml("va.ping"), path="/RPC2/vm2")
    check("the removed guest: 404, the guests listed", r.startswith("HTTP/1.1 404") and
          "no guest named \"vm2\"" in r and "vm1, vm3, vm5" in r, r[-300:])
    a2.signal(signal.SIGCONT)

    # ---- reloads that change nothing, or not everything ----
    def unchanged(what):
        st = status(p, "vm1")
        check(what + ": the guests and vm1's session stay",
              guests_of(p) == ["vm1", "vm3", "vm5"] and st["session"] == st1["session"],
              "%r %s" % (guests_of(p), st["session"]))

    bad = os.path.join(gd, "bad.conf")
    for text, what, word in (
            ("guest vm9\n", "a line that is not key = value", "expected \"key = value\""),
            ("guest = unix:/nowhere\n", "an unnamed guest in guests-dir", "need a name"),
            ("listen = unix:/x\n", "another key in guests-dir", "unknown setting"),
            ("guest = vm1=unix:/nowhere\n", "a second guest named vm1", "two guests are named")):
        write(bad, text)
        hup(p, notify)
        check("reload with %s: refused, the reason logged" % what,
              log_has(p, word) and log_has(p, "the guests and settings stay as they were"),
              p.d.log()[-1500:])
        unchanged(what)
    os.unlink(bad)
    for name in ("notes.txt", ".hidden.conf", "vm6.conf.dpkg-old", "vm6.conf~"):
        write(os.path.join(gd, name), "guest = vm6=unix:%s\n" % a2.sock)
    hup(p, notify)
    unchanged("files not named *.conf (or hidden) in guests-dir")

    # A guest that cannot be added: logged, the others applied; added later.
    nodir = run.path("later")
    write(os.path.join(gd, "vm7.conf"), "guest = vm7=unix-listen:%s/vm7.sock\n" % nodir)
    write(os.path.join(gd, "vm8.conf"), "guest = vm8=unix:%s\n" % a2.sock)
    hup(p, notify)
    check("a guest that cannot be added is logged, the others are added",
          log_has(p, "guest vm7 (config) not added") and guests_of(p) ==
          ["vm1", "vm3", "vm5", "vm8"], "%r\n%s" % (guests_of(p), p.d.log()[-1500:]))
    os.mkdir(nodir)
    hup(p, notify)
    check("... and at the next reload it is added",
          wait_for(lambda: guests_of(p) == ["vm1", "vm3", "vm5", "vm7", "vm8"], 5 * SLOW),
          guests_of(p))
    unchanged_st = status(p, "vm1")
    check("vm1 kept its session through every reload", unchanged_st["session"] == st1["session"])

    # What changes only at a restart: kept, with a warning.
    with open(conf, "a") as f:
        f.write("max-frame = 65536\ncall-timeout = 7\n")
    hup(p, notify)
    check("a changed max-frame and call-timeout: a warning; the guests are served",
          log_has(p, "change only at a restart") and p.usp("/RPC2/vm1").va.ping() is True,
          p.d.log()[-1000:])

    # vactl through the same proxy, by guest name.
    r = subprocess.run([VACTL, "-u", "unix:" + p.usock, "-g", "vm5", "ping"],
                       capture_output=True, text=True, timeout=30)
    check("vactl -g vm5 ping", r.returncode == 0, r.stdout + r.stderr)
    code, _ = p.stop()
    check("SIGTERM: STOPPING=1, exit 0", code == 0 and notify.wait("STOPPING=1", 5) is not None,
          "exit %s: %s" % (code, p.d.log()[-1500:]))
    p.stopped = True


NODE_XML = """<node>
  <domain type='test'>
    <name>dom-a</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <channel type='unix'>
        <source mode='bind' path='{a}'/>
        <target type='virtio' name='org.qemu.virtagent'/>
      </channel>
    </devices>
  </domain>
  <domain type='test'>
    <name>dom-b</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <channel type='unix'>
        <source mode='bind' path='/nowhere/qemu-ga.sock'/>
        <target type='virtio' name='org.qemu.guest_agent.0'/>
      </channel>
      <channel type='unix'>
        <source mode='bind' path='{b}'/>
        <target type='virtio' name='org.qemu.virtagent'/>
      </channel>
    </devices>
  </domain>
  <domain type='test'>
    <name>no-channel</name><memory>65536</memory><os><type>hvm</type></os>
  </domain>
  <domain type='test'>
    <name>connect-mode</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <channel type='unix'>
        <source mode='connect' path='/nowhere/x.sock'/>
        <target type='virtio' name='org.qemu.virtagent'/>
      </channel>
    </devices>
  </domain>
  <domain type='test'>
    <name>bad name</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <channel type='unix'>
        <source mode='bind' path='/nowhere/y.sock'/>
        <target type='virtio' name='org.qemu.virtagent'/>
      </channel>
    </devices>
  </domain>
  <domain type='test'>
    <name>vm1</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <channel type='unix'>
        <source mode='bind' path='/nowhere/z.sock'/>
        <target type='virtio' name='org.qemu.virtagent'/>
      </channel>
    </devices>
  </domain>
</node>
"""


def t_libvirt_test_driver(run, agents):
    a1, a2, a3, a4 = agents[:4]
    node = run.path("node.xml")
    write(node, NODE_XML.format(a=a2.sock, b=a3.sock))
    conf = run.path("libvirt.conf")
    write(conf, "libvirt = test://%s\nguest = vm1=unix:%s\n" % (node, a1.sock))
    p = start_proxy(run, "libvirt", conf)
    ok = wait_for(lambda: guests_of(p) == ["dom-a", "dom-b", "vm1"], 10 * SLOW)
    check("--libvirt (test driver): the domains with a virtagent channel are guests",
          ok, "%r\n%s" % (guests_of(p), p.d.log()[-2000:]))
    check("... and answer under the domain's name",
          wait_for(lambda: answered(p, "dom-a") and answered(p, "dom-b"), 10 * SLOW) and
          p.usp("/RPC2/dom-b").va.ping() is True)
    st = status(p, "dom-a")
    check("... with the channel spec of the domain's socket", st["channel"] == "unix:" + a2.sock,
          st["channel"])
    r = subprocess.run([VACTL, "-u", "unix:" + p.usock, "-g", "dom-a", "info"],
                       capture_output=True, text=True, timeout=30)
    check("vactl -g dom-a info", r.returncode == 0 and "hostname" in r.stdout,
          r.stdout + r.stderr)
    log = p.d.log()
    check("a domain whose channel connects (mode='connect') is left out, with the reason",
          "connect-mode: its channel org.qemu.virtagent has <source mode='connect'>" in log,
          log[-2000:])
    check("a domain whose name is no guest name is left out, with the reason",
          "domain bad name has a virtagent channel, but its name is no guest name" in log)
    check("a configured guest wins over a domain of the same name",
          "guest vm1 of libvirt is left out: the config names a guest vm1" in log and
          status(p, "vm1")["channel"] == "unix:" + a1.sock, log[-2000:])

    # A URI that does not connect: retried; the configured guest is served.
    conf2 = run.path("libvirt-bad.conf")
    write(conf2, "libvirt = test:///nowhere/node.xml\nguest = vm1=unix:%s\n" % a4.sock)
    p2 = start_proxy(run, "libvirt-bad", conf2)
    check("libvirt that does not connect: logged, the proxy serves its guests",
          log_has(p2, "libvirt: cannot connect to test:///nowhere/node.xml") and
          wait_for(lambda: answered(p2, "vm1"), 10 * SLOW), p2.d.log()[-1500:])
    for q in (p, p2):
        code, _ = q.stop()
        check("proxy %s with --libvirt exits 0 on SIGTERM" % q.tag, code == 0,
              "exit %s: %s" % (code, q.d.log()[-1500:]))
        q.stopped = True

    # A libvirtd that accepts and never answers: the watcher waits in
    # virConnectOpen; the HTTP side serves, and the stop waits for the
    # watcher no longer than the stop's bound (5 s), then exits 0.
    silent_path = run.path("silent-libvirt.sock")
    silent = socket.socket(socket.AF_UNIX)
    silent.bind(silent_path)
    silent.listen(8)
    try:
        conf3 = run.path("libvirt-silent.conf")
        write(conf3, "libvirt = qemu+unix:///system?socket=%s\n" % silent_path)
        # Never under valgrind: this proxy exits, by design, with the
        # watcher's thread still in libvirt's call, whose stack valgrind
        # counts as lost.
        Proxy.wrapper = []
        try:
            p3 = start_proxy(run, "libvirt-silent", conf3, extra=["--log-level", "debug"])
        finally:
            Proxy.wrapper = WRAPPER
        # The watcher is in libvirt's call once it has connected to the
        # silent socket (libvirt is loaded and connects after the start).
        silent.settimeout(20)
        try:
            held = silent.accept()[0]
        except socket.timeout:
            held = None
        check("... the watcher connects to the silent libvirtd", held is not None)
        r = valib.http_unix(p3.usock, valib.call_xml("va.ping"), path="/RPC2/x")
        check("libvirtd that never answers: the proxy serves HTTP all the same (404, no guest)",
              r.startswith("HTTP/1.1 404"), r[-300:])
        code, took = p3.stop()
        if held:
            held.close()
        p3.stopped = True
        check("... and exits 0 on SIGTERM within the stop's bound (%.1f s), saying why" % took,
              code == 0 and took < 8 and
              "the watcher still waits for libvirtd" in p3.d.log(),
              "exit %s: %s" % (code, p3.d.log()[-1500:]))
    finally:
        silent.close()


def t_libvirt_missing(run):
    """libvirt is loaded only for --libvirt: without libvirt.so.0 (hidden
    in a mount namespace of its own) the start fails, saying which package
    to install; without --libvirt the proxy does not need it."""
    lib = os.path.realpath("/usr/lib/x86_64-linux-gnu/libvirt.so.0")
    if os.geteuid() != 0 or not os.path.exists(lib) or not os.path.exists("/usr/bin/unshare"):
        print("# libvirt_missing skipped: needs root, unshare and %s" % lib)
        return
    sock = run.path("nolv.sock")
    hide = "mount --bind /dev/null %s && exec \"$@\"" % lib
    r = subprocess.run(["unshare", "-m", "sh", "-c", hide, "sh", PROXY, "-f", "/dev/null",
                        "-L", "unix:" + sock, "--libvirt", "qemu:///system"],
                       capture_output=True, timeout=30)
    err = r.stderr.decode(errors="replace")
    check("without libvirt.so.0, va-proxy --libvirt stops at the start naming the package "
          "libvirt0", r.returncode == 1 and "install the package libvirt0" in err,
          (r.returncode, err[-400:]))
    r = subprocess.run(["unshare", "-m", "sh", "-c", hide, "sh", "timeout", "-s", "TERM", "2",
                        PROXY, "-f", "/dev/null", "-L", "unix:" + sock + "2"],
                       capture_output=True, timeout=30)
    err = r.stderr.decode(errors="replace")
    check("... and without --libvirt it serves (libvirt is not linked)",
          "serving 0 guests" in err and "libvirt" not in err, err[-400:])


def main():
    run = valib.RunDir("vaservice-test-")
    print("# tmp %s, proxy %s%s" % (run.dir, PROXY,
                                     " under " + " ".join(WRAPPER) if WRAPPER else ""))
    missing = BINS.missing(AGENT, PROXY, VACTL)
    if missing:
        check("binaries", False, "missing: %s; build first or set BUILD" % missing)
        return valib.summary()
    try:
        agents = [valib.start_agent(run, "a%d" % i, AGENT) for i in range(1, 6)]

        def zero_guests():
            t_zero_guests(run)

        def reload():
            t_reload(run, agents)

        def libvirt_test_driver():
            t_libvirt_test_driver(run, agents)
        def libvirt_missing():
            t_libvirt_missing(run)
        for fn in (zero_guests, reload, libvirt_test_driver, libvirt_missing):
            case(fn)
    finally:
        for p in Proxy.started:
            if not hasattr(p, "stopped"):
                code, _ = p.stop()
                check("proxy %s exits 0 on SIGTERM" % p.tag, code == 0,
                      "exit %s: %s" % (code, p.d.log()[-1500:]))
        for d in valib.DAEMONS:
            d.signal(signal.SIGCONT)
            d.stop(5)
        run.finish(valib.RESULTS.failed == 0)
    return valib.summary()


if __name__ == "__main__":
    sys.exit(main())
