// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for gpudd's message parser and request checks. On top of
 * the sanitizers: an accepted message re-encodes, from the parsed fields, to
 * a message that parses to the same fields; strings the parser returns end
 * inside the input.
 */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

static uint8_t re[GPUD_PROTO_REPLY_MAX];

static void reencode(const struct gpud_proto_msg *m)
{
	struct gpud_proto_buf b;
	struct gpud_proto_msg m2;
	char why[128];
	int len;

	gpud_proto_start(&b, re, sizeof(re), m->version, m->type, m->seq);
	if (gpud_proto_has(m, GPUD_A_VMIN))
		gpud_proto_put_u32(&b, GPUD_A_VMIN, m->vmin);
	if (gpud_proto_has(m, GPUD_A_VMAX))
		gpud_proto_put_u32(&b, GPUD_A_VMAX, m->vmax);
	if (gpud_proto_has(m, GPUD_A_FEATURES))
		gpud_proto_put_u64(&b, GPUD_A_FEATURES, m->features);
	if (gpud_proto_has(m, GPUD_A_IFNAME))
		gpud_proto_put_str(&b, GPUD_A_IFNAME, m->ifname, GPUD_PROTO_IFNAME_MAX);
	for (uint32_t i = 0; i < m->nq; i++)
		gpud_proto_put_u32(&b, GPUD_A_QUEUE, m->queues[i]);
	if (gpud_proto_has(m, GPUD_A_RULE))
		gpud_proto_put_u32(&b, GPUD_A_RULE, m->rule);
	len = gpud_proto_finish(&b);
	if (len < 0)
		abort();
	if (gpud_proto_parse(re, (size_t)len, sizeof(re), &m2, why, sizeof(why)))
		abort();
	if (m2.type != m->type || m2.seq != m->seq || m2.nq != m->nq ||
	    memcmp(m2.queues, m->queues, m->nq * sizeof(m->queues[0])) ||
	    strcmp(m2.ifname, m->ifname) || m2.vmin != m->vmin || m2.features != m->features)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gpud_proto_msg m;
	uint16_t peeked = gpud_proto_peek_type(data, size);
	char why[256];

	if (gpud_proto_parse(data, size, GPUD_PROTO_REPLY_MAX, &m, why, sizeof(why)))
		return 0;
	/* gpudd's scheduler peeks at the type before the parse: the two must agree */
	if (peeked != m.type)
		abort();
	if (m.msg && (m.msg < (const char *)data || m.msg + strlen(m.msg) >= (const char *)data + size))
		abort();
	if (m.text && (m.text < (const char *)data ||
		       m.text + strlen(m.text) >= (const char *)data + size))
		abort();
	for (int nfds = 0; nfds < 3; nfds++)
		gpud_proto_check_request(&m, nfds, why, sizeof(why));
	reencode(&m);
	return 0;
}
