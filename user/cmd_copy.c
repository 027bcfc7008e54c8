// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Placeholder until the owning issue lands. */
#include <stdio.h>
#include "commands.h"

int cmd_copy(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "voltrace copy: not implemented yet\n");
	return EXIT_FAIL;
}
