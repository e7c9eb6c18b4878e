#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Freezes a guest's filesystems, runs a host command (a disk snapshot),
and thaws them again, whatever the command did.

    freeze_snapshot.py [--url URL] [--secret-file FILE] [--mount PATH]...
                       -- COMMAND [ARG]...

For example, with libvirt:

    freeze_snapshot.py -- virsh snapshot-create-as vm1 --disk-only --atomic

While frozen the agent answers only va.ping, va.capabilities,
va.fs.status and va.fs.thaw; if this script dies before it thaws, the
agent's watchdog thaws by itself (va-agent --freeze-timeout, 600 s by
default).  The exit status is the command's, or 1 when the freeze or the
thaw failed.  Standard library only.
"""
import argparse
import subprocess
import sys
import xmlrpc.client

from vaproxy import add_connection_options, connect, explain


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_options(ap)
    ap.add_argument("--mount", action="append", default=[],
                    help="freeze only this mount point (repeatable; default: every local filesystem)")
    ap.add_argument("command", nargs="+", help="what to run while the guest is frozen")
    args = ap.parse_args()
    proxy = connect(args.url, args.secret_file)
    try:
        frozen = proxy.va.fs.freeze(args.mount) if args.mount else proxy.va.fs.freeze()
    except (xmlrpc.client.Error, OSError) as e:
        return explain(e, args.url)
    print(f"frozen: {', '.join(frozen['mountpoints']) or 'nothing'}", flush=True)
    try:
        rc = subprocess.call(args.command)
    finally:
        try:
            thawed = proxy.va.fs.thaw()
            print(f"thawed: {thawed['thawed']} filesystems", flush=True)
        except (xmlrpc.client.Error, OSError) as e:
            explain(e, args.url)
            print("the agent's watchdog will thaw them (va.fs.status says when)", file=sys.stderr)
            return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
