// SPDX-License-Identifier: MIT
/* Host side of the devmem unpack: fragments of a host-memory pool → buffer. */
#include "gpu/unpack.h"

#include <string.h>

void dm_unpack_host(const struct dm_unpack_entry *e, size_t n, const void *pool, void *dst)
{
	for (size_t i = 0; i < n; i++)
		memcpy((char *)dst + e[i].dst_off, (const char *)pool + e[i].src_off, e[i].len);
}
