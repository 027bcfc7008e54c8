#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Runs inside the VM (started by tests/vm/init) from the repository copy in
# /src. Kernel command line parameters:
#   vt.modes=fentry,kprobe,tracepoint   attach modes to test
#   vt.suites=trace,daemon_core         tests/integration/test_<suite>.sh
#   vt.suite_timeout=SECONDS            per suite and mode
# Output protocol on the console (parsed by tests/vm/run.sh):
#   VT-TAP <mode|vm> ok - <name>     / VT-TAP <mode|vm> not ok - <name>
#   VT-TIME <mode> <suite> <seconds>
#   VT-LOG <text>                    diagnostics (failed suites' log tails)
set -u
cd /src
export OUTPUT=build VT_VM=1 VT_KERNEL=$(uname -r)

modes=fentry,kprobe,tracepoint
suites=trace,daemon_core
suite_timeout=240
for w in $(cat /proc/cmdline); do
	case $w in
	vt.modes=*) modes=${w#*=} ;;
	vt.suites=*) suites=${w#*=} ;;
	vt.suite_timeout=*) suite_timeout=${w#*=} ;;
	esac
done
IFS=, read -r -a modes <<<"$modes"
IFS=, read -r -a suites <<<"$suites"

tap() { echo "VT-TAP $1 $2"; }
check() { # check MODE NAME COMMAND...
	local mode=$1 name=$2; shift 2
	if "$@" >/tmp/check.log 2>&1; then
		tap "$mode" "ok - $name"
	else
		tap "$mode" "not ok - $name"
		sed 's/^/VT-LOG /' /tmp/check.log | tail -n 20
	fi
}
log_tail() { tail -n "${2:-60}" "$1" | sed 's/^/VT-LOG /'; }

# The facts every mode relies on.
check vm "BTF at /sys/kernel/btf/vmlinux" test -s /sys/kernel/btf/vmlinux
check vm "tracefs mounted" mountpoint -q /sys/kernel/tracing
check vm "bpffs mounted" mountpoint -q /sys/fs/bpf
check vm "loopback up" sh -c 'ip -o addr show dev lo | grep -q "inet 127.0.0.1/"'

# voltrace probe must find each requested mode usable on this kernel.
probe_log=/tmp/probe.log
t0=$EPOCHREALTIME
build/voltrace probe >"$probe_log" 2>&1
probe_rc=$?
echo "VT-TIME vm probe $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
sed 's/^/VT-LOG probe: /' "$probe_log"
check vm "BPF ring buffer supported (voltrace probe)" grep -qx "ringbuf: yes" "$probe_log"
for m in "${modes[@]}"; do
	if [ "$probe_rc" -eq 0 ] && grep -qx "$m: ok" "$probe_log"; then
		tap "$m" "ok - voltrace probe: $m usable"
	else
		tap "$m" "not ok - voltrace probe: $m usable (exit $probe_rc)"
	fi
done

# run_suite MODE SUITE: one integration script in one mode; its TAP lines
# are passed through, a crash or a silent script counts as a failure.
run_suite() {
	local mode=$1 suite=$2 script=tests/integration/test_$2.sh
	local log=/tmp/suite-$1-$2.log t0 rc ok nok left
	if [ ! -f "$script" ]; then
		tap "$mode" "not ok - $script missing"
		return
	fi
	t0=$EPOCHREALTIME
	VT_TEST_MODE=$mode timeout -k 10 "$suite_timeout" bash "$script" >"$log" 2>&1
	rc=$?
	echo "VT-TIME $mode $suite $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
	ok=$(grep -cE '^ok( |$)' "$log")
	nok=$(grep -cE '^not ok( |$)' "$log")
	grep -E '^(ok|not ok)( |$)' "$log" | while IFS= read -r line; do tap "$mode" "$line"; done
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		tap "$mode" "not ok - test_$suite: timed out after ${suite_timeout}s"
		nok=$((nok + 1))
	elif [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
		tap "$mode" "not ok - test_$suite: exited with status $rc"
		nok=1
	elif [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ]; then
		tap "$mode" "not ok - test_$suite: ran no test"
		nok=1
	fi
	[ "$nok" -gt 0 ] && log_tail "$log" 80
	# A suite must clean up after itself; do it here so one failure does
	# not cascade into the next mode, and say so.
	left=$(pgrep -x voltrace; pgrep -x kata-peer)
	left=$(echo $left)
	if [ -n "$left" ]; then
		echo "VT-LOG $mode test_$suite left processes running: $left (killed)"
		kill -9 $left 2>/dev/null
		sleep 0.2
	fi
	rm -rf /sys/fs/bpf/voltrace /run/voltrace
}

for m in "${modes[@]}"; do
	for s in "${suites[@]}"; do
		run_suite "$m" "$s"
	done
done

# BPF programs must not make the kernel complain.
if dmesg | grep -E 'BUG:|WARNING:|Oops|Call Trace|general protection' >/tmp/dmesg.bad; then
	tap vm "not ok - kernel log free of BUG/WARNING/Oops"
	dmesg | tail -n 60 | sed 's/^/VT-LOG dmesg: /'
else
	tap vm "ok - kernel log free of BUG/WARNING/Oops"
fi
