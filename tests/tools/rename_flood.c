// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rename_flood DIR COUNT: rename DIR/.flood-a <-> DIR/.flood-b COUNT times
 * as fast as possible, to overflow a small BPF ring buffer on purpose.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *a, *b;
	long i, n;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: rename_flood DIR COUNT\n");
		return 2;
	}
	n = strtol(argv[2], NULL, 10);
	if (asprintf(&a, "%s/.flood-a", argv[1]) < 0 ||
	    asprintf(&b, "%s/.flood-b", argv[1]) < 0)
		return 1;
	fd = open(a, O_CREAT | O_WRONLY, 0644);
	if (fd < 0) {
		fprintf(stderr, "rename_flood: %s: %s\n", a, strerror(errno));
		return 1;
	}
	close(fd);
	for (i = 0; i < n; i++) {
		if (rename(i % 2 ? b : a, i % 2 ? a : b) < 0) {
			fprintf(stderr, "rename_flood: rename: %s\n",
				strerror(errno));
			return 1;
		}
	}
	unlink(n % 2 ? b : a);
	return 0;
}
