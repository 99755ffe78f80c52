// SPDX-License-Identifier: MIT
/*
 * --mem cuda: device buffers from cuMemAlloc, for the plugin's NCCL_PTR_CUDA
 * path. The driver is loaded at run time (libcuda.so.1, not the toolkit's
 * libcuda.so stub) with entry points from cuGetProcAddress_v2 at an explicit
 * API version, as the plugin itself does, so this tool builds and runs
 * (host buffers) where there is no GPU. Each rank initialises CUDA after the
 * fork: a CUDA context does not survive one.
 */
#include "pluginbench.h"

#include <dlfcn.h>
#include <errno.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
#define PB_CUDA_API_VERSION 12000

static struct {
	CUresult (*init)(unsigned int flags);
	CUresult (*dev_get)(int *dev, int ordinal);
	CUresult (*ctx_retain)(void **ctx, int dev);
	CUresult (*ctx_set)(void *ctx);
	CUresult (*alloc)(CUdeviceptr *p, size_t len);
	CUresult (*free)(CUdeviceptr p);
	CUresult (*htod)(CUdeviceptr dst, const void *src, size_t len);
	CUresult (*dtoh)(void *dst, CUdeviceptr src, size_t len);
	bool ok;
} cu;

static int load(char *why, size_t wlen)
{
	CUresult (*gpa)(const char *, void **, int, unsigned long long, int *);
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	struct {
		const char *name;
		void **fn;
	} syms[] = {
		{ "cuInit", (void **)&cu.init },
		{ "cuDeviceGet", (void **)&cu.dev_get },
		{ "cuDevicePrimaryCtxRetain", (void **)&cu.ctx_retain },
		{ "cuCtxSetCurrent", (void **)&cu.ctx_set },
		{ "cuMemAlloc", (void **)&cu.alloc },
		{ "cuMemFree", (void **)&cu.free },
		{ "cuMemcpyHtoD", (void **)&cu.htod },
		{ "cuMemcpyDtoH", (void **)&cu.dtoh },
	};

	if (!lib) {
		snprintf(why, wlen, "no CUDA driver: libcuda.so.1 not loadable (%s)", dlerror());
		return -ENODEV;
	}
	gpa = (CUresult(*)(const char *, void **, int, unsigned long long, int *))
		dlsym(lib, "cuGetProcAddress_v2");
	if (!gpa) {
		snprintf(why, wlen, "CUDA driver too old (no cuGetProcAddress_v2; need CUDA 12+)");
		return -EOPNOTSUPP;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		int status = 0;

		if (gpa(syms[i].name, syms[i].fn, PB_CUDA_API_VERSION, 0, &status) ||
		    !*syms[i].fn) {
			snprintf(why, wlen, "CUDA driver has no %s", syms[i].name);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

int pb_cuda_init(int dev, char *why, size_t wlen)
{
	void *ctx = NULL;
	CUresult r;
	int d, err;

	err = load(why, wlen);
	if (err)
		return err;
	r = cu.init(0);
	if (!r)
		r = cu.dev_get(&d, dev);
	if (r) {
		snprintf(why, wlen, "no CUDA device %d (cuInit/cuDeviceGet: CUDA error %d)", dev, r);
		return -ENODEV;
	}
	/* the primary context: the one NCCL and the plugin's own calls use */
	r = cu.ctx_retain(&ctx, d);
	if (!r)
		r = cu.ctx_set(ctx);
	if (r) {
		snprintf(why, wlen, "CUDA context for device %d: CUDA error %d", dev, r);
		return -EIO;
	}
	cu.ok = true;
	return 0;
}

int pb_cuda_alloc(void **p, size_t len)
{
	CUdeviceptr d = 0;

	if (!cu.ok || cu.alloc(&d, len))
		return -ENOMEM;
	*p = (void *)(uintptr_t)d;
	return 0;
}

void pb_cuda_free(void *p)
{
	if (cu.ok && p)
		cu.free((CUdeviceptr)(uintptr_t)p);
}

int pb_cuda_htod(void *dst, const void *src, size_t len)
{
	return cu.htod((CUdeviceptr)(uintptr_t)dst, src, len) ? -EIO : 0;
}

int pb_cuda_dtoh(void *dst, const void *src, size_t len)
{
	return cu.dtoh(dst, (CUdeviceptr)(uintptr_t)src, len) ? -EIO : 0;
}
