#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/vm/run.sh: the VM suite. For each kernel of the matrix
# (tests/vm/matrix, or $VM_MATRIX) fetch Debian's kernel (cached), boot it
# with qemu TCG on an initramfs holding the build (tests/vm/mkinitramfs.sh),
# let tests/vm/guest.sh run the suites per attach mode, and turn its serial
# console output into TAP lines:
#   ok - fentry 6.1.0-56-amd64: key deleted
# Exits non-zero on any failure, on a missing end marker (panic, hang,
# timeout) and when qemu cannot run at all: the VM suite is never skipped.
#
# Environment: VM_MATRIX (file), VM_JOBS (parallel VMs, default: CPUs + 1),
# VM_BUDGET (seconds for the whole stage, default 570: the stage must stay
# under 10 minutes; a VM that would overrun it is killed and fails),
# VM_TIMEOUT (seconds per VM, default 540), VM_SUITE_TIMEOUT (seconds per
# suite and mode inside the VM, default 240), VM_MEM (default 2G).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTPUT=${OUTPUT:-build}
vmdir=$OUTPUT/vm
matrix=${VM_MATRIX:-tests/vm/matrix}
# Guests wait on each other (daemon, peer, sleeps): one VM more than CPUs.
jobs=${VM_JOBS:-$(($(nproc) + 1))}
budget=${VM_BUDGET:-570}
vm_timeout=${VM_TIMEOUT:-540}
suite_timeout=${VM_SUITE_TIMEOUT:-240}
mem=${VM_MEM:-2G}
initrd=$vmdir/initramfs.cpio
t_start=$EPOCHREALTIME
npass=0
nfail=0

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# Whole seconds left of the stage budget.
time_left() { awk -v a="$t_start" -v b="$EPOCHREALTIME" -v n="$budget" 'BEGIN { printf "%d", n - (b - a) }'; }
fatal() {
	echo "not ok - vm: $*"
	exit 1
}

qemu=$(command -v qemu-system-x86_64) ||
	fatal "qemu-system-x86_64 not found: install qemu-system-x86 ('make deps'); the VM suite cannot be skipped"
"$qemu" -accel help 2>/dev/null | grep -qx tcg ||
	fatal "$qemu cannot run: no TCG accelerator ($("$qemu" -version 2>&1 | head -n 1))"
[ -r "$matrix" ] || fatal "kernel matrix $matrix missing"
mkdir -p "$vmdir"
rm -f "$vmdir"/*.serial "$vmdir"/*.times "$vmdir"/*.times.tmp

# ---- kernels and image ------------------------------------------------------
declare -a k_pkg k_dir k_modes k_suites
declare -A fetched
while read -r pkg modes suites _; do
	[[ -z $pkg || $pkg == \#* ]] && continue
	if [ -n "${fetched[$pkg]:-}" ]; then
		kdir=${fetched[$pkg]}
	elif kdir=$(tests/vm/kernel.sh "$pkg"); then
		fetched[$pkg]=$kdir
	else
		echo "not ok - vm $pkg: kernel not available (see message above)"
		nfail=$((nfail + 1))
		continue
	fi
	k_pkg+=("$pkg") k_dir+=("$kdir") k_modes+=("$modes") k_suites+=("$suites")
done <"$matrix"
[ "${#k_pkg[@]}" -gt 0 ] || fatal "no kernel to boot"

t0=$EPOCHREALTIME
tests/vm/mkinitramfs.sh "$initrd" || fatal "building the initramfs failed"
echo "# initramfs built in $(secs "$t0" "$EPOCHREALTIME") s"

# ---- boot -------------------------------------------------------------------
# A matrix line is one VM; one kernel may have several (modes split up).
vm_name() { echo "$(cat "${k_dir[$1]}/release")-${k_modes[$1]//,/-}"; }

# boot_one I: boot VM I, serial console into $vmdir/<name>.serial,
# host-side timestamps (start, VT-BEGIN seen, end) into <name>.times.
boot_one() {
	local i=$1 serial times start begin= line rc tmo
	serial=$vmdir/$(vm_name "$i").serial
	times=$vmdir/$(vm_name "$i").times
	start=$EPOCHREALTIME
	tmo=$(time_left)
	[ "$tmo" -gt "$vm_timeout" ] && tmo=$vm_timeout
	echo "timeout $tmo" >"$times.tmp"
	: >"$serial"
	timeout -k 10 "$tmo" "$qemu" -accel tcg -nographic -no-reboot \
		-m "$mem" -smp 1 -nic none \
		-kernel "${k_dir[$i]}/vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off vt.modes=${k_modes[$i]} vt.suites=${k_suites[$i]} vt.suite_timeout=$suite_timeout" \
		</dev/null 2>&1 |
		while IFS= read -r line; do
			line=${line%$'\r'}
			# Firmware escape sequences may precede a marker on its line.
			[[ $line == ?*VT-[A-Z]* ]] && line=VT-${line#*VT-}
			if [ -z "$begin" ] && [[ $line == VT-BEGIN* ]]; then
				begin=$EPOCHREALTIME
				echo "begin $begin" >>"$times.tmp"
			fi
			printf '%s\n' "$line" >>"$serial"
		done
	rc=${PIPESTATUS[0]}
	{ echo "start $start"; cat "$times.tmp" 2>/dev/null; echo "end $EPOCHREALTIME"; echo "rc $rc"; } >"$times"
	rm -f "$times.tmp"
}

for i in "${!k_pkg[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	rm -f "$vmdir/$(vm_name "$i")".{serial,times,times.tmp}
	if [ "$(time_left)" -lt 60 ]; then
		echo "# not booting $(vm_name "$i"): less than 60 s left of the ${budget}s stage budget"
		continue
	fi
	echo "# booting $(cat "${k_dir[$i]}/release") ($(cat "${k_dir[$i]}/version")): modes ${k_modes[$i]}, suites ${k_suites[$i]}"
	boot_one "$i" &
done
wait

# ---- results ----------------------------------------------------------------
result() { # result ok|not-ok TEXT
	echo "$1 - $2"
	if [ "$1" = ok ]; then npass=$((npass + 1)); else nfail=$((nfail + 1)); fi
}

report_one() {
	local i=$1 rel serial times kver start begin end rc tmo line
	local mode rest status name tag
	rel=$(cat "${k_dir[$i]}/release")
	serial=$vmdir/$(vm_name "$i").serial
	times=$vmdir/$(vm_name "$i").times
	if [ ! -f "$times" ]; then
		result "not ok" "vm $rel (${k_modes[$i]}): not booted: the ${budget}s stage budget was used up (raise VM_BUDGET or trim tests/vm/matrix)"
		return
	fi
	start=$(awk '$1 == "start" { print $2 }' "$times")
	begin=$(awk '$1 == "begin" { print $2 }' "$times")
	end=$(awk '$1 == "end" { print $2 }' "$times")
	rc=$(awk '$1 == "rc" { print $2 }' "$times" 2>/dev/null)
	tmo=$(awk '$1 == "timeout" { print $2 }' "$times" 2>/dev/null)
	kver=$(sed -n 's/^VT-BEGIN kernel=\([^ ]*\).*/\1/p' "$serial" | head -n 1)
	kver=${kver:-$rel}
	# Names of VM-wide checks carry the modes: a kernel may have several VMs.
	tag="vm $kver (${k_modes[$i]})"
	if [ -z "$begin" ]; then
		result "not ok" "$tag: the guest never started the suites (qemu exit $rc; serial log $serial)"
		tail -n 30 "$serial" | sed 's/^/# /'
		return
	fi
	echo "# $tag: boot to init $(secs "$start" "$begin") s"
	while IFS= read -r line; do
		case $line in
		VT-TAP\ *)
			rest=${line#VT-TAP }
			mode=${rest%% *}
			rest=${rest#* }
			if [[ $rest =~ ^(ok|not\ ok)(\ [0-9]+)?(\ -)?\ ?(.*)$ ]]; then
				status=${BASH_REMATCH[1]}
				name=${BASH_REMATCH[4]}
				# Suites may name the mode themselves; say it once.
				name=${name#"$mode: "}
				if [ "$mode" = vm ]; then
					result "$status" "$tag: $name"
				else
					result "$status" "$mode $kver: $name"
				fi
			fi
			;;
		VT-TIME\ *)
			set -- $line
			echo "# $kver: time $2 $3: $4 s"
			;;
		VT-LOG\ *) echo "# $kver: ${line#VT-LOG }" ;;
		esac
	done < <(sed -n '/^VT-BEGIN/,/^VT-END/p' "$serial")
	if ! grep -q '^VT-END' "$serial"; then
		result "not ok" "$tag: no VT-END marker (kernel panic, hang, or timeout after ${tmo}s; qemu exit $rc; serial log $serial)"
		tail -n 30 "$serial" | sed 's/^/# /'
	fi
	echo "# $tag: VM total $(secs "$start" "$end") s"
}

for i in "${!k_pkg[@]}"; do
	report_one "$i"
done
echo "# vm stage: $npass ok, $nfail not ok, $(secs "$t_start" "$EPOCHREALTIME") s wall"
[ "$nfail" -eq 0 ]
