#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The daemon's core scenarios, end to end: real kernel BPF (VT_TEST_MODE,
# default tracepoint), the real `voltrace run`, the Go conformance peer as
# the guest agent, kubelet-style atomic updates, guest trees compared with
# treecmp. Needs only bash, busybox, voltrace, kata-peer and treecmp, so
# the VM stage runs it in fentry and kprobe modes too.
. "$(dirname "$0")/daemon_lib.sh"

vt_init
start_peer agent || { not_ok "kata-peer starts"; finish; }
AGENT=unix://$TMP/agent.sock


V1=$(vol cm1)
kw "$V1" a=1 b=2
write_config "" "$V1|$AGENT|$SHARED/c1/cm1"
G1=$(g c1/cm1)

if ! start_daemon; then
	not_ok "daemon starts (mode $VT_TEST_MODE)"
	finish
fi
ok "daemon starts (mode $VT_TEST_MODE)"

check "initial copy" wait_conv "$V1" "$G1" 20

kw "$V1" a=1 b=22
check "value changed" wait_conv "$V1" "$G1"
check "value changed: guest reads the new value" \
	test "$(cat "$G1/b" 2>/dev/null)" = 22

kw "$V1" a=1 b=22 c=3
check "key added" wait_conv "$V1" "$G1"
check "key added: readable through its link" \
	test "$(cat "$G1/c" 2>/dev/null)" = 3

kw "$V1" a=1 c=3
check "key deleted" wait_conv "$V1" "$G1"
check "key deleted: guest link dangles, key unreadable" \
	eval '[ -L "$G1/b" ] && ! cat "$G1/b" >/dev/null 2>&1'

# Watches added through the control API from here on.
V2=$(vol nested)
kw "$V2" 'a/b/c=deep' 'a/x=1' top=t
if ctl watch "$V2" --agent "$AGENT" --dest "$SHARED/c2/nested" >"$TMP/out" 2>&1; then
	ok "ctl watch"
else
	not_ok "ctl watch" "$(cat "$TMP/out")"
fi
G2=$(g c2/nested)
check "nested keys (a/b/c)" wait_conv "$V2" "$G2"
kw "$V2" 'a/b/c=deeper' 'a/y=2' top=t
check "nested keys updated" wait_conv "$V2" "$G2"
check "nested keys: guest reads a/b/c through the link" \
	test "$(cat "$G2/a/b/c" 2>/dev/null)" = deeper

V3=$(vol big)
head -c 3145728 /dev/urandom >"$TMP/big"
kw "$V3" big@"$TMP/big" small=s
ctl watch "$V3" --agent "$AGENT" --dest "$SHARED/c3/big" >/dev/null 2>&1
check "3 MiB value" wait_conv "$V3" "$(g c3/big)" 20
head -c 3145728 /dev/urandom >"$TMP/big"
kw "$V3" big@"$TMP/big" small=s
check "3 MiB value updated" wait_conv "$V3" "$(g c3/big)" 20

V4=$(vol secret)
KW_MODE=0400 kw "$V4" empty= token=s3cr3t
ctl watch "$V4" --agent "$AGENT" --dest "$SHARED/c4/secret" >/dev/null 2>&1
check "empty file and mode 0400" wait_conv "$V4" "$(g c4/secret)"
check "mode 0400 kept in the guest" \
	test "$(stat -c %a "$(g c4/secret)/..data/token" 2>/dev/null)" = 400
check "empty file is empty in the guest" \
	eval '[ -f "$(g c4/secret)/..data/empty" ] && [ ! -s "$(g c4/secret)/..data/empty" ]'

V5=$(vol before)
kw --links-before "$V5" x=1
ctl watch "$V5" --agent "$AGENT" --dest "$SHARED/c5/before" >/dev/null 2>&1
check "links-before order: initial" wait_conv "$V5" "$(g c5/before)"
kw --links-before "$V5" x=2 y=new
check "links-before order: key added and changed" wait_conv "$V5" "$(g c5/before)"
kw "$V5" x=3 y=new
check "links-after order on the same volume" wait_conv "$V5" "$(g c5/before)"

# 50 rapid updates through an agent slow enough (10 ms per call) that
# commits land while a sync is in flight: they coalesce, the guest ends
# at the last one, and its ..data never goes back to an older commit.
start_peer slow -delay 10ms -ack-log "$TMP/acks"
V6=$(vol rapid)
kw "$V6" k=0 other=x
ctl watch "$V6" --agent "unix://$TMP/slow.sock" --dest "$SHARED/c6/rapid" >/dev/null 2>&1
wait_conv "$V6" "$(g c6/rapid)" >/dev/null
declare -A commit_idx=()
commit_idx[$(readlink "$V6/..data")]=0
for i in $(seq 1 50); do
	kw "$V6" k=$i other=x
	commit_idx[$(readlink "$V6/..data")]=$i
done
check "50 rapid updates converge to the last" wait_conv "$V6" "$(g c6/rapid)"
check "50 rapid updates: guest reads 50" \
	test "$(cat "$(g c6/rapid)/k" 2>/dev/null)" = 50
# In acknowledgement order, the guest's ..data targets follow commit order.
monotonic() {
	local last=-1 n=0 ts path idx
	while read -r _ path ts; do
		[ "$path" = "$SHARED/c6/rapid/..data" ] || continue
		idx=${commit_idx[$ts]:-}
		[ -n "$idx" ] || { echo "# unknown ..data target $ts"; return 1; }
		[ "$idx" -gt "$last" ] || { echo "# ..data went from commit $last to $idx"; return 1; }
		last=$idx
		n=$((n + 1))
	done <"$TMP/acks"
	echo "# 50 commits reached the guest as $n ..data switches"
	[ "$last" -eq 50 ]
}
check "50 rapid updates: never an older state after a newer one" monotonic

# Not a kubelet volume (no ..data): mirrored as a plain tree; a file
# renamed into it is copied.
VP=$SRC/plain/dir
mkdir -p "$VP/sub"
echo one >"$VP/sub/f"
ctl watch "$VP" --agent "$AGENT" --dest "$SHARED/c7/plain" >/dev/null 2>&1
check "plain directory: mirrored" wait_conv "$VP" "$(g c7/plain)"
echo two >"$TMP/incoming"
mv "$TMP/incoming" "$VP/renamed-in"
check "plain directory: renamed-in file copied" wait_conv "$VP" "$(g c7/plain)"

# One volume shared by two containers.
ctl watch "$V1" --agent "$AGENT" --dest "$SHARED/c9/cm1" >/dev/null 2>&1
check "one source, two dests: second dest copied" wait_conv "$V1" "$(g c9/cm1)"
kw "$V1" a=10 c=30
check "one source, two dests: both updated" \
	eval 'wait_conv "$V1" "$G1" && wait_conv "$V1" "$(g c9/cm1)"'

# Crash: SIGKILL the daemon while a writer keeps updating, restart it
# while the writer is still going.
(
	for i in $(seq 1 30); do
		kw "$V1" a=bg$i c=300
		sleep 0.03
	done
) &
writer=$!
sleep 0.2
kill_daemon KILL
kw "$V2" 'a/b/c=while-down' top=t2
kw "$V4" token=rotated
if start_daemon; then
	ok "daemon restarts after SIGKILL"
else
	not_ok "daemon restarts after SIGKILL"
fi
wait "$writer"
check "after restart: config watch converges to the writer's last update" \
	eval 'wait_conv "$V1" "$G1" 20 && [ "$(cat "$G1/a")" = bg30 ]' 
check "after restart: ctl-added watch restored and converged" \
	wait_conv "$V2" "$G2" 20
check "after restart: secret converged" wait_conv "$V4" "$(g c4/secret)" 20
ctl list >"$TMP/list" 2>&1
check "after restart: ctl list shows the restored watches" \
	eval 'grep -q "$SHARED/c2/nested" "$TMP/list" && grep -q "$SHARED/c9/cm1" "$TMP/list"'
kw "$V2" 'a/b/c=after' top=t3
check "after restart: live again" wait_conv "$V2" "$G2"

# Clean stop: in-flight work finishes, pins go, exit 0.
kill_daemon TERM
check "SIGTERM: exit status 0" test "$DRC" -eq 0
check "SIGTERM: bpffs pins removed" test ! -e "$BPFFS/watched_dirs"

latency_summary
finish
