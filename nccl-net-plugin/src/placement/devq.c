// SPDX-License-Identifier: MIT
/*
 * Metadata writer for NCCL's device-side unpack (see devq.h and
 * ncclnet/net_device_unpack.h). One allocation holds the handle the kernel
 * reads and writes (head) and the metadata it reads; both live in host
 * memory mapped into the GPU, so the CPU writes them with plain stores and
 * the GPU sees them once NCCL's proxy has fenced and published the step.
 *
 * Ordering: progress threads write entries of a receive and then drop the
 * receive's task count (release); the API thread sees the count reach zero
 * (acquire) before it publishes cnt with a release store, and test() says
 * "done" only after that. The slot state (seq, taken, published) is written
 * by the API thread before the receive's tasks are queued and after they
 * have finished, so progress threads read it without a lock.
 */
#include "placement/devq.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The handle first, the metadata page-aligned after it. */
#define DM_DEVQ_META_OFF 4096u

struct dm_devq_slot {
	int64_t seq;
	bool taken;
	bool published;
	atomic_uint n;			/* pieces offered, including refused ones */
	uint64_t refs[DM_DEVQ_MAX_ENTRIES];
};

struct dm_devq {
	struct dm_devq_alloc alloc;	/* .alloc NULL: mmap()ed */
	void *host;			/* the block: handle, then metadata */
	uint64_t dev;			/* its device address */
	size_t size;
	ncclNetUnpackHandle_t *handle;
	ncclNetUnpackMeta_t *meta;
	int64_t next_seq;
	int busy;
	struct dm_devq_slot slot[DM_DEVQ_DEPTH];
};

_Static_assert(sizeof(ncclNetUnpackHandle_t) <= DM_DEVQ_META_OFF, "handle fits before the metadata");
_Static_assert(sizeof(struct dm_unpack_entry) == sizeof(ncclNetUnpackLoadMeta_t) &&
		       offsetof(struct dm_unpack_entry, len) == offsetof(ncclNetUnpackLoadMeta_t, len) &&
		       offsetof(struct dm_unpack_entry, dst_off) ==
			       offsetof(ncclNetUnpackLoadMeta_t, dst_off),
	       "our entries are NCCL's loadMeta");

static int block_alloc(struct dm_devq *q)
{
	void *p;
	int err;

	q->size = DM_DEVQ_META_OFF + sizeof(ncclNetUnpackMeta_t);
	if (q->alloc.alloc) {
		err = q->alloc.alloc(q->alloc.ctx, q->size, &q->host, &q->dev);
		return err;
	}
	p = mmap(NULL, q->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	q->host = p;
	q->dev = (uint64_t)(uintptr_t)p;
	return 0;
}

static void block_free(struct dm_devq *q)
{
	if (!q->host)
		return;
	if (q->alloc.alloc)
		q->alloc.free(q->alloc.ctx, q->host);
	else
		munmap(q->host, q->size);
	q->host = NULL;
}

int dm_devq_create(uint64_t bounce, const struct dm_devq_alloc *alloc, struct dm_devq **out)
{
	struct dm_devq *q;
	int err;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	if (alloc)
		q->alloc = *alloc;
	err = block_alloc(q);
	if (err)
		goto err_free;
	memset(q->host, 0, q->size);
	q->handle = q->host;
	q->meta = (ncclNetUnpackMeta_t *)((char *)q->host + DM_DEVQ_META_OFF);
	/* the pointers inside are what the GPU dereferences: device addresses */
	q->handle->meta = (ncclNetUnpackMeta_t *)(uintptr_t)(q->dev + DM_DEVQ_META_OFF);
	q->handle->bounce_buf = (void *)(uintptr_t)bounce;
	/* the kernel increments before it reads: the first receive is slot 0 */
	q->handle->head = UINT64_MAX;
	*out = q;
	return 0;

err_free:
	free(q);
	return err;
}

void dm_devq_free(struct dm_devq *q)
{
	if (!q)
		return;
	block_free(q);
	free(q);
}

void *dm_devq_dev_handle(const struct dm_devq *q)
{
	return (void *)(uintptr_t)q->dev;
}

ncclNetUnpackHandle_t *dm_devq_host_handle(const struct dm_devq *q)
{
	return q->handle;
}

static struct dm_devq_slot *slot_of(const struct dm_devq *q, int64_t seq)
{
	struct dm_devq_slot *s;

	if (seq < 0)
		return NULL;
	s = (struct dm_devq_slot *)&q->slot[seq % DM_DEVQ_DEPTH];
	return s->taken && s->seq == seq ? s : NULL;
}

int64_t dm_devq_take(struct dm_devq *q)
{
	int64_t seq = q->next_seq;
	struct dm_devq_slot *s = &q->slot[seq % DM_DEVQ_DEPTH];

	if (s->taken)
		return -EBUSY;	/* the receive 16 back is still being consumed */
	s->seq = seq;
	s->taken = true;
	s->published = false;
	atomic_store_explicit(&s->n, 0, memory_order_relaxed);
	/* nobody reads a released slot; zero it so a stale count never shows */
	__atomic_store_n(&q->meta->cnt[seq % DM_DEVQ_DEPTH], 0, __ATOMIC_RELAXED);
	q->next_seq++;
	q->busy++;
	return seq;
}

int dm_devq_add(struct dm_devq *q, int64_t seq, const struct dm_unpack_entry *e, uint64_t ref)
{
	struct dm_devq_slot *s = slot_of(q, seq);
	unsigned int i;

	if (!s || s->published)
		return -EINVAL;
	i = atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
	if (i >= DM_DEVQ_MAX_ENTRIES)
		return -ENOSPC;
	memcpy(&q->meta->mem[seq % DM_DEVQ_DEPTH][i], e, sizeof(*e));
	s->refs[i] = ref;
	return 0;
}

uint32_t dm_devq_publish(struct dm_devq *q, int64_t seq, uint32_t *overflow)
{
	struct dm_devq_slot *s = slot_of(q, seq);
	unsigned int n;

	if (!s)
		return 0;
	n = atomic_load_explicit(&s->n, memory_order_acquire);
	if (overflow)
		*overflow = n > DM_DEVQ_MAX_ENTRIES ? n - DM_DEVQ_MAX_ENTRIES : 0;
	if (n > DM_DEVQ_MAX_ENTRIES)
		n = DM_DEVQ_MAX_ENTRIES;
	/* entries before the count, for every observer */
	__atomic_store_n(&q->meta->cnt[seq % DM_DEVQ_DEPTH], (uint64_t)n, __ATOMIC_RELEASE);
	s->published = true;
	return n;
}

const uint64_t *dm_devq_refs(const struct dm_devq *q, int64_t seq, uint32_t *n)
{
	struct dm_devq_slot *s = slot_of(q, seq);

	if (!s || !s->published) {
		*n = 0;
		return NULL;
	}
	*n = (uint32_t)q->meta->cnt[seq % DM_DEVQ_DEPTH];
	return s->refs;
}

void dm_devq_release(struct dm_devq *q, int64_t seq)
{
	struct dm_devq_slot *s = slot_of(q, seq);

	if (!s)
		return;
	s->taken = false;
	s->published = false;
	q->busy--;
}

int dm_devq_busy(const struct dm_devq *q)
{
	return q->busy;
}
