// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * /metrics over libmicrohttpd. We create and bind the listening socket
 * ourselves so that bind errors carry a real errno and port 0 can be read
 * back with getsockname; MHD then runs one internal polling thread.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "config.h"
#include "metrics.h"
#include "metrics_http.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
	struct MHD_Daemon *mhd;
	int fd;
	uint16_t port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
			     const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, mode);
	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	static const char not_found[] = "not found: try /metrics\n";
	static const char not_allowed[] = "method not allowed\n";
	char *text;
	size_t len;

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size) {
		*upload_data_size = 0;	/* ignore request bodies */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
			     (char *)not_allowed, sizeof(not_allowed) - 1,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain",
			     (char *)not_found, sizeof(not_found) - 1,
			     MHD_RESPMEM_PERSISTENT);
	text = metrics_render(&len);
	if (!text)
		return MHD_NO;
	return reply(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text, len,
		     MHD_RESPMEM_MUST_FREE);
}

static int listen_on(const char *address, int *fdp, uint16_t *portp,
		     bool *v6, char **errmsg)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char portstr[8], *host = NULL;
	uint16_t port;
	int fd = -1, one = 1, rc;

	if (config_parse_address(address, &host, &port)) {
		if (asprintf(errmsg, "metrics_address \"%s\": not HOST:PORT or [IPV6]:PORT",
			     address) < 0)
			*errmsg = NULL;
		return -1;
	}
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
	if (rc) {
		if (asprintf(errmsg, "metrics_address \"%s\": %s", address, gai_strerror(rc)) < 0)
			*errmsg = NULL;
		free(host);
		return -1;
	}
	free(host);
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto fail;
	*v6 = res->ai_family == AF_INET6;
	*portp = ntohs(ss.ss_family == AF_INET6 ?
		       ((struct sockaddr_in6 *)&ss)->sin6_port :
		       ((struct sockaddr_in *)&ss)->sin_port);
	*fdp = fd;
	freeaddrinfo(res);
	return 0;
fail:
	rc = errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	if (asprintf(errmsg, "metrics_address %s: listen: %s", address, strerror(rc)) < 0)
		*errmsg = NULL;
	return -1;
}

int metrics_http_start(const char *address, struct metrics_http **out,
		       char **errmsg)
{
	struct metrics_http *h;
	/* AUTO: epoll or poll, not select(), which fails on fds above 1023. */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
	bool v6 = false;

	*out = NULL;
	if (errmsg)
		*errmsg = NULL;
	if (!address || !*address || !strcmp(address, "off"))
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h) {
		if (errmsg)
			*errmsg = strdup("out of memory");
		return -1;
	}
	if (listen_on(address, &h->fd, &h->port, &v6, errmsg)) {
		free(h);
		return -1;
	}
	if (v6)
		flags |= MHD_USE_IPv6;
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
				  MHD_OPTION_LISTEN_SOCKET, h->fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
				  MHD_OPTION_END);
	if (!h->mhd) {
		close(h->fd);
		free(h);
		if (errmsg && asprintf(errmsg, "metrics_address %s: libmicrohttpd failed to start",
				       address) < 0)
			*errmsg = NULL;
		return -1;
	}
	*out = h;
	return 0;
}

uint16_t metrics_http_port(const struct metrics_http *h)
{
	return h ? h->port : 0;
}

void metrics_http_stop(struct metrics_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);	/* closes the listening socket too */
	free(h);
}
