# SPDX-License-Identifier: GPL-2.0-or-later
"""What the example scripts share: connecting to va-proxy with
xmlrpc.client (over TCP with the proxy's secret, or over its unix
socket), their --url/--secret-file options, and plain words for a failed
call.  Standard library only; the scripts import it from their own
directory.
"""
import http.client
import os
import socket
import sys
import urllib.parse
import xmlrpc.client

DEFAULT_URL = "http://127.0.0.1:8470/RPC2"
DEFAULT_SECRET = "/var/lib/virtagent/proxy.secret"


class UnixTransport(xmlrpc.client.Transport):
    """HTTP over a unix socket, for a proxy started with --listen unix:PATH."""

    def __init__(self, path):
        super().__init__(use_builtin_types=True)
        self.path = path

    def make_connection(self, host):
        path = self.path

        class Conn(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)

        return Conn("localhost")


def read_secret(secret_file):
    """The proxy's secret: the first line of secret_file, or of the proxy's
    default secret file when that is readable (None when it is not)."""
    try:
        with open(secret_file or DEFAULT_SECRET) as f:
            return f.readline().rstrip("\r\n").rstrip(" \t")
    except OSError as e:
        if secret_file:
            sys.exit(f"cannot read the secret file: {e}")
        return None


def connect(url, secret_file):
    """A ServerProxy for url: http://HOST:PORT/RPC2[/GUEST], or
    unix:PATH[:/RPC2/GUEST].  On TCP the proxy wants HTTP Basic
    authentication: any user name, its secret as the password."""
    if url.startswith("unix:"):
        path, _, route = url[5:].partition(":")
        return xmlrpc.client.ServerProxy("http://localhost" + (route or "/RPC2"),
                                         transport=UnixTransport(path), allow_none=True)
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        secret = read_secret(secret_file)
        if secret:
            netloc = "va:" + urllib.parse.quote(secret, safe="") + "@" + parts.netloc
            url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return xmlrpc.client.ServerProxy(url, use_builtin_types=True, allow_none=True)


def add_connection_options(ap):
    ap.add_argument("--url", default=os.environ.get("VA_URL", DEFAULT_URL),
                    help="the proxy (default %(default)s; unix:PATH for a unix socket)")
    ap.add_argument("--secret-file", help="the proxy's secret (default "
                    + DEFAULT_SECRET + ", when readable)")


def explain(e, url):
    """Plain words for a failed call, and the exit status: 1 for a fault
    from the guest or the proxy, 3 when the proxy cannot be reached."""
    if isinstance(e, xmlrpc.client.Fault):
        print(f"the call failed: {e.faultString} (fault {e.faultCode})", file=sys.stderr)
        return 1
    if isinstance(e, xmlrpc.client.ProtocolError):
        hint = " (wrong or missing secret: see --secret-file)" if e.errcode == 401 else ""
        print(f"the proxy refused the call: HTTP {e.errcode} {e.errmsg}{hint}", file=sys.stderr)
        return 3
    print(f"cannot reach the proxy at {url}: {e}", file=sys.stderr)
    return 3
