// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * inotify_baseline: what Kata's runtime does today for volumes it copied
 * into a guest without a shared filesystem (FilesystemShare.watchDir,
 * StartFileEventWatcher and copyUpdatedFiles in seeds/001), in C over the
 * same agent client voltrace uses, so the latency benchmark compares the
 * detection strategies and not two RPC stacks:
 *
 *   - watch the volume's current timestamped directory <vol>/..<ts>
 *   - on its removal (IN_DELETE_SELF: the kubelet removes the old ..<ts>
 *     as the last step of an update) read <vol>/..data
 *   - CopyFile the new ..<ts> directory and every file in it, one
 *     blocking call at a time, watch the new ..<ts>
 *   - CopyFile ..data, then a link <vol>/<key> for every key the old
 *     ..<ts> did not have
 *
 * usage: inotify_baseline --agent URL SRC=DEST...
 * The initial copy is done the same way at start (Kata's ShareFile).
 * Prints "ready" on stdout once every volume is copied and watched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "agent_client.h"

struct vol {
	char *src;
	char *dest;
	int wd;
	char **keys;		/* keys of the ..<ts> last copied */
	size_t n_keys;
};

static struct agent_conn *conn;

static char *join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s/%s", a, b) < 0) {
		perror("inotify_baseline: asprintf");
		exit(1);
	}
	return s;
}

static int put(int dirfd, const char *rel, const char *guest)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	int rc = agent_put_entry(conn, dirfd, rel, guest, NULL, &st);

	if (rc < 0)
		fprintf(stderr, "inotify_baseline: copy %s: %s\n", guest,
			ttrpc_status_str(&st));
	ttrpc_status_clear(&st);
	return rc;
}

static bool had_key(const struct vol *v, const char *k)
{
	for (size_t i = 0; i < v->n_keys; i++)
		if (!strcmp(v->keys[i], k))
			return true;
	return false;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* copyUpdatedFiles: the new ..<ts>, its files, ..data, new keys' links. */
static int copy_updated(int ifd, struct vol *v)
{
	char target[NAME_MAX + 1], *tsdir, *gts, *g;
	struct dirent **ents = NULL;
	char **keys = NULL;
	int dfd, n, i, k = 0, rc = -1;
	ssize_t len;

	dfd = open(v->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	len = readlinkat(dfd, "..data", target, sizeof(target) - 1);
	if (len <= 0)
		goto out;
	target[len] = 0;
	tsdir = join(v->src, target);
	gts = join(v->dest, target);
	n = scandir(tsdir, &ents, NULL, by_name);
	if (n < 0 || put(dfd, target, gts) < 0)
		goto out_ts;
	keys = calloc(n, sizeof(*keys));
	for (i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char *rel;

		if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		rel = join(target, name);
		g = join(gts, name);
		rc = put(dfd, rel, g);
		free(rel);
		free(g);
		if (rc < 0)
			goto out_ts;
		keys[k++] = strdup(name);
	}
	v->wd = inotify_add_watch(ifd, tsdir, IN_DELETE_SELF | IN_DELETE |
				  IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |
				  IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF);
	g = join(v->dest, "..data");
	rc = put(dfd, "..data", g);
	free(g);
	for (i = 0; rc == 0 && i < k; i++) {
		if (had_key(v, keys[i]))
			continue;
		g = join(v->dest, keys[i]);
		rc = put(dfd, keys[i], g);
		free(g);
	}
	for (size_t j = 0; j < v->n_keys; j++)
		free(v->keys[j]);
	free(v->keys);
	v->keys = keys;
	v->n_keys = k;
	keys = NULL;
out_ts:
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	free(keys);
	free(tsdir);
	free(gts);
out:
	close(dfd);
	return rc;
}

int main(int argc, char **argv)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_conn_opts o;
	struct vol *vols;
	char buf[65536] __attribute__((aligned(8)));
	int nv = 0, ifd, i;

	if (argc < 4 || strcmp(argv[1], "--agent")) {
		fprintf(stderr, "usage: inotify_baseline --agent URL SRC=DEST...\n");
		return 2;
	}
	agent_conn_opts_default(&o);
	conn = agent_conn_new(argv[2], &o, &st);
	if (!conn) {
		fprintf(stderr, "inotify_baseline: %s: %s\n", argv[2], ttrpc_status_str(&st));
		return 1;
	}
	ifd = inotify_init1(IN_CLOEXEC);
	vols = calloc(argc, sizeof(*vols));
	if (ifd < 0 || !vols)
		return 1;
	for (i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq) {
			fprintf(stderr, "inotify_baseline: %s: want SRC=DEST\n", argv[i]);
			return 2;
		}
		*eq = 0;
		vols[nv].src = argv[i];
		vols[nv].dest = eq + 1;
		if (copy_updated(ifd, &vols[nv]) < 0) {
			fprintf(stderr, "inotify_baseline: initial copy of %s failed\n", argv[i]);
			return 1;
		}
		nv++;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		ssize_t len = read(ifd, buf, sizeof(buf));
		char *p;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			perror("inotify_baseline: read");
			return 1;
		}
		for (p = buf; p < buf + len;) {
			struct inotify_event *e = (struct inotify_event *)p;

			p += sizeof(*e) + e->len;
			if (!(e->mask & IN_DELETE_SELF))
				continue;
			for (i = 0; i < nv; i++)
				if (vols[i].wd == e->wd)
					copy_updated(ifd, &vols[i]);
		}
	}
}
