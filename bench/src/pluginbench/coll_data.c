// SPDX-License-Identifier: MIT
/*
 * The collectives' buffers as nccl-tests sizes them, their inputs and the
 * check of every output element. Inputs are small integers hashed from
 * (rank, index), so a float sum of up to 8 of them is exact whatever the
 * order of the additions, and a slice reduced twice, not at all, from the
 * wrong rank or into the wrong place gives a different value.
 */
#include "coll.h"

#include <string.h>

static float value(int rank, size_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)(rank + 1) << 40);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (float)((int)(x % 255) - 127);
}

const char *pb_op_name(enum pb_op op)
{
	switch (op) {
	case PB_OP_ALLREDUCE:
		return "allreduce";
	case PB_OP_ALLGATHER:
		return "allgather";
	case PB_OP_REDUCESCATTER:
		return "reducescatter";
	case PB_OP_SENDRECV:
		return "sendrecv";
	default:
		return "none";
	}
}

double pb_busbw_factor(enum pb_op op, int n)
{
	switch (op) {
	case PB_OP_ALLREDUCE:
		return 2.0 * (n - 1) / n;
	case PB_OP_ALLGATHER:
	case PB_OP_REDUCESCATTER:
		return (double)(n - 1) / n;
	default:
		return 1;
	}
}

/*
 * nccl-tests: the size S is the whole array; all-gather and reduce-scatter
 * move S / N per rank (count = S / (4 N), rounded down as nccl-tests does).
 */
void pb_coll_sizes(enum pb_op op, int nranks, uint64_t bytes, struct pb_coll *c)
{
	c->op = op;
	c->nranks = nranks;
	switch (op) {
	case PB_OP_ALLGATHER:
		c->count = bytes / 4 / (uint64_t)nranks;
		c->in_count = c->count;
		c->out_count = c->count * (size_t)nranks;
		break;
	case PB_OP_REDUCESCATTER:
		c->count = bytes / 4 / (uint64_t)nranks;
		c->in_count = c->count * (size_t)nranks;
		c->out_count = c->count;
		break;
	default:
		c->count = bytes / 4;
		c->in_count = c->out_count = c->count;
		break;
	}
}

void pb_coll_fill(const struct pb_coll *c)
{
	for (size_t i = 0; i < c->in_count; i++)
		c->in[i] = value(c->rank, i);
	/* 0xff..: NaN, which no sum of the inputs is */
	memset(c->out, 0xff, c->out_count * 4);
}

static float expected(const struct pb_coll *c, size_t i)
{
	int n = c->nranks;
	float s = 0;

	switch (c->op) {
	case PB_OP_ALLREDUCE:
		for (int r = 0; r < n; r++)
			s += value(r, i);
		return s;
	case PB_OP_REDUCESCATTER:
		for (int r = 0; r < n; r++)
			s += value(r, (size_t)c->rank * c->count + i);
		return s;
	case PB_OP_ALLGATHER:
		return value((int)(i / c->count), i % c->count);
	case PB_OP_SENDRECV:
		return value((c->rank + n - 1) % n, i);
	default:
		return 0;
	}
}

long pb_coll_check(const struct pb_coll *c, float *want, float *got)
{
	for (size_t i = 0; i < c->out_count; i++) {
		float w = expected(c, i);

		/* bitwise: NaN (never written) must not compare as anything */
		if (memcmp(&w, &c->out[i], sizeof(w))) {
			*want = w;
			*got = c->out[i];
			return (long)i;
		}
	}
	return -1;
}
