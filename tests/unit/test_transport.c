// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Agent URL parsing, guest path validation, connecting with a handshake. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "guest_path.h"
#include "transport.h"

static void test_url_accepted(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_url u;
	char *s;

	(void)state;
	assert_int_equal(agent_url_parse("unix:///run/kata/agent.sock", &u, &st), 0);
	assert_int_equal(u.kind, AGENT_URL_UNIX);
	assert_string_equal(u.path, "/run/kata/agent.sock");
	s = agent_url_format(&u);
	assert_string_equal(s, "unix:///run/kata/agent.sock");
	free(s);
	agent_url_release(&u);

	assert_int_equal(agent_url_parse("vsock://3:1024", &u, &st), 0);
	assert_int_equal(u.kind, AGENT_URL_VSOCK);
	assert_int_equal(u.cid, 3);
	assert_int_equal(u.port, 1024);
	s = agent_url_format(&u);
	assert_string_equal(s, "vsock://3:1024");
	free(s);
	agent_url_release(&u);

	assert_int_equal(agent_url_parse("vsock://4294967295:4294967295", &u, &st), 0);
	assert_int_equal(u.cid, 4294967295u);
	agent_url_release(&u);

	assert_int_equal(agent_url_parse(
		"hvsock:///run/vc/firecracker/abc/root/kata.hvsock:1024", &u, &st), 0);
	assert_int_equal(u.kind, AGENT_URL_HVSOCK);
	assert_string_equal(u.path, "/run/vc/firecracker/abc/root/kata.hvsock");
	assert_int_equal(u.port, 1024);
	s = agent_url_format(&u);
	assert_string_equal(s, "hvsock:///run/vc/firecracker/abc/root/kata.hvsock:1024");
	free(s);
	agent_url_release(&u);

	/* A colon inside the hvsock path: the last one separates the port. */
	assert_int_equal(agent_url_parse("hvsock:///tmp/a:b/k.sock:5", &u, &st), 0);
	assert_string_equal(u.path, "/tmp/a:b/k.sock");
	assert_int_equal(u.port, 5);
	agent_url_release(&u);
}

static void test_url_malformed(void **state)
{
	static const char *const bad[] = {
		"", "unix://", "unix://relative.sock", "unix:/x", "tcp://1.2.3.4:80",
		"vsock://", "vsock://3", "vsock://3:", "vsock://:1024",
		"vsock://x:1024", "vsock://3:1024x", "vsock://-1:1024",
		"vsock://3:0", "vsock://3:4294967296", "vsock://3:1024:5",
		"hvsock://", "hvsock:///tmp/k.sock", "hvsock:///tmp/k.sock:",
		"hvsock://rel.sock:1024", "hvsock:///tmp/k.sock:port",
		"HVSOCK:///tmp/k.sock:1", "/tmp/agent.sock",
		"unix:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
		"unix:///tmp/a\nb",
	};
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_url u;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (agent_url_parse(bad[i], &u, &st) == 0)
			fail_msg("accepted malformed URL \"%s\"", bad[i]);
		assert_int_equal(st.code, GRPC_INVALID_ARGUMENT);
		assert_non_null(strstr(st.message, "accepted forms: unix:///"));
		ttrpc_status_clear(&st);
		agent_url_release(&u);
	}
	assert_int_equal(agent_url_parse(NULL, &u, &st), -1);
	ttrpc_status_clear(&st);
}

static void test_guest_path(void **state)
{
	char *out, *err;

	(void)state;
	assert_int_equal(guest_path_normalize(
		"/run/kata-containers/shared/containers//abc/./vol/", &out, &err), 0);
	assert_string_equal(out, "/run/kata-containers/shared/containers/abc/vol");
	assert_true(guest_path_allowed(out));
	free(out);
	static const char *const bad[] = {
		"", "relative/x", "/etc/passwd", "/run/kata-containers/shared/containers",
		"/run/kata-containers/shared/containers/", "/run/kata-containers/shared/containersX/a",
		"/run/kata-containers/shared/containers/../x",
		"/run/kata-containers/shared/containers/a/../../x",
		"/run/kata-containers/shared/containers/a\n",
		"/run/kata-containers/shared",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (guest_path_normalize(bad[i], &out, &err) == 0)
			fail_msg("accepted guest path \"%s\"", bad[i]);
		assert_non_null(err);
		assert_non_null(strstr(err, "guest path"));
		free(err);
	}
	assert_false(guest_path_allowed("/run/kata-containers/shared/containers/a/../../../etc"));
	out = guest_path_join("/run/kata-containers/shared/containers/a", "..data/k");
	assert_string_equal(out, "/run/kata-containers/shared/containers/a/..data/k");
	free(out);
	assert_null(guest_path_join("/run/kata-containers/shared/containers/a", "../x"));
	assert_null(guest_path_join("/run/kata-containers/shared/containers/a", "/x"));
	out = guest_path_join("/run/kata-containers/shared/containers/a", "");
	assert_string_equal(out, "/run/kata-containers/shared/containers/a");
	free(out);
}

struct hv_server {
	int lfd;
	const char *reply;
	char got[64];
};

static void *hv_serve(void *arg)
{
	struct hv_server *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	size_t n = 0;

	if (fd < 0)
		return NULL;
	while (n < sizeof(s->got) - 1 && read(fd, s->got + n, 1) == 1 &&
	       s->got[n] != '\n')
		n++;
	s->got[n] = '\0';
	if (s->reply && write(fd, s->reply, strlen(s->reply)) < 0)
		perror("write");
	usleep(300000);
	close(fd);
	return NULL;
}

static int listen_at(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	unlink(path);
	strcpy(sun.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static void hv_case(const char *reply, int expect_ok, const char *expect_msg)
{
	char path[] = "/tmp/vt-hv-XXXXXX";
	char sock[64], url[96];
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct hv_server s = { .reply = reply };
	struct agent_url u;
	pthread_t th;
	int fd;

	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/k.hvsock", path);
	snprintf(url, sizeof(url), "hvsock://%s:1024", sock);
	s.lfd = listen_at(sock);
	pthread_create(&th, NULL, hv_serve, &s);
	assert_int_equal(agent_url_parse(url, &u, &st), 0);
	fd = transport_connect(&u, 150, &st);
	pthread_join(th, NULL);
	assert_string_equal(s.got, "CONNECT 1024");
	if (expect_ok) {
		assert_true(fd >= 0);
		close(fd);
	} else {
		assert_int_equal(fd, -1);
		assert_int_equal(st.code, GRPC_UNAVAILABLE);
		if (!strstr(st.message, expect_msg))
			fail_msg("message \"%s\" lacks \"%s\"", st.message, expect_msg);
	}
	ttrpc_status_clear(&st);
	agent_url_release(&u);
	close(s.lfd);
	unlink(sock);
	rmdir(path);
}

static void test_hvsock_handshake(void **state)
{
	(void)state;
	hv_case("OK 1073741824\n", 1, NULL);
	hv_case("NO\n", 0, "handshake refused");
	hv_case(NULL, 0, "no reply to CONNECT 1024");
}

static void test_connect_refused(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct agent_url u;

	(void)state;
	assert_int_equal(agent_url_parse("unix:///nonexistent/agent.sock", &u, &st), 0);
	assert_int_equal(transport_connect(&u, 1000, &st), -1);
	assert_int_equal(st.code, GRPC_UNAVAILABLE);
	assert_string_equal(st.message,
		"Unavailable: connect unix:///nonexistent/agent.sock: No such file or directory");
	ttrpc_status_clear(&st);
	agent_url_release(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_accepted),
		cmocka_unit_test(test_url_malformed),
		cmocka_unit_test(test_guest_path),
		cmocka_unit_test(test_hvsock_handshake),
		cmocka_unit_test(test_connect_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
