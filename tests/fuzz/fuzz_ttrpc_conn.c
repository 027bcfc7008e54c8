// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: the bytes a misbehaving peer could send. As a server's
 * answer to a client with two calls in flight (both waits must return),
 * and as a client's requests to ttrpc_server_handle_one (must end with an
 * error at EOF, never hang).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ttrpc.h"

static void handler(void *ctx, const struct ttrpc_request *req,
		    uint8_t **resp, size_t *resp_len, struct ttrpc_status *reply)
{
	(void)ctx;
	if (req->payload_len & 1) {
		ttrpc_status_set(reply, GRPC_NOT_FOUND, "%s/%s", req->service,
				 req->method);
		return;
	}
	*resp = malloc(req->payload_len + 1);
	memcpy(*resp, req->payload, req->payload_len);
	*resp_len = req->payload_len;
}

static void as_client(const uint8_t *data, size_t size)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_client *c;
	uint32_t a, b;
	uint8_t *resp;
	size_t n;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	c = ttrpc_client_new(sv[0]);
	if (ttrpc_client_start(c, "s", "A", data, size > 16 ? 16 : size, 0,
			       &a, &st) < 0 ||
	    ttrpc_client_start(c, "s", "B", NULL, 0, 0, &b, &st) < 0)
		abort();
	if (size && write(sv[1], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[1], SHUT_WR);
	if (ttrpc_client_wait(c, a, &resp, &n, &st) == 0)
		free(resp);
	if (ttrpc_client_wait(c, b, &resp, &n, &st) == 0)
		free(resp);
	ttrpc_status_clear(&st);
	ttrpc_client_free(c);
	close(sv[1]);
}

static void as_server(const uint8_t *data, size_t size)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	int sv[2], rounds = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (size && write(sv[0], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[0], SHUT_WR);
	while (ttrpc_server_handle_one(sv[1], handler, NULL, 1000, &st) == 0)
		if (++rounds > 100000)
			abort();	/* cannot loop without consuming input */
	ttrpc_status_clear(&st);
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_client(data, size);
	as_server(data, size);
	return 0;
}
