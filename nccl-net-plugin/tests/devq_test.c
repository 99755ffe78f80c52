// SPDX-License-Identifier: MIT
/*
 * Unit tests of the device-unpack metadata writer (src/placement/devq.c) against the
 * CPU emulation of NCCL's consumer (unpack_consumer.c), no sockets, no VM:
 * the first receive is read from slot 0; receives scattered over a pool in random
 * pieces, added from several threads in any order, come out byte-exact;
 * slots wrap after 16 and a slot is not handed out again before its receive
 * was consumed; 2048 entries fit and the 2049th is refused; zero-entry
 * receives still move head; refs come back exactly as given.
 */
#include "gpud_test.h"
#include "placement/devq.h"
#include "unpack_consumer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define POOL (32u << 20)
#define REGION (POOL / DM_DEVQ_DEPTH)	/* one per slot: outstanding receives never share pages */
#define PAGE 4096u

static char *pool;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct piece {
	struct dm_unpack_entry e;
	uint64_t ref;
};

/*
 * A receive of @len bytes whose fragments sit on distinct, shuffled 4 KiB
 * pages of pool region [@base, @base + @size) (at most a page each, starting
 * at random offsets inside their page, like devmem frags), pool bytes set to
 * the pattern the receive must end up with.
 */
static int scatter(uint64_t *s, uint64_t seed, size_t len, size_t base, size_t size,
		   struct piece *p, int max)
{
	static uint32_t pages[POOL / PAGE];
	uint32_t npages = (uint32_t)(size / PAGE);
	size_t done = 0;
	int n = 0;

	for (uint32_t i = 0; i < npages; i++)
		pages[i] = (uint32_t)(base / PAGE) + i;
	for (uint32_t i = npages - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd(s) % (i + 1)), t = pages[i];

		pages[i] = pages[j];
		pages[j] = t;
	}
	while (done < len) {
		uint32_t in = (uint32_t)(rnd(s) % 64) * 16 + (uint32_t)(rnd(s) % 3);
		uint32_t room = PAGE - in;
		uint32_t take = room / 2 + 1 + (uint32_t)(rnd(s) % (room / 2));

		if (take > len - done)
			take = (uint32_t)(len - done);
		T_ASSERT(n < max && (uint32_t)n < npages);
		p[n].e = (struct dm_unpack_entry){ .src_off = pages[n] * PAGE + in, .len = take,
						   .dst_off = done };
		p[n].ref = ((uint64_t)n << 8) | (seed & 0xff);
		t_pattern_fill(seed, done, pool + p[n].e.src_off, take);
		done += take;
		n++;
	}
	/* the order pieces arrive in is not the order they land in */
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(rnd(s) % (uint64_t)(i + 1));
		struct piece t = p[i];

		p[i] = p[j];
		p[j] = t;
	}
	return n;
}

static void fresh_handle(void)
{
	struct dm_devq *q;
	ncclNetUnpackHandle_t *h;

	T_ASSERT_OK(dm_devq_create((uint64_t)(uintptr_t)pool, NULL, &q));
	h = dm_devq_host_handle(q);
	/* without CUDA the device view is the host view */
	T_ASSERT(dm_devq_dev_handle(q) == (void *)h);
	T_ASSERT_EQ(UINT64_MAX, h->head);
	T_ASSERT(h->bounce_buf == pool);
	T_ASSERT(h->meta != NULL);
	T_ASSERT_EQ(0, ((uintptr_t)h->meta) % 16);
	T_ASSERT_EQ(0, dm_devq_busy(q));
	dm_devq_free(q);
	dm_devq_free(NULL);
}

/* Many receives, consumption lagging up to 15 behind; pieces single-threaded. */
static void round_trip(void)
{
	static struct piece p[DM_DEVQ_MAX_ENTRIES];
	static char dst[DM_DEVQ_DEPTH][256 << 10];
	size_t len[DM_DEVQ_DEPTH];
	struct h_unpack_step st;
	uint64_t s = 0x9e3779b97f4a7c15ull;
	int64_t posted = 0, consumed = 0;
	struct dm_devq *q;

	T_ASSERT_OK(dm_devq_create((uint64_t)(uintptr_t)pool, NULL, &q));
	while (consumed < 200) {
		/* post and fill while slots are free, up to 200 receives */
		while (posted < 200 && posted - consumed < DM_DEVQ_DEPTH) {
			int64_t seq = dm_devq_take(q);
			size_t l = rnd(&s) % 3 == 0 ? 0 : rnd(&s) % sizeof(dst[0]);
			int n;

			T_ASSERT_EQ(posted, seq);
			n = scatter(&s, (uint64_t)seq, l, (size_t)(seq % DM_DEVQ_DEPTH) * REGION,
				    REGION, p, DM_DEVQ_MAX_ENTRIES);
			for (int i = 0; i < n; i++)
				T_ASSERT_OK(dm_devq_add(q, seq, &p[i].e, p[i].ref));
			T_ASSERT_EQ((uint32_t)n, dm_devq_publish(q, seq, NULL));
			len[seq % DM_DEVQ_DEPTH] = l;
			posted++;
		}
		/* consume the oldest like the kernel, check, then give the slot back */
		{
			char *d = dst[consumed % DM_DEVQ_DEPTH];
			size_t l = len[consumed % DM_DEVQ_DEPTH];
			long bad;

			memset(d, 0xee, sizeof(dst[0]));
			T_ASSERT_OK(h_unpack_consume(dm_devq_host_handle(q), d, l, POOL, &st));
			T_ASSERT_EQ((uint64_t)consumed, st.head);
			T_ASSERT_EQ((uint64_t)consumed % 16, st.slot);
			T_ASSERT_EQ(l, st.bytes);
			bad = t_pattern_check((uint64_t)consumed, 0, d, l);
			if (bad >= 0)
				T_FAIL("receive %lld: byte %ld of %zu wrong", (long long)consumed, bad, l);
			if (l < sizeof(dst[0]))
				T_ASSERT_EQ(0xee, (unsigned char)d[l]);
			dm_devq_release(q, consumed);
			consumed++;
		}
	}
	T_ASSERT_EQ(0, dm_devq_busy(q));
	dm_devq_free(q);
	t_log("round trip: 200 receives through 16 slots, byte-exact");
}

/* The 17th receive waits for the 1st to be consumed. */
static void slot_reuse(void)
{
	struct dm_unpack_entry e = { .src_off = 0, .len = 1, .dst_off = 0 };
	struct dm_devq *q;

	T_ASSERT_OK(dm_devq_create(0, NULL, &q));
	for (int64_t i = 0; i < DM_DEVQ_DEPTH; i++)
		T_ASSERT_EQ(i, dm_devq_take(q));
	T_ASSERT_EQ(-EBUSY, dm_devq_take(q));
	T_ASSERT_EQ(DM_DEVQ_DEPTH, dm_devq_busy(q));
	/* releasing out of order frees only that slot */
	dm_devq_publish(q, 3, NULL);
	dm_devq_release(q, 3);
	T_ASSERT_EQ(-EBUSY, dm_devq_take(q));
	dm_devq_publish(q, 0, NULL);
	dm_devq_release(q, 0);
	T_ASSERT_EQ(16, dm_devq_take(q));
	/* a stale or foreign sequence number is refused, not written */
	T_ASSERT_EQ(-EINVAL, dm_devq_add(q, 0, &e, 0));
	T_ASSERT_EQ(-EINVAL, dm_devq_add(q, 3, &e, 0));
	T_ASSERT_EQ(-EINVAL, dm_devq_add(q, 40, &e, 0));
	T_ASSERT_EQ(-EINVAL, dm_devq_add(q, -1, &e, 0));
	/* published is final */
	dm_devq_publish(q, 16, NULL);
	T_ASSERT_EQ(-EINVAL, dm_devq_add(q, 16, &e, 0));
	dm_devq_free(q);
}

/* 2048 entries are NCCL's limit per receive; one more is the caller's to copy. */
static void overflow(void)
{
	static char dst[2 * DM_DEVQ_MAX_ENTRIES];
	struct h_unpack_step st;
	uint32_t over = 0, n;
	const uint64_t *refs;
	struct dm_devq *q;
	int64_t seq;

	T_ASSERT_OK(dm_devq_create((uint64_t)(uintptr_t)pool, NULL, &q));
	seq = dm_devq_take(q);
	for (uint32_t i = 0; i < DM_DEVQ_MAX_ENTRIES + 5; i++) {
		struct dm_unpack_entry e = { .src_off = i, .len = 1, .dst_off = i };

		pool[i] = (char)(i * 7);
		T_ASSERT_EQ(i < DM_DEVQ_MAX_ENTRIES ? 0 : -ENOSPC, dm_devq_add(q, seq, &e, i + 100));
	}
	T_ASSERT_EQ(DM_DEVQ_MAX_ENTRIES, dm_devq_publish(q, seq, &over));
	T_ASSERT_EQ(5, over);
	refs = dm_devq_refs(q, seq, &n);
	T_ASSERT_EQ(DM_DEVQ_MAX_ENTRIES, n);
	for (uint32_t i = 0; i < n; i++)
		T_ASSERT_EQ(i + 100, refs[i]);
	memset(dst, 0, sizeof(dst));
	T_ASSERT_OK(h_unpack_consume(dm_devq_host_handle(q), dst, sizeof(dst), POOL, &st));
	T_ASSERT_EQ(DM_DEVQ_MAX_ENTRIES, st.cnt);
	for (uint32_t i = 0; i < DM_DEVQ_MAX_ENTRIES + 5; i++)
		T_ASSERT_EQ(i < DM_DEVQ_MAX_ENTRIES ? (char)(i * 7) : 0, dst[i]);
	dm_devq_release(q, seq);
	dm_devq_free(q);
}

/* The consumer refuses entries past the buffer instead of writing there. */
static void consumer_bounds(void)
{
	struct dm_unpack_entry e = { .src_off = 0, .len = 64, .dst_off = 4040 };
	char dst[4096];
	struct dm_devq *q;
	int64_t seq;

	T_ASSERT_OK(dm_devq_create((uint64_t)(uintptr_t)pool, NULL, &q));
	seq = dm_devq_take(q);
	T_ASSERT_OK(dm_devq_add(q, seq, &e, 0));
	dm_devq_publish(q, seq, NULL);
	T_ASSERT_EQ(-ERANGE, h_unpack_consume(dm_devq_host_handle(q), dst, sizeof(dst), POOL, NULL));
	/* nothing consumed: head did not move */
	T_ASSERT_EQ(UINT64_MAX, dm_devq_host_handle(q)->head);
	dm_devq_free(q);
}

/* Progress threads add pieces of one receive at once. */
struct adder {
	struct dm_devq *q;
	int64_t seq;
	const struct piece *p;
	int n;
};

static void *add_thread(void *arg)
{
	struct adder *a = arg;

	for (int i = 0; i < a->n; i++)
		if (dm_devq_add(a->q, a->seq, &a->p[i].e, a->p[i].ref))
			return (void *)1;
	return NULL;
}

static void threads(void)
{
	static struct piece p[DM_DEVQ_MAX_ENTRIES];
	static char dst[2 << 20];
	struct adder a[4];
	pthread_t th[4];
	uint64_t s = 12345;
	struct h_unpack_step st;
	const uint64_t *refs;
	struct dm_devq *q;
	uint32_t n;
	int64_t seq;
	int np;

	T_ASSERT_OK(dm_devq_create((uint64_t)(uintptr_t)pool, NULL, &q));
	seq = dm_devq_take(q);
	np = scatter(&s, 77, 2 << 20, 0, POOL, p, DM_DEVQ_MAX_ENTRIES);
	for (int t = 0; t < 4; t++) {
		a[t] = (struct adder){ .q = q, .seq = seq, .p = p + t * np / 4,
				       .n = (t + 1) * np / 4 - t * np / 4 };
		T_ASSERT_EQ(0, pthread_create(&th[t], NULL, add_thread, &a[t]));
	}
	for (int t = 0; t < 4; t++) {
		void *r;

		T_ASSERT_EQ(0, pthread_join(th[t], &r));
		T_ASSERT(r == NULL);
	}
	T_ASSERT_EQ((uint32_t)np, dm_devq_publish(q, seq, NULL));
	/* every ref exactly once */
	refs = dm_devq_refs(q, seq, &n);
	T_ASSERT_EQ((uint32_t)np, n);
	{
		static unsigned char seen[DM_DEVQ_MAX_ENTRIES];

		memset(seen, 0, sizeof(seen));
		for (uint32_t i = 0; i < n; i++) {
			uint64_t k = refs[i] >> 8;

			T_ASSERT(k < (uint64_t)np && !seen[k]);
			seen[k] = 1;
		}
	}
	T_ASSERT_OK(h_unpack_consume(dm_devq_host_handle(q), dst, 2 << 20, POOL, &st));
	T_ASSERT_EQ((uint64_t)(2 << 20), st.bytes);
	T_ASSERT_EQ(-1, t_pattern_check(77, 0, dst, 2 << 20));
	dm_devq_free(q);
	t_log("threads: %d pieces of a 2 MiB receive from 4 threads", np);
}

int main(void)
{
	pool = aligned_alloc(PAGE, POOL);
	T_ASSERT(pool != NULL);
	fresh_handle();
	round_trip();
	slot_reuse();
	overflow();
	consumer_bounds();
	threads();
	free(pool);
	t_log("PASS devq");
	return T_EXIT_PASS;
}
