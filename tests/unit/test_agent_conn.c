// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * struct agent_conn against the real Go peer (build/tests/kata-peer, on
 * containerd's ttrpc): several threads sharing one connection, reconnect
 * after the agent restarts (counter + callback), error classification,
 * and calls in flight when the connection drops.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_client.h"
#include "util.h"

#define BASE "/run/kata-containers/shared/containers/conn-test"

static char dir[] = "/tmp/vt-conn-XXXXXX";
static char sock[128], url[160], guest[128], src[128];
static pid_t peer;

static const char *peer_bin(void)
{
	static char path[256];
	const char *out = getenv("OUTPUT");

	snprintf(path, sizeof(path), "%s/tests/kata-peer", out ? out : "build");
	return path;
}

static void start_peer(const char *extra1, const char *extra2)
{
	unlink(sock);
	peer = fork();
	assert_true(peer >= 0);
	if (peer == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		execl(peer_bin(), "kata-peer", "-socket", sock, "-root", guest,
		      "-quiet", extra1, extra2, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		struct stat sb;

		if (stat(sock, &sb) == 0)
			return;
		usleep(50000);
	}
	fail_msg("kata-peer (%s) did not start", peer_bin());
}

static void stop_peer(void)
{
	if (peer > 0) {
		kill(peer, SIGKILL);
		waitpid(peer, NULL, 0);
		peer = 0;
	}
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/vt-conn-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(url, sizeof(url), "unix://%s", sock);
	snprintf(guest, sizeof(guest), "%s/guest", dir);
	snprintf(src, sizeof(src), "%s/src", dir);
	mkdir(src, 0755);
	for (int i = 0; i < 8; i++) {
		char p[160];
		FILE *f;

		snprintf(p, sizeof(p), "%s/f%d", src, i);
		f = fopen(p, "w");
		for (int j = 0; j < 1000 * (i + 1); j++)
			fputc('a' + (j + i) % 26, f);
		fclose(f);
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];

	(void)state;
	stop_peer();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

struct worker {
	struct agent_conn *c;
	int src_fd;
	int id;
	int failures;
	char first_error[256];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_counters ctr = { 0 };

	for (int i = 0; i < 40; i++) {
		char rel[16], *g;

		snprintf(rel, sizeof(rel), "f%d", (w->id + i) % 8);
		if (asprintf(&g, BASE "/t%d/%d/%s", w->id, i, rel) < 0)
			abort();
		if (agent_put_file(w->c, w->src_fd, rel, g, &ctr, &st) < 0 &&
		    w->failures++ == 0)
			snprintf(w->first_error, sizeof(w->first_error), "%s",
				 ttrpc_status_str(&st));
		free(g);
	}
	ttrpc_status_clear(&st);
	return NULL;
}

static void test_threads_share_one_connection(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct worker w[4];
	pthread_t th[4];
	struct agent_counters k;
	struct agent_conn *c;
	int src_fd = open(src, O_RDONLY | O_DIRECTORY);

	(void)state;
	start_peer(NULL, NULL);
	c = agent_conn_new(url, NULL, &st);
	assert_non_null(c);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .c = c, .src_fd = src_fd, .id = i };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failures)
			fail_msg("thread %d: %d failures, first: %s", i,
				 w[i].failures, w[i].first_error);
	}
	agent_conn_counters(c, &k);
	assert_int_equal(k.files, 160);
	assert_int_equal(k.connects, 1);
	assert_int_equal(k.reconnects, 0);
	assert_int_equal(k.rpc_errors, 0);
	/* Check one file really landed, content and all. */
	char p[256], cmd[600];
	snprintf(p, sizeof(p), "%s" BASE "/t3/5/f0", guest);
	snprintf(cmd, sizeof(cmd), "cmp -s %s/f0 %s", src, p);
	assert_int_equal(system(cmd), 0);
	agent_conn_free(c);
	close(src_fd);
	stop_peer();
}

static int reconnect_calls;
static uint64_t reconnect_seen;

static void on_reconnect(struct agent_conn *c, uint64_t n, void *arg)
{
	(void)c;
	(void)arg;
	reconnect_calls++;
	reconnect_seen = n;
}

static void test_reconnect_after_restart(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_conn_opts o;
	struct agent_conn *c;
	struct stat sb = { .st_mode = S_IFDIR | 0755 };
	uint64_t until;
	int r;

	(void)state;
	agent_conn_opts_default(&o);
	o.backoff_initial_ms = 50;
	o.backoff_max_ms = 400;
	start_peer(NULL, NULL);
	c = agent_conn_new(url, &o, &st);
	agent_conn_set_reconnect_cb(c, on_reconnect, NULL);
	assert_int_equal(agent_put_dir(c, BASE "/r1", &sb, NULL, &st), 0);
	stop_peer();
	/* Agent gone: retriable error, no callback. */
	r = agent_put_dir(c, BASE "/r2", &sb, NULL, &st);
	assert_int_equal(r, -1);
	assert_int_equal(st.code, GRPC_UNAVAILABLE);
	assert_true(ttrpc_status_retriable(&st));
	assert_int_equal(reconnect_calls, 0);
	start_peer(NULL, NULL);
	/* Retry until the backoff lets a connect through. */
	until = now_ns() + 5000000000ull;
	do {
		usleep(20000);
		r = agent_put_dir(c, BASE "/r2", &sb, NULL, &st);
	} while (r < 0 && ttrpc_status_retriable(&st) && now_ns() < until);
	if (r < 0)
		fail_msg("no reconnect: %s", ttrpc_status_str(&st));
	assert_int_equal(agent_conn_reconnects(c), 1);
	assert_int_equal(reconnect_calls, 1);
	assert_int_equal(reconnect_seen, 1);
	ttrpc_status_clear(&st);
	agent_conn_free(c);
	stop_peer();
}

static void test_permanent_error(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_conn *c;
	struct stat sb = { .st_mode = S_IFDIR | 0755 };

	(void)state;
	start_peer("-error-code", "3");
	c = agent_conn_new(url, NULL, &st);
	assert_int_equal(agent_put_dir(c, BASE "/p", &sb, NULL, &st), -1);
	assert_int_equal(st.code, GRPC_INVALID_ARGUMENT);
	assert_true(st.remote);
	assert_false(ttrpc_status_retriable(&st));
	assert_non_null(strstr(st.message, "InvalidArgument: mkdir " BASE "/p: injected failure"));
	/* The connection stays usable after a refusal. */
	assert_true(agent_conn_connected(c));
	ttrpc_status_clear(&st);
	agent_conn_free(c);
	stop_peer();
}

static void test_drop_with_calls_in_flight(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct worker w[4];
	pthread_t th[4];
	struct agent_conn *c;
	int src_fd = open(src, O_RDONLY | O_DIRECTORY), failures = 0;
	uint64_t t0 = now_ns();

	(void)state;
	start_peer("-drop-after", "20");
	c = agent_conn_new(url, NULL, &st);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .c = c, .src_fd = src_fd, .id = i };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		failures += w[i].failures;
		if (w[i].failures && !strstr(w[i].first_error, "Unavailable"))
			fail_msg("unexpected error: %s", w[i].first_error);
	}
	/* Every thread came back quickly; some calls failed, retriably. */
	assert_true(failures > 0);
	assert_true(now_ns() - t0 < 10000000000ull);
	agent_conn_free(c);
	close(src_fd);
	stop_peer();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_share_one_connection),
		cmocka_unit_test(test_reconnect_after_restart),
		cmocka_unit_test(test_permanent_error),
		cmocka_unit_test(test_drop_with_calls_in_flight),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
