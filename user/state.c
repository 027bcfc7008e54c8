// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The state file: JSON through json-c, replaced atomically. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "state.h"
#include "util.h"

#define STATE_MAX_FILE_SIZE (64u << 20)

__attribute__((format(printf, 2, 3)))
static int set_err(char **errmsg, const char *fmt, ...)
{
	va_list ap;

	if (!errmsg)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(errmsg, fmt, ap) < 0)
		*errmsg = NULL;
	va_end(ap);
	return -1;
}

void state_watches_free(struct state_watch *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(w[i].source);
		free(w[i].agent);
		free(w[i].dest);
	}
	free(w);
}

static int read_text(const char *path, char **out, size_t *len, char **errmsg)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		return set_err(errmsg, "state file %s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return set_err(errmsg, "state file %s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode) || st.st_size > STATE_MAX_FILE_SIZE) {
		close(fd);
		if (!S_ISREG(st.st_mode))
			return set_err(errmsg, "state file %s: not a regular file", path);
		return set_err(errmsg, "state file %s: too large (%lld bytes)",
			       path, (long long)st.st_size);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return set_err(errmsg, "state file %s: out of memory", path);
	}
	n = read_full(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n < 0) {
		free(buf);
		return set_err(errmsg, "state file %s: read: %s", path, strerror((int)-n));
	}
	buf[n] = '\0';
	*out = buf;
	*len = (size_t)n;
	return 0;
}

static int get_field(json_object *entry, const char *key, char **out)
{
	json_object *v;
	const char *s;
	int len;

	if (!json_object_object_get_ex(entry, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if (!len || (size_t)len != strlen(s))
		return -1;	/* empty, or embedded NUL */
	*out = strdup(s);
	return *out ? 0 : -1;
}

static int parse_watches(const char *path, json_object *root,
			 struct state_watch **out, size_t *n, char **errmsg)
{
	json_object *ver, *arr;
	struct state_watch *w;
	size_t count;

	if (!json_object_is_type(root, json_type_object))
		return set_err(errmsg, "state file %s: top level is not a JSON object", path);
	if (!json_object_object_get_ex(root, "version", &ver) ||
	    !json_object_is_type(ver, json_type_int) ||
	    json_object_get_int64(ver) != STATE_VERSION)
		return set_err(errmsg, "state file %s: missing or unsupported \"version\" (want %d)",
			       path, STATE_VERSION);
	if (!json_object_object_get_ex(root, "watches", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return set_err(errmsg, "state file %s: \"watches\" is not a list", path);
	count = json_object_array_length(arr);
	w = calloc(count ? count : 1, sizeof(*w));
	if (!w)
		return set_err(errmsg, "state file %s: out of memory", path);
	for (size_t i = 0; i < count; i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(e, json_type_object) ||
		    get_field(e, "source", &w[i].source) ||
		    get_field(e, "agent", &w[i].agent) ||
		    get_field(e, "dest", &w[i].dest)) {
			state_watches_free(w, i + 1);
			return set_err(errmsg,
				       "state file %s: watch #%zu lacks a non-empty string source, agent or dest",
				       path, i + 1);
		}
	}
	*out = w;
	*n = count;
	return 0;
}

int state_load(const char *path, struct state_watch **out, size_t *n,
	       char **errmsg)
{
	struct json_tokener *tok;
	json_object *root;
	char *text = NULL;
	const char *rest = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	*n = 0;
	if (errmsg)
		*errmsg = NULL;
	ret = read_text(path, &text, &len, errmsg);
	if (ret)
		return ret > 0 ? 0 : -1;
	tok = json_tokener_new();
	if (!tok) {
		free(text);
		return set_err(errmsg, "state file %s: out of memory", path);
	}
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (root)
		rest = text + tok->char_offset + strspn(text + tok->char_offset, " \t\r\n");
	if (!root || rest != text + len) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		const char *why = jerr == json_tokener_continue ? "truncated JSON"
				  : root ? "trailing data after the JSON value"
				  : json_tokener_error_desc(jerr);

		ret = set_err(errmsg, "state file %s: corrupt (%s at byte %d)",
			      path, why, (int)tok->char_offset);
		json_object_put(root);
		json_tokener_free(tok);
		free(text);
		return ret;
	}
	json_tokener_free(tok);
	free(text);
	ret = parse_watches(path, root, out, n, errmsg);
	json_object_put(root);
	return ret;
}

static char *serialize(const struct state_watch *w, size_t n)
{
	json_object *root = json_object_new_object(), *arr = json_object_new_array();
	char *text = NULL;

	if (!root || !arr)
		goto out;
	json_object_object_add(root, "version", json_object_new_int(STATE_VERSION));
	json_object_object_add(root, "watches", arr);
	arr = NULL;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_new_object();

		if (!e)
			goto out;
		json_object_object_add(e, "source", json_object_new_string(w[i].source));
		json_object_object_add(e, "agent", json_object_new_string(w[i].agent));
		json_object_object_add(e, "dest", json_object_new_string(w[i].dest));
		json_object_array_add(json_object_object_get(root, "watches"), e);
	}
	text = strdup(json_object_to_json_string_ext(root,
			JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(arr);
	json_object_put(root);
	return text;
}

/* mkdir -p dir, 0755 */
static int mkdir_parent(const char *dir)
{
	struct stat st;
	char *up, *slash;
	int err;

	if (!stat(dir, &st))
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (errno != ENOENT)
		return -errno;
	up = strdup(dir);
	if (!up)
		return -ENOMEM;
	slash = strrchr(up, '/');
	if (slash && slash != up) {
		*slash = '\0';
		err = mkdir_parent(up);
		if (err) {
			free(up);
			return err;
		}
	}
	free(up);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int state_save(const char *path, const struct state_watch *w, size_t n,
	       char **errmsg)
{
	char *text = NULL, *dircopy = NULL, *tmp = NULL;
	const char *dir;
	int fd = -1, err, ret = -1;

	if (errmsg)
		*errmsg = NULL;
	text = serialize(w, n);
	dircopy = strdup(path);
	if (!text || !dircopy || asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		set_err(errmsg, "state file %s: out of memory", path);
		goto out;
	}
	dir = dirname(dircopy);
	err = mkdir_parent(dir);
	if (err) {
		set_err(errmsg, "state file %s: directory %s: %s", path, dir, strerror(-err));
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);	/* 0600 */
	if (fd < 0) {
		set_err(errmsg, "state file %s: create %s: %s", path, tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	err = write_all(fd, text, strlen(text));
	if (!err)
		err = write_all(fd, "\n", 1);
	if (err) {
		set_err(errmsg, "state file %s: write %s: %s", path, tmp, strerror(-err));
		goto out;
	}
	if (fsync(fd) < 0) {
		set_err(errmsg, "state file %s: fsync %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		set_err(errmsg, "state file %s: close %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		set_err(errmsg, "state file %s: rename from %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* The rename is durable only once the directory entry is on disk. */
	err = fsync_dir(dir);
	if (err) {
		set_err(errmsg, "state file %s: fsync directory %s: %s", path, dir, strerror(-err));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(dircopy);
	free(text);
	return ret;
}
