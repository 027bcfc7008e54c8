// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Process-wide metrics. Counters and gauges are relaxed atomics (a scrape
 * may see one counter a hair ahead of another, which Prometheus tolerates);
 * the histogram takes a mutex so that a scrape always sees buckets, sum and
 * count from the same set of observations.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "metrics.h"
#include "util.h"
#include "voltrace.h"

static const char *const op_names[VT_OP_MAX] = {
	[VT_OP_RENAME] = "rename",
	[VT_OP_UNLINK] = "unlink",
	[VT_OP_RMDIR] = "rmdir",
};

static const char *const mode_names[VT_MODE_MAX] = {
	[VT_MODE_FENTRY] = "fentry",
	[VT_MODE_KPROBE] = "kprobe",
	[VT_MODE_TRACEPOINT] = "tracepoint",
};

static const char *const reason_names[METRICS_RECONCILE_MAX] = {
	[METRICS_RECONCILE_START] = "start",
	[METRICS_RECONCILE_DROPS] = "drops",
	[METRICS_RECONCILE_RECONNECT] = "reconnect",
	[METRICS_RECONCILE_RELOAD] = "reload",
	[METRICS_RECONCILE_NEW_WATCH] = "new_watch",
	[METRICS_RECONCILE_SOURCE_CHANGED] = "source_changed",
	[METRICS_RECONCILE_RETRY] = "retry",
	[METRICS_RECONCILE_PERIODIC] = "periodic",
};

static const char *const method_names[METRICS_CTL_MAX] = {
	[METRICS_CTL_WATCH] = "Watch",
	[METRICS_CTL_UNWATCH] = "Unwatch",
	[METRICS_CTL_LIST] = "List",
	[METRICS_CTL_STATUS] = "Status",
	[METRICS_CTL_OTHER] = "other",
};

static const double sync_bounds[METRICS_SYNC_NBUCKETS] = METRICS_SYNC_BUCKETS;

static struct {
	uint64_t events[VT_OP_MAX][VT_MODE_MAX];
	uint64_t dropped;		/* exported total */
	uint64_t dropped_kernel_last;	/* last kernel total seen */
	uint64_t syncs[2];		/* [0] ok, [1] error */
	uint64_t bytes, files;
	uint64_t reconnects, agent_errors;
	uint64_t reconciles[METRICS_RECONCILE_MAX];
	uint64_t control[METRICS_CTL_MAX][2];
	int64_t watches, agents, stale_dirs;
	uint64_t start_unix_ns;
} m;

static struct {
	pthread_mutex_t lock;
	uint64_t buckets[METRICS_SYNC_NBUCKETS];	/* non-cumulative */
	uint64_t count;
	double sum;
	char *version;
	char *mode;
} h = { .lock = PTHREAD_MUTEX_INITIALIZER };

#define ADD(var, n) __atomic_fetch_add(&(var), (n), __ATOMIC_RELAXED)
#define LOAD(var) __atomic_load_n(&(var), __ATOMIC_RELAXED)
#define STORE(var, v) __atomic_store_n(&(var), (v), __ATOMIC_RELAXED)

void metrics_set_info(const char *version, const char *mode)
{
	char *v = strdup(version ? version : "unknown");
	char *md = strdup(mode ? mode : "none");

	pthread_mutex_lock(&h.lock);
	free(h.version);
	free(h.mode);
	h.version = v;
	h.mode = md;
	if (!m.start_unix_ns)
		m.start_unix_ns = realtime_ns();
	pthread_mutex_unlock(&h.lock);
}

void metrics_event(unsigned int op, unsigned int mode)
{
	if (op < VT_OP_MAX && mode < VT_MODE_MAX)
		ADD(m.events[op][mode], 1);
}

void metrics_events_dropped_set(uint64_t kernel_total)
{
	/* Serialised with the histogram lock: rare, and keeps last/total coherent. */
	pthread_mutex_lock(&h.lock);
	if (kernel_total >= m.dropped_kernel_last)
		ADD(m.dropped, kernel_total - m.dropped_kernel_last);
	else
		ADD(m.dropped, kernel_total);
	m.dropped_kernel_last = kernel_total;
	pthread_mutex_unlock(&h.lock);
}

void metrics_events_dropped_add(uint64_t n)
{
	ADD(m.dropped, n);
}

void metrics_sync_done(bool ok, double seconds)
{
	ADD(m.syncs[ok ? 0 : 1], 1);
	if (!(seconds >= 0) || isinf(seconds))
		return;
	pthread_mutex_lock(&h.lock);
	for (size_t i = 0; i < METRICS_SYNC_NBUCKETS; i++) {
		if (seconds <= sync_bounds[i]) {
			h.buckets[i]++;
			break;
		}
	}
	h.count++;
	h.sum += seconds;
	pthread_mutex_unlock(&h.lock);
}

void metrics_bytes_copied(uint64_t bytes)
{
	ADD(m.bytes, bytes);
}

void metrics_files_copied(uint64_t files)
{
	ADD(m.files, files);
}

void metrics_watches_set(int64_t n)
{
	STORE(m.watches, n);
}

void metrics_agents_set(int64_t n)
{
	STORE(m.agents, n);
}

void metrics_agent_reconnect(void)
{
	ADD(m.reconnects, 1);
}

void metrics_agent_error(void)
{
	ADD(m.agent_errors, 1);
}

void metrics_reconcile(enum metrics_reconcile_reason reason)
{
	if ((unsigned int)reason < METRICS_RECONCILE_MAX)
		ADD(m.reconciles[reason], 1);
}

void metrics_guest_stale_dirs_set(int64_t n)
{
	STORE(m.stale_dirs, n);
}

void metrics_guest_stale_dirs_add(int64_t n)
{
	ADD(m.stale_dirs, n);
}

void metrics_control_request(enum metrics_control_method method, bool ok)
{
	if ((unsigned int)method < METRICS_CTL_MAX)
		ADD(m.control[method][ok ? 0 : 1], 1);
}

void metrics_snapshot(struct metrics_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	for (int o = 0; o < VT_OP_MAX; o++)
		for (int md = 0; md < VT_MODE_MAX; md++)
			out->events += LOAD(m.events[o][md]);
	out->events_dropped = LOAD(m.dropped);
	out->syncs_ok = LOAD(m.syncs[0]);
	out->syncs_error = LOAD(m.syncs[1]);
	out->bytes_copied = LOAD(m.bytes);
	out->files_copied = LOAD(m.files);
	out->agent_reconnects = LOAD(m.reconnects);
	out->agent_errors = LOAD(m.agent_errors);
	for (int r = 0; r < METRICS_RECONCILE_MAX; r++)
		out->reconciles += LOAD(m.reconciles[r]);
	out->watches = LOAD(m.watches);
	out->agents = LOAD(m.agents);
	out->guest_stale_dirs = LOAD(m.stale_dirs);
}

void metrics_reset(void)
{
	pthread_mutex_lock(&h.lock);
	memset(&m, 0, sizeof(m));
	memset(h.buckets, 0, sizeof(h.buckets));
	h.count = 0;
	h.sum = 0;
	free(h.version);
	free(h.mode);
	h.version = NULL;
	h.mode = NULL;
	pthread_mutex_unlock(&h.lock);
}

char *metrics_escape_label(const char *value)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = value; *p; p++)
		n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	o = out;
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"') {
			*o++ = '\\';
			*o++ = *p;
		} else if (*p == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* A growing output buffer; a failed append marks it failed for good. */
struct buf {
	FILE *f;
	char *data;
	size_t len;
};

__attribute__((format(printf, 2, 3)))
static void out(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(b->f, fmt, ap);
	va_end(ap);
}

static void head(struct buf *b, const char *name, const char *type,
		 const char *help)
{
	out(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Prometheus floats: shortest form that reads back the same. */
static void fmt_float(char *s, size_t n, double v)
{
	if (isinf(v)) {
		snprintf(s, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	double a = fabs(v);
	bool plain = a == 0 || (a >= 1e-4 && a < 1e15);

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(s, n, "%.*g", prec, v);
		/* "10", not "1e+01", wherever %g can print it plainly */
		if (plain && strchr(s, 'e') && prec < 17)
			continue;
		if (strtod(s, NULL) == v)
			return;
	}
}

static void render_info(struct buf *b)
{
	char *v, *md;

	pthread_mutex_lock(&h.lock);
	v = metrics_escape_label(h.version ? h.version : "unknown");
	md = metrics_escape_label(h.mode ? h.mode : "none");
	pthread_mutex_unlock(&h.lock);
	head(b, "voltrace_build_info", "gauge",
	     "voltrace version and attach mode in use; the value is always 1.");
	out(b, "voltrace_build_info{version=\"%s\",mode=\"%s\"} 1\n",
	    v ? v : "", md ? md : "");
	free(v);
	free(md);
	head(b, "voltrace_start_time_seconds", "gauge",
	     "Start time of the daemon since the Unix epoch in seconds.");
	out(b, "voltrace_start_time_seconds %.3f\n", LOAD(m.start_unix_ns) / 1e9);
}

static void render_events(struct buf *b)
{
	head(b, "voltrace_events_total", "counter",
	     "Events received from the kernel ring buffer, by operation and attach mode.");
	for (int o = 0; o < VT_OP_MAX; o++)
		for (int md = 0; md < VT_MODE_MAX; md++)
			out(b, "voltrace_events_total{op=\"%s\",mode=\"%s\"} %llu\n",
			    op_names[o], mode_names[md],
			    (unsigned long long)LOAD(m.events[o][md]));
	head(b, "voltrace_events_dropped_total", "counter",
	     "Events lost because the ring buffer was full (each triggers a full reconcile).");
	out(b, "voltrace_events_dropped_total %llu\n", (unsigned long long)LOAD(m.dropped));
}

static void render_syncs(struct buf *b)
{
	uint64_t buckets[METRICS_SYNC_NBUCKETS], count, cum = 0;
	char le[32], sum[32];
	double s;

	head(b, "voltrace_syncs_total", "counter",
	     "Syncs of one watch destination, by result.");
	out(b, "voltrace_syncs_total{result=\"ok\"} %llu\n",
	    (unsigned long long)LOAD(m.syncs[0]));
	out(b, "voltrace_syncs_total{result=\"error\"} %llu\n",
	    (unsigned long long)LOAD(m.syncs[1]));

	pthread_mutex_lock(&h.lock);
	memcpy(buckets, h.buckets, sizeof(buckets));
	count = h.count;
	s = h.sum;
	pthread_mutex_unlock(&h.lock);
	head(b, "voltrace_sync_duration_seconds", "histogram",
	     "Time from the kernel event to the last CopyFile acknowledged by the guest agent.");
	for (size_t i = 0; i < METRICS_SYNC_NBUCKETS; i++) {
		cum += buckets[i];
		fmt_float(le, sizeof(le), sync_bounds[i]);
		out(b, "voltrace_sync_duration_seconds_bucket{le=\"%s\"} %llu\n", le,
		    (unsigned long long)cum);
	}
	out(b, "voltrace_sync_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)count);
	fmt_float(sum, sizeof(sum), s);
	out(b, "voltrace_sync_duration_seconds_sum %s\n", sum);
	out(b, "voltrace_sync_duration_seconds_count %llu\n", (unsigned long long)count);

	head(b, "voltrace_bytes_copied_total", "counter",
	     "File bytes sent to guest agents with CopyFile.");
	out(b, "voltrace_bytes_copied_total %llu\n", (unsigned long long)LOAD(m.bytes));
	head(b, "voltrace_files_copied_total", "counter",
	     "Files, directories and symlinks created in guests with CopyFile.");
	out(b, "voltrace_files_copied_total %llu\n", (unsigned long long)LOAD(m.files));
}

static void render_state(struct buf *b)
{
	head(b, "voltrace_watches", "gauge", "Registered (source, dest) watches.");
	out(b, "voltrace_watches %lld\n", (long long)LOAD(m.watches));
	head(b, "voltrace_agent_connections", "gauge", "Open guest agent connections.");
	out(b, "voltrace_agent_connections %lld\n", (long long)LOAD(m.agents));
	head(b, "voltrace_agent_reconnects_total", "counter",
	     "Guest agent connections re-established after a failure.");
	out(b, "voltrace_agent_reconnects_total %llu\n",
	    (unsigned long long)LOAD(m.reconnects));
	head(b, "voltrace_agent_errors_total", "counter",
	     "Failed guest agent calls (connect, I/O or refusal).");
	out(b, "voltrace_agent_errors_total %llu\n",
	    (unsigned long long)LOAD(m.agent_errors));
	head(b, "voltrace_reconciles_total", "counter",
	     "Full reconciles of a watch, by reason.");
	for (int r = 0; r < METRICS_RECONCILE_MAX; r++)
		out(b, "voltrace_reconciles_total{reason=\"%s\"} %llu\n", reason_names[r],
		    (unsigned long long)LOAD(m.reconciles[r]));
	head(b, "voltrace_guest_stale_dirs", "gauge",
	     "Old ..<timestamp> directories left in guests (the agent has no delete RPC).");
	out(b, "voltrace_guest_stale_dirs %lld\n", (long long)LOAD(m.stale_dirs));
	head(b, "voltrace_control_requests_total", "counter",
	     "Control API requests, by method and result.");
	for (int c = 0; c < METRICS_CTL_MAX; c++)
		for (int r = 0; r < 2; r++)
			out(b, "voltrace_control_requests_total{method=\"%s\",result=\"%s\"} %llu\n",
			    method_names[c], r ? "error" : "ok",
			    (unsigned long long)LOAD(m.control[c][r]));
}

char *metrics_render(size_t *len)
{
	struct buf b = { 0 };

	b.f = open_memstream(&b.data, &b.len);
	if (!b.f)
		return NULL;
	render_info(&b);
	render_events(&b);
	render_syncs(&b);
	render_state(&b);
	if (ferror(b.f)) {
		fclose(b.f);
		free(b.data);
		return NULL;
	}
	if (fclose(b.f)) {
		free(b.data);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.data;
}
