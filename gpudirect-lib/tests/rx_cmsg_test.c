// SPDX-License-Identifier: MIT
/*
 * Unit: parsing recvmsg(MSG_SOCK_DEVMEM) control buffers built with the
 * CMSG_* macros, the way the kernel lays them out (CMSG_SPACE apart).
 */
#include "gpud_test.h"
#include "rx/rx_internal.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define BINDING 7

struct cbuf {
	union {
		struct cmsghdr align;
		unsigned char b[8192];
	} u;
	size_t len;
};

static void add_raw(struct cbuf *c, int level, int type, const void *data, size_t n)
{
	struct cmsghdr *h = (struct cmsghdr *)(c->u.b + c->len);

	T_ASSERT(c->len + CMSG_SPACE(n) <= sizeof(c->u.b));
	h->cmsg_len = CMSG_LEN(n);
	h->cmsg_level = level;
	h->cmsg_type = type;
	memcpy(CMSG_DATA(h), data, n);
	c->len += CMSG_SPACE(n);
}

static void add_dmabuf(struct cbuf *c, uint64_t off, uint32_t size, uint32_t token, uint32_t id)
{
	struct gpud_dmabuf_cmsg d = { .frag_offset = off, .frag_size = size,
				      .frag_token = token, .dmabuf_id = id };

	add_raw(c, SOL_SOCKET, SCM_DEVMEM_DMABUF, &d, sizeof(d));
}

static void add_linear(struct cbuf *c, uint32_t size)
{
	struct gpud_dmabuf_cmsg d = { .frag_size = size };

	add_raw(c, SOL_SOCKET, SCM_DEVMEM_LINEAR, &d, sizeof(d));
}

static struct gpud_cmsg_frag fr[2048];
static struct gpud_cmsg_result res;

static int parse(struct cbuf *c, int flags, size_t max)
{
	return gpud_cmsg_parse(c->u.b, c->len, flags, BINDING, fr, max, &res);
}

static void test_empty(void)
{
	struct cbuf c = { .len = 0 };

	T_ASSERT_EQ(0, parse(&c, 0, 16));
	T_ASSERT_EQ(0, res.nfrags);
	T_ASSERT_EQ(0, gpud_cmsg_parse(NULL, 0, 0, BINDING, fr, 16, &res));
}

static void test_single(void)
{
	struct cbuf c = { .len = 0 };

	add_dmabuf(&c, 0x123000, 4096, 42, BINDING);
	T_ASSERT_EQ(0, parse(&c, 0, 16));
	T_ASSERT_EQ(1, res.nfrags);
	T_ASSERT_EQ(GPUD_CMSG_DMABUF, fr[0].kind);
	T_ASSERT_EQ(0x123000, fr[0].offset);
	T_ASSERT_EQ(4096, fr[0].len);
	T_ASSERT_EQ(42, fr[0].token);
	T_ASSERT_EQ(4096, res.dmabuf_bytes);
	T_ASSERT_EQ(0, res.linear_bytes);
}

static void test_many(void)
{
	struct cbuf c = { .len = 0 };

	for (uint32_t i = 0; i < 150; i++)
		add_dmabuf(&c, (uint64_t)i << 12 | 64, 4032, i + 1, BINDING);
	T_ASSERT_EQ(0, parse(&c, 0, 2048));
	T_ASSERT_EQ(150, res.nfrags);
	for (uint32_t i = 0; i < 150; i++) {
		T_ASSERT_EQ((uint64_t)i << 12 | 64, fr[i].offset);
		T_ASSERT_EQ(i + 1, fr[i].token);
	}
	T_ASSERT_EQ(150ull * 4032, res.dmabuf_bytes);
	/* Too small an output array: the parsed part is reported, -ENOBUFS. */
	T_ASSERT_EQ(-ENOBUFS, parse(&c, 0, 100));
	T_ASSERT_EQ(100, res.nfrags);
}

static void test_mixed(void)
{
	struct cbuf c = { .len = 0 };
	int ts = 1234;

	/* skb 1: 100 header bytes + 2 frags; a foreign cmsg; skb 2: 60 + 1 frag */
	add_linear(&c, 100);
	add_dmabuf(&c, 8192, 1000, 5, BINDING);
	add_dmabuf(&c, 12288, 4096, 6, BINDING);
	add_raw(&c, SOL_SOCKET, SO_TIMESTAMP, &ts, sizeof(ts));
	add_raw(&c, SOL_IP, SCM_DEVMEM_DMABUF, &ts, sizeof(ts)); /* right type, wrong level */
	add_linear(&c, 60);
	add_dmabuf(&c, 0, 20, 9, BINDING);
	T_ASSERT_EQ(0, parse(&c, 0, 16));
	T_ASSERT_EQ(5, res.nfrags);
	T_ASSERT_EQ(2, res.unknown);
	T_ASSERT_EQ(GPUD_CMSG_LINEAR, fr[0].kind);
	T_ASSERT_EQ(0, fr[0].offset);	/* iov offset */
	T_ASSERT_EQ(100, fr[0].len);
	T_ASSERT_EQ(GPUD_CMSG_LINEAR, fr[3].kind);
	T_ASSERT_EQ(100, fr[3].offset);	/* after the first LINEAR bytes */
	T_ASSERT_EQ(60, fr[3].len);
	T_ASSERT_EQ(9, fr[4].token);
	T_ASSERT_EQ(160, res.linear_bytes);
	T_ASSERT_EQ(5116, res.dmabuf_bytes);
	T_ASSERT_EQ(2, res.nlinear);
	T_ASSERT_EQ(3, res.ndmabuf);
}

static void test_wrong_id(void)
{
	struct cbuf c = { .len = 0 };

	add_dmabuf(&c, 0, 100, 1, BINDING);
	add_dmabuf(&c, 4096, 100, 2, BINDING + 1);
	add_dmabuf(&c, 8192, 100, 3, BINDING);
	/* Every entry reported (their tokens must go back), error names the id. */
	T_ASSERT_EQ(-EXDEV, parse(&c, 0, 16));
	T_ASSERT_EQ(3, res.nfrags);
	T_ASSERT_EQ(BINDING + 1, res.bad_id);
}

static void test_truncated(void)
{
	struct cbuf c = { .len = 0 };
	struct cmsghdr *h;
	size_t first;

	add_dmabuf(&c, 0, 100, 1, BINDING);
	first = c.len;
	add_dmabuf(&c, 4096, 100, 2, BINDING);
	/* Body cut short: the buffer ends inside the second entry. */
	T_ASSERT_EQ(-EBADMSG, gpud_cmsg_parse(c.u.b, c.len - 12, 0, BINDING, fr, 16, &res));
	T_ASSERT_EQ(1, res.nfrags);
	T_ASSERT(res.truncated);
	/* Only part of a header left: ignored, not read past. */
	T_ASSERT_EQ(0, gpud_cmsg_parse(c.u.b, first + 4, 0, BINDING, fr, 16, &res));
	T_ASSERT_EQ(1, res.nfrags);
	/* A devmem cmsg whose cmsg_len is too short for a dmabuf_cmsg. */
	h = (struct cmsghdr *)(c.u.b + first);
	h->cmsg_len = CMSG_LEN(8);
	T_ASSERT_EQ(-EBADMSG, parse(&c, 0, 16));
	/* cmsg_len below a header: malformed. */
	h->cmsg_len = 3;
	T_ASSERT_EQ(-EBADMSG, parse(&c, 0, 16));
	/* A foreign cmsg running past the end is dropped quietly. */
	c.len = 0;
	add_dmabuf(&c, 0, 100, 1, BINDING);
	first = c.len;
	add_raw(&c, SOL_SOCKET, SO_TIMESTAMP, "abcdefgh", 8);
	T_ASSERT_EQ(0, gpud_cmsg_parse(c.u.b, first + sizeof(struct cmsghdr) + 2, 0, BINDING,
				       fr, 16, &res));
	T_ASSERT_EQ(1, res.nfrags);
	T_ASSERT(res.truncated);
}

static void test_ctrunc(void)
{
	struct cbuf c = { .len = 0 };

	add_dmabuf(&c, 0, 100, 1, BINDING);
	/* MSG_CTRUNC is reported, not fatal: the caller checks byte totals. */
	T_ASSERT_EQ(0, parse(&c, MSG_CTRUNC, 16));
	T_ASSERT(res.ctrunc);
	T_ASSERT_EQ(1, res.nfrags);
	T_ASSERT_EQ(0, parse(&c, 0, 16));
	T_ASSERT(!res.ctrunc);
}

static void test_unaligned(void)
{
	static unsigned char raw[512 + 8];
	struct cbuf c = { .len = 0 };

	add_dmabuf(&c, 0xabc000, 77, 3, BINDING);
	/* The parser must not assume u64 alignment of the caller's buffer. */
	memcpy(raw + 4, c.u.b, c.len);
	T_ASSERT_EQ(0, gpud_cmsg_parse(raw + 4, c.len, 0, BINDING, fr, 16, &res));
	T_ASSERT_EQ(0xabc000, fr[0].offset);
}

int main(void)
{
	test_empty();
	test_single();
	test_many();
	test_mixed();
	test_wrong_id();
	test_truncated();
	test_ctrunc();
	test_unaligned();
	t_log("rx_cmsg: all cases pass");
	return T_EXIT_PASS;
}
