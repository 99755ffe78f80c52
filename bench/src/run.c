// SPDX-License-Identifier: MIT
/*
 * One measured run: listen, (start the in-process sender), accept N flows,
 * start one receiving thread per flow at the same instant, print progress,
 * collect. The per-core CPU window is exactly the receiving window.
 */
#include "rxbench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RXB_ACCEPT_WAIT_S	20	/* in-process sender: it connects at once */

const char *rxb_kind_name(enum rxb_kind k)
{
	switch (k) {
	case RXB_KIND_GPUD:
		return "gpud";
	case RXB_KIND_PLAIN:
		return "plain";
	case RXB_KIND_PLAIN_H2D:
		return "plain_h2d";
	case RXB_KIND_RDMA:
		return "rdma";
	}
	return "?";
}

unsigned int rxb_plan_runs(const struct rxb_opts *o, bool host_mem,
			   enum rxb_kind kinds[RXB_MAX_RUNS])
{
	unsigned int n = 0;

	if (o->only_rdma) {
		kinds[n++] = RXB_KIND_RDMA;
		return n;
	}
	kinds[n++] = RXB_KIND_GPUD;
	if (o->cmp_plain) {
		kinds[n++] = RXB_KIND_PLAIN;
		/* host->host "device copy" would measure memcpy, nothing else */
		if (!host_mem)
			kinds[n++] = RXB_KIND_PLAIN_H2D;
	}
	if (o->cmp_rdma)
		kinds[n++] = RXB_KIND_RDMA;
	return n;
}

static int open_listener(const struct rxb_opts *o, unsigned int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, one = 1;

	if (o->listen_addr && inet_pton(AF_INET, o->listen_addr, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Waits for one connection; -ETIMEDOUT after @wait_s (0 = forever). */
static int accept_one(int lfd, int wait_s)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	struct timeval tv = { .tv_usec = 200000 };
	double give_up = wait_s ? rxb_now() + wait_s : 0;
	int fd, r;

	for (;;) {
		if (rxb_interrupted)
			return -EINTR;
		if (give_up && rxb_now() > give_up)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, 200);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			break;
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Blocked receives wake up now and then to see deadlines and ^C. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int accept_all(const struct rxb_opts *o, const struct rxb_env *env, unsigned int port0,
		      int *lfd, int *fds)
{
	int err = 0;

	for (unsigned int i = 0; i < o->flows && !err; i++) {
		fds[i] = accept_one(lfd[i], env->in_process_sender ? RXB_ACCEPT_WAIT_S : 0);
		if (fds[i] < 0) {
			err = fds[i];
			fprintf(stderr, "gpud-rxbench: no connection on port %u: %s\n", port0 + i,
				strerror(-err));
		}
	}
	return err;
}

void rxb_gate_wait(struct rxb_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->arrived++;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

/* Every flow thread has done its setup (each arrives, failed or not). */
static void gate_wait_arrived(struct rxb_gate *g, unsigned int n)
{
	pthread_mutex_lock(&g->lock);
	while (g->arrived < n)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct rxb_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static bool want_progress(const struct rxb_opts *o)
{
	if (o->json && !o->progress)
		return false;
	return o->progress || o->duration == 0 || o->duration > 3;
}

/* Waits for the flow threads, printing a line a second on stderr. */
static void wait_flows(const struct rxb_opts *o, struct rxb_run *res, pthread_t *thr,
		       bool *running, struct rxb_flow_ctx *fc, double t0)
{
	bool prog = want_progress(o);
	uint64_t last_bytes = 0;
	double last_t = t0;

	for (;;) {
		unsigned int alive = 0;
		uint64_t b = 0;
		double now;

		usleep(20000);
		for (unsigned int i = 0; i < o->flows; i++) {
			if (running[i] && pthread_tryjoin_np(thr[i], NULL) == EBUSY)
				alive++;
			else
				running[i] = false;
		}
		if (!alive)
			break;
		now = rxb_now();
		if (!prog || now - last_t < 1.0)
			continue;
		for (unsigned int i = 0; i < o->flows; i++)
			b += __atomic_load_n(&fc[i].bytes, __ATOMIC_RELAXED);
		fprintf(stderr, "  %-9s %6.1f s  %8.2f Gbit/s  %10.3f GB\n", rxb_kind_name(res->kind),
			now - t0, (double)(b - last_bytes) * 8 / (now - last_t) / 1e9,
			(double)b / 1e9);
		last_bytes = b;
		last_t = now;
	}
}

static void collect(const struct rxb_opts *o, const struct rxb_rxsetup *rs, struct rxb_run *res,
		    struct rxb_flow_ctx *fc)
{
	uint64_t copied = 0;

	rxb_hist_init(&res->hist);
	if (res->kind == RXB_KIND_RDMA)
		rxb_rdma_rx_describe(rs, &res->rdma);
	res->valid = o->validate;
	for (unsigned int i = 0; i < o->flows; i++) {
		struct rxb_flow_ctx *f = &fc[i];

		res->flow[i] = f->res;
		res->bytes += f->res.bytes;
		if (f->res.seconds > res->seconds)
			res->seconds = f->res.seconds;
		rxb_hist_merge(&res->hist, &f->hist);
		res->st.bytes += f->res.st.bytes;
		res->st.bytes_devmem += f->res.st.bytes_devmem;
		res->st.bytes_copied += f->res.st.bytes_copied;
		res->st.frags += f->res.st.frags;
		res->st.tokens_released += f->res.st.tokens_released;
		res->st.tokens_outstanding += f->res.st.tokens_outstanding;
		res->st.recv_calls += f->res.st.recv_calls;
		res->st.dontneed_calls += f->res.st.dontneed_calls;
		res->cpu.rx_user_s += f->res.user_s;
		res->cpu.rx_sys_s += f->res.sys_s;
		res->bytes_checked += f->bytes_checked;
		res->rdma.writes += f->rdma.writes;
		res->rdma.cq_events += f->rdma.cq_events;
		res->rdma.credit_msgs += f->rdma.credit_msgs;
		if (f->bad && !res->bad) {
			res->bad = true;
			res->bad_flow = i;
			res->bad_off = f->bad_off;
			res->bad_expected = f->bad_expected;
			res->bad_actual = f->bad_actual;
		}
		if (f->res.err && !res->err) {
			res->err = f->res.err;
			snprintf(res->errmsg, sizeof(res->errmsg), "%s", f->res.errmsg);
		}
	}
	if (res->bad || res->err || !res->bytes)
		res->valid = false;
	res->mode = fc[0].mode;
	/* gpud_rx keeps a short reason; ours, when we made it, is whole. */
	if (res->kind == RXB_KIND_GPUD && !rs->binding && rs->have_reason &&
	    res->mode == GPUD_RX_COPY)
		snprintf(res->reason, sizeof(res->reason), "copy: no dma-buf binding: %s",
			 rs->reason);
	else
		snprintf(res->reason, sizeof(res->reason), "%s", fc[0].reason);
	if (res->kind == RXB_KIND_RDMA) {
		res->rdma.gid_index = fc[0].rdma.gid_index;
		res->rdma.path_mtu = fc[0].rdma.path_mtu;
	}
	/*
	 * plain: the kernel's copy to user; plain_h2d: that plus the staging
	 * copy; rdma: none on a NIC, one by the kernel on soft-RoCE (rxe copies
	 * each packet's payload into the registered pages).
	 */
	if (res->kind == RXB_KIND_GPUD)
		copied = res->st.bytes_copied;
	else if (res->kind == RXB_KIND_RDMA)
		copied = res->rdma.soft ? res->bytes : 0;
	else
		copied = res->bytes * (res->kind == RXB_KIND_PLAIN_H2D ? 2 : 1);
	res->copies_per_byte = res->bytes ? (double)copied / (double)res->bytes : 0;
	res->interrupted = rxb_interrupted;
}

struct run_state {
	int lfd[RXB_MAX_FLOWS];
	int fd[RXB_MAX_FLOWS];
	pthread_t thr[RXB_MAX_FLOWS];
	bool running[RXB_MAX_FLOWS];
	struct rxb_flow_ctx fc[RXB_MAX_FLOWS];
	struct rxb_send send;
	struct rxb_gate go;
	volatile int stop;
};

static void *(*flow_fn(enum rxb_kind k))(void *)
{
	switch (k) {
	case RXB_KIND_GPUD:
		return rxb_gpud_flow;
	case RXB_KIND_RDMA:
		return rxb_rdma_flow;
	default:
		return rxb_plain_flow;
	}
}

static int start_flows(const struct rxb_opts *o, struct rxb_rxsetup *rs, struct run_state *st,
		       struct rxb_run *res)
{
	uint64_t per_flow = o->bytes / o->flows;

	for (unsigned int i = 0; i < o->flows; i++) {
		struct rxb_flow_ctx *f = &st->fc[i];
		int err;

		f->o = o;
		f->rs = rs;
		f->run = res;
		f->idx = i;
		f->fd = st->fd[i];
		f->limit = o->bytes ? per_flow + (i ? 0 : o->bytes % o->flows) : 0;
		f->seed = o->seed + i;
		f->stop = &st->stop;
		f->go = &st->go;
		rxb_hist_init(&f->hist);
		err = pthread_create(&st->thr[i], NULL, flow_fn(res->kind), f);
		if (err)
			return -err;
		st->running[i] = true;
	}
	return 0;
}

/* A failed start: let the threads that exist see the stop flag, then reap them. */
static void abort_flows(const struct rxb_opts *o, struct run_state *st)
{
	st->stop = 1;
	gate_open(&st->go);
	for (unsigned int i = 0; i < o->flows; i++)
		if (st->running[i])
			pthread_join(st->thr[i], NULL);
}

static int listen_all(const struct rxb_opts *o, unsigned int port0, int *lfd)
{
	for (unsigned int i = 0; i < o->flows; i++) {
		lfd[i] = open_listener(o, port0 + i);
		if (lfd[i] < 0) {
			fprintf(stderr, "gpud-rxbench: cannot listen on port %u: %s\n", port0 + i,
				strerror(-lfd[i]));
			return lfd[i];
		}
	}
	return 0;
}

/* Starts the flow threads, opens the gate, waits, collects. */
static int measure(const struct rxb_opts *o, struct rxb_rxsetup *rs, struct run_state *st,
		   struct rxb_run *res)
{
	struct rxb_cpustat *cs0, *cs1;
	int err = -ENOMEM;
	double t0;

	cs0 = malloc(sizeof(*cs0));
	cs1 = malloc(sizeof(*cs1));
	if (!cs0 || !cs1)
		goto out_free;
	pthread_mutex_init(&st->go.lock, NULL);
	pthread_cond_init(&st->go.cond, NULL);
	err = start_flows(o, rs, st, res);
	if (err) {
		abort_flows(o, st);
		fprintf(stderr, "gpud-rxbench: cannot start receiving threads\n");
		goto out_gate;
	}
	/* Setup (an RDMA handshake, say) is not part of the measured window. */
	gate_wait_arrived(&st->go, o->flows);
	rxb_cpustat_read(cs0);
	t0 = rxb_now();
	for (unsigned int i = 0; i < o->flows; i++)
		st->fc[i].deadline = o->duration ? t0 + o->duration : 0;
	gate_open(&st->go);
	wait_flows(o, res, st->thr, st->running, st->fc, t0);
	rxb_cpustat_read(cs1);
	rxb_cpustat_delta(cs0, cs1, &res->cpu);
	collect(o, rs, res, st->fc);
out_gate:
	pthread_cond_destroy(&st->go.cond);
	pthread_mutex_destroy(&st->go.lock);
out_free:
	free(cs1);
	free(cs0);
	return err;
}

/* Stops the in-process sender; its CPU and any real failure go into @res. */
static void reap_sender(struct run_state *st, struct rxb_run *res, bool report_err)
{
	rxb_send_join(&st->send, true);
	for (unsigned int i = 0; i < st->send.nflows; i++) {
		struct rxb_send_flow *f = &st->send.flow[i];

		res->cpu.tx_user_s += f->user_s;
		res->cpu.tx_sys_s += f->sys_s;
		if (f->err && report_err && !res->err) {
			res->err = f->err;
			snprintf(res->errmsg, sizeof(res->errmsg), "sender flow %u: %s", i,
				 strerror(-f->err));
		}
	}
}

int rxb_run_one(const struct rxb_opts *o, struct rxb_rxsetup *rs, const struct rxb_env *env,
		enum rxb_kind kind, unsigned int run_idx, struct rxb_run *res)
{
	unsigned int port0 = o->port + run_idx * o->flows;
	struct run_state *st;
	bool sending = false;
	int err;

	memset(res, 0, sizeof(*res));
	res->kind = kind;
	res->nflows = o->flows;
	res->validate = o->validate;
	st = calloc(1, sizeof(*st));
	if (!st) {
		err = -ENOMEM;
		goto out;
	}
	for (unsigned int i = 0; i < RXB_MAX_FLOWS; i++)
		st->lfd[i] = st->fd[i] = -1;
	err = listen_all(o, port0, st->lfd);
	if (err)
		goto out_close;
	if (!env->in_process_sender && !o->json)
		fprintf(stderr, "gpud-rxbench: %s run: listening on ports %u..%u\n",
			rxb_kind_name(kind), port0, port0 + o->flows - 1);
	if (env->in_process_sender) {
		/* The receiver ends timed runs; the sender's own limit is a safety net. */
		err = rxb_send_start(&st->send, o, env->peer_addr, port0, env->tx_nsfd,
				     o->duration ? o->duration + 10 : 0, kind == RXB_KIND_RDMA);
		if (err)
			goto out_close;
		sending = true;
	}
	err = accept_all(o, env, port0, st->lfd, st->fd);
	if (!err)
		err = measure(o, rs, st, res);
	/* Close the receive side first: a sender blocked on a full window sees a reset. */
	for (unsigned int i = 0; i < o->flows; i++)
		if (st->fd[i] >= 0)
			close(st->fd[i]);
	if (sending)
		reap_sender(st, res, !err);
out_close:
	for (unsigned int i = 0; i < o->flows; i++)
		if (st->lfd[i] >= 0)
			close(st->lfd[i]);
	free(st);
out:
	if (err && !res->err) {
		res->err = err;
		snprintf(res->errmsg, sizeof(res->errmsg), "%s run: %s", rxb_kind_name(kind),
			 strerror(-err));
	}
	return err;
}
