/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The sync engine: turns "something happened in this volume" into guest
 * updates, per dest:
 *
 *   event -> pending, due = now + debounce_ms (not extended by later
 *            events, so a busy volume still syncs every debounce_ms)
 *   due, not in flight, agent idle, not backing off -> a job for a worker
 *   the worker snapshots the volume *at that moment*, plans against what
 *   the dest got last (sync_plan.h), and sends the plan with blocking
 *   CopyFile calls
 *   events during a sync only set pending again: the next sync reads the
 *   newest state, and since one dest never has two syncs in flight, an
 *   older state can never reach the guest after a newer one
 *
 * A small fixed pool of worker threads does the blocking agent I/O; at most
 * one job per agent runs at a time, so a dead or slow agent holds one
 * worker at most and never delays the others. Failed syncs retry with a
 * capped exponential backoff. Everything except the workers' jobs runs in
 * the daemon's main thread (registry and dest bookkeeping are not locked).
 */
#ifndef VT_SYNC_ENGINE_H
#define VT_SYNC_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "registry.h"

#define SYNC_ENGINE_DEFAULT_WORKERS	3
#define SYNC_BACKOFF_INITIAL_MS		100
#define SYNC_BACKOFF_MAX_MS		5000

struct sync_engine;

/* A source could not be opened, or is not the directory registered. */
typedef void (*sync_source_fn)(void *ctx, struct reg_source *s);

struct sync_engine_opts {
	unsigned int workers;		/* 0: default */
	unsigned int debounce_ms;
	sync_source_fn on_source_problem;
	void *ctx;
};

int sync_engine_new(struct registry *reg, const struct sync_engine_opts *o,
		    struct sync_engine **out);
void sync_engine_free(struct sync_engine *e);
void sync_engine_set_debounce(struct sync_engine *e, unsigned int ms);

/* Readable when workers finished jobs: call sync_engine_run then. */
int sync_engine_fd(const struct sync_engine *e);

/*
 * A kernel event (ktime_ns: its CLOCK_MONOTONIC stamp) in source s. Events
 * are debounced; a commit (the rename onto ..data) is not, because the
 * payload it points at is complete by then: it syncs at once, and the
 * kubelet's clean-up events that follow coalesce behind it.
 */
void sync_engine_event(struct sync_engine *e, struct reg_source *s,
		       uint64_t ktime_ns, bool commit);
/* Full sync of one dest now (no debounce); clear: forget its state. */
void sync_engine_request(struct sync_engine *e, struct reg_dest *d,
			 enum metrics_reconcile_reason why, bool clear);
void sync_engine_reconcile_source(struct sync_engine *e, struct reg_source *s,
				  enum metrics_reconcile_reason why);
void sync_engine_reconcile_all(struct sync_engine *e,
			       enum metrics_reconcile_reason why);

/*
 * Collect finished jobs and start due ones. Returns the CLOCK_MONOTONIC ns
 * of the next deadline to wake up for, or 0 when none.
 */
uint64_t sync_engine_run(struct sync_engine *e, uint64_t now);

/* Syncs running or queued. */
unsigned int sync_engine_busy(const struct sync_engine *e);

/*
 * Shutdown: start nothing new, drop queued jobs, wait up to timeout_ms for
 * running ones. Returns the number still running at the deadline.
 */
unsigned int sync_engine_drain(struct sync_engine *e, int timeout_ms);

/* Sum over dests, for voltrace_guest_stale_dirs and ctl status. */
uint64_t sync_engine_stale_dirs(const struct sync_engine *e);

#endif /* VT_SYNC_ENGINE_H */
