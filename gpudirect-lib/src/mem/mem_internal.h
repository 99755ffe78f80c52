/* SPDX-License-Identifier: MIT */
/*
 * Private to src/mem: the gpud_mem object and the ops table each backend
 * fills. mem.c owns argument checks, bounds checks, rounding policy shared by
 * all, and the probe cache; a backend only talks to its driver.
 */
#ifndef GPUD_MEM_INTERNAL_H
#define GPUD_MEM_INTERNAL_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

struct gpud_mem;

/*
 * One backend. Every op may be NULL: mem.c then answers -EOPNOTSUPP.
 * create() receives @mem with kind, ops and opts filled, dmabuf_fd = -1, and
 * the caller's unrounded size; it must set size (rounded), priv and whatever
 * of host_ptr/dev_ptr/dmabuf_fd applies, and on failure leave nothing
 * allocated. destroy() undoes a successful create() (closing dmabuf_fd too).
 * read()/write() get ranges already bounds-checked against mem->size.
 */
struct gpud_mem_ops {
	const char *name;
	int (*probe)(int device, char *why, size_t len);
	int (*create)(struct gpud_mem *mem, size_t size);
	void (*destroy)(struct gpud_mem *mem);
	int (*write)(struct gpud_mem *mem, size_t off, const void *src, size_t len);
	int (*read)(struct gpud_mem *mem, size_t off, void *dst, size_t len);
	int (*placement)(const struct gpud_mem *mem, enum gpud_mem_placement *where);
};

struct gpud_mem {
	enum gpud_mem_kind kind;
	const struct gpud_mem_ops *ops;
	struct gpud_mem_opts opts;
	size_t size;		/* after rounding */
	int dmabuf_fd;		/* -1: not exported */
	void *host_ptr;		/* host backend's mapping */
	uint64_t dev_ptr;	/* GPU virtual address */
	void *priv;		/* backend state */
};

extern const struct gpud_mem_ops gpud_mem_host_ops;
extern const struct gpud_mem_ops gpud_mem_cuda_ops;
extern const struct gpud_mem_ops gpud_mem_hip_ops;

/* Rounds @size up to a multiple of @align (a power of two); 0 on overflow. */
static inline size_t gpud_mem_round_up(size_t size, size_t align)
{
	if (size > SIZE_MAX - (align - 1))
		return 0;
	return (size + align - 1) & ~(align - 1);
}

/* snprintf into @why when it is non-NULL; returns @rc for tail calls. */
int gpud_mem_why(int rc, char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * White-box test hook (not exported): the host backend puts at most
 * @bytes (page-rounded; 0 = no cap, the default) into one memfd, so a test
 * can make a buffer span several memfds and exercise UDMABUF_CREATE_LIST
 * where the kernel has no hugetlbfs. Thread-safe.
 */
void gpud_mem_host_set_segment_max(size_t bytes);

#endif /* GPUD_MEM_INTERNAL_H */
