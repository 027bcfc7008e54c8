#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/overhead.sh [--secs S] [--reps N] [--dirs N] --fs NAME=DIR... COND...
#
# Hot-path overhead on unrelated work: loops/s of opsloop (create, rename,
# unlink) in a directory nobody watches, with nothing attached ("base")
# and with each COND attached:
#   tracepoint|fentry|kprobe  voltrace trace --mode M watching N directories
#   inotify                   one inotify instance watching the same N dirs
#   fanotify                  a fanotify filesystem mark on DIR's filesystem
# Every repetition runs base and every COND once per filesystem, in an
# order rotated from one repetition to the next; a COND's ratio is the
# median over repetitions of (COND loops/s / base loops/s of the same
# repetition), so slow drift cancels. The N watched directories live
# under the first filesystem's DIR.
# Output (parsed by run.sh and by the VM wrapper):
#   ROW <fs> <cond> <median loops/s> <ratio>
#   RATIO <cond> <worst ratio over the filesystems>|nan <note>
set -uo pipefail
. "$(dirname "$0")/lib.sh"

secs=1
reps=5
ndirs=10000
declare -a fs_names fs_dirs conds
while [ $# -gt 0 ]; do
	case $1 in
	--secs) secs=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--dirs) ndirs=$2; shift 2 ;;
	--fs) fs_names+=("${2%%=*}"); fs_dirs+=("${2#*=}"); shift 2 ;;
	*) conds+=("$1"); shift ;;
	esac
done
[ "${#fs_names[@]}" -gt 0 ] && [ "${#conds[@]}" -gt 0 ] || {
	echo "usage: $0 [--secs S] [--reps N] [--dirs N] --fs NAME=DIR... COND..." >&2
	exit 2
}

work=$(mktemp -d "${fs_dirs[0]}/vt-overhead.XXXXXX")
holder=
bpffs=/sys/fs/bpf/vt-bench-$$
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
	rm -rf "$work" "$bpffs"
	for d in "${fs_dirs[@]}"; do rm -rf "$d/vt-loop.$$"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The watched directories: N siblings the loop never touches.
mkdir -p "$work/watched"
# awk, not seq -f: the VM image has busybox seq.
awk -v n="$ndirs" -v p="$work/watched/d" 'BEGIN { for (i = 1; i <= n; i++) print p i }' >"$work/dirs.list"
xargs mkdir <"$work/dirs.list"
for d in "${fs_dirs[@]}"; do mkdir -p "$d/vt-loop.$$"; done

declare -A refused=()
# attach COND: start what COND needs and wait until it is in place.
attach() {
	local c=$1 log=$work/holder.log
	: >"$log"
	case $c in
	base) return 0 ;;
	tracepoint | fentry | kprobe)
		"$VOLTRACE" trace --mode "$c" --bpffs "$bpffs" \
			--dirs-from "$work/dirs.list" >/dev/null 2>"$log" &
		holder=$!
		wait_file_re 120 "$log" 'msg=tracing|cannot attach' ;;
	inotify)
		"$BENCHBIN/fswatch_load" inotify "$work/dirs.list" >"$log" 2>&1 &
		holder=$!
		wait_file_re 60 "$log" '^ready' ;;
	fanotify)
		"$BENCHBIN/fswatch_load" fanotify "$2" >"$log" 2>&1 &
		holder=$!
		wait_file_re 30 "$log" '^(ready|refused)' ;;
	esac
	if ! grep -qE 'msg=tracing|^ready' "$log"; then
		refused[$c]=$(grep -m1 -E 'refused|cannot attach|error' "$log" | tr -s ' ' | cut -c1-200)
		[ -n "${refused[$c]}" ] || refused[$c]="did not come up"
		detach
		return 1
	fi
}
detach() {
	[ -n "$holder" ] || return 0
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	holder=
	rm -rf "$bpffs"
}

all=(base "${conds[@]}")
n=${#all[@]}
for ((r = 0; r < reps; r++)); do
	for ((k = 0; k < n; k++)); do
		c=${all[$(((k + r) % n))]}
		[ -n "${refused[$c]:-}" ] && continue
		for ((f = 0; f < ${#fs_names[@]}; f++)); do
			# fanotify marks one filesystem: attach per filesystem.
			if [ "$c" = fanotify ] || [ "$f" -eq 0 ]; then
				attach "$c" "${fs_dirs[$f]}" || continue 2
			fi
			v=$("$BENCHBIN/opsloop" "${fs_dirs[$f]}/vt-loop.$$" "$secs") || v=nan
			echo "$r ${fs_names[$f]} $c $v" >>"$work/raw"
			[ "$c" = fanotify ] && detach
		done
		detach
	done
done

worst_note=
for c in "${conds[@]}"; do
	worst=
	for fsn in "${fs_names[@]}"; do
		med=$(awk -v f="$fsn" -v c="$c" '$2 == f && $3 == c { print $4 }' "$work/raw" | median)
		ratio=$(awk -v f="$fsn" -v c="$c" '
			$2 == f && $3 == "base" { b[$1] = $4 }
			$2 == f && $3 == c { m[$1] = $4 }
			END { for (r in m) if (r in b && b[r] > 0) print m[r] / b[r] }' "$work/raw" | median)
		[ -n "${refused[$c]:-}" ] && ratio=nan
		echo "ROW $fsn $c $med $ratio"
		if [ "$ratio" != nan ] && { [ -z "$worst" ] || awk -v a="$ratio" -v b="$worst" 'BEGIN { exit !(a < b) }'; }; then
			worst=$ratio
		fi
	done
	for fsn in "${fs_names[@]}"; do
		med=$(awk -v f="$fsn" '$2 == f && $3 == "base" { print $4 }' "$work/raw" | median)
		[ "$c" = "${conds[0]}" ] && echo "ROW $fsn base $med 1"
	done
	if [ -n "${refused[$c]:-}" ]; then
		echo "RATIO $c nan refused: ${refused[$c]}"
	else
		echo "RATIO $c $(printf '%.3f' "$worst") worst of ${fs_names[*]}, median of $reps paired runs x ${secs}s"
	fi
done
