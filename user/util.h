/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Small helpers shared by every module. */
#ifndef VT_UTIL_H
#define VT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Retry on EINTR and short writes/reads. 0 / bytes read, or -errno. */
int write_all(int fd, const void *buf, size_t len);
ssize_t read_full(int fd, void *buf, size_t len);
ssize_t pread_full(int fd, void *buf, size_t len, off_t off);
/* readlinkat(2) into a malloc'd, NUL-terminated string of any length. */
int readlinkat_alloc(int dfd, const char *name, char **out);

uint64_t now_ns(void);		/* CLOCK_MONOTONIC, same clock as bpf_ktime_get_ns */
uint64_t realtime_ns(void);

/* malloc'd "a/b"; NULL on ENOMEM. */
char *path_join(const char *a, const char *b);
/* True when path equals root or lies below it (both absolute, normalised). */
bool path_is_under(const char *path, const char *root);
/*
 * Lexically normalise an absolute path: collapse "//", drop "." and trailing
 * "/". ".." is refused (returns -EINVAL) rather than resolved. *out is
 * malloc'd.
 */
int path_normalize(const char *in, char **out);

#endif /* VT_UTIL_H */
