// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "event_fmt.h"
#include "log.h"
#include "tracer.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

char *utf8_sanitize(const char *s, size_t len, bool *changed)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(len * 3 + 1);	/* worst case: every byte -> U+FFFD */
	size_t o = 0;

	*changed = false;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(p + i, len - i);

		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			*changed = true;
			continue;
		}
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

static void format_time(char *buf, size_t len, uint64_t wall_ns, bool iso)
{
	time_t sec = (time_t)(wall_ns / 1000000000ull);
	long usec = (long)(wall_ns % 1000000000ull / 1000);
	struct tm tm;
	char base[32];

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), iso ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &tm);
	snprintf(buf, len, iso ? "%s.%06ldZ" : "%s.%06ld", base, usec);
}

static void print_place(FILE *out, const char *dir, __u64 dev, __u64 ino,
			const char *name)
{
	char *full;
	size_t nlen = strnlen(name, VT_NAME_MAX);

	if (dir) {
		if (asprintf(&full, "%s/%.*s", dir, (int)nlen, name) < 0)
			return;
	} else if (asprintf(&full, "[%llu:%llu:%llu]/%.*s",
			    (unsigned long long)(dev >> 20),
			    (unsigned long long)(dev & 0xfffff),
			    (unsigned long long)ino, (int)nlen, name) < 0) {
		return;
	}
	log_write_value(out, full);
	free(full);
}

int event_format_text(FILE *out, const struct event_view *v)
{
	const struct vtr_event *e = v->ev;
	char ts[40], comm[VT_COMM_LEN + 1];

	format_time(ts, sizeof(ts), v->wall_ns, false);
	memcpy(comm, e->comm, VT_COMM_LEN);
	comm[VT_COMM_LEN] = '\0';
	fprintf(out, "%s %-6s ", ts, vt_op_name(e->op));
	print_place(out, v->dir, e->dev, e->dir_ino, e->name);
	if (e->op == VT_OP_RENAME) {
		fputs(" -> ", out);
		print_place(out, v->new_dir, e->new_dev, e->new_dir_ino, e->new_name);
	}
	fprintf(out, " pid=%u comm=", e->tgid);
	log_write_value(out, comm);
	fprintf(out, " mode=%s\n", tracer_mode_name(e->mode));
	return ferror(out) ? -1 : 0;
}

/* Add a string field that is valid UTF-8; keep the raw bytes as hex if not. */
static void json_add_bytes(struct json_object *obj, const char *key,
			   const char *s, size_t max)
{
	size_t len = strnlen(s, max);
	bool changed;
	char *clean = utf8_sanitize(s, len, &changed);

	if (!clean)
		return;
	json_object_object_add(obj, key, json_object_new_string(clean));
	free(clean);
	if (changed) {
		char *hex = malloc(len * 2 + 1), *hkey;

		if (!hex)
			return;
		for (size_t i = 0; i < len; i++)
			sprintf(hex + 2 * i, "%02x", (unsigned char)s[i]);
		if (asprintf(&hkey, "%s_hex", key) >= 0) {
			json_object_object_add(obj, hkey, json_object_new_string(hex));
			free(hkey);
		}
		free(hex);
	}
}

static struct json_object *json_dir(const char *dir, __u64 dev, __u64 ino)
{
	char buf[80];

	if (dir)
		return json_object_new_string(dir);
	snprintf(buf, sizeof(buf), "[%llu:%llu:%llu]",
		 (unsigned long long)(dev >> 20), (unsigned long long)(dev & 0xfffff),
		 (unsigned long long)ino);
	return json_object_new_string(buf);
}

int event_format_json(FILE *out, const struct event_view *v)
{
	const struct vtr_event *e = v->ev;
	struct json_object *obj = json_object_new_object();
	char ts[40];
	bool rename = e->op == VT_OP_RENAME;

	if (!obj)
		return -1;
	format_time(ts, sizeof(ts), v->wall_ns, true);
	json_object_object_add(obj, "ts", json_object_new_string(ts));
	json_object_object_add(obj, "op", json_object_new_string(vt_op_name(e->op)));
	json_object_object_add(obj, "mode", json_object_new_string(tracer_mode_name(e->mode)));
	json_object_object_add(obj, "dir", json_dir(v->dir, e->dev, e->dir_ino));
	json_add_bytes(obj, "name", e->name, VT_NAME_MAX);
	json_object_object_add(obj, "new_dir",
			       rename ? json_dir(v->new_dir, e->new_dev, e->new_dir_ino) : NULL);
	if (rename)
		json_add_bytes(obj, "new_name", e->new_name, VT_NAME_MAX);
	else
		json_object_object_add(obj, "new_name", NULL);
	json_object_object_add(obj, "pid", json_object_new_int64(e->tgid));
	json_object_object_add(obj, "tid", json_object_new_int64(e->pid));
	json_add_bytes(obj, "comm", e->comm, VT_COMM_LEN);
	fprintf(out, "%s\n", json_object_to_json_string_ext(obj,
			JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	return ferror(out) ? -1 : 0;
}
