// SPDX-License-Identifier: MIT
/*
 * Fragment-size histogram in powers of two. Fragment sizes tell whether the
 * NIC (or the copy path) hands out pages, whole GRO segments or small
 * remnants, which is what decides token and per-fragment costs.
 */
#include "rxbench.h"

#include <string.h>

void rxb_hist_init(struct rxb_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned int rxb_hist_bucket(uint64_t v)
{
	unsigned int b;

	if (v < 2)
		return 0;
	b = 63 - (unsigned int)__builtin_clzll(v);
	return b < RXB_HIST_BUCKETS ? b : RXB_HIST_BUCKETS - 1;
}

void rxb_hist_add(struct rxb_hist *h, uint64_t v)
{
	h->count[rxb_hist_bucket(v)]++;
	h->n++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void rxb_hist_merge(struct rxb_hist *dst, const struct rxb_hist *src)
{
	for (int i = 0; i < RXB_HIST_BUCKETS; i++)
		dst->count[i] += src->count[i];
	dst->n += src->n;
	dst->sum += src->sum;
	if (src->n && src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* [{"min":4096,"max":8191,"count":12}, ...] for non-empty buckets only. */
void rxb_json_hist(struct bench_json *j, const char *key, const struct rxb_hist *h)
{
	bench_json_arr_begin(j, key);
	for (int i = 0; i < RXB_HIST_BUCKETS; i++) {
		uint64_t lo = i ? 1ull << i : 0;
		uint64_t hi = (2ull << i) - 1;

		if (!h->count[i])
			continue;
		bench_json_obj_begin(j, NULL);
		bench_json_u64(j, "min", lo);
		bench_json_u64(j, "max", hi);
		bench_json_u64(j, "count", h->count[i]);
		bench_json_obj_end(j);
	}
	bench_json_arr_end(j);
}
