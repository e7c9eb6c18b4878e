#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Prints the proxy's events as they happen: a guest's hello, clipboard
copies, shutdown notices, custom events, channel connects and disconnects.

    watch_events.py [--url URL] [--secret-file FILE] [--since ID] [--count N] [--wait S]

proxy.events(since_id, timeout_s) is a long poll: it answers at once with
the events after since_id, or waits up to timeout_s for the next one.
"""
import time
import argparse
import sys
import xmlrpc.client

from vaproxy import add_connection_options, connect, explain


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
