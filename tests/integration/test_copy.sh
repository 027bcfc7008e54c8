#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# voltrace copy of a kubelet-style volume into the Go conformance peer
# (containerd's ttrpc, kata-agent's CopyFile semantics) over a unix socket
# and over hybrid vsock; the guest tree must equal the source.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/copy_lib.sh"
make_tmp
make_volume "$TMP/vol"
DEST=$GUEST_BASE/pod-1234/volumes/kubernetes.io~configmap/cm

# --- unix socket
start_peer unix -socket "$TMP/agent.sock" -root "$TMP/guest-unix" || exit 1
out=$("$VOLTRACE" copy "$TMP/vol" --agent "unix://$TMP/agent.sock" --dest "$DEST" 2>&1)
rc=$?
check "copy over unix exits 0" test "$rc" -eq 0
echo "# $out"
case $out in *files=6*symlinks=6*bytes=3145760*) ok "summary counts files, symlinks, bytes" ;;
*) not_ok "summary counts files, symlinks, bytes" "$out" ;; esac
res=$("$TREECMP" --owner "$TMP/vol" "$TMP/guest-unix$DEST" 2>&1)
check "unix: guest tree equals source (content, modes, owners, links)" test $? -eq 0
[ -n "$res" ] && echo "$res" | sed 's/^/#   /'
check "unix: 3 MiB file sent in 3 chunks of <= 1 MiB" \
	test "$(grep -c 'blob.bin size=3145728 .* len=1048576' "$TMP/unix.log")" -eq 3
check "unix: empty file is one request without data" \
	grep -q '/empty size=0 mode=100644 .* offset=0 len=0' "$TMP/unix.log"
check "unix: no .tmp file left in the guest" \
	test -z "$(find "$TMP/guest-unix" -name '*.tmp*')"

# Order: every ..<timestamp> entry before ..data, ..data before the keys.
log=$TMP/unix.log
last_ts=$(grep -n " CopyFile path=$DEST/\.\.2026" "$log" | tail -n 1 | cut -d: -f1)
data=$(grep -n " CopyFile path=$DEST/\.\.data " "$log" | cut -d: -f1)
first_key=$(grep -n " CopyFile path=$DEST/[^.][^/]* " "$log" | head -n 1 | cut -d: -f1)
if [ -n "$last_ts" ] && [ -n "$data" ] && [ -n "$first_key" ] &&
   [ "$last_ts" -lt "$data" ] && [ "$data" -lt "$first_key" ]; then
	ok "kubelet order: ..<ts> content, then ..data, then user-visible links"
else
	not_ok "kubelet order: ..<ts> content, then ..data, then user-visible links" \
		"last ts line=$last_ts ..data line=$data first key line=$first_key"
fi

# A second copy over an existing guest tree replaces, still equal.
printf 'changed\n' >"$TMP/vol/..2026_11_22_10_00_00.000000001/key1"
"$VOLTRACE" copy "$TMP/vol" --agent "unix://$TMP/agent.sock" --dest "$DEST" >/dev/null 2>&1
check "unix: recopy after a change updates the guest" \
	"$TREECMP" "$TMP/vol" "$TMP/guest-unix$DEST"
stop_peer "$PEER_PID"

# --- hybrid vsock (Firecracker / Cloud Hypervisor)
start_peer hvsock -socket "$TMP/kata.hvsock" -root "$TMP/guest-hv" -hvsock -port 1024 || exit 1
out=$("$VOLTRACE" copy "$TMP/vol" --agent "hvsock://$TMP/kata.hvsock:1024" --dest "$DEST" 2>&1)
check "copy over hybrid vsock exits 0" test $? -eq 0
res=$("$TREECMP" --owner "$TMP/vol" "$TMP/guest-hv$DEST" 2>&1)
check "hvsock: guest tree equals source" test $? -eq 0
[ -n "$res" ] && echo "$res" | sed 's/^/#   /'
out=$("$VOLTRACE" copy "$TMP/vol" --agent "hvsock://$TMP/kata.hvsock:2048" --dest "$DEST" 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && echo "$out" | grep -q 'hybrid vsock'; then
	ok "hvsock: wrong port is refused with a clear error"
else
	not_ok "hvsock: wrong port is refused with a clear error" "rc=$rc $out"
fi
stop_peer "$PEER_PID"

# --- several requests in flight on one connection (peer sleeps per call)
mkdir -p "$TMP/many/d"
for i in $(seq 1 40); do printf 'v%s' "$i" >"$TMP/many/d/f$i"; done
start_peer slow -socket "$TMP/slow.sock" -root "$TMP/guest-slow" -delay 100ms || exit 1
t0=${EPOCHREALTIME/./}
"$VOLTRACE" copy "$TMP/many" --agent "unix://$TMP/slow.sock" --dest "$DEST-many" --window 16 >/dev/null 2>&1
rc=$?
ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
check "pipelined copy of 40 files with 100 ms per call exits 0" test "$rc" -eq 0
check "pipelined copy equals source" "$TREECMP" "$TMP/many" "$TMP/guest-slow$DEST-many"
if [ "$ms" -lt 2500 ]; then
	ok "40 calls x 100 ms finished in $ms ms (requests multiplexed)"
else
	not_ok "40 calls x 100 ms finished in $ms ms (requests multiplexed)"
fi
stop_peer "$PEER_PID"
finish
