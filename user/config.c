// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Config file parsing with libyaml's document API: the whole file becomes a
 * node tree whose nodes carry their source marks, so every error can name
 * the line of the offending key or value.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "tracer.h"
#include "util.h"

#define CONFIG_MAX_FILE_SIZE (4u << 20)

struct parse {
	const char *name;
	yaml_document_t *doc;
	struct config *cfg;
	char *err;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct parse *p, const yaml_node_t *node, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	if (p->err)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (node) {
		if (asprintf(&p->err, "%s:%zu: %s", p->name,
			     node->start_mark.line + 1, msg ? msg : "error") < 0)
			p->err = NULL;
	} else if (asprintf(&p->err, "%s: %s", p->name, msg ? msg : "error") < 0) {
		p->err = NULL;
	}
	free(msg);
	return -1;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool scalar_is_null(const yaml_node_t *n)
{
	const char *v = scalar(n);

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* A non-empty string scalar; libyaml strings may hold NULs, refuse them. */
static int get_string(struct parse *p, const char *key, const yaml_node_t *n,
		      const char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail(p, n, "%s: expected a string, got %s", key, node_kind(n));
	if (scalar_is_null(n))
		return fail(p, n, "%s: must not be empty", key);
	if (strlen(scalar(n)) != n->data.scalar.length)
		return fail(p, n, "%s: contains a NUL byte", key);
	*out = scalar(n);
	return 0;
}

static int set_str(struct parse *p, const yaml_node_t *n, char **dst,
		   const char *val)
{
	char *copy = strdup(val);

	if (!copy)
		return fail(p, n, "out of memory");
	free(*dst);
	*dst = copy;
	return 0;
}

static int get_abs_path(struct parse *p, const char *key, const yaml_node_t *n,
			char **dst)
{
	const char *v;
	char *norm;
	int err;

	if (get_string(p, key, n, &v))
		return -1;
	if (v[0] != '/')
		return fail(p, n, "%s: \"%s\" is not an absolute path", key, v);
	err = path_normalize(v, &norm);
	if (err == -ENOMEM)
		return fail(p, n, "out of memory");
	if (err)
		return fail(p, n, "%s: \"%s\": \"..\" is not allowed", key, v);
	free(*dst);
	*dst = norm;
	return 0;
}

static int get_uint(struct parse *p, const char *key, const yaml_node_t *n,
		    uint64_t max, uint64_t *out)
{
	const char *v;
	char *end;
	unsigned long long x;

	if (n->type != YAML_SCALAR_NODE)
		return fail(p, n, "%s: expected an integer, got %s", key, node_kind(n));
	v = scalar(n);
	if (v[0] < '0' || v[0] > '9')
		return fail(p, n, "%s: \"%s\" is not a non-negative integer", key, v);
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end)
		return fail(p, n, "%s: \"%s\" is not a non-negative integer", key, v);
	if (x > max)
		return fail(p, n, "%s: %llu is out of range (at most %llu)", key, x,
			    (unsigned long long)max);
	*out = x;
	return 0;
}

int config_parse_size(const char *text, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned int shift;
	} units[] = {
		{ "", 0 }, { "b", 0 }, { "k", 10 }, { "kb", 10 }, { "kib", 10 },
		{ "m", 20 }, { "mb", 20 }, { "mib", 20 }, { "g", 30 },
		{ "gb", 30 }, { "gib", 30 },
	};
	unsigned long long x;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcasecmp(end, units[i].suffix))
			continue;
		if (x > (UINT64_MAX >> units[i].shift))
			return -EINVAL;
		*out = (uint64_t)x << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

static int get_ring_size(struct parse *p, const yaml_node_t *n)
{
	const char *key = "ring_buffer_size";
	uint64_t v;

	if (n->type != YAML_SCALAR_NODE)
		return fail(p, n, "%s: expected a size, got %s", key, node_kind(n));
	if (config_parse_size(scalar(n), &v))
		return fail(p, n, "%s: \"%s\" is not a size (bytes, or with a KiB/MiB/GiB suffix)",
			    key, scalar(n));
	if (v < CONFIG_MIN_RING_BUFFER_SIZE || v > CONFIG_MAX_RING_BUFFER_SIZE)
		return fail(p, n, "%s: %llu is out of range (4KiB to 1GiB)", key,
			    (unsigned long long)v);
	if (v & (v - 1))
		return fail(p, n, "%s: %llu is not a power of two (the kernel requires one)",
			    key, (unsigned long long)v);
	p->cfg->ring_buffer_size = v;
	return 0;
}

static int parse_mode_name(const char *name)
{
	static const struct {
		const char *name;
		int mode;
	} modes[] = {
		{ "auto", TRACER_MODE_AUTO },
		{ "fentry", TRACER_MODE_FENTRY },
		{ "kprobe", TRACER_MODE_KPROBE },
		{ "tracepoint", TRACER_MODE_TRACEPOINT },
	};

	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		if (!strcmp(name, modes[i].name))
			return modes[i].mode;
	}
	return -2;
}

static int get_mode(struct parse *p, const yaml_node_t *n)
{
	const char *v;
	int mode;

	if (get_string(p, "mode", n, &v))
		return -1;
	mode = parse_mode_name(v);
	if (mode == -2)
		return fail(p, n, "mode: unknown mode \"%s\" (want auto, fentry, kprobe or tracepoint)", v);
	p->cfg->mode = mode;
	return set_str(p, n, &p->cfg->mode_name, v);
}

static int get_log_level(struct parse *p, const yaml_node_t *n)
{
	const char *v;

	if (get_string(p, "log_level", n, &v))
		return -1;
	if (log_parse_level(v, &p->cfg->log_level))
		return fail(p, n, "log_level: unknown level \"%s\" (want error, warn, info or debug)", v);
	p->cfg->log_level_set = true;
	return 0;
}

static int get_metrics_address(struct parse *p, const yaml_node_t *n)
{
	const char *v;
	char *host;
	uint16_t port;

	if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0 &&
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return set_str(p, n, &p->cfg->metrics_address, "");
	if (get_string(p, "metrics_address", n, &v))
		return -1;
	if (strcmp(v, "off")) {
		if (config_parse_address(v, &host, &port))
			return fail(p, n, "metrics_address: \"%s\" is not HOST:PORT or [IPV6]:PORT", v);
		free(host);
	}
	return set_str(p, n, &p->cfg->metrics_address, v);
}

static int get_allowed_sources(struct parse *p, const yaml_node_t *n)
{
	struct config *cfg = p->cfg;
	yaml_node_item_t *it;
	size_t count, i = 0;
	char **list;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(p, n, "allowed_sources: expected a list of directories, got %s",
			    node_kind(n));
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (!count)
		return fail(p, n, "allowed_sources: must list at least one directory");
	list = calloc(count, sizeof(*list));
	if (!list)
		return fail(p, n, "out of memory");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, *it);

		if (get_abs_path(p, "allowed_sources", item, &list[i]))
			break;
		if (!strcmp(list[i], "/")) {
			fail(p, item, "allowed_sources: \"/\" would allow every directory");
			i++;
			break;
		}
		i++;
	}
	for (size_t k = 0; k < cfg->n_allowed_sources; k++)
		free(cfg->allowed_sources[k]);
	free(cfg->allowed_sources);
	cfg->allowed_sources = list;
	cfg->n_allowed_sources = i;
	return p->err ? -1 : 0;
}

const char *config_check_agent_url(const char *url)
{
	const char *rest, *colon;
	char *end;
	unsigned long v;

	if (!strncmp(url, "unix://", 7)) {
		rest = url + 7;
		if (rest[0] != '/')
			return "unix:// URL needs an absolute socket path (unix:///path/to/agent.sock)";
		return NULL;
	}
	if (!strncmp(url, "vsock://", 8)) {
		rest = url + 8;
		errno = 0;
		v = strtoul(rest, &end, 10);
		if (end == rest || *end != ':' || errno || v > UINT32_MAX)
			return "vsock:// URL must be vsock://CID:PORT";
		rest = end + 1;
		v = strtoul(rest, &end, 10);
		if (end == rest || *end || errno || v > UINT32_MAX)
			return "vsock:// URL must be vsock://CID:PORT";
		return NULL;
	}
	if (!strncmp(url, "hvsock://", 9)) {
		rest = url + 9;
		colon = strrchr(rest, ':');
		if (rest[0] != '/' || !colon || colon == rest)
			return "hvsock:// URL must be hvsock:///path/to/kata.hvsock:PORT";
		errno = 0;
		v = strtoul(colon + 1, &end, 10);
		if (end == colon + 1 || *end || errno || v > UINT32_MAX)
			return "hvsock:// URL must be hvsock:///path/to/kata.hvsock:PORT";
		return NULL;
	}
	return "unknown agent URL scheme (want vsock://, hvsock:// or unix://)";
}

const char *config_check_dest(const char *dest)
{
	char *norm;
	bool under;

	if (dest[0] != '/')
		return "dest must be an absolute guest path";
	if (path_normalize(dest, &norm))
		return "dest must not contain \"..\"";
	under = path_is_under(norm, CONFIG_GUEST_SHARED_DIR) &&
		strcmp(norm, CONFIG_GUEST_SHARED_DIR) != 0;
	free(norm);
	if (!under)
		return "dest must be below " CONFIG_GUEST_SHARED_DIR "/ (the agent refuses other paths)";
	return NULL;
}

const char *config_check_source(const char *source)
{
	char *norm;

	if (source[0] != '/')
		return "source must be an absolute path";
	if (path_normalize(source, &norm))
		return "source must not contain \"..\"";
	free(norm);
	return NULL;
}

static int get_watch(struct parse *p, const yaml_node_t *n, struct config_watch *w)
{
	static const char *const keys[] = { "source", "agent", "dest" };
	const yaml_node_t *vals[3] = { NULL, NULL, NULL };
	const char *reason, *s;
	yaml_node_pair_t *pair;

	if (n->type != YAML_MAPPING_NODE)
		return fail(p, n, "watches: each entry must be a mapping {source, agent, dest}, got %s",
			    node_kind(n));
	w->line = (int)n->start_mark.line + 1;
	for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(p->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(p->doc, pair->value);
		size_t i;

		if (k->type != YAML_SCALAR_NODE)
			return fail(p, k, "watches: keys must be strings");
		for (i = 0; i < ARRAY_SIZE(keys); i++) {
			if (!strcmp(scalar(k), keys[i]))
				break;
		}
		if (i == ARRAY_SIZE(keys))
			return fail(p, k, "watches: unknown key \"%s\" (want source, agent, dest)",
				    scalar(k));
		if (vals[i])
			return fail(p, k, "watches: duplicate key \"%s\"", keys[i]);
		vals[i] = v;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (!vals[i])
			return fail(p, n, "watches: entry lacks \"%s\"", keys[i]);
	}
	if (get_string(p, "source", vals[0], &s))
		return -1;
	if ((reason = config_check_source(s)))
		return fail(p, vals[0], "source \"%s\": %s", s, reason);
	if (get_abs_path(p, "source", vals[0], &w->source))
		return -1;
	if (get_string(p, "agent", vals[1], &s))
		return -1;
	if ((reason = config_check_agent_url(s)))
		return fail(p, vals[1], "agent \"%s\": %s", s, reason);
	if (set_str(p, vals[1], &w->agent, s))
		return -1;
	if (get_string(p, "dest", vals[2], &s))
		return -1;
	if ((reason = config_check_dest(s)))
		return fail(p, vals[2], "dest \"%s\": %s", s, reason);
	return get_abs_path(p, "dest", vals[2], &w->dest);
}

static int get_watches(struct parse *p, const yaml_node_t *n)
{
	struct config *cfg = p->cfg;
	yaml_node_item_t *it;
	size_t count;

	if (n->type == YAML_SCALAR_NODE && scalar_is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(p, n, "watches: expected a list of {source, agent, dest}, got %s",
			    node_kind(n));
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	cfg->watches = calloc(count ? count : 1, sizeof(*cfg->watches));
	if (!cfg->watches)
		return fail(p, n, "out of memory");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, *it);
		struct config_watch *w = &cfg->watches[cfg->n_watches++];

		if (get_watch(p, item, w))
			return -1;
		for (size_t i = 0; i + 1 < cfg->n_watches; i++) {
			if (!strcmp(cfg->watches[i].source, w->source) &&
			    !strcmp(cfg->watches[i].dest, w->dest))
				return fail(p, item, "watches: %s -> %s is already listed at line %d",
					    w->source, w->dest, cfg->watches[i].line);
		}
	}
	return 0;
}

enum cfg_key {
	K_MODE, K_CONTROL_SOCKET, K_METRICS_ADDRESS, K_STATE_FILE, K_BPFFS_DIR,
	K_ALLOWED_SOURCES, K_RING_BUFFER_SIZE, K_DEBOUNCE_MS, K_RESYNC_INTERVAL_S, K_LOG_LEVEL,
	K_WATCHES, K_MAX,
};

static const char *const key_names[K_MAX] = {
	[K_MODE] = "mode",
	[K_CONTROL_SOCKET] = "control_socket",
	[K_METRICS_ADDRESS] = "metrics_address",
	[K_STATE_FILE] = "state_file",
	[K_BPFFS_DIR] = "bpffs_dir",
	[K_ALLOWED_SOURCES] = "allowed_sources",
	[K_RING_BUFFER_SIZE] = "ring_buffer_size",
	[K_DEBOUNCE_MS] = "debounce_ms",
	[K_RESYNC_INTERVAL_S] = "resync_interval_s",
	[K_LOG_LEVEL] = "log_level",
	[K_WATCHES] = "watches",
};

static int apply_key(struct parse *p, enum cfg_key key, const yaml_node_t *v)
{
	struct config *cfg = p->cfg;
	uint64_t u = 0;

	switch (key) {
	case K_MODE:
		return get_mode(p, v);
	case K_CONTROL_SOCKET:
		return get_abs_path(p, key_names[key], v, &cfg->control_socket);
	case K_METRICS_ADDRESS:
		return get_metrics_address(p, v);
	case K_STATE_FILE:
		return get_abs_path(p, key_names[key], v, &cfg->state_file);
	case K_BPFFS_DIR:
		return get_abs_path(p, key_names[key], v, &cfg->bpffs_dir);
	case K_ALLOWED_SOURCES:
		return get_allowed_sources(p, v);
	case K_RING_BUFFER_SIZE:
		return get_ring_size(p, v);
	case K_DEBOUNCE_MS:
		if (get_uint(p, key_names[key], v, CONFIG_MAX_DEBOUNCE_MS, &u))
			return -1;
		cfg->debounce_ms = (unsigned int)u;
		return 0;
	case K_RESYNC_INTERVAL_S:
		if (get_uint(p, key_names[key], v, CONFIG_MAX_RESYNC_S, &u))
			return -1;
		cfg->resync_interval_s = (unsigned int)u;
		return 0;
	case K_LOG_LEVEL:
		return get_log_level(p, v);
	case K_WATCHES:
		return get_watches(p, v);
	default:
		return fail(p, v, "internal error: key %d", key);
	}
}

static int parse_root(struct parse *p, const yaml_node_t *root)
{
	bool seen[K_MAX] = { false };
	yaml_node_pair_t *pair;

	if (root->type == YAML_SCALAR_NODE && scalar_is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return fail(p, root, "the top level must be a mapping of settings, got %s",
			    node_kind(root));
	for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(p->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(p->doc, pair->value);
		int key;

		if (k->type != YAML_SCALAR_NODE)
			return fail(p, k, "setting names must be strings, got %s", node_kind(k));
		for (key = 0; key < K_MAX; key++) {
			if (!strcmp(scalar(k), key_names[key]))
				break;
		}
		if (key == K_MAX)
			return fail(p, k, "unknown setting \"%s\"", scalar(k));
		if (seen[key])
			return fail(p, k, "duplicate setting \"%s\"", key_names[key]);
		seen[key] = true;
		if (apply_key(p, (enum cfg_key)key, v))
			return -1;
	}
	return 0;
}

static int parse_text(struct parse *p, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	int ret;

	if (!yaml_parser_initialize(&parser))
		return fail(p, NULL, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		char *e = NULL;

		if (asprintf(&e, "%s:%zu: YAML syntax error: %s%s%s", p->name,
			     parser.problem_mark.line + 1,
			     parser.problem ? parser.problem : "unknown",
			     parser.context ? " " : "",
			     parser.context ? parser.context : "") < 0)
			e = NULL;
		p->err = e;
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	p->doc = &doc;
	ret = root ? parse_root(p, root) : 0;
	if (!ret) {
		/* A second document would be silently ignored: refuse it. */
		yaml_document_t extra;

		if (!yaml_parser_load(&parser, &extra)) {
			ret = fail(p, NULL, "YAML syntax error after the first document");
			if (parser.problem) {
				free(p->err);
				if (asprintf(&p->err, "%s:%zu: YAML syntax error: %s",
					     p->name, parser.problem_mark.line + 1,
					     parser.problem) < 0)
					p->err = NULL;
			}
		} else {
			yaml_node_t *r = yaml_document_get_root_node(&extra);

			if (r)
				ret = fail(p, r, "only one YAML document is allowed");
			yaml_document_delete(&extra);
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}

int config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = TRACER_MODE_AUTO;
	cfg->mode_name = strdup("auto");
	cfg->control_socket = strdup(CONFIG_DEFAULT_CONTROL_SOCKET);
	cfg->metrics_address = strdup(CONFIG_DEFAULT_METRICS_ADDRESS);
	cfg->state_file = strdup(CONFIG_DEFAULT_STATE_FILE);
	cfg->bpffs_dir = strdup(CONFIG_DEFAULT_BPFFS_DIR);
	cfg->allowed_sources = calloc(1, sizeof(char *));
	if (cfg->allowed_sources) {
		cfg->allowed_sources[0] = strdup(CONFIG_DEFAULT_ALLOWED_SOURCE);
		cfg->n_allowed_sources = 1;
	}
	cfg->ring_buffer_size = CONFIG_DEFAULT_RING_BUFFER_SIZE;
	cfg->debounce_ms = CONFIG_DEFAULT_DEBOUNCE_MS;
	cfg->resync_interval_s = CONFIG_DEFAULT_RESYNC_S;
	cfg->log_level = LOG_LVL_INFO;
	if (!cfg->mode_name || !cfg->control_socket || !cfg->metrics_address ||
	    !cfg->state_file || !cfg->bpffs_dir || !cfg->allowed_sources ||
	    !cfg->allowed_sources[0]) {
		config_free(cfg);
		return -ENOMEM;
	}
	return 0;
}

static int oom(char **errmsg)
{
	if (errmsg)
		*errmsg = strdup("out of memory");
	return -1;
}

int config_load_string(const char *name, const char *text, size_t len,
		       struct config *cfg, char **errmsg)
{
	struct parse p = { .name = name, .cfg = cfg };

	if (errmsg)
		*errmsg = NULL;
	if (config_defaults(cfg))
		return oom(errmsg);
	cfg->path = strdup(name);
	if (!cfg->path) {
		config_free(cfg);
		return oom(errmsg);
	}
	if (memchr(text, '\0', len)) {
		fail(&p, NULL, "contains a NUL byte (not a YAML text file)");
	} else if (!parse_text(&p, text, len)) {
		return 0;
	}
	config_free(cfg);
	if (errmsg)
		*errmsg = p.err ? p.err : strdup("config: out of memory");
	else
		free(p.err);
	return -1;
}

static int read_file(const char *path, char **buf, size_t *len, char **errmsg)
{
	struct stat st;
	ssize_t n;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto fail_errno;
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (asprintf(errmsg, "%s: not a regular file", path) < 0)
			*errmsg = NULL;
		return -1;
	}
	if (st.st_size > CONFIG_MAX_FILE_SIZE) {
		close(fd);
		if (asprintf(errmsg, "%s: too large (%lld bytes, at most %u)", path,
			     (long long)st.st_size, CONFIG_MAX_FILE_SIZE) < 0)
			*errmsg = NULL;
		return -1;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		errno = ENOMEM;
		goto fail_errno;
	}
	n = read_full(fd, *buf, (size_t)st.st_size + 1);
	if (n < 0) {
		free(*buf);
		errno = (int)-n;
		goto fail_errno;
	}
	if ((size_t)n > (size_t)st.st_size)
		n = st.st_size;	/* grew while reading: parse what we sized for */
	(*buf)[n] = '\0';
	*len = (size_t)n;
	close(fd);
	return 0;

fail_errno:
	err = errno;
	if (fd >= 0)
		close(fd);
	if (asprintf(errmsg, "%s: %s", path, strerror(err)) < 0)
		*errmsg = NULL;
	return -1;
}

int config_load(const char *path, struct config *cfg, char **errmsg)
{
	char *buf = NULL, *e = NULL;
	size_t len;
	int ret;

	if (errmsg)
		*errmsg = NULL;
	if (!path) {
		if (config_defaults(cfg))
			return oom(errmsg);
		return 0;
	}
	memset(cfg, 0, sizeof(*cfg));
	if (read_file(path, &buf, &len, &e)) {
		if (errmsg)
			*errmsg = e ? e : strdup("out of memory");
		else
			free(e);
		return -1;
	}
	ret = config_load_string(path, buf, len, cfg, errmsg);
	free(buf);
	return ret;
}

void config_free(struct config *cfg)
{
	free(cfg->path);
	free(cfg->mode_name);
	free(cfg->control_socket);
	free(cfg->metrics_address);
	free(cfg->state_file);
	free(cfg->bpffs_dir);
	for (size_t i = 0; i < cfg->n_allowed_sources; i++)
		free(cfg->allowed_sources[i]);
	free(cfg->allowed_sources);
	for (size_t i = 0; i < cfg->n_watches; i++) {
		free(cfg->watches[i].source);
		free(cfg->watches[i].agent);
		free(cfg->watches[i].dest);
	}
	free(cfg->watches);
	memset(cfg, 0, sizeof(*cfg));
}

int config_parse_address(const char *addr, char **host, uint16_t *port)
{
	const char *colon, *hs, *he;
	unsigned long p;
	char *end;

	*host = NULL;
	if (addr[0] == '[') {
		hs = addr + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':' || he == hs)
			return -EINVAL;
		colon = he + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL;	/* bare IPv6 needs brackets */
		hs = addr;
		he = colon;
	}
	if (!colon[1])
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (*end || errno || p > 65535 || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	*host = strndup(hs, (size_t)(he - hs));
	if (!*host)
		return -ENOMEM;
	*port = (uint16_t)p;
	return 0;
}
