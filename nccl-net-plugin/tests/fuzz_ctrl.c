// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the control-frame and handshake parsers. Checks, on
 * top of the sanitizers: a parse never claims more bytes than it was given,
 * accepted frames re-encode to exactly the bytes they came from, and a
 * prefix of a valid frame asks for more instead of failing or succeeding.
 */
#include "engine/ctrl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t re[DM_FRAME_MAX_LEN];
	struct dm_frame f;
	struct dm_hello h;
	size_t rl = 0;
	int r;

	if (size >= DM_HELLO_LEN)
		dm_hello_decode(data, &h);
	if (size >= DM_ADDRS_LEN) {
		struct dm_addrs a;
		uint8_t back[DM_ADDRS_LEN];

		/* what decodes re-encodes to the same bytes: no field is lost */
		if (!dm_addrs_decode(data, &a)) {
			dm_addrs_encode(&a, back);
			if (memcmp(back, data, DM_ADDRS_LEN))
				abort();
		}
	}
	r = dm_frame_parse(data, size, &f);
	if (r < 0 || r == 0)
		return 0;
	if ((size_t)r > size)
		abort();
	switch (f.type) {
	case DM_FRAME_MSG:
		rl = dm_frame_encode_msg(re, f.msg.seq, f.msg.size, f.msg.tag);
		break;
	case DM_FRAME_ERR:
		rl = dm_frame_encode_err(re, f.err.code, f.err.text);
		break;
	case DM_FRAME_BYE:
		rl = dm_frame_encode_bye(re);
		break;
	default:
		abort();	/* the parser accepted a type it does not know */
	}
	if (rl != (size_t)r || memcmp(re, data, rl))
		abort();
	for (size_t k = 0; k < (size_t)r; k++)
		if (dm_frame_parse(data, k, &f) != 0)
			abort();
	return 0;
}
