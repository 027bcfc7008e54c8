#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/memory.sh [COUNTS]   (default "0 1000 10000")
#
# Daemon memory at N watches: one voltrace run per N, configured with N
# volumes (1 key x 1 KiB each, on tmpfs: the host disk is slow and memory
# does not depend on it) to one Go peer; measured
# once every volume's ..data was acknowledged and the daemon is idle:
# VmRSS from /proc/<pid>/status, BPF memory as the memlock of every map
# and program the daemon holds (/proc/<pid>/fdinfo, each id once).
# Output: MEM <watches> <rss MiB> <bpf KiB> <seconds to converge>
set -uo pipefail
. "$(dirname "$0")/lib.sh"
counts=${1:-0 1000 10000}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

tmp=$(mktemp -d "${BENCH_SHM_DIR:-/dev/shm}/vt-mem.XXXXXX")
bench_track_dir "$tmp"
src=$tmp/pods
max=0
for c in $counts; do [ "$c" -gt "$max" ] && max=$c; done
if [ "$max" -gt 0 ]; then
	mkdir -p "$src"
	(cd "$src" && seq -f "v%g" 1 "$max" | xargs mkdir)
	seq -f "$src/v%g" 1 "$max" | xargs "$BENCHBIN/kw_bench" --keys 1 >/dev/null || exit 1
else
	mkdir -p "$src"
fi
bench_peer "$tmp/agent.sock" "$tmp/guest" "$tmp/acks" || exit 1
agent=unix://$tmp/agent.sock

for c in $counts; do
	cfg=$tmp/mem$c.yaml
	bench_config "$cfg" "mem$c" "$src" "" $(watch_specs "$c" "$src/v" "$agent" "$SHARED/bench/mem$c/v")
	t0=$EPOCHREALTIME
	bench_daemon "$cfg" || exit 1
	tries=0
	while [ "$(count_data_acks "$tmp/acks" "$SHARED/bench/mem$c")" -lt "$c" ]; do
		tries=$((tries + 1))
		[ "$tries" -gt 1200 ] && { echo "# mem $c: not converged after 120 s" >&2; break; }
		sleep 0.1
	done
	conv=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	sleep 1
	echo "MEM $c $(rss_mib "$DAEMON_PID") $(bpf_kib "$DAEMON_PID") $conv"
	bench_stop "$DAEMON_PID"
done
