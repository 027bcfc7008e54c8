// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Guest destination paths: the boundary of what voltrace may write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest_path.h"
#include "util.h"

static int fail(char **err, const char *in, const char *why)
{
	if (err && asprintf(err, "guest path \"%s\" %s", in, why) < 0)
		*err = NULL;
	return -1;
}

static bool has_dotdot(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")); s += 2) {
		bool start = s == p || s[-1] == '/';
		bool end = s[2] == '\0' || s[2] == '/';

		if (start && end)
			return true;
	}
	return false;
}

bool guest_path_allowed(const char *path)
{
	size_t n = strlen(GUEST_SHARED_ROOT);

	return !strncmp(path, GUEST_SHARED_ROOT, n) && path[n] == '/' &&
	       path[n + 1] != '\0' && !has_dotdot(path);
}

int guest_path_normalize(const char *in, char **out, char **err)
{
	char *norm = NULL;

	*out = NULL;
	if (err)
		*err = NULL;
	if (!in || !*in)
		return fail(err, "", "is empty");
	if (in[0] != '/')
		return fail(err, in, "is not absolute");
	for (const char *s = in; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return fail(err, in, "contains a control character");
	if (has_dotdot(in))
		return fail(err, in, "contains \"..\"");
	if (path_normalize(in, &norm) < 0)
		return fail(err, in, "cannot be normalised");
	if (!guest_path_allowed(norm)) {
		free(norm);
		return fail(err, in, "is outside " GUEST_SHARED_ROOT "/ (the only tree the Kata agent accepts)");
	}
	*out = norm;
	return 0;
}

char *guest_path_join(const char *dest, const char *rel)
{
	char *p;

	if (!rel || rel[0] == '/' || has_dotdot(rel))
		return NULL;
	if (!*rel)
		return strdup(dest);
	if (asprintf(&p, "%s/%s", dest, rel) < 0)
		return NULL;
	return p;
}
