#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# tests/vm/run.sh: the kernel backend against a real kernel, in a small VM.
#
# Fetches the kernel that Debian's linux-image-amd64 depends on (apt-get download into a
# cache, unpacked with dpkg-deb, never installed as this machine's kernel), builds an
# initramfs holding busybox-static, the wireguard module and the modules it depends on
# (in the order modules.dep gives), wg, the agent, the test driver and the shared
# libraries they link, and boots it with qemu under TCG. /init runs scenario.sh, which
# prints WGF-* markers on the serial console; qemu exits 0 whatever happens inside, so
# the caller (tests/integration/test_agent_kernel.py) judges by the markers alone.
#
# Usage: tests/vm/run.sh BUILD_DIR
# Environment:
#   WGF_VM_CACHE        kernel cache (default: <top>/build/vm-cache)
#   WGF_VM_TIMEOUT      seconds before qemu is stopped (default 240)
#   WGF_VM_BENCH_PEERS  peers in the benchmark part of the scenario (default 10000; 0: none)
#   WGF_VM_BENCH_ROUNDS times the agent and `wg setconf` are timed, in turn (default 1)
#   WGF_VM_BENCH_DAEMON seconds the agent daemon holds the benchmark's peers before its memory
#                       is read (default 0: the daemon is not run)
#   WGF_VM_MEMORY       the VM's memory (default 512M; 100,000 peers want about 1536M)
# Output: the console on stdout, also kept in BUILD_DIR/vm/console.log. Exit status 0
# once qemu ran (whatever happened inside), 1 when the VM could not be built or booted.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: tests/vm/run.sh BUILD_DIR}" && pwd)
cache=${WGF_VM_CACHE:-$top/build/vm-cache}
timeout_s=${WGF_VM_TIMEOUT:-240}
bench=${WGF_VM_BENCH_PEERS:-10000}
rounds=${WGF_VM_BENCH_ROUNDS:-1}
memory=${WGF_VM_MEMORY:-512M}
daemon=${WGF_VM_BENCH_DAEMON:-0}
out=$build/vm
stage=$out/initramfs

die() {
	echo "vm: $*" >&2
	exit 1
}

for tool in qemu-system-x86_64 cpio gzip depmod dpkg-deb apt-get wg; do
	command -v "$tool" >/dev/null || die "$tool is missing; run deploy/install-deps.sh"
done
busybox=/bin/busybox
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static; install busybox-static"
driver=$build/tests/vm/wgf-vmtest
[ -x "$driver" ] || die "$driver is not built"

# --- The kernel: the version linux-image-amd64 depends on, kept in the cache. ---
mkdir -p "$cache"
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
if [ -z "$pkg" ]; then
	# No package lists (apt-get update never ran): use what the cache has, if anything.
	pkg=$(find "$cache" -maxdepth 1 -type d -name 'linux-image-*' ! -name '*.tmp' -printf '%f\n' | sort | tail -n1)
	[ -n "$pkg" ] || die "cannot tell which kernel linux-image-amd64 wants (apt-get update?)"
fi
kdir=$cache/$pkg
# Two test runs may share the cache: one fetches, the other waits for it.
exec 9>"$cache/.lock"
flock 9
if [ ! -d "$kdir" ]; then
	echo "vm: fetching $pkg" >&2
	rm -rf "$kdir.tmp" "$cache"/"$pkg"_*.deb
	(cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
		(cd "$cache" && apt-get download "$pkg") || die "apt-get download $pkg failed"
	dpkg-deb -x "$cache"/"$pkg"_*.deb "$kdir.tmp"
	rm -f "$cache"/"$pkg"_*.deb
	kver=$(basename "$(ls -d "$kdir.tmp"/lib/modules/*)")
	# The package ships no modules.dep: depmod makes it, inside the unpacked tree only.
	depmod -b "$kdir.tmp" "$kver"
	mv "$kdir.tmp" "$kdir"
fi
flock -u 9
kver=$(basename "$(ls -d "$kdir"/lib/modules/*)")
vmlinuz=$kdir/boot/vmlinuz-$kver
moddir=$kdir/lib/modules/$kver
[ -f "$vmlinuz" ] || die "$vmlinuz is missing"

# --- wireguard.ko and what it needs, dependencies first, as modules.dep says. ---
declare -A seen=()
order=()
add_module() {
	local mod=$1 dep
	[ -n "${seen[$mod]:-}" ] && return 0
	seen[$mod]=1
	local line
	line=$(grep -m1 "^$mod:" "$moddir/modules.dep") || die "$mod is not in modules.dep"
	for dep in ${line#*:}; do
		add_module "$dep"
	done
	order+=("$mod")
}
wgmod=$(grep -m1 -o '^[^:]*/wireguard\.ko[^:]*' "$moddir/modules.dep") ||
	die "no wireguard module in $pkg"
add_module "$wgmod"

# --- The initramfs. ---
rm -rf "$stage"
mkdir -p "$stage"/{bin,modules,proc,sys,dev,tmp,run,sbin,usr/bin,usr/sbin,etc}
cp "$busybox" "$stage/bin/busybox"
i=0
for mod in "${order[@]}"; do
	i=$((i + 1))
	cp "$moddir/$mod" "$stage/modules/$(printf '%02d' $i)-$(basename "$mod")"
done

# Copies a program and every shared library it links, at the paths the loader expects.
copy_program() {
	local src=$1 dst=$2 lib
	cp "$src" "$stage/$dst"
	for lib in $(ldd "$src" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }'); do
		[ -e "$stage$lib" ] || cp --parents -L "$lib" "$stage"
	done
}
copy_program "$(command -v wg)" bin/wg
copy_program "$driver" bin/wgf-vmtest
if [ -x "$build/agent/wgfleet-agent" ]; then
	copy_program "$build/agent/wgfleet-agent" bin/wgfleet-agent
fi
cp "$top/tests/vm/init" "$stage/init"
cp "${WGF_VM_SCENARIO:-$top/tests/vm/scenario.sh}" "$stage/scenario.sh"
chmod 755 "$stage/init"
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out/initramfs.gz"

# A PREEMPT_RT kernel makes every peer removal wait for RCU unless told otherwise.
append="console=ttyS0 panic=-1 loglevel=3 WGF_BENCH_PEERS=$bench WGF_BENCH_ROUNDS=$rounds"
append="$append WGF_BENCH_DAEMON=$daemon"
if grep -q '^CONFIG_PREEMPT_RT=y' "$kdir/boot/config-$kver"; then
	append="$append rcupdate.rcu_normal_after_boot=0 rcupdate.rcu_expedited=1"
fi

echo "vm: booting $kver with modules: ${order[*]##*/}" >&2
status=0
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -nic none \
	-m "$memory" -kernel "$vmlinuz" -initrd "$out/initramfs.gz" -append "$append" \
	-nographic -no-reboot </dev/null >"$out/console.log" 2>&1 || status=$?
cat "$out/console.log"
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
	echo "WGF-VM-TIMEOUT after ${timeout_s}s"
elif [ "$status" -ne 0 ]; then
	die "qemu exited with status $status"
fi
