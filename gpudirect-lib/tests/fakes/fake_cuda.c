// SPDX-License-Identifier: MIT
/*
 * A fake libcuda.so.1 (and libnvidia-ml.so.1) for GPU-less tests of the cuda
 * backend. It exports only cuGetProcAddress_v2, like a driver whose other
 * symbols we must not dlsym directly, and hands out its own functions.
 *
 * Controlled through the environment, read on every call:
 *   GPUD_FAKE_FAIL=cuName      that entry point fails ...
 *   GPUD_FAKE_FAIL_CODE=N      ... with CUresult N (default 999, UNKNOWN)
 *   GPUD_FAKE_MISSING=cuName   cuGetProcAddress_v2 does not know it
 *   GPUD_FAKE_DMABUF_ATTR=0    CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0
 *   GPUD_FAKE_DEVICES=N        device count (default 1)
 * "Device memory" is malloc()ed; the "dma-buf" is a memfd. Counters for the
 * test: fake_cuda_live_allocs(), fake_cuda_ctx_refs(), fake_cuda_ctx_depth(),
 * fake_cuda_flushes(), fake_cuda_pcie_tries(), fake_cuda_reset_depth(),
 * fake_cuda_host_allocs().
 *
 * The NCCL plugin's entry points too (it loads the driver itself): pointer
 * context, cuCtxSetCurrent/GetCurrent/GetDevice (a thread starts with the
 * fake context current, as NCCL's proxy thread has its rank's), mapped host
 * memory (cuMemHostAlloc/GetDevicePointer/Register: the device address is
 * the host address), and module loading whose kernels cannot launch
 * (cuLaunchKernel fails: nothing here runs GPU code).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

static int live_allocs, ctx_refs, ctx_depth, flushes, pcie_tries, host_allocs;
static char fake_ctx;	/* its address is the context handle */
static __thread void *cur_ctx = &fake_ctx;	/* cuCtxSetCurrent/GetCurrent only */

EXPORT int fake_cuda_live_allocs(void) { return live_allocs; }
EXPORT int fake_cuda_ctx_refs(void) { return ctx_refs; }
EXPORT int fake_cuda_ctx_depth(void) { return ctx_depth; }
EXPORT int fake_cuda_flushes(void) { return flushes; }
EXPORT int fake_cuda_pcie_tries(void) { return pcie_tries; }
EXPORT int fake_cuda_host_allocs(void) { return host_allocs; }
/* After a simulated failed pop the context stays pushed; tests undo it. */
EXPORT void fake_cuda_reset_depth(void) { ctx_depth = 0; }

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

/* Nonzero CUresult when the test asked @fn to fail. */
static CUresult fail(const char *fn)
{
	const char *v = getenv("GPUD_FAKE_FAIL");

	if (v && !strcmp(v, fn))
		return env_int("GPUD_FAKE_FAIL_CODE", 999);
	return 0;
}

#define FAIL_IF(fn)                        \
	do {                               \
		CUresult r_ = fail(fn);    \
		if (r_)                    \
			return r_;         \
	} while (0)

static CUresult f_GetErrorName(CUresult r, const char **s)
{
	static char buf[48];

	switch (r) {
	case 1: *s = "CUDA_ERROR_INVALID_VALUE"; break;
	case 2: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
	case 100: *s = "CUDA_ERROR_NO_DEVICE"; break;
	case 999: *s = "CUDA_ERROR_UNKNOWN"; break;
	default:
		strcpy(buf, "CUDA_ERROR_FAKE");
		*s = buf;
	}
	return 0;
}

static CUresult f_GetErrorString(CUresult r, const char **s)
{
	*s = "fake driver failure as requested";
	return 0;
}

static CUresult f_Init(unsigned int flags) { FAIL_IF("cuInit"); return 0; }

static CUresult f_DeviceGetCount(int *n)
{
	FAIL_IF("cuDeviceGetCount");
	*n = env_int("GPUD_FAKE_DEVICES", 1);
	return 0;
}

static CUresult f_DeviceGet(int *dev, int ord)
{
	FAIL_IF("cuDeviceGet");
	if (ord >= env_int("GPUD_FAKE_DEVICES", 1))
		return 101;
	*dev = ord;
	return 0;
}

static CUresult f_DeviceGetName(char *name, int len, int dev)
{
	FAIL_IF("cuDeviceGetName");
	strncpy(name, "Fake GPU", (size_t)len);
	return 0;
}

static CUresult f_DeviceGetAttribute(int *v, int attr, int dev)
{
	FAIL_IF("cuDeviceGetAttribute");
	if (attr == 124)
		*v = env_int("GPUD_FAKE_DMABUF_ATTR", 1);
	else if (attr == 118)
		*v = 0;	/* no native ordering: reads must flush */
	else
		*v = 0;
	return 0;
}

static CUresult f_DeviceGetPCIBusId(char *bus, int len, int dev)
{
	FAIL_IF("cuDeviceGetPCIBusId");
	strncpy(bus, "0000:01:00.0", (size_t)len);
	return 0;
}

static CUresult f_DevicePrimaryCtxRetain(void **ctx, int dev)
{
	FAIL_IF("cuDevicePrimaryCtxRetain");
	ctx_refs++;
	*ctx = &fake_ctx;
	return 0;
}

static CUresult f_DevicePrimaryCtxRelease(int dev)
{
	FAIL_IF("cuDevicePrimaryCtxRelease");
	if (ctx_refs <= 0)
		return 201;
	ctx_refs--;
	return 0;
}

static CUresult f_CtxPushCurrent(void *ctx)
{
	FAIL_IF("cuCtxPushCurrent");
	if (ctx != &fake_ctx || ctx_refs <= 0)
		return 201;	/* CUDA_ERROR_INVALID_CONTEXT */
	ctx_depth++;
	return 0;
}

static CUresult f_CtxPopCurrent(void **ctx)
{
	FAIL_IF("cuCtxPopCurrent");
	if (ctx_depth <= 0)
		return 201;
	ctx_depth--;
	*ctx = &fake_ctx;
	return 0;
}

static CUresult f_MemAlloc(CUdeviceptr *p, size_t size)
{
	void *m;

	FAIL_IF("cuMemAlloc");
	if (ctx_depth <= 0)
		return 201;
	m = aligned_alloc(2u << 20, size);
	if (!m)
		return 2;
	live_allocs++;
	*p = (CUdeviceptr)(uintptr_t)m;
	return 0;
}

static CUresult f_MemFree(CUdeviceptr p)
{
	FAIL_IF("cuMemFree");
	if (ctx_depth <= 0)
		return 201;
	free((void *)(uintptr_t)p);
	live_allocs--;
	return 0;
}

static CUresult f_PointerSetAttribute(const void *v, int attr, CUdeviceptr p)
{
	FAIL_IF("cuPointerSetAttribute");
	return attr == 6 && *(const unsigned int *)v == 1 ? 0 : 1;
}

static CUresult f_MemGetHandleForAddressRange(void *handle, CUdeviceptr p, size_t size, int type,
					       unsigned long long flags)
{
	int fd;

	FAIL_IF("cuMemGetHandleForAddressRange");
	if (type != 1)
		return 1;
	/* Like a PCIe host that is not cache-coherent: the PCIe type is refused. */
	if (flags == 1) {
		pcie_tries++;
		return 1;
	}
	fd = memfd_create("fake-cuda-dmabuf", MFD_CLOEXEC);
	if (fd < 0)
		return 304;
	if (ftruncate(fd, (off_t)size)) {
		close(fd);
		return 304;
	}
	*(int *)handle = fd;
	return 0;
}

static CUresult f_MemcpyHtoD(CUdeviceptr d, const void *s, size_t n)
{
	FAIL_IF("cuMemcpyHtoD");
	if (ctx_depth <= 0)
		return 201;
	memcpy((void *)(uintptr_t)d, s, n);
	return 0;
}

static CUresult f_MemcpyDtoH(void *d, CUdeviceptr s, size_t n)
{
	FAIL_IF("cuMemcpyDtoH");
	if (ctx_depth <= 0)
		return 201;
	memcpy(d, (const void *)(uintptr_t)s, n);
	return 0;
}

static CUresult f_FlushGPUDirectRDMAWrites(int target, int scope)
{
	FAIL_IF("cuFlushGPUDirectRDMAWrites");
	flushes++;
	return target == 0 && scope == 100 ? 0 : 1;
}

/* ---- what the NCCL plugin uses besides ---- */
static CUresult f_PointerGetAttribute(void *data, int attr, CUdeviceptr p)
{
	FAIL_IF("cuPointerGetAttribute");
	if (attr != 1)	/* CU_POINTER_ATTRIBUTE_CONTEXT */
		return 1;
	*(void **)data = &fake_ctx;
	return 0;
}

static CUresult f_CtxSetCurrent(void *ctx)
{
	FAIL_IF("cuCtxSetCurrent");
	if (ctx && ctx != &fake_ctx)
		return 201;
	cur_ctx = ctx;
	return 0;
}

static CUresult f_CtxGetCurrent(void **ctx)
{
	FAIL_IF("cuCtxGetCurrent");
	*ctx = cur_ctx;
	return 0;
}

static CUresult f_CtxGetDevice(int *dev)
{
	FAIL_IF("cuCtxGetDevice");
	if (!cur_ctx)
		return 201;
	*dev = 0;
	return 0;
}

static CUresult f_CtxSynchronize(void) { FAIL_IF("cuCtxSynchronize"); return 0; }

static CUresult f_MemHostAlloc(void **p, size_t size, unsigned int flags)
{
	FAIL_IF("cuMemHostAlloc");
	if (!cur_ctx && ctx_depth <= 0)
		return 201;
	*p = aligned_alloc(4096, (size + 4095) & ~(size_t)4095);
	if (!*p)
		return 2;
	host_allocs++;
	return 0;
}

static CUresult f_MemFreeHost(void *p)
{
	FAIL_IF("cuMemFreeHost");
	free(p);
	host_allocs--;
	return 0;
}

static CUresult f_MemHostGetDevicePointer(CUdeviceptr *d, void *p, unsigned int flags)
{
	FAIL_IF("cuMemHostGetDevicePointer");
	*d = (CUdeviceptr)(uintptr_t)p;
	return 0;
}

static CUresult f_MemHostRegister(void *p, size_t size, unsigned int flags)
{
	FAIL_IF("cuMemHostRegister");
	return 0;
}

static CUresult f_MemHostUnregister(void *p) { FAIL_IF("cuMemHostUnregister"); return 0; }

static CUresult f_ModuleLoadData(void **mod, const void *image)
{
	FAIL_IF("cuModuleLoadData");
	*mod = &fake_ctx;
	return 0;
}

static CUresult f_ModuleGetFunction(void **fn, void *mod, const char *name)
{
	FAIL_IF("cuModuleGetFunction");
	*fn = &fake_ctx;
	return 0;
}

static CUresult f_LaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
			       unsigned by, unsigned bz, unsigned shmem, void *stream,
			       void **params, void **extra)
{
	return 801;	/* CUDA_ERROR_NOT_SUPPORTED: no GPU code runs here */
}

static const struct {
	const char *name;
	void *fn;
} table[] = {
#define E(n) { "cu" #n, (void *)f_##n }
	E(GetErrorName), E(GetErrorString), E(Init), E(DeviceGetCount), E(DeviceGet),
	E(DeviceGetName), E(DeviceGetAttribute), E(DeviceGetPCIBusId),
	E(DevicePrimaryCtxRetain), E(DevicePrimaryCtxRelease), E(CtxPushCurrent),
	E(CtxPopCurrent), E(MemAlloc), E(MemFree), E(PointerSetAttribute),
	E(MemGetHandleForAddressRange), E(MemcpyHtoD), E(MemcpyDtoH),
	E(FlushGPUDirectRDMAWrites),
	E(PointerGetAttribute), E(CtxSetCurrent), E(CtxGetCurrent), E(CtxGetDevice),
	E(CtxSynchronize), E(MemHostAlloc), E(MemFreeHost), E(MemHostGetDevicePointer),
	E(MemHostRegister), E(MemHostUnregister), E(ModuleLoadData), E(ModuleGetFunction),
	E(LaunchKernel),
#undef E
};

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version,
				    unsigned long long flags, int *status)
{
	const char *missing = getenv("GPUD_FAKE_MISSING");

	*pfn = NULL;
	if (missing && !strcmp(missing, symbol)) {
		if (status)
			*status = 1;	/* CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND */
		return 500;		/* CUDA_ERROR_NOT_FOUND */
	}
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (!strcmp(table[i].name, symbol)) {
			*pfn = table[i].fn;
			if (status)
				*status = 0;
			return 0;
		}
	}
	if (status)
		*status = 1;
	return 500;
}

/* ---- NVML, for the BAR1 headroom text ---- */
struct bar1 {
	unsigned long long total, free, used;
};
static int nvml_refs;

EXPORT int nvmlInit_v2(void) { nvml_refs++; return 0; }
EXPORT int nvmlShutdown(void) { nvml_refs--; return 0; }
EXPORT int nvmlDeviceGetHandleByPciBusId_v2(const char *bus, void **dev)
{
	*dev = &fake_ctx;
	return strcmp(bus, "0000:01:00.0") ? 6 : 0;
}
EXPORT int nvmlDeviceGetBAR1MemoryInfo(void *dev, struct bar1 *b)
{
	b->total = 256ull << 20;
	b->used = 32ull << 20;
	b->free = b->total - b->used;
	return 0;
}
