// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * voltrace ctl: a client of the daemon's voltrace.v1.Control service.
 * Exit status: 0 done, 1 refused by the daemon or daemon unreachable
 * (its message is printed), 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "commands.h"
#include "config.h"
#include "control.pb-c.h"
#include "control_server.h"
#include "transport.h"
#include "ttrpc.h"
#include "util.h"

#define CONNECT_TIMEOUT_MS	5000
/* Watch may wait for the daemon to register and start the first copy. */
#define CALL_TIMEOUT_NS		(120ull * 1000000000ull)

struct ctl_args {
	const char *socket;
	const char *cmd;
	const char *pos[4];
	int npos;
	const char *agent;
	const char *dest;
	bool json;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: voltrace ctl [--socket PATH] COMMAND [ARGS]\n"
		"\n"
		"  watch SOURCE_DIR --agent URL --dest GUEST_DIR   keep GUEST_DIR in sync with SOURCE_DIR\n"
		"  unwatch SOURCE_DIR [--dest GUEST_DIR]          stop (all dests without --dest)\n"
		"  list [--json]                                  registered watches and their state\n"
		"  status [--json]                                daemon mode, kernel, uptime, counters\n"
		"\n"
		"URL: " AGENT_URL_FORMS "\n"
		"--socket defaults to " CONFIG_DEFAULT_CONTROL_SOCKET ".\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "voltrace ctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	return EXIT_USAGE;
}

/* --opt VALUE or --opt=VALUE */
static int opt_value(int argc, char **argv, int *i, const char *name,
		     const char **out)
{
	size_t nl = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, nl))
		return 0;
	if (a[nl] == '=') {
		*out = a + nl + 1;
		return 1;
	}
	if (a[nl])
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*out = argv[++*i];
	return 1;
}

static int parse_args(int argc, char **argv, struct ctl_args *a)
{
	static const char *const opts[] = { "--socket", "--agent", "--dest" };

	memset(a, 0, sizeof(*a));
	a->socket = CONFIG_DEFAULT_CONTROL_SOCKET;
	for (int i = 1; i < argc; i++) {
		const char **dst[] = { &a->socket, &a->agent, &a->dest };
		bool matched = false;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return -1;	/* done, exit 0 */
		}
		if (!strcmp(argv[i], "--json")) {
			a->json = true;
			continue;
		}
		for (size_t k = 0; k < ARRAY_SIZE(opts); k++) {
			int r = opt_value(argc, argv, &i, opts[k], dst[k]);

			if (r < 0)
				return usage_error("%s needs a value", opts[k]);
			if (r > 0) {
				matched = true;
				break;
			}
		}
		if (matched)
			continue;
		if (argv[i][0] == '-' && argv[i][1])
			return usage_error("unknown option %s", argv[i]);
		if (!a->cmd)
			a->cmd = argv[i];
		else if (a->npos < (int)ARRAY_SIZE(a->pos))
			a->pos[a->npos++] = argv[i];
		else
			return usage_error("too many arguments (%s)", argv[i]);
	}
	if (!a->cmd)
		return usage_error("%s", "missing command");
	return 0;
}

/* The daemon has another cwd: make a relative SOURCE absolute (lexically). */
static char *absolute(const char *path)
{
	char *cwd, *out;

	if (path[0] == '/')
		return strdup(path);
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	out = path_join(cwd, path);
	free(cwd);
	return out;
}

static int call(const char *socket_path, const char *method,
		const ProtobufCMessage *req, uint8_t **resp, size_t *resp_len)
{
	struct agent_url url = { .kind = AGENT_URL_UNIX, .path = (char *)socket_path };
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_client *c;
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	int fd, ret = -1;

	if (!buf) {
		fprintf(stderr, "voltrace ctl: out of memory\n");
		return -1;
	}
	protobuf_c_message_pack(req, buf);
	fd = transport_connect(&url, CONNECT_TIMEOUT_MS, &st);
	if (fd < 0) {
		fprintf(stderr, "voltrace ctl: %s (is 'voltrace run' running? --socket PATH)\n",
			ttrpc_status_str(&st));
		goto out;
	}
	c = ttrpc_client_new(fd);
	if (!c) {
		fprintf(stderr, "voltrace ctl: out of memory\n");
		goto out;
	}
	ret = ttrpc_client_call(c, CONTROL_SERVICE, method, buf, len,
				CALL_TIMEOUT_NS, resp, resp_len, &st);
	ttrpc_client_free(c);
	if (ret < 0)
		fprintf(stderr, "voltrace ctl %s: %s\n", method, ttrpc_status_str(&st));
out:
	ttrpc_status_clear(&st);
	free(buf);
	return ret;
}

static int ctl_watch(const struct ctl_args *a)
{
	Voltrace__V1__WatchRequest req = VOLTRACE__V1__WATCH_REQUEST__INIT;
	uint8_t *resp = NULL;
	size_t len = 0;
	char *src;
	int ret;

	if (a->npos != 1)
		return usage_error("%s", "watch takes one SOURCE_DIR");
	if (!a->agent || !a->dest)
		return usage_error("%s", "watch needs --agent URL and --dest GUEST_DIR");
	src = absolute(a->pos[0]);
	if (!src) {
		perror("voltrace ctl: getcwd");
		return EXIT_FAIL;
	}
	req.source = src;
	req.agent = (char *)a->agent;
	req.dest = (char *)a->dest;
	ret = call(a->socket, "Watch", &req.base, &resp, &len);
	if (!ret)
		printf("watching %s -> %s (agent %s)\n", src, a->dest, a->agent);
	free(resp);
	free(src);
	return ret ? EXIT_FAIL : EXIT_OK;
}

static int ctl_unwatch(const struct ctl_args *a)
{
	Voltrace__V1__UnwatchRequest req = VOLTRACE__V1__UNWATCH_REQUEST__INIT;
	Voltrace__V1__UnwatchResponse *r;
	uint8_t *resp = NULL;
	size_t len = 0;
	char *src;
	int ret;

	if (a->npos != 1)
		return usage_error("%s", "unwatch takes one SOURCE_DIR");
	if (a->agent)
		return usage_error("%s", "unwatch takes no --agent");
	src = absolute(a->pos[0]);
	if (!src) {
		perror("voltrace ctl: getcwd");
		return EXIT_FAIL;
	}
	req.source = src;
	req.dest = (char *)(a->dest ? a->dest : "");
	ret = call(a->socket, "Unwatch", &req.base, &resp, &len);
	if (!ret) {
		r = voltrace__v1__unwatch_response__unpack(NULL, len, resp);
		if (!r) {
			fprintf(stderr, "voltrace ctl: UnwatchResponse does not decode\n");
			ret = -1;
		} else {
			printf("removed %u watch%s of %s\n", r->removed,
			       r->removed == 1 ? "" : "es", src);
			voltrace__v1__unwatch_response__free_unpacked(r, NULL);
		}
	}
	free(resp);
	free(src);
	return ret ? EXIT_FAIL : EXIT_OK;
}

static void fmt_time(char *buf, size_t n, uint64_t unix_ns)
{
	time_t t = (time_t)(unix_ns / 1000000000ull);
	struct tm tm;

	if (!unix_ns) {
		snprintf(buf, n, "never");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void list_json(const Voltrace__V1__ListResponse *r)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < r->n_watches; i++) {
		const Voltrace__V1__WatchInfo *w = r->watches[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "source", json_object_new_string(w->source));
		json_object_object_add(o, "agent", json_object_new_string(w->agent));
		json_object_object_add(o, "dest", json_object_new_string(w->dest));
		json_object_object_add(o, "origin", json_object_new_string(w->origin));
		json_object_object_add(o, "state", json_object_new_string(w->state));
		json_object_object_add(o, "last_error", json_object_new_string(w->last_error));
		json_object_object_add(o, "last_sync_unix_nano",
				       json_object_new_uint64(w->last_sync_unix_nano));
		json_object_object_add(o, "syncs", json_object_new_uint64(w->syncs));
		json_object_object_add(o, "files_copied", json_object_new_uint64(w->files_copied));
		json_object_object_add(o, "bytes_copied", json_object_new_uint64(w->bytes_copied));
		json_object_array_add(arr, o);
	}
	print_json(arr);
}

static void list_table(const Voltrace__V1__ListResponse *r)
{
	if (!r->n_watches) {
		printf("no watches\n");
		return;
	}
	printf("%-8s %-8s %-20s %s -> %s (%s)\n", "STATE", "ORIGIN", "LAST SYNC",
	       "SOURCE", "DEST", "AGENT");
	for (size_t i = 0; i < r->n_watches; i++) {
		const Voltrace__V1__WatchInfo *w = r->watches[i];
		char when[32];

		fmt_time(when, sizeof(when), w->last_sync_unix_nano);
		printf("%-8s %-8s %-20s %s -> %s (%s)\n", w->state, w->origin, when,
		       w->source, w->dest, w->agent);
		if (w->last_error && *w->last_error)
			printf("         error: %s\n", w->last_error);
	}
}

static int ctl_list(const struct ctl_args *a)
{
	Voltrace__V1__ListRequest req = VOLTRACE__V1__LIST_REQUEST__INIT;
	Voltrace__V1__ListResponse *r;
	uint8_t *resp = NULL;
	size_t len = 0;

	if (a->npos || a->agent || a->dest)
		return usage_error("%s", "list takes only --json");
	if (call(a->socket, "List", &req.base, &resp, &len))
		return EXIT_FAIL;
	r = voltrace__v1__list_response__unpack(NULL, len, resp);
	free(resp);
	if (!r) {
		fprintf(stderr, "voltrace ctl: ListResponse does not decode\n");
		return EXIT_FAIL;
	}
	if (a->json)
		list_json(r);
	else
		list_table(r);
	voltrace__v1__list_response__free_unpacked(r, NULL);
	return EXIT_OK;
}

static void status_json(const Voltrace__V1__StatusResponse *r)
{
	json_object *o = json_object_new_object();

#define S(f) json_object_object_add(o, #f, json_object_new_string(r->f))
#define U(f) json_object_object_add(o, #f, json_object_new_uint64(r->f))
	S(version); S(mode); S(kernel); U(uptime_nano); U(watches); U(agents);
	U(events); U(events_dropped); U(syncs_ok); U(syncs_error);
	U(bytes_copied); U(files_copied); U(reconciles); U(guest_stale_dirs);
	S(control_socket); S(metrics_address); S(state_file);
#undef S
#undef U
	print_json(o);
}

static void status_text(const Voltrace__V1__StatusResponse *r)
{
	uint64_t up = r->uptime_nano / 1000000000ull;

	printf("version:          %s\n", r->version);
	printf("mode:             %s\n", r->mode);
	printf("kernel:           %s\n", r->kernel);
	printf("uptime:           %llud %02lluh%02llum%02llus\n",
	       (unsigned long long)(up / 86400), (unsigned long long)(up / 3600 % 24),
	       (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60));
	printf("watches:          %llu\n", (unsigned long long)r->watches);
	printf("agents:           %llu\n", (unsigned long long)r->agents);
	printf("events:           %llu (dropped %llu)\n", (unsigned long long)r->events,
	       (unsigned long long)r->events_dropped);
	printf("syncs:            %llu ok, %llu failed\n",
	       (unsigned long long)r->syncs_ok, (unsigned long long)r->syncs_error);
	printf("copied:           %llu files, %llu bytes\n",
	       (unsigned long long)r->files_copied, (unsigned long long)r->bytes_copied);
	printf("reconciles:       %llu\n", (unsigned long long)r->reconciles);
	printf("guest stale dirs: %llu\n", (unsigned long long)r->guest_stale_dirs);
	printf("control socket:   %s\n", r->control_socket);
	printf("metrics:          %s\n", *r->metrics_address ? r->metrics_address : "off");
	printf("state file:       %s\n", r->state_file);
}

static int ctl_status(const struct ctl_args *a)
{
	Voltrace__V1__StatusRequest req = VOLTRACE__V1__STATUS_REQUEST__INIT;
	Voltrace__V1__StatusResponse *r;
	uint8_t *resp = NULL;
	size_t len = 0;

	if (a->npos || a->agent || a->dest)
		return usage_error("%s", "status takes only --json");
	if (call(a->socket, "Status", &req.base, &resp, &len))
		return EXIT_FAIL;
	r = voltrace__v1__status_response__unpack(NULL, len, resp);
	free(resp);
	if (!r) {
		fprintf(stderr, "voltrace ctl: StatusResponse does not decode\n");
		return EXIT_FAIL;
	}
	if (a->json)
		status_json(r);
	else
		status_text(r);
	voltrace__v1__status_response__free_unpacked(r, NULL);
	return EXIT_OK;
}

int cmd_ctl(int argc, char **argv)
{
	struct ctl_args a;
	int r = parse_args(argc, argv, &a);

	if (r)
		return r < 0 ? EXIT_OK : r;
	if (!strcmp(a.cmd, "watch"))
		r = ctl_watch(&a);
	else if (!strcmp(a.cmd, "unwatch"))
		r = ctl_unwatch(&a);
	else if (!strcmp(a.cmd, "list"))
		r = ctl_list(&a);
	else if (!strcmp(a.cmd, "status"))
		r = ctl_status(&a);
	else
		r = usage_error("unknown command '%s'", a.cmd);
	fflush(stdout);
	return r;
}
