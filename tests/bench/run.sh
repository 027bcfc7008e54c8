#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/run.sh: everything `make bench` measures (issue 6). Prints the
# progress as "# ..." lines, then a table, then - last - one line per
# figure: "BENCH <name> <value> <unit>" ("nan" when it could not be
# measured; the table says why).
#
# Env: BENCH_ONLY="copy overhead vm latency burst memory" (subset),
# BENCH_REPS (overhead repetitions, default 7), BENCH_SECS (seconds per
# overhead run, default 1), BENCH_COPY_RUNS (default 5),
# BENCH_LAT_UPDATES (default 1000), BENCH_VM=0 (skip the VM).
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
only=${BENCH_ONLY:-copy overhead vm latency burst memory}
reps=${BENCH_REPS:-7}
secs=${BENCH_SECS:-1}
out=$OUTPUT/bench
mkdir -p "$out"
t_start=$EPOCHREALTIME

want() { [[ " $only " == *" $1 "* ]]; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }
# field FILE TAG KEY_FIELD KEY VALUE_FIELD: a value from "TAG ..." lines.
field() {
	awk -v tag="$2" -v kf="$3" -v k="$4" -v vf="$5" '$1 == tag && $kf == k { v = $vf } END { print (v == "" ? "nan" : v) }' "$1" 2>/dev/null
}

declare -A val unit target note
order=()
# fig NAME VALUE UNIT TARGET NOTE   (TARGET like ">=0.90", "<=1", "=0", "")
fig() {
	order+=("$1")
	val[$1]=${2:-nan}
	unit[$1]=$3
	target[$1]=$4
	note[$1]=$5
}
verdict() {
	local v=${val[$1]} t=${target[$1]}
	[ -z "$t" ] && { echo "-"; return; }
	[ "$v" = nan ] && { echo "n/a"; return; }
	awk -v v="$v" -v t="$t" 'BEGIN {
		v += 0; op = substr(t, 1, 2); x = substr(t, 3) + 0
		if (op == ">=") ok = v >= x; else if (op == "<=") ok = v <= x
		else { x = substr(t, 2) + 0; ok = v == x }
		print ok ? "ok" : "MISS" }'
}

echo "# voltrace benchmarks on $(uname -r), $(nproc) CPUs, $(awk '/^model name/ { $1 = $2 = $3 = ""; print; exit }' /proc/cpuinfo | sed 's/^ *//')"
# Other work on the machine shows in the tails: say how busy it was.
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 5. copy throughput (tests/bench/copy_bench.sh, median of runs) -------
if want copy; then
	t0=$EPOCHREALTIME
	: >"$out/copy.out"
	for i in $(seq 1 "${BENCH_COPY_RUNS:-5}"); do
		OUTPUT=$OUTPUT tests/bench/copy_bench.sh >>"$out/copy.out" 2>&1
	done
	echo "# copy: ${BENCH_COPY_RUNS:-5} runs of copy_bench.sh, $(elapsed "$t0") s"
fi
cm=$(awk '$1 == "BENCH" && $2 == "copy_throughput_mbps" { print $3 }' "$out/copy.out" 2>/dev/null | median)
cs=$(awk '$1 == "BENCH" && $2 == "small_files_per_s" { print $3 }' "$out/copy.out" 2>/dev/null | median)

# ---- 1. hot-path overhead on the host -------------------------------------
if want overhead; then
	t0=$EPOCHREALTIME
	tests/bench/overhead.sh --secs "$secs" --reps "$reps" \
		--fs tmpfs=/dev/shm --fs ext4="${BENCH_DISK_DIR:-/var/tmp}" \
		tracepoint inotify fanotify >"$out/overhead.out" 2>&1
	echo "# overhead (host): $(elapsed "$t0") s"
fi
# ---- 1. fentry / kprobe inside the VM -------------------------------------
if want vm; then
	if [ "${BENCH_VM:-1}" = 0 ]; then
		echo "VMFAIL skipped (BENCH_VM=0)" >"$out/vm.out"
	else
		t0=$EPOCHREALTIME
		BENCH_VM_REPS=$reps BENCH_VM_SECS=$secs tests/bench/vm_overhead.sh fentry,kprobe \
			>"$out/vm.out" 2>&1
		echo "# overhead (VM): $(elapsed "$t0") s"
	fi
fi
# ---- 2. latency --------------------------------------------------------------
if want latency; then
	t0=$EPOCHREALTIME
	tests/bench/latency.sh "${BENCH_LAT_UPDATES:-1000}" >"$out/latency.out" 2>&1
	echo "# latency: $(elapsed "$t0") s"
fi
# ---- 3. burst ----------------------------------------------------------------
if want burst; then
	t0=$EPOCHREALTIME
	tests/bench/burst.sh 1000 >"$out/burst.out" 2>&1
	echo "# burst: $(elapsed "$t0") s"
fi
# ---- 4. memory ---------------------------------------------------------------
if want memory; then
	t0=$EPOCHREALTIME
	tests/bench/memory.sh "0 1000 10000" >"$out/memory.out" 2>&1
	# The same with the mode named: auto's refused attempts (fentry and
	# kprobe on hosts that refuse them) leave freed libbpf heap resident.
	BENCH_MODE=tracepoint tests/bench/memory.sh "1000" >"$out/memory_tp.out" 2>&1
	echo "# memory: $(elapsed "$t0") s"
fi

ov=$out/overhead.out vm=$out/vm.out lat=$out/latency.out bu=$out/burst.out me=$out/memory.out
why() { # why FILE TAG COND: the note of a RATIO line
	awk -v c="$2" '$1 == "RATIO" && $2 == c { $1 = $2 = $3 = ""; sub(/^ +/, ""); print }' "$1" 2>/dev/null
}
vmwhy=$(grep -m1 '^VMFAIL' "$vm" 2>/dev/null | cut -d' ' -f2-)
vmk=$(sed -n 's/^# VM kernel \([^ ]*\).*/\1/p' "$vm" 2>/dev/null)

fig overhead_ratio_tracepoint "$(field "$ov" RATIO 2 tracepoint 3)" ratio ">=0.90" "host $(uname -r), 10,000 watched dirs; $(why "$ov" tracepoint)"
fig overhead_ratio_fentry "$(field "$vm" RATIO 2 fentry 3)" ratio ">=0.97" "${vmwhy:-VM $vmk TCG, tmpfs; $(why "$vm" fentry)}"
fig overhead_ratio_kprobe "$(field "$vm" RATIO 2 kprobe 3)" ratio "" "${vmwhy:-VM $vmk TCG, tmpfs; $(why "$vm" kprobe)}"
fig overhead_ratio_inotify_10k "$(field "$ov" RATIO 2 inotify 3)" ratio "" "peer: inotify on the same 10,000 dirs; $(why "$ov" inotify)"
fig overhead_ratio_fanotify "$(field "$ov" RATIO 2 fanotify 3)" ratio "" "peer: FAN_MARK_FILESYSTEM, events read; $(why "$ov" fanotify)"
lb="1000 updates, 10 x 1 KiB, ext4; p50/p99/max"
fig latency_p50_ms "$(field "$lat" LAT 2 vt 4)" ms "<=1" "default config (debounce_ms 5); baseline p50 $(field "$lat" LAT 2 inotify 4) ms"
fig latency_p99_ms "$(field "$lat" LAT 2 vt 5)" ms "<=5" "default config"
fig latency_max_ms "$(field "$lat" LAT 2 vt 6)" ms "" "default config; $(field "$lat" LAT 2 vt 7) updates never acked"
fig latency_inotify_baseline_p50_ms "$(field "$lat" LAT 2 inotify 4)" ms "" "Kata's watcher (inotify on ..<ts>, copy on its removal), same peer, same run"
fig latency_inotify_baseline_p99_ms "$(field "$lat" LAT 2 inotify 5)" ms "" "max $(field "$lat" LAT 2 inotify 6) ms; $(field "$lat" LAT 2 inotify 7) updates never acked (watch lost)"
fig latency_nodebounce_p50_ms "$(field "$lat" LAT 2 vt_nodeb 4)" ms "" "extra: voltrace with debounce_ms 0, same run; p99 $(field "$lat" LAT 2 vt_nodeb 5), max $(field "$lat" LAT 2 vt_nodeb 6) ms"
fig burst_converge_s "$(field "$bu" BURST 2 default 3)" s "" "1000 volumes x 10 x 1 KiB on tmpfs, first commit to last ..data ack"
fig burst_stale_volumes "$(field "$bu" BURST 2 default 4)" volumes "=0" ""
fig burst_dropped_events "$(field "$bu" BURST 2 default 5)" events "" "ring buffer 256 KiB"
fig burst_reconciles "$(field "$bu" BURST 2 default 6)" reconciles "" ""
fig burst_small_rb_stale_volumes "$(field "$bu" BURST 2 small_rb 4)" volumes "=0" "4 KiB ring buffer: dropped $(field "$bu" BURST 2 small_rb 5) events, $(field "$bu" BURST 2 small_rb 6) reconciles, converged in $(field "$bu" BURST 2 small_rb 3) s"
fig rss_mib_0_watches "$(field "$me" MEM 2 0 3)" MiB "" "VmRSS"
fig rss_mib_1000_watches "$(field "$me" MEM 2 1000 3)" MiB "<=16" "VmRSS, converged and idle"
fig rss_mib_1000_watches_mode_tracepoint "$(field "$out/memory_tp.out" MEM 2 1000 3)" MiB "" "extra: mode: tracepoint instead of auto (no refused attempts)"
fig rss_mib_10000_watches "$(field "$me" MEM 2 10000 3)" MiB "" "VmRSS; BPF at 0 / 1000 watches: $(field "$me" MEM 2 0 4) / $(field "$me" MEM 2 1000 4) KiB"
fig bpf_kib_10000_watches "$(field "$me" MEM 2 10000 4)" KiB "" "memlock of the daemon's maps + programs (fdinfo)"
fig copy_throughput_mbps "$cm" MB/s "" "voltrace copy, 64 MiB mixed tree, median of ${BENCH_COPY_RUNS:-5}"
fig small_files_per_s "$cs" files/s "" "voltrace copy, 1000 x 1 KiB, median of ${BENCH_COPY_RUNS:-5}"

echo
echo "## Overhead detail (loops/s of create+rename+unlink; ratio = paired median vs no watcher)"
printf '%-10s %-12s %12s %8s\n' where attached loops/s ratio
awk '$1 == "ROW" { printf "%-10s %-12s %12.0f %8s\n", "host/" $2, $3, $4, $5 }' "$ov" 2>/dev/null
awk '$1 == "ROW" { printf "%-10s %-12s %12.0f %8s\n", "vm/" $2, $3, $4, $5 }' "$vm" 2>/dev/null
echo
echo "## Figures"
printf '%-38s %10s %-10s %-7s %-5s %s\n' figure value unit target ok note
for n in "${order[@]}"; do
	printf '%-38s %10s %-10s %-7s %-5s %s\n' "$n" "${val[$n]}" "${unit[$n]}" \
		"${target[$n]:--}" "$(verdict "$n")" "${note[$n]}"
done
echo
echo "# total $(elapsed "$t_start") s; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${order[@]}"; do
	case $n in latency_nodebounce_p50_ms | rss_mib_1000_watches_mode_tracepoint) continue ;; esac
	echo "BENCH $n ${val[$n]} ${unit[$n]}"
done
