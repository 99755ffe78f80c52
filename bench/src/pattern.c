// SPDX-License-Identifier: MIT
/*
 * Deterministic per-flow payload. The sender sends straight out of the
 * precomputed buffer, so validation costs the sender nothing per byte; the
 * receiver compares with memcmp and only goes byte by byte to name the first
 * bad offset.
 */
#include "rxbench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A prime near 1 MiB: not a multiple of any page, chunk or fragment size. */
#define RXB_PATTERN_PERIOD 1048573u

static uint64_t splitmix(uint64_t seed, uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ULL + seed;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 32;
	return x;
}

int rxb_pattern_init(struct rxb_pattern *p, uint64_t seed, size_t max_len)
{
	size_t len = RXB_PATTERN_PERIOD + max_len;
	uint8_t *buf;

	buf = malloc(len + 8);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < RXB_PATTERN_PERIOD; i += 8) {
		uint64_t w = splitmix(seed, i / 8);

		memcpy(buf + i, &w, 8);
	}
	/* The tail repeats the head so any run of max_len bytes is contiguous. */
	for (size_t i = RXB_PATTERN_PERIOD; i < len; i++)
		buf[i] = buf[i - RXB_PATTERN_PERIOD];
	p->buf = buf;
	p->period = RXB_PATTERN_PERIOD;
	p->max_len = max_len;
	return 0;
}

void rxb_pattern_free(struct rxb_pattern *p)
{
	free(p->buf);
	p->buf = NULL;
}

long rxb_pattern_check(const struct rxb_pattern *p, uint64_t off, const void *data, size_t len)
{
	const uint8_t *d = data;
	size_t done = 0;

	while (done < len) {
		size_t n = len - done;
		const uint8_t *want;

		if (n > p->max_len)
			n = p->max_len;
		want = rxb_pattern_at(p, off + done);
		if (memcmp(want, d + done, n)) {
			for (size_t i = 0; i < n; i++)
				if (want[i] != d[done + i])
					return (long)(done + i);
		}
		done += n;
	}
	return -1;
}
