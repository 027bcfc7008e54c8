# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Helpers for the `voltrace copy` tests: a kubelet-style volume and the Go
# conformance peer (containerd ttrpc) as the guest agent.
GUEST_BASE=/run/kata-containers/shared/containers

# make_volume DIR: the layout kubelet's AtomicWriter leaves behind, with
# nested keys, a 3 MiB binary file, an empty file, a 0400 file, an owner
# other than root and symlinks.
make_volume() {
	local vol=$1 ts=..2026_11_22_10_00_00.000000001
	mkdir -p "$vol/$ts/conf/nested" "$vol/$ts/emptydir"
	printf 'key one\n' >"$vol/$ts/key1"
	printf 'nested value\n' >"$vol/$ts/conf/nested/deep.yaml"
	printf 'a: 1\n' >"$vol/$ts/conf/app.yaml"
	head -c 3145728 /dev/urandom >"$vol/$ts/blob.bin"
	: >"$vol/$ts/empty"
	printf 's3cr3t' >"$vol/$ts/token"
	chmod 0400 "$vol/$ts/token"
	chmod 0750 "$vol/$ts/conf"
	chown 1234:5678 "$vol/$ts/key1" 2>/dev/null || true
	ln -s "$ts" "$vol/..data"
	for k in key1 conf blob.bin empty token; do
		ln -s "..data/$k" "$vol/$k"
	done
}

# start_peer NAME ARGS...: run kata-peer in the background with its log in
# $TMP/NAME.log; sets PEER_PID. Waits for the socket (-socket must be the
# first two args).
start_peer() {
	local name=$1; shift
	"$KATA_PEER" "$@" >"$TMP/$name.log" 2>&1 &
	PEER_PID=$!
	at_exit "kill $PEER_PID"
	wait_for 10 test -S "$2" || { echo "# peer $name did not start"; cat "$TMP/$name.log"; return 1; }
}

stop_peer() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# peer_calls LOG: number of CopyFile calls a peer logged.
peer_calls() {
	grep -c ' CopyFile ' "$1" 2>/dev/null || true
}
