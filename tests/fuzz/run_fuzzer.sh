#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# tests/fuzz/run_fuzzer.sh BINARY: run one libFuzzer target for a bounded
# time and print a TAP line. The budget (FUZZ_BUDGET_S, default 30 s) is
# shared by all build/tests/fuzz/fuzz_* targets next to BINARY. The corpus
# persists in <dir>/corpus/<name>, seeded with a few valid frames; crash
# inputs are kept in <dir>/artifacts/.
set -u
bin=$1
name=$(basename "$bin")
dir=$(cd "$(dirname "$bin")" && pwd)
budget=${FUZZ_BUDGET_S:-30}
count=$(ls "$dir"/fuzz_* 2>/dev/null | wc -l)
[ "$count" -ge 1 ] || count=1
secs=$((budget / count))
[ "$secs" -ge 1 ] || secs=1
corpus=$dir/corpus/$name
artifacts=$dir/artifacts
mkdir -p "$corpus" "$artifacts"
# Seeds: an empty OK response on stream 1, a response with a status, a
# CopyFile request.
printf '\x00\x00\x00\x00\x00\x00\x00\x01\x02\x00' >"$corpus/seed-empty-response"
printf '\x00\x00\x00\x06\x00\x00\x00\x01\x02\x00\x0a\x04\x08\x05\x12\x00' >"$corpus/seed-status"
printf '\x00\x00\x00\x26\x00\x00\x00\x01\x01\x00\x0a\x11grpc.AgentService\x12\x08CopyFile\x1a\x05\x0a\x03/ab\x20\x01' >"$corpus/seed-request"
log=$(mktemp)
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
	-print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
	"$corpus" >"$log" 2>&1
rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
	echo "ok - $name: $execs executions in ${secs}s, no crash"
else
	echo "not ok - $name: exit $rc after ${execs:-?} executions"
	grep -E 'ERROR|SUMMARY|==[0-9]+==|Test unit written' "$log" | head -n 20 | sed 's/^/# /'
fi
rm -f "$log"
[ "$rc" -eq 0 ]
