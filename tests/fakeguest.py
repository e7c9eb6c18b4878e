# SPDX-License-Identifier: GPL-2.0-or-later
"""A hostile guest for the proxy's tests: it listens where QEMU's chardev
would (the proxy connects to it as to any guest), speaks the frame
protocol of docs/PROTOCOL.md by hand, and sends whatever a test tells it
to, well-formed or not.

    g = FakeGuest(path)          # listening; the proxy connects when started
    g.wait_session()             # the proxy's RESET was answered
    g.send_call(body)            # a host.* call with any body; returns its tag
    g.wait_answer(tag)           # (start line, headers, body) of the proxy's answer
    g.caps_body = b"..."         # what va.capabilities is answered with
    g.reset()                    # a RESET of the guest's own
    g.close()

A thread reads the proxy's frames: it ACKs every RESET, answers
va.capabilities with caps_body and every other va.* call with true (or
with answer_fn(method, body) when set), and keeps the proxy's answers to
the guest's own calls by tag.  Counters say what the proxy did
(resets seen, capability queries, calls).
"""

import secrets
import socket
import threading
import time
import xmlrpc.client


def frame(start, headers, body=b""):
    """One frame: the sentinel, the head with Content-Length, the body."""
    h = "".join("%s: %s\r\n" % kv for kv in headers)
    return b"\xff" + ("%s\r\n%sContent-Length: %d\r\n\r\n" % (start, h, len(body))).encode() + body


def response(value):
    return xmlrpc.client.dumps((value,), methodresponse=True, encoding="utf-8").encode()


def call_body(method, params=()):
    return xmlrpc.client.dumps(tuple(params), method, encoding="utf-8").encode()


def nested_call(method, depth):
    """A call whose one parameter nests arrays depth deep."""
    return (b"<?xml version=\"1.0\"?><methodCall><methodName>" + method.encode() +
            b"</methodName><params><param>" + b"<value><array><data>" * depth +
            b"</data></array></value>" * depth + b"</param></params></methodCall>")


def nested_response(depth):
    return (b"<?xml version=\"1.0\"?><methodResponse><params><param>" +
            b"<value><array><data>" * depth + b"</data></array></value>" * depth +
            b"</param></params></methodResponse>")


def struct_call(method, members):
    """A call whose parameter is a struct of that many distinct members."""
    parts = [b"<?xml version=\"1.0\"?><methodCall><methodName>", method.encode(),
             b"</methodName><params><param><value><struct>"]
    for i in range(members):
        parts.append(b"<member><name>m%d</name><value><i4>1</i4></value></member>" % i)
    parts.append(b"</struct></value></param></params></methodCall>")
    return b"".join(parts)


def empty_values_call(method, nbytes):
    """A call of an array of <value/> filling about nbytes."""
    n = nbytes // 8
    return (b"<?xml version=\"1.0\"?><methodCall><methodName>" + method.encode() +
            b"</methodName><params><param><value><array><data>" + b"<value/>" * n +
            b"</data></array></value></param></params></methodCall>")


class FakeGuest:
    def __init__(self, path, max_frame=16 << 20):
        self.path = path
        self.max_frame = max_frame
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        self.lsock.listen(4)
        self.sock = None
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.sid = None          # the proxy's session id (its nonce, ACKed by us)
        self.seq = 0
        self.answers = {}        # tag -> (start, headers, body)
        self.caps_body = response({"version": "0.0-fake", "protocol": 1,
                                   "methods": ["va.ping"], "max_frame": max_frame})
        self.answer_fn = None
        self.resets_seen = 0
        self.caps_queries = 0
        self.calls_seen = 0
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # ---- the reader thread ----

    def _run(self):
        while not self.closed:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                if self.sock:
                    self.sock.close()
                self.sock = s
            buf = b""
            while not self.closed:
                try:
                    data = s.recv(1 << 20)
                except OSError:
                    break
                if not data:
                    break
                buf += data
                buf = self._frames(buf)
            with self.lock:
                if self.sock is s:
                    self.sock = None
                    self.sid = None

    def _frames(self, buf):
        while True:
            i = buf.find(b"\xff")
            if i < 0:
                return b""
            buf = buf[i:]
            j = buf.find(b"\r\n\r\n")
            k = buf.find(b"\xff", 1)
            if k > 0 and (j < 0 or k < j):
                buf = buf[k:]
                continue
            if j < 0:
                return buf
            head = buf[1:j].decode("latin-1").split("\r\n")
            hdr = {}
            for line in head[1:]:
                n, _, v = line.partition(":")
                hdr[n.strip().lower()] = v.strip()
            n = int(hdr.get("content-length", "0"))
            if len(buf) < j + 4 + n:
                return buf
            body = buf[j + 4:j + 4 + n]
            buf = buf[j + 4 + n:]
            self._handle(head[0], hdr, body)

    def _send(self, data):
        with self.lock:
            s = self.sock
        if s:
            try:
                s.sendall(data)
            except OSError:
                pass

    def _handle(self, start, hdr, body):
        if start.startswith("RESET "):
            nonce = hdr.get("x-virtagent-nonce", "")
            self._send(frame("HTTP/1.1 205 Reset Content",
                             [("X-Virtagent-Nonce", nonce),
                              ("X-Virtagent-Max-Frame", str(self.max_frame))]))
            with self.cond:
                self.resets_seen += 1
                self.sid = nonce
                self.cond.notify_all()
            return
        if start.startswith("POST "):
            tag = hdr.get("x-virtagent-client-tag", "")
            try:
                method = xmlrpc.client.loads(body)[1]
            except Exception:
                method = None
            with self.cond:
                self.calls_seen += 1
                if method == "va.capabilities":
                    self.caps_queries += 1
            if method == "va.capabilities":
                out = self.caps_body
            elif self.answer_fn:
                out = self.answer_fn(method, body)
            else:
                out = response(True)
            if out is not None:
                self._send(frame("HTTP/1.1 200 OK", [("Content-Type", "text/xml"),
                                                      ("X-Virtagent-Client-Tag", tag)], out))
            return
        if start.startswith("HTTP/1.1 "):
            with self.cond:
                self.answers[hdr.get("x-virtagent-client-tag", "")] = (start, hdr, body)
                self.cond.notify_all()

    # ---- what tests call ----

    def connected(self):
        with self.lock:
            return self.sock is not None

    def wait_session(self, timeout=10):
        end = time.monotonic() + timeout
        with self.cond:
            while self.sid is None:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the proxy did not reset a session in %d s" % timeout)
                self.cond.wait(left)
            return self.sid

    def send_call(self, body):
        """Sends a call of ours with a raw body; returns its tag."""
        with self.lock:
            self.seq += 1
            tag = "%s.%d" % (secrets.token_hex(8), self.seq)
        self._send(frame("POST /RPC2 HTTP/1.1",
                         [("Content-Type", "text/xml"), ("X-Virtagent-Client-Tag", tag)], body))
        return tag

    def send_raw(self, data):
        self._send(data)

    def wait_answer(self, tag, timeout=30):
        end = time.monotonic() + timeout
        with self.cond:
            while tag not in self.answers:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.answers.pop(tag)

    def call(self, method, params=(), timeout=30):
        """A host.* call; returns the result, raises xmlrpc.client.Fault."""
        a = self.wait_answer(self.send_call(call_body(method, params)), timeout)
        if a is None:
            raise TimeoutError("%s: no answer" % method)
        return xmlrpc.client.loads(a[2])[0][0]

    def reset(self):
        """A RESET of the guest's own (the proxy answers with an ACK and asks va.capabilities again)."""
        self._send(frame("RESET /RPC2 HTTP/1.1",
                         [("X-Virtagent-Nonce", secrets.token_hex(8)),
                          ("X-Virtagent-Max-Frame", str(self.max_frame))]))

    def close(self):
        self.closed = True
        with self.lock:
            if self.sock:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.sock.close()
                self.sock = None
        self.lsock.close()
