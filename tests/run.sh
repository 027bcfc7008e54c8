#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# voltrace test runner: tests/run.sh [unit|integration|fuzz|vm|all]
#
# Every test program prints TAP-style result lines ("ok - name" or
# "not ok - name"); cmocka binaries do so with CMOCKA_MESSAGE_OUTPUT=TAP.
# A program that exits non-zero without printing a "not ok" line counts as
# one failure, so a crash can never pass silently. The last line is
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
OUTPUT=${OUTPUT:-build}
export OUTPUT
stage=${1:-all}
passed=0
failed=0
logdir=$OUTPUT/test-logs
mkdir -p "$logdir"

run_one() {
	local name=$1; shift
	local log="$logdir/$(echo "$name" | tr '/ ' '__').log"
	local rc ok nok
	echo "# running $name"
	CMOCKA_MESSAGE_OUTPUT=TAP "$@" >"$log" 2>&1
	rc=$?
	ok=$(grep -cE '^ok( |$)' "$log")
	nok=$(grep -cE '^not ok( |$)' "$log")
	grep -E '^(ok|not ok)( |$)' "$log" | sed "s|^|$name: |"
	if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
		echo "$name: not ok - exited with status $rc (log: $log)"
		nok=1
	fi
	if [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ]; then
		echo "$name: not ok - ran no test (log: $log)"
		nok=1
	fi
	if [ "$nok" -gt 0 ]; then
		echo "---- last lines of $log"
		tail -n 40 "$log"
		echo "----"
	fi
	passed=$((passed + ok))
	failed=$((failed + nok))
}

run_unit() {
	for t in "$OUTPUT"/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "unit/$(basename "$t")" "$t"
	done
}

run_integration() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "integration tests load BPF programs: run as root"
		failed=$((failed + 1))
		return
	fi
	for t in tests/integration/test_*.sh; do
		[ -f "$t" ] || continue
		run_one "integration/$(basename "$t" .sh)" bash "$t"
	done
}

run_fuzz() {
	for f in "$OUTPUT"/tests/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		run_one "fuzz/$(basename "$f")" tests/fuzz/run_fuzzer.sh "$f"
	done
}

run_vm() {
	run_one "vm" make --no-print-directory test-vm-run
}

case "$stage" in
unit) run_unit ;;
integration) run_integration ;;
fuzz) run_fuzz ;;
vm) run_vm ;;
all)
	run_unit
	run_integration
	run_fuzz
	[ -f tests/vm/vm.mk ] && run_vm
	;;
*) echo "usage: $0 [unit|integration|fuzz|vm|all]" >&2; exit 2 ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
