// SPDX-License-Identifier: MIT
/*
 * Sender: plain send() of the per-flow pattern from host memory, one thread
 * per flow. It always sends the pattern (precomputed, so it costs the same as
 * zeros) and the receiver decides whether to check it.
 */
#include "rxbench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The receiver may still be setting up the next run's listeners. */
#define RXB_CONNECT_WAIT_S 15.0

static int connect_flow(struct rxb_send_flow *f)
{
	struct rxb_send *s = f->s;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_usec = 200000 };
	double give_up = rxb_now() + RXB_CONNECT_WAIT_S;
	int fd;

	sa.sin_port = htons((uint16_t)(s->port + f->idx));
	if (inet_pton(AF_INET, s->host, &sa.sin_addr) != 1)
		return -EINVAL;
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		close(fd);
		if ((errno != ECONNREFUSED && errno != EINTR) || rxb_now() > give_up ||
		    s->stop || rxb_interrupted)
			return -errno;
		usleep(50000);
	}
	/* A send timeout lets a blocked sender notice the stop flag. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	f->fd = fd;
	return 0;
}

/* The pattern, or for --inject-error a copy with one bit flipped. */
static const uint8_t *payload(struct rxb_send_flow *f, const struct rxb_pattern *pat, size_t n)
{
	const struct rxb_opts *o = f->s->o;
	const uint8_t *src = rxb_pattern_at(pat, f->sent);

	if (!o->inject || f->idx || o->inject_at < f->sent || o->inject_at >= f->sent + n)
		return src;
	memcpy(f->bounce, src, n);
	f->bounce[o->inject_at - f->sent] ^= 0x10;
	return f->bounce;
}

static int send_loop(struct rxb_send_flow *f, const struct rxb_pattern *pat)
{
	struct rxb_send *s = f->s;
	double deadline = s->duration > 0 ? rxb_now() + s->duration : 0;
	size_t chunk = s->o->chunk;

	f->t_start = rxb_now();
	while (!s->stop && !rxb_interrupted) {
		size_t n = chunk;
		ssize_t r;

		if (f->limit) {
			if (f->sent >= f->limit)
				break;
			if (f->limit - f->sent < n)
				n = f->limit - f->sent;
		}
		if (deadline && rxb_now() >= deadline)
			break;
		r = send(f->fd, payload(f, pat, n), n, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			/* The receiver closing first is how a timed run ends. */
			if (errno == EPIPE || errno == ECONNRESET)
				break;
			return -errno;
		}
		f->sent += (uint64_t)r;
	}
	f->t_end = rxb_now();
	return 0;
}

/* The RDMA run: the connection is the side channel; rdma/tx.c writes. */
static int rdma_flow(struct rxb_send_flow *f)
{
	int err = connect_flow(f);

	if (err)
		return err;
	err = rxb_rdma_send_flow(f);
	shutdown(f->fd, SHUT_WR);
	return err;
}

static void *send_flow(void *arg)
{
	struct rxb_send_flow *f = arg;
	struct rxb_send *s = f->s;
	struct rxb_pattern pat;
	int err;

	err = bench_netns_enter(s->nsfd);
	if (err)
		goto out;
	if (s->rdma) {
		err = rdma_flow(f);
		goto out;
	}
	err = rxb_pattern_init(&pat, s->o->seed + f->idx, s->o->chunk);
	if (err)
		goto out;
	if (s->o->inject && !f->idx) {
		f->bounce = malloc(s->o->chunk);
		if (!f->bounce) {
			err = -ENOMEM;
			goto err_pattern;
		}
	}
	err = connect_flow(f);
	if (err)
		goto err_pattern;
	err = send_loop(f, &pat);
	/* Orderly FIN: the receiver sees EOF after the last byte. */
	shutdown(f->fd, SHUT_WR);
err_pattern:
	free(f->bounce);
	f->bounce = NULL;
	rxb_pattern_free(&pat);
out:
	f->err = err;
	rxb_thread_cpu(&f->user_s, &f->sys_s);
	return NULL;
}

int rxb_send_start(struct rxb_send *s, const struct rxb_opts *o, const char *host,
		   unsigned int port, int nsfd, double duration, bool rdma)
{
	uint64_t per_flow = o->bytes / o->flows;
	int err;

	memset(s, 0, sizeof(*s));
	s->o = o;
	snprintf(s->host, sizeof(s->host), "%s", host);
	s->port = port;
	s->nsfd = nsfd;
	s->duration = duration;
	s->rdma = rdma;
	s->nflows = o->flows;
	for (unsigned int i = 0; i < s->nflows; i++) {
		struct rxb_send_flow *f = &s->flow[i];

		f->s = s;
		f->idx = i;
		f->fd = -1;
		/* Flow 0 takes the remainder so the total is exactly --bytes. */
		f->limit = o->bytes ? per_flow + (i ? 0 : o->bytes % o->flows) : 0;
		err = pthread_create(&f->thr, NULL, send_flow, f);
		if (err) {
			rxb_send_join(s, true);
			return -err;
		}
		f->started = true;
	}
	return 0;
}

void rxb_send_join(struct rxb_send *s, bool stop)
{
	if (stop) {
		s->stop = 1;
		/* Wake senders blocked in send() on a full socket. */
		for (unsigned int i = 0; i < s->nflows; i++)
			if (s->flow[i].fd >= 0)
				shutdown(s->flow[i].fd, SHUT_RDWR);
	}
	for (unsigned int i = 0; i < s->nflows; i++) {
		struct rxb_send_flow *f = &s->flow[i];

		if (f->started)
			pthread_join(f->thr, NULL);
		f->started = false;
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
	}
}

/* One run of the standalone sender: start, wait, print the summary. */
static int send_run(struct rxb_send *s, const struct rxb_opts *o, unsigned int r, bool rdma)
{
	double t0 = 0, t1 = 0, usr = 0, sys = 0;
	int rc = RXB_EXIT_OK, err;
	uint64_t sent = 0;

	err = rxb_send_start(s, o, o->host, o->port + r * o->flows, -1, o->duration, rdma);
	if (err) {
		fprintf(stderr, "gpud-rxbench: cannot start senders: %s\n", strerror(-err));
		return RXB_EXIT_FAIL;
	}
	rxb_send_join(s, false);
	for (unsigned int i = 0; i < s->nflows; i++) {
		struct rxb_send_flow *f = &s->flow[i];

		if (f->err) {
			fprintf(stderr, "gpud-rxbench: flow %u to %s:%u: %s\n", i, o->host,
				s->port + i, strerror(-f->err));
			rc = RXB_EXIT_FAIL;
		}
		sent += f->sent;
		if (f->t_start && (!t0 || f->t_start < t0))
			t0 = f->t_start;
		if (f->t_end > t1)
			t1 = f->t_end;
		usr += f->user_s;
		sys += f->sys_s;
	}
	printf("run %u%s: sent %llu bytes over %u flows in %.2f s = %.2f Gbit/s "
	       "(sender CPU %.2f s user, %.2f s sys)\n",
	       r, rdma ? " (RDMA WRITE)" : "", (unsigned long long)sent, s->nflows, t1 - t0,
	       t1 > t0 ? (double)sent * 8 / (t1 - t0) / 1e9 : 0.0, usr, sys);
	fflush(stdout);
	return rc;
}

int rxb_send_main(const struct rxb_opts *o)
{
	struct rxb_send *s;
	int rc = RXB_EXIT_OK;
	unsigned int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return RXB_EXIT_FAIL;
	/* TCP runs first, the RDMA run last: the receiver's order. */
	for (r = 0; r < o->runs + o->rdma_send && !rxb_interrupted; r++) {
		int ret = send_run(s, o, r, r == o->runs);

		if (ret)
			rc = ret;
	}
	free(s);
	return rc;
}
