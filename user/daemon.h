/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `voltrace run`: one epoll loop over the tracer's ring buffer, the control
 * socket, a signalfd (SIGTERM/SIGINT: drain and exit 0; SIGHUP: reload),
 * a timerfd (debounce, retries, drop-counter and source checks) and the
 * sync engine's completion eventfd. Blocking agent I/O happens only in the
 * sync engine's small worker pool; metrics are served by libmicrohttpd's
 * own thread.
 */
#ifndef VT_DAEMON_H
#define VT_DAEMON_H

#include "config.h"

struct daemon_opts {
	const char *config_path;	/* NULL: defaults */
	const char *mode;		/* --mode, overrides the file */
	const char *log_level;		/* --log-level, overrides the file */
};

/* Exit code: 0 after SIGTERM/SIGINT, 2 on config errors, 1 otherwise. */
int daemon_run(const struct daemon_opts *opts);

#endif /* VT_DAEMON_H */
