// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* voltrace trace: print the kernel's view of watched directories, copy nothing. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "event_fmt.h"
#include "log.h"
#include "tracer.h"
#include "util.h"

#define TRACE_DEFAULT_BPFFS "/sys/fs/bpf/voltrace-trace"

struct trace_ctx {
	char **dirs;		/* index = watched id - 1 */
	size_t ndirs, cap;
	bool json;
	uint64_t wall_offset_ns;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: voltrace trace [--mode auto|fentry|kprobe|tracepoint] [--json]\n"
		"                      [--bpffs DIR] [--ringbuf-size BYTES] [--dirs-from FILE] DIR...\n"
		"\n"
		"Print every successful rename, unlink and rmdir in the given directories.\n"
		"  --mode M          attach mode (default auto: fentry, kprobe, tracepoint)\n"
		"  --json            one JSON object per line\n"
		"  --bpffs DIR       pin maps and links here (default " TRACE_DEFAULT_BPFFS ")\n"
		"  --ringbuf-size N  ring buffer bytes, a power of two >= 4096 (default 262144)\n"
		"  --dirs-from FILE  also watch the directories listed in FILE, one per line\n");
}

static const char *dir_name(struct trace_ctx *tc, __u32 id)
{
	if (id == 0 || id > tc->ndirs)
		return NULL;
	return tc->dirs[id - 1];
}

static int on_event(void *ctx, const struct vtr_event *e)
{
	struct trace_ctx *tc = ctx;
	struct event_view v = {
		.ev = e,
		.dir = dir_name(tc, e->dir_id),
		.new_dir = dir_name(tc, e->new_dir_id),
		.wall_ns = e->ktime_ns + tc->wall_offset_ns,
	};

	/* rmdir of a watched directory itself: name it by its own path. */
	if (!v.dir && e->self_id)
		v.dir = "";
	if (tc->json)
		event_format_json(stdout, &v);
	else
		event_format_text(stdout, &v);
	/* A closed pipe (| head) ends the trace like SIGINT: pins get removed. */
	if (fflush(stdout) == EOF || ferror(stdout))
		stop = 1;
	return 0;
}

static int add_dir(struct trace_ctx *tc, const char *path)
{
	if (tc->ndirs == tc->cap) {
		size_t cap = tc->cap ? tc->cap * 2 : 16;
		char **d = realloc(tc->dirs, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		tc->dirs = d;
		tc->cap = cap;
	}
	tc->dirs[tc->ndirs] = strdup(path);
	if (!tc->dirs[tc->ndirs])
		return -ENOMEM;
	tc->ndirs++;
	return 0;
}

static int read_dirs_file(struct trace_ctx *tc, const char *file)
{
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int err = 0;

	if (!f) {
		fprintf(stderr, "voltrace trace: --dirs-from %s: %s\n", file, strerror(errno));
		return -errno;
	}
	while (!err && (n = getline(&line, &cap, f)) >= 0) {
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n)
			err = add_dir(tc, line);
	}
	free(line);
	fclose(f);
	return err;
}

static int check_dirs(struct trace_ctx *tc)
{
	for (size_t i = 0; i < tc->ndirs; i++) {
		struct vtr_dir_key key;
		int err = tracer_dir_key(tc->dirs[i], &key);

		if (err) {
			fprintf(stderr, "voltrace trace: %s: %s\n", tc->dirs[i],
				strerror(-err));
			return err;
		}
		if (access(tc->dirs[i], R_OK | X_OK)) {
			fprintf(stderr, "voltrace trace: %s: %s\n", tc->dirs[i],
				strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static void print_counters(struct tracer *t)
{
	__u64 c[VT_COUNTERS_LEN];

	if (tracer_read_counters(t, c))
		return;
	for (int op = 0; op < VT_OP_MAX; op++) {
		const __u64 *o = &c[op * VT_CNT_MAX];

		fprintf(stderr, "%s: seen=%llu matched=%llu submitted=%llu dropped=%llu\n",
			vt_op_name(op), (unsigned long long)o[VT_CNT_SEEN],
			(unsigned long long)o[VT_CNT_MATCHED],
			(unsigned long long)o[VT_CNT_SUBMITTED],
			(unsigned long long)o[VT_CNT_DROPPED]);
	}
	fprintf(stderr, "total: seen=%llu matched=%llu submitted=%llu dropped=%llu\n",
		(unsigned long long)tracer_counter_total(c, VT_CNT_SEEN),
		(unsigned long long)tracer_counter_total(c, VT_CNT_MATCHED),
		(unsigned long long)tracer_counter_total(c, VT_CNT_SUBMITTED),
		(unsigned long long)tracer_counter_total(c, VT_CNT_DROPPED));
}

static int parse_args(int argc, char **argv, struct trace_ctx *tc,
		      struct tracer_opts *opts)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "ringbuf-size", required_argument, NULL, 'r' },
		{ "dirs-from", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "m:jb:r:f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (tracer_parse_mode(optarg, &opts->mode)) {
				fprintf(stderr, "voltrace trace: unknown mode '%s' "
					"(auto, fentry, kprobe, tracepoint)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			tc->json = true;
			break;
		case 'b':
			opts->bpffs_dir = optarg;
			break;
		case 'r':
			errno = 0;
			opts->ringbuf_size = strtoul(optarg, &end, 0);
			if (errno || *end || opts->ringbuf_size < 4096 ||
			    (opts->ringbuf_size & (opts->ringbuf_size - 1))) {
				fprintf(stderr, "voltrace trace: --ringbuf-size '%s': "
					"need a power of two >= 4096\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'f':
			if (read_dirs_file(tc, optarg))
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (add_dir(tc, argv[i]))
			return EXIT_FAIL;
	}
	if (!tc->ndirs) {
		fprintf(stderr, "voltrace trace: name at least one DIR to watch\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int watch_all(struct tracer *t, struct trace_ctx *tc)
{
	for (size_t i = 0; i < tc->ndirs; i++) {
		int err = tracer_watch_dir(t, tc->dirs[i], (__u32)(i + 1), NULL);

		if (err) {
			fprintf(stderr, "voltrace trace: watch %s: %s\n", tc->dirs[i],
				strerror(-err));
			return err;
		}
	}
	return 0;
}

int cmd_trace(int argc, char **argv)
{
	struct tracer_opts opts = { .mode = TRACER_MODE_AUTO, .bpffs_dir = TRACE_DEFAULT_BPFFS };
	struct trace_ctx tc = { 0 };
	struct tracer *t = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	int ret, err;

	ret = parse_args(argc, argv, &tc, &opts);
	if (ret != EXIT_OK)
		goto out;
	if (check_dirs(&tc)) {
		ret = EXIT_USAGE;
		goto out;
	}
	opts.on_event = on_event;
	opts.ctx = &tc;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	err = tracer_open(&opts, &t);
	if (err) {
		fprintf(stderr, "voltrace trace: cannot attach: %s (see 'voltrace probe')\n",
			strerror(-err));
		ret = EXIT_FAIL;
		goto out;
	}
	if (watch_all(t, &tc)) {
		ret = EXIT_FAIL;
		goto out;
	}
	tc.wall_offset_ns = realtime_ns() - now_ns();
	log_info("tracing", "mode", tracer_mode_name(tracer_mode(t)),
		 "dirs", LOG_U64(tc.ndirs), "bpffs", opts.bpffs_dir);
	while (!stop) {
		err = tracer_poll(t, 200);
		if (err < 0 && err != -EINTR) {
			log_error("ring buffer poll", "error", strerror(-err));
			ret = EXIT_FAIL;
			break;
		}
	}
	tracer_consume(t);
	print_counters(t);
out:
	tracer_close(t);
	for (size_t i = 0; i < tc.ndirs; i++)
		free(tc.dirs[i]);
	free(tc.dirs);
	return ret;
}
