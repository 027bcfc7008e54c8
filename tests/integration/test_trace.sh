#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The tracer against the real kernel: exact events, in order, from a
# kubelet-style atomic update in a watched directory; nothing from an
# unwatched sibling or a subdirectory; failed operations not reported;
# counters; pinned maps readable with bpftool; 10,000 watched directories.
#
# VT_TEST_MODE picks the attach mode (default tracepoint; the VM suite runs
# this script with fentry and kprobe too).
. "$(dirname "$0")/lib.sh"

MODE=${VT_TEST_MODE:-tracepoint}
FSOPS=$OUTPUT/tests/tools/fsops
BPFTOOL=${BPFTOOL:-bpftool}
make_tmp
BPFFS=/sys/fs/bpf/vt-test-trace-$$
VOL=$TMP/vol
SIB=$TMP/sibling

# One JSON event per line -> "op dir name new_dir new_name" (names here are
# plain ASCII, so a sed field extractor is enough).
summarize() {
	sed -n 's/.*"op":"\([^"]*\)".*"dir":"\([^"]*\)","name":"\([^"]*\)","new_dir":\(null\|"[^"]*"\),"new_name":\(null\|"[^"]*"\).*/\1 \2 \3 \4 \5/p' "$1" |
		tr -d '"'
}

# start_trace OUT ERR ARGS...: run voltrace trace in the background until it
# reports that it is tracing.
start_trace() {
	local out=$1 err=$2; shift 2
	"$VOLTRACE" trace --mode "$MODE" --json --bpffs "$BPFFS" "$@" >"$out" 2>"$err" &
	TRACE_PID=$!
	at_exit "kill -9 $TRACE_PID"
	wait_for 20 grep -q 'msg=tracing' "$err"
}

stop_trace() {
	kill -INT "$TRACE_PID"
	wait "$TRACE_PID"
}

# A kubelet volume as the atomic writer leaves it: ..ts1 holds a and b.
mkdir -p "$VOL/..ts1" "$VOL/sub" "$SIB"
echo one >"$VOL/..ts1/a"
echo two >"$VOL/..ts1/b"
ln -s ..ts1 "$VOL/..data"
ln -s ..data/a "$VOL/a"
ln -s ..data/b "$VOL/b"
touch "$VOL/sub/s1" "$SIB/x1" "$VOL/x"

if start_trace "$TMP/out" "$TMP/err" "$VOL"; then
	ok "$MODE: trace attaches"
else
	not_ok "$MODE: trace attaches" "$(cat "$TMP/err")"
	finish
fi

# While it runs, the pinned filter map shows the watched directory's key.
vol_ino=$(stat -c %i "$VOL")
if "$BPFTOOL" map dump pinned "$BPFFS/watched_dirs" >"$TMP/dump" 2>&1 &&
	grep -qE "\"ino\": $vol_ino,?\$" "$TMP/dump"; then
	ok "$MODE: bpftool map dump pinned watched_dirs shows the directory key"
else
	not_ok "$MODE: bpftool map dump pinned watched_dirs shows the directory key" \
		"$(cat "$TMP/dump")"
fi

# The update: new payload (a changed, b removed, c added), commit, links.
mkdir "$VOL/..ts2"
echo ONE >"$VOL/..ts2/a"
echo three >"$VOL/..ts2/c"
ln -s ..ts2 "$VOL/..data_tmp"
"$FSOPS" rename "$VOL/..data_tmp" "$VOL/..data"		# absolute paths
ln -s ..data/c "$VOL/c"
"$FSOPS" unlink "$VOL/b"					# removed key's link
"$FSOPS" rmtree "$VOL" ..ts1				# dirfd-relative, recursive
"$FSOPS" renameat "$VOL" x y				# dirfd-relative rename
"$FSOPS" unlinkat "$VOL" y
"$FSOPS" unlink "$VOL/does-not-exist" 2>/dev/null	# fails: not reported
# Unwatched places: a sibling and a subdirectory of the watched dir.
"$FSOPS" rename "$SIB/x1" "$SIB/x2"
"$FSOPS" unlink "$SIB/x2"
"$FSOPS" rename "$VOL/sub/s1" "$VOL/sub/s2"
"$FSOPS" unlinkat "$VOL/sub" s2
mkdir "$SIB/d" && "$FSOPS" rmdir "$SIB/d"

expected="rename $VOL ..data_tmp $VOL ..data
unlink $VOL b null null
rmdir $VOL ..ts1 null null
rename $VOL x $VOL y
unlink $VOL y null null"

wait_for 10 test "$(grep -c . "$TMP/out")" -ge 5
sleep 0.3	# anything extra would have arrived by now
stop_trace
rc=$?
check "$MODE: trace exits 0 on SIGINT" test "$rc" -eq 0

got=$(summarize "$TMP/out")
if [ "$got" = "$expected" ]; then
	ok "$MODE: exactly the expected events, in order"
else
	not_ok "$MODE: exactly the expected events, in order" \
		"expected:
$expected
got:
$got
raw:
$(cat "$TMP/out")"
fi
check "$MODE: events carry the mode" \
	test "$(grep -c "\"mode\":\"$MODE\"" "$TMP/out")" -eq 5
check "$MODE: events name the process" \
	test "$(grep -c '"comm":"fsops"' "$TMP/out")" -eq 5

total=$(grep '^total:' "$TMP/err")
submitted=$(echo "$total" | sed -n 's/.*submitted=\([0-9]*\).*/\1/p')
matched=$(echo "$total" | sed -n 's/.*matched=\([0-9]*\).*/\1/p')
seen=$(echo "$total" | sed -n 's/.*seen=\([0-9]*\).*/\1/p')
dropped=$(echo "$total" | sed -n 's/.*dropped=\([0-9]*\).*/\1/p')
check "$MODE: counters: 5 submitted, none dropped ($total)" \
	test "${submitted:-x}" = 5 -a "${dropped:-x}" = 0
check "$MODE: counters: matched >= submitted, seen >= matched + 5 unwatched ops" \
	test "${matched:-0}" -ge 5 -a "${seen:-0}" -ge $((matched + 5))
check "$MODE: pins removed on clean exit" test ! -e "$BPFFS"

# A pin directory left by a crashed run is replaced, not fatal.
mkdir -p "$BPFFS"
if start_trace "$TMP/out2" "$TMP/err2" "$VOL"; then
	kill -9 "$TRACE_PID"; wait "$TRACE_PID" 2>/dev/null
	if start_trace "$TMP/out3" "$TMP/err3" "$VOL"; then
		"$FSOPS" renameat "$VOL" c c2
		wait_for 10 grep -q '"new_name":"c2"' "$TMP/out3"
		check "$MODE: stale pins from a killed run are replaced" \
			grep -q '"new_name":"c2"' "$TMP/out3"
		stop_trace
	else
		not_ok "$MODE: stale pins from a killed run are replaced" "$(cat "$TMP/err3")"
	fi
else
	not_ok "$MODE: trace starts over an existing pin directory" "$(cat "$TMP/err2")"
fi

# A reader that goes away (| head -1) ends the trace cleanly: no pins left
# behind to keep programs attached.
("$VOLTRACE" trace --mode "$MODE" --bpffs "$BPFFS" "$VOL" 2>"$TMP/err6" | head -1 >"$TMP/out6") &
HEAD_PID=$!
if wait_for 20 grep -q 'msg=tracing' "$TMP/err6"; then
	for n in 1 2 3; do "$FSOPS" renameat "$VOL" a "a$n" && "$FSOPS" renameat "$VOL" "a$n" a; done
	wait_for 10 grep -q '^total:' "$TMP/err6"
	wait "$HEAD_PID"
	check "$MODE: closed stdout: trace exits and removes its pins" \
		test -s "$TMP/out6" -a ! -e "$BPFFS"
else
	not_ok "$MODE: closed stdout: trace exits and removes its pins" "$(cat "$TMP/err6")"
fi

# 10,000 watched directories: an event still arrives for the right one.
mkdir "$TMP/many"
i=0
while [ $i -lt 10000 ]; do
	echo "$TMP/many/d$i"
	i=$((i + 1))
done >"$TMP/dirs"
(cd "$TMP/many" && sed 's|.*/||' "$TMP/dirs" | xargs mkdir)
touch "$TMP/many/d7777/f" "$TMP/many/d9999/f"
if start_trace "$TMP/out4" "$TMP/err4" --dirs-from "$TMP/dirs"; then
	"$FSOPS" rename "$TMP/many/d7777/f" "$TMP/many/d7777/g"
	"$FSOPS" renameat "$TMP/many/d9999" f g
	"$FSOPS" rename "$SIB/x" "$SIB/y" 2>/dev/null
	wait_for 10 test "$(grep -c . "$TMP/out4")" -ge 2
	sleep 0.3
	stop_trace
	got=$(summarize "$TMP/out4")
	want="rename $TMP/many/d7777 f $TMP/many/d7777 g
rename $TMP/many/d9999 f $TMP/many/d9999 g"
	if [ "$got" = "$want" ]; then
		ok "$MODE: 10,000 watched directories: events for the right ones"
	else
		not_ok "$MODE: 10,000 watched directories: events for the right ones" \
			"got: $got"
	fi
else
	not_ok "$MODE: trace with 10,000 directories attaches" "$(tail -5 "$TMP/err4")"
fi

# Bad input: a directory that does not exist is a usage error (exit 2).
"$VOLTRACE" trace --mode "$MODE" --bpffs "$BPFFS" "$TMP/nope" >/dev/null 2>"$TMP/err5"
rc=$?
check "$MODE: nonexistent DIR: exit 2 with a message" \
	test "$rc" -eq 2 -a -n "$(grep 'nope' "$TMP/err5")"

finish
