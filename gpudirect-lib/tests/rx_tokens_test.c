// SPDX-License-Identifier: MIT
/*
 * Unit: devmem token return (tokens.c) against a fake SO_DEVMEM_DONTNEED
 * that does what sock_devmem_dontneed() in net/core/sock.c (6.12) does:
 * -EINVAL for an empty array or more than 128 entries; walks every id of
 * every entry in order, erasing it; skips ids it does not hold; stops the
 * walk, without error, at the 1025th id examined (held or not); returns the
 * count freed. The fake also records what a kernel cannot see: ids examined
 * twice since they were lent, which is the library's bug this guards
 * against. Plus the copy ring (ring.c) that backs copy-mode fragments.
 */
#include "gpud_test.h"
#include "rx/rx_internal.h"

#define NTOK 20000

struct fake {
	bool held[NTOK];		/* the socket's xarray */
	bool freed[NTOK];		/* freed by a DONTNEED since lent */
	unsigned char examined[NTOK];	/* DONTNEED walks over it since lent */
	unsigned int calls;
	unsigned int max_ranges_seen;
	unsigned int max_frags_seen;
	int fail_errno;			/* != 0: fail the next call with it */
	int overcount;			/* added to every count (a kernel that lies) */
	unsigned long freed_twice;	/* examined again after we freed it */
	unsigned long sent_twice;	/* examined again, held or not */
	unsigned long bad_len;		/* calls the kernel refused with -EINVAL */
	unsigned long cap_hits;		/* calls the 1024-frag cap cut short */
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
	/* sk_setsockopt: optlen < sizeof(int); sock_devmem_dontneed: > 128 entries. */
	if (n == 0 || n > GPUD_MAX_DONTNEED_TOKENS) {
		f->bad_len++;
		return -EINVAL;
	}
	if (n > f->max_ranges_seen)
		f->max_ranges_seen = n;
	for (unsigned int i = 0; i < n; i++) {
		for (uint32_t j = 0; j < r[i].token_count; j++) {
			uint32_t t = r[i].token_start + j;

			if (++frags > GPUD_MAX_DONTNEED_FRAGS) {
				f->cap_hits++;
				frags--;
				goto frag_limit_reached;
			}
			T_ASSERT(t < NTOK);
			if (f->examined[t]++)
				f->sent_twice++;
			if (!f->held[t]) {	/* __xa_erase() found nothing: skip */
				if (f->freed[t])
					f->freed_twice++;
				continue;
			}
			f->held[t] = false;
			f->freed[t] = true;
			ret++;
		}
	}
frag_limit_reached:
	if (frags > f->max_frags_seen)
		f->max_frags_seen = frags;
	return ret + f->overcount;
}

static struct fake fk;
static struct gpud_tokens tk;

/* The kernel lends @t: the socket holds it and the library tracks it. */
static void lend(uint32_t t)
{
	fk.held[t] = true;
	fk.freed[t] = false;
	fk.examined[t] = 0;
	T_ASSERT_OK(gpud_tokens_add(&tk, t));
}

static void setup(void)
{
	memset(&fk, 0, sizeof(fk));
	gpud_tokens_fini(&tk);
	gpud_tokens_init(&tk, 123, fake_dontneed, &fk);
}

/* What every case must keep: no id twice, no call the kernel refuses or cuts. */
static void check_clean(void)
{
	T_ASSERT_EQ(0, fk.freed_twice);
	T_ASSERT_EQ(0, fk.sent_twice);
	T_ASSERT_EQ(0, fk.bad_len);
	T_ASSERT_EQ(0, fk.cap_hits);
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
	check_clean();
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
	T_ASSERT_EQ(3000, tk.released);
	check_clean();

	/* 600 isolated tokens: 128 ranges per call at most -> 5 calls. */
	setup();
	n = 0;
	for (uint32_t t = 2; t <= 1200; t += 2)
		lend(t), rel[n++] = t;
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, n));
	T_ASSERT_EQ(128, fk.max_ranges_seen);
	T_ASSERT_EQ(5, fk.calls);
	T_ASSERT_EQ(0, tk.outstanding);
	check_clean();
}

/*
 * Tokens 1..@n lent, then the kernel loses @miss[0..nmiss) (returned behind
 * the library's back); all n released in one request. Every token is
 * examined exactly once; the held ones are freed, the rest counted lost and
 * reported with @msg (and @msg2 when set).
 */
static void skip_case(uint32_t n, const uint32_t *miss, size_t nmiss, unsigned int calls,
		      const char *msg, const char *msg2)
{
	static uint32_t rel[NTOK];

	setup();
	for (uint32_t t = 1; t <= n; t++)
		lend(t), rel[t - 1] = t;
	for (size_t i = 0; i < nmiss; i++)
		fk.held[miss[i]] = false;
	T_ASSERT_EQ(-EIO, gpud_tokens_release(&tk, rel, n));
	T_ASSERT_EQ(calls, fk.calls);
	T_ASSERT_EQ(nmiss, tk.lost);
	T_ASSERT_EQ(n - nmiss, tk.released);
	T_ASSERT_EQ(0, tk.outstanding);
	for (uint32_t t = 1; t <= n; t++) {
		bool missing = false;

		for (size_t i = 0; i < nmiss; i++)
			missing |= miss[i] == t;
		if (fk.examined[t] != 1 || fk.held[t] || fk.freed[t] == missing ||
		    gpud_tokens_is_outstanding(&tk, t))
			T_FAIL("token %u (kernel %s it): examined %u times, held %d, freed %d",
			       t, missing ? "lacked" : "held", fk.examined[t], fk.held[t],
			       fk.freed[t]);
	}
	check_clean();
	if (!strstr(gpud_errmsg(), msg) || (msg2 && !strstr(gpud_errmsg(), msg2)))
		T_FAIL("message: expected \"%s\"%s%s, got \"%s\"", msg, msg2 ? " and " : "",
		       msg2 ? msg2 : "", gpud_errmsg());
}

static void test_skips(void)
{
	const uint32_t first[] = { 1 }, middle[] = { 2 }, last[] = { 5 }, all[] = { 1, 2, 3, 4, 5 };
	const uint32_t spread[] = { 1, 1500, 3000 };
	static uint32_t every[2500], many[5000];

	/* One call of 5: the count says how many the kernel lacked, not which. */
	skip_case(5, first, 1, 1, "1 of 5 devmem tokens",
		  "1 of the 5 tokens of one call (1..5; which ones, the kernel does not say)");
	skip_case(5, middle, 1, 1, "1 of 5 devmem tokens", "1 of the 5 tokens of one call (1..5;");
	skip_case(5, last, 1, 1, "1 of 5 devmem tokens", "1 of the 5 tokens of one call (1..5;");
	/* None held: the count does say which. */
	skip_case(5, all, 5, 1, "5 of 5 devmem tokens", "all 5 tokens of one call (1..5)");
	/* A call of one token names it. */
	skip_case(1, first, 1, 1, "1 of 1 devmem tokens", "token 1");
	/* Across calls the report narrows to the call: first, middle, last of 3. */
	skip_case(3000, spread, 3, 3, "3 of 3000 devmem tokens",
		  "1 of the 1024 tokens of one call (1..1024;");
	T_ASSERT(strstr(gpud_errmsg(), "1 of the 1024 tokens of one call (1025..2048;"));
	T_ASSERT(strstr(gpud_errmsg(), "1 of the 952 tokens of one call (2049..3000;"));
	/* All lost over many calls: each call reports none held; the rest summed. */
	for (uint32_t t = 1; t <= 2500; t++)
		every[t - 1] = t;
	skip_case(2500, every, 2500, 3, "2500 of 2500 devmem tokens",
		  "all 1024 tokens of one call (1..1024); all 1024 tokens of one call (1025..2048); all 452 tokens of one call (2049..2500)");
	/* More short calls than the message lists: the count stays exact. */
	for (uint32_t t = 1; t <= 5000; t++)
		many[t - 1] = t;
	skip_case(5000, many, 5000, 5, "5000 of 5000 devmem tokens", "; and more in later calls");

	/* Forgotten ids may be lent again; they are then the library's again. */
	T_ASSERT_EQ(0, tk.outstanding);
	lend(3);
	T_ASSERT_OK(gpud_tokens_release(&tk, (uint32_t[]){ 3 }, 1));
	T_ASSERT(fk.freed[3] && fk.examined[3] == 1);
	check_clean();
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
	check_clean();
}

static void test_errors(void)
{
	static uint32_t rel[2000];

	setup();
	for (uint32_t t = 1; t <= 3; t++)
		lend(t), rel[t - 1] = t;
	fk.fail_errno = EBADF;
	T_ASSERT_EQ(-EBADF, gpud_tokens_release(&tk, rel, 3));
	T_ASSERT_EQ(3, tk.outstanding);	/* still ours: a later call may succeed */
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, 3));
	T_ASSERT_EQ(0, tk.outstanding);
	check_clean();

	/* An error in the second call: the first call's tokens stay released. */
	setup();
	for (uint32_t t = 1; t <= 2000; t++)
		lend(t), rel[t - 1] = t;
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, 1024));
	fk.fail_errno = ENOMEM;
	T_ASSERT_EQ(-ENOMEM, gpud_tokens_release(&tk, rel + 1024, 976));
	T_ASSERT_EQ(976, tk.outstanding);
	T_ASSERT(strstr(gpud_errmsg(), "976 tokens still outstanding"));
	T_ASSERT_OK(gpud_tokens_release_all(&tk));
	T_ASSERT_EQ(2000, tk.released);
	T_ASSERT_EQ(0, tk.outstanding);
	check_clean();

	/* A count above what was sent is not believed: nothing sent again. */
	setup();
	for (uint32_t t = 1; t <= 3; t++)
		lend(t);
	fk.overcount = 2;
	T_ASSERT_OK(gpud_tokens_release(&tk, rel, 3));
	T_ASSERT_EQ(1, fk.calls);
	T_ASSERT_EQ(3, tk.released);
	T_ASSERT_EQ(0, tk.lost);
	check_clean();
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
	check_clean();
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
	test_skips();
	test_double_release();
	test_errors();
	test_release_all();
	test_ring();
	gpud_tokens_fini(&tk);
	t_log("rx_tokens: all cases pass");
	return T_EXIT_PASS;
}
