// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Chunk planning, copy order, safe source access, CopyFileRequest bytes. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent.pb-c.h"
#include "agent_client.h"
#include "copy_tree.h"

#define MIB (1u << 20)

static void test_chunks(void **state)
{
	uint64_t off;
	size_t len;

	(void)state;
	/* 0 B: one request, no data. */
	assert_int_equal(copy_chunk_count(0, MIB), 1);
	copy_chunk_at(0, MIB, 0, &off, &len);
	assert_int_equal(off, 0);
	assert_int_equal(len, 0);
	/* 1 B */
	assert_int_equal(copy_chunk_count(1, MIB), 1);
	copy_chunk_at(1, MIB, 0, &off, &len);
	assert_int_equal(len, 1);
	/* exactly 1 MiB: one full chunk */
	assert_int_equal(copy_chunk_count(MIB, MIB), 1);
	copy_chunk_at(MIB, MIB, 0, &off, &len);
	assert_int_equal(len, MIB);
	/* 1 MiB + 1: a full chunk and a 1-byte tail */
	assert_int_equal(copy_chunk_count(MIB + 1, MIB), 2);
	copy_chunk_at(MIB + 1, MIB, 1, &off, &len);
	assert_int_equal(off, MIB);
	assert_int_equal(len, 1);
	/* 5 MiB: five full chunks, contiguous */
	assert_int_equal(copy_chunk_count(5ull * MIB, MIB), 5);
	for (uint64_t i = 0, next = 0; i < 5; i++) {
		copy_chunk_at(5ull * MIB, MIB, i, &off, &len);
		assert_int_equal(off, next);
		assert_int_equal(len, MIB);
		next = off + len;
	}
	/* Past the end: nothing. */
	copy_chunk_at(5ull * MIB, MIB, 5, &off, &len);
	assert_int_equal(len, 0);
}

static void add(struct copy_plan *p, enum copy_kind k, const char *rel)
{
	p->entries = realloc(p->entries, (p->n + 1) * sizeof(*p->entries));
	memset(&p->entries[p->n], 0, sizeof(p->entries[0]));
	p->entries[p->n].kind = k;
	p->entries[p->n].relpath = strdup(rel);
	p->n++;
	p->cap = p->n;
}

static int pos(const struct copy_plan *p, const char *rel)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->entries[i].relpath, rel))
			return (int)i;
	fail_msg("%s not in plan", rel);
	return -1;
}

static void test_sort_kubelet_order(void **state)
{
	struct copy_plan p = { 0 };

	(void)state;
	/* Walk order (names sorted): links and ..data interleaved. */
	add(&p, COPY_DIR, "");
	add(&p, COPY_DIR, "..2026_01_01");
	add(&p, COPY_FILE, "..2026_01_01/a");
	add(&p, COPY_DIR, "..2026_01_01/d");
	add(&p, COPY_SYMLINK, "..2026_01_01/d/inner-link");
	add(&p, COPY_FILE, "..2026_01_01/d/b");
	add(&p, COPY_SYMLINK, "..data");
	add(&p, COPY_SYMLINK, "a");
	add(&p, COPY_SYMLINK, "d");
	add(&p, COPY_FILE, "plain");
	copy_plan_sort(&p);
	assert_int_equal(pos(&p, ""), 0);
	assert_true(pos(&p, "..2026_01_01") < pos(&p, "..2026_01_01/a"));
	assert_true(pos(&p, "..2026_01_01/d") < pos(&p, "..2026_01_01/d/b"));
	assert_true(pos(&p, "plain") < pos(&p, "..data"));
	assert_true(pos(&p, "..2026_01_01/d/inner-link") < pos(&p, "..data"));
	assert_true(pos(&p, "..2026_01_01/d/b") < pos(&p, "..data"));
	assert_true(pos(&p, "..data") < pos(&p, "a"));
	assert_true(pos(&p, "..data") < pos(&p, "d"));
	assert_int_equal(pos(&p, "d"), 9);
	copy_plan_release(&p);
}

static char tmpl[] = "/tmp/vt-plan-XXXXXX";

static int setup_tree(void **state)
{
	char cmd[512];

	(void)state;
	strcpy(tmpl, "/tmp/vt-plan-XXXXXX");
	assert_non_null(mkdtemp(tmpl));
	snprintf(cmd, sizeof(cmd),
		 "cd %s && mkdir -p src/..ts/sub out && echo hi > src/..ts/k && "
		 "echo deep > src/..ts/sub/f && : > src/..ts/empty && "
		 "ln -s ..ts src/..data && ln -s ..data/k src/k && "
		 "ln -s ..data/sub src/sub && echo secret > out/secret && "
		 "ln -s ../../out/secret src/..ts/escape && "
		 "ln -s /proc/self/root/etc/passwd src/..ts/magic", tmpl);
	return system(cmd);
}

static int teardown_tree(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
	return system(cmd);
}

static int open_src(void)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s/src", tmpl);
	fd = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	return fd;
}

static void test_build_plan(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct copy_plan p;
	int fd = open_src();

	(void)state;
	assert_int_equal(copy_plan_build(fd, &p, &st), 0);
	assert_int_equal(p.n, 11);
	assert_string_equal(p.entries[0].relpath, "");
	assert_int_equal(p.entries[0].kind, COPY_DIR);
	assert_true(pos(&p, "..ts") < pos(&p, "..ts/k"));
	assert_true(pos(&p, "..ts/sub/f") < pos(&p, "..data"));
	assert_true(pos(&p, "..data") < pos(&p, "k"));
	assert_true(pos(&p, "..data") < pos(&p, "sub"));
	assert_int_equal(p.entries[pos(&p, "..data")].kind, COPY_SYMLINK);
	assert_string_equal(p.entries[pos(&p, "..data")].target, "..ts");
	assert_string_equal(p.entries[pos(&p, "..ts/escape")].target, "../../out/secret");
	assert_int_equal(p.total_bytes, 3 + 5);
	copy_plan_release(&p);
	close(fd);
}

static void test_open_beneath(void **state)
{
	struct stat sb;
	char *t;
	int fd = open_src(), f;

	(void)state;
	/* Through an in-tree symlink: allowed. */
	f = copy_open_beneath(fd, "..data/k", O_RDONLY);
	assert_true(f >= 0);
	close(f);
	/* Out of the tree: refused. */
	assert_int_equal(copy_open_beneath(fd, "..ts/escape", O_RDONLY), -EXDEV);
	assert_int_equal(copy_open_beneath(fd, "../out/secret", O_RDONLY), -EXDEV);
	assert_true(copy_open_beneath(fd, "..ts/magic", O_RDONLY) < 0);
	assert_true(copy_open_beneath(fd, "/etc/passwd", O_RDONLY) < 0);
	/* lstat does not follow the last component. */
	assert_int_equal(copy_lstat_beneath(fd, "k", &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	assert_int_equal(copy_lstat_beneath(fd, "..data/k", &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(copy_lstat_beneath(fd, "", &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(copy_readlink_beneath(fd, "..data", &t), 0);
	assert_string_equal(t, "..ts");
	free(t);
	close(fd);
}

static void test_copy_request_bytes(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_copy_req req = {
		.path = "/run/kata-containers/shared/containers/a/k",
		.file_size = 5, .file_mode = 0100644, .dir_mode = 0750,
		.uid = 1000, .gid = 2000, .offset = 3,
		.data = (const uint8_t *)"xy", .len = 2,
	};
	Grpc__CopyFileRequest *m;
	uint8_t *b;
	size_t n;

	(void)state;
	assert_int_equal(agent_copy_req_encode(&req, &b, &n, &st), 0);
	/* Kata's field numbers: path=1 (tag 0x0a), file_size=2 (0x10) ... */
	assert_int_equal(b[0], 0x0a);
	assert_int_equal(b[1], strlen(req.path));
	assert_int_equal(b[2 + b[1]], 0x10);
	assert_int_equal(b[n - 4], 0x42);	/* data = 8, length-delimited */
	assert_int_equal(b[n - 3], 2);
	m = grpc__copy_file_request__unpack(NULL, n, b);
	assert_non_null(m);
	assert_string_equal(m->path, req.path);
	assert_int_equal(m->file_size, 5);
	assert_int_equal(m->file_mode, 0100644);
	assert_int_equal(m->dir_mode, 0750);
	assert_int_equal(m->uid, 1000);
	assert_int_equal(m->gid, 2000);
	assert_int_equal(m->offset, 3);
	assert_int_equal(m->data.len, 2);
	grpc__copy_file_request__free_unpacked(m, NULL);
	free(b);
}

static void test_refuses_foreign_guest_path(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_conn *c;
	struct agent_copy_req req = { .path = "/etc/passwd", .file_mode = 0100644 };

	(void)state;
	/* Nothing listens there: the refusal must come before connecting. */
	c = agent_conn_new("unix:///nonexistent.sock", NULL, &st);
	assert_non_null(c);
	assert_int_equal(agent_copy_file_rpc(c, &req, &st), -1);
	assert_int_equal(st.code, GRPC_INVALID_ARGUMENT);
	assert_non_null(strstr(st.message, "refusing guest path"));
	assert_false(agent_conn_connected(c));
	ttrpc_status_clear(&st);
	/* Connection failure is Unavailable and sets a backoff. */
	req.path = "/run/kata-containers/shared/containers/x";
	assert_int_equal(agent_copy_file_rpc(c, &req, &st), -1);
	assert_int_equal(st.code, GRPC_UNAVAILABLE);
	assert_true(ttrpc_status_retriable(&st));
	assert_true(agent_conn_retry_at_ns(c) > 0);
	assert_int_equal(agent_copy_file_rpc(c, &req, &st), -1);
	assert_non_null(strstr(st.message, "next attempt in"));
	ttrpc_status_clear(&st);
	agent_conn_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_sort_kubelet_order),
		cmocka_unit_test_setup_teardown(test_build_plan, setup_tree, teardown_tree),
		cmocka_unit_test_setup_teardown(test_open_beneath, setup_tree, teardown_tree),
		cmocka_unit_test(test_copy_request_bytes),
		cmocka_unit_test(test_refuses_foreign_guest_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
