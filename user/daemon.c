// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The node daemon's event loop and its glue between the modules. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "control_server.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "registry.h"
#include "state.h"
#include "sync_engine.h"
#include "tracer.h"
#include "util.h"

#ifndef VOLTRACE_VERSION
#define VOLTRACE_VERSION "0.1.0"
#endif

#define NS_PER_MS		1000000ull
#define DROP_POLL_NS		(100 * NS_PER_MS)
#define SOURCE_CHECK_NS		(1000 * NS_PER_MS)
#define SHUTDOWN_WAIT_MS	5000

struct daemon {
	const struct daemon_opts *opts;
	struct config cfg;
	struct tracer *tracer;
	struct registry reg;
	struct sync_engine *eng;
	struct control_server *cs;
	struct metrics_http *mh;
	int epfd;
	int sfd;
	int tfd;
	uint64_t start_ns;
	uint64_t drops_seen;
	uint64_t next_drop_poll;
	uint64_t next_source_check;
	uint64_t next_resync;	/* 0: periodic resync off */
	bool recheck_sources;
	bool stop;
	const char *mode_name;
};

static void schedule_resync(struct daemon *dm, uint64_t now)
{
	dm->next_resync = dm->cfg.resync_interval_s ?
		now + dm->cfg.resync_interval_s * 1000 * NS_PER_MS : 0;
}

/* ---- state file ------------------------------------------------------------- */

static void save_state(struct daemon *dm)
{
	struct state_watch *w;
	struct reg_source *s;
	struct reg_dest *d;
	size_t n = 0, i = 0;
	char *err = NULL;

	registry_for_each_dest(&dm->reg, s, d)
		n += d->origin == WATCH_API;
	w = calloc(n ? n : 1, sizeof(*w));
	if (!w) {
		log_error("state file not saved", "error", "out of memory");
		return;
	}
	registry_for_each_dest(&dm->reg, s, d) {
		if (d->origin != WATCH_API)
			continue;
		w[i].source = s->path;
		w[i].agent = d->agent->url;
		w[i].dest = d->dest;
		i++;
	}
	if (state_save(dm->cfg.state_file, w, n, &err) < 0) {
		log_error("state file not saved", "file", dm->cfg.state_file,
			  "error", err ? err : "?");
		free(err);
	}
	free(w);
}

static void update_gauges(struct daemon *dm)
{
	metrics_watches_set((int64_t)registry_count_dests(&dm->reg));
	metrics_agents_set((int64_t)registry_count_agents(&dm->reg));
}

/* ---- sources that vanish or change identity --------------------------------- */

static void recheck_source(struct daemon *dm, struct reg_source *s)
{
	const char *why = "";
	bool had_api = false;
	struct reg_dest *d;
	int rc;

	rc = registry_recheck(&dm->reg, s, &why);
	if (rc == 0)
		return;
	if (rc > 0) {
		log_info("watched source re-registered", "source", s->path,
			 "reason", why);
		sync_engine_reconcile_source(dm->eng, s,
					     METRICS_RECONCILE_SOURCE_CHANGED);
		return;
	}
	for (d = s->dests; d; d = d->next)
		had_api |= d->origin == WATCH_API;
	log_warn("watched source disappeared; its watches are removed",
		 "source", s->path, "reason", why);
	registry_remove_source(&dm->reg, s);
	if (had_api)
		save_state(dm);
	update_gauges(dm);
}

static void on_source_problem(void *ctx, struct reg_source *s)
{
	recheck_source(ctx, s);
}

static void recheck_all_sources(struct daemon *dm)
{
	struct reg_source *s, *next;

	for (s = dm->reg.sources; s; s = next) {
		next = s->next;
		recheck_source(dm, s);
	}
}

/* ---- kernel events -------------------------------------------------------------- */

static void event_source(struct daemon *dm, __u32 id, __u64 ktime, bool commit)
{
	struct reg_source *s;

	if (!id)
		return;
	s = registry_source_by_id(&dm->reg, id);
	if (s)
		sync_engine_event(dm->eng, s, ktime, commit);
}

static int on_event(void *ctx, const struct vtr_event *e)
{
	struct daemon *dm = ctx;
	bool commit;

	metrics_event(e->op, e->mode);
	if (log_enabled(LOG_LVL_DEBUG))
		log_debug("event", "op", vt_op_name(e->op), "name", e->name,
			  "new_name", e->new_name, "dir_id", LOG_U64(e->dir_id),
			  "new_dir_id", LOG_U64(e->new_dir_id),
			  "comm", e->comm);
	/* The kubelet's commit: rename("..data_tmp", "..data"). */
	commit = e->op == VT_OP_RENAME &&
		 !strncmp(e->new_name, SYNC_DATA_LINK, sizeof(e->new_name));
	event_source(dm, e->dir_id, e->ktime_ns, commit && e->new_dir_id == e->dir_id);
	if (e->new_dir_id != e->dir_id)
		event_source(dm, e->new_dir_id, e->ktime_ns, commit);
	/* The watched directory itself was renamed or removed. */
	if (e->self_id)
		dm->recheck_sources = true;
	return 0;
}

static void poll_drops(struct daemon *dm)
{
	__u64 c[VT_COUNTERS_LEN];
	uint64_t dropped;

	if (tracer_read_counters(dm->tracer, c) < 0)
		return;
	dropped = tracer_counter_total(c, VT_CNT_DROPPED);
	metrics_events_dropped_set(dropped);
	if (dropped <= dm->drops_seen)
		return;
	log_warn("ring buffer dropped events: full re-sync of every watch",
		 "dropped", LOG_U64(dropped - dm->drops_seen),
		 "dropped_total", LOG_U64(dropped));
	dm->drops_seen = dropped;
	sync_engine_reconcile_all(dm->eng, METRICS_RECONCILE_DROPS);
}

/* ---- control API ----------------------------------------------------------------- */

static int ctl_watch(void *ctx, const char *source, const char *agent,
		     const char *dest, char **errmsg)
{
	struct daemon *dm = ctx;
	struct reg_dest *d;
	int code;

	code = registry_add(&dm->reg, source, agent, dest, WATCH_API, &d,
			    errmsg);
	if (code) {
		log_warn("watch refused", "source", source, "agent", agent,
			 "dest", dest, "error", *errmsg ? *errmsg : "?");
		metrics_control_request(METRICS_CTL_WATCH, false);
		return code;
	}
	log_info("watch added", "source", d->src->path, "real", d->src->real,
		 "agent", agent, "dest", d->dest, "origin", "api");
	metrics_reconcile(METRICS_RECONCILE_NEW_WATCH);
	sync_engine_request(dm->eng, d, METRICS_RECONCILE_NEW_WATCH, false);
	save_state(dm);
	update_gauges(dm);
	metrics_control_request(METRICS_CTL_WATCH, true);
	return CONTROL_OK;
}

static int ctl_unwatch(void *ctx, const char *source, const char *dest,
		       unsigned int *removed, char **errmsg)
{
	struct daemon *dm = ctx;
	struct reg_source *s;
	struct reg_dest *d;

	*removed = 0;
	s = registry_find_source(&dm->reg, source);
	if (!s) {
		metrics_control_request(METRICS_CTL_UNWATCH, false);
		if (asprintf(errmsg, "source %s is not watched (see voltrace ctl list)",
			     source) < 0)
			*errmsg = NULL;
		return CONTROL_NOT_FOUND;
	}
	if (dest && *dest) {
		d = registry_find_dest(s, dest);
		if (!d) {
			metrics_control_request(METRICS_CTL_UNWATCH, false);
			if (asprintf(errmsg, "source %s has no dest %s (see voltrace ctl list)",
				     source, dest) < 0)
				*errmsg = NULL;
			return CONTROL_NOT_FOUND;
		}
		log_info("watch removed", "source", s->path, "dest", d->dest);
		registry_remove_dest(&dm->reg, d);
		*removed = 1;
	} else {
		for (d = s->dests; d; d = d->next)
			(*removed)++;
		log_info("watch removed", "source", s->path, "dests",
			 LOG_U64(*removed));
		registry_remove_source(&dm->reg, s);
	}
	save_state(dm);
	update_gauges(dm);
	metrics_control_request(METRICS_CTL_UNWATCH, true);
	return CONTROL_OK;
}

static const char *dest_state_name(const struct reg_dest *d)
{
	if (d->sync.inflight)
		return "syncing";
	if (d->sync.last_error)
		return "error";
	if (d->sync.pending)
		return "pending";
	return d->sync.syncs ? "synced" : "new";
}

static int ctl_list(void *ctx, struct control_list *out, char **errmsg)
{
	struct daemon *dm = ctx;
	struct reg_source *s;
	struct reg_dest *d;

	registry_for_each_dest(&dm->reg, s, d) {
		struct control_watch_info w = {
			.source = s->path,
			.agent = d->agent->url,
			.dest = d->dest,
			.origin = d->origin == WATCH_API ? "api" : "config",
			.state = dest_state_name(d),
			.last_error = d->sync.last_error,
			.last_sync_unix_ns = d->sync.last_sync_unix_ns,
			.syncs = d->sync.syncs,
			.files_copied = d->sync.files,
			.bytes_copied = d->sync.bytes,
		};

		if (control_list_add(out, &w) < 0) {
			*errmsg = strdup("out of memory");
			metrics_control_request(METRICS_CTL_LIST, false);
			return CONTROL_INTERNAL;
		}
	}
	metrics_control_request(METRICS_CTL_LIST, true);
	return CONTROL_OK;
}

static int ctl_status(void *ctx, struct control_status *out, char **errmsg)
{
	struct daemon *dm = ctx;
	struct metrics_snapshot m;

	(void)errmsg;
	metrics_snapshot(&m);
	out->mode = dm->mode_name;
	out->control_socket = dm->cfg.control_socket;
	out->metrics_address = dm->cfg.metrics_address;
	out->state_file = dm->cfg.state_file;
	out->uptime_ns = now_ns() - dm->start_ns;
	out->watches = registry_count_dests(&dm->reg);
	out->agents = registry_count_agents(&dm->reg);
	out->events = m.events;
	out->events_dropped = m.events_dropped;
	out->syncs_ok = m.syncs_ok;
	out->syncs_error = m.syncs_error;
	out->bytes_copied = m.bytes_copied;
	out->files_copied = m.files_copied;
	out->reconciles = m.reconciles;
	out->guest_stale_dirs = sync_engine_stale_dirs(dm->eng);
	metrics_control_request(METRICS_CTL_STATUS, true);
	return CONTROL_OK;
}

static const struct control_ops ctl_ops = {
	.watch = ctl_watch,
	.unwatch = ctl_unwatch,
	.list = ctl_list,
	.status = ctl_status,
};

/* ---- config watches ---------------------------------------------------------- */

/* Registry checks that need the filesystem; only a missing source is soft. */
static int validate_config_watches(struct daemon *dm)
{
	size_t i;

	for (i = 0; i < dm->cfg.n_watches; i++) {
		const struct config_watch *w = &dm->cfg.watches[i];
		char *err = NULL;
		int code;

		code = registry_validate(&dm->reg, w->source, w->agent,
					 w->dest, NULL, NULL, &err);
		if (code && code != CONTROL_NOT_FOUND) {
			fprintf(stderr, "%s:%d: %s\n", dm->cfg.path, w->line,
				err ? err : "invalid watch");
			free(err);
			return -1;
		}
		free(err);
	}
	return 0;
}

static void add_config_watches(struct daemon *dm, bool reconcile)
{
	size_t i;

	for (i = 0; i < dm->cfg.n_watches; i++) {
		const struct config_watch *w = &dm->cfg.watches[i];
		struct reg_source *s = registry_find_source(&dm->reg, w->source);
		struct reg_dest *d;
		char *err = NULL;

		if (s && registry_find_dest(s, w->dest))
			continue;
		if (registry_add(&dm->reg, w->source, w->agent, w->dest,
				 WATCH_CONFIG, &d, &err)) {
			char line[24];

			snprintf(line, sizeof(line), "%d", w->line);
			log_error("config watch not added", "file",
				  dm->cfg.path ? dm->cfg.path : "-",
				  "line", line, "error", err ? err : "?");
			free(err);
			continue;
		}
		log_info("watch added", "source", d->src->path, "real",
			 d->src->real, "agent", w->agent, "dest", d->dest,
			 "origin", "config");
		if (reconcile)
			sync_engine_request(dm->eng, d,
					    METRICS_RECONCILE_NEW_WATCH, false);
	}
}

static bool in_config(const struct config *cfg, const struct reg_source *s,
		      const struct reg_dest *d)
{
	size_t i;

	for (i = 0; i < cfg->n_watches; i++) {
		const struct config_watch *w = &cfg->watches[i];

		if ((!strcmp(w->source, s->path) || !strcmp(w->source, s->real)) &&
		    !strcmp(w->dest, d->dest) && !strcmp(w->agent, d->agent->url))
			return true;
	}
	return false;
}

static void restore_state(struct daemon *dm)
{
	struct state_watch *w = NULL;
	char *err = NULL;
	size_t n = 0, i;

	if (state_load(dm->cfg.state_file, &w, &n, &err) < 0) {
		log_error("state file ignored", "error", err ? err : "?");
		free(err);
		return;
	}
	for (i = 0; i < n; i++) {
		struct reg_dest *d;
		int code;

		code = registry_add(&dm->reg, w[i].source, w[i].agent,
				    w[i].dest, WATCH_API, &d, &err);
		if (code == CONTROL_ALREADY_EXISTS) {
			free(err);
			err = NULL;
			continue;
		}
		if (code) {
			log_warn("saved watch not restored", "source",
				 w[i].source, "dest", w[i].dest, "error",
				 err ? err : "?");
			free(err);
			err = NULL;
			continue;
		}
		log_info("watch restored", "source", d->src->path, "agent",
			 w[i].agent, "dest", d->dest, "origin", "api");
	}
	state_watches_free(w, n);
}

/* ---- SIGHUP --------------------------------------------------------------------- */

static void warn_restart(const char *key, const char *old, const char *new)
{
	if (strcmp(old ? old : "", new ? new : ""))
		log_warn("config change needs a restart to take effect", "key",
			 key, "running", old ? old : "", "file", new ? new : "");
}

static void reload(struct daemon *dm)
{
	struct reg_source *s, *snext;
	struct reg_dest *d, *dnext;
	struct config cfg;
	char *err = NULL;

	if (!dm->opts->config_path) {
		log_info("SIGHUP: no config file to reload");
		return;
	}
	if (config_load(dm->opts->config_path, &cfg, &err) < 0) {
		log_error("config reload failed; keeping the running config",
			  "error", err ? err : "?");
		free(err);
		return;
	}
	warn_restart("mode", dm->cfg.mode_name, cfg.mode_name);
	warn_restart("control_socket", dm->cfg.control_socket, cfg.control_socket);
	warn_restart("metrics_address", dm->cfg.metrics_address, cfg.metrics_address);
	warn_restart("state_file", dm->cfg.state_file, cfg.state_file);
	warn_restart("bpffs_dir", dm->cfg.bpffs_dir, cfg.bpffs_dir);
	if (cfg.ring_buffer_size != dm->cfg.ring_buffer_size)
		log_warn("config change needs a restart to take effect", "key",
			 "ring_buffer_size");
	if (registry_set_allowed(&dm->reg, cfg.allowed_sources,
				 cfg.n_allowed_sources) < 0)
		log_error("allowed_sources not updated", "error", "out of memory");
	sync_engine_set_debounce(dm->eng, cfg.debounce_ms);
	if (cfg.log_level_set && !dm->opts->log_level)
		log_set_level(cfg.log_level);

	/* Config watches no longer in the file go; API watches stay. */
	for (s = dm->reg.sources; s; s = snext) {
		snext = s->next;
		for (d = s->dests; d; d = dnext) {
			dnext = d->next;
			if (d->origin != WATCH_CONFIG || in_config(&cfg, s, d))
				continue;
			log_info("watch removed (no longer in the config)",
				 "source", s->path, "dest", d->dest);
			if (!s->dests->next) {
				registry_remove_dest(&dm->reg, d);
				break;	/* s is gone */
			}
			registry_remove_dest(&dm->reg, d);
		}
	}
	config_free(&dm->cfg);
	dm->cfg = cfg;
	schedule_resync(dm, now_ns());
	add_config_watches(dm, false);
	sync_engine_reconcile_all(dm->eng, METRICS_RECONCILE_RELOAD);
	update_gauges(dm);
	log_info("config reloaded", "file", dm->opts->config_path,
		 "watches", LOG_U64(registry_count_dests(&dm->reg)));
}

/* ---- the loop ---------------------------------------------------------------------- */

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void arm_timer(struct daemon *dm, uint64_t at)
{
	struct itimerspec its = { 0 };

	if (!at)
		at = 1;	/* already due */
	its.it_value.tv_sec = at / 1000000000ull;
	its.it_value.tv_nsec = at % 1000000000ull;
	if (timerfd_settime(dm->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_error("timerfd_settime failed", "error", strerror(errno));
}

static void handle_signal(struct daemon *dm)
{
	struct signalfd_siginfo si;

	while (read(dm->sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			log_info("SIGHUP: reloading the config");
			reload(dm);
			break;
		case SIGTERM:
		case SIGINT:
			log_info("shutting down", "signal",
				 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			dm->stop = true;
			break;
		}
	}
}

static uint64_t next_housekeeping(const struct daemon *dm)
{
	uint64_t hk = dm->next_drop_poll < dm->next_source_check ?
		      dm->next_drop_poll : dm->next_source_check;

	return dm->next_resync && dm->next_resync < hk ? dm->next_resync : hk;
}

static void housekeeping(struct daemon *dm, uint64_t now)
{
	/*
	 * Events can be missed without the drop counter moving (tracepoint
	 * mode's blind spots, a source written while unwatched): reconcile
	 * everything now and then. Unchanged content costs hashing, no RPCs.
	 */
	if (dm->next_resync && now >= dm->next_resync) {
		sync_engine_reconcile_all(dm->eng, METRICS_RECONCILE_PERIODIC);
		schedule_resync(dm, now);
	}
	if (now >= dm->next_drop_poll) {
		poll_drops(dm);
		dm->next_drop_poll = now + DROP_POLL_NS;
	}
	if (dm->recheck_sources || now >= dm->next_source_check) {
		dm->recheck_sources = false;
		recheck_all_sources(dm);
		dm->next_source_check = now + SOURCE_CHECK_NS;
	}
}

static int loop(struct daemon *dm)
{
	struct epoll_event evs[16];
	int i, n;

	while (!dm->stop) {
		uint64_t now = now_ns(), next, hk;

		housekeeping(dm, now);
		next = sync_engine_run(dm->eng, now);
		hk = next_housekeeping(dm);
		arm_timer(dm, next && next < hk ? next : hk);
		n = epoll_wait(dm->epfd, evs, ARRAY_SIZE(evs), -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("epoll_wait failed", "error", strerror(errno));
			return -1;
		}
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == tracer_epoll_fd(dm->tracer)) {
				int r = tracer_consume(dm->tracer);

				if (r < 0)
					log_warn("ring buffer read failed",
						 "error", strerror(-r));
			} else if (dm->cs && fd == control_server_fd(dm->cs)) {
				if (control_server_process(dm->cs) < 0)
					log_error("control server failed");
			} else if (fd == dm->sfd) {
				handle_signal(dm);
			} else if (fd == dm->tfd) {
				uint64_t ticks;

				if (read(dm->tfd, &ticks, sizeof(ticks)) < 0 &&
				    errno != EAGAIN)
					log_warn("timerfd read failed");
			}
			/* The engine's eventfd is drained by sync_engine_run. */
		}
	}
	return 0;
}

static int setup_fds(struct daemon *dm, const sigset_t *mask)
{
	dm->epfd = epoll_create1(EPOLL_CLOEXEC);
	dm->sfd = signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC);
	dm->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (dm->epfd < 0 || dm->sfd < 0 || dm->tfd < 0)
		return -errno;
	if (epoll_add(dm->epfd, dm->sfd) || epoll_add(dm->epfd, dm->tfd) ||
	    epoll_add(dm->epfd, tracer_epoll_fd(dm->tracer)) ||
	    epoll_add(dm->epfd, sync_engine_fd(dm->eng)) ||
	    epoll_add(dm->epfd, control_server_fd(dm->cs)))
		return -errno;
	return 0;
}

static int apply_overrides(struct daemon *dm)
{
	const struct daemon_opts *o = dm->opts;
	enum tracer_mode_req mode;
	enum log_level lvl;

	if (o->mode) {
		if (tracer_parse_mode(o->mode, &mode) < 0) {
			fprintf(stderr, "voltrace run: unknown --mode \"%s\" (auto, fentry, kprobe, tracepoint)\n",
				o->mode);
			return -1;
		}
		dm->cfg.mode = mode;
		free(dm->cfg.mode_name);
		dm->cfg.mode_name = strdup(o->mode);
	}
	if (o->log_level) {
		if (log_parse_level(o->log_level, &lvl) < 0) {
			fprintf(stderr, "voltrace run: unknown --log-level \"%s\" (error, warn, info, debug)\n",
				o->log_level);
			return -1;
		}
		log_set_level(lvl);
	} else if (dm->cfg.log_level_set) {
		log_set_level(dm->cfg.log_level);
	}
	return 0;
}

static int start(struct daemon *dm)
{
	struct tracer_opts topts = {
		.mode = dm->cfg.mode,
		.bpffs_dir = dm->cfg.bpffs_dir,
		.ringbuf_size = dm->cfg.ring_buffer_size,
		.on_event = on_event,
		.ctx = dm,
	};
	struct sync_engine_opts eopts = {
		.debounce_ms = dm->cfg.debounce_ms,
		.on_source_problem = on_source_problem,
		.ctx = dm,
	};
	char *err = NULL;
	int rc;

	rc = tracer_open(&topts, &dm->tracer);
	if (rc < 0) {
		log_error("loading the BPF tracer failed", "mode",
			  dm->cfg.mode_name, "error", strerror(-rc));
		return -1;
	}
	dm->mode_name = tracer_mode_name(tracer_mode(dm->tracer));
	dm->reg.tracer = dm->tracer;
	metrics_set_info(VOLTRACE_VERSION, dm->mode_name);
	if (metrics_http_start(dm->cfg.metrics_address, &dm->mh, &err) < 0) {
		log_error("metrics server failed", "address",
			  dm->cfg.metrics_address, "error", err ? err : "?");
		free(err);
		return -1;
	}
	rc = sync_engine_new(&dm->reg, &eopts, &dm->eng);
	if (rc < 0) {
		log_error("starting the sync workers failed", "error",
			  strerror(-rc));
		return -1;
	}
	if (control_server_open(dm->cfg.control_socket, &ctl_ops, dm, &dm->cs,
				&err) < 0) {
		log_error("control socket failed", "path",
			  dm->cfg.control_socket, "error", err ? err : "?");
		free(err);
		return -1;
	}
	add_config_watches(dm, false);
	restore_state(dm);
	update_gauges(dm);
	sync_engine_reconcile_all(dm->eng, METRICS_RECONCILE_START);
	schedule_resync(dm, now_ns());
	log_info("voltrace running", "version", VOLTRACE_VERSION, "mode",
		 dm->mode_name, "bpffs_dir", dm->cfg.bpffs_dir,
		 "control_socket", dm->cfg.control_socket,
		 "metrics", dm->mh ? dm->cfg.metrics_address : "off",
		 "watches", LOG_U64(registry_count_dests(&dm->reg)));
	return 0;
}

static void stop(struct daemon *dm)
{
	unsigned int left = 0;

	if (dm->eng) {
		left = sync_engine_drain(dm->eng, SHUTDOWN_WAIT_MS);
		if (left)
			log_warn("agent calls still running at shutdown",
				 "count", LOG_U64(left));
	}
	if (dm->cs)
		control_server_close(dm->cs);
	if (dm->mh)
		metrics_http_stop(dm->mh);
	if (!left) {
		sync_engine_free(dm->eng);
		registry_free(&dm->reg);
	}
	if (dm->tracer)
		tracer_close(dm->tracer);	/* unpins */
	if (dm->epfd >= 0)
		close(dm->epfd);
	if (dm->sfd >= 0)
		close(dm->sfd);
	if (dm->tfd >= 0)
		close(dm->tfd);
	config_free(&dm->cfg);
}

int daemon_run(const struct daemon_opts *opts)
{
	struct daemon dm = { .opts = opts, .epfd = -1, .sfd = -1, .tfd = -1 };
	char *err = NULL;
	sigset_t mask;
	int rc = EXIT_FAIL;

	if (config_load(opts->config_path, &dm.cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err ? err : "config: invalid");
		free(err);
		return EXIT_USAGE;
	}
	if (apply_overrides(&dm) < 0) {
		config_free(&dm.cfg);
		return EXIT_USAGE;
	}
	if (registry_init(&dm.reg, NULL, dm.cfg.allowed_sources,
			  dm.cfg.n_allowed_sources) < 0) {
		config_free(&dm.cfg);
		return EXIT_FAIL;
	}
	if (validate_config_watches(&dm) < 0) {
		registry_free(&dm.reg);
		config_free(&dm.cfg);
		return EXIT_USAGE;
	}
	/* Before any thread exists, so that they all inherit the mask. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	dm.start_ns = now_ns();

	if (start(&dm) == 0 && setup_fds(&dm, &mask) == 0 && loop(&dm) == 0)
		rc = EXIT_OK;
	stop(&dm);
	log_info("voltrace stopped", "status", LOG_INT(rc));
	return rc;
}
