#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests of va-proxy (issue 4) with the real va-agent and real
clients: Python's xmlrpc.client, curl and xmlrpc-c's `xmlrpc` tool.

Binaries: $BUILD/agent/va-agent, $BUILD/agent/va-clip, $BUILD/host/proxy/va-proxy
(BUILD defaults to the current directory when it holds them, else to
_build beside this file's directory); VA_AGENT, VA_CLIP and VA_PROXY
override single paths.  VA_PROXY_WRAPPER is put in front of every va-proxy
command (tests/e2e-proxy-valgrind uses it to run the proxy under
valgrind); timing bounds are then relaxed.

Everything runs in a fresh mkdtemp directory, every daemon is stopped at
the end (also on failure), every wait is bounded.  Each check prints one
line; the last line is "N passed, M failed"; the exit status is 1 when a
check failed.  The harness (processes, clients, counting) is tests/valib.py.
"""
import base64
import hashlib
import http.client
import math
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import xmlrpc.client

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import valib  # noqa: E402
from valib import (FAULT_BLOCKED, FAULT_EVENTS_LOST, FAULT_LOST, FAULT_NOT_ANSWERING,  # noqa: E402
                   FAULT_NOT_CONNECTED, FAULT_TIMEOUT, Daemon, call_xml, case, check, curl,
                   fault_of, free_port, unique, wait_event, wait_for)
from valib import newest_event_id as newest_id  # noqa: E402

BINS = valib.Binaries()
AGENT, CLIP, PROXY = BINS.agent, BINS.clip, BINS.proxy
WRAPPER = valib.wrapper_from_env("VA_PROXY_WRAPPER")
SLOW = 8 if WRAPPER else 1  # timing bounds are multiplied by this


class Proxy(valib.Proxy):
    """va-proxy of this build, under VA_PROXY_WRAPPER when set."""
    binary = PROXY
    wrapper = WRAPPER
    slow = SLOW


def start_agent(env, name, extra=()):
    return valib.start_agent(env, name, AGENT, extra)


def same(a, b):
    """a == b, but doubles only to 14 significant digits: xmlrpc-c 1.33
    writes doubles in plain decimal notation and loses the last digits
    (in the agent's serialisation; the proxy passes bytes untouched)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-14, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def control_copy(ctl, text):
    """va-clip copy, spoken directly on the agent's control socket."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(ctl)
    data = text.encode()
    s.sendall(b"COPY %d\n" % len(data) + data)
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        answer += chunk
    s.close()
    return answer.decode()


# ---- the checks ---------------------------------------------------------

def main():
    env = valib.RunDir("vaproxy-test-")
    print("# tmp %s, agent %s, proxy %s%s" % (env.dir, AGENT, PROXY,
                                             " under " + " ".join(WRAPPER) if WRAPPER else ""))
    for b in BINS.missing():
        check("binary " + b, False, "missing; build first or set BUILD")
        return
    try:
        run(env)
    finally:
        # Stop everything first, report afterwards.
        stopped = []
        for p in Proxy.started:
            if p.d.alive() or not hasattr(p, "stopped"):
                try:
                    stopped.append((p, p.stop()[0]))
                except Exception as e:  # noqa: BLE001 - stop the others all the same
                    stopped.append((p, e))
        for d in valib.DAEMONS:
            try:
                if d.alive():
                    d.stop(5)
            except Exception:  # noqa: BLE001
                valib.kill_all()
        for p, code in stopped:
            check("%s exits 0 on SIGTERM" % p.d.name, code == 0,
                  "exit %s; log:\n%s" % (code, p.d.log()[-3000:]))
        env.finish(valib.RESULTS.failed == 0)


def run(env):
    agent = start_agent(env, "agent")
    main_extra = ["--call-timeout", "5", "--max-frame", str(4 * 1024 * 1024),
                  "--block-rpcs", "va.dmesg"]
    proxy = Proxy(env, "main", ["unix:" + agent.sock], main_extra)
    st = os.stat(proxy.secret_file)
    check("auth file created with mode 0600 and a 32 hex digit secret",
          (st.st_mode & 0o777) == 0o600 and len(proxy.secret) == 32 and
          all(c in "0123456789abcdef" for c in proxy.secret),
          "mode %o, secret %r" % (st.st_mode & 0o777, proxy.secret))
    ctx = {"env": env, "agent": agent, "proxy": proxy}

    def t_auth_file_refused():
        bad = env.path("bad-secret")
        with open(bad, "w") as f:
            f.write("hunter2\n")
        os.chmod(bad, 0o640)
        r = subprocess.run(WRAPPER + [PROXY, "--config", env.empty, "--guest",
                                      "unix:" + agent.sock, "--listen",
                                      "tcp:127.0.0.1:%d" % free_port(), "--auth-file", bad],
                           capture_output=True, timeout=30 * SLOW)
        err = r.stderr.decode()
        check("a group-readable auth file is refused with a clear message",
              r.returncode != 0 and "chmod 600" in err, "exit %d: %s" % (r.returncode, err))
    case(t_auth_file_refused)

    def t_listeners():
        mode = os.stat(proxy.usock).st_mode & 0o777
        check("the unix listener has mode 0600", mode == 0o600, oct(mode))
        # These proxies get a guest of their own: the agent's unix-listen
        # channel takes one host at a time, and a second proxy would
        # displace the main one.
        nobody = "unix:" + env.path("nobody.sock")
        gid = os.getgid()
        p2 = Proxy(env, "group", [nobody], ["--socket-group", str(gid)], tcp=False)
        st = os.stat(p2.usock)
        check("--socket-group: the unix listener has mode 0660 and the group",
              (st.st_mode & 0o777) == 0o660 and st.st_gid == gid, oct(st.st_mode))
        check("a client of the unix listener needs no credentials",
              p2.usp().proxy.status()["guest"] == "guest0")
        r = subprocess.run(WRAPPER + [PROXY, "--config", env.empty, "--guest", nobody,
                                      "--listen", "tcp:0.0.0.0:%d" % free_port(),
                                      "--auth-file", proxy.secret_file],
                           capture_output=True, timeout=30 * SLOW)
        err = r.stderr.decode()
        check("a non-loopback TCP listener needs --allow-remote",
              r.returncode != 0 and "--allow-remote" in err, err)
        p3 = Proxy(env, "remote", [nobody], ["--allow-remote"], unix=False)
        check("--allow-remote listens with a warning in the log",
              "non-loopback" in p3.d.log() and p3.sp().proxy.guests()[0]["guest"] == "guest0",
              p3.d.log()[-500:])
    case(t_listeners)

    def t_ping():
        p = proxy.sp()
        check("python xmlrpc.client va.ping over tcp with Basic auth", p.va.ping() is True)
        check("python xmlrpc.client va.ping over the unix listener", proxy.usp().va.ping() is True)
        check("wait for the agent's hello", wait_for(lambda: p.proxy.status()["answered"], 5 * SLOW))
    case(t_ping)

    def t_echo():
        p = proxy.sp()
        big = unique(3000)
        args = [0, 1, -1, 2**31 - 1, -2**31, True, False, "", "plain", "héllo ✓ 日本 ß",
                "<&>\"' ]]> \t\n", 0.0, -1.5, 0.1, 3.141592653589793, 1e300, 6.02214076e23, -1.5e-7,
                xmlrpc.client.DateTime("20240229T23:59:58"),
                xmlrpc.client.Binary(bytes(range(256)) * 3), xmlrpc.client.Binary(b""),
                None, [], {}, [1, [2, [3, [4, ["deep"]]]]],
                {"a": [1, {"b": [True, 2.5, "x", None, {}]}], "empty": [], "u": "ü", "big": big},
                [{"k%d" % i: i} for i in range(50)]]
        got = p.va.echo(*args)
        check("va.echo returns every XML-RPC type, nested, exactly", same(got, args),
              "\n sent %r\n got  %r" % (args, got))
        # xmlrpc-c 1.33 refuses characters outside the Basic Multilingual
        # Plane: whatever the agent says, it must be an answer, not a hang.
        try:
            ok = p.va.echo("\U0001F600") == ["\U0001F600"]
        except xmlrpc.client.Fault as f:
            ok = "UTF-8" in f.faultString
        check("a character outside the BMP gets an echo or a clean fault", ok)
    case(t_echo)

    def t_status():
        s = proxy.sp().proxy.status()
        ok = (s["connected"] and s["established"] and s["answered"] and
              s["guest"] == "guest0" and s["agent_version"] and "va.ping" in s["methods"] and
              s["calls_forwarded"] >= 1 and s["last_seen"] > time.time() - 60 and
              s["channel"] == "unix:" + agent.sock)
        check("proxy.status describes the guest link", ok, s)
        lm = proxy.sp().system.listMethods()
        check("system.listMethods lists the proxy's and the guest's methods",
              "proxy.events" in lm and "va.file.read" in lm and "va.dmesg" not in lm and
              "system.multicall" not in lm, lm)
        help_ = proxy.sp().system.methodHelp("proxy.events")
        check("system.methodHelp answers for proxy methods", "since_id" in help_, help_)
    case(t_status)

    def t_file():
        p = proxy.sp(timeout=60)
        data = os.urandom(3 * 1024 * 1024 + 12345)
        path = env.path("roundtrip.bin")
        h = p.va.file.open(path, "w")
        for i in range(0, len(data), 1 << 20):
            n = p.va.file.write(h, xmlrpc.client.Binary(data[i:i + (1 << 20)]))
            if n != len(data[i:i + (1 << 20)]):
                raise RuntimeError("short write %r" % n)
        p.va.file.close(h)
        ok_sum = p.va.file.checksum(path) == hashlib.sha256(data).hexdigest()
        st = p.va.file.stat(path)
        h = p.va.file.open(path, "r")
        back = b""
        while True:
            r = p.va.file.read(h, 1 << 20)
            back += r["data"].data
            if r["eof"]:
                break
        p.va.file.close(h)
        check("file round trip of 3 MiB through va.file.* with sha256",
              ok_sum and back == data and st["size"] == len(data),
              "checksum %s, read back %d of %d bytes" % (ok_sum, len(back), len(data)))
    case(t_file)

    def t_clipboard():
        p = proxy.sp()
        text = "from the host " + unique() + " ✓"
        p.va.clipboard.set(text)
        r = subprocess.run([CLIP, "--socket", agent.ctl, "paste"], capture_output=True,
                           timeout=10)
        check("clipboard host -> guest: va.clipboard.set, then va-clip paste",
              r.returncode == 0 and r.stdout.decode().rstrip("\n") == text,
              "%d %r %r" % (r.returncode, r.stdout, r.stderr))

        since = newest_id(p)
        text = "from the guest " + unique() + " ✓"
        r = subprocess.run([CLIP, "--socket", agent.ctl, "copy"], input=text.encode(),
                           capture_output=True, timeout=10)
        ev, _ = wait_event(p, since, lambda e: e["type"] == "clipboard", 5 * SLOW)
        got = p.proxy.clipboard.get()
        check("clipboard guest -> host: va-clip copy reaches proxy.clipboard.get",
              r.returncode == 0 and got["text"] == text and got["serial"] >= 1, got)
        check("clipboard guest -> host: va-clip copy reaches proxy.events",
              ev is not None and ev["data"]["text"] == text and ev["guest"] == "guest0" and
              ev["data"]["serial"] == got["serial"], ev)
    case(t_clipboard)

    def t_events():
        p = proxy.sp()
        since = newest_id(p)
        t0 = time.monotonic()
        got = p.proxy.events(since, 1)
        dt = time.monotonic() - t0
        check("proxy.events waits timeout_s when nothing happens, then returns []",
              got == [] and 0.9 < dt < 3 * SLOW, "%r after %.2f s" % (got, dt))

        res = {}

        def poll():
            t = time.monotonic()
            res["events"] = proxy.sp().proxy.events(since, 30)
            res["dt"] = time.monotonic() - t
        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.5)
        subprocess.run([CLIP, "--socket", agent.ctl, "copy"], input=b"long poll",
                       capture_output=True, timeout=10)
        th.join(40)
        evs = res.get("events") or []
        check("proxy.events long poll wakes up when an event arrives",
              not th.is_alive() and evs and evs[0]["type"] == "clipboard" and
              evs[0]["id"] == since + 1 and res["dt"] < 5 * SLOW, res)

        code, msg = fault_of(p.proxy.events, since + 1000, 0)
        check("proxy.events with a since_id newer than any event: fault 1007",
              code == FAULT_EVENTS_LOST and "newer" in msg, (code, msg))
        code, msg = fault_of(p.proxy.events, "x", 0)
        check("proxy.events with a string since_id: type fault", code == -501, (code, msg))
        check("proxy.events(-1, 0) returns only new events", p.proxy.events(-1, 0) == [])

        first = newest_id(p) + 1
        answers = [control_copy(agent.ctl, "flood %d" % i) for i in range(1100)]
        last = first + 1099
        check("1100 guest copies are taken", all(a.startswith("OK") for a in answers),
              answers[-1])
        check("the events of 1100 guest copies all arrive",
              wait_for(lambda: newest_id(p) >= last, 20 * SLOW, 0.2), newest_id(p))
        code, msg = fault_of(p.proxy.events, first - 1, 0)
        check("events that fell off the queue: fault 1007 naming the oldest kept",
              code == FAULT_EVENTS_LOST and "fell off" in msg and
              "oldest event kept is %d" % (last - 1023) in msg, (code, msg))
        evs = p.proxy.events(last - 1024, 0)
        check("reading on from the oldest kept event works, 256 at a time",
              len(evs) == 256 and evs[0]["id"] == last - 1023 and
              evs[-1]["data"]["text"] == "flood %d" % (1100 - 1024 + 255), evs[:1])
    case(t_events)

    def t_curl():
        s = proxy.secret
        body = env.path("big-call.xml")
        payload = "x" * 4000 + unique()
        with open(body, "wb") as f:
            f.write(call_xml("va.echo", payload))
        t0 = time.monotonic()
        rc, out, err = curl(["-v", "-u", "va:" + s, "-H", "Content-Type: text/xml",
                             "-H", "Expect: 100-continue",
                             "--data-binary", "@" + body, proxy.url(auth=False)])
        dt = time.monotonic() - t0
        check("curl: a 4 KiB body with Expect: 100-continue gets 100 Continue at once",
              rc == 0 and "Expect: 100-continue" in err and "HTTP/1.1 100" in err and
              payload in out and (WRAPPER or dt < 0.9),
              "rc %d after %.2f s\n%s\n%s" % (rc, dt, err[-1500:], out[:300]))

        # curl adds Expect: 100-continue on its own for large bodies (over
        # 1 KiB in old releases, over 1 MiB in newer ones).
        large = env.path("large-call.xml")
        payload2 = "z" * (2 * 1024 * 1024) + unique()
        with open(large, "wb") as f:
            f.write(call_xml("va.echo", payload2))
        t0 = time.monotonic()
        rc, out, err = curl(["-v", "-u", "va:" + s, "-H", "Content-Type: text/xml",
                             "--data-binary", "@" + large, proxy.url(auth=False)])
        dt = time.monotonic() - t0
        sent_expect = "Expect: 100-continue" in err
        check("curl: a 2 MiB body (curl's own Expect: 100-continue) is answered at once",
              rc == 0 and payload2 in out and (not sent_expect or "HTTP/1.1 100" in err) and
              (WRAPPER or dt < 0.9),
              "rc %d after %.2f s, expect %s\n%s" % (rc, dt, sent_expect, err[-800:]))

        rc, out, err = curl(["-i", "-u", "va:" + s, proxy.url(auth=False)])
        check("curl: GET -> 405 with Allow: POST",
              rc == 0 and out.startswith("HTTP/1.1 405") and "Allow: POST" in out, out[:400])

        huge = env.path("huge.xml")
        with open(huge, "wb") as f:
            f.write(call_xml("va.echo", "y" * (5 * 1024 * 1024)))
        rc, out, err = curl(["-i", "-u", "va:" + s, "-H", "Content-Type: text/xml",
                             "--data-binary", "@" + huge, proxy.url(auth=False)])
        check("curl: a body over --max-frame -> 413", rc == 0 and out.startswith("HTTP/1.1 413"),
              "rc %d %s %s" % (rc, out[:300], err[-300:]))

        try:
            proxy.sp().va.echo("y" * (5 * 1024 * 1024))
            ok, what = False, "no error"
        except xmlrpc.client.ProtocolError as e:
            ok, what = e.errcode == 413, e
        check("python (no Expect) with a body over --max-frame gets 413, not a reset", ok, what)

        rc, out, err = curl(["-i", "-H", "Content-Type: text/xml", "--data-binary", "@" + body,
                             proxy.url(auth=False)])
        check("curl: no credentials -> 401 with WWW-Authenticate",
              rc == 0 and out.startswith("HTTP/1.1 401") and
              'WWW-Authenticate: Basic realm="virtagent"' in out, out[:400])
        rc, out, err = curl(["-i", "-u", "va:wrong" + s, "-H", "Content-Type: text/xml",
                             "--data-binary", "@" + body, proxy.url(auth=False)])
        check("curl: wrong password -> 401", rc == 0 and out.startswith("HTTP/1.1 401"), out[:300])
        check("the proxy logs the refused credentials",
              wait_for(lambda: "wrong password" in proxy.d.log(), 5))

        rc, out, err = curl(["-i", "-u", "va:" + s, "--data-binary", "@" + body,
                             proxy.url("/nowhere", auth=False)])
        check("curl: unknown path -> 404", rc == 0 and out.startswith("HTTP/1.1 404"), out[:300])
        rc, out, err = curl(["-i", "-u", "va:" + s, "--data-binary", "@" + body,
                             proxy.url("/RPC2/nosuch", auth=False)])
        check("curl: unknown guest -> 404 naming the guests",
              rc == 0 and out.startswith("HTTP/1.1 404") and "guest0" in out, out[:300])
        rc, out, err = curl(["-i", "-u", "va:" + s, "-H", "Content-Type: text/xml",
                             "--data-binary", "<hello/>", proxy.url(auth=False)])
        check("curl: a body that is no XML-RPC call -> 400",
              rc == 0 and out.startswith("HTTP/1.1 400"), out[:300])
        lol = "".join('<!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10 if i else "lol")
                      for i in range(10))
        bomb = ('<?xml version="1.0"?><!DOCTYPE x [%s]><methodCall><methodName>va.echo'
                '</methodName><params><param><value><string>&l9;</string></value></param>'
                '</params></methodCall>' % lol)
        for what, method in (("forwarded", "va.echo"), ("proxy", "proxy.status")):
            t0 = time.time()
            rc, out, err = curl(["-i", "-u", "va:" + s, "-H", "Content-Type: text/xml",
                                 "--data-binary", bomb.replace("va.echo", method),
                                 proxy.url(auth=False)])
            check("curl: an entity bomb (%s method) gets a fault at once, not a stall" % what,
                  rc == 0 and "DOCTYPE" in out and "faultCode" in out and time.time() - t0 < 2,
                  out[:400])
        check("the proxy still serves after the entity bombs", proxy.sp().va.ping() is True)
        rc, out, err = curl(["-i", "-u", "va:" + s, "-H", "Content-Type: text/xml",
                             "--data-binary", "@" + body, proxy.url("/RPC2/guest0", auth=False)])
        check("curl: POST /RPC2/NAME reaches the named guest",
              rc == 0 and out.startswith("HTTP/1.1 200") and payload in out, out[:300])
        rc, out, err = curl(["-i", "--unix-socket", proxy.usock, "-H", "Content-Type: text/xml",
                             "--data-binary", "@" + body, "http://localhost/RPC2"])
        check("curl over the unix listener needs no credentials",
              rc == 0 and out.startswith("HTTP/1.1 200") and payload in out, out[:300])
    case(t_curl)

    def t_http_versions():
        auth = base64.b64encode(("va:" + proxy.secret).encode()).decode()
        body = call_xml("va.ping")
        s = socket.create_connection(("127.0.0.1", proxy.port), 10 * SLOW)
        s.sendall(b"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\nAuthorization: Basic " +
                  auth.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        data = valib.recv_all(s)
        s.close()
        check("an HTTP/1.0 client gets its answer and the connection closes",
              data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n")[0] and
              b"<boolean>1</boolean>" in data, data[:300])

        c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10 * SLOW)
        socks = set()
        ok = True
        for i in range(3):
            payload = unique()
            c.request("POST", "/RPC2", call_xml("va.echo", payload),
                      {"Content-Type": "text/xml", "Authorization": "Basic " + auth})
            socks.add(id(c.sock))
            r = c.getresponse()
            text = r.read().decode()
            ok = ok and r.status == 200 and payload in text
        c.close()
        check("keep-alive: three calls on one connection", ok and len(socks) == 1, socks)
    case(t_http_versions)

    def t_xmlrpc_tool():
        r = subprocess.run(["xmlrpc", "-username", "va", "-password", proxy.secret,
                            proxy.url(auth=False), "va.ping"], capture_output=True, timeout=30)
        out = r.stdout.decode()
        check("xmlrpc-c's xmlrpc tool: va.ping", r.returncode == 0 and "TRUE" in out,
              out + r.stderr.decode())
        word = unique()
        r = subprocess.run(["xmlrpc", "-username", "va", "-password", proxy.secret,
                            proxy.url(auth=False), "va.echo", "s/" + word, "i/42"],
                           capture_output=True, timeout=30)
        out = r.stdout.decode()
        check("xmlrpc-c's xmlrpc tool: va.echo s/WORD i/42",
              r.returncode == 0 and word in out and "42" in out, out + r.stderr.decode())
        r = subprocess.run(["xmlrpc", proxy.url(auth=False), "va.ping"], capture_output=True,
                           timeout=30)
        check("xmlrpc-c's xmlrpc tool without credentials is refused (401)",
              r.returncode != 0 and "401" in r.stdout.decode() + r.stderr.decode())
    case(t_xmlrpc_tool)

    def t_block():
        p = proxy.sp()
        code, msg = fault_of(p.va.dmesg)
        check("--block-rpcs: a blocked method gets fault 1006",
              code == FAULT_BLOCKED and "blocked" in msg, (code, msg))
        code, msg = fault_of(p.system.multicall, [{"methodName": "va.ping", "params": []}])
        check("system.multicall is refused (fault 1006)", code == FAULT_BLOCKED, (code, msg))
        code, msg = fault_of(p.proxy.nosuch)
        check("an unknown proxy.* method gets xmlrpc-c's no-such-method fault", code == -506,
              (code, msg))
        code, msg = fault_of(p.va.nosuch)
        check("an unknown guest method gets the agent's own fault", code is not None and
              code not in range(1001, 1011), (code, msg))
    case(t_block)

    def t_slow_client():
        auth = base64.b64encode(("va:" + proxy.secret).encode()).decode()
        stall = socket.create_connection(("127.0.0.1", proxy.port), 10)
        stall.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth.encode() +
                      b"\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<?xml")
        stall2 = socket.create_connection(("127.0.0.1", proxy.port), 10)
        stall2.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\n")
        p = proxy.sp(timeout=10 * SLOW)
        t0 = time.monotonic()
        ok = all(p.va.ping() for _ in range(5))
        dt = time.monotonic() - t0
        check("stalled clients do not block other clients", ok and dt < 2 * SLOW,
              "%.2f s" % dt)
        stall.close()
        stall2.close()
    case(t_slow_client)

    def t_concurrent():
        errors = []
        counts = [0] * 8

        def client(n):
            p = proxy.sp(timeout=60)
            for i in range(12):
                if i % 3 == n % 3:
                    payload = ("%d-%d-" % (n, i)) + unique(8) * (65536 // 8) * 4  # 256 KiB
                else:
                    payload = "%d-%d-%s" % (n, i, unique())
                try:
                    got = p.va.echo(payload, n, i)
                    if got != [payload, n, i]:
                        errors.append("client %d call %d got someone else's answer" % (n, i))
                    else:
                        counts[n] += 1
                except Exception as e:  # noqa: BLE001
                    errors.append("client %d call %d: %s" % (n, i, e))
        ths = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        t0 = time.monotonic()
        for t in ths:
            t.start()
        for t in ths:
            t.join(120)
        dt = time.monotonic() - t0
        check("8 concurrent clients with mixed large and small calls each get their own answers",
              not errors and counts == [12] * 8 and not any(t.is_alive() for t in ths),
              "%s %s (%.1f s)" % (errors[:5], counts, dt))
    case(t_concurrent)

    def t_shutdown_notice():
        p = proxy.sp()
        since = newest_id(p)
        ran = env.path("agent-shutdown-ran")
        check("va.shutdown('reboot') answers true", p.va.shutdown("reboot") is True)
        ev, _ = wait_event(p, since, lambda e: e["type"] == "shutdown", 5 * SLOW)
        check("the guest's host.shutdown_notice reaches proxy.events",
              ev is not None and ev["data"]["mode"] == "reboot", ev)
        check("the agent ran its shutdown command", wait_for(lambda: os.path.exists(ran), 10))
        check("proxy.status keeps the last shutdown notice",
              p.proxy.status()["shutdown_notice"]["mode"] == "reboot")
    case(t_shutdown_notice)

    def t_call_timeout():
        p = proxy.sp(timeout=60)
        agent.signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            code, msg = fault_of(p.va.ping)
            dt = time.monotonic() - t0
        finally:
            agent.signal(signal.SIGCONT)
        check("a call the agent does not answer gets fault 1003 after --call-timeout",
              code == FAULT_TIMEOUT and 4.5 < dt < 5 + 3 * SLOW, (code, msg, dt))
        check("after the timeout the session resynchronises and calls work again",
              wait_for(lambda: p.va.echo("again") == ["again"], 15 * SLOW, 0.2))
    case(t_call_timeout)

    def post_and_close(body, wait):
        """POSTs body on the unix socket, reads what comes within wait s, closes."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(proxy.usock)
        s.sendall(b"POST /RPC2 HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        s.settimeout(wait)
        try:
            data = s.recv(65536)
        except socket.timeout:
            data = b""
        s.close()
        return data

    def t_busy():
        # --max-frame 4 MiB: 8 x 4 MiB of unanswered calls per guest at most.
        big = xmlrpc.client.dumps(("x" * (3500 * 1024),), "va.echo").encode()
        agent.signal(signal.SIGSTOP)
        busy = 0
        opened = []
        try:
            # Every request whole before any is given up (under valgrind the
            # proxy takes its time to read 3.5 MB): the 1011 answers come at
            # once, the others wait for the stopped agent until we close.
            for _ in range(14):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                opened.append(s)
                s.connect(proxy.usock)
                s.sendall(b"POST /RPC2 HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(big)
                          + big)
            socks = list(opened)
            got = {s: b"" for s in socks}
            end = time.monotonic() + 1.0 * SLOW
            while time.monotonic() < end:
                ready, _, _ = select.select(socks, [], [], max(0, end - time.monotonic()))
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        socks.remove(s)
                    got[s] += data
                if not socks:
                    break
            busy = sum(1 for v in got.values() if b">1011</" in v)
        finally:
            for s in opened:
                s.close()
            agent.signal(signal.SIGCONT)
        check("calls a stalled guest cannot take past 8 x --max-frame get fault 1011 at once",
              5 <= busy <= 7, busy)
        p = proxy.sp(timeout=60)
        check("after the stall the proxy serves again",
              wait_for(lambda: p.va.echo("again") == ["again"], 20 * SLOW, 0.2))
    case(t_busy)

    def t_abandoned_long_polls():
        lp = xmlrpc.client.dumps((-1, 300), "proxy.events").encode()
        for _ in range(70):
            post_and_close(lp, 0.01)
        st = xmlrpc.client.dumps((), "proxy.status").encode()
        ok = wait_for(lambda: b"<name>connected</name>" in post_and_close(st, 5 * SLOW),
                      5 * SLOW, 0.2)
        check("70 proxy.events long polls whose clients closed do not hold the proxy.* "
              "threads (proxy.status answers)", ok)
    case(t_abandoned_long_polls)

    def t_agent_killed():
        p = proxy.sp(timeout=60)
        before = p.proxy.status()["resets"]
        agent.signal(signal.SIGSTOP)
        res = {}

        def call():
            t = time.monotonic()
            res["fault"] = fault_of(proxy.sp(timeout=60).va.echo, "mid-call")
            res["dt"] = time.monotonic() - t
        th = threading.Thread(target=call)
        th.start()
        time.sleep(0.7)
        agent.signal(signal.SIGKILL)
        th.join(30)
        code, msg = res.get("fault", (None, None))
        check("agent killed in the middle of a call: fault 1004 at once",
              code == FAULT_LOST and res["dt"] < 3 * SLOW, res)
        agent.p.wait(10)
        t0 = time.monotonic()
        code, msg = fault_of(p.va.ping)
        dt = time.monotonic() - t0
        check("with the agent gone the call fails at once (not connected)",
              code == FAULT_NOT_CONNECTED and dt < 5, (code, msg, dt))

        new = start_agent(env, "agent", [])
        ctx["agent"] = new
        check("the proxy reconnects to the restarted agent and calls work",
              wait_for(lambda: p.va.echo("back") == ["back"], 15 * SLOW, 0.2))
        check("proxy.status counts the resets", p.proxy.status()["resets"] > before)
    case(t_agent_killed)

    def t_proxy_restart():
        nonlocal proxy
        agent2 = ctx["agent"]
        code, secs = proxy.stop()
        proxy.stopped = True
        check("the proxy stops promptly on SIGTERM with exit status 0",
              code == 0 and secs < 4 * SLOW, "exit %s after %.1f s\n%s" %
              (code, secs, proxy.d.log()[-2000:]))
        check("the proxy removes its unix socket on exit", not os.path.exists(proxy.usock))
        proxy = Proxy(env, "main2", ["unix:" + agent2.sock], main_extra)
        payload = unique(40)
        p = proxy.sp()
        ok = wait_for(lambda: p.va.echo(payload) == [payload], 10 * SLOW, 0.2)
        check("proxy restarted while the agent runs: the next call gets its own answer", ok)
        check("the restarted proxy keeps the secret", proxy.secret == open(proxy.secret_file).read().strip())
    case(t_proxy_restart)

    def t_not_started():
        p2 = Proxy(env, "nothing", ["unix:" + env.path("never.sock")], unix=False)
        time.sleep(1.2)
        t0 = time.monotonic()
        code, msg = fault_of(p2.sp().va.ping)
        dt = time.monotonic() - t0
        check("agent not started: a clear fault 1001 in less than 5 s",
              code == FAULT_NOT_CONNECTED and "not connected" in msg and dt < 5, (code, msg, dt))
        s = p2.sp().proxy.status()
        check("proxy.status of a guest that is not there", not s["connected"] and
              not s["answered"], s)

        # A chardev with nobody behind it: the socket accepts, nothing answers.
        mute_path = env.path("mute.sock")
        mute = socket.socket(socket.AF_UNIX)
        mute.bind(mute_path)
        mute.listen(4)
        p3 = Proxy(env, "mute", ["unix:" + mute_path], unix=False)
        t0 = time.monotonic()
        code, msg = fault_of(p3.sp().va.ping)
        dt = time.monotonic() - t0
        check("channel connected but no agent: fault 1002 within a few seconds",
              code == FAULT_NOT_ANSWERING and dt < 5 * SLOW, (code, msg, dt))
        mute.close()
    case(t_not_started)

    def t_two_guests():
        ra, rb = env.path("root-a"), env.path("root-b")
        os.mkdir(ra)
        os.mkdir(rb)
        with open(os.path.join(ra, "only-a"), "w") as f:
            f.write("a")
        ga = start_agent(env, "ga", ["--file-root", ra])
        gb = start_agent(env, "gb", ["--file-root", rb])
        p2 = Proxy(env, "two", ["a=unix:" + ga.sock, "b=unix:" + gb.sock])
        rc, out, err = curl(["-i", "-u", "va:" + p2.secret, "-H", "Content-Type: text/xml",
                             "--data-binary", call_xml("va.ping").decode(),
                             p2.url(auth=False)])
        check("two guests: POST /RPC2 -> 404 listing the names",
              out.startswith("HTTP/1.1 404") and "a, b" in out, out[:300])
        check("two guests: each route reaches its own agent",
              p2.sp("/RPC2/a").va.file.stat(os.path.join(ra, "only-a"))["size"] == 1 and
              fault_of(p2.sp("/RPC2/b").va.file.stat, os.path.join(ra, "only-a"))[0] is not None)
        check("two guests: proxy.status per route",
              p2.sp("/RPC2/a").proxy.status()["guest"] == "a" and
              p2.sp("/RPC2/b").proxy.status()["guest"] == "b")
        errors = []

        def client(name, n):
            p = p2.sp("/RPC2/" + name)
            for i in range(15):
                payload = "%s-%d-%d-%s" % (name, n, i, unique(16))
                if i % 5 == 0:
                    payload += unique(8) * 16384
                got = p.va.echo(payload)
                if got != [payload]:
                    errors.append((name, n, i))
        ths = [threading.Thread(target=client, args=(g, n)) for g in "ab" for n in range(3)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(120)
        check("two guests served at once never cross answers",
              not errors and not any(t.is_alive() for t in ths), errors[:5])
        guests = p2.sp("/RPC2/a").proxy.guests()
        check("proxy.guests lists both", [g["guest"] for g in guests] == ["a", "b"], guests)

        since = newest_id(p2.sp("/RPC2/a"))
        gb.stop(10)
        ev, _ = wait_event(p2.sp("/RPC2/a"), since,
                           lambda e: e["type"] == "shutdown" and e["guest"] == "b", 5 * SLOW)
        check("an agent stopped with SIGTERM sends host.shutdown_notice",
              ev is not None and ev["data"]["mode"] and "reason" in ev["data"], ev)
        ev, _ = wait_event(p2.sp("/RPC2/a"), since,
                           lambda e: e["type"] == "disconnected" and e["guest"] == "b", 5 * SLOW)
        check("proxy.events reports the guest's channel going down", ev is not None, ev)
    case(t_two_guests)

    def t_unix_listen_guest():
        # QEMU's chardev in client mode: the proxy listens, the channel connects.
        path = env.path("ul.sock")
        p5 = Proxy(env, "ul", ["ul=unix-listen:" + path], unix=False)
        check("a unix-listen: guest channel is a socket the proxy listens on",
              wait_for(lambda: os.path.exists(path), 5 * SLOW))
        argv = [AGENT, "--config", env.empty, "--channel", "unix:" + path, "--control", "none"]
        a = Daemon("agent ul", argv, env.path("ul-agent.log"))
        check("an agent that connects to a unix-listen: guest is served",
              wait_for(lambda: p5.sp("/RPC2/ul").va.echo("ul") == ["ul"], 10 * SLOW, 0.2))
        a.stop(5)
    case(t_unix_listen_guest)

    def t_sighup():
        cfg = env.path("hup.conf")
        with open(cfg, "w") as f:
            f.write("block-rpcs = va.echo\n")
        a = start_agent(env, "hup")
        p4 = Proxy(env, "hup", ["unix:" + a.sock], ["--config", cfg], unix=False)
        code, _ = fault_of(p4.sp().va.echo, 1)
        with open(cfg, "w") as f:
            f.write("block-rpcs = va.info\n")
        p4.d.signal(signal.SIGHUP)
        ok = wait_for(lambda: p4.sp().va.echo(1) == [1], 5 * SLOW, 0.2)
        code2, _ = fault_of(p4.sp().va.info)
        check("SIGHUP reloads the block list from the config file",
              code == FAULT_BLOCKED and ok and code2 == FAULT_BLOCKED, (code, ok, code2))
    case(t_sighup)


if __name__ == "__main__":
    random.seed()
    try:
        main()
    except Exception as e:  # noqa: BLE001
        check("suite", False, "%s\n%s" % (e, traceback.format_exc()))
    sys.exit(valib.summary())
