// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * treecmp [--ignore PATTERN]... [--owner] A B
 *
 * Compare two directory trees without following symlinks: entry names,
 * types, permission bits (07777), regular file content, symlink targets,
 * and with --owner also uid/gid. The roots' own modes are not compared
 * (they are usually a mount point and a scratch directory). PATTERN is an
 * fnmatch(3) pattern matched against each entry's name and its path
 * relative to the root; matching entries are skipped on both sides.
 * Prints one line per difference; exit 0 same, 1 different, 2 error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char **ignores;
static size_t n_ignores;
static bool cmp_owner;
static unsigned long differences;
static bool failed;

static void diff(const char *fmt, const char *rel, const char *extra)
{
	printf(fmt, *rel ? rel : ".", extra ? extra : "");
	putchar('\n');
	differences++;
}

static bool ignored(const char *name, const char *rel)
{
	for (size_t i = 0; i < n_ignores; i++)
		if (!fnmatch(ignores[i], name, 0) || !fnmatch(ignores[i], rel, 0))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir `path`; NULL on error (reported). */
static char **list(const char *path, size_t *n)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char **v = NULL;
	size_t cap = 0;

	*n = 0;
	if (!d) {
		fprintf(stderr, "treecmp: opendir %s: %s\n", path, strerror(errno));
		failed = true;
		return NULL;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			v = realloc(v, cap * sizeof(*v));
			if (!v) {
				perror("treecmp");
				exit(2);
			}
		}
		v[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_str);
	return v ? v : calloc(1, sizeof(*v));
}

static char *join(const char *a, const char *b)
{
	char *p;

	if (!*a)
		return strdup(b);
	if (asprintf(&p, "%s/%s", a, b) < 0) {
		perror("treecmp");
		exit(2);
	}
	return p;
}

static int same_content(const char *pa, const char *pb, const char *rel)
{
	static char ba[65536], bb[65536];
	int fa = open(pa, O_RDONLY | O_CLOEXEC), fb = open(pb, O_RDONLY | O_CLOEXEC);
	int same = 1;

	if (fa < 0 || fb < 0) {
		fprintf(stderr, "treecmp: open %s: %s\n", fa < 0 ? pa : pb,
			strerror(errno));
		failed = true;
		same = -1;
		goto out;
	}
	for (;;) {
		ssize_t na = read(fa, ba, sizeof(ba));
		ssize_t nb = na < 0 ? 0 : read(fb, bb, (size_t)na ? (size_t)na : sizeof(bb));

		if (na < 0 || nb < 0) {
			fprintf(stderr, "treecmp: read %s: %s\n", rel, strerror(errno));
			failed = true;
			same = -1;
			break;
		}
		/* Short reads on regular files only happen at EOF. */
		if (na != nb || memcmp(ba, bb, (size_t)na)) {
			same = 0;
			break;
		}
		if (na == 0)
			break;
	}
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "char device";
	case S_IFBLK: return "block device";
	}
	return "unknown";
}

static void compare_dir(const char *ra, const char *rb, const char *rel);

static void compare_entry(const char *ra, const char *rb, const char *rel)
{
	char *pa = join(ra, rel), *pb = join(rb, rel);
	struct stat sa, sb;
	char buf[128];

	if (lstat(pa, &sa) < 0 || lstat(pb, &sb) < 0) {
		fprintf(stderr, "treecmp: lstat %s: %s\n", rel, strerror(errno));
		failed = true;
		goto out;
	}
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
		snprintf(buf, sizeof(buf), "%s vs %s", type_name(sa.st_mode),
			 type_name(sb.st_mode));
		diff("type differs: %s (%s)", rel, buf);
		goto out;
	}
	if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777)) {
		snprintf(buf, sizeof(buf), "%04o vs %04o", sa.st_mode & 07777,
			 sb.st_mode & 07777);
		diff("mode differs: %s (%s)", rel, buf);
	}
	if (cmp_owner && (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid)) {
		snprintf(buf, sizeof(buf), "%u:%u vs %u:%u", sa.st_uid,
			 sa.st_gid, sb.st_uid, sb.st_gid);
		diff("owner differs: %s (%s)", rel, buf);
	}
	if (S_ISREG(sa.st_mode)) {
		if (sa.st_size != sb.st_size) {
			snprintf(buf, sizeof(buf), "%lld vs %lld bytes",
				 (long long)sa.st_size, (long long)sb.st_size);
			diff("size differs: %s (%s)", rel, buf);
		} else if (same_content(pa, pb, rel) == 0) {
			diff("content differs: %s%s", rel, NULL);
		}
	} else if (S_ISLNK(sa.st_mode)) {
		char ta[4096], tb[4096];
		ssize_t na = readlink(pa, ta, sizeof(ta) - 1);
		ssize_t nb = readlink(pb, tb, sizeof(tb) - 1);

		if (na < 0 || nb < 0) {
			fprintf(stderr, "treecmp: readlink %s: %s\n", rel,
				strerror(errno));
			failed = true;
			goto out;
		}
		ta[na] = tb[nb] = '\0';
		if (strcmp(ta, tb)) {
			char *m;

			if (asprintf(&m, "%s vs %s", ta, tb) >= 0) {
				diff("symlink target differs: %s (%s)", rel, m);
				free(m);
			}
		}
	} else if (S_ISDIR(sa.st_mode)) {
		compare_dir(ra, rb, rel);
	}
out:
	free(pa);
	free(pb);
}

static void compare_dir(const char *ra, const char *rb, const char *rel)
{
	char *pa = join(ra, rel), *pb = join(rb, rel);
	size_t na, nb, i = 0, j = 0;
	char **la = list(pa, &na), **lb = list(pb, &nb);

	if (!la || !lb)
		goto out;
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(la[i], lb[j]);
		const char *name = c <= 0 ? la[i] : lb[j];
		char *child = join(rel, name);

		if (!ignored(name, child)) {
			if (c < 0)
				diff("only in A: %s%s", child, NULL);
			else if (c > 0)
				diff("only in B: %s%s", child, NULL);
			else
				compare_entry(ra, rb, child);
		}
		free(child);
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
out:
	for (i = 0; la && i < na; i++)
		free(la[i]);
	for (j = 0; lb && j < nb; j++)
		free(lb[j]);
	free(la);
	free(lb);
	free(pa);
	free(pb);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: treecmp [--ignore PATTERN]... [--owner] A B\n"
		"exit status: 0 same, 1 different, 2 error\n");
}

int main(int argc, char **argv)
{
	const char *roots[2];
	int nroots = 0;
	struct stat st;

	ignores = calloc((size_t)argc, sizeof(*ignores));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ignore") && i + 1 < argc) {
			ignores[n_ignores++] = argv[++i];
		} else if (!strncmp(argv[i], "--ignore=", 9)) {
			ignores[n_ignores++] = argv[i] + 9;
		} else if (!strcmp(argv[i], "--owner")) {
			cmp_owner = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || nroots == 2) {
			usage(stderr);
			return 2;
		} else {
			roots[nroots++] = argv[i];
		}
	}
	if (nroots != 2) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < 2; i++) {
		if (stat(roots[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "treecmp: %s: not a directory\n", roots[i]);
			return 2;
		}
	}
	compare_dir(roots[0], roots[1], "");
	if (failed)
		return 2;
	if (differences) {
		printf("%lu difference(s) between %s and %s\n", differences,
		       roots[0], roots[1]);
		return 1;
	}
	return 0;
}
