/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Read a watched volume directory into a struct vol_snapshot (sync_plan.h):
 * its kind (kubelet atomic-writer volume or plain tree), the "..data"
 * target, and every payload entry with its SHA-256.
 *
 * Every open is relative to the volume's directory fd with O_NOFOLLOW, so
 * no symlink is ever followed on the host: symlinks are recorded (their
 * target string) and mirrored as symlinks. A "..data" target that is not a
 * plain "..<name>" in the volume dir is refused.
 */
#ifndef VT_VOL_SNAPSHOT_H
#define VT_VOL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "sync_plan.h"

/* Deeper trees are refused rather than walked without bound. */
#define VOL_SNAPSHOT_MAX_DEPTH		64
#define VOL_SNAPSHOT_MAX_ENTRIES	100000

/*
 * dirfd: the volume directory (O_DIRECTORY). 0, or -errno with *errmsg
 * (malloc'd, says which entry). -ESTALE: the "..data" target kept moving
 * while reading (a newer commit is on its way).
 */
int vol_snapshot_read(int dirfd, struct vol_snapshot *out, char **errmsg);

/* SHA-256 of everything readable from fd; *size gets the byte count. */
int vol_hash_fd(int fd, unsigned char hash[SYNC_HASH_LEN], uint64_t *size);

#endif /* VT_VOL_SNAPSHOT_H */
