/* SPDX-License-Identifier: MIT */
/*
 * Private to src/mem: the gpud_mem object and the ops table each backend
 * fills. mem.c owns argument checks, bounds checks, rounding policy shared by
 * all, and the probe cache; a backend only talks to its driver.
 */
#ifndef GPUD_MEM_INTERNAL_H
#define GPUD_MEM_INTERNAL_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gpud_mem;

/* Every GPUD_MEM_F_* flag this library knows. */
#define GPUD_MEM_F_ALL (GPUD_MEM_F_HUGEPAGES | GPUD_MEM_F_NO_DMABUF | GPUD_MEM_F_GTT)

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
	/* Writes *where and a one-line reason into @why (may be NULL). */
	int (*placement)(const struct gpud_mem *mem, enum gpud_mem_placement *where,
			 char *why, size_t len);
	/* A new dma-buf fd of [off, off + len) (page-aligned, inside); NULL: cannot. */
	int (*export_range)(struct gpud_mem *mem, size_t off, size_t len, int *out_fd);
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
extern const struct gpud_mem_ops gpud_mem_drm_ops;

/* Rounds @size up to a multiple of @align (a power of two); 0 on overflow. */
static inline size_t gpud_mem_round_up(size_t size, size_t align)
{
	if (size > SIZE_MAX - (align - 1))
		return 0;
	return (size + align - 1) & ~(align - 1);
}

/*
 * CPU copy through @mem's mapping, bracketed with DMA_BUF_IOCTL_SYNC on its
 * dma-buf (START|RW..END|RW when @to_mem, START|READ..END|READ otherwise) so
 * the CPU and devices see each other's writes; a plain memcpy when @mem was
 * not exported. Returns 0 or -errno (with the message set).
 */
int gpud_mem_sync_copy(struct gpud_mem *mem, void *dst, const void *src, size_t len,
		       bool to_mem);

/* amdgpu's per-file memory counters (KiB), from /proc/self/fdinfo. */
struct gpud_amdgpu_counters {
	bool valid;		/* at least one amdgpu file was read */
	unsigned long long vram, gtt;
};

/*
 * Reads the counters of @fd, or summed over every /dev/dri/renderD* fd of
 * the process when @fd < 0. Never fails: ->valid says whether any was found.
 */
void gpud_amdgpu_counters_read(struct gpud_amdgpu_counters *c, int fd);

/*
 * Compares counters taken right after exporting a @size-byte buffer with
 * @now: GTT grown and VRAM shrunk by at least @size -> HOST (migrated);
 * both unchanged -> DEVICE; anything else -> UNKNOWN. The reason, with the
 * numbers, goes into @why.
 */
enum gpud_mem_placement gpud_amdgpu_placement(const struct gpud_amdgpu_counters *then,
					      const struct gpud_amdgpu_counters *now,
					      size_t size, char *why, size_t len);

/*
 * White-box test hooks for the drm backend (not exported): scan @dev_dir
 * instead of /dev/dri (NULL: the default), and ask @driver_of instead of
 * DRM_IOCTL_VERSION which driver an open node belongs to (NULL: the ioctl),
 * so the amdgpu path can run against a fake libdrm_amdgpu without a GPU.
 * Not thread-safe; set before any drm call.
 */
void gpud_drm_set_test_hooks(const char *dev_dir,
			     int (*driver_of)(int fd, char *name, size_t len));

/*
 * White-box test hook (not exported): the host backend puts at most
 * @bytes (page-rounded; 0 = no cap, the default) into one memfd, so a test
 * can make a buffer span several memfds and exercise UDMABUF_CREATE_LIST
 * where the kernel has no hugetlbfs. Thread-safe.
 */
void gpud_mem_host_set_segment_max(size_t bytes);

#endif /* GPUD_MEM_INTERNAL_H */
