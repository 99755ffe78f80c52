/* SPDX-License-Identifier: MIT */
/*
 * The metadata queue NCCL's device-side unpack reads (one per receive comm
 * in NCCL_DEVMEM_UNPACK=nccl mode; protocol in ncclnet/net_device_unpack.h).
 * It writes entries and counts; it knows nothing about sockets or tokens,
 * which devmem.c keeps in step with it through the per-entry refs.
 *
 * Threads: take, publish, refs, release and free from one thread at a time
 * (the comm's API thread, under api_lock); add from any number of progress
 * threads at once, for receives that were taken and not yet published.
 */
#ifndef DM_DEVQ_H
#define DM_DEVQ_H

#include <stddef.h>
#include <stdint.h>

#include "ncclnet/net_device_unpack.h"
#include "gpu/unpack.h"

#define DM_DEVQ_DEPTH NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH
#define DM_DEVQ_MAX_ENTRIES NCCL_NET_UNPACK_MAX_SLICE_PAGES

/*
 * Where the queue's memory comes from: host memory the GPU can read and
 * write (cuMemHostAlloc with DEVICEMAP), with its device address. NULL
 * alloc: plain page-aligned host memory whose device address is its host
 * address, for a consumer on the CPU (the tests' emulation of NCCL's kernel).
 */
struct dm_devq_alloc {
	int (*alloc)(void *ctx, size_t size, void **host, uint64_t *dev);
	void (*free)(void *ctx, void *host);
	void *ctx;
};

struct dm_devq;

/*
 * @bounce: device address of the memory src_off counts from (the devmem
 * pool), 0 when nothing will be published (a comm in copy mode). Returns 0
 * and *out, or -ENOMEM / the allocator's error.
 */
int dm_devq_create(uint64_t bounce, const struct dm_devq_alloc *alloc, struct dm_devq **out);
void dm_devq_free(struct dm_devq *q);	/* NULL ok */

/* What ncclNetDeviceHandle_t.handle gets: the handle's device address. */
void *dm_devq_dev_handle(const struct dm_devq *q);
/* The same handle and metadata as the CPU sees them. */
ncclNetUnpackHandle_t *dm_devq_host_handle(const struct dm_devq *q);

/*
 * Claims the slot of the next receive: its sequence number (0, 1, ...), or
 * -EBUSY while the receive DM_DEVQ_DEPTH before it has not been consumed
 * (nothing claimed; ask again later).
 */
int64_t dm_devq_take(struct dm_devq *q);

/*
 * One piece of receive @seq: 0, or -ENOSPC when it already has
 * DM_DEVQ_MAX_ENTRIES (the caller must copy the piece itself). @ref is the
 * caller's tag for the fragment the piece lies in, returned by
 * dm_devq_refs(). -EINVAL: @seq is not taken or already published.
 */
int dm_devq_add(struct dm_devq *q, int64_t seq, const struct dm_unpack_entry *e, uint64_t ref);

/*
 * Every piece of @seq added: stores cnt (release order after the entries)
 * and returns it; *overflow (may be NULL) gets the pieces -ENOSPC refused.
 */
uint32_t dm_devq_publish(struct dm_devq *q, int64_t seq, uint32_t *overflow);

/* The refs of @seq's published entries, in entry order; *n of them. */
const uint64_t *dm_devq_refs(const struct dm_devq *q, int64_t seq, uint32_t *n);

/* The consumer is done with @seq: its slot may be claimed again. */
void dm_devq_release(struct dm_devq *q, int64_t seq);

/* Slots claimed and not yet released. */
int dm_devq_busy(const struct dm_devq *q);

#endif /* DM_DEVQ_H */
