/* SPDX-License-Identifier: MIT */
/*
 * Devmem fragments → NCCL buffer. One entry per fragment piece, laid out
 * exactly like NCCL 2.28.9's device-unpack metadata entry (union loadMeta in
 * src/device/network/unpack/unpack_defs.h: u32 src_off, u32 len, u64
 * dst_off; 16 bytes; devq.c checks it against ncclNetUnpackLoadMeta_t), so
 * the same pieces go to our copies below or, with NCCL_DEVMEM_UNPACK=nccl,
 * into NCCL's metadata queue for its own kernels.
 */
#ifndef DM_UNPACK_H
#define DM_UNPACK_H

#include <stddef.h>
#include <stdint.h>

struct dm_unpack_entry {
	uint32_t src_off;	/* byte offset in the dma-buf pool (pool < 4 GiB) */
	uint32_t len;
	uint64_t dst_off;	/* byte offset in the destination buffer */
} __attribute__((aligned(16)));

_Static_assert(sizeof(struct dm_unpack_entry) == 16, "NCCL loadMeta is 16 bytes");

/* memcpy each piece from @pool into @dst (host memory). */
void dm_unpack_host(const struct dm_unpack_entry *e, size_t n, const void *pool, void *dst);

/*
 * The launch shape: one block per entry (grid-stride beyond the cap), 256
 * threads moving 16-byte vectors. gpu.c launches with it; the GPU test
 * (tests/gpu/unpack_kernel_test.c) measures the same shape.
 */
#define DM_UNPACK_THREADS 256u
#define DM_UNPACK_MAX_BLOCKS 1024u

/*
 * On the GPU: unpack.cu's dm_unpack_kernel(entries, n, pool, dst), launched
 * by gpu.c's dm_lane_unpack() on the comm's own stream with the entries in
 * GPU-mapped pinned memory (no copy, no allocation per launch).
 */

#endif
