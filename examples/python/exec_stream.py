#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs a command in the guest and prints its output line by line as it
is produced, each line with the seconds since the start and the stream
it came from; exits with the command's status.

    exec_stream.py [--url URL] [--secret-file FILE] [--timeout S] -- CMD [ARG]...

e.g. exec_stream.py -- sh -c 'for i in 1 2 3; do echo $i; sleep 1; done'

The agent must run with --enable-exec.  va.exec.start starts the command;
va.exec.read long-polls (wait_ms, kept below the proxy's 30 s call
timeout) and returns what is new on stdout and stderr as soon as there
is anything, so a line shows up when the guest prints it, not when the
command ends.  Standard library only.
"""
import argparse
import sys
import time
import xmlrpc.client

from vaproxy import add_connection_options, connect, explain

WAIT_MS = 10000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_options(ap)
    ap.add_argument("--timeout", type=int, default=0, help="kill the command after S seconds")
    ap.add_argument("command", nargs="+", help="the command and its arguments")
    args = ap.parse_args()
    proxy = connect(args.url, args.secret_file)
    opts = {"timeout_s": args.timeout} if args.timeout else {}
    t0 = time.monotonic()
    try:
        cid = proxy.va.exec.start(args.command, opts)
        partial = {"stdout": b"", "stderr": b""}
        while True:
            r = proxy.va.exec.read(cid, 1 << 20, WAIT_MS)
            for name in ("stdout", "stderr"):
                new = r[name]  # bytes, or a Binary without use_builtin_types
                data = partial[name] + (new.data if isinstance(new, xmlrpc.client.Binary) else new)
                *lines, partial[name] = data.split(b"\n")
                if r[name + "_eof"] and partial[name]:
                    lines.append(partial[name])
                    partial[name] = b""
                for line in lines:
                    print(f"{time.monotonic() - t0:7.2f} {name}: "
                          f"{line.decode(errors='replace')}", flush=True)
            if r["exited"] and r["stdout_eof"] and r["stderr_eof"]:
                break
    except (xmlrpc.client.Error, OSError) as e:
        return explain(e, args.url)
    if "signal" in r:
        print(f"{time.monotonic() - t0:7.2f} killed by signal {r['signal']}"
              f"{' (timeout)' if r['timed_out'] else ''}", flush=True)
        return 128 + r["signal"]
    print(f"{time.monotonic() - t0:7.2f} exit {r['exit_code']}", flush=True)
    return r["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
