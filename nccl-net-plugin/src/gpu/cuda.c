// SPDX-License-Identifier: MIT
/*
 * The CUDA driver as the plugin uses it, from libgpudirect's one loader
 * (cuda/cudrv.h: libcuda.so.1 at run time, so the plugin works with host
 * buffers where there is no GPU). Setup and teardown helpers here; the data
 * path's engine is gpu.c.
 *
 * Calls on a thread we do not own (NCCL's proxy thread) push the context
 * they need, when it is not the current one already, and pop it again, so
 * the thread's own current context is left as NCCL set it.
 */
#include "base/base.h"
#include "gpu/gpu.h"
#include "gpu/gpu_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct {
	const struct gpud_cudrv *cu;
	char why[400];
} drv;

static pthread_once_t drv_once = PTHREAD_ONCE_INIT;

static void drv_load(void)
{
	const struct gpud_cudrv *cu;
	char why[320];
	int n = 0;

	if (gpud_cudrv_get(&cu, why, sizeof(why))) {
		snprintf(drv.why, sizeof(drv.why), "%s", why);
		return;
	}
	if (cu->Init(0) || cu->DeviceGetCount(&n) || n < 1) {
		snprintf(drv.why, sizeof(drv.why), "no CUDA device (cuInit/cuDeviceGetCount)");
		return;
	}
	drv.cu = cu;
}

const struct gpud_cudrv *dm_cu(void)
{
	pthread_once(&drv_once, drv_load);
	return drv.cu;
}

bool dm_cuda_available(void)
{
	return dm_cu() != NULL;
}

const char *dm_cuda_why(void)
{
	return dm_cu() ? "" : drv.why;
}

int dm_cu_err(CUresult r, const char *what)
{
	char buf[160];

	if (r == CUDA_SUCCESS)
		return 0;
	DM_WARN("%s failed: %s", what, gpud_cudrv_str(drv.cu, r, buf, sizeof(buf)));
	return gpud_cudrv_errno(r);
}

int dm_cu_enter(void *ctx, bool *pushed)
{
	const struct gpud_cudrv *cu = dm_cu();
	CUcontext cur = NULL;

	*pushed = false;
	if (!cu)
		return -ENODEV;
	if (cu->CtxGetCurrent(&cur))
		cur = NULL;
	if (!ctx && !cur) {
		DM_WARN("no CUDA context is current in this thread (NCCL's proxy thread has one; "
			"a caller without one must create or set one first)");
		return -ENODEV;
	}
	if (!ctx || ctx == cur)
		return 0;	/* already there: nothing to push or pop */
	*pushed = true;
	return dm_cu_err(cu->CtxPushCurrent(ctx), "cuCtxPushCurrent");
}

void dm_cu_leave(bool pushed)
{
	CUcontext cur;

	if (pushed)
		dm_cu_err(drv.cu->CtxPopCurrent(&cur), "cuCtxPopCurrent");
}

int dm_cuda_ptr_ctx(const void *ptr, void **ctx)
{
	const struct gpud_cudrv *cu = dm_cu();

	if (!cu) {
		DM_WARN("CUDA buffer registered but %s", drv.why);
		return -ENODEV;
	}
	return dm_cu_err(cu->PointerGetAttribute(ctx, CU_POINTER_ATTRIBUTE_CONTEXT,
						 (CUdeviceptr)(uintptr_t)ptr),
			 "cuPointerGetAttribute(CONTEXT)");
}

int dm_cuda_current_device(void)
{
	const struct gpud_cudrv *cu = dm_cu();
	CUcontext ctx = NULL;
	CUdevice dev = -1;

	if (!cu || cu->CtxGetCurrent(&ctx) || !ctx || cu->CtxGetDevice(&dev))
		return -1;
	return dev;
}

int dm_cuda_host_alloc_mapped(void *ctx, size_t size, void **host, uint64_t *dev)
{
	const struct gpud_cudrv *cu = dm_cu();
	CUdeviceptr d = 0;
	void *h = NULL;
	bool pushed;
	int err = dm_cu_enter(ctx, &pushed);

	if (err)
		return err;
	err = dm_cu_err(cu->MemHostAlloc(&h, size,
					 CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE),
			"cuMemHostAlloc(DEVICEMAP)");
	if (err)
		goto out_pop;
	err = dm_cu_err(cu->MemHostGetDevicePointer(&d, h, 0), "cuMemHostGetDevicePointer");
	if (err) {
		cu->MemFreeHost(h);
		goto out_pop;
	}
	*host = h;
	*dev = d;
out_pop:
	dm_cu_leave(pushed);
	return err;
}

void dm_cuda_host_free_mapped(void *ctx, void *host)
{
	bool pushed;

	if (!host || dm_cu_enter(ctx, &pushed))
		return;
	dm_cu_err(drv.cu->MemFreeHost(host), "cuMemFreeHost");
	dm_cu_leave(pushed);
}

int dm_cuda_host_register(void *ctx, void *host, size_t size, uint64_t *dev)
{
	const struct gpud_cudrv *cu = dm_cu();
	CUdeviceptr d = 0;
	bool pushed;
	int err = dm_cu_enter(ctx, &pushed);

	if (err)
		return err;
	err = dm_cu_err(cu->MemHostRegister(host, size, CU_MEMHOSTREGISTER_DEVICEMAP |
							CU_MEMHOSTREGISTER_PORTABLE),
			"cuMemHostRegister(devmem pool)");
	if (err)
		goto out_pop;
	err = dm_cu_err(cu->MemHostGetDevicePointer(&d, host, 0),
			"cuMemHostGetDevicePointer(devmem pool)");
	if (err) {
		cu->MemHostUnregister(host);
		goto out_pop;
	}
	*dev = d;
out_pop:
	dm_cu_leave(pushed);
	return err;
}

void dm_cuda_host_unregister(void *ctx, void *host)
{
	bool pushed;

	if (!host || dm_cu_enter(ctx, &pushed))
		return;
	dm_cu_err(drv.cu->MemHostUnregister(host), "cuMemHostUnregister");
	dm_cu_leave(pushed);
}
