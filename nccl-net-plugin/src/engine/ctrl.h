/* SPDX-License-Identifier: MIT */
/*
 * Wire formats of the plugin's own protocol: the handshake each socket sends
 * first, and the frames on a comm's control socket. Encoders and parsers here
 * are pure functions (no I/O, no globals), so the parser can be fuzzed.
 * Everything on the wire is little-endian, fixed-size fields.
 */
#ifndef DM_CTRL_H
#define DM_CTRL_H

#include <stddef.h>
#include <stdint.h>

/*
 * 2: the listener answers a control hello with its members' addresses;
 * 3: messages up to DM_ONE_SOCK_MAX go whole on one socket (stripe.c): both
 * ends must cut alike, so an older peer is refused at the handshake.
 */
#define DM_PROTO_VERSION 3

/* ---- handshake: first bytes on every socket of a connection ---- */
#define DM_HELLO_MAGIC 0x4f4c4548u	/* "HELO" */
#define DM_ACK_MAGIC 0x4b434144u	/* "DACK" */
#define DM_HELLO_LEN 32
#define DM_ACK_LEN 12
#define DM_ADDRS_MAGIC 0x52444144u	/* "DADR" */
#define DM_ADDRS_MAX 8			/* members of a fused device */
#define DM_ADDRS_LEN (8 + DM_ADDRS_MAX * 20)

enum dm_sock_kind { DM_SOCK_CTRL = 0, DM_SOCK_DATA = 1 };

struct dm_hello {
	uint16_t version;
	uint8_t kind;		/* enum dm_sock_kind */
	uint8_t index;		/* data socket index */
	uint16_t nsocks;
	uint32_t max_chunk;
	uint64_t secret;
	uint64_t conn_id;	/* groups one connect()'s sockets at the listener */
};

enum dm_ack_status {
	DM_ACK_OK = 0,
	DM_ACK_BAD_SECRET = 1,
	DM_ACK_BAD_VERSION = 2,
	DM_ACK_BAD_PARAMS = 3,
};

struct dm_ack {
	uint16_t version;
	uint16_t status;	/* enum dm_ack_status */
	uint32_t mode;		/* receiver's data path, for the sender's log */
};

/*
 * The listener's reply to a control hello: where each member NIC of its
 * device listens, so the connector can open data socket i from its member
 * i % (its count) to the listener's member i % count. The handle carries
 * only the control address: 8 IPv6 members would not fit its 128 bytes.
 */
struct dm_addrs {
	uint8_t family;		/* 4 or 6 */
	uint8_t count;		/* 1..DM_ADDRS_MAX */
	struct {
		uint8_t addr[16];	/* IPv4: first 4 bytes, network order */
		uint16_t port;		/* host order */
	} m[DM_ADDRS_MAX];
};

void dm_hello_encode(const struct dm_hello *h, uint8_t out[DM_HELLO_LEN]);
/* 0, or -EPROTO (bad magic) */
int dm_hello_decode(const uint8_t in[DM_HELLO_LEN], struct dm_hello *h);
void dm_ack_encode(const struct dm_ack *a, uint8_t out[DM_ACK_LEN]);
int dm_ack_decode(const uint8_t in[DM_ACK_LEN], struct dm_ack *a);
const char *dm_ack_status_str(unsigned status);
void dm_addrs_encode(const struct dm_addrs *a, uint8_t out[DM_ADDRS_LEN]);
/* 0, or -EPROTO: bad magic or version, count or family out of range, nonzero padding */
int dm_addrs_decode(const uint8_t in[DM_ADDRS_LEN], struct dm_addrs *a);

/* ---- control frames ---- */
#define DM_FRAME_MAGIC 0xd7e5u
#define DM_FRAME_HDR_LEN 8
#define DM_FRAME_MAX_PAYLOAD 256
#define DM_FRAME_MAX_LEN (DM_FRAME_HDR_LEN + DM_FRAME_MAX_PAYLOAD)
#define DM_MSG_PAYLOAD_LEN 24
#define DM_ERR_TEXT_MAX (DM_FRAME_MAX_PAYLOAD - 8)
/* Largest message we accept the peer announcing (NCCL's own limit, 1 TiB). */
#define DM_MSG_MAX_SIZE (1ULL << 40)

enum dm_frame_type {
	DM_FRAME_MSG = 1,	/* sender→receiver: a message follows on the data sockets */
	DM_FRAME_ERR = 2,	/* either way: the comm failed, text says why */
	DM_FRAME_BYE = 3,	/* either way: orderly close */
};

struct dm_frame {
	uint8_t type;
	union {
		struct {
			uint64_t seq;	/* 0, 1, 2, ... per comm */
			uint64_t size;
			int32_t tag;
		} msg;
		struct {
			uint32_t code;
			char text[DM_ERR_TEXT_MAX + 1];	/* NUL-terminated, printable */
		} err;
	};
};

/*
 * Parses one frame from the start of @buf. Returns the bytes it used (> 0),
 * 0 when @buf holds only the beginning of a valid frame (need more bytes), or
 * -EBADMSG for anything malformed: bad magic, unknown type, a length that does
 * not fit the type, nonzero reserved bits, an oversized message, text that is
 * not printable. Pure: reads only buf[0..len), writes only *out.
 */
int dm_frame_parse(const uint8_t *buf, size_t len, struct dm_frame *out);
/* Encoders return the frame length written into @out (>= DM_FRAME_MAX_LEN). */
size_t dm_frame_encode_msg(uint8_t *out, uint64_t seq, uint64_t size, int32_t tag);
size_t dm_frame_encode_err(uint8_t *out, uint32_t code, const char *text);
size_t dm_frame_encode_bye(uint8_t *out);

#endif /* DM_CTRL_H */
