/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Guest paths: everything voltrace writes in a guest must lie strictly
 * below /run/kata-containers/shared/containers/ (the only tree kata-agent
 * accepts CopyFile into). Checked before any byte is sent.
 */
#ifndef VT_GUEST_PATH_H
#define VT_GUEST_PATH_H

#include <stdbool.h>

#define GUEST_SHARED_ROOT "/run/kata-containers/shared/containers"

/*
 * Validate and normalise a guest destination: absolute, no ".." or
 * control characters, strictly below GUEST_SHARED_ROOT. "//" and "." are
 * collapsed, a trailing "/" dropped. Returns 0 with *out malloc'd, or -1
 * with *err malloc'd, a one-line reason such as
 *   guest path "/etc/x" is outside /run/kata-containers/shared/containers/
 */
int guest_path_normalize(const char *in, char **out, char **err);
/* True when `path` (already normalised) is strictly below the root. */
bool guest_path_allowed(const char *path);
/*
 * dest + "/" + rel for a relative source path (no "..", no leading "/").
 * NULL on invalid rel or ENOMEM.
 */
char *guest_path_join(const char *dest, const char *rel);

#endif /* VT_GUEST_PATH_H */
