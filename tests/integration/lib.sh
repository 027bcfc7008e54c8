# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Shared helpers for tests/integration/test_*.sh (bash; busybox tools are
# enough). Source it:  . "$(dirname "$0")/lib.sh"
#
#   ok NAME / not_ok NAME [DETAIL]   TAP result lines; not_ok sets failure
#   check NAME CMD...                ok if CMD succeeds, else not_ok
#   at_exit CMD                      run CMD (eval'd) at exit, last first
#   wait_for SECONDS CMD...          poll CMD every 0.1 s until it succeeds
#   make_tmp                         sets TMP to a fresh directory removed at exit
#   finish                           exit 1 if any not_ok was printed
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTPUT=${OUTPUT:-build}
case $OUTPUT in /*) ;; *) OUTPUT=$ROOT/$OUTPUT ;; esac
VOLTRACE=${VOLTRACE:-$OUTPUT/voltrace}
TREECMP=${TREECMP:-$OUTPUT/tests/tools/treecmp}
KATA_PEER=${KATA_PEER:-$OUTPUT/tests/kata-peer}
_vt_failures=0
_vt_exit_cmds=()

ok() { echo "ok - $1"; }
not_ok() {
	echo "not ok - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /'
	_vt_failures=$((_vt_failures + 1))
	return 0
}
check() {
	local name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

_vt_run_exit() {
	local i
	for ((i = ${#_vt_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${_vt_exit_cmds[$i]}" >/dev/null 2>&1 || true
	done
}
trap _vt_run_exit EXIT
trap 'exit 130' INT TERM
at_exit() { _vt_exit_cmds+=("$1"); }

wait_for() {
	local secs=$1; shift
	local tries=$((secs * 10))
	while [ "$tries" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

make_tmp() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/vt-test.XXXXXX")
	at_exit "rm -rf '$TMP'"
}

finish() {
	[ "$_vt_failures" -eq 0 ]
	exit $?
}
