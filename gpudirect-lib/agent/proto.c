// SPDX-License-Identifier: MIT
/*
 * gpudd wire format: parser, request checks and builder (see proto.h).
 * Everything here is a pure function of its bytes, so the agent and the
 * library share one implementation and the fuzzer reaches all of it.
 */
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum attr_kind { K_NONE, K_U32, K_U64, K_STR, K_BYTES };

static const struct {
	enum attr_kind kind;
	uint16_t max;		/* strings and bytes: longest value, NUL included */
	bool repeat;
	const char *name;
} attrs[GPUD_A_TYPE_MAX + 1] = {
	[GPUD_A_VMIN] = { K_U32, 4, false, "vmin" },
	[GPUD_A_VMAX] = { K_U32, 4, false, "vmax" },
	[GPUD_A_FEATURES] = { K_U64, 8, false, "features" },
	[GPUD_A_IFNAME] = { K_STR, GPUD_PROTO_IFNAME_MAX, false, "ifname" },
	[GPUD_A_NQUEUES] = { K_U32, 4, false, "nqueues" },
	[GPUD_A_RANK] = { K_U32, 4, false, "rank" },
	[GPUD_A_QUEUE] = { K_U32, 4, true, "queue" },
	[GPUD_A_BINDING] = { K_U32, 4, false, "binding" },
	[GPUD_A_RULE] = { K_U32, 4, false, "rule" },
	[GPUD_A_ERRNO] = { K_U32, 4, false, "errno" },
	[GPUD_A_MSG] = { K_STR, GPUD_PROTO_MSG_MAX, false, "msg" },
	[GPUD_A_TEXT] = { K_STR, UINT16_MAX - 4, false, "text" },
	[GPUD_A_ADDR] = { K_BYTES, 64, false, "addr" },
	[GPUD_A_IFINDEX] = { K_U32, 4, false, "ifindex" },
};

static int fail(int err, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(int err, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint16_t gpud_proto_peek_type(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (len < 8 || get32(p) != GPUD_PROTO_MAGIC)
		return 0;
	return get16(p + 6);
}

const char *gpud_proto_type_name(uint16_t type)
{
	static const char *const names[] = {
		[GPUD_MSG_HELLO] = "hello", [GPUD_MSG_ALLOC] = "alloc",
		[GPUD_MSG_FREE] = "free", [GPUD_MSG_BIND] = "bind",
		[GPUD_MSG_UNBIND] = "unbind", [GPUD_MSG_FLOW_ADD] = "flow-add",
		[GPUD_MSG_FLOW_DEL] = "flow-del", [GPUD_MSG_STATUS] = "status",
		[GPUD_MSG_HDS] = "header-split",
	};

	if (type == GPUD_MSG_REPLY)
		return "reply";
	if (type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	return "unknown";
}

/* One attribute of known type @t and value length @vl into @m. */
static int take_attr(struct gpud_proto_msg *m, uint16_t t, const uint8_t *v, size_t vl,
		     char *why, size_t whylen)
{
	if ((m->present >> t) & 1 && !attrs[t].repeat)
		return fail(-EBADMSG, why, whylen, "attribute %s given twice", attrs[t].name);
	switch (attrs[t].kind) {
	case K_U32:
	case K_U64:
		if (vl != attrs[t].max)
			return fail(-EBADMSG, why, whylen, "attribute %s is %zu bytes, not %u",
				    attrs[t].name, vl, attrs[t].max);
		break;
	case K_STR:
		if (!vl || vl > attrs[t].max || memchr(v, 0, vl) != v + vl - 1)
			return fail(-EBADMSG, why, whylen,
				    "attribute %s is not a string of at most %u bytes ending "
				    "in its only NUL", attrs[t].name, attrs[t].max - 1u);
		break;
	case K_BYTES:
		if (vl > attrs[t].max)
			return fail(-EBADMSG, why, whylen, "attribute %s is over %u bytes",
				    attrs[t].name, attrs[t].max);
		break;
	case K_NONE:
		return 0;
	}
	m->present |= 1u << t;
	switch (t) {
	case GPUD_A_VMIN: m->vmin = get32(v); break;
	case GPUD_A_VMAX: m->vmax = get32(v); break;
	case GPUD_A_FEATURES: m->features = get64(v); break;
	case GPUD_A_IFNAME: memcpy(m->ifname, v, vl); break;
	case GPUD_A_NQUEUES: m->nqueues = get32(v); break;
	case GPUD_A_RANK: m->rank = get32(v); break;
	case GPUD_A_BINDING: m->binding = get32(v); break;
	case GPUD_A_RULE: m->rule = get32(v); break;
	case GPUD_A_ERRNO: m->err = (int32_t)get32(v); break;
	case GPUD_A_IFINDEX: m->ifindex = get32(v); break;
	case GPUD_A_MSG: m->msg = (const char *)v; break;
	case GPUD_A_TEXT: m->text = (const char *)v; break;
	case GPUD_A_QUEUE:
		if (m->nq == GPUD_PROTO_MAX_QUEUES)
			return fail(-EBADMSG, why, whylen, "more than %d queues in one message",
				    GPUD_PROTO_MAX_QUEUES);
		m->queues[m->nq++] = get32(v);
		break;
	default:
		break;
	}
	return 0;
}

int gpud_proto_parse(const void *buf, size_t len, size_t max, struct gpud_proto_msg *m,
		     char *why, size_t whylen)
{
	const uint8_t *p = buf;
	size_t off;
	int err;

	memset(m, 0, sizeof(*m));
	if (len > max)
		return fail(-EMSGSIZE, why, whylen, "message of %zu bytes, the limit is %zu",
			    len, max);
	if (len < GPUD_PROTO_HDR_LEN)
		return fail(-EBADMSG, why, whylen, "message of %zu bytes is shorter than the "
			    "%d-byte header", len, GPUD_PROTO_HDR_LEN);
	if (get32(p) != GPUD_PROTO_MAGIC)
		return fail(-EBADMSG, why, whylen, "bad magic 0x%08x: not a gpudd message",
			    get32(p));
	m->version = get16(p + 4);
	m->type = get16(p + 6);
	m->seq = get32(p + 12);
	if (get32(p + 8) != len)
		return fail(-EMSGSIZE, why, whylen, "header says %u bytes, %zu arrived "
			    "(truncated?)", get32(p + 8), len);
	for (off = GPUD_PROTO_HDR_LEN; off < len;) {
		uint16_t t, al;

		if (len - off < 4)
			return fail(-EBADMSG, why, whylen, "truncated attribute header at byte %zu",
				    off);
		t = get16(p + off);
		al = get16(p + off + 2);
		if (al < 4 || al > len - off)
			return fail(-EBADMSG, why, whylen, "attribute at byte %zu claims %u bytes, "
				    "%zu left", off, al, len - off);
		/* Types we do not know are a newer peer's: skip them. */
		if (t && t <= GPUD_A_TYPE_MAX) {
			err = take_attr(m, t, p + off + 4, al - 4u, why, whylen);
			if (err)
				return err;
		}
		off += (al + 3u) & ~3u;
	}
	return 0;
}

uint32_t gpud_proto_pick_version(uint32_t a_min, uint32_t a_max, uint32_t b_min,
				 uint32_t b_max)
{
	uint32_t hi = a_max < b_max ? a_max : b_max;
	uint32_t lo = a_min > b_min ? a_min : b_min;

	return hi >= lo ? hi : 0;
}

static int need(const struct gpud_proto_msg *m, enum gpud_attr_type a, char *why, size_t wl)
{
	if (gpud_proto_has(m, a))
		return 0;
	return fail(-EINVAL, why, wl, "%s request without its %s attribute",
		    gpud_proto_type_name(m->type), attrs[a].name);
}

static int check_alloc(const struct gpud_proto_msg *m, char *why, size_t wl)
{
	int ways = gpud_proto_has(m, GPUD_A_NQUEUES) + gpud_proto_has(m, GPUD_A_RANK) +
		   gpud_proto_has(m, GPUD_A_QUEUE);

	if (ways != 1)
		return fail(-EINVAL, why, wl, "alloc takes exactly one of nqueues, rank or "
			    "queue list (got %d)", ways);
	if (gpud_proto_has(m, GPUD_A_NQUEUES) &&
	    (!m->nqueues || m->nqueues > GPUD_PROTO_MAX_QUEUES))
		return fail(-EINVAL, why, wl, "alloc of %u queues: ask 1..%d", m->nqueues,
			    GPUD_PROTO_MAX_QUEUES);
	return 0;
}

int gpud_proto_check_request(const struct gpud_proto_msg *m, int nfds, char *why,
			     size_t wl)
{
	bool wants_fd = m->type == GPUD_MSG_BIND || m->type == GPUD_MSG_FLOW_ADD;
	int err = 0;

	if (!m->type || m->type > GPUD_MSG_TYPE_MAX)
		return fail(-EPROTO, why, wl, "unknown request type %u", m->type);
	/* Refused before anything else: no fd makes addresses acceptable. */
	if (m->type == GPUD_MSG_FLOW_ADD && gpud_proto_has(m, GPUD_A_ADDR))
		return fail(-EPERM, why, wl, "flow rules are made only for a connection you "
			    "prove is yours: pass its connected socket, not addresses");
	if (nfds > 1)
		return fail(-EBADF, why, wl, "%s request with %d fds; at most one is taken",
			    gpud_proto_type_name(m->type), nfds);
	if (wants_fd && nfds != 1)
		return fail(-EBADF, why, wl, "%s request without its fd (send it with "
			    "SCM_RIGHTS)", gpud_proto_type_name(m->type));
	if (!wants_fd && nfds)
		return fail(-EBADF, why, wl, "%s request carries an fd where none belongs",
			    gpud_proto_type_name(m->type));
	switch (m->type) {
	case GPUD_MSG_HELLO:
		err = need(m, GPUD_A_VMIN, why, wl) ?: need(m, GPUD_A_VMAX, why, wl);
		if (!err && m->vmin > m->vmax)
			err = fail(-EINVAL, why, wl, "hello offers versions %u..%u (empty range)",
				   m->vmin, m->vmax);
		break;
	case GPUD_MSG_ALLOC:
		err = need(m, GPUD_A_IFNAME, why, wl) ?: check_alloc(m, why, wl);
		break;
	case GPUD_MSG_FREE:
	case GPUD_MSG_BIND:
		err = need(m, GPUD_A_IFNAME, why, wl) ?: need(m, GPUD_A_QUEUE, why, wl);
		break;
	case GPUD_MSG_UNBIND:
		err = need(m, GPUD_A_BINDING, why, wl);
		break;
	case GPUD_MSG_FLOW_ADD:
		err = need(m, GPUD_A_IFNAME, why, wl) ?: need(m, GPUD_A_QUEUE, why, wl);
		if (!err && m->nq != 1)
			err = fail(-EINVAL, why, wl, "flow-add steers to one queue, got %u",
				   m->nq);
		break;
	case GPUD_MSG_FLOW_DEL:
		err = need(m, GPUD_A_IFNAME, why, wl) ?: need(m, GPUD_A_RULE, why, wl);
		break;
	case GPUD_MSG_HDS:
		err = need(m, GPUD_A_IFNAME, why, wl);
		break;
	default:
		break;
	}
	return err;
}

/* ---- building ---- */

void gpud_proto_start(struct gpud_proto_buf *b, void *mem, size_t cap, uint16_t version,
		      uint16_t type, uint32_t seq)
{
	b->p = mem;
	b->cap = cap;
	b->len = GPUD_PROTO_HDR_LEN;
	b->overflow = cap < GPUD_PROTO_HDR_LEN;
	if (b->overflow)
		return;
	memset(b->p, 0, GPUD_PROTO_HDR_LEN);
	put32(b->p, GPUD_PROTO_MAGIC);
	put16(b->p + 4, version);
	put16(b->p + 6, type);
	put32(b->p + 12, seq);
}

void gpud_proto_put(struct gpud_proto_buf *b, uint16_t type, const void *val, size_t len)
{
	size_t padded = (4 + len + 3) & ~(size_t)3;

	if (b->overflow || len > UINT16_MAX - 4 || padded > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	put16(b->p + b->len, type);
	put16(b->p + b->len + 2, (uint16_t)(4 + len));
	if (len)
		memcpy(b->p + b->len + 4, val, len);
	memset(b->p + b->len + 4 + len, 0, padded - 4 - len);
	b->len += padded;
}

void gpud_proto_put_u32(struct gpud_proto_buf *b, uint16_t type, uint32_t v)
{
	uint8_t le[4];

	put32(le, v);
	gpud_proto_put(b, type, le, sizeof(le));
}

void gpud_proto_put_u64(struct gpud_proto_buf *b, uint16_t type, uint64_t v)
{
	uint8_t le[8];

	put32(le, (uint32_t)v);
	put32(le + 4, (uint32_t)(v >> 32));
	gpud_proto_put(b, type, le, sizeof(le));
}

void gpud_proto_put_str(struct gpud_proto_buf *b, uint16_t type, const char *s, size_t max)
{
	size_t n = strnlen(s, max - 1);
	size_t padded = (4 + n + 1 + 3) & ~(size_t)3;

	if (b->overflow || n + 1 > UINT16_MAX - 4 || padded > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	put16(b->p + b->len, type);
	put16(b->p + b->len + 2, (uint16_t)(4 + n + 1));
	memcpy(b->p + b->len + 4, s, n);
	memset(b->p + b->len + 4 + n, 0, padded - 4 - n);
	b->len += padded;
}

int gpud_proto_finish(struct gpud_proto_buf *b)
{
	if (b->overflow)
		return -EMSGSIZE;
	put32(b->p + 8, (uint32_t)b->len);
	return (int)b->len;
}
