#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/check-init.sh: the LSB init script (agent/va-agent.init, built) with
# the built va-agent, as Debian's conventions want it: start skips with a
# message and exit 0 when the guest has no port (named on the command line,
# in the config file, or the default one), start/stop/status/reload/restart
# go through start-stop-daemon, status answers 0 or 3, stop leaves alone a
# process that is not the agent although the pidfile names it.
#
# BUILD is the build directory (make check sets it).  Everything runs in a
# fresh temporary directory; every agent started here is stopped at the end.
# Skipped (77) without start-stop-daemon, or when /etc/default/va-agent
# exists (the script reads it and it would override these settings).  The
# last line is "N passed, N failed".
set -u
BUILD=${BUILD:-$(cd "$(dirname "$0")/../_build" 2>/dev/null && pwd)}
script=$BUILD/agent/va-agent.init
agent=$BUILD/agent/va-agent
for f in "$script" "$agent"; do
	[ -x "$f" ] || { echo "SKIP: $f is not built"; echo "0 passed, 0 failed"; exit 77; }
done
command -v start-stop-daemon >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin
if ! command -v start-stop-daemon >/dev/null 2>&1; then
	echo "SKIP: no start-stop-daemon"; echo "0 passed, 0 failed"; exit 77
fi
if [ -e /etc/default/va-agent ]; then
	echo "SKIP: /etc/default/va-agent would override the test's settings"
	echo "0 passed, 0 failed"; exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/va-init-test.XXXXXX") || exit 1
pidfile=$tmp/agent.pid
sleeper=
cleanup() {
	[ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null
	[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
: > "$tmp/empty.conf"

pass=0
fail=0
check() { # NAME CONDITION-STATUS DETAIL
	if [ "$2" = 0 ]; then
		echo "ok   $1"
		pass=$((pass + 1))
	else
		echo "FAIL $1: $3"
		fail=$((fail + 1))
	fi
}
# run ACTION OPTS...: runs the script; sets st and out.
run() {
	action=$1
	shift
	out=$(VA_AGENT_BIN=$agent VA_AGENT_PIDFILE=$pidfile VA_AGENT_OPTS="$*" \
		"$script" "$action" 2>&1 </dev/null)
	st=$?
}
# alive PID: the process exists and is not a zombie.
alive() {
	s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$s" ] && [ "$s" != Z ]
}
gone_within() { # PID TENTHS
	i=0
	while alive "$1" && [ $i -lt "$2" ]; do sleep 0.1; i=$((i + 1)); done
	! alive "$1"
}
has() { case "$1" in *"$2"*) return 0 ;; esac; return 1; }

# ---- a missing port: skip with a message, exit 0, nothing started ----
missing=/dev/virtio-ports/va-init-test-missing-$$
run start --config "$tmp/empty.conf" --channel "virtio-serial:$missing" --control none
has "$out" "$missing" && has "$out" "not starting" && [ $st = 0 ] && [ ! -e "$pidfile" ]
check "start: a missing port named by --channel: exit 0 with a message, nothing started" $? \
	"status $st: $out"

printf 'log-level = info\nchannel = isa-serial:/dev/ttyVA-init-test-%s,115200\n' $$ > "$tmp/isa.conf"
run start --config="$tmp/isa.conf" --control none
has "$out" "/dev/ttyVA-init-test-$$" && has "$out" "not starting" && [ $st = 0 ] && [ ! -e "$pidfile" ]
check "start: a missing port named by the config file: exit 0 with a message" $? "status $st: $out"

if [ ! -e /dev/virtio-ports/org.qemu.virtagent ]; then
	run start --config "$tmp/empty.conf" --control none
	has "$out" "/dev/virtio-ports/org.qemu.virtagent" && has "$out" "not starting" &&
		[ $st = 0 ] && [ ! -e "$pidfile" ]
	check "start: no channel configured and no default port: exit 0 with a message" $? \
		"status $st: $out"
fi

# ---- a configuration the agent refuses: the agent's status ----
printf 'no-such-key = 1\n' > "$tmp/bad.conf"
run start --config "$tmp/bad.conf" --channel "unix-listen:$tmp/bad.sock"
[ $st = 2 ] && has "$out" "did not start" && has "$out" "no-such-key" && [ ! -e "$pidfile" ]
check "start: a bad config file: exit 2, the agent's reason and 'did not start'" $? \
	"status $st: $out"

# ---- a channel that exists: start, status, reload, restart, stop ----
opts="--config $tmp/empty.conf --channel unix-listen:$tmp/agent.sock --control none"
run start $opts
pid=$(cat "$pidfile" 2>/dev/null)
[ $st = 0 ] && [ -n "$pid" ] && alive "$pid" && [ -S "$tmp/agent.sock" ] &&
	[ "$(cat "/proc/$pid/comm")" = va-agent ]
check "start: exit 0 with the agent running, its pidfile and its socket" $? "status $st: $out"

run start $opts
[ $st = 0 ] && has "$out" "already running" && [ "$(cat "$pidfile" 2>/dev/null)" = "$pid" ]
check "start again: exit 0, 'already running', the same agent" $? "status $st: $out"

run status $opts
[ $st = 0 ] && has "$out" "running (pid $pid)"
check "status: exit 0, running with its pid" $? "status $st: $out"

run reload $opts
sleep 0.3
[ $st = 0 ] && alive "$pid" && [ "$(cat "$pidfile" 2>/dev/null)" = "$pid" ]
check "reload: exit 0, the agent (SIGHUP) still runs" $? "status $st: $out"

run restart $opts
new=$(cat "$pidfile" 2>/dev/null)
[ $st = 0 ] && [ -n "$new" ] && [ "$new" != "$pid" ] && alive "$new" && ! alive "$pid"
check "restart: exit 0, the old agent gone, a new one running" $? "status $st: $out (old $pid new $new)"
pid=$new

run stop $opts
[ $st = 0 ] && gone_within "$pid" 50 && [ ! -e "$pidfile" ] && [ ! -e "$tmp/agent.sock" ]
check "stop: exit 0, the agent gone with its pidfile and socket" $? "status $st: $out"

run status $opts
[ $st = 3 ] && has "$out" "not running"
check "status after stop: exit 3, not running" $? "status $st: $out"

run stop $opts
[ $st = 0 ]
check "stop when not running: exit 0" $? "status $st: $out"

# ---- a pidfile naming a process that is not the agent ----
sleep 60 &
sleeper=$!
echo "$sleeper" > "$pidfile"
run status $opts
[ $st = 1 ]
check "status with a pidfile of another program: exit 1 (not running, pidfile exists)" $? \
	"status $st: $out"
run stop $opts
sleep 0.2
[ $st = 0 ] && alive "$sleeper"
check "stop with a pidfile of another program: exit 0, that program left alone" $? \
	"status $st: $out"
run start $opts
pid=$(cat "$pidfile" 2>/dev/null)
[ $st = 0 ] && [ -n "$pid" ] && [ "$pid" != "$sleeper" ] && alive "$pid"
check "start over a stale pidfile: exit 0, the agent runs" $? "status $st: $out"
run stop $opts
[ $st = 0 ] && gone_within "$pid" 50
check "stop: exit 0, the agent gone" $? "status $st: $out"

run frobnicate
[ $st = 3 ] && has "$out" "Usage"
check "an unknown action: usage, exit 3" $? "status $st: $out"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
