// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Agent URLs and connecting them (unix, vsock, hybrid vsock). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "transport.h"
#include "util.h"

static int bad_url(struct ttrpc_status *st, const char *url, const char *why)
{
	return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
		"invalid agent URL \"%s\": %s; accepted forms: " AGENT_URL_FORMS,
		url, why);
}

/* Decimal u32 covering the whole string; no sign, no spaces. */
static int parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int check_socket_path(const char *url, const char *path, size_t len,
			     struct ttrpc_status *st)
{
	struct sockaddr_un sun;

	if (len == 0)
		return bad_url(st, url, "missing socket path");
	if (path[0] != '/')
		return bad_url(st, url, "socket path must be absolute (three slashes after the scheme)");
	if (len >= sizeof(sun.sun_path))
		return bad_url(st, url, "socket path longer than 107 bytes");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)path[i] < 0x20)
			return bad_url(st, url, "control character in socket path");
	return 0;
}

int agent_url_parse(const char *url, struct agent_url *out,
		    struct ttrpc_status *st)
{
	const char *rest, *colon;

	memset(out, 0, sizeof(*out));
	if (!url || !*url)
		return bad_url(st, url ? url : "", "empty");
	if (!strncmp(url, "unix://", 7)) {
		rest = url + 7;
		if (check_socket_path(url, rest, strlen(rest), st) < 0)
			return -1;
		out->kind = AGENT_URL_UNIX;
		out->path = strdup(rest);
	} else if (!strncmp(url, "vsock://", 8)) {
		rest = url + 8;
		colon = strchr(rest, ':');
		if (!colon)
			return bad_url(st, url, "missing :PORT");
		if (parse_u32(rest, (size_t)(colon - rest), &out->cid) < 0)
			return bad_url(st, url, "CID must be a decimal number");
		if (parse_u32(colon + 1, strlen(colon + 1), &out->port) < 0)
			return bad_url(st, url, "PORT must be a decimal number");
		if (out->port == 0)
			return bad_url(st, url, "PORT must not be 0");
		out->kind = AGENT_URL_VSOCK;
		return 0;
	} else if (!strncmp(url, "hvsock://", 9)) {
		rest = url + 9;
		colon = strrchr(rest, ':');
		if (!colon)
			return bad_url(st, url, "missing :PORT after the socket path");
		if (check_socket_path(url, rest, (size_t)(colon - rest), st) < 0)
			return -1;
		if (parse_u32(colon + 1, strlen(colon + 1), &out->port) < 0)
			return bad_url(st, url, "PORT must be a decimal number");
		if (out->port == 0)
			return bad_url(st, url, "PORT must not be 0");
		out->kind = AGENT_URL_HVSOCK;
		out->path = strndup(rest, (size_t)(colon - rest));
	} else {
		return bad_url(st, url, "unknown scheme");
	}
	if (!out->path)
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED,
					"out of memory");
	return 0;
}

void agent_url_release(struct agent_url *u)
{
	free(u->path);
	memset(u, 0, sizeof(*u));
}

char *agent_url_format(const struct agent_url *u)
{
	char *s = NULL;
	int r = -1;

	switch (u->kind) {
	case AGENT_URL_UNIX:
		r = asprintf(&s, "unix://%s", u->path);
		break;
	case AGENT_URL_VSOCK:
		r = asprintf(&s, "vsock://%u:%u", u->cid, u->port);
		break;
	case AGENT_URL_HVSOCK:
		r = asprintf(&s, "hvsock://%s:%u", u->path, u->port);
		break;
	}
	return r < 0 ? NULL : s;
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ns();

	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

/* Non-blocking connect bounded by deadline; leaves fd blocking. */
static int connect_deadline(int fd, const struct sockaddr *sa, socklen_t len,
			    uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0, r;
	socklen_t elen = sizeof(err);

	if (connect(fd, sa, len) == 0)
		goto done;
	if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR)
		return -errno;
	for (;;) {
		int ms = remaining_ms(deadline);

		if (ms == 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, ms);
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -errno;
	if (err)
		return -err;
	/* AF_UNIX returns EAGAIN while the listener's backlog is full;
	 * POLLOUT then only means "retry". */
	if (sa->sa_family == AF_UNIX && connect(fd, sa, len) < 0 &&
	    errno != EISCONN)
		return -errno;
done:
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int connect_unix(const char *path, uint64_t deadline)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect_deadline(fd, (struct sockaddr *)&sun, sizeof(sun), deadline);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static int connect_vsock(uint32_t cid, uint32_t port, uint64_t deadline)
{
	struct sockaddr_vm svm = {
		.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port,
	};
	int fd, r;

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect_deadline(fd, (struct sockaddr *)&svm, sizeof(svm), deadline);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/*
 * Firecracker / Cloud Hypervisor hybrid vsock: "CONNECT <port>\n" and an
 * "OK <host port>\n" line back. The reply is read byte by byte so no
 * ttrpc byte is consumed by the handshake.
 */
static int hvsock_handshake(int fd, uint32_t port, uint64_t deadline,
			    struct ttrpc_status *st, const char *url)
{
	char line[64], req[32];
	size_t n = 0;
	int len = snprintf(req, sizeof(req), "CONNECT %u\n", port);

	if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len)
		return ttrpc_status_set(st, GRPC_UNAVAILABLE,
			"connect %s: sending CONNECT: %s", url, strerror(errno));
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ms = remaining_ms(deadline), r;
		ssize_t got;

		if (ms == 0)
			return ttrpc_status_set(st, GRPC_UNAVAILABLE,
				"connect %s: no reply to CONNECT %u within the timeout",
				url, port);
		r = poll(&p, 1, ms);
		if (r < 0 && errno != EINTR)
			return ttrpc_status_set(st, GRPC_UNAVAILABLE,
				"connect %s: poll: %s", url, strerror(errno));
		if (r <= 0)
			continue;
		got = read(fd, line + n, 1);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return ttrpc_status_set(st, GRPC_UNAVAILABLE,
				"connect %s: connection closed during the hybrid vsock handshake (is port %u listening in the guest?)",
				url, port);
		if (line[n] == '\n')
			break;
		if (++n == sizeof(line) - 1)
			return ttrpc_status_set(st, GRPC_UNAVAILABLE,
				"connect %s: hybrid vsock reply too long", url);
	}
	line[n] = '\0';
	if (strncmp(line, "OK ", 3) != 0)
		return ttrpc_status_set(st, GRPC_UNAVAILABLE,
			"connect %s: hybrid vsock handshake refused: \"%s\"",
			url, line);
	return 0;
}

int transport_connect(const struct agent_url *u, int timeout_ms,
		      struct ttrpc_status *st)
{
	uint64_t deadline = now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
	char *url = agent_url_format(u);
	int fd;

	if (timeout_ms <= 0)
		deadline = now_ns() + 3600ull * 1000000000ull;
	switch (u->kind) {
	case AGENT_URL_VSOCK:
		fd = connect_vsock(u->cid, u->port, deadline);
		break;
	default:
		fd = connect_unix(u->path, deadline);
		break;
	}
	if (fd < 0) {
		ttrpc_status_set(st, GRPC_UNAVAILABLE, "connect %s: %s",
				 url ? url : "agent", strerror(-fd));
		goto out;
	}
	if (u->kind == AGENT_URL_HVSOCK &&
	    hvsock_handshake(fd, u->port, deadline, st, url ? url : "agent") < 0) {
		close(fd);
		fd = -1;
	}
out:
	free(url);
	return fd < 0 ? -1 : fd;
}
