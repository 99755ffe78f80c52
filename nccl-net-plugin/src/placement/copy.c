// SPDX-License-Identifier: MIT
/*
 * Copy-mode data path, run by the progress threads: one chunk at a time
 * between a data socket and the NCCL buffer. Host buffers are read into and
 * sent from directly. CUDA buffers go through the socket's lane (gpu.h):
 * a received chunk lands in a pinned slot, its host-to-device copy is issued
 * on the comm's own stream and the next chunk goes on into the next slot; a
 * task is finished only once the event after its last copy has completed,
 * so test() never says done before the bytes are on the GPU. A sent chunk is
 * copied device-to-host into a slot first and sent once that copy's event
 * has completed. Nothing here waits: a slot or event not ready yet is
 * DM_STEP_GPU, and the worker polls again.
 */
#include "placement/placement.h"
#include "gpu/gpu.h"

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

static ssize_t io(struct dm_sock *s, char *p, size_t len)
{
	if (s->comm->is_recv)
		return recv(s->fd, p, len, MSG_DONTWAIT);
	return send(s->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static bool would_block(ssize_t n)
{
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static int next_chunk(struct dm_task *t)
{
	t->pos = 0;
	t->staged = false;
	t->k += t->step;
	return t->k * t->chunk >= t->size ? DM_STEP_DONE : DM_STEP_MORE;
}

static int host_step(struct dm_sock *s, struct dm_task *t, uint64_t off, uint64_t len)
{
	ssize_t n = io(s, t->base + off + t->pos, len - t->pos);

	if (would_block(n))
		return 0;
	if (n <= 0)
		return io_fail(s, n, s->comm->is_recv);
	t->pos += n;
	/*
	 * Short: the receive queue was empty (or the send buffer full) when the
	 * call returned, so another try now would only fetch EAGAIN; the epoll
	 * re-arm or the next test() picks the socket up again.
	 */
	return t->pos < len ? DM_STEP_DRAINED : next_chunk(t);
}

static int lane_fail(struct dm_sock *s, int err, const char *what)
{
	return dm_comm_fail(s->comm, err, "data socket %d: %s failed", s->idx, what);
}

/* Receive into a slot, then an async host-to-device copy of the whole chunk. */
static int cuda_recv_step(struct dm_sock *s, struct dm_task *t, uint64_t off, uint64_t len)
{
	struct dm_lane *l = s->lane;
	struct dm_slot *sl;
	ssize_t n;
	int err;

	if (!t->slot) {
		t->slot = dm_lane_take(l);
		if (!t->slot)
			return DM_STEP_GPU;	/* every slot's copy still in flight */
	}
	sl = t->slot;
	n = io(s, sl->host + t->pos, len - t->pos);
	if (would_block(n))
		return 0;
	if (n <= 0)
		return io_fail(s, n, true);
	t->pos += n;
	if (t->pos < len)
		return DM_STEP_MORE;
	t->slot = NULL;
	err = dm_lane_htod(l, t->base + off, sl->host, len);
	if (err) {
		dm_lane_put(l, sl);
		return lane_fail(s, err, "host-to-device copy of a received chunk");
	}
	err = dm_lane_commit(l, sl, false);
	if (err)
		return lane_fail(s, err, "recording the copy's event");
	t->tag = sl->tag;
	return next_chunk(t) == DM_STEP_DONE ? DM_STEP_GPU : DM_STEP_MORE;
}

/* An async device-to-host copy into a slot, then the slot's bytes onto the socket. */
static int cuda_send_step(struct dm_sock *s, struct dm_task *t, uint64_t off, uint64_t len)
{
	struct dm_lane *l = s->lane;
	ssize_t n;
	int err;

	if (!t->staged) {
		struct dm_slot *sl = dm_lane_take(l);

		if (!sl)
			return DM_STEP_GPU;
		err = dm_lane_dtoh(l, sl->host, t->base + off, len);
		if (!err)
			err = dm_lane_commit(l, sl, true);
		else
			dm_lane_put(l, sl);
		if (err)
			return lane_fail(s, err, "device-to-host staging copy");
		t->slot = sl;
		t->tag = sl->tag;
		t->staged = true;
	}
	if (!dm_lane_done(l, t->tag)) {
		err = dm_lane_reap(l);
		if (err)
			return lane_fail(s, err, "device-to-host staging copy");
		if (!dm_lane_done(l, t->tag))
			return DM_STEP_GPU;
	}
	n = io(s, t->slot->host + t->pos, len - t->pos);
	if (would_block(n))
		return 0;
	if (n <= 0)
		return io_fail(s, n, false);
	t->pos += n;
	if (t->pos < len)
		return DM_STEP_MORE;
	dm_lane_put(l, t->slot);
	t->slot = NULL;
	return next_chunk(t);
}

/* A CUDA receive whose chunks are all issued: done once its last copy is. */
static int cuda_recv_finish(struct dm_sock *s, struct dm_task *t)
{
	int err;

	if (dm_lane_done(s->lane, t->tag))
		return DM_STEP_DONE;
	err = dm_lane_reap(s->lane);
	if (err)
		return lane_fail(s, err, "host-to-device copy of a received chunk");
	return dm_lane_done(s->lane, t->tag) ? DM_STEP_DONE : DM_STEP_GPU;
}

int dm_copy_step(struct dm_sock *s, struct dm_task *t)
{
	struct dm_comm *c = s->comm;
	bool cuda = t->mr && t->mr->type == NCCL_PTR_CUDA;
	uint64_t off = t->k * t->chunk;
	uint64_t len;

	if (cuda && !s->lane)
		return dm_comm_fail(c, -ENODEV, "data socket %d: a CUDA buffer but no GPU lane (regMr did not attach the comm)",
				    s->idx);
	if (off >= t->size)
		return cuda && c->is_recv ? cuda_recv_finish(s, t) : DM_STEP_DONE;
	len = t->size - off < t->chunk ? t->size - off : t->chunk;
	if (!cuda)
		return host_step(s, t, off, len);
	if (c->emu && c->is_recv && t->req->unpack_seq >= 0)
		return dm_emu_step(s, t, off, len);	/* tests only */
	return c->is_recv ? cuda_recv_step(s, t, off, len) : cuda_send_step(s, t, off, len);
}
