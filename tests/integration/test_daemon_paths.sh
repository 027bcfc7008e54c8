#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# A kubelet root reached through a symlink (a common node layout:
# /var/lib/kubelet -> /data/kubelet): the watch names the symlinked path,
# the kubelet renames by that same absolute path, and the update must
# still be seen in the kernel — in tracepoint mode through the path alias
# the registry adds beside the realpath.
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
finish
