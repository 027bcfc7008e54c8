#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/latency.sh [UPDATES]   (default 1000)
#
# Propagation latency: kubelet-style commit (the rename over ..data, stamped
# by kw_bench) to the CopyFile of that ..data acknowledged at the Go peer
# (stamped by kata-peer -ack-log; both CLOCK_REALTIME). A ConfigMap of 10
# keys x 1 KiB on the node filesystem (guest side on tmpfs), UPDATES updates per volume. Three
# volumes are updated round-robin in the same run, to the same peer:
#   vt       voltrace run, default configuration (debounce_ms 5)
#   vt_nodeb voltrace run with debounce_ms: 0 (what the pipeline costs
#            without the debounce window)
#   inotify  inotify_baseline: Kata's runtime watcher, redone in C
# Updates go out every BENCH_LAT_INTERVAL_US (default 10 ms), so each
# volume sees one every ~30 ms: far faster than a kubelet, slow enough
# that the inotify baseline normally keeps up (when it does not, it loses
# its watch - Kata's real failure mode - and the rest count as missing).
# An update superseded before it was copied counts as done when a later
# update's ..data is acknowledged (the guest went past it).
# Output: LAT <side> <n> <p50 ms> <p99 ms> <max ms> <missing>; per-update
# "<ms> <seq>" lists in $OUTPUT/bench/latency.<side>.txt
set -uo pipefail
. "$(dirname "$0")/lib.sh"
n=${1:-1000}
interval_us=${BENCH_LAT_INTERVAL_US:-10000}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

tmp=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/vt-lat.XXXXXX")
bench_track_dir "$tmp"
[ -n "${BENCH_KEEP:-}" ] && echo "# work dir $tmp" >&2
src=$tmp/pods
sides=(vt vt_nodeb inotify)
for s in "${sides[@]}"; do mkdir -p "$src/$s"; done
# The volumes exist before anyone watches them, as at container start.
KW_SEQ_BASE=0 "$BENCHBIN/kw_bench" "$src/vt" "$src/vt_nodeb" "$src/inotify" >/dev/null || exit 1

acks=$tmp/acks
# The guest side on tmpfs, like the agent's /run in a real guest.
gtmp=$(mktemp -d "${BENCH_SHM_DIR:-/dev/shm}/vt-lat-guest.XXXXXX")
bench_track_dir "$gtmp"
bench_peer "$tmp/agent.sock" "$gtmp/guest" "$acks" || exit 1
agent=unix://$tmp/agent.sock
bench_config "$tmp/vt.yaml" lat-vt "$src" "" "$src/vt|$agent|$SHARED/bench/lat/vt"
bench_config "$tmp/vt_nodeb.yaml" lat-nodeb "$src" "debounce_ms: 0" \
	"$src/vt_nodeb|$agent|$SHARED/bench/lat/vt_nodeb"
bench_daemon "$tmp/vt.yaml" || exit 1
bench_daemon "$tmp/vt_nodeb.yaml" || exit 1
"$BENCHBIN/inotify_baseline" --agent "$agent" \
	"$src/inotify=$SHARED/bench/lat/inotify" >"$tmp/ino.out" 2>"$tmp/ino.log" &
bench_track_pid $!
wait_file_re 30 "$tmp/ino.out" '^ready' || { cat "$tmp/ino.log" >&2; exit 1; }
for s in "${sides[@]}"; do
	wait_file_re 30 "$acks" "/lat/$s/\.\.data " || { echo "# $s: initial copy not acknowledged" >&2; exit 1; }
done

KW_SEQ_BASE=100 "$BENCHBIN/kw_bench" --interval-us "$interval_us" --rounds "$n" \
	"$src/vt" "$src/vt_nodeb" "$src/inotify" >"$tmp/commits" || exit 1
# Wait (at most 15 s) for every side's final update to arrive.
for i in $(seq 1 150); do
	done_all=1
	for k in "${!sides[@]}"; do
		ts=$(awk -v k="$k" '$1 == k { t = $2 } END { print t }' "$tmp/commits")
		grep -q "/lat/${sides[$k]}/\.\.data $ts\$" "$acks" || done_all=0
	done
	[ "$done_all" = 1 ] && break
	sleep 0.1
done

for k in "${!sides[@]}"; do
	awk -v k="$k" -v side="${sides[$k]}" '
	function t13(s) { return substr(s, length(s) - 12) + 0 }
	function seqof(ts,  a, m) { m = split(ts, a, "."); return a[m] + 0 }
	FILENAME == ARGV[1] && $1 == k { n++; cseq[n] = seqof($2); ct[n] = t13($3) }
	FILENAME == ARGV[2] && $2 ~ ("/lat/" side "/[.][.]data$") {
		m++; aseq[m] = seqof($3); at[m] = t13($1)
	}
	END {
		for (i = 1; i <= n; i++) {
			best = -1
			for (j = 1; j <= m; j++)
				if (aseq[j] >= cseq[i] && (best < 0 || at[j] < best)) best = at[j]
			if (best < 0) { miss++; continue }
			d = best - ct[i]
			if (d < -5e12) d += 1e13
			print d / 1e6, cseq[i] > "/dev/stderr"
		}
		print miss + 0
	}' "$tmp/commits" "$acks" 2>"$tmp/lat.$k" >"$tmp/miss.$k"
	cp "$tmp/lat.$k" "$OUTPUT/bench/latency.${sides[$k]}.txt" 2>/dev/null
	echo "LAT ${sides[$k]} $(wc -l <"$tmp/lat.$k") $(pctl 50 <"$tmp/lat.$k") $(pctl 99 <"$tmp/lat.$k") $(pctl 100 <"$tmp/lat.$k") $(cat "$tmp/miss.$k")"
done
