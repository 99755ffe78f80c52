// SPDX-License-Identifier: MIT
/*
 * The comm state both the engine (engine/) and placement touch: a comm's
 * first error, its GPU engine, a socket's io lock and the wake-up of the
 * socket's progress thread. Here, below the engine, because placement
 * fails comms, attaches the GPU (devmem into GPU memory) and takes io locks
 * (irecvConsumed) too.
 */
#include "placement/placement.h"
#include "placement/devmem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int dm_comm_fail(struct dm_comm *c, int err, const char *fmt, ...)
{
	va_list ap;

	/*
	 * The WARN goes out before the error is published: another thread's
	 * test() returns the failure as soon as it sees c->err, and NCCL (or a
	 * test) then looks for the reason in the log. Under the lock, so a
	 * second failure neither logs nor overwrites the first.
	 */
	pthread_mutex_lock(&c->err_lock);
	if (!atomic_load(&c->err)) {
		va_start(ap, fmt);
		vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
		va_end(ap);
		DM_WARN("%s comm %p (dev %d): %s", c->is_recv ? "recv" : "send", (void *)c, c->dev,
			c->errmsg);
		atomic_store(&c->err, err);
	}
	pthread_mutex_unlock(&c->err_lock);
	return err;
}

int dm_comm_gpu_attach(struct dm_comm *c, void *cuctx)
{
	struct dm_lane *lanes[DM_MAX_SOCKS] = { 0 };
	struct dm_gpu *g = NULL;
	int err = 0, i;

	pthread_mutex_lock(&c->api_lock);
	if (c->gpu) {
		if (dm_gpu_ctx(c->gpu) != cuctx) {
			DM_WARN("%s comm %p: a buffer of another CUDA context (%p, the comm's is %p): one comm serves one context",
				c->is_recv ? "recv" : "send", (void *)c, cuctx, dm_gpu_ctx(c->gpu));
			err = -EINVAL;
		}
		goto out;
	}
	err = dm_gpu_create(cuctx, &g);
	for (i = 0; !err && i < c->nsocks; i++)
		err = dm_lane_create(g, c->max_chunk, &lanes[i]);
	if (err) {
		DM_WARN("%s comm %p: cannot set up its CUDA stream and staging: %s",
			c->is_recv ? "recv" : "send", (void *)c, strerror(-err));
		while (i-- > 0)
			dm_lane_destroy(g, lanes[i]);
		dm_gpu_destroy(g);
		goto out;
	}
	/* a progress thread may be in a step on the socket: publish under io */
	for (i = 0; i < c->nsocks; i++) {
		struct dm_sock *s = &c->socks[i];

		dm_sock_io_lock(s);
		s->lane = lanes[i];
		if (s->dmrx)
			s->dmrx->lane = lanes[i];
		dm_sock_io_unlock(s);
	}
	c->gpu = g;
	DM_INFO("%s comm %p: CUDA context %p, own non-blocking stream, %d x %d pinned %u KiB slots",
		c->is_recv ? "recv" : "send", (void *)c, cuctx, c->nsocks, DM_LANE_SLOTS,
		c->max_chunk >> 10);
out:
	pthread_mutex_unlock(&c->api_lock);
	return err;
}

void dm_progress_kick(struct dm_sock *s)
{
	uint64_t one = 1;

	if (s->worker && write(s->worker->evfd, &one, sizeof(one)) < 0) {
		/* counter saturated: the thread is awake anyway */
	}
}

void dm_sock_io_lock(struct dm_sock *s)
{
	pthread_mutex_lock(&s->io);
}

void dm_sock_io_unlock(struct dm_sock *s)
{
	pthread_mutex_unlock(&s->io);
	/* a worker that found io taken skipped the socket without re-arming it */
	if (dm_sock_head(s))
		dm_progress_kick(s);
}
