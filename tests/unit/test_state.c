// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* State file: round trip, atomic replacement, corrupt files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "state.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/vt-state-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char *cmd;

	(void)state;
	if (asprintf(&cmd, "rm -rf '%s'", dir) < 0)
		return -1;
	if (system(cmd) != 0) {
		free(cmd);
		return -1;
	}
	free(cmd);
	return 0;
}

static char *path_in(const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static size_t count_entries(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(dd);
	while ((de = readdir(dd))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	}
	closedir(dd);
	return n;
}

static void test_missing_is_empty(void **state)
{
	struct state_watch *w = (void *)1;
	char *p = path_in("none.json"), *err = NULL;
	size_t n = 7;

	(void)state;
	assert_int_equal(state_load(p, &w, &n, &err), 0);
	assert_null(w);
	assert_int_equal(n, 0);
	assert_null(err);
	free(p);
}

static void test_round_trip(void **state)
{
	struct state_watch in[] = {
		{ "/var/lib/kubelet/pods/u/volumes/kubernetes.io~configmap/cm",
		  "vsock://3:1024", "/run/kata-containers/shared/containers/c/cm" },
		{ "/tmp/with \"quotes\" and\nnewline\tand\\backslash",
		  "unix:///tmp/agent.sock", "/run/kata-containers/shared/containers/ü/ñ" },
		{ "/x/../not-normalised//", "hvsock:///run/kata.hvsock:1024",
		  "/run/kata-containers/shared/containers/a b" },
	};
	char *p = path_in("sub/dir/state.json"), *err = NULL;
	struct state_watch *out;
	struct stat st;
	size_t n;

	(void)state;
	/* Creates the missing parents (like /run/voltrace), 0755. */
	assert_int_equal(state_save(p, in, 3, &err), 0);
	assert_null(err);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(state_load(p, &out, &n, &err), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(out[i].source, in[i].source);
		assert_string_equal(out[i].agent, in[i].agent);
		assert_string_equal(out[i].dest, in[i].dest);
	}
	state_watches_free(out, n);

	/* Replacing with an empty list; no temp file left behind. */
	assert_int_equal(state_save(p, NULL, 0, &err), 0);
	assert_int_equal(state_load(p, &out, &n, &err), 0);
	assert_int_equal(n, 0);
	state_watches_free(out, n);
	free(p);
	p = path_in("sub/dir");
	assert_int_equal(count_entries(p), 1);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	free(p);
}

static void test_atomic_replace(void **state)
{
	struct state_watch a = { "/a", "vsock://3:1", "/run/kata-containers/shared/containers/a" };
	struct state_watch b = { "/b", "vsock://3:1", "/run/kata-containers/shared/containers/b" };
	char *p = path_in("state.json"), *err = NULL;
	struct state_watch *out;
	struct stat st1, st2;
	size_t n;

	(void)state;
	assert_int_equal(state_save(p, &a, 1, &err), 0);
	assert_int_equal(stat(p, &st1), 0);
	assert_int_equal(state_save(p, &b, 1, &err), 0);
	assert_int_equal(stat(p, &st2), 0);
	/* A new inode replaced the old one: written aside, then renamed. */
	assert_true(st1.st_ino != st2.st_ino);
	assert_int_equal(state_load(p, &out, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].source, "/b");
	state_watches_free(out, n);
	assert_int_equal(count_entries(dir), 1);
	free(p);
}

static void test_save_failure_cleans_up(void **state)
{
	struct state_watch a = { "/a", "vsock://3:1", "/run/kata-containers/shared/containers/a" };
	char *p, *err = NULL;

	(void)state;
	/* The target is a directory: rename fails, the temp file must go. */
	p = path_in("isdir");
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(state_save(p, &a, 1, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, "rename"));
	free(err);
	assert_int_equal(count_entries(dir), 1);
	free(p);

	/* Parent is a regular file. */
	p = path_in("file");
	write_file(p, "x");
	free(p);
	p = path_in("file/state.json");
	assert_int_equal(state_save(p, &a, 1, &err), -1);
	assert_non_null(strstr(err, "Not a directory"));
	free(err);
	free(p);
}

static void test_corrupt(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} cases[] = {
		{ "", "truncated JSON" },
		{ "{\"version\": 1, \"watches\": [", "truncated JSON" },
		{ "\x01\x02garbage", "corrupt (" },
		{ "{\"version\": 1, \"watches\": []} {}", "trailing data" },
		{ "[]", "top level is not a JSON object" },
		{ "{\"watches\": []}", "unsupported \"version\"" },
		{ "{\"version\": 2, \"watches\": []}", "unsupported \"version\"" },
		{ "{\"version\": 1}", "\"watches\" is not a list" },
		{ "{\"version\": 1, \"watches\": {}}", "\"watches\" is not a list" },
		{ "{\"version\": 1, \"watches\": [{\"source\": \"/a\", \"agent\": \"vsock://3:1\"}]}",
		  "watch #1 lacks" },
		{ "{\"version\": 1, \"watches\": [{\"source\": \"/a\", \"agent\": \"x\", \"dest\": 5}]}",
		  "watch #1 lacks" },
		{ "{\"version\": 1, \"watches\": [{\"source\": \"/a\", \"agent\": \"x\", \"dest\": \"/d\"}, 3]}",
		  "watch #2 lacks" },
		{ "{\"version\": 1, \"watches\": [{\"source\": \"/a\\u0000b\", \"agent\": \"x\", \"dest\": \"/d\"}]}",
		  "watch #1 lacks" },
		{ "{\"version\": 1, \"watches\": [{\"source\": \"\", \"agent\": \"x\", \"dest\": \"/d\"}]}",
		  "watch #1 lacks" },
	};
	char *p = path_in("corrupt.json");

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct state_watch *out = (void *)1;
		char *err = NULL;
		size_t n = 9;

		write_file(p, cases[i].text);
		if (state_load(p, &out, &n, &err) != -1 || !err ||
		    !strstr(err, p) || !strstr(err, cases[i].why)) {
			print_error("case %zu: got \"%s\", want \"%s\"\n", i,
				    err ? err : "(null)", cases[i].why);
			fail();
		}
		assert_null(out);
		assert_int_equal(n, 0);
		free(err);
	}
	/* Trailing whitespace and unknown extra keys are fine. */
	write_file(p, "{\"version\": 1, \"comment\": \"x\", \"watches\": []}\n\n");
	{
		struct state_watch *out;
		char *err = NULL;
		size_t n;

		assert_int_equal(state_load(p, &out, &n, &err), 0);
		assert_int_equal(n, 0);
		state_watches_free(out, n);
	}
	free(p);
}

static void test_unreadable(void **state)
{
	char *p = path_in("adir"), *err = NULL;
	struct state_watch *out;
	size_t n;

	(void)state;
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(state_load(p, &out, &n, &err), -1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_non_null(strstr(err, p));
	free(err);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_missing_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_failure_cleans_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable, setup, teardown),
	};

	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
