// SPDX-License-Identifier: MIT
/*
 * gpud-pluginbench --op: N ranks, one process each in a namespace of its
 * own (two ranks: the veth or netdevsim pair the sendrecv sweep uses, so
 * devmem works in the VM; more: a ring of veth pairs). Each rank opens both
 * transports once, the plugin and raw TCP with the same connections, then
 * per size runs them in alternating rounds (plugin first in even rounds, raw
 * first in odd ones), each a warmup and a timed loop of the same collective,
 * every output element checked after it. The report is the median round.
 */
#include "coll.h"
#include "bench_netns.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where a rank runs and what it listens on. */
struct pb_place {
	int nsfd;
	char ifname[16], addr[16];
};

struct pb_net {
	bool ring;
	struct bench_netns pair;
	struct bench_ring r;
	struct pb_place place[PB_MAX_RANKS];
};

struct pb_crank {
	const struct pb_opts *o;
	struct pb_grp g;
	const struct pb_place *pl;
	struct pb_link link[PB_NLINKS];
	bool up[PB_NLINKS];		/* connected: a transport that failed to is left out */
	float *in, *out;
	size_t buf_bytes, fifo_bytes;
	uint8_t *fifo;			/* all channels' send and receive slots */
};

/* What each rank reports after a timed loop. */
struct pb_crep {
	double secs;
	int32_t err, bad;
	int64_t idx;
	float want, got;
};

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, len);	/* touched before timing */
	return p;
}

static int rank_alloc(struct pb_crank *k)
{
	const struct pb_opts *o = k->o;
	size_t slot = o->op == PB_OP_SENDRECV ? PB_P2P_CHUNK : PB_SLICE;

	/* every op's input and output fit in the largest size */
	k->buf_bytes = o->max_bytes + 4096;
	k->fifo_bytes = (size_t)o->channels * PB_FIFO_STEPS * slot;
	k->in = map(k->buf_bytes);
	k->out = map(k->buf_bytes);
	k->fifo = map(2 * k->fifo_bytes);
	if (!k->in || !k->out || !k->fifo)
		return -ENOMEM;
	for (int x = 0; x < PB_NLINKS; x++) {
		struct pb_link *l = &k->link[x];

		l->name = x == PB_L_PLUGIN ? "plugin" : "raw";
		l->ops = x == PB_L_PLUGIN ? &pb_link_plugin_ops : &pb_link_raw_ops;
		l->o = o;
		l->g = &k->g;
		l->ifname = k->pl->ifname;
		l->addr = k->pl->addr;
		l->nch = o->channels;
		l->slot_bytes = slot;
		/* the transports never run at once: they share the FIFOs */
		for (unsigned int ch = 0; ch < o->channels; ch++) {
			l->sfifo[ch] = k->fifo + (size_t)ch * PB_FIFO_STEPS * slot;
			l->rfifo[ch] = k->fifo + k->fifo_bytes + (size_t)ch * PB_FIFO_STEPS * slot;
		}
	}
	return 0;
}

static void rank_free(struct pb_crank *k)
{
	if (k->in)
		munmap(k->in, k->buf_bytes);
	if (k->out)
		munmap(k->out, k->buf_bytes);
	if (k->fifo)
		munmap(k->fifo, 2 * k->fifo_bytes);
}

static int loop(struct pb_link *l, const struct pb_plan *p, const struct pb_coll *c, unsigned int n)
{
	int err = 0;

	for (unsigned int i = 0; !err && i < n; i++)
		err = pb_ring_run(l, p, c);
	return err;
}

/* Warmup (its time picks the count in round 0), then the timed loop, checked. */
static int one_round(struct pb_crank *k, int x, const struct pb_plan *p, struct pb_coll *c,
		     struct pb_cpoint *pt, double budget, int round)
{
	struct pb_link *l = &k->link[x];
	struct pb_crep me = { 0 }, all[PB_MAX_RANKS];
	uint32_t iters = pt->s[x].iters;
	double t0, tw;
	int err;

	memset(c->out, 0xff, c->out_count * 4);
	err = pb_grp_barrier(&k->g);
	if (err)
		return err;
	t0 = pb_now();
	err = pb_grp_agree(&k->g, loop(l, p, c, pt->warmup));
	tw = (pb_now() - t0) / pt->warmup;
	if (err)
		return err;
	if (round == 0) {
		iters = pb_pick_iters(k->o, budget, tw);
		err = pb_grp_bcast(&k->g, &iters, sizeof(iters));
		if (err)
			return err;
		pt->s[x].iters = iters;
	}
	/* a warmup wrote the output too: the timed loop must write it again */
	memset(c->out, 0xff, c->out_count * 4);
	err = pb_grp_barrier(&k->g);
	if (err)
		return err;
	t0 = pb_now();
	me.err = loop(l, p, c, iters);
	me.secs = pb_now() - t0;
	if (!me.err && k->o->check) {
		me.idx = pb_coll_check(c, &me.want, &me.got);
		me.bad = me.idx >= 0;
	}
	err = pb_grp_allgather(&k->g, &me, all, sizeof(me));
	if (err)
		return err;
	if (me.err)
		return me.err;
	pt->s[x].ok = true;
	pt->s[x].ran = true;
	pt->s[x].round_us[round] = 0;
	for (int r = 0; r < k->g.nranks; r++) {
		if (all[r].err)
			return -ECANCELED;
		if (all[r].bad && pt->s[x].ok) {
			snprintf(pt->bad, sizeof(pt->bad),
				 "%s, round %d: rank %d element %lld is %g, expected %g", l->name,
				 round, r, (long long)all[r].idx, (double)all[r].got,
				 (double)all[r].want);
			pt->s[x].ok = false;
		}
		pt->s[x].round_us[round] += all[r].secs / iters * 1e6 / k->g.nranks;
	}
	return pt->s[x].ok ? 0 : -EBADMSG;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void medians(const struct pb_opts *o, int nranks, struct pb_cpoint *pt)
{
	for (int x = 0; x < PB_NLINKS; x++) {
		struct pb_cseries *s = &pt->s[x];
		double v[PB_MAX_ROUNDS];
		unsigned int n = o->rounds;

		if (!s->ran)
			continue;
		memcpy(v, s->round_us, n * sizeof(double));
		qsort(v, n, sizeof(double), cmp_dbl);
		s->time_us = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
		s->algbw = s->time_us > 0 ? (double)pt->bytes / s->time_us / 1e3 : 0;
		s->busbw = s->algbw * pb_busbw_factor(o->op, nranks);
	}
}

static int one_point(struct pb_crank *k, uint64_t size, double budget, struct pb_cpoint *pt)
{
	const struct pb_opts *o = k->o;
	struct pb_coll c = { 0 };
	struct pb_plan *p;
	int err = 0;

	pb_coll_sizes(o->op, k->g.nranks, size, &c);
	c.rank = k->g.rank;
	c.in = k->in;
	c.out = k->out;
	pt->count = c.count;
	pt->bytes = c.out_count > c.in_count ? c.out_count * 4 : c.in_count * 4;
	if (!c.count) {
		pt->bytes = size;
		return 0;	/* under one float per rank: nothing to move */
	}
	pt->warmup = pb_warmups(o, pt->bytes);
	p = pb_plan_build(&c, o->channels, k->link[0].slot_bytes);
	err = pb_grp_agree(&k->g, p ? 0 : -errno);
	if (err)
		goto out_plan;
	pb_coll_fill(&c);
	for (unsigned int r = 0; r < o->rounds && !err; r++) {
		for (int j = 0; j < PB_NLINKS && !err; j++) {
			int x = r % 2 ? PB_NLINKS - 1 - j : j;

			if (k->up[x])
				err = one_round(k, x, p, &c, pt, budget, (int)r);
		}
	}
	pt->ran = !err;
	pt->checked = o->check;
	if (!err)
		medians(o, k->g.nranks, pt);
out_plan:
	pb_plan_free(p);
	return err;
}

/* One collective of the first size per transport, before any warmup. */
static int first_exchange(struct pb_crank *k, uint64_t size, struct pb_cresult *res)
{
	struct pb_coll c = { 0 };
	struct pb_plan *p;
	int err;

	pb_coll_sizes(k->o->op, k->g.nranks, size < 4096 ? 4096 : size, &c);
	c.rank = k->g.rank;
	c.in = k->in;
	c.out = k->out;
	p = pb_plan_build(&c, k->o->channels, k->link[0].slot_bytes);
	err = pb_grp_agree(&k->g, p ? 0 : -errno);
	for (int x = 0; x < PB_NLINKS && !err; x++) {
		double t0;

		if (!k->up[x])
			continue;
		err = pb_grp_barrier(&k->g);
		t0 = pb_now();
		if (!err)
			err = pb_grp_agree(&k->g, pb_ring_run(&k->link[x], p, &c));
		res->first_us[x] = (pb_now() - t0) * 1e6;
	}
	pb_plan_free(p);
	return err;
}

static void keep_err(struct pb_crank *k, struct pb_cresult *res, int err, const char *what)
{
	for (int x = 0; x < PB_NLINKS && !res->err[0]; x++)
		if (k->link[x].err[0])
			snprintf(res->err, sizeof(res->err), "rank %d %s: %.200s", k->g.rank,
				 k->link[x].name, k->link[x].err);
	if (!res->err[0])
		snprintf(res->err, sizeof(res->err), "rank %d: %.160s: %s", k->g.rank, what,
			 err == -EBADMSG ? "an output element is wrong" : strerror(-err));
	fprintf(stderr, PB_TOOL "[rank %d]: %s\n", k->g.rank, res->err);
}

static int run_rank(struct pb_crank *k, struct pb_cresult *res)
{
	const struct pb_opts *o = k->o;
	uint64_t sizes[PB_MAX_SIZES];
	int nsizes = pb_sizes(o, sizes, PB_MAX_SIZES), err, x, failed = 0;
	double budget = o->budget_s / (nsizes * PB_NLINKS * o->rounds);

	err = pb_grp_agree(&k->g, rank_alloc(k));
	if (err) {
		keep_err(k, res, err, "buffers");
		goto out_free;
	}
	/* a transport that cannot connect is reported; the other still runs */
	for (x = 0; x < PB_NLINKS && err != -EPIPE; x++) {
		err = pb_grp_agree(&k->g, k->link[x].ops->open(&k->link[x]));
		k->up[x] = !err;
		if (err) {
			keep_err(k, res, err, "connecting");
			k->link[x].ops->close(&k->link[x]);
			failed = err;
		}
	}
	if (err != -EPIPE)
		err = k->up[PB_L_PLUGIN] || k->up[PB_L_RAW] ? 0 : failed;
	if (!err) {
		err = first_exchange(k, sizes[0], res);
		if (err)
			keep_err(k, res, err, "first exchange");
	}
	res->nsizes = nsizes;
	for (int i = 0; i < nsizes && !err && !pb_interrupted; i++) {
		err = one_point(k, sizes[i], budget, &res->pt[i]);
		if (err)
			keep_err(k, res, err, res->pt[i].bad[0] ? res->pt[i].bad : "a collective");
		if (err == -EBADMSG && res->pt[i].bad[0])
			snprintf(res->err, sizeof(res->err), "%s", res->pt[i].bad);
	}
	for (x = 0; x < PB_NLINKS; x++) {
		snprintf(res->name[x], sizeof(res->name[x]), "%s", k->link[x].name);
		snprintf(res->desc[x], sizeof(res->desc[x]), "%s", k->link[x].desc);
		res->conns[x] = k->link[x].conns;
		res->up[x] = k->up[x];
	}
	snprintf(res->mode, sizeof(res->mode), "%s", k->link[PB_L_PLUGIN].mode);
	/* closing in step: a rank still in a collective must not see its peer vanish */
	pb_grp_barrier(&k->g);
	for (x = 0; x < PB_NLINKS; x++)
		if (k->up[x])
			k->link[x].ops->close(&k->link[x]);
out_free:
	rank_free(k);
	if (pb_interrupted)
		return 128 + pb_interrupted;
	return err || failed ? PB_EXIT_FAIL : PB_EXIT_OK;
}

/* ---- the network and the processes -------------------------------------------- */

static int net_setup(struct pb_net *n, int nranks, char *desc, size_t dlen)
{
	enum bench_link link = bench_in_vm() ? BENCH_LINK_NSIM : BENCH_LINK_VETH;
	int err;

	n->ring = nranks > 2;
	if (n->ring) {
		err = bench_ring_setup(&n->r, PB_TOOL, nranks);
		for (int k = 0; !err && k < nranks; k++) {
			n->place[k].nsfd = n->r.nsfd[k];
			snprintf(n->place[k].ifname, sizeof(n->place[k].ifname), BENCH_RING_RX_IF);
			snprintf(n->place[k].addr, sizeof(n->place[k].addr), "%s", n->r.rx_addr[k]);
		}
		snprintf(desc, dlen, "ring of %d veth pairs (198.18.110.0/24 ..)", nranks);
		return err;
	}
	err = bench_netns_setup(&n->pair, PB_TOOL, link);
	/* rank 0 on the receiving side, as in the sendrecv sweep */
	for (int k = 0; !err && k < 2; k++) {
		int s = !k;

		n->place[k].nsfd = n->pair.nsfd[s];
		snprintf(n->place[k].ifname, sizeof(n->place[k].ifname), "%s", n->pair.ifname[s]);
		snprintf(n->place[k].addr, sizeof(n->place[k].addr), "%s", n->pair.addr[s]);
	}
	snprintf(desc, dlen, "%s (%s %s <-> %s %s)", link == BENCH_LINK_VETH ? "veth" : "netdevsim",
		 n->pair.ifname[0], n->pair.addr[0], n->pair.ifname[1], n->pair.addr[1]);
	return err;
}

static void net_teardown(struct pb_net *n)
{
	if (n->ring)
		bench_ring_teardown(&n->r);
	else
		bench_netns_teardown(&n->pair);
}

/* A forked rank: the guardians must see EOF when the parent goes, not wait for us. */
static void close_guards(struct pb_net *n)
{
	if (!n->ring) {
		close(n->pair.guard.fd);
		return;
	}
	for (int k = 0; k < BENCH_RING_MAX; k++)
		if (n->r.guard[k].fd >= 0)
			close(n->r.guard[k].fd);
}

static int child_main(const struct pb_opts *o, struct pb_net *n, int rank, int ctl)
{
	struct pb_crank k = { .o = o, .pl = &n->place[rank] };
	struct pb_cresult *res;
	int rc;

	close_guards(n);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (bench_netns_enter(n->place[rank].nsfd))
		return PB_EXIT_FAIL;
	k.g = (struct pb_grp){ .rank = rank, .nranks = (int)o->ranks, .fd = { ctl } };
	res = calloc(1, sizeof(*res));
	if (!res)
		return PB_EXIT_FAIL;
	rc = run_rank(&k, res);
	free(res);
	return rc;
}

static int run(const struct pb_opts *o, struct pb_cresult *res)
{
	struct pb_crank k = { .o = o };
	pid_t pid[PB_MAX_RANKS] = { 0 };
	int sp[2], rc, st, crc;
	struct pb_net *n;

	n = calloc(1, sizeof(*n));
	if (!n)
		return PB_EXIT_FAIL;
	k.g = (struct pb_grp){ .rank = 0, .nranks = (int)o->ranks };
	for (int r = 0; r < PB_MAX_RANKS; r++)
		k.g.fd[r] = -1;
	rc = net_setup(n, (int)o->ranks, res->net, sizeof(res->net));
	if (rc) {
		fprintf(stderr, PB_TOOL ": network setup failed: %s\n", strerror(-rc));
		rc = PB_EXIT_FAIL;
		goto out_teardown;
	}
	fflush(NULL);
	for (int r = 1; r < (int)o->ranks; r++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
			rc = PB_EXIT_FAIL;
			goto out_wait;
		}
		pid[r] = fork();
		if (pid[r] == 0) {
			close(sp[0]);
			for (int q = 1; q < r; q++)
				close(k.g.fd[q]);
			_exit(child_main(o, n, r, sp[1]));
		}
		close(sp[1]);
		k.g.fd[r] = sp[0];
		if (pid[r] < 0) {
			rc = PB_EXIT_FAIL;
			goto out_wait;
		}
	}
	k.pl = &n->place[0];
	rc = bench_netns_enter(n->place[0].nsfd) ? PB_EXIT_FAIL : run_rank(&k, res);
out_wait:
	for (int r = 1; r < (int)o->ranks; r++) {
		if (k.g.fd[r] >= 0)
			close(k.g.fd[r]);	/* a rank still waiting on us sees EOF */
		if (pid[r] <= 0)
			continue;
		while (waitpid(pid[r], &st, 0) < 0 && errno == EINTR)
			;
		crc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (!rc && crc)
			rc = crc;
	}
out_teardown:
	net_teardown(n);
	free(n);
	return rc;
}

int pb_coll_main(struct pb_opts *o)
{
	struct pb_cresult *res = calloc(1, sizeof(*res));
	double t0 = pb_now();
	int rc;

	if (!res)
		return PB_EXIT_FAIL;
	res->o = o;
	snprintf(res->plugin_path, sizeof(res->plugin_path), "%s", o->plugin_path);
	if (getloadavg(res->loadavg, 3) < 0)
		res->loadavg[0] = res->loadavg[1] = res->loadavg[2] = -1;
	rc = run(o, res);
	if (getloadavg(res->loadavg_end, 3) < 0)
		res->loadavg_end[0] = res->loadavg_end[1] = res->loadavg_end[2] = -1;
	res->wall_s = pb_now() - t0;
	res->interrupted = pb_interrupted;
	res->exit_code = rc;
	if (o->json)
		pb_coll_report_json(stdout, res);
	else
		pb_coll_report_table(stdout, res);
	free(res);
	return rc;
}
