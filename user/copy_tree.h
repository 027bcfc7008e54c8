/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a source tree safely and copying it to a guest in an order the
 * guest can observe at any moment without seeing a half-written volume:
 *   1. every directory and regular file that is not a top-level symlink
 *      (kubelet's "..<timestamp>" directory and its files), directories
 *      before their contents;
 *   2. the top-level "..data" symlink (kubelet's commit point);
 *   3. the other top-level symlinks (the user-visible keys).
 * Any tree of files, directories and symlinks is copied with this order.
 */
#ifndef VT_COPY_TREE_H
#define VT_COPY_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "agent_client.h"
#include "ttrpc.h"

/* ---- chunk planning -------------------------------------------------------- */

/* Number of CopyFile requests for a file: max(1, ceil(size / chunk_max)). */
uint64_t copy_chunk_count(uint64_t file_size, size_t chunk_max);
/* Offset and length of chunk `idx` (0-based). Empty file: (0, 0). */
void copy_chunk_at(uint64_t file_size, size_t chunk_max, uint64_t idx,
		   uint64_t *offset, size_t *len);

/* ---- safe source access ---------------------------------------------------- */

/*
 * openat2(dirfd, relpath, flags | O_CLOEXEC, RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS): symlinks may be followed only while they stay
 * below dirfd; "..", absolute links and /proc magic links that would
 * leave it fail with EXDEV/ELOOP. Returns fd or -errno.
 */
int copy_open_beneath(int dirfd, const char *relpath, int flags);
/*
 * lstat of relpath below dirfd: the parent is opened with
 * copy_open_beneath(O_PATH|O_DIRECTORY), the last component is not
 * followed. Returns 0 or -errno.
 */
int copy_lstat_beneath(int dirfd, const char *relpath, struct stat *sb);
/* readlink of relpath below dirfd (last component not followed); malloc'd. */
int copy_readlink_beneath(int dirfd, const char *relpath, char **target);

/* ---- tree plan --------------------------------------------------------------- */

enum copy_kind {
	COPY_DIR,
	COPY_FILE,
	COPY_SYMLINK,
};

struct copy_entry {
	enum copy_kind kind;
	char *relpath;		/* "" for the root directory itself */
	struct stat sb;		/* lstat */
	char *target;		/* COPY_SYMLINK */
};

struct copy_plan {
	struct copy_entry *entries;
	size_t n;
	size_t cap;
	uint64_t total_bytes;	/* sum of regular file sizes */
};

/*
 * Walk the tree below src_dirfd (no symlink followed, no mount crossed
 * is not required) and order it as described above. Entry 0 is the root
 * directory itself (relpath ""). Special files are refused: InvalidArgument
 * naming the path. Names are sorted within a directory for determinism.
 */
int copy_plan_build(int src_dirfd, struct copy_plan *plan,
		    struct ttrpc_status *st);
void copy_plan_release(struct copy_plan *plan);
/* Order a plan built by hand (tests): stable, by the three phases. */
void copy_plan_sort(struct copy_plan *plan);

/*
 * Send the plan to the guest below guest_dest (normalised, allowed).
 * Stops at the first error, leaving what was already copied in place
 * (never a half-published file: the agent only renames complete files).
 * `window` > 1 lets that many independent single-chunk requests be in
 * flight at once within a phase (never two chunks of one file; a barrier
 * before every directory so it exists before its contents and after
 * each phase).
 */
int copy_plan_run(struct agent_conn *c, int src_dirfd,
		  const struct copy_plan *plan, const char *guest_dest,
		  unsigned window, struct agent_counters *ctr,
		  struct ttrpc_status *st);

#endif /* VT_COPY_TREE_H */
