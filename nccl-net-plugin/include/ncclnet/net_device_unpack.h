/* SPDX-License-Identifier: MIT */
/*
 * NCCL's device-side unpack (netDeviceType NCCL_NET_DEVICE_UNPACK,
 * netDeviceVersion NCCL_NET_DEVICE_UNPACK_VERSION = 0x7 in NCCL 2.28.9): the
 * plugin leaves received fragments where the NIC wrote them and tells NCCL's
 * own kernels where they are; the kernel that consumes a receive copies them
 * into place, so no separate copy kernel runs. Declared from NCCL v2.28.9-1
 * src/device/network/unpack/unpack_defs.h and the consumer in unpack.h and
 * prims_simple.h; abi_check.c pins the layout.
 *
 * Who does what, per receive comm:
 *  - accept(): NCCL passes a calloc()ed ncclNetDeviceHandle_t with type and
 *    version set (only on the receive side, only when the plugin advertised
 *    this type and NCCL's version matches). The plugin sets ->handle to the
 *    *device* address of a ncclNetUnpackHandle_t, ->size, and
 *    ->needsProxyProgress = 1 (the proxy still drives irecv/test).
 *  - The plugin fills metadata per receive: slot = k % 16 for its k-th
 *    receive (k = 0, 1, ...), entries mem[slot][0..cnt), then cnt[slot]; all
 *    before test() reports the receive done. NCCL's proxy then publishes the
 *    step to the GPU.
 *  - The kernel keeps `head` in shared memory while it runs (loaded from the
 *    handle at start, written back at exit) and increments it *before* it
 *    consumes a step: a fresh handle starts at head = UINT64_MAX so that the
 *    first receive reads slot 0. For each step it reads cnt[head % 16] and
 *    copies len bytes from bounce_buf + src_off to (the receive's buffer) +
 *    dst_off for every entry. Only the SIMPLE protocol unpacks; LL and LL128
 *    steps do not move head (NCCL marks those receives with
 *    NCCL_NET_OPTIONAL_RECV_COMPLETION in *request when it calls irecv).
 *  - Once the GPU has consumed the step, NCCL's proxy calls
 *    irecvConsumed(comm, n, request) with the request test() completed: only
 *    then may the fragments' tokens go back to the kernel, and the slot be
 *    reused.
 * Limits that follow: at most 2048 entries per receive (4 MiB of 4 KiB pages,
 * times 2 for slack), src_off is 32-bit (the bounce buffer < 4 GiB), at most
 * 16 receives between a slot's fill and its irecvConsumed.
 */
#ifndef NCCLNET_NET_DEVICE_UNPACK_H
#define NCCLNET_NET_DEVICE_UNPACK_H

#include <stdint.h>

#define NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH 16
#define NCCL_NET_UNPACK_MAX_SLICE_SIZE (4u << 20)	/* per receive, by design */
#define NCCL_NET_UNPACK_SLICE_PAGE_SIZE 4096
#define NCCL_NET_UNPACK_MAX_SLICE_PAGES \
	(NCCL_NET_UNPACK_MAX_SLICE_SIZE / NCCL_NET_UNPACK_SLICE_PAGE_SIZE * 2)

/* NCCL's union loadMeta: one piece to copy, read as two 64-bit words. */
typedef union {
	uint64_t r64[2];
	struct {
		uint32_t src_off;	/* from bounce_buf */
		uint32_t len;
		uint64_t dst_off;	/* from the receive's buffer */
	};
} __attribute__((aligned(16))) ncclNetUnpackLoadMeta_t;

/* struct netUnpackMeta: host memory mapped into the GPU. */
typedef struct {
	ncclNetUnpackLoadMeta_t mem[NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH]
				   [NCCL_NET_UNPACK_MAX_SLICE_PAGES];
	uint64_t cnt[NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH];
} ncclNetUnpackMeta_t;

/* struct unpackNetDeviceHandle: what ncclNetDeviceHandle_t.handle points to. */
typedef struct {
	ncclNetUnpackMeta_t *meta;	/* device address of the metadata */
	void *bounce_buf;		/* device address src_off is relative to */
	uint64_t head;			/* the kernel's; UINT64_MAX before the first step */
} ncclNetUnpackHandle_t;

#endif /* NCCLNET_NET_DEVICE_UNPACK_H */
