// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * voltrace.v1.Control over ttrpc on a unix socket, driven by the daemon's
 * epoll loop through one nested epoll fd. Framing and envelopes come from
 * ttrpc.c; this file owns the socket, the connections and the dispatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "control_server.h"
#include "log.h"
#include "metrics.h"
#include "ttrpc.h"
#include "util.h"

#ifndef VOLTRACE_VERSION
#define VOLTRACE_VERSION "0.1.0"
#endif

#define MAX_CONNS	64
#define READ_CHUNK	65536
/* Control requests are small; refuse frames larger than this. */
#define MAX_REQUEST	(1u << 20)

_Static_assert(CONTROL_INVALID_ARGUMENT == GRPC_INVALID_ARGUMENT &&
	       CONTROL_NOT_FOUND == GRPC_NOT_FOUND &&
	       CONTROL_ALREADY_EXISTS == GRPC_ALREADY_EXISTS &&
	       CONTROL_PERMISSION_DENIED == GRPC_PERMISSION_DENIED &&
	       CONTROL_FAILED_PRECONDITION == GRPC_FAILED_PRECONDITION &&
	       CONTROL_UNIMPLEMENTED == GRPC_UNIMPLEMENTED &&
	       CONTROL_INTERNAL == GRPC_INTERNAL &&
	       CONTROL_UNAVAILABLE == GRPC_UNAVAILABLE,
	       "control codes are gRPC codes");

struct conn {
	int fd;
	uid_t uid;
	pid_t pid;
	bool allowed;
	struct ttrpc_decoder dec;
	uint8_t *out;		/* responses not yet written */
	size_t out_len, out_off;
	struct conn *next;
};

struct control_server {
	char *path;
	ino_t ino;		/* of the socket we bound, to unlink only ours */
	int lfd, epfd;
	const struct control_ops *ops;
	void *ctx;
	bool extra_uid_set;
	uid_t extra_uid;
	struct conn *conns;
	unsigned int nconns;
	bool op_called;		/* the current request reached a callback */
	uint64_t start_ns;
	struct utsname uts;
};

struct control_list {
	Voltrace__V1__WatchInfo **items;
	size_t n, cap;
};

/* ---- List accumulator ---- */

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static void watch_info_free(Voltrace__V1__WatchInfo *w)
{
	if (!w)
		return;
	free(w->source);
	free(w->agent);
	free(w->dest);
	free(w->origin);
	free(w->state);
	free(w->last_error);
	free(w);
}

int control_list_add(struct control_list *l, const struct control_watch_info *w)
{
	Voltrace__V1__WatchInfo *m;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *p = realloc(l->items, cap * sizeof(*l->items));

		if (!p)
			return -ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	voltrace__v1__watch_info__init(m);
	m->source = dup_or_empty(w->source);
	m->agent = dup_or_empty(w->agent);
	m->dest = dup_or_empty(w->dest);
	m->origin = dup_or_empty(w->origin);
	m->state = dup_or_empty(w->state);
	m->last_error = dup_or_empty(w->last_error);
	m->last_sync_unix_nano = w->last_sync_unix_ns;
	m->syncs = w->syncs;
	m->files_copied = w->files_copied;
	m->bytes_copied = w->bytes_copied;
	if (!m->source || !m->agent || !m->dest || !m->origin || !m->state ||
	    !m->last_error) {
		watch_info_free(m);
		return -ENOMEM;
	}
	l->items[l->n++] = m;
	return 0;
}

static void list_release(struct control_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		watch_info_free(l->items[i]);
	free(l->items);
}

/* ---- dispatch ---- */

/* Pack any protobuf-c message into a malloc'd buffer. */
static int pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len,
		struct ttrpc_status *reply)
{
	size_t n = protobuf_c_message_get_packed_size(msg);

	*out = malloc(n ? n : 1);
	if (!*out)
		return ttrpc_status_set(reply, GRPC_RESOURCE_EXHAUSTED, "out of memory");
	*len = protobuf_c_message_pack(msg, *out);
	return 0;
}

/* A callback's verdict into the reply. */
static int verdict(int code, char *errmsg, const char *what,
		   struct ttrpc_status *reply)
{
	if (code == GRPC_OK) {
		free(errmsg);
		return 0;
	}
	ttrpc_status_set(reply, code, "%s", errmsg && *errmsg ? errmsg : what);
	free(errmsg);
	return -1;
}

static int unimplemented(const char *method, struct ttrpc_status *reply)
{
	return ttrpc_status_set(reply, GRPC_UNIMPLEMENTED,
				"%s is not available in this daemon", method);
}

static bool empty(const char *s)
{
	return !s || !*s;
}

static int do_watch(struct control_server *s, const uint8_t *p, size_t n,
		    uint8_t **out, size_t *out_len, struct ttrpc_status *reply)
{
	Voltrace__V1__WatchRequest *req;
	Voltrace__V1__WatchResponse resp = VOLTRACE__V1__WATCH_RESPONSE__INIT;
	char *errmsg = NULL;
	int code, ret;

	if (!s->ops->watch)
		return unimplemented("Watch", reply);
	req = voltrace__v1__watch_request__unpack(NULL, n, p);
	if (!req)
		return ttrpc_status_set(reply, GRPC_INVALID_ARGUMENT,
					"WatchRequest does not decode");
	if (empty(req->source) || empty(req->agent) || empty(req->dest)) {
		ret = ttrpc_status_set(reply, GRPC_INVALID_ARGUMENT,
				       "watch needs a source, an agent URL and a dest");
		goto out;
	}
	s->op_called = true;
	code = s->ops->watch(s->ctx, req->source, req->agent, req->dest, &errmsg);
	/* The daemon logs outcomes; the server only transports them. */
	ret = verdict(code, errmsg, "watch refused", reply);
	if (!ret)
		ret = pack(&resp.base, out, out_len, reply);
out:
	voltrace__v1__watch_request__free_unpacked(req, NULL);
	return ret;
}

static int do_unwatch(struct control_server *s, const uint8_t *p, size_t n,
		      uint8_t **out, size_t *out_len, struct ttrpc_status *reply)
{
	Voltrace__V1__UnwatchRequest *req;
	Voltrace__V1__UnwatchResponse resp = VOLTRACE__V1__UNWATCH_RESPONSE__INIT;
	unsigned int removed = 0;
	char *errmsg = NULL;
	int code, ret;

	if (!s->ops->unwatch)
		return unimplemented("Unwatch", reply);
	req = voltrace__v1__unwatch_request__unpack(NULL, n, p);
	if (!req)
		return ttrpc_status_set(reply, GRPC_INVALID_ARGUMENT,
					"UnwatchRequest does not decode");
	if (empty(req->source)) {
		ret = ttrpc_status_set(reply, GRPC_INVALID_ARGUMENT,
				       "unwatch needs a source");
		goto out;
	}
	s->op_called = true;
	code = s->ops->unwatch(s->ctx, req->source,
			       empty(req->dest) ? NULL : req->dest, &removed, &errmsg);
	ret = verdict(code, errmsg, "unwatch refused", reply);
	if (!ret) {
		resp.removed = removed;
		ret = pack(&resp.base, out, out_len, reply);
	}
out:
	voltrace__v1__unwatch_request__free_unpacked(req, NULL);
	return ret;
}

static int do_list(struct control_server *s, const uint8_t *p, size_t n,
		   uint8_t **out, size_t *out_len, struct ttrpc_status *reply)
{
	Voltrace__V1__ListRequest *req;
	Voltrace__V1__ListResponse resp = VOLTRACE__V1__LIST_RESPONSE__INIT;
	struct control_list l = { 0 };
	char *errmsg = NULL;
	int code, ret;

	if (!s->ops->list)
		return unimplemented("List", reply);
	req = voltrace__v1__list_request__unpack(NULL, n, p);
	if (!req)
		return ttrpc_status_set(reply, GRPC_INVALID_ARGUMENT,
					"ListRequest does not decode");
	voltrace__v1__list_request__free_unpacked(req, NULL);
	s->op_called = true;
	code = s->ops->list(s->ctx, &l, &errmsg);
	ret = verdict(code, errmsg, "list failed", reply);
	if (!ret) {
		resp.watches = l.items;
		resp.n_watches = l.n;
		ret = pack(&resp.base, out, out_len, reply);
	}
	list_release(&l);
	return ret;
}

static int do_status(struct control_server *s, const uint8_t *p, size_t n,
		     uint8_t **out, size_t *out_len, struct ttrpc_status *reply)
{
	Voltrace__V1__StatusRequest *req;
	Voltrace__V1__StatusResponse resp = VOLTRACE__V1__STATUS_RESPONSE__INIT;
	struct control_status st = {
		.version = VOLTRACE_VERSION,
		.kernel = s->uts.release,
		.uptime_ns = now_ns() - s->start_ns,
	};
	char *errmsg = NULL;
	int code, ret;

	if (!s->ops->status)
		return unimplemented("Status", reply);
	req = voltrace__v1__status_request__unpack(NULL, n, p);
	if (!req)
		return ttrpc_status_set(reply, GRPC_INVALID_ARGUMENT,
					"StatusRequest does not decode");
	voltrace__v1__status_request__free_unpacked(req, NULL);
	s->op_called = true;
	code = s->ops->status(s->ctx, &st, &errmsg);
	ret = verdict(code, errmsg, "status failed", reply);
	if (ret)
		return ret;
	/* protobuf-c packs "" for NULL strings only if we say so. */
	resp.version = (char *)(st.version ? st.version : "");
	resp.mode = (char *)(st.mode ? st.mode : "");
	resp.kernel = (char *)(st.kernel ? st.kernel : "");
	resp.control_socket = (char *)(st.control_socket ? st.control_socket : s->path);
	resp.metrics_address = (char *)(st.metrics_address ? st.metrics_address : "");
	resp.state_file = (char *)(st.state_file ? st.state_file : "");
	resp.uptime_nano = st.uptime_ns;
	resp.watches = st.watches;
	resp.agents = st.agents;
	resp.events = st.events;
	resp.events_dropped = st.events_dropped;
	resp.syncs_ok = st.syncs_ok;
	resp.syncs_error = st.syncs_error;
	resp.bytes_copied = st.bytes_copied;
	resp.files_copied = st.files_copied;
	resp.reconciles = st.reconciles;
	resp.guest_stale_dirs = st.guest_stale_dirs;
	return pack(&resp.base, out, out_len, reply);
}

typedef int (*method_fn)(struct control_server *s, const uint8_t *p, size_t n,
			 uint8_t **out, size_t *out_len, struct ttrpc_status *reply);

static void dispatch(struct control_server *s, struct conn *c,
		     const struct ttrpc_request *req, uint8_t **out,
		     size_t *out_len, struct ttrpc_status *reply)
{
	static const struct {
		const char *name;
		enum metrics_control_method metric;
		method_fn fn;
	} methods[] = {
		{ "Watch", METRICS_CTL_WATCH, do_watch },
		{ "Unwatch", METRICS_CTL_UNWATCH, do_unwatch },
		{ "List", METRICS_CTL_LIST, do_list },
		{ "Status", METRICS_CTL_STATUS, do_status },
	};
	enum metrics_control_method metric = METRICS_CTL_OTHER;
	size_t i;

	s->op_called = false;
	if (strcmp(req->service, CONTROL_SERVICE)) {
		ttrpc_status_set(reply, GRPC_UNIMPLEMENTED,
				 "unknown service \"%s\" (this is %s)", req->service,
				 CONTROL_SERVICE);
		goto done;
	}
	for (i = 0; i < ARRAY_SIZE(methods); i++) {
		if (!strcmp(req->method, methods[i].name))
			break;
	}
	if (i == ARRAY_SIZE(methods)) {
		ttrpc_status_set(reply, GRPC_UNIMPLEMENTED,
				 "unknown method %s/%s", CONTROL_SERVICE, req->method);
		goto done;
	}
	metric = methods[i].metric;
	if (!c->allowed) {
		/* Checked per request so the client gets a status, not a hangup. */
		ttrpc_status_set(reply, GRPC_PERMISSION_DENIED,
				 "the control API accepts only root (peer uid %u, pid %d)",
				 (unsigned int)c->uid, (int)c->pid);
		log_warn("control: request refused", "uid", LOG_U64(c->uid),
			 "pid", LOG_INT(c->pid), "method", req->method);
		goto done;
	}
	methods[i].fn(s, req->payload, req->payload_len, out, out_len, reply);
done:
	/* Callbacks count their own outcome; count what never reached one. */
	if (!s->op_called)
		metrics_control_request(metric, reply->code == GRPC_OK);
}

/* ---- connections ---- */

static void conn_close(struct control_server *s, struct conn *c)
{
	struct conn **pp;

	for (pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	ttrpc_decoder_release(&c->dec);
	free(c->out);
	free(c);
	s->nconns--;
}

static int conn_set_events(struct control_server *s, struct conn *c)
{
	struct epoll_event ev = {
		.events = c->out_len > c->out_off ? EPOLLOUT : EPOLLIN,
		.data.ptr = c,
	};

	return epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int queue_out(struct conn *c, const uint8_t *buf, size_t len)
{
	uint8_t *p;

	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	}
	p = realloc(c->out, c->out_len + len);
	if (!p)
		return -ENOMEM;
	memcpy(p + c->out_len, buf, len);
	c->out = p;
	c->out_len += len;
	return 0;
}

/* Answer one decoded frame; -1 closes the connection. */
static int handle_frame(struct control_server *s, struct conn *c,
			struct ttrpc_frame *f)
{
	struct ttrpc_request req = { 0 };
	struct ttrpc_status reply = TTRPC_STATUS_INIT, st = TTRPC_STATUS_INIT;
	uint8_t *resp = NULL, *body = NULL, *frame = NULL;
	size_t resp_len = 0, body_len = 0, frame_len = 0;
	const char *msg = NULL;
	int ret = -1;

	if (!(f->hdr.stream_id & 1))
		goto out;	/* clients use odd stream ids: not a ttrpc client */
	if (ttrpc_request_decode(f->data, f->hdr.length, &req, &reply) == 0)
		dispatch(s, c, &req, &resp, &resp_len, &reply);
	if (reply.code != GRPC_OK) {
		/* The code travels on its own: send the detail without "Code: ". */
		const char *name = grpc_code_name(reply.code);
		size_t nl = strlen(name);

		msg = reply.message ? reply.message : "";
		if (!strncmp(msg, name, nl) && !strncmp(msg + nl, ": ", 2))
			msg += nl + 2;
	}
	if (ttrpc_response_encode(reply.code, msg, reply.code ? NULL : resp,
				  reply.code ? 0 : resp_len, &body, &body_len, &st) < 0 ||
	    ttrpc_frame_encode(f->hdr.stream_id, TTRPC_TYPE_RESPONSE, body,
			       body_len, &frame, &frame_len, &st) < 0) {
		log_error("control: cannot encode a response", "error",
			  ttrpc_status_str(&st));
		goto out;
	}
	if (queue_out(c, frame, frame_len))
		goto out;
	ret = 0;
out:
	free(frame);
	free(body);
	free(resp);
	ttrpc_status_clear(&reply);
	ttrpc_status_clear(&st);
	ttrpc_request_release(&req);
	return ret;
}

static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_off = c->out_len = 0;
	return 0;
}

static int conn_read(struct control_server *s, struct conn *c)
{
	uint8_t buf[READ_CHUNK];
	size_t off = 0;
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	while (off < (size_t)n) {
		struct ttrpc_status st = TTRPC_STATUS_INIT;
		struct ttrpc_frame f = { 0 };
		enum ttrpc_decode_result r;
		size_t used, want = (size_t)n - off;

		/*
		 * Feed a header on its own so its length is checked before
		 * the body arrives: control requests are small.
		 */
		if (c->dec.hdr_have < TTRPC_HEADER_LEN &&
		    want > TTRPC_HEADER_LEN - c->dec.hdr_have)
			want = TTRPC_HEADER_LEN - c->dec.hdr_have;
		r = ttrpc_decoder_feed(&c->dec, buf + off, want,
				       TTRPC_TYPE_REQUEST, &used, &f, &st);
		off += used;
		if (r == TTRPC_DECODE_NEED_MORE && c->dec.hdr_have == TTRPC_HEADER_LEN &&
		    c->dec.hdr.length > MAX_REQUEST) {
			log_warn("control: request too large, closing",
				 "bytes", LOG_U64(c->dec.hdr.length));
			return -EMSGSIZE;
		}
		if (r == TTRPC_DECODE_ERROR) {
			log_warn("control: bad frame, closing", "error",
				 ttrpc_status_str(&st));
			ttrpc_status_clear(&st);
			return -EPROTO;
		}
		if (r == TTRPC_DECODE_FRAME) {
			int ret = f.hdr.length > MAX_REQUEST ? -EMSGSIZE :
				  handle_frame(s, c, &f);

			ttrpc_frame_release(&f);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static bool peer_allowed(const struct control_server *s, uid_t uid)
{
	return uid == 0 || (s->extra_uid_set && uid == s->extra_uid);
}

static void accept_all(struct control_server *s)
{
	for (;;) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;
		int fd;

		fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control: accept", "error", strerror(errno));
			return;
		}
		if (s->nconns >= MAX_CONNS ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
			log_warn("control: connection dropped",
				 "reason", s->nconns >= MAX_CONNS ? "too many connections"
								   : strerror(errno));
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->uid = cred.uid;
		c->pid = cred.pid;
		c->allowed = peer_allowed(s, cred.uid);
		ttrpc_decoder_init(&c->dec);
		ev.data.ptr = c;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		s->conns = c;
		s->nconns++;
	}
}

int control_server_process(struct control_server *s)
{
	struct epoll_event evs[32];
	int n;

	n = epoll_wait(s->epfd, evs, ARRAY_SIZE(evs), 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		int err = 0;

		if (!c) {
			accept_all(s);
			continue;
		}
		if (evs[i].events & EPOLLOUT)
			err = conn_flush(c);
		else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			err = conn_read(s, c);
		if (!err && c->out_len > c->out_off)
			err = conn_flush(c);
		if (!err)
			err = conn_set_events(s, c) < 0 ? -errno : 0;
		if (err) {
			if (err != -ECONNRESET && err != -EPIPE)
				log_debug("control: connection closed", "error",
					  strerror(-err));
			conn_close(s, c);
		}
	}
	return 0;
}

/* ---- socket ---- */

static int mkdir_p(const char *dir)
{
	char *p, *tmp = strdup(dir);
	int ret = 0;

	if (!tmp)
		return -ENOMEM;
	for (p = tmp + 1; ; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			ret = -errno;
			break;
		}
		*p = c;
		if (!c)
			break;
	}
	free(tmp);
	return ret;
}

/* A socket file at path: in use by a live daemon (-EADDRINUSE) or stale (removed). */
static int clear_stale(const char *path, const struct sockaddr_un *sa, char **errmsg)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		if (asprintf(errmsg, "control socket %s: exists and is not a socket", path) < 0)
			*errmsg = NULL;
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0) {
		if (asprintf(errmsg, "control socket %s: another daemon is listening on it",
			     path) < 0)
			*errmsg = NULL;
		return -EADDRINUSE;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	log_info("control: removed a stale socket", "path", path);
	return 0;
}

int control_server_open(const char *path, const struct control_ops *ops,
			void *ctx, struct control_server **out, char **errmsg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct control_server *s;
	const char *step = "";
	char *dir, *slash;
	struct stat st;
	int err;

	*out = NULL;
	*errmsg = NULL;
	if (path[0] != '/' || strlen(path) >= sizeof(sa.sun_path)) {
		if (asprintf(errmsg, "control socket %s: must be an absolute path of at most %zu bytes",
			     path, sizeof(sa.sun_path) - 1) < 0)
			*errmsg = NULL;
		return -1;
	}
	strcpy(sa.sun_path, path);
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path)) || !(dir = strdup(path))) {
		if (s)
			free(s->path);
		free(s);
		*errmsg = strdup("out of memory");
		return -1;
	}
	s->lfd = s->epfd = -1;
	s->ops = ops;
	s->ctx = ctx;
	s->start_ns = now_ns();
	uname(&s->uts);

	slash = strrchr(dir, '/');
	if (slash != dir) {
		*slash = '\0';
		step = "create parent directory";
		err = mkdir_p(dir);
		if (err)
			goto fail_err;
	}
	step = "remove stale socket";
	err = clear_stale(path, &sa, errmsg);
	if (err)
		goto fail_err;
	step = "socket";
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		goto fail;
	step = "bind";
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	/* Between bind and chmod the file is umask-wide open: SO_PEERCRED still guards it. */
	step = "chmod 0600";
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0)
		goto fail;
	s->ino = st.st_ino;
	step = "listen";
	if (listen(s->lfd, 16) < 0)
		goto fail;
	step = "epoll";
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) < 0)
		goto fail;
	free(dir);
	*out = s;
	return 0;

fail:
	err = -errno;
fail_err:
	if (!*errmsg && asprintf(errmsg, "control socket %s: %s: %s", path, step,
				 strerror(-err)) < 0)
		*errmsg = NULL;
	if (s->ino)
		unlink(path);
	free(dir);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s->path);
	free(s);
	return -1;
}

int control_server_fd(const struct control_server *s)
{
	return s->epfd;
}

void control_server_allow_uid(struct control_server *s, uint32_t uid)
{
	s->extra_uid_set = true;
	s->extra_uid = uid;
}

void control_server_close(struct control_server *s)
{
	struct stat st;

	if (!s)
		return;
	while (s->conns)
		conn_close(s, s->conns);
	close(s->lfd);
	close(s->epfd);
	/* Only our own socket: a successor may already have replaced it. */
	if (lstat(s->path, &st) == 0 && st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	free(s);
}
