/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Types shared by the BPF programs and userspace. Keep this header free of
 * kernel and libc includes: the BPF side includes it after vmlinux.h, the
 * userspace side after <linux/types.h>.
 */
#ifndef VOLTRACE_H
#define VOLTRACE_H

#define VT_NAME_MAX	256	/* NAME_MAX + NUL */
#define VT_COMM_LEN	16
/*
 * Tracepoint mode matches absolute paths by exact directory string. Longer
 * directories are still matched through dirfd-relative calls; userspace
 * refuses to register a path key it cannot represent.
 */
#define VT_PATH_KEY_MAX	256
#define VT_PATH_MAX	4096

enum vtr_op {
	VT_OP_RENAME = 0,
	VT_OP_UNLINK = 1,
	VT_OP_RMDIR = 2,
	VT_OP_MAX,
};

enum vtr_mode {
	VT_MODE_FENTRY = 0,
	VT_MODE_KPROBE = 1,
	VT_MODE_TRACEPOINT = 2,
	VT_MODE_MAX,
};

/* Per-op counters; index = op * VT_CNT_MAX + counter. */
enum vtr_counter {
	VT_CNT_SEEN = 0,	/* calls of the hooked function / syscall */
	VT_CNT_MATCHED,		/* in a watched directory and successful */
	VT_CNT_SUBMITTED,	/* made it into the ring buffer */
	VT_CNT_DROPPED,		/* ring buffer reserve failed */
	VT_CNT_MAX,
};

#define VT_COUNTERS_LEN	(VT_OP_MAX * VT_CNT_MAX)

/*
 * Directory identity. dev uses the kernel's internal encoding
 * (MAJOR << 20 | MINOR), which differs from st_dev; see tracer.c.
 */
struct vtr_dir_key {
	__u64 dev;
	__u64 ino;
};

struct vtr_path_key {
	char path[VT_PATH_KEY_MAX];
};

struct vtr_event {
	__u64 ktime_ns;
	__u64 dev;		/* parent directory of name */
	__u64 dir_ino;
	__u64 new_dev;		/* rename: parent directory of new_name */
	__u64 new_dir_ino;
	__u64 ino;		/* the renamed or removed object itself */
	__u32 dir_id;		/* watched_dirs value of the parent, 0 if none */
	__u32 new_dir_id;
	__u32 self_id;		/* watched_dirs value of ino (rmdir/rename of a watched dir) */
	__s32 ret;
	__u32 pid;		/* thread id */
	__u32 tgid;		/* process id */
	__u8 op;		/* enum vtr_op */
	__u8 mode;		/* enum vtr_mode */
	__u8 pad[6];
	char comm[VT_COMM_LEN];
	char name[VT_NAME_MAX];
	char new_name[VT_NAME_MAX];
};

#endif /* VOLTRACE_H */
