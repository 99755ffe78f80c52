// SPDX-License-Identifier: MIT
/*
 * One transport over every size, in lockstep on both ranks (nccl-tests'
 * shape: warmup, then a timed loop, time per iteration averaged over the
 * ranks). Rank 0 times the warmup and picks the iteration count that fills
 * this point's share of the time budget, so small messages get many
 * iterations and 256 MiB gets a few (at least --min-iters), and the whole
 * sweep has a roughly fixed length. Before the first warmup one untimed
 * exchange completes whatever connection set-up a transport leaves to its
 * first message (a plugin's lazy handshake), so no warmup pays for it. Each
 * timed iteration is timed too: min, max and stddev go with the mean.
 */
#include "pluginbench.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

/* Per-iteration times of one rank's timed loop (Welford's running variance). */
struct pb_spread {
	uint64_t n;
	double min, max, mean, m2;	/* seconds */
};

/* What rank 1 reports after each point. */
struct pb_peer_res {
	double secs;
	struct pb_spread sp;
	int32_t err;
	int32_t bad;		/* 1: its received bytes did not match */
};

double pb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int pb_sizes(const struct pb_opts *o, uint64_t *sizes, int max)
{
	int n = 0;

	for (uint64_t s = o->min_bytes; s <= o->max_bytes && n < max; s *= o->factor)
		sizes[n++] = s;
	return n;
}

unsigned int pb_warmups(const struct pb_opts *o, uint64_t size)
{
	uint64_t w = (64ull << 20) / size;

	if (w > o->warmup)
		w = o->warmup;
	return w ? (unsigned int)w : 1;
}

static void spread_add(struct pb_spread *sp, double t)
{
	double d = t - sp->mean;

	if (!sp->n || t < sp->min)
		sp->min = t;
	if (!sp->n || t > sp->max)
		sp->max = t;
	sp->n++;
	sp->mean += d / (double)sp->n;
	sp->m2 += d * (t - sp->mean);
}

static double spread_var(const struct pb_spread *sp)
{
	return sp->n > 1 ? sp->m2 / (double)(sp->n - 1) : 0;
}

/* @n iterations; each one's time into @sp when it is not NULL. */
static int loop(struct pb_xport *x, size_t size, unsigned int n, struct pb_spread *sp)
{
	double t = sp ? pb_now() : 0, t1;
	int err = 0;

	for (unsigned int i = 0; !err && i < n && !pb_interrupted; i++) {
		err = x->ops->sendrecv(x, size);
		if (sp && !err) {
			t1 = pb_now();
			spread_add(sp, t1 - t);
			t = t1;
		}
	}
	return err ? err : pb_interrupted ? -EINTR : 0;
}

/*
 * Both ranks' spreads as one: the extremes of either, the variances
 * averaged (the ranks run in lockstep, so their iterations pair up).
 * One way, the receiver's alone, as for the mean.
 */
static void spread_point(const struct pb_opts *o, const struct pb_spread *me,
			 const struct pb_spread *peer, struct pb_point *pt)
{
	double var = spread_var(me);

	pt->min_us = me->min * 1e6;
	pt->max_us = me->max * 1e6;
	if (!o->oneway && peer->n) {
		if (peer->min < me->min)
			pt->min_us = peer->min * 1e6;
		if (peer->max > me->max)
			pt->max_us = peer->max * 1e6;
		var = (var + spread_var(peer)) / 2;
	}
	pt->stddev_us = sqrt(var) * 1e6;
}

uint32_t pb_pick_iters(const struct pb_opts *o, double budget, double tw)
{
	double n = tw > 0 ? budget / tw : o->max_iters;

	if (n < o->min_iters)
		n = o->min_iters;
	if (n < 1)
		n = 1;
	return n > o->max_iters ? o->max_iters : (uint32_t)n;
}

static int prepare(struct pb_xport *x, size_t size)
{
	int err = 0;

	if (x->r->do_send)
		err = pb_bufs_fill(x->b, size, x->r->rank);
	if (!err && x->r->do_recv)
		err = pb_bufs_clear(x->b, size);
	return err;
}

static int one_point(struct pb_xport *x, size_t size, double budget, struct pb_point *pt)
{
	const struct pb_rank *r = x->r;
	struct pb_peer_res me = { 0 }, peer = { 0 };
	bool plugin = x->kind == PB_XPORT_PLUGIN;
	uint32_t iters = 0;
	double t0, tw;
	int err;

	pt->bytes = size;
	pt->warmup = pb_warmups(x->o, size);
	err = pb_ctl_agree(r->ctl, prepare(x, size));
	if (err)
		return err;
	t0 = pb_now();
	err = loop(x, size, pt->warmup, NULL);
	tw = (pb_now() - t0) / pt->warmup;
	err = pb_ctl_agree(r->ctl, err);
	if (err)
		return err;
	/* rank 0 decides, rank 1 follows: both must run the same count */
	if (r->rank == 0) {
		iters = pb_pick_iters(x->o, budget, tw);
		err = pb_ctl_write(r->ctl, &iters, sizeof(iters));
	} else {
		err = pb_ctl_read(r->ctl, &iters, sizeof(iters));
	}
	if (!err)
		err = pb_ctl_barrier(r->ctl);
	if (err)
		return err;
	pt->iters = iters;
	t0 = pb_now();
	me.err = loop(x, size, iters, &me.sp);
	me.secs = pb_now() - t0;
	if (!me.err && r->do_recv && x->o->check)
		me.bad = pb_bufs_check(x->b, size, !r->rank, plugin) >= 0;
	if (r->rank == 1)
		return pb_ctl_write(r->ctl, &me, sizeof(me)) ?: me.err ?: me.bad ? -EBADMSG : 0;
	if (pb_ctl_read(r->ctl, &peer, sizeof(peer)))
		return -EPIPE;
	if (me.err || peer.err)
		return me.err ? me.err : -ECANCELED;
	/* nccl-tests averages the ranks' times; one way, the receiver's clock */
	pt->time_us = (x->o->oneway ? me.secs : (me.secs + peer.secs) / 2) / iters * 1e6;
	pt->algbw = pt->time_us > 0 ? size / pt->time_us / 1e3 : 0;
	spread_point(x->o, &me.sp, &peer.sp, pt);
	pt->checked = x->o->check;
	pt->ok = !me.bad && !peer.bad;
	return pt->ok ? 0 : -EBADMSG;
}

/*
 * One exchange of the smallest size, untimed by the sweep: a transport may
 * finish connecting only when the first message moves (a plugin whose
 * connect/accept return before the handshake is done), and that must not
 * land in the first point's warmup, whose time sets its iteration count.
 */
static int first_exchange(struct pb_xport *x, size_t size, struct pb_series *s)
{
	double t0;
	int err;

	err = pb_ctl_barrier(x->r->ctl);
	if (err)
		return err;
	t0 = pb_now();
	err = loop(x, size, 1, NULL);
	s->first_us = (pb_now() - t0) * 1e6;
	return pb_ctl_agree(x->r->ctl, err);
}

int pb_sweep(struct pb_xport *x, const uint64_t *sizes, int nsizes, double budget_per_point,
	     struct pb_series *s)
{
	int err = nsizes > 0 ? first_exchange(x, sizes[0], s) : 0;

	if (err && !x->err[0])
		snprintf(x->err, sizeof(x->err), "first exchange (%llu bytes): %s",
			 (unsigned long long)sizes[0], strerror(-err));
	for (int i = 0; i < nsizes && !err; i++) {
		err = one_point(x, sizes[i], budget_per_point, &s->pt[i]);
		if (err && !x->err[0])
			snprintf(x->err, sizeof(x->err), "%llu bytes: %s",
				 (unsigned long long)sizes[i],
				 err == -EBADMSG ? "received bytes do not match what was sent"
						 : strerror(-err));
	}
	return err;
}
