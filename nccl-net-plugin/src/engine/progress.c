// SPDX-License-Identifier: MIT
/*
 * Progress threads: a small pool (NCCL_DEVMEM_NTHREADS) moving chunks between
 * data sockets and NCCL buffers. Each data socket belongs to one thread for
 * its whole life, so a socket's byte stream is only ever touched by one
 * thread and needs no lock; the caller thread only appends tasks.
 *
 * The pool lives while any comm does (refcounted): NCCL may dlclose() the
 * plugin after closing its comms, and no thread of ours may outlive the code.
 */
#include "engine/engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Bytes one socket may move per pass before others on the thread get a turn. */
#define DM_PASS_BUDGET (4u << 20)

static struct {
	pthread_mutex_t lock;
	int refs;
	int n;
	unsigned rr;
	struct dm_worker *w;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

uint64_t dm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool task_inline_ok(const struct dm_task *t)
{
	/*
	 * GPU work stays on the workers: they are ours, so they may keep the
	 * comm's context current, where the API thread is NCCL's.
	 */
	return t->size <= DM_INLINE_MAX && (!t->mr || t->mr->type == NCCL_PTR_HOST) &&
	       !t->req->comm->gpu_pool;
}

/*
 * Runs one socket's queue for a while; the caller holds s->io. @inl: stop at
 * the first task the API thread should not move. Returns true if it stopped
 * on budget.
 */
static bool sock_steps(struct dm_sock *s, uint64_t now, bool inl)
{
	struct dm_comm *c = s->comm;
	uint64_t before_ms;
	unsigned rounds = 0;
	struct dm_task *t;
	int r;

	if (s->dead || atomic_load(&c->err))
		return false;
	for (;;) {
		t = dm_sock_head(s);
		if (!t || (inl && !task_inline_ok(t)))
			return false;
		if (rounds++ >= DM_PASS_BUDGET / DM_MIN_CHUNK)
			return true;
		before_ms = atomic_load(&s->last_ms);
		if (c->is_recv && c->mode == DM_MODE_DEVMEM)
			r = dm_devmem_step(s, t);
		else
			r = dm_copy_step(s, t);
		if (r < 0) {
			s->dead = true;
			return false;
		}
		if (r == DM_STEP_GPU) {
			/*
			 * Our own copies on our own stream: they end on their
			 * own, so poll again soon. Bounded all the same: a stream
			 * that never drains is a bug worth a clear error.
			 */
			if (now > before_ms && now - before_ms > (uint64_t)dm_cfg.timeout_ms) {
				dm_comm_fail(c, -ETIMEDOUT,
					     "data socket %d: its GPU copies did not complete in %d ms (the comm's CUDA stream is stuck)",
					     s->idx, dm_cfg.timeout_ms);
				s->dead = true;
				return false;
			}
			return true;
		}
		if (r == 0) {
			/*
			 * Only a receive can stall on the peer's fault: its header
			 * has arrived, so its bytes are already on the way. A send may
			 * legitimately wait for a slow receiver; TCP_USER_TIMEOUT
			 * bounds a dead one.
			 */
			if (c->is_recv && now > before_ms &&
			    now - before_ms > (uint64_t)dm_cfg.timeout_ms) {
				dm_comm_fail(c, -ETIMEDOUT,
					     "data socket %d: no data for %d ms in the middle of a message (peer stalled or gone)",
					     s->idx, dm_cfg.timeout_ms);
				s->dead = true;
			}
			return false;
		}
		atomic_store(&s->last_ms, now);
		if (r == DM_STEP_DRAINED)
			return false;
		if (r == DM_STEP_DONE) {
			pthread_mutex_lock(&s->lock);
			s->head = t->next;
			if (!s->head)
				s->tail = NULL;
			pthread_mutex_unlock(&s->lock);
			/* release: the NCCL buffer's bytes before the count */
			atomic_fetch_sub_explicit(&t->req->tasks_left, 1, memory_order_release);
		}
	}
}

/*
 * Data sockets are armed one-shot: an idle socket, or one whose small
 * messages the API thread moves itself, must not wake the worker for every
 * segment that arrives (on a 2-core machine that wake-up is most of a small
 * message's cost). The worker re-arms a socket only when it leaves work
 * queued on it; EPOLL_CTL_MOD reports readiness that arrived meanwhile, so
 * nothing is missed between the EAGAIN and the re-arm.
 */
static uint32_t sock_events(const struct dm_sock *s)
{
	/*
	 * Only the direction that can unblock us: re-arming re-polls, and a
	 * receive socket is always writable (a send socket's EPOLLIN means
	 * nothing to us). Errors and hang-ups are reported regardless.
	 */
	return (s->comm->is_recv ? EPOLLIN : EPOLLOUT) | EPOLLET | EPOLLONESHOT;
}

static void sock_arm(struct dm_sock *s)
{
	struct epoll_event ev = { .events = sock_events(s), .data.ptr = s };

	if (epoll_ctl(s->worker->epfd, EPOLL_CTL_MOD, s->fd, &ev))
		DM_WARN("epoll_ctl(MOD): %s", strerror(errno));
}

static bool sock_pass(struct dm_sock *s, uint64_t now)
{
	bool more;

	/* The API thread is moving this socket's bytes; it kicks us if it leaves any. */
	if (pthread_mutex_trylock(&s->io))
		return false;
	more = sock_steps(s, now, false);
	pthread_mutex_unlock(&s->io);
	if (!more && dm_sock_head(s) && !s->dead && !atomic_load(&s->comm->err))
		sock_arm(s);
	return more;
}

void dm_progress_inline(struct dm_sock *s, bool kick)
{
	struct dm_task *t = dm_sock_head(s);

	/* a large task first in line was kicked when it was queued: the worker's */
	if (!t || !task_inline_ok(t))
		return;
	/* a worker on this socket right now: it sees the task in this pass or is kicked */
	if (!pthread_mutex_trylock(&s->io)) {
		sock_steps(s, dm_now_ms(), true);
		pthread_mutex_unlock(&s->io);
		t = dm_sock_head(s);
		if (!t)
			return;
		/* stopped at a large task: the worker may have skipped it while we held io */
		kick |= !task_inline_ok(t);
	}
	if (kick)
		dm_progress_kick(s);
}

static void *worker_main(void *arg)
{
	struct dm_worker *w = arg;
	struct epoll_event ev[64];
	bool more = false;
	char name[16];

	/* named: logs, perf, and the CUDA fake's call log say which thread did what */
	snprintf(name, sizeof(name), "dm-progress-%d", w->idx);
	pthread_setname_np(pthread_self(), name);

	while (!atomic_load(&w->stop)) {
		/* 20 ms: stall timeouts are checked at least that often */
		int n = epoll_wait(w->epfd, ev, DM_ARRAY_SIZE(ev), more ? 0 : 20);
		uint64_t now;

		for (int i = 0; i < n; i++) {
			if (!ev[i].data.ptr) {
				uint64_t v;

				if (read(w->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					break;
			}
		}
		more = false;
		now = dm_now_ms();
		pthread_mutex_lock(&w->mu);
		for (int i = 0; i < w->nsocks; i++)
			more |= sock_pass(w->socks[i], now);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

static void worker_fini(struct dm_worker *w)
{
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->evfd >= 0)
		close(w->evfd);
	free(w->socks);
	pthread_mutex_destroy(&w->mu);
}

static int worker_init(struct dm_worker *w, int idx)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	memset(w, 0, sizeof(*w));
	w->idx = idx;
	pthread_mutex_init(&w->mu, NULL);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->epfd < 0 || w->evfd < 0) {
		err = -errno;
		goto err_fini;
	}
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev)) {
		err = -errno;
		goto err_fini;
	}
	err = -pthread_create(&w->th, NULL, worker_main, w);
	if (err)
		goto err_fini;
	return 0;

err_fini:
	DM_WARN("cannot start a progress thread: %s", strerror(-err));
	worker_fini(w);
	return err;
}

static void worker_stop(struct dm_worker *w)
{
	uint64_t one = 1;

	atomic_store(&w->stop, true);
	if (write(w->evfd, &one, sizeof(one)) < 0) {
		/* the 20 ms epoll timeout still ends the thread */
	}
	pthread_join(w->th, NULL);
	worker_fini(w);
}

int dm_progress_get(void)
{
	int err = 0, i;

	pthread_mutex_lock(&pool.lock);
	if (pool.refs++ > 0)
		goto out;
	pool.n = dm_cfg.nthreads > 0 ? dm_cfg.nthreads : 1;
	pool.w = calloc(pool.n, sizeof(*pool.w));
	if (!pool.w) {
		err = -ENOMEM;
		goto err_unref;
	}
	for (i = 0; i < pool.n; i++) {
		err = worker_init(&pool.w[i], i);
		if (err)
			goto err_stop;
	}
	DM_INFO("started %d progress thread(s)", pool.n);
	goto out;

err_stop:
	while (i-- > 0)
		worker_stop(&pool.w[i]);
	free(pool.w);
	pool.w = NULL;
err_unref:
	pool.refs--;
out:
	pthread_mutex_unlock(&pool.lock);
	return err;
}

void dm_progress_put(void)
{
	pthread_mutex_lock(&pool.lock);
	if (--pool.refs == 0) {
		for (int i = 0; i < pool.n; i++)
			worker_stop(&pool.w[i]);
		free(pool.w);
		pool.w = NULL;
	}
	pthread_mutex_unlock(&pool.lock);
}

void dm_progress_attach(struct dm_sock *s)
{
	struct epoll_event ev = { .events = sock_events(s), .data.ptr = s };
	struct dm_worker *w;

	pthread_mutex_lock(&pool.lock);
	w = &pool.w[pool.rr++ % pool.n];
	pthread_mutex_unlock(&pool.lock);
	pthread_mutex_lock(&w->mu);
	if (w->nsocks == w->cap) {
		int cap = w->cap ? 2 * w->cap : 16;
		struct dm_sock **n = realloc(w->socks, cap * sizeof(*n));

		if (!n)
			abort();	/* a few bytes; nothing sane to do without them */
		w->socks = n;
		w->cap = cap;
	}
	w->socks[w->nsocks++] = s;
	s->worker = w;
	atomic_store(&s->last_ms, dm_now_ms());
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->fd, &ev))
		DM_WARN("epoll_ctl(ADD): %s", strerror(errno));
	pthread_mutex_unlock(&w->mu);
}

void dm_progress_detach(struct dm_sock *s)
{
	struct dm_worker *w = s->worker;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < w->nsocks; i++) {
		if (w->socks[i] == s) {
			w->socks[i] = w->socks[--w->nsocks];
			break;
		}
	}
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	pthread_mutex_unlock(&w->mu);
	s->worker = NULL;
}

void dm_progress_barrier(struct dm_sock *s)
{
	struct dm_worker *w = s->worker;

	/* a pass holds w->mu from its first task to its last */
	if (w) {
		pthread_mutex_lock(&w->mu);
		pthread_mutex_unlock(&w->mu);
	}
}

void dm_sock_enqueue(struct dm_sock *s, struct dm_task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->tail) {
		s->tail->next = t;
	} else {
		s->head = t;
		/* the stall clock starts when the socket gets work, not at its last byte */
		atomic_store(&s->last_ms, dm_now_ms());
	}
	s->tail = t;
	pthread_mutex_unlock(&s->lock);
}
