// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Metrics: the rendered exposition text, thread safety, and the HTTP server
 * scraped over a real socket and checked with `promtool check metrics`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/types.h>

#include "metrics.h"
#include "metrics_http.h"
#include "voltrace.h"

static int reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

static void assert_line(const char *text, const char *line)
{
	size_t l = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++) {
		if ((p == text || p[-1] == '\n') && p[l] == '\n')
			return;
	}
	print_error("line not found: %s\n--- in:\n%s", line, text);
	fail();
}

static void test_names_and_types(void **state)
{
	static const char *const heads[] = {
		"# TYPE voltrace_build_info gauge",
		"# TYPE voltrace_events_total counter",
		"# TYPE voltrace_events_dropped_total counter",
		"# TYPE voltrace_syncs_total counter",
		"# TYPE voltrace_sync_duration_seconds histogram",
		"# TYPE voltrace_bytes_copied_total counter",
		"# TYPE voltrace_files_copied_total counter",
		"# TYPE voltrace_watches gauge",
		"# TYPE voltrace_agent_connections gauge",
		"# TYPE voltrace_agent_reconnects_total counter",
		"# TYPE voltrace_agent_errors_total counter",
		"# TYPE voltrace_reconciles_total counter",
		"# TYPE voltrace_guest_stale_dirs gauge",
		"# TYPE voltrace_control_requests_total counter",
		"# TYPE voltrace_start_time_seconds gauge",
	};
	char *text = metrics_render(NULL);
	size_t helps = 0, types = 0;

	(void)state;
	assert_non_null(text);
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		assert_line(text, heads[i]);
	for (const char *p = text; (p = strstr(p, "# HELP ")); p++)
		helps++;
	for (const char *p = text; (p = strstr(p, "# TYPE ")); p++)
		types++;
	assert_int_equal(helps, sizeof(heads) / sizeof(heads[0]));
	assert_int_equal(types, helps);
	/* Zero-valued series exist from the start (no missing series). */
	assert_line(text, "voltrace_events_total{op=\"rename\",mode=\"tracepoint\"} 0");
	assert_line(text, "voltrace_syncs_total{result=\"error\"} 0");
	assert_line(text, "voltrace_reconciles_total{reason=\"drops\"} 0");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"+Inf\"} 0");
	assert_line(text, "voltrace_sync_duration_seconds_sum 0");
	assert_line(text, "voltrace_build_info{version=\"unknown\",mode=\"none\"} 1");
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
}

static void test_values(void **state)
{
	struct metrics_snapshot s;
	char *text;

	(void)state;
	metrics_set_info("1.2.3", "tracepoint");
	metrics_event(VT_OP_RENAME, VT_MODE_TRACEPOINT);
	metrics_event(VT_OP_RENAME, VT_MODE_TRACEPOINT);
	metrics_event(VT_OP_UNLINK, VT_MODE_FENTRY);
	metrics_event(VT_OP_MAX, VT_MODE_FENTRY);	/* ignored */
	metrics_event(VT_OP_RMDIR, 77);			/* ignored */
	metrics_sync_done(true, 0.003);
	metrics_sync_done(true, 0.02);
	metrics_sync_done(false, 7);
	metrics_sync_done(true, 100);
	metrics_sync_done(false, -1);	/* counted, not observed */
	metrics_sync_done(true, 0.001);	/* on a bound: le is inclusive */
	metrics_bytes_copied(3 << 20);
	metrics_files_copied(12);
	metrics_watches_set(4);
	metrics_agents_set(2);
	metrics_agent_reconnect();
	metrics_agent_error();
	metrics_agent_error();
	metrics_reconcile(METRICS_RECONCILE_START);
	metrics_reconcile(METRICS_RECONCILE_DROPS);
	metrics_reconcile(METRICS_RECONCILE_DROPS);
	metrics_reconcile(METRICS_RECONCILE_MAX);	/* ignored */
	metrics_guest_stale_dirs_set(5);
	metrics_guest_stale_dirs_add(2);
	metrics_control_request(METRICS_CTL_WATCH, true);
	metrics_control_request(METRICS_CTL_WATCH, false);
	metrics_events_dropped_set(10);
	metrics_events_dropped_set(15);	/* +5 */
	metrics_events_dropped_set(3);	/* map recreated: +3 */
	metrics_events_dropped_add(1);

	text = metrics_render(NULL);
	assert_non_null(text);
	assert_line(text, "voltrace_build_info{version=\"1.2.3\",mode=\"tracepoint\"} 1");
	assert_line(text, "voltrace_events_total{op=\"rename\",mode=\"tracepoint\"} 2");
	assert_line(text, "voltrace_events_total{op=\"unlink\",mode=\"fentry\"} 1");
	assert_line(text, "voltrace_events_total{op=\"rmdir\",mode=\"kprobe\"} 0");
	assert_line(text, "voltrace_events_dropped_total 19");
	assert_line(text, "voltrace_syncs_total{result=\"ok\"} 4");
	assert_line(text, "voltrace_syncs_total{result=\"error\"} 2");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"0.001\"} 1");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"0.0025\"} 1");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"0.005\"} 2");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"0.025\"} 3");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"5\"} 3");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"10\"} 4");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"+Inf\"} 5");
	assert_line(text, "voltrace_sync_duration_seconds_sum 107.024");
	assert_line(text, "voltrace_sync_duration_seconds_count 5");
	assert_line(text, "voltrace_bytes_copied_total 3145728");
	assert_line(text, "voltrace_files_copied_total 12");
	assert_line(text, "voltrace_watches 4");
	assert_line(text, "voltrace_agent_connections 2");
	assert_line(text, "voltrace_agent_reconnects_total 1");
	assert_line(text, "voltrace_agent_errors_total 2");
	assert_line(text, "voltrace_reconciles_total{reason=\"start\"} 1");
	assert_line(text, "voltrace_reconciles_total{reason=\"drops\"} 2");
	assert_line(text, "voltrace_reconciles_total{reason=\"new_watch\"} 0");
	assert_line(text, "voltrace_guest_stale_dirs 7");
	assert_line(text, "voltrace_control_requests_total{method=\"Watch\",result=\"ok\"} 1");
	assert_line(text, "voltrace_control_requests_total{method=\"Watch\",result=\"error\"} 1");
	free(text);

	metrics_snapshot(&s);
	assert_int_equal(s.events, 3);
	assert_int_equal(s.events_dropped, 19);
	assert_int_equal(s.syncs_ok, 4);
	assert_int_equal(s.syncs_error, 2);
	assert_int_equal(s.reconciles, 3);
	assert_int_equal(s.guest_stale_dirs, 7);
}

static void test_escaping(void **state)
{
	char *e, *text;

	(void)state;
	e = metrics_escape_label("a\"b\\c\nd");
	assert_string_equal(e, "a\\\"b\\\\c\\nd");
	free(e);
	metrics_set_info("v\"1\\\n", "x");
	text = metrics_render(NULL);
	assert_line(text, "voltrace_build_info{version=\"v\\\"1\\\\\\n\",mode=\"x\"} 1");
	free(text);
}

#define THREADS 4
#define PER_THREAD 100000

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metrics_event(VT_OP_RENAME, VT_MODE_KPROBE);
		metrics_sync_done(i & 1, 0.004);
		metrics_bytes_copied(3);
		if (!(i % 1000))
			free(metrics_render(NULL));
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[THREADS];
	struct metrics_snapshot s;
	char *text;

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	metrics_snapshot(&s);
	assert_int_equal(s.events, THREADS * PER_THREAD);
	assert_int_equal(s.syncs_ok + s.syncs_error, THREADS * PER_THREAD);
	assert_int_equal(s.bytes_copied, 3ull * THREADS * PER_THREAD);
	text = metrics_render(NULL);
	assert_line(text, "voltrace_sync_duration_seconds_count 400000");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"0.005\"} 400000");
	assert_line(text, "voltrace_sync_duration_seconds_bucket{le=\"0.0025\"} 0");
	free(text);
}

/* ---- HTTP ---- */

/* One HTTP/1.0 request over a real socket; returns the whole response. */
static char *http_get(int family, uint16_t port, const char *method,
		      const char *path)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	char req[256], *buf = NULL;
	size_t len = 0, cap = 0;
	int fd;

	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*a);
	}
	fd = socket(family, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n",
		 method, path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		assert_true(n >= 0);
		if (!n)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static const char *body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	assert_non_null(b);
	return b + 4;
}

/* Pipe text into `promtool check metrics`; its exit status. */
static int promtool_check(const char *text)
{
	FILE *p = popen("promtool check metrics >&2", "w");
	int st;

	assert_non_null(p);
	fputs(text, p);
	st = pclose(p);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_http_scrape_promtool(void **state)
{
	struct metrics_http *h;
	char *err = NULL, *resp;
	uint16_t port;

	(void)state;
	metrics_set_info("test", "tracepoint");
	metrics_event(VT_OP_RENAME, VT_MODE_TRACEPOINT);
	metrics_sync_done(true, 0.012);
	assert_int_equal(metrics_http_start("127.0.0.1:0", &h, &err), 0);
	assert_null(err);
	port = metrics_http_port(h);
	assert_true(port > 0);

	resp = http_get(AF_INET, port, "GET", "/metrics");
	assert_non_null(strstr(resp, "HTTP/1.0 200") ?: strstr(resp, "HTTP/1.1 200"));
	assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
	assert_line(body_of(resp), "voltrace_events_total{op=\"rename\",mode=\"tracepoint\"} 1");
	assert_line(body_of(resp), "voltrace_sync_duration_seconds_count 1");
	assert_int_equal(promtool_check(body_of(resp)), 0);
	free(resp);

	/* promtool does catch broken text: the check above can fail. */
	assert_int_not_equal(promtool_check("# TYPE x_total counter\nx_total{a=\"b} 1\n"), 0);

	resp = http_get(AF_INET, port, "GET", "/");
	assert_non_null(strstr(resp, " 404 "));
	free(resp);
	resp = http_get(AF_INET, port, "POST", "/metrics");
	assert_non_null(strstr(resp, " 405 "));
	free(resp);
	resp = http_get(AF_INET, port, "HEAD", "/metrics");
	assert_non_null(strstr(resp, " 200 "));
	assert_string_equal(body_of(resp), "");
	free(resp);
	metrics_http_stop(h);
}

static void test_http_ipv6(void **state)
{
	struct metrics_http *h;
	char *err = NULL, *resp;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	(void)state;
	if (fd < 0) {
		skip();
		return;
	}
	close(fd);
	assert_int_equal(metrics_http_start("[::1]:0", &h, &err), 0);
	resp = http_get(AF_INET6, metrics_http_port(h), "GET", "/metrics");
	assert_non_null(strstr(resp, " 200 "));
	assert_non_null(strstr(body_of(resp), "voltrace_watches 0\n"));
	free(resp);
	metrics_http_stop(h);
}

static void test_http_errors(void **state)
{
	struct metrics_http *h, *h2;
	char *err = NULL, addr[64];

	(void)state;
	assert_int_equal(metrics_http_start("off", &h, &err), 0);
	assert_null(h);
	assert_int_equal(metrics_http_start("", &h, &err), 0);
	assert_null(h);
	assert_int_equal(metrics_http_start("nonsense", &h, &err), -1);
	assert_string_equal(err, "metrics_address \"nonsense\": not HOST:PORT or [IPV6]:PORT");
	free(err);
	assert_int_equal(metrics_http_start("192.0.2.1:0", &h, &err), -1);
	assert_non_null(strstr(err, "Cannot assign requested address"));
	free(err);

	assert_int_equal(metrics_http_start("127.0.0.1:0", &h, &err), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", metrics_http_port(h));
	assert_int_equal(metrics_http_start(addr, &h2, &err), -1);
	assert_non_null(strstr(err, "Address already in use"));
	free(err);
	metrics_http_stop(h);
	/* The port is free again once stopped. */
	assert_int_equal(metrics_http_start(addr, &h2, &err), 0);
	metrics_http_stop(h2);
}

/* The daemon may hold many fds: the server must not rely on select(). */
static void test_http_high_fd(void **state)
{
	struct rlimit rl;
	struct metrics_http *h;
	char *err = NULL, *resp;
	int fds[1100], n = 0;

	(void)state;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < 1200) {
		skip();
		return;
	}
	while (n < 1100 && (fds[n] = dup(0)) >= 0 && fds[n] < 1100)
		n++;
	assert_int_equal(metrics_http_start("127.0.0.1:0", &h, &err), 0);
	resp = http_get(AF_INET, metrics_http_port(h), "GET", "/metrics");
	assert_non_null(strstr(resp, " 200 "));
	free(resp);
	metrics_http_stop(h);
	while (n--)
		close(fds[n]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_names_and_types, reset),
		cmocka_unit_test_setup(test_values, reset),
		cmocka_unit_test_setup(test_escaping, reset),
		cmocka_unit_test_setup(test_threads, reset),
		cmocka_unit_test_setup(test_http_scrape_promtool, reset),
		cmocka_unit_test_setup(test_http_ipv6, reset),
		cmocka_unit_test_setup(test_http_errors, reset),
		cmocka_unit_test_setup(test_http_high_fd, reset),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
