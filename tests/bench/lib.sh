# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Shared helpers of the benchmark scripts (bash + awk; busybox-safe, so
# overhead.sh also runs inside the VM).
#   median            median of the numbers on stdin ("nan" when none)
#   pctl P            P-th percentile (nearest rank) of the numbers on stdin
#   wait_file_re SECS FILE REGEX   until FILE has a line matching REGEX
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTPUT=${OUTPUT:-build}
case $OUTPUT in /*) ;; *) OUTPUT=$ROOT/$OUTPUT ;; esac
VOLTRACE=${VOLTRACE:-$OUTPUT/voltrace}
BENCHBIN=${BENCHBIN:-$OUTPUT/tests/bench}
KATA_PEER=${KATA_PEER:-$OUTPUT/tests/kata-peer}

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

pctl() {
	sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
		print v[i] }'
}

wait_file_re() {
	local tries=$(($1 * 10))
	while [ "$tries" -gt 0 ]; do
		grep -qE "$3" "$2" 2>/dev/null && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}
