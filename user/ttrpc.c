// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * ttrpc framing, envelope encoding, a multiplexing client and a one-shot
 * server helper. See ttrpc.h and containerd/ttrpc PROTOCOL.md.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ttrpc.h"
#include "ttrpc.pb-c.h"
#include "util.h"

/* ---- status -------------------------------------------------------------- */

static const char *const code_names[] = {
	[GRPC_OK] = "OK",
	[GRPC_CANCELLED] = "Canceled",
	[GRPC_UNKNOWN] = "Unknown",
	[GRPC_INVALID_ARGUMENT] = "InvalidArgument",
	[GRPC_DEADLINE_EXCEEDED] = "DeadlineExceeded",
	[GRPC_NOT_FOUND] = "NotFound",
	[GRPC_ALREADY_EXISTS] = "AlreadyExists",
	[GRPC_PERMISSION_DENIED] = "PermissionDenied",
	[GRPC_RESOURCE_EXHAUSTED] = "ResourceExhausted",
	[GRPC_FAILED_PRECONDITION] = "FailedPrecondition",
	[GRPC_ABORTED] = "Aborted",
	[GRPC_OUT_OF_RANGE] = "OutOfRange",
	[GRPC_UNIMPLEMENTED] = "Unimplemented",
	[GRPC_INTERNAL] = "Internal",
	[GRPC_UNAVAILABLE] = "Unavailable",
	[GRPC_DATA_LOSS] = "DataLoss",
	[GRPC_UNAUTHENTICATED] = "Unauthenticated",
};

const char *grpc_code_name(int code)
{
	static __thread char buf[24];

	if (code >= 0 && (size_t)code < ARRAY_SIZE(code_names))
		return code_names[code];
	snprintf(buf, sizeof(buf), "Code(%d)", code);
	return buf;
}

bool grpc_code_retriable(int code)
{
	switch (code) {
	case GRPC_UNAVAILABLE:
	case GRPC_DEADLINE_EXCEEDED:
	case GRPC_ABORTED:
	case GRPC_RESOURCE_EXHAUSTED:
	case GRPC_CANCELLED:
		return true;
	default:
		return false;
	}
}

static int status_vset(struct ttrpc_status *st, int code, const char *fmt,
		       va_list ap)
{
	char *detail = NULL, *msg = NULL;

	if (!st)
		return -1;
	if (vasprintf(&detail, fmt, ap) < 0)
		detail = NULL;
	if (asprintf(&msg, "%s: %s", grpc_code_name(code),
		     detail ? detail : "(out of memory)") < 0)
		msg = NULL;
	free(detail);
	free(st->message);
	st->code = code;
	st->remote = false;
	st->message = msg;
	return -1;
}

int ttrpc_status_set(struct ttrpc_status *st, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	status_vset(st, code, fmt, ap);
	va_end(ap);
	return -1;
}

void ttrpc_status_prefix(struct ttrpc_status *st, const char *fmt, ...)
{
	const char *name, *detail;
	char *ctx = NULL, *msg = NULL;
	size_t nl;
	va_list ap;

	if (!st || st->code == GRPC_OK)
		return;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) < 0)
		ctx = NULL;
	va_end(ap);
	if (!ctx)
		return;
	name = grpc_code_name(st->code);
	nl = strlen(name);
	detail = st->message ? st->message : "";
	if (!strncmp(detail, name, nl) && !strncmp(detail + nl, ": ", 2))
		detail += nl + 2;
	if (asprintf(&msg, "%s: %s: %s", name, ctx, detail) >= 0) {
		free(st->message);
		st->message = msg;
	}
	free(ctx);
}

void ttrpc_status_clear(struct ttrpc_status *st)
{
	if (!st)
		return;
	free(st->message);
	st->message = NULL;
	st->code = GRPC_OK;
	st->remote = false;
}

const char *ttrpc_status_str(const struct ttrpc_status *st)
{
	if (st->code == GRPC_OK)
		return "OK";
	return st->message ? st->message : grpc_code_name(st->code);
}

/* ---- framing ------------------------------------------------------------- */

void ttrpc_header_encode(uint8_t out[TTRPC_HEADER_LEN],
			 const struct ttrpc_header *h)
{
	out[0] = h->length >> 24;
	out[1] = h->length >> 16;
	out[2] = h->length >> 8;
	out[3] = h->length;
	out[4] = h->stream_id >> 24;
	out[5] = h->stream_id >> 16;
	out[6] = h->stream_id >> 8;
	out[7] = h->stream_id;
	out[8] = h->type;
	out[9] = h->flags;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_LEN],
			 struct ttrpc_header *h)
{
	h->length = be32(in);
	h->stream_id = be32(in + 4);
	h->type = in[8];
	h->flags = in[9];
}

void ttrpc_frame_release(struct ttrpc_frame *f)
{
	free(f->data);
	f->data = NULL;
}

void ttrpc_decoder_init(struct ttrpc_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

void ttrpc_decoder_release(struct ttrpc_decoder *d)
{
	free(d->data);
	ttrpc_decoder_init(d);
}

static int check_header(const struct ttrpc_header *h, uint8_t expect_type,
			struct ttrpc_status *st)
{
	if (h->length > TTRPC_MAX_DATA)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
			"ttrpc frame on stream %u announces %u bytes, more than the %u byte limit",
			h->stream_id, h->length, TTRPC_MAX_DATA);
	if (h->type != expect_type)
		return ttrpc_status_set(st, GRPC_INTERNAL,
			"ttrpc frame on stream %u has type %u, expected %u",
			h->stream_id, h->type, expect_type);
	return 0;
}

enum ttrpc_decode_result
ttrpc_decoder_feed(struct ttrpc_decoder *d, const uint8_t *buf, size_t len,
		   uint8_t expect_type, size_t *consumed,
		   struct ttrpc_frame *out, struct ttrpc_status *st)
{
	size_t used = 0, n;

	*consumed = 0;
	if (d->failed) {
		ttrpc_status_set(st, GRPC_INTERNAL, "ttrpc stream already failed");
		return TTRPC_DECODE_ERROR;
	}
	if (d->hdr_have < TTRPC_HEADER_LEN) {
		n = TTRPC_HEADER_LEN - d->hdr_have;
		if (n > len)
			n = len;
		memcpy(d->hdr_buf + d->hdr_have, buf, n);
		d->hdr_have += n;
		used = n;
		if (d->hdr_have < TTRPC_HEADER_LEN) {
			*consumed = used;
			return TTRPC_DECODE_NEED_MORE;
		}
		ttrpc_header_decode(d->hdr_buf, &d->hdr);
		if (check_header(&d->hdr, expect_type, st) < 0) {
			d->failed = true;
			*consumed = used;
			return TTRPC_DECODE_ERROR;
		}
		d->data_have = 0;
		d->data = NULL;
		if (d->hdr.length) {
			d->data = malloc(d->hdr.length);
			if (!d->data) {
				d->failed = true;
				ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
						 "out of memory for a %u byte frame",
						 d->hdr.length);
				return TTRPC_DECODE_ERROR;
			}
		}
	}
	n = d->hdr.length - d->data_have;
	if (n > len - used)
		n = len - used;
	if (n) {
		memcpy(d->data + d->data_have, buf + used, n);
		d->data_have += n;
		used += n;
	}
	*consumed = used;
	if (d->data_have < d->hdr.length)
		return TTRPC_DECODE_NEED_MORE;
	out->hdr = d->hdr;
	out->data = d->data;
	d->data = NULL;
	d->hdr_have = 0;
	d->data_have = 0;
	return TTRPC_DECODE_FRAME;
}

int ttrpc_frame_encode(uint32_t stream_id, uint8_t type, const uint8_t *data,
		       size_t len, uint8_t **out, size_t *out_len,
		       struct ttrpc_status *st)
{
	struct ttrpc_header h = {
		.length = (uint32_t)len, .stream_id = stream_id, .type = type,
	};
	uint8_t *buf;

	if (len > TTRPC_MAX_DATA)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
			"ttrpc message of %zu bytes exceeds the %u byte limit",
			len, TTRPC_MAX_DATA);
	buf = malloc(TTRPC_HEADER_LEN + len);
	if (!buf)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
					"out of memory");
	ttrpc_header_encode(buf, &h);
	if (len)
		memcpy(buf + TTRPC_HEADER_LEN, data, len);
	*out = buf;
	*out_len = TTRPC_HEADER_LEN + len;
	return 0;
}

/* Remaining ms until deadline (ns, 0 = none): -1 forever, 0 expired. */
static int remaining_ms(uint64_t deadline)
{
	uint64_t now;

	if (!deadline)
		return -1;
	now = now_ns();
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

static uint64_t deadline_after_ms(int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	return now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/* Wait until fd is ready for `events`; 0 ready, -1 with st on timeout. */
static int wait_fd(int fd, short events, uint64_t deadline,
		   struct ttrpc_status *st)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	for (;;) {
		int ms = remaining_ms(deadline);

		if (ms == 0)
			return ttrpc_status_set(st, GRPC_DEADLINE_EXCEEDED,
						"ttrpc I/O timed out");
		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return ttrpc_status_set(st, GRPC_UNAVAILABLE, "poll: %s",
						strerror(errno));
	}
}

static int read_exact(int fd, uint8_t *buf, size_t len, uint64_t deadline,
		      bool allow_eof, struct ttrpc_status *st)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;

		if (wait_fd(fd, POLLIN, deadline, st) < 0)
			return -1;
		n = read(fd, buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return ttrpc_status_set(st, GRPC_UNAVAILABLE,
						"ttrpc read: %s", strerror(errno));
		}
		if (n == 0) {
			if (got == 0 && allow_eof)
				return ttrpc_status_set(st, GRPC_UNAVAILABLE,
							"connection closed by peer");
			return ttrpc_status_set(st, GRPC_UNAVAILABLE,
				"connection closed by peer in the middle of a frame");
		}
		got += (size_t)n;
	}
	return 0;
}

/* send() without SIGPIPE on sockets, write() on anything else. */
static ssize_t send_some(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && errno == ENOTSOCK)
		n = write(fd, buf, len);
	return n;
}

static int write_exact(int fd, const uint8_t *buf, size_t len,
		       uint64_t deadline, struct ttrpc_status *st)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send_some(fd, buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (wait_fd(fd, POLLOUT, deadline, st) < 0)
					return -1;
				continue;
			}
			return ttrpc_status_set(st, GRPC_UNAVAILABLE,
						"ttrpc write: %s", strerror(errno));
		}
		done += (size_t)n;
	}
	return 0;
}

int ttrpc_read_frame(int fd, uint8_t expect_type, int timeout_ms,
		     struct ttrpc_frame *out, struct ttrpc_status *st)
{
	uint64_t deadline = deadline_after_ms(timeout_ms);
	uint8_t hb[TTRPC_HEADER_LEN];

	out->data = NULL;
	if (read_exact(fd, hb, sizeof(hb), deadline, true, st) < 0)
		return -1;
	ttrpc_header_decode(hb, &out->hdr);
	if (check_header(&out->hdr, expect_type, st) < 0)
		return -1;
	if (!out->hdr.length)
		return 0;
	out->data = malloc(out->hdr.length);
	if (!out->data)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
					"out of memory");
	if (read_exact(fd, out->data, out->hdr.length, deadline, false, st) < 0) {
		ttrpc_frame_release(out);
		return -1;
	}
	return 0;
}

int ttrpc_write_frame(int fd, uint32_t stream_id, uint8_t type,
		      const uint8_t *data, size_t len, int timeout_ms,
		      struct ttrpc_status *st)
{
	uint8_t *buf;
	size_t blen;
	int r;

	if (ttrpc_frame_encode(stream_id, type, data, len, &buf, &blen, st) < 0)
		return -1;
	r = write_exact(fd, buf, blen, deadline_after_ms(timeout_ms), st);
	free(buf);
	return r;
}

/* ---- messages ------------------------------------------------------------ */

int ttrpc_request_encode(const char *service, const char *method,
			 const uint8_t *payload, size_t len,
			 int64_t timeout_nano, uint8_t **out, size_t *out_len,
			 struct ttrpc_status *st)
{
	Ttrpc__Request req = TTRPC__REQUEST__INIT;
	size_t n;

	req.service = (char *)service;
	req.method = (char *)method;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = len;
	req.timeout_nano = timeout_nano;
	n = ttrpc__request__get_packed_size(&req);
	if (n > TTRPC_MAX_DATA)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
			"%s/%s request of %zu bytes exceeds the %u byte limit",
			service, method, n, TTRPC_MAX_DATA);
	*out = malloc(n ? n : 1);
	if (!*out)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
					"out of memory");
	*out_len = ttrpc__request__pack(&req, *out);
	return 0;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);

	if (b && n)
		memcpy(b, p, n);
	return b;
}

int ttrpc_request_decode(const uint8_t *buf, size_t len,
			 struct ttrpc_request *out, struct ttrpc_status *st)
{
	Ttrpc__Request *req;

	memset(out, 0, sizeof(*out));
	req = ttrpc__request__unpack(NULL, len, buf);
	if (!req)
		return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
			"ttrpc request of %zu bytes does not decode", len);
	out->service = strdup(req->service ? req->service : "");
	out->method = strdup(req->method ? req->method : "");
	out->payload = dup_bytes(req->payload.data, req->payload.len);
	out->payload_len = req->payload.len;
	out->timeout_nano = req->timeout_nano;
	ttrpc__request__free_unpacked(req, NULL);
	if (!out->service || !out->method || !out->payload) {
		ttrpc_request_release(out);
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
					"out of memory");
	}
	return 0;
}

void ttrpc_request_release(struct ttrpc_request *r)
{
	free(r->service);
	free(r->method);
	free(r->payload);
	memset(r, 0, sizeof(*r));
}

int ttrpc_response_encode(int code, const char *message,
			  const uint8_t *payload, size_t len,
			  uint8_t **out, size_t *out_len,
			  struct ttrpc_status *st)
{
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	Ttrpc__Status status = TTRPC__STATUS__INIT;
	size_t n;

	if (code != GRPC_OK) {
		status.code = code;
		status.message = (char *)(message ? message : "");
		resp.status = &status;
	}
	resp.payload.data = (uint8_t *)payload;
	resp.payload.len = len;
	n = ttrpc__response__get_packed_size(&resp);
	if (n > TTRPC_MAX_DATA)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
			"response of %zu bytes exceeds the %u byte limit",
			n, TTRPC_MAX_DATA);
	*out = malloc(n ? n : 1);
	if (!*out)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
					"out of memory");
	*out_len = ttrpc__response__pack(&resp, *out);
	return 0;
}

int ttrpc_response_decode(const uint8_t *buf, size_t len,
			  struct ttrpc_status *call, uint8_t **payload,
			  size_t *payload_len, struct ttrpc_status *st)
{
	Ttrpc__Response *resp = ttrpc__response__unpack(NULL, len, buf);

	if (!resp)
		return ttrpc_status_set(st, GRPC_INTERNAL,
			"ttrpc response of %zu bytes does not decode", len);
	ttrpc_status_clear(call);
	if (resp->status && resp->status->code != GRPC_OK) {
		ttrpc_status_set(call, resp->status->code, "%s",
				 resp->status->message && resp->status->message[0] ?
				 resp->status->message : "(no message)");
		call->remote = true;
	}
	if (payload) {
		*payload = NULL;
		if (resp->payload.len)
			*payload = dup_bytes(resp->payload.data,
					     resp->payload.len);
		if (resp->payload.len && !*payload) {
			ttrpc__response__free_unpacked(resp, NULL);
			return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
						"out of memory");
		}
	}
	if (payload_len)
		*payload_len = resp->payload.len;
	ttrpc__response__free_unpacked(resp, NULL);
	return 0;
}

/* ---- client -------------------------------------------------------------- */

/* Calls whose deadline passed but whose answer may still come. */
#define MAX_ABANDONED 1024

struct pending {
	uint32_t id;
	bool done;
	bool abandoned;
	uint64_t deadline;
	struct ttrpc_status st;
	uint8_t *resp;
	size_t resp_len;
	struct pending *next;
};

struct ttrpc_client {
	int fd;
	int refs;
	pthread_mutex_t lock;	/* everything below */
	pthread_cond_t cond;	/* a response arrived or reader role freed */
	pthread_mutex_t wlock;	/* one frame written at a time */
	uint32_t next_id;
	bool broken;
	char *broken_why;
	bool reading;		/* a waiter owns the socket's read side */
	unsigned abandoned;
	struct pending *pending;
	struct ttrpc_decoder dec;
};

struct ttrpc_client *ttrpc_client_new(int fd)
{
	struct ttrpc_client *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	if (!c) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->refs = 1;
	c->next_id = 1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->wlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	ttrpc_decoder_init(&c->dec);
	return c;
}

struct ttrpc_client *ttrpc_client_ref(struct ttrpc_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
	return c;
}

static void pending_free(struct pending *p)
{
	ttrpc_status_clear(&p->st);
	free(p->resp);
	free(p);
}

void ttrpc_client_free(struct ttrpc_client *c)
{
	struct pending *p, *next;
	int refs;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	refs = --c->refs;
	pthread_mutex_unlock(&c->lock);
	if (refs > 0)
		return;
	for (p = c->pending; p; p = next) {
		next = p->next;
		pending_free(p);
	}
	ttrpc_decoder_release(&c->dec);
	free(c->broken_why);
	close(c->fd);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->wlock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* The detail of a status message, without its "Code: " prefix. */
static const char *status_detail(const struct ttrpc_status *st)
{
	const char *m = st->message ? st->message : "";
	const char *name = grpc_code_name(st->code);
	size_t nl = strlen(name);

	if (!strncmp(m, name, nl) && !strncmp(m + nl, ": ", 2))
		return m + nl + 2;
	return m;
}

/* With c->lock held. `why` is a plain reason, no code prefix. */
static void mark_broken(struct ttrpc_client *c, const char *why)
{
	if (c->broken)
		return;
	c->broken = true;
	c->broken_why = strdup(why ? why : "connection failed");
	shutdown(c->fd, SHUT_RDWR);
	pthread_cond_broadcast(&c->cond);
}

bool ttrpc_client_broken(struct ttrpc_client *c)
{
	bool b;

	pthread_mutex_lock(&c->lock);
	b = c->broken;
	pthread_mutex_unlock(&c->lock);
	return b;
}

void ttrpc_client_shutdown(struct ttrpc_client *c, const char *why)
{
	pthread_mutex_lock(&c->lock);
	mark_broken(c, why);
	pthread_mutex_unlock(&c->lock);
}

static struct pending **find_pending(struct ttrpc_client *c, uint32_t id)
{
	struct pending **pp;

	for (pp = &c->pending; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id)
			return pp;
	return NULL;
}

int ttrpc_client_start(struct ttrpc_client *c, const char *service,
		       const char *method, const uint8_t *payload, size_t len,
		       uint64_t timeout_ns, uint32_t *stream_id,
		       struct ttrpc_status *st)
{
	uint8_t *req = NULL, *frame = NULL;
	size_t req_len, frame_len;
	struct pending *p;
	uint64_t deadline = timeout_ns ? now_ns() + timeout_ns : 0;
	struct ttrpc_status wst = TTRPC_STATUS_INIT;
	int ret = -1;

	if (ttrpc_request_encode(service, method, payload, len,
				 (int64_t)timeout_ns, &req, &req_len, st) < 0)
		return -1;
	if (ttrpc_frame_encode(0, TTRPC_TYPE_REQUEST, req, req_len, &frame,
			       &frame_len, st) < 0)
		goto out;
	p = calloc(1, sizeof(*p));
	if (!p) {
		ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	if (c->broken) {
		ttrpc_status_set(st, GRPC_UNAVAILABLE, "%s", c->broken_why);
		pthread_mutex_unlock(&c->lock);
		free(p);
		goto out;
	}
	p->id = c->next_id;
	c->next_id += 2;
	if (c->next_id > 0x7fffffff)	/* stream ids must stay odd u31 */
		c->next_id = 1;
	p->deadline = deadline;
	p->next = c->pending;
	c->pending = p;
	*stream_id = p->id;
	pthread_mutex_unlock(&c->lock);

	ttrpc_header_encode(frame, &(struct ttrpc_header){
		.length = (uint32_t)req_len, .stream_id = p->id,
		.type = TTRPC_TYPE_REQUEST });
	pthread_mutex_lock(&c->wlock);
	ret = write_exact(c->fd, frame, frame_len, deadline, &wst);
	pthread_mutex_unlock(&c->wlock);
	if (ret < 0) {
		/* A partial frame desynchronises the stream: give it up. */
		pthread_mutex_lock(&c->lock);
		mark_broken(c, status_detail(&wst));
		pthread_mutex_unlock(&c->lock);
		/* The pending entry stays; wait() reports the failure. */
		ret = 0;
	}
out:
	ttrpc_status_clear(&wst);
	free(frame);
	free(req);
	return ret;
}

/* Deliver one decoded frame; with c->lock held. -1 breaks the client. */
static int dispatch_frame(struct ttrpc_client *c, struct ttrpc_frame *f,
			  struct ttrpc_status *err)
{
	struct pending **pp = find_pending(c, f->hdr.stream_id);
	struct pending *p;

	if (!pp || (*pp)->done)
		return ttrpc_status_set(err, GRPC_INTERNAL,
			"ttrpc response for unknown stream id %u",
			f->hdr.stream_id);
	p = *pp;
	if (p->abandoned) {
		*pp = p->next;
		pending_free(p);
		c->abandoned--;
		return 0;
	}
	if (ttrpc_response_decode(f->data, f->hdr.length, &p->st, &p->resp,
				  &p->resp_len, err) < 0)
		return -1;
	p->done = true;
	return 0;
}

/* Read what is available and dispatch it; called by the reader, unlocked. */
static void read_and_dispatch(struct ttrpc_client *c, uint64_t deadline)
{
	uint8_t buf[65536];
	struct ttrpc_status err = TTRPC_STATUS_INIT;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	size_t off = 0;
	int ms = remaining_ms(deadline), r;

	/* Wake up now and then so a shorter deadline of another waiter
	 * that inherits the reader role is not delayed. */
	if (ms < 0 || ms > 200)
		ms = 200;
	r = poll(&pfd, 1, ms);
	if (r <= 0)
		return;
	n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	pthread_mutex_lock(&c->lock);
	if (n < 0) {
		ttrpc_status_set(&err, GRPC_UNAVAILABLE,
				 "ttrpc read: %s", strerror(errno));
		mark_broken(c, status_detail(&err));
	} else if (n == 0) {
		mark_broken(c, c->dec.hdr_have ?
			    "connection closed by peer in the middle of a frame" :
			    "connection closed by peer");
	}
	while (!c->broken && off < (size_t)n) {
		struct ttrpc_frame f = { 0 };
		size_t used;
		enum ttrpc_decode_result res;

		res = ttrpc_decoder_feed(&c->dec, buf + off, (size_t)n - off,
					 TTRPC_TYPE_RESPONSE, &used, &f, &err);
		off += used;
		if (res == TTRPC_DECODE_ERROR) {
			ttrpc_status_prefix(&err, "protocol error, connection closed");
			mark_broken(c, status_detail(&err));
			break;
		}
		if (res == TTRPC_DECODE_FRAME) {
			if (dispatch_frame(c, &f, &err) < 0) {
				ttrpc_status_prefix(&err, "protocol error, connection closed");
				mark_broken(c, status_detail(&err));
			}
			ttrpc_frame_release(&f);
		}
	}
	pthread_mutex_unlock(&c->lock);
	ttrpc_status_clear(&err);
}

/*
 * Whatever broke the stream, the call did not complete and the connection
 * is gone: Unavailable (retriable after a reconnect), with the reason.
 */
static void broken_status(struct ttrpc_client *c, struct ttrpc_status *st)
{
	ttrpc_status_set(st, GRPC_UNAVAILABLE, "%s",
			 c->broken_why ? c->broken_why : "connection failed");
}

int ttrpc_client_wait(struct ttrpc_client *c, uint32_t stream_id,
		      uint8_t **resp, size_t *resp_len,
		      struct ttrpc_status *st)
{
	struct pending **pp, *p;
	int ret = -1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		pp = find_pending(c, stream_id);
		if (!pp) {
			ttrpc_status_set(st, GRPC_INTERNAL,
					 "no call on stream %u", stream_id);
			break;
		}
		p = *pp;
		if (p->done) {
			*pp = p->next;
			if (p->st.code == GRPC_OK) {
				ttrpc_status_clear(st);
				if (resp) {
					*resp = p->resp;
					p->resp = NULL;
				}
				if (resp_len)
					*resp_len = p->resp_len;
				ret = 0;
			} else {
				ttrpc_status_clear(st);
				*st = p->st;
				p->st.message = NULL;
			}
			pending_free(p);
			break;
		}
		if (c->broken) {
			*pp = p->next;
			pending_free(p);
			broken_status(c, st);
			break;
		}
		if (p->deadline && now_ns() >= p->deadline) {
			ttrpc_status_set(st, GRPC_DEADLINE_EXCEEDED,
					 "no response on stream %u before the deadline",
					 stream_id);
			if (++c->abandoned > MAX_ABANDONED)
				mark_broken(c, "too many calls without a response");
			p->abandoned = true;
			break;
		}
		if (c->reading) {
			struct timespec ts;
			uint64_t until = p->deadline ? p->deadline :
					 now_ns() + 1000000000ull;

			ts.tv_sec = (time_t)(until / 1000000000ull);
			ts.tv_nsec = (long)(until % 1000000000ull);
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
			continue;
		}
		c->reading = true;
		pthread_mutex_unlock(&c->lock);
		read_and_dispatch(c, p->deadline);
		pthread_mutex_lock(&c->lock);
		c->reading = false;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int ttrpc_client_call(struct ttrpc_client *c, const char *service,
		      const char *method, const uint8_t *payload, size_t len,
		      uint64_t timeout_ns, uint8_t **resp, size_t *resp_len,
		      struct ttrpc_status *st)
{
	uint32_t id;

	if (ttrpc_client_start(c, service, method, payload, len, timeout_ns,
			       &id, st) < 0)
		return -1;
	return ttrpc_client_wait(c, id, resp, resp_len, st);
}

/* ---- server -------------------------------------------------------------- */

int ttrpc_server_handle_one(int fd, ttrpc_handler_fn handler, void *ctx,
			    int timeout_ms, struct ttrpc_status *st)
{
	struct ttrpc_frame f = { 0 };
	struct ttrpc_request req = { 0 };
	struct ttrpc_status reply = TTRPC_STATUS_INIT;
	uint8_t *resp = NULL, *out = NULL;
	size_t resp_len = 0, out_len = 0;
	const char *msg;
	int ret = -1;

	if (ttrpc_read_frame(fd, TTRPC_TYPE_REQUEST, timeout_ms, &f, st) < 0)
		return -1;
	if (!(f.hdr.stream_id & 1)) {
		ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
				 "request on even stream id %u", f.hdr.stream_id);
		goto out;
	}
	if (ttrpc_request_decode(f.data, f.hdr.length, &req, &reply) == 0)
		handler(ctx, &req, &resp, &resp_len, &reply);
	/* The status message goes without our "Code: " prefix: the code
	 * travels separately and clients add the name themselves. */
	msg = status_detail(&reply);
	if (ttrpc_response_encode(reply.code,  msg,
				  reply.code == GRPC_OK ? resp : NULL,
				  reply.code == GRPC_OK ? resp_len : 0,
				  &out, &out_len, &reply) < 0 &&
	    ttrpc_response_encode(reply.code, reply.message, NULL, 0, &out,
				  &out_len, st) < 0)
		goto out;
	if (ttrpc_write_frame(fd, f.hdr.stream_id, TTRPC_TYPE_RESPONSE, out,
			      out_len, timeout_ms, st) < 0)
		goto out;
	ret = 0;
out:
	free(out);
	free(resp);
	ttrpc_status_clear(&reply);
	ttrpc_request_release(&req);
	ttrpc_frame_release(&f);
	return ret;
}
