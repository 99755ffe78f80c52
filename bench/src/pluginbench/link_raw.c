// SPDX-License-Identifier: MIT
/*
 * The ring's baseline transport: plain TCP with the plugin's connection
 * count (per channel and direction --nsocks connections, a slice cut over
 * them as the plugin cuts a message over its data sockets), no framing and
 * no handshake per message: the lengths are known to both sides, as the
 * ring's plan is. A channel's requests in one direction form a queue that
 * every connection works through in order; test() moves what the sockets
 * take now and never blocks.
 */
#include "coll.h"
#include "rawsock.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rreq {
	uint8_t *buf;
	size_t len;
	uint64_t chunk;
};

struct rdir {
	bool tx;
	unsigned int n;
	struct pb_tcp_sock s[PB_MAX_CONNS];
	uint32_t cur[PB_MAX_CONNS];	/* the request each connection works on */
	bool started[PB_MAX_CONNS];
	struct rreq q[PB_FIFO_STEPS];
	uint32_t tail;			/* requests posted */
};

struct pb_lraw {
	int lfd;
	struct rdir d[PB_MAX_CHANNELS][2];	/* [ch][0] receive, [ch][1] send */
};

struct raw_addr {
	char addr[16];
	uint16_t port;
};

static int progress(struct rdir *d)
{
	for (unsigned int i = 0; i < d->n; i++) {
		while (d->cur[i] < d->tail) {
			struct rreq *q = &d->q[d->cur[i] % PB_FIFO_STEPS];
			int r;

			if (!d->started[i]) {
				d->s[i].total = pb_tcp_share(q->len, q->chunk, d->n, i);
				d->s[i].pos = 0;
				d->started[i] = true;
			}
			r = pb_tcp_step(&d->s[i], q->buf, q->chunk, d->n, i, d->tx);
			if (r < 0)
				return r;
			if (d->s[i].pos < d->s[i].total)
				break;
			d->cur[i]++;
			d->started[i] = false;
		}
	}
	return 0;
}

/* Request handles: the sequence number and the direction, never NULL. */
static void *req_of(uint32_t seq, bool tx)
{
	return (void *)(uintptr_t)(((uint64_t)seq << 1 | tx) + 2);
}

static int post(struct pb_link *l, unsigned int ch, bool tx, unsigned int slot, size_t len,
		void **req)
{
	struct pb_lraw *w = l->priv;
	struct rdir *d = &w->d[ch][tx];
	uint8_t *fifo = tx ? l->sfifo[ch] : l->rfifo[ch];

	d->q[d->tail % PB_FIFO_STEPS] = (struct rreq){ .buf = fifo + slot * l->slot_bytes,
						       .len = len,
						       .chunk = pb_tcp_chunk(len, d->n) };
	*req = req_of(d->tail++, tx);
	return 0;
}

static int lraw_isend(struct pb_link *l, unsigned int ch, unsigned int slot, size_t len, void **req)
{
	return post(l, ch, true, slot, len, req);
}

static int lraw_irecv(struct pb_link *l, unsigned int ch, unsigned int slot, size_t len, void **req)
{
	return post(l, ch, false, slot, len, req);
}

static int lraw_test(struct pb_link *l, unsigned int ch, void *req, int *done, size_t *got)
{
	struct pb_lraw *w = l->priv;
	uint64_t v = (uint64_t)(uintptr_t)req - 2;
	struct rdir *d = &w->d[ch][v & 1];
	uint32_t seq = (uint32_t)(v >> 1);
	int err = progress(d);

	if (err) {
		snprintf(l->err, sizeof(l->err), "raw TCP channel %u %s: %s", ch,
			 d->tx ? "send" : "receive", strerror(-err));
		return err;
	}
	*done = 1;
	for (unsigned int i = 0; i < d->n; i++)
		if (d->cur[i] <= seq)
			*done = 0;
	*got = *done ? d->q[seq % PB_FIFO_STEPS].len : 0;
	return 0;
}

/*
 * Sleeps until a socket with bytes to move can move them (10 ms at most).
 * Progress first: a connection whose share of a request is empty, or whose
 * bytes went since the last test, must not be waited on.
 */
static int lraw_wait(struct pb_link *l)
{
	struct pb_lraw *w = l->priv;
	struct pollfd pfd[PB_MAX_CHANNELS * 2 * PB_MAX_CONNS];
	nfds_t np = 0;
	int err;

	for (unsigned int ch = 0; ch < l->nch; ch++) {
		for (int t = 0; t < 2; t++) {
			struct rdir *d = &w->d[ch][t];

			err = progress(d);
			if (err)
				return err;
			for (unsigned int i = 0; i < d->n; i++)
				if (d->cur[i] < d->tail)
					pfd[np++] = (struct pollfd){ .fd = d->s[i].fd,
								     .events = t ? POLLOUT : POLLIN };
		}
	}
	if (np && poll(pfd, np, 10) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/* All channels' connections of one direction as one array of fds. */
static int connect_accept(struct pb_link *l, struct pb_lraw *w, const struct raw_addr *next)
{
	unsigned int n = l->o->nsocks, total = l->nch * n;
	int sfd[PB_MAX_CHANNELS * PB_MAX_CONNS], rfd[PB_MAX_CHANNELS * PB_MAX_CONNS];
	int err;

	for (unsigned int i = 0; i < total; i++)
		sfd[i] = rfd[i] = -1;
	/* connect completes from the listen backlog, before the peer accepts */
	err = pb_tcp_connect_n(next->addr, next->port, sfd, total);
	if (!err)
		err = pb_tcp_accept_n(w->lfd, rfd, total);
	for (unsigned int i = 0; i < total; i++) {
		struct rdir *d = &w->d[i / n][1], *e = &w->d[i / n][0];

		d->s[i % n].fd = sfd[i];
		e->s[i % n].fd = rfd[i];
		if (!err && (sfd[i] < 0 || rfd[i] < 0))
			err = -EBADF;
		if (!err)
			err = pb_tcp_tune(sfd[i]);
		if (!err)
			err = pb_tcp_tune(rfd[i]);
	}
	return err;
}

static int lraw_open(struct pb_link *l)
{
	struct raw_addr mine = { 0 }, all[PB_MAX_RANKS];
	int next = (l->g->rank + 1) % l->g->nranks;
	struct pb_lraw *w;
	int err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	l->priv = w;
	for (unsigned int ch = 0; ch < PB_MAX_CHANNELS; ch++) {
		for (int t = 0; t < 2; t++) {
			w->d[ch][t].tx = t;
			w->d[ch][t].n = l->o->nsocks;
			for (unsigned int i = 0; i < PB_MAX_CONNS; i++)
				w->d[ch][t].s[i].fd = -1;
		}
	}
	snprintf(mine.addr, sizeof(mine.addr), "%s", l->addr);
	err = pb_tcp_listen(l->addr, &mine.port);
	w->lfd = err < 0 ? -1 : err;
	err = pb_grp_agree(l->g, err < 0 ? err : 0);
	if (!err)
		err = pb_grp_allgather(l->g, &mine, all, sizeof(mine));
	if (!err)
		err = connect_accept(l, w, &all[next]);
	if (err && !l->err[0])
		snprintf(l->err, sizeof(l->err), "raw TCP setup (%u x %u connections) to %s: %s",
			 l->nch, l->o->nsocks, all[next].addr, strerror(-err));
	err = pb_grp_agree(l->g, err);
	if (err)
		return err;
	l->conns = l->nch * l->o->nsocks;
	snprintf(l->desc, sizeof(l->desc),
		 "plain TCP, %u channels x %u connections per direction, TCP_NODELAY", l->nch,
		 l->o->nsocks);
	return 0;
}

static void lraw_close(struct pb_link *l)
{
	struct pb_lraw *w = l->priv;

	if (!w)
		return;
	for (unsigned int ch = 0; ch < PB_MAX_CHANNELS; ch++)
		for (int t = 0; t < 2; t++)
			for (unsigned int i = 0; i < PB_MAX_CONNS; i++)
				if (w->d[ch][t].s[i].fd >= 0)
					close(w->d[ch][t].s[i].fd);
	if (w->lfd >= 0)
		close(w->lfd);
	free(w);
	l->priv = NULL;
}

const struct pb_link_ops pb_link_raw_ops = {
	.open = lraw_open,
	.isend = lraw_isend,
	.irecv = lraw_irecv,
	.test = lraw_test,
	.wait = lraw_wait,
	.close = lraw_close,
};
