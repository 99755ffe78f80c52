// SPDX-License-Identifier: MIT
/*
 * Unit: devmem token return (tokens.c) against a fake SO_DEVMEM_DONTNEED
 * that behaves like net/core/sock.c in 6.12 (skips ids it does not hold,
 * counts what it freed) and checks the per-call limits, plus the copy ring
 * (ring.c) that backs copy-mode fragments.
 */
#include "gpud_test.h"
#include "rx/rx_internal.h"

#define NTOK 20000

struct fake {
	bool held[NTOK];
	unsigned int calls;
	unsigned int max_ranges_seen;
	unsigned int max_frags_seen;
	int free_limit;		/* > 0: free at most this many per call (partial) */
	int fail_errno;		/* != 0: fail the next call with it */
	unsigned long freed_twice;
};

static int fake_dontneed(int fd, const struct gpud_dmabuf_token *r, unsigned int n, void *ctx)
{
	struct fake *f = ctx;
	unsigned int frags = 0;
	int ret = 0;

	T_ASSERT_EQ(123, fd);
	f->calls++;
	if (f->fail_errno) {
		int e = f->fail_errno;

		f->fail_errno = 0;
		return -e;
	}
	if (n > GPUD_MAX_DONTNEED_TOKENS)
		T_FAIL("DONTNEED call with %u ranges (> %d)", n, GPUD_MAX_DONTNEED_TOKENS);
	if (n > f->max_ranges_seen)
		f->max_ranges_seen = n;
	for (unsigned int i = 0; i < n; i++) {
		for (uint32_t j = 0; j < r[i].token_count; j++) {
			uint32_t t = r[i].token_start + j;

			if (++frags > GPUD_MAX_DONTNEED_FRAGS)
				T_FAIL("DONTNEED call with more than %d frags", GPUD_MAX_DONTNEED_FRAGS);
			if (f->free_limit && ret == f->free_limit)
				goto out;	/* like hitting the kernel's cap */
			T_ASSERT(t < NTOK);
			if (!f->held[t]) {
				f->freed_twice++;
				continue;
			}
			f->held[t] = false;
			ret++;
		}
	}
out:
	if (frags > f->max_frags_seen)
		f->max_frags_seen = frags;
	return ret;
}

static struct fake fk;
static struct gpud_tokens tk;

static void lend(uint32_t t)
{
	fk.held[t] = true;
	T_ASSERT_OK(gpud_tokens_add(&tk, t));
}

static void setup(void)
{
	memset(&fk, 0, sizeof(fk));
	gpud_tokens_fini(&tk);
	gpud_tokens_init(&tk, 123, fake_dontneed, &fk);
}

static void test_coalesce(void)
{
	uint32_t rel[] = { 9, 3, 1, 2, 8, 10, 5 };

	setup();
	for (uint32_t t = 1; t <= 10; t++)
		lend(t);
	T_ASSERT_EQ(10, tk.outstanding);
	/* Ranges after sorting: 1-3, 5, 8-10: three entries, one call. */
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, 7));
	T_ASSERT_EQ(1, fk.calls);
	T_ASSERT_EQ(3, fk.max_ranges_seen);
	T_ASSERT_EQ(3, tk.outstanding);
	T_ASSERT_EQ(7, tk.released);
	T_ASSERT(!fk.held[9] && fk.held[4] && fk.held[6] && fk.held[7]);
	T_ASSERT(gpud_tokens_is_outstanding(&tk, 4));
	T_ASSERT(!gpud_tokens_is_outstanding(&tk, 5));
}

static void test_limits(void)
{
	static uint32_t rel[5000];
	size_t n = 0;

	setup();
	/* 3000 contiguous tokens: one range, but 1024 frags per call at most. */
	for (uint32_t t = 1; t <= 3000; t++)
		lend(t), rel[n++] = t;
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, n));
	T_ASSERT_EQ(3, fk.calls);
	T_ASSERT_EQ(1024, fk.max_frags_seen);
	T_ASSERT_EQ(0, tk.outstanding);

	/* 600 isolated tokens: 128 ranges per call at most -> 5 calls. */
	setup();
	n = 0;
	for (uint32_t t = 2; t <= 1200; t += 2)
		lend(t), rel[n++] = t;
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, n));
	T_ASSERT_EQ(128, fk.max_ranges_seen);
	T_ASSERT_EQ(5, fk.calls);
	T_ASSERT_EQ(0, tk.outstanding);
	T_ASSERT_EQ(0, fk.freed_twice);
}

static void test_partial(void)
{
	static uint32_t rel[2000];

	setup();
	for (uint32_t t = 1; t <= 1000; t++)
		lend(t), rel[t - 1] = t;
	/* The kernel frees at most 100 per call: the rest is resent. */
	fk.free_limit = 100;
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, 1000));
	T_ASSERT_EQ(10, fk.calls);
	T_ASSERT_EQ(0, tk.outstanding);
	T_ASSERT_EQ(1000, tk.released);
	T_ASSERT_EQ(0, fk.freed_twice);
	for (uint32_t t = 1; t <= 1000; t++)
		T_ASSERT(!fk.held[t]);
}

static void test_double_release(void)
{
	uint32_t a[] = { 4, 5 }, dup[] = { 6, 7, 6 }, never[] = { 7, 999 };

	setup();
	for (uint32_t t = 4; t <= 7; t++)
		lend(t);
	T_ASSERT_OK(gpud_tokens_release(&tk, a, 2));
	T_ASSERT_EQ(-EINVAL, gpud_tokens_release(&tk, a, 2));
	T_ASSERT(strstr(gpud_errmsg(), "token 4 is not outstanding"));
	T_ASSERT_EQ(-EINVAL, gpud_tokens_release(&tk, dup, 3));
	T_ASSERT(strstr(gpud_errmsg(), "twice"));
	T_ASSERT_EQ(-EINVAL, gpud_tokens_release(&tk, never, 2));
	/* Rejected calls released nothing and made no system call. */
	T_ASSERT_EQ(1, fk.calls);
	T_ASSERT_EQ(2, tk.outstanding);
	T_ASSERT(fk.held[6] && fk.held[7]);
	/* Adding a token that is already outstanding is refused. */
	T_ASSERT_EQ(-EEXIST, gpud_tokens_add(&tk, 6));
}

static void test_errors(void)
{
	uint32_t rel[] = { 1, 2, 3 };

	setup();
	for (uint32_t t = 1; t <= 3; t++)
		lend(t);
	fk.fail_errno = EBADF;
	T_ASSERT_EQ(-EBADF, gpud_tokens_release(&tk, rel, 3));
	T_ASSERT_EQ(3, tk.outstanding);	/* still ours: a later call may succeed */
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, 3));
	T_ASSERT_EQ(0, tk.outstanding);

	/* Tokens the kernel no longer holds: forgotten, reported as -EIO. */
	setup();
	for (uint32_t t = 1; t <= 3; t++)
		lend(t);
	fk.held[2] = false;
	T_ASSERT_EQ(-EIO, gpud_tokens_release(&tk, rel, 3));
	T_ASSERT_EQ(0, tk.outstanding);
	T_ASSERT_EQ(1, tk.lost);
}

static void test_release_all(void)
{
	setup();
	for (uint32_t t = 1; t <= 5000; t += 3)
		lend(t);
	lend(17000);
	T_ASSERT_OK(gpud_tokens_release_all(&tk));
	T_ASSERT_EQ(0, tk.outstanding);
	for (uint32_t t = 0; t < NTOK; t++)
		T_ASSERT(!fk.held[t]);
	T_ASSERT_OK(gpud_tokens_release_all(&tk));
}

static void test_ring(void)
{
	struct gpud_ring r;
	uint64_t off[8];
	uint32_t tok[8], bad = 12345;

	T_ASSERT_OK(gpud_ring_init(&r, 1000));
	T_ASSERT_EQ(1000, gpud_ring_prepare(&r, 5000));
	T_ASSERT_OK(gpud_ring_push(&r, 400, &off[0], &tok[0]));
	T_ASSERT_OK(gpud_ring_push(&r, 400, &off[1], &tok[1]));
	T_ASSERT_EQ(0, off[0]);
	T_ASSERT_EQ(400, off[1]);
	T_ASSERT_EQ(200, gpud_ring_prepare(&r, 5000));
	/* Out-of-order release: the tail waits for region 0. */
	T_ASSERT_OK(gpud_ring_release(&r, &tok[1], 1));
	T_ASSERT_EQ(200, gpud_ring_prepare(&r, 5000));
	T_ASSERT_EQ(-EINVAL, gpud_ring_release(&r, &tok[1], 1));	/* twice */
	T_ASSERT_OK(gpud_ring_push(&r, 150, &off[2], &tok[2]));	/* 800..950 */
	T_ASSERT_OK(gpud_ring_release(&r, &tok[0], 1));
	/* Tail now at 800: the start (800 bytes) beats the end (50): wrap. */
	T_ASSERT_EQ(800, gpud_ring_prepare(&r, 5000));
	T_ASSERT_OK(gpud_ring_push(&r, 700, &off[3], &tok[3]));
	T_ASSERT_EQ(0, off[3]);
	T_ASSERT_EQ(100, gpud_ring_prepare(&r, 5000));
	T_ASSERT_EQ(2, r.nout);
	/* A bad token among good ones frees nothing. */
	{
		uint32_t mix[] = { tok[2], bad };

		T_ASSERT_EQ(-EINVAL, gpud_ring_release(&r, mix, 2));
		T_ASSERT_EQ(2, r.nout);
	}
	T_ASSERT_OK(gpud_ring_release(&r, &tok[2], 1));
	/* Tail at 0 (region 3), head 700: 300 at the end. */
	T_ASSERT_EQ(300, gpud_ring_prepare(&r, 5000));
	T_ASSERT_OK(gpud_ring_release(&r, &tok[3], 1));
	T_ASSERT_EQ(0, r.nout);
	T_ASSERT_EQ(1000, gpud_ring_prepare(&r, 5000));
	/* Many small regions: the region queue grows. */
	for (int i = 0; i < 900; i++) {
		uint64_t o;
		uint32_t t;

		T_ASSERT(gpud_ring_prepare(&r, 1) == 1);
		T_ASSERT_OK(gpud_ring_push(&r, 1, &o, &t));
		T_ASSERT_EQ(i, o);
	}
	T_ASSERT_EQ(900, r.nout);
	gpud_ring_fini(&r);
}

int main(void)
{
	test_coalesce();
	test_limits();
	test_partial();
	test_double_release();
	test_errors();
	test_release_all();
	test_ring();
	gpud_tokens_fini(&tk);
	t_log("rx_tokens: all cases pass");
	return T_EXIT_PASS;
}
