/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel half's userspace face: load the BPF object in one attach mode,
 * pin it, maintain the watched_dirs filter, and hand ring-buffer events to a
 * callback.
 */
#ifndef VT_TRACER_H
#define VT_TRACER_H

#include <stddef.h>
#include <linux/types.h>
#include "voltrace.h"

#define TRACER_DEFAULT_RINGBUF	(256 * 1024)
#define TRACER_DEFAULT_BPFFS	"/sys/fs/bpf/voltrace"

enum tracer_mode_req {
	TRACER_MODE_AUTO = -1,
	TRACER_MODE_FENTRY = VT_MODE_FENTRY,
	TRACER_MODE_KPROBE = VT_MODE_KPROBE,
	TRACER_MODE_TRACEPOINT = VT_MODE_TRACEPOINT,
};

typedef int (*tracer_event_fn)(void *ctx, const struct vtr_event *e);

struct tracer_opts {
	enum tracer_mode_req mode;
	const char *bpffs_dir;		/* NULL: do not pin */
	size_t ringbuf_size;		/* 0: TRACER_DEFAULT_RINGBUF */
	tracer_event_fn on_event;
	void *ctx;
};

struct tracer;

/* "fentry", "kprobe", "tracepoint", "auto" <-> enum; -1 when unknown. */
int tracer_parse_mode(const char *name, enum tracer_mode_req *out);
const char *tracer_mode_name(int mode);
const char *vt_op_name(int op);

/*
 * Load and attach. With TRACER_MODE_AUTO tries fentry, kprobe, tracepoint in
 * that order and logs why each refused mode failed. Returns 0 or -errno.
 */
int tracer_open(const struct tracer_opts *opts, struct tracer **out);
void tracer_close(struct tracer *t);
int tracer_mode(const struct tracer *t);

/*
 * Try to load and attach a single mode without keeping it. Returns 0 when it
 * works; otherwise -errno and *reason (malloc'd, caller frees) says which step
 * failed, e.g. "program load: Operation not permitted".
 */
int tracer_try_mode(int mode, char **reason);

/*
 * Put a directory into the in-kernel filter under id (non-zero). Both the
 * path as given and its realpath are registered for tracepoint mode's
 * absolute-path matching. *key (optional) receives the directory identity.
 */
int tracer_watch_dir(struct tracer *t, const char *path, __u32 id,
		     struct vtr_dir_key *key);
/*
 * Tracepoint mode matches absolute paths by string: register another
 * spelling of an already watched directory (e.g. the configured path when
 * the directory was watched by its realpath). No-op in the other modes.
 */
int tracer_add_path_alias(struct tracer *t, const char *path,
			  const struct vtr_dir_key *key, __u32 id);
int tracer_unwatch_dir(struct tracer *t, const char *path,
		       const struct vtr_dir_key *key);
/* The (dev, ino) key of a path, dev in the kernel's encoding. */
int tracer_dir_key(const char *path, struct vtr_dir_key *key);

/* An fd for epoll: readable when events are waiting. */
int tracer_epoll_fd(struct tracer *t);
/* Deliver waiting events to the callback; returns the number or -errno. */
int tracer_consume(struct tracer *t);
int tracer_poll(struct tracer *t, int timeout_ms);

/* Sum of the per-CPU counters, indexed op * VT_CNT_MAX + counter. */
int tracer_read_counters(struct tracer *t, __u64 out[VT_COUNTERS_LEN]);
/* Sum over ops of one counter. */
__u64 tracer_counter_total(const __u64 c[VT_COUNTERS_LEN], enum vtr_counter which);

#endif /* VT_TRACER_H */
