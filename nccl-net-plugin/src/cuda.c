// SPDX-License-Identifier: MIT
/*
 * The few CUDA driver calls the plugin needs, loaded at run time so the
 * plugin has no link-time CUDA dependency and works (host buffers only) on a
 * machine without a GPU. libcuda.so.1, not libcuda.so: the unversioned name
 * may be the toolkit's stub. Entry points come from cuGetProcAddress_v2 with
 * an explicit API version, so a newer driver cannot hand us an ABI we did not
 * compile against.
 */
#include "plugin.h"
#include "unpack.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
#define CUDA_API_VERSION 12000
#define CU_POINTER_ATTRIBUTE_CONTEXT 1
#define CU_MEMHOSTALLOC_PORTABLE 0x01
#define CU_MEMHOSTALLOC_DEVICEMAP 0x02
#define CU_MEMHOSTREGISTER_PORTABLE 0x01
#define CU_MEMHOSTREGISTER_DEVICEMAP 0x02

static struct {
	CUresult (*init)(unsigned int flags);
	CUresult (*device_count)(int *n);
	CUresult (*ptr_attr)(void *data, int attr, CUdeviceptr ptr);
	CUresult (*ctx_set)(void *ctx);
	CUresult (*host_alloc)(void **p, size_t size, unsigned int flags);
	CUresult (*host_free)(void *p);
	CUresult (*htod)(CUdeviceptr dst, const void *src, size_t len);
	CUresult (*dtoh)(void *dst, CUdeviceptr src, size_t len);
	CUresult (*err_str)(CUresult r, const char **s);
	CUresult (*mod_load)(void **mod, const void *image);
	CUresult (*mod_func)(void **fn, void *mod, const char *name);
	CUresult (*launch)(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
			   unsigned by, unsigned bz, unsigned shmem, void *stream, void **params,
			   void **extra);
	CUresult (*mem_alloc)(CUdeviceptr *p, size_t size);
	CUresult (*mem_free)(CUdeviceptr p);
	CUresult (*ctx_sync)(void);
	CUresult (*ctx_get)(void **ctx);
	CUresult (*ctx_get_device)(int *dev);
	CUresult (*host_dev_ptr)(CUdeviceptr *d, void *p, unsigned int flags);
	CUresult (*host_register)(void *p, size_t size, unsigned int flags);
	CUresult (*host_unregister)(void *p);
	bool ok;
	char why[160];
} cu;

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

static void cu_load(void)
{
	CUresult (*gpa)(const char *, void **, int, unsigned long long, int *);
	/* GPUD_LIBCUDA: the same override libgpudirect honours (tests point it at a fake) */
	const char *path = getenv("GPUD_LIBCUDA");
	void *lib = dlopen(path && *path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	int n = 0;
	struct {
		const char *name;
		void **fn;
	} syms[] = {
		{ "cuInit", (void **)&cu.init },
		{ "cuDeviceGetCount", (void **)&cu.device_count },
		{ "cuPointerGetAttribute", (void **)&cu.ptr_attr },
		{ "cuCtxSetCurrent", (void **)&cu.ctx_set },
		{ "cuMemHostAlloc", (void **)&cu.host_alloc },
		{ "cuMemFreeHost", (void **)&cu.host_free },
		{ "cuMemcpyHtoD", (void **)&cu.htod },
		{ "cuMemcpyDtoH", (void **)&cu.dtoh },
		{ "cuGetErrorString", (void **)&cu.err_str },
		{ "cuModuleLoadData", (void **)&cu.mod_load },
		{ "cuModuleGetFunction", (void **)&cu.mod_func },
		{ "cuLaunchKernel", (void **)&cu.launch },
		{ "cuMemAlloc", (void **)&cu.mem_alloc },
		{ "cuMemFree", (void **)&cu.mem_free },
		{ "cuCtxSynchronize", (void **)&cu.ctx_sync },
		{ "cuCtxGetCurrent", (void **)&cu.ctx_get },
		{ "cuCtxGetDevice", (void **)&cu.ctx_get_device },
		{ "cuMemHostGetDevicePointer", (void **)&cu.host_dev_ptr },
		{ "cuMemHostRegister", (void **)&cu.host_register },
		{ "cuMemHostUnregister", (void **)&cu.host_unregister },
	};

	if (!lib) {
		snprintf(cu.why, sizeof(cu.why), "%s not loadable: %s",
			 path && *path ? "GPUD_LIBCUDA" : "libcuda.so.1", dlerror());
		return;
	}
	gpa = (CUresult(*)(const char *, void **, int, unsigned long long, int *))
		dlsym(lib, "cuGetProcAddress_v2");
	if (!gpa) {
		snprintf(cu.why, sizeof(cu.why), "driver too old (no cuGetProcAddress_v2; need CUDA 12+)");
		return;	/* the library stays loaded: unloading a driver is not worth it */
	}
	for (size_t i = 0; i < DM_ARRAY_SIZE(syms); i++) {
		int status = 0;

		if (gpa(syms[i].name, syms[i].fn, CUDA_API_VERSION, 0, &status) || !*syms[i].fn) {
			snprintf(cu.why, sizeof(cu.why), "driver has no %s", syms[i].name);
			return;
		}
	}
	if (cu.init(0) || cu.device_count(&n) || n < 1) {
		snprintf(cu.why, sizeof(cu.why), "no CUDA device (cuInit/cuDeviceGetCount)");
		return;
	}
	cu.ok = true;
}

bool dm_cuda_available(void)
{
	pthread_once(&cu_once, cu_load);
	return cu.ok;
}

const char *dm_cuda_why(void)
{
	pthread_once(&cu_once, cu_load);
	return cu.ok ? "" : cu.why;
}

static int cu_err(CUresult r, const char *what)
{
	const char *s = NULL;

	if (r == 0)
		return 0;
	if (cu.err_str)
		cu.err_str(r, &s);
	DM_WARN("%s failed: CUDA error %d (%s)", what, r, s ? s : "?");
	return -EIO;
}

int dm_cuda_ptr_ctx(const void *ptr, void **ctx)
{
	if (!dm_cuda_available()) {
		DM_WARN("CUDA buffer registered but %s", cu.why);
		return -ENODEV;
	}
	return cu_err(cu.ptr_attr(ctx, CU_POINTER_ATTRIBUTE_CONTEXT, (CUdeviceptr)ptr),
		      "cuPointerGetAttribute(CONTEXT)");
}

int dm_cuda_host_alloc(size_t size, void **out)
{
	if (!dm_cuda_available())
		return -ENODEV;
	/* PORTABLE: the staging chunk serves buffers of any context. */
	return cu_err(cu.host_alloc(out, size, CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc");
}

void dm_cuda_host_free(void *p)
{
	if (p && cu.ok)
		cu.host_free(p);
}

/* Synchronous copies: test() may say "done" only once the data is in place. */
int dm_cuda_htod(void *ctx, void *dst, const void *src, size_t len)
{
	int err = cu_err(cu.ctx_set(ctx), "cuCtxSetCurrent");

	return err ? err : cu_err(cu.htod((CUdeviceptr)dst, src, len), "cuMemcpyHtoD");
}

int dm_cuda_dtoh(void *ctx, void *dst, const void *src, size_t len)
{
	int err = cu_err(cu.ctx_set(ctx), "cuCtxSetCurrent");

	return err ? err : cu_err(cu.dtoh(dst, (CUdeviceptr)src, len), "cuMemcpyDtoH");
}

int dm_cuda_current_device(void)
{
	void *ctx = NULL;
	int dev = -1;

	if (!dm_cuda_available() || cu.ctx_get(&ctx) || !ctx || cu.ctx_get_device(&dev))
		return -1;
	return dev;
}

/* Makes @ctx current, or checks there is a current context when @ctx is NULL. */
static int ctx_use(void *ctx)
{
	void *cur = NULL;

	if (!dm_cuda_available())
		return -ENODEV;
	if (ctx)
		return cu_err(cu.ctx_set(ctx), "cuCtxSetCurrent");
	if (cu.ctx_get(&cur) || !cur) {
		DM_WARN("no CUDA context is current in this thread (NCCL's proxy thread has one; "
			"a caller without one must create or set one first)");
		return -ENODEV;
	}
	return 0;
}

int dm_cuda_host_alloc_mapped(void *ctx, size_t size, void **host, uint64_t *dev)
{
	CUdeviceptr d = 0;
	void *h = NULL;
	int err = ctx_use(ctx);

	if (err)
		return err;
	err = cu_err(cu.host_alloc(&h, size, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE),
		     "cuMemHostAlloc(DEVICEMAP)");
	if (err)
		return err;
	err = cu_err(cu.host_dev_ptr(&d, h, 0), "cuMemHostGetDevicePointer");
	if (err) {
		cu.host_free(h);
		return err;
	}
	*host = h;
	*dev = d;
	return 0;
}

void dm_cuda_host_free_mapped(void *ctx, void *host)
{
	if (host && !ctx_use(ctx))
		cu_err(cu.host_free(host), "cuMemFreeHost");
}

int dm_cuda_host_register(void *ctx, void *host, size_t size, uint64_t *dev)
{
	CUdeviceptr d = 0;
	int err = ctx_use(ctx);

	if (err)
		return err;
	err = cu_err(cu.host_register(host, size,
				      CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_PORTABLE),
		     "cuMemHostRegister(devmem pool)");
	if (err)
		return err;
	err = cu_err(cu.host_dev_ptr(&d, host, 0), "cuMemHostGetDevicePointer(devmem pool)");
	if (err) {
		cu.host_unregister(host);
		return err;
	}
	*dev = d;
	return 0;
}

void dm_cuda_host_unregister(void *ctx, void *host)
{
	if (host && !ctx_use(ctx))
		cu_err(cu.host_unregister(host), "cuMemHostUnregister");
}

#ifdef DM_HAVE_UNPACK_FATBIN
#include "unpack_fatbin.h"	/* generated from unpack.cu at build time */

static pthread_mutex_t unpack_lock = PTHREAD_MUTEX_INITIALIZER;
static void *unpack_ctx, *unpack_fn;

int dm_unpack_cuda(void *cuctx, const struct dm_unpack_entry *e, size_t n, uint64_t pool,
		   uint64_t dst)
{
	unsigned int nn = (unsigned int)n;
	CUdeviceptr meta = 0;
	void *mod, *args[4];
	int err;

	if (!n)
		return 0;
	if (!dm_cuda_available())
		return -ENODEV;
	pthread_mutex_lock(&unpack_lock);
	err = cu_err(cu.ctx_set(cuctx), "cuCtxSetCurrent");
	/* a module belongs to one context: reload when the buffer's context differs */
	if (!err && unpack_ctx != cuctx) {
		err = cu_err(cu.mod_load(&mod, dm_unpack_fatbin), "cuModuleLoadData(unpack)");
		if (!err)
			err = cu_err(cu.mod_func(&unpack_fn, mod, "dm_unpack_kernel"),
				     "cuModuleGetFunction(dm_unpack_kernel)");
		if (!err)
			unpack_ctx = cuctx;
	}
	if (!err)
		err = cu_err(cu.mem_alloc(&meta, n * sizeof(*e)), "cuMemAlloc(unpack metadata)");
	if (!err)
		err = cu_err(cu.htod(meta, e, n * sizeof(*e)), "cuMemcpyHtoD(unpack metadata)");
	if (!err) {
		args[0] = &meta;
		args[1] = &nn;
		args[2] = &pool;
		args[3] = &dst;
		err = cu_err(cu.launch(unpack_fn, nn < 1024 ? nn : 1024, 1, 1, 256, 1, 1, 0, NULL,
				       args, NULL),
			     "cuLaunchKernel(dm_unpack_kernel)");
	}
	/* tokens go back to the kernel only after this: the copy must be finished */
	if (!err)
		err = cu_err(cu.ctx_sync(), "cuCtxSynchronize(unpack)");
	if (meta)
		cu.mem_free(meta);
	pthread_mutex_unlock(&unpack_lock);
	return err;
}
#else
int dm_unpack_cuda(void *cuctx, const struct dm_unpack_entry *e, size_t n, uint64_t pool,
		   uint64_t dst)
{
	return -EOPNOTSUPP;
}
#endif
