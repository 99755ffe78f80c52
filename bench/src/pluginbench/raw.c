// SPDX-License-Identifier: MIT
/*
 * The baseline: the same messages over plain TCP sockets, no framing, no
 * handshake per message, one thread per rank polling all its sockets. With
 * N connections a message is cut exactly as the plugin cuts it over its data
 * sockets (page-aligned chunks of 64 KiB .. 512 KiB, chunk k on socket
 * k % N), so raw N and the plugin put the same bytes on the same number of
 * flows; what differs is what the plugin adds.
 */
#include "pluginbench.h"
#include "rawsock.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct pb_raw {
	int lfd;
	unsigned int n;
	struct pb_tcp_sock tx[PB_MAX_CONNS], rx[PB_MAX_CONNS];
};

/* Each direction's fds into their sockets' slots. */
static int connect_all(struct pb_xport *x, struct pb_raw *w, uint16_t port)
{
	int fds[PB_MAX_CONNS];
	int err = pb_tcp_connect_n(x->r->peer_addr, port, fds, w->n);

	for (unsigned int i = 0; i < w->n; i++)
		w->tx[i].fd = fds[i];
	return err;
}

static int accept_all(struct pb_raw *w)
{
	int fds[PB_MAX_CONNS];
	int err;

	for (unsigned int i = 0; i < w->n; i++)
		fds[i] = -1;
	err = pb_tcp_accept_n(w->lfd, fds, w->n);
	for (unsigned int i = 0; i < w->n; i++)
		w->rx[i].fd = fds[i];
	return err;
}

static int raw_open(struct pb_xport *x)
{
	uint16_t port = 0, peer_port = 0;
	struct pb_raw *w;
	int err = 0;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	x->priv = w;
	w->lfd = -1;
	w->n = x->nconns;
	for (unsigned int i = 0; i < PB_MAX_CONNS; i++)
		w->tx[i].fd = w->rx[i].fd = -1;
	if (x->r->do_recv) {
		err = pb_tcp_listen(x->r->addr, &port);
		w->lfd = err < 0 ? -1 : err;
		err = err < 0 ? err : 0;
	}
	err = pb_ctl_agree(x->r->ctl, err);
	if (!err && x->r->do_recv)
		err = pb_ctl_write(x->r->ctl, &port, sizeof(port));
	if (!err && x->r->do_send)
		err = pb_ctl_read(x->r->ctl, &peer_port, sizeof(peer_port));
	/* connect completes from the listen backlog, before the peer accepts */
	if (!err && x->r->do_send)
		err = connect_all(x, w, peer_port);
	if (!err && x->r->do_recv)
		err = accept_all(w);
	for (unsigned int i = 0; !err && i < w->n; i++) {
		if (x->r->do_send)
			err = pb_tcp_tune(w->tx[i].fd);
		if (!err && x->r->do_recv)
			err = pb_tcp_tune(w->rx[i].fd);
	}
	if (err) {
		snprintf(x->err, sizeof(x->err), "raw TCP setup (%u connections) to %s: %s", w->n,
			 x->r->peer_addr, strerror(-err));
		return err;
	}
	snprintf(x->desc, sizeof(x->desc), "plain TCP, %u connection%s per direction, TCP_NODELAY",
		 w->n, w->n > 1 ? "s" : "");
	return 0;
}

static int raw_sendrecv(struct pb_xport *x, size_t size)
{
	struct pb_raw *w = x->priv;
	uint64_t c = pb_tcp_chunk(size, w->n);
	struct pollfd pfd[2 * PB_MAX_CONNS];
	int err;

	for (unsigned int i = 0; i < w->n; i++) {
		uint64_t b = pb_tcp_share(size, c, w->n, i);

		w->tx[i].pos = w->rx[i].pos = 0;
		w->tx[i].total = x->r->do_send ? b : 0;
		w->rx[i].total = x->r->do_recv ? b : 0;
	}
	for (;;) {
		int np = 0;

		/* try first, poll only for the sockets that could not move */
		for (unsigned int i = 0; i < w->n; i++) {
			err = pb_tcp_step(&w->rx[i], x->b->host_recv, c, w->n, i, false);
			if (err >= 0)
				err = pb_tcp_step(&w->tx[i], x->b->host_send, c, w->n, i, true);
			if (err < 0)
				goto err_io;
		}
		for (unsigned int i = 0; i < w->n; i++) {
			if (w->rx[i].pos < w->rx[i].total)
				pfd[np++] = (struct pollfd){ .fd = w->rx[i].fd, .events = POLLIN };
			if (w->tx[i].pos < w->tx[i].total)
				pfd[np++] = (struct pollfd){ .fd = w->tx[i].fd, .events = POLLOUT };
		}
		if (!np)
			return 0;
		err = poll(pfd, (nfds_t)np, (int)(PB_TIMEOUT_S * 1000));
		if (err == 0 || pb_interrupted) {
			err = pb_interrupted ? -EINTR : -ETIMEDOUT;
			goto err_io;
		}
	}

err_io:
	snprintf(x->err, sizeof(x->err), "raw TCP %zu-byte message: %s", size, strerror(-err));
	return err;
}

static void raw_close(struct pb_xport *x)
{
	struct pb_raw *w = x->priv;

	if (!w)
		return;
	for (unsigned int i = 0; i < PB_MAX_CONNS; i++) {
		if (w->tx[i].fd >= 0)
			close(w->tx[i].fd);
		if (w->rx[i].fd >= 0)
			close(w->rx[i].fd);
	}
	if (w->lfd >= 0)
		close(w->lfd);
	free(w);
	x->priv = NULL;
}

const struct pb_xport_ops pb_raw_ops = {
	.open = raw_open,
	.sendrecv = raw_sendrecv,
	.close = raw_close,
};
