// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * BPF loader: one object, three sets of programs. The mode decides which set
 * is autoloaded (the libbpf-tools pattern), so a kernel that refuses fentry
 * never sees those programs at all when tracepoint mode is chosen.
 */
#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "tracer.h"
#include "util.h"
#include "voltrace.skel.h"

/* Must match bpf/voltrace.bpf.c. */
struct vtr_path_val {
	__u64 dev;
	__u64 ino;
	__u32 id;
	__u32 pad;
};

/* A watched_paths entry, remembered so unwatch need not scan the map. */
struct path_entry {
	struct vtr_dir_key dir;
	struct vtr_path_key key;
};

struct tracer {
	struct voltrace_bpf *skel;
	struct path_entry *paths;	/* tracepoint mode only */
	size_t npaths, cap_paths;
	struct ring_buffer *rb;
	struct bpf_link **links;
	size_t nlinks;
	int mode;
	char *pin_dir;
	tracer_event_fn on_event;
	void *ctx;
};

static const char *const mode_names[] = {
	[VT_MODE_FENTRY] = "fentry",
	[VT_MODE_KPROBE] = "kprobe",
	[VT_MODE_TRACEPOINT] = "tracepoint",
};

static const char *const op_names[] = {
	[VT_OP_RENAME] = "rename",
	[VT_OP_UNLINK] = "unlink",
	[VT_OP_RMDIR] = "rmdir",
};

int tracer_parse_mode(const char *name, enum tracer_mode_req *out)
{
	if (!strcmp(name, "auto")) {
		*out = TRACER_MODE_AUTO;
		return 0;
	}
	for (int i = 0; i < VT_MODE_MAX; i++) {
		if (!strcmp(name, mode_names[i])) {
			*out = (enum tracer_mode_req)i;
			return 0;
		}
	}
	return -1;
}

const char *tracer_mode_name(int mode)
{
	if (mode == TRACER_MODE_AUTO)
		return "auto";
	if (mode < 0 || mode >= VT_MODE_MAX)
		return "unknown";
	return mode_names[mode];
}

const char *vt_op_name(int op)
{
	if (op < 0 || op >= VT_OP_MAX)
		return "unknown";
	return op_names[op];
}

/* The mode a program belongs to, from its section name. */
static int prog_mode(const struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog);

	if (!strncmp(sec, "fentry/", 7) || !strncmp(sec, "fexit/", 6))
		return VT_MODE_FENTRY;
	if (!strncmp(sec, "kprobe/", 7) || !strncmp(sec, "kretprobe/", 10))
		return VT_MODE_KPROBE;
	return VT_MODE_TRACEPOINT;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL;
	size_t len;

	if (level == LIBBPF_DEBUG && !log_enabled(LOG_LVL_DEBUG))
		return 0;
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	len = strlen(msg);
	while (len && msg[len - 1] == '\n')
		msg[--len] = '\0';
	/* libbpf warns loudly about every refused mode; auto mode expects that. */
	vt_log(LOG_LVL_DEBUG, "libbpf", "detail", msg, NULL);
	free(msg);
	return 0;
}

static void setup_libbpf(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	libbpf_set_print(libbpf_print);
}

/* libbpf resolves tracepoint ids through tracefs; it is not always mounted. */
static void ensure_tracefs(void)
{
	if (access("/sys/kernel/tracing/events", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events", F_OK) == 0)
		return;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL))
		log_warn("mount tracefs", "path", "/sys/kernel/tracing",
			 "error", strerror(errno));
}

static int set_reason(char **reason, const char *fmt, ...)
{
	va_list ap;
	int ret;

	if (!reason)
		return 0;
	va_start(ap, fmt);
	ret = vasprintf(reason, fmt, ap);
	va_end(ap);
	if (ret < 0)
		*reason = NULL;
	return 0;
}

static void detach_all(struct tracer *t)
{
	for (size_t i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);
	free(t->links);
	t->links = NULL;
	t->nlinks = 0;
}

static int attach_mode(struct tracer *t, char **reason)
{
	struct bpf_program *prog;
	size_t n = 0;

	bpf_object__for_each_program(prog, t->skel->obj)
		n++;
	t->links = calloc(n, sizeof(*t->links));
	if (!t->links)
		return -ENOMEM;
	bpf_object__for_each_program(prog, t->skel->obj) {
		struct bpf_link *link;
		int err;

		if (!bpf_program__autoload(prog))
			continue;
		link = bpf_program__attach(prog);
		if (!link) {
			err = -errno;
			set_reason(reason, "attach %s: %s",
				   bpf_program__section_name(prog), strerror(-err));
			detach_all(t);
			return err;
		}
		t->links[t->nlinks++] = link;
	}
	return 0;
}

/* Open, load and attach one mode's programs into t. */
static int load_mode(struct tracer *t, int mode, size_t ringbuf_size, char **reason)
{
	struct bpf_program *prog;
	int err;

	if (mode == VT_MODE_TRACEPOINT)
		ensure_tracefs();
	t->skel = voltrace_bpf__open();
	if (!t->skel) {
		err = -errno;
		set_reason(reason, "open BPF object: %s", strerror(-err));
		return err;
	}
	err = bpf_map__set_max_entries(t->skel->maps.events, (__u32)ringbuf_size);
	if (err) {
		set_reason(reason, "ring buffer size %zu: %s", ringbuf_size, strerror(-err));
		goto cleanup;
	}
	bpf_object__for_each_program(prog, t->skel->obj)
		bpf_program__set_autoload(prog, prog_mode(prog) == mode);
	err = voltrace_bpf__load(t->skel);
	if (err) {
		set_reason(reason, "program load: %s", strerror(-err));
		goto cleanup;
	}
	err = attach_mode(t, reason);
	if (err)
		goto cleanup;
	t->mode = mode;
	return 0;
cleanup:
	voltrace_bpf__destroy(t->skel);
	t->skel = NULL;
	return err;
}

int tracer_try_mode(int mode, char **reason)
{
	struct tracer t = { 0 };
	int err;

	setup_libbpf();
	if (reason)
		*reason = NULL;
	err = load_mode(&t, mode, 4096 * 4, reason);
	if (err)
		return err;
	detach_all(&t);
	voltrace_bpf__destroy(t.skel);
	return 0;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char *copy = strdup(path);
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) && errno != EEXIST)
			err = -errno;
		*p = '/';
		if (err)
			goto out;
	}
	if (mkdir(copy, mode) && errno != EEXIST)
		err = -errno;
out:
	free(copy);
	return err;
}

/*
 * Pins from a run that crashed keep their programs attached and their maps
 * alive; remove them so this run's pins replace them.
 */
static int clear_pin_dir(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int removed = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *p;

		if (de->d_name[0] == '.')
			continue;
		p = path_join(dir, de->d_name);
		if (p && unlink(p) == 0)
			removed++;
		free(p);
	}
	closedir(d);
	if (removed)
		log_warn("replaced stale pins from an earlier run", "dir", dir,
			 "removed", LOG_INT(removed));
	return 0;
}

static int prepare_pin_dir(const char *dir)
{
	int err;

	if (dir[0] != '/')
		return -EINVAL;
	/* Mount bpffs on /sys/fs/bpf when it is missing, as bpftool does. */
	if (!is_bpffs("/sys/fs/bpf") && !strncmp(dir, "/sys/fs/bpf/", 12)) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL))
			log_warn("mount bpffs", "path", "/sys/fs/bpf",
				 "error", strerror(errno));
	}
	err = mkdir_p(dir, 0700);
	if (err)
		return err;
	if (!is_bpffs(dir) && mount("bpf", dir, "bpf", 0, NULL))
		return -errno;
	return clear_pin_dir(dir);
}

static int pin_one(const char *dir, const char *name, struct bpf_map *map,
		   struct bpf_link *link)
{
	char *p = path_join(dir, name);
	int err;

	if (!p)
		return -ENOMEM;
	err = map ? bpf_map__pin(map, p) : bpf_link__pin(link, p);
	if (err)
		log_error("pin", "path", p, "error", strerror(-err));
	free(p);
	return err;
}

static int pin_all(struct tracer *t, const char *dir)
{
	struct bpf_map *maps[] = {
		t->skel->maps.watched_dirs, t->skel->maps.watched_paths,
		t->skel->maps.counters, t->skel->maps.events,
	};
	size_t li = 0;
	struct bpf_program *prog;
	int err;

	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		err = pin_one(dir, bpf_map__name(maps[i]), maps[i], NULL);
		if (err)
			return err;
	}
	bpf_object__for_each_program(prog, t->skel->obj) {
		char *name;

		if (!bpf_program__autoload(prog) || li >= t->nlinks)
			continue;
		if (asprintf(&name, "link_%s", bpf_program__name(prog)) < 0)
			return -ENOMEM;
		err = pin_one(dir, name, NULL, t->links[li++]);
		free(name);
		if (err)
			return err;
	}
	return 0;
}

static void unpin_all(struct tracer *t)
{
	struct bpf_map *map;

	if (!t->pin_dir)
		return;
	bpf_object__for_each_map(map, t->skel->obj)
		bpf_map__unpin(map, NULL);
	for (size_t i = 0; i < t->nlinks; i++)
		bpf_link__unpin(t->links[i]);
	clear_pin_dir(t->pin_dir);
	rmdir(t->pin_dir);
}

static int handle_sample(void *ctx, void *data, size_t size)
{
	struct tracer *t = ctx;

	if (size < sizeof(struct vtr_event))
		return 0;
	return t->on_event ? t->on_event(t->ctx, data) : 0;
}

static int open_mode(struct tracer *t, int mode, size_t rb_size)
{
	char *reason = NULL;
	int err;

	err = load_mode(t, mode, rb_size, &reason);
	if (err)
		log_warn("attach mode refused", "mode", tracer_mode_name(mode),
			 "reason", reason ? reason : strerror(-err));
	free(reason);
	return err;
}

int tracer_open(const struct tracer_opts *opts, struct tracer **out)
{
	size_t rb_size = opts->ringbuf_size ? opts->ringbuf_size : TRACER_DEFAULT_RINGBUF;
	struct tracer *t;
	int err = -EINVAL;

	setup_libbpf();
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->on_event = opts->on_event;
	t->ctx = opts->ctx;
	if (opts->mode == TRACER_MODE_AUTO) {
		for (int m = 0; m < VT_MODE_MAX; m++) {
			err = open_mode(t, m, rb_size);
			if (!err)
				break;
		}
	} else {
		err = open_mode(t, opts->mode, rb_size);
	}
	if (err)
		goto fail;
	log_info("tracer attached", "mode", tracer_mode_name(t->mode),
		 "ring_buffer_bytes", LOG_U64(rb_size));
	/*
	 * Each refused mode parsed the object and its BTF: about 11 MiB of
	 * freed heap that would otherwise stay resident for the daemon's life.
	 */
	malloc_trim(0);
	if (opts->bpffs_dir) {
		err = prepare_pin_dir(opts->bpffs_dir);
		if (err) {
			log_error("bpffs directory", "dir", opts->bpffs_dir,
				  "error", strerror(-err));
			goto fail;
		}
		t->pin_dir = strdup(opts->bpffs_dir);
		err = t->pin_dir ? pin_all(t, t->pin_dir) : -ENOMEM;
		if (err)
			goto fail;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), handle_sample, t, NULL);
	if (!t->rb) {
		err = -errno;
		log_error("ring buffer", "error", strerror(-err));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	tracer_close(t);
	return err;
}

void tracer_close(struct tracer *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	if (t->skel)
		unpin_all(t);
	detach_all(t);
	voltrace_bpf__destroy(t->skel);
	free(t->paths);
	free(t->pin_dir);
	free(t);
}

int tracer_mode(const struct tracer *t)
{
	return t->mode;
}

int tracer_dir_key(const char *path, struct vtr_dir_key *key)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* The kernel's dev_t is MAJOR << 20 | MINOR, not userspace's encoding. */
	key->dev = ((__u64)major(st.st_dev) << 20) | minor(st.st_dev);
	key->ino = st.st_ino;
	return 0;
}

static int put_path_key(struct tracer *t, const char *path,
			const struct vtr_path_val *val)
{
	struct vtr_path_key key;
	size_t len = strlen(path);

	if (len >= sizeof(key.path)) {
		log_warn("directory path too long for tracepoint absolute-path matching; "
			 "only dirfd-relative operations will be seen",
			 "dir", path, "max", LOG_INT(sizeof(key.path) - 1));
		return 0;
	}
	memset(&key, 0, sizeof(key));
	memcpy(key.path, path, len);
	if (t->npaths == t->cap_paths) {
		size_t cap = t->cap_paths ? t->cap_paths * 2 : 64;
		struct path_entry *p = realloc(t->paths, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		t->paths = p;
		t->cap_paths = cap;
	}
	if (bpf_map__update_elem(t->skel->maps.watched_paths, &key, sizeof(key),
				 val, sizeof(*val), BPF_ANY))
		return -errno;
	t->paths[t->npaths].dir.dev = val->dev;
	t->paths[t->npaths].dir.ino = val->ino;
	t->paths[t->npaths].key = key;
	t->npaths++;
	return 0;
}

static int put_path_keys(struct tracer *t, const char *path, const struct vtr_path_val *val)
{
	char *norm = NULL, *real = NULL;
	int err = 0;

	if (path[0] == '/' && path_normalize(path, &norm) == 0)
		err = put_path_key(t, norm, val);
	real = realpath(path, NULL);
	if (!err && real && (!norm || strcmp(real, norm)))
		err = put_path_key(t, real, val);
	free(norm);
	free(real);
	return err;
}

int tracer_watch_dir(struct tracer *t, const char *path, __u32 id,
		     struct vtr_dir_key *keyp)
{
	struct vtr_dir_key key;
	int err;

	if (!id)
		return -EINVAL;
	err = tracer_dir_key(path, &key);
	if (err)
		return err;
	if (bpf_map__update_elem(t->skel->maps.watched_dirs, &key, sizeof(key),
				 &id, sizeof(id), BPF_ANY))
		return -errno;
	if (t->mode == VT_MODE_TRACEPOINT) {
		struct vtr_path_val val = { .dev = key.dev, .ino = key.ino, .id = id };

		err = put_path_keys(t, path, &val);
		if (err) {
			bpf_map__delete_elem(t->skel->maps.watched_dirs, &key,
					     sizeof(key), 0);
			return err;
		}
	}
	if (keyp)
		*keyp = key;
	return 0;
}

int tracer_add_path_alias(struct tracer *t, const char *path,
			  const struct vtr_dir_key *key, __u32 id)
{
	struct vtr_path_val val = { .dev = key->dev, .ino = key->ino, .id = id };
	char *norm;
	int err;

	if (t->mode != VT_MODE_TRACEPOINT)
		return 0;
	err = path_normalize(path, &norm);
	if (err)
		return err;
	err = put_path_key(t, norm, &val);
	free(norm);
	return err;
}

/* Drop every path key that names this directory, whatever its spelling. */
static void del_path_keys(struct tracer *t, const struct vtr_dir_key *dk)
{
	struct bpf_map *map = t->skel->maps.watched_paths;
	struct vtr_path_val val;
	size_t i = 0;

	while (i < t->npaths) {
		struct path_entry *e = &t->paths[i];

		if (e->dir.dev != dk->dev || e->dir.ino != dk->ino) {
			i++;
			continue;
		}
		/* The same path may name a newer directory by now (remount). */
		if (bpf_map__lookup_elem(map, &e->key, sizeof(e->key), &val,
					 sizeof(val), 0) == 0 &&
		    val.dev == dk->dev && val.ino == dk->ino)
			bpf_map__delete_elem(map, &e->key, sizeof(e->key), 0);
		*e = t->paths[--t->npaths];
	}
}

int tracer_unwatch_dir(struct tracer *t, const char *path, const struct vtr_dir_key *keyp)
{
	struct vtr_dir_key key;
	int err;

	if (keyp) {
		key = *keyp;
	} else {
		err = tracer_dir_key(path, &key);
		if (err)
			return err;
	}
	if (bpf_map__delete_elem(t->skel->maps.watched_dirs, &key, sizeof(key), 0) &&
	    errno != ENOENT)
		return -errno;
	if (t->mode == VT_MODE_TRACEPOINT)
		del_path_keys(t, &key);
	return 0;
}

int tracer_epoll_fd(struct tracer *t)
{
	return ring_buffer__epoll_fd(t->rb);
}

int tracer_consume(struct tracer *t)
{
	return ring_buffer__consume(t->rb);
}

int tracer_poll(struct tracer *t, int timeout_ms)
{
	return ring_buffer__poll(t->rb, timeout_ms);
}

int tracer_read_counters(struct tracer *t, __u64 out[VT_COUNTERS_LEN])
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < VT_COUNTERS_LEN; i++) {
		out[i] = 0;
		if (bpf_map__lookup_elem(t->skel->maps.counters, &i, sizeof(i), vals,
					 sizeof(*vals) * (size_t)ncpu, 0))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
	free(vals);
	return 0;
}

__u64 tracer_counter_total(const __u64 c[VT_COUNTERS_LEN], enum vtr_counter which)
{
	__u64 sum = 0;

	for (int op = 0; op < VT_OP_MAX; op++)
		sum += c[op * VT_CNT_MAX + which];
	return sum;
}
