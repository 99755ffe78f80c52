// SPDX-License-Identifier: MIT
/*
 * TEST-ONLY devmem emulation (NCCL_DEVMEM_TEST_EMULATE=1): on a machine with
 * a GPU but no devmem NIC, a copy-mode receive comm that NCCL unpacks
 * (NCCL_DEVMEM_UNPACK=nccl) lands each chunk in a pool of GPU memory of its
 * own and describes it to NCCL exactly as devmem fragments: 4 KiB pieces at
 * page-aligned pool offsets, published in NCCL's metadata, so that NCCL's own
 * kernel runs the unpack it would run behind a real devmem NIC. The bytes go
 * socket → pinned lane slot → async copy into the pool (the NIC's DMA in the
 * real thing); the pool space is held until irecvConsumed, as a devmem token
 * would be. Never on by default, and loud when on.
 *
 * Each data socket owns an equal region of the pool, used as a ring in
 * receive order (NCCL consumes in that order), so sockets allocate without a
 * lock; the API thread frees by moving the ring's tail at irecvConsumed.
 */
#include "placement/placement.h"
#include "placement/devq.h"
#include "gpu/gpu.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define EMU_FRAG 4096u

struct dm_emu {
	struct gpud_mem *pool;
	uint64_t dev;
	uint64_t region;		/* bytes per socket */
	struct {
		uint64_t head;		/* bytes ever allocated (progress thread) */
		_Atomic uint64_t tail;	/* bytes ever freed (API thread) */
	} ring[DM_MAX_SOCKS];
};

int dm_emu_attach(struct dm_comm *c, uint64_t *bounce)
{
	struct gpud_mem_opts o = { .sz = sizeof(o), .flags = GPUD_MEM_F_NO_DMABUF };
	int dev = dm_cuda_current_device(), err;
	struct dm_emu *e;

	if (dev < 0) {
		DM_WARN("NCCL_DEVMEM_TEST_EMULATE: no current CUDA device on this thread: not emulating");
		return -ENODEV;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	o.device = dev;
	e->region = dm_cfg.pool_size / (uint64_t)c->nsocks / EMU_FRAG * EMU_FRAG;
	err = gpud_mem_create(GPUD_MEM_CUDA, e->region * (uint64_t)c->nsocks, &o, &e->pool);
	if (err) {
		DM_WARN("NCCL_DEVMEM_TEST_EMULATE: cannot allocate the emulated pool: %s",
			gpud_errmsg());
		free(e);
		return err;
	}
	e->dev = gpud_mem_device_ptr(e->pool);
	c->emu = e;
	*bounce = e->dev;
	DM_WARN("recv comm %p: TEST-ONLY devmem emulation (NCCL_DEVMEM_TEST_EMULATE): payload lands in %llu MiB of GPU memory of device %d and NCCL's kernel unpacks it; never use this outside tests",
		(void *)c, (unsigned long long)(e->region * (uint64_t)c->nsocks) >> 20, dev);
	return 0;
}

void dm_emu_detach(struct dm_comm *c)
{
	if (!c->emu)
		return;
	gpud_mem_free(c->emu->pool);
	free(c->emu);
	c->emu = NULL;
}

void dm_emu_consumed(struct dm_comm *c, struct dm_req *r)
{
	for (int i = 0; c->emu && i < c->nsocks; i++) {
		uint64_t end = r->emu_end[i];

		/* receives are consumed in order: the tail only moves forward */
		if (end > atomic_load(&c->emu->ring[i].tail))
			atomic_store(&c->emu->ring[i].tail, end);
		r->emu_end[i] = 0;
	}
}

/* Room for @need contiguous bytes in the socket's region: its offset, or -1. */
static int64_t ring_alloc(struct dm_emu *e, int sock, uint64_t need)
{
	uint64_t head = e->ring[sock].head, tail = atomic_load(&e->ring[sock].tail);
	uint64_t at = head % e->region;

	if (at + need > e->region)	/* no wrap inside a chunk: skip to the start */
		head += e->region - at;
	if (head + need - tail > e->region)
		return -1;
	e->ring[sock].head = head;
	return (int64_t)(head % e->region);
}

/*
 * One chunk of a receive NCCL unpacks: like copy.c's CUDA receive, but the
 * slot goes into the emulated pool and the chunk becomes metadata entries.
 */
int dm_emu_step(struct dm_sock *s, struct dm_task *t, uint64_t off, uint64_t len)
{
	struct dm_comm *c = s->comm;
	struct dm_emu *e = c->emu;
	uint64_t need = DM_DIV_ROUND_UP(len, EMU_FRAG) * EMU_FRAG;
	struct dm_lane *l = s->lane;
	struct dm_slot *sl;
	int64_t at;
	ssize_t n;
	int err;

	if (!t->slot) {
		t->slot = dm_lane_take(l);
		if (!t->slot)
			return DM_STEP_GPU;
	}
	sl = t->slot;
	if (t->pos < len) {
		n = recv(s->fd, sl->host + t->pos, len - t->pos, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (n <= 0)
			return dm_comm_fail(c, n ? -errno : -ECONNRESET,
					    "data socket %d: %s in the middle of a message", s->idx,
					    n ? strerror(errno) : "peer closed the connection");
		t->pos += n;
		if (t->pos < len)
			return DM_STEP_MORE;
	}
	/* the chunk is in the slot; the pool may be full until NCCL consumes */
	at = ring_alloc(e, s->idx, need);
	if (at < 0)
		return DM_STEP_GPU;
	at += (int64_t)(e->region * (uint64_t)s->idx);
	err = dm_lane_htod(l, (void *)(uintptr_t)(e->dev + (uint64_t)at), sl->host, len);
	for (uint64_t p = 0; !err && p < len; p += EMU_FRAG) {
		struct dm_unpack_entry pe = { .src_off = (uint32_t)((uint64_t)at + p),
					      .len = (uint32_t)(len - p < EMU_FRAG ? len - p : EMU_FRAG),
					      .dst_off = off + p };

		/* a full slot of metadata: this piece is ours to copy */
		if (dm_devq_add(c->devq, t->req->unpack_seq, &pe, (uint64_t)s->idx << 56))
			err = dm_lane_htod(l, t->base + off + p, sl->host + p, pe.len);
	}
	if (!err)
		err = dm_lane_commit(l, sl, false);
	else
		dm_lane_put(l, sl);
	t->slot = NULL;
	if (err)
		return dm_comm_fail(c, err, "data socket %d: emulated devmem copy failed", s->idx);
	e->ring[s->idx].head += need;
	t->req->emu_end[s->idx] = e->ring[s->idx].head;
	t->tag = sl->tag;
	t->pos = 0;
	t->staged = false;
	t->k += t->step;
	return t->k * t->chunk >= t->size ? DM_STEP_GPU : DM_STEP_MORE;
}
