// SPDX-License-Identifier: MIT
/*
 * Copy-mode data path, run by the progress threads: one chunk at a time
 * between a data socket and the NCCL buffer. Host buffers are read into and
 * sent from directly; CUDA buffers go through a pinned host chunk (the
 * socket's staging) with synchronous copies, so a finished task means the
 * bytes are where NCCL will look.
 */
#include "plugin.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static int io_fail(struct dm_sock *s, ssize_t n, bool is_recv)
{
	int err = n == 0 ? -ECONNRESET : -errno;

	if (n == 0)
		return dm_comm_fail(s->comm, err,
				    "data socket %d: peer closed the connection in the middle of a message",
				    s->idx);
	return dm_comm_fail(s->comm, err, "data socket %d: %s failed: %s", s->idx,
			    is_recv ? "recv" : "send", strerror(-err));
}

int dm_copy_step(struct dm_sock *s, struct dm_task *t)
{
	struct dm_comm *c = s->comm;
	bool cuda = t->mr && t->mr->type == NCCL_PTR_CUDA;
	uint64_t off = t->k * t->chunk;
	uint64_t len;
	char *p;
	ssize_t n;
	int err;

	if (off >= t->size)
		return DM_STEP_DONE;
	len = t->size - off < t->chunk ? t->size - off : t->chunk;
	if (cuda && !s->staging) {
		err = dm_cuda_host_alloc(c->max_chunk, &s->staging);
		if (err)
			return dm_comm_fail(c, err, "cannot allocate a pinned staging chunk");
	}
	if (cuda && !c->is_recv && !t->staged) {
		err = dm_cuda_dtoh(t->mr->cuctx, s->staging, t->base + off, len);
		if (err)
			return dm_comm_fail(c, err, "device-to-host staging copy failed");
		t->staged = true;
	}
	p = (cuda ? (char *)s->staging : t->base + off) + t->pos;
	if (c->is_recv)
		n = recv(s->fd, p, len - t->pos, MSG_DONTWAIT);
	else
		n = send(s->fd, p, len - t->pos, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0)
		return io_fail(s, n, c->is_recv);
	t->pos += n;
	if (t->pos < len)
		return DM_STEP_MORE;
	if (cuda && c->is_recv) {
		err = dm_cuda_htod(t->mr->cuctx, t->base + off, s->staging, len);
		if (err)
			return dm_comm_fail(c, err, "host-to-device copy of a received chunk failed");
	}
	t->pos = 0;
	t->staged = false;
	t->k += t->step;
	return t->k * t->chunk >= t->size ? DM_STEP_DONE : DM_STEP_MORE;
}
