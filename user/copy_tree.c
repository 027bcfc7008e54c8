// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Safe source reading, tree walk, chunk planning and ordered tree copy. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "copy_tree.h"
#include "guest_path.h"
#include "util.h"

/* Directory depth beyond which a source tree is refused (fd budget). */
#define MAX_DEPTH 128

/* ---- chunk planning ------------------------------------------------------ */

uint64_t copy_chunk_count(uint64_t file_size, size_t chunk_max)
{
	if (file_size == 0 || chunk_max == 0)
		return 1;
	return (file_size + chunk_max - 1) / chunk_max;
}

void copy_chunk_at(uint64_t file_size, size_t chunk_max, uint64_t idx,
		   uint64_t *offset, size_t *len)
{
	uint64_t off = idx * chunk_max;

	if (chunk_max == 0 || off >= file_size) {
		*offset = off < file_size ? off : file_size;
		*len = 0;
		return;
	}
	*offset = off;
	*len = file_size - off < chunk_max ? (size_t)(file_size - off) : chunk_max;
}

/* ---- safe source access -------------------------------------------------- */

int copy_open_beneath(int dirfd, const char *relpath, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	int tries = 0;

	if (!relpath || !*relpath)
		relpath = ".";
	/*
	 * With RESOLVE_BENEATH, a walk through ".." fails with EAGAIN when any
	 * rename or mount happens on the system meanwhile: on a busy node
	 * that is common, so retry a bounded number of times.
	 */
	do {
		fd = syscall(SYS_openat2, dirfd, relpath, &how, sizeof(how));
	} while (fd < 0 && errno == EAGAIN && ++tries < 64);
	return fd < 0 ? -errno : (int)fd;
}

/* Split relpath into an fd on its parent (beneath dirfd) and a basename. */
static int open_parent(int dirfd, const char *relpath, const char **base)
{
	const char *slash = strrchr(relpath, '/');
	char *parent;
	int fd;

	if (!slash) {
		*base = relpath;
		return copy_open_beneath(dirfd, ".", O_PATH | O_DIRECTORY);
	}
	parent = strndup(relpath, (size_t)(slash - relpath));
	if (!parent)
		return -ENOMEM;
	fd = copy_open_beneath(dirfd, parent, O_PATH | O_DIRECTORY);
	free(parent);
	*base = slash + 1;
	return fd;
}

int copy_lstat_beneath(int dirfd, const char *relpath, struct stat *sb)
{
	const char *base;
	int pfd, r = 0;

	if (!relpath || !*relpath)
		return fstatat(dirfd, "", sb, AT_EMPTY_PATH) < 0 ? -errno : 0;
	pfd = open_parent(dirfd, relpath, &base);
	if (pfd < 0)
		return pfd;
	if (!*base || !strcmp(base, "..") || !strcmp(base, "."))
		r = -EINVAL;
	else if (fstatat(pfd, base, sb, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	close(pfd);
	return r;
}

int copy_readlink_beneath(int dirfd, const char *relpath, char **target)
{
	const char *base;
	int pfd, r;

	if (!relpath || !*relpath)
		return -EINVAL;
	pfd = open_parent(dirfd, relpath, &base);
	if (pfd < 0)
		return pfd;
	r = readlinkat_alloc(pfd, base, target);
	close(pfd);
	return r;
}

/* ---- tree plan ----------------------------------------------------------- */

static int plan_add(struct copy_plan *plan, enum copy_kind kind, char *relpath,
		    const struct stat *sb, char *target)
{
	if (plan->n == plan->cap) {
		size_t cap = plan->cap ? plan->cap * 2 : 64;
		struct copy_entry *e = realloc(plan->entries, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		plan->entries = e;
		plan->cap = cap;
	}
	plan->entries[plan->n++] = (struct copy_entry){
		.kind = kind, .relpath = relpath, .sb = *sb, .target = target,
	};
	if (kind == COPY_FILE)
		plan->total_bytes += (uint64_t)sb->st_size;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *rel_child(const char *rel, const char *name)
{
	char *p;

	if (!*rel)
		return strdup(name);
	if (asprintf(&p, "%s/%s", rel, name) < 0)
		return NULL;
	return p;
}

/* Sorted entry names of an open directory (consumes dfd). */
static int list_dir(int dfd, char ***names, size_t *count)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		close(dfd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				goto nomem;
			v = nv;
		}
		v[n] = strdup(de->d_name);
		if (!v[n])
			goto nomem;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_names);
	*names = v;
	*count = n;
	return 0;
nomem:
	closedir(d);
	while (n)
		free(v[--n]);
	free(v);
	return -ENOMEM;
}

/*
 * Depth-first, pre-order, names sorted. dfd is the directory `rel`, owned
 * by the caller. Children are reached with *at() calls relative to dfd
 * and O_NOFOLLOW, so the walk never follows a symlink: it cannot leave
 * the source tree.
 */
static int walk(int dfd, const char *rel, int depth, struct copy_plan *plan,
		struct ttrpc_status *st)
{
	char **names = NULL;
	size_t n = 0, i;
	int r, ret = -1, lfd;

	if (depth > MAX_DEPTH)
		return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
			"%s: directory tree deeper than %d levels", rel, MAX_DEPTH);
	lfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = lfd < 0 ? -errno : list_dir(lfd, &names, &n);
	if (r < 0)
		return ttrpc_status_set(st, GRPC_INTERNAL, "read directory %s: %s",
					*rel ? rel : ".", strerror(-r));
	for (i = 0; i < n; i++) {
		struct stat sb;
		char *child = rel_child(rel, names[i]), *target = NULL;
		int cfd;

		if (!child) {
			ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED, "out of memory");
			goto out;
		}
		if (fstatat(dfd, names[i], &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			ttrpc_status_set(st, errno == ENOENT ? GRPC_ABORTED :
					 GRPC_INTERNAL, "lstat %s: %s", child,
					 strerror(errno));
			free(child);
			goto out;
		}
		switch (sb.st_mode & S_IFMT) {
		case S_IFREG:
			r = plan_add(plan, COPY_FILE, child, &sb, NULL);
			break;
		case S_IFLNK:
			r = readlinkat_alloc(dfd, names[i], &target);
			if (r == 0) {
				r = plan_add(plan, COPY_SYMLINK, child, &sb, target);
				if (r < 0)
					free(target);
			}
			break;
		case S_IFDIR:
			r = plan_add(plan, COPY_DIR, child, &sb, NULL);
			if (r < 0)
				break;
			cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY |
				     O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				ttrpc_status_set(st, GRPC_INTERNAL, "open %s: %s",
						 child, strerror(errno));
				goto out;
			}
			r = walk(cfd, child, depth + 1, plan, st);
			close(cfd);
			if (r < 0)
				goto out;
			continue;
		default:
			ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
				"%s is not a regular file, directory or symlink; refusing to copy the tree",
				child);
			free(child);
			goto out;
		}
		if (r < 0) {
			ttrpc_status_set(st, GRPC_INTERNAL, "%s: %s", child,
					 strerror(-r));
			free(child);
			goto out;
		}
	}
	ret = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

/* 0: content (dirs, files, nested links), 1: top-level ..data, 2: other
 * top-level symlinks (user-visible keys). */
static int phase_of(const struct copy_entry *e)
{
	if (e->kind != COPY_SYMLINK || strchr(e->relpath, '/'))
		return 0;
	return strcmp(e->relpath, "..data") == 0 ? 1 : 2;
}

void copy_plan_sort(struct copy_plan *plan)
{
	struct copy_entry *out;
	size_t o = 0;

	if (plan->n < 2)
		return;
	out = malloc(plan->n * sizeof(*out));
	if (!out)
		return;	/* walk order is still a valid (if less safe) order */
	for (int ph = 0; ph <= 2; ph++)
		for (size_t i = 0; i < plan->n; i++)
			if (phase_of(&plan->entries[i]) == ph)
				out[o++] = plan->entries[i];
	memcpy(plan->entries, out, plan->n * sizeof(*out));
	free(out);
}

int copy_plan_build(int src_dirfd, struct copy_plan *plan,
		    struct ttrpc_status *st)
{
	struct stat sb;
	char *root;

	memset(plan, 0, sizeof(*plan));
	if (fstat(src_dirfd, &sb) < 0)
		return ttrpc_status_set(st, GRPC_INTERNAL, "fstat source: %s",
					strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
					"source is not a directory");
	root = strdup("");
	if (!root || plan_add(plan, COPY_DIR, root, &sb, NULL) < 0) {
		free(root);
		return ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (walk(src_dirfd, "", 0, plan, st) < 0) {
		copy_plan_release(plan);
		return -1;
	}
	copy_plan_sort(plan);
	return 0;
}

void copy_plan_release(struct copy_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		free(plan->entries[i].relpath);
		free(plan->entries[i].target);
	}
	free(plan->entries);
	memset(plan, 0, sizeof(*plan));
}

/* ---- running a plan ------------------------------------------------------ */

struct inflight {
	struct agent_call *calls;
	const struct copy_entry **entries;
	size_t n;
	size_t cap;
};

/* Wait for every call in flight; keeps the first error in st. */
static int drain(struct agent_conn *c, struct inflight *fl,
		 struct agent_counters *ctr, struct ttrpc_status *st)
{
	struct ttrpc_status one = TTRPC_STATUS_INIT;
	int ret = 0;

	for (size_t i = 0; i < fl->n; i++) {
		if (agent_copy_file_wait(c, &fl->calls[i], ctr, &one) < 0) {
			if (ret == 0) {
				ttrpc_status_prefix(&one, "copy %s",
						    fl->entries[i]->relpath);
				ttrpc_status_clear(st);
				*st = one;
				one.message = NULL;
				ret = -1;
			}
			ttrpc_status_clear(&one);
		}
	}
	fl->n = 0;
	return ret;
}

/*
 * Read a whole small file (<= one chunk) and start its single request.
 * Returns 1 when started, 0 when the file must go the synchronous way
 * (it grew past one chunk), -1 on error.
 */
static int start_small_file(struct agent_conn *c, int src_dirfd,
			    const struct copy_entry *e, const char *guest,
			    struct agent_call *call, struct ttrpc_status *st)
{
	struct stat sb;
	uint8_t *buf = NULL;
	ssize_t n = 0;
	int fd, ret = -1;

	fd = copy_open_beneath(src_dirfd, e->relpath,
			       O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return ttrpc_status_set(st, fd == -ENOENT ? GRPC_ABORTED :
					GRPC_PERMISSION_DENIED, "copy %s: open: %s",
					e->relpath, strerror(-fd));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		ttrpc_status_set(st, GRPC_ABORTED,
				 "copy %s: changed while being copied", e->relpath);
		goto out;
	}
	if ((uint64_t)sb.st_size > AGENT_CHUNK_MAX) {
		ret = 0;
		goto out;
	}
	buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!buf) {
		ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	while (n < sb.st_size) {
		ssize_t r = pread(fd, buf + n, (size_t)(sb.st_size - n), n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ttrpc_status_set(st, GRPC_ABORTED, "read %s: %s",
					 e->relpath, r < 0 ? strerror(errno) :
					 "file shrank while being copied");
			goto out;
		}
		n += r;
	}
	struct agent_copy_req req = {
		.path = guest,
		.file_size = sb.st_size,
		.file_mode = sb.st_mode,
		.dir_mode = AGENT_DIR_MODE,
		.uid = (int32_t)sb.st_uid,
		.gid = (int32_t)sb.st_gid,
		.data = buf,
		.len = (size_t)sb.st_size,
	};
	if (agent_copy_file_start(c, &req, call, st) < 0) {
		ttrpc_status_prefix(st, "copy %s -> %s", e->relpath, guest);
		goto out;
	}
	ret = 1;
out:
	free(buf);
	close(fd);
	return ret;
}

static int run_entry(struct agent_conn *c, int src_dirfd,
		     const struct copy_entry *e, const char *guest,
		     struct inflight *fl, unsigned window,
		     struct agent_counters *ctr, struct ttrpc_status *st)
{
	int r;

	switch (e->kind) {
	case COPY_DIR:
		/* Its contents may be in flight only after it exists. */
		if (drain(c, fl, ctr, st) < 0)
			return -1;
		return agent_put_dir(c, guest, &e->sb, ctr, st);
	case COPY_SYMLINK:
		return agent_put_symlink(c, guest, e->target, &e->sb, ctr, st);
	case COPY_FILE:
		if (window > 1 && (uint64_t)e->sb.st_size <= AGENT_CHUNK_MAX) {
			if (fl->n == window && drain(c, fl, ctr, st) < 0)
				return -1;
			r = start_small_file(c, src_dirfd, e, guest,
					     &fl->calls[fl->n], st);
			if (r < 0)
				return -1;
			if (r == 1) {
				fl->entries[fl->n++] = e;
				return 0;
			}
		}
		return agent_put_file(c, src_dirfd, e->relpath, guest, ctr, st);
	}
	return ttrpc_status_set(st, GRPC_INTERNAL, "bad plan entry");
}

int copy_plan_run(struct agent_conn *c, int src_dirfd,
		  const struct copy_plan *plan, const char *guest_dest,
		  unsigned window, struct agent_counters *ctr,
		  struct ttrpc_status *st)
{
	struct inflight fl = { 0 };
	int ret = -1, phase = 0;

	if (!guest_path_allowed(guest_dest))
		return ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
			"refusing guest path \"%s\": outside " GUEST_SHARED_ROOT "/",
			guest_dest);
	if (window < 1)
		window = 1;
	fl.calls = calloc(window, sizeof(*fl.calls));
	fl.entries = calloc(window, sizeof(*fl.entries));
	if (!fl.calls || !fl.entries) {
		ttrpc_status_set(st, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < plan->n; i++) {
		const struct copy_entry *e = &plan->entries[i];
		char *guest = guest_path_join(guest_dest, e->relpath);
		int r;

		if (!guest) {
			ttrpc_status_set(st, GRPC_INVALID_ARGUMENT,
					 "bad relative path \"%s\"", e->relpath);
			goto out_drain;
		}
		/* Everything of a phase is acknowledged before the next
		 * starts: ..data never points at an incomplete directory. */
		if (phase_of(e) != phase) {
			phase = phase_of(e);
			if (drain(c, &fl, ctr, st) < 0) {
				free(guest);
				goto out;
			}
		}
		r = run_entry(c, src_dirfd, e, guest, &fl, window, ctr, st);
		free(guest);
		if (r < 0)
			goto out_drain;
	}
	if (drain(c, &fl, ctr, st) < 0)
		goto out;
	ret = 0;
	goto out;
out_drain:
	{
		struct ttrpc_status ignore = TTRPC_STATUS_INIT;

		drain(c, &fl, ctr, &ignore);
		ttrpc_status_clear(&ignore);
	}
out:
	free(fl.calls);
	free(fl.entries);
	return ret;
}
