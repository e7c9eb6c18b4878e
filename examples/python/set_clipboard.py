#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Puts text on the guest agent's clipboard, where va-clip paste finds it
inside the guest, then reads the clipboard back.

    set_clipboard.py [--url URL] [--secret-file FILE] TEXT|-

"-" reads the text from standard input.  Text only: UTF-8, at most 1 MiB.
"""
import argparse
import sys
import xmlrpc.client

from vaproxy import add_connection_options, connect, explain


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_options(ap)
    ap.add_argument("text", help='the text, or "-" for standard input')
    args = ap.parse_args()
    text = sys.stdin.read() if args.text == "-" else args.text
    proxy = connect(args.url, args.secret_file)
    try:
        serial = proxy.va.clipboard.set(text)
        now = proxy.va.clipboard.get()
    except (xmlrpc.client.Error, OSError) as e:
        return explain(e, args.url)
    print(f"clipboard set: serial {serial}, {len(text.encode())} bytes")
    print(f"clipboard now: serial {now['serial']} from {now['origin']}: {now['text']!r}")
    return 0 if now["text"] == text else 1


if __name__ == "__main__":
    sys.exit(main())
