// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Read a volume directory into a snapshot without following host symlinks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vol_snapshot.h"
#include "util.h"

#define READ_CHUNK	(64 * 1024)
#define TS_RETRIES	8

static int fail(char **errmsg, int err, const char *fmt, ...)
{
	va_list ap;

	if (errmsg) {
		va_start(ap, fmt);
		if (vasprintf(errmsg, fmt, ap) < 0)
			*errmsg = NULL;
		va_end(ap);
	}
	return err;
}

int vol_hash_fd(int fd, unsigned char hash[SYNC_HASH_LEN], uint64_t *size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = malloc(READ_CHUNK);
	unsigned int len = 0;
	uint64_t total = 0;
	int err = -ENOMEM;

	if (!ctx || !buf)
		goto out;
	err = -EIO;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, READ_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, n) != 1)
			goto out;
		total += n;
	}
	if (EVP_DigestFinal_ex(ctx, hash, &len) != 1 || len != SYNC_HASH_LEN)
		goto out;
	*size = total;
	err = 0;
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return err;
}

static struct snap_entry *snap_push(struct vol_snapshot *s, size_t *cap)
{
	struct snap_entry *e;

	if (s->n >= VOL_SNAPSHOT_MAX_ENTRIES)
		return NULL;
	if (s->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct snap_entry *v = realloc(s->entries, ncap * sizeof(*v));

		if (!v)
			return NULL;
		s->entries = v;
		*cap = ncap;
	}
	e = &s->entries[s->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

struct walk {
	struct vol_snapshot *s;
	size_t cap;
	char **errmsg;
};

static int walk_dir(struct walk *w, int dfd, const char *prefix, int depth);

static int walk_file(struct walk *w, int dfd, const char *name,
		     const char *path, struct snap_entry *e,
		     const struct stat *st)
{
	struct stat fst;
	int fd, err;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail(w->errmsg, -errno, "open %s: %s", path,
			    strerror(errno));
	if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) ||
	    fst.st_ino != st->st_ino) {
		close(fd);
		return fail(w->errmsg, -ESTALE, "%s changed while reading",
			    path);
	}
	err = vol_hash_fd(fd, e->hash, &e->size);
	close(fd);
	if (err)
		return fail(w->errmsg, err, "read %s: %s", path,
			    strerror(-err));
	return 0;
}

static int walk_entry(struct walk *w, int dfd, const char *prefix,
		      const char *name, int depth)
{
	struct snap_entry *e;
	struct stat st;
	char *path;
	int err = 0, sub;

	if (prefix) {
		if (asprintf(&path, "%s/%s", prefix, name) < 0)
			return -ENOMEM;
	} else {
		path = strdup(name);
		if (!path)
			return -ENOMEM;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		err = fail(w->errmsg, -errno, "stat %s: %s", path,
			   strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) &&
	    !S_ISLNK(st.st_mode))
		goto out;	/* fifos, sockets, devices: nothing to copy */
	e = snap_push(w->s, &w->cap);
	if (!e) {
		err = fail(w->errmsg, -E2BIG, "%s: too many entries or no memory",
			   path);
		goto out;
	}
	e->path = path;
	path = NULL;
	e->mode = st.st_mode & 07777;
	e->uid = st.st_uid;
	e->gid = st.st_gid;
	if (S_ISREG(st.st_mode)) {
		e->type = SNAP_FILE;
		err = walk_file(w, dfd, name, e->path, e, &st);
	} else if (S_ISLNK(st.st_mode)) {
		e->type = SNAP_SYMLINK;
		err = readlinkat_alloc(dfd, name, &e->target);
		if (err)
			err = fail(w->errmsg, err, "readlink %s: %s", e->path,
				   strerror(-err));
	} else {
		e->type = SNAP_DIR;
		sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				  O_CLOEXEC);
		if (sub < 0)
			return fail(w->errmsg, -errno, "open %s: %s", e->path,
				    strerror(errno));
		/* e may move when the array grows: copy the path first. */
		path = strdup(e->path);
		err = path ? walk_dir(w, sub, path, depth + 1) : -ENOMEM;
		close(sub);
	}
out:
	free(path);
	return err;
}

static int walk_dir(struct walk *w, int dfd, const char *prefix, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, err = 0;

	if (depth > VOL_SNAPSHOT_MAX_DEPTH)
		return fail(w->errmsg, -ELOOP, "%s: deeper than %d levels",
			    prefix ? prefix : ".", VOL_SNAPSHOT_MAX_DEPTH);
	fd = dup(dfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while (!err) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				err = fail(w->errmsg, -errno, "readdir %s: %s",
					   prefix ? prefix : ".",
					   strerror(errno));
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		err = walk_entry(w, dfd, prefix, de->d_name, depth);
	}
	closedir(d);
	return err;
}

static int read_kubelet(int dirfd, char *target, struct vol_snapshot *out,
			char **errmsg)
{
	struct walk w = { .s = out, .errmsg = errmsg };
	struct stat st;
	int tries, tfd = -1, err;

	for (tries = 0; tries < TS_RETRIES; tries++) {
		char *again = NULL;

		if (!sync_is_ts_name(target)) {
			err = fail(errmsg, -EINVAL,
				   "..data points to \"%s\", not a ..<timestamp> dir of the volume",
				   target);
			free(target);
			return err;
		}
		tfd = openat(dirfd, target, O_RDONLY | O_DIRECTORY |
				 O_NOFOLLOW | O_CLOEXEC);
		if (tfd >= 0)
			break;
		err = -errno;
		/* The kubelet removed it after a newer commit: follow. */
		if (err != -ENOENT || readlinkat_alloc(dirfd, SYNC_DATA_LINK, &again)) {
			fail(errmsg, err, "open %s: %s", target, strerror(-err));
			free(target);
			return err;
		}
		if (!strcmp(again, target)) {
			free(again);
			fail(errmsg, err, "open %s: %s", target, strerror(-err));
			free(target);
			return err;
		}
		free(target);
		target = again;
	}
	if (tfd < 0) {
		free(target);
		return fail(errmsg, -ESTALE, "..data keeps moving");
	}
	out->kind = VOL_KUBELET;
	out->data_target = target;
	if (fstat(tfd, &st) == 0)
		out->payload_mode = st.st_mode & 07777;
	err = walk_dir(&w, tfd, NULL, 0);
	close(tfd);
	return err;
}

int vol_snapshot_read(int dirfd, struct vol_snapshot *out, char **errmsg)
{
	struct walk w = { .s = out, .errmsg = errmsg };
	struct stat st;
	char *target = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (errmsg)
		*errmsg = NULL;
	if (fstat(dirfd, &st) < 0)
		return fail(errmsg, -errno, "stat volume: %s", strerror(errno));
	out->root_mode = st.st_mode & 07777;
	err = readlinkat_alloc(dirfd, SYNC_DATA_LINK, &target);
	if (err == 0)
		err = read_kubelet(dirfd, target, out, errmsg);
	else if (err == -ENOENT || err == -EINVAL)
		err = walk_dir(&w, dirfd, NULL, 0);	/* plain tree */
	else
		fail(errmsg, err, "readlink ..data: %s", strerror(-err));
	if (err) {
		vol_snapshot_free(out);
		return err;
	}
	sync_snapshot_sort(out);
	return 0;
}
