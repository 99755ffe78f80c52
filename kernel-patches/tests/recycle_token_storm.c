// SPDX-License-Identifier: MIT
/*
 * vm: token storms. Eight flows steered to one bound queue, received with raw
 * recvmsg(MSG_SOCK_DEVMEM); every fragment is checked, then its token is held
 * for a while and returned out of order with raw SO_DEVMEM_DONTNEED calls of
 * random batch sizes up to the kernel's limits, mixed with duplicates, tokens
 * already returned, tokens never issued, empty and wrapping ranges. (The
 * library refuses such calls itself, so this talks to the kernel directly.)
 *
 * 6.12 semantics (net/core/sock.c, sock_devmem_dontneed()), checked exactly:
 *  - optlen below 4 (sk_setsockopt()'s generic check), not a multiple of 8,
 *    or more than 128 entries: -EINVAL, nothing freed; unreadable optval:
 *    -EFAULT; a socket that is not TCP: -EBADF;
 *  - otherwise the return value is the number of tokens actually freed:
 *    entries are walked in order, token_start + j (u32 arithmetic, so it
 *    wraps) for j < token_count; a token the socket does not hold is skipped
 *    silently; the walk stops after 1024 frags counted (held or not) and the
 *    rest of the call is ignored, still without error.
 * The test models that walk and asserts the count after every call, and that
 * a token skipped because of the cap is still held (and returned later).
 */
#define _GNU_SOURCE
#include "recycle_common.h"
#include "uapi_compat.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT 5321
#define SEED 0x5707ull
#define NFLOWS 8
#define MEM_SIZE (64u << 20)
#define TOK_MAX (1u << 20)	/* ids are small: xa_alloc reuses the lowest */
#define STALE 256

struct flow {
	int fd;
	uint64_t pos;
	bool eof;
	uint8_t *held;		/* held[token] = 1 while we hold it */
	uint32_t *list;		/* the held tokens, unordered */
	uint32_t nheld, hold_limit;
	uint32_t stale[STALE];	/* recently returned tokens */
	uint32_t nstale;
};

static struct rc_env env;
static struct flow fl[NFLOWS];
static uint64_t rng;
static struct {
	uint64_t frags, linear_bytes, calls, freed, bogus, dups, stale, wraps, capped;
} sum;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

static void hold(struct flow *f, uint32_t tok)
{
	if (tok >= TOK_MAX || f->held[tok])
		T_FAIL("kernel handed out token %u %s", tok,
		       tok >= TOK_MAX ? "(out of the expected range)" : "that we already hold");
	f->held[tok] = 1;
	f->list[f->nheld++] = tok;
}

/* What the kernel will free for @t[0..n): its walk, on our model. */
static uint32_t model_free(struct flow *f, const struct gpud_dmabuf_token *t, uint32_t n)
{
	uint32_t freed = 0, frags = 0;

	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < t[i].token_count; j++) {
			uint32_t tok = t[i].token_start + j;

			if (++frags > GPUD_MAX_DONTNEED_FRAGS) {
				sum.capped++;
				return freed;
			}
			if (tok < TOK_MAX && f->held[tok]) {
				f->held[tok] = 0;
				f->stale[f->nstale++ % STALE] = tok;
				freed++;
			}
		}
	return freed;
}

/* Drops tokens the model freed from the unordered list. */
static void compact(struct flow *f)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < f->nheld; i++)
		if (f->held[f->list[i]])
			f->list[k++] = f->list[i];
	f->nheld = k;
}

static void dontneed(struct flow *f, const struct gpud_dmabuf_token *t, uint32_t n)
{
	uint32_t want = model_free(f, t, n);
	int ret = setsockopt(f->fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, t, n * sizeof(*t));

	if (ret < 0)
		T_FAIL("SO_DEVMEM_DONTNEED with %u entries: %s", n, strerror(errno));
	if ((uint32_t)ret != want)
		T_FAIL("SO_DEVMEM_DONTNEED with %u entries freed %d, expected %u", n, ret, want);
	sum.calls++;
	sum.freed += (uint64_t)ret;
	compact(f);
}

/* One storm call: random held tokens, some as runs, plus junk. */
static void storm(struct flow *f, bool all)
{
	struct gpud_dmabuf_token t[GPUD_MAX_DONTNEED_TOKENS];
	uint32_t n = 0, max = 1 + rnd(GPUD_MAX_DONTNEED_TOKENS);

	while (n < max && f->nheld) {
		uint32_t r = rnd(100), tok = f->list[rnd(f->nheld)], run = 1;

		if (r < 5) {			/* never issued */
			t[n++] = (struct gpud_dmabuf_token){ TOK_MAX + rnd(1u << 30), 1 + rnd(4) };
			sum.bogus++;
		} else if (r < 8 && n) {	/* a duplicate of this call's entry */
			t[n] = t[rnd(n)];
			n++;
			sum.dups++;
		} else if (r < 11 && f->nstale) {	/* returned before */
			uint32_t k = f->nstale < STALE ? f->nstale : STALE;

			t[n++] = (struct gpud_dmabuf_token){ f->stale[rnd(k)], 1 };
			sum.stale++;
		} else if (r < 12) {		/* empty, and wrapping past 2^32 */
			t[n++] = (struct gpud_dmabuf_token){ tok, 0 };
			if (n < max)
				t[n++] = (struct gpud_dmabuf_token){ 0xffffffffu, 2 };
			sum.wraps++;
		} else if (r < 13) {		/* a long bogus range: may hit the cap */
			t[n++] = (struct gpud_dmabuf_token){ TOK_MAX, 200 + rnd(900) };
			sum.bogus++;
		} else {			/* held: single or a run */
			while (tok + run < TOK_MAX && f->held[tok + run] && run < 64)
				run++;
			t[n++] = (struct gpud_dmabuf_token){ tok, run };
		}
		if (all && n == max)
			break;
	}
	if (n)
		dontneed(f, t, n);
}

/* Returns the number of bytes read, 0 at EOF. */
static ssize_t recv_devmem(struct flow *f, uint64_t seed)
{
	static uint8_t data[256 << 10];
	static char ctrl[CMSG_SPACE(sizeof(struct gpud_dmabuf_cmsg)) * 2048];
	struct iovec iov = { data, sizeof(data) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
			    .msg_controllen = sizeof(ctrl) };
	ssize_t n = recvmsg(f->fd, &m, MSG_SOCK_DEVMEM | MSG_DONTWAIT);
	size_t lin = 0;		/* linear bytes come in order in data[] */

	if (n < 0 && errno == EAGAIN)
		return -1;
	if (n < 0)
		T_FAIL("recvmsg(MSG_SOCK_DEVMEM): %s", strerror(errno));
	if (m.msg_flags & MSG_CTRUNC)
		T_FAIL("control buffer too small");
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		struct gpud_dmabuf_cmsg d;

		if (c->cmsg_level != SOL_SOCKET)
			continue;
		memcpy(&d, CMSG_DATA(c), sizeof(d));
		if (c->cmsg_type == SCM_DEVMEM_LINEAR) {
			long bad;

			T_ASSERT(lin + d.frag_size <= (size_t)n);
			bad = t_pattern_check(seed, f->pos, data + lin, d.frag_size);
			lin += d.frag_size;

			if (bad >= 0)
				T_FAIL("linear byte %llu differs", (unsigned long long)(f->pos + bad));
			sum.linear_bytes += d.frag_size;
		} else if (c->cmsg_type == SCM_DEVMEM_DMABUF) {
			T_ASSERT_EQ(env.d.dmabuf_id, d.dmabuf_id);
			rc_check_mem(env.d.mem, d.frag_offset, d.frag_size, seed, f->pos);
			hold(f, d.frag_token);
			sum.frags++;
		} else {
			continue;
		}
		f->pos += d.frag_size;
	}
	return n;
}

/* The error paths, once, on a flow with tokens held. */
static void check_errors(struct flow *f)
{
	struct gpud_dmabuf_token t[GPUD_MAX_DONTNEED_TOKENS + 1] = { 0 };
	uint32_t tok = f->list[0];
	int udp = socket(AF_INET, SOCK_DGRAM, 0);

	T_ASSERT_EQ(-1, setsockopt(f->fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, t, sizeof(t)));
	T_ASSERT_EQ(EINVAL, errno);
	t[0] = (struct gpud_dmabuf_token){ tok, 1 };
	T_ASSERT_EQ(-1, setsockopt(f->fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, t, 12));
	T_ASSERT_EQ(EINVAL, errno);
	T_ASSERT_EQ(-1, setsockopt(f->fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, (void *)8, 8));
	T_ASSERT_EQ(EFAULT, errno);
	T_ASSERT_EQ(-1, setsockopt(udp, SOL_SOCKET, SO_DEVMEM_DONTNEED, t, 8));
	T_ASSERT_EQ(EBADF, errno);
	close(udp);
	/* sk_setsockopt() wants at least an int before it looks at optname */
	T_ASSERT_EQ(-1, setsockopt(f->fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, t, 0));
	T_ASSERT_EQ(EINVAL, errno);
	T_ASSERT(f->held[tok]);
	/* The cap: 1024 bogus frags first, so the held token is not reached. */
	t[0] = (struct gpud_dmabuf_token){ TOK_MAX, GPUD_MAX_DONTNEED_FRAGS };
	t[1] = (struct gpud_dmabuf_token){ tok, 1 };
	dontneed(f, t, 2);
	T_ASSERT(f->held[tok]);
	t_log("error paths: EINVAL (129 entries, optlen 12), EFAULT, EBADF (UDP), EINVAL (optlen 0), cap keeps token %u held",
	      tok);
}

/* usage: recycle_token_storm [MiB per flow, default 8] */
int main(int argc, char **argv)
{
	const uint64_t per_flow = (argc > 1 ? strtoull(argv[1], NULL, 0) : 8) << 20;
	struct rc_send s = { .nflows = NFLOWS, .bytes = per_flow, .seed = SEED };
	struct pollfd pfd[NFLOWS];
	const char *e = getenv("RECYCLE_SEED");
	bool errors_done = false;
	int open_flows = NFLOWS;
	double t0;
	pid_t pid;

	rng = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
	rng |= 1;
	t_log("RECYCLE_SEED=%llu", (unsigned long long)rng);
	rc_setup(&env, PORT, MEM_SIZE);
	pid = rc_sender_start(&env, &s);
	for (int i = 0; i < NFLOWS; i++) {
		int k, fd = rc_accept(&env, &k);

		T_ASSERT(!fl[k].held);
		fl[k].fd = fd;
		fl[k].held = calloc(TOK_MAX, 1);
		fl[k].list = calloc(TOK_MAX, sizeof(uint32_t));
		fl[k].hold_limit = 32 + rnd(600);
		T_ASSERT(fl[k].held && fl[k].list);
	}
	t0 = t_now();
	while (open_flows) {
		for (int i = 0; i < NFLOWS; i++)
			pfd[i] = (struct pollfd){ .fd = fl[i].eof ? -1 : fl[i].fd, .events = POLLIN };
		T_ASSERT(poll(pfd, NFLOWS, 5000) > 0);
		for (int i = 0; i < NFLOWS; i++) {
			struct flow *f = &fl[i];
			ssize_t n;

			if (f->eof || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = recv_devmem(f, SEED + (uint64_t)i);
			if (n == 0) {
				f->eof = true;
				open_flows--;
				while (f->nheld)
					storm(f, true);
				T_ASSERT_EQ(per_flow, f->pos);
				continue;
			}
			if (!errors_done && f->nheld > 8) {
				check_errors(f);
				errors_done = true;
			}
			while (f->nheld > f->hold_limit) {
				storm(f, false);
				f->hold_limit = 32 + rnd(600);
			}
		}
	}
	t_log("token storm: %d flows x %llu bytes in %.2f s: %llu devmem frags (%llu linear bytes), %llu DONTNEED calls freed %llu tokens; junk sent: %llu never-issued, %llu duplicates, %llu already returned, %llu empty/wrapping, %llu calls cut at 1024 frags",
	      NFLOWS, (unsigned long long)per_flow, t_now() - t0, (unsigned long long)sum.frags,
	      (unsigned long long)sum.linear_bytes, (unsigned long long)sum.calls,
	      (unsigned long long)sum.freed, (unsigned long long)sum.bogus,
	      (unsigned long long)sum.dups, (unsigned long long)sum.stale,
	      (unsigned long long)sum.wraps, (unsigned long long)sum.capped);
	T_ASSERT(errors_done);
	T_ASSERT_EQ(sum.frags, sum.freed);
	rc_sender_wait(pid);
	for (int i = 0; i < NFLOWS; i++) {
		close(fl[i].fd);
		free(fl[i].held);
		free(fl[i].list);
	}
	rc_check_closed(&env);
	rc_teardown(&env);
	t_log("recycle_token_storm: pass");
	return T_EXIT_PASS;
}
