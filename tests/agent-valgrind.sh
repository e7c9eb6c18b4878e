#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/agent-valgrind.sh [BUILD-DIR]: runs the end-to-end suite
# (tests/test-agent-e2e) with va-agent and va-clip under valgrind's
# memcheck.  Every agent the suite starts must exit 0 on SIGTERM; under
# valgrind an invalid access or a definite leak makes it exit 99, which
# fails the suite's last test and prints that agent's log (valgrind's
# report included).
#
# BUILD-DIR (default: the current directory, as for make check) holds
# tests/test-agent-e2e, agent/va-agent and agent/va-clip.  VA_TEST_SLOW
# (default 10) scales the suite's timeouts; VA_TEST_SUITE picks one suite.
# Prints the suite's output, then "N passed, N failed"; exits 0 when
# every test passed, 1 otherwise, 77 (skip) without valgrind.
build=${1:-.}
e2e=$build/tests/test-agent-e2e
if ! command -v valgrind >/dev/null 2>&1; then
	echo "agent-valgrind: valgrind is not installed; skipped"
	echo "0 passed, 0 failed"
	exit 77
fi
if [ ! -x "$e2e" ] || [ ! -x "$build/agent/va-agent" ] || [ ! -x "$build/agent/va-clip" ]; then
	echo "agent-valgrind: $e2e, $build/agent/va-agent or $build/agent/va-clip is missing (build first)"
	echo "0 passed, 1 failed"
	exit 1
fi
vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
vg="$vg --show-leak-kinds=definite --num-callers=30"
out=$(mktemp "${TMPDIR:-/tmp}/agent-valgrind.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT INT TERM

VA_AGENT=$build/agent/va-agent VA_CLIP=$build/agent/va-clip \
VA_AGENT_WRAPPER=$vg VA_CLIP_WRAPPER=$vg VA_TEST_SLOW=${VA_TEST_SLOW:-10} \
	"$e2e" >"$out" 2>&1
status=$?

# The suite's output without CUnit's summary table: the line below is the
# count (tools/summarize reads either, and must not read both).
grep -Ev '^[[:space:]]*(suites|tests|asserts)[[:space:]]+[0-9]' "$out" | grep -v '^Run Summary:'
set -- $(awk '$1 == "tests" && $2 ~ /^[0-9]+$/ { print $4, $5 }' "$out")
passed=${1:-0}
failed=${2:-0}
if [ $# -lt 2 ]; then
	echo "agent-valgrind: the suite ended without a summary (exit status $status)"
	failed=$((failed + 1))
elif [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "agent-valgrind: the suite exited $status"
	failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
