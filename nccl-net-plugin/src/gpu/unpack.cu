// SPDX-License-Identifier: MIT
/*
 * Devmem fragments → NCCL buffer on the GPU: one launch scatters many
 * fragments (one block per entry, 16-byte vector copies where the pieces are
 * aligned, bytes at the edges). Loaded by the driver API from an embedded
 * fatbin (cuda.c), so the plugin links no CUDA runtime.
 */
#include <stdint.h>

struct dm_unpack_entry {
	uint32_t src_off;
	uint32_t len;
	uint64_t dst_off;
};

extern "C" __global__ void dm_unpack_kernel(const dm_unpack_entry *__restrict__ e,
					     unsigned int n, const char *__restrict__ pool,
					     char *__restrict__ dst)
{
	for (unsigned int i = blockIdx.x; i < n; i += gridDim.x) {
		const char *s = pool + e[i].src_off;
		char *d = dst + e[i].dst_off;
		uint32_t len = e[i].len;
		uint32_t head = 0;

		/* vector path when source and destination share 16-byte alignment */
		if ((((uintptr_t)s ^ (uintptr_t)d) & 15) == 0) {
			head = (16 - ((uintptr_t)s & 15)) & 15;
			if (head > len)
				head = len;
			uint32_t nvec = (len - head) / 16;
			const int4 *vs = (const int4 *)(s + head);
			int4 *vd = (int4 *)(d + head);

			for (uint32_t j = threadIdx.x; j < nvec; j += blockDim.x)
				vd[j] = vs[j];
			for (uint32_t j = threadIdx.x; j < head; j += blockDim.x)
				d[j] = s[j];
			for (uint32_t j = head + nvec * 16 + threadIdx.x; j < len; j += blockDim.x)
				d[j] = s[j];
		} else {
			for (uint32_t j = threadIdx.x; j < len; j += blockDim.x)
				d[j] = s[j];
		}
	}
}
