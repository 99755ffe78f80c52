/* SPDX-License-Identifier: MIT */
/*
 * The one CUDA driver loader of the project. libgpudirect's cuda backend,
 * the NCCL plugin and gpud-pluginbench all take their entry points from
 * here (the plugin and the bench link the library's objects statically, so
 * this header is internal to the build, never installed).
 *
 * libcuda.so.1 is dlopen()ed (never libcuda.so, which may be the toolkit's
 * stub; GPUD_LIBCUDA overrides the path, tests point it at a fake) and every
 * entry point but cuGetProcAddress_v2 resolved through it with the CUDA
 * version whose ABI we call, so a newer driver cannot hand us a changed
 * signature and the build needs no CUDA headers or libraries. The types and
 * values below are those of CUDA 13.0's cuda.h.
 *
 * Streams: every call that takes a stream is given one of our own
 * non-blocking streams. The table is resolved with the default flags, which
 * would make a NULL stream mean the legacy default stream: the legacy stream
 * waits for every blocking stream of the context, where NCCL's kernel (on a
 * framework's default stream) may be waiting for the very receive we are
 * completing. Passing NULL anywhere is a bug.
 */
#ifndef GPUD_CUDRV_H
#define GPUD_CUDRV_H

#include <stdbool.h>
#include <stddef.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef unsigned long long CUdeviceptr;
typedef void (*CUhostFn)(void *user_data);

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_NOT_INITIALIZED = 3,
	CUDA_ERROR_DEINITIALIZED = 4,
	CUDA_ERROR_INSUFFICIENT_DRIVER = 35,
	CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
	CUDA_ERROR_NO_DEVICE = 100,
	CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_INVALID_CONTEXT = 201,
	CUDA_ERROR_OPERATING_SYSTEM = 304,
	CUDA_ERROR_NOT_FOUND = 500,
	CUDA_ERROR_NOT_READY = 600,
	CUDA_ERROR_LAUNCH_TIMEOUT = 702,
	CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
	CUDA_ERROR_NOT_PERMITTED = 800,
	CUDA_ERROR_NOT_SUPPORTED = 801,
	CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
	CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804,
};

enum {
	CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WRITES_ORDERING = 118,
	CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = 124,
};
#define CU_GPU_DIRECT_RDMA_WRITES_ORDERING_OWNER 100
#define CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TARGET_CURRENT_CTX 0
#define CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TO_OWNER 100
#define CU_POINTER_ATTRIBUTE_CONTEXT 1
#define CU_POINTER_ATTRIBUTE_SYNC_MEMOPS 6
#define CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD 1
#define CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE 1ULL
#define CU_MEMHOSTALLOC_PORTABLE 0x01
#define CU_MEMHOSTALLOC_DEVICEMAP 0x02
#define CU_MEMHOSTREGISTER_PORTABLE 0x01
#define CU_MEMHOSTREGISTER_DEVICEMAP 0x02
#define CU_STREAM_NON_BLOCKING 0x1
#define CU_EVENT_DISABLE_TIMING 0x2

/* First member: the dlopen handle (struct gpud_dl_lib's table rule). */
struct gpud_cudrv {
	void *lib;
	CUresult (*GetProcAddress)(const char *, void **, int, unsigned long long, int *);
	CUresult (*GetErrorName)(CUresult, const char **);
	CUresult (*GetErrorString)(CUresult, const char **);
	CUresult (*Init)(unsigned int);
	CUresult (*DeviceGetCount)(int *);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*DeviceGetName)(char *, int, CUdevice);
	CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
	CUresult (*DeviceGetPCIBusId)(char *, int, CUdevice);
	CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*DevicePrimaryCtxRelease)(CUdevice);
	CUresult (*CtxPushCurrent)(CUcontext);
	CUresult (*CtxPopCurrent)(CUcontext *);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*CtxGetCurrent)(CUcontext *);
	CUresult (*CtxGetDevice)(CUdevice *);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*MemFree)(CUdeviceptr);
	CUresult (*MemHostAlloc)(void **, size_t, unsigned int);
	CUresult (*MemFreeHost)(void *);
	CUresult (*MemHostGetDevicePointer)(CUdeviceptr *, void *, unsigned int);
	CUresult (*MemHostRegister)(void *, size_t, unsigned int);
	CUresult (*MemHostUnregister)(void *);
	CUresult (*PointerGetAttribute)(void *, int, CUdeviceptr);
	CUresult (*PointerSetAttribute)(const void *, int, CUdeviceptr);
	CUresult (*MemGetHandleForAddressRange)(void *, CUdeviceptr, size_t, int,
						unsigned long long);
	CUresult (*MemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
	CUresult (*MemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
	CUresult (*StreamCreate)(CUstream *, unsigned int);
	CUresult (*StreamDestroy)(CUstream);
	/* only ever on a stream of our own, outside any thread NCCL drives */
	CUresult (*StreamSynchronize)(CUstream);
	CUresult (*EventCreate)(CUevent *, unsigned int);
	CUresult (*EventDestroy)(CUevent);
	CUresult (*EventRecord)(CUevent, CUstream);
	CUresult (*EventQuery)(CUevent);
	CUresult (*ModuleLoadData)(CUmodule *, const void *);
	CUresult (*ModuleUnload)(CUmodule);	/* may be NULL */
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*LaunchKernel)(CUfunction, unsigned int, unsigned int, unsigned int,
				 unsigned int, unsigned int, unsigned int, unsigned int, CUstream,
				 void **, void **);
	/* optional: NULL where the driver lacks them */
	CUresult (*LaunchHostFunc)(CUstream, CUhostFn, void *);
	CUresult (*FlushGPUDirectRDMAWrites)(int, int);
};

/*
 * The driver's table, loaded on first use (thread-safe; a failed load is
 * retried next time). 0, or -ENOENT (no libcuda.so.1), -ENOSYS (a driver
 * too old for an entry point we need), -ENOMEM, with the reason in @why
 * (may be NULL). The table lives until exit.
 */
int gpud_cudrv_get(const struct gpud_cudrv **out, char *why, size_t len);

/* CUresult → -errno (never 0 for a failure). */
int gpud_cudrv_errno(CUresult r);

/* "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory" into @buf; returns @buf. */
const char *gpud_cudrv_str(const struct gpud_cudrv *cu, CUresult r, char *buf, size_t len);

#endif /* GPUD_CUDRV_H */
