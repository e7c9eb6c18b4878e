#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Prints what a guest is: host name, OS, kernel, uptime, agent version and
methods, and what the proxy knows of its link.

    guest_info.py [--url URL] [--secret-file FILE]

Only the standard library: xmlrpc.client talks to va-proxy, which passes
the va.* calls to the agent in the guest.
"""
import argparse
import sys
import xmlrpc.client

from vaproxy import add_connection_options, connect, explain


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_options(ap)
    args = ap.parse_args()
    proxy = connect(args.url, args.secret_file)
    try:
        info = proxy.va.info()
        caps = proxy.va.capabilities()
        status = proxy.proxy.status()
    except (xmlrpc.client.Error, OSError) as e:
        return explain(e, args.url)
    up = info["uptime"]
    print(f"hostname: {info['hostname']}")
    print(f"os: {info['os']}")
    print(f"kernel: {info['kernel']} ({info['arch']})")
    print(f"uptime: {up // 86400} d {up % 86400 // 3600:02d}:{up % 3600 // 60:02d}:{up % 60:02d}")
    print(f"agent: {info['agent_version']}, protocol {caps['protocol']}, "
          f"{len(caps['methods'])} methods")
    print(f"methods: {' '.join(m for m in caps['methods'] if m.startswith('va.'))}")
    print(f"link: guest {status['guest']} on {status['channel']}, "
          f"{'connected' if status['connected'] else 'not connected'}, "
          f"{status['calls_forwarded']} calls forwarded, {status['resets']} resets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
