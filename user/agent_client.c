// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Kata agent client: CopyFile RPCs over a shared, reconnecting connection. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.pb-c.h"
#include "agent_client.h"
#include "copy_tree.h"
#include "guest_path.h"
#include "log.h"
#include "transport.h"
#include "util.h"

struct agent_conn {
	char *url_str;
	struct agent_url url;
	struct agent_conn_opts opts;
	pthread_mutex_t lock;		/* everything below */
	struct ttrpc_client *client;	/* NULL when disconnected */
	bool ever_connected;
	uint64_t retry_at;		/* no connect attempt before (ns) */
	int backoff_ms;			/* delay after the next failure */
	char *last_error;
	struct agent_counters ctr;
	agent_reconnect_fn cb;
	void *cb_arg;
};

void agent_conn_opts_default(struct agent_conn_opts *o)
{
	o->connect_timeout_ms = 5000;
	o->call_timeout_ms = 30000;
	o->backoff_initial_ms = 100;
	o->backoff_max_ms = 30000;
}

struct agent_conn *agent_conn_new(const char *url,
				  const struct agent_conn_opts *opts,
				  struct ttrpc_status *st)
{
	struct agent_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	if (agent_url_parse(url, &c->url, st) < 0) {
		free(c);
		return NULL;
	}
	c->url_str = strdup(url);
	if (opts)
		c->opts = *opts;
	else
		agent_conn_opts_default(&c->opts);
	if (c->opts.backoff_initial_ms <= 0)
		c->opts.backoff_initial_ms = 100;
	if (c->opts.backoff_max_ms < c->opts.backoff_initial_ms)
		c->opts.backoff_max_ms = c->opts.backoff_initial_ms;
	c->backoff_ms = c->opts.backoff_initial_ms;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void agent_conn_free(struct agent_conn *c)
{
	if (!c)
		return;
	if (c->client)
		ttrpc_client_free(c->client);
	agent_url_release(&c->url);
	pthread_mutex_destroy(&c->lock);
	free(c->last_error);
	free(c->url_str);
	free(c);
}

const char *agent_conn_url(const struct agent_conn *c)
{
	return c->url_str;
}

void agent_conn_set_reconnect_cb(struct agent_conn *c, agent_reconnect_fn fn,
				 void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->cb = fn;
	c->cb_arg = arg;
	pthread_mutex_unlock(&c->lock);
}

/* With c->lock held: schedule the next attempt after a failure. */
static void backoff_locked(struct agent_conn *c, const char *why)
{
	c->retry_at = now_ns() + (uint64_t)c->backoff_ms * 1000000ull;
	c->backoff_ms *= 2;
	if (c->backoff_ms > c->opts.backoff_max_ms)
		c->backoff_ms = c->opts.backoff_max_ms;
	free(c->last_error);
	c->last_error = strdup(why ? why : "connection failed");
}

/* With c->lock held: forget a broken client. */
static void drop_broken_locked(struct agent_conn *c)
{
	if (c->client && ttrpc_client_broken(c->client)) {
		ttrpc_client_free(c->client);
		c->client = NULL;
		backoff_locked(c, "connection lost");
	}
}

/*
 * A referenced client, connecting when needed. `force` ignores the
 * backoff. *reconnected tells the caller to run the callback.
 */
static struct ttrpc_client *get_client(struct agent_conn *c, bool force,
				       uint64_t *reconnected,
				       struct ttrpc_status *st)
{
	struct ttrpc_client *cl = NULL;
	uint64_t now;
	int fd;

	*reconnected = 0;
	pthread_mutex_lock(&c->lock);
	drop_broken_locked(c);
	if (c->client) {
		cl = ttrpc_client_ref(c->client);
		goto out;
	}
	now = now_ns();
	if (!force && now < c->retry_at) {
		ttrpc_status_set(st, GRPC_UNAVAILABLE,
			"agent %s: not connected (%s); next attempt in %llu ms",
			c->url_str, c->last_error ? c->last_error : "?",
			(unsigned long long)((c->retry_at - now) / 1000000 + 1));
		goto out;
	}
	fd = transport_connect(&c->url, c->opts.connect_timeout_ms, st);
	if (fd < 0) {
		backoff_locked(c, st->message);
		goto out;
	}
	c->client = ttrpc_client_new(fd);
	if (!c->client) {
		ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	c->ctr.connects++;
	if (c->ever_connected) {
		c->ctr.reconnects++;
		*reconnected = c->ctr.reconnects;
	}
	c->ever_connected = true;
	cl = ttrpc_client_ref(c->client);
out:
	pthread_mutex_unlock(&c->lock);
	return cl;
}

static void run_reconnect_cb(struct agent_conn *c, uint64_t reconnected)
{
	agent_reconnect_fn cb;
	void *arg;

	if (!reconnected)
		return;
	log_info("agent reconnected", "agent", c->url_str,
		 "reconnects", LOG_U64(reconnected));
	pthread_mutex_lock(&c->lock);
	cb = c->cb;
	arg = c->cb_arg;
	pthread_mutex_unlock(&c->lock);
	if (cb)
		cb(c, reconnected, arg);
}

int agent_conn_connect(struct agent_conn *c, struct ttrpc_status *st)
{
	uint64_t rec;
	struct ttrpc_client *cl = get_client(c, true, &rec, st);

	if (!cl)
		return -1;
	ttrpc_client_free(cl);
	run_reconnect_cb(c, rec);
	return 0;
}

void agent_conn_disconnect(struct agent_conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->client) {
		ttrpc_client_shutdown(c->client, "disconnected by caller");
		ttrpc_client_free(c->client);
		c->client = NULL;
	}
	pthread_mutex_unlock(&c->lock);
}

bool agent_conn_connected(struct agent_conn *c)
{
	bool r;

	pthread_mutex_lock(&c->lock);
	drop_broken_locked(c);
	r = c->client != NULL;
	pthread_mutex_unlock(&c->lock);
	return r;
}

uint64_t agent_conn_reconnects(struct agent_conn *c)
{
	uint64_t r;

	pthread_mutex_lock(&c->lock);
	r = c->ctr.reconnects;
	pthread_mutex_unlock(&c->lock);
	return r;
}

uint64_t agent_conn_retry_at_ns(struct agent_conn *c)
{
	uint64_t r;

	pthread_mutex_lock(&c->lock);
	r = c->client ? 0 : c->retry_at;
	if (r && r <= now_ns())
		r = 0;
	pthread_mutex_unlock(&c->lock);
	return r;
}

void agent_conn_counters(struct agent_conn *c, struct agent_counters *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->ctr;
	pthread_mutex_unlock(&c->lock);
}

void agent_counters_add(struct agent_counters *dst,
			const struct agent_counters *src)
{
	dst->rpcs += src->rpcs;
	dst->rpc_errors += src->rpc_errors;
	dst->bytes += src->bytes;
	dst->files += src->files;
	dst->dirs += src->dirs;
	dst->symlinks += src->symlinks;
	dst->connects += src->connects;
	dst->reconnects += src->reconnects;
}

/* ---- CopyFile ------------------------------------------------------------ */

int agent_copy_req_encode(const struct agent_copy_req *req, uint8_t **out,
			  size_t *out_len, struct ttrpc_status *st)
{
	Grpc__CopyFileRequest m = GRPC__COPY_FILE_REQUEST__INIT;
	size_t n;

	m.path = (char *)req->path;
	m.file_size = req->file_size;
	m.file_mode = req->file_mode;
	m.dir_mode = req->dir_mode;
	m.uid = req->uid;
	m.gid = req->gid;
	m.offset = req->offset;
	m.data.data = (uint8_t *)req->data;
	m.data.len = req->len;
	n = grpc__copy_file_request__get_packed_size(&m);
	*out = malloc(n ? n : 1);
	if (!*out)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
					"out of memory");
	*out_len = grpc__copy_file_request__pack(&m, *out);
	return 0;
}

static char completes_of(const struct agent_copy_req *req)
{
	switch (req->file_mode & S_IFMT) {
	case S_IFDIR:
		return 'd';
	case S_IFLNK:
		return 'l';
	default:
		return req->offset + (int64_t)req->len == req->file_size ?
		       'f' : 0;
	}
}

int agent_copy_file_start(struct agent_conn *c,
			  const struct agent_copy_req *req,
			  struct agent_call *call, struct ttrpc_status *st)
{
	struct ttrpc_client *cl;
	uint8_t *payload = NULL;
	size_t plen;
	uint64_t rec;
	int r;

	memset(call, 0, sizeof(*call));
	if (!req->path || !guest_path_allowed(req->path))
		return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
			"refusing guest path \"%s\": outside " GUEST_SHARED_ROOT "/",
			req->path ? req->path : "(null)");
	if (S_ISREG(req->file_mode) && req->len > AGENT_CHUNK_MAX)
		return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
			"chunk of %zu bytes for %s exceeds %u", req->len,
			req->path, AGENT_CHUNK_MAX);
	if (agent_copy_req_encode(req, &payload, &plen, st) < 0)
		return -1;
	cl = get_client(c, false, &rec, st);
	if (!cl) {
		free(payload);
		pthread_mutex_lock(&c->lock);
		c->ctr.rpc_errors++;
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	run_reconnect_cb(c, rec);
	r = ttrpc_client_start(cl, AGENT_SERVICE, AGENT_METHOD_COPY_FILE,
			       payload, plen,
			       (uint64_t)c->opts.call_timeout_ms * 1000000ull,
			       &call->stream_id, st);
	free(payload);
	if (r < 0) {
		ttrpc_client_free(cl);
		pthread_mutex_lock(&c->lock);
		c->ctr.rpc_errors++;
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	call->client = cl;
	call->len = S_ISREG(req->file_mode) ? req->len : 0;
	call->completes = completes_of(req);
	return 0;
}

static void count_ok(struct agent_counters *k, const struct agent_call *call)
{
	k->rpcs++;
	k->bytes += call->len;
	if (call->completes == 'f')
		k->files++;
	else if (call->completes == 'd')
		k->dirs++;
	else if (call->completes == 'l')
		k->symlinks++;
}

int agent_copy_file_wait(struct agent_conn *c, struct agent_call *call,
			 struct agent_counters *ctr, struct ttrpc_status *st)
{
	int r;

	if (!call->client)
		return ttrpc_status_set(st, GRPC_INTERNAL, "call not started");
	r = ttrpc_client_wait(call->client, call->stream_id, NULL, NULL, st);
	ttrpc_client_free(call->client);
	call->client = NULL;
	pthread_mutex_lock(&c->lock);
	if (r == 0) {
		count_ok(&c->ctr, call);
		/* A working connection earns back the short backoff. */
		c->backoff_ms = c->opts.backoff_initial_ms;
	} else {
		c->ctr.rpc_errors++;
	}
	pthread_mutex_unlock(&c->lock);
	if (ctr) {
		if (r == 0)
			count_ok(ctr, call);
		else
			ctr->rpc_errors++;
	}
	return r;
}

static int copy_rpc(struct agent_conn *c, const struct agent_copy_req *req,
		    struct agent_counters *ctr, struct ttrpc_status *st)
{
	struct agent_call call;

	if (agent_copy_file_start(c, req, &call, st) < 0) {
		if (ctr)
			ctr->rpc_errors++;
		return -1;
	}
	return agent_copy_file_wait(c, &call, ctr, st);
}

int agent_copy_file_rpc(struct agent_conn *c, const struct agent_copy_req *req,
			struct ttrpc_status *st)
{
	return copy_rpc(c, req, NULL, st);
}

/* ---- per-entry primitives ------------------------------------------------ */

int agent_put_dir(struct agent_conn *c, const char *guest_path,
		  const struct stat *sb, struct agent_counters *ctr,
		  struct ttrpc_status *st)
{
	struct agent_copy_req req = {
		.path = guest_path,
		.file_mode = S_IFDIR | (sb->st_mode & 07777),
		.dir_mode = AGENT_DIR_MODE,
		.uid = (int32_t)sb->st_uid,
		.gid = (int32_t)sb->st_gid,
	};

	if (copy_rpc(c, &req, ctr, st) < 0) {
		ttrpc_status_prefix(st, "mkdir %s", guest_path);
		return -1;
	}
	return 0;
}

int agent_put_symlink(struct agent_conn *c, const char *guest_path,
		      const char *target, const struct stat *sb,
		      struct agent_counters *ctr, struct ttrpc_status *st)
{
	struct agent_copy_req req = {
		.path = guest_path,
		.file_size = (int64_t)strlen(target),
		.file_mode = S_IFLNK | (sb->st_mode & 07777),
		.dir_mode = AGENT_DIR_MODE,
		.uid = (int32_t)sb->st_uid,
		.gid = (int32_t)sb->st_gid,
		.data = (const uint8_t *)target,
		.len = strlen(target),
	};

	if (copy_rpc(c, &req, ctr, st) < 0) {
		ttrpc_status_prefix(st, "symlink %s -> %s", guest_path, target);
		return -1;
	}
	return 0;
}

static int send_file_fd(struct agent_conn *c, int fd, const struct stat *sb,
			const char *relpath, const char *guest_path,
			struct agent_counters *ctr, struct ttrpc_status *st)
{
	uint64_t size = (uint64_t)sb->st_size;
	uint64_t nchunks = copy_chunk_count(size, AGENT_CHUNK_MAX);
	size_t bufsz = size < AGENT_CHUNK_MAX ? (size ? size : 1) : AGENT_CHUNK_MAX;
	uint8_t *buf = malloc(bufsz);
	struct stat after;
	int ret = -1;

	if (!buf)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
					"copy %s: out of memory", relpath);
	for (uint64_t i = 0; i < nchunks; i++) {
		struct agent_copy_req req = {
			.path = guest_path,
			.file_size = (int64_t)size,
			.file_mode = sb->st_mode,
			.dir_mode = AGENT_DIR_MODE,
			.uid = (int32_t)sb->st_uid,
			.gid = (int32_t)sb->st_gid,
			.data = buf,
		};
		uint64_t off;
		ssize_t n;

		copy_chunk_at(size, AGENT_CHUNK_MAX, i, &off, &req.len);
		req.offset = (int64_t)off;
		n = pread_full(fd, buf, req.len, (off_t)off);
		if (n < 0) {
			ttrpc_status_set(st, GRPC_INTERNAL, "read %s: %s",
					 relpath, strerror((int)-n));
			goto out;
		}
		if ((size_t)n != req.len) {
			ttrpc_status_set(st, GRPC_ABORTED,
				"%s shrank while being copied", relpath);
			goto out;
		}
		/* One chunk in flight: the agent publishes the file when
		 * its size reaches file_size, so order matters. */
		if (copy_rpc(c, &req, ctr, st) < 0) {
			ttrpc_status_prefix(st, "copy %s -> %s", relpath,
					    guest_path);
			goto out;
		}
	}
	if (fstat(fd, &after) == 0 && after.st_size != sb->st_size) {
		ttrpc_status_set(st, GRPC_ABORTED,
			"%s changed size while being copied", relpath);
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

int agent_put_file(struct agent_conn *c, int src_dirfd, const char *relpath,
		   const char *guest_path, struct agent_counters *ctr,
		   struct ttrpc_status *st)
{
	struct stat sb;
	int fd, ret = -1;

	fd = copy_open_beneath(src_dirfd, relpath,
			       O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		/* A source entry that vanished is a race with the writer
		 * (kubelet removing an old ..<timestamp>): retriable. */
		int code = fd == -ENOENT ? GRPC_ABORTED :
			   (fd == -EXDEV || fd == -ELOOP) ? GRPC_PERMISSION_DENIED :
			   GRPC_INTERNAL;

		return ttrpc_status_set(st, code, "copy %s -> %s: open: %s%s",
			relpath, guest_path, strerror(-fd),
			fd == -EXDEV || fd == -ELOOP ?
			" (symlinks leaving the source directory are not followed)" : "");
	}
	if (fstat(fd, &sb) < 0) {
		ttrpc_status_set(st, GRPC_INTERNAL, "copy %s: fstat: %s",
				 relpath, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
				 "copy %s: not a regular file", relpath);
		goto out;
	}
	ret = send_file_fd(c, fd, &sb, relpath, guest_path, ctr, st);
out:
	close(fd);
	return ret;
}

int agent_put_entry(struct agent_conn *c, int src_dirfd, const char *relpath,
		    const char *guest_path, struct agent_counters *ctr,
		    struct ttrpc_status *st)
{
	struct stat sb;
	char *target = NULL;
	int r;

	r = copy_lstat_beneath(src_dirfd, relpath, &sb);
	if (r < 0)
		return ttrpc_status_set(st, r == -ENOENT ? GRPC_ABORTED :
					GRPC_INTERNAL, "lstat %s: %s", relpath,
					strerror(-r));
	switch (sb.st_mode & S_IFMT) {
	case S_IFREG:
		return agent_put_file(c, src_dirfd, relpath, guest_path, ctr, st);
	case S_IFDIR:
		return agent_put_dir(c, guest_path, &sb, ctr, st);
	case S_IFLNK:
		r = copy_readlink_beneath(src_dirfd, relpath, &target);
		if (r < 0)
			return ttrpc_status_set(st, GRPC_INTERNAL,
				"readlink %s: %s", relpath, strerror(-r));
		r = agent_put_symlink(c, guest_path, target, &sb, ctr, st);
		free(target);
		return r;
	default:
		return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
			"%s is not a regular file, directory or symlink; not copied",
			relpath);
	}
}
