// SPDX-License-Identifier: MIT
/* The gpu tier's own CUDA driver loader and result files (gpu_test.h). */
#define _GNU_SOURCE
#include "gpu_test.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The API version whose signatures we call; CUDA 12.0 drivers have them all. */
#define GT_CUDA_API 12000

struct gt_cu gt_cu;

static const struct {
	const char *name;
	size_t off;
} gt_syms[] = {
#define S(field, sym) { sym, offsetof(struct gt_cu, field) }
	S(Init, "cuInit"),
	S(DriverGetVersion, "cuDriverGetVersion"),
	S(DeviceGetCount, "cuDeviceGetCount"),
	S(DeviceGet, "cuDeviceGet"),
	S(DeviceGetName, "cuDeviceGetName"),
	S(DeviceGetAttribute, "cuDeviceGetAttribute"),
	S(DeviceTotalMem, "cuDeviceTotalMem"),
	S(DeviceGetPCIBusId, "cuDeviceGetPCIBusId"),
	S(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
	S(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease"),
	S(CtxSetCurrent, "cuCtxSetCurrent"),
	S(GetErrorString, "cuGetErrorString"),
	S(GetErrorName, "cuGetErrorName"),
	S(MemAlloc, "cuMemAlloc"),
	S(MemFree, "cuMemFree"),
	S(MemHostAlloc, "cuMemHostAlloc"),
	S(MemFreeHost, "cuMemFreeHost"),
	S(MemHostGetDevicePointer, "cuMemHostGetDevicePointer"),
	S(MemcpyHtoD, "cuMemcpyHtoD"),
	S(MemcpyDtoH, "cuMemcpyDtoH"),
	S(MemcpyDtoDAsync, "cuMemcpyDtoDAsync"),
	S(MemsetD8Async, "cuMemsetD8Async"),
	S(StreamCreate, "cuStreamCreate"),
	S(StreamDestroy, "cuStreamDestroy"),
	S(StreamSynchronize, "cuStreamSynchronize"),
	S(EventCreate, "cuEventCreate"),
	S(EventDestroy, "cuEventDestroy"),
	S(EventRecord, "cuEventRecord"),
	S(EventSynchronize, "cuEventSynchronize"),
	S(EventElapsedTime, "cuEventElapsedTime"),
	S(ModuleLoadData, "cuModuleLoadData"),
	S(ModuleUnload, "cuModuleUnload"),
	S(ModuleGetFunction, "cuModuleGetFunction"),
	S(LaunchKernel, "cuLaunchKernel"),
#undef S
};

const char *gt_cu_err(CUresult r)
{
	static __thread char buf[256];
	const char *name = NULL, *text = NULL;

	if (gt_cu.GetErrorName)
		gt_cu.GetErrorName(r, &name);
	if (gt_cu.GetErrorString)
		gt_cu.GetErrorString(r, &text);
	snprintf(buf, sizeof(buf), "%s (%d): %s", name ? name : "CUDA error", (int)r,
		 text ? text : "no description");
	return buf;
}

static void gt_load(void)
{
	CUresult (*gpa)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
	void *lib;

	if (gt_cu.Init)
		return;
	lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		t_skip("no usable GPU: libcuda.so.1 (the NVIDIA driver's library) does not "
		       "load: %s", dlerror());
	*(void **)&gpa = dlsym(lib, "cuGetProcAddress_v2");
	if (!gpa)
		t_skip("no usable GPU: the driver has no cuGetProcAddress_v2 (older than CUDA 12)");
	for (size_t i = 0; i < sizeof(gt_syms) / sizeof(gt_syms[0]); i++) {
		void **slot = (void **)((char *)&gt_cu + gt_syms[i].off);
		CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SUCCESS;

		if (gpa(gt_syms[i].name, slot, GT_CUDA_API, CU_GET_PROC_ADDRESS_DEFAULT, &st) ||
		    !*slot)
			t_skip("no usable GPU: the driver has no %s for CUDA %d.%d (status %d)",
			       gt_syms[i].name, GT_CUDA_API / 1000, GT_CUDA_API % 1000 / 10,
			       (int)st);
	}
}

void gt_cuda_open(int ordinal, CUdevice *dev)
{
	CUcontext ctx;
	CUresult r;
	int n = 0;

	gt_load();
	r = gt_cu.Init(0);
	if (r != CUDA_SUCCESS)
		t_skip("no usable GPU: cuInit failed: %s", gt_cu_err(r));
	r = gt_cu.DeviceGetCount(&n);
	if (r != CUDA_SUCCESS || n < 1)
		t_skip("no usable GPU: the driver sees no device (cuDeviceGetCount: %d, %s)", n,
		       r ? gt_cu_err(r) : "ok");
	if (ordinal >= n)
		t_skip("GPU %d asked for, the driver sees %d", ordinal, n);
	GT_CU(gt_cu.DeviceGet(dev, ordinal));
	GT_CU(gt_cu.DevicePrimaryCtxRetain(&ctx, *dev));
	GT_CU(gt_cu.CtxSetCurrent(ctx));
}

void gt_result(const char *name, const char *json)
{
	const char *dir = getenv("GPUD_GPU_RESULTS");
	char path[PATH_MAX];
	FILE *f;

	printf("RESULT %s %s\n", name, json);
	fflush(stdout);
	if (!dir || !*dir)
		return;
	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	f = fopen(path, "w");
	if (!f)
		T_FAIL("GPUD_GPU_RESULTS: cannot write %s: %s", path, strerror(errno));
	fprintf(f, "%s\n", json);
	if (fclose(f))
		T_FAIL("GPUD_GPU_RESULTS: writing %s: %s", path, strerror(errno));
}

const char *gt_json_str(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	if (len < 3)
		T_FAIL("gt_json_str: buffer too small");
	buf[o++] = '"';
	for (; s && *s && o + 8 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\%c", c);
		else if (c < 0x20)
			o += (size_t)snprintf(buf + o, len - o, "\\u%04x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
