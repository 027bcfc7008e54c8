// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Debounced, coalescing, per-dest syncs run by a small worker pool. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest_path.h"
#include "log.h"
#include "sync_engine.h"
#include "util.h"
#include "vol_snapshot.h"

#define NS_PER_MS	1000000ull

enum job_result {
	JOB_OK = 0,
	JOB_FAILED,		/* error set; retriable says whether to retry */
	JOB_SUPERSEDED,		/* the volume moved on mid-sync: go again now */
	JOB_SOURCE_GONE,	/* not the registered directory any more */
	JOB_CANCELLED,		/* shutdown before it started */
};

struct job {
	struct job *next;
	struct reg_dest *d;	/* identity only: workers never touch it */
	/* inputs, copied */
	char *real;
	dev_t dev;
	ino_t ino;
	char *dest;
	struct agent_conn *conn;
	struct dest_state state;	/* lent by the dest, given back */
	uint64_t event_ns;
	/* outputs */
	enum job_result result;
	bool retriable;
	bool agent_error;	/* the failure came from a CopyFile call */
	char *error;
	char *data_target;
	struct agent_counters ctr;
	size_t ops;
	size_t skipped;
	uint64_t done_ns;
};

struct sync_engine {
	struct registry *reg;
	unsigned int debounce_ms;
	sync_source_fn on_source_problem;
	void *ctx;
	int efd;
	pthread_t *threads;
	unsigned int nthreads;
	pthread_mutex_t lock;
	pthread_cond_t work;	/* queue non-empty or quit */
	pthread_cond_t idle;	/* a running job finished */
	struct job *queue, **queue_tail;
	struct job *done;
	unsigned int running;	/* in workers, guarded by lock */
	unsigned int outstanding;	/* dispatched, not completed (main) */
	bool quit;
	bool stopping;
};

/* ---- worker side ------------------------------------------------------------ */

static void job_fail(struct job *j, bool retriable, const char *fmt,
		     const char *a, const char *b)
{
	j->result = JOB_FAILED;
	j->retriable = retriable;
	free(j->error);
	if (asprintf(&j->error, fmt, a, b) < 0)
		j->error = NULL;
}

static int op_exec(struct job *j, int fd, const struct plan_op *op,
		   struct ttrpc_status *st)
{
	struct stat sb = { .st_uid = op->uid, .st_gid = op->gid };
	char *gp;
	int rc = -1;

	gp = op->dst[0] ? guest_path_join(j->dest, op->dst) : strdup(j->dest);
	if (!gp)
		return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
					"guest path %s/%s refused", j->dest,
					op->dst);
	switch (op->kind) {
	case PLAN_MKDIR:
		sb.st_mode = S_IFDIR | op->mode;
		rc = agent_put_dir(j->conn, gp, &sb, &j->ctr, st);
		break;
	case PLAN_FILE:
		rc = agent_put_file(j->conn, fd, op->src, gp, &j->ctr, st);
		break;
	case PLAN_SYMLINK:
		sb.st_mode = S_IFLNK | 0777;
		rc = agent_put_symlink(j->conn, gp, op->target, &sb, &j->ctr,
				       st);
		break;
	}
	free(gp);
	return rc;
}

/* After a local failure: did the kubelet commit something newer? */
static bool data_moved(int fd, const char *old)
{
	char buf[VT_NAME_MAX];
	ssize_t n;

	if (!old)
		return false;
	n = readlinkat(fd, SYNC_DATA_LINK, buf, sizeof(buf) - 1);
	if (n < 0)
		return true;
	buf[n] = '\0';
	return strcmp(buf, old) != 0;
}

static void job_send(struct job *j, int fd, struct vol_snapshot *snap)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct sync_plan plan;
	size_t i;
	int err;

	err = sync_plan_build(snap, &j->state, &plan);
	if (err) {
		job_fail(j, false, "planning %s: %s", j->real, strerror(-err));
		return;
	}
	j->skipped = plan.skipped;
	for (i = 0; i < plan.n; i++) {
		if (op_exec(j, fd, &plan.ops[i], &st) < 0)
			break;
		if (dest_state_apply(&j->state, &plan.ops[i]) < 0) {
			ttrpc_status_set(&st, GRPC_INTERNAL, "out of memory");
			break;
		}
		j->ops++;
	}
	if (i < plan.n) {
		if (!st.remote && data_moved(fd, snap->data_target))
			j->result = JOB_SUPERSEDED;
		else
			job_fail(j, ttrpc_status_retriable(&st) || !st.remote,
				 "%s: %s", plan.ops[i].dst[0] ?
				 plan.ops[i].dst : ".", ttrpc_status_str(&st));
		j->agent_error = j->result == JOB_FAILED;
	}
	ttrpc_status_clear(&st);
	sync_plan_free(&plan);
}

static void job_run(struct job *j)
{
	struct vol_snapshot snap;
	struct stat st;
	char *err = NULL;
	int fd, rc;

	fd = open(j->real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			j->result = JOB_SOURCE_GONE;
		else
			job_fail(j, true, "open %s: %s", j->real,
				 strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || st.st_dev != j->dev || st.st_ino != j->ino) {
		j->result = JOB_SOURCE_GONE;
		goto out_close;
	}
	rc = vol_snapshot_read(fd, &snap, &err);
	if (rc == -ESTALE) {
		j->result = JOB_SUPERSEDED;
	} else if (rc) {
		job_fail(j, true, "reading %s: %s", j->real,
			 err ? err : strerror(-rc));
	} else {
		j->data_target = snap.data_target ? strdup(snap.data_target) :
						    NULL;
		job_send(j, fd, &snap);
		vol_snapshot_free(&snap);
	}
	free(err);
out_close:
	close(fd);
out:
	j->done_ns = now_ns();
}

static void *worker_main(void *arg)
{
	struct sync_engine *e = arg;
	uint64_t one = 1;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&e->lock);
		while (!e->queue && !e->quit)
			pthread_cond_wait(&e->work, &e->lock);
		if (!e->queue) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		j = e->queue;
		e->queue = j->next;
		if (!e->queue)
			e->queue_tail = &e->queue;
		e->running++;
		pthread_mutex_unlock(&e->lock);

		job_run(j);

		pthread_mutex_lock(&e->lock);
		e->running--;
		j->next = e->done;
		e->done = j;
		pthread_cond_broadcast(&e->idle);
		pthread_mutex_unlock(&e->lock);
		if (write(e->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("waking the event loop failed", "error",
				 strerror(errno));
	}
	return NULL;
}

/* ---- main-thread side ------------------------------------------------------- */

int sync_engine_new(struct registry *reg, const struct sync_engine_opts *o,
		    struct sync_engine **out)
{
	struct sync_engine *e = calloc(1, sizeof(*e));
	unsigned int i;
	int err;

	if (!e)
		return -ENOMEM;
	e->reg = reg;
	e->debounce_ms = o->debounce_ms;
	e->on_source_problem = o->on_source_problem;
	e->ctx = o->ctx;
	e->nthreads = o->workers ? o->workers : SYNC_ENGINE_DEFAULT_WORKERS;
	e->queue_tail = &e->queue;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->work, NULL);
	pthread_cond_init(&e->idle, NULL);
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e->threads = calloc(e->nthreads, sizeof(*e->threads));
	if (e->efd < 0 || !e->threads) {
		err = e->efd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	for (i = 0; i < e->nthreads; i++) {
		err = -pthread_create(&e->threads[i], NULL, worker_main, e);
		if (err) {
			e->nthreads = i;
			goto fail;
		}
	}
	*out = e;
	return 0;
fail:
	sync_engine_free(e);
	return err;
}

int sync_engine_fd(const struct sync_engine *e)
{
	return e->efd;
}

void sync_engine_set_debounce(struct sync_engine *e, unsigned int ms)
{
	e->debounce_ms = ms;
}

unsigned int sync_engine_busy(const struct sync_engine *e)
{
	return e->outstanding;
}

void sync_engine_event(struct sync_engine *e, struct reg_source *s,
		       uint64_t ktime_ns, bool commit)
{
	uint64_t now = now_ns();
	uint64_t due = commit ? now : now + e->debounce_ms * NS_PER_MS;
	struct reg_dest *d;

	for (d = s->dests; d; d = d->next) {
		if (!d->sync.event_ns)
			d->sync.event_ns = ktime_ns;
		if (d->sync.pending) {
			/* The earlier deadline stands, unless this commit is sooner. */
			if (due < d->sync.due_ns)
				d->sync.due_ns = due;
			continue;
		}
		d->sync.pending = true;
		d->sync.due_ns = due;
		d->sync.reason = -1;
	}
}

void sync_engine_request(struct sync_engine *e, struct reg_dest *d,
			 enum metrics_reconcile_reason why, bool clear)
{
	(void)e;
	d->sync.pending = true;
	d->sync.due_ns = 0;
	d->sync.retry_ns = 0;
	d->sync.reason = why;
	if (clear)
		d->sync.clear_state = true;
}

void sync_engine_reconcile_source(struct sync_engine *e, struct reg_source *s,
				  enum metrics_reconcile_reason why)
{
	struct reg_dest *d;

	metrics_reconcile(why);
	for (d = s->dests; d; d = d->next)
		sync_engine_request(e, d, why, false);
}

void sync_engine_reconcile_all(struct sync_engine *e,
			       enum metrics_reconcile_reason why)
{
	struct reg_source *s;
	struct reg_dest *d;

	metrics_reconcile(why);
	registry_for_each_dest(e->reg, s, d)
		sync_engine_request(e, d, why, false);
}

static void reconcile_agent(struct sync_engine *e, struct reg_agent *a)
{
	struct reg_source *s;
	struct reg_dest *d;
	uint64_t n = agent_conn_reconnects(a->conn);

	if (n == a->reconnects_seen)
		return;
	a->reconnects_seen = n;
	metrics_agent_reconnect();
	metrics_reconcile(METRICS_RECONCILE_RECONNECT);
	log_info("agent reconnected: full re-sync of its dests", "agent",
		 a->url, "reconnects", LOG_U64(n));
	/* The guest may be new or have missed writes: trust nothing. */
	registry_for_each_dest(e->reg, s, d)
		if (d->agent == a)
			sync_engine_request(e, d, METRICS_RECONCILE_RECONNECT,
					    true);
}

static uint64_t backoff_ns(unsigned int failures)
{
	uint64_t ms = SYNC_BACKOFF_INITIAL_MS;

	while (--failures && ms < SYNC_BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > SYNC_BACKOFF_MAX_MS)
		ms = SYNC_BACKOFF_MAX_MS;
	return ms * NS_PER_MS;
}

static void job_free(struct job *j)
{
	dest_state_clear(&j->state);
	free(j->real);
	free(j->dest);
	free(j->error);
	free(j->data_target);
	free(j);
}

static void complete_ok(struct reg_dest *d, struct job *j)
{
	struct timespec ts;
	double secs = -1;

	if (j->event_ns && j->done_ns > j->event_ns)
		secs = (double)(j->done_ns - j->event_ns) / 1e9;
	metrics_sync_done(true, secs);
	metrics_files_copied(j->ctr.files);
	metrics_bytes_copied(j->ctr.bytes);
	clock_gettime(CLOCK_REALTIME, &ts);
	d->sync.last_sync_unix_ns = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	d->sync.syncs++;
	d->sync.files += j->ctr.files;
	d->sync.bytes += j->ctr.bytes;
	if (d->sync.failures)
		log_info("sync recovered", "source", j->real, "dest", d->dest,
			 "after_failures", LOG_U64(d->sync.failures));
	d->sync.failures = 0;
	free(d->sync.last_error);
	d->sync.last_error = NULL;
	if (j->ops || log_enabled(LOG_LVL_DEBUG))
		vt_log(j->ops ? LOG_LVL_INFO : LOG_LVL_DEBUG, "synced",
		       "source", j->real, "dest", d->dest,
		       "data", j->data_target ? j->data_target : "-",
		       "ops", LOG_U64(j->ops), "skipped", LOG_U64(j->skipped),
		       "files", LOG_U64(j->ctr.files),
		       "bytes", LOG_U64(j->ctr.bytes),
		       "latency_ms", secs >= 0 ? LOG_F64(secs * 1e3) : "-",
		       NULL);
}

static void complete_failed(struct reg_dest *d, struct job *j)
{
	uint64_t when;

	metrics_sync_done(false, -1);
	metrics_files_copied(j->ctr.files);
	metrics_bytes_copied(j->ctr.bytes);
	if (j->agent_error)
		metrics_agent_error();
	d->sync.failures++;
	free(d->sync.last_error);
	d->sync.last_error = j->error ? strdup(j->error) : NULL;
	/* Keep the event time: the histogram measures until it lands. */
	if (j->event_ns && !d->sync.event_ns)
		d->sync.event_ns = j->event_ns;
	if (!j->retriable) {
		log_error("sync failed, not retrying until the volume changes",
			  "source", j->real, "dest", d->dest,
			  "error", j->error ? j->error : "?");
		return;
	}
	when = now_ns() + backoff_ns(d->sync.failures);
	if (when < agent_conn_retry_at_ns(d->agent->conn))
		when = agent_conn_retry_at_ns(d->agent->conn);
	d->sync.pending = true;
	d->sync.retry_ns = when;
	d->sync.reason = METRICS_RECONCILE_RETRY;
	/* First failures and then every tenth: a dead agent must not flood. */
	if (d->sync.failures <= 3 || d->sync.failures % 10 == 0)
		log_warn("sync failed, will retry", "source", j->real,
			 "dest", d->dest, "error", j->error ? j->error : "?",
			 "failures", LOG_U64(d->sync.failures),
			 "retry_in_ms",
			 LOG_U64((when - now_ns()) / NS_PER_MS));
}

static void job_complete(struct sync_engine *e, struct job *j)
{
	struct reg_dest *d = j->d;

	e->outstanding--;
	d->sync.inflight = false;
	d->agent->busy = false;
	dest_state_clear(&d->sync.state);
	d->sync.state = j->state;
	memset(&j->state, 0, sizeof(j->state));
	d->sync.stale_dirs = dest_state_stale_dirs(&d->sync.state);
	if (d->sync.removed) {
		registry_reap(e->reg, d);
		job_free(j);
		return;
	}
	reconcile_agent(e, d->agent);
	switch (j->result) {
	case JOB_OK:
		complete_ok(d, j);
		break;
	case JOB_FAILED:
		complete_failed(d, j);
		break;
	case JOB_SUPERSEDED:
		log_debug("volume changed during sync, going again", "source",
			  j->real, "dest", d->dest);
		if (j->event_ns && !d->sync.event_ns)
			d->sync.event_ns = j->event_ns;
		d->sync.pending = true;
		break;
	case JOB_CANCELLED:
		d->sync.pending = true;
		break;
	case JOB_SOURCE_GONE:
		if (j->event_ns && !d->sync.event_ns)
			d->sync.event_ns = j->event_ns;
		d->sync.pending = true;
		d->sync.retry_ns = now_ns() + backoff_ns(1);
		if (e->on_source_problem && d->src)
			e->on_source_problem(e->ctx, d->src);
		break;
	}
	job_free(j);
}

static void collect(struct sync_engine *e)
{
	struct job *done, *next;
	uint64_t v;

	if (read(e->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("eventfd read failed", "error", strerror(errno));
	pthread_mutex_lock(&e->lock);
	done = e->done;
	e->done = NULL;
	pthread_mutex_unlock(&e->lock);
	/* Oldest first, so logs read in completion order. */
	for (next = NULL; done; ) {
		struct job *j = done;

		done = j->next;
		j->next = next;
		next = j;
	}
	for (; next; next = done) {
		done = next->next;
		job_complete(e, next);
	}
}

static int dispatch(struct sync_engine *e, struct reg_dest *d)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->d = d;
	j->real = strdup(d->src->real);
	j->dest = strdup(d->dest);
	if (!j->real || !j->dest) {
		job_free(j);
		return -ENOMEM;
	}
	j->dev = d->src->st_dev;
	j->ino = d->src->st_ino;
	j->conn = d->agent->conn;
	if (d->sync.clear_state) {
		dest_state_clear(&d->sync.state);
		d->sync.clear_state = false;
	}
	j->state = d->sync.state;
	memset(&d->sync.state, 0, sizeof(d->sync.state));
	j->event_ns = d->sync.event_ns;
	d->sync.event_ns = 0;
	d->sync.pending = false;
	d->sync.inflight = true;
	d->agent->busy = true;
	e->outstanding++;

	pthread_mutex_lock(&e->lock);
	*e->queue_tail = j;
	e->queue_tail = &j->next;
	pthread_cond_signal(&e->work);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

uint64_t sync_engine_run(struct sync_engine *e, uint64_t now)
{
	struct reg_source *s;
	struct reg_dest *d;
	uint64_t next = 0;

	collect(e);
	if (e->stopping)
		return 0;
	metrics_guest_stale_dirs_set((int64_t)sync_engine_stale_dirs(e));
	registry_for_each_dest(e->reg, s, d) {
		uint64_t at;

		if (!d->sync.pending || d->sync.inflight)
			continue;
		at = d->sync.due_ns > d->sync.retry_ns ? d->sync.due_ns :
							 d->sync.retry_ns;
		if (at > now) {
			if (!next || at < next)
				next = at;
			continue;
		}
		if (d->agent->busy)
			continue;	/* its completion runs us again */
		if (dispatch(e, d) < 0) {
			log_error("starting a sync failed", "source", s->path,
				  "error", "out of memory");
			next = now + backoff_ns(1);
		}
	}
	return next;
}

uint64_t sync_engine_stale_dirs(const struct sync_engine *e)
{
	struct reg_source *s;
	struct reg_dest *d;
	uint64_t n = 0;

	registry_for_each_dest(e->reg, s, d)
		n += d->sync.stale_dirs;
	return n;
}

unsigned int sync_engine_drain(struct sync_engine *e, int timeout_ms)
{
	struct timespec deadline;
	struct job *j;
	unsigned int left;

	e->stopping = true;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&e->lock);
	/* Queued jobs never started: hand them back untouched. */
	while ((j = e->queue)) {
		e->queue = j->next;
		j->result = JOB_CANCELLED;
		j->next = e->done;
		e->done = j;
	}
	e->queue_tail = &e->queue;
	while (e->running &&
	       pthread_cond_timedwait(&e->idle, &e->lock, &deadline) == 0)
		;
	left = e->running;
	pthread_mutex_unlock(&e->lock);
	collect(e);
	return left;
}

void sync_engine_free(struct sync_engine *e)
{
	unsigned int i;
	bool stuck;

	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->quit = true;
	stuck = e->running > 0;
	pthread_cond_broadcast(&e->work);
	pthread_mutex_unlock(&e->lock);
	/* A worker stuck in an agent call past the drain deadline is left. */
	if (stuck)
		return;
	for (i = 0; i < e->nthreads; i++)
		pthread_join(e->threads[i], NULL);
	if (!e->outstanding)
		collect(e);
	free(e->threads);
	if (e->efd >= 0)
		close(e->efd);
	pthread_cond_destroy(&e->work);
	pthread_cond_destroy(&e->idle);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
