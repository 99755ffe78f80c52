// SPDX-License-Identifier: MIT
/*
 * NCCL's ring algorithm, as its proxy and kernel split the work: each
 * channel owns a contiguous part of the data and a FIFO of PB_FIFO_STEPS
 * slots per direction (4 MiB in 512 KiB slices; p2p in 128 KiB chunks).
 * The proxy keeps up to 8 receives posted; the "kernel" (the CPU here) takes
 * each completed slice in order, adds this rank's input (reduce, float sum)
 * and/or writes the output, and puts the result into the next send slot,
 * which the proxy then isends to the next rank.
 *
 * A plan is two in-order lists per channel: the slices this rank receives
 * and the slices it sends. A received slice may feed a send (the next ring
 * step of the same data); a send that no receive feeds starts from the
 * input. Allreduce is 2(N-1) steps (reduce-scatter, then all-gather of the
 * reduced chunks), reduce-scatter and all-gather N-1 each; sendrecv sends
 * its input to rank + 1 and stores what rank - 1 sends.
 */
#include "coll.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

struct pb_rslice {
	uint32_t len;		/* bytes */
	int32_t feeds;		/* index of the send it fills, or -1 */
	bool reduce, store;	/* + in[in_off]; result -> out[out_off] */
	size_t in_off, out_off;	/* floats */
};

struct pb_sslice {
	uint32_t len;
	bool local;		/* from in[in_off], not from a receive */
	size_t in_off;
};

struct pb_chplan {
	struct pb_rslice *r;
	struct pb_sslice *s;
	uint32_t nr, ns, rcap, scap;
};

struct pb_plan {
	unsigned int nch;
	struct pb_chplan ch[PB_MAX_CHANNELS];
};

static int mod(int a, int n)
{
	return ((a % n) + n) % n;
}

/* Part @i of @n near-equal parts of @total: its offset and length. */
static void part(size_t total, unsigned int n, unsigned int i, size_t *off, size_t *len)
{
	size_t base = total / n, rem = total % n;

	*off = i * base + (i < rem ? i : rem);
	*len = base + (i < rem ? 1 : 0);
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
	void *q;

	if (need <= *cap)
		return 0;
	q = realloc(*p, (size_t)(need * 2 + 16) * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = need * 2 + 16;
	return 0;
}

/* Sends of one step: @len floats from in[@in_off], cut into slices. */
static int add_sends(struct pb_chplan *cp, size_t in_off, size_t len, bool local, size_t sfl)
{
	for (size_t o = 0; o < len; o += sfl) {
		if (grow((void **)&cp->s, &cp->scap, cp->ns + 1, sizeof(*cp->s)))
			return -ENOMEM;
		cp->s[cp->ns++] = (struct pb_sslice){
			.len = (uint32_t)((len - o < sfl ? len - o : sfl) * 4),
			.local = local, .in_off = in_off + o };
	}
	return 0;
}

/* Receives of one step; slice j feeds send @feed0 + j when @feed0 >= 0. */
static int add_recvs(struct pb_chplan *cp, size_t in_off, size_t out_off, size_t len, bool reduce,
		     bool store, int64_t feed0, size_t sfl)
{
	for (size_t o = 0, j = 0; o < len; o += sfl, j++) {
		if (grow((void **)&cp->r, &cp->rcap, cp->nr + 1, sizeof(*cp->r)))
			return -ENOMEM;
		cp->r[cp->nr++] = (struct pb_rslice){
			.len = (uint32_t)((len - o < sfl ? len - o : sfl) * 4),
			.feeds = feed0 < 0 ? -1 : (int32_t)(feed0 + (int64_t)j),
			.reduce = reduce, .store = store, .in_off = in_off + o, .out_off = out_off + o };
	}
	return 0;
}

/*
 * The ring steps g = 0 .. nsteps-1. At step g rank r sends chunk
 * (r - g - shift) and receives chunk (r - g - shift - 1), which it sends on
 * at step g + 1. @in_chunk/@out_chunk give a chunk's place in each buffer.
 */
struct ring_shape {
	int nsteps, shift;
	int reduce_until, store_from;	/* receive steps that reduce / store */
	size_t part_off, part_len;	/* this channel's share of a chunk */
	size_t chunk_stride;		/* in floats, 0: chunks split the part */
	bool in_chunked, out_chunked;	/* buffer holds all chunks, or only ours */
};

static void chunk_place(const struct ring_shape *sh, int nr, int k, size_t *off, size_t *len)
{
	if (sh->chunk_stride) {
		*off = (size_t)k * sh->chunk_stride + sh->part_off;
		*len = sh->part_len;
		return;
	}
	part(sh->part_len, (unsigned int)nr, (unsigned int)k, off, len);
	*off += sh->part_off;
}

static int plan_ring(struct pb_chplan *cp, const struct pb_coll *c, const struct ring_shape *sh,
		     size_t sfl)
{
	int n = c->nranks, r = c->rank;
	int64_t step_start[2 * PB_MAX_RANKS];
	size_t off, len;
	int err = 0;

	for (int g = 0; g < sh->nsteps && !err; g++) {
		int k = mod(r - g - sh->shift, n);

		step_start[g] = cp->ns;
		chunk_place(sh, n, k, &off, &len);
		/* only step 0 reads the input; an input of one chunk holds ours at 0 */
		if (!sh->in_chunked)
			off -= (size_t)k * sh->chunk_stride;
		err = add_sends(cp, off, len, g == 0, sfl);
	}
	for (int g = 0; g < sh->nsteps && !err; g++) {
		int k = mod(r - g - sh->shift - 1, n);
		size_t in_off, out_off;

		chunk_place(sh, n, k, &off, &len);
		in_off = off;
		out_off = sh->out_chunked ? off : off - (size_t)k * sh->chunk_stride;
		err = add_recvs(cp, in_off, out_off, len, g <= sh->reduce_until,
				g >= sh->store_from, g + 1 < sh->nsteps ? step_start[g + 1] : -1, sfl);
	}
	return err;
}

static int plan_channel(struct pb_chplan *cp, const struct pb_coll *c, unsigned int nch,
			unsigned int ch, size_t sfl)
{
	int n = c->nranks;
	struct ring_shape sh = { 0 };
	size_t off, len;

	switch (c->op) {
	case PB_OP_ALLREDUCE:
		part(c->count, nch, ch, &sh.part_off, &sh.part_len);
		sh = (struct ring_shape){ .nsteps = 2 * (n - 1), .shift = 0, .reduce_until = n - 2,
					  .store_from = n - 2, .part_off = sh.part_off,
					  .part_len = sh.part_len, .in_chunked = true,
					  .out_chunked = true };
		return plan_ring(cp, c, &sh, sfl);
	case PB_OP_REDUCESCATTER:
		/* in: N chunks of count; out: ours. Rank r ends with chunk r. */
		part(c->count, nch, ch, &off, &len);
		sh = (struct ring_shape){ .nsteps = n - 1, .shift = 1, .reduce_until = n - 2,
					  .store_from = n - 2, .part_off = off, .part_len = len,
					  .chunk_stride = c->count, .in_chunked = true,
					  .out_chunked = false };
		return plan_ring(cp, c, &sh, sfl);
	case PB_OP_ALLGATHER:
		/* in: our chunk; out: N chunks. Step 0 sends our own (chunk r). */
		part(c->count, nch, ch, &off, &len);
		sh = (struct ring_shape){ .nsteps = n - 1, .shift = 0, .reduce_until = -1,
					  .store_from = 0, .part_off = off, .part_len = len,
					  .chunk_stride = c->count, .in_chunked = false,
					  .out_chunked = true };
		return plan_ring(cp, c, &sh, sfl);
	case PB_OP_SENDRECV:
		part(c->count, nch, ch, &off, &len);
		if (add_sends(cp, off, len, true, sfl))
			return -ENOMEM;
		return add_recvs(cp, off, off, len, false, true, -1, sfl);
	default:
		return -EINVAL;
	}
}

struct pb_plan *pb_plan_build(const struct pb_coll *c, unsigned int nch, size_t slot_bytes)
{
	struct pb_plan *p = calloc(1, sizeof(*p));
	int err = 0;

	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->nch = nch;
	for (unsigned int ch = 0; ch < nch && !err; ch++)
		err = plan_channel(&p->ch[ch], c, nch, ch, slot_bytes / 4);
	if (err) {
		pb_plan_free(p);
		errno = -err;
		return NULL;
	}
	return p;
}

void pb_plan_free(struct pb_plan *p)
{
	if (!p)
		return;
	for (unsigned int ch = 0; ch < p->nch; ch++) {
		free(p->ch[ch].r);
		free(p->ch[ch].s);
	}
	free(p);
}

/* ---- running a plan ---------------------------------------------------- */

struct ch_run {
	uint32_t r_post, r_done, r_used;	/* receives posted, complete, consumed */
	uint32_t s_fill, s_post, s_done;	/* send slots filled, posted, complete */
	void *rreq[PB_FIFO_STEPS], *sreq[PB_FIFO_STEPS];
};

static void sum_into(float *dst, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = a[i] + b[i];
}

/* The kernel's part: one received slice into the output and/or a send slot. */
static void consume(const struct pb_coll *c, const struct pb_rslice *rs, const float *rbuf,
		    float *sbuf)
{
	size_t n = rs->len / 4;
	float *dst = rs->store ? c->out + rs->out_off : sbuf;

	if (rs->reduce)
		sum_into(dst, rbuf, c->in + rs->in_off, n);
	else
		memcpy(dst, rbuf, rs->len);
	if (rs->store && sbuf)
		memcpy(sbuf, dst, rs->len);
}

static uint8_t *slot(uint8_t *fifo, size_t slot_bytes, uint32_t i)
{
	return fifo + (size_t)(i % PB_FIFO_STEPS) * slot_bytes;
}

/* The proxy's side: posts requests @*posted .. @upto - 1 while the transport takes them. */
static int post_upto(struct pb_link *l, unsigned int ch, const struct pb_chplan *cp, bool tx,
		     uint32_t *posted, uint32_t upto, void **reqs, bool *moved)
{
	while (*posted < upto) {
		size_t len = tx ? cp->s[*posted].len : cp->r[*posted].len;
		int err = (tx ? l->ops->isend : l->ops->irecv)(l, ch, *posted % PB_FIFO_STEPS, len,
								 &reqs[*posted % PB_FIFO_STEPS]);

		if (err == -EAGAIN)
			break;
		if (err)
			return err;
		(*posted)++;
		*moved = true;
	}
	return 0;
}

/* Tests the oldest request in flight; NCCL's proxy completes steps in order too. */
static int test_oldest(struct pb_link *l, unsigned int ch, const struct pb_chplan *cp, bool tx,
		       uint32_t *done_n, uint32_t posted, void **reqs, bool *moved)
{
	int done = 0, err;
	size_t got = 0;

	if (*done_n == posted)
		return 0;
	err = l->ops->test(l, ch, reqs[*done_n % PB_FIFO_STEPS], &done, &got);
	if (err || !done)
		return err;
	if (!tx && got != cp->r[*done_n].len) {
		snprintf(l->err, sizeof(l->err), "channel %u: received %zu bytes, expected %u", ch,
			 got, cp->r[*done_n].len);
		return -EPROTO;
	}
	(*done_n)++;
	*moved = true;
	return 0;
}

/* The kernel's side: completed receives in order, each into the next send slot. */
static void kernel(struct pb_link *l, unsigned int ch, const struct pb_chplan *cp,
		   const struct pb_coll *c, struct ch_run *st, bool *moved)
{
	while (st->r_used < st->r_done) {
		const struct pb_rslice *rs = &cp->r[st->r_used];
		uint8_t *sbuf = NULL;

		if (rs->feeds >= 0) {
			if ((uint32_t)rs->feeds != st->s_fill ||
			    st->s_fill - st->s_done >= PB_FIFO_STEPS)
				break;
			sbuf = slot(l->sfifo[ch], l->slot_bytes, st->s_fill);
		}
		consume(c, rs, (const float *)slot(l->rfifo[ch], l->slot_bytes, st->r_used),
			(float *)sbuf);
		if (sbuf)
			st->s_fill++;
		st->r_used++;
		*moved = true;
	}
	while (st->s_fill < cp->ns && cp->s[st->s_fill].local &&
	       st->s_fill - st->s_done < PB_FIFO_STEPS) {
		memcpy(slot(l->sfifo[ch], l->slot_bytes, st->s_fill), c->in + cp->s[st->s_fill].in_off,
		       cp->s[st->s_fill].len);
		st->s_fill++;
		*moved = true;
	}
}

/* One pass over a channel; *moved is set when anything advanced. */
static int ch_pass(struct pb_link *l, unsigned int ch, const struct pb_chplan *cp,
		   const struct pb_coll *c, struct ch_run *st, bool *moved)
{
	uint32_t rmax = st->r_used + PB_FIFO_STEPS < cp->nr ? st->r_used + PB_FIFO_STEPS : cp->nr;
	int err;

	/* receives first: a posted receive lets the sender's slice flow */
	err = post_upto(l, ch, cp, false, &st->r_post, rmax, st->rreq, moved);
	if (!err)
		err = test_oldest(l, ch, cp, false, &st->r_done, st->r_post, st->rreq, moved);
	if (err)
		return err;
	kernel(l, ch, cp, c, st, moved);
	err = post_upto(l, ch, cp, true, &st->s_post, st->s_fill, st->sreq, moved);
	if (!err)
		err = test_oldest(l, ch, cp, true, &st->s_done, st->s_post, st->sreq, moved);
	return err;
}

int pb_ring_run(struct pb_link *l, const struct pb_plan *p, const struct pb_coll *c)
{
	struct ch_run st[PB_MAX_CHANNELS] = { 0 };
	double end = pb_now() + PB_TIMEOUT_S;
	unsigned int spin = 0;
	bool busy = true;

	/* all-gather's own chunk: the kernel copies it in place */
	if (c->op == PB_OP_ALLGATHER)
		memcpy(c->out + (size_t)c->rank * c->count, c->in, c->count * 4);
	while (busy) {
		bool moved = false;
		int err;

		busy = false;
		for (unsigned int ch = 0; ch < p->nch; ch++) {
			const struct pb_chplan *cp = &p->ch[ch];

			if (st[ch].r_used == cp->nr && st[ch].s_done == cp->ns)
				continue;
			busy = true;
			err = ch_pass(l, ch, cp, c, &st[ch], &moved);
			if (err)
				return err;
		}
		/* nothing to do: leave the core to the transport */
		if (busy && !moved) {
			err = l->ops->wait ? l->ops->wait(l) : (sched_yield(), 0);
			if (err)
				return err;
		}
		if (pb_interrupted)
			return -EINTR;
		if (!(++spin & 1023) && pb_now() > end) {
			snprintf(l->err, sizeof(l->err), "%s: a %s took over %.0f s", l->name,
				 pb_op_name(c->op), PB_TIMEOUT_S);
			return -ETIMEDOUT;
		}
	}
	return 0;
}
