// SPDX-License-Identifier: MIT
/* gpudd's queue pool and RSS table (see gpudd_pool.h). */
#include "gpudd_pool.h"

#include <errno.h>
#include <string.h>

int gpudd_pool_init(struct gpudd_pool *p, unsigned int nrxq, unsigned int first,
		    unsigned int last)
{
	if (nrxq > GPUDD_MAX_QUEUES || first < 1 || first > last || last >= nrxq)
		return -ERANGE;
	memset(p, 0, sizeof(*p));
	p->nrxq = nrxq;
	p->first = first;
	p->last = last;
	return 0;
}

int gpudd_pool_alloc_n(struct gpudd_pool *p, uint64_t conn, pid_t pid, unsigned int n,
		       unsigned int *out)
{
	unsigned int got = 0;

	if (!n || !conn)
		return -EINVAL;
	for (unsigned int q = p->last + 1; q-- > p->first && got < n;)
		if (!p->conn[q])
			out[got++] = q;
	if (got < n)
		return -EBUSY;
	for (unsigned int i = 0; i < n; i++) {
		p->conn[out[i]] = conn;
		p->pid[out[i]] = pid;
	}
	return 0;
}

int gpudd_pool_alloc_rank(struct gpudd_pool *p, uint64_t conn, pid_t pid, unsigned int rank,
			  unsigned int *out)
{
	unsigned int q;

	if (!conn)
		return -EINVAL;
	if (rank > p->last - p->first)
		return -ERANGE;
	q = p->last - rank;
	if (p->conn[q] && p->pid[q] != pid)
		return -EEXIST;
	if (!p->conn[q]) {
		p->conn[q] = conn;
		p->pid[q] = pid;
	}
	*out = q;
	return 0;
}

int gpudd_pool_alloc_list(struct gpudd_pool *p, uint64_t conn, pid_t pid,
			  const unsigned int *q, size_t n, unsigned int *bad)
{
	if (!conn || !n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		*bad = q[i];
		if (q[i] < p->first || q[i] > p->last)
			return -ERANGE;
		if (p->conn[q[i]] && p->pid[q[i]] != pid)
			return -EEXIST;
		for (size_t j = 0; j < i; j++)
			if (q[j] == q[i])
				return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!p->conn[q[i]]) {
			p->conn[q[i]] = conn;
			p->pid[q[i]] = pid;
		}
	}
	return 0;
}

bool gpudd_pool_held_by(const struct gpudd_pool *p, pid_t pid, unsigned int q)
{
	return q < p->nrxq && p->conn[q] && p->pid[q] == pid;
}

int gpudd_pool_free(struct gpudd_pool *p, uint64_t conn, unsigned int q)
{
	if (q >= p->nrxq || !conn || p->conn[q] != conn)
		return -ENOENT;
	p->conn[q] = 0;
	p->pid[q] = 0;
	return 0;
}

unsigned int gpudd_pool_release(struct gpudd_pool *p, uint64_t conn)
{
	unsigned int n = 0;

	for (unsigned int q = 0; q < p->nrxq; q++) {
		if (conn && p->conn[q] == conn) {
			p->conn[q] = 0;
			p->pid[q] = 0;
			n++;
		}
	}
	return n;
}

unsigned int gpudd_pool_nheld(const struct gpudd_pool *p)
{
	unsigned int n = 0;

	for (unsigned int q = 0; q < p->nrxq; q++)
		n += !!p->conn[q];
	return n;
}

int gpudd_rss_table(const struct gpudd_pool *p, uint32_t *table, uint32_t size)
{
	unsigned int spread[GPUDD_MAX_QUEUES], n = 0;

	if (!size)
		return -EINVAL;
	for (unsigned int q = 0; q < p->nrxq; q++)
		if (!p->conn[q])
			spread[n++] = q;
	if (!n)
		return -ENOSPC;
	for (uint32_t i = 0; i < size; i++)
		table[i] = spread[i % n];
	return (int)n;
}
