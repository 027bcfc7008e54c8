/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Agent transport URLs, in Kata's own forms, and connecting them:
 *   unix:///path/to/agent.sock         plain ttrpc on a unix socket
 *   vsock://CID:PORT                   AF_VSOCK
 *   hvsock:///path/to/kata.hvsock:PORT hybrid vsock (Firecracker, Cloud
 *                                      Hypervisor): unix socket, then
 *                                      "CONNECT PORT\n" -> "OK ...\n"
 */
#ifndef VT_TRANSPORT_H
#define VT_TRANSPORT_H

#include <stdint.h>

#include "ttrpc.h"

#define AGENT_URL_FORMS \
	"unix:///path/to/agent.sock, vsock://CID:PORT or " \
	"hvsock:///path/to/kata.hvsock:PORT"

enum agent_url_kind {
	AGENT_URL_UNIX,
	AGENT_URL_VSOCK,
	AGENT_URL_HVSOCK,
};

struct agent_url {
	enum agent_url_kind kind;
	char *path;		/* unix, hvsock: absolute socket path */
	uint32_t cid;		/* vsock */
	uint32_t port;		/* vsock, hvsock */
};

/*
 * Parse and validate. On error returns -1 with st = InvalidArgument and a
 * one-line message naming the problem and listing AGENT_URL_FORMS.
 */
int agent_url_parse(const char *url, struct agent_url *out,
		    struct ttrpc_status *st);
void agent_url_release(struct agent_url *u);
/* Canonical string form (malloc'd), e.g. for logs and metrics labels. */
char *agent_url_format(const struct agent_url *u);

/*
 * Connect, including the hybrid-vsock handshake, within timeout_ms
 * (connect and handshake together). Returns a blocking, close-on-exec
 * stream socket, or -1 with st = Unavailable ("connect unix:///x: ...").
 */
int transport_connect(const struct agent_url *u, int timeout_ms,
		      struct ttrpc_status *st);

#endif /* VT_TRANSPORT_H */
