#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/burst.sh [VOLUMES]   (default 1000)
#
# Burst convergence: VOLUMES watched volumes (10 keys x 1 KiB, tmpfs), all
# copied once; then kw_bench updates every volume once, back to back, as
# fast as it can. Converged = every volume's new ..data acknowledged at
# the peer; burst_converge_s runs from the first commit to the last such
# ack. Stale = volumes whose guest ..data or payload differs from the
# host after convergence (or after 60 s). Dropped events and reconciles
# are the daemon's own counters (ctl status) over the burst. Done twice:
# the default ring buffer, then a 4 KiB one that must drop events and
# recover through reconciles.
# Output: BURST <run> <converge s> <stale> <dropped> <reconciles> <acked>
set -uo pipefail
. "$(dirname "$0")/lib.sh"
nv=${1:-1000}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

tmp=$(mktemp -d "${BENCH_SHM_DIR:-/dev/shm}/vt-burst.XXXXXX")
bench_track_dir "$tmp"
src=$tmp/pods
mkdir -p "$src"
(cd "$src" && seq -f "v%g" 1 "$nv" | xargs mkdir)
seq -f "$src/v%g" 1 "$nv" | KW_SEQ_BASE=0 xargs "$BENCHBIN/kw_bench" >/dev/null || exit 1
bench_peer "$tmp/agent.sock" "$tmp/guest" "$tmp/acks" || exit 1
agent=unix://$tmp/agent.sock

# acked_new COMMITS PREFIX: volumes whose ..data ack names their new ..ts.
acked_new() {
	awk -v p="$2/v" 'FILENAME == ARGV[1] { want[p ($1 + 1) "/..data " $2] = 1; next }
		($2 " " $3) in want { got[$2] = 1 }
		END { print length(got) }' "$1" "$tmp/acks"
}

run() {	# run NAME SEQ_BASE EXTRA_YAML
	local name=$1 base=$2 extra=$3 cfg=$tmp/$1.yaml ctl=$tmp/$1.ctl
	local dest=$SHARED/bench/$1 i d0 r0 d1 r1 conv stale=0 v host
	bench_config "$cfg" "burst-$name" "$src" "$extra" $(watch_specs "$nv" "$src/v" "$agent" "$dest/v")
	bench_daemon "$cfg" || return 1
	for i in $(seq 1 600); do
		[ "$(count_data_acks "$tmp/acks" "$dest")" -ge "$nv" ] && break
		sleep 0.1
	done
	sleep 0.5
	d0=$(status_field "$ctl" events_dropped)
	r0=$(status_field "$ctl" reconciles)
	seq -f "$src/v%g" 1 "$nv" | KW_SEQ_BASE=$base xargs "$BENCHBIN/kw_bench" >"$tmp/$name.commits" || return 1
	for i in $(seq 1 300); do
		[ "$(acked_new "$tmp/$name.commits" "$dest")" -ge "$nv" ] && break
		sleep 0.2
	done
	sleep 0.5
	d1=$(status_field "$ctl" events_dropped)
	r1=$(status_field "$ctl" reconciles)
	conv=$(awk -v p="$dest/v" '
		function t13(s) { return substr(s, length(s) - 12) + 0 }
		FILENAME == ARGV[1] { if (!first) first = t13($3); want[p ($1 + 1) "/..data " $2] = 1; next }
		($2 " " $3) in want { t = t13($1); if (t > last) last = t }
		END { d = last - first; if (d < -5e12) d += 1e13; printf "%.3f", d / 1e9 }' \
		"$tmp/$name.commits" "$tmp/acks")
	for ((v = 1; v <= nv; v++)); do
		host=$(readlink "$src/v$v/..data")
		if [ "$(readlink "$tmp/guest$dest/v$v/..data")" != "$host" ] ||
			! diff -r "$src/v$v/$host" "$tmp/guest$dest/v$v/$host" >/dev/null 2>&1; then
			stale=$((stale + 1))
		fi
	done
	echo "BURST $name $conv $stale $((d1 - d0)) $((r1 - r0)) $(acked_new "$tmp/$name.commits" "$dest")"
	bench_stop "$DAEMON_PID"
}

run default 100000 ""
run small_rb 200000 "ring_buffer_size: 4096"
