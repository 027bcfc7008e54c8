/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The state file: watches added through the control API, so that they
 * survive a daemon restart (watches from the config file are not stored
 * here; they come back from the config).
 *
 *   {"version": 1, "watches": [{"source": "...", "agent": "...", "dest": "..."}]}
 *
 * Writes are atomic: a temp file in the same directory, fsync, rename over
 * the old file, fsync of the directory. A reader sees the old or the new
 * list, never a mix, even after a crash.
 *
 * At start:
 *   struct state_watch *w; size_t n; char *err;
 *   if (state_load(cfg.state_file, &w, &n, &err) < 0) {
 *           log_error("state file ignored", "error", err);  // keep running
 *           free(err);
 *   }
 *   ... register them ..., state_watches_free(w, n);
 * After every successful ctl watch / unwatch:
 *   state_save(cfg.state_file, list, n, &err);
 */
#ifndef VT_STATE_H
#define VT_STATE_H

#include <stddef.h>

#define STATE_VERSION 1

struct state_watch {
	char *source;
	char *agent;
	char *dest;
};

/*
 * Load the list. A missing file is not an error (0 watches). -1 with
 * *errmsg (malloc'd, names the file) on a read error, malformed JSON or a
 * wrong shape; then *out is NULL and *n is 0.
 */
int state_load(const char *path, struct state_watch **out, size_t *n,
	       char **errmsg);

/*
 * Atomically replace the file with this list. Creates missing parent directories
 * (0755); the file is 0600. 0, or -1 with *errmsg.
 */
int state_save(const char *path, const struct state_watch *w, size_t n,
	       char **errmsg);

void state_watches_free(struct state_watch *w, size_t n);

#endif /* VT_STATE_H */
