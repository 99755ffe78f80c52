// SPDX-License-Identifier: MIT
/* The CUDA driver's entry points, resolved once (see cudrv.h). */
#include "cudrv.h"
#include "dl.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Name, the CUDA version of the ABI we call (cudaTypedefs.h), slot. */
static const struct cudrv_sym {
	const char *name;
	int version;
	size_t off;
	bool optional;
} cudrv_syms[] = {
#define SYM(n, v) { "cu" #n, v, offsetof(struct gpud_cudrv, n), false }
#define OPT(n, v) { "cu" #n, v, offsetof(struct gpud_cudrv, n), true }
	SYM(GetErrorName, 6000),
	SYM(GetErrorString, 6000),
	SYM(Init, 2000),
	SYM(DeviceGetCount, 2000),
	SYM(DeviceGet, 2000),
	SYM(DeviceGetName, 2000),
	SYM(DeviceGetAttribute, 2000),
	SYM(DeviceGetPCIBusId, 4010),
	SYM(DevicePrimaryCtxRetain, 7000),
	SYM(DevicePrimaryCtxRelease, 11000),	/* _v2 */
	SYM(CtxPushCurrent, 4000),		/* _v2 */
	SYM(CtxPopCurrent, 4000),		/* _v2 */
	SYM(CtxSetCurrent, 4000),
	SYM(CtxGetCurrent, 4000),
	SYM(CtxGetDevice, 2000),
	SYM(MemAlloc, 3020),			/* _v2: size_t sizes */
	SYM(MemFree, 3020),
	SYM(MemHostAlloc, 2020),
	SYM(MemFreeHost, 2000),
	SYM(MemHostGetDevicePointer, 3020),
	SYM(MemHostRegister, 6050),		/* _v2 */
	SYM(MemHostUnregister, 4000),
	SYM(PointerGetAttribute, 4000),
	SYM(PointerSetAttribute, 6000),
	SYM(MemGetHandleForAddressRange, 11070),
	SYM(MemcpyHtoDAsync, 3020),
	SYM(MemcpyDtoHAsync, 3020),
	SYM(StreamCreate, 2000),
	SYM(StreamDestroy, 4000),		/* _v2 */
	SYM(StreamSynchronize, 2000),
	SYM(EventCreate, 2000),
	SYM(EventDestroy, 4000),		/* _v2 */
	SYM(EventRecord, 2000),
	SYM(EventQuery, 2000),
	SYM(ModuleLoadData, 2000),
	OPT(ModuleUnload, 2000),		/* teardown only */
	SYM(ModuleGetFunction, 2000),
	SYM(LaunchKernel, 4000),
	OPT(LaunchHostFunc, 10000),
	OPT(FlushGPUDirectRDMAWrites, 11030),
#undef SYM
#undef OPT
};

#define CU_GET_PROC_ADDRESS_DEFAULT 0ULL
#define CU_GET_PROC_ADDRESS_SUCCESS 0

static int cudrv_resolve(void *table, const char *path, char *why, size_t len)
{
	struct gpud_cudrv *cu = table;

	for (size_t i = 0; i < GPUD_ARRAY_SIZE(cudrv_syms); i++) {
		const struct cudrv_sym *s = &cudrv_syms[i];
		void *pfn = NULL;
		int status = -1;
		CUresult r;

		r = cu->GetProcAddress(s->name, &pfn, s->version, CU_GET_PROC_ADDRESS_DEFAULT,
				       &status);
		if (r == CUDA_SUCCESS && status == CU_GET_PROC_ADDRESS_SUCCESS && pfn) {
			memcpy((char *)cu + s->off, &pfn, sizeof(pfn));
			continue;
		}
		if (s->optional)
			continue;
		return gpud_why(-ENOSYS, why, len,
				"cuda: %s lacks %s (CUDA %d.%d API; cuGetProcAddress_v2 said %d, status %d): update the NVIDIA driver",
				path, s->name, s->version / 1000, s->version % 1000 / 10, r, status);
	}
	return 0;
}

static const struct gpud_dl_sym cudrv_dl_syms[] = {
	{ "cuGetProcAddress_v2", offsetof(struct gpud_cudrv, GetProcAddress), false,
	  ": the driver predates CUDA 12; update the NVIDIA driver" },
};

static struct gpud_dl_lib cudrv_lib =
	GPUD_DL_LIB("cuda", "GPUD_LIBCUDA", "libcuda.so.1",
		    "install the NVIDIA driver (libcuda.so.1 ships with it, not with the CUDA toolkit)",
		    cudrv_dl_syms, struct gpud_cudrv, cudrv_resolve);

int gpud_cudrv_get(const struct gpud_cudrv **out, char *why, size_t len)
{
	return gpud_dl_load(&cudrv_lib, (const void **)out, why, len);
}

int gpud_cudrv_errno(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_INVALID_VALUE:
		return -EINVAL;
	case CUDA_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CUDA_ERROR_NOT_INITIALIZED:
	case CUDA_ERROR_DEINITIALIZED:
	case CUDA_ERROR_NO_DEVICE:
	case CUDA_ERROR_INVALID_DEVICE:
	case CUDA_ERROR_INSUFFICIENT_DRIVER:
	case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
	case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
		return -ENODEV;
	case CUDA_ERROR_DEVICE_UNAVAILABLE:
		return -EBUSY;
	case CUDA_ERROR_NOT_FOUND:
		return -ENOENT;
	case CUDA_ERROR_NOT_READY:
		return -EAGAIN;
	case CUDA_ERROR_LAUNCH_TIMEOUT:
		return -ETIMEDOUT;
	case CUDA_ERROR_NOT_PERMITTED:
		return -EPERM;
	case CUDA_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

const char *gpud_cudrv_str(const struct gpud_cudrv *cu, CUresult r, char *buf, size_t len)
{
	const char *name = NULL, *str = NULL;

	if (!cu || cu->GetErrorName(r, &name) != CUDA_SUCCESS || !name)
		name = "unknown CUresult";
	if (!cu || cu->GetErrorString(r, &str) != CUDA_SUCCESS || !str)
		str = "no description";
	snprintf(buf, len, "%s (%d): %s", name, r, str);
	return buf;
}
