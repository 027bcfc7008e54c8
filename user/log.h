/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One structured log format for every voltrace command: logfmt on stderr,
 *   ts=2026-11-22T11:20:00.123Z level=info msg="watch added" source=/x
 * Keys and values are passed as a NULL-terminated list of string pairs so
 * that every value is quoted and escaped the same way.
 */
#ifndef VT_LOG_H
#define VT_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int log_parse_level(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void vt_log(enum log_level level, const char *msg, ...)
	__attribute__((sentinel));

/* Format numbers in place for the key/value list. */
const char *log_fmt_u64(char *buf, uint64_t v);
const char *log_fmt_i64(char *buf, int64_t v);
const char *log_fmt_f64(char *buf, double v);
#define LOG_U64(v) log_fmt_u64((char[24]){0}, (uint64_t)(v))
#define LOG_INT(v) log_fmt_i64((char[24]){0}, (int64_t)(v))
#define LOG_F64(v) log_fmt_f64((char[32]){0}, (double)(v))

#define log_error(msg, ...) vt_log(LOG_LVL_ERROR, msg, ##__VA_ARGS__, NULL)
#define log_warn(msg, ...)  vt_log(LOG_LVL_WARN, msg, ##__VA_ARGS__, NULL)
#define log_info(msg, ...)  vt_log(LOG_LVL_INFO, msg, ##__VA_ARGS__, NULL)
#define log_debug(msg, ...) vt_log(LOG_LVL_DEBUG, msg, ##__VA_ARGS__, NULL)

/* Append one logfmt value (quoted when needed) to an open stream. */
#include <stdio.h>
void log_write_value(FILE *out, const char *value);

#endif /* VT_LOG_H */
