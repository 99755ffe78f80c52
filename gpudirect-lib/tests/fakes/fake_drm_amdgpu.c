// SPDX-License-Identifier: MIT
/*
 * A fake libdrm_amdgpu.so.1 for GPU-less tests of the drm backend's amdgpu
 * path. Buffer objects are heap memory; the exported "dma-buf" is a memfd.
 *
 * Environment, read on every call:
 *   GPUD_FAKE_FAIL=amdgpu_name   that function fails with -EIO
 * Counters: fake_amdgpu_live_devs(), _live_bos(), _live_maps(), _last_heap().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

struct amdgpu_device { int fd; };
struct amdgpu_bo { void *mem; uint64_t size; bool mapped; };
struct amdgpu_bo_alloc_request {
	uint64_t alloc_size;
	uint64_t phys_alignment;
	uint32_t preferred_heap;
	uint64_t flags;
};

static int live_devs, live_bos, live_maps;
static uint32_t last_heap;

EXPORT int fake_amdgpu_live_devs(void) { return live_devs; }
EXPORT int fake_amdgpu_live_bos(void) { return live_bos; }
EXPORT int fake_amdgpu_live_maps(void) { return live_maps; }
EXPORT uint32_t fake_amdgpu_last_heap(void) { return last_heap; }

static bool fail(const char *fn)
{
	const char *v = getenv("GPUD_FAKE_FAIL");

	return v && !strcmp(v, fn);
}

#define FAIL_IF(fn)                        \
	do {                               \
		if (fail(fn))              \
			return -EIO;       \
	} while (0)

EXPORT int amdgpu_device_initialize(int fd, uint32_t *major, uint32_t *minor,
				    struct amdgpu_device **out)
{
	struct amdgpu_device *d;

	FAIL_IF("amdgpu_device_initialize");
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/* Like libdrm: keep a dup, the caller may close its fd. */
	d->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (d->fd < 0) {
		free(d);
		return -errno;
	}
	*major = 3;
	*minor = 57;
	*out = d;
	live_devs++;
	return 0;
}

EXPORT int amdgpu_device_deinitialize(struct amdgpu_device *d)
{
	close(d->fd);
	free(d);
	live_devs--;
	return 0;
}

EXPORT int amdgpu_device_get_fd(struct amdgpu_device *d)
{
	return d->fd;
}

EXPORT int amdgpu_bo_alloc(struct amdgpu_device *d, struct amdgpu_bo_alloc_request *r,
			   struct amdgpu_bo **out)
{
	struct amdgpu_bo *bo;

	FAIL_IF("amdgpu_bo_alloc");
	if (r->preferred_heap != 2 && r->preferred_heap != 4)
		return -EINVAL;
	bo = calloc(1, sizeof(*bo));
	if (!bo)
		return -ENOMEM;
	bo->mem = calloc(1, r->alloc_size);
	if (!bo->mem) {
		free(bo);
		return -ENOMEM;
	}
	bo->size = r->alloc_size;
	last_heap = r->preferred_heap;
	*out = bo;
	live_bos++;
	return 0;
}

EXPORT int amdgpu_bo_export(struct amdgpu_bo *bo, int type, uint32_t *shared)
{
	int fd;

	FAIL_IF("amdgpu_bo_export");
	if (type != 2)
		return -EINVAL;
	fd = memfd_create("fake-amdgpu-dmabuf", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	*shared = (uint32_t)fd;
	return 0;
}

EXPORT int amdgpu_bo_free(struct amdgpu_bo *bo)
{
	free(bo->mem);
	free(bo);
	live_bos--;
	return 0;
}

EXPORT int amdgpu_bo_cpu_map(struct amdgpu_bo *bo, void **cpu)
{
	FAIL_IF("amdgpu_bo_cpu_map");
	if (!bo->mapped)
		live_maps++;
	bo->mapped = true;
	*cpu = bo->mem;
	return 0;
}

EXPORT int amdgpu_bo_cpu_unmap(struct amdgpu_bo *bo)
{
	if (!bo->mapped)
		return -EINVAL;
	bo->mapped = false;
	live_maps--;
	return 0;
}

EXPORT const char *amdgpu_get_marketing_name(struct amdgpu_device *d)
{
	return "Fake Radeon";
}
