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
 *  - otherwise the plugin copies it before test() can say done: memcpy,
 *    host-to-device copies, our unpack kernel (GPU pool to CUDA buffer) or
 *    device-to-host copies (GPU pool to host buffer); the token goes back
 *    right after.
 * A fragment may straddle chunks or messages; it goes back to the kernel
 * only once all of it is placed and no entry refers to it any more, so the
 * NIC never overwrites bytes that someone still has to copy.
 */
#include "devmem.h"
#include "devq.h"
#include "unpack.h"

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
	int n = 0, err = 0, e;

	for (uint64_t seq = from > r->head ? from : r->head; seq < r->next; seq++) {
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
	while (r->head < r->next && dm_held_at(r, r->head)->released)
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

/* The plugin's own copies of @n pieces into the task's buffer. */
static int place(struct dm_sock *s, struct dm_task *t, const struct dm_unpack_entry *e,
		 const bool *from_copy, int n)
{
	struct dm_devmem_dev *d = dm_devmem_dev(s->comm->dev);
	bool cuda_dst = t->mr && t->mr->type == NCCL_PTR_CUDA;
	struct dm_unpack_entry dev_e[DM_FRAG_BATCH];
	const char *copy = NULL;
	int ndev = 0, err = 0;

	for (int i = 0; i < n && !err; i++) {
		const char *src = d->pool_host;

		if (from_copy[i]) {
			if (!copy)
				copy = gpud_mem_host_ptr(gpud_rx_copy_mem(s->dmrx->rx));
			src = copy;
		}
		if (src && cuda_dst)
			err = dm_cuda_htod(t->mr->cuctx, t->base + e[i].dst_off, src + e[i].src_off,
					   e[i].len);
		else if (src)
			dm_unpack_host(&e[i], 1, src, t->base);
		else if (!d->pool_dev || from_copy[i])
			err = -EFAULT;
		else if (cuda_dst)
			dev_e[ndev++] = e[i];	/* one kernel launch for the lot */
		else
			err = dm_cuda_dtoh(d->pool_ctx, t->base + e[i].dst_off,
					   (const void *)(uintptr_t)(d->pool_dev + e[i].src_off),
					   e[i].len);
		if (!err && !src && !cuda_dst && !atomic_exchange(&d->dtoh_logged, true))
			DM_INFO("host-memory receives (NCCL's LL buffers) from the GPU pool are copied device-to-host piece by piece (logged once)");
	}
	if (!err && ndev)
		err = dm_unpack_cuda(t->mr->cuctx, dev_e, ndev, d->pool_dev,
				     (uint64_t)(uintptr_t)t->base);
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
	if (held_push(r, f, n)) {
		gpud_rx_release(r->rx, f, n);
		return dm_comm_fail(s->comm, -ENOMEM, "data socket %d: out of memory", s->idx);
	}
	return n;
}

/*
 * Places fragment bytes into the head task's current chunk: DM_STEP_DONE,
 * DM_STEP_MORE, 0 (nothing to read) or -errno (the comm failed).
 */
int dm_devmem_step(struct dm_sock *s, struct dm_task *t)
{
	struct dm_devmem_rx *r = s->dmrx;
	struct dm_comm *c = s->comm;
	struct dm_devmem_dev *d = dm_devmem_dev(c->dev);
	int64_t seq = c->devq ? t->req->unpack_seq : -1;
	struct dm_unpack_entry e[DM_FRAG_BATCH];
	uint64_t off = t->k * t->chunk, len, first = r->next;
	bool from_copy[DM_FRAG_BATCH];
	int ne = 0, n, err;

	if (off >= t->size)
		return DM_STEP_DONE;
	len = t->size - off < t->chunk ? t->size - off : t->chunk;
	if (r->next == r->tail) {
		n = recv_more(s, r);
		if (n <= 0)
			return n;
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
	err = place(s, t, e, from_copy, ne);
	if (err)
		return dm_comm_fail(c, err, "data socket %d: unpacking %d fragment piece(s) failed%s",
				    s->idx, ne, err == -EFAULT ? ": fragment memory not reachable" : "");
	/* only now may the NIC reuse those pages */
	err = dm_held_release(r, first);
	if (err < 0)
		return dm_comm_fail(c, err, "returning devmem tokens failed: %s", gpud_errmsg());
	if (t->pos < len)
		return DM_STEP_MORE;
	t->pos = 0;
	t->k += t->step;
	return t->k * t->chunk >= t->size ? DM_STEP_DONE : DM_STEP_MORE;
}
