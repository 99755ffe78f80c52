/* SPDX-License-Identifier: MIT */
/*
 * libnccl-net-devmem, layer 1 (gpu): CUDA in the plugin — the driver
 * (cuda.c, through libgpudirect's one loader) and the GPU engine of the data
 * path (gpu.c). Its .c files include base/; this header includes no layer
 * but its own.
 *
 * The rule every function here keeps: code on a thread NCCL drives (its
 * proxy thread, our progress threads) never waits for work it does not own.
 * NCCL's collective kernel may be spinning until the very receive we are
 * completing is done, so no context-wide synchronise, nothing on the legacy default
 * stream (it waits for every blocking stream, and a framework's default
 * stream is one), no synchronous cuMemcpy, no cuMemAlloc/cuMemFree while
 * data moves. Each comm has a non-blocking stream of its own; each data
 * socket a lane of pinned slots whose copies and kernels run on that stream
 * and finish by events that are polled, never waited for.
 */
#ifndef DM_GPU_H
#define DM_GPU_H

#include "gpu/unpack.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the driver (cuda.c) ---- */
/* libcuda loaded with every entry point the data path needs, and a device. */
bool dm_cuda_available(void);
/* Why dm_cuda_available() is false ("" when it is true). */
const char *dm_cuda_why(void);
int dm_cuda_ptr_ctx(const void *ptr, void **ctx);
/* Device of the calling thread's current CUDA context, or -1 (none, or no CUDA). */
int dm_cuda_current_device(void);
/*
 * Host memory the GPU can read and write (cuMemHostAlloc DEVICEMAP|PORTABLE)
 * and its device address, allocated in @ctx (NULL: the calling thread's
 * current context; -ENODEV when there is none). Setup and teardown only.
 */
int dm_cuda_host_alloc_mapped(void *ctx, size_t size, void **host, uint64_t *dev);
void dm_cuda_host_free_mapped(void *ctx, void *host);
/* Pins host memory and maps it into the GPU (cuMemHostRegister DEVICEMAP). */
int dm_cuda_host_register(void *ctx, void *host, size_t size, uint64_t *dev);
void dm_cuda_host_unregister(void *ctx, void *host);

/* ---- a comm's engine (gpu.c): its context and its own non-blocking stream ---- */
struct dm_gpu;
/* API thread, at setup (regMr, devmem setup): stream, unpack module. */
int dm_gpu_create(void *ctx, struct dm_gpu **out);
/*
 * Waits for the engine's own stream, nothing else (teardown, once no thread
 * issues more; NULL is fine).
 */
void dm_gpu_drain(struct dm_gpu *g);
/* Drains, then frees the stream and the engine. NULL is fine. */
void dm_gpu_destroy(struct dm_gpu *g);
void *dm_gpu_ctx(const struct dm_gpu *g);

/*
 * One data socket's in-flight GPU work: DM_LANE_SLOTS slots, each a pinned
 * staging area (CPU-visible, DMA-able), room for the unpack kernel's entries
 * in GPU-mapped memory and an event. A slot is taken, filled, its copies or
 * kernel issued, committed (event recorded), and is free again once the
 * event has completed and its owner is done with it. Tags count commits:
 * the stream runs them in order, so tag n done means every tag <= n is.
 * Used under the socket's io lock, on progress threads.
 */
#define DM_LANE_SLOTS 4

struct dm_slot {
	char *host;			/* slot_bytes of pinned staging */
	struct dm_unpack_entry *meta;	/* DM_LANE_META entries, GPU-mapped */
	uint64_t tag;			/* set by commit */
	uint64_t first;			/* owner's use: devmem fragment seq it starts at */
};
#define DM_LANE_META 64

struct dm_lane;
int dm_lane_create(struct dm_gpu *g, size_t slot_bytes, struct dm_lane **out);
/* After dm_gpu_destroy() drained the stream, or before anything was issued. */
void dm_lane_destroy(struct dm_gpu *g, struct dm_lane *l);
size_t dm_lane_slot_bytes(const struct dm_lane *l);
/* A free slot, or NULL while every slot is in flight or held. */
struct dm_slot *dm_lane_take(struct dm_lane *l);
/* Async copies and the unpack kernel on the comm's stream, for @sl's commit. */
int dm_lane_htod(struct dm_lane *l, void *dst, const void *src, size_t len);
int dm_lane_dtoh(struct dm_lane *l, void *dst, const void *src, size_t len);
int dm_lane_unpack(struct dm_lane *l, struct dm_slot *sl, unsigned int n, uint64_t pool,
		   uint64_t dst);
/*
 * Records @sl's event after what was issued; @keep: the owner still uses the
 * slot's staging once done (a send) and gives it back with dm_lane_put().
 * Returns 0 with sl->tag set, or -errno.
 */
int dm_lane_commit(struct dm_lane *l, struct dm_slot *sl, bool keep);
void dm_lane_put(struct dm_lane *l, struct dm_slot *sl);
/* Polls the events (never waits): 0, or -errno when one failed. */
int dm_lane_reap(struct dm_lane *l);
/* Every commit up to @tag has completed (after the last reap). */
bool dm_lane_done(const struct dm_lane *l, uint64_t tag);
/* Lowest sl->first among slots still in flight, UINT64_MAX when none. */
uint64_t dm_lane_pending_first(const struct dm_lane *l);

#endif /* DM_GPU_H */
