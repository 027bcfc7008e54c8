/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Server side of voltrace.v1.Control (proto/control.proto) over ttrpc on a
 * unix socket. It lives in the daemon's single event loop:
 *
 *   static const struct control_ops ops = { .watch = d_watch, ... };
 *   struct control_server *cs;
 *   if (control_server_open(cfg.control_socket, &ops, daemon, &cs, &err) < 0)
 *           ... fatal at start ...
 *   epoll_ctl(ep, EPOLL_CTL_ADD, control_server_fd(cs), EPOLLIN);
 *   ... when that fd is readable:
 *   control_server_process(cs);     // accepts, reads, calls ops, replies
 *   ...
 *   control_server_close(cs);       // closes connections, unlinks the socket
 *
 * control_server_fd() is an epoll fd of the server's own (listening socket
 * and every connection), so the daemon watches one fd whatever the number
 * of clients. Sockets are non-blocking, reads are bounded, each connection
 * handles one request at a time; callbacks run in the caller's thread.
 *
 * Callbacks return a gRPC status code (CONTROL_OK or one of the codes below)
 * and, on refusal, set *errmsg to a malloc'd human message that the CLI
 * prints as is. Peers whose SO_PEERCRED uid is not 0 get PERMISSION_DENIED
 * without any callback being called.
 *
 * Metrics: a callback counts its own outcome with metrics_control_request();
 * the server counts only requests refused before reaching a callback
 * (PermissionDenied, unknown service or method, undecodable or incomplete
 * request).
 */
#ifndef VT_CONTROL_SERVER_H
#define VT_CONTROL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes used by the control API (the values are gRPC's). */
#define CONTROL_OK			0
#define CONTROL_INVALID_ARGUMENT	3
#define CONTROL_NOT_FOUND		5
#define CONTROL_ALREADY_EXISTS		6
#define CONTROL_PERMISSION_DENIED	7
#define CONTROL_FAILED_PRECONDITION	9
#define CONTROL_UNIMPLEMENTED		12
#define CONTROL_INTERNAL		13
#define CONTROL_UNAVAILABLE		14

#define CONTROL_SERVICE "voltrace.v1.Control"

/* One row of List. Strings are copied before the callback returns. */
struct control_watch_info {
	const char *source;
	const char *agent;
	const char *dest;
	const char *origin;	/* "config" or "api" */
	const char *state;	/* e.g. "synced", "syncing", "error", "pending" */
	const char *last_error;	/* NULL or "" when none */
	uint64_t last_sync_unix_ns;	/* 0: never */
	uint64_t syncs;
	uint64_t files_copied;
	uint64_t bytes_copied;
};

struct control_list;	/* opaque accumulator handed to ops->list */
/* Append one row; 0 or -ENOMEM. */
int control_list_add(struct control_list *l, const struct control_watch_info *w);

/*
 * Filled by ops->status. The server pre-fills kernel (uname -r) and
 * version; strings set by the daemon must stay valid until the callback has
 * returned and the server has encoded the reply (i.e. not stack buffers of
 * the callback).
 */
struct control_status {
	const char *version;
	const char *mode;		/* attach mode in use */
	const char *kernel;
	const char *control_socket;
	const char *metrics_address;
	const char *state_file;
	uint64_t uptime_ns;
	uint64_t watches;
	uint64_t agents;
	uint64_t events;
	uint64_t events_dropped;
	uint64_t syncs_ok;
	uint64_t syncs_error;
	uint64_t bytes_copied;
	uint64_t files_copied;
	uint64_t reconciles;
	uint64_t guest_stale_dirs;
};

struct control_ops {
	int (*watch)(void *ctx, const char *source, const char *agent,
		     const char *dest, char **errmsg);
	/* dest NULL: every dest of source. *removed: how many went. */
	int (*unwatch)(void *ctx, const char *source, const char *dest,
		       unsigned int *removed, char **errmsg);
	int (*list)(void *ctx, struct control_list *out, char **errmsg);
	int (*status)(void *ctx, struct control_status *out, char **errmsg);
};

struct control_server;

/*
 * Listen on path: creates the parent directory (0755) when missing, removes
 * a stale socket (refuses when a live daemon answers on it), socket mode
 * 0600. 0 or -1 with *errmsg.
 */
int control_server_open(const char *path, const struct control_ops *ops,
			void *ctx, struct control_server **out, char **errmsg);
int control_server_fd(const struct control_server *s);
/* Handle everything ready now without blocking. 0 or -errno (fatal). */
int control_server_process(struct control_server *s);
void control_server_close(struct control_server *s);

/* Test hook: accept peers of this uid as well as 0 (default: only 0). */
void control_server_allow_uid(struct control_server *s, uint32_t uid);

#endif /* VT_CONTROL_SERVER_H */
