/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kata guest agent client: grpc.AgentService/CopyFile over ttrpc.
 *
 * One struct agent_conn per agent URL, shared by any number of threads.
 * It connects lazily, and after the connection is lost it reconnects on
 * the next call, no sooner than a capped exponential backoff allows
 * (attempts made earlier fail at once with Unavailable "reconnect backoff").
 * RPCs are never retried silently: a failed call reports its status and
 * the caller decides (ttrpc_status_retriable). Every successful reconnect
 * bumps a counter and calls the reconnect callback, because the guest may
 * have restarted or missed writes: the daemon re-syncs everything then.
 */
#ifndef VT_AGENT_CLIENT_H
#define VT_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ttrpc.h"

#define AGENT_SERVICE		"grpc.AgentService"
#define AGENT_METHOD_COPY_FILE	"CopyFile"
/* Kata's runtime sends at most this much file data per CopyFile. */
#define AGENT_CHUNK_MAX		(1u << 20)
/* Mode of parent directories the agent creates on its own. */
#define AGENT_DIR_MODE		0750

struct agent_conn_opts {
	int connect_timeout_ms;	/* connect + hvsock handshake; default 5000 */
	int call_timeout_ms;	/* per RPC, also sent as timeout_nano; 30000 */
	int backoff_initial_ms;	/* first reconnect delay; default 100 */
	int backoff_max_ms;	/* cap; default 30000 */
};
void agent_conn_opts_default(struct agent_conn_opts *o);

struct agent_counters {
	uint64_t rpcs;		/* CopyFile calls answered OK */
	uint64_t rpc_errors;	/* calls that failed, any reason */
	uint64_t bytes;		/* file data bytes acknowledged */
	uint64_t files;		/* regular files completed */
	uint64_t dirs;
	uint64_t symlinks;
	uint64_t connects;	/* successful connects, first included */
	uint64_t reconnects;	/* successful connects after a loss */
};

struct agent_conn;

/* Called (from the calling thread, no lock held) after each reconnect. */
typedef void (*agent_reconnect_fn)(struct agent_conn *c, uint64_t reconnects,
				   void *arg);

/* Parses the URL (see transport.h); does not connect. NULL + st on error. */
struct agent_conn *agent_conn_new(const char *url,
				  const struct agent_conn_opts *opts,
				  struct ttrpc_status *st);
void agent_conn_free(struct agent_conn *c);
/* The URL as given to agent_conn_new. */
const char *agent_conn_url(const struct agent_conn *c);
void agent_conn_set_reconnect_cb(struct agent_conn *c, agent_reconnect_fn fn,
				 void *arg);
/* Connect now if not connected, ignoring the backoff. */
int agent_conn_connect(struct agent_conn *c, struct ttrpc_status *st);
/* Drop the current connection (e.g. on shutdown); next call reconnects. */
void agent_conn_disconnect(struct agent_conn *c);
bool agent_conn_connected(struct agent_conn *c);
uint64_t agent_conn_reconnects(struct agent_conn *c);
/* CLOCK_MONOTONIC ns before which no connect is attempted; 0 = now. */
uint64_t agent_conn_retry_at_ns(struct agent_conn *c);
/* Snapshot of the counters accumulated over this connection's life. */
void agent_conn_counters(struct agent_conn *c, struct agent_counters *out);

/* ---- one CopyFile RPC ---------------------------------------------------- */

struct agent_copy_req {
	const char *path;	/* guest path; must pass guest_path_allowed */
	int64_t file_size;
	uint32_t file_mode;	/* st_mode including S_IFMT */
	uint32_t dir_mode;
	int32_t uid;
	int32_t gid;
	int64_t offset;
	const uint8_t *data;
	size_t len;		/* <= AGENT_CHUNK_MAX for file data */
};

/* Encoded grpc.CopyFileRequest (malloc'd); exposed for tests/fuzzing. */
int agent_copy_req_encode(const struct agent_copy_req *req, uint8_t **out,
			  size_t *out_len, struct ttrpc_status *st);

/* Blocking call. The guest path is checked locally first. */
int agent_copy_file_rpc(struct agent_conn *c, const struct agent_copy_req *req,
			struct ttrpc_status *st);

/*
 * Asynchronous form, for several independent requests in flight. Every
 * started call must be waited for exactly once. Never start a chunk of
 * a file before the previous chunk of the same file was acknowledged:
 * the agent publishes the file when its size reaches file_size.
 */
struct agent_call {
	struct ttrpc_client *client;	/* referenced until wait */
	uint32_t stream_id;
	size_t len;			/* file data bytes, for the counters */
	/* What an OK answer completes: 'f' file, 'd' dir, 'l' symlink,
	 * 0 an intermediate chunk. Set by start, counted by wait. */
	char completes;
};
int agent_copy_file_start(struct agent_conn *c,
			  const struct agent_copy_req *req,
			  struct agent_call *call, struct ttrpc_status *st);
int agent_copy_file_wait(struct agent_conn *c, struct agent_call *call,
			 struct agent_counters *ctr, struct ttrpc_status *st);

/* ---- per-entry primitives (sync engine) ---------------------------------- */
/*
 * Each takes the source metadata from lstat (mode with type bits, uid,
 * gid) and adds to `ctr` when non-NULL (the connection's own counters are
 * always updated). Errors name the source and guest path. A source entry
 * that disappeared or changed while being read gives Aborted (retriable);
 * a symlink leaving the source directory PermissionDenied.
 */

/*
 * Stream one regular file: open `relpath` below src_dirfd with
 * copy_open_beneath (never escapes src_dirfd, no magic links), fstat it,
 * send it in chunks of <= AGENT_CHUNK_MAX read one at a time (bounded
 * memory), one chunk in flight. An empty file is one request without
 * data. A file that is not regular is refused (InvalidArgument).
 * A file that changes size while being read is reported as Aborted
 * (retriable: the next sync reads it again).
 */
int agent_put_file(struct agent_conn *c, int src_dirfd, const char *relpath,
		   const char *guest_path, struct agent_counters *ctr,
		   struct ttrpc_status *st);
/* mkdir in the guest (S_IFDIR | permission bits of sb). */
int agent_put_dir(struct agent_conn *c, const char *guest_path,
		  const struct stat *sb, struct agent_counters *ctr,
		  struct ttrpc_status *st);
/* Create or replace a symlink; target is sent as data. */
int agent_put_symlink(struct agent_conn *c, const char *guest_path,
		      const char *target, const struct stat *sb,
		      struct agent_counters *ctr, struct ttrpc_status *st);
/*
 * lstat `relpath` below src_dirfd (without following a final symlink) and
 * dispatch to the three above. Other file types (fifo, socket, device)
 * are refused with InvalidArgument.
 */
int agent_put_entry(struct agent_conn *c, int src_dirfd, const char *relpath,
		    const char *guest_path, struct agent_counters *ctr,
		    struct ttrpc_status *st);

void agent_counters_add(struct agent_counters *dst,
			const struct agent_counters *src);

#endif /* VT_AGENT_CLIENT_H */
