// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kubelet_writer: one update of a volume the way the kubelet's AtomicWriter
 * does it (pkg/volume/util/atomic_writer.go, summarised in Kata's
 * FilesystemShare comments), independent of voltrace's own code:
 *
 *   1. write the whole payload into a new <dir>/..<YYYY_MM_DD_HH_MM_SS.N>/
 *   2. (--links-before) create user-visible links <key> -> ..data/<key>
 *   3. symlink <dir>/..data_tmp -> ..<ts>
 *   4. rename ..data_tmp -> ..data                       (the commit)
 *   5. (default, links after) create user-visible links for new keys
 *   6. remove the user-visible links of keys no longer in the payload
 *   7. remove the previous ..<ts> tree
 *
 * usage: kubelet_writer [--links-before] [--mode OCTAL] [--keep-old]
 *                       DIR KEY=VALUE|KEY@FILE...
 * KEY may be nested (a/b/c): its top-level component gets the link. The
 * payload is the complete new content: keys missing from it are deleted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct key {
	char *name;
	const char *value;	/* literal, or NULL when from_file */
	const char *from_file;
};

static void die(const char *what, const char *path)
{
	fprintf(stderr, "kubelet_writer: %s %s: %s\n", what, path,
		strerror(errno));
	exit(1);
}

static char *xasprintf(const char *fmt, const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, fmt, a, b) < 0) {
		perror("asprintf");
		exit(1);
	}
	return s;
}

static void mkdirs_for(const char *base, const char *rel)
{
	char *p = xasprintf("%s/%s", base, rel);
	char *slash = p + strlen(base) + 1;

	while ((slash = strchr(slash, '/'))) {
		*slash = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			die("mkdir", p);
		*slash++ = '/';
	}
	free(p);
}

static void copy_into(int out, const char *src, const char *path)
{
	char buf[65536];
	ssize_t n;
	int in = open(src, O_RDONLY);

	if (in < 0)
		die("open", src);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			die("write", path);
	if (n < 0)
		die("read", src);
	close(in);
}

static void write_key(const char *tsdir, const struct key *k, mode_t mode)
{
	char *path = xasprintf("%s/%s", tsdir, k->name);
	int fd;

	mkdirs_for(tsdir, k->name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		die("create", path);
	if (k->from_file)
		copy_into(fd, k->from_file, path);
	else if (write(fd, k->value, strlen(k->value)) !=
		 (ssize_t)strlen(k->value))
		die("write", path);
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || close(fd) < 0)
		die("finish", path);
	free(path);
}

static char *top_of(const char *name)
{
	char *t = strdup(name);
	char *slash = t ? strchr(t, '/') : NULL;

	if (slash)
		*slash = '\0';
	return t;
}

static bool in_payload(const struct key *keys, int n, const char *top)
{
	int i;

	for (i = 0; i < n; i++) {
		char *t = top_of(keys[i].name);
		bool same = t && strcmp(t, top) == 0;

		free(t);
		if (same)
			return true;
	}
	return false;
}

static void make_links(const char *dir, const struct key *keys, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		char *top = top_of(keys[i].name);
		char *link = xasprintf("%s/%s", dir, top);
		char *target = xasprintf("%s/%s", "..data", top);

		if (symlink(target, link) < 0 && errno != EEXIST)
			die("symlink", link);
		free(top);
		free(link);
		free(target);
	}
}

/* User-visible links whose key left the payload. */
static void remove_old_links(const char *dir, const struct key *keys, int n)
{
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		die("opendir", dir);
	while ((de = readdir(d))) {
		char *path;

		if (!strcmp(de->d_name, ".") || !strncmp(de->d_name, "..", 2))
			continue;
		if (in_payload(keys, n, de->d_name))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		/* Only user-visible links are the writer's to remove. */
		if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode)) {
			free(path);
			continue;
		}
		if (unlink(path) < 0 && errno != ENOENT)
			die("unlink", path);
		free(path);
	}
	closedir(d);
}

static void remove_tree(const char *path)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0)
			die("unlink", path);
		return;
	}
	d = opendir(path);
	if (!d)
		die("opendir", path);
	while ((de = readdir(d))) {
		char *sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		sub = xasprintf("%s/%s", path, de->d_name);
		remove_tree(sub);
		free(sub);
	}
	closedir(d);
	if (rmdir(path) < 0)
		die("rmdir", path);
}

static char *new_ts_name(void)
{
	struct timespec ts;
	struct tm tm;
	char buf[64], *s;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "..%Y_%m_%d_%H_%M_%S", &tm);
	if (asprintf(&s, "%s.%09ld%d", buf, ts.tv_nsec, (int)getpid() % 100) < 0)
		exit(1);
	return s;
}

static int parse_keys(int argc, char **argv, struct key *keys)
{
	int i;

	for (i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		char *at = strchr(argv[i], '@');
		char *sep = eq && (!at || eq < at) ? eq : at;

		if (!sep || sep == argv[i] || argv[i][0] == '/' ||
		    !strncmp(argv[i], "..", 2)) {
			fprintf(stderr, "kubelet_writer: bad key spec \"%s\"\n",
				argv[i]);
			exit(2);
		}
		keys[i].name = strndup(argv[i], sep - argv[i]);
		if (sep == eq)
			keys[i].value = sep + 1;
		else
			keys[i].from_file = sep + 1;
	}
	return argc;
}

int main(int argc, char **argv)
{
	bool links_before = false, keep_old = false;
	mode_t mode = 0644;
	char old[4096], *dir, *ts, *tsdir, *tmp, *data, *oldpath;
	struct key *keys;
	ssize_t n;
	int i = 1, nkeys;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--links-before"))
			links_before = true;
		else if (!strcmp(argv[i], "--keep-old"))
			keep_old = true;
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			mode = strtoul(argv[++i], NULL, 8);
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: kubelet_writer [--links-before] [--mode OCTAL] [--keep-old] DIR KEY=VALUE|KEY@FILE...\n");
		return 2;
	}
	dir = argv[i++];
	keys = calloc(argc, sizeof(*keys));
	nkeys = parse_keys(argc - i, argv + i, keys);

	n = readlink(xasprintf("%s/%s", dir, "..data"), old, sizeof(old) - 1);
	old[n > 0 ? n : 0] = '\0';

	ts = new_ts_name();
	tsdir = xasprintf("%s/%s", dir, ts);
	if (mkdir(tsdir, 0755) < 0)
		die("mkdir", tsdir);
	for (i = 0; i < nkeys; i++)
		write_key(tsdir, &keys[i], mode);

	if (links_before)
		make_links(dir, keys, nkeys);
	tmp = xasprintf("%s/%s", dir, "..data_tmp");
	data = xasprintf("%s/%s", dir, "..data");
	unlink(tmp);
	if (symlink(ts, tmp) < 0)
		die("symlink", tmp);
	if (rename(tmp, data) < 0)
		die("rename", tmp);
	if (!links_before)
		make_links(dir, keys, nkeys);
	remove_old_links(dir, keys, nkeys);
	if (old[0] && strcmp(old, ts) && !keep_old) {
		oldpath = xasprintf("%s/%s", dir, old);
		remove_tree(oldpath);
		free(oldpath);
	}
	return 0;
}
