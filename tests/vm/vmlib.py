# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers of the virtagent VM tests (python3 stdlib only).

GuestShell  runs commands in the guest through the virtio-serial port
            org.virtagent.test (tests/vm/guest/test-loop serves it).
RawAgent    speaks the channel protocol (docs/PROTOCOL.md, common/session.h)
            to va-agent directly on the QEMU chardev socket, without
            va-proxy: reset handshake, tagged calls.
proxy()     an xmlrpc.client.ServerProxy for a guest started by
            start-guest.sh (reads DIR/env).

The harness shared with the other end-to-end suites is tests/valib.py
(imported from the folder above this one, also re-exported as vmlib.valib).
"""
import os
import re
import secrets
import socket
import sys
import time
import xmlrpc.client

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import valib  # noqa: E402


def read_env(vmdir):
    """DIR/env written by start-guest.sh: KEY=VALUE lines."""
    env = {}
    with open(os.path.join(vmdir, "env")) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v.strip("'\"")
    return env


def proxy_url(vmdir):
    env = read_env(vmdir)
    return env["VA_PROXY_URL"]


def proxy(vmdir, timeout=60):
    return ServerProxy(proxy_url(vmdir), timeout=timeout)


def ServerProxy(url, timeout=60):
    """An xmlrpc.client.ServerProxy for url (valib.server_proxy): calls time
    out after timeout s, a call is never sent twice (no silent second
    attempt on a dropped keep-alive connection: the tests must see it),
    results in Python's own types (bytes, datetime), no nil sent."""
    return valib.server_proxy(url, timeout, allow_none=False, use_builtin_types=True,
                              resend=False)


# ---------------------------------------------------------------------------

class GuestShell:
    """Runs shell commands in the guest over the org.virtagent.test port."""

    def __init__(self, path, timeout=30):
        self.path = path
        self.sock = None
        self.buf = b""
        self.seq = 0
        self.connect(timeout)

    def connect(self, timeout=30):
        end = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.path)
                self.sock = s
                return
            except OSError:
                s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def run(self, cmd, timeout=60, check=True):
        """Returns (rc, output bytes).  Raises on timeout; with check, on rc != 0."""
        self.seq += 1
        tag = "%d%s" % (self.seq, secrets.token_hex(3))
        if "\n" in cmd:
            raise ValueError("one line only")
        self.sock.sendall(("%s %s\n" % (tag, cmd)).encode())
        begin = ("__VA_BEGIN_%s\n" % tag).encode()
        endre = re.compile(("\n__VA_END_%s_(\\d+)\n" % tag).encode())
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(begin)
            if i >= 0:
                m = endre.search(self.buf, i + len(begin))
                if m:
                    out = self.buf[i + len(begin):m.start()]
                    self.buf = self.buf[m.end():]
                    rc = int(m.group(1))
                    if check and rc != 0:
                        raise RuntimeError("guest command %r: exit %d: %s" % (cmd, rc, out.decode(errors="replace")))
                    return rc, out
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("guest command %r: no answer in %d s (got %r)" % (cmd, timeout, self.buf[-200:]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise ConnectionError("guest command port closed")
            self.buf += data

    def out(self, cmd, timeout=60):
        return self.run(cmd, timeout)[1].decode(errors="replace")


# ---------------------------------------------------------------------------

def frame(start, headers, body=b""):
    h = "".join("%s: %s\r\n" % kv for kv in headers)
    return b"\xff" + ("%s\r\n%sContent-Length: %d\r\n\r\n" % (start, h, len(body))).encode() + body


class RawAgent:
    """The host side of the channel protocol, spoken by hand on the chardev socket."""

    def __init__(self, path, max_frame=16 << 20):
        self.path = path
        self.max_frame = max_frame
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.sid = None
        self.seq = 0
        self.frames_skipped = 0

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def _read_frame(self, deadline):
        """Returns (start_line, headers dict (lower-case names), body) or None on timeout."""
        while True:
            i = self.buf.find(b"\xff")
            if i > 0:
                self.buf = self.buf[i:]
            if i >= 0:
                j = self.buf.find(b"\r\n\r\n")
                k = self.buf.find(b"\xff", 1)
                if k > 0 and (j < 0 or k < j):
                    self.buf = self.buf[k:]  # torn
                    self.frames_skipped += 1
                    continue
                if j > 0:
                    head = self.buf[1:j].decode("latin-1").split("\r\n")
                    hdr = {}
                    for line in head[1:]:
                        n, _, v = line.partition(":")
                        hdr[n.strip().lower()] = v.strip()
                    n = int(hdr.get("content-length", "0"))
                    if len(self.buf) >= j + 4 + n:
                        body = self.buf[j + 4:j + 4 + n]
                        self.buf = self.buf[j + 4 + n:]
                        return head[0], hdr, body
            else:
                self.buf = b""
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                return None
            if not data:
                raise ConnectionError("chardev closed")
            self.buf += data

    def _ack(self, nonce):
        self.sock.sendall(frame("HTTP/1.1 205 Reset Content",
                                [("X-Virtagent-Nonce", nonce),
                                 ("X-Virtagent-Max-Frame", str(self.max_frame))]))

    def handshake(self, timeout=10):
        """Sends RESET, answers the agent's own RESETs, until our RESET is ACKed."""
        deadline = time.monotonic() + timeout
        sent = set()
        next_reset = 0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_reset:
                nonce = secrets.token_hex(8)
                sent.add(nonce)
                self.sock.sendall(frame("RESET /RPC2 HTTP/1.1",
                                        [("X-Virtagent-Nonce", nonce),
                                         ("X-Virtagent-Max-Frame", str(self.max_frame))]))
                next_reset = time.monotonic() + 1.0
            f = self._read_frame(min(deadline, next_reset))
            if f is None:
                continue
            start, hdr, _ = f
            if start.startswith("RESET "):
                self._ack(hdr.get("x-virtagent-nonce", ""))
            elif start.startswith("HTTP/1.1 205") and hdr.get("x-virtagent-nonce") in sent:
                # An ACK of any RESET of ours (a slow guest answers late).
                # Answer what else comes for a moment (the agent's own
                # RESET, host.hello): the agent echoes tags whatever the id.
                self.sid = hdr["x-virtagent-nonce"]
                quiet_end = time.monotonic() + 0.3
                while True:
                    f = self._read_frame(quiet_end)
                    if f is None:
                        return self.sid
                    self._answer(f)
        raise TimeoutError("no ACK from the agent in %d s" % timeout)

    def _answer(self, f):
        """Handles a frame the agent sent unasked: ACKs a RESET, answers a host.* call with true."""
        start, hdr, _ = f
        if start.startswith("RESET "):
            self._ack(hdr.get("x-virtagent-nonce", ""))
            return "reset"
        if start.startswith("POST "):
            resp = xmlrpc.client.dumps((True,), methodresponse=True).encode()
            self.sock.sendall(frame("HTTP/1.1 200 OK",
                                    [("Content-Type", "text/xml"),
                                     ("X-Virtagent-Client-Tag", hdr.get("x-virtagent-client-tag", ""))],
                                    resp))
            return "call"
        return None

    def call(self, method, params=(), timeout=30):
        """Returns the decoded result; raises xmlrpc.client.Fault on a fault."""
        self.seq += 1
        tag = "%s.%d" % (self.sid, self.seq)
        body = xmlrpc.client.dumps(tuple(params), method, encoding="utf-8").encode()
        self.sock.sendall(frame("POST /RPC2 HTTP/1.1",
                                [("Content-Type", "text/xml"),
                                 ("X-Virtagent-Client-Tag", tag)], body))
        deadline = time.monotonic() + timeout
        while True:
            f = self._read_frame(deadline)
            if f is None:
                raise TimeoutError("%s: no answer in %d s" % (method, timeout))
            start, hdr, body = f
            kind = self._answer(f)
            if kind == "reset":
                raise ConnectionResetError("%s: the agent reset the session" % method)
            if kind == "call":
                continue
            if hdr.get("x-virtagent-client-tag") != tag:
                continue
            if not start.startswith("HTTP/1.1 200"):
                raise RuntimeError("%s: %s" % (method, start))
            return xmlrpc.client.loads(body, use_builtin_types=True)[0][0]
