// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Watch registry: validation, sharing, removal, identity re-checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "control_server.h"
#include "registry.h"

#define DEST1 "/run/kata-containers/shared/containers/c1/vol"
#define DEST2 "/run/kata-containers/shared/containers/c2/vol"
#define AGENT "unix:///run/vt-test-agent.sock"

struct fx {
	char *root;		/* allowed_sources root */
	char *outside;
	char *vol;		/* a volume dir under root */
	struct registry reg;
};

static char *cat(const char *a, const char *b)
{
	char *s;

	assert_true(asprintf(&s, "%s%s", a, b) > 0);
	return s;
}

static int run2(const char *a, const char *b)
{
	char *cmd = cat(a, b);
	int rc = system(cmd);

	free(cmd);
	return rc;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/vt-test-reg-XXXXXX";
	char *base = strdup(mkdtemp(tmpl));

	f->root = cat(base, "/pods");
	f->outside = cat(base, "/outside");
	f->vol = cat(base, "/pods/uid/volumes/cm/vol");
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	assert_int_equal(run2("mkdir -p ", f->vol), 0);
	assert_int_equal(registry_init(&f->reg, NULL, &f->root, 1), 0);
	free(base);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char *cmd = cat("rm -rf ", f->root);

	registry_free(&f->reg);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	rmdir(f->outside);
	cmd = strdup(f->root);
	*strrchr(cmd, '/') = '\0';
	rmdir(cmd);
	free(cmd);
	free(f->root);
	free(f->outside);
	free(f->vol);
	free(f);
	return 0;
}

static void expect_refused(struct fx *f, const char *src, const char *agent,
			   const char *dest, int code, const char *needle)
{
	struct reg_dest *d = NULL;
	char *err = NULL;

	assert_int_equal(registry_add(&f->reg, src, agent, dest, WATCH_API,
				      &d, &err), code);
	assert_non_null(err);
	if (!strstr(err, needle))
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
	free(err);
	assert_int_equal(registry_count_dests(&f->reg), 0);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	char *file = cat(f->root, "/file");
	char *escape = cat(f->root, "/escape");
	char *missing = cat(f->root, "/missing");

	assert_int_equal(run2("touch ", file), 0);
	assert_int_equal(symlink(f->outside, escape), 0);
	expect_refused(f, f->outside, AGENT, DEST1, CONTROL_INVALID_ARGUMENT,
		       "allowed_sources");
	expect_refused(f, escape, AGENT, DEST1, CONTROL_INVALID_ARGUMENT,
		       "allowed_sources");
	expect_refused(f, f->root, AGENT, DEST1, CONTROL_INVALID_ARGUMENT,
		       "allowed_sources");
	expect_refused(f, missing, AGENT, DEST1, CONTROL_NOT_FOUND,
		       "No such file");
	expect_refused(f, file, AGENT, DEST1, CONTROL_INVALID_ARGUMENT,
		       "not a directory");
	expect_refused(f, "relative/dir", AGENT, DEST1,
		       CONTROL_INVALID_ARGUMENT, "absolute");
	expect_refused(f, f->vol, AGENT, "/etc/x", CONTROL_INVALID_ARGUMENT,
		       "outside");
	expect_refused(f, f->vol, AGENT,
		       "/run/kata-containers/shared/containers/../../x",
		       CONTROL_INVALID_ARGUMENT, "dest");
	expect_refused(f, f->vol, "http://x:1", DEST1,
		       CONTROL_INVALID_ARGUMENT, "agent");
	expect_refused(f, f->vol, "", DEST1, CONTROL_INVALID_ARGUMENT,
		       "agent");
	free(file);
	free(escape);
	free(missing);
}

static void test_share_and_remove(void **state)
{
	struct fx *f = *state;
	struct reg_dest *d1, *d2, *d3;
	char *other = cat(f->root, "/uid/volumes/cm/other");
	char *err = NULL;

	assert_int_equal(run2("mkdir -p ", other), 0);
	assert_int_equal(registry_add(&f->reg, f->vol, AGENT, DEST1,
				      WATCH_API, &d1, &err), CONTROL_OK);
	assert_int_equal(registry_add(&f->reg, f->vol, AGENT, DEST2 "/",
				      WATCH_CONFIG, &d2, &err), CONTROL_OK);
	assert_int_equal(registry_add(&f->reg, other, AGENT, DEST1,
				      WATCH_API, &d3, &err), CONTROL_OK);
	/* One source for both dests, one agent for all three. */
	assert_ptr_equal(d1->src, d2->src);
	assert_ptr_not_equal(d1->src, d3->src);
	assert_ptr_equal(d1->agent, d3->agent);
	assert_int_equal(d1->agent->refs, 3);
	assert_string_equal(d2->dest, DEST2);
	assert_int_equal(registry_count_dests(&f->reg), 3);
	assert_int_equal(registry_count_agents(&f->reg), 1);
	assert_ptr_equal(registry_source_by_id(&f->reg, d1->src->id), d1->src);

	assert_int_equal(registry_add(&f->reg, f->vol, AGENT, DEST1,
				      WATCH_API, NULL, &err),
			 CONTROL_ALREADY_EXISTS);
	assert_non_null(strstr(err, "already watched"));
	free(err);

	registry_remove_dest(&f->reg, d1);
	assert_non_null(registry_find_source(&f->reg, f->vol));
	registry_remove_dest(&f->reg, d2);
	assert_null(registry_find_source(&f->reg, f->vol));
	assert_int_equal(registry_count_agents(&f->reg), 1);
	registry_remove_dest(&f->reg, d3);
	assert_int_equal(registry_count_agents(&f->reg), 0);
	free(other);
}

/* A removed dest a worker still uses waits in the graveyard. */
static void test_remove_inflight(void **state)
{
	struct fx *f = *state;
	struct reg_dest *d;
	char *err = NULL;

	assert_int_equal(registry_add(&f->reg, f->vol, AGENT, DEST1,
				      WATCH_API, &d, &err), CONTROL_OK);
	d->sync.inflight = true;
	registry_remove_dest(&f->reg, d);
	assert_null(f->reg.sources);
	assert_ptr_equal(f->reg.graveyard, d);
	assert_true(d->sync.removed);
	assert_int_equal(registry_count_agents(&f->reg), 1);
	registry_reap(&f->reg, d);
	assert_null(f->reg.graveyard);
	assert_int_equal(registry_count_agents(&f->reg), 0);
}

static void test_find_by_symlinked_path(void **state)
{
	struct fx *f = *state;
	char *link = cat(f->root, "/link");
	struct reg_dest *d;
	char *err = NULL;

	assert_int_equal(symlink(f->vol, link), 0);
	assert_int_equal(registry_add(&f->reg, link, AGENT, DEST1, WATCH_API,
				      &d, &err), CONTROL_OK);
	assert_string_equal(d->src->real, f->vol);
	assert_ptr_equal(registry_find_source(&f->reg, f->vol), d->src);
	assert_ptr_equal(registry_find_source(&f->reg, link), d->src);
	/* Same directory through another path: same source, same dest. */
	assert_int_equal(registry_add(&f->reg, f->vol, AGENT, DEST1,
				      WATCH_API, NULL, &err),
			 CONTROL_ALREADY_EXISTS);
	free(err);
	/* An unknown path never matches a registered source. */
	assert_null(registry_find_source(&f->reg, "/nonexistent/x"));
	free(link);
}

static void test_recheck(void **state)
{
	struct fx *f = *state;
	const char *why = NULL;
	struct reg_dest *d;
	char *err = NULL, *old;

	assert_int_equal(registry_add(&f->reg, f->vol, AGENT, DEST1,
				      WATCH_API, &d, &err), CONTROL_OK);
	assert_int_equal(registry_recheck(&f->reg, d->src, &why), 0);
	/* Replaced by a new directory of the same name (old one kept so
	 * that the inode number cannot be reused). */
	old = cat(f->vol, ".old");
	assert_int_equal(rename(f->vol, old), 0);
	assert_int_equal(mkdir(f->vol, 0755), 0);
	assert_int_equal(registry_recheck(&f->reg, d->src, &why), 1);
	assert_non_null(strstr(why, "identity"));
	assert_int_equal(registry_recheck(&f->reg, d->src, &why), 0);
	/* Gone. */
	assert_int_equal(rmdir(f->vol), 0);
	assert_int_equal(registry_recheck(&f->reg, d->src, &why), -ENOENT);
	assert_non_null(strstr(why, "removed"));
	registry_remove_source(&f->reg, d->src);
	assert_int_equal(registry_count_dests(&f->reg), 0);
	assert_int_equal(mkdir(f->vol, 0755), 0);
	assert_int_equal(rmdir(old), 0);
	free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_share_and_remove, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_remove_inflight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_find_by_symlinked_path,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recheck, setup, teardown),
	};

	return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
