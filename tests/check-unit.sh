#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/check-unit.sh: the va-proxy unit as built (host/proxy/va-proxy.service)
# is hardened: systemd-analyze security --offline rates its exposure at
# most 2.0 (of 10; the unit of a service without any hardening is 9.6),
# and it keeps the settings the issue names.  Skipped (77) without a
# systemd-analyze that knows --offline (systemd 252 and later).
# BUILD is the build directory (make check sets it).  The last line is
# "N passed, N failed".
set -u
BUILD=${BUILD:-$(cd "$(dirname "$0")/../_build" 2>/dev/null && pwd)}
unit=$BUILD/host/proxy/va-proxy.service
[ -f "$unit" ] || { echo "SKIP: $unit is not built"; echo "0 passed, 0 failed"; exit 77; }
command -v systemd-analyze >/dev/null 2>&1 || PATH=$PATH:/usr/bin:/bin
if ! systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
	echo "SKIP: no systemd-analyze security --offline"; echo "0 passed, 0 failed"; exit 77
fi
pass=0
fail=0
check() { # NAME STATUS DETAIL
	if [ "$2" = 0 ]; then
		echo "ok   $1"
		pass=$((pass + 1))
	else
		echo "FAIL $1: $3"
		fail=$((fail + 1))
	fi
}
# The unit file's name is what systemd-analyze goes by: a copy named as installed.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/va-unit.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$unit" "$tmp/va-proxy.service"
o=$(systemd-analyze security --offline=yes --threshold=20 "$tmp/va-proxy.service" 2>&1)
st=$?
exposure=$(echo "$o" | sed -n 's/.*Overall exposure level for va-proxy.service: \([0-9.]*\).*/\1/p')
[ $st = 0 ] && [ -n "$exposure" ]
check "systemd-analyze security: exposure $exposure, at most 2.0" $? "$(echo "$o" | grep '✗')"
for want in Type=notify User=va-proxy StateDirectory=virtagent RuntimeDirectory=virtagent \
	ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
	CapabilityBoundingSet= SystemCallFilter=@system-service \
	"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" RestartPreventExitStatus=2; do
	grep -qx -- "$want" "$unit"
	check "the unit says $want" $? "missing in $unit"
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
