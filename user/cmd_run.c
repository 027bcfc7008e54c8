// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* voltrace run [--config FILE] [--mode M] [--log-level L] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "daemon.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: voltrace run [--config FILE] [--mode auto|fentry|kprobe|tracepoint]\n"
		"                    [--log-level error|warn|info|debug]\n"
		"\n"
		"Run the node daemon: watch the configured volume directories in the\n"
		"kernel and replay every committed update to the guest agents.\n"
		"SIGHUP reloads FILE; SIGTERM/SIGINT finish in-flight copies and exit.\n");
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'm' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct daemon_opts o = { 0 };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:m:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.config_path = optarg;
			break;
		case 'm':
			o.mode = optarg;
			break;
		case 'l':
			o.log_level = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "voltrace run: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return daemon_run(&o);
}
