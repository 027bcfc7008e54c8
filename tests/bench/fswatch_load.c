// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fswatch_load: the other ways a node agent could watch volumes, held
 * open while opsloop runs, so their cost on unrelated work can be
 * compared with voltrace's.
 *
 *   fswatch_load inotify DIRS_FILE   one inotify instance watching every
 *                                    directory listed (one per line) for
 *                                    what Kata's fsnotify watcher asks
 *   fswatch_load fanotify PATH       one fanotify group with a filesystem
 *                                    mark (FAN_MARK_FILESYSTEM) on PATH's
 *                                    filesystem for renames, deletes and
 *                                    creates, reporting directory fid +
 *                                    name (what a dir filter would need);
 *                                    events are read and discarded
 *
 * Prints "ready N" on stdout once set up, then reads events until killed.
 * A refused fanotify setup prints "refused: <step>: <error>" and exits 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <unistd.h>

#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000
#endif
#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000
#endif

static void drain(int fd)
{
	static char buf[65536] __attribute__((aligned(8)));

	for (;;) {
		if (read(fd, buf, sizeof(buf)) < 0 && errno != EINTR)
			exit(1);
	}
}

static int run_inotify(const char *list)
{
	FILE *f = fopen(list, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned long n = 0;
	int fd;

	if (!f) {
		fprintf(stderr, "fswatch_load: %s: %s\n", list, strerror(errno));
		return 1;
	}
	fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0) {
		perror("fswatch_load: inotify_init1");
		return 1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = 0;
		if (!*line)
			continue;
		/* fsnotify.Watcher.Add's mask in Go's fsnotify. */
		if (inotify_add_watch(fd, line, IN_MOVED_TO | IN_MOVED_FROM |
				      IN_CREATE | IN_ATTRIB | IN_MODIFY |
				      IN_MOVE_SELF | IN_DELETE |
				      IN_DELETE_SELF) < 0) {
			fprintf(stderr, "fswatch_load: watch %s: %s\n", line,
				strerror(errno));
			return 1;
		}
		n++;
	}
	free(line);
	fclose(f);
	printf("ready %lu\n", n);
	fflush(stdout);
	drain(fd);
	return 0;
}

static int run_fanotify(const char *path)
{
	unsigned int init_flags = FAN_CLASS_NOTIF | FAN_CLOEXEC |
				  FAN_REPORT_DFID_NAME | FAN_REPORT_FID |
				  FAN_REPORT_TARGET_FID;
	uint64_t mask = FAN_RENAME | FAN_DELETE | FAN_CREATE | FAN_MOVED_FROM |
			FAN_MOVED_TO | FAN_ONDIR;
	int fd = fanotify_init(init_flags, O_RDONLY | O_LARGEFILE);

	if (fd < 0) {
		printf("refused: fanotify_init(FAN_REPORT_DFID_NAME_TARGET): %s\n",
		       strerror(errno));
		return 3;
	}
	if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask,
			  AT_FDCWD, path) < 0) {
		/* Older kernels: no FAN_RENAME; try without it. */
		int err = errno;

		mask &= ~(uint64_t)FAN_RENAME;
		if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask,
				  AT_FDCWD, path) < 0) {
			printf("refused: fanotify_mark(FAN_MARK_FILESYSTEM) on %s: %s\n",
			       path, strerror(err));
			return 3;
		}
		printf("# FAN_RENAME refused (%s), marked without it\n",
		       strerror(err));
	}
	printf("ready 1\n");
	fflush(stdout);
	drain(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "inotify"))
		return run_inotify(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "fanotify"))
		return run_fanotify(argv[2]);
	fprintf(stderr, "usage: fswatch_load inotify DIRS_FILE | fanotify PATH\n");
	return 2;
}
