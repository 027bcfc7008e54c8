// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kw_bench: the kubelet side of the latency and burst benchmarks. Each
 * update is one AtomicWriter update (new <dir>/..<ts>/ with every key,
 * ..data_tmp -> ..<ts>, rename over ..data = the commit, links of new
 * keys, old ..<ts> removed). The ..<ts> name ends in the update's
 * sequence number so acknowledgements at the peer can be matched to it.
 *
 *   kw_bench [--keys K] [--size BYTES] [--interval-us U] [--rounds N] DIR...
 *
 * Runs N rounds; a round updates every DIR once, in order, sleeping U
 * microseconds after each update (0: as fast as possible). Prints one line
 * per update: "<dir index> <..ts name> <commit time, CLOCK_REALTIME ns>"
 * (realtime because the Go peer stamps its acks with time.Now()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int keys = 10;
static size_t size = 1024;

static void die(const char *what, const char *dir, const char *name)
{
	fprintf(stderr, "kw_bench: %s %s/%s: %s\n", what, dir, name, strerror(errno));
	exit(1);
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void remove_ts(int dfd, const char *dir, const char *ts)
{
	char name[160];

	for (int k = 0; k < keys; k++) {
		snprintf(name, sizeof(name), "%s/key%02d", ts, k);
		if (unlinkat(dfd, name, 0) < 0)
			die("unlink", dir, name);
	}
	if (unlinkat(dfd, ts, AT_REMOVEDIR) < 0)
		die("rmdir", dir, ts);
}

static void update(const char *dir, int idx, unsigned long seq, char *payload)
{
	char ts[64], old[64], name[160];
	struct tm tm;
	time_t t = time(NULL);
	unsigned long long commit;
	ssize_t olen;
	int dfd, fd, k;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		die("open", dir, "");
	gmtime_r(&t, &tm);
	snprintf(ts, sizeof(ts), "..%04d_%02d_%02d_%02d_%02d_%02d.%lu",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, seq);
	olen = readlinkat(dfd, "..data", old, sizeof(old) - 1);
	old[olen > 0 ? olen : 0] = 0;
	if (mkdirat(dfd, ts, 0755) < 0)
		die("mkdir", dir, ts);
	for (k = 0; k < keys; k++) {
		snprintf(name, sizeof(name), "%s/key%02d", ts, k);
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create", dir, name);
		snprintf(payload, size, "%s key%02d update %lu\n", dir, k, seq);
		if (write(fd, payload, size) != (ssize_t)size)
			die("write", dir, name);
		close(fd);
	}
	unlinkat(dfd, "..data_tmp", 0);
	if (symlinkat(ts, dfd, "..data_tmp") < 0)
		die("symlink", dir, "..data_tmp");
	if (renameat(dfd, "..data_tmp", dfd, "..data") < 0)
		die("rename", dir, "..data");
	commit = now_ns();
	for (k = 0; k < keys; k++) {
		char target[64];

		snprintf(name, sizeof(name), "key%02d", k);
		snprintf(target, sizeof(target), "..data/key%02d", k);
		if (symlinkat(target, dfd, name) < 0 && errno != EEXIST)
			die("symlink", dir, name);
	}
	if (old[0])
		remove_ts(dfd, dir, old);
	close(dfd);
	printf("%d %s %llu\n", idx, ts, commit);
}

int main(int argc, char **argv)
{
	unsigned long interval_us = 0, rounds = 1, seq = 0;
	char *payload;
	int i, first;

	for (i = 1; i < argc && argv[i][0] == '-'; i += 2) {
		if (i + 1 >= argc)
			break;
		if (!strcmp(argv[i], "--keys"))
			keys = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--size"))
			size = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--interval-us"))
			interval_us = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = strtoul(argv[i + 1], NULL, 10);
		else
			break;
	}
	first = i;
	if (first >= argc || keys < 1 || keys > 99 || size < 64) {
		fprintf(stderr, "usage: kw_bench [--keys K] [--size BYTES] "
			"[--interval-us U] [--rounds N] DIR...\n");
		return 2;
	}
	payload = calloc(1, size);
	if (!payload)
		return 1;
	memset(payload, 'x', size);
	/* Sequence numbers keep growing across invocations of one run. */
	if (getenv("KW_SEQ_BASE"))
		seq = strtoul(getenv("KW_SEQ_BASE"), NULL, 10);
	for (unsigned long r = 0; r < rounds; r++) {
		for (i = first; i < argc; i++) {
			update(argv[i], i - first, ++seq, payload);
			if (interval_us) {
				fflush(stdout);
				usleep(interval_us);
			}
		}
	}
	return 0;
}
