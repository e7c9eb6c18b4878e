#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""va-proxy --libvirt with a real libvirtd and real QEMU domains (issue 13).

As root: starts virtlogd and libvirtd (libvirtd -d: no systemd needed)
unless libvirtd already answers on qemu:///system, and a va-proxy with
--libvirt qemu:///system and one configured guest (a va-agent on a unix
socket, "anchor", through which proxy.guests and proxy.events are called
while no domain runs).  Then, with the proxy running all along:

  - domain A, a transient TCG domain (virsh create) booting the test
    guest's kernel and initrd (tests/vm/build-image.sh) with the one
    <channel> element of docs/LIBVIRT.md and no socket path: it is a
    guest of the proxy within 2 s of the start, callable within 2 s of
    its agent's hello, through vactl -g A info and Python; its channel is
    the socket libvirt chose;
  - a user who is not root, in the group libvirt-qemu, may connect to that
    socket (what the va-proxy service's user needs); without the group, not;
  - a call in flight to A (its agent stopped inside the guest), then
    virsh destroy A: the call fails with a fault, A leaves proxy.guests
    within 2 s, and a call to it is answered 404 naming the guests;
  - libvirtd restarted while domain B runs: B keeps its guest and session,
    the proxy connects again; B, started after that, is found, answers,
    and leaves when it is shut down (va.shutdown in the guest).

The kernel and initrd are copied to a directory libvirt's QEMU can read.
At the end the domains are destroyed, the proxy stopped, and libvirtd and
virtlogd stopped when this script started them.

usage: run-libvirt.py [--build DIR] [--keep]
The last line is "N passed, N failed"; exit status 1 when a check failed,
77 (skipped) when not root, or libvirtd, virsh or QEMU is missing.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import vmlib  # noqa: E402
from vmlib import valib  # noqa: E402
from valib import FAULT_LOST, FAULT_NOT_CONNECTED, check, wait_for  # noqa: E402

URI = "qemu:///system"
CHANNEL_DIR = "/var/lib/libvirt/qemu/channel/target/"

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{dir}/vmlinuz</kernel>
    <initrd>{dir}/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 va.channel=virtio-serial:/dev/virtio-ports/org.qemu.virtagent</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path='{dir}/{name}-console.log'/><target port='0'/></serial>
    <controller type='virtio-serial' index='0'/>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.virtagent'/>
    </channel>
    <channel type='unix'>
      <source mode='bind' path='{dir}/{name}-test.sock'/>
      <target type='virtio' name='org.virtagent.test'/>
    </channel>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def sh(argv, timeout=60):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def virsh(*args, timeout=60):
    return sh(["virsh", "-c", URI] + list(args), timeout)


def libvirtd_answers():
    try:
        return virsh("version", timeout=10)[0] == 0
    except subprocess.TimeoutExpired:
        return False


def pid_of(pidfile):
    try:
        with open(pidfile) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def kill_pidfile(pidfile):
    pid = pid_of(pidfile)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return
        wait_for(lambda: valib.proc_state(pid) in (None, "Z"), 15)


def start_libvirtd():
    """Starts virtlogd and libvirtd as daemons (they write /run/*.pid)."""
    os.makedirs("/run/libvirt", exist_ok=True)
    if not os.path.exists("/run/virtlogd.pid") or not pid_of("/run/virtlogd.pid") or \
            valib.proc_state(pid_of("/run/virtlogd.pid")) in (None, "Z"):
        sh(["virtlogd", "-d"])
    sh(["libvirtd", "-d"])
    return wait_for(libvirtd_answers, 30, 0.2)


def missing_prereqs(build):
    miss = []
    if os.geteuid() != 0:
        miss.append("root (libvirtd runs as root here)")
    for prog in ("libvirtd", "virtlogd", "virsh", "qemu-system-x86_64"):
        if not shutil.which(prog):
            miss.append(prog + " (tools/deps --libvirt)")
    for f in ("agent/va-agent", "host/proxy/va-proxy", "host/vactl/vactl"):
        if not os.access(os.path.join(build, f), os.X_OK):
            miss.append(os.path.join(build, f) + " (build first)")
    return miss


class Proxy(valib.Proxy):
    slow = 1


class Call(threading.Thread):
    def __init__(self, sp, method="va.ping"):
        super().__init__(daemon=True)
        self.sp, self.method = sp, method
        self.result = self.fault = self.error = None
        self.start()

    def run(self):
        try:
            self.result = getattr(self.sp, self.method)()
        except xmlrpc.client.Fault as f:
            self.fault = (f.faultCode, f.faultString)
        except Exception as e:  # noqa: BLE001
            self.error = e


class Run:
    def __init__(self, build, rundir):
        self.build = build
        self.run = rundir
        self.bins = valib.Binaries(build, environ={})
        self.domains = []

    # ---- helpers ----

    def guests(self):
        return sorted(g["guest"] for g in self.proxy.sp("/RPC2/anchor", 10).proxy.guests())

    def status(self, name):
        return self.proxy.sp("/RPC2/" + name, 10).proxy.status()

    def create(self, name):
        path = self.run.path(name + ".xml")
        with open(path, "w") as f:
            f.write(DOMAIN_XML.format(name=name, dir=self.img))
        virsh("destroy", name)  # a leftover of an earlier run
        self.domains.append(name)
        t = time.monotonic()
        rc, out = virsh("create", path)
        return rc, out, t

    def qemu_pid(self, name):
        return pid_of("/run/libvirt/qemu/%s.pid" % name)

    def hello_after(self, since, name, timeout):
        e, _ = valib.wait_event(self.proxy.sp("/RPC2/anchor", 30), since,
                                lambda e: e["guest"] == name and e["type"] == "hello", timeout)
        return e

    # ---- the run ----

    def main(self):
        img = self.run.path("img")
        os.mkdir(img)
        os.chmod(self.run.dir, 0o755)
        os.chmod(img, 0o755)
        vm = os.path.join(self.build, "vm")
        if not os.path.exists(os.path.join(vm, "initrd.img")) or \
                os.path.getmtime(os.path.join(vm, "initrd.img")) < \
                os.path.getmtime(self.bins.agent):
            rc, out = sh([os.path.join(HERE, "build-image.sh"), self.build, vm], 300)
            if not check("the test guest's image is built", rc == 0, out[-2000:]):
                return
        for f in ("vmlinuz", "initrd.img"):
            shutil.copy(os.path.join(vm, f), img)
            os.chmod(os.path.join(img, f), 0o644)
        self.img = img

        self.started_libvirtd = False
        if not libvirtd_answers():
            self.started_libvirtd = True
            t = time.monotonic()
            ok = start_libvirtd()
            check("libvirtd -d and virtlogd -d started (%.1f s)" % (time.monotonic() - t), ok)
            if not ok:
                return
        anchor = valib.start_agent(self.run, "anchor", self.bins.agent)
        Proxy.binary = self.bins.proxy
        self.proxy = Proxy(self.run, "libvirt", ["anchor=unix:" + anchor.sock],
                           ["--libvirt", URI, "--log-level", "debug"])
        check("va-proxy --libvirt %s connects" % URI,
              wait_for(lambda: "libvirt: connected to " + URI in self.proxy.d.log(), 10),
              self.proxy.d.log()[-2000:])
        ppid = self.proxy.d.p.pid
        try:
            self.domain_a()
            self.domain_b()
        finally:
            for name in self.domains:
                virsh("destroy", name)
            code, _ = self.proxy.stop()
            check("the proxy (the same process all along, pid %d) exits 0 on SIGTERM" % ppid,
                  code == 0, self.proxy.d.log()[-2000:])
            anchor.stop()
            if self.started_libvirtd:
                kill_pidfile("/run/libvirtd.pid")
                kill_pidfile("/run/virtlogd.pid")

    def domain_a(self):
        a = "va-lv-a"
        since = valib.newest_event_id(self.proxy.sp("/RPC2/anchor"))
        rc, out, t = self.create(a)
        if not check("virsh create %s (the channel element without a path)" % a, rc == 0, out):
            return
        shown = wait_for(lambda: a in self.guests(), 2, 0.05)
        check("%s is a guest of the proxy within 2 s of its start (%.2f s)" %
              (a, time.monotonic() - t), shown, self.proxy.d.log()[-2000:])
        hello = self.hello_after(since, a, 120)
        if not check("%s's agent says hello (%.1f s after the start)" % (a, time.monotonic() - t),
                     hello is not None, self.proxy.d.log()[-3000:]):
            return
        sp = self.proxy.sp("/RPC2/" + a, 10)
        t_hello = time.time()
        ok = wait_for(lambda: sp.va.ping() is True, 2, 0.05)
        check("%s answers va.ping within 2 s of its agent's hello (%.2f s after the proxy "
              "heard it)" % (a, time.time() - hello["time"]), ok and time.time() - t_hello < 2)
        st = self.status(a)
        check("its channel is the socket libvirt chose: " + st["channel"],
              st["channel"].startswith("unix:" + CHANNEL_DIR + "domain-") and
              st["channel"].endswith("-%s/org.qemu.virtagent" % a))
        rc, out = sh([self.bins.vactl, "-u", "unix:" + self.proxy.usock, "-g", a, "info"])
        check("vactl -g %s info" % a, rc == 0 and "hostname:" in out and "va-guest" in out, out)
        info = self.proxy.sp("/RPC2/" + a).va.info()
        check("Python: ServerProxy(URL/RPC2/%s).va.info()" % a,
              isinstance(info, dict) and info.get("hostname") == "va-guest", info)

        self.group_access(a, st["channel"][5:])

        # A call in flight (the agent stopped in the guest), then destroy.
        shell = vmlib.GuestShell(os.path.join(self.img, a + "-test.sock"))
        shell.run("kill -STOP $(pidof va-agent)")
        call = Call(self.proxy.sp("/RPC2/" + a, 60))
        check("a call in flight to %s (its agent stopped)" % a,
              wait_for(lambda: self.status(a)["calls_in_flight"] >= 1, 5))
        shell.close()
        rc, out = virsh("destroy", a)
        t = time.monotonic()
        check("virsh destroy %s" % a, rc == 0, out)
        call.join(10)
        check("the call in flight fails with a fault naming the guest (%r)" % (call.fault,),
              call.fault is not None and call.fault[0] in (FAULT_NOT_CONNECTED, FAULT_LOST) and
              a in call.fault[1], "%r %r %r" % (call.result, call.fault, call.error))
        gone = wait_for(lambda: a not in self.guests(), 2, 0.05)
        check("%s leaves proxy.guests within 2 s of virsh destroy's return (%.2f s)" %
              (a, time.monotonic() - t), gone, self.proxy.d.log()[-2000:])
        r = valib.http_unix(self.proxy.usock, valib.call_xml("va.ping"), path="/RPC2/" + a)
        check("a call to %s now: 404, no guest of that name, the guests listed" % a,
              r.startswith("HTTP/1.1 404") and ('no guest named "%s"' % a) in r and
              "anchor" in r, r[-300:])
        rc, out = sh([self.bins.vactl, "-u", "unix:" + self.proxy.usock, "-g", a, "ping"])
        check("vactl -g %s ping: fails, naming the missing guest" % a,
              rc != 0 and "no such path or guest" in out, out)

    def group_access(self, name, sock):
        """The socket: a user in the group libvirt-qemu may connect to it (what
        the va-proxy service's user needs), one outside it may not.  (QEMU
        serves one client at a time: a second proxy would only wait in the
        socket's backlog while this one is connected, so connect() is what
        is checked.)"""
        rc, _ = sh(["getent", "group", "libvirt-qemu"])
        if not check("group libvirt-qemu exists (libvirt-daemon-system)", rc == 0):
            return
        probe = ("import socket, sys\n"
                 "s = socket.socket(socket.AF_UNIX)\n"
                 "try:\n    s.connect(sys.argv[1]); print('connected')\n"
                 "except OSError as e:\n    print(e.strerror)\n")
        for groups, want in (("libvirt-qemu", "connected"), ("nogroup", "Permission denied")):
            rc, out = sh(["setpriv", "--reuid=nobody", "--regid=nogroup", "--groups=" + groups,
                          "--", sys.executable, "-c", probe, sock])
            check("user nobody in group %s connecting to %s's socket: %s" %
                  (groups, name, out.strip()), out.strip() == want, out)

    def domain_b(self):
        b = "va-lv-b"
        since = valib.newest_event_id(self.proxy.sp("/RPC2/anchor"))
        rc, out, t = self.create(b)
        if not check("virsh create %s, with the proxy still running" % b, rc == 0, out):
            return
        hello = self.hello_after(since, b, 120)
        check("%s is found and its agent says hello (%.1f s after the start)" %
              (b, time.monotonic() - t), hello is not None, self.proxy.d.log()[-2000:])
        check("%s answers under its name" % b,
              wait_for(lambda: self.proxy.sp("/RPC2/" + b).va.ping() is True, 2, 0.05))
        sess = self.status(b)["session"]

        if self.started_libvirtd:
            log0 = self.proxy.d.log().count("libvirt: connected to ")
            kill_pidfile("/run/libvirtd.pid")
            check("libvirtd stopped: the proxy says so, %s stays" % b,
                  wait_for(lambda: "libvirt: the connection to " + URI + " closed" in
                           self.proxy.d.log(), 10) and b in self.guests())
            ok = start_libvirtd()
            again = wait_for(lambda: self.proxy.d.log().count("libvirt: connected to ") > log0,
                             40, 0.2)
            st = self.status(b)
            check("libvirtd started again: the proxy connects again; %s keeps its session" % b,
                  ok and again and st["session"] == sess and
                  self.proxy.sp("/RPC2/" + b).va.ping() is True,
                  "%s %s %s -> %s" % (ok, again, sess, st["session"]))
        # Shut down from inside: libvirt's STOPPED event, after the restart.
        t = time.monotonic()
        try:
            self.proxy.sp("/RPC2/" + b, 10).va.shutdown("powerdown")
        except (xmlrpc.client.Fault, OSError) as e:
            check("va.shutdown('powerdown') in %s" % b, False, e)
        gone = wait_for(lambda: b not in self.guests(), 60, 0.1)
        check("%s shut down from inside: it leaves proxy.guests (%.1f s)" %
              (b, time.monotonic() - t), gone, self.proxy.d.log()[-2000:])
        rc, out = virsh("domstate", b)
        check("... and libvirt has no running %s" % b, rc != 0 or "running" not in out, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("VA_BUILD", os.path.join(TOP, "_build")))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    miss = missing_prereqs(build)
    if miss:
        print("SKIP: missing " + "; ".join(miss))
        print("0 passed, 0 failed (libvirt suite skipped)")
        return 77
    t0 = time.monotonic()
    run = valib.RunDir("va-libvirt-")
    try:
        valib.case(Run(build, run).main)
    finally:
        print("libvirt suite took %.0f s" % (time.monotonic() - t0))
        run.finish(valib.RESULTS.failed == 0 and not args.keep)
    return valib.summary(list_failures=True)


if __name__ == "__main__":
    sys.exit(main())
