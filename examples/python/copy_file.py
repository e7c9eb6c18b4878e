#!/usr/bin/env python3
"""Copies a file to or from a guest, in chunks, and checks its SHA-256.

    copy_file.py [--url URL] [--secret-file FILE] [--chunk BYTES] to-guest LOCAL REMOTE
    copy_file.py [--url URL] [--secret-file FILE] [--chunk BYTES] from-guest REMOTE LOCAL

REMOTE is an absolute path in the guest.  Each chunk is one call
(va.file.write or va.file.read, base64 on the wire); the agent takes at
most 8 MiB per call.  At the end va.file.checksum in the guest must match
hashlib's SHA-256 of the bytes copied.  A failed copy from the guest
leaves no file behind (it is written under a temporary name).
"""
import hashlib
import tempfile
import argparse
import http.client
import os
import socket
import sys
import urllib.parse
import xmlrpc.client

DEFAULT_URL = "http://127.0.0.1:8470/RPC2"
DEFAULT_SECRET = "/etc/virtagent/proxy.secret"


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


def to_guest(proxy, local, remote, chunk):
    sha = hashlib.sha256()
    total = 0
    mode = os.stat(local).st_mode & 0o777
    with open(local, "rb") as f:
        handle = proxy.va.file.open(remote, "w", mode)
        try:
            while True:
                data = f.read(chunk)
                if not data:
                    break
                sha.update(data)
                written = proxy.va.file.write(handle, data)
                if written != len(data):
                    raise OSError(f"the guest wrote {written} of {len(data)} bytes")
                total += written
        finally:
            proxy.va.file.close(handle)
    return total, sha.hexdigest()


def from_guest(proxy, remote, local, chunk):
    sha = hashlib.sha256()
    total = 0
    directory = os.path.dirname(os.path.abspath(local))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(local) + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            handle = proxy.va.file.open(remote, "r")
            try:
                while True:
                    r = proxy.va.file.read(handle, chunk)
                    f.write(r["data"])
                    sha.update(r["data"])
                    total += len(r["data"])
                    if r["eof"] or not r["data"]:
                        break
            finally:
                proxy.va.file.close(handle)
        return total, sha.hexdigest(), tmp
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_options(ap)
    ap.add_argument("--chunk", type=int, default=4 << 20,
                    help="bytes per call (default 4 MiB, at most 8 MiB)")
    ap.add_argument("direction", choices=["to-guest", "from-guest"])
    ap.add_argument("source")
    ap.add_argument("destination")
    args = ap.parse_args()
    if not 1 <= args.chunk <= 8 << 20:
        ap.error("--chunk must be from 1 to 8388608")
    proxy = connect(args.url, args.secret_file)
    tmp = None
    try:
        if args.direction == "to-guest":
            remote = args.destination
            total, digest = to_guest(proxy, args.source, remote, args.chunk)
        else:
            remote = args.source
            total, digest, tmp = from_guest(proxy, remote, args.destination, args.chunk)
        remote_digest = proxy.va.file.checksum(remote)
    except (xmlrpc.client.Error, OSError) as e:
        if tmp:
            os.unlink(tmp)
        return explain(e, args.url)
    if remote_digest != digest:
        if tmp:
            os.unlink(tmp)
        print(f"SHA-256 mismatch: {remote} in the guest is {remote_digest}, "
              f"the bytes copied are {digest}", file=sys.stderr)
        return 1
    if tmp:
        os.replace(tmp, args.destination)
    print(f"copied {total} bytes {args.direction} ({args.source} -> {args.destination}), "
          f"sha256 {digest} verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
