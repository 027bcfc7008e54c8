/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Subcommands of the voltrace binary; each lives in cmd_<name>.c. */
#ifndef VT_COMMANDS_H
#define VT_COMMANDS_H

/* Exit codes shared by every subcommand. */
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

int cmd_run(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_probe(int argc, char **argv);

#endif /* VT_COMMANDS_H */
