// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fsops: perform exactly one filesystem operation with a chosen system call,
 * so tracer tests know which syscall (absolute path or dirfd-relative) the
 * kernel saw. Coreutils and busybox pick their own calls.
 *
 *   fsops rename OLD NEW            rename(2)
 *   fsops renameat DIR OLD NEW      renameat(dirfd(DIR), OLD, dirfd(DIR), NEW)
 *   fsops renameat2 OLD NEW         renameat2(AT_FDCWD, OLD, AT_FDCWD, NEW, 0)
 *   fsops unlink PATH               unlink(2)
 *   fsops unlinkat DIR NAME         unlinkat(dirfd(DIR), NAME, 0)
 *   fsops rmdir PATH                rmdir(2)
 *   fsops rmdirat DIR NAME          unlinkat(dirfd(DIR), NAME, AT_REMOVEDIR)
 *   fsops rmtree DIR NAME           remove DIR/NAME recursively the way Go's
 *                                   os.RemoveAll does: unlinkat on dirfds
 *   fsops flood DIR N               N create+rename+unlink rounds in DIR
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);

	if (fd < 0) {
		fprintf(stderr, "fsops: open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

static int rmtree_at(int parent, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if (unlinkat(parent, name, 0) == 0)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rmtree_at(dirfd(d), de->d_name))
			return -1;
	}
	closedir(d);
	return unlinkat(parent, name, AT_REMOVEDIR);
}

static int flood(const char *dir, long n)
{
	int dfd = open_dir(dir);

	for (long i = 0; i < n; i++) {
		int fd = openat(dfd, "f", O_CREAT | O_WRONLY, 0644);

		if (fd < 0)
			return -1;
		close(fd);
		if (renameat(dfd, "f", dfd, "g") || unlinkat(dfd, "g", 0))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "";
	int ret = -1;

	if (!strcmp(op, "rename") && argc == 4)
		ret = rename(argv[2], argv[3]);
	else if (!strcmp(op, "renameat") && argc == 5)
		ret = renameat(open_dir(argv[2]), argv[3], open_dir(argv[2]), argv[4]);
	else if (!strcmp(op, "renameat2") && argc == 4)
		ret = renameat2(AT_FDCWD, argv[2], AT_FDCWD, argv[3], 0);
	else if (!strcmp(op, "unlink") && argc == 3)
		ret = unlink(argv[2]);
	else if (!strcmp(op, "unlinkat") && argc == 4)
		ret = unlinkat(open_dir(argv[2]), argv[3], 0);
	else if (!strcmp(op, "rmdir") && argc == 3)
		ret = rmdir(argv[2]);
	else if (!strcmp(op, "rmdirat") && argc == 4)
		ret = unlinkat(open_dir(argv[2]), argv[3], AT_REMOVEDIR);
	else if (!strcmp(op, "rmtree") && argc == 4)
		ret = rmtree_at(open_dir(argv[2]), argv[3]);
	else if (!strcmp(op, "flood") && argc == 4)
		ret = flood(argv[2], strtol(argv[3], NULL, 10));
	else {
		fprintf(stderr, "usage: fsops rename|renameat|renameat2|unlink|unlinkat|"
			"rmdir|rmdirat|rmtree|flood ARGS (see the source)\n");
		return 2;
	}
	if (ret) {
		fprintf(stderr, "fsops %s: %s\n", op, strerror(errno));
		return 1;
	}
	return 0;
}
