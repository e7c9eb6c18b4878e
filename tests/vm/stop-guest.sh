#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/vm/stop-guest.sh [DIR]...: stops the va-proxy and the QEMU guest
# that start-guest.sh started in DIR (default BUILD/vm/guest; $VA_BUILD or
# _build).  QEMU gets "quit" on its QMP socket, then SIGTERM, then SIGKILL.
# The logs stay in DIR.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${VA_BUILD:-$top/_build}
[ $# -gt 0 ] || set -- "$build/vm/guest"

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
wait_gone() { # PID TENTHS
	i=0
	while alive "$1" && [ $i -lt "$2" ]; do sleep 0.1; i=$((i + 1)); done
	! alive "$1"
}

rc=0
for dir in "$@"; do
	[ -d "$dir" ] || { echo "stop-guest: $dir: no such directory" >&2; rc=1; continue; }
	pid=$(cat "$dir/proxy.pid" 2>/dev/null || true)
	if alive "$pid"; then
		kill -TERM "$pid"
		wait_gone "$pid" 50 || kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$dir/proxy.pid"
	pid=$(cat "$dir/qemu.pid" 2>/dev/null || true)
	if alive "$pid"; then
		[ -S "$dir/qmp.sock" ] && python3 - "$dir/qmp.sock" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.recv(4096)
s.sendall(b'{"execute":"qmp_capabilities"}\n')
s.recv(4096)
s.sendall(b'{"execute":"quit"}\n')
s.recv(4096)
EOF
		wait_gone "$pid" 30 || { kill -TERM "$pid" 2>/dev/null; wait_gone "$pid" 30; } ||
			kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$dir/qemu.pid" "$dir"/*.sock
	echo "stop-guest: stopped the guest in $dir"
done
exit $rc
