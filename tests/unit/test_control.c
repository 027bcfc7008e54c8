// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Control API: message encoding, and control_server driven by its epoll fd
 * in a thread, talked to by the real `voltrace ctl` code (cmd_ctl) and by
 * raw ttrpc frames over a real unix socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "commands.h"
#include "control.pb-c.h"
#include "control_server.h"
#include "metrics.h"
#include "transport.h"
#include "ttrpc.h"

/* ---- fake daemon ---- */

static struct {
	int calls;
	char source[4096], agent[4096], dest[4096];
	bool dest_null;
	int code;		/* what the next call answers */
	const char *msg;
} fake;

static void record(const char *source, const char *agent, const char *dest)
{
	fake.calls++;
	snprintf(fake.source, sizeof(fake.source), "%s", source ? source : "");
	snprintf(fake.agent, sizeof(fake.agent), "%s", agent ? agent : "");
	snprintf(fake.dest, sizeof(fake.dest), "%s", dest ? dest : "");
	fake.dest_null = !dest;
}

static int answer(char **errmsg)
{
	if (fake.code && fake.msg)
		*errmsg = strdup(fake.msg);
	return fake.code;
}

static int f_watch(void *ctx, const char *source, const char *agent,
		   const char *dest, char **errmsg)
{
	(void)ctx;
	record(source, agent, dest);
	return answer(errmsg);
}

static int f_unwatch(void *ctx, const char *source, const char *dest,
		     unsigned int *removed, char **errmsg)
{
	(void)ctx;
	record(source, NULL, dest);
	*removed = dest ? 1 : 2;
	return answer(errmsg);
}

static int f_list(void *ctx, struct control_list *out, char **errmsg)
{
	struct control_watch_info w = {
		.source = "/var/lib/kubelet/pods/u/volumes/kubernetes.io~configmap/c\"m",
		.agent = "vsock://3:1024",
		.dest = "/run/kata-containers/shared/containers/c/cm",
		.origin = "config",
		.state = "synced",
		.last_sync_unix_ns = 1795346205000000000ull,
		.syncs = 7,
		.files_copied = 21,
		.bytes_copied = 4096,
	};

	(void)ctx;
	fake.calls++;
	if (fake.code)
		return answer(errmsg);
	if (control_list_add(out, &w))
		return CONTROL_INTERNAL;
	w.source = "/tmp/s2";
	w.origin = "api";
	w.state = "error";
	w.last_error = "Unavailable: connect vsock://3:1024: Connection refused";
	w.last_sync_unix_ns = 0;
	return control_list_add(out, &w) ? CONTROL_INTERNAL : 0;
}

static int f_status(void *ctx, struct control_status *st, char **errmsg)
{
	(void)ctx;
	fake.calls++;
	st->mode = "tracepoint";
	st->metrics_address = "127.0.0.1:9464";
	st->state_file = "/run/voltrace/state.json";
	st->watches = 3;
	st->events = 42;
	st->events_dropped = 1;
	st->syncs_ok = 10;
	st->syncs_error = 2;
	st->uptime_ns = 90061ull * 1000000000ull;	/* 1d 01h01m01s */
	return answer(errmsg);
}

static const struct control_ops ops = {
	.watch = f_watch, .unwatch = f_unwatch, .list = f_list, .status = f_status,
};

/* ---- server thread ---- */

static char dir[64], sock[128];
static struct control_server *srv;
static pthread_t srv_thread;
static volatile int srv_stop;

static void *serve(void *arg)
{
	struct pollfd p = { .fd = control_server_fd(srv), .events = POLLIN };

	(void)arg;
	while (!srv_stop) {
		if (poll(&p, 1, 20) > 0)
			assert_int_equal(control_server_process(srv), 0);
	}
	return NULL;
}

static int start(void **state)
{
	char *err = NULL;

	(void)state;
	memset(&fake, 0, sizeof(fake));
	strcpy(dir, "/tmp/vt-ctl-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/run/voltrace/control.sock", dir);
	if (control_server_open(sock, &ops, NULL, &srv, &err)) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	srv_stop = 0;
	return pthread_create(&srv_thread, NULL, serve, NULL);
}

static int stop(void **state)
{
	char cmd[128];

	(void)state;
	srv_stop = 1;
	pthread_join(srv_thread, NULL);
	control_server_close(srv);
	srv = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* ---- running `voltrace ctl` in process ---- */

struct run {
	int rc;
	char out[16384];
	char err[16384];
};

static void slurp(int fd, char *buf, size_t n)
{
	ssize_t r;

	lseek(fd, 0, SEEK_SET);
	r = read(fd, buf, n - 1);
	buf[r > 0 ? r : 0] = '\0';
	close(fd);
}

static void ctl(struct run *r, ...)
{
	char *argv[16];
	int argc = 0, so, se, fo, fe;
	char tmpl_o[] = "/tmp/vt-ctl-out-XXXXXX", tmpl_e[] = "/tmp/vt-ctl-err-XXXXXX";
	va_list ap;

	argv[argc++] = "ctl";
	argv[argc++] = "--socket";
	argv[argc++] = sock;
	va_start(ap, r);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	fo = mkstemp(tmpl_o);
	fe = mkstemp(tmpl_e);
	unlink(tmpl_o);
	unlink(tmpl_e);
	fflush(stdout);
	so = dup(1);
	se = dup(2);
	dup2(fo, 1);
	dup2(fe, 2);
	r->rc = cmd_ctl(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(fo, r->out, sizeof(r->out));
	slurp(fe, r->err, sizeof(r->err));
}

#define assert_contains(hay, needle) do { \
	if (!strstr((hay), (needle))) { \
		print_error("\"%s\" not in:\n%s\n", (needle), (hay)); \
		fail(); \
	} \
} while (0)

/* ---- encoding ---- */

static void test_encoding(void **state)
{
	Voltrace__V1__WatchRequest w = VOLTRACE__V1__WATCH_REQUEST__INIT, *wd;
	struct ttrpc_status st = TTRPC_STATUS_INIT, call = TTRPC_STATUS_INIT;
	struct ttrpc_request req;
	uint8_t buf[512], *env, *payload;
	size_t n, env_len, plen;

	(void)state;
	w.source = "/src \"q\"\n";
	w.agent = "unix:///a.sock";
	w.dest = "/run/kata-containers/shared/containers/x";
	n = voltrace__v1__watch_request__pack(&w, buf);
	/* field 1, wire type 2 (length-delimited) */
	assert_int_equal(buf[0], 0x0a);
	assert_int_equal(buf[1], strlen(w.source));
	assert_int_equal(ttrpc_request_encode(CONTROL_SERVICE, "Watch", buf, n, 0,
					      &env, &env_len, &st), 0);
	assert_int_equal(ttrpc_request_decode(env, env_len, &req, &st), 0);
	assert_string_equal(req.service, "voltrace.v1.Control");
	assert_string_equal(req.method, "Watch");
	wd = voltrace__v1__watch_request__unpack(NULL, req.payload_len, req.payload);
	assert_non_null(wd);
	assert_string_equal(wd->source, w.source);
	assert_string_equal(wd->agent, w.agent);
	assert_string_equal(wd->dest, w.dest);
	voltrace__v1__watch_request__free_unpacked(wd, NULL);
	ttrpc_request_release(&req);
	free(env);

	/* A refusal: status travels in Response.status. */
	assert_int_equal(ttrpc_response_encode(CONTROL_NOT_FOUND, "no watch of /x",
					       NULL, 0, &env, &env_len, &st), 0);
	assert_int_equal(ttrpc_response_decode(env, env_len, &call, &payload, &plen, &st), 0);
	assert_int_equal(call.code, CONTROL_NOT_FOUND);
	assert_string_equal(call.message, "NotFound: no watch of /x");
	ttrpc_status_clear(&call);
	free(env);

	/* Empty messages pack to zero bytes: a Go client sends exactly that. */
	{
		Voltrace__V1__ListRequest l = VOLTRACE__V1__LIST_REQUEST__INIT;

		assert_int_equal(voltrace__v1__list_request__get_packed_size(&l), 0);
	}
}

/* ---- through cmd_ctl ---- */

static void test_ctl_watch(void **state)
{
	struct run r;
	char cwd[4096], want[4200];

	(void)state;
	ctl(&r, "watch", "/var/lib/kubelet/pods/x", "--agent", "vsock://3:1024",
	    "--dest", "/run/kata-containers/shared/containers/c/x", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(fake.calls, 1);
	assert_string_equal(fake.source, "/var/lib/kubelet/pods/x");
	assert_string_equal(fake.agent, "vsock://3:1024");
	assert_string_equal(fake.dest, "/run/kata-containers/shared/containers/c/x");
	assert_contains(r.out, "watching /var/lib/kubelet/pods/x -> /run/kata-containers/shared/containers/c/x");

	/* A relative SOURCE is sent absolute; --opt=value works too. */
	ctl(&r, "watch", "rel/dir", "--agent=unix:///a.sock", "--dest=/run/kata-containers/shared/containers/d", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/rel/dir", cwd);
	assert_string_equal(fake.source, want);
}

static void test_ctl_refusal(void **state)
{
	struct run r;

	(void)state;
	fake.code = CONTROL_INVALID_ARGUMENT;
	fake.msg = "source /etc is outside allowed_sources (/var/lib/kubelet/pods)";
	ctl(&r, "watch", "/etc", "--agent", "vsock://3:1024",
	    "--dest", "/run/kata-containers/shared/containers/c/x", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "");
	assert_contains(r.err, "InvalidArgument: source /etc is outside allowed_sources (/var/lib/kubelet/pods)");

	fake.code = CONTROL_NOT_FOUND;
	fake.msg = "no watch of /nope";
	ctl(&r, "unwatch", "/nope", NULL);
	assert_int_equal(r.rc, 1);
	assert_contains(r.err, "NotFound: no watch of /nope");

	fake.code = CONTROL_INTERNAL;
	fake.msg = NULL;	/* a refusal without message still says something */
	ctl(&r, "list", NULL);
	assert_int_equal(r.rc, 1);
	assert_contains(r.err, "Internal: list failed");
}

static void test_ctl_unwatch(void **state)
{
	struct run r;

	(void)state;
	ctl(&r, "unwatch", "/a", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(fake.source, "/a");
	assert_true(fake.dest_null);
	assert_contains(r.out, "removed 2 watches of /a");
	ctl(&r, "unwatch", "/a", "--dest", "/run/kata-containers/shared/containers/z", NULL);
	assert_int_equal(r.rc, 0);
	assert_false(fake.dest_null);
	assert_string_equal(fake.dest, "/run/kata-containers/shared/containers/z");
	assert_contains(r.out, "removed 1 watch of /a");
}

static void test_ctl_list(void **state)
{
	struct run r;
	json_object *j, *e, *v;

	(void)state;
	ctl(&r, "list", NULL);
	assert_int_equal(r.rc, 0);
	assert_contains(r.out, "synced   config   2026-");
	assert_contains(r.out, "/var/lib/kubelet/pods/u/volumes/kubernetes.io~configmap/c\"m -> /run/kata-containers/shared/containers/c/cm (vsock://3:1024)");
	assert_contains(r.out, "error    api      never");
	assert_contains(r.out, "error: Unavailable: connect vsock://3:1024: Connection refused");

	ctl(&r, "list", "--json", NULL);
	assert_int_equal(r.rc, 0);
	j = json_tokener_parse(r.out);
	assert_non_null(j);
	assert_int_equal(json_object_array_length(j), 2);
	e = json_object_array_get_idx(j, 0);
	assert_true(json_object_object_get_ex(e, "source", &v));
	assert_string_equal(json_object_get_string(v),
			    "/var/lib/kubelet/pods/u/volumes/kubernetes.io~configmap/c\"m");
	assert_true(json_object_object_get_ex(e, "syncs", &v));
	assert_int_equal(json_object_get_int64(v), 7);
	assert_true(json_object_object_get_ex(e, "last_sync_unix_nano", &v));
	assert_int_equal(json_object_get_uint64(v), 1795346205000000000ull);
	e = json_object_array_get_idx(j, 1);
	assert_true(json_object_object_get_ex(e, "origin", &v));
	assert_string_equal(json_object_get_string(v), "api");
	json_object_put(j);
}

static void test_ctl_status(void **state)
{
	struct utsname u;
	struct run r;
	json_object *j, *v;

	(void)state;
	uname(&u);
	ctl(&r, "status", NULL);
	assert_int_equal(r.rc, 0);
	assert_contains(r.out, "mode:             tracepoint\n");
	assert_contains(r.out, "uptime:           1d 01h01m01s\n");
	assert_contains(r.out, "events:           42 (dropped 1)\n");
	assert_contains(r.out, "syncs:            10 ok, 2 failed\n");
	assert_contains(r.out, u.release);
	assert_contains(r.out, sock);

	ctl(&r, "status", "--json", NULL);
	assert_int_equal(r.rc, 0);
	j = json_tokener_parse(r.out);
	assert_non_null(j);
	assert_true(json_object_object_get_ex(j, "kernel", &v));
	assert_string_equal(json_object_get_string(v), u.release);
	assert_true(json_object_object_get_ex(j, "watches", &v));
	assert_int_equal(json_object_get_int64(v), 3);
	assert_true(json_object_object_get_ex(j, "control_socket", &v));
	assert_string_equal(json_object_get_string(v), sock);
	json_object_put(j);
}

static void test_ctl_usage(void **state)
{
	struct run r;

	(void)state;
	ctl(&r, "watch", "/a", "--dest", "/run/kata-containers/shared/containers/x", NULL);
	assert_int_equal(r.rc, 2);
	assert_contains(r.err, "watch needs --agent URL and --dest GUEST_DIR");
	ctl(&r, "watch", "--agent", "vsock://1:2", "--dest", "/d", NULL);
	assert_int_equal(r.rc, 2);
	ctl(&r, "frobnicate", NULL);
	assert_int_equal(r.rc, 2);
	assert_contains(r.err, "unknown command 'frobnicate'");
	ctl(&r, "list", "--bogus", NULL);
	assert_int_equal(r.rc, 2);
	ctl(&r, "unwatch", "/a", "--dest", NULL);
	assert_int_equal(r.rc, 2);
	assert_contains(r.err, "--dest needs a value");
	ctl(&r, NULL);
	assert_int_equal(r.rc, 2);
	ctl(&r, "--help", NULL);
	assert_int_equal(r.rc, 0);
	assert_contains(r.out, "usage: voltrace ctl");
	assert_int_equal(fake.calls, 0);
}

static void test_ctl_no_daemon(void **state)
{
	char *argv[] = { "ctl", "--socket", "/tmp/vt-nonexistent/control.sock", "status", NULL };
	int so = dup(2), fe;
	char tmpl[] = "/tmp/vt-ctl-err-XXXXXX", buf[1024];
	ssize_t n;
	int rc;

	(void)state;
	fe = mkstemp(tmpl);
	unlink(tmpl);
	dup2(fe, 2);
	rc = cmd_ctl(4, argv);
	dup2(so, 2);
	close(so);
	lseek(fe, 0, SEEK_SET);
	n = read(fe, buf, sizeof(buf) - 1);
	close(fe);
	buf[n > 0 ? n : 0] = '\0';
	assert_int_equal(rc, 1);
	assert_contains(buf, "/tmp/vt-nonexistent/control.sock");
	assert_contains(buf, "is 'voltrace run' running?");
}

/* ---- raw ttrpc ---- */

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* One call through the real ttrpc client; returns the status code. */
static int raw_call(const char *service, const char *method,
		    const uint8_t *payload, size_t len, char **msg)
{
	struct agent_url url = { .kind = AGENT_URL_UNIX, .path = sock };
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_client *c;
	uint8_t *resp = NULL;
	size_t resp_len;
	int fd, code;

	fd = transport_connect(&url, 2000, &st);
	assert_true(fd >= 0);
	c = ttrpc_client_new(fd);
	ttrpc_client_call(c, service, method, payload, len, 2000000000ull,
			  &resp, &resp_len, &st);
	ttrpc_client_free(c);
	free(resp);
	code = st.code;
	if (msg)
		*msg = st.message ? strdup(st.message) : NULL;
	ttrpc_status_clear(&st);
	return code;
}

static void test_raw_errors(void **state)
{
	static const uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff };	/* truncated field */
	char *msg;

	(void)state;
	assert_int_equal(raw_call(CONTROL_SERVICE, "Status", NULL, 0, NULL), 0);
	assert_int_equal(raw_call(CONTROL_SERVICE, "Explode", NULL, 0, &msg),
			 CONTROL_UNIMPLEMENTED);
	assert_string_equal(msg, "Unimplemented: unknown method voltrace.v1.Control/Explode");
	free(msg);
	assert_int_equal(raw_call("grpc.AgentService", "CopyFile", NULL, 0, &msg),
			 CONTROL_UNIMPLEMENTED);
	assert_contains(msg, "unknown service \"grpc.AgentService\"");
	free(msg);
	assert_int_equal(raw_call(CONTROL_SERVICE, "Watch", junk, sizeof(junk), &msg),
			 CONTROL_INVALID_ARGUMENT);
	assert_string_equal(msg, "InvalidArgument: WatchRequest does not decode");
	free(msg);
	/* An empty WatchRequest never reaches the daemon. */
	assert_int_equal(raw_call(CONTROL_SERVICE, "Watch", NULL, 0, &msg),
			 CONTROL_INVALID_ARGUMENT);
	assert_contains(msg, "watch needs a source, an agent URL and a dest");
	free(msg);
	assert_int_equal(fake.calls, 1);	/* only Status */
}

static void test_raw_split_frames(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT, call = TTRPC_STATUS_INIT;
	struct ttrpc_frame f = { 0 };
	uint8_t *env, *frame, *payload = NULL;
	size_t env_len, frame_len, plen;
	int fd = raw_connect();

	(void)state;
	assert_int_equal(ttrpc_request_encode(CONTROL_SERVICE, "Status", NULL, 0, 0,
					      &env, &env_len, &st), 0);
	assert_int_equal(ttrpc_frame_encode(7, TTRPC_TYPE_REQUEST, env, env_len,
					    &frame, &frame_len, &st), 0);
	/* One byte at a time, with pauses: the server must reassemble. */
	for (size_t i = 0; i < frame_len; i++) {
		assert_int_equal(write(fd, frame + i, 1), 1);
		if (i % 8 == 0)
			usleep(2000);
	}
	assert_int_equal(ttrpc_read_frame(fd, TTRPC_TYPE_RESPONSE, 2000, &f, &st), 0);
	assert_int_equal(f.hdr.stream_id, 7);
	assert_int_equal(ttrpc_response_decode(f.data, f.hdr.length, &call, &payload,
					       &plen, &st), 0);
	assert_int_equal(call.code, 0);
	ttrpc_frame_release(&f);
	free(payload);

	/* Two requests in one write: two answers, in order. */
	{
		uint8_t *two = malloc(2 * frame_len);

		memcpy(two, frame, frame_len);
		memcpy(two + frame_len, frame, frame_len);
		two[frame_len + 7] = 9;	/* second stream id: 9 */
		assert_int_equal(write(fd, two, 2 * frame_len), (ssize_t)(2 * frame_len));
		free(two);
		assert_int_equal(ttrpc_read_frame(fd, TTRPC_TYPE_RESPONSE, 2000, &f, &st), 0);
		assert_int_equal(f.hdr.stream_id, 7);
		ttrpc_frame_release(&f);
		assert_int_equal(ttrpc_read_frame(fd, TTRPC_TYPE_RESPONSE, 2000, &f, &st), 0);
		assert_int_equal(f.hdr.stream_id, 9);
		ttrpc_frame_release(&f);
	}
	close(fd);
	free(frame);
	free(env);
}

static void expect_hangup(const uint8_t *bytes, size_t len)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_frame f = { 0 };
	int fd = raw_connect();

	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	assert_int_equal(ttrpc_read_frame(fd, TTRPC_TYPE_RESPONSE, 2000, &f, &st), -1);
	assert_int_equal(st.code, GRPC_UNAVAILABLE);	/* closed, not timed out */
	ttrpc_status_clear(&st);
	close(fd);
}

static void test_raw_bad_frames(void **state)
{
	/* 2 MiB announced: above the control API's 1 MiB bound. */
	static const uint8_t big[] = { 0, 0x20, 0, 0, 0, 0, 0, 1, 1, 0 };
	/* Even stream id: not a ttrpc client. */
	static const uint8_t even[] = { 0, 0, 0, 0, 0, 0, 0, 2, 1, 0 };
	/* A response frame sent to the server. */
	static const uint8_t resp[] = { 0, 0, 0, 0, 0, 0, 0, 1, 2, 0 };

	(void)state;
	expect_hangup(big, sizeof(big));
	expect_hangup(even, sizeof(even));
	expect_hangup(resp, sizeof(resp));
	/* The server is still fine. */
	assert_int_equal(raw_call(CONTROL_SERVICE, "Status", NULL, 0, NULL), 0);
}

static void test_permission_denied(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	/* Let an unprivileged user reach the socket to see the uid check work. */
	assert_int_equal(chmod(sock, 0666), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *msg = NULL;
		int code;

		if (setgid(65534) || setuid(65534))
			_exit(100);
		code = raw_call(CONTROL_SERVICE, "Watch", NULL, 0, &msg);
		if (code != CONTROL_PERMISSION_DENIED || !msg ||
		    !strstr(msg, "accepts only root (peer uid 65534"))
			_exit(101);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(fake.calls, 0);
	assert_int_equal(chmod(sock, 0600), 0);
}

static size_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_many_connections(void **state)
{
	size_t before;
	int fds[80];

	(void)state;
	/* Warm up (first call allocates what stays allocated). */
	assert_int_equal(raw_call(CONTROL_SERVICE, "Status", NULL, 0, NULL), 0);
	usleep(50000);
	before = count_fds();
	for (int i = 0; i < 300; i++)
		assert_int_equal(raw_call(CONTROL_SERVICE, "Status", NULL, 0, NULL), 0);
	/* Idle connections beyond the limit are dropped, not served. */
	for (int i = 0; i < 80; i++)
		fds[i] = raw_connect();
	usleep(100000);
	for (int i = 0; i < 80; i++)
		close(fds[i]);
	usleep(100000);
	assert_int_equal(raw_call(CONTROL_SERVICE, "Status", NULL, 0, NULL), 0);
	/* The server closes its end when it sees our EOF: give it a moment. */
	for (int i = 0; i < 100 && count_fds() != before; i++)
		usleep(10000);
	assert_int_equal(count_fds(), before);
}

/* ---- socket lifecycle (no server thread) ---- */

static void test_socket_lifecycle(void **state)
{
	char d[] = "/tmp/vt-ctl-life-XXXXXX", path[128], *err = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control_server *a, *b;
	struct stat st;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(d));
	snprintf(path, sizeof(path), "%s/a/b/ctl.sock", d);
	assert_int_equal(control_server_open(path, &ops, NULL, &a, &err), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/a", d);
	assert_int_equal(stat(sa.sun_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);

	/* A live daemon's socket is not stolen. */
	assert_int_equal(control_server_open(path, &ops, NULL, &b, &err), -1);
	assert_contains(err, "another daemon is listening on it");
	free(err);
	control_server_close(a);
	assert_int_equal(lstat(path, &st), -1);	/* unlinked on close */

	/* A stale socket (daemon killed) is replaced. */
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(control_server_open(path, &ops, NULL, &a, &err), 0);
	control_server_close(a);

	/* A regular file is not removed. */
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	assert_int_equal(control_server_open(path, &ops, NULL, &a, &err), -1);
	assert_contains(err, "exists and is not a socket");
	free(err);
	unlink(path);

	assert_int_equal(control_server_open("relative.sock", &ops, NULL, &a, &err), -1);
	assert_contains(err, "must be an absolute path");
	free(err);
	snprintf(path, sizeof(path), "rm -rf %s", d);
	assert_int_equal(system(path), 0);
}

static void test_metrics_counted(void **state)
{
	char *text;

	(void)state;
	metrics_reset();
	assert_int_equal(raw_call(CONTROL_SERVICE, "Status", NULL, 0, NULL), 0);
	assert_int_equal(raw_call(CONTROL_SERVICE, "Nope", NULL, 0, NULL), CONTROL_UNIMPLEMENTED);
	assert_int_equal(raw_call(CONTROL_SERVICE, "Watch", NULL, 0, NULL), CONTROL_INVALID_ARGUMENT);
	text = metrics_render(NULL);
	/* Requests that reached a callback are the callback's to count. */
	assert_contains(text, "voltrace_control_requests_total{method=\"Status\",result=\"ok\"} 0\n");
	assert_contains(text, "voltrace_control_requests_total{method=\"other\",result=\"error\"} 1\n");
	assert_contains(text, "voltrace_control_requests_total{method=\"Watch\",result=\"error\"} 1\n");
	free(text);
}

/* ---- interop: containerd's Go ttrpc client ---- */

/*
 * Build tests/tools/control_client.go like the Go peer is built (GOPATH
 * mode, Debian's ttrpc and gogo packages) unless it is already there.
 */
static const char *go_client(void)
{
	static char path[512];
	const char *out = getenv("OUTPUT") ? getenv("OUTPUT") : "build";
	char cmd[2048];

	struct stat bin, src;

	snprintf(path, sizeof(path), "%s/tests/tools/control_client", out);
	if (stat(path, &bin) == 0 &&
	    (stat("tests/tools/control_client.go", &src) < 0 || src.st_mtime <= bin.st_mtime))
		return path;
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/tests/tools && GO111MODULE=off CGO_ENABLED=0 "
		 "GOPATH=$PWD/%s/gopath:/usr/share/gocode GOCACHE=$PWD/%s/gocache GOFLAGS= "
		 "go build -o %s tests/tools/control_client.go >&2",
		 out, out, out, path);
	if (system(cmd) != 0) {
		print_error("cannot build the Go control client (run from the repository root)\n");
		return NULL;
	}
	return path;
}

static int go_call(const char *args, char *out, size_t n)
{
	const char *bin = go_client();
	char cmd[1024];
	size_t got;
	FILE *p;

	assert_non_null(bin);
	snprintf(cmd, sizeof(cmd), "%s -socket %s %s", bin, sock, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	got = fread(out, 1, n - 1, p);
	out[got] = '\0';
	return WEXITSTATUS(pclose(p));
}

static void test_go_client(void **state)
{
	char out[8192], want[512];
	struct utsname u;

	(void)state;
	uname(&u);
	assert_int_equal(go_call("status", out, sizeof(out)), 0);
	assert_contains(out, "mode=tracepoint\n");
	snprintf(want, sizeof(want), "kernel=%s\n", u.release);
	assert_contains(out, want);
	assert_contains(out, "uptime_nano=90061000000000\n");
	assert_contains(out, "events=42\nevents_dropped=1\nsyncs_ok=10\nsyncs_error=2\n");
	snprintf(want, sizeof(want), "control_socket=%s\n", sock);
	assert_contains(out, want);

	assert_int_equal(go_call("list", out, sizeof(out)), 0);
	assert_contains(out, "watch source=\"/var/lib/kubelet/pods/u/volumes/kubernetes.io~configmap/c\\\"m\" "
			"agent=\"vsock://3:1024\" dest=\"/run/kata-containers/shared/containers/c/cm\" "
			"origin=config state=synced syncs=7 last_error=\"\"\n");
	assert_contains(out, "watch source=\"/tmp/s2\" agent=\"vsock://3:1024\" "
			"dest=\"/run/kata-containers/shared/containers/c/cm\" origin=api state=error syncs=7 "
			"last_error=\"Unavailable: connect vsock://3:1024: Connection refused\"\n");

	assert_int_equal(go_call("watch /v vsock://3:1024 /run/kata-containers/shared/containers/x",
				 out, sizeof(out)), 0);
	assert_string_equal(out, "watch ok\n");
	assert_string_equal(fake.source, "/v");
	assert_string_equal(fake.dest, "/run/kata-containers/shared/containers/x");

	assert_int_equal(go_call("unwatch /v", out, sizeof(out)), 0);
	assert_string_equal(out, "removed=2\n");
	assert_true(fake.dest_null);

	fake.code = CONTROL_FAILED_PRECONDITION;
	fake.msg = "source /v is not a directory";
	assert_int_equal(go_call("watch /v vsock://3:1024 /run/kata-containers/shared/containers/x",
				 out, sizeof(out)), 1);
	assert_string_equal(out, "error code=FailedPrecondition message=source /v is not a directory\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding),
		cmocka_unit_test_setup_teardown(test_ctl_watch, start, stop),
		cmocka_unit_test_setup_teardown(test_ctl_refusal, start, stop),
		cmocka_unit_test_setup_teardown(test_ctl_unwatch, start, stop),
		cmocka_unit_test_setup_teardown(test_ctl_list, start, stop),
		cmocka_unit_test_setup_teardown(test_ctl_status, start, stop),
		cmocka_unit_test_setup_teardown(test_ctl_usage, start, stop),
		cmocka_unit_test(test_ctl_no_daemon),
		cmocka_unit_test_setup_teardown(test_raw_errors, start, stop),
		cmocka_unit_test_setup_teardown(test_raw_split_frames, start, stop),
		cmocka_unit_test_setup_teardown(test_raw_bad_frames, start, stop),
		cmocka_unit_test_setup_teardown(test_permission_denied, start, stop),
		cmocka_unit_test_setup_teardown(test_many_connections, start, stop),
		cmocka_unit_test(test_socket_lifecycle),
		cmocka_unit_test_setup_teardown(test_metrics_counted, start, stop),
		cmocka_unit_test_setup_teardown(test_go_client, start, stop),
	};

	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
