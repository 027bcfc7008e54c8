// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level current_level = LOG_LVL_INFO;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

/* VOLTRACE_LOG_LEVEL sets the starting level, before any flag or config. */
__attribute__((constructor)) static void log_level_from_env(void)
{
	const char *env = getenv("VOLTRACE_LOG_LEVEL");
	enum log_level level;

	if (env && log_parse_level(env, &level) == 0)
		current_level = level;
}

bool log_enabled(enum log_level level)
{
	return level <= current_level;
}

const char *log_level_name(enum log_level level)
{
	if (level > LOG_LVL_DEBUG)
		return "unknown";
	return level_names[level];
}

int log_parse_level(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(name, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return 0;
	}
	return -1;
}

const char *log_fmt_u64(char *buf, uint64_t v)
{
	snprintf(buf, 24, "%" PRIu64, v);
	return buf;
}

const char *log_fmt_i64(char *buf, int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
	return buf;
}

const char *log_fmt_f64(char *buf, double v)
{
	snprintf(buf, 32, "%.6g", v);
	return buf;
}

static bool needs_quotes(const char *v)
{
	if (!*v)
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p >= 0x7f)
			return true;
	}
	return false;
}

void log_write_value(FILE *out, const char *v)
{
	if (!v)
		v = "";
	if (!needs_quotes(v)) {
		fputs(v, out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (*p < ' ' || *p == 0x7f)
				fprintf(out, "\\x%02x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

static void write_timestamp(FILE *out)
{
	struct timespec ts;
	struct tm tm;
	char buf[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(out, "ts=%s.%03ldZ", buf, ts.tv_nsec / 1000000);
}

void vt_log(enum log_level level, const char *msg, ...)
{
	char *line = NULL;
	size_t len = 0;
	const char *key;
	FILE *out;
	va_list ap;

	if (!log_enabled(level))
		return;
	/* Build the whole line first: one write(2) keeps threads from interleaving. */
	out = open_memstream(&line, &len);
	if (!out)
		return;
	write_timestamp(out);
	fprintf(out, " level=%s msg=", log_level_name(level));
	log_write_value(out, msg);
	va_start(ap, msg);
	while ((key = va_arg(ap, const char *))) {
		const char *value = va_arg(ap, const char *);

		fprintf(out, " %s=", key);
		log_write_value(out, value);
	}
	va_end(ap);
	fputc('\n', out);
	if (fclose(out) == 0 && write(STDERR_FILENO, line, len) < 0) {
		/* nowhere left to report a failed log write */
	}
	free(line);
}
