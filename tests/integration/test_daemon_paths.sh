#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# A kubelet root reached through a symlink (a common node layout:
# /var/lib/kubelet -> /data/kubelet): the watch names the symlinked path,
# the kubelet renames by that same absolute path, and the update must
# still be seen in the kernel — in tracepoint mode through the path alias
# the registry adds beside the realpath.
#
# Then a commit made through a relative path with a directory part, which
# tracepoint mode cannot resolve: the periodic resync (resync_interval_s)
# must still bring the guest up to date.
. "$(dirname "$0")/daemon_lib.sh"

vt_init
start_peer agent || { not_ok "kata-peer starts"; finish; }
AGENT=unix://$TMP/agent.sock

ln -s "$SRC" "$TMP/kubelet-link"
REAL=$SRC/pod-p/volumes/kubernetes.io~configmap/cfg
LINKED=$TMP/kubelet-link/pod-p/volumes/kubernetes.io~configmap/cfg
mkdir -p "$REAL"
kw "$LINKED" a=1
write_config "" "$LINKED|$AGENT|$SHARED/p/cfg"
G=$(g p/cfg)

if ! start_daemon; then
	not_ok "daemon starts (mode $VT_TEST_MODE)" "$(tail -5 "$DLOG")"
	finish
fi
check "symlinked source: initial copy" wait_conv "$REAL" "$G" 20

# Each update must be picked up by its kernel event: the daemon has no
# periodic rescan that would hide a miss.
for n in 2 3 4; do
	kw "$LINKED" a=$n
	if wait_conv "$REAL" "$G" 5 && [ "$(cat "$G/a" 2>/dev/null)" = "$n" ]; then
		ok "symlinked source: update $n converges"
	else
		not_ok "symlinked source: update $n converges" "$(tail -5 "$DLOG")"
	fi
done

write_config "resync_interval_s: 1" "$LINKED|$AGENT|$SHARED/p/cfg"
kill -HUP "$DPID"
wait_for 10 grep -q 'msg="config reloaded"' "$DLOG"
ts=..relative_commit
mkdir "$REAL/$ts" && printf 9 >"$REAL/$ts/a"
ln -s "$ts" "$REAL/..data_tmp"
(cd "$REAL/.." && mv -T cfg/..data_tmp cfg/..data)
if wait_conv "$REAL" "$G" 10 && [ "$(cat "$G/a" 2>/dev/null)" = 9 ]; then
	ok "commit by a relative path converges (event or periodic resync)"
else
	not_ok "commit by a relative path converges (event or periodic resync)" \
		"$(tail -5 "$DLOG")"
fi
check "daemon still alive" daemon_alive
finish
