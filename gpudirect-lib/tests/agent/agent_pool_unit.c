// SPDX-License-Identifier: MIT
/*
 * gpudd's queue allocator and RSS recomputation: distinct processes get
 * distinct queues, ranks map to fixed queues, release is per connection,
 * and the RSS table never names a held queue (checked after every step).
 */
#include "gpud_test.h"
#include "gpudd_pool.h"

#include <errno.h>

static void check_rss(const struct gpudd_pool *p, uint32_t size)
{
	uint32_t t[512];
	bool seen[GPUDD_MAX_QUEUES] = { false };
	int n = gpudd_rss_table(p, t, size);

	T_ASSERT(n > 0);
	for (uint32_t i = 0; i < size; i++) {
		if (t[i] >= p->nrxq)
			T_FAIL("RSS entry %u is queue %u, device has %u", i, t[i], p->nrxq);
		if (p->conn[t[i]])
			T_FAIL("RSS entry %u spreads to held queue %u", i, t[i]);
		seen[t[i]] = true;
	}
	/* Every free queue gets traffic (the table is larger than the queue count). */
	for (unsigned int q = 0; q < p->nrxq; q++)
		if (!p->conn[q] && !seen[q] && size >= p->nrxq)
			T_FAIL("free queue %u gets no RSS traffic", q);
	T_ASSERT_EQ(p->nrxq - gpudd_pool_nheld(p), n);
}

int main(void)
{
	struct gpudd_pool p;
	unsigned int q[8], bad = 0;

	T_ASSERT_EQ(-ERANGE, gpudd_pool_init(&p, 8, 0, 7));	/* queue 0 is RSS's */
	T_ASSERT_EQ(-ERANGE, gpudd_pool_init(&p, 8, 1, 8));
	T_ASSERT_EQ(-ERANGE, gpudd_pool_init(&p, 1, 1, 1));
	T_ASSERT_OK(gpudd_pool_init(&p, 8, 1, 7));
	check_rss(&p, 128);

	/* Four "ranks", four processes: queues 7, 6, 5, 4. */
	for (unsigned int r = 0; r < 4; r++) {
		T_ASSERT_OK(gpudd_pool_alloc_rank(&p, 10 + r, 100 + (pid_t)r, r, &q[r]));
		T_ASSERT_EQ(7 - r, q[r]);
		check_rss(&p, 128);
	}
	/* Rank 1 again from another process: taken. Same process: same queue. */
	T_ASSERT_EQ(-EEXIST, gpudd_pool_alloc_rank(&p, 99, 999, 1, &q[0]));
	T_ASSERT_OK(gpudd_pool_alloc_rank(&p, 55, 101, 1, &q[0]));
	T_ASSERT_EQ(6, q[0]);
	T_ASSERT_EQ(11, p.conn[6]);	/* still the connection that took it */
	T_ASSERT_EQ(-ERANGE, gpudd_pool_alloc_rank(&p, 99, 999, 7, &q[0]));

	/* n queues: the highest free ones, all or nothing. */
	T_ASSERT_OK(gpudd_pool_alloc_n(&p, 20, 200, 2, q));
	T_ASSERT_EQ(3, q[0]);
	T_ASSERT_EQ(2, q[1]);
	check_rss(&p, 128);
	T_ASSERT_EQ(-EBUSY, gpudd_pool_alloc_n(&p, 21, 201, 2, q));
	T_ASSERT_EQ(6, gpudd_pool_nheld(&p));	/* nothing half-taken */

	/* A list: out of the pool, held by another, duplicate. */
	T_ASSERT_EQ(-ERANGE, gpudd_pool_alloc_list(&p, 30, 300, (unsigned int[]){ 0 }, 1, &bad));
	T_ASSERT_EQ(0, bad);
	T_ASSERT_EQ(-EEXIST, gpudd_pool_alloc_list(&p, 30, 300, (unsigned int[]){ 1, 4 }, 2,
						   &bad));
	T_ASSERT_EQ(4, bad);
	T_ASSERT_EQ(0, p.conn[1]);	/* all or nothing */
	T_ASSERT_EQ(-EINVAL, gpudd_pool_alloc_list(&p, 30, 300, (unsigned int[]){ 1, 1 }, 2,
						   &bad));
	T_ASSERT_OK(gpudd_pool_alloc_list(&p, 30, 300, (unsigned int[]){ 1 }, 1, &bad));
	T_ASSERT(gpudd_pool_held_by(&p, 300, 1));
	T_ASSERT(!gpudd_pool_held_by(&p, 301, 1));
	check_rss(&p, 128);
	/* Everything held but queue 0: RSS still has queue 0. */
	T_ASSERT_EQ(1, gpudd_rss_table(&p, q, 8));
	T_ASSERT_EQ(0, q[5]);

	/* Release is per connection; freeing what another holds is refused. */
	T_ASSERT_EQ(-ENOENT, gpudd_pool_free(&p, 20, 7));
	T_ASSERT_OK(gpudd_pool_free(&p, 20, 3));
	T_ASSERT_EQ(1, gpudd_pool_release(&p, 20));
	T_ASSERT_EQ(0, gpudd_pool_release(&p, 20));
	T_ASSERT_EQ(1, gpudd_pool_release(&p, 12));
	T_ASSERT_EQ(0, p.conn[5]);
	check_rss(&p, 128);
	/* A tiny table still never names a held queue. */
	check_rss(&p, 3);
	T_ASSERT_EQ(-EINVAL, gpudd_rss_table(&p, q, 0));
	printf("agent_pool_unit: ok\n");
	return T_EXIT_PASS;
}
