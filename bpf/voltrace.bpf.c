// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * voltrace: report successful rename/unlink/rmdir operations that happen in
 * watched directories. The filter is the identity (dev, ino) of the parent
 * directory, looked up in one hash map, so unrelated operations cost one or
 * two lookups and nothing else.
 *
 * Three variants of the same hooks live in this object; userspace enables one
 * set with bpf_program__set_autoload() before load:
 *   fentry      fentry+fexit on vfs_rename, vfs_rmdir; fexit on vfs_unlink
 *   kprobe      kprobe+kretprobe on the same functions
 *   tracepoint  syscalls:sys_{enter,exit}_{rename,renameat,renameat2,
 *               unlink,unlinkat,rmdir}
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "voltrace.h"

#define AT_FDCWD	-100
#define AT_REMOVEDIR	0x200
#define MAX_INFLIGHT	10240

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct vtr_path_val {
	__u64 dev;
	__u64 ino;
	__u32 id;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vtr_dir_key);
	__type(value, __u32);
} watched_dirs SEC(".maps");

/* Tracepoint mode only: absolute directory path -> identity. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vtr_path_key);
	__type(value, struct vtr_path_val);
} watched_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VT_COUNTERS_LEN);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/*
 * An operation seen on entry in a watched directory, waiting for its return
 * value. Keyed by pid_tgid: a task is in at most one such syscall at a time.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct vtr_event);
} inflight SEC(".maps");

/* Per-CPU scratch space: the BPF stack is 512 bytes. */
struct scratch {
	struct vtr_event ev;
	struct vtr_path_key key;
	/* rename's two paths; the slack lets a name be read at any offset */
	char path[2][VT_PATH_MAX + VT_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

static __always_inline void count(int op, int which)
{
	__u32 idx = op * VT_CNT_MAX + which;
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline struct scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch_map, &zero);
}

static __always_inline __u32 lookup_dir(__u64 dev, __u64 ino)
{
	struct vtr_dir_key key = { .dev = dev, .ino = ino };
	__u32 *id = bpf_map_lookup_elem(&watched_dirs, &key);

	return id ? *id : 0;
}

static __always_inline void inode_key(struct inode *inode, __u64 *dev, __u64 *ino)
{
	*dev = BPF_CORE_READ(inode, i_sb, s_dev);
	*ino = BPF_CORE_READ(inode, i_ino);
}

static __always_inline void dentry_key(struct dentry *d, __u64 *dev, __u64 *ino)
{
	*dev = BPF_CORE_READ(d, d_sb, s_dev);
	*ino = BPF_CORE_READ(d, d_inode, i_ino);
}

/* Everything but the names, which the caller fills. */
static __always_inline void event_init_header(struct vtr_event *ev, int op, int mode)
{
	__u64 id = bpf_get_current_pid_tgid();

	__builtin_memset(ev, 0, offsetof(struct vtr_event, comm));
	ev->op = op;
	ev->mode = mode;
	ev->pid = (__u32)id;
	ev->tgid = id >> 32;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
}

static __always_inline void event_init(struct vtr_event *ev, int op, int mode)
{
	__builtin_memset(ev->name, 0, sizeof(ev->name) + sizeof(ev->new_name));
	event_init_header(ev, op, mode);
}

static __always_inline void stash(struct vtr_event *ev)
{
	__u64 id = bpf_get_current_pid_tgid();

	count(ev->op, VT_CNT_MATCHED);
	bpf_map_update_elem(&inflight, &id, ev, BPF_ANY);
}

/*
 * A kretprobe can be missed (maxactive exhausted), which would leave this
 * task's inflight entry behind for its next, unrelated operation to report.
 * kprobe mode therefore clears the slot on every unmatched entry; fexit and
 * sys_exit always run, so the other modes skip the extra map operation.
 */
static __always_inline void unmatched(int mode)
{
	__u64 id;

	if (mode != VT_MODE_KPROBE)
		return;
	id = bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&inflight, &id);
}

/* Emit a finished event. Failed operations are dropped here. */
static __always_inline void submit(const struct vtr_event *src, int ret)
{
	struct vtr_event *ev;

	if (ret != 0)
		return;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(src->op, VT_CNT_DROPPED);
		return;
	}
	__builtin_memcpy(ev, src, sizeof(*ev));
	ev->ret = ret;
	ev->ktime_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(ev, 0);
	count(src->op, VT_CNT_SUBMITTED);
}

static __always_inline void finish_inflight(int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct vtr_event *ev = bpf_map_lookup_elem(&inflight, &id);

	if (!ev)
		return;
	submit(ev, ret);
	bpf_map_delete_elem(&inflight, &id);
}

/* ---- shared by fentry and kprobe: entry-side capture from kernel objects */

static __always_inline void rename_enter(struct renamedata *rd, int mode)
{
	struct dentry *old_dentry = BPF_CORE_READ(rd, old_dentry);
	struct dentry *new_dentry = BPF_CORE_READ(rd, new_dentry);
	struct dentry *old_parent = BPF_CORE_READ(old_dentry, d_parent);
	struct dentry *new_parent = BPF_CORE_READ(new_dentry, d_parent);
	struct scratch *s;
	__u64 dev, ino, ndev, nino;
	__u32 id, nid;

	count(VT_OP_RENAME, VT_CNT_SEEN);
	/* Parents via d_parent: struct renamedata changed between 6.1 and 6.18. */
	dentry_key(old_parent, &dev, &ino);
	dentry_key(new_parent, &ndev, &nino);
	id = lookup_dir(dev, ino);
	nid = lookup_dir(ndev, nino);
	if (!id && !nid) {
		unmatched(mode);
		return;
	}
	s = get_scratch();
	if (!s)
		return;
	event_init(&s->ev, VT_OP_RENAME, mode);
	s->ev.dev = dev;
	s->ev.dir_ino = ino;
	s->ev.new_dev = ndev;
	s->ev.new_dir_ino = nino;
	s->ev.dir_id = id;
	s->ev.new_dir_id = nid;
	s->ev.ino = BPF_CORE_READ(old_dentry, d_inode, i_ino);
	bpf_probe_read_kernel_str(s->ev.name, sizeof(s->ev.name),
				  BPF_CORE_READ(old_dentry, d_name.name));
	bpf_probe_read_kernel_str(s->ev.new_name, sizeof(s->ev.new_name),
				  BPF_CORE_READ(new_dentry, d_name.name));
	stash(&s->ev);
}

static __always_inline void remove_enter(int op, struct inode *dir,
					 struct dentry *dentry, int mode)
{
	struct scratch *s;
	__u64 dev, ino, self_ino;
	__u32 id, self_id = 0;

	count(op, VT_CNT_SEEN);
	inode_key(dir, &dev, &ino);
	id = lookup_dir(dev, ino);
	self_ino = BPF_CORE_READ(dentry, d_inode, i_ino);
	/* A removed directory may itself be watched (the volume went away). */
	if (op == VT_OP_RMDIR)
		self_id = lookup_dir(dev, self_ino);
	if (!id && !self_id) {
		unmatched(mode);
		return;
	}
	s = get_scratch();
	if (!s)
		return;
	event_init(&s->ev, op, mode);
	s->ev.dev = dev;
	s->ev.dir_ino = ino;
	s->ev.dir_id = id;
	s->ev.ino = self_ino;
	s->ev.self_id = self_id;
	bpf_probe_read_kernel_str(s->ev.name, sizeof(s->ev.name),
				  BPF_CORE_READ(dentry, d_name.name));
	stash(&s->ev);
}

/* ---- fentry mode ------------------------------------------------------- */

/*
 * fexit alone is not enough for rename and rmdir: by the time vfs_rename
 * returns, d_move() has given old_dentry its new name and parent, and a
 * removed directory's dentry has lost its inode. Capture on entry, report on
 * exit with the return value.
 */
SEC("fentry/vfs_rename")
int BPF_PROG(fentry_vfs_rename, struct renamedata *rd)
{
	rename_enter(rd, VT_MODE_FENTRY);
	return 0;
}

SEC("fexit/vfs_rename")
int BPF_PROG(fexit_vfs_rename, struct renamedata *rd, int ret)
{
	finish_inflight(ret);
	return 0;
}

SEC("fentry/vfs_rmdir")
int BPF_PROG(fentry_vfs_rmdir, void *idmap, struct inode *dir, struct dentry *dentry)
{
	remove_enter(VT_OP_RMDIR, dir, dentry, VT_MODE_FENTRY);
	return 0;
}

SEC("fexit/vfs_rmdir")
int BPF_PROG(fexit_vfs_rmdir, void *idmap, struct inode *dir, struct dentry *dentry,
	     int ret)
{
	finish_inflight(ret);
	return 0;
}

/* The unlinked dentry keeps its name and parent: one fexit program does. */
SEC("fexit/vfs_unlink")
int BPF_PROG(fexit_vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry,
	     void *delegated, int ret)
{
	struct scratch *s;
	__u64 dev, ino;
	__u32 id;

	count(VT_OP_UNLINK, VT_CNT_SEEN);
	inode_key(dir, &dev, &ino);
	id = lookup_dir(dev, ino);
	if (!id)
		return 0;
	count(VT_OP_UNLINK, VT_CNT_MATCHED);
	if (ret != 0)
		return 0;
	s = get_scratch();
	if (!s)
		return 0;
	event_init(&s->ev, VT_OP_UNLINK, VT_MODE_FENTRY);
	s->ev.dev = dev;
	s->ev.dir_ino = ino;
	s->ev.dir_id = id;
	bpf_probe_read_kernel_str(s->ev.name, sizeof(s->ev.name),
				  BPF_CORE_READ(dentry, d_name.name));
	submit(&s->ev, ret);
	return 0;
}

/* ---- kprobe mode ------------------------------------------------------- */

SEC("kprobe/vfs_rename")
int BPF_KPROBE(kprobe_vfs_rename, struct renamedata *rd)
{
	rename_enter(rd, VT_MODE_KPROBE);
	return 0;
}

SEC("kretprobe/vfs_rename")
int BPF_KRETPROBE(kretprobe_vfs_rename, int ret)
{
	finish_inflight(ret);
	return 0;
}

SEC("kprobe/vfs_unlink")
int BPF_KPROBE(kprobe_vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry)
{
	remove_enter(VT_OP_UNLINK, dir, dentry, VT_MODE_KPROBE);
	return 0;
}

SEC("kretprobe/vfs_unlink")
int BPF_KRETPROBE(kretprobe_vfs_unlink, int ret)
{
	finish_inflight(ret);
	return 0;
}

SEC("kprobe/vfs_rmdir")
int BPF_KPROBE(kprobe_vfs_rmdir, void *idmap, struct inode *dir, struct dentry *dentry)
{
	remove_enter(VT_OP_RMDIR, dir, dentry, VT_MODE_KPROBE);
	return 0;
}

SEC("kretprobe/vfs_rmdir")
int BPF_KRETPROBE(kretprobe_vfs_rmdir, int ret)
{
	finish_inflight(ret);
	return 0;
}

/* ---- tracepoint mode --------------------------------------------------- */

/* The directory an fd refers to, or the cwd for AT_FDCWD. */
static __always_inline int dirfd_key(int dfd, __u64 *dev, __u64 *ino)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct dentry *d;

	/*
	 * task is a trusted BTF pointer: walking it with plain loads costs far
	 * less than a probe-read helper call per field on this hot path.
	 */
	if (dfd == AT_FDCWD) {
		d = task->fs->pwd.dentry;
	} else {
		struct fdtable *fdt = task->files->fdt;
		struct file **fds = fdt->fd;
		struct file *f = NULL;

		if (dfd < 0 || (unsigned int)dfd >= fdt->max_fds)
			return -1;
		bpf_probe_read_kernel(&f, sizeof(f), &fds[dfd]);
		if (!f)
			return -1;
		d = BPF_CORE_READ(f, f_path.dentry);
	}
	if (!d)
		return -1;
	dentry_key(d, dev, ino);
	return 0;
}

struct scan_ctx {
	int buf;	/* which scratch path */
	long len;	/* bytes to scan */
	long end;	/* end of the last component (trailing slashes dropped) */
	long slash;	/* the slash before the last component, -1 if none */
};

/*
 * One byte of the path per call: bpf_loop keeps the verifier from walking
 * every iteration of a 4 KiB scan.
 */
static long scan_path_cb(__u32 i, struct scan_ctx *c)
{
	struct scratch *s = get_scratch();
	char *path, ch, prev;

	if (!s || i >= c->len)
		return 1;
	path = s->path[c->buf & 1];
	ch = path[i & (VT_PATH_MAX - 1)];
	if (ch == '/')
		return 0;
	prev = i ? path[(i - 1) & (VT_PATH_MAX - 1)] : '/';
	if (prev == '/')
		c->slash = (long)i - 1;
	c->end = i + 1;
	return 0;
}

/*
 * Resolve (dfd, user path) to the parent directory's identity. Absolute
 * paths are matched by their directory string in watched_paths; names
 * without a slash through the dirfd; a relative path with a directory part
 * cannot be resolved without a path walk and is not reported (see README).
 * The path stays in s->path[buf] and its last component is located in *sc
 * for copy_name(), which runs only once something matched. Returns the
 * watched id or 0.
 */
static __always_inline __u32 resolve_parent(struct scratch *s, int buf, int dfd,
					    const char *upath, struct scan_ctx *sc,
					    __u64 *dev, __u64 *ino)
{
	char *path = s->path[buf & 1];
	struct vtr_path_val *val;
	long len, slash;
	__u32 klen;

	sc->buf = buf;
	sc->end = 0;
	sc->slash = -1;
	len = bpf_probe_read_user_str(path, VT_PATH_MAX, upath);
	if (len <= 1)
		return 0;
	sc->len = len - 1;	/* drop the NUL */
	bpf_loop(VT_PATH_MAX, scan_path_cb, sc, 0);
	if (sc->end == 0)	/* "/" or "///": no name */
		return 0;
	slash = sc->slash;
	if (slash < -1 || slash >= VT_PATH_MAX - 1)
		return 0;
	if (slash < 0) {
		if (dirfd_key(dfd, dev, ino))
			return 0;
		return lookup_dir(*dev, *ino);
	}
	if (path[0] != '/')
		return 0;
	if (slash >= VT_PATH_KEY_MAX)
		return 0;
	/* "/x" has its parent "/" */
	klen = slash ? slash : 1;
	/* Keep clang from folding the mask into the branch above. */
	asm volatile("" : "+r"(klen));
	klen &= VT_PATH_KEY_MAX - 1;
	__builtin_memset(&s->key, 0, sizeof(s->key));
	bpf_probe_read_kernel(s->key.path, klen, path);
	val = bpf_map_lookup_elem(&watched_paths, &s->key);
	if (!val)
		return 0;
	*dev = val->dev;
	*ino = val->ino;
	return val->id;
}

/* The last component located by resolve_parent, NUL-terminated. */
static __always_inline void copy_name(struct scratch *s, const struct scan_ctx *sc,
				      char *name)
{
	long slash = sc->slash, n = sc->end - sc->slash - 1;

	name[0] = '\0';
	if (sc->end == 0 || slash < -1 || slash >= VT_PATH_MAX - 1)
		return;
	bpf_probe_read_kernel(name, VT_NAME_MAX,
			      &s->path[sc->buf & 1][(slash + 1) & (VT_PATH_MAX - 1)]);
	name[(n < VT_NAME_MAX ? n : VT_NAME_MAX - 1) & (VT_NAME_MAX - 1)] = '\0';
}

/* rmdir of a watched directory by absolute path: look up the path itself. */
static __always_inline __u32 resolve_self(struct scratch *s, __u64 *ino)
{
	struct vtr_path_val *val;

	if (s->path[0][0] != '/')
		return 0;
	__builtin_memset(&s->key, 0, sizeof(s->key));
	bpf_probe_read_kernel_str(s->key.path, sizeof(s->key.path), s->path[0]);
	val = bpf_map_lookup_elem(&watched_paths, &s->key);
	if (!val)
		return 0;
	*ino = val->ino;
	return val->id;
}

static __always_inline void tp_rename(int olddfd, const char *oldname,
				      int newdfd, const char *newname)
{
	struct scratch *s = get_scratch();
	__u64 dev = 0, ino = 0, ndev = 0, nino = 0;
	struct scan_ctx sc_old, sc_new;
	__u32 id, nid;

	count(VT_OP_RENAME, VT_CNT_SEEN);
	if (!s)
		return;
	/* Unwatched operations stop here: no event set-up before the filter. */
	id = resolve_parent(s, 0, olddfd, oldname, &sc_old, &dev, &ino);
	nid = resolve_parent(s, 1, newdfd, newname, &sc_new, &ndev, &nino);
	if (!id && !nid)
		return;
	event_init_header(&s->ev, VT_OP_RENAME, VT_MODE_TRACEPOINT);
	copy_name(s, &sc_old, s->ev.name);
	copy_name(s, &sc_new, s->ev.new_name);
	s->ev.dev = dev;
	s->ev.dir_ino = ino;
	s->ev.new_dev = ndev;
	s->ev.new_dir_ino = nino;
	s->ev.dir_id = id;
	s->ev.new_dir_id = nid;
	stash(&s->ev);
}

static __always_inline void tp_remove(int op, int dfd, const char *path)
{
	struct scratch *s = get_scratch();
	__u64 dev = 0, ino = 0, self_ino = 0;
	__u32 id, self_id = 0;

	count(op, VT_CNT_SEEN);
	if (!s)
		return;
	struct scan_ctx sc;

	id = resolve_parent(s, 0, dfd, path, &sc, &dev, &ino);
	if (op == VT_OP_RMDIR)
		self_id = resolve_self(s, &self_ino);
	if (!id && !self_id)
		return;
	event_init_header(&s->ev, op, VT_MODE_TRACEPOINT);
	copy_name(s, &sc, s->ev.name);
	s->ev.new_name[0] = '\0';
	s->ev.dev = dev;
	s->ev.dir_ino = ino;
	s->ev.dir_id = id;
	s->ev.ino = self_ino;
	s->ev.self_id = self_id;
	stash(&s->ev);
}

#define TP_ARG(ctx, n) ((ctx)->args[n])

SEC("tracepoint/syscalls/sys_enter_rename")
int tp_enter_rename(struct trace_event_raw_sys_enter *ctx)
{
	tp_rename(AT_FDCWD, (const char *)TP_ARG(ctx, 0),
		  AT_FDCWD, (const char *)TP_ARG(ctx, 1));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_renameat")
int tp_enter_renameat(struct trace_event_raw_sys_enter *ctx)
{
	tp_rename((int)TP_ARG(ctx, 0), (const char *)TP_ARG(ctx, 1),
		  (int)TP_ARG(ctx, 2), (const char *)TP_ARG(ctx, 3));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_renameat2")
int tp_enter_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	tp_rename((int)TP_ARG(ctx, 0), (const char *)TP_ARG(ctx, 1),
		  (int)TP_ARG(ctx, 2), (const char *)TP_ARG(ctx, 3));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int tp_enter_unlink(struct trace_event_raw_sys_enter *ctx)
{
	tp_remove(VT_OP_UNLINK, AT_FDCWD, (const char *)TP_ARG(ctx, 0));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int tp_enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	int op = (TP_ARG(ctx, 2) & AT_REMOVEDIR) ? VT_OP_RMDIR : VT_OP_UNLINK;

	tp_remove(op, (int)TP_ARG(ctx, 0), (const char *)TP_ARG(ctx, 1));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_rmdir")
int tp_enter_rmdir(struct trace_event_raw_sys_enter *ctx)
{
	tp_remove(VT_OP_RMDIR, AT_FDCWD, (const char *)TP_ARG(ctx, 0));
	return 0;
}

#define TP_EXIT(name)							\
SEC("tracepoint/syscalls/sys_exit_" #name)				\
int tp_exit_##name(struct trace_event_raw_sys_exit *ctx)		\
{									\
	finish_inflight((int)ctx->ret);					\
	return 0;							\
}

TP_EXIT(rename)
TP_EXIT(renameat)
TP_EXIT(renameat2)
TP_EXIT(unlink)
TP_EXIT(unlinkat)
TP_EXIT(rmdir)
