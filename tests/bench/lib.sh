# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Shared helpers of the benchmark scripts (bash + awk; busybox-safe, so
# overhead.sh also runs inside the VM).
#   median            median of the numbers on stdin ("nan" when none)
#   pctl P            P-th percentile (nearest rank) of the numbers on stdin
#   wait_file_re SECS FILE REGEX   until FILE has a line matching REGEX
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTPUT=${OUTPUT:-build}
case $OUTPUT in /*) ;; *) OUTPUT=$ROOT/$OUTPUT ;; esac
VOLTRACE=${VOLTRACE:-$OUTPUT/voltrace}
BENCHBIN=${BENCHBIN:-$OUTPUT/tests/bench}
KATA_PEER=${KATA_PEER:-$OUTPUT/tests/kata-peer}

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

pctl() {
	cut -d' ' -f1 | sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
		print v[i] }'
}

wait_file_re() {
	local tries=$(($1 * 10))
	while [ "$tries" -gt 0 ]; do
		grep -qE "$3" "$2" 2>/dev/null && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

SHARED=/run/kata-containers/shared/containers
declare -a _bench_pids=()
declare -a _bench_dirs=()
# bench_cleanup: kill what was started here, remove temp dirs and pins.
bench_cleanup() {
	local p d
	for p in "${_bench_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${_bench_pids[@]}"; do wait "$p" 2>/dev/null; done
	# BENCH_KEEP keeps work directories for a look, never BPF pins.
	for d in "${_bench_dirs[@]}"; do
		case $d in
		/sys/fs/bpf/*) rm -rf "$d" ;;
		*) [ -n "${BENCH_KEEP:-}" ] || rm -rf "$d" ;;
		esac
	done
	return 0
}
bench_track_pid() { _bench_pids+=("$1"); }
bench_track_dir() { _bench_dirs+=("$1"); }

# bench_peer SOCK GUESTROOT ACKLOG: the Go peer, quiet, stamping acks.
bench_peer() {
	rm -f "$1"
	"$KATA_PEER" -socket "$1" -root "$2" -quiet -ack-log "$3" 2>>"${1%.sock}.log" &
	PEER_PID=$!
	bench_track_pid "$PEER_PID"
	local i
	for i in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.1; done
	echo "# peer did not come up" >&2
	return 1
}

# bench_config FILE NAME ALLOWED EXTRA_YAML [WATCH...]  WATCH = src|agent|dest
# Control socket, state and bpffs derive from FILE and NAME.
bench_config() {
	local f=$1 name=$2 allowed=$3 extra=$4
	shift 4
	{
		echo "mode: ${BENCH_MODE:-auto}"
		echo "control_socket: ${f%.yaml}.ctl"
		echo "metrics_address: \"${METRICS:-off}\""
		echo "state_file: ${f%.yaml}.state"
		echo "bpffs_dir: /sys/fs/bpf/vt-bench-$name-$$"
		echo "allowed_sources: [$allowed]"
		[ -n "$extra" ] && printf '%s\n' "$extra"
		if [ $# -eq 0 ]; then
			echo "watches: []"
		else
			echo "watches:"
			# awk, not a read loop: bash here-strings are temp files.
			printf '%s\n' "$@" | awk -F'|' '{
				printf "  - source: %s\n    agent: %s\n    dest: %s\n", $1, $2, $3 }'
		fi
	} >"$f"
	bench_track_dir "/sys/fs/bpf/vt-bench-$name-$$"
}

# bench_daemon CONFIG: start voltrace run, wait for its control socket;
# sets DAEMON_PID. Log in CONFIG's .log.
bench_daemon() {
	local ctl=${1%.yaml}.ctl i
	rm -f "$ctl"
	"$VOLTRACE" run --config "$1" --log-level "${BENCH_DAEMON_LOG_LEVEL:-warn}" >>"${1%.yaml}.log" 2>&1 &
	DAEMON_PID=$!
	bench_track_pid "$DAEMON_PID"
	for i in $(seq 1 600); do
		[ -S "$ctl" ] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# daemon did not start:" >&2
	tail -n 5 "${1%.yaml}.log" >&2
	return 1
}

# bench_stop PID: SIGTERM, SIGKILL after 5 s (the daemon's shutdown
# unwatches every directory one by one, which takes minutes at 10,000
# watches in tracepoint mode), reap.
bench_stop() {
	local i
	kill "$1" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# acked_count ACKLOG SUFFIX_REGEX: ..data acks whose path matches.
acked_data() { grep -cE "$2/\.\.data \.\." "$1" 2>/dev/null || true; }

# rss_mib PID: VmRSS in MiB.
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# bpf_kib PID: memlock of the BPF maps and programs PID holds open, each
# map/program counted once (fdinfo of bpf-map/bpf-prog fds).
bpf_kib() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		awk '/^(map_id|prog_id):/ { id = $1 $2 } /^memlock:/ { m = $2 }
		     END { if (id != "") print id, m }' "$f" 2>/dev/null
	done | sort -u | awk '{ s += $2 } END { printf "%.0f", s / 1024 }'
}
# status_field CTL NAME: a number from `voltrace ctl status --json`.
status_field() {
	"$VOLTRACE" ctl --socket "$1" status --json 2>/dev/null |
		tr ',{}' '\n\n\n' | awk -F: -v k="\"$2\"" '$1 ~ k { gsub(/[ "]/, "", $2); print $2; exit }'
}
# count_data_acks ACKLOG PREFIX: distinct volumes below PREFIX whose ..data
# was acknowledged (any target).
count_data_acks() {
	awk -v p="$2/" 'index($2, p) == 1 && $2 ~ /\/[.][.]data$/ { s[$2] = 1 } END { print length(s) }' "$1"
}
# watch_specs N SRC_PREFIX AGENT DEST_PREFIX: N "src|agent|dest" words,
# numbered from 1.
watch_specs() {
	awk -v n="$1" -v s="$2" -v a="$3" -v d="$4" 'BEGIN { for (i = 1; i <= n; i++) print s i "|" a "|" d i }'
}
