/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * GET /metrics over HTTP (libmicrohttpd, one internal polling thread; it
 * never touches the daemon's event loop).
 *
 *   struct metrics_http *h;
 *   char *err;
 *   if (metrics_http_start(cfg.metrics_address, &h, &err) < 0) { log; free(err); }
 *   ...
 *   metrics_http_stop(h);
 *
 * address is "host:port" or "[v6addr]:port"; port 0 picks a free port,
 * which metrics_http_port() reports. "" or "off" disables the server:
 * metrics_http_start returns 0 with *out NULL.
 */
#ifndef VT_METRICS_HTTP_H
#define VT_METRICS_HTTP_H

#include <stdint.h>

struct metrics_http;

int metrics_http_start(const char *address, struct metrics_http **out,
		       char **errmsg);
uint16_t metrics_http_port(const struct metrics_http *h);
void metrics_http_stop(struct metrics_http *h);

#endif /* VT_METRICS_HTTP_H */
