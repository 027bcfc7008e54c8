// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The watch registry: sources, their guest dests, shared agent connections. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control_server.h"
#include "guest_path.h"
#include "log.h"
#include "registry.h"
#include "tracer.h"
#include "transport.h"
#include "util.h"

static int refuse(char **errmsg, int code, const char *fmt, ...)
{
	va_list ap;

	if (errmsg) {
		va_start(ap, fmt);
		if (vasprintf(errmsg, fmt, ap) < 0)
			*errmsg = NULL;
		va_end(ap);
	}
	return code;
}

static void free_allowed(struct registry *reg)
{
	size_t i;

	for (i = 0; i < reg->n_allowed; i++)
		free(reg->allowed[i]);
	free(reg->allowed);
	reg->allowed = NULL;
	reg->n_allowed = 0;
}

/* Roots are compared by realpath, like sources; missing roots lexically. */
int registry_set_allowed(struct registry *reg, char *const *allowed,
			 size_t n_allowed)
{
	char **v = calloc(n_allowed ? n_allowed : 1, sizeof(*v));
	size_t i;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < n_allowed; i++) {
		v[i] = realpath(allowed[i], NULL);
		if (!v[i] && path_normalize(allowed[i], &v[i]))
			v[i] = NULL;
		if (!v[i]) {
			while (i--)
				free(v[i]);
			free(v);
			return -ENOMEM;
		}
	}
	free_allowed(reg);
	reg->allowed = v;
	reg->n_allowed = n_allowed;
	return 0;
}

int registry_init(struct registry *reg, struct tracer *t,
		  char *const *allowed, size_t n_allowed)
{
	memset(reg, 0, sizeof(*reg));
	reg->tracer = t;
	reg->next_id = 1;
	agent_conn_opts_default(&reg->agent_opts);
	/* A restarted agent must be found again within seconds. */
	reg->agent_opts.backoff_max_ms = 5000;
	return registry_set_allowed(reg, allowed, n_allowed);
}

static char *allowed_list(const struct registry *reg)
{
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (i = 0; i < reg->n_allowed; i++)
		fprintf(f, "%s%s", i ? ", " : "", reg->allowed[i]);
	fclose(f);
	return buf;
}

static int check_source(const struct registry *reg, const char *source,
			char **real, char **errmsg)
{
	struct stat st;
	char *r, *roots;
	size_t i;

	if (!source || source[0] != '/')
		return refuse(errmsg, CONTROL_INVALID_ARGUMENT,
			      "source \"%s\" must be an absolute path",
			      source ? source : "");
	if (stat(source, &st) < 0)
		return refuse(errmsg, errno == ENOENT ? CONTROL_NOT_FOUND :
			      CONTROL_INVALID_ARGUMENT,
			      "source %s: %s", source, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return refuse(errmsg, CONTROL_INVALID_ARGUMENT,
			      "source %s is not a directory", source);
	r = realpath(source, NULL);
	if (!r)
		return refuse(errmsg, CONTROL_INVALID_ARGUMENT,
			      "source %s: realpath: %s", source,
			      strerror(errno));
	for (i = 0; i < reg->n_allowed; i++) {
		if (path_is_under(r, reg->allowed[i]) &&
		    strcmp(r, reg->allowed[i]) != 0) {
			*real = r;
			return CONTROL_OK;
		}
	}
	roots = allowed_list(reg);
	refuse(errmsg, CONTROL_INVALID_ARGUMENT,
	       "source %s (realpath %s) is not below allowed_sources (%s); "
	       "add its root to allowed_sources in the config file",
	       source, r, roots ? roots : "none");
	free(roots);
	free(r);
	return CONTROL_INVALID_ARGUMENT;
}

static int check_agent(const char *agent, char **errmsg)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_url u;

	if (!agent || !*agent)
		return refuse(errmsg, CONTROL_INVALID_ARGUMENT,
			      "agent URL missing (%s)", AGENT_URL_FORMS);
	if (agent_url_parse(agent, &u, &st) < 0) {
		refuse(errmsg, CONTROL_INVALID_ARGUMENT, "agent \"%s\": %s",
		       agent, ttrpc_status_str(&st));
		ttrpc_status_clear(&st);
		return CONTROL_INVALID_ARGUMENT;
	}
	agent_url_release(&u);
	return CONTROL_OK;
}

int registry_validate(const struct registry *reg, const char *source,
		      const char *agent, const char *dest, char **real,
		      char **ndest, char **errmsg)
{
	char *r = NULL, *d = NULL, *err = NULL;
	int code;

	code = check_source(reg, source, &r, errmsg);
	if (code)
		return code;
	if (!dest || guest_path_normalize(dest, &d, &err) < 0) {
		code = refuse(errmsg, CONTROL_INVALID_ARGUMENT, "dest: %s",
			      err ? err : "missing");
		free(err);
		free(r);
		return code;
	}
	code = check_agent(agent, errmsg);
	if (code) {
		free(r);
		free(d);
		return code;
	}
	if (real)
		*real = r;
	else
		free(r);
	if (ndest)
		*ndest = d;
	else
		free(d);
	return CONTROL_OK;
}

struct reg_source *registry_source_by_id(const struct registry *reg, __u32 id)
{
	struct reg_source *s;

	for (s = reg->sources; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

struct reg_source *registry_find_source(const struct registry *reg,
					const char *path)
{
	struct reg_source *s;
	char *norm = NULL, *real;

	if (path_normalize(path, &norm))
		norm = NULL;
	for (s = reg->sources; s; s = s->next)
		if (norm && (!strcmp(s->path, norm) || !strcmp(s->real, norm)))
			break;
	free(norm);
	if (s)
		return s;
	real = realpath(path, NULL);
	if (!real)
		return NULL;
	for (s = reg->sources; s; s = s->next)
		if (!strcmp(s->real, real))
			break;
	free(real);
	return s;
}

struct reg_dest *registry_find_dest(const struct reg_source *s,
				    const char *dest)
{
	struct reg_dest *d;
	char *norm = NULL;

	if (path_normalize(dest, &norm))
		return NULL;
	for (d = s->dests; d; d = d->next)
		if (!strcmp(d->dest, norm))
			break;
	free(norm);
	return d;
}

static struct reg_agent *agent_get(struct registry *reg, const char *url,
				   char **errmsg)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct reg_agent *a;

	for (a = reg->agents; a; a = a->next)
		if (!strcmp(a->url, url)) {
			a->refs++;
			return a;
		}
	a = calloc(1, sizeof(*a));
	if (!a || !(a->url = strdup(url)))
		goto nomem;
	a->conn = agent_conn_new(url, &reg->agent_opts, &st);
	if (!a->conn) {
		refuse(errmsg, CONTROL_INVALID_ARGUMENT, "agent \"%s\": %s",
		       url, ttrpc_status_str(&st));
		ttrpc_status_clear(&st);
		free(a->url);
		free(a);
		return NULL;
	}
	a->refs = 1;
	a->next = reg->agents;
	reg->agents = a;
	return a;
nomem:
	if (a)
		free(a->url);
	free(a);
	refuse(errmsg, CONTROL_INTERNAL, "out of memory");
	return NULL;
}

static void agent_put(struct registry *reg, struct reg_agent *a)
{
	struct reg_agent **pp;

	if (--a->refs)
		return;
	for (pp = &reg->agents; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	agent_conn_free(a->conn);
	free(a->url);
	free(a);
}

static int identify(const char *path, struct stat *st, bool *mountpoint)
{
	struct stat parent;
	char *p;

	if (stat(path, st) < 0)
		return -errno;
	if (!S_ISDIR(st->st_mode))
		return -ENOTDIR;
	if (asprintf(&p, "%s/..", path) < 0)
		return -ENOMEM;
	*mountpoint = stat(p, &parent) == 0 && parent.st_dev != st->st_dev;
	free(p);
	return 0;
}

static int source_watch(struct registry *reg, struct reg_source *s,
			char **errmsg)
{
	struct stat st;
	int err;

	err = identify(s->real, &st, &s->mountpoint);
	if (err)
		return refuse(errmsg, CONTROL_NOT_FOUND, "source %s: %s",
			      s->path, strerror(-err));
	s->st_dev = st.st_dev;
	s->st_ino = st.st_ino;
	if (!reg->tracer) {
		s->key.dev = st.st_dev;
		s->key.ino = st.st_ino;
		return CONTROL_OK;
	}
	err = tracer_watch_dir(reg->tracer, s->real, s->id, &s->key);
	/* The kubelet renames by the path it was configured with, not realpath. */
	if (!err && strcmp(s->path, s->real))
		err = tracer_add_path_alias(reg->tracer, s->path, &s->key, s->id);
	if (err)
		return refuse(errmsg, CONTROL_INTERNAL,
			      "source %s: adding it to the kernel filter: %s",
			      s->path, strerror(-err));
	return CONTROL_OK;
}

static struct reg_source *source_new(struct registry *reg, const char *path,
				     char *real, char **errmsg)
{
	struct reg_source *s = calloc(1, sizeof(*s));

	if (!s || path_normalize(path, &s->path)) {
		free(s);
		free(real);
		refuse(errmsg, CONTROL_INTERNAL, "out of memory");
		return NULL;
	}
	s->real = real;
	s->id = reg->next_id++;
	if (!reg->next_id)
		reg->next_id = 1;
	if (source_watch(reg, s, errmsg)) {
		free(s->path);
		free(s->real);
		free(s);
		return NULL;
	}
	s->next = reg->sources;
	reg->sources = s;
	return s;
}

int registry_add(struct registry *reg, const char *source, const char *agent,
		 const char *dest, enum watch_origin origin,
		 struct reg_dest **out, char **errmsg)
{
	struct reg_source *s;
	struct reg_dest *d;
	char *real = NULL, *ndest = NULL;
	int code;

	code = registry_validate(reg, source, agent, dest, &real, &ndest,
				 errmsg);
	if (code)
		return code;
	s = registry_find_source(reg, real);
	if (s && (d = registry_find_dest(s, ndest))) {
		code = refuse(errmsg, CONTROL_ALREADY_EXISTS,
			      "%s is already watched for dest %s (agent %s); "
			      "unwatch it first to change the agent",
			      source, ndest, d->agent->url);
		goto fail;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		code = refuse(errmsg, CONTROL_INTERNAL, "out of memory");
		goto fail;
	}
	d->agent = agent_get(reg, agent, errmsg);
	if (!d->agent) {
		free(d);
		code = CONTROL_INVALID_ARGUMENT;
		goto fail;
	}
	if (!s) {
		s = source_new(reg, source, real, errmsg);
		real = NULL;
		if (!s) {
			agent_put(reg, d->agent);
			free(d);
			code = CONTROL_INTERNAL;
			goto fail;
		}
	}
	d->dest = ndest;
	d->origin = origin;
	d->src = s;
	d->sync.reason = -1;
	d->next = s->dests;
	s->dests = d;
	free(real);
	if (out)
		*out = d;
	return CONTROL_OK;
fail:
	free(real);
	free(ndest);
	return code;
}

static void dest_free(struct registry *reg, struct reg_dest *d)
{
	agent_put(reg, d->agent);
	dest_state_clear(&d->sync.state);
	free(d->sync.last_error);
	free(d->dest);
	free(d);
}

static void source_unwatch(struct registry *reg, struct reg_source *s)
{
	int err;

	if (!reg->tracer)
		return;
	err = tracer_unwatch_dir(reg->tracer, s->real, &s->key);
	if (err && err != -ENOENT)
		log_warn("removing source from the kernel filter failed",
			 "source", s->path, "error", strerror(-err));
}

static void source_free(struct registry *reg, struct reg_source *s)
{
	struct reg_source **pp;

	for (pp = &reg->sources; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	source_unwatch(reg, s);
	free(s->path);
	free(s->real);
	free(s);
}

void registry_remove_dest(struct registry *reg, struct reg_dest *d)
{
	struct reg_source *s = d->src;
	struct reg_dest **pp;

	if (s) {
		for (pp = &s->dests; *pp; pp = &(*pp)->next)
			if (*pp == d) {
				*pp = d->next;
				break;
			}
		d->src = NULL;
		if (!s->dests)
			source_free(reg, s);
	}
	if (d->sync.inflight) {
		d->sync.removed = true;
		d->next = reg->graveyard;
		reg->graveyard = d;
		return;
	}
	dest_free(reg, d);
}

void registry_remove_source(struct registry *reg, struct reg_source *s)
{
	while (s->dests->next)
		registry_remove_dest(reg, s->dests);
	registry_remove_dest(reg, s->dests);	/* frees s */
}

void registry_reap(struct registry *reg, struct reg_dest *d)
{
	struct reg_dest **pp;

	for (pp = &reg->graveyard; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	dest_free(reg, d);
}

int registry_recheck(struct registry *reg, struct reg_source *s,
		     const char **why)
{
	struct stat st;
	bool mountpoint = false;
	char *real;
	int err;

	err = identify(s->real, &st, &mountpoint);
	if (err) {
		*why = err == -ENOTDIR ? "no longer a directory" :
					 "directory removed";
		return -ENOENT;
	}
	if (st.st_dev == s->st_dev && st.st_ino == s->st_ino)
		return 0;
	/* It was a mount point and no longer is: unmounted under us. */
	if (s->mountpoint && !mountpoint) {
		*why = "volume unmounted";
		return -ENOENT;
	}
	real = realpath(s->real, NULL);
	if (!real || strcmp(real, s->real)) {
		free(real);
		*why = "path now resolves elsewhere";
		return -ENOENT;
	}
	free(real);
	source_unwatch(reg, s);
	if (source_watch(reg, s, NULL)) {
		*why = "re-adding it to the kernel filter failed";
		return -ENOENT;
	}
	*why = "directory identity (dev, ino) changed";
	return 1;
}

size_t registry_count_dests(const struct registry *reg)
{
	struct reg_source *s;
	struct reg_dest *d;
	size_t n = 0;

	registry_for_each_dest(reg, s, d)
		n++;
	return n;
}

size_t registry_count_agents(const struct registry *reg)
{
	struct reg_agent *a;
	size_t n = 0;

	for (a = reg->agents; a; a = a->next)
		n++;
	return n;
}

void registry_free(struct registry *reg)
{
	while (reg->sources)
		registry_remove_source(reg, reg->sources);
	while (reg->graveyard)
		registry_reap(reg, reg->graveyard);
	free_allowed(reg);
}
