// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * voltrace copy SOURCE_DIR --agent URL --dest GUEST_DIR [--timeout S]
 *
 * One-shot copy of a directory into a guest with the host's layout, in
 * kubelet-safe order (see copy_tree.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_client.h"
#include "commands.h"
#include "copy_tree.h"
#include "guest_path.h"
#include "transport.h"
#include "log.h"
#include "util.h"

#define DEFAULT_WINDOW 16

static void usage(FILE *out)
{
	fprintf(out,
		"usage: voltrace copy SOURCE_DIR --agent URL --dest GUEST_DIR [--timeout S] [--window N]\n"
		"\n"
		"Copy SOURCE_DIR into a Kata guest through the agent's CopyFile RPC.\n"
		"  --agent URL    " AGENT_URL_FORMS "\n"
		"  --dest DIR     guest directory below " GUEST_SHARED_ROOT "/\n"
		"  --timeout S    connect and per-RPC deadline in seconds (default 30)\n"
		"  --window N     small files in flight at once (default %d, 1 = none)\n"
		"exit status: 0 copied, 1 agent or copy error, 2 usage error\n",
		DEFAULT_WINDOW);
}

static int parse_uint(const char *s, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

struct copy_args {
	const char *src;
	const char *agent;
	const char *dest;
	long timeout_s;
	long window;
};

static int parse_args(int argc, char **argv, struct copy_args *a)
{
	static const struct option opts[] = {
		{ "agent", required_argument, NULL, 'a' },
		{ "dest", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 't' },
		{ "window", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	a->timeout_s = 30;
	a->window = DEFAULT_WINDOW;
	optind = 1;
	while ((c = getopt_long(argc, argv, "a:d:t:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			a->agent = optarg;
			break;
		case 'd':
			a->dest = optarg;
			break;
		case 't':
			if (parse_uint(optarg, 86400, &a->timeout_s) < 0) {
				fprintf(stderr, "voltrace copy: --timeout wants seconds between 1 and 86400, got \"%s\"\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'w':
			if (parse_uint(optarg, 1024, &a->window) < 0) {
				fprintf(stderr, "voltrace copy: --window wants a number between 1 and 1024, got \"%s\"\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !a->agent || !a->dest) {
		fprintf(stderr, "voltrace copy: need exactly one SOURCE_DIR, --agent and --dest\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	a->src = argv[optind];
	return 0;
}

int cmd_copy(int argc, char **argv)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_counters ctr = { 0 };
	struct agent_conn_opts opts;
	struct agent_conn *conn = NULL;
	struct copy_plan plan = { 0 };
	struct copy_args a = { 0 };
	char *dest = NULL, *err = NULL;
	uint64_t t0;
	int ret, src_fd = -1;

	ret = parse_args(argc, argv, &a);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	ret = EXIT_USAGE;
	if (guest_path_normalize(a.dest, &dest, &err) < 0) {
		fprintf(stderr, "voltrace copy: %s\n", err ? err : "bad --dest");
		goto out;
	}
	agent_conn_opts_default(&opts);
	opts.connect_timeout_ms = (int)a.timeout_s * 1000;
	opts.call_timeout_ms = (int)a.timeout_s * 1000;
	conn = agent_conn_new(a.agent, &opts, &st);
	if (!conn) {
		fprintf(stderr, "voltrace copy: %s\n", ttrpc_status_str(&st));
		goto out;
	}
	ret = EXIT_FAIL;
	src_fd = open(a.src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src_fd < 0) {
		fprintf(stderr, "voltrace copy: open source %s: %s\n", a.src,
			strerror(errno));
		ret = errno == ENOENT || errno == ENOTDIR ? EXIT_USAGE : EXIT_FAIL;
		goto out;
	}
	t0 = now_ns();
	if (copy_plan_build(src_fd, &plan, &st) < 0) {
		fprintf(stderr, "voltrace copy: %s: %s\n", a.src,
			ttrpc_status_str(&st));
		goto out;
	}
	if (agent_conn_connect(conn, &st) < 0 ||
	    copy_plan_run(conn, src_fd, &plan, dest, (unsigned)a.window, &ctr,
			  &st) < 0) {
		fprintf(stderr, "voltrace copy: %s -> %s: %s\n", a.src, dest,
			ttrpc_status_str(&st));
		if (ctr.rpcs)
			fprintf(stderr, "voltrace copy: partial: %llu files, %llu dirs, %llu symlinks, %llu bytes copied before the error\n",
				(unsigned long long)ctr.files,
				(unsigned long long)ctr.dirs,
				(unsigned long long)ctr.symlinks,
				(unsigned long long)ctr.bytes);
		goto out;
	}
	printf("copied %s -> %s: files=%llu dirs=%llu symlinks=%llu bytes=%llu rpcs=%llu seconds=%.3f\n",
	       a.src, dest, (unsigned long long)ctr.files,
	       (unsigned long long)ctr.dirs, (unsigned long long)ctr.symlinks,
	       (unsigned long long)ctr.bytes, (unsigned long long)ctr.rpcs,
	       (double)(now_ns() - t0) / 1e9);
	ret = EXIT_OK;
out:
	copy_plan_release(&plan);
	if (src_fd >= 0)
		close(src_fd);
	agent_conn_free(conn);
	ttrpc_status_clear(&st);
	free(dest);
	free(err);
	return ret;
}
