#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The daemon's /metrics: a live scrape after real syncs passes
# `promtool check metrics` and has every metric the contract names; a real
# Prometheus server scrapes the daemon and answers voltrace_ series
# through its query API.
. "$(dirname "$0")/daemon_lib.sh"

vt_init
start_peer agent || { not_ok "kata-peer starts"; finish; }
AGENT=unix://$TMP/agent.sock
MPORT=$(pick_port)
METRICS_ADDRESS=127.0.0.1:$MPORT

V1=$SRC/pod/volumes/kubernetes.io~configmap/cm
mkdir -p "$V1"
kw "$V1" a=1
write_config "" "$V1|$AGENT|$SHARED/c1/cm"
start_daemon || { not_ok "daemon starts (mode $VT_TEST_MODE)"; finish; }
check "initial copy" wait_conv "$V1" "$(g c1/cm)" 20
kw "$V1" a=2 b=3
check "update" wait_conv "$V1" "$(g c1/cm)"

if http_get 127.0.0.1 "$MPORT" /metrics >"$TMP/metrics"; then
	ok "GET /metrics"
else
	not_ok "GET /metrics"
fi
if command -v promtool >/dev/null; then
	if promtool check metrics <"$TMP/metrics" >"$TMP/promtool.out" 2>&1; then
		ok "promtool check metrics on a live scrape"
	else
		not_ok "promtool check metrics on a live scrape" "$(cat "$TMP/promtool.out")"
	fi
fi
for m in voltrace_events_total voltrace_events_dropped_total \
	voltrace_syncs_total voltrace_sync_duration_seconds_bucket \
	voltrace_bytes_copied_total voltrace_files_copied_total \
	voltrace_watches voltrace_agent_reconnects_total \
	voltrace_reconciles_total voltrace_guest_stale_dirs; do
	check "metric $m present" grep -q "^$m[{ ]" "$TMP/metrics"
done
check "events counted with op and mode labels" \
	grep -q "^voltrace_events_total{op=\"rename\",mode=\"$VT_TEST_MODE\"} [1-9]" "$TMP/metrics"
check "successful syncs counted" \
	grep -q '^voltrace_syncs_total{result="ok"} [1-9]' "$TMP/metrics"
check "one stale guest dir after one update" \
	grep -q '^voltrace_guest_stale_dirs 1$' "$TMP/metrics"
check "sync durations observed" \
	grep -q '^voltrace_sync_duration_seconds_count [1-9]' "$TMP/metrics"

# A real Prometheus server scraping the daemon.
if command -v prometheus >/dev/null; then
	PPORT=$(pick_port)
	mkdir -p "$TMP/prom"
	cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: voltrace
    static_configs:
      - targets: ["127.0.0.1:$MPORT"]
EOF
	prometheus --config.file="$TMP/prometheus.yml" \
		--storage.tsdb.path="$TMP/prom" \
		--web.listen-address="127.0.0.1:$PPORT" \
		>"$TMP/prometheus.log" 2>&1 &
	ppid=$!
	at_exit "kill $ppid; wait $ppid"
	query() {
		http_get 127.0.0.1 "$PPORT" "/api/v1/query?query=$1" >"$TMP/q.json" &&
			grep -q "\"__name__\":\"$1\"" "$TMP/q.json"
	}
	if wait_for 30 query voltrace_watches; then
		ok "prometheus server scraped voltrace_watches"
	else
		not_ok "prometheus server scraped voltrace_watches" \
			"$(cat "$TMP/q.json" 2>/dev/null; tail -n 5 "$TMP/prometheus.log")"
	fi
	check "prometheus query: voltrace_syncs_total" query voltrace_syncs_total
	check "prometheus query: target up" eval \
		'http_get 127.0.0.1 "$PPORT" "/api/v1/query?query=up" | grep -q "\"value\":\[[0-9.]*,\"1\"\]"'
fi

kill_daemon TERM
check "SIGTERM: exit status 0" test "$DRC" -eq 0
finish
