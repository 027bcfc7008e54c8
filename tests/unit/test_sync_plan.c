// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Sync planning (sync_plan.c) and volume snapshots (vol_snapshot.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sync_plan.h"
#include "vol_snapshot.h"

/* ---- helpers ---------------------------------------------------------------- */

struct kv {
	const char *path;
	const char *value;	/* NULL: directory; "->x": symlink to x */
};

static void fake_hash(const char *value, unsigned char h[SYNC_HASH_LEN])
{
	size_t i, len = strlen(value);

	memset(h, 0, SYNC_HASH_LEN);
	for (i = 0; i < len; i++)
		h[i % SYNC_HASH_LEN] ^= (unsigned char)(value[i] + i);
	h[SYNC_HASH_LEN - 1] ^= (unsigned char)len;
}

static void snap_make(struct vol_snapshot *s, const char *ts,
		      const struct kv *kv, size_t n)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	s->kind = ts ? VOL_KUBELET : VOL_PLAIN;
	s->data_target = ts ? strdup(ts) : NULL;
	s->root_mode = 0755;
	s->payload_mode = 0755;
	s->entries = calloc(n ? n : 1, sizeof(*s->entries));
	s->n = n;
	for (i = 0; i < n; i++) {
		struct snap_entry *e = &s->entries[i];

		e->path = strdup(kv[i].path);
		if (!kv[i].value) {
			e->type = SNAP_DIR;
			e->mode = 0755;
		} else if (!strncmp(kv[i].value, "->", 2)) {
			e->type = SNAP_SYMLINK;
			e->mode = 0777;
			e->target = strdup(kv[i].value + 2);
		} else {
			e->type = SNAP_FILE;
			e->mode = 0644;
			e->size = strlen(kv[i].value);
			fake_hash(kv[i].value, e->hash);
		}
	}
	sync_snapshot_sort(s);
}

/* "M:dst" "F:dst<src" "L:dst>target", joined by spaces. */
static char *plan_str(const struct sync_plan *p)
{
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	for (i = 0; i < p->n; i++) {
		const struct plan_op *op = &p->ops[i];

		if (i)
			fputc(' ', f);
		switch (op->kind) {
		case PLAN_MKDIR:
			fprintf(f, "M:%s", op->dst);
			break;
		case PLAN_FILE:
			fprintf(f, "F:%s<%s", op->dst, op->src);
			break;
		case PLAN_SYMLINK:
			fprintf(f, "L:%s>%s", op->dst, op->target);
			break;
		}
	}
	fclose(f);
	return buf;
}

static void apply_all(struct dest_state *st, const struct sync_plan *p,
		      size_t upto)
{
	size_t i;

	for (i = 0; i < p->n && i < upto; i++)
		assert_int_equal(dest_state_apply(st, &p->ops[i]), 0);
}

/* Plan snap against st, compare, then apply every op to st. */
static void expect_plan(struct dest_state *st, const struct vol_snapshot *s,
			const char *want)
{
	struct sync_plan p;
	char *got;

	assert_int_equal(sync_plan_build(s, st, &p), 0);
	got = plan_str(&p);
	if (strcmp(got, want))
		fail_msg("plan\n  got:  %s\n  want: %s", got, want);
	apply_all(st, &p, p.n);
	free(got);
	sync_plan_free(&p);
}

#define TS1 "..2026_11_22_10_00_00.1"
#define TS2 "..2026_11_22_10_00_01.2"
#define TS3 "..2026_11_22_10_00_02.3"

/* ---- kubelet plans --------------------------------------------------------- */

static void test_initial_copy_order(void **state)
{
	const struct kv kv[] = { { "b", "2" }, { "a", "1" } };
	struct dest_state st = { 0 };
	struct vol_snapshot s;

	(void)state;
	snap_make(&s, TS1, kv, 2);
	expect_plan(&st, &s,
		    "M: M:" TS1 " F:" TS1 "/a<" TS1 "/a F:" TS1 "/b<" TS1
		    "/b L:..data>" TS1 " L:a>..data/a L:b>..data/b");
	assert_string_equal(st.data_target, TS1);
	assert_int_equal(dest_state_stale_dirs(&st), 0);
	vol_snapshot_free(&s);
	dest_state_clear(&st);
}

static void test_same_state_sends_nothing(void **state)
{
	const struct kv kv[] = { { "a", "1" }, { "b", "2" } };
	struct dest_state st = { 0 };
	struct vol_snapshot s;
	struct sync_plan p;

	(void)state;
	snap_make(&s, TS1, kv, 2);
	expect_plan(&st, &s, "M: M:" TS1 " F:" TS1 "/a<" TS1 "/a F:" TS1
		    "/b<" TS1 "/b L:..data>" TS1 " L:a>..data/a L:b>..data/b");
	assert_int_equal(sync_plan_build(&s, &st, &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.skipped, 7);
	assert_int_equal(p.stale_dirs, 0);
	sync_plan_free(&p);
	vol_snapshot_free(&s);
	dest_state_clear(&st);
}

static void test_value_changed(void **state)
{
	const struct kv v1[] = { { "a", "1" }, { "b", "2" } };
	const struct kv v2[] = { { "a", "1" }, { "b", "22" } };
	struct dest_state st = { 0 };
	struct vol_snapshot s1, s2;
	struct sync_plan p;

	(void)state;
	snap_make(&s1, TS1, v1, 2);
	snap_make(&s2, TS2, v2, 2);
	expect_plan(&st, &s1, "M: M:" TS1 " F:" TS1 "/a<" TS1 "/a F:" TS1
		    "/b<" TS1 "/b L:..data>" TS1 " L:a>..data/a L:b>..data/b");
	/* New guest dir: every file goes; existing links already resolve. */
	assert_int_equal(sync_plan_build(&s2, &st, &p), 0);
	assert_int_equal(p.stale_dirs, 1);
	assert_int_equal(p.files, 2);
	assert_int_equal(p.bytes, 3);
	sync_plan_free(&p);
	expect_plan(&st, &s2, "M:" TS2 " F:" TS2 "/a<" TS2 "/a F:" TS2
		    "/b<" TS2 "/b L:..data>" TS2);
	assert_string_equal(st.data_target, TS2);
	assert_int_equal(dest_state_stale_dirs(&st), 1);
	/* Entries of the old dir are pruned from the state. */
	assert_null(dest_state_find(&st, TS1 "/a"));
	assert_non_null(dest_state_find(&st, TS2 "/a"));
	vol_snapshot_free(&s1);
	vol_snapshot_free(&s2);
	dest_state_clear(&st);
}

static void test_key_added_and_deleted(void **state)
{
	const struct kv v1[] = { { "a", "1" }, { "b", "2" } };
	const struct kv v2[] = { { "a", "1" }, { "c", "3" } };
	struct dest_state st = { 0 };
	struct vol_snapshot s1, s2;

	(void)state;
	snap_make(&s1, TS1, v1, 2);
	snap_make(&s2, TS2, v2, 2);
	expect_plan(&st, &s1, "M: M:" TS1 " F:" TS1 "/a<" TS1 "/a F:" TS1
		    "/b<" TS1 "/b L:..data>" TS1 " L:a>..data/a L:b>..data/b");
	/* c gets a link after the commit; b gets nothing (it dangles). */
	expect_plan(&st, &s2, "M:" TS2 " F:" TS2 "/a<" TS2 "/a F:" TS2
		    "/c<" TS2 "/c L:..data>" TS2 " L:c>..data/c");
	vol_snapshot_free(&s1);
	vol_snapshot_free(&s2);
	dest_state_clear(&st);
}

static void test_nested_keys(void **state)
{
	const struct kv kv[] = {
		{ "a", NULL }, { "a/b", NULL }, { "a/b/c", "deep" },
		{ "a/x", "x" }, { "z", "top" },
	};
	struct dest_state st = { 0 };
	struct vol_snapshot s;

	(void)state;
	snap_make(&s, TS1, kv, 5);
	expect_plan(&st, &s,
		    "M: M:" TS1 " M:" TS1 "/a M:" TS1 "/a/b F:" TS1 "/a/b/c<"
		    TS1 "/a/b/c F:" TS1 "/a/x<" TS1 "/a/x F:" TS1 "/z<" TS1
		    "/z L:..data>" TS1 " L:a>..data/a L:z>..data/z");
	vol_snapshot_free(&s);
	dest_state_clear(&st);
}

static void test_partial_sync_resumes(void **state)
{
	const struct kv kv[] = { { "a", "1" }, { "b", "2" }, { "c", "3" } };
	struct dest_state st = { 0 };
	struct vol_snapshot s;
	struct sync_plan p;

	(void)state;
	snap_make(&s, TS1, kv, 3);
	assert_int_equal(sync_plan_build(&s, &st, &p), 0);
	apply_all(&st, &p, 3);	/* "", ts, a: then the agent failed */
	sync_plan_free(&p);
	expect_plan(&st, &s, "F:" TS1 "/b<" TS1 "/b F:" TS1 "/c<" TS1
		    "/c L:..data>" TS1 " L:a>..data/a L:b>..data/b"
		    " L:c>..data/c");
	vol_snapshot_free(&s);
	dest_state_clear(&st);
}

static void test_mode_change_resends(void **state)
{
	const struct kv kv[] = { { "a", "1" } };
	struct dest_state st = { 0 };
	struct vol_snapshot s;

	(void)state;
	snap_make(&s, NULL, kv, 1);
	expect_plan(&st, &s, "M: F:a<a");
	s.entries[0].mode = 0400;
	expect_plan(&st, &s, "F:a<a");
	vol_snapshot_free(&s);
	dest_state_clear(&st);
}

/* Three commits, the middle one never synced: no trace of it. */
static void test_coalesced_commits(void **state)
{
	const struct kv v1[] = { { "k", "1" } };
	const struct kv v3[] = { { "k", "3" } };
	struct dest_state st = { 0 };
	struct vol_snapshot s1, s3;
	struct sync_plan p;

	(void)state;
	snap_make(&s1, TS1, v1, 1);
	snap_make(&s3, TS3, v3, 1);
	expect_plan(&st, &s1, "M: M:" TS1 " F:" TS1 "/k<" TS1 "/k L:..data>"
		    TS1 " L:k>..data/k");
	assert_int_equal(sync_plan_build(&s3, &st, &p), 0);
	for (size_t i = 0; i < p.n; i++)
		assert_null(strstr(p.ops[i].dst, TS2));
	sync_plan_free(&p);
	expect_plan(&st, &s3, "M:" TS3 " F:" TS3 "/k<" TS3 "/k L:..data>" TS3);
	assert_int_equal(dest_state_stale_dirs(&st), 1);
	vol_snapshot_free(&s1);
	vol_snapshot_free(&s3);
	dest_state_clear(&st);
}

static void test_stale_dirs_counted(void **state)
{
	const struct kv kv[] = { { "k", "v" } };
	const char *ts[] = { TS1, TS2, TS3 };
	struct dest_state st = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		struct vol_snapshot s;
		struct sync_plan p;

		snap_make(&s, ts[i], kv, 1);
		assert_int_equal(sync_plan_build(&s, &st, &p), 0);
		assert_int_equal(p.stale_dirs, i);
		apply_all(&st, &p, p.n);
		sync_plan_free(&p);
		vol_snapshot_free(&s);
	}
	assert_int_equal(dest_state_stale_dirs(&st), 2);
	/* A new agent (state cleared) knows of no old dirs. */
	dest_state_clear(&st);
	assert_int_equal(dest_state_stale_dirs(&st), 0);
}

static void test_empty_volume(void **state)
{
	struct dest_state st = { 0 };
	struct vol_snapshot s;

	(void)state;
	snap_make(&s, TS1, NULL, 0);
	expect_plan(&st, &s, "M: M:" TS1 " L:..data>" TS1);
	vol_snapshot_free(&s);
	dest_state_clear(&st);
}

static void test_payload_symlink_mirrored(void **state)
{
	const struct kv kv[] = { { "l", "->/etc/passwd" } };
	struct dest_state st = { 0 };
	struct vol_snapshot s;

	(void)state;
	snap_make(&s, TS1, kv, 1);
	expect_plan(&st, &s, "M: M:" TS1 " L:" TS1 "/l>/etc/passwd L:..data>"
		    TS1 " L:l>..data/l");
	vol_snapshot_free(&s);
	dest_state_clear(&st);
}

/* ---- plain trees ---------------------------------------------------------- */

static void test_plain_tree(void **state)
{
	const struct kv kv[] = {
		{ "d", NULL }, { "d/f", "x" }, { "g", "y" }, { "l", "->g" },
	};
	struct dest_state st = { 0 };
	struct vol_snapshot s;

	(void)state;
	snap_make(&s, NULL, kv, 4);
	expect_plan(&st, &s, "M: M:d F:d/f<d/f F:g<g L:l>g");
	/* Only the changed file goes again. */
	fake_hash("yy", s.entries[2].hash);
	s.entries[2].size = 2;
	expect_plan(&st, &s, "F:g<g");
	vol_snapshot_free(&s);
	dest_state_clear(&st);
}

/* ---- validation ------------------------------------------------------------ */

static void test_rejects_bad_snapshots(void **state)
{
	const struct kv ok[] = { { "a", "1" } };
	const char *bad_paths[] = { "../x", "/abs", "a//b", "a/./b", "a/", "" };
	struct vol_snapshot s;
	struct sync_plan p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		snap_make(&s, TS1, ok, 1);
		free(s.entries[0].path);
		s.entries[0].path = strdup(bad_paths[i]);
		assert_int_equal(sync_plan_build(&s, NULL, &p), -EINVAL);
		vol_snapshot_free(&s);
	}
	snap_make(&s, "../elsewhere", ok, 1);
	assert_int_equal(sync_plan_build(&s, NULL, &p), -EINVAL);
	vol_snapshot_free(&s);
	snap_make(&s, "..data", ok, 1);
	assert_int_equal(sync_plan_build(&s, NULL, &p), -EINVAL);
	vol_snapshot_free(&s);
}

static void test_sort_parents_first(void **state)
{
	const struct kv kv[] = {
		{ "a-b", "1" }, { "a/b", "2" }, { "a", NULL }, { "ab", "3" },
	};
	struct vol_snapshot s;

	(void)state;
	snap_make(&s, NULL, kv, 4);
	assert_string_equal(s.entries[0].path, "a");
	assert_string_equal(s.entries[1].path, "a/b");
	assert_string_equal(s.entries[2].path, "a-b");
	assert_string_equal(s.entries[3].path, "ab");
	vol_snapshot_free(&s);
}

static void test_ts_names(void **state)
{
	(void)state;
	assert_true(sync_is_ts_name(TS1));
	assert_false(sync_is_ts_name("..data"));
	assert_false(sync_is_ts_name("..data_tmp"));
	assert_false(sync_is_ts_name(".."));
	assert_false(sync_is_ts_name("..a/b"));
	assert_false(sync_is_ts_name("key"));
	assert_false(sync_is_ts_name(NULL));
}

/* ---- snapshots of real directories ---------------------------------------- */

static void sh(const char *fmt, const char *dir)
{
	char *cmd;

	assert_true(asprintf(&cmd, fmt, dir, dir, dir, dir, dir, dir) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/vt-test-plan-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static char *snapshot_plan(const char *dir)
{
	struct vol_snapshot s;
	struct sync_plan p;
	char *err = NULL, *str;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	assert_true(fd >= 0);
	if (vol_snapshot_read(fd, &s, &err))
		fail_msg("snapshot %s: %s", dir, err);
	close(fd);
	assert_int_equal(sync_plan_build(&s, NULL, &p), 0);
	str = plan_str(&p);
	sync_plan_free(&p);
	vol_snapshot_free(&s);
	return str;
}

/* The kubelet's two link orders give one plan. */
static void test_snapshot_both_orders(void **state)
{
	char *d1 = tmpdir(), *d2 = tmpdir(), *p1, *p2;

	(void)state;
	/* links after the commit */
	sh("mkdir -p %s/..t1/n/m && echo 1 > %s/..t1/a && echo 2 > %s/..t1/n/m/c"
	   " && ln -s ..t1 %s/..data && ln -s ..data/a %s/a && ln -s ..data/n %s/n",
	   d1);
	/* links first, then the commit; leftovers of an old version around */
	sh("mkdir -p %s/..t1/n/m %s/..old && ln -s ..data/a %s/a"
	   " && ln -s ..data/n %s/n && echo 1 > %s/..t1/a && echo 2 > %s/..t1/n/m/c",
	   d2);
	sh("ln -s ..t1 %s/..data_tmp && mv -T %s/..data_tmp %s/..data"
	   " && ln -s ..data/gone %s/gone", d2);
	p1 = snapshot_plan(d1);
	p2 = snapshot_plan(d2);
	assert_string_equal(p1, p2);
	assert_string_equal(p1, "M: M:..t1 F:..t1/a<..t1/a M:..t1/n M:..t1/n/m"
			    " F:..t1/n/m/c<..t1/n/m/c L:..data>..t1"
			    " L:a>..data/a L:n>..data/n");
	sh("rm -rf %s", d1);
	sh("rm -rf %s", d2);
	free(p1);
	free(p2);
	free(d1);
	free(d2);
}

static void test_snapshot_hashes_and_modes(void **state)
{
	char *d = tmpdir();
	struct vol_snapshot s;
	char *err = NULL;
	int fd;

	(void)state;
	sh("mkdir %s/..t && printf abc > %s/..t/k && chmod 0400 %s/..t/k"
	   " && : > %s/..t/empty && ln -s ..t %s/..data", d);
	fd = open(d, O_RDONLY | O_DIRECTORY);
	assert_int_equal(vol_snapshot_read(fd, &s, &err), 0);
	close(fd);
	assert_int_equal(s.kind, VOL_KUBELET);
	assert_string_equal(s.data_target, "..t");
	assert_int_equal(s.n, 2);
	assert_string_equal(s.entries[0].path, "empty");
	assert_int_equal(s.entries[0].size, 0);
	assert_string_equal(s.entries[1].path, "k");
	assert_int_equal(s.entries[1].mode, 0400);
	assert_int_equal(s.entries[1].size, 3);
	/* SHA-256("abc") starts ba7816bf */
	assert_int_equal(s.entries[1].hash[0], 0xba);
	assert_int_equal(s.entries[1].hash[1], 0x78);
	assert_int_equal(s.entries[1].hash[2], 0x16);
	assert_int_equal(s.entries[1].hash[3], 0xbf);
	vol_snapshot_free(&s);
	sh("rm -rf %s", d);
	free(d);
}

static void test_snapshot_refuses_escaping_data(void **state)
{
	char *d = tmpdir();
	struct vol_snapshot s;
	char *err = NULL;
	int fd;

	(void)state;
	sh("mkdir %s/..t && ln -s /etc %s/..data", d);
	fd = open(d, O_RDONLY | O_DIRECTORY);
	assert_int_equal(vol_snapshot_read(fd, &s, &err), -EINVAL);
	assert_non_null(strstr(err, "/etc"));
	free(err);
	close(fd);
	sh("rm -rf %s", d);
	free(d);
}

static void test_snapshot_plain_no_follow(void **state)
{
	char *d = tmpdir(), *p;

	(void)state;
	sh("mkdir %s/sub && echo x > %s/sub/f && ln -s /etc %s/etc"
	   " && mkfifo %s/fifo", d);
	p = snapshot_plan(d);
	assert_string_equal(p, "M: L:etc>/etc M:sub F:sub/f<sub/f");
	free(p);
	sh("rm -rf %s", d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initial_copy_order),
		cmocka_unit_test(test_same_state_sends_nothing),
		cmocka_unit_test(test_value_changed),
		cmocka_unit_test(test_key_added_and_deleted),
		cmocka_unit_test(test_nested_keys),
		cmocka_unit_test(test_partial_sync_resumes),
		cmocka_unit_test(test_mode_change_resends),
		cmocka_unit_test(test_coalesced_commits),
		cmocka_unit_test(test_stale_dirs_counted),
		cmocka_unit_test(test_empty_volume),
		cmocka_unit_test(test_payload_symlink_mirrored),
		cmocka_unit_test(test_plain_tree),
		cmocka_unit_test(test_rejects_bad_snapshots),
		cmocka_unit_test(test_sort_parents_first),
		cmocka_unit_test(test_ts_names),
		cmocka_unit_test(test_snapshot_both_orders),
		cmocka_unit_test(test_snapshot_hashes_and_modes),
		cmocka_unit_test(test_snapshot_refuses_escaping_data),
		cmocka_unit_test(test_snapshot_plain_no_follow),
	};

	return cmocka_run_group_tests_name("sync_plan", tests, NULL, NULL);
}
