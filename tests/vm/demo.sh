#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/vm/demo.sh [--build DIR] [--isa]: the quick-start demo.  Boots the
# test guest with va-proxy (start-guest.sh), makes a few calls from Python
# (va.info, a file round trip with checksums, the clipboard both ways) and,
# when it is built, the same with vactl, then leaves the guest and the
# proxy running and says how to call them and how to stop them.
set -eu
export PYTHONDONTWRITEBYTECODE=1
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${VA_BUILD:-$top/_build}
isa=
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift ;;
	--isa) isa=--isa ;;
	*) echo "usage: $0 [--build DIR] [--isa]" >&2; exit 2 ;;
	esac
	shift
done
build=$(cd "$build" && pwd)
dir=$build/vm/demo
[ -f "$dir/qemu.pid" ] && kill -0 "$(cat "$dir/qemu.pid")" 2>/dev/null &&
	"$here/stop-guest.sh" "$dir" >/dev/null
"$here/start-guest.sh" --build "$build" --dir "$dir" $isa --quiet >/dev/null
. "$dir/env"

echo "== Python (xmlrpc.client) through $VA_PROXY_URL"
PYTHONPATH=$here python3 - "$dir" <<'EOF'
import hashlib, os, sys, time, xmlrpc.client
import vmlib
d = sys.argv[1]
p = xmlrpc.client.ServerProxy(vmlib.proxy_url(d), use_builtin_types=True)
info = p.va.info()
print("va.info:", ", ".join("%s=%s" % kv for kv in sorted(info.items())))

data = os.urandom(4 << 20)
h = p.va.file.open("/tmp/demo.bin", "w")
for i in range(0, len(data), 1 << 20):
    p.va.file.write(h, data[i:i + (1 << 20)])
p.va.file.close(h)
h = p.va.file.open("/tmp/demo.bin", "r")
back = b""
while True:
    r = p.va.file.read(h, 1 << 20)
    back += r["data"]
    if r["eof"]:
        break
p.va.file.close(h)
ok = back == data and p.va.file.checksum("/tmp/demo.bin") == hashlib.sha256(data).hexdigest()
print("file round trip of 4 MiB through /tmp/demo.bin:", "same bytes, same SHA-256" if ok else "MISMATCH")

text = "hello from the host, %s" % time.strftime("%H:%M:%S")
p.va.clipboard.set(text)
g = vmlib.GuestShell(os.path.join(d, "test.sock"))
print("host set the clipboard; in the guest, va-clip paste prints:", repr(g.out("va-clip paste")))
g.out("echo -n 'hello from the guest' | va-clip copy")
for _ in range(50):
    c = p.proxy.clipboard.get()
    if c["text"] == "hello from the guest":
        break
    time.sleep(0.1)
print("guest ran va-clip copy; proxy.clipboard.get:", repr(c["text"]), "(serial %d)" % c["serial"])
g.close()
sys.exit(0 if ok else 1)
EOF

vactl=$build/host/vactl/vactl
if [ -x "$vactl" ]; then
	echo "== vactl"
	export VA_URL="$VA_PROXY_URL"
	"$vactl" info
	head -c 1048576 /dev/urandom > "$dir/demo-src.bin"
	"$vactl" push "$dir/demo-src.bin" /tmp/demo-vactl.bin </dev/null
	"$vactl" pull /tmp/demo-vactl.bin "$dir/demo-back.bin" </dev/null
	cmp "$dir/demo-src.bin" "$dir/demo-back.bin" && echo "vactl push + pull of 1 MiB: same bytes"
	rm -f "$dir/demo-src.bin" "$dir/demo-back.bin"
	"$vactl" clipboard set "hello again from vactl"
	"$vactl" clipboard guest
fi

cat <<EOF

The guest and va-proxy keep running ($VA_VM_CHANNEL, $VA_VM_ACCEL).
  Call:  python3 -c 'import xmlrpc.client as x; print(x.ServerProxy("$VA_PROXY_URL").va.info())'
EOF
[ -x "$vactl" ] && echo "         VA_URL='$VA_PROXY_URL' $vactl info"
cat <<EOF
  Guest console: $dir/console.log
  Stop:  $here/stop-guest.sh $dir
EOF
