// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* voltrace probe: which attach modes this kernel allows, and why not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>
#include <bpf/libbpf.h>

#include "commands.h"
#include "log.h"
#include "tracer.h"

int cmd_probe(int argc, char **argv)
{
	struct utsname u;
	int working = 0, rb;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: voltrace probe\n\nLoad and attach each mode once and report "
		       "the result. Exit 0 if at least one mode works.\n");
		return EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "voltrace probe: takes no arguments\n");
		return EXIT_USAGE;
	}
	/* libbpf's own warnings are the reasons printed below; keep them quiet. */
	log_set_level(LOG_LVL_ERROR);
	uname(&u);
	rb = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL);
	printf("kernel: %s %s\n", u.release, u.machine);
	printf("btf: %s\n", access("/sys/kernel/btf/vmlinux", R_OK) == 0 ?
	       "yes (/sys/kernel/btf/vmlinux)" : "no (/sys/kernel/btf/vmlinux missing)");
	printf("ringbuf: %s\n", rb == 1 ? "yes" : "no");
	for (int m = 0; m < VT_MODE_MAX; m++) {
		char *reason = NULL;
		int err = tracer_try_mode(m, &reason);

		if (!err) {
			printf("%s: ok\n", tracer_mode_name(m));
			working++;
		} else {
			printf("%s: refused: %s\n", tracer_mode_name(m),
			       reason ? reason : strerror(-err));
		}
		free(reason);
	}
	return working ? EXIT_OK : EXIT_FAIL;
}
