// SPDX-License-Identifier: MIT
/*
 * --mem cuda: device buffers from cuMemAlloc, for the plugin's NCCL_PTR_CUDA
 * path. The driver comes from libgpudirect's one loader (the plugin uses the
 * same), at run time, so this tool builds and runs (host buffers) where
 * there is no GPU. Fills and checks run on a non-blocking stream of ours.
 * Each rank initialises CUDA after the fork: a CUDA context does not
 * survive one.
 */
#include "pluginbench.h"
#include "cuda/cudrv.h"	/* libgpudirect's loader, linked in statically */

#include <errno.h>

static struct {
	const struct gpud_cudrv *cu;
	CUstream stream;	/* fills and checks: our own, waited for alone */
} pb;

int pb_cuda_init(int dev, char *why, size_t wlen)
{
	const struct gpud_cudrv *cu;
	CUcontext ctx = NULL;
	CUdevice d;
	CUresult r;
	int err;

	err = gpud_cudrv_get(&cu, why, wlen);
	if (err)
		return err;
	r = cu->Init(0);
	if (!r)
		r = cu->DeviceGet(&d, dev);
	if (r) {
		snprintf(why, wlen, "no CUDA device %d (cuInit/cuDeviceGet: CUDA error %d)", dev, r);
		return -ENODEV;
	}
	/* the primary context: the one NCCL and the plugin's own calls use */
	r = cu->DevicePrimaryCtxRetain(&ctx, d);
	if (!r)
		r = cu->CtxSetCurrent(ctx);
	if (!r)
		r = cu->StreamCreate(&pb.stream, CU_STREAM_NON_BLOCKING);
	if (r) {
		snprintf(why, wlen, "CUDA context for device %d: CUDA error %d", dev, r);
		return -EIO;
	}
	pb.cu = cu;
	return 0;
}

int pb_cuda_alloc(void **p, size_t len)
{
	CUdeviceptr d = 0;

	if (!pb.cu || pb.cu->MemAlloc(&d, len))
		return -ENOMEM;
	*p = (void *)(uintptr_t)d;
	return 0;
}

void pb_cuda_free(void *p)
{
	if (pb.cu && p)
		pb.cu->MemFree((CUdeviceptr)(uintptr_t)p);
}

int pb_cuda_htod(void *dst, const void *src, size_t len)
{
	if (pb.cu->MemcpyHtoDAsync((CUdeviceptr)(uintptr_t)dst, src, len, pb.stream) ||
	    pb.cu->StreamSynchronize(pb.stream))
		return -EIO;
	return 0;
}

int pb_cuda_dtoh(void *dst, const void *src, size_t len)
{
	if (pb.cu->MemcpyDtoHAsync(dst, (CUdeviceptr)(uintptr_t)src, len, pb.stream) ||
	    pb.cu->StreamSynchronize(pb.stream))
		return -EIO;
	return 0;
}
