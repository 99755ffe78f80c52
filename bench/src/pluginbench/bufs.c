// SPDX-License-Identifier: MIT
/*
 * Message buffers, allocated once at the largest size: host memory for raw
 * TCP (and for filling and checking), and for --mem cuda device memory that
 * the plugin registers as NCCL_PTR_CUDA. The payload is a pattern that
 * depends on the sending rank and the message size, so a message delivered
 * from the wrong direction, at the wrong offset or not at all is caught.
 */
#include "pluginbench.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

static uint64_t word(uint64_t i, size_t size, int from)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)size << 8) ^ (uint64_t)from;

	return x ^ (x >> 29);
}

static void pattern(uint8_t *p, size_t size, int from)
{
	size_t nw = size / 8;
	uint64_t w;

	for (size_t i = 0; i < nw; i++) {
		w = word(i, size, from);
		memcpy(p + i * 8, &w, 8);
	}
	w = word(nw, size, from);
	memcpy(p + nw * 8, &w, size % 8);
}

static void *map(size_t len)
{
	/* mmap, not malloc: fresh zero pages, and touched below before timing */
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, len);
	return p;
}

int pb_bufs_alloc(struct pb_bufs *b, const struct pb_opts *o, char *why, size_t wlen)
{
	int err;

	memset(b, 0, sizeof(*b));
	b->len = o->max_bytes ? o->max_bytes : 4096;
	b->mem = o->mem;
	b->host_send = map(b->len);
	b->host_recv = map(b->len);
	if (!b->host_send || !b->host_recv) {
		snprintf(why, wlen, "cannot map 2 x %zu bytes of host memory", b->len);
		err = -ENOMEM;
		goto err_free;
	}
	b->send = b->host_send;
	b->recv = b->host_recv;
	if (o->mem == PB_MEM_CUDA) {
		err = pb_cuda_init(o->cuda_dev, why, wlen);
		if (err)
			goto err_free;
		b->send = b->recv = NULL;
		err = pb_cuda_alloc(&b->send, b->len);
		if (!err)
			err = pb_cuda_alloc(&b->recv, b->len);
		if (err) {
			snprintf(why, wlen, "cuMemAlloc of 2 x %zu bytes failed", b->len);
			goto err_free;
		}
	}
	return 0;

err_free:
	pb_bufs_free(b);
	return err;
}

void pb_bufs_free(struct pb_bufs *b)
{
	if (b->mem == PB_MEM_CUDA) {
		pb_cuda_free(b->send);
		pb_cuda_free(b->recv);
	}
	if (b->host_send)
		munmap(b->host_send, b->len);
	if (b->host_recv)
		munmap(b->host_recv, b->len);
	memset(b, 0, sizeof(*b));
}

int pb_bufs_fill(struct pb_bufs *b, size_t size, int from)
{
	pattern(b->host_send, size, from);
	if (b->mem == PB_MEM_CUDA)
		return pb_cuda_htod(b->send, b->host_send, size);
	return 0;
}

int pb_bufs_clear(struct pb_bufs *b, size_t size)
{
	memset(b->host_recv, 0, size);
	if (b->mem == PB_MEM_CUDA)
		return pb_cuda_htod(b->recv, b->host_recv, size);
	return 0;
}

long pb_bufs_check(struct pb_bufs *b, size_t size, int from, bool plugin_buf)
{
	uint8_t want[8];
	size_t nw = (size + 7) / 8;

	/* a GPU buffer is read back through the host one */
	if (plugin_buf && b->mem == PB_MEM_CUDA && pb_cuda_dtoh(b->host_recv, b->recv, size))
		return 0;
	for (size_t i = 0; i < nw; i++) {
		uint64_t w = word(i, size, from);
		size_t n = size - i * 8 < 8 ? size - i * 8 : 8;

		memcpy(want, &w, 8);
		if (memcmp(b->host_recv + i * 8, want, n)) {
			for (size_t k = 0; k < n; k++)
				if (b->host_recv[i * 8 + k] != want[k])
					return (long)(i * 8 + k);
		}
	}
	return -1;
}
