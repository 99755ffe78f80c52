/* SPDX-License-Identifier: MIT */
/*
 * gpudd's queue pool and RSS table: pure functions over one interface's
 * queue ownership, unit-tested without a NIC.
 *
 * A queue is owned by one client connection (its id) of one process (its
 * pid). Permission is by process, release by connection: a process may use
 * a queue any of its connections holds (a library binding and a gpud_nic
 * are separate connections), and a queue is freed when the connection that
 * took it closes.
 */
#ifndef GPUDD_POOL_H
#define GPUDD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GPUDD_MAX_QUEUES 256

struct gpudd_pool {
	unsigned int nrxq;		/* RX queues the device has */
	unsigned int first, last;	/* the pool: queues first..last, inclusive */
	uint64_t conn[GPUDD_MAX_QUEUES];	/* owning connection, 0 = free */
	pid_t pid[GPUDD_MAX_QUEUES];
};

/*
 * A pool of queues @first..@last of @nrxq. -ERANGE unless
 * 1 <= first <= last < nrxq <= GPUDD_MAX_QUEUES: queue 0 never leaves RSS,
 * so plain traffic always has somewhere to go.
 */
int gpudd_pool_init(struct gpudd_pool *p, unsigned int nrxq, unsigned int first,
		    unsigned int last);

/* @n free queues, highest first, into @out; -EBUSY (nothing taken) when fewer are free. */
int gpudd_pool_alloc_n(struct gpudd_pool *p, uint64_t conn, pid_t pid, unsigned int n,
		       unsigned int *out);
/*
 * The queue for local rank @rank: last - rank, so ranks of one node get
 * distinct queues without talking to each other. -ERANGE when the pool has
 * no rank @rank, -EEXIST when another process holds it. *out = the queue.
 */
int gpudd_pool_alloc_rank(struct gpudd_pool *p, uint64_t conn, pid_t pid, unsigned int rank,
			  unsigned int *out);
/*
 * Exactly these queues (all or none): each in the pool (-ERANGE, *bad =
 * the queue), free or already held by @pid (-EEXIST otherwise). Queues
 * @pid holds already stay with the connection that holds them.
 */
int gpudd_pool_alloc_list(struct gpudd_pool *p, uint64_t conn, pid_t pid,
			  const unsigned int *q, size_t n, unsigned int *bad);
/* Whether @pid holds queue @q (through any of its connections). */
bool gpudd_pool_held_by(const struct gpudd_pool *p, pid_t pid, unsigned int q);
/* Frees @q held by @conn: 0, -ENOENT when @conn does not hold it. */
int gpudd_pool_free(struct gpudd_pool *p, uint64_t conn, unsigned int q);
/* Frees everything @conn holds; returns how many. */
unsigned int gpudd_pool_release(struct gpudd_pool *p, uint64_t conn);
unsigned int gpudd_pool_nheld(const struct gpudd_pool *p);

/*
 * RSS indirection table of @size entries spreading over every queue below
 * nrxq that no connection holds, round robin. Returns the number of queues
 * it spreads over, or -ENOSPC when every queue is held (never happens for a
 * pool made by gpudd_pool_init: queue 0 stays out), -EINVAL for size 0.
 */
int gpudd_rss_table(const struct gpudd_pool *p, uint32_t *table, uint32_t size);

#endif /* GPUDD_POOL_H */
