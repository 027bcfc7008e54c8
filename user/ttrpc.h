/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ttrpc (containerd/ttrpc PROTOCOL.md) framing, client and server helpers.
 *
 * Wire format: a 10-byte big-endian header {length u32, stream id u32,
 * type u8, flags u8} followed by `length` (<= 4 MiB) bytes of protobuf:
 * ttrpc.Request for type 1, ttrpc.Response for type 2. Clients use odd
 * stream ids.
 *
 * Errors of every layer (transport, framing, remote status) are reported
 * in one struct ttrpc_status carrying a gRPC code, so callers can classify
 * them (ttrpc_status_retriable) and print them (message already starts
 * with the code name, e.g. "NotFound: open /x: no such file").
 */
#ifndef VT_TTRPC_H
#define VT_TTRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TTRPC_HEADER_LEN	10
#define TTRPC_MAX_DATA		(4u << 20)
#define TTRPC_TYPE_REQUEST	1
#define TTRPC_TYPE_RESPONSE	2

/* gRPC status codes (google.rpc.Code). */
enum grpc_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
};

/* "NotFound", "Unavailable", ... ; "Code(N)" style for unknown codes. */
const char *grpc_code_name(int code);
/*
 * True for failures worth retrying after a reconnect or a delay:
 * Unavailable (connection lost, refused, protocol violation that closed
 * the connection), DeadlineExceeded, Aborted, ResourceExhausted,
 * Cancelled. InvalidArgument, PermissionDenied, NotFound and the rest are
 * permanent: retrying the same request cannot succeed.
 */
bool grpc_code_retriable(int code);

/*
 * Outcome of an operation. code == GRPC_OK means success and message is
 * NULL. Otherwise message is malloc'd, "<CodeName>: <detail>".
 * `remote` is true when the status came from the peer's Response (the
 * agent refused), false when it arose locally (connect, I/O, framing,
 * deadline, bad arguments, reading the source).
 */
struct ttrpc_status {
	int code;
	bool remote;
	char *message;
};

#define TTRPC_STATUS_INIT { .code = GRPC_OK, .remote = false, .message = NULL }

/* Set code + printf-style detail (previous message freed). Returns -1. */
int ttrpc_status_set(struct ttrpc_status *st, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix the existing message's detail with context: "Code: ctx: detail". */
void ttrpc_status_prefix(struct ttrpc_status *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ttrpc_status_clear(struct ttrpc_status *st);
static inline bool ttrpc_status_ok(const struct ttrpc_status *st)
{
	return st->code == GRPC_OK;
}
static inline bool ttrpc_status_retriable(const struct ttrpc_status *st)
{
	return grpc_code_retriable(st->code);
}
/* message, or "OK" */
const char *ttrpc_status_str(const struct ttrpc_status *st);

/* ---- framing ---------------------------------------------------------- */

struct ttrpc_header {
	uint32_t length;
	uint32_t stream_id;
	uint8_t type;
	uint8_t flags;
};

void ttrpc_header_encode(uint8_t out[TTRPC_HEADER_LEN],
			 const struct ttrpc_header *h);
void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_LEN],
			 struct ttrpc_header *h);

/* One complete frame; data is malloc'd (NULL when length == 0). */
struct ttrpc_frame {
	struct ttrpc_header hdr;
	uint8_t *data;
};
void ttrpc_frame_release(struct ttrpc_frame *f);

/*
 * Incremental decoder for a byte stream that may split frames anywhere
 * or carry several in one read. Feed it bytes; it returns one frame at a
 * time. A header announcing more than TTRPC_MAX_DATA or an unknown type
 * is an error (the stream cannot be resynchronised: close it).
 */
struct ttrpc_decoder {
	uint8_t hdr_buf[TTRPC_HEADER_LEN];
	size_t hdr_have;
	struct ttrpc_header hdr;
	uint8_t *data;
	size_t data_have;
	bool failed;
};

enum ttrpc_decode_result {
	TTRPC_DECODE_NEED_MORE = 0,	/* all of buf consumed, no frame yet */
	TTRPC_DECODE_FRAME = 1,		/* *out filled; *consumed may be < len */
	TTRPC_DECODE_ERROR = -1,	/* st set; decoder is dead */
};

void ttrpc_decoder_init(struct ttrpc_decoder *d);
void ttrpc_decoder_release(struct ttrpc_decoder *d);
/*
 * `expect_type` is the only frame type accepted (TTRPC_TYPE_RESPONSE for
 * a client, TTRPC_TYPE_REQUEST for a server).
 */
enum ttrpc_decode_result
ttrpc_decoder_feed(struct ttrpc_decoder *d, const uint8_t *buf, size_t len,
		   uint8_t expect_type, size_t *consumed,
		   struct ttrpc_frame *out, struct ttrpc_status *st);

/* Header + data in one buffer (malloc'd). -1 with st set if len too big. */
int ttrpc_frame_encode(uint32_t stream_id, uint8_t type, const uint8_t *data,
		       size_t len, uint8_t **out, size_t *out_len,
		       struct ttrpc_status *st);

/*
 * Blocking helpers on a connected fd. timeout_ms < 0 waits forever;
 * the timeout applies to the whole frame. EOF before the first header
 * byte sets GRPC_UNAVAILABLE "connection closed by peer" and returns -1.
 */
int ttrpc_read_frame(int fd, uint8_t expect_type, int timeout_ms,
		     struct ttrpc_frame *out, struct ttrpc_status *st);
int ttrpc_write_frame(int fd, uint32_t stream_id, uint8_t type,
		      const uint8_t *data, size_t len, int timeout_ms,
		      struct ttrpc_status *st);

/* ---- messages ---------------------------------------------------------- */

/* Packed ttrpc.Request; *out malloc'd. */
int ttrpc_request_encode(const char *service, const char *method,
			 const uint8_t *payload, size_t len,
			 int64_t timeout_nano, uint8_t **out, size_t *out_len,
			 struct ttrpc_status *st);

/* Decoded ttrpc.Request (strings and payload malloc'd copies). */
struct ttrpc_request {
	char *service;
	char *method;
	uint8_t *payload;
	size_t payload_len;
	int64_t timeout_nano;
};
int ttrpc_request_decode(const uint8_t *buf, size_t len,
			 struct ttrpc_request *out, struct ttrpc_status *st);
void ttrpc_request_release(struct ttrpc_request *r);

/* Packed ttrpc.Response; status omitted when code == OK. */
int ttrpc_response_encode(int code, const char *message,
			  const uint8_t *payload, size_t len,
			  uint8_t **out, size_t *out_len,
			  struct ttrpc_status *st);
/*
 * Decode a ttrpc.Response. Returns 0 when it decoded: *call receives the
 * remote status (remote=true when non-OK) and *payload a malloc'd copy.
 * Returns -1 with st set when the bytes are not a Response.
 */
int ttrpc_response_decode(const uint8_t *buf, size_t len,
			  struct ttrpc_status *call, uint8_t **payload,
			  size_t *payload_len, struct ttrpc_status *st);

/* ---- client ------------------------------------------------------------ */

/*
 * A client on one connected stream socket. Thread-safe: any number of
 * threads may call concurrently; requests are multiplexed on the socket
 * and responses matched by stream id. Once a protocol violation or I/O
 * error occurs the client is "broken": every pending and later call fails
 * with Unavailable and the owner should free it and reconnect.
 */
struct ttrpc_client;

/*
 * Takes ownership of fd (closed with the last reference). The client is
 * reference counted: ttrpc_client_ref adds one, ttrpc_client_free drops
 * one. NULL on ENOMEM (fd is closed then).
 */
struct ttrpc_client *ttrpc_client_new(int fd);
struct ttrpc_client *ttrpc_client_ref(struct ttrpc_client *c);
void ttrpc_client_free(struct ttrpc_client *c);
bool ttrpc_client_broken(struct ttrpc_client *c);
/* Mark broken and shut the socket down: wakes every waiter. */
void ttrpc_client_shutdown(struct ttrpc_client *c, const char *why);

/*
 * Send a request without waiting for the answer. timeout_ns (0 = none)
 * is sent as timeout_nano and bounds ttrpc_client_wait. *stream_id
 * identifies the call for ttrpc_client_wait, which must be called
 * exactly once per started call.
 */
int ttrpc_client_start(struct ttrpc_client *c, const char *service,
		       const char *method, const uint8_t *payload, size_t len,
		       uint64_t timeout_ns, uint32_t *stream_id,
		       struct ttrpc_status *st);
/*
 * Wait for the response to a started call. Returns 0 on OK status
 * (*resp malloc'd, may be NULL when resp_len is 0; pass resp == NULL to
 * discard), -1 otherwise with st set (remote status, deadline, or
 * connection failure).
 */
int ttrpc_client_wait(struct ttrpc_client *c, uint32_t stream_id,
		      uint8_t **resp, size_t *resp_len,
		      struct ttrpc_status *st);
/* start + wait. */
int ttrpc_client_call(struct ttrpc_client *c, const char *service,
		      const char *method, const uint8_t *payload, size_t len,
		      uint64_t timeout_ns, uint8_t **resp, size_t *resp_len,
		      struct ttrpc_status *st);

/* ---- server ------------------------------------------------------------ */

/*
 * Handler for one request. Return 0 and optionally set *resp (malloc'd,
 * freed by the caller) for OK; or fill `reply` with a non-OK status (use
 * ttrpc_status_set) to answer with that code and message.
 */
typedef void (*ttrpc_handler_fn)(void *ctx, const struct ttrpc_request *req,
				 uint8_t **resp, size_t *resp_len,
				 struct ttrpc_status *reply);

/*
 * Serve one request on a connected fd that poll() reported readable:
 * read one Request frame (bounded by timeout_ms), decode it, call the
 * handler, write the Response on the same stream id. Returns 0 when a
 * request was answered (including non-OK answers), -1 when the
 * connection must be closed (EOF, I/O error, malformed frame; st says
 * why; on a clean EOF st->code is GRPC_UNAVAILABLE and the message ends in
 * "connection closed by peer"). Undecodable Request payloads are answered
 * with InvalidArgument rather than dropped when the frame itself was sane.
 */
int ttrpc_server_handle_one(int fd, ttrpc_handler_fn handler, void *ctx,
			    int timeout_ms, struct ttrpc_status *st);

#endif /* VT_TTRPC_H */
