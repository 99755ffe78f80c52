// SPDX-License-Identifier: MIT
/*
 * How a message is cut over the data sockets. Both ends compute the same
 * plan from (size, nsocks, max_chunk) alone, so chunks carry no headers:
 * chunk k of a message goes to socket (start + k) % nsocks, where start
 * rotates by the previous message's chunk count.
 */
#include "engine/engine.h"

/*
 * Large enough to amortise a syscall, small enough that a 1 MiB NCCL slice
 * still spreads over all sockets; 4 KiB-aligned so chunks start on pages
 * (devmem fragments and pinned staging prefer that).
 */
uint64_t dm_stripe_chunk(uint64_t size, unsigned nsocks, uint32_t max_chunk)
{
	uint64_t c;

	if (nsocks == 0)
		nsocks = 1;
	/*
	 * Up to two minimum chunks (NCCL's 128 KiB P2P chunk) go whole on one
	 * socket: cut in two they would need two sockets' worth of syscalls
	 * and the progress threads, for no gain on the wire.
	 */
	c = size <= DM_ONE_SOCK_MAX ? size : DM_DIV_ROUND_UP(size, nsocks);
	c = (c + 4095) & ~4095ull;
	if (c < DM_MIN_CHUNK)
		c = DM_MIN_CHUNK;
	if (c > max_chunk)
		c = max_chunk;
	return c;
}

uint64_t dm_stripe_nchunks(uint64_t size, uint64_t chunk)
{
	return chunk ? DM_DIV_ROUND_UP(size, chunk) : 0;
}
