/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The daemon's Prometheus metrics: one process-wide registry with a fixed
 * set of metrics and fixed label values (no unbounded cardinality), updated
 * lock-free from any thread and rendered to the text exposition format
 * (version 0.0.4) by metrics_render(); metrics_http.h serves it.
 *
 *   metrics_set_info(VOLTRACE_VERSION, "tracepoint");   // once the mode is known
 *   metrics_event(e->op, e->mode);                      // per ring-buffer event
 *   metrics_events_dropped_set(kernel_drop_total);      // from tracer counters
 *   metrics_sync_done(true, seconds);                   // per dest sync
 *   metrics_reconcile(METRICS_RECONCILE_DROPS);
 *
 * Every call is safe from any thread; none allocates or blocks except
 * metrics_sync_done (a short mutex for the histogram) and metrics_render.
 */
#ifndef VT_METRICS_H
#define VT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metrics_reconcile_reason {
	METRICS_RECONCILE_START = 0,	/* daemon start / state restore */
	METRICS_RECONCILE_DROPS,	/* ring buffer dropped events */
	METRICS_RECONCILE_RECONNECT,	/* agent connection came back */
	METRICS_RECONCILE_RELOAD,	/* SIGHUP config reload */
	METRICS_RECONCILE_NEW_WATCH,	/* initial copy of a new watch */
	METRICS_RECONCILE_SOURCE_CHANGED, /* (dev, ino) of a source changed */
	METRICS_RECONCILE_RETRY,	/* retry after a failed sync */
	METRICS_RECONCILE_PERIODIC,	/* resync_interval_s safety net */
	METRICS_RECONCILE_MAX,
};

enum metrics_control_method {
	METRICS_CTL_WATCH = 0,
	METRICS_CTL_UNWATCH,
	METRICS_CTL_LIST,
	METRICS_CTL_STATUS,
	METRICS_CTL_OTHER,		/* unknown service or method */
	METRICS_CTL_MAX,
};

/* Upper bounds (seconds) of voltrace_sync_duration_seconds; +Inf is implied. */
#define METRICS_SYNC_BUCKETS \
	{ 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
#define METRICS_SYNC_NBUCKETS 13

/* voltrace_build_info{version,mode} 1; strings are copied. */
void metrics_set_info(const char *version, const char *mode);

/* voltrace_events_total{op,mode}: op is enum vt_op, mode enum vt_mode. */
void metrics_event(unsigned int op, unsigned int mode);
/*
 * voltrace_events_dropped_total: the kernel keeps the authoritative count
 * (per-CPU map); set the running total here. It never goes backwards: a
 * smaller value (map recreated) is added on top instead.
 */
void metrics_events_dropped_set(uint64_t kernel_total);
void metrics_events_dropped_add(uint64_t n);

/*
 * One sync of one dest finished. voltrace_syncs_total{result="ok"|"error"};
 * seconds (kernel event timestamp to the last CopyFile acked) goes into
 * voltrace_sync_duration_seconds when >= 0 (pass -1 to count only).
 */
void metrics_sync_done(bool ok, double seconds);
void metrics_bytes_copied(uint64_t bytes);	/* voltrace_bytes_copied_total */
void metrics_files_copied(uint64_t files);	/* voltrace_files_copied_total */
void metrics_watches_set(int64_t n);		/* voltrace_watches */
void metrics_agents_set(int64_t n);		/* voltrace_agent_connections */
void metrics_agent_reconnect(void);		/* voltrace_agent_reconnects_total */
void metrics_agent_error(void);			/* voltrace_agent_errors_total */
void metrics_reconcile(enum metrics_reconcile_reason reason);
void metrics_guest_stale_dirs_set(int64_t n);	/* voltrace_guest_stale_dirs */
void metrics_guest_stale_dirs_add(int64_t n);
void metrics_control_request(enum metrics_control_method m, bool ok);

/* Read back (for `voltrace ctl status` and tests). */
struct metrics_snapshot {
	uint64_t events;		/* all ops and modes */
	uint64_t events_dropped;
	uint64_t syncs_ok;
	uint64_t syncs_error;
	uint64_t bytes_copied;
	uint64_t files_copied;
	uint64_t agent_reconnects;
	uint64_t agent_errors;
	uint64_t reconciles;		/* all reasons */
	int64_t watches;
	int64_t agents;
	int64_t guest_stale_dirs;
};
void metrics_snapshot(struct metrics_snapshot *out);

/* The exposition text (malloc'd, NUL-terminated), or NULL on ENOMEM. */
char *metrics_render(size_t *len);

/* Back to zero (tests). */
void metrics_reset(void);

/* Label value escaping of the text format (\\, \", \n); malloc'd. */
char *metrics_escape_label(const char *value);

#endif /* VT_METRICS_H */
