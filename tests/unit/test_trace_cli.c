// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Event formatting (human and JSON), mode selection, trace argument parsing. */
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "commands.h"
#include "event_fmt.h"
#include "tracer.h"

static struct vtr_event make_event(int op, const char *name, const char *new_name)
{
	struct vtr_event e;

	memset(&e, 0, sizeof(e));
	e.op = op;
	e.mode = VT_MODE_TRACEPOINT;
	e.dev = (8ull << 20) | 1;
	e.dir_ino = 42;
	e.tgid = 1234;
	e.pid = 1235;
	strcpy(e.comm, "kubelet");
	strncpy(e.name, name, sizeof(e.name) - 1);
	if (new_name)
		strncpy(e.new_name, new_name, sizeof(e.new_name) - 1);
	return e;
}

/* Format into a string with the given formatter. */
static char *format(int (*fn)(FILE *, const struct event_view *), const struct event_view *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(fn(f, v), 0);
	fclose(f);
	return buf;
}

static struct json_object *format_json(const struct event_view *v)
{
	char *s = format(event_format_json, v);
	struct json_object *obj = json_tokener_parse(s);

	assert_non_null(obj);
	assert_non_null(strchr(s, '\n'));
	assert_null(strchr(s, '\n') + 1 == s + strlen(s) ? NULL : "more than one line");
	free(s);
	return obj;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return json_object_get_string(v);
}

static void test_json_rename_fields(void **state)
{
	struct vtr_event e = make_event(VT_OP_RENAME, "..data_tmp", "..data");
	struct event_view v = { .ev = &e, .dir = "/var/vol", .new_dir = "/var/vol",
				.wall_ns = 1700000000123456789ull };
	struct json_object *o;

	(void)state;
	o = format_json(&v);
	assert_string_equal(jstr(o, "op"), "rename");
	assert_string_equal(jstr(o, "mode"), "tracepoint");
	assert_string_equal(jstr(o, "dir"), "/var/vol");
	assert_string_equal(jstr(o, "name"), "..data_tmp");
	assert_string_equal(jstr(o, "new_dir"), "/var/vol");
	assert_string_equal(jstr(o, "new_name"), "..data");
	assert_string_equal(jstr(o, "comm"), "kubelet");
	assert_string_equal(jstr(o, "ts"), "2023-11-14T22:13:20.123456Z");
	assert_string_equal(jstr(o, "pid"), "1234");
	json_object_put(o);
}

static void test_json_unlink_has_null_new_fields(void **state)
{
	struct vtr_event e = make_event(VT_OP_UNLINK, "key", NULL);
	struct event_view v = { .ev = &e, .dir = "/v" };
	struct json_object *o, *val;

	(void)state;
	o = format_json(&v);
	assert_string_equal(jstr(o, "op"), "unlink");
	assert_true(json_object_object_get_ex(o, "new_dir", &val));
	assert_null(val);
	assert_true(json_object_object_get_ex(o, "new_name", &val));
	assert_null(val);
	json_object_put(o);
}

static void test_json_escapes_hostile_names(void **state)
{
	const char *names[] = { "with space", "quote\"d", "new\nline", "back\\slash",
				"tab\there", "ctl\x01", "ünïcödé" };
	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct vtr_event e = make_event(VT_OP_UNLINK, names[i], NULL);
		struct event_view v = { .ev = &e, .dir = "/v" };
		struct json_object *o = format_json(&v);

		assert_string_equal(jstr(o, "name"), names[i]);
		assert_null(jstr(o, "name_hex"));
		json_object_put(o);
	}
}

static void test_json_invalid_utf8_is_replaced_and_kept_as_hex(void **state)
{
	struct vtr_event e = make_event(VT_OP_UNLINK, "a\xff" "b\xc3", NULL);
	struct event_view v = { .ev = &e, .dir = "/v" };
	struct json_object *o;

	(void)state;
	o = format_json(&v);
	assert_string_equal(jstr(o, "name"), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
	assert_string_equal(jstr(o, "name_hex"), "61ff62c3");
	json_object_put(o);
}

static void test_json_255_byte_name(void **state)
{
	char name[256];
	struct vtr_event e;
	struct event_view v = { .ev = &e, .dir = "/v" };
	struct json_object *o;

	(void)state;
	memset(name, 'n', 255);
	name[255] = '\0';
	e = make_event(VT_OP_RMDIR, name, NULL);
	o = format_json(&v);
	assert_int_equal(strlen(jstr(o, "name")), 255);
	assert_string_equal(jstr(o, "name"), name);
	json_object_put(o);
}

static void test_json_unwatched_side_shows_identity(void **state)
{
	struct vtr_event e = make_event(VT_OP_RENAME, "a", "b");
	struct event_view v = { .ev = &e, .dir = NULL, .new_dir = "/w" };
	struct json_object *o;

	(void)state;
	e.new_dev = e.dev;
	o = format_json(&v);
	assert_string_equal(jstr(o, "dir"), "[8:1:42]");
	assert_string_equal(jstr(o, "new_dir"), "/w");
	json_object_put(o);
}

static void test_text_line(void **state)
{
	struct vtr_event e = make_event(VT_OP_RENAME, "..data_tmp", "..data");
	struct event_view v = { .ev = &e, .dir = "/vol", .new_dir = "/vol",
				.wall_ns = 1700000000123456789ull };
	char *s;

	(void)state;
	s = format(event_format_text, &v);
	assert_string_equal(s, "22:13:20.123456 rename /vol/..data_tmp -> /vol/..data "
			       "pid=1234 comm=kubelet mode=tracepoint\n");
	free(s);
}

static void test_text_quotes_names_with_spaces_and_newlines(void **state)
{
	struct vtr_event e = make_event(VT_OP_UNLINK, "a b\n\"c\"", NULL);
	struct event_view v = { .ev = &e, .dir = "/vol" };
	char *s;

	(void)state;
	s = format(event_format_text, &v);
	assert_non_null(strstr(s, "unlink \"/vol/a b\\n\\\"c\\\"\" pid=1234"));
	assert_int_equal(strchr(s, '\n') - s, (long)strlen(s) - 1);
	free(s);
}

static void test_utf8_sanitize(void **state)
{
	bool changed;
	char *s;

	(void)state;
	s = utf8_sanitize("ok", 2, &changed);
	assert_string_equal(s, "ok");
	assert_false(changed);
	free(s);
	/* overlong '/' and a UTF-16 surrogate are invalid */
	s = utf8_sanitize("\xc0\xaf\xed\xa0\x80", 5, &changed);
	assert_true(changed);
	assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	free(s);
}

static void test_mode_parsing(void **state)
{
	enum tracer_mode_req m;

	(void)state;
	assert_int_equal(tracer_parse_mode("auto", &m), 0);
	assert_int_equal(m, TRACER_MODE_AUTO);
	assert_int_equal(tracer_parse_mode("fentry", &m), 0);
	assert_int_equal(m, TRACER_MODE_FENTRY);
	assert_int_equal(tracer_parse_mode("kprobe", &m), 0);
	assert_int_equal(m, TRACER_MODE_KPROBE);
	assert_int_equal(tracer_parse_mode("tracepoint", &m), 0);
	assert_int_equal(m, TRACER_MODE_TRACEPOINT);
	assert_int_equal(tracer_parse_mode("fexit", &m), -1);
	assert_int_equal(tracer_parse_mode("", &m), -1);
	assert_string_equal(tracer_mode_name(TRACER_MODE_AUTO), "auto");
	assert_string_equal(tracer_mode_name(VT_MODE_FENTRY), "fentry");
	assert_string_equal(tracer_mode_name(99), "unknown");
	assert_string_equal(vt_op_name(VT_OP_RMDIR), "rmdir");
	/* auto tries the modes in the order of the enum: fentry, kprobe, tracepoint */
	assert_true(VT_MODE_FENTRY < VT_MODE_KPROBE && VT_MODE_KPROBE < VT_MODE_TRACEPOINT);
}

static int run_trace(int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	optind = 0;	/* reinitialise getopt between calls */
	return cmd_trace(argc, argv);
}

/* Usage errors are found before anything is loaded into the kernel. */
static void test_trace_usage_errors(void **state)
{
	(void)state;
	assert_int_equal(run_trace(1, "trace"), EXIT_USAGE);
	assert_int_equal(run_trace(4, "trace", "--mode", "bogus", "/tmp"), EXIT_USAGE);
	assert_int_equal(run_trace(4, "trace", "--ringbuf-size", "1000", "/tmp"), EXIT_USAGE);
	assert_int_equal(run_trace(4, "trace", "--ringbuf-size", "12288", "/tmp"), EXIT_USAGE);
	assert_int_equal(run_trace(4, "trace", "--ringbuf-size", "4k", "/tmp"), EXIT_USAGE);
	assert_int_equal(run_trace(3, "trace", "--frobnicate", "/tmp"), EXIT_USAGE);
	assert_int_equal(run_trace(2, "trace", "/nonexistent/voltrace-test"), EXIT_USAGE);
	assert_int_equal(run_trace(2, "trace", "/etc/passwd"), EXIT_USAGE);
	assert_int_equal(run_trace(4, "trace", "--dirs-from", "/nonexistent", "/tmp"),
			 EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_rename_fields),
		cmocka_unit_test(test_json_unlink_has_null_new_fields),
		cmocka_unit_test(test_json_escapes_hostile_names),
		cmocka_unit_test(test_json_invalid_utf8_is_replaced_and_kept_as_hex),
		cmocka_unit_test(test_json_255_byte_name),
		cmocka_unit_test(test_json_unwatched_side_shows_identity),
		cmocka_unit_test(test_text_line),
		cmocka_unit_test(test_text_quotes_names_with_spaces_and_newlines),
		cmocka_unit_test(test_utf8_sanitize),
		cmocka_unit_test(test_mode_parsing),
		cmocka_unit_test(test_trace_usage_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
