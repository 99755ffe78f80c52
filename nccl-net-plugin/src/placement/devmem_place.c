// SPDX-License-Identifier: MIT
/*
 * Devmem fragments -> NCCL buffer, run by the progress threads (and by the
 * API thread for small messages), under the socket's io lock.
 *
 * Each piece of a fragment goes one of two ways:
 *  - NCCL's kernel copies it (NCCL_DEVMEM_UNPACK=nccl, a receive with a
 *    metadata slot, a fragment in the bound pool, room left in the slot):
 *    the piece becomes a metadata entry and its fragment's token waits for
 *    irecvConsumed (unpack_nccl.c);
 *  - otherwise the plugin copies it before test() can say done: memcpy
 *    between host memories; anything touching the GPU goes through the
 *    socket's lane (gpu.h) on the comm's own stream: host bytes gathered
 *    into a pinned slot and copied up in one async copy per contiguous run,
 *    GPU-pool pieces into a CUDA buffer by one launch of our unpack kernel
 *    (its entries in the slot's GPU-mapped metadata), GPU-pool pieces into
 *    a host buffer by async device-to-host copies. The task finishes once
 *    the slot's event has completed.
 * A fragment may straddle chunks or messages; it goes back to the kernel
 * only once all of it is placed, every GPU copy reading it has completed
 * and no entry refers to it any more, so the NIC never overwrites bytes that
 * someone still has to copy.
 */
#include "placement/devmem.h"
#include "placement/devq.h"
#include "gpu/gpu.h"
#include "gpu/unpack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int held_grow(struct dm_devmem_rx *r, uint64_t need)
{
	uint64_t cap = r->cap ? r->cap : DM_FRAG_BATCH;
	struct dm_held *n;

	while (cap < need)
		cap *= 2;
	if (cap == r->cap)
		return 0;
	n = calloc(cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (uint64_t seq = r->head; seq < r->tail; seq++)
		n[seq & (cap - 1)] = *dm_held_at(r, seq);
	free(r->ring);
	r->ring = n;
	r->cap = cap;
	return 0;
}

static int held_push(struct dm_devmem_rx *r, const struct gpud_frag *f, int n)
{
	int err = held_grow(r, r->tail - r->head + n);

	if (err)
		return err;
	for (int i = 0; i < n; i++)
		*dm_held_at(r, r->tail++) = (struct dm_held){ .f = f[i] };
	return 0;
}

int dm_held_release(struct dm_devmem_rx *r, uint64_t from)
{
	struct gpud_frag batch[DM_FRAG_BATCH];
	uint64_t end = r->next;
	int n = 0, err = 0, e;

	/* fragments a GPU copy in flight still reads stay with us */
	if (r->lane && dm_lane_pending_first(r->lane) < end)
		end = dm_lane_pending_first(r->lane);
	for (uint64_t seq = from > r->head ? from : r->head; seq < end; seq++) {
		struct dm_held *h = dm_held_at(r, seq);

		if (h->released || h->refs)
			continue;
		h->released = true;
		batch[n++] = h->f;
		if (n == DM_FRAG_BATCH) {
			e = gpud_rx_release(r->rx, batch, n);
			err = err ? err : e;
			n = 0;
		}
	}
	if (n) {
		e = gpud_rx_release(r->rx, batch, n);
		err = err ? err : e;
	}
	while (r->head < end && dm_held_at(r, r->head)->released)
		r->head++;
	return err;
}

void dm_held_free(struct dm_devmem_dev *d, struct dm_devmem_rx *r)
{
	for (uint64_t seq = r->head; seq < r->tail; seq++)
		if (dm_held_at(r, seq)->refs)
			atomic_fetch_sub(&d->held, 1);
	free(r->ring);
	r->ring = NULL;
	r->cap = r->head = r->next = r->tail = 0;
}

/* Where a piece's bytes are on the CPU: the pool, the copy ring, or NULL (GPU pool). */
static const char *piece_src(struct dm_sock *s, const struct dm_devmem_dev *d, bool from_copy)
{
	if (from_copy)
		return gpud_mem_host_ptr(gpud_rx_copy_mem(s->dmrx->rx));
	return d->pool_host;
}

/* Host bytes for a CUDA buffer: gathered into @sl, one copy per contiguous run. */
static int stage_up(struct dm_lane *l, struct dm_slot *sl, char *base,
		    const struct dm_unpack_entry *e, const char *const *src, int n)
{
	uint64_t run_dst = 0, run_len = 0, staged = 0, run_at = 0;
	int err = 0;

	for (int i = 0; i <= n && !err; i++) {
		bool host = i < n && src[i];

		if (host && run_len && e[i].dst_off == run_dst + run_len) {
			run_len += e[i].len;	/* extends the run */
		} else if (run_len && (i == n || host)) {
			err = dm_lane_htod(l, base + run_dst, sl->host + run_at, run_len);
			run_len = 0;
		}
		if (host && !run_len) {
			run_dst = e[i].dst_off;
			run_len = e[i].len;
			run_at = staged;
		}
		if (host) {
			memcpy(sl->host + staged, src[i] + e[i].src_off, e[i].len);
			staged += e[i].len;
		}
	}
	if (!err && run_len)
		err = dm_lane_htod(l, base + run_dst, sl->host + run_at, run_len);
	return err;
}

/*
 * The plugin's own copies of @n pieces into the task's buffer. GPU work is
 * issued on @sl (taken by the caller when the task needs the GPU) and
 * committed; *issued says whether anything went to the GPU.
 */
static int place(struct dm_sock *s, struct dm_task *t, struct dm_slot *sl,
		 const struct dm_unpack_entry *e, const bool *from_copy, int n, bool *issued)
{
	struct dm_devmem_dev *d = dm_devmem_dev(s->comm->dev);
	bool cuda_dst = t->mr && t->mr->type == NCCL_PTR_CUDA;
	const char *src[DM_FRAG_BATCH];
	unsigned int nmeta = 0;
	bool up = false;
	int err = 0;

	*issued = false;
	for (int i = 0; i < n && !err; i++) {
		src[i] = piece_src(s, d, from_copy[i]);
		if (!src[i] && (!d->pool_dev || from_copy[i]))
			return -EFAULT;
		if (src[i] && !cuda_dst) {
			dm_unpack_host(&e[i], 1, src[i], t->base);
		} else if (!sl) {
			return -ENODEV;	/* GPU bytes but no lane: dm_comm_gpu_attach never ran */
		} else if (src[i]) {
			up = true;
		} else if (cuda_dst) {
			sl->meta[nmeta++] = e[i];	/* one kernel launch for the lot */
		} else {
			err = dm_lane_dtoh(s->lane, t->base + e[i].dst_off,
					   (const void *)(uintptr_t)(d->pool_dev + e[i].src_off),
					   e[i].len);
			*issued = true;
			if (!atomic_exchange(&d->dtoh_logged, true))
				DM_INFO("host-memory receives (NCCL's LL buffers) from the GPU pool are copied device-to-host piece by piece (logged once)");
		}
	}
	if (!err && up) {
		err = stage_up(s->lane, sl, t->base, e, src, n);
		*issued = true;
	}
	if (!err && nmeta) {
		err = dm_lane_unpack(s->lane, sl, nmeta, d->pool_dev, (uint64_t)(uintptr_t)t->base);
		*issued = true;
	}
	return err;
}

/* May NCCL's kernel take (another piece of) this fragment? */
static bool hold_ok(struct dm_devmem_dev *d, const struct dm_held *h)
{
	if (h->refs || atomic_load_explicit(&d->held, memory_order_relaxed) < d->held_max)
		return true;
	if (!atomic_exchange(&d->held_logged, true))
		DM_INFO("fragments waiting for NCCL's kernel reached %u (NCCL_DEVMEM_UNPACK_HOLD=%d%% of the %zu MiB pool): until it consumes more, the plugin copies further pieces itself; a larger NCCL_DEVMEM_POOL_SIZE avoids the copies (logged once)",
			d->held_max, dm_cfg.unpack_hold, d->pool_size >> 20);
	return false;
}

static int recv_more(struct dm_sock *s, struct dm_devmem_rx *r)
{
	struct gpud_frag f[DM_FRAG_BATCH];
	int n = gpud_rx_recv(r->rx, f, DM_FRAG_BATCH, MSG_DONTWAIT);

	if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
		return 0;
	if (n == 0)
		return dm_comm_fail(s->comm, -ECONNRESET,
				    "data socket %d: peer closed the connection in the middle of a message",
				    s->idx);
	if (n < 0)
		return dm_comm_fail(s->comm, n, "data socket %d: devmem receive failed: %s%s",
				    s->idx, gpud_errmsg(),
				    n == -ENOBUFS ? " (pool exhausted: raise NCCL_DEVMEM_POOL_SIZE)" : "");
	/* the kernel's offsets are in this member's slice; the data path's in the pool */
	for (int i = 0; r->pool_off && i < n; i++)
		if (!(f[i].flags & GPUD_FRAG_COPY))
			f[i].offset += r->pool_off;
	if (held_push(r, f, n)) {
		gpud_rx_release(r->rx, f, n);
		return dm_comm_fail(s->comm, -ENOMEM, "data socket %d: out of memory", s->idx);
	}
	return n;
}

/* A task that needs the GPU: the comm's buffer or pool is GPU memory. */
static bool task_gpu(const struct dm_sock *s, const struct dm_task *t)
{
	return (t->mr && t->mr->type == NCCL_PTR_CUDA) || dm_devmem_dev(s->comm->dev)->pool_dev;
}

/* Polls the lane and gives back what its finished copies no longer read. */
static int lane_poll(struct dm_sock *s)
{
	struct dm_devmem_rx *r = s->dmrx;
	int err;

	if (!s->lane)
		return 0;
	err = dm_lane_reap(s->lane);
	if (err)
		return dm_comm_fail(s->comm, err, "data socket %d: a GPU copy of received fragments failed",
				    s->idx);
	err = dm_held_release(r, r->head);
	if (err < 0)
		return dm_comm_fail(s->comm, err, "returning devmem tokens failed: %s",
				    gpud_errmsg());
	return 0;
}

/*
 * Places fragment bytes into the head task's current chunk: DM_STEP_DONE,
 * DM_STEP_MORE, DM_STEP_GPU (a slot or the task's last copy not ready), 0
 * (nothing to read) or -errno (the comm failed).
 */
int dm_devmem_step(struct dm_sock *s, struct dm_task *t)
{
	struct dm_devmem_rx *r = s->dmrx;
	struct dm_comm *c = s->comm;
	struct dm_devmem_dev *d = dm_devmem_dev(c->dev);
	int64_t seq = c->devq ? t->req->unpack_seq : -1;
	struct dm_unpack_entry e[DM_FRAG_BATCH];
	uint64_t off = t->k * t->chunk, len, first = r->next;
	bool from_copy[DM_FRAG_BATCH], issued;
	struct dm_slot *sl = NULL;
	int ne = 0, n, err;

	err = lane_poll(s);
	if (err)
		return err;
	if (off >= t->size) {
		/* every byte assigned; done once the GPU has them too */
		if (s->lane && t->tag && !dm_lane_done(s->lane, t->tag))
			return DM_STEP_GPU;
		return DM_STEP_DONE;
	}
	len = t->size - off < t->chunk ? t->size - off : t->chunk;
	if (r->next == r->tail) {
		n = recv_more(s, r);
		if (n <= 0)
			return n;
	}
	if (s->lane && task_gpu(s, t)) {
		sl = dm_lane_take(s->lane);
		if (!sl)
			return DM_STEP_GPU;	/* fragments stay queued until a slot frees */
	}
	while (r->next < r->tail && t->pos < len && ne < DM_FRAG_BATCH) {
		struct dm_held *h = dm_held_at(r, r->next);
		uint32_t skip = r->next_off;
		uint64_t take = h->f.len - skip;
		bool copy = h->f.flags & GPUD_FRAG_COPY;
		struct dm_unpack_entry pe;

		if (take > len - t->pos)
			take = len - t->pos;
		pe = (struct dm_unpack_entry){ .src_off = (uint32_t)(h->f.offset + skip),
					       .len = (uint32_t)take, .dst_off = off + t->pos };
		/* copy-ring bytes have no place in the pool NCCL reads: ours to copy */
		if (seq >= 0 && !copy && hold_ok(d, h) &&
		    !dm_devq_add(c->devq, seq, &pe, DM_REF(s->idx, r->next))) {
			if (!h->refs++)
				atomic_fetch_add(&d->held, 1);
		} else {
			e[ne] = pe;
			from_copy[ne++] = copy;
		}
		t->pos += take;
		if (skip + take < h->f.len) {
			r->next_off = skip + (uint32_t)take;	/* the rest is the next chunk's */
			break;
		}
		r->next++;
		r->next_off = 0;
	}
	err = place(s, t, sl, e, from_copy, ne, &issued);
	if (!err && sl && issued) {
		sl->first = first;	/* tokens from here wait for the slot's event */
		err = dm_lane_commit(s->lane, sl, false);
		if (!err)
			t->tag = sl->tag;
	} else if (sl) {
		dm_lane_put(s->lane, sl);
	}
	if (err)
		return dm_comm_fail(c, err, "data socket %d: unpacking %d fragment piece(s) failed%s",
				    s->idx, ne, err == -EFAULT ? ": fragment memory not reachable" :
				    err == -ENODEV ? ": no GPU lane for a CUDA buffer or GPU pool" : "");
	/* only now may the NIC reuse those pages (after their GPU copies) */
	err = dm_held_release(r, first);
	if (err < 0)
		return dm_comm_fail(c, err, "returning devmem tokens failed: %s", gpud_errmsg());
	if (t->pos < len)
		return DM_STEP_MORE;
	t->pos = 0;
	t->k += t->step;
	if (t->k * t->chunk < t->size)
		return DM_STEP_MORE;
	return s->lane && t->tag && !dm_lane_done(s->lane, t->tag) ? DM_STEP_GPU : DM_STEP_DONE;
}
