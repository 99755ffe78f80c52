// SPDX-License-Identifier: MIT
/* See unpack_consumer.h. */
#include "unpack_consumer.h"

#include <errno.h>
#include <string.h>

int h_unpack_consume(ncclNetUnpackHandle_t *handle, void *dst, size_t dst_len, size_t bounce_len,
		     struct h_unpack_step *st)
{
	/* ncclNetDeviceUnpackSetup: the kernel caches meta, bounce_buf and head */
	ncclNetUnpackMeta_t *meta = handle->meta;
	const char *bounce = handle->bounce_buf;
	uint64_t head = handle->head + 1;	/* incremented before the copy */
	uint64_t slot = head % NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH;
	/* load64gpu: one relaxed load, after the proxy published the step */
	uint64_t cnt = __atomic_load_n(&meta->cnt[slot], __ATOMIC_ACQUIRE);
	uint64_t bytes = 0;

	if (cnt > NCCL_NET_UNPACK_MAX_SLICE_PAGES)
		return -E2BIG;
	for (uint64_t i = 0; i < cnt; i++) {
		const ncclNetUnpackLoadMeta_t *m = &meta->mem[slot][i];

		if (m->dst_off + m->len > dst_len || m->dst_off + m->len < m->dst_off)
			return -ERANGE;
		if (bounce_len && (uint64_t)m->src_off + m->len > bounce_len)
			return -ERANGE;
		if (m->len && !bounce)
			return -ERANGE;
	}
	for (uint64_t i = 0; i < cnt; i++) {
		const ncclNetUnpackLoadMeta_t *m = &meta->mem[slot][i];

		memcpy((char *)dst + m->dst_off, bounce + m->src_off, m->len);
		bytes += m->len;
	}
	handle->head = head;	/* ncclNetDeviceSaveHead at kernel exit */
	if (st)
		*st = (struct h_unpack_step){ .head = head, .slot = slot, .cnt = cnt, .bytes = bytes };
	return 0;
}
