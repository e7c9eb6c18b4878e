#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/vm/start-guest.sh [OPTION]...: boots the virtagent test guest in
# QEMU and starts a va-proxy connected to its chardev, waits until
# proxy.status says the agent answered, and prints how to call it.
#
#   --dir DIR       where sockets, logs and pid files go (default
#                   BUILD/vm/guest, or BUILD/vm/guest-isa with --isa)
#   --isa           the agent's channel is the guest's 2nd serial port
#                   (isa-serial, /dev/ttyS1) instead of virtio-serial
#   --port PORT     the proxy's TCP port on 127.0.0.1 (default: a free one)
#   --build DIR     the build tree (default _build, or $VA_BUILD)
#   --no-proxy      boot the guest only; wait until the agent answers on
#                   the chardev (a raw handshake from python)
#   --accel A       kvm, tcg or auto (default $VA_VM_ACCEL or auto: KVM
#                   when it really runs a guest, else TCG)
#   --smp N         CPUs of the guest (default 2, for va.cpu.set; 1 with
#                   --isa, whose serial port is slower with two under TCG)
#   --quiet         print only the final lines
#
# The guest has two CPUs (--smp), a virtio-net NIC on QEMU's user networking
# (10.0.2.15/24, gateway 10.0.2.2, MAC 52:54:00:12:34:56) and a second
# virtio-blk disk (serial vadisk1, QEMU id vdisk1) holding an ext4
# filesystem made here, fresh at every start, that the guest mounts on
# /mnt/data.
#
# Files in DIR: env (VA_PROXY_URL, ... for scripts), console.log (the
# guest's serial console), qemu.pid, qemu.log, va.sock (the agent's
# chardev), test.sock (the guest command port: tests/vm/vmlib.py
# GuestShell), qmp.sock, data.img (the ext4 disk), proxy.pid, proxy.log,
# secret.
# tests/vm/stop-guest.sh DIR stops both.
set -eu
export PYTHONDONTWRITEBYTECODE=1

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${VA_BUILD:-$top/_build}
dir=
isa=0
port=
proxy=1
accel=${VA_VM_ACCEL:-auto}
quiet=0
smp=
mem=${VA_VM_MEM:-512}

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift ;;
	--isa) isa=1 ;;
	--port) port=$2; shift ;;
	--build) build=$2; shift ;;
	--no-proxy) proxy=0 ;;
	--accel) accel=$2; shift ;;
	--smp) smp=$2; shift ;;
	--quiet) quiet=1 ;;
	-h|--help) usage 0 ;;
	*) echo "start-guest: unknown option $1" >&2; usage ;;
	esac
	shift
done
build=$(cd "$build" && pwd)
[ -n "$smp" ] || { [ $isa = 1 ] && smp=1 || smp=2; }
[ -n "$dir" ] || { [ $isa = 1 ] && dir=$build/vm/guest-isa || dir=$build/vm/guest; }
say() { [ $quiet = 1 ] || echo "start-guest: $*"; }
die() { echo "start-guest: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
command -v python3 >/dev/null || die "python3 not found"
mkfs=$(PATH=$PATH:/sbin:/usr/sbin command -v mkfs.ext4) || die "mkfs.ext4 not found (apt-get install e2fsprogs)"

# The image: rebuilt when missing or older than the agent, its init
# script or the guest files.
img=$build/vm
if [ ! -f "$img/initrd.img" ] || [ ! -f "$img/vmlinuz" ] ||
   [ -n "$(find "$build/agent/va-agent" "$build/agent/va-clip" "$build/agent/va-agent.init" \
	"$here/guest" "$here/build-image.sh" -newer "$img/initrd.img" 2>/dev/null)" ]; then
	say "building the guest image"
	"$here/build-image.sh" "$build" "$img" >/dev/null
fi

if [ -f "$dir/qemu.pid" ] && kill -0 "$(cat "$dir/qemu.pid")" 2>/dev/null; then
	die "a guest already runs in $dir (tests/vm/stop-guest.sh $dir)"
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -f "$dir"/*.sock "$dir/console.log" "$dir/qemu.log" "$dir/proxy.log" "$dir/env" \
	"$dir/qemu.pid" "$dir/proxy.pid" "$dir/data.img"
# The test disk: 64 MiB, sparse, an ext4 filesystem initialised now (no
# lazy init writing in the guest later).
truncate -s 64M "$dir/data.img"
"$mkfs" -q -F -L vadata -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$dir/data.img" ||
	die "mkfs.ext4 $dir/data.img failed"

# ---- KVM, only when it really runs a guest (nested KVM may hang) ----
if [ "$accel" = auto ]; then
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		rm -f "$dir/probe.log" "$dir/probe.pid"
		if qemu-system-x86_64 -accel kvm -m 64 -nodefaults -no-reboot -display none \
			-monitor none -kernel "$img/vmlinuz" -append "console=ttyS0 earlyprintk=ttyS0 panic=-1" \
			-serial "file:$dir/probe.log" -pidfile "$dir/probe.pid" -daemonize >/dev/null 2>&1; then
			i=0
			while [ $i -lt 15 ] && [ ! -s "$dir/probe.log" ]; do sleep 0.1; i=$((i + 1)); done
			[ -s "$dir/probe.log" ] && accel=kvm
			kill "$(cat "$dir/probe.pid")" 2>/dev/null || true
		fi
		rm -f "$dir/probe.log" "$dir/probe.pid"
		[ $accel = kvm ] || say "KVM does not run a guest here: using TCG"
	fi
fi

# ---- QEMU ----
if [ $isa = 1 ]; then
	channel='isa-serial:/dev/ttyS1'
	agentdev="-chardev socket,id=va0,path=$dir/va.sock,server=on,wait=off -device isa-serial,chardev=va0"
else
	channel='virtio-serial:/dev/virtio-ports/org.qemu.virtagent'
	agentdev="-chardev socket,id=va0,path=$dir/va.sock,server=on,wait=off -device virtserialport,bus=vser0.0,chardev=va0,name=org.qemu.virtagent"
fi
t0=$(now)
say "booting the guest ($accel, $channel) in $dir"
# shellcheck disable=SC2086
qemu-system-x86_64 -accel "$accel" -m "$mem" -smp "$smp" -nodefaults -no-reboot \
	-display none -monitor none -name va-guest \
	-kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
	-append "console=ttyS0 quiet panic=-1 va.channel=$channel" \
	-serial "file:$dir/console.log" \
	-device virtio-serial-pci,id=vser0 \
	$agentdev \
	-chardev "socket,id=test0,path=$dir/test.sock,server=on,wait=off" \
	-device virtserialport,bus=vser0.0,chardev=test0,name=org.virtagent.test \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 \
	-drive "file=$dir/data.img,if=none,id=d1,format=raw,discard=unmap" \
	-device virtio-blk-pci,drive=d1,serial=vadisk1,id=vdisk1 \
	-qmp "unix:$dir/qmp.sock,server=on,wait=off" \
	-pidfile "$dir/qemu.pid" -daemonize 2>"$dir/qemu.log" ||
	{ cat "$dir/qemu.log" >&2; die "QEMU did not start"; }

cat > "$dir/env" <<EOF
VA_VM_DIR=$dir
VA_VM_CHANNEL=$channel
VA_VM_ACCEL=$accel
VA_VM_KERNEL=$(cat "$img/kernel-version")
VA_VM_CHARDEV=$dir/va.sock
VA_VM_TEST_SOCK=$dir/test.sock
EOF

if [ $proxy = 0 ]; then
	PYTHONPATH=$here python3 -c '
import sys, time, vmlib
end = time.monotonic() + 60
while True:
    try:
        a = vmlib.RawAgent(sys.argv[1]); a.handshake(timeout=5); print(a.call("va.ping")); a.close(); break
    except (OSError, TimeoutError) as e:
        if time.monotonic() > end: raise
        time.sleep(0.2)
' "$dir/va.sock" >/dev/null || die "the agent did not answer on $dir/va.sock (console: $dir/console.log)"
	say "the agent answered after $(since "$t0") s; its chardev is $dir/va.sock"
	echo "Stop: $here/stop-guest.sh $dir"
	exit 0
fi

# ---- va-proxy ----
vaproxy=$build/host/proxy/va-proxy
[ -x "$vaproxy" ] || die "$vaproxy not built (tools/build)"
if [ -z "$port" ]; then
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
"$vaproxy" --guest "unix:$dir/va.sock" --listen "tcp:127.0.0.1:$port" \
	--auth-file "$dir/secret" --config /dev/null --pidfile "$dir/proxy.pid" \
	>"$dir/proxy.log" 2>&1 &
echo $! > "$dir/proxy.pid"
i=0
while [ ! -s "$dir/secret" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$(cat "$dir/proxy.pid")" 2>/dev/null || { cat "$dir/proxy.log" >&2; die "va-proxy did not start"; }
secret=$(cat "$dir/secret")
url="http://va:$secret@127.0.0.1:$port/RPC2"
cat >> "$dir/env" <<EOF
VA_PROXY_PORT=$port
VA_PROXY_URL=$url
EOF

PYTHONPATH=$here python3 -c '
import sys, time, vmlib
p = vmlib.ServerProxy(sys.argv[1], timeout=10)
end = time.monotonic() + float(sys.argv[2])
while True:
    try:
        st = p.proxy.status()
        if st.get("answered"):
            break
    except (OSError, vmlib.xmlrpc.client.Error):
        pass
    if time.monotonic() > end:
        sys.exit("proxy.status: the agent did not answer")
    time.sleep(0.2)
' "$url" 90 || die "the agent did not answer in time (console: $dir/console.log, proxy: $dir/proxy.log)"
say "the agent answered after $(since "$t0") s"
cat <<EOF
Guest running ($accel, $channel); proxy at $url
  python3 -c 'import xmlrpc.client as x; print(x.ServerProxy("$url").va.info())'
  curl -s -u va:$secret --data '<methodCall><methodName>va.ping</methodName></methodCall>' http://127.0.0.1:$port/RPC2
Stop: $here/stop-guest.sh $dir
EOF
