/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The watch registry: which host volume directories are watched, and for
 * each, which guest dests (agent URL + guest dir) receive it.
 *
 *   source (one per realpath, one watched_dirs entry, one id)
 *     -> dest, dest, ...   (one volume shared by several containers)
 *   agent (one per URL, one shared connection, refcounted by its dests)
 *
 * Registering validates everything a caller can get wrong (source exists,
 * is a directory, its realpath is below an allowed_sources root; dest is a
 * normalised guest path below the shared dir; the agent URL parses) and
 * then puts the directory's (dev, ino) into the tracer's filter.
 *
 * Main-thread only: the sync engine's workers never touch the registry;
 * they get copies of what they need (sync_engine.c).
 */
#ifndef VT_REGISTRY_H
#define VT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "agent_client.h"
#include "metrics.h"
#include "sync_plan.h"
#include "voltrace.h"

struct tracer;

enum watch_origin {
	WATCH_CONFIG = 0,	/* from the config file; comes back on reload */
	WATCH_API,		/* from the control API; kept in state_file */
};

struct reg_agent {
	struct reg_agent *next;
	char *url;
	struct agent_conn *conn;
	unsigned int refs;	/* dests using it */
	bool busy;		/* a worker is talking to it */
	uint64_t reconnects_seen;
};

/* Sync bookkeeping of one dest; owned by sync_engine.c. */
struct dest_sync {
	struct dest_state state;	/* what the guest got; lent to a worker */
	bool pending;		/* a sync is wanted */
	bool inflight;		/* a worker has it */
	bool clear_state;	/* forget state before the next sync */
	bool removed;		/* unwatched while in flight: free on completion */
	uint64_t due_ns;	/* debounce deadline (CLOCK_MONOTONIC) */
	uint64_t retry_ns;	/* backoff: not before */
	uint64_t event_ns;	/* ktime of the oldest event not yet synced */
	unsigned int failures;	/* consecutive */
	int reason;		/* enum metrics_reconcile_reason, -1 = event */
	char *last_error;
	uint64_t last_sync_unix_ns;
	uint64_t syncs;
	uint64_t files;
	uint64_t bytes;
	size_t stale_dirs;
};

struct reg_source;

struct reg_dest {
	struct reg_dest *next;		/* in its source, or the graveyard */
	struct reg_source *src;		/* NULL once removed */
	char *dest;			/* normalised guest path */
	struct reg_agent *agent;
	enum watch_origin origin;
	struct dest_sync sync;
};

struct reg_source {
	struct reg_source *next;
	char *path;		/* as registered, normalised */
	char *real;		/* realpath at registration */
	__u32 id;		/* watched_dirs value */
	struct vtr_dir_key key;	/* kernel encoding, for the tracer */
	dev_t st_dev;		/* userspace identity, for re-checks */
	ino_t st_ino;
	bool mountpoint;	/* on another device than its parent */
	struct reg_dest *dests;
};

struct registry {
	struct reg_source *sources;
	struct reg_agent *agents;
	struct reg_dest *graveyard;	/* removed, waiting for their worker */
	char **allowed;			/* allowed_sources, realpath'd */
	size_t n_allowed;
	struct tracer *tracer;		/* NULL: no kernel filter (tests) */
	__u32 next_id;
	struct agent_conn_opts agent_opts;
};

/* Control-API style result codes (control_server.h CONTROL_*). */
int registry_init(struct registry *reg, struct tracer *t,
		  char *const *allowed, size_t n_allowed);
int registry_set_allowed(struct registry *reg, char *const *allowed,
			 size_t n_allowed);
void registry_free(struct registry *reg);

/*
 * Validate and add one watch. Returns CONTROL_OK with *out set, or a
 * CONTROL_* code with *errmsg (malloc'd, actionable). The same (source,
 * dest) twice is CONTROL_ALREADY_EXISTS.
 */
int registry_add(struct registry *reg, const char *source, const char *agent,
		 const char *dest, enum watch_origin origin,
		 struct reg_dest **out, char **errmsg);

/*
 * Validation only (same messages as registry_add); *real and *ndest
 * receive the resolved source and normalised dest when non-NULL.
 */
int registry_validate(const struct registry *reg, const char *source,
		      const char *agent, const char *dest, char **real,
		      char **ndest, char **errmsg);

/*
 * Unlink d from its source (dropping the source and its kernel filter
 * entry with the last dest). A dest a worker is using goes to the
 * graveyard until registry_reap.
 */
void registry_remove_dest(struct registry *reg, struct reg_dest *d);
void registry_remove_source(struct registry *reg, struct reg_source *s);
void registry_reap(struct registry *reg, struct reg_dest *d);

struct reg_source *registry_source_by_id(const struct registry *reg, __u32 id);
/* By the path as registered, or by its realpath. */
struct reg_source *registry_find_source(const struct registry *reg,
					const char *path);
struct reg_dest *registry_find_dest(const struct reg_source *s,
				    const char *dest);

/*
 * Re-check a source against the filesystem:
 *   0          unchanged
 *   1          (dev, ino) changed: re-registered in the kernel filter
 *   -ENOENT    gone (removed, or unmounted from under us): caller removes
 * *why (static) says what was seen.
 */
int registry_recheck(struct registry *reg, struct reg_source *s,
		     const char **why);

size_t registry_count_dests(const struct registry *reg);
size_t registry_count_agents(const struct registry *reg);

#define registry_for_each_dest(reg, s, d)				\
	for ((s) = (reg)->sources; (s); (s) = (s)->next)		\
		for ((d) = (s)->dests; (d); (d) = (d)->next)

#endif /* VT_REGISTRY_H */
