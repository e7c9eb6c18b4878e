#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
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
import os
import sys
import xmlrpc.client

from vaproxy import add_connection_options, connect, explain


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
