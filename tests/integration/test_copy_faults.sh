#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# voltrace copy when things go wrong: the agent drops the connection in the
# middle of a copy, answers with junk frames, refuses with a status; bad
# URLs and guest paths outside the shared directory. Clear one-line errors,
# no crash, no hang, nothing written where nothing may be written.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/copy_lib.sh"
make_tmp
make_volume "$TMP/vol"
DEST=$GUEST_BASE/pod-9/volumes/kubernetes.io~secret/s

# run_copy URL DEST [ARGS]: sets RC and OUT (stderr+stdout), bounded by 30 s.
run_copy() {
	local url=$1 dest=$2; shift 2
	OUT=$(timeout 30 "$VOLTRACE" copy "$TMP/vol" --agent "$url" --dest "$dest" "$@" 2>&1)
	RC=$?
}

# --- connection dropped mid-copy, then a rerun completes
start_peer drop -socket "$TMP/drop.sock" -root "$TMP/guest-drop" -drop-after 8 || exit 1
run_copy "unix://$TMP/drop.sock" "$DEST"
if [ "$RC" -eq 1 ] && echo "$OUT" | grep -q 'Unavailable'; then
	ok "connection dropped mid-copy: exit 1 with an Unavailable error"
else
	not_ok "connection dropped mid-copy: exit 1 with an Unavailable error" "rc=$RC $OUT"
fi
echo "$OUT" | sed 's/^/# /'
check "dropped copy left no ..data in the guest" test ! -L "$TMP/guest-drop$DEST/..data"
run_copy "unix://$TMP/drop.sock" "$DEST"
check "rerun after the drop exits 0" test "$RC" -eq 0
check "rerun after the drop: guest tree equals source" \
	"$TREECMP" "$TMP/vol" "$TMP/guest-drop$DEST"
stop_peer "$PEER_PID"

# --- peer down: connect error, quickly
run_copy "unix://$TMP/nobody.sock" "$DEST" --timeout 2
if [ "$RC" -eq 1 ] && echo "$OUT" | grep -q 'Unavailable: connect unix://'; then
	ok "no agent listening: exit 1, connect error"
else
	not_ok "no agent listening: exit 1, connect error" "rc=$RC $OUT"
fi

# --- the agent refuses every call with a status
start_peer refuse -socket "$TMP/refuse.sock" -root "$TMP/guest-refuse" \
	-error-code 7 -error-msg "no writes today" || exit 1
run_copy "unix://$TMP/refuse.sock" "$DEST"
if [ "$RC" -eq 1 ] && echo "$OUT" | grep -q 'PermissionDenied: .*no writes today'; then
	ok "agent status is reported with its code name and message"
else
	not_ok "agent status is reported with its code name and message" "rc=$RC $OUT"
fi
stop_peer "$PEER_PID"

# --- junk frames: clear error, no crash, no hang
for mode in type oversize stream garbage text truncated silent; do
	start_peer "junk-$mode" -socket "$TMP/junk-$mode.sock" -junk "$mode" || exit 1
	t0=$(date +%s)
	run_copy "unix://$TMP/junk-$mode.sock" "$DEST" --timeout 2
	secs=$(($(date +%s) - t0))
	case $mode in
	type) want='type 7' ;;
	oversize) want='byte limit' ;;
	stream) want='unknown stream' ;;
	garbage) want='does not decode' ;;
	text) want='byte limit' ;;
	truncated) want='closed by peer' ;;
	silent) want='DeadlineExceeded' ;;
	esac
	if [ "$RC" -eq 1 ] && echo "$OUT" | grep -q "$want" && [ "$secs" -le 10 ]; then
		ok "junk server ($mode): exit 1 in ${secs}s, error mentions '$want'"
	else
		not_ok "junk server ($mode): exit 1 in ${secs}s, error mentions '$want'" "rc=$RC $OUT"
	fi
	stop_peer "$PEER_PID"
done

# --- refused before anything is sent
start_peer guard -socket "$TMP/guard.sock" -root "$TMP/guest-guard" || exit 1
for bad in /etc/kata /run/kata-containers/shared/containers \
	/run/kata-containers/shared/containers/../../../etc/x \
	/run/kata-containers/shared/containersX/a relative/path; do
	run_copy "unix://$TMP/guard.sock" "$bad"
	lines=$(printf '%s\n' "$OUT" | wc -l)
	if [ "$RC" -eq 2 ] && [ "$lines" -eq 1 ] && echo "$OUT" | grep -q 'guest path'; then
		ok "guest path $bad refused (exit 2, one line)"
	else
		not_ok "guest path $bad refused (exit 2, one line)" "rc=$RC $OUT"
	fi
done
for bad in "" "unix://" "unix://relative.sock" "tcp://1.2.3.4:80" "vsock://3" \
	"vsock://x:1024" "vsock://3:" "vsock://3:0" "vsock://3:99999999999" \
	"hvsock:///tmp/k.sock" "hvsock://rel:1024" "hvsock:///tmp/k.sock:port" \
	"/tmp/agent.sock"; do
	run_copy "$bad" "$DEST"
	lines=$(printf '%s\n' "$OUT" | wc -l)
	if [ "$RC" -eq 2 ] && [ "$lines" -eq 1 ] && echo "$OUT" | grep -q 'accepted forms'; then
		ok "agent URL '$bad' refused (exit 2, one line listing the accepted forms)"
	else
		not_ok "agent URL '$bad' refused (exit 2, one line listing the accepted forms)" "rc=$RC $OUT"
	fi
done
check "nothing reached the agent for refused paths and URLs" \
	test "$(peer_calls "$TMP/guard.log")" -eq 0
check "nothing was written in the guest" test ! -e "$TMP/guest-guard/run"
stop_peer "$PEER_PID"

# --- a symlink leaving the source is copied as a link, never followed
mkdir -p "$TMP/esc"
printf 'host secret\n' >"$TMP/outside"
ln -s "$TMP/outside" "$TMP/esc/link"
ln -s ../outside "$TMP/esc/rel"
start_peer esc -socket "$TMP/esc.sock" -root "$TMP/guest-esc" || exit 1
OUT=$(timeout 30 "$VOLTRACE" copy "$TMP/esc" --agent "unix://$TMP/esc.sock" --dest "$DEST-esc" 2>&1)
check "escaping symlinks copied as symlinks" \
	"$TREECMP" "$TMP/esc" "$TMP/guest-esc$DEST-esc"
# (grep -r may follow the copied links back to the host file: read only
# the regular files the peer wrote.)
check "host file outside the source never sent" \
	sh -c "! find '$TMP/guest-esc' -type f -exec cat {} + | grep -q 'host secret'"
stop_peer "$PEER_PID"
finish
