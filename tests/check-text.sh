#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/check-text.sh [TOP]: the one text mechanism (common/text.h) holds in
# the daemons and vactl.  xmlrpc-c's string functions cannot hold a
# character above U+FFFF and turn CR into LF (xmlrpc_string_new_lp), so
# text that was not read through the gate must not meet them: strings are
# made with va_text_value, read with va_text_read, faults raised with
# va_fault (which carries any text).  A call that is safe anyway (ASCII it
# made itself: a hex digest, a method name the gate already checked) says
# so on its line with a comment holding "text-ok:" and the reason.
# host/proxy/ is not held to it: what it passes on came through the gate
# (value form, which xmlrpc-c's functions keep), and what it makes of its
# own (proxy.status) uses va_text_value.
#
# Prints each line that breaks the rule; the last line is "N passed, N
# failed" (N files); exits 1 when a file breaks it.
set -u
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 1
pat='xmlrpc_(read_string|string_new|string_w|env_set_fault_formatted|faultf|set_fault_formatted)'
pass=0 fail=0
for f in agent/*.c host/vactl/*.c; do
	[ -f "$f" ] || continue
	bad=$(grep -nE "$pat" "$f" | grep -v 'text-ok:' | grep -vE '^[0-9]+:[[:space:]]*(\*|/\*)')
	if [ -n "$bad" ]; then
		printf '%s\n' "$bad" | sed "s|^|$f:|"
		fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
done
[ $((pass + fail)) -gt 0 ] || { echo "no sources under $top"; exit 1; }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
