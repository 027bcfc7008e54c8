/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Sync planning: pure functions, no I/O. Given what a watched volume looks
 * like now (a snapshot) and what one guest dest was last sent (its state),
 * produce the ordered operations that bring the dest to the snapshot.
 *
 * Kubelet atomic-writer volumes (a "..data" symlink to "..<timestamp>"):
 *   1. mkdir the dest, then "..<ts>" and its subdirectories (parents first)
 *   2. the payload files (and payload symlinks) under "..<ts>"
 *   3. "..data" -> "..<ts>"                    (the guest's commit)
 *   4. "<key>" -> "..data/<key>" for every top-level payload entry
 * Links come from the payload, never from the host's top level, so the
 * kubelet's link-before-commit and link-after-commit orders give the same
 * plan. Deleted keys need nothing: their guest link dangles once "..data"
 * moves (the agent has no delete RPC).
 *
 * Plain directories (no "..data"): every dir, file and symlink is mirrored
 * at the same relative path.
 *
 * Skipping: an operation is left out when the dest state says the guest
 * already holds exactly that (same type, mode, size and SHA-256 for files,
 * same target for links) at that guest path. A new "..<ts>" dir is a new
 * guest path, so its files are sent even when their content did not change;
 * repeated syncs of the same state (coalesced events, reconciles, the old
 * dir's removal after a commit) send nothing.
 */
#ifndef VT_SYNC_PLAN_H
#define VT_SYNC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYNC_HASH_LEN	32	/* SHA-256 */
#define SYNC_DATA_LINK	"..data"

enum snap_type {
	SNAP_DIR = 0,
	SNAP_FILE,
	SNAP_SYMLINK,
};

struct snap_entry {
	char *path;		/* relative to the payload root: "a/b/c" */
	enum snap_type type;
	uint32_t mode;		/* permission bits (07777) */
	uint32_t uid;
	uint32_t gid;
	uint64_t size;
	unsigned char hash[SYNC_HASH_LEN];	/* files */
	char *target;		/* symlinks */
};

enum vol_kind {
	VOL_PLAIN = 0,
	VOL_KUBELET,
};

struct vol_snapshot {
	enum vol_kind kind;
	char *data_target;	/* kubelet: "..2026_11_22_10_00_00.123" */
	uint32_t root_mode;	/* mode of the volume dir itself */
	uint32_t payload_mode;	/* kubelet: mode of the "..<ts>" dir */
	/* Payload entries; sorted by sync_snapshot_sort (parents first). */
	struct snap_entry *entries;
	size_t n;
};

/* What the guest holds at one dest-relative path because we sent it. */
struct dest_entry {
	char *path;		/* relative to dest; "" is dest itself */
	enum snap_type type;
	uint32_t mode;
	uint64_t size;
	unsigned char hash[SYNC_HASH_LEN];
	char *target;
};

struct dest_state {
	struct dest_entry *entries;	/* sorted by path (strcmp) */
	size_t n, cap;
	char **ts_dirs;			/* "..<ts>" dirs created in the guest */
	size_t n_ts;
	char *data_target;		/* where the guest's "..data" points */
};

enum plan_kind {
	PLAN_MKDIR = 0,
	PLAN_FILE,
	PLAN_SYMLINK,
};

struct plan_op {
	enum plan_kind kind;
	char *src;		/* FILE: relative to the volume dir ("..ts/a/b") */
	char *dst;		/* relative to dest; "" is dest itself */
	char *target;		/* SYMLINK */
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint64_t size;
	unsigned char hash[SYNC_HASH_LEN];
};

struct sync_plan {
	struct plan_op *ops;
	size_t n, cap;
	size_t skipped;		/* operations left out: guest already has them */
	uint64_t bytes;		/* file bytes the plan sends */
	size_t files;		/* file operations */
	/* Old "..<ts>" dirs left in the guest once this plan is applied. */
	size_t stale_dirs;
};

/* Order entries so that every directory comes before what it contains. */
void sync_snapshot_sort(struct vol_snapshot *s);
void vol_snapshot_free(struct vol_snapshot *s);

/* A kubelet "..<ts>" name: starts with "..", no '/', not "..data*". */
bool sync_is_ts_name(const char *name);

/* 0 or -ENOMEM / -EINVAL (malformed snapshot). plan is zeroed first. */
int sync_plan_build(const struct vol_snapshot *snap,
		    const struct dest_state *st, struct sync_plan *plan);
void sync_plan_free(struct sync_plan *plan);

/* Record that op was applied in the guest. 0 or -ENOMEM. */
int dest_state_apply(struct dest_state *st, const struct plan_op *op);
const struct dest_entry *dest_state_find(const struct dest_state *st,
					 const char *path);
/* Old "..<ts>" dirs known to be in the guest (all but data_target). */
size_t dest_state_stale_dirs(const struct dest_state *st);
/* Forget everything (the guest may have been replaced). */
void dest_state_clear(struct dest_state *st);

#endif /* VT_SYNC_PLAN_H */
