#!/usr/bin/env python3
"""Prints the proxy's events as they happen: a guest's hello, clipboard
copies, shutdown notices, custom events, channel connects and disconnects.

    watch_events.py [--url URL] [--secret-file FILE] [--since ID] [--count N] [--wait S]

proxy.events(since_id, timeout_s) is a long poll: it answers at once with
the events after since_id, or waits up to timeout_s for the next one.
"""
import time
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

EVENTS_LOST = 1007  # the queue is bounded: some events fell off (host/faults.h)


def show(e):
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
    data = " ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                    for k, v in e["data"].items())
    print(f"#{e['id']} {when} {e['guest']} {e['type']} {data}".rstrip(), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_options(ap)
    ap.add_argument("--since", type=int, default=-1,
                    help="print the events after this id (default -1: from now on; "
                    "0: every event the proxy keeps)")
    ap.add_argument("--count", type=int, default=0, help="stop after N events")
    ap.add_argument("--wait", type=int, default=30, help="seconds each poll waits")
    args = ap.parse_args()
    proxy = connect(args.url, args.secret_file)
    since, seen = args.since, 0
    while True:
        try:
            # With since -1 the proxy starts from its newest event; an event
            # that comes between two empty polls of -1 would be missed, so
            # go on from the first id seen.
            events = proxy.proxy.events(since, args.wait)
        except xmlrpc.client.Fault as f:
            if f.faultCode == EVENTS_LOST:
                print(f"some events were lost: {f.faultString}", file=sys.stderr)
                since = -1
                continue
            return explain(f, args.url)
        except (xmlrpc.client.Error, OSError) as e:
            return explain(e, args.url)
        for e in events:
            show(e)
            since = e["id"]
            seen += 1
            if args.count and seen >= args.count:
                return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
