# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Helpers for the daemon integration tests (test_daemon*.sh). bash plus
# busybox tools are enough (the VM stage runs test_daemon_core.sh with
# nothing else): no python, no curl, no GNU-only flags.
#
#   vt_init                  TMP, SRC (an allowed_sources root), GUEST (the
#                            peer's "/"), BPFFS, CTL, STATE, CFG; cleanup
#   start_peer NAME [ARGS]   kata-peer on $TMP/NAME.sock, root $GUEST
#   stop_peer NAME [SIG]
#   write_config [EXTRA_YAML] [WATCH...]   WATCH = "source|agent|dest"
#   start_daemon / kill_daemon SIG / daemon_alive
#   ctl ARGS...              voltrace ctl --socket $CTL
#   kw [--links-before] DIR KEY=VALUE|KEY@FILE...   one kubelet AtomicWriter
#                            update (KW_MODE: file mode, default 0644)
#   g DEST_SUFFIX            guest-side path of $SHARED/DEST_SUFFIX
#   vol NAME [PLUGIN]        make and print a kubelet volume dir below $SRC
#   converged SRC GUESTDIR   the guest shows exactly what the volume shows
#   wait_conv SRC GUESTDIR [SECS]
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VT_TEST_MODE=${VT_TEST_MODE:-tracepoint}
SHARED=/run/kata-containers/shared/containers
DAEMON_START_TIMEOUT=${DAEMON_START_TIMEOUT:-60}
declare -A PEER_PID=()
DPID=
METRICS_ADDRESS=${METRICS_ADDRESS:-off}
RING_BUFFER_SIZE=${RING_BUFFER_SIZE:-}

vt_cleanup() {
	local p
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	for p in "${PEER_PID[@]}"; do kill -9 "$p" 2>/dev/null; done
	[ -n "${BPFFS:-}" ] && rm -rf "$BPFFS"
	return 0
}

vt_init() {
	make_tmp
	SRC=$TMP/pods
	GUEST=$TMP/guest
	mkdir -p "$SRC" "$GUEST"
	BPFFS=/sys/fs/bpf/voltrace-test-$$-$RANDOM
	CTL=$TMP/ctl.sock
	STATE=$TMP/state.json
	CFG=$TMP/voltrace.yaml
	DLOG=$TMP/daemon.log
	at_exit vt_cleanup
	if [ ! -d /sys/fs/bpf ] || ! grep -q " /sys/fs/bpf " /proc/mounts; then
		mkdir -p /sys/fs/bpf
		mount -t bpf bpf /sys/fs/bpf
	fi
}

g() { echo "$GUEST$SHARED/$1"; }

# vol NAME [PLUGIN]: a kubelet volume directory of pod-NAME below $SRC
# (PLUGIN: configmap by default, or secret, projected, ...).
vol() {
	local d=$SRC/pod-$1/volumes/kubernetes.io~${2:-configmap}/$1
	mkdir -p "$d"
	echo "$d"
}

start_peer() {
	local name=$1
	shift
	rm -f "$TMP/$name.sock"
	"$KATA_PEER" -socket "$TMP/$name.sock" -root "$GUEST" -quiet "$@" \
		>>"$TMP/$name.log" 2>&1 &
	PEER_PID[$name]=$!
	wait_for 10 test -S "$TMP/$name.sock"
}

stop_peer() {
	local pid=${PEER_PID[$1]}
	kill "-${2:-TERM}" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "PEER_PID[$1]"
	return 0
}

# write_config [EXTRA_YAML] [WATCH...]; EXTRA_YAML may be "".
write_config() {
	local extra=$1 w s a d
	shift
	{
		echo "mode: $VT_TEST_MODE"
		echo "control_socket: $CTL"
		echo "metrics_address: \"$METRICS_ADDRESS\""
		echo "state_file: $STATE"
		echo "bpffs_dir: $BPFFS"
		echo "allowed_sources: [$SRC]"
		echo "debounce_ms: 5"
		[ -n "$RING_BUFFER_SIZE" ] && echo "ring_buffer_size: $RING_BUFFER_SIZE"
		[ -n "$extra" ] && printf '%s\n' "$extra"
		if [ $# -eq 0 ]; then
			echo "watches: []"
		else
			echo "watches:"
			for w; do
				IFS='|' read -r s a d <<<"$w"
				printf '  - source: %s\n    agent: %s\n    dest: %s\n' \
					"$s" "$a" "$d"
			done
		fi
	} >"$CFG"
}

start_daemon() {
	rm -f "$CTL"
	echo "---- daemon start $(date -u +%T)" >>"$DLOG"
	"$VOLTRACE" run --config "$CFG" --mode "$VT_TEST_MODE" \
		--log-level "${VT_LOG_LEVEL:-info}" >>"$DLOG" 2>&1 &
	DPID=$!
	if ! wait_for "$DAEMON_START_TIMEOUT" _started || [ ! -S "$CTL" ]; then
		echo "# daemon did not start; log:"
		sed 's/^/#   /' "$DLOG" | tail -n 20
		return 1
	fi
	daemon_alive
}

_started() { [ -S "$CTL" ] || ! daemon_alive; }
# A dead but unreaped child still answers kill -0: look at its state.
daemon_alive() {
	[ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null &&
		! grep -q '^State:[[:space:]]*Z' "/proc/$DPID/status" 2>/dev/null
}

# kill_daemon SIG: signal and reap; sets DRC to the exit status.
kill_daemon() {
	kill "-$1" "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	DRC=$?
	DPID=
}

ctl() { "$VOLTRACE" ctl --socket "$CTL" "$@"; }

# One update the way the kubelet's AtomicWriter does it: new ..<ts> dir
# with the whole payload, ..data_tmp -> ..<ts>, rename over ..data (the
# commit), user-visible links (before the commit with --links-before),
# links of removed keys deleted, old ..<ts> removed.
kw() {
	local before=0 dir old ts spec k top e name keep
	[ "$1" = --links-before ] && { before=1; shift; }
	dir=$1
	shift
	old=$(readlink "$dir/..data" 2>/dev/null)
	ts=..$(date -u +%Y_%m_%d_%H_%M_%S).$RANDOM$RANDOM
	mkdir "$dir/$ts" || return 1
	for spec; do
		case $spec in
		*=*) k=${spec%%=*} ;;
		*) k=${spec%%@*} ;;
		esac
		case $k in */*) mkdir -p "$dir/$ts/${k%/*}" ;; esac
		case $spec in
		*=*) printf '%s' "${spec#*=}" >"$dir/$ts/$k" ;;
		*) cat "${spec#*@}" >"$dir/$ts/$k" ;;
		esac
		chmod "${KW_MODE:-0644}" "$dir/$ts/$k"
	done
	_kw_links() {
		for spec; do
			k=${spec%%[=@]*}
			top=${k%%/*}
			[ -L "$dir/$top" ] || ln -s "..data/$top" "$dir/$top"
		done
	}
	[ "$before" = 1 ] && _kw_links "$@"
	ln -s "$ts" "$dir/..data_tmp"
	mv -T "$dir/..data_tmp" "$dir/..data" || return 1
	[ "$before" = 0 ] && _kw_links "$@"
	for e in "$dir"/*; do
		[ -L "$e" ] || continue
		name=${e##*/}
		keep=0
		for spec; do
			k=${spec%%[=@]*}
			[ "${k%%/*}" = "$name" ] && keep=1
		done
		[ "$keep" = 1 ] || rm -f "$e"
	done
	if [ -n "$old" ] && [ "$old" != "$ts" ]; then
		rm -rf "${dir:?}/$old"
	fi
	return 0
}

# The guest shows what the volume shows: same ..data target, same
# payload (content, modes, links), same user-visible links. Guest-only
# leftovers are expected and ignored: old ..<ts> dirs (no delete RPC) and
# the dangling links of deleted keys.
converged() {
	local s=$1 gd=$2 ts e name ign=()
	if [ -L "$s/..data" ]; then
		ts=$(readlink "$s/..data") || return 1
		[ "$(readlink "$gd/..data" 2>/dev/null)" = "$ts" ] || return 1
		for e in "$gd"/..?*; do
			name=${e##*/}
			[ -e "$e" ] || [ -L "$e" ] || continue
			case $name in ..data|"$ts") continue ;; esac
			[ -e "$s/$name" ] || ign+=(--ignore "$name")
		done
		for e in "$gd"/*; do
			name=${e##*/}
			[ -L "$e" ] || continue
			[ -e "$s/$name" ] || [ -L "$s/$name" ] || ign+=(--ignore "$name")
		done
	fi
	"$TREECMP" "${ign[@]}" "$s" "$gd" >"$TMP/treecmp.out" 2>&1
}

# Under emulation (the VM stage sets VT_VM) everything is slower.
WAIT_SCALE=${WAIT_SCALE:-$([ -n "${VT_VM:-}" ] && echo 4 || echo 1)}

wait_conv() {
	if wait_for $((${3:-10} * WAIT_SCALE)) converged "$1" "$2"; then
		return 0
	fi
	echo "# not converged: $1 -> $2"
	sed 's/^/#   /' "$TMP/treecmp.out" | head -n 10
	return 1
}

# Print min/median/max of the daemon's "synced ... latency_ms=" figures.
latency_summary() {
	grep -o 'latency_ms=[0-9][0-9.]*' "$DLOG" | cut -d= -f2 | sort -n >"$TMP/lat"
	local n
	n=$(wc -l <"$TMP/lat")
	[ "$n" -gt 0 ] || return 0
	echo "# propagation (kernel event -> last CopyFile acked), $n syncs:" \
		"min $(head -n 1 "$TMP/lat") ms," \
		"median $(sed -n "$(((n + 1) / 2))p" "$TMP/lat") ms," \
		"max $(tail -n 1 "$TMP/lat") ms"
}

# http_get HOST PORT PATH: the response body on stdout (bash /dev/tcp, so
# no curl needed); status non-zero unless "200".
http_get() {
	local line status body=0
	exec 9<>"/dev/tcp/$1/$2" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$3" "$1" "$2" >&9
	IFS= read -r line <&9
	status=$(echo "$line" | cut -d' ' -f2)
	while IFS= read -r line <&9 || [ -n "$line" ]; do
		if [ "$body" = 0 ]; then
			[ "${line%$'\r'}" = "" ] && body=1
			continue
		fi
		printf '%s\n' "$line"
	done
	exec 9<&-
	[ "$status" = 200 ]
}

# A free-looking TCP port on loopback (the test fails loudly if taken).
pick_port() { echo $((20000 + (RANDOM % 20000))); }
