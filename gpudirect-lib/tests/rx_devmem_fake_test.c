// SPDX-License-Identifier: MIT
/*
 * Unit: the devmem engine and gpud_rx's mode logic, driven by a scripted
 * recvmsg that answers the way tcp_recvmsg_dmabuf (6.12) does, and a fake
 * SO_DEVMEM_DONTNEED that records what comes back. No devmem NIC needed.
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "rx/rx_internal.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define BID 5

struct step {
	int err;		/* != 0: fail with this errno */
	ssize_t ret;		/* else: return value (-1 = sum of the entries) */
	unsigned int n;		/* devmem entries (0 and ret > 0: plain bytes) */
	struct { int linear; uint32_t size, token, id; uint64_t off; } e[8];
};

struct fake {
	const struct step *script;
	unsigned int nsteps, pos;
	uint8_t held[4096];	/* tokens the "kernel" lent */
	unsigned int dontneed_calls;
	uint64_t linear_seq;	/* byte pattern offset for LINEAR/plain bytes */
};

static struct fake fk;

static void put(struct msghdr *m, size_t *used, int type, const struct gpud_dmabuf_cmsg *d)
{
	struct cmsghdr *c = (struct cmsghdr *)((char *)m->msg_control + *used);

	T_ASSERT(*used + CMSG_SPACE(sizeof(*d)) <= m->msg_controllen);
	c->cmsg_len = CMSG_LEN(sizeof(*d));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = type;
	memcpy(CMSG_DATA(c), d, sizeof(*d));
	*used += CMSG_SPACE(sizeof(*d));
}

static ssize_t fake_recvmsg(int fd, struct msghdr *m, int flags, void *ctx)
{
	struct fake *f = ctx;
	const struct step *s;
	size_t used = 0, iov_off = 0;
	ssize_t sum = 0;

	T_ASSERT(flags & MSG_SOCK_DEVMEM);
	if (f->pos == f->nsteps)
		return 0;	/* EOF */
	s = &f->script[f->pos++];
	if (s->err) {
		errno = s->err;
		return -1;
	}
	m->msg_flags = 0;
	if (!s->n) {	/* plain bytes */
		t_pattern_fill(1, f->linear_seq, m->msg_iov[0].iov_base, (size_t)s->ret);
		f->linear_seq += (uint64_t)s->ret;
		m->msg_controllen = 0;
		return s->ret;
	}
	for (unsigned int i = 0; i < s->n; i++) {
		struct gpud_dmabuf_cmsg d = { .frag_size = s->e[i].size };

		if (s->e[i].linear) {
			T_ASSERT(iov_off + d.frag_size <= m->msg_iov[0].iov_len);
			t_pattern_fill(1, f->linear_seq, (char *)m->msg_iov[0].iov_base + iov_off,
				       d.frag_size);
			f->linear_seq += d.frag_size;
			iov_off += d.frag_size;
			put(m, &used, SCM_DEVMEM_LINEAR, &d);
		} else {
			d.frag_offset = s->e[i].off;
			d.frag_token = s->e[i].token;
			d.dmabuf_id = s->e[i].id;
			f->held[d.frag_token] = 1;
			put(m, &used, SCM_DEVMEM_DMABUF, &d);
		}
		sum += d.frag_size;
	}
	m->msg_controllen = used;
	return s->ret < 0 ? sum : s->ret;
}

static int fake_dontneed(int fd, const struct gpud_dmabuf_token *r, unsigned int n, void *ctx)
{
	struct fake *f = ctx;
	int freed = 0;

	f->dontneed_calls++;
	for (unsigned int i = 0; i < n; i++)
		for (uint32_t t = r[i].token_start; t < r[i].token_start + r[i].token_count; t++)
			if (f->held[t]) {
				f->held[t] = 0;
				freed++;
			}
	return freed;
}

static unsigned int held_count(void)
{
	unsigned int n = 0;

	for (size_t i = 0; i < sizeof(fk.held); i++)
		n += fk.held[i];
	return n;
}

static struct gpud_rx *open_rx(enum gpud_rx_mode mode, const struct step *script, unsigned int n)
{
	struct gpud_rx_opts o = { .sz = sizeof(o), .mode = mode, .copy_ring = 1 << 20 };
	struct gpud_rx_hooks h = { .binding_id = BID, .recvmsg = fake_recvmsg,
				   .dontneed = fake_dontneed, .ctx = &fk };
	struct gpud_rx *rx = NULL;
	static int sock = -1;

	if (sock < 0)
		sock = socket(AF_INET, SOCK_STREAM, 0);
	memset(&fk, 0, sizeof(fk));
	fk.script = script;
	fk.nsteps = n;
	T_ASSERT_OK(gpud_rx_open_hooked(sock, &o, &h, &rx));
	return rx;
}

/* Copied fragments must hold the LINEAR/plain bytes in stream order. */
static void check_copy(struct gpud_rx *rx, const struct gpud_frag *f, uint64_t *seq)
{
	uint8_t buf[8192];

	T_ASSERT(f->flags & GPUD_FRAG_COPY);
	T_ASSERT(f->len <= sizeof(buf));
	T_ASSERT_OK(gpud_mem_read(gpud_rx_copy_mem(rx), f->offset, buf, f->len));
	T_ASSERT_EQ(-1, t_pattern_check(1, *seq, buf, f->len));
	*seq += f->len;
}

static void test_auto_devmem(void)
{
	static const struct step s[] = {
		{ .ret = -1, .n = 3, .e = { { 1, 100 }, { 0, 4000, 7, BID, 8192 },
					    { 0, 4096, 8, BID, 12288 } } },
		{ .ret = -1, .n = 1, .e = { { 0, 50, 9, BID, 0 } } },
	};
	struct gpud_rx *rx = open_rx(GPUD_RX_AUTO, s, 2);
	struct gpud_frag f[8];
	struct gpud_rx_stats st;
	uint64_t seq = 0;

	T_ASSERT_EQ(GPUD_RX_AUTO, gpud_rx_mode(rx));
	T_ASSERT_EQ(3, gpud_rx_recv(rx, f, 8, 0));
	T_ASSERT_EQ(GPUD_RX_DEVMEM, gpud_rx_mode(rx));
	T_ASSERT(strstr(gpud_rx_mode_reason(rx), "binding 5"));
	check_copy(rx, &f[0], &seq);
	T_ASSERT_EQ(100, f[0].len);
	T_ASSERT_EQ(0, f[1].flags);
	T_ASSERT_EQ(8192, f[1].offset);
	T_ASSERT_EQ(4000, f[1].len);
	T_ASSERT_EQ(7, f[1].token);
	T_ASSERT_EQ(8, f[2].token);
	T_ASSERT_EQ(1, gpud_rx_recv(rx, f + 3, 5, 0));
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(8146 + 100, st.bytes);
	T_ASSERT_EQ(8146, st.bytes_devmem);
	T_ASSERT_EQ(100, st.bytes_copied);
	T_ASSERT_EQ(4, st.tokens_outstanding);
	/* Mixed release in one call: 7, 8, 9 coalesce into one DONTNEED. */
	T_ASSERT_OK(gpud_rx_release(rx, f, 4));
	T_ASSERT_EQ(1, fk.dontneed_calls);
	T_ASSERT_EQ(0, held_count());
	T_ASSERT_EQ(-EINVAL, gpud_rx_release(rx, f + 1, 1));
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(0, st.tokens_outstanding);
	T_ASSERT_EQ(3, st.tokens_released);
	T_ASSERT_EQ(0, gpud_rx_recv(rx, f, 8, 0));	/* EOF */
	gpud_rx_free(rx);
}

static void test_wrong_binding(void)
{
	static const struct step s[] = {
		{ .ret = -1, .n = 3, .e = { { 0, 4096, 1, BID, 0 }, { 0, 4096, 2, 6, 4096 },
					    { 1, 10 } } },
	};
	struct gpud_rx *rx = open_rx(GPUD_RX_AUTO, s, 1);
	struct gpud_frag f[8];
	struct gpud_rx_stats st;

	T_ASSERT_EQ(-EXDEV, gpud_rx_recv(rx, f, 8, 0));
	T_ASSERT(strstr(gpud_errmsg(), "binding 6"));
	T_ASSERT_EQ(0, held_count());	/* both tokens went back */
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(0, st.tokens_outstanding);
	T_ASSERT_EQ(-EXDEV, gpud_rx_recv(rx, f, 8, 0));	/* sticky */
	gpud_rx_free(rx);
}

static void test_byte_mismatch(void)
{
	static const struct step s[] = {
		{ .ret = 5000, .n = 1, .e = { { 0, 4096, 3, BID, 0 } } },
	};
	struct gpud_rx *rx = open_rx(GPUD_RX_DEVMEM, s, 1);
	struct gpud_frag f[8];

	T_ASSERT_EQ(-EPROTO, gpud_rx_recv(rx, f, 8, 0));
	T_ASSERT(strstr(gpud_errmsg(), "5000 bytes"));
	T_ASSERT_EQ(0, held_count());
	gpud_rx_free(rx);
}

static void test_plain(void)
{
	static const struct step s[] = {
		{ .ret = 3000 },
		{ .ret = -1, .n = 1, .e = { { 0, 4096, 4, BID, 0 } } },
		{ .ret = 1000 },
	};
	struct gpud_rx *rx;
	struct gpud_frag f[8];
	uint64_t seq = 0;

	/* DEVMEM demanded, first data in host memory: refuse, loudly. */
	rx = open_rx(GPUD_RX_DEVMEM, s, 3);
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_rx_recv(rx, f, 8, 0));
	T_ASSERT(strstr(gpud_errmsg(), "not steered"));
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_rx_recv(rx, f, 8, 0));
	gpud_rx_free(rx);

	/* AUTO: copy with the reason; late steering upgrades to devmem. */
	rx = open_rx(GPUD_RX_AUTO, s, 3);
	T_ASSERT_EQ(1, gpud_rx_recv(rx, f, 8, 0));
	T_ASSERT_EQ(GPUD_RX_COPY, gpud_rx_mode(rx));
	T_ASSERT(strstr(gpud_rx_mode_reason(rx), "host memory"));
	check_copy(rx, &f[0], &seq);
	T_ASSERT_EQ(1, gpud_rx_recv(rx, f + 1, 7, 0));
	T_ASSERT_EQ(GPUD_RX_DEVMEM, gpud_rx_mode(rx));
	T_ASSERT(strstr(gpud_rx_mode_reason(rx), "after 3000 bytes"));
	/* After devmem was seen, stray host-memory data is copied, not fatal. */
	T_ASSERT_EQ(1, gpud_rx_recv(rx, f + 2, 6, 0));
	check_copy(rx, &f[2], &seq);
	/* Freed with fragments out: the token goes back to the kernel. */
	gpud_rx_free(rx);
	T_ASSERT_EQ(0, held_count());
}

static void test_socket_errors(void)
{
	static const struct step s[] = {
		{ .err = EAGAIN }, { .err = ENODEV },
	};
	struct gpud_rx *rx = open_rx(GPUD_RX_AUTO, s, 2);
	struct gpud_frag f[2];

	T_ASSERT_EQ(-EAGAIN, gpud_rx_recv(rx, f, 2, MSG_DONTWAIT));
	T_ASSERT_EQ(-ENODEV, gpud_rx_recv(rx, f, 2, 0));
	T_ASSERT(strstr(gpud_errmsg(), "host-memory pages"));
	T_ASSERT_EQ(-ENODEV, gpud_rx_recv(rx, f, 2, 0));
	gpud_rx_free(rx);
}

static void test_ring_full(void)
{
	static struct step s[300];
	struct gpud_rx *rx;
	struct gpud_frag f[1];
	int i, n;

	/* Plain 8 KiB chunks into a 1 MiB ring, never released. */
	for (i = 0; i < 300; i++)
		s[i].ret = 8192;
	rx = open_rx(GPUD_RX_AUTO, s, 300);
	for (i = 0; (n = gpud_rx_recv(rx, f, 1, 0)) == 1; i++)
		;
	T_ASSERT_EQ(-ENOBUFS, n);
	T_ASSERT_EQ(128, i);	/* exactly 1 MiB held */
	gpud_rx_free(rx);
}

int main(void)
{
	test_auto_devmem();
	test_wrong_binding();
	test_byte_mismatch();
	test_plain();
	test_socket_errors();
	test_ring_full();
	t_log("rx_devmem_fake: all cases pass");
	return T_EXIT_PASS;
}
