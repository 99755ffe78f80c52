// SPDX-License-Identifier: MIT
/*
 * gpudd wire format: round trips, each malformation a distinct error with a
 * reason, unknown attributes skipped, version negotiation, and the request
 * checks (attributes and fds each request needs or must not have).
 */
#include "gpud_test.h"
#include "proto.h"

#include <errno.h>

static uint8_t buf[GPUD_PROTO_REPLY_MAX];

static int build_hello(uint32_t vmin, uint32_t vmax, uint64_t feat)
{
	struct gpud_proto_buf b;

	gpud_proto_start(&b, buf, GPUD_PROTO_REQ_MAX, 1, GPUD_MSG_HELLO, 0);
	gpud_proto_put_u32(&b, GPUD_A_VMIN, vmin);
	gpud_proto_put_u32(&b, GPUD_A_VMAX, vmax);
	gpud_proto_put_u64(&b, GPUD_A_FEATURES, feat);
	return gpud_proto_finish(&b);
}

static void roundtrip(void)
{
	struct gpud_proto_buf b;
	struct gpud_proto_msg m;
	char why[256];
	int len;

	gpud_proto_start(&b, buf, GPUD_PROTO_REQ_MAX, 1, GPUD_MSG_BIND, 77);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, "eth1", GPUD_PROTO_IFNAME_MAX);
	gpud_proto_put_u32(&b, GPUD_A_QUEUE, 3);
	gpud_proto_put_u32(&b, GPUD_A_QUEUE, 5);
	gpud_proto_put_u32(&b, GPUD_A_IFINDEX, 9);
	len = gpud_proto_finish(&b);
	T_ASSERT(len > GPUD_PROTO_HDR_LEN);
	T_ASSERT_EQ(0, len % 4);
	T_ASSERT_EQ(0, gpud_proto_parse(buf, (size_t)len, GPUD_PROTO_REQ_MAX, &m, why,
					sizeof(why)));
	T_ASSERT_EQ(GPUD_MSG_BIND, m.type);
	T_ASSERT_EQ(77, m.seq);
	T_ASSERT_EQ(1, m.version);
	T_ASSERT_STREQ("eth1", m.ifname);
	T_ASSERT_EQ(2, m.nq);
	T_ASSERT_EQ(3, m.queues[0]);
	T_ASSERT_EQ(5, m.queues[1]);
	T_ASSERT_EQ(9, m.ifindex);
	T_ASSERT(gpud_proto_has(&m, GPUD_A_IFINDEX));
	T_ASSERT(!gpud_proto_has(&m, GPUD_A_RULE));
	/* BIND needs its fd; with one it is a valid request. */
	T_ASSERT_EQ(-EBADF, gpud_proto_check_request(&m, 0, why, sizeof(why)));
	T_ASSERT(strstr(why, "without its fd"));
	T_ASSERT_EQ(0, gpud_proto_check_request(&m, 1, why, sizeof(why)));
	T_ASSERT_EQ(-EBADF, gpud_proto_check_request(&m, 2, why, sizeof(why)));
}

static void expect(int want, const void *p, size_t len, const char *needle)
{
	struct gpud_proto_msg m;
	char why[256] = "";
	int r = gpud_proto_parse(p, len, GPUD_PROTO_REQ_MAX, &m, why, sizeof(why));

	if (r != want || (needle && !strstr(why, needle)))
		T_FAIL("parse of %zu bytes: expected %d with \"%s\", got %d \"%s\"", len, want,
		       needle ? needle : "", r, why);
}

static void malformed(void)
{
	int len = build_hello(1, 1, 0);
	uint8_t copy[GPUD_PROTO_REQ_MAX + 8];

	T_ASSERT(len > 0);
	memcpy(copy, buf, (size_t)len);
	expect(-EBADMSG, copy, 10, "shorter than");
	/* Truncated: the header says more than arrived. */
	expect(-EMSGSIZE, copy, (size_t)len - 4, "truncated");
	expect(-EMSGSIZE, copy, GPUD_PROTO_REQ_MAX + 1, "limit");
	copy[0] ^= 1;
	expect(-EBADMSG, copy, (size_t)len, "magic");
	copy[0] ^= 1;
	/* An attribute claiming more than is left. */
	copy[GPUD_PROTO_HDR_LEN + 2] = 200;
	expect(-EBADMSG, copy, (size_t)len, "claims");
	copy[GPUD_PROTO_HDR_LEN + 2] = 8;
	/* A u32 of the wrong size: make VMIN 6 bytes long (still inside). */
	copy[GPUD_PROTO_HDR_LEN + 2] = 6;
	expect(-EBADMSG, copy, (size_t)len, "not 4");
	copy[GPUD_PROTO_HDR_LEN + 2] = 8;
	/* The same attribute twice: VMAX's type becomes VMIN. */
	copy[GPUD_PROTO_HDR_LEN + 8] = GPUD_A_VMIN;
	expect(-EBADMSG, copy, (size_t)len, "twice");
	copy[GPUD_PROTO_HDR_LEN + 8] = GPUD_A_VMAX;
	expect(0, copy, (size_t)len, NULL);
}

static void strings(void)
{
	struct gpud_proto_buf b;
	struct gpud_proto_msg m;
	char why[256];
	uint8_t raw[8] = { 'e', 't', 'h', '0', 'x', 'y', 'z', 'w' };
	int len;

	/* No NUL at the end. */
	gpud_proto_start(&b, buf, GPUD_PROTO_REQ_MAX, 1, GPUD_MSG_HDS, 1);
	gpud_proto_put(&b, GPUD_A_IFNAME, raw, sizeof(raw));
	len = gpud_proto_finish(&b);
	T_ASSERT_EQ(-EBADMSG, gpud_proto_parse(buf, (size_t)len, GPUD_PROTO_REQ_MAX, &m, why,
					       sizeof(why)));
	T_ASSERT(strstr(why, "ifname"));
	/* A NUL inside. */
	raw[7] = 0;
	raw[2] = 0;
	gpud_proto_start(&b, buf, GPUD_PROTO_REQ_MAX, 1, GPUD_MSG_HDS, 1);
	gpud_proto_put(&b, GPUD_A_IFNAME, raw, sizeof(raw));
	len = gpud_proto_finish(&b);
	T_ASSERT_EQ(-EBADMSG, gpud_proto_parse(buf, (size_t)len, GPUD_PROTO_REQ_MAX, &m, why,
					       sizeof(why)));
	/* Too long for an interface name: put_str cuts, a raw one is refused. */
	gpud_proto_start(&b, buf, GPUD_PROTO_REQ_MAX, 1, GPUD_MSG_HDS, 1);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, "a-very-long-interface-name", GPUD_PROTO_IFNAME_MAX);
	len = gpud_proto_finish(&b);
	T_ASSERT_EQ(0, gpud_proto_parse(buf, (size_t)len, GPUD_PROTO_REQ_MAX, &m, why,
					sizeof(why)));
	T_ASSERT_EQ(GPUD_PROTO_IFNAME_MAX - 1, strlen(m.ifname));
}

static void unknown_skipped(void)
{
	struct gpud_proto_buf b;
	struct gpud_proto_msg m;
	uint8_t blob[13] = { 1, 2, 3 };
	char why[256];
	int len;

	/* A newer client's attribute 200 and feature bit 40 are ignored. */
	gpud_proto_start(&b, buf, GPUD_PROTO_REQ_MAX, 1, GPUD_MSG_HELLO, 0);
	gpud_proto_put(&b, 200, blob, sizeof(blob));
	gpud_proto_put_u32(&b, GPUD_A_VMIN, 1);
	gpud_proto_put_u32(&b, GPUD_A_VMAX, 7);
	gpud_proto_put_u64(&b, GPUD_A_FEATURES, GPUD_F_ALL | (1ull << 40));
	len = gpud_proto_finish(&b);
	T_ASSERT_EQ(0, gpud_proto_parse(buf, (size_t)len, GPUD_PROTO_REQ_MAX, &m, why,
					sizeof(why)));
	T_ASSERT_EQ(1, m.vmin);
	T_ASSERT_EQ(7, m.vmax);
	T_ASSERT_EQ(0, gpud_proto_check_request(&m, 0, why, sizeof(why)));
	T_ASSERT_EQ(1, gpud_proto_pick_version(m.vmin, m.vmax, GPUD_PROTO_VERSION_MIN,
					       GPUD_PROTO_VERSION_MAX));
}

static void versions(void)
{
	T_ASSERT_EQ(3, gpud_proto_pick_version(1, 3, 2, 5));
	T_ASSERT_EQ(2, gpud_proto_pick_version(2, 9, 1, 2));
	T_ASSERT_EQ(0, gpud_proto_pick_version(3, 4, 1, 2));
	T_ASSERT_EQ(0, gpud_proto_pick_version(1, 1, 2, 2));
}

static void check(uint16_t type, void (*fill)(struct gpud_proto_buf *), int nfds, int want,
		  const char *needle)
{
	struct gpud_proto_buf b;
	struct gpud_proto_msg m;
	char why[256] = "";
	int len, r;

	gpud_proto_start(&b, buf, GPUD_PROTO_REQ_MAX, 1, type, 5);
	if (fill)
		fill(&b);
	len = gpud_proto_finish(&b);
	T_ASSERT_EQ(0, gpud_proto_parse(buf, (size_t)len, GPUD_PROTO_REQ_MAX, &m, why,
					sizeof(why)));
	r = gpud_proto_check_request(&m, nfds, why, sizeof(why));
	if (r != want || (needle && !strstr(why, needle)))
		T_FAIL("%s with %d fd(s): expected %d \"%s\", got %d \"%s\"",
		       gpud_proto_type_name(type), nfds, want, needle ? needle : "", r, why);
}

static void f_if(struct gpud_proto_buf *b)
{
	gpud_proto_put_str(b, GPUD_A_IFNAME, "eth0", 16);
}

static void f_if_q(struct gpud_proto_buf *b)
{
	f_if(b);
	gpud_proto_put_u32(b, GPUD_A_QUEUE, 2);
}

static void f_if_n(struct gpud_proto_buf *b)
{
	f_if(b);
	gpud_proto_put_u32(b, GPUD_A_NQUEUES, 2);
}

static void f_if_n_rank(struct gpud_proto_buf *b)
{
	f_if_n(b);
	gpud_proto_put_u32(b, GPUD_A_RANK, 1);
}

static void f_if_n0(struct gpud_proto_buf *b)
{
	f_if(b);
	gpud_proto_put_u32(b, GPUD_A_NQUEUES, 0);
}

static void f_flow_addr(struct gpud_proto_buf *b)
{
	uint8_t tuple[12] = { 198, 18, 0, 1, 198, 18, 0, 2, 0x13, 0x88, 0x9c, 0x40 };

	f_if_q(b);
	gpud_proto_put(b, GPUD_A_ADDR, tuple, sizeof(tuple));
}

static void requests(void)
{
	check(GPUD_MSG_ALLOC, f_if_n, 0, 0, NULL);
	check(GPUD_MSG_ALLOC, f_if, 0, -EINVAL, "exactly one");
	check(GPUD_MSG_ALLOC, f_if_n_rank, 0, -EINVAL, "exactly one");
	check(GPUD_MSG_ALLOC, f_if_n0, 0, -EINVAL, "1..");
	check(GPUD_MSG_ALLOC, f_if_n, 1, -EBADF, "where none belongs");
	check(GPUD_MSG_ALLOC, NULL, 0, -EINVAL, "ifname");
	check(GPUD_MSG_FREE, f_if, 0, -EINVAL, "queue");
	check(GPUD_MSG_FLOW_ADD, f_if_q, 1, 0, NULL);
	check(GPUD_MSG_FLOW_ADD, f_if_q, 0, -EBADF, "without its fd");
	/* Addresses alone are never enough, fd or not. */
	check(GPUD_MSG_FLOW_ADD, f_flow_addr, 1, -EPERM, "connected socket");
	check(GPUD_MSG_FLOW_ADD, f_flow_addr, 0, -EPERM, "connected socket");
	check(GPUD_MSG_FLOW_DEL, f_if, 0, -EINVAL, "rule");
	check(GPUD_MSG_UNBIND, NULL, 0, -EINVAL, "binding");
	check(GPUD_MSG_STATUS, NULL, 0, 0, NULL);
	check(GPUD_MSG_STATUS, NULL, 1, -EBADF, "where none belongs");
	check(GPUD_MSG_REPLY, NULL, 0, -EPROTO, "unknown request type");
	check(77, NULL, 0, -EPROTO, "unknown request type");
}

static void builder_bounds(void)
{
	struct gpud_proto_buf b;
	uint8_t small[24];

	gpud_proto_start(&b, small, sizeof(small), 1, GPUD_MSG_STATUS, 1);
	gpud_proto_put_u32(&b, GPUD_A_RULE, 1);
	T_ASSERT_EQ(24, gpud_proto_finish(&b));
	gpud_proto_put_u32(&b, GPUD_A_RULE, 2);
	T_ASSERT_EQ(-EMSGSIZE, gpud_proto_finish(&b));
	/* 65 queues do not fit the parser's array. */
	{
		struct gpud_proto_msg m;
		char why[128];
		int len;

		gpud_proto_start(&b, buf, sizeof(buf), 1, GPUD_MSG_FREE, 1);
		for (int i = 0; i <= GPUD_PROTO_MAX_QUEUES; i++)
			gpud_proto_put_u32(&b, GPUD_A_QUEUE, (uint32_t)i);
		len = gpud_proto_finish(&b);
		T_ASSERT_EQ(-EBADMSG, gpud_proto_parse(buf, (size_t)len, sizeof(buf), &m, why,
						       sizeof(why)));
		T_ASSERT(strstr(why, "more than"));
	}
}

int main(void)
{
	roundtrip();
	malformed();
	strings();
	unknown_skipped();
	versions();
	requests();
	builder_bounds();
	printf("agent_proto_unit: ok\n");
	return T_EXIT_PASS;
}
