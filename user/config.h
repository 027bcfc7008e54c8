/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The daemon's configuration file (YAML, parsed with libyaml).
 *
 *   struct config cfg;
 *   char *err = NULL;
 *   if (config_load(path, &cfg, &err) < 0) {   // path NULL: defaults only
 *           fprintf(stderr, "%s\n", err);      // "FILE:LINE: message"
 *           free(err);
 *           return EXIT_USAGE;
 *   }
 *   ... use cfg ...
 *   config_free(&cfg);
 *
 * Only what can be checked without the filesystem is validated here (types,
 * ranges, absolute paths, agent URL scheme, dest under the guest shared dir);
 * the watch registry does the rest (source exists, realpath under
 * allowed_sources, agent reachable).
 */
#ifndef VT_CONFIG_H
#define VT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define CONFIG_DEFAULT_CONTROL_SOCKET	"/run/voltrace/control.sock"
#define CONFIG_DEFAULT_METRICS_ADDRESS	"127.0.0.1:9464"
#define CONFIG_DEFAULT_STATE_FILE	"/run/voltrace/state.json"
#define CONFIG_DEFAULT_BPFFS_DIR	"/sys/fs/bpf/voltrace"
#define CONFIG_DEFAULT_ALLOWED_SOURCE	"/var/lib/kubelet/pods"
#define CONFIG_DEFAULT_RING_BUFFER_SIZE	(256 * 1024)
#define CONFIG_DEFAULT_DEBOUNCE_MS	5
#define CONFIG_MAX_DEBOUNCE_MS		10000
/* Full reconcile of every watch this often, as a safety net; 0: never. */
#define CONFIG_DEFAULT_RESYNC_S		300
#define CONFIG_MAX_RESYNC_S		86400
#define CONFIG_MIN_RING_BUFFER_SIZE	4096
#define CONFIG_MAX_RING_BUFFER_SIZE	(1ull << 30)
/* The guest agent refuses every path outside this directory. */
#define CONFIG_GUEST_SHARED_DIR		"/run/kata-containers/shared/containers"

struct config_watch {
	char *source;		/* absolute, normalised */
	char *agent;		/* vsock://, hvsock://, unix:// URL */
	char *dest;		/* absolute, normalised, under CONFIG_GUEST_SHARED_DIR */
	int line;		/* line in the config file, for later error messages */
};

struct config {
	char *path;		/* the file it came from; NULL for defaults */
	int mode;		/* enum tracer_mode_req (TRACER_MODE_AUTO = -1) */
	char *mode_name;	/* "auto", "fentry", "kprobe", "tracepoint" */
	char *control_socket;
	char *metrics_address;	/* "host:port", "[v6]:port"; "" or "off" disables */
	char *state_file;
	char *bpffs_dir;
	char **allowed_sources;	/* absolute, normalised */
	size_t n_allowed_sources;
	uint64_t ring_buffer_size;	/* bytes, power of two >= 4096 */
	unsigned int debounce_ms;
	unsigned int resync_interval_s;
	enum log_level log_level;
	bool log_level_set;	/* false: the file did not say */
	struct config_watch *watches;
	size_t n_watches;
};

/* Fill cfg with the defaults. 0 or -ENOMEM. */
int config_defaults(struct config *cfg);

/*
 * Defaults, then the file at path on top (path NULL: defaults only).
 * 0 on success; -1 with *errmsg (malloc'd) "FILE:LINE: message" on a syntax
 * error, unknown or duplicate key, wrong type or bad value. cfg is left
 * zeroed (nothing to free) on failure.
 */
int config_load(const char *path, struct config *cfg, char **errmsg);

/* Same, from a string (name is used in messages). */
int config_load_string(const char *name, const char *text, size_t len,
		       struct config *cfg, char **errmsg);

void config_free(struct config *cfg);

/*
 * Value checks shared with the control API (they return NULL when fine, or
 * a static reason such as "unknown URL scheme (want vsock://, hvsock:// or
 * unix://)").
 */
const char *config_check_agent_url(const char *url);
const char *config_check_dest(const char *dest);
const char *config_check_source(const char *source);

/*
 * "host:port", "[v6addr]:port" -> host (malloc'd, without brackets) and
 * port. A missing host ("":port) means all interfaces. 0 or -EINVAL.
 */
int config_parse_address(const char *addr, char **host, uint16_t *port);

/* "262144", "256KiB", "1MiB", "2m", "4k" -> bytes. 0 or -EINVAL. */
int config_parse_size(const char *text, uint64_t *out);

#endif /* VT_CONFIG_H */
