/* SPDX-License-Identifier: MIT */
/*
 * NCCL's device-side unpack, done on the CPU: what the kernel in NCCL
 * 2.28.9's src/device/network/unpack/unpack.h does for one receive step,
 * reading the same memory the same way (head moved before the read, slot =
 * head % 16, cnt loaded once, then each entry's src relative to bounce_buf
 * and dst relative to the receive's buffer), so the plugin's metadata is
 * checked as NCCL would use it, without a GPU. Unlike the kernel it refuses
 * (instead of corrupting memory) entries that fall outside the buffers.
 */
#ifndef DM_UNPACK_CONSUMER_H
#define DM_UNPACK_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "ncclnet/net_device_unpack.h"

struct h_unpack_step {
	uint64_t head;		/* the head this step used */
	uint64_t slot;
	uint64_t cnt;		/* entries copied */
	uint64_t bytes;		/* their total length */
};

/*
 * One step for the receive whose buffer is @dst (@dst_len bytes posted):
 * moves handle->head on by one like ncclNetDeviceIncrementHead and writes it
 * back like ncclNetDeviceSaveHead. @bounce_len: size of the memory behind
 * bounce_buf (0: unknown, not checked). Returns 0, -E2BIG (cnt above 2048),
 * or -ERANGE (an entry outside dst or bounce; nothing copied).
 */
int h_unpack_consume(ncclNetUnpackHandle_t *handle, void *dst, size_t dst_len, size_t bounce_len,
		     struct h_unpack_step *st);

#endif
