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

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAW_MIN_CHUNK	(64u << 10)	/* the plugin's DM_MIN_CHUNK */
#define RAW_MAX_CHUNK	(512u << 10)	/* its default NCCL_DEVMEM_CHUNK_SIZE */

struct raw_sock {
	int fd;
	uint64_t total, pos;	/* this socket's share of the message */
};

struct pb_raw {
	int lfd;
	unsigned int n;
	struct raw_sock tx[PB_MAX_CONNS], rx[PB_MAX_CONNS];
};

static uint64_t raw_chunk(uint64_t size, unsigned int n)
{
	uint64_t c = (size + n - 1) / n;

	c = (c + 4095) & ~4095ull;
	if (c < RAW_MIN_CHUNK)
		c = RAW_MIN_CHUNK;
	return c > RAW_MAX_CHUNK ? RAW_MAX_CHUNK : c;
}

static int tune(int fd)
{
	int one = 1;

	/* messages, not a stream: a small one must not wait for an ACK */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return -errno;
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) ? -errno : 0;
}

static int listen_on(struct pb_xport *x, struct pb_raw *w, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);

	inet_pton(AF_INET, x->r->addr, &sa.sin_addr);
	w->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->lfd < 0 || bind(w->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(w->lfd, PB_MAX_CONNS) || getsockname(w->lfd, (struct sockaddr *)&sa, &sl))
		return -errno;
	*port = sa.sin_port;
	return 0;
}

/* Each connection says which one it is: accept order is not connect order. */
static int connect_all(struct pb_xport *x, struct pb_raw *w, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = port };

	inet_pton(AF_INET, x->r->peer_addr, &sa.sin_addr);
	for (uint32_t i = 0; i < w->n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		w->tx[i].fd = fd;
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    write(fd, &i, sizeof(i)) != sizeof(i))
			return -errno;
	}
	return 0;
}

static int accept_all(struct pb_raw *w)
{
	for (unsigned int k = 0; k < w->n; k++) {
		int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
		uint32_t i;

		if (fd < 0)
			return -errno;
		if (read(fd, &i, sizeof(i)) != sizeof(i) || i >= w->n || w->rx[i].fd >= 0) {
			close(fd);
			return -EPROTO;
		}
		w->rx[i].fd = fd;
	}
	return 0;
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
	if (x->r->do_recv)
		err = listen_on(x, w, &port);
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
			err = tune(w->tx[i].fd);
		if (!err && x->r->do_recv)
			err = tune(w->rx[i].fd);
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

/* Bytes of chunks k = i, i+n, i+2n, ... of a @size-byte message. */
static uint64_t share(uint64_t size, uint64_t c, unsigned int n, unsigned int i)
{
	uint64_t nchunks = (size + c - 1) / c, bytes = 0;

	for (uint64_t k = i; k < nchunks; k += n)
		bytes += size - k * c < c ? size - k * c : c;
	return bytes;
}

/* Moves what the socket takes now; 1 if it moved bytes, 0 on EAGAIN. */
static int step(struct raw_sock *s, uint8_t *buf, uint64_t c, unsigned int n, unsigned int i,
		bool tx)
{
	int moved = 0;

	while (s->pos < s->total) {
		uint64_t k = i + (uint64_t)n * (s->pos / c), in = s->pos % c;
		uint64_t len = c - in < s->total - s->pos ? c - in : s->total - s->pos;
		ssize_t r = tx ? send(s->fd, buf + k * c + in, len, MSG_DONTWAIT | MSG_NOSIGNAL)
			       : recv(s->fd, buf + k * c + in, len, MSG_DONTWAIT);

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return moved;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		s->pos += (uint64_t)r;
		moved = 1;
	}
	return moved;
}

static int raw_sendrecv(struct pb_xport *x, size_t size)
{
	struct pb_raw *w = x->priv;
	uint64_t c = raw_chunk(size, w->n);
	struct pollfd pfd[2 * PB_MAX_CONNS];
	int err;

	for (unsigned int i = 0; i < w->n; i++) {
		uint64_t b = share(size, c, w->n, i);

		w->tx[i].pos = w->rx[i].pos = 0;
		w->tx[i].total = x->r->do_send ? b : 0;
		w->rx[i].total = x->r->do_recv ? b : 0;
	}
	for (;;) {
		int np = 0;

		/* try first, poll only for the sockets that could not move */
		for (unsigned int i = 0; i < w->n; i++) {
			err = step(&w->rx[i], x->b->host_recv, c, w->n, i, false);
			if (err >= 0)
				err = step(&w->tx[i], x->b->host_send, c, w->n, i, true);
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
