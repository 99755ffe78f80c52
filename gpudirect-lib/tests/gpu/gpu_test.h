/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the gpu tier (ctest -L gpu): the CUDA driver API for tests, and
 * a place for each test's numbers.
 *
 * The driver is loaded here on its own, not through libgpudirect's loader:
 * a test should not lean on the code it checks. libcuda.so.1 only (never the
 * toolkit's libcuda.so stub, never linked: a GPU-less machine must be able to
 * start the program so that it can skip), GPUD_LIBCUDA ignored (that points
 * at the fake driver of the unit tier; this tier is the real thing). Entry
 * points come from cuGetProcAddress_v2 with CUDA_VERSION of the headers we
 * compile against.
 *
 * Results: when GPUD_GPU_RESULTS names a directory (scripts/gpu-check.sh sets
 * it), a test writes its numbers to <dir>/<test>.json; the summary table is
 * built from those files.
 */
#ifndef GPUD_GPU_TEST_H
#define GPUD_GPU_TEST_H

#include "gpud_test.h"

#include <cuda.h>

struct gt_cu {
	CUresult (*Init)(unsigned int flags);
	CUresult (*DriverGetVersion)(int *v);
	CUresult (*DeviceGetCount)(int *n);
	CUresult (*DeviceGet)(CUdevice *d, int ordinal);
	CUresult (*DeviceGetName)(char *name, int len, CUdevice d);
	CUresult (*DeviceGetAttribute)(int *v, CUdevice_attribute a, CUdevice d);
	CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice d);
	CUresult (*DeviceGetPCIBusId)(char *id, int len, CUdevice d);
	CUresult (*DevicePrimaryCtxRetain)(CUcontext *c, CUdevice d);
	CUresult (*DevicePrimaryCtxRelease)(CUdevice d);
	CUresult (*CtxSetCurrent)(CUcontext c);
	CUresult (*GetErrorString)(CUresult r, const char **s);
	CUresult (*GetErrorName)(CUresult r, const char **s);
	CUresult (*MemAlloc)(CUdeviceptr *p, size_t size);
	CUresult (*MemFree)(CUdeviceptr p);
	CUresult (*MemHostAlloc)(void **p, size_t size, unsigned int flags);
	CUresult (*MemFreeHost)(void *p);
	CUresult (*MemHostGetDevicePointer)(CUdeviceptr *d, void *p, unsigned int flags);
	CUresult (*MemcpyHtoD)(CUdeviceptr dst, const void *src, size_t len);
	CUresult (*MemcpyDtoH)(void *dst, CUdeviceptr src, size_t len);
	CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t len, CUstream s);
	CUresult (*MemsetD8Async)(CUdeviceptr dst, unsigned char v, size_t n, CUstream s);
	CUresult (*StreamCreate)(CUstream *s, unsigned int flags);
	CUresult (*StreamDestroy)(CUstream s);
	CUresult (*StreamSynchronize)(CUstream s);
	CUresult (*EventCreate)(CUevent *e, unsigned int flags);
	CUresult (*EventDestroy)(CUevent e);
	CUresult (*EventRecord)(CUevent e, CUstream s);
	CUresult (*EventSynchronize)(CUevent e);
	CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);
	CUresult (*ModuleLoadData)(CUmodule *m, const void *image);
	CUresult (*ModuleUnload)(CUmodule m);
	CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule m, const char *name);
	CUresult (*LaunchKernel)(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
				 unsigned int bx, unsigned int by, unsigned int bz,
				 unsigned int shmem, CUstream s, void **params, void **extra);
};

/* Filled by gt_cuda_open(); every entry is set once it returns. */
extern struct gt_cu gt_cu;

/*
 * Loads the driver, initialises it and opens GPU @ordinal: its primary
 * context is made current in the calling thread. Skips (exit 77, the reason
 * printed) without libcuda.so.1, when cuInit fails (no GPU, driver and
 * library mismatch) or when there is no such device. Contexts do not survive
 * fork(): call it in the process that uses it.
 */
void gt_cuda_open(int ordinal, CUdevice *dev);

/* "CUDA_ERROR_xxx (text)" for @r; a static buffer per thread. */
const char *gt_cu_err(CUresult r);

/* Fails the test, naming the call and the driver's error, unless it succeeds. */
#define GT_CU(call)                                                              \
	do {                                                                     \
		CUresult gt_r_ = (call);                                         \
		if (gt_r_ != CUDA_SUCCESS)                                       \
			T_FAIL("%s: %s", #call, gt_cu_err(gt_r_));               \
	} while (0)

/*
 * Writes @json (one JSON object) to $GPUD_GPU_RESULTS/@name.json when that
 * variable is set, and prints it on stdout as "RESULT @name @json" either way.
 */
void gt_result(const char *name, const char *json);

/* @s as a JSON string literal, quotes included, into @buf (truncated to @len). */
const char *gt_json_str(const char *s, char *buf, size_t len);

#endif /* GPUD_GPU_TEST_H */
