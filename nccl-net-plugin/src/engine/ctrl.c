// SPDX-License-Identifier: MIT
/*
 * Control-socket frames and handshake records: encode and parse. Pure code,
 * fuzzed by tests/fuzz_ctrl.c; every check that keeps a malicious or broken
 * peer from steering us lives here, so callers may trust a parsed frame's
 * fields' ranges.
 */
#include "engine/ctrl.h"

#include <errno.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v);
	put32(p + 4, v >> 32);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

void dm_hello_encode(const struct dm_hello *h, uint8_t out[DM_HELLO_LEN])
{
	memset(out, 0, DM_HELLO_LEN);
	put32(out, DM_HELLO_MAGIC);
	put16(out + 4, h->version);
	out[6] = h->kind;
	out[7] = h->index;
	put16(out + 8, h->nsocks);
	put32(out + 12, h->max_chunk);
	put64(out + 16, h->secret);
	put64(out + 24, h->conn_id);
}

int dm_hello_decode(const uint8_t in[DM_HELLO_LEN], struct dm_hello *h)
{
	if (get32(in) != DM_HELLO_MAGIC)
		return -EPROTO;
	h->version = get16(in + 4);
	h->kind = in[6];
	h->index = in[7];
	h->nsocks = get16(in + 8);
	h->max_chunk = get32(in + 12);
	h->secret = get64(in + 16);
	h->conn_id = get64(in + 24);
	return 0;
}

void dm_ack_encode(const struct dm_ack *a, uint8_t out[DM_ACK_LEN])
{
	put32(out, DM_ACK_MAGIC);
	put16(out + 4, a->version);
	put16(out + 6, a->status);
	put32(out + 8, a->mode);
}

int dm_ack_decode(const uint8_t in[DM_ACK_LEN], struct dm_ack *a)
{
	if (get32(in) != DM_ACK_MAGIC)
		return -EPROTO;
	a->version = get16(in + 4);
	a->status = get16(in + 6);
	a->mode = get32(in + 8);
	return 0;
}

/* magic u32, version u16, family u8, count u8; per member: addr[16], port u16, 0 u16 */
void dm_addrs_encode(const struct dm_addrs *a, uint8_t out[DM_ADDRS_LEN])
{
	memset(out, 0, DM_ADDRS_LEN);
	put32(out, DM_ADDRS_MAGIC);
	put16(out + 4, DM_PROTO_VERSION);
	out[6] = a->family;
	out[7] = a->count;
	for (int i = 0; i < a->count && i < DM_ADDRS_MAX; i++) {
		memcpy(out + 8 + i * 20, a->m[i].addr, 16);
		put16(out + 8 + i * 20 + 16, a->m[i].port);
	}
}

int dm_addrs_decode(const uint8_t in[DM_ADDRS_LEN], struct dm_addrs *a)
{
	if (get32(in) != DM_ADDRS_MAGIC || get16(in + 4) != DM_PROTO_VERSION ||
	    (in[6] != 4 && in[6] != 6) || in[7] < 1 || in[7] > DM_ADDRS_MAX)
		return -EPROTO;
	memset(a, 0, sizeof(*a));
	a->family = in[6];
	a->count = in[7];
	for (int i = 0; i < DM_ADDRS_MAX; i++) {
		static const uint8_t zero[20];
		const uint8_t *m = in + 8 + i * 20;

		/* padding, and every unused member, is zero */
		if (get16(m + 18) || (i >= a->count && memcmp(m, zero, sizeof(zero))))
			return -EPROTO;
		memcpy(a->m[i].addr, m, 16);
		a->m[i].port = get16(m + 16);
	}
	return 0;
}

const char *dm_ack_status_str(unsigned status)
{
	switch (status) {
	case DM_ACK_OK:
		return "ok";
	case DM_ACK_BAD_SECRET:
		return "wrong secret (the handle does not belong to this listener)";
	case DM_ACK_BAD_VERSION:
		return "protocol version mismatch (plugin versions differ between ranks)";
	case DM_ACK_BAD_PARAMS:
		return "socket count or chunk size differ from the listener's";
	}
	return "unknown status";
}

/*
 * Frame: magic u16, type u8, flags u8 (must be 0), payload length u32, payload.
 * MSG payload: seq u64, size u64, tag i32, reserved u32 (0).
 * ERR payload: code u32, text length u32, text (printable ASCII, no NUL).
 * BYE payload: empty.
 */
int dm_frame_parse(const uint8_t *buf, size_t len, struct dm_frame *out)
{
	uint32_t plen, tlen;
	const uint8_t *p;
	uint8_t type;

	/* Validate what we already have so garbage fails fast, not at EOF. */
	if (len >= 2 && get16(buf) != DM_FRAME_MAGIC)
		return -EBADMSG;
	if (len == 1 && buf[0] != (DM_FRAME_MAGIC & 0xff))
		return -EBADMSG;
	if (len < DM_FRAME_HDR_LEN)
		return 0;
	type = buf[2];
	if (buf[3] != 0)
		return -EBADMSG;
	plen = get32(buf + 4);
	switch (type) {
	case DM_FRAME_MSG:
		if (plen != DM_MSG_PAYLOAD_LEN)
			return -EBADMSG;
		break;
	case DM_FRAME_ERR:
		if (plen < 8 || plen > DM_FRAME_MAX_PAYLOAD)
			return -EBADMSG;
		break;
	case DM_FRAME_BYE:
		if (plen != 0)
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	if (len < DM_FRAME_HDR_LEN + (size_t)plen)
		return 0;
	p = buf + DM_FRAME_HDR_LEN;
	memset(out, 0, sizeof(*out));
	out->type = type;
	switch (type) {
	case DM_FRAME_MSG:
		out->msg.seq = get64(p);
		out->msg.size = get64(p + 8);
		out->msg.tag = (int32_t)get32(p + 16);
		if (get32(p + 20) != 0 || out->msg.size > DM_MSG_MAX_SIZE)
			return -EBADMSG;
		break;
	case DM_FRAME_ERR:
		out->err.code = get32(p);
		tlen = get32(p + 4);
		if (tlen != plen - 8)
			return -EBADMSG;
		for (uint32_t i = 0; i < tlen; i++) {
			if (p[8 + i] < 0x20 || p[8 + i] > 0x7e)
				return -EBADMSG;
			out->err.text[i] = (char)p[8 + i];
		}
		out->err.text[tlen] = '\0';
		break;
	}
	return (int)(DM_FRAME_HDR_LEN + plen);
}

static size_t frame_hdr(uint8_t *out, uint8_t type, uint32_t plen)
{
	put16(out, DM_FRAME_MAGIC);
	out[2] = type;
	out[3] = 0;
	put32(out + 4, plen);
	return DM_FRAME_HDR_LEN;
}

size_t dm_frame_encode_msg(uint8_t *out, uint64_t seq, uint64_t size, int32_t tag)
{
	uint8_t *p = out + frame_hdr(out, DM_FRAME_MSG, DM_MSG_PAYLOAD_LEN);

	put64(p, seq);
	put64(p + 8, size);
	put32(p + 16, (uint32_t)tag);
	put32(p + 20, 0);
	return DM_FRAME_HDR_LEN + DM_MSG_PAYLOAD_LEN;
}

size_t dm_frame_encode_err(uint8_t *out, uint32_t code, const char *text)
{
	size_t tlen = 0;
	uint8_t *p;

	/* Keep only printable ASCII so the peer's parser accepts it. */
	p = out + frame_hdr(out, DM_FRAME_ERR, 0);
	for (const char *s = text; *s && tlen < DM_ERR_TEXT_MAX; s++)
		p[8 + tlen++] = (*s >= 0x20 && *s <= 0x7e) ? (uint8_t)*s : '?';
	put32(p, code);
	put32(p + 4, (uint32_t)tlen);
	put32(out + 4, (uint32_t)(8 + tlen));
	return DM_FRAME_HDR_LEN + 8 + tlen;
}

size_t dm_frame_encode_bye(uint8_t *out)
{
	return frame_hdr(out, DM_FRAME_BYE, 0);
}
