/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* How `voltrace trace` prints an event: one human line or one JSON line. */
#ifndef VT_EVENT_FMT_H
#define VT_EVENT_FMT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>
#include "voltrace.h"

/*
 * dir and new_dir are the registered paths of the event's parent
 * directories, or NULL when that side is not watched (then "dev:ino" is
 * printed). wall_ns is the event time on CLOCK_REALTIME.
 */
struct event_view {
	const struct vtr_event *ev;
	const char *dir;
	const char *new_dir;
	uint64_t wall_ns;
};

int event_format_text(FILE *out, const struct event_view *v);
int event_format_json(FILE *out, const struct event_view *v);

/*
 * A copy of s[0..len) that is valid UTF-8: each byte of an invalid sequence
 * becomes U+FFFD. *changed tells whether anything was replaced. malloc'd.
 */
char *utf8_sanitize(const char *s, size_t len, bool *changed);

#endif /* VT_EVENT_FMT_H */
