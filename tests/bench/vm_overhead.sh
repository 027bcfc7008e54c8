#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/vm_overhead.sh [MODES]   (default fentry,kprobe)
#
# fentry and kprobe cannot attach on the development host, so their
# overhead ratios are measured inside the VM suite's Debian kernel (first
# package of tests/vm/matrix) under qemu TCG, with both sides of each
# ratio in the same VM. Reuses the VM harness as is: tests/vm/kernel.sh
# for the kernel, tests/vm/mkinitramfs.sh for the image; on top of that
# image a second cpio archive adds the bench programs and /bench-init
# (the kernel unpacks concatenated archives in order), booted with
# rdinit=/bench-init. Prints overhead.sh's ROW/RATIO lines.
# Env: BENCH_VM_SECS (per run, default 1), BENCH_VM_REPS (default 5),
# VM_MEM (default 2G), BENCH_VM_TIMEOUT (default 300 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTPUT=${OUTPUT:-build}
modes=${1:-fentry,kprobe}
dir=$OUTPUT/bench/vm
mkdir -p "$dir"

fail() { echo "VMFAIL $*"; exit 1; }

qemu=$(command -v qemu-system-x86_64) || fail "qemu-system-x86_64 not found (make deps)"
pkg=$(awk '!/^#/ && NF { print $1; exit }' tests/vm/matrix)
kdir=$(tests/vm/kernel.sh "$pkg" 2>"$dir/kernel.log") || fail "kernel $pkg: $(tail -n 1 "$dir/kernel.log")"
tests/vm/mkinitramfs.sh "$dir/base.cpio" 2>"$dir/mkinitramfs.log" ||
	fail "mkinitramfs: $(tail -n 1 "$dir/mkinitramfs.log")"

extra=$(mktemp -d "$dir/extra.XXXXXX")
trap 'rm -rf "$extra"' EXIT
mkdir -p "$extra/src/build/tests/bench"
cp "$OUTPUT"/tests/bench/opsloop "$OUTPUT"/tests/bench/fswatch_load "$extra/src/build/tests/bench/"
install -m 0755 tests/bench/vm_init "$extra/bench-init"
progs=("$extra"/src/build/tests/bench/*)
# BENCH_VM_PROFILE=MODE: a perf profile instead of the ratios.
if [ -n "${BENCH_VM_PROFILE:-}" ]; then
	mkdir -p "$extra/usr/bin"
	cp -L "$(command -v perf)" "$extra/usr/bin/perf"
	progs+=("$extra/usr/bin/perf")
fi
# The bench programs need no library the image lacks (voltrace's set).
for l in $(ldd "${progs[@]}" | awk '$3 ~ /^\// { print $3 }' | sort -u); do
	mkdir -p "$extra$(dirname "$l")"
	cp -L "$l" "$extra$l"
done
(cd "$extra" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$dir/extra.cpio"
cat "$dir/base.cpio" "$dir/extra.cpio" >"$dir/initramfs.cpio"

timeout -k 10 "${BENCH_VM_TIMEOUT:-300}" "$qemu" -accel tcg -nographic -no-reboot \
	-m "${VM_MEM:-2G}" -smp 1 -nic none \
	-kernel "$kdir/vmlinuz" -initrd "$dir/initramfs.cpio" \
	-append "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off rdinit=/bench-init vt.bench_modes=$modes vt.bench_secs=${BENCH_VM_SECS:-1} vt.bench_reps=${BENCH_VM_REPS:-5}${BENCH_VM_PROFILE:+ vt.bench_profile=$BENCH_VM_PROFILE}" \
	</dev/null 2>&1 | tr -d '\r' >"$dir/serial.log"
grep -q '^VT-BENCH-END' "$dir/serial.log" ||
	fail "no VT-BENCH-END on the console (panic, hang or timeout); see $dir/serial.log"
echo "# VM kernel $(cat "$kdir/release") ($(cat "$kdir/version")), qemu TCG, 1 vCPU, tmpfs"
sed -n 's/^.*\(\(ROW\|RATIO\|PROF\) .*\)$/\1/p' "$dir/serial.log"
