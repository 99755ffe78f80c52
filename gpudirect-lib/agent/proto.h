/* SPDX-License-Identifier: MIT */
/*
 * The gpudd wire protocol: one message per SOCK_SEQPACKET datagram on a unix
 * socket, so a message arrives whole or not at all and no framing state can
 * hang either side.
 *
 *   header  16 bytes, little endian: magic "GPUD", u16 version, u16 type,
 *           u32 length (header included), u32 seq (the reply echoes it)
 *   attrs   TLVs: u16 type, u16 length (its 4-byte header included), value,
 *           padded to 4 bytes
 *
 * Compatibility rules, so an older agent and a newer client keep working for
 * what both know:
 *   - the HELLO message's layout never changes; the client offers a version
 *     range and feature bits, the agent answers the highest common version
 *     and the intersection of the features; no common version is an error
 *     with both ranges in its text, at connect;
 *   - an attribute of a type the parser does not know is skipped; a known
 *     one with the wrong length, or repeated where it may not be, is an error;
 *   - feature bits neither side knows are ignored.
 *
 * Pure functions over byte buffers: the parser is unit-tested and fuzzed.
 * Shared by the agent (gpudd) and the library's client (agent/client.c).
 */
#ifndef GPUD_AGENT_PROTO_H
#define GPUD_AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPUD_PROTO_MAGIC 0x44555047u	/* "GPUD" read as little endian */
#define GPUD_PROTO_VERSION_MIN 1
#define GPUD_PROTO_VERSION_MAX 1
#define GPUD_PROTO_HDR_LEN 16
/* Every request fits in this; the agent refuses longer ones. */
#define GPUD_PROTO_REQ_MAX 4096
/* Replies may carry a status document. */
#define GPUD_PROTO_REPLY_MAX 65536
#define GPUD_PROTO_MAX_QUEUES 64
#define GPUD_PROTO_MSG_MAX 1024		/* error text */
#define GPUD_PROTO_IFNAME_MAX 16	/* IFNAMSIZ, NUL included */

/* Default socket; GPUD_AGENT in the environment overrides it. */
#define GPUD_AGENT_SOCK_DEFAULT "/run/gpudirect/gpudd.sock"

enum gpud_msg_type {
	GPUD_MSG_HELLO = 1,	/* vmin, vmax, features */
	GPUD_MSG_ALLOC = 2,	/* ifname, nqueues | rank | queue... -> queue... */
	GPUD_MSG_FREE = 3,	/* ifname, queue... */
	GPUD_MSG_BIND = 4,	/* ifname, queue..., dma-buf fd -> binding */
	GPUD_MSG_UNBIND = 5,	/* binding */
	GPUD_MSG_FLOW_ADD = 6,	/* ifname, queue, connected TCP socket fd -> rule */
	GPUD_MSG_FLOW_DEL = 7,	/* ifname, rule */
	GPUD_MSG_STATUS = 8,	/* -> text (JSON) */
	GPUD_MSG_HDS = 9,	/* ifname: header split on (kept until the agent stops) */
	GPUD_MSG_TYPE_MAX = 9,
	GPUD_MSG_REPLY = 0x100,	/* errno (0 = ok), msg, and the request's results */
};

enum gpud_attr_type {
	GPUD_A_VMIN = 1,	/* u32 */
	GPUD_A_VMAX = 2,	/* u32 */
	GPUD_A_FEATURES = 3,	/* u64 */
	GPUD_A_IFNAME = 4,	/* string, NUL-terminated, < IFNAMSIZ */
	GPUD_A_NQUEUES = 5,	/* u32 */
	GPUD_A_RANK = 6,	/* u32: "the queue for local rank k" */
	GPUD_A_QUEUE = 7,	/* u32, repeatable up to GPUD_PROTO_MAX_QUEUES */
	GPUD_A_BINDING = 8,	/* u32 dma-buf id */
	GPUD_A_RULE = 9,	/* u32 rule location */
	GPUD_A_ERRNO = 10,	/* s32, 0 or -errno */
	GPUD_A_MSG = 11,	/* string, error text (kernel extack included verbatim) */
	GPUD_A_TEXT = 12,	/* string, status JSON */
	GPUD_A_ADDR = 13,	/* bytes: addresses/ports given by value (always refused) */
	GPUD_A_IFINDEX = 14,	/* u32 */
	GPUD_A_TYPE_MAX = 14,
};

/* Feature bits; unknown ones are ignored by both sides. */
#define GPUD_F_QUEUES	(1ull << 0)	/* ALLOC / FREE, rank queues */
#define GPUD_F_BIND	(1ull << 1)	/* BIND / UNBIND with SCM_RIGHTS */
#define GPUD_F_FLOW	(1ull << 2)	/* FLOW_ADD by socket / FLOW_DEL */
#define GPUD_F_STATUS	(1ull << 3)
#define GPUD_F_HDS	(1ull << 4)
#define GPUD_F_ALL (GPUD_F_QUEUES | GPUD_F_BIND | GPUD_F_FLOW | GPUD_F_STATUS | GPUD_F_HDS)

/* A parsed message. Strings point into the parsed buffer. */
struct gpud_proto_msg {
	uint16_t version;
	uint16_t type;
	uint32_t seq;
	uint32_t present;	/* bit n: attribute n was there */
	uint32_t vmin, vmax;
	uint64_t features;
	char ifname[GPUD_PROTO_IFNAME_MAX];
	uint32_t nqueues, rank, binding, rule, ifindex;
	int32_t err;
	uint32_t queues[GPUD_PROTO_MAX_QUEUES];
	uint32_t nq;
	const char *msg;
	const char *text;
};

static inline bool gpud_proto_has(const struct gpud_proto_msg *m, enum gpud_attr_type a)
{
	return (m->present >> a) & 1;
}

/*
 * Parses @len bytes at @buf (at most @max accepted). 0, or -errno with the
 * reason in @why:
 *   -EMSGSIZE  longer than @max, or the header's length disagrees with @len
 *   -EBADMSG   truncated header or attribute, bad magic, wrong attribute size,
 *              a repeated attribute, a string without its NUL
 *   -EPROTO    a message type this version does not know (requests only)
 * Never reads outside [buf, buf + len).
 */
int gpud_proto_parse(const void *buf, size_t len, size_t max, struct gpud_proto_msg *m,
		     char *why, size_t whylen);

/*
 * What a request of m->type needs beyond parsing: its attributes, and
 * whether it must (BIND, FLOW_ADD) or must not (all others) come with one
 * fd. 0, or -EINVAL / -EBADF with the reason in @why.
 */
int gpud_proto_check_request(const struct gpud_proto_msg *m, int nfds, char *why,
			     size_t whylen);

/* Highest version in both [a_min, a_max] and [b_min, b_max], or 0. */
uint32_t gpud_proto_pick_version(uint32_t a_min, uint32_t a_max, uint32_t b_min,
				 uint32_t b_max);

const char *gpud_proto_type_name(uint16_t type);

/*
 * The type in the header at @buf (@len bytes of a message's start, checked
 * for the magic), or 0 when it is too short or not ours: for a scheduler
 * peeking at what is queued, not a parse.
 */
uint16_t gpud_proto_peek_type(const void *buf, size_t len);

/* ---- building ---- */

struct gpud_proto_buf {
	uint8_t *p;
	size_t cap, len;
	bool overflow;	/* an attribute did not fit; finish() fails */
};

void gpud_proto_start(struct gpud_proto_buf *b, void *mem, size_t cap, uint16_t version,
		      uint16_t type, uint32_t seq);
void gpud_proto_put(struct gpud_proto_buf *b, uint16_t type, const void *val, size_t len);
void gpud_proto_put_u32(struct gpud_proto_buf *b, uint16_t type, uint32_t v);
void gpud_proto_put_u64(struct gpud_proto_buf *b, uint16_t type, uint64_t v);
/* Strings longer than the attribute allows are cut (at @max - 1 bytes). */
void gpud_proto_put_str(struct gpud_proto_buf *b, uint16_t type, const char *s, size_t max);
/* Writes the length; the message size, or -EMSGSIZE when something did not fit. */
int gpud_proto_finish(struct gpud_proto_buf *b);

#endif /* GPUD_AGENT_PROTO_H */
