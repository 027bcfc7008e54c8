#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Throughput of `voltrace copy` to the Go conformance peer over a unix
# socket (a benchmark, not a test):
#   - a 64 MiB mixed tree: 4 x 8 MiB, 16 x 1 MiB, 256 x 64 KiB files
#   - a 1,000 x 1 KiB tree
# Prints "BENCH copy_throughput_mbps X MB/s" and "BENCH small_files_per_s X
# files/s" (MB = 10^6 bytes). Trees live on /dev/shm when available so the
# numbers measure the copier and the transport rather than the disk.
# Env: OUTPUT (build dir), BENCH_WINDOW (voltrace copy --window, default 16).
set -eu
cd "$(dirname "$0")/../.."
OUTPUT=${OUTPUT:-build}
VOLTRACE=${VOLTRACE:-$OUTPUT/voltrace}
PEER=${KATA_PEER:-$OUTPUT/tests/kata-peer}
WINDOW=${BENCH_WINDOW:-16}
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$base/vt-bench.XXXXXX")
peer_pid=
cleanup() {
	[ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/mixed/big" "$tmp/mixed/mid" "$tmp/mixed/small" "$tmp/tiny/d"
for i in 1 2 3 4; do head -c 8388608 /dev/urandom >"$tmp/mixed/big/f$i"; done
for i in $(seq 1 16); do head -c 1048576 /dev/urandom >"$tmp/mixed/mid/f$i"; done
head -c 65536 /dev/urandom >"$tmp/seed"
for i in $(seq 1 256); do cp "$tmp/seed" "$tmp/mixed/small/f$i"; done
head -c 1024 /dev/urandom >"$tmp/seed"
for i in $(seq 1 1000); do cp "$tmp/seed" "$tmp/tiny/d/f$i"; done

"$PEER" -socket "$tmp/agent.sock" -root "$tmp/guest" -quiet 2>"$tmp/peer.log" &
peer_pid=$!
for _ in $(seq 1 100); do [ -S "$tmp/agent.sock" ] && break; sleep 0.1; done

# bash's clock in microseconds: no dependency on date(1) supporting %N.
now() { echo $((${EPOCHREALTIME/./} * 1000)); }
run() {	# run NAME SRC: prints elapsed ns
	local t0 t1
	t0=$(now)
	"$VOLTRACE" copy "$tmp/$2" --agent "unix://$tmp/agent.sock" \
		--dest "/run/kata-containers/shared/containers/bench/$1" \
		--window "$WINDOW" >"$tmp/$1.out"
	t1=$(now)
	echo $((t1 - t0))
}

bytes=$((4 * 8388608 + 16 * 1048576 + 256 * 65536))
ns=$(run mixed mixed)
echo "# $(cat "$tmp/mixed.out")"
awk -v b="$bytes" -v ns="$ns" 'BEGIN { printf "BENCH copy_throughput_mbps %.1f MB/s\n", b / (ns / 1e9) / 1e6 }'
ns=$(run tiny tiny)
echo "# $(cat "$tmp/tiny.out")"
awk -v ns="$ns" 'BEGIN { printf "BENCH small_files_per_s %.0f files/s\n", 1000 / (ns / 1e9) }'
