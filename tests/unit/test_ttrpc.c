// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ttrpc framing, envelope, client multiplexing, server helper, statuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "ttrpc.h"
#include "ttrpc.pb-c.h"

static uint8_t *frame(uint32_t len, uint32_t id, uint8_t type, size_t *out_len)
{
	uint8_t *b = calloc(1, TTRPC_HEADER_LEN + len);
	struct ttrpc_header h = { .length = len, .stream_id = id, .type = type };

	ttrpc_header_encode(b, &h);
	for (uint32_t i = 0; i < len; i++)
		b[TTRPC_HEADER_LEN + i] = (uint8_t)i;
	*out_len = TTRPC_HEADER_LEN + len;
	return b;
}

static void test_header_roundtrip(void **state)
{
	struct ttrpc_header h = { .length = 0x01020304, .stream_id = 0x7fffffff,
				  .type = 2, .flags = 0x80 }, d;
	uint8_t b[TTRPC_HEADER_LEN];

	(void)state;
	ttrpc_header_encode(b, &h);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[3], 4);
	assert_int_equal(b[4], 0x7f);
	assert_int_equal(b[8], 2);
	ttrpc_header_decode(b, &d);
	assert_int_equal(d.length, h.length);
	assert_int_equal(d.stream_id, h.stream_id);
	assert_int_equal(d.type, h.type);
	assert_int_equal(d.flags, h.flags);
}

static void test_decode_split_reads(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_decoder d;
	struct ttrpc_frame f = { 0 };
	size_t len, used, frames = 0;
	uint8_t *b = frame(300, 3, TTRPC_TYPE_RESPONSE, &len);

	(void)state;
	ttrpc_decoder_init(&d);
	for (size_t i = 0; i < len; i++) {
		enum ttrpc_decode_result r = ttrpc_decoder_feed(&d, b + i, 1,
			TTRPC_TYPE_RESPONSE, &used, &f, &st);

		assert_int_equal(used, 1);
		if (i + 1 < len) {
			assert_int_equal(r, TTRPC_DECODE_NEED_MORE);
		} else {
			assert_int_equal(r, TTRPC_DECODE_FRAME);
			frames++;
		}
	}
	assert_int_equal(frames, 1);
	assert_int_equal(f.hdr.length, 300);
	assert_int_equal(f.hdr.stream_id, 3);
	assert_memory_equal(f.data, b + TTRPC_HEADER_LEN, 300);
	ttrpc_frame_release(&f);
	ttrpc_decoder_release(&d);
	free(b);
}

static void test_decode_two_frames_one_read(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_decoder d;
	struct ttrpc_frame f = { 0 };
	size_t l1, l2, used, off;
	uint8_t *a = frame(5, 1, 2, &l1), *b = frame(7, 3, 2, &l2);
	uint8_t *both = malloc(l1 + l2);

	(void)state;
	memcpy(both, a, l1);
	memcpy(both + l1, b, l2);
	ttrpc_decoder_init(&d);
	assert_int_equal(ttrpc_decoder_feed(&d, both, l1 + l2, 2, &used, &f, &st),
			 TTRPC_DECODE_FRAME);
	assert_int_equal(used, l1);
	assert_int_equal(f.hdr.stream_id, 1);
	ttrpc_frame_release(&f);
	off = used;
	assert_int_equal(ttrpc_decoder_feed(&d, both + off, l1 + l2 - off, 2,
					    &used, &f, &st), TTRPC_DECODE_FRAME);
	assert_int_equal(used, l2);
	assert_int_equal(f.hdr.stream_id, 3);
	assert_int_equal(f.hdr.length, 7);
	ttrpc_frame_release(&f);
	ttrpc_decoder_release(&d);
	free(a);
	free(b);
	free(both);
}

static void test_decode_zero_length(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_decoder d;
	struct ttrpc_frame f = { 0 };
	size_t len, used;
	uint8_t *b = frame(0, 5, 2, &len);

	(void)state;
	ttrpc_decoder_init(&d);
	assert_int_equal(ttrpc_decoder_feed(&d, b, len, 2, &used, &f, &st),
			 TTRPC_DECODE_FRAME);
	assert_int_equal(f.hdr.length, 0);
	assert_null(f.data);
	ttrpc_decoder_release(&d);
	free(b);
}

static void test_decode_exactly_4mib(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_decoder d;
	struct ttrpc_frame f = { 0 };
	size_t len, used;
	uint8_t *b = frame(TTRPC_MAX_DATA, 1, 2, &len);

	(void)state;
	ttrpc_decoder_init(&d);
	assert_int_equal(ttrpc_decoder_feed(&d, b, len, 2, &used, &f, &st),
			 TTRPC_DECODE_FRAME);
	assert_int_equal(f.hdr.length, 4u << 20);
	assert_int_equal(f.data[TTRPC_MAX_DATA - 1], (uint8_t)(TTRPC_MAX_DATA - 1));
	ttrpc_frame_release(&f);
	ttrpc_decoder_release(&d);
	free(b);
}

static void test_decode_4mib_plus_1(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_decoder d;
	struct ttrpc_frame f = { 0 };
	struct ttrpc_header h = { .length = TTRPC_MAX_DATA + 1, .stream_id = 1,
				  .type = 2 };
	uint8_t b[TTRPC_HEADER_LEN];
	size_t used;

	(void)state;
	ttrpc_header_encode(b, &h);
	ttrpc_decoder_init(&d);
	assert_int_equal(ttrpc_decoder_feed(&d, b, sizeof(b), 2, &used, &f, &st),
			 TTRPC_DECODE_ERROR);
	assert_int_equal(st.code, GRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(st.message, "4194305"));
	/* The decoder stays dead. */
	assert_int_equal(ttrpc_decoder_feed(&d, b, sizeof(b), 2, &used, &f, &st),
			 TTRPC_DECODE_ERROR);
	ttrpc_status_clear(&st);
	ttrpc_decoder_release(&d);
	/* And the encoder refuses to build one. */
	uint8_t *out;
	size_t out_len;
	assert_int_equal(ttrpc_frame_encode(1, 1, b, TTRPC_MAX_DATA + 1, &out,
					    &out_len, &st), -1);
	ttrpc_status_clear(&st);
}

static void test_decode_unknown_type(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_decoder d;
	struct ttrpc_frame f = { 0 };
	size_t len, used;
	uint8_t *b = frame(4, 1, 9, &len);

	(void)state;
	ttrpc_decoder_init(&d);
	assert_int_equal(ttrpc_decoder_feed(&d, b, len, 2, &used, &f, &st),
			 TTRPC_DECODE_ERROR);
	assert_non_null(strstr(st.message, "type 9"));
	ttrpc_status_clear(&st);
	ttrpc_decoder_release(&d);
	free(b);
}

static void test_status_mapping(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;

	(void)state;
	assert_string_equal(grpc_code_name(GRPC_NOT_FOUND), "NotFound");
	assert_string_equal(grpc_code_name(GRPC_UNAVAILABLE), "Unavailable");
	assert_string_equal(grpc_code_name(GRPC_PERMISSION_DENIED), "PermissionDenied");
	assert_string_equal(grpc_code_name(99), "Code(99)");
	assert_true(grpc_code_retriable(GRPC_UNAVAILABLE));
	assert_true(grpc_code_retriable(GRPC_DEADLINE_EXCEEDED));
	assert_false(grpc_code_retriable(GRPC_INVALID_ARGUMENT));
	assert_false(grpc_code_retriable(GRPC_PERMISSION_DENIED));
	assert_false(grpc_code_retriable(GRPC_NOT_FOUND));
	assert_false(grpc_code_retriable(GRPC_OK));
	ttrpc_status_set(&st, GRPC_NOT_FOUND, "open %s", "/x");
	assert_string_equal(st.message, "NotFound: open /x");
	ttrpc_status_prefix(&st, "copy %s", "a");
	assert_string_equal(st.message, "NotFound: copy a: open /x");
	assert_false(ttrpc_status_retriable(&st));
	ttrpc_status_clear(&st);
	assert_true(ttrpc_status_ok(&st));
	assert_string_equal(ttrpc_status_str(&st), "OK");
}

static void test_request_roundtrip(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_request r;
	uint8_t *b;
	size_t n;

	(void)state;
	assert_int_equal(ttrpc_request_encode("grpc.AgentService", "CopyFile",
		(const uint8_t *)"xyz", 3, 5000000000ll, &b, &n, &st), 0);
	assert_int_equal(ttrpc_request_decode(b, n, &r, &st), 0);
	assert_string_equal(r.service, "grpc.AgentService");
	assert_string_equal(r.method, "CopyFile");
	assert_int_equal(r.payload_len, 3);
	assert_memory_equal(r.payload, "xyz", 3);
	assert_int_equal(r.timeout_nano, 5000000000ll);
	ttrpc_request_release(&r);
	free(b);
	/* 0xff.. is not a Request. */
	assert_int_equal(ttrpc_request_decode((const uint8_t *)"\xff\xff\xff", 3,
					      &r, &st), -1);
	assert_int_equal(st.code, GRPC_INVALID_ARGUMENT);
	ttrpc_status_clear(&st);
}

static void test_response_remote_status(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT, call = TTRPC_STATUS_INIT;
	uint8_t *b, *payload;
	size_t n, plen;

	(void)state;
	assert_int_equal(ttrpc_response_encode(GRPC_PERMISSION_DENIED,
		"Only allow to copy files into /run", NULL, 0, &b, &n, &st), 0);
	assert_int_equal(ttrpc_response_decode(b, n, &call, &payload, &plen, &st), 0);
	assert_int_equal(call.code, GRPC_PERMISSION_DENIED);
	assert_true(call.remote);
	assert_string_equal(call.message,
		"PermissionDenied: Only allow to copy files into /run");
	ttrpc_status_clear(&call);
	free(payload);
	free(b);
	assert_int_equal(ttrpc_response_encode(GRPC_OK, NULL,
		(const uint8_t *)"ok", 2, &b, &n, &st), 0);
	assert_int_equal(ttrpc_response_decode(b, n, &call, &payload, &plen, &st), 0);
	assert_int_equal(call.code, GRPC_OK);
	assert_int_equal(plen, 2);
	free(payload);
	free(b);
}

/* Write a Response frame with the given code/payload on `fd`. */
static void answer(int fd, uint32_t id, int code, const char *payload)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	uint8_t *b;
	size_t n;

	assert_int_equal(ttrpc_response_encode(code, "boom",
		(const uint8_t *)payload, payload ? strlen(payload) : 0,
		&b, &n, &st), 0);
	assert_int_equal(ttrpc_write_frame(fd, id, TTRPC_TYPE_RESPONSE, b, n,
					   1000, &st), 0);
	free(b);
}

/* Read one request frame from the "server" end; returns its stream id. */
static uint32_t take_request(int fd, char *method_out)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_frame f;
	struct ttrpc_request r;
	uint32_t id;

	assert_int_equal(ttrpc_read_frame(fd, TTRPC_TYPE_REQUEST, 1000, &f, &st), 0);
	assert_int_equal(ttrpc_request_decode(f.data, f.hdr.length, &r, &st), 0);
	if (method_out)
		strcpy(method_out, r.method);
	id = f.hdr.stream_id;
	ttrpc_request_release(&r);
	ttrpc_frame_release(&f);
	return id;
}

static void test_client_multiplexing(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_client *c;
	uint32_t a, b, sa, sb;
	uint8_t *resp;
	size_t n;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = ttrpc_client_new(sv[0]);
	assert_int_equal(ttrpc_client_start(c, "s", "A", NULL, 0, 0, &a, &st), 0);
	assert_int_equal(ttrpc_client_start(c, "s", "B", NULL, 0, 0, &b, &st), 0);
	assert_true(a & 1);
	assert_true(b & 1);
	assert_int_not_equal(a, b);
	sa = take_request(sv[1], NULL);
	sb = take_request(sv[1], NULL);
	assert_int_equal(sa, a);
	assert_int_equal(sb, b);
	/* Answer out of order; each waiter gets its own answer. */
	answer(sv[1], b, GRPC_OK, "for-b");
	answer(sv[1], a, GRPC_NOT_FOUND, NULL);
	assert_int_equal(ttrpc_client_wait(c, a, &resp, &n, &st), -1);
	assert_int_equal(st.code, GRPC_NOT_FOUND);
	assert_true(st.remote);
	assert_int_equal(ttrpc_client_wait(c, b, &resp, &n, &st), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(resp, "for-b", 5);
	free(resp);
	ttrpc_client_free(c);
	close(sv[1]);
	ttrpc_status_clear(&st);
}

static void test_client_unknown_stream(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_client *c;
	uint32_t a;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = ttrpc_client_new(sv[0]);
	assert_int_equal(ttrpc_client_start(c, "s", "A", NULL, 0, 2000000000ull,
					    &a, &st), 0);
	take_request(sv[1], NULL);
	answer(sv[1], a + 100, GRPC_OK, NULL);
	assert_int_equal(ttrpc_client_wait(c, a, NULL, NULL, &st), -1);
	assert_int_equal(st.code, GRPC_UNAVAILABLE);
	assert_non_null(strstr(st.message, "unknown stream id"));
	assert_true(ttrpc_client_broken(c));
	/* Later calls fail at once. */
	assert_int_equal(ttrpc_client_start(c, "s", "A", NULL, 0, 0, &a, &st), -1);
	ttrpc_client_free(c);
	close(sv[1]);
	ttrpc_status_clear(&st);
}

static void test_client_deadline_then_late_answer(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_client *c;
	uint32_t a, b;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = ttrpc_client_new(sv[0]);
	assert_int_equal(ttrpc_client_start(c, "s", "A", NULL, 0, 50000000ull,
					    &a, &st), 0);
	assert_int_equal(ttrpc_client_wait(c, a, NULL, NULL, &st), -1);
	assert_int_equal(st.code, GRPC_DEADLINE_EXCEEDED);
	assert_true(ttrpc_status_retriable(&st));
	/* The late answer is dropped; the connection keeps working. */
	take_request(sv[1], NULL);
	answer(sv[1], a, GRPC_OK, NULL);
	assert_int_equal(ttrpc_client_start(c, "s", "B", NULL, 0, 1000000000ull,
					    &b, &st), 0);
	take_request(sv[1], NULL);
	answer(sv[1], b, GRPC_OK, NULL);
	assert_int_equal(ttrpc_client_wait(c, b, NULL, NULL, &st), 0);
	assert_false(ttrpc_client_broken(c));
	ttrpc_client_free(c);
	close(sv[1]);
}

static void test_client_peer_closes(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_client *c;
	uint32_t a;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = ttrpc_client_new(sv[0]);
	assert_int_equal(ttrpc_client_start(c, "s", "A", NULL, 0, 0, &a, &st), 0);
	take_request(sv[1], NULL);
	/* Half a header, then EOF. */
	assert_int_equal(write(sv[1], "\0\0\0", 3), 3);
	close(sv[1]);
	assert_int_equal(ttrpc_client_wait(c, a, NULL, NULL, &st), -1);
	assert_int_equal(st.code, GRPC_UNAVAILABLE);
	assert_non_null(strstr(st.message, "closed by peer"));
	ttrpc_client_free(c);
	ttrpc_status_clear(&st);
}

static void echo_handler(void *ctx, const struct ttrpc_request *req,
			 uint8_t **resp, size_t *resp_len,
			 struct ttrpc_status *reply)
{
	(void)ctx;
	if (strcmp(req->method, "Echo")) {
		ttrpc_status_set(reply, GRPC_UNIMPLEMENTED, "no method %s",
				 req->method);
		return;
	}
	*resp = malloc(req->payload_len + 1);
	memcpy(*resp, req->payload, req->payload_len);
	*resp_len = req->payload_len;
}

static void test_server_handle_one(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_client *c;
	uint8_t *resp;
	size_t n;
	uint32_t id;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = ttrpc_client_new(sv[0]);
	assert_int_equal(ttrpc_client_start(c, "svc", "Echo",
		(const uint8_t *)"hello", 5, 0, &id, &st), 0);
	assert_int_equal(ttrpc_server_handle_one(sv[1], echo_handler, NULL,
						 1000, &st), 0);
	assert_int_equal(ttrpc_client_wait(c, id, &resp, &n, &st), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(resp, "hello", 5);
	free(resp);
	assert_int_equal(ttrpc_client_start(c, "svc", "Nope", NULL, 0, 0, &id,
					    &st), 0);
	assert_int_equal(ttrpc_server_handle_one(sv[1], echo_handler, NULL,
						 1000, &st), 0);
	assert_int_equal(ttrpc_client_wait(c, id, NULL, NULL, &st), -1);
	assert_int_equal(st.code, GRPC_UNIMPLEMENTED);
	assert_string_equal(st.message, "Unimplemented: no method Nope");
	ttrpc_client_free(c);
	/* EOF is reported as a closed connection. */
	assert_int_equal(ttrpc_server_handle_one(sv[1], echo_handler, NULL,
						 1000, &st), -1);
	assert_non_null(strstr(st.message, "closed by peer"));
	close(sv[1]);
	ttrpc_status_clear(&st);
}

static void test_server_rejects_junk(void **state)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	size_t len;
	uint8_t *b = frame(4, 1, TTRPC_TYPE_RESPONSE, &len);
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], b, len), (ssize_t)len);
	assert_int_equal(ttrpc_server_handle_one(sv[1], echo_handler, NULL,
						 1000, &st), -1);
	assert_int_equal(st.code, GRPC_INTERNAL);
	ttrpc_status_clear(&st);
	/* A partial frame times out instead of hanging. */
	assert_int_equal(write(sv[0], b, 4), 4);
	assert_int_equal(ttrpc_server_handle_one(sv[1], echo_handler, NULL,
						 100, &st), -1);
	assert_int_equal(st.code, GRPC_DEADLINE_EXCEEDED);
	ttrpc_status_clear(&st);
	close(sv[0]);
	close(sv[1]);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_decode_split_reads),
		cmocka_unit_test(test_decode_two_frames_one_read),
		cmocka_unit_test(test_decode_zero_length),
		cmocka_unit_test(test_decode_exactly_4mib),
		cmocka_unit_test(test_decode_4mib_plus_1),
		cmocka_unit_test(test_decode_unknown_type),
		cmocka_unit_test(test_status_mapping),
		cmocka_unit_test(test_request_roundtrip),
		cmocka_unit_test(test_response_remote_status),
		cmocka_unit_test(test_client_multiplexing),
		cmocka_unit_test(test_client_unknown_stream),
		cmocka_unit_test(test_client_deadline_then_late_answer),
		cmocka_unit_test(test_client_peer_closes),
		cmocka_unit_test(test_server_handle_one),
		cmocka_unit_test(test_server_rejects_junk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
