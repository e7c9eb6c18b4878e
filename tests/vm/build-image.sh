#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/vm/build-image.sh [BUILD-DIR [OUT-DIR]]
#
# Builds a small bootable guest for the VM tests from Debian packages only:
#   - the installed Debian kernel (linux-image-amd64: /boot/vmlinuz-VERSION),
#   - busybox-static (the applets are linked at boot by /init),
#   - the kernel modules virtio-serial needs (virtio_pci, virtio_console and
#     their dependencies, in load order, decompressed; nothing when built in),
#     and those of the test NIC and disk (virtio_net, virtio_blk, ext4),
#   - va-agent and va-clip from BUILD-DIR (default _build) with the shared
#     libraries they need and the dynamic loader, and the agent's init script
#     (BUILD-DIR/agent/va-agent.init),
#   - /init, /etc/init.d/rcS, /etc/inittab and the test command loop from
#     tests/vm/guest/.
# Writes OUT-DIR (default BUILD-DIR/vm): vmlinuz, initrd.img, kernel-version.
# Environment: VA_VM_KERNEL=/boot/vmlinuz-X picks another kernel;
# VA_VM_EXTRA="strace gdb" adds host programs (and their libraries) to
# /usr/bin of the guest, for debugging.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/_build}
build=$(cd "$build" && pwd)
out=${2:-$build/vm}

die() { echo "build-image: $*" >&2; exit 1; }

for f in agent/va-agent agent/va-clip agent/va-agent.init; do
	[ -e "$build/$f" ] || die "$build/$f is missing: build first (tools/build $build)"
done
busybox=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
# The guest has no libc for a dynamic busybox.
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked: install busybox-static"
fi

# The kernel: the newest /boot/vmlinuz-* whose modules are installed.
kernel=${VA_VM_KERNEL:-}
if [ -z "$kernel" ]; then
	for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V); do
		[ -d "/lib/modules/${k#/boot/vmlinuz-}" ] && kernel=$k
	done
fi
{ [ -n "$kernel" ] && [ -r "$kernel" ]; } ||
	die "no readable /boot/vmlinuz-* with /lib/modules (apt-get install linux-image-amd64)"
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver
[ -d "$moddir" ] || die "$moddir is missing"

mkdir -p "$out"
root=$(mktemp -d "$out/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin usr/libexec etc/init.d etc/virtagent lib lib64 \
	dev proc sys run tmp var/log root mnt/data "lib/modules/$kver"
chmod 1777 tmp
ln -s ../run var/run # where utmp (va.users, who) and pidfiles are

cp "$busybox" bin/busybox
ln -s busybox bin/sh

# ---- kernel modules, in load order ----
# modprobe --show-depends prints "insmod PATH" (dependencies first) or
# "builtin NAME"; without it, follow modinfo -F depends by hand.
want="virtio_pci virtio_console virtio_net virtio_blk ext4"
list=$(mktemp)
if command -v modprobe >/dev/null 2>&1; then
	for m in $want; do
		modprobe -S "$kver" --show-depends "$m" 2>/dev/null ||
			die "modprobe cannot resolve $m for $kver"
	done | awk '$1 == "insmod" { if (!seen[$2]++) print $2 }' > "$list"
else
	resolve() { # NAME: prints its path after those of its dependencies
		grep -qE "/$1\.ko(\.[a-z]+)?\$" "$moddir/modules.builtin" 2>/dev/null && return 0
		p=$(modinfo -k "$kver" -F filename "$1") || die "module $1 not found"
		for d in $(modinfo -k "$kver" -F depends "$1" | tr ',' ' '); do resolve "$d"; done
		echo "$p"
	}
	for m in $want; do resolve "$m"; done | awk '!seen[$0]++' > "$list"
fi
: > "lib/modules/$kver/virtagent.load"
while read -r ko; do
	[ -n "$ko" ] || continue
	base=$(basename "$ko")
	case "$base" in
	*.ko.xz) xz -dc "$ko" > "lib/modules/$kver/${base%.xz}"; base=${base%.xz} ;;
	*.ko.zst) zstd -qdc "$ko" > "lib/modules/$kver/${base%.zst}"; base=${base%.zst} ;;
	*.ko.gz) gzip -dc "$ko" > "lib/modules/$kver/${base%.gz}"; base=${base%.gz} ;;
	*) cp "$ko" "lib/modules/$kver/$base" ;;
	esac
	echo "/lib/modules/$kver/$base" >> "lib/modules/$kver/virtagent.load"
done < "$list"
rm -f "$list"
nmod=$(wc -l < "lib/modules/$kver/virtagent.load")

# ---- the agent, va-clip and their libraries ----
install -m 0755 "$build/agent/va-agent" usr/sbin/va-agent
install -m 0755 "$build/agent/va-clip" usr/bin/va-clip
install -m 0755 "$build/agent/va-agent.init" etc/init.d/va-agent
copy_lib() { # copies a library (the symlink and its target) to the same path
	[ -e "$1" ] || return 0
	d=$(dirname "$1")
	mkdir -p ".$d"
	[ -e ".$1" ] || cp -L "$1" ".$1"
}
extra=
for p in ${VA_VM_EXTRA:-}; do
	p=$(command -v "$p") || die "VA_VM_EXTRA: $p not found"
	install -m 0755 "$p" "usr/bin/$(basename "$p")"
	extra="$extra $p"
done
for bin in "$build/agent/va-agent" "$build/agent/va-clip" $extra; do
	ldd "$bin" | awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r lib; do copy_lib "$lib"; done
# The dynamic loader, at the path the binaries name (PT_INTERP).
interp=$(readelf -l "$build/agent/va-agent" 2>/dev/null |
	sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
copy_lib "${interp:-/lib64/ld-linux-x86-64.so.2}"

# ---- init, rcS, inittab, the test loop ----
install -m 0755 "$here/guest/init" init
install -m 0755 "$here/guest/rcS" etc/init.d/rcS
install -m 0755 "$here/guest/test-loop" usr/libexec/va-test-loop
install -m 0644 "$here/guest/inittab" etc/inittab
echo "$kver" > etc/va-kernel-version
# root, and the users of the exec and accounts tests (rcS gives them their
# homes: cpio makes every file root's).
printf 'root:x:0:0:root:/root:/bin/sh\nvauser:x:1000:1000:exec test:/home/vauser:/bin/sh\nvalink:x:1001:1001:symlink test:/home/valink:/bin/sh\n' > etc/passwd
printf 'root:x:0:\nvauser:x:1000:\nvalink:x:1001:\n' > etc/group
printf 'root:*:19000:0:99999:7:::\nvauser:!:19000:0:99999:7:::\nvalink:!:19000:0:99999:7:::\n' > etc/shadow
chmod 0640 etc/shadow
mkdir -p home/vauser home/valink
cat > etc/os-release <<EOF
PRETTY_NAME="virtagent test guest (Debian kernel $kver, busybox)"
NAME="virtagent-test-guest"
ID=virtagent-test-guest
EOF
# The kernel opens /dev/console before /init runs (as root we can make it;
# /init redirects to it again after mounting devtmpfs anyway).
mknod -m 600 dev/console c 5 1 2>/dev/null || true
mknod -m 666 dev/null c 1 3 2>/dev/null || true

# ---- pack ----
find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 > "$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
cp "$kernel" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$kver" > "$out/kernel-version"
echo "build-image: $out/vmlinuz ($kver), $out/initrd.img ($(du -k "$out/initrd.img" | cut -f1) KiB, $nmod modules)"
