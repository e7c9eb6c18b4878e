#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests of the guest operations (issue 14) over sockets: a
real va-agent (unix-listen:), a real va-proxy (TCP and a unix socket),
Python's xmlrpc.client and vactl, in a fresh temporary directory.

    BUILD=DIR tests/e2e-guestops.py [--valgrind]

Part 1, any user: the agent in this machine's own namespaces.  Every
method that only reads is called and compared with what this machine
says itself (/sys, /proc, os-release, statvfs, utmp); the methods that
change the guest are called only where they change nothing (cpu0 and
CPUs that do not exist are refused, a CPU already online is left alone,
va.time.set is off); the RPC lists (--block-rpcs, --allow-rpcs,
--enable-rpcs) cover the methods; vactl prints every command readably
and as JSON.

Part 2, as root with unshare, nsenter, ip and mkfs.ext4 (else skipped,
said on one line): the agent in a network and mount namespace of its
own (so nothing of this machine changes): an ext4 image on a loop
device mounted in it, a tmpfs on /run.  Freeze and thaw (a write
blocks, then completes), the refusals while frozen through the proxy,
a restart while frozen, the watchdog, trim, and the events: address
added/removed and link up/down (each within 1 s), fs.full and
fs.full.cleared, user.login and user.logout; guest text (interface,
mount point and user names with U+1F600 and with a byte 0xFF) exactly
or as U+FFFD with KEY_raw, through the methods, events and vactl.

--valgrind runs every agent under valgrind's memcheck: each must exit 0
at SIGTERM (99: an invalid access or a definite leak).

Prints one line per check and ends with "N passed, N failed"; exits 1
when a check failed, 77 when a binary is missing.
"""
import json
import os
import select
import platform
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import xmlrpc.client

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import valib  # noqa: E402
from valib import check, case  # noqa: E402

BINS = valib.Binaries()
AGENT, PROXY, VACTL = BINS.agent, BINS.proxy, BINS.vactl
VALGRIND = "--valgrind" in sys.argv[1:]
SLOW = 10 if VALGRIND else 1
WRAPPER = (["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite", "--num-callers=30"]
           if VALGRIND else [])

FAULT_TYPE, FAULT_INDEX, FAULT_NO_METHOD, FAULT_REFUSED = -501, -502, -506, -507


class Proxy(valib.Proxy):
    binary = PROXY
    slow = SLOW


def fault(fn, *args):
    return valib.fault_of(fn, *args)


class Env(valib.RunDir):
    """One agent (started by start_agent, restartable) behind one proxy."""

    def __init__(self):
        super().__init__("va-e2e-guestops-")
        self.agent = None
        self.proxy = None
        self.agents = []  # every agent Daemon, for the valgrind check
        self.sock = self.path("agent.sock")

    def start_agent(self, extra=(), prefix=()):
        argv = list(prefix) + WRAPPER + [AGENT, "--config", self.empty, "--channel",
                                         "unix-listen:" + self.sock, "--control", "none",
                                         "--freeze-state", self.path("frozen")] + list(extra)
        try:
            os.unlink(self.sock)
        except OSError:
            pass
        self.agent = valib.Daemon("agent", argv, self.path("agent.log"))
        self.agents.append(self.agent)
        if not valib.wait_for(lambda: os.path.exists(self.sock), 10 * SLOW):
            raise RuntimeError("the agent did not start: " + self.agent.log())
        return self.agent

    def stop_agent(self):
        if self.agent:
            rc, _ = self.agent.stop(30 * SLOW)
            self.agent.rc = rc
            self.agent = None

    def start_proxy(self):
        self.proxy = Proxy(self, "g", ["unix:" + self.sock])
        self.url = self.proxy.url()
        return self.proxy

    def sp(self, timeout=60):
        return valib.server_proxy(self.url, timeout * SLOW, use_builtin_types=True)

    def wait_hello(self, since):
        """Waits for the agent's host.hello after since (an event id)."""
        e, _ = valib.wait_event(self.sp(), since, lambda e: e["type"] == "hello", 20 * SLOW)
        return e

    def restart(self, extra=(), prefix=()):
        since = valib.newest_event_id(self.sp())
        self.stop_agent()
        self.start_agent(extra, prefix)
        if not self.wait_hello(since):
            raise RuntimeError("no hello from the restarted agent: " + self.agent.log())

    def vactl(self, *args, timeout=60):
        return subprocess.run([VACTL, "--url", "unix:" + self.proxy.usock] + list(args),
                              capture_output=True, text=True, timeout=timeout * SLOW)

    def events_after(self, since, pred, timeout):
        return valib.wait_event(self.sp(), since, pred, timeout * SLOW)[0]


def guest_event(name, pred=lambda d: True):
    """A predicate on proxy.events for host.event name with details d."""
    def match(e):
        return (e["type"] == "event" and e["data"].get("name") == name and
                pred(e["data"].get("data", {}).get("details", {})))
    return match


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


# ---- part 1: this machine, read only -----------------------------------------------

def t_net(e):
    sp = e.sp()
    ifs = sp.va.net.interfaces()
    names = {i["name"]: i for i in ifs}
    sysnames = set(os.listdir("/sys/class/net"))
    check("va.net.interfaces: the interfaces of /sys/class/net", set(names) == sysnames,
          "%s vs %s" % (sorted(names), sorted(sysnames)))
    bad = []
    for n, i in names.items():
        d = "/sys/class/net/" + n
        if i["index"] != int(read(d + "/ifindex", "0")) or i["mtu"] != int(read(d + "/mtu", "0")):
            bad.append(n + " index/mtu")
        if i["mac"] != read(d + "/address", ""):
            bad.append(n + " mac %r %r" % (i["mac"], read(d + "/address")))
        if i["operstate"] != read(d + "/operstate"):
            bad.append(n + " operstate")
        after = int(read(d + "/statistics/rx_bytes", "0"))
        if not 0 <= i["stats"]["rx_bytes"] <= after:
            bad.append(n + " rx_bytes")
    check("va.net.interfaces: index, mtu, mac, operstate, counters as sysfs says", not bad, bad)
    # IPv6 addresses: /proc/net/if_inet6 (address, index, prefix, scope, flags, name).
    want6 = set()
    for line in (read("/proc/net/if_inet6", "") or "").splitlines():
        f = line.split()
        a = ":".join(f[0][i:i + 4] for i in range(0, 32, 4))
        want6.add((f[5], socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, a)),
                   int(f[2], 16)))
    got6 = {(n, a["address"], a["prefix"]) for n, i in names.items() for a in i["addresses"]
            if a["family"] == "ipv6"}
    check("va.net.interfaces: the IPv6 addresses of /proc/net/if_inet6", got6 == want6,
          "%s vs %s" % (got6, want6))
    if shutil.which("ip"):
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
        want4 = {(ln.split()[1], ln.split()[3]) for ln in out.splitlines()}
        got4 = {(n, "%s/%d" % (a["address"], a["prefix"])) for n, i in names.items()
                for a in i["addresses"] if a["family"] == "ipv4"}
        check("va.net.interfaces: the IPv4 addresses of ip addr", got4 == want4,
              "%s vs %s" % (got4, want4))
    routes = sp.va.net.routes()
    want = []
    for line in (read("/proc/net/route", "") or "").splitlines()[1:]:
        f = line.split()
        if int(f[3], 16) & 1:  # RTF_UP
            dst = socket.inet_ntoa(struct.pack("<I", int(f[1], 16)))
            gw = socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))
            mask = bin(int(f[7], 16)).count("1")
            want.append((f[0], dst, mask, "" if gw == "0.0.0.0" else gw))
    got = [(r["interface"], r["destination"], r["prefix"], r["gateway"]) for r in routes
           if r["family"] == "ipv4" and r["table"] == 254]
    check("va.net.routes: the IPv4 main table of /proc/net/route", sorted(got) == sorted(want),
          "%s vs %s" % (got, want))
    have6 = set()
    for line in (read("/proc/net/ipv6_route", "") or "").splitlines():
        f = line.split()
        a = ":".join(f[0][i:i + 4] for i in range(0, 32, 4))
        have6.add((socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, a)),
                   int(f[1], 16), f[9]))
    got6 = {(r["destination"], r["prefix"], r["interface"]) for r in routes if r["family"] == "ipv6"}
    check("va.net.routes: each IPv6 route is one of /proc/net/ipv6_route", got6 <= have6,
          got6 - have6)


def t_time(e):
    sp = e.sp()
    t0 = time.time_ns()
    r = sp.va.time.get()
    t1 = time.time_ns()
    check("va.time.get: ns within the call's time", t0 - 10**9 <= r["ns"] <= t1 + 10**9,
          (t0, r["ns"], t1))
    check("va.time.get: synchronized is a boolean, errors are ints", isinstance(r["synchronized"], bool)
          and isinstance(r["maxerror_us"], int), r)
    code, msg = fault(sp.va.time.set, 0)
    check("va.time.set: off unless enabled, the fault says how", code == FAULT_NO_METHOD and
          "--enable-rpcs va.time.set" in msg, (code, msg))
    tz = sp.va.timezone()
    lt = time.localtime()
    check("va.timezone: the offset and abbreviation of localtime()", tz["offset_s"] == lt.tm_gmtoff
          and tz["abbreviation"] == lt.tm_zone and tz["dst"] == (lt.tm_isdst > 0), (tz, lt))
    if read("/etc/timezone"):
        check("va.timezone: the name of /etc/timezone", tz["name"] == read("/etc/timezone") and
              tz["source"] == "/etc/timezone", tz)


def t_os(e):
    sp = e.sp()
    r = sp.va.os.info()
    try:
        rel = platform.freedesktop_os_release()
    except OSError:
        rel = {}
    u = os.uname()
    check("va.os.info: os-release's ID, VERSION_ID, PRETTY_NAME", r["id"] == rel.get("ID", "linux")
          and r["version_id"] == rel.get("VERSION_ID", "") and
          r["pretty_name"] == rel.get("PRETTY_NAME", "Linux"), (r, rel))
    check("va.os.info: uname's release, version, machine", r["kernel_release"] == u.release and
          r["kernel_version"] == u.version and r["machine"] == u.machine, r)
    h = sp.va.hostname()
    check("va.hostname: uname's nodename", h["hostname"] == socket.gethostname(), h)
    users = sp.va.users()
    want = []
    try:
        with open("/var/run/utmp", "rb") as f:
            data = f.read()
        for off in range(0, len(data) - 383, 384):
            typ, pid = struct.unpack_from("<hxxi", data, off)
            user = data[off + 44:off + 76].split(b"\0")[0]
            if typ == 7 and user:
                want.append((user.decode(errors="replace"), pid))
    except OSError:
        pass
    check("va.users: the USER_PROCESS records of utmp", sorted((x["user"], x["pid"]) for x in users)
          == sorted(want), (users, want))


def t_fs(e):
    sp = e.sp()
    fs = sp.va.fs.info()
    root = [f for f in fs if f["mountpoint"] == "/"]
    check("va.fs.info: / is there once", len(root) == 1, [f["mountpoint"] for f in fs])
    st = os.statvfs("/")
    r = root[0]
    check("va.fs.info /: total and inodes as statvfs", r["total_bytes"] == st.f_blocks * st.f_frsize
          and r["total_inodes"] == st.f_files, (r, st))
    types = {}
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        types[f[4]] = f[f.index("-") + 1]
    check("va.fs.info: each type as mountinfo says", all(types.get(f["mountpoint"]) == f["type"]
                                                          for f in fs if " " not in f["mountpoint"]), fs[:3])
    check("va.fs.info: no proc, sysfs, cgroup", not any(f["type"] in ("proc", "sysfs", "cgroup2")
                                                      for f in fs), [f["type"] for f in fs])
    dev = os.stat("/").st_dev
    link = "/sys/dev/block/%d:%d" % (os.major(dev), os.minor(dev))
    if os.path.exists(link):
        real = os.path.realpath(link)
        disk = os.path.basename(os.path.dirname(real)) if os.path.exists(real + "/partition") \
            else os.path.basename(real)
        names = [d["name"] for d in r["disks"]]
        serial = read("/sys/block/%s/serial" % disk)
        check("va.fs.info /: its disk as sysfs maps it (serial too)", disk in names and
              (not serial or r["disks"][names.index(disk)]["serial"] == serial), (r["disks"], disk))
    one = sp.va.fs.info(["/"])
    check("va.fs.info([/]): that one only", [f["mountpoint"] for f in one] == ["/"], one)
    code, msg = fault(sp.va.fs.info, ["/no/such/mount"])
    check("va.fs.info of no mount point: fault -502", code == FAULT_INDEX and "not a mount point" in msg,
          (code, msg))
    code, msg = fault(sp.va.fs.info, "/")
    check("va.fs.info with a string: fault -501", code == FAULT_TYPE, (code, msg))
    disks = sp.va.disks()
    want = sorted(d for d in os.listdir("/sys/block") if not d.startswith(("ram", "zram")) and
                  int(read("/sys/block/%s/size" % d, "0")) > 0)
    check("va.disks: the disks of /sys/block", sorted(d["name"] for d in disks) == want,
          ([d["name"] for d in disks], want))
    check("va.disks: / among the mountpoints", any("/" in d["mountpoints"] for d in disks) or
          not os.path.exists(link), disks)
    st = sp.va.fs.status()
    check("va.fs.status: thawed", st["status"] == "thawed" and st["mountpoints"] == [], st)
    t = sp.va.fs.thaw()
    check("va.fs.thaw when thawed: 0", t["thawed"] == 0, t)
    code, msg = fault(sp.va.fs.trim, ["/no/such/mount"])
    check("va.fs.trim of no mount point: fault -502", code == FAULT_INDEX, (code, msg))
    code, msg = fault(sp.va.fs.trim, [], -1)
    check("va.fs.trim with a negative minimum: fault -502", code == FAULT_INDEX, (code, msg))


def t_cpu(e):
    sp = e.sp()
    cpus = sp.va.cpu.list()
    present = read("/sys/devices/system/cpu/present")
    online = read("/sys/devices/system/cpu/online")

    def expand(s):
        out = set()
        for part in s.split(","):
            a, _, b = part.partition("-")
            out.update(range(int(a), int(b or a) + 1))
        return out
    check("va.cpu.list: present and online as sysfs says", {c["cpu"] for c in cpus} == expand(present)
          and {c["cpu"] for c in cpus if c["online"]} == expand(online), (cpus, present, online))
    check("va.cpu.list: cpu0 cannot go offline", not [c for c in cpus if c["cpu"] == 0][0]["can_offline"],
          cpus)
    code, msg = fault(sp.va.cpu.set, 0, False)
    check("va.cpu.set(0): refused, -507", code == FAULT_REFUSED and "cpu0" in msg, (code, msg))
    code, msg = fault(sp.va.cpu.set, 99999, False)
    check("va.cpu.set of no CPU: -502", code == FAULT_INDEX, (code, msg))
    code, msg = fault(sp.va.cpu.set, 1)
    check("va.cpu.set with one parameter: -501", code == FAULT_TYPE, (code, msg))
    up = [c["cpu"] for c in cpus if c["online"] and c["can_offline"]]
    if up:
        # Online already: nothing is written (this machine's CPUs stay as they are).
        r = sp.va.cpu.set(up[0], True)
        check("va.cpu.set(N, true) of an online CPU: unchanged", r == {"cpu": up[0], "online": True,
                                                                      "changed": False}, r)
    s = sp.va.stats()
    la = os.getloadavg()
    check("va.stats: loadavg close to os.getloadavg()", all(abs(a - b) < 2 for a, b in zip(s["loadavg"], la)),
          (s["loadavg"], la))
    mem = int(read("/proc/meminfo").split()[1]) * 1024
    check("va.stats: memory total of /proc/meminfo", s["memory"]["total_bytes"] == mem, s["memory"])
    check("va.stats: one entry per online CPU", len(s["cpus"]) == len(expand(online)), len(s["cpus"]))
    check("va.stats: disks of /proc/diskstats", {d["name"] for d in s["disks"]} <=
          {ln.split()[2] for ln in open("/proc/diskstats")}, s["disks"][:2])


def t_params(e):
    """Every method refuses parameters it does not take with -501."""
    sp = e.sp()
    bad = []
    for m in ("va.net.interfaces", "va.net.routes", "va.time.get", "va.timezone", "va.os.info",
              "va.hostname", "va.users", "va.disks", "va.fs.status", "va.fs.thaw", "va.cpu.list",
              "va.stats"):
        code, msg = fault(getattr(sp, m), 1)
        if code != FAULT_TYPE or m not in msg:
            bad.append((m, code, msg))
    code, msg = fault(sp.va.fs.freeze, 1)
    if code != FAULT_TYPE:
        bad.append(("va.fs.freeze", code, msg))
    check("every new method: fault -501 with its usage for a parameter too many", not bad, bad)


def t_vactl(e):
    """Each command: exit 0, readable output, and --json the method's result."""
    sp = e.sp()
    cases = [
        (["net"], sp.va.net.interfaces, lambda o: "lo" in o),
        (["net", "routes"], sp.va.net.routes, lambda o: True),
        (["time"], None, lambda o: "guest clock:" in o and "vs the host:" in o),
        (["timezone"], sp.va.timezone, lambda o: "UTC" in o),
        (["os"], sp.va.os.info, lambda o: "kernel_release:" in o),
        (["hostname"], sp.va.hostname, lambda o: o.strip() == socket.gethostname()),
        (["users"], sp.va.users, lambda o: True),
        (["fs"], None, lambda o: o.startswith("MOUNTPOINT") and "\n/ " in o),
        (["fs", "status"], sp.va.fs.status, lambda o: o.strip() == "thawed"),
        (["disks"], None, lambda o: o.startswith("NAME")),
        (["cpu"], sp.va.cpu.list, lambda o: "cpu0" in o),
        (["stats"], None, lambda o: "loadavg:" in o),
    ]
    for args, method, ok in cases:
        r = e.vactl(*args)
        check("vactl %s: exit 0, readable" % " ".join(args), r.returncode == 0 and ok(r.stdout),
              (r.returncode, r.stdout[:300], r.stderr))
        j = e.vactl("--json", *args)
        try:
            got = json.loads(j.stdout)
        except ValueError:
            got = None
        if method:
            want = method()
            if args == ["net"]:  # the counters move between the two calls
                got = [(i["name"], i["addresses"]) for i in got or []]
                want = [(i["name"], i["addresses"]) for i in want]
            check("vactl --json %s: the method's result" % " ".join(args), got == want,
                  (j.stdout[:300], j.stderr))
        else:
            check("vactl --json %s: JSON" % " ".join(args), j.returncode == 0 and got is not None,
                  (j.stdout[:300], j.stderr))
    r = e.vactl("time", "set", "now")
    check("vactl time set now: exit 1, says how to enable it", r.returncode == 1 and
          "--enable-rpcs va.time.set" in r.stderr, (r.returncode, r.stderr))
    r = e.vactl("cpu", "set", "0", "off")
    check("vactl cpu set 0 off: exit 1, refused", r.returncode == 1 and "cpu0" in r.stderr, r.stderr)
    r = e.vactl("fs", "bogus")
    check("vactl fs bogus: exit 2", r.returncode == 2, r.stderr)
    r = e.vactl("help", "fs")
    check("vactl help fs: the subcommands", r.returncode == 0 and "freeze" in r.stdout and
          "thaw" in r.stdout, r.stdout)


def t_lists(e):
    """--block-rpcs, --allow-rpcs and --enable-rpcs cover the new methods."""
    e.restart(["--block-rpcs", "va.fs.*,va.net.routes,va.cpu.set"])
    sp = e.sp()
    caps = sp.va.capabilities()["methods"]
    gone = [m for m in ("va.fs.info", "va.fs.freeze", "va.fs.thaw", "va.fs.status", "va.fs.trim",
                        "va.net.routes", "va.cpu.set") if m in caps]
    check("--block-rpcs va.fs.*,...: left out of va.capabilities", not gone and "va.net.interfaces" in caps
          and "va.time.set" not in caps, gone)
    code, msg = fault(sp.va.fs.freeze)
    check("--block-rpcs: va.fs.freeze disabled (-506)", code == FAULT_NO_METHOD and "disabled" in msg,
          (code, msg))
    code, msg = fault(sp.va.net.routes)
    check("--block-rpcs: va.net.routes disabled (-506)", code == FAULT_NO_METHOD, (code, msg))
    check("--block-rpcs: va.net.interfaces still served", isinstance(sp.va.net.interfaces(), list))
    e.restart(["--allow-rpcs", "va.ping,va.stats,va.capabilities", "--enable-rpcs", "va.time.set"])
    sp = e.sp()
    caps = sp.va.capabilities()["methods"]
    check("--allow-rpcs: only those (va.time.set enabled but not allowed)", sorted(caps) ==
          ["va.capabilities", "va.ping", "va.stats"], caps)
    code, msg = fault(sp.va.os.info)
    check("--allow-rpcs: va.os.info disabled", code == FAULT_NO_METHOD, (code, msg))
    e.restart(["--enable-rpcs", "va.time.set"])
    caps = e.sp().va.capabilities()["methods"]
    check("--enable-rpcs va.time.set: listed by va.capabilities", "va.time.set" in caps, caps)
    e.restart([])


# ---- part 2: a sandbox of namespaces ------------------------------------------------

def sandbox_missing():
    if os.geteuid() != 0:
        return "not root"
    for prog in ("unshare", "nsenter", "ip", "mkfs.ext4", "mount", "timeout"):
        if not shutil.which(prog):
            return prog + " is missing"
    r = subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True)
    if r.returncode != 0:
        return "unshare -m -n fails: " + r.stderr.decode(errors="replace").strip()
    return None


class Sandbox:
    """A process holding a network and a mount namespace with an ext4 image
    mounted at MNT and a tmpfs on /run."""

    def __init__(self, e):
        self.e = e
        self.img = e.path("disk.img")
        self.mnt = e.path("mnt")
        os.mkdir(self.mnt)
        subprocess.run(["truncate", "-s", "64M", self.img], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", self.img], check=True)
        script = ("mount -o loop %s %s && mount -t tmpfs -o mode=0755 va-run /run && "
                  "echo ready > %s && exec sleep 100000") % (
            shlex.quote(self.img), shlex.quote(self.mnt), shlex.quote(e.path("sandbox.ready")))
        self.holder = valib.Daemon("sandbox", ["unshare", "-m", "-n", "--propagation", "private",
                                               "sh", "-c", script], e.path("sandbox.log"))
        if not valib.wait_for(lambda: os.path.exists(e.path("sandbox.ready")), 10):
            raise RuntimeError("the sandbox did not start: " + self.holder.log())
        self.pid = self.holder.p.pid

    def prefix(self):
        return ["nsenter", "-t", str(self.pid), "-m", "-n", "--"]

    def sh(self, cmd, timeout=30, input=None):
        return subprocess.run(self.prefix() + ["sh", "-c", cmd], capture_output=True, text=input is None,
                              timeout=timeout, input=input)

    def close(self):
        # Never leave a frozen filesystem behind.
        self.sh("fsfreeze -u %s 2>/dev/null; true" % shlex.quote(self.mnt))
        self.holder.stop(10)


def utmp_record(user, pid, line, t):
    """A struct utmpx of type USER_PROCESS (x86_64 glibc, 384 bytes)."""
    return struct.pack("<hxxi32s4s32s256shhiii4i20x", 7, pid, line.encode(), b"ts/9", user.encode(),
                       b"198.51.100.7", 0, 0, 0, int(t), 0, 0, 0, 0, 0)


def t_sandbox(e, sb):
    mnt = sb.mnt
    sp = e.sp()
    # -- the loop disk --
    fs = sp.va.fs.info([mnt])
    check("sandbox: va.fs.info of the loop ext4: its disk and backing file",
          len(fs) == 1 and fs[0]["type"] == "ext4" and fs[0]["disks"] and
          fs[0]["disks"][0].get("backing_file") == e.path("disk.img"), fs)
    tr = sp.va.fs.trim([mnt])
    check("sandbox: va.fs.trim of it: bytes trimmed, no error", len(tr) == 1 and tr[0]["mountpoint"] == mnt
          and tr[0]["trimmed_bytes"] > 0 and "error" not in tr[0], tr)

    # -- freeze, a blocked write, thaw --
    fr = sp.va.fs.freeze([mnt])
    check("sandbox: va.fs.freeze([mnt]): frozen 1", fr == {"frozen": 1, "mountpoints": [mnt]}, fr)
    st = sp.va.fs.status()
    check("sandbox: va.fs.status: frozen, the watchdog armed", st["status"] == "frozen" and
          st["mountpoints"] == [mnt] and st["watchdog_s"] > 0, st)
    code, msg = fault(sp.va.info)
    check("sandbox: frozen: va.info refused (-507), the fault names the freeze", code == FAULT_REFUSED and
          "frozen" in msg and "va.fs.thaw" in msg, (code, msg))
    for m in ("va.file.open", "va.net.interfaces", "va.fs.freeze", "va.stats"):
        code, _ = fault(getattr(sp, m), "/x", "w") if m == "va.file.open" else fault(getattr(sp, m))
        if code != FAULT_REFUSED:
            check("sandbox: frozen: %s refused" % m, False, code)
    check("sandbox: frozen: va.ping and va.capabilities served", sp.va.ping() is True and
          "va.fs.thaw" in sp.va.capabilities()["methods"])
    r = e.vactl("info")
    check("sandbox: frozen: vactl info exits 1 saying why", r.returncode == 1 and "frozen" in r.stderr,
          r.stderr)
    writer = subprocess.Popen(sb.prefix() + ["sh", "-c", "echo written > %s/f && sync %s/f && echo done"
                                             % (mnt, mnt)], stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    check("sandbox: frozen: a write to the filesystem blocks", writer.poll() is None)
    th = sp.va.fs.thaw()
    check("sandbox: va.fs.thaw: thawed 1", th == {"thawed": 1, "mountpoints": [mnt]}, th)
    out = writer.communicate(timeout=20)[0]
    check("sandbox: thawed: the write completes", writer.returncode == 0 and "done" in out and
          sb.sh("cat %s/f" % mnt).stdout.strip() == "written", out)
    check("sandbox: thawed: va.info served again, no state file", isinstance(sp.va.info(), dict) and
          not os.path.exists(e.path("frozen")))
    r = e.vactl("fs", "freeze", mnt)
    r2 = e.vactl("fs", "status")
    r3 = e.vactl("fs", "thaw")
    check("sandbox: vactl fs freeze / status / thaw", r.returncode == 0 and "1 filesystems frozen" in
          r.stdout and r2.stdout.startswith("frozen since") and r3.returncode == 0 and
          "1 filesystems thawed" in r3.stdout, (r.stdout, r2.stdout, r3.stdout, r3.stderr))

    # -- a restart while frozen --
    sp.va.fs.freeze([mnt])
    since = valib.newest_event_id(e.sp())
    e.stop_agent()
    check("sandbox: the agent stopped frozen: the state file stays", os.path.exists(e.path("frozen")))
    e.start_agent(["--freeze-timeout", "120"], sb.prefix())
    e.wait_hello(since)
    sp = e.sp()
    st = sp.va.fs.status()
    code, msg = fault(sp.va.info)
    check("sandbox: restarted: still frozen, still refusing", st["status"] == "frozen" and
          st["mountpoints"] == [mnt] and code == FAULT_REFUSED, (st, code, msg))
    th = sp.va.fs.thaw()
    check("sandbox: restarted: va.fs.thaw thaws it", th["thawed"] == 1 and sb.sh(
        "timeout 5 sh -c 'echo again > %s/g'" % mnt).returncode == 0, th)

    # -- examples/python/freeze_snapshot.py: frozen while the command runs, thawed after --
    ex = os.path.join(valib.TOP, "examples", "python", "freeze_snapshot.py")
    r = subprocess.run([sys.executable, ex, "--url", "unix:" + e.proxy.usock, "--mount", mnt, "--",
                        VACTL, "--url", "unix:" + e.proxy.usock, "fs", "status"],
                       capture_output=True, text=True, timeout=60 * SLOW)
    check("sandbox: examples/python/freeze_snapshot.py: the command runs frozen, then it thaws",
          r.returncode == 0 and "frozen: " + mnt in r.stdout and "\nfrozen since" in r.stdout and
          "thawed: 1 filesystems" in r.stdout and sp.va.fs.status()["status"] == "thawed", (r.stdout, r.stderr))

    # -- the watchdog --
    e.restart(["--freeze-timeout", "2"], sb.prefix())
    sp = e.sp()
    since = valib.newest_event_id(sp)
    t = time.monotonic()
    sp.va.fs.freeze([mnt])
    ev = e.events_after(since, guest_event("fs.thawed", lambda d: d.get("reason") == "watchdog"), 15)
    took = time.monotonic() - t
    check("sandbox: the watchdog thaws after --freeze-timeout 2, not before, and says so (fs.thawed, %.1f s)"
          % took,
          ev is not None and 2.0 <= took <= 8 * SLOW and ev["data"]["data"]["details"]["mountpoints"] == [mnt]
          and sp.va.fs.status()["status"] == "thawed", (ev, took))
    check("sandbox: after the watchdog: a write completes", sb.sh(
        "timeout 5 sh -c 'echo w > %s/h'" % mnt).returncode == 0)

    # -- events --
    e.restart(["--fs-full-threshold", "50"], sb.prefix())
    sp = e.sp()
    # vactl events --follow prints a guest event as it comes.
    follow = subprocess.Popen([VACTL, "--url", "unix:" + e.proxy.usock, "events", "--follow", "--wait", "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5 * SLOW)
    sb.sh("ip addr add 10.78.0.1/32 dev lo && ip addr del 10.78.0.1/32 dev lo")
    line = ""
    end = time.monotonic() + 10 * SLOW
    while time.monotonic() < end and "net.address.added" not in line:
        if select.select([follow.stdout], [], [], 0.5)[0]:
            line = follow.stdout.readline()
    follow.terminate()
    follow.wait(10)
    check("sandbox: vactl events --follow prints net.address.added as it comes",
          "name=net.address.added" in line and '"address": "10.78.0.1"' in line, line)
    for name, cmd, match in (
        ("net.link.up", "ip link set lo up", guest_event("net.link.up", lambda d: d["interface"] == "lo")),
        ("net.address.added", "ip addr add 10.77.0.1/24 dev lo",
         guest_event("net.address.added", lambda d: d["address"] == "10.77.0.1" and d["prefix"] == 24)),
        ("net.address.removed", "ip addr del 10.77.0.1/24 dev lo",
         guest_event("net.address.removed", lambda d: d["address"] == "10.77.0.1")),
        ("net.link.down", "ip link set lo down", guest_event("net.link.down", lambda d: d["interface"] == "lo")),
    ):
        since = valib.newest_event_id(sp)
        t = time.monotonic()
        r = sb.sh(cmd)
        ev = e.events_after(since, match, 5)
        took = time.monotonic() - t
        check("sandbox: %s: the %s event within 1 s (%.2f s)" % (cmd, name, took),
              r.returncode == 0 and ev is not None and took < 1.0 * SLOW, (r.stderr, ev))
    since = valib.newest_event_id(sp)
    sb.sh("dd if=/dev/zero of=%s/fill bs=1M count=40 2>/dev/null; sync" % mnt)
    ev = e.events_after(since, guest_event("fs.full", lambda d: d["mountpoint"] == mnt), 10)
    check("sandbox: fs.full when the disk passes 50%", ev is not None and
          ev["data"]["data"]["details"]["used_percent"] >= 50 and
          ev["data"]["data"]["details"]["threshold_percent"] == 50, ev)
    since = valib.newest_event_id(sp)
    sb.sh("rm %s/fill; sync; touch %s/x" % (mnt, mnt))
    ev = e.events_after(since, guest_event("fs.full.cleared", lambda d: d["mountpoint"] == mnt), 10)
    check("sandbox: fs.full.cleared when it is below again", ev is not None, ev)
    since = valib.newest_event_id(sp)
    rec = utmp_record("carol", 4321, "pts/9", 1700000000)
    r = sb.sh("cat > /run/utmp", input=rec)
    ev = e.events_after(since, guest_event("user.login", lambda d: d["user"] == "carol"), 10)
    users = sp.va.users()
    check("sandbox: a utmp login: user.login, and va.users lists it", r.returncode == 0 and ev is not None
          and ev["data"]["data"]["details"]["host"] == "198.51.100.7" and
          [(u["user"], u["pid"], u["line"]) for u in users] == [("carol", 4321, "pts/9")], (ev, users))
    since = valib.newest_event_id(sp)
    sb.sh(": > /run/utmp")
    ev = e.events_after(since, guest_event("user.logout", lambda d: d["user"] == "carol"), 10)
    check("sandbox: the record gone: user.logout", ev is not None, ev)
    r = e.vactl("events", "--since", str(since))
    check("sandbox: vactl events shows the guest events", r.returncode == 0 and "user.logout" in r.stdout,
          r.stdout[-500:])


def t_sandbox_text(e, sb):
    """Guest text (interface, mount point and user names) with a character
    above U+FFFF, and with a byte that is not UTF-8: never a fault, never
    invalid XML; exact text, or U+FFFD with KEY_raw holding the bytes."""
    sp = e.sp()
    emoji = "\U0001F600"
    good, bad = "v" + emoji, b"w" + emoji.encode() + b"\xff"
    bad_text = "w" + emoji + "\ufffd"

    def run(*argv):
        return subprocess.run(sb.prefix() + list(argv), capture_output=True, timeout=30)

    since = valib.newest_event_id(sp)
    r = run("ip", "link", "add", good, "type", "veth", "peer", "name", bad)
    r2 = run("ip", "addr", "add", "10.79.0.1/32", "dev", good)
    try:
        ifs = {i["name"]: i for i in sp.va.net.interfaces()}
        check("sandbox text: an interface named with U+1F600: its name exactly, no name_raw",
              r.returncode == 0 and good in ifs and "name_raw" not in ifs[good] and
              [a["address"] for a in ifs[good]["addresses"]] == ["10.79.0.1"], (r.stderr, sorted(ifs)))
        check("sandbox text: an interface named with a byte 0xFF: U+FFFD, name_raw its bytes",
              bad_text in ifs and ifs[bad_text]["name_raw"] == bad, sorted(ifs))
        ev = e.events_after(since, guest_event("net.address.added", lambda d: d["interface"] == good), 5)
        check("sandbox text: net.address.added names the interface exactly", r2.returncode == 0 and
              ev is not None, (r2.stderr, ev))
        v = e.vactl("net")
        check("sandbox text: vactl net prints both names", v.returncode == 0 and good in v.stdout and
              bad_text in v.stdout, (v.stdout[-800:], v.stderr))
    finally:
        run("ip", "link", "del", good)

    top = e.path("text")
    mp_good = os.path.join(top, "m" + emoji)
    mp_bad = os.fsencode(top) + b"/n" + emoji.encode() + b"\xff"
    os.makedirs(mp_good)
    os.mkdir(mp_bad)
    r = run("mount", "-t", "tmpfs", "-o", "size=1m", "va-good", mp_good)
    r2 = run("mount", "-t", "tmpfs", "-o", "size=1m", "va-bad", mp_bad)
    try:
        by = {f["mountpoint"]: f for f in sp.va.fs.info()}
        check("sandbox text: va.fs.info: a mount point with U+1F600 exactly, no mountpoint_raw",
              r.returncode == 0 and mp_good in by and "mountpoint_raw" not in by[mp_good] and
              by[mp_good]["type"] == "tmpfs", (r.stderr, sorted(by)))
        mp_bad_text = os.fsdecode(top) + "/n" + emoji + "\ufffd"
        check("sandbox text: va.fs.info: a mount point with a byte 0xFF: U+FFFD, mountpoint_raw its bytes",
              r2.returncode == 0 and mp_bad_text in by and by[mp_bad_text]["mountpoint_raw"] == mp_bad,
              (r2.stderr, sorted(by)))
        one = sp.va.fs.info([mp_good])
        check("sandbox text: va.fs.info([that mount point]) finds it", [f["mountpoint"] for f in one] ==
              [mp_good], one)
        for m in ("va.fs.info", "va.fs.freeze", "va.fs.trim"):
            code, msg = fault(getattr(sp, m), [mp_good + "x"])
            check("sandbox text: %s of no mount point: fault -502 naming it exactly" % m,
                  code == FAULT_INDEX and (mp_good + "x") in msg, (code, msg))
        v = e.vactl("fs")
        check("sandbox text: vactl fs prints both mount points", v.returncode == 0 and mp_good in v.stdout
              and mp_bad_text in v.stdout, (v.stdout[-800:], v.stderr))
        v = e.vactl("fs", "info", "/x\udcff")
        check("sandbox text: vactl fs info with a MOUNT that is not UTF-8: exit 2, nothing sent",
              v.returncode == 2 and "MOUNT" in v.stderr, (v.returncode, v.stderr))
    finally:
        run("umount", mp_good)
        run("umount", mp_bad)

    since = valib.newest_event_id(sp)
    user = "c" + emoji
    r = sb.sh("cat > /run/utmp", input=utmp_record(user, 4322, "pts/8", 1700000000))
    ev = e.events_after(since, guest_event("user.login", lambda d: d["user"] == user), 10)
    users = sp.va.users()
    check("sandbox text: a user named with U+1F600: user.login and va.users exactly", r.returncode == 0
          and ev is not None and [u["user"] for u in users] == [user], (ev, users))
    sb.sh(": > /run/utmp")


def main():
    for b in BINS.missing(AGENT, PROXY, VACTL):
        return valib.skip_run(f"{b} is not built")
    if VALGRIND and not shutil.which("valgrind"):
        return valib.skip_run("valgrind is not installed")
    e = Env()
    sb = None
    try:
        e.start_agent()
        e.start_proxy()
        e.wait_hello(0)
        for t in (t_net, t_time, t_os, t_fs, t_cpu, t_params, t_vactl, t_lists):
            case(lambda t=t: t(e))
        why = sandbox_missing()
        if why:
            print("# the sandbox part is skipped: " + why)
        else:
            sb = Sandbox(e)
            e.restart([], sb.prefix())
            case(lambda: t_sandbox(e, sb))
            case(lambda: t_sandbox_text(e, sb))
    except Exception as ex:  # noqa: BLE001 - reported as a failed check
        check("the suite ran", False, "%s: %s\n%s" % (type(ex).__name__, ex,
                                                  e.agent.log()[-2000:] if e.agent else ""))
    finally:
        e.stop_agent()
        if sb:
            sb.close()
        if e.proxy:
            e.proxy.stop()
        if VALGRIND:
            bad = [(a.argv[-1], getattr(a, "rc", None)) for a in e.agents if getattr(a, "rc", 0) != 0]
            check("valgrind: every agent exited 0 at SIGTERM (%d agents)" % len(e.agents), not bad,
                  "%s\n%s" % (bad, read(e.path("agent.log"), "")[-3000:]))
        e.finish(valib.RESULTS.failed == 0)
    return valib.summary(list_failures=True)


if __name__ == "__main__":
    sys.exit(main())
