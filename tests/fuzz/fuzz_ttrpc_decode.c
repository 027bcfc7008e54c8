// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: arbitrary bytes through the incremental frame decoder
 * (split at a fuzzed step size), and every frame's data through the
 * Request, Response and CopyFileRequest decoders.
 */
#include <stdint.h>
#include <stdlib.h>

#include "agent.pb-c.h"
#include "ttrpc.h"

static void decode_payloads(const struct ttrpc_frame *f)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT, call = TTRPC_STATUS_INIT;
	struct ttrpc_request req;
	Grpc__CopyFileRequest *m;
	uint8_t *payload = NULL;
	size_t plen;

	if (ttrpc_request_decode(f->data, f->hdr.length, &req, &st) == 0) {
		m = grpc__copy_file_request__unpack(NULL, req.payload_len,
						    req.payload);
		if (m)
			grpc__copy_file_request__free_unpacked(m, NULL);
		ttrpc_request_release(&req);
	}
	if (ttrpc_response_decode(f->data, f->hdr.length, &call, &payload,
				  &plen, &st) == 0)
		free(payload);
	(void)ttrpc_status_str(&call);
	ttrpc_status_clear(&call);
	ttrpc_status_clear(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ttrpc_status st = TTRPC_STATUS_INIT;
	struct ttrpc_decoder d;
	size_t step, off = 0;
	uint8_t type;

	if (size < 1)
		return 0;
	step = (data[0] >> 1) + 1;
	type = (data[0] & 1) ? TTRPC_TYPE_REQUEST : TTRPC_TYPE_RESPONSE;
	data++;
	size--;
	ttrpc_decoder_init(&d);
	while (off < size) {
		size_t n = size - off < step ? size - off : step, used = 0;

		while (n) {
			struct ttrpc_frame f = { 0 };
			enum ttrpc_decode_result r;

			r = ttrpc_decoder_feed(&d, data + off, n, type, &used,
					       &f, &st);
			if (r == TTRPC_DECODE_ERROR)
				goto out;
			off += used;
			n -= used;
			if (r == TTRPC_DECODE_FRAME) {
				decode_payloads(&f);
				ttrpc_frame_release(&f);
			}
		}
	}
out:
	ttrpc_status_clear(&st);
	ttrpc_decoder_release(&d);
	return 0;
}
