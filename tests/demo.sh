#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The built-in demo (`make deps demo`, as root): a temporary kubelet-like
# ConfigMap volume, the conformance peer standing in for the Kata guest
# agent, `voltrace run` between them, and a few atomic updates made the
# way the kubelet makes them. After each update it prints what the guest
# sees and how long the update took to get there. Everything it creates
# (temp dirs, processes, BPF pins) is removed on exit.
set -u
cd "$(dirname "$0")/.."
. tests/integration/daemon_lib.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "the demo loads BPF programs: run it as root (sudo make demo)" >&2
	exit 1
fi
for bin in "$VOLTRACE" "$KATA_PEER" "$TREECMP"; do
	if [ ! -x "$bin" ]; then
		echo "missing $bin: run 'make demo' (it builds what the demo needs)" >&2
		exit 1
	fi
done

B=$'\e[1m'
N=$'\e[0m'
[ -t 1 ] || { B=; N=; }

vt_init
MPORT=$(pick_port)
METRICS_ADDRESS=127.0.0.1:$MPORT
VOL=$SRC/0c6d6b5e-demo-pod/volumes/kubernetes.io~configmap/app-config
DEST=$SHARED/demo-container/app-config
GDEST=$(g demo-container/app-config)
mkdir -p "$VOL"

show_guest() {
	local e name
	echo "   guest $DEST:"
	echo "     ..data -> $(readlink "$GDEST/..data")"
	for e in "$GDEST"/*; do
		[ -L "$e" ] || continue
		name=${e##*/}
		if [ -d "$e" ]; then
			(cd "$e" && find . -type f | sort | while read -r f; do
				printf '     %-22s %s\n' "$name/${f#./}" "$(cat "$f")"
			done)
		elif [ -e "$e" ]; then
			printf '     %-22s %s\n' "$name" "$(cat "$e")"
		else
			printf '     %-22s %s\n' "$name" "(link dangles: key deleted)"
		fi
	done
}

# update TITLE KW-ARGS...: one kubelet update, time it until the guest
# shows it, print the guest view.
step=0
update() {
	local title=$1 t0 t1 lat
	shift
	step=$((step + 1))
	echo
	echo "${B}[$step] $title${N}"
	t0=${EPOCHREALTIME/./}
	kw "$VOL" "$@"
	until converged "$VOL" "$GDEST"; do
		sleep 0.002
		if [ $((${EPOCHREALTIME/./} - t0)) -gt 10000000 ]; then
			echo "   the guest did not converge within 10 s; daemon log:"
			tail -n 20 "$DLOG" | sed 's/^/     /'
			exit 1
		fi
	done
	t1=${EPOCHREALTIME/./}
	lat=$(grep -o 'latency_ms=[0-9][0-9.]*' "$DLOG" | tail -n 1 | cut -d= -f2)
	printf '   propagated in %d.%d ms (host update start -> guest tree matches, polled);' \
		$(((t1 - t0) / 1000)) $(((t1 - t0) % 1000 / 100))
	printf ' daemon: kernel event -> last CopyFile acked %s ms\n' "${lat:-?}"
	show_guest
}

echo "${B}voltrace demo${N}: kubelet volume -> BPF ($VT_TEST_MODE mode) -> voltrace -> ttrpc CopyFile -> guest agent"
echo "   host volume  $VOL"
echo "   guest agent  kata-peer on unix://$TMP/agent.sock, guest / = $GUEST"
start_peer agent || { echo "kata-peer did not start"; exit 1; }
kw "$VOL" greeting=hello 'settings/app.yaml=replicas: 1' log-level=info
write_config "" "$VOL|unix://$TMP/agent.sock|$DEST"
if ! start_daemon; then
	echo "voltrace run did not start; its log:"
	cat "$DLOG"
	exit 1
fi
echo "   daemon       voltrace run --config $CFG (log: $DLOG)"
wait_for 10 converged "$VOL" "$GDEST"
echo
echo "${B}[0] initial copy${N}"
show_guest

update "value changed: greeting" greeting='hello, world' \
	'settings/app.yaml=replicas: 1' log-level=info
update "key added: feature-flags" greeting='hello, world' \
	'settings/app.yaml=replicas: 1' log-level=info feature-flags=dark-mode
update "key deleted: log-level" greeting='hello, world' \
	'settings/app.yaml=replicas: 3' feature-flags=dark-mode
update "nested key changed: settings/app.yaml" greeting='hello, world' \
	'settings/app.yaml=replicas: 5' feature-flags=dark-mode

echo
echo "${B}voltrace ctl list${N}"
ctl list | sed 's/^/   /'
echo
echo "${B}metrics${N} (http://127.0.0.1:$MPORT/metrics, excerpt)"
http_get 127.0.0.1 "$MPORT" /metrics |
	grep -E '^voltrace_(syncs_total|files_copied_total|bytes_copied_total|guest_stale_dirs|sync_duration_seconds_(sum|count)|events_total\{op="rename")' |
	sed 's/^/   /'
echo
echo "Old guest ..<timestamp> dirs stay behind (the agent has no delete RPC);"
echo "voltrace_guest_stale_dirs counts them."
kill_daemon TERM
echo "daemon stopped (exit $DRC); cleaning up."
