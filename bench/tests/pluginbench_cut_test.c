// SPDX-License-Identifier: MIT
/*
 * Unit test of how the raw-TCP baseline cuts a message over its
 * connections. It must cut as the plugin does (stripe.c: up to 128 KiB whole
 * on one socket, else an n-th each in 4 KiB multiples between 64 and
 * 512 KiB), or plugin/raw ratios compare two different cuts.
 */
#include "gpud_test.h"
#include "rawsock.h"

static void check_cut(uint64_t size, unsigned int n, uint64_t want_chunk)
{
	uint64_t c = pb_tcp_chunk(size, n), sum = 0;

	T_ASSERT_EQ(want_chunk, c);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t b = pb_tcp_share(size, c, n, i);

		/* every connection's share is whole chunks, but the last one */
		T_ASSERT(b <= ((size + c - 1) / c + n - 1) / n * c);
		sum += b;
	}
	T_ASSERT_EQ(size, sum);
}

int main(void)
{
	check_cut(8, 4, 64 << 10);		/* one connection carries it */
	T_ASSERT_EQ(8, pb_tcp_share(8, 64 << 10, 4, 0));
	T_ASSERT_EQ(0, pb_tcp_share(8, 64 << 10, 4, 1));
	check_cut(64 << 10, 4, 64 << 10);
	check_cut(128 << 10, 4, 128 << 10);	/* NCCL's P2P chunk: whole */
	T_ASSERT_EQ(128 << 10, pb_tcp_share(128 << 10, 128 << 10, 4, 0));
	T_ASSERT_EQ(0, pb_tcp_share(128 << 10, 128 << 10, 4, 1));
	check_cut((128 << 10) + 1, 4, 64 << 10);	/* past it: striped */
	check_cut(256 << 10, 4, 64 << 10);
	check_cut(1 << 20, 4, 256 << 10);
	check_cut(1 << 20, 3, 352256);		/* 1 MiB / 3, up to 4 KiB */
	check_cut(16 << 20, 4, 512 << 10);	/* NCCL_DEVMEM_CHUNK_SIZE cap */
	check_cut(1 << 20, 1, 512 << 10);
	return T_EXIT_PASS;
}
