#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The daemon's contract with operators: config errors (FILE:LINE, exit 2,
# nothing started), bad input through `voltrace ctl` (clear errors, daemon
# alive, guest data untouched), unwatch, SIGHUP reload of added/removed
# watches, the watched_dirs map visible with bpftool.
. "$(dirname "$0")/daemon_lib.sh"

vt_init
start_peer agent || { not_ok "kata-peer starts"; finish; }
AGENT=unix://$TMP/agent.sock


# ---- config errors --------------------------------------------------------
V1=$(vol cm1)
kw "$V1" a=1 b=2
mkdir -p "$TMP/outside"

bad_config() {
	local name=$1 want=$2 line
	shift 2
	write_config "$@"
	"$VOLTRACE" run --config "$CFG" >"$TMP/bad.out" 2>&1
	local rc=$?
	line=$(head -n 1 "$TMP/bad.out")
	if [ "$rc" -eq 2 ] && echo "$line" | grep -q "^$CFG:[0-9][0-9]*: .*$want" &&
		[ ! -e "$CTL" ] && [ ! -e "$BPFFS" ]; then
		ok "config error: $name -> FILE:LINE, exit 2, nothing started"
	else
		not_ok "config error: $name -> FILE:LINE, exit 2, nothing started" \
			"rc=$rc: $(cat "$TMP/bad.out")"
	fi
}
bad_config "unknown key" "bogus" "bogus_key: 1"
bad_config "wrong type" "log_level" "log_level: [1]"
bad_config "source outside allowed_sources" "allowed_sources" "" \
	"$TMP/outside|$AGENT|$SHARED/c1/x"
bad_config "dest outside the shared dir" "dest" "" "$V1|$AGENT|/etc/x"
bad_config "unknown URL scheme" "agent" "" "$V1|http://h:1|$SHARED/c1/x"

# ---- a running daemon ------------------------------------------------------
write_config "" "$V1|$AGENT|$SHARED/c1/cm1"
start_daemon || { not_ok "daemon starts (mode $VT_TEST_MODE)"; finish; }
G1=$(g c1/cm1)
check "initial copy" wait_conv "$V1" "$G1" 20

ino=$(stat -c %i "$V1")
bpftool map dump pinned "$BPFFS/watched_dirs" >"$TMP/map" 2>&1
check "bpftool map dump pinned watched_dirs shows the volume" \
	grep -qE "\"ino\": $ino,?\$" "$TMP/map"

# ---- bad input through ctl -------------------------------------------------
cp -a "$GUEST" "$TMP/guest-before"
bad_ctl() {
	local name=$1 want=$2
	shift 2
	if ctl watch "$@" >"$TMP/ctl.out" 2>&1; then
		not_ok "ctl refuses $name" "accepted: $(cat "$TMP/ctl.out")"
	elif ! grep -qi -- "$want" "$TMP/ctl.out"; then
		not_ok "ctl refuses $name" "message lacks \"$want\": $(cat "$TMP/ctl.out")"
	else
		ok "ctl refuses $name: $(head -n 1 "$TMP/ctl.out")"
	fi
}
bad_ctl "a source outside allowed_sources" "allowed_sources" \
	"$TMP/outside" --agent "$AGENT" --dest "$SHARED/c1/cm1"
bad_ctl "a dest outside the shared dir" "outside" \
	"$V1" --agent "$AGENT" --dest /etc/evil
bad_ctl "a dest escaping with .." "dest" \
	"$V1" --agent "$AGENT" --dest "$SHARED/../../../etc"
bad_ctl "an unknown URL scheme" "scheme\|URL" \
	"$V1" --agent "http://127.0.0.1:1" --dest "$SHARED/c7/x"
bad_ctl "a nonexistent source" "no such file" \
	"$SRC/nope" --agent "$AGENT" --dest "$SHARED/c7/x"
bad_ctl "the same watch twice" "already" \
	"$V1" --agent "$AGENT" --dest "$SHARED/c1/cm1"
check "daemon alive after bad input" daemon_alive
check "guest data untouched by refused requests" \
	"$TREECMP" "$TMP/guest-before" "$GUEST"
check "nothing written outside the shared dir" test ! -e "$GUEST/etc"
if ctl unwatch "$SRC/nope" >"$TMP/ctl.out" 2>&1; then
	not_ok "ctl unwatch of an unknown source fails"
else
	ok "ctl unwatch of an unknown source fails: $(head -n 1 "$TMP/ctl.out")"
fi

# ---- unwatch -----------------------------------------------------------------
V2=$(vol cm2)
kw "$V2" k=1
ctl watch "$V2" --agent "$AGENT" --dest "$SHARED/c2/cm2" >/dev/null 2>&1
check "ctl watch" wait_conv "$V2" "$(g c2/cm2)"
check "ctl list shows it" eval 'ctl list | grep -q "$SHARED/c2/cm2"'
check "ctl list --json" eval 'ctl list --json | grep -q "\"dest\": *\"$SHARED/c2/cm2\""'
check "state file lists it" grep -q "$SHARED/c2/cm2" "$STATE"
ino2=$(stat -c %i "$V2")
if [ "$VT_TEST_MODE" = tracepoint ]; then
	bpftool map dump pinned "$BPFFS/watched_paths" >"$TMP/paths" 2>&1
	check "tracepoint: watched_paths holds the volume's path" \
		grep -qF "\"$V2\"" "$TMP/paths"
fi
check "ctl unwatch" eval 'ctl unwatch "$V2" --dest "$SHARED/c2/cm2" >/dev/null'
bpftool map dump pinned "$BPFFS/watched_dirs" >"$TMP/map2" 2>&1
check "unwatch: the volume's key left watched_dirs" \
	eval '! grep -qE "\"ino\": $ino2,?\$" "$TMP/map2"'
if [ "$VT_TEST_MODE" = tracepoint ]; then
	bpftool map dump pinned "$BPFFS/watched_paths" >"$TMP/paths2" 2>&1
	check "tracepoint: unwatch removed the volume's path keys" \
		eval '! grep -qF "$V2" "$TMP/paths2" && grep -qF "$V1" "$TMP/paths2"'
fi
check "ctl list no longer shows it" eval '! ctl list | grep -q "$SHARED/c2/cm2"'
check "state file no longer lists it" eval '! grep -q "$SHARED/c2/cm2" "$STATE"'
kw "$V2" k=2
sleep 0.5
check "unwatched: later updates not copied" \
	test "$(cat "$(g c2/cm2)/k" 2>/dev/null)" = 1
check "ctl status" eval 'ctl status >"$TMP/status" 2>&1 && grep -qi "mode" "$TMP/status"'

# ---- SIGHUP --------------------------------------------------------------------
V3=$(vol cm3)
kw "$V3" z=1
write_config "" "$V1|$AGENT|$SHARED/c1/cm1" "$V3|$AGENT|$SHARED/c3/cm3"
kill -HUP "$DPID"
check "SIGHUP: added watch copied" wait_conv "$V3" "$(g c3/cm3)" 10
write_config "" "$V3|$AGENT|$SHARED/c3/cm3"
kill -HUP "$DPID"
check "SIGHUP: removed watch leaves the list" \
	wait_for 5 eval '! ctl list | grep -q "$SHARED/c1/cm1"'
echo "bogus_key: 1" >>"$CFG"
kill -HUP "$DPID"
check "SIGHUP with a broken config: logged, daemon keeps running" \
	eval 'wait_for 5 grep -q "config reload failed" "$DLOG" && daemon_alive'
kw "$V3" z=2
check "SIGHUP: still live" wait_conv "$V3" "$(g c3/cm3)"

kill_daemon TERM
check "SIGTERM: exit status 0" test "$DRC" -eq 0
finish
