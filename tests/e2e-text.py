#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Every string arrives as it was sent (common/text.h): a corpus of text
that xmlrpc-c alone cannot hold (emoji, ZWJ sequences, flags, CJK
Extension B, mathematical alphanumerics, combining marks, CR/CRLF/LF
mixes, 1 MiB of mixed text) through the real va-proxy and va-agent, with
Python's xmlrpc.client, curl with hand-written bodies, and xmlrpc-c's
`xmlrpc` tool; file paths with emoji; guest -> host text (va-clip copy ->
proxy.clipboard.get and proxy.events); and every kind of text XML cannot
carry refused with a fault, never changed.

Harness: tests/valib.py.  The last line is "N passed, M failed".
"""
import hashlib
import os
import re
import socket
import subprocess
import sys
import xmlrpc.client

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import valib  # noqa: E402
from valib import case, check, fault_of, unique  # noqa: E402

BINS = valib.Binaries()
AGENT, PROXY = BINS.agent, BINS.proxy

CORPUS = [
    "see you \U0001F600",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467",          # ZWJ family
    "\U0001F1EB\U0001F1F7 \U0001F3F3\uFE0F\u200D\U0001F308",  # flags
    "\U00020000\U0002A6D6",                                 # CJK Extension B
    "\U0001D400\U0001D56B",                                 # math alphanumerics
    "e\u0301 a\u030A\u0301",                                # combining marks
    "a\r\nb\rc\nd\r\r\n\n",                                 # CRLF, lone CR, LF
    "\r",
    "\U0010FFFF",
    "\uE000",                                               # the value form's escape
    "\uE0001F600;",                                         # looks like an escape
    "<&>\"' &amp; &#13; ]]>",
    "tab\there \uFFFD",
]


def cr_marshaller():
    """The one line a Python client needs to send CR (docs/METHODS.md):
    xmlrpc.client writes CR as it is, and XML makes a raw CR a LF."""
    m = xmlrpc.client.Marshaller
    m.dispatch[str] = lambda self, v, w: w("<value><string>%s</string></value>\n" %
                                           xmlrpc.client.escape(v).replace("\r", "&#13;"))


class Proxy(valib.Proxy):
    binary = PROXY


def xml_call(method, text_xml):
    return ("<?xml version=\"1.0\"?><methodCall><methodName>%s</methodName><params><param>"
            "<value><string>%s</string></value></param></params></methodCall>"
            % (method, text_xml)).encode()


def curl_post(proxy, body):
    r = subprocess.run(["curl", "-s", "--unix-socket", proxy.usock, "-H", "Content-Type: text/xml",
                        "--data-binary", "@-", "http://localhost/RPC2"], input=body,
                       capture_output=True, timeout=30)
    return r.stdout


def main():
    if BINS.missing(AGENT, PROXY):
        sys.exit(valib.skip_run("binaries missing"))
    run = valib.RunDir("va-e2e-text-")
    status = 1
    try:
        agent = valib.start_agent(run, "a", AGENT)
        proxy = Proxy(run, "p", ["unix:" + agent.sock])
        sp = proxy.usp()
        valib.wait_for(lambda: sp.va.ping(), 10)
        cr_marshaller()

        def t_echo():
            for s in CORPUS:
                got = sp.va.echo(s)
                check("python va.echo %r comes back exactly" % s[:24], got == [s], repr(got))
            big = "".join(CORPUS) * (1024 * 1024 // len("".join(CORPUS).encode()) + 1)
            got = sp.va.echo(big)
            check("python va.echo of %d KiB of mixed text comes back exactly" %
                  (len(big.encode()) // 1024), got == [big])
        case(t_echo)

        def t_clipboard():
            for s in CORPUS:
                serial = sp.va.clipboard.set(s)
                got = sp.va.clipboard.get()
                check("python va.clipboard.set/get %r" % s[:24],
                      got["text"] == s and got["serial"] == serial, repr(got)[:200])
        case(t_clipboard)

        def t_curl():
            # Hand-written bodies: raw UTF-8, references, CR as &#13;.
            forms = [("&#x1F600; &#128512; \U0001F600", "\U0001F600 \U0001F600 \U0001F600"),
                     ("a&#13;b&#xD;&#xA;c", "a\rb\r\nc"),
                     ("<![CDATA[\U00020000 <&>]]>", "\U00020000 <&>"),
                     ("&#xE000;", "\uE000")]
            for xml_text, want in forms:
                out = curl_post(proxy, xml_call("va.echo", xml_text).replace(b"&amp;", b"&"))
                try:
                    got = xmlrpc.client.loads(out)[0][0]
                except Exception as e:  # noqa: BLE001
                    got = e
                check("curl va.echo %r reads %r" % (xml_text[:20], want[:20]), got == [want],
                      repr(out[:300]))
            # What the agent writes: CR as &#13;, characters above U+FFFF as UTF-8.
            out = curl_post(proxy, xml_call("va.echo", "x&#13;\U0001F600"))
            check("the agent writes CR as &#13; and the emoji as UTF-8",
                  b"x&#13;\xf0\x9f\x98\x80" in out, out[:300])
        case(t_curl)

        def t_refused():
            bad = [(b"bad \xfe", "invalid UTF-8"), (b"\xc0\xaf", "overlong"),
                   (b"\xed\xa0\x80", "surrogate"), (b"\xef\xbf\xbe", "U+FFFE"),
                   (b"bell \x07", "control"), (b"&#xD800;", "cannot carry"),
                   (b"&#1;", "cannot carry"), (b"&#xFFFF;", "cannot carry")]
            for raw, why in bad:
                body = (b"<?xml version=\"1.0\"?><methodCall><methodName>va.clipboard.set"
                        b"</methodName><params><param><value><string>" + raw +
                        b"</string></value></param></params></methodCall>")
                out = curl_post(proxy, body)
                try:
                    xmlrpc.client.loads(out)
                    got = None
                except xmlrpc.client.Fault as f:
                    got = f
                check("refused with a fault naming why: %s" % why,
                      got is not None and why in got.faultString,
                      got.faultString if got else out[:300])
            got = sp.va.clipboard.get()
            check("... and the clipboard did not change", got["text"] == CORPUS[-1],
                  repr(got)[:200])
        case(t_refused)

        def t_xmlrpc_tool():
            # xmlrpc-c's own client cannot hold a character above U+FFFF,
            # and its parser turns CR into LF (docs/METHODS.md): BMP text
            # both ways, and CR from the tool to the agent.
            word = "\u00e9t\u00e9 \u4e2d\u6587 \u0915\u094d\u0937 " + unique()
            r = subprocess.run(["xmlrpc", "-username", "va", "-password", proxy.secret,
                                proxy.url(auth=False), "va.clipboard.set", "s/" + word],
                               capture_output=True, timeout=30)
            got = sp.va.clipboard.get()["text"]
            check("xmlrpc tool: BMP text it sends arrives exactly",
                  r.returncode == 0 and got == word, repr(got) + r.stderr.decode())
            r = subprocess.run(["xmlrpc", "-username", "va", "-password", proxy.secret,
                                proxy.url(auth=False), "va.echo", "s/" + word],
                               capture_output=True, timeout=30)
            # The tool prints bytes above 0x7F as \xNN.
            shown = "".join("\\x%02x" % b if b >= 0x80 else chr(b) for b in word.encode())
            out = r.stdout.decode()
            check("xmlrpc tool: BMP text the agent sends back arrives exactly",
                  r.returncode == 0 and shown in out, out + r.stderr.decode())
        case(t_xmlrpc_tool)

        def t_paths():
            d = run.path("f\U0001F600d")
            os.mkdir(d)
            name = os.path.join(d, "n\u00e9\U0001F1EB\U0001F1F7.txt")
            data = os.urandom(5000)
            h = sp.va.file.open(name, "w")
            sp.va.file.write(h, xmlrpc.client.Binary(data))
            sp.va.file.close(h)
            with open(name, "rb") as f:
                check("va.file.open/write of a path with emoji wrote that file",
                      f.read() == data)
            st = sp.va.file.stat(name)
            check("va.file.stat of a path with emoji", st["size"] == 5000, st)
            cs = sp.va.file.checksum(name)
            check("va.file.checksum of a path with emoji", cs == hashlib.sha256(data).hexdigest(),
                  cs)
            code, msg = fault_of(sp.va.file.stat, name + "\U0001F600")
            check("a missing path with emoji is named exactly in the fault",
                  code is not None and (name + "\U0001F600") in msg, msg)
        case(t_paths)

        def t_guest_to_host():
            text = "copied \U0001F600 in the guest\r\nsecond\rthird \U00020000"
            since = valib.newest_event_id(sp)
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(agent.ctl)
            data = text.encode()
            s.sendall(b"COPY %d\n" % len(data) + data)
            ans = s.recv(100)
            s.close()
            check("va-clip copy of emoji and CRLF is accepted", ans.startswith(b"OK"), ans)
            ev, _ = valib.wait_event(sp, since, lambda e: "clipboard" in e.get("type", "") or
                                  "clipboard" in str(e.get("name", "")), 10)
            check("... proxy.events carries it exactly", ev is not None and text in repr(ev) or
                  (ev is not None and any(v == text for v in
                                          (ev.get("data") or {}).values()
                                          if isinstance(v, str))), repr(ev)[:300])
            got = sp.proxy.clipboard.get()
            check("... proxy.clipboard.get gives it exactly", got.get("text") == text,
                  repr(got)[:300])
        case(t_guest_to_host)
    finally:
        status = valib.summary(list_failures=True)
        run.finish(status == 0)
    sys.exit(status)


if __name__ == "__main__":
    main()
