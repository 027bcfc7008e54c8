// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * opsloop: the hot-path overhead workload. A tight create-rename-unlink
 * loop in one directory (which nobody watches) for a fixed time; prints
 * the number of completed loops per second. Every loop is one
 * openat(O_CREAT) + close + renameat + unlinkat, i.e. exactly the calls
 * voltrace's programs sit on (rename, unlink) plus a create.
 *
 * usage: opsloop DIR SECONDS
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int one_loop(int dfd)
{
	int fd = openat(dfd, "a", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	close(fd);
	if (renameat(dfd, "a", dfd, "b") < 0)
		return -1;
	return unlinkat(dfd, "b", 0);
}

int main(int argc, char **argv)
{
	double secs, t0, t;
	unsigned long n = 0;
	int dfd, i;

	if (argc != 3 || (secs = atof(argv[2])) <= 0) {
		fprintf(stderr, "usage: opsloop DIR SECONDS\n");
		return 2;
	}
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "opsloop: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	t0 = now_s();
	do {
		for (i = 0; i < 64; i++) {
			if (one_loop(dfd) < 0) {
				fprintf(stderr, "opsloop: %s: %s\n", argv[1],
					strerror(errno));
				return 1;
			}
		}
		n += 64;
		t = now_s();
	} while (t - t0 < secs);
	printf("%.0f\n", n / (t - t0));
	return 0;
}
