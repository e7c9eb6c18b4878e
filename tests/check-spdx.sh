#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/check-spdx.sh [TOP]: every source, script and build file of the tree
# carries "SPDX-License-Identifier: GPL-2.0-or-later" in its first three
# lines (after a shebang, in the file's own comment syntax).
#
# Which files: in a git checkout, the files git tracks; in a release tree,
# the files that make dist put in it (tests/spdx-manifest, written then) but
# what autoreconf makes (configure, Makefile.in, aclocal.m4, config.h.in,
# build-aux/, m4/).  Elsewhere (no git, no manifest: nothing tells sources
# from build outputs) the test is skipped (77).  Not checked: prose
# (COPYING, NEWS, README files, *.md), empty files, and Debian files whose
# format has no room for a comment (debian/changelog, debian/source/format)
# or that state the license in their own fields (debian/copyright).
#
# Prints each file that lacks the line; the last line is "N passed, N
# failed" (N files); exits 1 when one lacks it or when no file was found.
set -u
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
top=$(cd "$top" && pwd -P) || exit 1
list=$(mktemp) || exit 1
trap 'rm -f "$list"' EXIT

# git only when TOP is the top of its own checkout: a release tree unpacked
# inside another checkout (make distcheck in _build/) is not tracked there.
if command -v git >/dev/null 2>&1 &&
   [ "$(git -C "$top" rev-parse --show-toplevel 2>/dev/null)" = "$top" ]; then
	git -C "$top" ls-files > "$list" || exit 1
elif [ -f "$top/tests/spdx-manifest" ]; then
	grep -v -E '^(configure|aclocal\.m4|config\.h\.in|(.*/)?Makefile\.in|build-aux/.*|m4/.*|tests/spdx-manifest)$' \
		"$top/tests/spdx-manifest" > "$list"
else
	echo "SKIP: $top is neither a git checkout nor a release tree (tests/spdx-manifest)"
	echo "0 passed, 0 failed"
	exit 77
fi

pass=0
fail=0
while IFS= read -r f; do
	case "$f" in
	COPYING | NEWS | README | */README | *.md) continue ;;
	debian/changelog | debian/source/format | debian/copyright) continue ;;
	esac
	# A symlink or a file that went away since the listing is not ours to check.
	[ -f "$top/$f" ] && [ ! -L "$top/$f" ] && [ -s "$top/$f" ] || continue
	if head -n 3 "$top/$f" | grep -q 'SPDX-License-Identifier: GPL-2.0-or-later'; then
		pass=$((pass + 1))
	else
		echo "FAIL $f: no 'SPDX-License-Identifier: GPL-2.0-or-later' in its first 3 lines"
		fail=$((fail + 1))
	fi
done < "$list"

if [ $((pass + fail)) -eq 0 ]; then
	echo "FAIL no file found under $top"
	fail=1
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
