// SPDX-License-Identifier: MIT
/*
 * The copy target as a ring. Regions are handed out in stream order at the
 * head and may be released in any order; space is reclaimed from the tail
 * as soon as the oldest regions are released. A region never wraps: when the
 * end of the ring has less room than its start, the head jumps to 0 and the
 * gap at the end is reclaimed together with the region before it. Tokens
 * are region sequence numbers (u32, wrapping), so checking one is a range
 * test plus a state byte.
 */
#include "rx_internal.h"

#include <stdlib.h>
#include <string.h>

enum { GPUD_RING_OUT = 0, GPUD_RING_PENDING = 1, GPUD_RING_FREE = 2 };

int gpud_ring_init(struct gpud_ring *r, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->qcap = 256;
	r->q = calloc(r->qcap, sizeof(*r->q));
	if (!r->q)
		return -ENOMEM;
	r->size = size;
	return 0;
}

void gpud_ring_fini(struct gpud_ring *r)
{
	free(r->q);
	r->q = NULL;
}

static struct gpud_ring_region *slot(const struct gpud_ring *r, uint32_t seq)
{
	return &r->q[seq & (r->qcap - 1)];
}

uint64_t gpud_ring_prepare(struct gpud_ring *r, uint64_t want)
{
	uint64_t tail, room;

	if (!gpud_ring_outstanding(r)) {
		r->head = 0;	/* empty: the whole ring, from the start */
		room = r->size;
	} else {
		tail = slot(r, r->seq_tail)->off;
		if (r->head > tail) {
			/* Not wrapped: room at the end, or at the start. */
			room = r->size - r->head;
			if (tail > room) {
				r->head = 0;
				room = tail;
			}
		} else {
			room = tail - r->head;	/* wrapped: up to the tail */
		}
	}
	return room < want ? room : want;
}

static int grow_queue(struct gpud_ring *r)
{
	uint32_t n = gpud_ring_outstanding(r), ncap = r->qcap * 2;
	struct gpud_ring_region *nq;

	if (!ncap)
		return -ENOMEM;
	nq = calloc(ncap, sizeof(*nq));
	if (!nq)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		nq[(r->seq_tail + i) & (ncap - 1)] = *slot(r, r->seq_tail + i);
	free(r->q);
	r->q = nq;
	r->qcap = ncap;
	return 0;
}

int gpud_ring_push(struct gpud_ring *r, uint32_t len, uint64_t *off, uint32_t *token)
{
	struct gpud_ring_region *s;
	int err;

	if (!len || r->head + len > r->size)
		return -EINVAL;
	if (gpud_ring_outstanding(r) == r->qcap) {
		err = grow_queue(r);
		if (err)
			return err;
	}
	s = slot(r, r->seq_head);
	s->off = r->head;
	s->len = len;
	s->state = GPUD_RING_OUT;
	*off = r->head;
	*token = r->seq_head++;
	r->nout++;
	r->head += len;
	r->used += len;
	return 0;
}

static bool valid(const struct gpud_ring *r, uint32_t token)
{
	return (uint32_t)(token - r->seq_tail) < gpud_ring_outstanding(r) &&
	       slot(r, token)->state == GPUD_RING_OUT;
}

int gpud_ring_release(struct gpud_ring *r, const uint32_t *tokens, size_t n)
{
	size_t i;

	/* Mark first, so that a bad entry (or a duplicate) frees nothing. */
	for (i = 0; i < n; i++) {
		if (!valid(r, tokens[i]))
			break;
		slot(r, tokens[i])->state = GPUD_RING_PENDING;
	}
	if (i < n) {
		uint32_t bad = tokens[i];

		while (i--)
			slot(r, tokens[i])->state = GPUD_RING_OUT;
		return gpud_err(-EINVAL,
				"copy fragment token %u is not outstanding: released twice, or not from this gpud_rx",
				bad);
	}
	for (i = 0; i < n; i++) {
		slot(r, tokens[i])->state = GPUD_RING_FREE;
		r->used -= slot(r, tokens[i])->len;
	}
	r->nout -= (uint32_t)n;
	while (gpud_ring_outstanding(r) && slot(r, r->seq_tail)->state == GPUD_RING_FREE)
		r->seq_tail++;
	return 0;
}
